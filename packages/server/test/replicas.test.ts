// Two `offramp serve` replicas (real processes, the shipped fashion-cnn checkpoint) behind a real HAProxy
// running deploy/haproxy.cfg as shipped (addresses from its environment variables): requests are spread over
// both replicas (each replica's own /metrics counts what it answered), every answer equals the one a replica
// gives directly, and a replica killed with SIGKILL in the middle of the load costs at most the requests it
// had in flight (HAProxy's retries usually save those too), after which every request succeeds.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testImages } from '../src/testing-internal/images.js';
import {
  CHECKPOINTS,
  classifyCount,
  DEPLOY,
  findHaproxy,
  freePort,
  type Replica,
  type Spawned,
  spawnGroup,
  startServe,
  waitFor,
  warmUp,
} from './helpers.js';

const CONNECTIONS = 8;
const replicas: Replica[] = [];
let haproxy: Spawned;
let lb: string;
let stats: string;
/** Bodies of the requests sent, and the answer a replica gives to each directly (the reference). */
let bodies: string[];
let expected: { prediction: number; probabilities: number[]; exit_block: number }[];

async function post(base: string, body: string) {
  return fetch(`${base}/v1/classify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
}

/** HAProxy's stats page in CSV: one record per proxy and server, keyed by the CSV header's field names. */
async function haproxyStats(): Promise<Record<string, string>[]> {
  const [header, ...rows] = (await (await fetch(`${stats}/stats;csv`)).text()).trim().split('\n');
  const keys = header.replace(/^# /, '').split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [keys[i], v])));
}

/** Server states HAProxy sees (`UP`, `DOWN`, ...) by server name. */
async function serverStates(): Promise<Record<string, string>> {
  const rows = (await haproxyStats()).filter((r) => r.pxname === 'offramp_replicas' && r.svname.startsWith('replica'));
  return Object.fromEntries(rows.map((r) => [r.svname, r.status]));
}

interface LoadResult {
  ok: number;
  failed: { status: number | string; body: string }[];
  wrong: number;
}

/**
 * `total` classify requests through the load balancer from `CONNECTIONS` concurrent clients; each answer is
 * compared with the reference. `onProgress(done)` is called after each answer.
 */
async function load(total: number, onProgress: (done: number) => void = () => {}): Promise<LoadResult> {
  const r: LoadResult = { ok: 0, failed: [], wrong: 0 };
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++ % bodies.length;
      try {
        const res = await post(lb, bodies[i]);
        const text = await res.text();
        if (res.status !== 200) r.failed.push({ status: res.status, body: text.slice(0, 200) });
        else {
          const a = JSON.parse(text);
          const e = expected[i];
          if (
            a.prediction === e.prediction &&
            a.exit_block === e.exit_block &&
            a.probabilities.join() === e.probabilities.join()
          )
            r.ok++;
          else r.wrong++;
        }
      } catch (err) {
        r.failed.push({ status: 'network error', body: String((err as Error).cause ?? err) });
      }
      onProgress(++done);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  return r;
}

beforeAll(async () => {
  const bin = findHaproxy();
  const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const model = `fashion-cnn=${join(CHECKPOINTS, 'fashion-cnn')}`;
  replicas.push(
    ...(await Promise.all(
      [ports[0], ports[1]].map((p) => startServe(['--model', model, '--max-wait-ms', '2', '--max-batch', '8'], p)),
    )),
  );
  bodies = testImages(16).map((img) =>
    JSON.stringify({ model: 'fashion-cnn', input: { image: img.map((v) => Math.round(v * 1e4) / 1e4) } }),
  );
  // compile each replica's pipelines before the load (slow once on a machine with a cold shader cache)
  for (const r of replicas) for (const b of bodies) await warmUp(r.url, '/v1/classify', JSON.parse(b));
  haproxy = spawnGroup(bin, ['-db', '-f', join(DEPLOY, 'haproxy.cfg')], {
    OFFRAMP_LB_BIND: `127.0.0.1:${ports[2]}`,
    OFFRAMP_LB_STATS: `127.0.0.1:${ports[3]}`,
    OFFRAMP_REPLICA_1: `127.0.0.1:${replicas[0].port}`,
    OFFRAMP_REPLICA_2: `127.0.0.1:${replicas[1].port}`,
  });
  lb = `http://127.0.0.1:${ports[2]}`;
  stats = `http://127.0.0.1:${ports[3]}`;
  await waitFor(
    async () => Object.values(await serverStates()).join() === 'UP,UP',
    `HAProxy to see both replicas UP:\n${haproxy.output()}`,
  );
  // the reference: each input's answer from replica 1 directly (4 decimals keep a body near 5 KB, well
  // inside the request buffer HAProxy keeps for retries)
  expected = [];
  for (const b of bodies) expected.push(await (await post(replicas[0].url, b)).json());
}, 600_000);

afterAll(async () => {
  haproxy?.kill('SIGKILL');
  for (const r of replicas) r.kill('SIGKILL');
  await Promise.all([haproxy?.exited, ...replicas.map((r) => r.exited)]);
});

describe('two replicas behind HAProxy (deploy/haproxy.cfg)', () => {
  it('spreads requests round-robin over both replicas, with the same answers as a replica gives directly', async () => {
    const before = await Promise.all(replicas.map((r) => classifyCount(r.url)));
    const r = await load(160);
    expect(r.failed).toEqual([]);
    expect(r.wrong).toBe(0);
    expect(r.ok).toBe(160);
    const after = await Promise.all(replicas.map((r) => classifyCount(r.url)));
    const served = after.map((a, i) => a - before[i]);
    // every request was answered by exactly one replica, and round-robin gives each about half
    expect(served[0] + served[1]).toBe(160);
    for (const s of served) expect(s).toBeGreaterThanOrEqual(160 * 0.3);
  });

  it('loses at most the requests in flight on a replica killed mid-load, and then every request succeeds', async () => {
    const killed = replicas[1];
    const survivor = replicas[0];
    let killedAt = -1;
    const r = await load(240, (done) => {
      if (done === 80) {
        killedAt = done;
        killed.kill('SIGKILL');
      }
    });
    expect(killedAt).toBe(80);
    expect(await killed.exited).toBe('SIGKILL');
    // Bound: only requests that were in flight on the killed replica can fail, and there are at most
    // CONNECTIONS requests in flight in all. HAProxy's `retry-on conn-failure empty-response` sends
    // those again to the other replica, so in practice none fails.
    const backend = (await haproxyStats()).find((x) => x.pxname === 'offramp_replicas' && x.svname === 'BACKEND')!;
    console.log(
      `replica killed mid-load: ${r.ok} ok, ${r.failed.length} failed of 240; HAProxy retries ${backend.wretr}, redispatches ${backend.wredis}`,
      r.failed,
    );
    // the kill did hit the load: requests sent to the dead replica were tried again
    expect(Number(backend.wretr)).toBeGreaterThan(0);
    expect(r.failed.length).toBeLessThanOrEqual(CONNECTIONS);
    expect(r.wrong).toBe(0);
    expect(r.ok + r.failed.length).toBe(240);

    // the health check on /ready takes the dead replica out (2 failed checks, 1 s apart)
    await waitFor(async () => (await serverStates()).replica2 === 'DOWN', 'HAProxy to mark replica2 DOWN', 10_000);
    expect((await serverStates()).replica1).toBe('UP');
    const before = await classifyCount(survivor.url);
    const later = await load(80);
    expect(later.failed).toEqual([]);
    expect(later.ok).toBe(80);
    expect((await classifyCount(survivor.url)) - before).toBe(80);
  });
});
