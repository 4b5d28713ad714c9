// Float64 reference of the RBQE no-reference quality score (JPEG variant), written independently of the
// WGSL kernel in quality-score.ts: the orthonormal discrete polynomials come from Gram–Schmidt on the
// monomials 1, x, x², … over x = 0..7 (the kernel uses the Tchebichef three-term recurrence instead).
//
// The score of an image (luma in [0, 1]):
//   blocks: 8×8, at a half-block offset (rows and columns 4 + 8i, i < ⌊H/8⌋ − 1), so JPEG's block edges
//     run through their middle;
//   moments: M = P · Î · Pᵀ with Î = (v − mean v) / ‖v‖₂ (zero when the block is all zero);
//   SSM = ΣM² − M₀₀²; textured when SSM > 0.004, else smooth;
//   textured: blur = 1 − mean over the 64 moments of (2·M·M_b + C) / (M² + M_b² + C), M_b the moments of the
//     block filtered by a 3×3 Gaussian (σ 5, zero outside the block), C = 1e-5;
//   smooth: Q_h = Σ_q |M[7][q]| / (Σ|M| − |M₀₀| + C), Q_w = Σ_p |M[p][7]| / (same), each clipped to T = 0.05,
//     blocky = log(1 − (Q_h + Q_w)/2) / log(1 − T);
//   image: mean blur over textured blocks (1 if none), mean blocky over smooth ones (1 if none),
//     score = blocky^0.9 · blur^0.1.
// Colour input (C = 3, planes R, G, B) is scored on its luma 0.299 R + 0.587 G + 0.114 B; luma is clamped to
// [0, 1] before scoring.

export const QUALITY_BLOCK = 8;
export const QUALITY_SSM_THRESHOLD = 0.004;
export const QUALITY_T = 0.05;
export const QUALITY_C = 1e-5;
export const QUALITY_W_BLOCKY = 0.9;
export const QUALITY_W_BLUR = 0.1;
/** RBQE's threshold for JPEG. */
export const QUALITY_THRESHOLD_JPEG = 0.67;

/** Orthonormal polynomials on {0..n−1} by Gram–Schmidt (modified, twice) on monomials: rows p, columns x. */
export function orthonormalPolynomials(n: number): Float64Array[] {
  const rows: Float64Array[] = [];
  const xs = Array.from({ length: n }, (_, x) => x - (n - 1) / 2); // centred for conditioning
  for (let p = 0; p < n; p++) {
    const v = new Float64Array(n);
    for (let x = 0; x < n; x++) v[x] = xs[x] ** p;
    for (let pass = 0; pass < 2; pass++) {
      for (const r of rows) {
        let d = 0;
        for (let x = 0; x < n; x++) d += v[x] * r[x];
        for (let x = 0; x < n; x++) v[x] -= d * r[x];
      }
    }
    let norm = 0;
    for (let x = 0; x < n; x++) norm += v[x] * v[x];
    norm = Math.sqrt(norm);
    for (let x = 0; x < n; x++) v[x] /= norm;
    rows.push(v);
  }
  return rows;
}

const P = orthonormalPolynomials(QUALITY_BLOCK);

function gaussian3(sigma: number): number[][] {
  const w: number[][] = [];
  let s = 0;
  for (let dy = -1; dy <= 1; dy++) {
    const row: number[] = [];
    for (let dx = -1; dx <= 1; dx++) {
      const v = Math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
      row.push(v);
      s += v;
    }
    w.push(row);
  }
  return w.map((r) => r.map((v) => v / s));
}
const G = gaussian3(5);

/** Tchebichef moments of one 8×8 block given row-major (block[y][x]). */
export function tchebichefMoments(block: number[][]): number[][] {
  const n = QUALITY_BLOCK;
  let ss = 0;
  let sum = 0;
  for (const row of block)
    for (const v of row) {
      ss += v * v;
      sum += v;
    }
  const norm = Math.sqrt(ss);
  const mean = sum / (n * n);
  const I = block.map((row) => row.map((v) => (norm > 0 ? v / norm - mean / norm : 0)));
  const M: number[][] = [];
  for (let p = 0; p < n; p++) {
    const mrow: number[] = [];
    for (let q = 0; q < n; q++) {
      let acc = 0;
      for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) acc += P[p][y] * I[y][x] * P[q][x];
      mrow.push(acc);
    }
    M.push(mrow);
  }
  return M;
}

