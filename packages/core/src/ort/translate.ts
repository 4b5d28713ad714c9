// Offramp's layer graph → ONNX. A model builds its graph on a GraphBuilder exactly as for a GPU program (stem,
// blocks, exit heads, with the weights of a host-side CPU device); this module captures the op list, cuts it
// into segments (segment s = [stem] + the blocks after exit s−1 up to exit s's block + exit head s) and turns
// each op into ONNX nodes, kernel by kernel. Values are in SSA form: a carried tensor written twice becomes two
// ONNX values. Every value has the shape [batch, elements per row] at op boundaries (batch is symbolic, so one
// session serves every live-row count); ops reshape to what they need (Reshape is free in ONNX Runtime).
// The engine's own ops (signals, retirement, compaction) are not part of the graph: on the CPU the host does
// them between segments.
import type { CarriedDecl, OpDecl, TensorDecl } from '../engine/graph.js';
import { GraphBuilder } from '../engine/graph.js';
import type { EarlyExitModel, ExitHeadOut } from '../engine/model.js';
import { ValidationError } from '../errors.js';
import { CpuDevice } from '../runtime/cpu-device.js';
import type { AnyTypedArray } from '../runtime/dtype.js';
import { Tensor } from '../runtime/tensor.js';
import { type OnnxElem, OnnxGraphWriter } from './onnx-writer.js';

const BATCH = 'batch';
const MASK_NEG = -1e30;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** Host copies of a model's weights, by name (shape and data). */
export type HostWeights = Map<string, { shape: readonly number[]; data: AnyTypedArray }>;

export interface CapturedSegment {
  exit: number;
  /** Blocks this segment runs, in order. */
  blocks: number[];
  /** ops[opStart, opEnd) of the captured graph. */
  opStart: number;
  opEnd: number;
  head: ExitHeadOut;
  /** The current buffer and width of every carried tensor after this segment. */
  carriedEnd: { c: CarriedDecl; decl: TensorDecl; width: number }[];
}

export interface CapturedGraph {
  T: number;
  ops: OpDecl[];
  carried: CarriedDecl[];
  segments: CapturedSegment[];
  /** Per-row FLOPs at each exit (stem + blocks + heads up to it), as the GPU program counts them. */
  flopsAtExit: number[];
}

/** Builds the model's layer graph for sequence length T on host copies of its weights. */
export function captureGraph(model: EarlyExitModel, weights: HostWeights, T: number): CapturedGraph {
  const cpu = new CpuDevice();
  const tensors = new Map<string, Tensor>();
  for (const [name, w] of weights) {
    const dtype = w.data instanceof Int32Array ? 'i32' : w.data instanceof Uint32Array ? 'u32' : 'f32';
    tensors.set(name, new Tensor(cpu, dtype, w.shape, w.data, name));
  }
  const b = new GraphBuilder(1, tensors);
  b.identity = b.system('identity', cpu.tensor('u32', [1], [0], 'identity'));
  const prog = model.program(b, T);
  b.enter('stem', -1);
  prog.stem();
  const exitAt = new Map(model.exitBlocks.map((blk, j) => [blk, j]));
  const segments: CapturedSegment[] = [];
  let opStart = 0;
  let blocks: number[] = [];
  for (let i = 0; i < model.numBlocks; i++) {
    b.enter('block', i);
    prog.block(i);
    blocks.push(i);
    const j = exitAt.get(i);
    if (j === undefined) continue;
    b.enter('head', j);
    const head = prog.exit(j);
    segments.push({
      exit: j,
      blocks,
      opStart,
      opEnd: b.ops.length,
      head,
      carriedEnd: b.carried.map((c) => ({ c, decl: c.buffers[c.current], width: c.width })),
    });
    opStart = b.ops.length;
    blocks = [];
  }
  const E = model.exitBlocks.length;
  if (segments.length !== E) throw new ValidationError(`model declares ${E} exits but built ${segments.length}`);
  const blockF = new Array(model.numBlocks).fill(0);
  const headF = new Array(E).fill(0);
  let stemF = 0;
  for (const op of b.ops) {
    if (op.segment === 'stem') stemF += op.flopsPerRow;
    else if (op.segment === 'block') blockF[op.index] += op.flopsPerRow;
    else if (op.segment === 'head') headF[op.index] += op.flopsPerRow;
  }
  const flopsAtExit = segments.map(
    (s) =>
      stemF +
      blockF.slice(0, model.exitBlocks[s.exit] + 1).reduce((a, x) => a + x, 0) +
      headF.slice(0, s.exit + 1).reduce((a, x) => a + x, 0),
  );
  return { T, ops: b.ops, carried: b.carried, segments, flopsAtExit };
}

