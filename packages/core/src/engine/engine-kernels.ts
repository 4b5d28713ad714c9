// Kernels of the early-exit loop itself: deciding (device mode), retiring exited rows, compacting the live
// rows, moving row-carried tensors, and patching the uniforms and indirect dispatch arguments of the next
// group of dispatches from a precomputed table indexed by the live-row count. All read the live count from
// GPU memory so no host round trip is needed between blocks.
//   signals: (maxRows, 8) f32 as written by `exitSignals`; flags: (maxRows) u32; sampleIds: (maxRows) u32
import { defineKernel } from '../runtime/kernel.js';
import type { DevicePolicy } from './policy.js';

export const SIGNAL_STRIDE = 8;

/** Moves rows of any 4-byte tensor: dst[r, :] = src[idx[r], :] for r < count[0]. (rows, width) */
export const gatherCarried = defineKernel({
  name: 'gatherCarried',
  bindings: {
    count: { access: 'read', type: 'u32' },
    idx: { access: 'read', type: 'u32' },
    src: { access: 'read', type: 'u32', raw: true },
    dst: { access: 'write', type: 'u32', raw: true },
  },
  params: { maxRows: 'u32', width: 'u32' },
  workgroupSize: () => [256, 1, 1],
  linear: true,
  dispatch: (p) => [Math.ceil((p.maxRows * p.width) / 256), 1, 1],
  sizes: (p) => ({ count: 1, idx: p.maxRows, src: p.maxRows * p.width, dst: p.maxRows * p.width }),
  wgsl: () => `
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = linear_wg(wg, nwg) * 256u + li;
  let r = i / P.width;
  if (r >= min(count[0], P.maxRows)) { return; }
  let j = i - r * P.width;
  dst[i] = src[idx[r] * P.width + j];
}`,
  reference: ({ count, idx, src, dst }, p) => {
    const n = Math.min(count[0], p.maxRows);
    for (let r = 0; r < n; r++) for (let j = 0; j < p.width; j++) dst[r * p.width + j] = src[idx[r] * p.width + j];
  },
  testCases: [
    { params: { maxRows: 7, width: 33 } },
    { params: { maxRows: 1, width: 1 } },
    { params: { maxRows: 32, width: 300 } },
  ],
  testInputs: (p, _s, rand) => {
    const live = 1 + Math.floor(rand() * p.maxRows);
    const idx = new Uint32Array(p.maxRows);
    let k = 0;
    for (let r = 0; r < p.maxRows && k < live; r++) if (rand() < 0.7 || p.maxRows - r <= live - k) idx[k++] = r;
    return { count: new Uint32Array([k]), idx };
  },
  tolerance: 'exact',
});

/**
 * Records the exit signals of every live row into the trace and, for rows that leave, copies the logits
 * and the exit index into the per-sample output (sid, classes + 2): [logits | exit index | unused].
 */
