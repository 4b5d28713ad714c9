// WGSL snippets shared by the built-in policies' device forms, and their host twins. Every helper is a
// top-level function of the policy's code, so combinators can rename it per part.
import { wgslFloat } from '@offramp/core';

/**
 * NaN test on the bits: WGSL lets compilers assume no NaNs at run time, so `x != x` may fold to false.
 * Signals carry NaN on purpose (no gate head, similarity at the first exit).
 */
export const WGSL_IS_NAN = 'fn is_nan_f32(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }';

/** `fn NAME(e: u32) -> f32` returning `values[e]` (the last value past the end), or one constant. */
export function wgslPerExitF32(fnName: string, value: number | readonly number[]): string {
  if (!Array.isArray(value)) return `fn ${fnName}(e: u32) -> f32 { return f32(${wgslFloat(value as number)}); }`;
  const list = value as readonly number[];
  const cases = list
    .slice(0, -1)
    .map((v, i) => `case ${i}u: { return f32(${wgslFloat(v)}); }`)
    .join(' ');
  return `fn ${fnName}(e: u32) -> f32 { switch e { ${cases} default: { return f32(${wgslFloat(list[list.length - 1])}); } } }`;
}

/** `fn NAME(e: u32) -> u32` returning `values[e]` (the last value past the end). */
export function wgslPerExitU32(fnName: string, list: readonly number[]): string {
  const cases = list
    .slice(0, -1)
    .map((v, i) => `case ${i}u: { return ${v >>> 0}u; }`)
    .join(' ');
  return `fn ${fnName}(e: u32) -> u32 { switch e { ${cases} default: { return ${list[list.length - 1] >>> 0}u; } } }`;
}

/** Integer hash of three u32 words, identical in WGSL (`hash3_u32`) and here (u32 wrap-around arithmetic). */
export function hash3(a: number, b: number, c: number): number {
  let h = Math.imul((a ^ 0x9e3779b9) >>> 0, 0x85ebca6b) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul((h ^ (b >>> 0)) >>> 0, 0xc2b2ae35) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul((h ^ (c >>> 0)) >>> 0, 0x27d4eb2f) >>> 0;
  h = (h ^ (h >>> 15)) >>> 0;
  h = Math.imul(h, 0x165667b1) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h;
}

export const WGSL_HASH3 = `fn hash3_u32(a: u32, b: u32, c: u32) -> u32 {
  var h = (a ^ 0x9e3779b9u) * 0x85ebca6bu;
  h = h ^ (h >> 13u);
  h = (h ^ b) * 0xc2b2ae35u;
  h = h ^ (h >> 16u);
  h = (h ^ c) * 0x27d4eb2fu;
  h = h ^ (h >> 15u);
  h = h * 0x165667b1u;
  h = h ^ (h >> 16u);
  return h;
}`;

/** A uniform number in [0, 1) from a hash: the top 24 bits, exact in f32. */
export function unitFromHash(h: number): number {
  return Math.fround((h >>> 8) / 16777216);
}
export const WGSL_UNIT_FROM_HASH = 'fn unit_from_hash(h: u32) -> f32 { return f32(h >> 8u) * (1.0 / 16777216.0); }';
