// The early-exit loop on ONNX Runtime: one session per (segment, sequence bucket), built once from the
// translated layer graph and cached (the batch dimension is symbolic, so one session serves every live-row
// count without padding rows); weights are initializers inside each session, loaded once. After each segment
// the host computes the exit signals (the exit-signals kernel's reference), asks the policy, calls the hooks in
// the Runner's order (beforeBlock of a segment's first block just before its session call, the rest after it), retires the exiting rows and compacts the carried state (a row gather) before the next
// segment. Host mode only: on the CPU the host decides at no readback cost.
import type { BlockContext, RunSummary } from '../engine/hooks.js';
import type { EarlyExitModel, ModelInput } from '../engine/model.js';
import type { ExitContext } from '../engine/policy.js';
import {
  type RunOptions,
  type RunResult,
  type SampleResult,
  type SampleTrace,
  unpackSignals,
} from '../engine/runner.js';
import { ValidationError } from '../errors.js';
import { exitSignals, SIGNALS_PER_ROW } from '../kernels/exit-signals.js';
import type { Device } from '../runtime/device.js';
import type { AnyTypedArray } from '../runtime/dtype.js';
import { argmax, softmax } from '../util/probs.js';
import type { OrtCpu, OrtSession, OrtTensor } from './ort-cpu.js';
import {
  type CapturedGraph,
  captureGraph,
  type HostWeights,
  type TranslatedSegment,
  translateSegment,
} from './translate.js';

interface CompiledSegment {
  tr: TranslatedSegment;
  session: OrtSession;
  exit: number;
  block: number;
  blocks: number[];
}

interface Compiled {
  graph: CapturedGraph;
  segments: CompiledSegment[];
}

/** Host state of one carried tensor or model input: rows × perRow values. */
interface HostArray {
  data: Float32Array | Int32Array;
  perRow: number;
  /** A segment's output: onnxruntime-node returns every output in a fresh buffer, so the run owns it. */
  owned?: boolean;
}

export class OrtRunner {
  private weights: Promise<HostWeights> | null = null;
  private readonly compiled = new Map<number, Promise<Compiled>>();
  private disposed = false;
  private sessionsBuilt = 0;

  constructor(
    readonly ortCpu: OrtCpu,
    readonly device: Device,
    readonly model: EarlyExitModel,
  ) {}

  /** Host copies of the model's weights (the device's own arrays on a CPU device; read back once from a GPU). */
  hostWeights(): Promise<HostWeights> {
    if (!this.weights) {
      this.weights = (async () => {
        const out: HostWeights = new Map();
        for (const [name, t] of this.model.weights) {
          const data = ArrayBuffer.isView(t.handle) ? (t.handle as AnyTypedArray) : await t.read();
          out.set(name, { shape: t.shape, data });
        }
        return out;
      })();
    }
    return this.weights;
  }

  /** The sessions of sequence bucket T, built on first use. */
  sessions(T: number): Promise<Compiled> {
    let c = this.compiled.get(T);
    if (!c) {
      c = (async () => {
        const graph = captureGraph(this.model, await this.hostWeights(), T);
        const E = graph.segments.length;
        const segments: CompiledSegment[] = [];
        for (let s = 0; s < E; s++) {
          const tr = translateSegment(graph, s, s < E - 1);
          const session = await this.ortCpu.createSession(tr.bytes);
          this.sessionsBuilt++;
          const seg = graph.segments[s];
          segments.push({ tr, session, exit: seg.exit, block: this.model.exitBlocks[seg.exit], blocks: seg.blocks });
        }
        return { graph, segments };
      })();
      c.catch(() => this.compiled.delete(T));
      this.compiled.set(T, c);
    }
    return c;
  }

  /** ONNX Runtime sessions built so far (one per segment and sequence bucket). */
  get sessionCount(): number {
    return this.sessionsBuilt;
  }

