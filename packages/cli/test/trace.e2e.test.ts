// Trace files through the built binary: `offramp trace` stores the hashes of the weights and of the data
// slice (and the logits on request); `offramp eval --trace` refuses a trace of other weights or other data,
// a tampered one and a malformed one, reads a version-1 file with a warning, and accepts a byte-order mark.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTraceFile } from '@offramp/policies';
import { beforeAll, describe, expect, it } from 'vitest';
import { evalResultSchema } from '../src/schema.js';
import { cli, ensureBuilt, makeJsonl, makeModel, tempDir } from './helpers.js';

let dir: string;
let model: string;
let data: string;
let file: string;
let doc: Record<string, unknown> & { max_prob: (number | null)[]; entropy: (number | null)[] };

const evalWith = (trace: string, o: { model?: string; data?: string } = {}) =>
  cli([
    'eval',
    '-m',
    o.model ?? model,
    '-d',
    o.data ?? data,
    '-n',
    '50',
    '-b',
    '16',
    '-p',
    'confidence',
    '--measure',
    'none',
    '--trace',
    trace,
    '-o',
    join(dir, 'ev'),
    '--json',
  ]);

function variant(name: string, change: (d: typeof doc) => unknown, prefix = ''): string {
  const f = join(dir, name);
  writeFileSync(f, prefix + JSON.stringify(change(structuredClone(doc))));
  return f;
}

beforeAll(async () => {
  ensureBuilt();
  dir = tempDir('trace');
  model = await makeModel(join(dir, 'mlp'), 3);
  data = makeJsonl(join(dir, 'data.jsonl'), 80, 11);
  file = join(dir, 'mlp.trace.json');
  const r = cli(['trace', '-m', model, '-d', data, '-n', '50', '-b', '16', '-o', file, '--logits', '--json']);
  expect(r.code, r.stderr).toBe(0);
  doc = JSON.parse(readFileSync(file, 'utf8'));
}, 120_000);

describe('trace files record what they were traced from', () => {
  it('version 2 with the SHA-256 of the weights and of the data slice, and the logits on request', () => {
    expect(doc.offramp_trace).toBe(2);
    expect(doc.weights_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(doc.data_sha256).toMatch(/^[0-9a-f]{64}$/);
    const { trace, fingerprint } = parseTraceFile(readFileSync(file, 'utf8'), file);
    expect(fingerprint.weightsSha256).toBe(doc.weights_sha256);
    // 4 exits × 4 classes of logits per sample, whose largest entry is the recorded argmax
    expect(trace.samples[0].logits).toHaveLength(4);
    for (const s of trace.samples)
      s.logits!.forEach((z, e) => {
        expect(z).toHaveLength(4);
        expect(z.indexOf(Math.max(...z))).toBe(s.argmax[e]);
      });
  });

  it('eval --trace replays a matching trace; other weights of the same architecture are refused', async () => {
    const ok = evalWith(file);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain('not recorded again');
    expect(ok.stderr).not.toContain('cannot be checked');
    expect(evalResultSchema.parse(JSON.parse(ok.stdout)).data.n).toBe(50);
    const other = await makeModel(join(dir, 'mlp-other'), 4);
    const r = evalWith(file, { model: other });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `trace ${file} was recorded with other weights (sha ${String(doc.weights_sha256).slice(0, 12)}… ≠ `,
    );
  });

  it('other data with the same size and labels is refused', () => {
    // same labels, inputs nudged: only the hash can tell
    const rows = readFileSync(data, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    rows[7].image[0] = rows[7].image[0] + 1e-3;
    const nudged = join(dir, 'nudged.jsonl');
    writeFileSync(nudged, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
    const r = evalWith(file, { data: nudged });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `trace ${file} was recorded on other data (sha ${String(doc.data_sha256).slice(0, 12)}… ≠ `,
    );
  });

  it('tampered signals and faked predictions are refused, naming the file', () => {
    const big = variant('tampered.json', (d) => ({ ...d, max_prob: d.max_prob.map((v, i) => (i === 5 ? 5 : v)) }));
    const r1 = evalWith(big);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toContain(`${big}: max_prob of sample 1 at exit 1 is 5; max_prob must be in [1/C, 1]`);
    const neg = variant('negative.json', (d) => ({ ...d, entropy: d.entropy.map((v, i) => (i === 0 ? -0.5 : v)) }));
    expect(evalWith(neg).stderr).toContain('entropy of sample 0 at exit 0 is -0.5; entropy must be in [0, ln C]');
    const fake = variant('fake.json', (d) => {
      const fp = (d.final_prediction as number[]).slice();
      fp[2] = (fp[2] + 1) % 4;
      return { ...d, final_prediction: fp };
    });
    expect(evalWith(fake).stderr).toContain('final_prediction of sample 2 is');
  });

  it('a version-1 file is read with a warning that it cannot be checked; a byte-order mark is accepted', () => {
    const v1 = variant('v1.json', ({ weights_sha256: _w, data_sha256: _d, logits: _l, ...d }) => ({
      ...d,
      offramp_trace: 1,
    }));
    const r = evalWith(v1);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `warning: --trace ${v1} is a version-1 trace file: it carries no hash of the weights and data`,
    );
    expect(r.stderr).toContain('cannot be checked against this model and data');
    const bom = variant('bom.json', (d) => d, '\ufeff');
    const b = evalWith(bom);
    expect(b.code, b.stderr).toBe(0);
  });

  it('malformed and deeply nested files fail with an error naming the file', () => {
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"offramp_trace": 2, "num_exits": ');
    const r = evalWith(broken);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--trace: ${broken}: not valid JSON`);
    const deep = join(dir, 'deep.json');
    const text = JSON.stringify(doc);
    writeFileSync(deep, `${text.slice(0, -1)},"meta":{"x":${'['.repeat(50_000)}${']'.repeat(50_000)}}}`);
    const d = evalWith(deep);
    expect(d.code).toBe(2);
    expect(d.stderr).toContain(`--trace: ${deep}: nested deeper than 32 levels at 'meta.x[0]`);
    const missing = evalWith(join(dir, 'nope.json'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`${join(dir, 'nope.json')} does not exist`);
  });
});