export const retireRows = defineKernel({
  name: 'retireRows',
  bindings: {
    count: { access: 'read', type: 'u32' },
    flags: { access: 'read', type: 'u32' },
    sampleIds: { access: 'read', type: 'u32' },
    logits: { access: 'read', type: 'f32' },
    signals: { access: 'read', type: 'f32' },
    out: { access: 'read_write', type: 'f32' },
    trace: { access: 'read_write', type: 'f32' },
  },
  params: { maxRows: 'u32', classes: 'u32', exitIndex: 'u32', numExits: 'u32', batch: 'u32' },
  workgroupSize: () => [64, 1, 1],
  dispatch: (p) => [Math.ceil(p.maxRows / 64), 1, 1],
  sizes: (p) => ({
    count: 1,
    flags: p.maxRows,
    sampleIds: p.maxRows,
    logits: p.maxRows * p.classes,
    signals: p.maxRows * 8,
    out: p.batch * (p.classes + 2),
    trace: p.batch * p.numExits * 8,
  }),
  wgsl: () => `
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  if (r >= min(count[0], P.maxRows)) { return; }
  let sid = sampleIds[r];
  if (sid >= P.batch) { return; }
  let t = (sid * P.numExits + P.exitIndex) * 8u;
  for (var k = 0u; k < 8u; k++) { trace[t + k] = signals[r * 8u + k]; }
  if (flags[r] != 0u) {
    let o = sid * (P.classes + 2u);
    for (var c = 0u; c < P.classes; c++) { out[o + c] = logits[r * P.classes + c]; }
    out[o + P.classes] = f32(P.exitIndex);
  }
}`,
  reference: ({ count, flags, sampleIds, logits, signals, out, trace }, p) => {
    const n = Math.min(count[0], p.maxRows);
    for (let r = 0; r < n; r++) {
      const sid = sampleIds[r];
      if (sid >= p.batch) continue;
      const t = (sid * p.numExits + p.exitIndex) * 8;
      for (let k = 0; k < 8; k++) trace[t + k] = signals[r * 8 + k];
      if (flags[r]) {
        const o = sid * (p.classes + 2);
        for (let c = 0; c < p.classes; c++) out[o + c] = logits[r * p.classes + c];
        out[o + p.classes] = p.exitIndex;
      }
    }
  },
  testCases: [
    { params: { maxRows: 5, classes: 3, exitIndex: 1, numExits: 3, batch: 9 } },
    { params: { maxRows: 70, classes: 10, exitIndex: 0, numExits: 1, batch: 70 } },
  ],
  testInputs: (p, _s, rand) => {
    const ids = Array.from({ length: p.batch }, (_, i) => i).sort(() => rand() - 0.5);
    return {
      count: new Uint32Array([Math.max(1, Math.floor(rand() * p.maxRows))]),
      flags: Uint32Array.from({ length: p.maxRows }, () => (rand() < 0.5 ? 1 : 0)),
      sampleIds: Uint32Array.from(ids.slice(0, p.maxRows)),
    };
  },
  tolerance: 'exact',
});

/**
 * Stable compaction of the live rows (one invocation; maxRows is small): idx lists the rows that stay,
 * sampleIds is compacted in place, count becomes the number of rows that stay, and history[exit] records it.
 */
export const compactRows = defineKernel({
  name: 'compactRows',
  bindings: {
    count: { access: 'read_write', type: 'u32' },
    flags: { access: 'read', type: 'u32' },
    sampleIds: { access: 'read_write', type: 'u32' },
    idx: { access: 'write', type: 'u32' },
    history: { access: 'read_write', type: 'u32', raw: true },
  },
  params: { maxRows: 'u32', exitIndex: 'u32' },
  workgroupSize: () => [1, 1, 1],
  dispatch: () => [1, 1, 1],
  sizes: (p) => ({ count: 1, flags: p.maxRows, sampleIds: p.maxRows, idx: p.maxRows, history: p.exitIndex + 1 }),
  wgsl: () => `
@compute @workgroup_size(1) fn main() {
  let n = min(count[0], P.maxRows);
  var k = 0u;
  for (var r = 0u; r < n; r++) {
    if (flags[r] == 0u) { idx[k] = r; sampleIds[k] = sampleIds[r]; k++; }
  }
  for (var r = k; r < P.maxRows; r++) { idx[r] = 0u; }
  count[0] = k;
  history[P.exitIndex] = k;
}`,
  reference: ({ count, flags, sampleIds, idx, history }, p) => {
    const n = Math.min(count[0], p.maxRows);
    let k = 0;
    for (let r = 0; r < n; r++) {
      if (flags[r] === 0) {
        idx[k] = r;
        sampleIds[k] = sampleIds[r];
        k++;
      }
    }
    for (let r = k; r < p.maxRows; r++) idx[r] = 0;
    count[0] = k;
    history[p.exitIndex] = k;
  },
  testCases: [
    { params: { maxRows: 9, exitIndex: 2 } },
    { params: { maxRows: 1, exitIndex: 0 } },
    { params: { maxRows: 256, exitIndex: 5 } },
  ],
  testInputs: (p, _s, rand) => ({
    count: new Uint32Array([Math.floor(rand() * (p.maxRows + 1))]),
    flags: Uint32Array.from({ length: p.maxRows }, () => (rand() < 0.4 ? 1 : 0)),
  }),
  tolerance: 'exact',
});