/** A graph input: host state by name, `perRow` elements per row. */
export interface OnnxIo {
  name: string;
  elem: OnnxElem;
  perRow: number;
}

export interface TranslatedSegment {
  bytes: Uint8Array;
  inputs: OnnxIo[];
  /** Graph output names of the exit head's logits, gate logit and pooled state. */
  logits: string;
  gate?: string;
  pooled: string;
  classes: number;
  poolDim: number;
  /** Carried state this segment changes: host name → graph output name and width. */
  carried: { name: string; output: string; perRow: number }[];
  nodes: number;
}

interface Val {
  name: string;
  perRow: number;
  elem: OnnxElem;
}

/** Translates ops into one ONNX graph; `carriedIn` maps carried buffers to host state names at entry. */
class Translator {
  readonly w: OnnxGraphWriter;
  private readonly vals = new Map<number, Val>();
  private readonly weightNames = new Map<number, string>();
  private readonly maskCache = new Map<string, string>();
  private arangeF: string | undefined;
  readonly inputs: OnnxIo[] = [];
  private readonly entry = new Map<number, OnnxIo>();

  constructor(
    name: string,
    private readonly T: number,
  ) {
    this.w = new OnnxGraphWriter(name);
  }

  /** Declares that reading `decl` before any op wrote it reads the host state `io`. */
  bindEntry(decl: TensorDecl, io: OnnxIo): void {
    this.entry.set(decl.id, io);
  }

  read(decl: TensorDecl): Val {
    const v = this.vals.get(decl.id);
    if (v) return v;
    const io = this.entry.get(decl.id) ?? (decl.kind === 'input' ? ioOf(decl.name, decl) : undefined);
    if (!io) throw new Error(`internal: ONNX translation reads '${decl.name}' before any op wrote it`);
    const name = this.w.input(io.name, io.elem, [BATCH, io.perRow]);
    this.inputs.push(io);
    const val = { name, perRow: io.perRow, elem: io.elem };
    this.vals.set(decl.id, val);
    return val;
  }

  value(decl: TensorDecl): Val | undefined {
    return this.vals.get(decl.id);
  }

  private write(decl: TensorDecl, name: string, perRow: number): void {
    this.vals.set(decl.id, { name, perRow, elem: 'float32' });
  }

  private weight(op: OpDecl, binding: string): { name: string; data: Float32Array; shape: readonly number[] } {
    const ref = op.bind[binding];
    const t = ref.decl.tensor;
    if (!t || ref.decl.kind !== 'weight') throw new Error(`internal: '${op.label}'.${binding} is not a weight`);
    const data = t.handle as Float32Array;
    if ((ref.offset ?? 0) !== 0 || (ref.length !== undefined && ref.length !== data.length)) {
      throw new ValidationError(`op '${op.label}': weight windows are not supported by the ONNX Runtime path`);
    }
    let name = this.weightNames.get(t.id);
    if (!name) {
      name = this.w.initializer(t.label ?? ref.decl.name, data, [...t.shape]);
      this.weightNames.set(t.id, name);
    }
    return { name, data, shape: t.shape };
  }

  private reshape(x: string, dims: number[]): string {
    return this.w.op('Reshape', [x, this.w.int64(dims)]);
  }

  private act(x: string, act: string, label: string): string {
    const w = this.w;
    switch (act) {
      case 'identity':
        return x;
      case 'relu':
        return w.op('Relu', [x]);
      case 'tanh':
        return w.op('Tanh', [x]);
      case 'sigmoid':
        return w.op('Sigmoid', [x]);
      case 'silu':
        return w.op('Mul', [x, w.op('Sigmoid', [x])]);
      case 'exp':
        return w.op('Exp', [x]);
      case 'softplus':
        return w.op('Softplus', [x]);
      case 'gelu': {
        // the tanh form, as the kernels compute it: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
        const x3 = w.op('Mul', [w.op('Mul', [x, x]), x]);
        const inner = w.op('Mul', [w.op('Add', [x, w.op('Mul', [x3, w.float(0.044715)])]), w.float(SQRT_2_OVER_PI)]);
        return w.op('Mul', [w.op('Mul', [x, w.float(0.5)]), w.op('Add', [w.op('Tanh', [inner]), w.float(1)])]);
      }
      default:
        throw new ValidationError(`op '${label}': activation '${act}' is not supported by the ONNX Runtime path`);
    }
  }

