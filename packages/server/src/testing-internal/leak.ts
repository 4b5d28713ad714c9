// The leak check of bench/leak.ts and leak.test.ts: sends `total` classify requests (a fixed cycle of
// bodies, `concurrency` at a time) and samples the server's memory from its /metrics every `every`
// requests: resident set (process_resident_memory_bytes), V8 heap in use, and the GPU buffer pool (bytes
// held, bytes handed out). Every answer must be 200; the first failure stops the run with its body.

export interface MemorySample {
  /** Requests answered when the sample was taken. */
  requests: number;
  rssBytes: number;
  heapUsedBytes: number;
  poolBytes: number;
  poolInUseBytes: number;
}

export async function sampleMemory(url: string, requests: number): Promise<MemorySample> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const num = (name: string) => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (!m) throw new Error(`/metrics has no ${name}`);
    return Number(m[1]);
  };
  return {
    requests,
    rssBytes: num('process_resident_memory_bytes'),
    heapUsedBytes: num('nodejs_heap_size_used_bytes'),
    poolBytes: num('offramp_buffer_pool_bytes'),
    poolInUseBytes: num('offramp_buffer_pool_in_use_bytes'),
  };
}

export async function runLeakCheck(o: {
  url: string;
  bodies: string[];
  total: number;
  every: number;
  concurrency: number;
  /** How to sample (default: the server's /metrics). */
  sample?: (requests: number) => Promise<MemorySample>;
  onSample?: (s: MemorySample) => void;
}): Promise<MemorySample[]> {
  const sample = o.sample ?? ((n: number) => sampleMemory(o.url, n));
  const samples = [await sample(0)];
  o.onSample?.(samples[0]);
  let next = 0;
  let done = 0;
  while (done < o.total) {
    const stop = Math.min(o.total, done + o.every);
    const worker = async () => {
      while (next < stop) {
        const body = o.bodies[next++ % o.bodies.length];
        const r = await fetch(`${o.url}/v1/classify`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        const text = await r.text();
        if (r.status !== 200) throw new Error(`request ${next} got ${r.status}: ${text.slice(0, 300)}`);
        done++;
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    const s = await sample(done);
    samples.push(s);
    o.onSample?.(s);
  }
  return samples;
}
