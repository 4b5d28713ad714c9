// Iteration-level scheduling across depths on the ONNX Runtime CPU path: rows are admitted at segment 0 and
// parked between steps in per-depth row stores (the carried tensors each row's next segment reads, its previous
// exit's pooled state for the similarity signal, its trace), keyed by sequence bucket and segment. `step()` runs
// every non-empty store once as one batch, deepest first (so rows that continue are not run twice in a step and
// the deep stores empty soonest), asks each admitted group's policy about its rows with the group's own policy
// state, and returns the rows that left with the same per-row result `OrtRunner.run` gives. New rows can be
// admitted between any two steps, into the slots the exits freed.
//
// A group (one `admit` call) is what one `OrtRunner.run` call would be: one policy, one policy state sized for
// the group, sample ids 0..n-1, one sequence bucket. A group is never split across two batches of a store, so a
// policy sees the group's rows at an exit together, as it would in a run of the group alone.
import type { EarlyExitModel, ModelInput } from '../engine/model.js';
import type { ExitContext, ExitPolicy, ExitSignals } from '../engine/policy.js';
import { type Runner, type SampleResult, type SampleTrace, unpackSignals } from '../engine/runner.js';
import { ValidationError } from '../errors.js';
import { exitSignals, SIGNALS_PER_ROW } from '../kernels/exit-signals.js';
import { argmax, softmax } from '../util/probs.js';
import type { OrtTensor } from './ort-cpu.js';
import { OrtRunner } from './ort-runner.js';

export interface SteppedRunnerOptions {
  /** Most rows one store runs in one batch (one ONNX Runtime call); a group larger than this is refused. Default 32. */
  maxRows?: number;
  /**
   * Run the store batches of a step side by side (default true: ONNX Runtime runs them on its threads at
   * once); false runs them one after another, deepest first. The results are the same.
   */
  parallel?: boolean;
}

export interface AdmitOptions<Tag = unknown> {
  policy: ExitPolicy<any>;
  /** Keep each row's per-exit signals (SampleResult.trace). */
  trace?: boolean;
  /** Anything the caller wants back with the group's finished rows. */
  tag?: Tag;
}

/** A row that left at this step. */
export interface FinishedRow<Tag = unknown> {
  /** The id `admit` returned for the row's group. */
  group: number;
  /** Row index inside its group (the sample id its policy saw). */
  index: number;
  tag: Tag | undefined;
  result: SampleResult;
  /** Steps the row spent from admission to exit (1 = left at the first segment it ran). */
  steps: number;
}

/** One store batch run in a step. */
export interface StepBatch {
  /** Segment index (= exit index the batch ends at). */
  exit: number;
  bucket: number;
  rows: number;
  /** Rows of the batch that left at its exit. */
  exited: number;
}

export interface StepReport<Tag = unknown> {
  finished: FinishedRow<Tag>[];
  batches: StepBatch[];
  /** Rows that entered each block of the model in this step. */
  rowsPerBlock: number[];
  wallMs: number;
}

type Values = Float32Array | Int32Array;

interface Group<Tag> {
  id: number;
  policy: ExitPolicy<any>;
  state: unknown;
  trace: boolean;
  tag: Tag | undefined;
  n: number;
  bucket: number;
}

interface Row<Tag> {
  group: Group<Tag>;
  index: number;
  /** Per-row values of the model inputs and carried tensors the next segment reads. */
  values: Map<string, Values>;
  prevPooled: Float32Array | null;
  trace: Float32Array[] | null;
  admittedAt: number;
}

export class SteppedRunner<Tag = unknown> {
  readonly ort: OrtRunner;
  readonly model: EarlyExitModel;
  readonly maxRows: number;
  readonly parallel: boolean;
  /** bucket → per-segment stores (rows waiting to run that segment, in arrival order). */
  private readonly stores = new Map<number, Row<Tag>[][]>();
  private nextGroup = 0;
  private steps = 0;
  private liveRows = 0;
  private stepping = false;

