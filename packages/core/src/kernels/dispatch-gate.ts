// Indirect dispatch arguments gated by a live mask (generation/gpu-loop.ts): for every slot i < count,
//   args[3i .. 3i+2] = dims[3i .. 3i+2] when some live[r] ≠ 0, else (0, 0, 0)
// so the dispatches that read their workgroup counts from args run in full or not at all. With put = 1,
// slot `slot` of dims is first set to (x, y, z): a slot is added in the recorded command stream, without a
// host write (which would split the submission).
//   live: (rows) u32; dims, args: (3 · count) u32 (args is bound as the indirect buffer of later dispatches)
import { defineKernel } from '../runtime/kernel.js';

const WG = 64;

export const dispatchGate = defineKernel({
  name: 'dispatchGate',
  bindings: {
    live: { access: 'read', type: 'u32' },
    dims: { access: 'read_write', type: 'u32' },
    args: { access: 'write', type: 'u32' },
  },
  params: { rows: 'u32', count: 'u32', put: 'u32', slot: 'u32', x: 'u32', y: 'u32', z: 'u32' },
  workgroupSize: () => [WG, 1, 1],
  dispatch: () => [1, 1, 1],
  sizes: (p) => ({ live: Math.max(1, p.rows), dims: 3 * Math.max(1, p.count), args: 3 * Math.max(1, p.count) }),
  wgsl: () => `
@compute @workgroup_size(${WG}) fn main(@builtin(local_invocation_index) li: u32) {
  var on = 0u;
  for (var r = 0u; r < P.rows; r++) { if (live[r] != 0u) { on = 1u; } }
  for (var i = li; i < P.count; i += ${WG}u) {
    var d = vec3u(dims[3u * i], dims[3u * i + 1u], dims[3u * i + 2u]);
    if (P.put != 0u && i == P.slot) {
      d = vec3u(P.x, P.y, P.z);
      dims[3u * i] = d.x; dims[3u * i + 1u] = d.y; dims[3u * i + 2u] = d.z;
    }
    args[3u * i] = d.x * on; args[3u * i + 1u] = d.y * on; args[3u * i + 2u] = d.z * on;
  }
}`,
  reference: ({ live, dims, args }, p) => {
    let on = 0;
    for (let r = 0; r < p.rows; r++) if (live[r] !== 0) on = 1;
    if (p.put && p.slot < p.count) {
      dims[3 * p.slot] = p.x;
      dims[3 * p.slot + 1] = p.y;
      dims[3 * p.slot + 2] = p.z;
    }
    for (let i = 0; i < 3 * p.count; i++) args[i] = dims[i] * on;
  },
  testCases: [
    { params: { rows: 8, count: 5, put: 0, slot: 0, x: 0, y: 0, z: 0 }, label: '8 rows, 5 slots' },
    { params: { rows: 1, count: 3, put: 1, slot: 2, x: 7, y: 1, z: 1 }, label: '1 row, slot 2 set' },
    { params: { rows: 3, count: 70, put: 1, slot: 65, x: 4, y: 9, z: 2 }, label: '3 rows, 70 slots, slot 65 set' },
  ],
  testInputs: (p, _s, rand) => ({
    // about half the cases have no live row
    live: Uint32Array.from({ length: Math.max(1, p.rows) }, () => (rand() < 0.1 ? 1 : 0)),
    dims: Uint32Array.from({ length: 3 * Math.max(1, p.count) }, () => 1 + Math.floor(rand() * 1000)),
  }),
  tolerance: 'exact',
});