export interface BlockScore {
  /** Top-left corner of the block in the image. */
  y: number;
  x: number;
  ssm: number;
  textured: boolean;
  /** The blur score (textured) or the blockiness score (smooth). */
  value: number;
}

export interface QualityScoreResult {
  score: number;
  blur: number;
  blocky: number;
  textured: number;
  smooth: number;
  blocks: BlockScore[];
}

/** Luma in [0, 1] of a (C, H, W) image, C = 1 or 3. */
export function lumaPlane(img: ArrayLike<number>, C: number, H: number, W: number, offset = 0): Float64Array {
  if (C !== 1 && C !== 3) throw new RangeError(`quality score: C must be 1 (grey) or 3 (RGB), got ${C}`);
  const out = new Float64Array(H * W);
  for (let i = 0; i < H * W; i++) {
    const v =
      C === 1
        ? img[offset + i]
        : 0.299 * img[offset + i] + 0.587 * img[offset + H * W + i] + 0.114 * img[offset + 2 * H * W + i];
    out[i] = Math.min(1, Math.max(0, v));
  }
  return out;
}

/** The RBQE quality score of one (C, H, W) image in float64, with every block's classification and value. */
export function qualityScoreReference(
  img: ArrayLike<number>,
  C: number,
  H: number,
  W: number,
  offset = 0,
): QualityScoreResult {
  const n = QUALITY_BLOCK;
  const luma = lumaPlane(img, C, H, W, offset);
  const nh = Math.floor(H / n) - 1;
  const nw = Math.floor(W / n) - 1;
  const blocks: BlockScore[] = [];
  let blurSum = 0;
  let blockySum = 0;
  let textured = 0;
  let smooth = 0;
  for (let i = 0; i < nh; i++) {
    for (let j = 0; j < nw; j++) {
      const y0 = i * n + n / 2;
      const x0 = j * n + n / 2;
      const block = Array.from({ length: n }, (_, y) =>
        Array.from({ length: n }, (_, x) => luma[(y0 + y) * W + x0 + x]),
      );
      const M = tchebichefMoments(block);
      let ssm = -(M[0][0] ** 2);
      for (const row of M) for (const v of row) ssm += v * v;
      if (ssm > QUALITY_SSM_THRESHOLD) {
        const blurred = block.map((row, y) =>
          row.map((_, x) => {
            let acc = 0;
            for (let dy = -1; dy <= 1; dy++)
              for (let dx = -1; dx <= 1; dx++) {
                const yy = y + dy;
                const xx = x + dx;
                if (yy >= 0 && yy < n && xx >= 0 && xx < n) acc += G[dy + 1][dx + 1] * block[yy][xx];
              }
            return acc;
          }),
        );
        const Mb = tchebichefMoments(blurred);
        let sim = 0;
        for (let p = 0; p < n; p++)
          for (let q = 0; q < n; q++) {
            const a = M[p][q];
            const b = Mb[p][q];
            sim += (2 * a * b + QUALITY_C) / (a * a + b * b + QUALITY_C);
          }
        const value = 1 - sim / (n * n);
        blurSum += value;
        textured++;
        blocks.push({ y: y0, x: x0, ssm, textured: true, value });
      } else {
        let total = -Math.abs(M[0][0]);
        for (const row of M) for (const v of row) total += Math.abs(v);
        let lastRow = 0;
        let lastCol = 0;
        for (let k = 0; k < n; k++) {
          lastRow += Math.abs(M[n - 1][k]);
          lastCol += Math.abs(M[k][n - 1]);
        }
        const qh = Math.min(QUALITY_T, lastRow / (total + QUALITY_C));
        const qw = Math.min(QUALITY_T, lastCol / (total + QUALITY_C));
        const value = Math.log(1 - (qh + qw) / 2) / Math.log(1 - QUALITY_T);
        blockySum += value;
        smooth++;
        blocks.push({ y: y0, x: x0, ssm, textured: false, value });
      }
    }
  }
  const blur = textured > 0 ? blurSum / textured : 1;
  const blocky = smooth > 0 ? blockySum / smooth : 1;
  const score = blocky ** QUALITY_W_BLOCKY * blur ** QUALITY_W_BLUR;
  return { score, blur, blocky, textured, smooth, blocks };
}
