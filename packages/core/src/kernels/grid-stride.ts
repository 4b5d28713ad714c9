// Grid-stride dispatch for kernels with independent work items: a capped number of workgroups whose
// invocations loop over the items. Lavapipe pays a fixed cost per workgroup (copying 0.8M floats took
// 12.8 ms with one 256-wide workgroup per 256 items and 2.4 ms with 128 looping workgroups), so the cap is
// small; 128 × 256 invocations still keep a discrete GPU busy at the sizes these kernels see.

/** Most workgroups a grid-stride kernel dispatches. */
export const GRID_STRIDE_WORKGROUPS = 128;

/** Workgroup count for `items` work items at `wg` invocations per workgroup (use with `linear: true`). */
export const gridStrideDispatch = (items: number, wg: number): [number, number, number] => [
  Math.min(GRID_STRIDE_WORKGROUPS, Math.ceil(items / wg)),
  1,
  1,
];

/** WGSL loop header over item indices `idx < n`; `main` must bind `wg`, `nwg` and `li`. */
export const gridStrideLoop = (wg: number, n: string): string =>
  `for (var idx = linear_wg(wg, nwg) * ${wg}u + li; idx < ${n}; idx += nwg.x * nwg.y * ${wg}u)`;

/** The `main` signature grid-stride kernels use. */
export const GRID_STRIDE_MAIN = (wg: number): string =>
  `@compute @workgroup_size(${wg}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32)`;
