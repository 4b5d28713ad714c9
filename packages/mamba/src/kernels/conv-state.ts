// The decoding conv state left by a prefill: the last K inputs of each sequence, oldest first, zeros before
// the sequence start (the layout conv1dStep of @offramp/core rolls).
//   x: (B, T, D) conv inputs, lengths: (B) u32 (spec.varlen; else every length is T) → state: (B, D, K)
//   state[b, c, j] = x[b, L_b − K + j, c] if L_b − K + j ≥ 0 else 0,   L_b = min(lengths[b], T)
import { defineKernel, ValidationError } from '@offramp/core';

const WG = 256;

export const convStateFromSequence = defineKernel<{ [k: string]: boolean; varlen: boolean }>({
  name: 'convStateFromSequence',
  bindings: {
    x: { access: 'read', type: 'f32' },
    lengths: { access: 'read', type: 'u32' },
    state: { access: 'write', type: 'f32' },
  },
  params: { B: 'u32', T: 'u32', D: 'u32', K: 'u32' },
  spec: { varlen: false },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => [Math.ceil((p.B * p.D * p.K) / WG), 1, 1],
  sizes: (p, s) => {
    if (p.K < 1)
      throw new ValidationError(`kernel 'convStateFromSequence': kernel size K must be at least 1, got ${p.K}`);
    return { x: p.B * p.T * p.D, lengths: s.varlen ? p.B : 1, state: p.B * p.D * p.K };
  },
  wgsl: (s) => `
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = linear_wg(wg, nwg) * ${WG}u + li;
  if (i >= P.B * P.D * P.K) { return; }
  let j = i % P.K;
  let bc = i / P.K;
  let c = bc % P.D;
  let b = bc / P.D;
  let L = ${s.varlen ? 'min(lengths[b], P.T)' : 'P.T'};
  // source time L − K + j, when it is not before the start
  var v = 0.0;
  if (L + j >= P.K) { v = x[(b * P.T + L + j - P.K) * P.D + c]; }
  state[i] = v;
}`,
  reference: ({ x, lengths, state }, p, s) => {
    const { B, T, D, K } = p;
    for (let b = 0; b < B; b++) {
      const L = s.varlen ? Math.min(lengths[b], T) : T;
      for (let c = 0; c < D; c++) {
        for (let j = 0; j < K; j++) {
          const t = L - K + j;
          state[(b * D + c) * K + j] = t >= 0 ? x[(b * T + t) * D + c] : 0;
        }
      }
    }
  },
  testInputs: (p, s, rand) => {
    if (!s.varlen) return {};
    const lengths = new Uint32Array(Math.max(1, p.B));
    for (let b = 0; b < p.B; b++) lengths[b] = b % 4 === 0 ? p.T + 2 : b % 4 === 1 ? 0 : Math.floor(rand() * (p.T + 1));
    return { lengths };
  },
  testCases: [
    { params: { B: 1, T: 1, D: 1, K: 1 }, label: 'all ones' },
    { params: { B: 2, T: 2, D: 5, K: 4 }, label: 'T < K: zero padding' },
    { params: { B: 3, T: 17, D: 67, K: 4 }, label: 'B=3 T=17 D=67 K=4' },
    { params: { B: 9, T: 6, D: 13, K: 4 }, spec: { varlen: true }, label: 'varlen (0, > T, random)' },
    { params: { B: 2, T: 40, D: 1031, K: 7 }, label: 'D=1031 K=7' },
  ],
  tolerance: 'exact',
});
