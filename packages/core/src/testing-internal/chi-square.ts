// Pearson's chi-square goodness-of-fit test for tests of sampling distributions: cells whose expected count
// is under `minExpected` are pooled into one cell; the p-value is the upper tail of the chi-square
// distribution, Q(df/2, x/2), the regularised upper incomplete gamma function (series below a + 1,
// continued fraction above).

/** log Γ(x) for x > 0 (Lanczos, g = 7, 9 terms). */
export function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let s = c[0];
  for (let i = 1; i < 9; i++) s += c[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

/** Q(a, x) = Γ(a, x) / Γ(a). */
export function upperGammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lead = a * Math.log(x) - x - logGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return Math.max(0, 1 - Math.exp(lead) * sum);
  }
  // continued fraction for Γ(a, x) e^x x^−a (modified Lentz)
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let f = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.exp(lead) * f;
}

/** P(χ²_df ≥ x). */
export function chiSquareUpperTail(x: number, df: number): number {
  return upperGammaQ(df / 2, x / 2);
}

export interface ChiSquareResult {
  statistic: number;
  df: number;
  pValue: number;
  /** Cells after pooling. */
  cells: number;
}

/** Observed counts against expected probabilities (summing to 1). */
export function chiSquareTest(
  observed: ArrayLike<number>,
  expected: ArrayLike<number>,
  minExpected = 5,
): ChiSquareResult {
  if (observed.length !== expected.length) throw new Error('chiSquareTest: observed and expected differ in length');
  let n = 0;
  for (let i = 0; i < observed.length; i++) n += observed[i];
  const obs: number[] = [];
  const exp: number[] = [];
  let poolO = 0;
  let poolE = 0;
  for (let i = 0; i < observed.length; i++) {
    const e = expected[i] * n;
    if (e < minExpected) {
      poolO += observed[i];
      poolE += e;
    } else {
      obs.push(observed[i]);
      exp.push(e);
    }
  }
  if (poolE > 0 || poolO > 0) {
    if (poolE >= minExpected || exp.length === 0) {
      obs.push(poolO);
      exp.push(poolE);
    } else {
      // a pool still under minExpected joins the smallest kept cell
      const i = exp.indexOf(Math.min(...exp));
      obs[i] += poolO;
      exp[i] += poolE;
    }
  }
  let statistic = 0;
  for (let i = 0; i < obs.length; i++)
    statistic += exp[i] > 0 ? (obs[i] - exp[i]) ** 2 / exp[i] : obs[i] > 0 ? Number.POSITIVE_INFINITY : 0;
  const df = obs.length - 1;
  return { statistic, df, pValue: chiSquareUpperTail(statistic, df), cells: obs.length };
}