  async run(input: ModelInput, options: RunOptions): Promise<RunResult> {
    if (this.disposed) throw new ValidationError('run: this runner was disposed');
    const t0 = performance.now();
    const { policy } = options;
    if (options.mode === 'device')
      throw new ValidationError(
        `mode 'device' needs a GPU device with compiled programs; this runner is on ${this.ortCpu.describe()}: use mode 'host'`,
      );
    if (options.mode !== undefined && options.mode !== 'auto' && options.mode !== 'host')
      throw new ValidationError(`unknown mode '${options.mode}': use 'host', 'device' or 'auto'`);
    const mode = 'host' as const;
    const hooks = options.hooks ?? [];
    const model = this.model;
    const T = model.bucket(input);
    const enc = model.encode(input, T);
    const { graph, segments } = await this.sessions(T);
    const n = enc.rows;
    const E = model.exitBlocks.length;
    const C = model.numClasses;
    const full = graph.flopsAtExit[E - 1];
    const costFractions = graph.flopsAtExit.map((f) => f / full);
    const info = { batchSize: n, numExits: E, numClasses: C, exitBlocks: model.exitBlocks, costFractions };
    const state: unknown = policy.init(info);

    const host = new Map<string, HostArray>();
    for (const [name, data] of Object.entries(enc.data)) {
      const arr = data instanceof Float32Array ? data : Int32Array.from(data as ArrayLike<number>);
      host.set(name, { data: arr, perRow: arr.length / n });
    }
    let live = n;
    let ids = Int32Array.from({ length: n }, (_, i) => i);
    const outLogits = new Float32Array(n * C);
    const exitOf = new Int32Array(n).fill(-1);
    const traceRows = options.trace ? Array.from({ length: n }, () => [] as Float32Array[]) : null;
    let prevPooled: { data: Float32Array; dim: number } | null = null;
    const ctxOf = (block: number, liveRows: number): BlockContext => ({ block, liveRows, batchSize: n, mode });

    for (let s = 0; s < segments.length && live > 0; s++) {
      const seg = segments[s];
      const { tr } = seg;
      const feeds: Record<string, OrtTensor> = {};
      for (const io of tr.inputs) {
        const h = host.get(io.name);
        if (!h) throw new Error(`internal: segment ${s} reads '${io.name}', which the host does not hold`);
        if (h.perRow !== io.perRow)
          throw new Error(`internal: '${io.name}' has ${h.perRow} values per row, segment ${s} wants ${io.perRow}`);
        feeds[io.name] = new this.ortCpu.ort.Tensor(io.elem === 'float32' ? 'float32' : 'int32', h.data, [
          live,
          io.perRow,
        ]);
      }
      // the segment's first block starts with its session call (the same hook order as the Runner's; a hook
      // timing a segment sees its start here)
      for (const h of hooks) h.beforeBlock?.(ctxOf(seg.blocks[0], live));
      const out = await seg.session.run(feeds);
      const logits = out[tr.logits].data as Float32Array;
      const pooled = out[tr.pooled].data as Float32Array;
      const gate = tr.gate ? (out[tr.gate].data as Float32Array) : undefined;
      for (const c of tr.carried)
        host.set(c.name, { data: out[c.output].data as Float32Array, perRow: c.perRow, owned: true });

      // hooks of the blocks before the exit block, in the Runner's order
      for (const b of seg.blocks) {
        if (b !== seg.blocks[0]) for (const h of hooks) h.beforeBlock?.(ctxOf(b, live));
        if (b !== seg.block) for (const h of hooks) h.afterBlock?.(ctxOf(b, live), { liveRows: live });
      }

      // signals, exactly as the exit-signals kernel defines them
      const hasPrev = seg.exit > 0 && prevPooled !== null && prevPooled.dim === tr.poolDim;
      const raw = new Float32Array(live * SIGNALS_PER_ROW);
      exitSignals.reference(
        {
          logits,
          gateLogit: gate ?? new Float32Array(1),
          pooled,
          prevPooled: hasPrev ? prevPooled!.data : new Float32Array(1),
          signals: raw,
        },
        { rows: live, classes: tr.classes, dim: tr.poolDim },
        { gate: Boolean(gate), similarity: hasPrev },
      );
      const signals = unpackSignals(raw, live, ids);
      if (policy.needs?.includes('logits')) signals.logits = logits;
      if (traceRows) for (let r = 0; r < live; r++) traceRows[ids[r]].push(raw.slice(r * 8, r * 8 + 8));
      const isLast = seg.exit === E - 1;
      const ctx: ExitContext = {
        exitIndex: seg.exit,
        numExits: E,
        block: seg.block,
        numBlocks: model.numBlocks,
        isLast,
        costFraction: costFractions[seg.exit],
        numClasses: C,
      };
      const decided = policy.decide(ctx, signals, state);
      if (!decided || decided.length !== live) {
        throw new ValidationError(
          `policy '${policy.name}' returned ${decided?.length ?? 'nothing'} decisions for ${live} rows at exit ${seg.exit}`,
        );
      }
      const exiting: number[] = [];
      const stay: number[] = [];
      const stayRows: number[] = [];
      for (let r = 0; r < live; r++) {
        if (isLast || decided[r]) {
          exiting.push(ids[r]);
          exitOf[ids[r]] = seg.exit;
          outLogits.set(logits.subarray(r * C, (r + 1) * C), ids[r] * C);
        } else {
          stay.push(ids[r]);
          stayRows.push(r);
        }
      }
      const ctxB = ctxOf(seg.block, live);
      for (const h of hooks) {
        h.afterBlock?.(ctxB, {
          liveRows: stay.length,
          exit: { index: seg.exit, signals, exiting: Int32Array.from(exiting) },
        });
        for (const sid of exiting) h.onExit?.(sid, { exitIndex: seg.exit, block: seg.block });
      }
      // compaction: a row gather of everything later segments read
      // (in place for the segments' outputs: the staying rows are increasing, so each row moves to a lower or
      // the same index; no 4 MB allocation per boundary for the hidden state)
      if (stay.length > 0 && stay.length < live) {
        prevPooled = { data: gatherRows(pooled, tr.poolDim, stayRows) as Float32Array, dim: tr.poolDim };
        const done = new Map<Float32Array | Int32Array, Float32Array | Int32Array>();
        for (const [name, h] of host) {
          let data = done.get(h.data); // one output shared by two carried names is gathered once
          if (!data) {
            data = h.owned ? gatherRowsInPlace(h.data, h.perRow, stayRows) : gatherRows(h.data, h.perRow, stayRows);
            done.set(h.data, data);
          }
          host.set(name, { data, perRow: h.perRow, owned: h.owned });
        }
      } else {
        prevPooled = { data: pooled, dim: tr.poolDim };
      }
      live = stay.length;
      ids = Int32Array.from(stay);
    }

    const samples: SampleResult[] = [];
    const exitCounts = new Array(E).fill(0);
    let flops = 0;
    let exitBlockSum = 0;
    for (let s = 0; s < n; s++) {
      const exitIndex = exitOf[s];
      if (exitIndex < 0) throw new Error(`internal: sample ${s} has no exit recorded`);
      const logits = outLogits.slice(s * C, (s + 1) * C);
      const f = graph.flopsAtExit[exitIndex];
      flops += f;
      exitCounts[exitIndex]++;
      exitBlockSum += model.exitBlocks[exitIndex];
      const sample: SampleResult = {
        logits,
        probs: softmax(logits),
        prediction: argmax(logits),
        exitIndex,
        exitBlock: model.exitBlocks[exitIndex],
        flops: f,
        costFraction: f / full,
      };
      if (traceRows) {
        const tr: SampleTrace = { maxProb: [], entropy: [], margin: [], argmax: [], gate: [], similarity: [] };
        for (const row of traceRows[s]) {
          tr.maxProb.push(row[0]);
          tr.entropy.push(row[1]);
          tr.margin.push(row[2]);
          tr.argmax.push(row[3]);
          tr.gate.push(row[4]);
          tr.similarity.push(row[5]);
        }
        sample.trace = tr;
      }
      samples.push(sample);
    }
    const rowsPerBlock = new Array(model.numBlocks).fill(0);
    for (const s of samples) for (let i = 0; i <= s.exitBlock; i++) rowsPerBlock[i]++;
    const summary: RunSummary = {
      batchSize: n,
      mode,
      exitCounts,
      rowsPerBlock,
      meanExitBlock: exitBlockSum / n,
      flops,
      fullDepthFlops: full * n,
      readbacks: 0,
      wallMs: performance.now() - t0,
      backend: 'ort-cpu',
    };
    for (const h of hooks) h.onRunEnd?.(summary);
    return { samples, summary };
  }