/**
 * Writes the uniforms and indirect dispatch arguments of the next group of dispatches:
 * control[map[i]] = table[min(count[0], maxRows) · width + i]. table: (maxRows + 1, width) u32.
 */
export const patchControl = defineKernel({
  name: 'patchControl',
  bindings: {
    count: { access: 'read', type: 'u32' },
    table: { access: 'read', type: 'u32' },
    map: { access: 'read', type: 'u32' },
    control: { access: 'read_write', type: 'u32' },
  },
  params: { maxRows: 'u32', width: 'u32', controlWords: 'u32' },
  workgroupSize: () => [64, 1, 1],
  dispatch: (p) => [Math.ceil(p.width / 64), 1, 1],
  sizes: (p) => ({ count: 1, table: (p.maxRows + 1) * p.width, map: p.width, control: p.controlWords }),
  wgsl: () => `
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= P.width) { return; }
  let r = min(count[0], P.maxRows);
  control[map[i]] = table[r * P.width + i];
}`,
  reference: ({ count, table, map, control }, p) => {
    const r = Math.min(count[0], p.maxRows);
    for (let i = 0; i < p.width; i++) control[map[i]] = table[r * p.width + i];
  },
  testCases: [
    { params: { maxRows: 4, width: 70, controlWords: 300 } },
    { params: { maxRows: 1, width: 1, controlWords: 1 } },
  ],
  testInputs: (p, _s, rand) => {
    const map = Uint32Array.from({ length: p.controlWords }, (_, i) => i)
      .sort(() => rand() - 0.5)
      .slice(0, p.width);
    const table = Uint32Array.from({ length: (p.maxRows + 1) * p.width }, () => Math.floor(rand() * 1e6));
    return { count: new Uint32Array([Math.floor(rand() * (p.maxRows + 3))]), map, table };
  },
  tolerance: 'exact',
});

/** Device-mode decision for one exit: flags[r] = isLast || policy_decide(sampleIds[r], exit, signals[r]). */
export function decideKernel(policy: { name: string; device: DevicePolicy }, numExits: number, numClasses: number) {
  const dp = policy.device;
  const stateSize = Math.max(1, dp.stateSize);
  return defineKernel({
    name: `decide:${policy.name}`,
    bindings: {
      count: { access: 'read', type: 'u32' },
      sampleIds: { access: 'read', type: 'u32' },
      signals: { access: 'read', type: 'f32' },
      policy_state: { access: 'read_write', type: 'f32' },
      flags: { access: 'write', type: 'u32' },
    },
    params: { maxRows: 'u32', exitIndex: 'u32', isLast: 'u32', cost: 'f32', batch: 'u32' },
    spec: { code: dp.code, stateSize, numExits, numClasses },
    workgroupSize: () => [64, 1, 1],
    dispatch: (p) => [Math.ceil(p.maxRows / 64), 1, 1],
    sizes: (p) => ({
      count: 1,
      sampleIds: p.maxRows,
      signals: p.maxRows * 8,
      policy_state: p.batch * stateSize,
      flags: p.maxRows,
    }),
    wgsl: () => `
struct Signals { max_prob: f32, entropy: f32, margin: f32, argmax: u32, gate: f32, similarity: f32, cost: f32 }
const NUM_EXITS: u32 = ${numExits}u;
const NUM_CLASSES: u32 = ${numClasses}u;
const STATE_SIZE: u32 = ${stateSize}u;
${dp.code}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  if (r >= min(count[0], P.maxRows)) { return; }
  let sid = sampleIds[r];
  let b = r * 8u;
  let am = signals[b + 3u];
  let s = Signals(signals[b], signals[b + 1u], signals[b + 2u], select(u32(am), 0xffffffffu, am < 0.0), signals[b + 4u], signals[b + 5u], P.cost);
  let leave = policy_decide(sid, P.exitIndex, s);
  flags[r] = select(0u, 1u, leave || P.isLast != 0u);
}`,
    reference: () => {
      throw new Error('decide kernels have no reference: host mode runs the policy in TypeScript');
    },
    testCases: [],
    tolerance: 'exact',
  });
}
