// The RBQE no-reference quality score of images on the GPU (the JPEG variant; formulas in
// quality-score-reference.ts, which is its independent float64 reference).
//   x: (B, C, H, W), C = 1 (grey) or 3 (RGB planes), values nominally in [0, 1]; y[b·yStride + yOffset] =
//   the score of image b (other entries of y are not touched, so y can be the exit-signals buffer with the
//   score written into its gate slot).
// One workgroup per image; its 64 threads take the 8×8 blocks (half-block offset) in turn, each keeping the
// sums (blur, textured count, blockiness, smooth count), combined by one workgroup reduction. The
// polynomials come from the Tchebichef three-term recurrence normalised by ρ(p, 8) (the reference builds them
// by Gram–Schmidt). A block is centred on its first pixel before its mean is removed, so a flat block has
// exactly zero moments in f32 as well (its blockiness term is then exactly 0, as in float64).
import { ValidationError } from '../errors.js';
import { defineKernel } from '../runtime/kernel.js';
import { ROW_WG, rowReduceWgsl } from './layer-norm.js';
import {
  QUALITY_BLOCK,
  QUALITY_C,
  QUALITY_SSM_THRESHOLD,
  QUALITY_T,
  QUALITY_W_BLOCKY,
  QUALITY_W_BLUR,
  qualityScoreReference,
} from './quality-score-reference.js';

/** Scaled Tchebichef polynomials t_p(x)/√ρ(p, N) for x < N, p ≤ order (rows p), by the recurrence. */
export function tchebichefPolynomials(N: number, order = N - 1): Float64Array[] {
  const rows = Array.from({ length: order + 1 }, () => new Float64Array(N));
  for (let x = 0; x < N; x++) {
    rows[0][x] = 1;
    if (order >= 1) rows[1][x] = (1 - N + 2 * x) / N;
    for (let p = 2; p <= order; p++) {
      rows[p][x] =
        ((2 * p - 1) * rows[1][x] * rows[p - 1][x] - (p - 1) * (1 - ((p - 1) * (p - 1)) / (N * N)) * rows[p - 2][x]) /
        p;
    }
  }
  let rho = 1;
  for (let p = 0; p <= order; p++) {
    if (p > 0) rho *= 1 - (p * p) / (N * N);
    const r = (rho * N) / (2 * p + 1);
    for (let x = 0; x < N; x++) rows[p][x] /= Math.sqrt(r);
  }
  return rows;
}

const N = QUALITY_BLOCK;
const f = (v: number): string => {
  const s = v.toPrecision(9);
  return s.includes('.') || s.includes('e') ? s : `${s}.0`;
};
const POLY = tchebichefPolynomials(N).flatMap((r) => Array.from(r));
const g = (d2: number) => Math.exp(-d2 / (2 * 5 * 5));
const GSUM = g(0) + 4 * g(1) + 4 * g(2);
const GAUSS = [g(2), g(1), g(2), g(1), g(0), g(1), g(2), g(1), g(2)].map((v) => v / GSUM);

