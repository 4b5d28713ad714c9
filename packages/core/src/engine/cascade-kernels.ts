// The cascade's combination kernel: after stage k (1-based) of a cascade, each live row adds the softmax of
// the stage's logits to its running sum and gets the combined output log(sum / k), the log of the mean of
// the members' softmaxes so far.
//   logits: (rows, C) the stage's output for the live rows (compact); sampleIds: (rows) each row's sample;
//   probSum: (batch, C) per sample, read and written; combined: (rows, C)
import { defineKernel } from '../runtime/kernel.js';

export const cascadeCombine = defineKernel({
  name: 'cascadeCombine',
  bindings: {
    logits: { access: 'read', type: 'f32' },
    sampleIds: { access: 'read', type: 'u32' },
    probSum: { access: 'read_write', type: 'f32' },
    combined: { access: 'write', type: 'f32' },
  },
  params: { rows: 'u32', classes: 'u32', batch: 'u32', members: 'u32' },
  workgroupSize: () => [64, 1, 1],
  linear: true,
  dispatch: (p) => [Math.ceil(p.rows / 64), 1, 1],
  sizes: (p) => ({
    logits: p.rows * p.classes,
    sampleIds: p.rows,
    probSum: p.batch * p.classes,
    combined: p.rows * p.classes,
  }),
  wgsl: () => `
@compute @workgroup_size(64) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let r = linear_wg(wg, nwg) * 64u + li;
  if (r >= P.rows) { return; }
  let sid = sampleIds[r];
  if (sid >= P.batch) { return; }
  let b = r * P.classes;
  let a = sid * P.classes;
  var m = logits[b];
  for (var j = 1u; j < P.classes; j++) { m = max(m, logits[b + j]); }
  var s = 0.0;
  for (var j = 0u; j < P.classes; j++) { s += exp(logits[b + j] - m); }
  let k = f32(P.members);
  for (var j = 0u; j < P.classes; j++) {
    let q = probSum[a + j] + exp(logits[b + j] - m) / s;
    probSum[a + j] = q;
    combined[b + j] = log(q / k);
  }
}`,
  reference: (bufs, p) => {
    const { logits, sampleIds, probSum, combined } = bufs;
    const C = p.classes;
    for (let r = 0; r < p.rows; r++) {
      const sid = sampleIds[r];
      if (sid >= p.batch) continue;
      const row = Array.from(logits.subarray(r * C, (r + 1) * C));
      const m = Math.max(...row);
      const e = row.map((z) => Math.exp(z - m));
      const total = e.reduce((x, y) => x + y, 0);
      for (let j = 0; j < C; j++) {
        const q = Math.fround(probSum[sid * C + j] + e[j] / total);
        probSum[sid * C + j] = q;
        combined[r * C + j] = Math.log(q / p.members);
      }
    }
  },
  testCases: [
    { params: { rows: 5, classes: 10, batch: 8, members: 2 } },
    { params: { rows: 70, classes: 3, batch: 80, members: 3 }, scale: 20 },
  ],
  tolerance: 'transcendental',
  testInputs: (p, _s, rand) => {
    // distinct sample ids in range, and running sums that are sums of (members − 1) probability rows
    const ids = Array.from({ length: p.batch }, (_, i) => i);
    for (let i = ids.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [ids[i], ids[j]] = [ids[j], ids[i]];
    }
    const probSum = new Float32Array(p.batch * p.classes);
    for (let s = 0; s < p.batch; s++)
      for (let k = 0; k < p.members - 1; k++) {
        const w = Array.from({ length: p.classes }, () => rand());
        const t = w.reduce((x, y) => x + y, 0);
        for (let j = 0; j < p.classes; j++) probSum[s * p.classes + j] += w[j] / t;
      }
    return { sampleIds: Uint32Array.from(ids.slice(0, p.rows)), probSum };
  },
});