  /** The float positions 0 … T−1 ([T]), one initializer per graph. */
  private arangeF32(): string {
    if (!this.arangeF) {
      this.arangeF = this.w.initializer(
        'positions',
        Float32Array.from({ length: this.T }, (_, i) => i),
        [this.T],
      );
    }
    return this.arangeF;
  }

  /** Additive key mask [B, 1, 1, T] from per-row lengths: 0 for keys < length, −1e30 after. */
  private mask(lengths: Val): string {
    let m = this.maskCache.get(lengths.name);
    if (m) return m;
    const w = this.w;
    const T = this.T;
    const ar = w.initializer(
      'arange',
      Int32Array.from({ length: T }, (_, i) => i),
      [T],
    );
    const valid = w.op('Less', [ar, lengths.name]); // [B, T]
    const add = w.op('Where', [valid, w.float(0), w.float(MASK_NEG)]);
    m = this.reshape(add, [-1, 1, 1, T]);
    this.maskCache.set(lengths.name, m);
    return m;
  }

  /** Emits the ONNX nodes of one layer-graph op. */
  emit(op: OpDecl): void {
    const w = this.w;
    const p = op.params(1);
    const p2 = op.params(2);
    const spec = op.spec as Record<string, unknown>;
    const x = (name: string) => this.read(op.bind[name].decl);
    const out = (name: string) => op.bind[name].decl;
    const perRowOf = (key: string, factor = 1) => {
      // params are linear in the live-row count; the translation relies on it
      if (p2[key] !== 2 * p[key]) {
        throw new Error(`internal: op '${op.label}': parameter ${key} is not proportional to the row count`);
      }
      return p[key] * factor;
    };
    const unsupported = (what: string) =>
      new ValidationError(`op '${op.label}' (${op.kernel.name}): ${what} is not supported by the ONNX Runtime path`);
    switch (op.kernel.name) {
      case 'embedding': {
        if (spec.chunk || (p.idBase ?? 0) !== 0) throw unsupported('a split token table');
        const ids = x('ids');
        const seq = p.seqLen;
        if (perRowOf('n') !== ids.perRow) throw new Error(`internal: '${op.label}': ids per row mismatch`);
        const table = this.weight(op, 'table');
        let y = w.op('Gather', [table.name, this.reshape(ids.name, [-1, seq])]); // [B, T, d]
        if (p.addPosition) {
          // only the first T rows of the position table: a [T, d] initializer
          const pos = op.bind.pos.decl.tensor!.handle as Float32Array;
          const first = w.initializer('position', pos.subarray(0, seq * p.dim), [seq, p.dim]);
          y = w.op('Add', [y, first]);
        }
        this.write(out('y'), this.reshape(y, [-1, ids.perRow * p.dim]), ids.perRow * p.dim);
        return;
      }
      case 'layerNorm': {
        const xv = x('x');
        const rows = perRowOf('rows');
        const g = this.weight(op, 'gamma');
        const bta = this.weight(op, 'beta');
        const y = w.op('LayerNormalization', [this.reshape(xv.name, [-1, p.cols]), g.name, bta.name], {
          axis: -1,
          epsilon: { float: p.eps },
        });
        this.write(out('y'), this.reshape(y, [-1, rows * p.cols]), rows * p.cols);
        return;
      }
      case 'matmul': {
        if (spec.transA || spec.transB || p.batch !== 1) throw unsupported('a transposed or batched matmul');
        const a = x('a');
        const rows = perRowOf('M');
        const W = this.weight(op, 'b');
        let y = w.op('MatMul', [this.reshape(a.name, [-1, p.K]), W.name]);
        if (spec.bias) y = w.op('Add', [y, this.weight(op, 'bias').name]);
        y = this.act(y, String(spec.act ?? 'identity'), op.label);
        this.write(out('c'), rows === 1 ? y : this.reshape(y, [-1, rows * p.N]), rows * p.N);
        return;
      }
      case 'attention': {
        if (spec.causal) throw unsupported('causal attention');
        if (perRowOf('B') !== 1 || p.T !== this.T) throw new Error(`internal: '${op.label}': unexpected shape`);
        const T = p.T;
        const H = p.heads;
        const dh = p.d / H;
        const qkv = x('qkv');
        const lengths = x('lengths');
        const t5 = w.op('Transpose', [this.reshape(qkv.name, [-1, T, 3, H, dh])], { perm: [2, 0, 3, 1, 4] });
        const part = (i: number) => w.op('Gather', [t5, w.int64([i], true)], { axis: 0 }); // [B, H, T, dh]
        const q = w.op('Mul', [part(0), w.float(p.scale)]);
        const kT = w.op('Transpose', [part(1)], { perm: [0, 1, 3, 2] });
        const scores = w.op('Add', [w.op('MatMul', [q, kT]), this.mask(lengths)]);
        const probs = w.op('Softmax', [scores], { axis: -1 });
        const ctx = w.op('Transpose', [w.op('MatMul', [probs, part(2)])], { perm: [0, 2, 1, 3] });
        this.write(out('out'), this.reshape(ctx, [-1, T * p.d]), T * p.d);
        return;
      }
      case 'binary': {
        if (spec.op !== 'add') throw unsupported(`binary '${spec.op}'`);
        if (p.period !== p.n || p2.period !== p2.n) throw unsupported('a broadcast add');
        const a = x('x');
        const bb = x('b');
        const n = perRowOf('n');
        if (a.perRow !== n || bb.perRow !== n) throw new Error(`internal: '${op.label}': operand widths differ`);
        this.write(out('y'), w.op('Add', [a.name, bb.name]), n);
        return;
      }
      case 'unary': {
        const a = x('x');
        this.write(out('y'), this.act(a.name, String(spec.op), op.label), perRowOf('n'));
        return;
      }
      case 'gatherRows': {
        if (op.bind.idx.decl.name !== 'identity') throw unsupported('a reordering row gather');
        const src = x('x');
        if (perRowOf('count') !== 1 || src.perRow < p.srcStride) throw unsupported('this strided gather');
        const sliced = w.op('Slice', [
          this.reshape(src.name, [-1, p.srcStride]),
          w.int64([p.srcOffset]),
          w.int64([p.srcOffset + p.width]),
          w.int64([1]),
        ]);
        this.write(out('y'), sliced, p.width);
        return;
      }
      case 'conv2d': {
        if (perRowOf('B') !== 1) throw new Error(`internal: '${op.label}': unexpected shape`);
        const src = x('x');
        const W = this.weight(op, 'weight');
        const ins = [this.reshape(src.name, [-1, p.Cin, p.H, p.W]), W.name];
        if (spec.bias) ins.push(this.weight(op, 'bias').name);
        let y = w.op('Conv', ins, {
          kernel_shape: [p.KH, p.KW],
          strides: [p.stride, p.stride],
          pads: [p.pad, p.pad, p.pad, p.pad],
        });
        y = this.act(y, String(spec.act ?? 'identity'), op.label);
        const width = p.Cout * p.Ho * p.Wo;
        this.write(out('y'), this.reshape(y, [-1, width]), width);
        return;
      }
      case 'globalAvgPool': {
        if (perRowOf('B') !== 1) throw new Error(`internal: '${op.label}': unexpected shape`);
        const src = x('x');
        const y = w.op('ReduceMean', [this.reshape(src.name, [-1, p.C, p.HW])], { axes: [2], keepdims: 0 });
        this.write(out('y'), y, p.C);
        return;
      }
      case 'maskedMean': {
        // y[b, :] = Σ_{t < n} x[b, t, :] · (1/n), n = max(1, min(lengths[b], T)): each term scaled before the
        // sum as the kernel does; the padded tokens are selected away (Where), not multiplied by 0, so a non-finite
        // value there cannot leak into the mean
        if (perRowOf('B') !== 1) throw new Error(`internal: '${op.label}': unexpected shape`);
        const T = p.T;
        const d = p.d;
        const src = x('x');
        const lengths = x('lengths');
        if (src.perRow !== T * d) throw new Error(`internal: '${op.label}': x has ${src.perRow} values per row`);
        const n = w.op('Clip', [w.op('Cast', [lengths.name], { to: 1 }), w.float(1), w.float(T)]); // [B, 1]
        const valid = w.op('Less', [this.arangeF32(), n]); // [B, T]
        const kept = w.op('Where', [this.reshape(valid, [-1, T, 1]), this.reshape(src.name, [-1, T, d]), w.float(0)]);
        const scaled = w.op('Mul', [kept, this.reshape(w.op('Reciprocal', [n]), [-1, 1, 1])]);
        this.write(out('y'), w.op('ReduceSum', [scaled, w.int64([1])], { keepdims: 0 }), d);
        return;
      }
      case 'rmsNorm': {
        // y = x / √(mean(x²) + eps) · weight over rows of `cols` (the embedder's L2 normalisation uses it with
        // weight 1/√cols)
        const xv = x('x');
        const rows = perRowOf('rows');
        const cols = p.cols;
        const g = this.weight(op, 'weight');
        const x2 = this.reshape(xv.name, [-1, cols]);
        const ms = w.op('ReduceMean', [w.op('Mul', [x2, x2])], { axes: [-1], keepdims: 1 });
        const y = w.op('Mul', [w.op('Div', [x2, w.op('Sqrt', [w.op('Add', [ms, w.float(p.eps)])])]), g.name]);
        this.write(out('y'), rows === 1 ? y : this.reshape(y, [-1, rows * cols]), rows * cols);
        return;
      }
      default:
        throw new ValidationError(
          `op '${op.label}': kernel '${op.kernel.name}' has no ONNX translation; this model cannot run on the ONNX Runtime path`,
        );
    }
  }