const wgsl = () => `
var<private> POLY: array<f32, 64> = array<f32, 64>(${POLY.map(f).join(', ')});
var<private> GAUSS: array<f32, 9> = array<f32, 9>(${GAUSS.map(f).join(', ')});
var<private> blk: array<f32, 64>;
var<private> cen: array<f32, 64>;
var<private> tmp: array<f32, 64>;
var<private> mout: array<f32, 64>;
var<private> mom: array<f32, 64>;
${rowReduceWgsl('reduce_q', 'vec4f', 'a + b')}

fn luma(b: u32, yy: u32, xx: u32) -> f32 {
  let hw = P.H * P.W;
  let i = b * P.C * hw + yy * P.W + xx;
  var v = x[i];
  if (P.C == 3u) { v = 0.299 * x[i] + 0.587 * x[i + hw] + 0.114 * x[i + 2u * hw]; }
  return min(max(v, 0.0), 1.0);
}

// Moments of blk into mout: M = P · Î · Pᵀ, Î = (blk − mean) / ‖blk‖.
fn moments() {
  let pivot = blk[0];
  var ss = 0.0;
  var sd = 0.0;
  for (var i = 0u; i < 64u; i++) { let v = blk[i]; ss += v * v; sd += v - pivot; }
  let inv = select(0.0, 1.0 / sqrt(ss), ss > 0.0);
  let md = sd / 64.0;
  for (var i = 0u; i < 64u; i++) { cen[i] = ((blk[i] - pivot) - md) * inv; }
  for (var p = 0u; p < 8u; p++) {
    for (var c = 0u; c < 8u; c++) {
      var a = 0.0;
      for (var r = 0u; r < 8u; r++) { a += POLY[p * 8u + r] * cen[r * 8u + c]; }
      tmp[p * 8u + c] = a;
    }
  }
  for (var p = 0u; p < 8u; p++) {
    for (var q = 0u; q < 8u; q++) {
      var a = 0.0;
      for (var c = 0u; c < 8u; c++) { a += tmp[p * 8u + c] * POLY[q * 8u + c]; }
      mout[p * 8u + q] = a;
    }
  }
}

@compute @workgroup_size(${ROW_WG}) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let b = linear_wg(wg, nwg);
  if (b >= P.B) { return; }
  let nh = P.H / 8u - 1u;
  let nw = P.W / 8u - 1u;
  var acc = vec4f(0.0);
  for (var k = li; k < nh * nw; k += WG_X) {
    let y0 = (k / nw) * 8u + 4u;
    let x0 = (k % nw) * 8u + 4u;
    for (var r = 0u; r < 8u; r++) {
      for (var c = 0u; c < 8u; c++) { blk[r * 8u + c] = luma(b, y0 + r, x0 + c); }
    }
    moments();
    var ssm = 0.0;
    for (var i = 0u; i < 64u; i++) { mom[i] = mout[i]; ssm += mout[i] * mout[i]; }
    ssm -= mom[0] * mom[0];
    if (ssm > ${f(QUALITY_SSM_THRESHOLD)}) {
      // 3×3 Gaussian, zero outside the block (into cen, then back into blk)
      for (var r = 0; r < 8; r++) {
        for (var c = 0; c < 8; c++) {
          var a = 0.0;
          for (var dr = -1; dr <= 1; dr++) {
            for (var dc = -1; dc <= 1; dc++) {
              let rr = r + dr;
              let cc = c + dc;
              if (rr >= 0 && rr < 8 && cc >= 0 && cc < 8) {
                a += GAUSS[u32((dr + 1) * 3 + dc + 1)] * blk[u32(rr * 8 + cc)];
              }
            }
          }
          cen[u32(r * 8 + c)] = a;
        }
      }
      for (var i = 0u; i < 64u; i++) { blk[i] = cen[i]; }
      moments();
      var sim = 0.0;
      for (var i = 0u; i < 64u; i++) {
        let m = mom[i];
        let mb = mout[i];
        sim += (2.0 * m * mb + ${f(QUALITY_C)}) / (m * m + mb * mb + ${f(QUALITY_C)});
      }
      acc += vec4f(1.0 - sim / 64.0, 1.0, 0.0, 0.0);
    } else {
      var total = -abs(mom[0]);
      var lastRow = 0.0;
      var lastCol = 0.0;
      for (var i = 0u; i < 64u; i++) { total += abs(mom[i]); }
      for (var k2 = 0u; k2 < 8u; k2++) { lastRow += abs(mom[56u + k2]); lastCol += abs(mom[k2 * 8u + 7u]); }
      let qh = min(${f(QUALITY_T)}, lastRow / (total + ${f(QUALITY_C)}));
      let qw = min(${f(QUALITY_T)}, lastCol / (total + ${f(QUALITY_C)}));
      acc += vec4f(0.0, 0.0, log(1.0 - (qh + qw) * 0.5) / ${f(Math.log(1 - QUALITY_T))}, 1.0);
    }
  }
  let t = reduce_q(acc, li);
  if (li != 0u) { return; }
  let blur = select(1.0, t.x / t.y, t.y > 0.0);
  let blocky = select(1.0, t.z / t.w, t.w > 0.0);
  let pb = select(0.0, pow(blocky, ${f(QUALITY_W_BLOCKY)}), blocky > 0.0);
  let pl = select(0.0, pow(blur, ${f(QUALITY_W_BLUR)}), blur > 0.0);
  y[b * P.yStride + P.yOffset] = pb * pl;
}`;

/**
 * Test images whose blocks are clearly smooth (flat, gentle gradients with a small JPEG-like step through
 * the middle, saturated) or clearly textured (noise), so f32 rounding cannot move a block across the
 * SSM threshold. Pixels outside the scored blocks are random.
 */