  /** Per-row FLOPs at each exit, and at full depth, for sequence length T (as the GPU program counts them). */
  async costs(T: number): Promise<{ atExit: number[]; full: number }> {
    const { graph } = await this.sessions(T);
    return { atExit: graph.flopsAtExit, full: graph.flopsAtExit[graph.flopsAtExit.length - 1] };
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const all = [...this.compiled.values()];
    this.compiled.clear();
    for (const c of all) {
      try {
        for (const s of (await c).segments) await s.session.release();
      } catch {
        // a build that failed has nothing to release
      }
    }
  }
}

function gatherRows(data: Float32Array | Int32Array, perRow: number, rows: number[]): Float32Array | Int32Array {
  const out =
    data instanceof Float32Array ? new Float32Array(rows.length * perRow) : new Int32Array(rows.length * perRow);
  rows.forEach((r, i) => {
    out.set(data.subarray(r * perRow, (r + 1) * perRow), i * perRow);
  });
  return out;
}

/** Moves row rows[i] to row i within `data` (rows increasing) and returns the first rows.length rows. */
function gatherRowsInPlace(data: Float32Array | Int32Array, perRow: number, rows: number[]): Float32Array | Int32Array {
  rows.forEach((r, i) => {
    if (r !== i) data.copyWithin(i * perRow, r * perRow, (r + 1) * perRow);
  });
  return data.subarray(0, rows.length * perRow);
}
