// Float64 forward of the RBQE enhancer (models/enhancer.ts) with plain loops, for tests: every exit's output
// image. Written from the architecture's definition, not from the engine's graph.
import type { HostTensor } from '../models/common.js';
import type { EnhancerConfig } from '../models/enhancer.js';

type Map3 = { c: number; h: number; w: number; d: Float64Array };

function conv3(x: Map3, wt: HostTensor, bias: HostTensor, stride: number, relu: boolean): Map3 {
  const cout = wt.shape[0];
  const cin = wt.shape[1];
  const h = x.h / stride;
  const w = x.w / stride;
  const d = new Float64Array(cout * h * w);
  for (let o = 0; o < cout; o++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        let acc = bias.data[o];
        for (let c = 0; c < cin; c++)
          for (let kh = 0; kh < 3; kh++)
            for (let kw = 0; kw < 3; kw++) {
              const yy = i * stride - 1 + kh;
              const xx = j * stride - 1 + kw;
              if (yy < 0 || yy >= x.h || xx < 0 || xx >= x.w) continue;
              acc += wt.data[((o * cin + c) * 3 + kh) * 3 + kw] * x.d[(c * x.h + yy) * x.w + xx];
            }
        d[(o * h + i) * w + j] = relu ? Math.max(0, acc) : acc;
      }
  return { c: cout, h, w, d };
}

function up2(x: Map3): Map3 {
  const h = x.h * 2;
  const w = x.w * 2;
  const d = new Float64Array(x.c * h * w);
  for (let c = 0; c < x.c; c++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) d[(c * h + i) * w + j] = x.d[(c * x.h + (i >> 1)) * x.w + (j >> 1)];
  return { c: x.c, h, w, d };
}

const cat = (a: Map3, b: Map3): Map3 => {
  const d = new Float64Array((a.c + b.c) * a.h * a.w);
  d.set(a.d, 0);
  d.set(b.d, a.d.length);
  return { c: a.c + b.c, h: a.h, w: a.w, d };
};

function attention(z: Map3, w: Map<string, HostTensor>, p: string): Map3 {
  const hw = z.h * z.w;
  const pooled = Array.from({ length: z.c }, (_, c) => {
    let s = 0;
    for (let i = 0; i < hw; i++) s += z.d[c * hw + i];
    return s / hw;
  });
  const fc = (x: number[], name: string, act: (v: number) => number) => {
    const W = w.get(`${name}.weight`)!;
    const b = w.get(`${name}.bias`)!;
    const [inF, outF] = W.shape;
    return Array.from({ length: outF }, (_, o) => {
      let a = b.data[o];
      for (let i = 0; i < inF; i++) a += x[i] * W.data[i * outF + o];
      return act(a);
    });
  };
  const h1 = fc(pooled, `${p}.fc1`, (v) => Math.max(0, v));
  const s = fc(h1, `${p}.fc2`, (v) => 1 / (1 + Math.exp(-v)));
  const d = new Float64Array(z.d.length);
  for (let c = 0; c < z.c; c++) for (let i = 0; i < hw; i++) d[c * hw + i] = z.d[c * hw + i] * s[c];
  return { ...z, d };
}

/** Every exit's output image (row-major H×W) for one grey image. */
export function refEnhancer(
  cfg: EnhancerConfig,
  w: Map<string, HostTensor>,
  image: ArrayLike<number>,
  H: number,
  W: number,
): Float64Array[] {
  const L = cfg.levels;
  const conv = (x: Map3, name: string, stride: number, relu: boolean) =>
    conv3(x, w.get(`${name}.weight`)!, w.get(`${name}.bias`)!, stride, relu);
  const input: Map3 = { c: 1, h: H, w: W, d: Float64Array.from(image) };
  // x[i][j]: node at level i, column j
  const x: Map3[][] = Array.from({ length: L + 1 }, () => []);
  x[0][0] = conv(input, 'stem', 1, true);
  for (let i = 1; i <= L; i++) x[i][0] = conv(x[i - 1][0], `down.${i - 1}`, 2, true);
  for (let j = 1; j <= L; j++)
    for (let i = 0; i + j <= L; i++) x[i][j] = conv(cat(x[i][j - 1], up2(x[i + 1][j - 1])), `node.${i}.${j}`, 1, true);
  const outs: Float64Array[] = [];
  for (let k = 0; k < L; k++) {
    const r = conv(attention(x[0][k + 1], w, `exits.${k}.att`), `exits.${k}.out`, 1, false);
    outs.push(Float64Array.from(r.d, (v, i) => v + input.d[i]));
  }
  return outs;
}