  constructor(runner: Runner | OrtRunner, options: SteppedRunnerOptions = {}) {
    const ort = runner instanceof OrtRunner ? runner : runner.ort;
    if (!ort)
      throw new ValidationError(
        `SteppedRunner runs on the ONNX Runtime CPU path only; this runner is on ${(runner as Runner).backend} (use Runner.run, or a device from createDevice({ backend: 'auto' }) on a machine without a GPU)`,
      );
    const maxRows = options.maxRows ?? 32;
    if (!Number.isInteger(maxRows) || maxRows < 1)
      throw new ValidationError(`SteppedRunner: maxRows must be a positive integer, got ${maxRows}`);
    this.ort = ort;
    this.model = ort.model;
    this.maxRows = maxRows;
    this.parallel = options.parallel ?? true;
  }

  /** Rows admitted and not yet finished. */
  get live(): number {
    return this.liveRows;
  }

  /** Rows waiting at each segment (all buckets together). */
  liveAt(): number[] {
    const out = new Array(this.model.exitBlocks.length).fill(0);
    for (const segs of this.stores.values()) for (const [s, rows] of segs.entries()) out[s] += rows.length;
    return out;
  }

  /**
   * Admits a group of rows (one model input, one policy) at segment 0; they run from the next step on.
   * Returns the group id the finished rows carry.
   */
  async admit(input: ModelInput, options: AdmitOptions<Tag>): Promise<number> {
    const { policy } = options;
    if (!policy || typeof policy.decide !== 'function' || typeof policy.init !== 'function')
      throw new ValidationError('admit: options.policy must be an exit policy (with init and decide)');
    const model = this.model;
    const T = model.bucket(input);
    const enc = model.encode(input, T);
    const n = enc.rows;
    if (n < 1) throw new ValidationError('admit: the input has no rows');
    if (n > this.maxRows)
      throw new ValidationError(
        `admit: a group of ${n} rows is larger than maxRows (${this.maxRows}); admit it in parts`,
      );
    const { graph } = await this.ort.sessions(T);
    const E = model.exitBlocks.length;
    const full = graph.flopsAtExit[E - 1];
    const state: unknown = policy.init({
      batchSize: n,
      numExits: E,
      numClasses: model.numClasses,
      exitBlocks: model.exitBlocks,
      costFractions: graph.flopsAtExit.map((f) => f / full),
    });
    const group: Group<Tag> = {
      id: this.nextGroup++,
      policy,
      state,
      trace: Boolean(options.trace),
      tag: options.tag,
      n,
      bucket: T,
    };
    const arrays = Object.entries(enc.data).map(([name, data]) => {
      const arr = data instanceof Float32Array ? data : Int32Array.from(data as ArrayLike<number>);
      return { name, arr, perRow: arr.length / n };
    });
    let segs = this.stores.get(T);
    if (!segs) {
      segs = Array.from({ length: E }, () => []);
      this.stores.set(T, segs);
    }
    for (let i = 0; i < n; i++) {
      const values = new Map<string, Values>();
      for (const a of arrays) values.set(a.name, a.arr.subarray(i * a.perRow, (i + 1) * a.perRow));
      segs[0].push({
        group,
        index: i,
        values,
        prevPooled: null,
        trace: group.trace ? [] : null,
        admittedAt: this.steps,
      });
    }
    this.liveRows += n;
    return group.id;
  }

