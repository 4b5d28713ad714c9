// Attention benchmark: the prefill attention kernel built for any head dimension (headDim4 0) against the
// same kernel with the head size fixed when the pipeline is built (headDim4 = ⌈dh / 4⌉, what the encoder
// uses), side by side in one run on the same adapter, for the head sizes of the engine benchmark (64), the
// shipped IMDB encoder (16) and one between (32). Outputs must agree bit for bit. Median of 5 timed runs
// per variant after a warm-up, alternating. Writes bench/results/attention.json. `pnpm bench:attention`.
import './dawn-globals.js';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { attention } from '../src/kernels/attention.js';
import { createGpuDevice } from '../src/runtime/create-device.js';
import { mulberry32, randomArray } from '../src/util/random.js';

const RUNS = 5;
const cases = [
  { label: 'engine benchmark (dh 64)', B: 32, T: 128, d: 256, heads: 4 },
  { label: 'imdb-encoder (dh 16)', B: 32, T: 256, d: 32, heads: 2 },
  { label: 'dh 32', B: 16, T: 256, d: 128, heads: 4 },
];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const device = await createGpuDevice();
console.log(`adapter: ${device.describe()}; ${cpus().length} CPUs, load ${loadavg()[0].toFixed(2)}`);
const results = [];
for (const c of cases) {
  const { B, T, d, heads } = c;
  const rand = mulberry32(B * 1000 + d);
  const qkv = device.tensor('f32', [B * T * 3 * d], randomArray(B * T * 3 * d, rand), 'qkv');
  const lengths = device.tensor(
    'u32',
    [B],
    Uint32Array.from({ length: B }, (_, b) => T - ((b * 5) % 17)),
    'lengths',
  );
  const params = { B, T, d, heads, scale: 1 / Math.sqrt(d / heads) };
  const variants = [0, Math.ceil(d / heads / 4)].map((headDim4) => ({
    headDim4,
    out: device.tensor('f32', [B * T * d], undefined, `out ${headDim4}`),
    ms: [] as number[],
  }));
  const run = async (v: (typeof variants)[number]) => {
    const t0 = performance.now();
    device.dispatch(attention, { qkv, lengths, out: v.out }, params, { causal: false, headDim4: v.headDim4 });
    await device.sync();
    return performance.now() - t0;
  };
  for (const v of variants) await run(v); // pipeline build and warm-up
  for (let r = 0; r < RUNS; r++) for (const v of variants) v.ms.push(await run(v));
  const [a, b] = await Promise.all(variants.map(async (v) => (await device.read(v.out)) as Float32Array));
  const identical = a.every((x, i) => Object.is(x, b[i]));
  const flops = 4 * B * T * T * d;
  const generic = median(variants[0].ms);
  const fixed = median(variants[1].ms);
  const row = {
    ...c,
    head_dim: d / heads,
    generic_ms: generic,
    fixed_ms: fixed,
    generic_gflops: flops / generic / 1e6,
    fixed_gflops: flops / fixed / 1e6,
    ratio: generic / fixed,
    identical,
    runs: { generic: variants[0].ms, fixed: variants[1].ms },
  };
  results.push(row);
  console.log(
    `${c.label}: B ${B}, T ${T}, d ${d}, ${heads} heads — any head dim ${generic.toFixed(1)} ms (${row.generic_gflops.toFixed(2)} GFLOP/s), fixed ${fixed.toFixed(1)} ms (${row.fixed_gflops.toFixed(2)} GFLOP/s): ratio ${row.ratio.toFixed(2)}; outputs ${identical ? 'identical' : 'DIFFER'}`,
  );
  for (const v of variants) v.out.dispose();
  qkv.dispose();
  lengths.dispose();
}
const file = new URL('./results/attention.json', import.meta.url);
writeFileSync(
  file,
  `${JSON.stringify({ adapter: device.describe(), cpus: cpus().length, load: loadavg()[0], runs: RUNS, results }, null, 1)}\n`,
);
console.log(`wrote ${file.pathname}`);
device.destroy();
if (results.some((r) => !r.identical)) process.exit(1);
