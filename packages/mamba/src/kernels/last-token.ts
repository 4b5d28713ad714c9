// The hidden state at each sequence's last valid position (pooling for sequence classification):
//   h: (B, T, W), lengths: (B) u32 → y: (B, W),  y[b, :] = h[b, min(lengths[b], T) − 1, :]
// A length of 0 gives a row of zeros.
import { defineKernel } from '@offramp/core';

const WG = 256;

export const lastTokenRows = defineKernel({
  name: 'lastTokenRows',
  bindings: {
    h: { access: 'read', type: 'f32' },
    lengths: { access: 'read', type: 'u32' },
    y: { access: 'write', type: 'f32' },
  },
  params: { B: 'u32', T: 'u32', W: 'u32' },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => [Math.ceil((p.B * p.W) / WG), 1, 1],
  sizes: (p) => ({ h: p.B * p.T * p.W, lengths: p.B, y: p.B * p.W }),
  wgsl: () => `
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = linear_wg(wg, nwg) * ${WG}u + li;
  if (i >= P.B * P.W) { return; }
  let b = i / P.W;
  let L = min(lengths[b], P.T);
  if (L == 0u) { y[i] = 0.0; return; }
  y[i] = h[(b * P.T + L - 1u) * P.W + (i - b * P.W)];
}`,
  reference: ({ h, lengths, y }, p) => {
    for (let b = 0; b < p.B; b++) {
      const L = Math.min(lengths[b], p.T);
      for (let k = 0; k < p.W; k++) y[b * p.W + k] = L === 0 ? 0 : h[(b * p.T + L - 1) * p.W + k];
    }
  },
  testInputs: (p, _s, rand) => {
    const lengths = new Uint32Array(Math.max(1, p.B));
    for (let b = 0; b < p.B; b++)
      lengths[b] = b % 4 === 0 ? p.T : b % 4 === 1 ? p.T + 5 : b % 4 === 2 ? 0 : 1 + Math.floor(rand() * p.T);
    return { lengths };
  },
  testCases: [
    { params: { B: 1, T: 1, W: 1 }, label: 'one of one' },
    { params: { B: 9, T: 17, W: 13 }, label: 'lengths T, > T, 0, random' },
    { params: { B: 3, T: 64, W: 768 }, label: 'W 768' },
  ],
  tolerance: 'exact',
});
