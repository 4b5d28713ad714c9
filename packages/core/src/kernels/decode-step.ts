// Kernels of the decoder's device-side decode loop (generation/gpu-loop.ts): the exit decision of every row
// from its exit signals, the per-row live mask applied to a block's output, and the end of a step
// (record the sampled token and its exit block, feed it to the next step, stop tokens).
//   rows are cache rows 0..rows−1; live, exitBlock, done, pos, ids: (rows) u32
import { defineKernel } from '../runtime/kernel.js';
import { SIGNALS_PER_ROW } from './exit-signals.js';

const WG = 64;

/** Exit rule codes of exitDecide. */
export const EXIT_RULE_CODE = { never: 0, fixed: 1, maxProb: 2, entropy: 3, margin: 4, saturation: 5 } as const;

/**
 * At exit block `block`: an live row leaves when `last` is set or its rule holds on its signals
 * (maxProb ≥ t, entropy ≤ t, margin ≥ t, similarity ≥ t; fixed: always; never: not); a leaving row becomes
 * inactive, records the block and copies its logits row z → sel. One workgroup per row.
 */
export const exitDecide = defineKernel({
  name: 'exitDecide',
  bindings: {
    signals: { access: 'read', type: 'f32' },
    z: { access: 'read', type: 'f32' },
    live: { access: 'read_write', type: 'u32' },
    exitBlock: { access: 'read_write', type: 'u32' },
    sel: { access: 'read_write', type: 'f32' },
  },
  params: { rows: 'u32', V: 'u32', block: 'u32', rule: 'u32', threshold: 'f32', last: 'u32' },
  workgroupSize: () => [WG, 1, 1],
  linear: true,
  dispatch: (p) => [p.rows, 1, 1],
  sizes: (p) => ({
    signals: p.rule >= 2 ? p.rows * SIGNALS_PER_ROW : 1,
    z: p.rows * p.V,
    live: p.rows,
    exitBlock: p.rows,
    sel: p.rows * p.V,
  }),
  wgsl: () => `
var<workgroup> go: u32;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let r = linear_wg(wg, nwg);
  if (r >= P.rows) { return; }
  if (li == 0u) {
    var leave = false;
    if (live[r] != 0u) {
      let b = r * ${SIGNALS_PER_ROW}u;
      let t = P.threshold;
      switch (P.rule) {
        case 1u: { leave = true; }
        case 2u: { leave = signals[b] >= t; }
        case 3u: { leave = signals[b + 1u] <= t; }
        case 4u: { leave = signals[b + 2u] >= t; }
        case 5u: { leave = signals[b + 5u] >= t; }
        default: { leave = false; }
      }
      leave = leave || P.last != 0u;
    }
    go = select(0u, 1u, leave);
  }
  let g = workgroupUniformLoad(&go);
  if (g == 0u) { return; }
  for (var j = li; j < P.V; j += ${WG}u) { sel[r * P.V + j] = z[r * P.V + j]; }
  if (li == 0u) { live[r] = 0u; exitBlock[r] = P.block; }
}`,
  reference: ({ signals, z, live, exitBlock, sel }, p) => {
    for (let r = 0; r < p.rows; r++) {
      if (!live[r]) continue;
      const b = r * SIGNALS_PER_ROW;
      const t = p.threshold;
      const leave =
        p.last !== 0 ||
        (p.rule === 1
          ? true
          : p.rule === 2
            ? signals[b] >= t
            : p.rule === 3
              ? signals[b + 1] <= t
              : p.rule === 4
                ? signals[b + 2] >= t
                : p.rule === 5
                  ? signals[b + 5] >= t
                  : false);
      if (!leave) continue;
      for (let j = 0; j < p.V; j++) sel[r * p.V + j] = z[r * p.V + j];
      live[r] = 0;
      exitBlock[r] = p.block;
    }
  },
  testCases: [
    { params: { rows: 5, V: 37, block: 1, rule: 2, threshold: 0.1, last: 0 } },
    { params: { rows: 9, V: 100, block: 3, rule: 3, threshold: 0.5, last: 0 } },
    { params: { rows: 3, V: 7, block: 4, rule: 0, threshold: 0, last: 1 } },
  ],
  testInputs: (p, _s, rand) => ({
    live: Uint32Array.from({ length: p.rows }, () => (rand() < 0.7 ? 1 : 0)),
    exitBlock: new Uint32Array(p.rows).fill(99),
  }),
  tolerance: 'exact',
});