  /**
   * Runs every non-empty store once and returns the rows that left. Each store's batch is taken before any
   * runs, so a row advances one segment per step. A step that fails forgets every row (as `clear()`).
   */
  async step(): Promise<StepReport<Tag>> {
    if (this.stepping) throw new ValidationError('step: the previous step has not finished (await it first)');
    this.stepping = true;
    const t0 = performance.now();
    const model = this.model;
    const E = model.exitBlocks.length;
    const C = model.numClasses;
    const report: StepReport<Tag> = {
      finished: [],
      batches: [],
      rowsPerBlock: new Array(model.numBlocks).fill(0),
      wallMs: 0,
    };
    try {
      this.steps++;
      // take every store's batch first (deepest first), so that rows moved on in this step wait for the next
      const work: {
        T: number;
        segs: Row<Tag>[][];
        graph: Awaited<ReturnType<OrtRunner['sessions']>>['graph'];
        seg: Awaited<ReturnType<OrtRunner['sessions']>>['segments'][number];
        s: number;
        rows: Row<Tag>[];
        feeds: Record<string, OrtTensor>;
      }[] = [];
      const buckets = [...this.stores];
      const compiled = await Promise.all(buckets.map(([T]) => this.ort.sessions(T)));
      buckets.forEach(([T, segs], k) => {
        const { graph, segments } = compiled[k];
        for (let s = segments.length - 1; s >= 0; s--) {
          const rows = takeGroups(segs[s], this.maxRows);
          if (!rows.length) continue;
          const seg = segments[s];
          const { tr } = seg;
          const live = rows.length;
          const feeds: Record<string, OrtTensor> = {};
          for (const io of tr.inputs) {
            const float = io.elem === 'float32';
            const data = float ? new Float32Array(live * io.perRow) : new Int32Array(live * io.perRow);
            rows.forEach((row, r) => {
              const v = row.values.get(io.name);
              if (!v) throw new Error(`internal: segment ${s} reads '${io.name}', which row ${r} does not hold`);
              if (v.length !== io.perRow)
                throw new Error(
                  `internal: '${io.name}' has ${v.length} values per row, segment ${s} wants ${io.perRow}`,
                );
              data.set(v, r * io.perRow);
            });
            feeds[io.name] = new this.ort.ortCpu.ort.Tensor(float ? 'float32' : 'int32', data, [live, io.perRow]);
          }
          work.push({ T, segs, graph, seg, s, rows, feeds });
        }
      });
      // run them: side by side (ONNX Runtime's threads take them at once) or one after another
      let outs: Record<string, OrtTensor>[];
      if (this.parallel) outs = await Promise.all(work.map((w) => w.seg.session.run(w.feeds)));
      else {
        outs = [];
        for (const w of work) outs.push(await w.seg.session.run(w.feeds));
      }
      for (const [k, { T, segs, graph, seg, s, rows }] of work.entries()) {
        const full = graph.flopsAtExit[E - 1];
        const { tr } = seg;
        const live = rows.length;
        const out = outs[k];
        const logits = out[tr.logits].data as Float32Array;
        const pooled = out[tr.pooled].data as Float32Array;
        const gate = tr.gate ? (out[tr.gate].data as Float32Array) : undefined;
        for (const b of seg.blocks) report.rowsPerBlock[b] += live;

        const hasPrev = seg.exit > 0 && rows[0].prevPooled !== null && rows[0].prevPooled.length === tr.poolDim;
        let prev: Float32Array = new Float32Array(1);
        if (hasPrev) {
          prev = new Float32Array(live * tr.poolDim);
          for (const [r, row] of rows.entries()) prev.set(row.prevPooled!, r * tr.poolDim);
        }
        const raw = new Float32Array(live * SIGNALS_PER_ROW);
        exitSignals.reference(
          { logits, gateLogit: gate ?? new Float32Array(1), pooled, prevPooled: prev, signals: raw },
          { rows: live, classes: tr.classes, dim: tr.poolDim },
          { gate: Boolean(gate), similarity: hasPrev },
        );
        const isLast = seg.exit === E - 1;
        const ctx: ExitContext = {
          exitIndex: seg.exit,
          numExits: E,
          block: seg.block,
          numBlocks: model.numBlocks,
          isLast,
          costFraction: graph.flopsAtExit[seg.exit] / full,
          numClasses: C,
        };
        // one decide call per group, with the group's state and its rows in index order
        const leave = new Uint8Array(live);
        for (let a = 0; a < live; ) {
          let b = a + 1;
          while (b < live && rows[b].group === rows[a].group) b++;
          const g = rows[a].group;
          const count = b - a;
          const sig = signalsOf(raw, a, count, rows);
          if (g.policy.needs?.includes('logits')) sig.logits = logits.slice(a * C, b * C);
          const decided = g.policy.decide(ctx, sig, g.state);
          if (!decided || decided.length !== count)
            throw new ValidationError(
              `policy '${g.policy.name}' returned ${decided?.length ?? 'nothing'} decisions for ${count} rows at exit ${seg.exit}`,
            );
          for (let r = 0; r < count; r++) leave[a + r] = isLast || decided[r] ? 1 : 0;
          a = b;
        }
        let exited = 0;
        rows.forEach((row, r) => {
          if (row.trace) row.trace.push(raw.slice(r * SIGNALS_PER_ROW, (r + 1) * SIGNALS_PER_ROW));
          if (leave[r]) {
            exited++;
            this.liveRows--;
            const z = logits.slice(r * C, (r + 1) * C);
            const f = graph.flopsAtExit[seg.exit];
            const result: SampleResult = {
              logits: z,
              probs: softmax(z),
              prediction: argmax(z),
              exitIndex: seg.exit,
              exitBlock: model.exitBlocks[seg.exit],
              flops: f,
              costFraction: f / full,
            };
            if (row.trace) result.trace = traceOf(row.trace);
            report.finished.push({
              group: row.group.id,
              index: row.index,
              tag: row.group.tag,
              result,
              steps: this.steps - row.admittedAt,
            });
          } else {
            for (const c of tr.carried) {
              const o = out[c.output].data as Float32Array;
              row.values.set(c.name, o.subarray(r * c.perRow, (r + 1) * c.perRow));
            }
            row.prevPooled = pooled.subarray(r * tr.poolDim, (r + 1) * tr.poolDim);
            segs[s + 1].push(row);
          }
        });
        report.batches.push({ exit: seg.exit, bucket: T, rows: live, exited });
      }
      for (const [T, segs] of this.stores) if (segs.every((rows) => rows.length === 0)) this.stores.delete(T);
    } catch (e) {
      // rows taken for this step are lost with it: forget every row, so that the counts stay true
      this.clear();
      throw e;
    } finally {
      this.stepping = false;
    }
    report.wallMs = performance.now() - t0;
    return report;
  }