function structuredImages(p: Record<string, number>, rand: () => number): Float32Array {
  const { B, C, H, W } = p;
  const out = new Float32Array(B * C * H * W);
  const nh = Math.floor(H / 8) - 1;
  const nw = Math.floor(W / 8) - 1;
  for (let b = 0; b < B; b++) {
    const kinds = Array.from({ length: nh * nw }, () => Math.floor(rand() * 5));
    const params = kinds.map(() => [0.3 + 0.6 * rand(), (rand() * 2 - 1) * 0.002, (rand() * 2 - 1) * 0.01, rand()]);
    for (let c = 0; c < C; c++) {
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const bi = Math.floor((y - 4) / 8);
          const bj = Math.floor((x - 4) / 8);
          let v = rand();
          if (y >= 4 && x >= 4 && bi < nh && bj < nw) {
            const k = bi * nw + bj;
            const [a, s, step, u] = params[k];
            const lx = (x - 4) % 8;
            const ly = (y - 4) % 8;
            if (kinds[k] === 0) v = a;
            else if (kinds[k] === 1) v = a + s * (lx + ly) + (lx >= 4 ? step : 0) + (ly >= 4 ? step : 0);
            else if (kinds[k] === 2)
              v = u < 0.5 ? -0.5 : 1.5; // saturated: clamped to 0 or 1
            else v = 0.2 + 0.6 * rand();
          }
          out[((b * C + c) * H + y) * W + x] = v;
        }
      }
    }
  }
  return out;
}

export const qualityScore = defineKernel({
  name: 'qualityScore',
  bindings: { x: { access: 'read', type: 'f32' }, y: { access: 'write', type: 'f32' } },
  params: { B: 'u32', C: 'u32', H: 'u32', W: 'u32', yStride: 'u32', yOffset: 'u32' },
  workgroupSize: () => [ROW_WG, 1, 1],
  linear: true,
  dispatch: (p) => [p.B, 1, 1],
  sizes: (p) => {
    if (p.C !== 1 && p.C !== 3) {
      throw new ValidationError(`kernel 'qualityScore': C must be 1 (grey) or 3 (RGB planes), got ${p.C}`);
    }
    if (p.H < 2 * N || p.W < 2 * N) {
      throw new ValidationError(
        `kernel 'qualityScore': the image must be at least ${2 * N}×${2 * N} (one 8×8 block at a half-block offset), got ${p.H}×${p.W}`,
      );
    }
    if (p.yOffset >= p.yStride) {
      throw new ValidationError(`kernel 'qualityScore': yOffset (${p.yOffset}) must be below yStride (${p.yStride})`);
    }
    return { x: p.B * p.C * p.H * p.W, y: p.B * p.yStride };
  },
  wgsl,
  reference: ({ x, y }, p) => {
    const plane = p.C * p.H * p.W;
    for (let b = 0; b < p.B; b++) {
      y[b * p.yStride + p.yOffset] = qualityScoreReference(x, p.C, p.H, p.W, b * plane).score;
    }
  },
  testInputs: (p, _spec, rand) => ({ x: structuredImages(p, rand) }),
  testCases: [
    { params: { B: 1, C: 1, H: 16, W: 16, yStride: 1, yOffset: 0 }, label: 'one block' },
    { params: { B: 3, C: 1, H: 37, W: 45, yStride: 1, yOffset: 0 }, label: 'sizes not a multiple of 8' },
    { params: { B: 2, C: 3, H: 64, W: 48, yStride: 8, yOffset: 4 }, label: 'RGB, into the gate slot of signals' },
    { params: { B: 2, C: 1, H: 96, W: 136, yStride: 8, yOffset: 4 }, label: 'more blocks than threads' },
  ],
  tolerance: 'accumulate',
});

/**
 * FLOPs of the score of one H×W image: per 8×8 block two 8×8×8 products for the moments (about 2·1024) and
 * the centring, plus for a textured block the 3×3 blur, the blurred block's moments and the similarity.
 * Counted as if every block were textured (an upper bound).
 */
export function qualityScoreFlops(H: number, W: number, C = 1): number {
  const blocks = Math.max(0, Math.floor(H / 8) - 1) * Math.max(0, Math.floor(W / 8) - 1);
  const moments = 2 * 2 * 512 + 4 * 64;
  return blocks * (2 * moments + 18 * 64 + 6 * 64) + (C === 3 ? 5 * H * W : 0);
}