/** h[r, :] = live[r] ? hNew[r, :] : h[r, :] (inactive rows keep their state). (rows, width) */
export const maskRows = defineKernel({
  name: 'maskRows',
  bindings: {
    live: { access: 'read', type: 'u32' },
    hNew: { access: 'read', type: 'f32' },
    h: { access: 'read_write', type: 'f32' },
  },
  params: { rows: 'u32', width: 'u32' },
  workgroupSize: () => [256, 1, 1],
  linear: true,
  dispatch: (p) => [Math.ceil((p.rows * p.width) / 256), 1, 1],
  sizes: (p) => ({ live: p.rows, hNew: p.rows * p.width, h: p.rows * p.width }),
  wgsl: () => `
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = linear_wg(wg, nwg) * 256u + li;
  if (i >= P.rows * P.width) { return; }
  if (live[i / P.width] != 0u) { h[i] = hNew[i]; }
}`,
  reference: ({ live, hNew, h }, p) => {
    for (let i = 0; i < p.rows * p.width; i++) if (live[Math.floor(i / p.width)]) h[i] = hNew[i];
  },
  testCases: [{ params: { rows: 5, width: 33 } }, { params: { rows: 1, width: 300 } }],
  testInputs: (p, _s, rand) => ({ live: Uint32Array.from({ length: p.rows }, () => (rand() < 0.5 ? 1 : 0)) }),
  tolerance: 'exact',
});

/**
 * End of a decode step, per row not yet done: (advance) pos += 1 for the token just run; out[slot, r] =
 * (token, exit block); ids[r] = token (the next step's input); done when the token is a stop token.
 * Rows done before the step get (0xffffffff, 0xffffffff). Then live = !done, exitBlock = lastBlock.
 *   out: (slots, rows, 2) u32; stop: (numStop ≥ 1) u32
 */
export const stepEnd = defineKernel({
  name: 'stepEnd',
  bindings: {
    tokens: { access: 'read', type: 'u32' },
    stop: { access: 'read', type: 'u32' },
    exitBlock: { access: 'read_write', type: 'u32' },
    live: { access: 'read_write', type: 'u32' },
    done: { access: 'read_write', type: 'u32' },
    pos: { access: 'read_write', type: 'u32' },
    ids: { access: 'read_write', type: 'u32' },
    out: { access: 'read_write', type: 'u32' },
  },
  params: { rows: 'u32', slot: 'u32', advance: 'u32', numStop: 'u32', lastBlock: 'u32' },
  workgroupSize: () => [64, 1, 1],
  dispatch: (p) => [Math.ceil(p.rows / 64), 1, 1],
  sizes: (p) => ({
    tokens: p.rows,
    stop: Math.max(1, p.numStop),
    exitBlock: p.rows,
    live: p.rows,
    done: p.rows,
    pos: p.rows,
    ids: p.rows,
    out: (p.slot + 1) * p.rows * 2,
  }),
  wgsl: () => `
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  if (r >= P.rows) { return; }
  let o = (P.slot * P.rows + r) * 2u;
  if (done[r] != 0u) {
    out[o] = 0xffffffffu; out[o + 1u] = 0xffffffffu;
    live[r] = 0u;
    return;
  }
  if (P.advance != 0u) { pos[r] = pos[r] + 1u; }
  let t = tokens[r];
  out[o] = t; out[o + 1u] = exitBlock[r];
  ids[r] = t;
  var d = 0u;
  for (var k = 0u; k < P.numStop; k++) { if (stop[k] == t) { d = 1u; } }
  done[r] = d;
  live[r] = 1u - d;
  exitBlock[r] = P.lastBlock;
}`,
  reference: ({ tokens, stop, exitBlock, live, done, pos, ids, out }, p) => {
    for (let r = 0; r < p.rows; r++) {
      const o = (p.slot * p.rows + r) * 2;
      if (done[r]) {
        out[o] = 0xffffffff;
        out[o + 1] = 0xffffffff;
        live[r] = 0;
        continue;
      }
      if (p.advance) pos[r] += 1;
      const t = tokens[r];
      out[o] = t;
      out[o + 1] = exitBlock[r];
      ids[r] = t;
      let d = 0;
      for (let k = 0; k < p.numStop; k++) if (stop[k] === t) d = 1;
      done[r] = d;
      live[r] = 1 - d;
      exitBlock[r] = p.lastBlock;
    }
  },
  testCases: [
    { params: { rows: 7, slot: 2, advance: 1, numStop: 2, lastBlock: 5 } },
    { params: { rows: 70, slot: 0, advance: 0, numStop: 1, lastBlock: 1 } },
  ],
  testInputs: (p, _s, rand) => ({
    tokens: Uint32Array.from({ length: p.rows }, () => Math.floor(rand() * 4)),
    stop: Uint32Array.from({ length: Math.max(1, p.numStop) }, (_, k) => k),
    done: Uint32Array.from({ length: p.rows }, () => (rand() < 0.3 ? 1 : 0)),
    pos: Uint32Array.from({ length: p.rows }, () => Math.floor(rand() * 100)),
  }),
  tolerance: 'exact',
});