  /** Forgets every row (their results will never be reported) and returns how many there were. */
  clear(): number {
    const n = this.liveRows;
    this.stores.clear();
    this.liveRows = 0;
    return n;
  }
}

/** Takes rows from the front of a store, whole groups only (a group's rows are contiguous), up to `max`. */
function takeGroups<Tag>(store: Row<Tag>[], max: number): Row<Tag>[] {
  let k = 0;
  while (k < store.length) {
    let e = k + 1;
    while (e < store.length && store[e].group === store[k].group) e++;
    if (e > max) break;
    k = e;
  }
  return store.splice(0, k);
}

function signalsOf<Tag>(raw: Float32Array, from: number, count: number, rows: Row<Tag>[]): ExitSignals {
  const ids = Int32Array.from({ length: count }, (_, r) => rows[from + r].index);
  return unpackSignals(raw.subarray(from * SIGNALS_PER_ROW), count, ids);
}

function traceOf(rows: Float32Array[]): SampleTrace {
  const tr: SampleTrace = { maxProb: [], entropy: [], margin: [], argmax: [], gate: [], similarity: [] };
  for (const row of rows) {
    tr.maxProb.push(row[0]);
    tr.entropy.push(row[1]);
    tr.margin.push(row[2]);
    tr.argmax.push(row[3]);
    tr.gate.push(row[4]);
    tr.similarity.push(row[5]);
  }
  return tr;
}