  /** Lists `name` as a graph output (once), returns its name. */
  output(v: Val, seen: Set<string>): string {
    if (!seen.has(v.name)) {
      this.w.output(v.name, v.elem, [BATCH, v.perRow]);
      seen.add(v.name);
    }
    return v.name;
  }
}

function ioOf(name: string, decl: TensorDecl, perRow = decl.perRow): OnnxIo {
  return { name, elem: decl.dtype === 'f32' ? 'float32' : 'int32', perRow };
}

/**
 * Translates segment s of a captured graph. Segment 0 reads the model's inputs and the initial carried
 * state; later ones read the carried state the previous segment left (host names = carried names).
 * `withCarried` false drops the carried outputs (the last segment).
 */
export function translateSegment(g: CapturedGraph, s: number, withCarried = true): TranslatedSegment {
  const seg = g.segments[s];
  const tr = new Translator(`offramp.segment${s}`, g.T);
  if (s === 0) {
    for (const c of g.carried) tr.bindEntry(c.buffers[c.initial], ioOf(c.name, c.buffers[c.initial]));
  } else {
    for (const e of g.segments[s - 1].carriedEnd) tr.bindEntry(e.decl, ioOf(e.c.name, e.decl, e.width));
  }
  for (let k = seg.opStart; k < seg.opEnd; k++) tr.emit(g.ops[k]);
  const seen = new Set<string>();
  const logits = tr.output(tr.read(seg.head.logits.decl), seen);
  const gate = seg.head.gateLogit ? tr.output(tr.read(seg.head.gateLogit.decl), seen) : undefined;
  const pooled = tr.output(tr.read(seg.head.pooled.decl), seen);
  const carried: TranslatedSegment['carried'] = [];
  if (withCarried) {
    for (const e of seg.carriedEnd) {
      const v = tr.value(e.decl);
      const wasInput = tr.inputs.some((io) => io.name === v?.name);
      if (!v || wasInput) continue; // unchanged by this segment: the host keeps its copy
      if (v.perRow !== e.width) throw new Error(`internal: carried '${e.c.name}' width ${v.perRow} ≠ ${e.width}`);
      carried.push({ name: e.c.name, output: tr.output(v, seen), perRow: v.perRow });
    }
  }
  return {
    bytes: tr.w.encode(),
    inputs: tr.inputs,
    logits,
    gate,
    pooled,
    classes: seg.head.classes,
    poolDim: seg.head.poolDim,
    carried,
    nodes: tr.w.nodeCount,
  };
}

/**
 * The whole model as one ONNX graph at full depth (stem, every block, the last exit head; no early heads):
 * what a user without early exit would run. Inputs as segment 0's; output: the final logits.
 */
export function translateWholeModel(g: CapturedGraph): { bytes: Uint8Array; inputs: OnnxIo[]; logits: string } {
  const E = g.segments.length;
  const tr = new Translator('offramp.whole', g.T);
  for (const c of g.carried) tr.bindEntry(c.buffers[c.initial], ioOf(c.name, c.buffers[c.initial]));
  for (const op of g.ops) if (op.segment !== 'head' || op.index === E - 1) tr.emit(op);
  const logits = tr.output(tr.read(g.segments[E - 1].head.logits.decl), new Set());
  return { bytes: tr.w.encode(), inputs: tr.inputs, logits };
}
