// The early-exit loop on ONNX Runtime: one session per (segment, sequence bucket), built once from the
// translated layer graph and cached (the batch dimension is symbolic, so one session serves every live-row
// count without padding rows); weights are initializers inside each session, loaded once. After each segment
// the host computes the exit signals (the exit-signals kernel's reference), asks the policy, calls the hooks in
// the Runner's order, retires the exiting rows and compacts the carried state (a row gather) before the next
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
  /** Which of the workspace's two buffers of this name holds it (undefined: an array the run does not own). */
  slot?: 0 | 1;
}

/**
 * The buffers one run writes the carried state into (two per carried tensor: a segment reads one and writes
 * the other), handed to ONNX Runtime as preallocated outputs. Reused across runs, so a run allocates no
 * carried state: without them every segment's carried output (4 MB for a 32 × 128 × 256 hidden state) is a
 * fresh external buffer, and that churn costs full garbage collections between segments. One workspace
 * serves one run at a time; concurrent runs take their own.
 */
class Workspace {
  private readonly bufs = new Map<string, [Float32Array | Int32Array, Float32Array | Int32Array]>();
  /** Buffer `slot` of `name` with room for at least `length` values. */
  get(name: string, elem: 'float32' | 'int32', length: number, slot: 0 | 1): Float32Array | Int32Array {
    let pair = this.bufs.get(name);
    if (!pair || pair[slot].length < length || (elem === 'float32') !== pair[slot] instanceof Float32Array) {
      const make = () => (elem === 'float32' ? new Float32Array(length) : new Int32Array(length));
      pair = pair && pair[1 - slot].length >= length ? pair : [make(), make()];
      if (pair[slot].length < length || (elem === 'float32') !== pair[slot] instanceof Float32Array)
        pair[slot] = make();
      this.bufs.set(name, pair);
    }
    return pair[slot];
  }
}

export class OrtRunner {
  private weights: Promise<HostWeights> | null = null;
  private readonly compiled = new Map<number, Promise<Compiled>>();
  private disposed = false;
  private sessionsBuilt = 0;
  private readonly idle: Workspace[] = [];

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

    const ws = this.idle.pop() ?? new Workspace();
    try {
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
        // carried outputs go into the workspace buffer the inputs do not use; the heads' small outputs are ORT's
        const fetches: Record<string, OrtTensor | null> = { [tr.logits]: null, [tr.pooled]: null };
        if (tr.gate) fetches[tr.gate] = null;
        const slots = new Map<string, 0 | 1>();
        for (const c of tr.carried) {
          // an output that is also a head's or another carried tensor's stays ORT's (shared, so not gathered in place)
          if (c.elem === 'int64' || c.output in fetches || tr.carried.some((d) => d !== c && d.output === c.output)) {
            fetches[c.output] = null;
            continue;
          }
          const slot: 0 | 1 = host.get(c.name)?.slot === 0 ? 1 : 0;
          const buf = ws.get(c.name, c.elem, n * c.perRow, slot).subarray(0, live * c.perRow);
          fetches[c.output] = new this.ortCpu.ort.Tensor(c.elem, buf, [live, c.perRow]);
          slots.set(c.name, slot);
        }
        const out = await seg.session.run(feeds, fetches);
        const logits = out[tr.logits].data as Float32Array;
        const pooled = out[tr.pooled].data as Float32Array;
        const gate = tr.gate ? (out[tr.gate].data as Float32Array) : undefined;
        for (const c of tr.carried)
          host.set(c.name, { data: out[c.output].data as Float32Array, perRow: c.perRow, slot: slots.get(c.name) });

        // hooks of the blocks before the exit block, in the Runner's order
        for (const b of seg.blocks) {
          for (const h of hooks) h.beforeBlock?.(ctxOf(b, live));
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
        // compaction: a row gather of everything later segments read (in place in the workspace's buffers: the
        // staying rows are in increasing order, so row i moves to i ≤ its old index)
        if (stay.length > 0 && stay.length < live) {
          prevPooled = { data: gatherRows(pooled, tr.poolDim, stayRows) as Float32Array, dim: tr.poolDim };
          for (const [name, h] of host) {
            const data =
              h.slot === undefined
                ? gatherRows(h.data, h.perRow, stayRows)
                : gatherRowsInPlace(h.data, h.perRow, stayRows);
            host.set(name, { data, perRow: h.perRow, slot: h.slot });
          }
        } else {
          prevPooled = { data: pooled, dim: tr.poolDim };
        }
        live = stay.length;
        ids = Int32Array.from(stay);
      }
    } finally {
      this.idle.push(ws);
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

/** Moves rows[i] to row i within `data` (rows increasing) and returns the first rows.length rows. */
function gatherRowsInPlace(data: Float32Array | Int32Array, perRow: number, rows: number[]): Float32Array | Int32Array {
  rows.forEach((r, i) => {
    if (r !== i) data.copyWithin(i * perRow, r * perRow, (r + 1) * perRow);
  });
  return data.subarray(0, rows.length * perRow);
}

function softmax(z: Float32Array): Float32Array {
  let m = Number.NEGATIVE_INFINITY;
  for (const v of z) m = Math.max(m, v);
  const p = new Float32Array(z.length);
  let s = 0;
  for (let i = 0; i < z.length; i++) s += p[i] = Math.exp(z[i] - m);
  for (let i = 0; i < z.length; i++) p[i] /= s;
  return p;
}

function argmax(z: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < z.length; i++) if (z[i] > z[best]) best = i;
  return best;
}
