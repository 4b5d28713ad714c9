// Cascades across separate models (window-based early-exit cascades): stage k runs model k (with its own
// exits and exit policy) on the samples still live; its output joins the combined output, the log of the
// mean of the softmaxes of the stages run so far; a deferral policy reads the combined output's signals and
// decides which samples leave after this stage; the rest are gathered into a dense batch for the next stage.
// The last stage takes every sample left. The combination and the signals run as kernels on the device in
// both modes: host mode reads the signals back and runs the policy in TypeScript, device mode runs the
// policy's WGSL form on the GPU and reads back only the flags, so both decide on the same f32 values and give
// identical results. FLOPs per sample are the sum of what each stage spent on it (MACs ≈ FLOPs / 2).
import { ValidationError } from '../errors.js';
import { exitSignals, SIGNALS_PER_ROW } from '../kernels/exit-signals.js';
import type { Device } from '../runtime/device.js';
import { GpuDevice } from '../runtime/gpu-device.js';
import type { Tensor } from '../runtime/tensor.js';
import { argmax } from '../util/probs.js';
import { cascadeCombine } from './cascade-kernels.js';
import { decideKernel } from './engine-kernels.js';
import type { ExecutionMode } from './hooks.js';
import type { ModelInput } from './model.js';
import { type ExitContext, type ExitPolicy, neverExit, type PolicyInit } from './policy.js';
import { type Runner, unpackSignals } from './runner.js';

export interface CascadeStage {
  runner: Runner;
  /** Exit policy inside this stage's model (default: none, the model runs to its last exit). */
  policy?: ExitPolicy<any>;
  /** Name for summaries (default `stage<k>`). */
  name?: string;
}

export interface CascadeOptions {
  /** Largest batch one pass handles; bigger inputs run in chunks. Default: the smallest stage runner's maxBatch. */
  maxBatch?: number;
}

export interface CascadeRunOptions {
  /**
   * Decides after each stage, per sample, on the signals of the combined output (maxProb, entropy, margin,
   * argmax; gate and similarity are NaN), whether the sample leaves: `exitIndex` is the stage index,
   * `costFraction` the share of the whole cascade's full-depth FLOPs spent by then. The last stage takes all.
   */
  policy: ExitPolicy<any>;
  /**
   * 'auto' (default): device mode on a GPU when the policy and every stage policy have a WGSL form and no stage
   * runs on the ONNX Runtime CPU path (there, host mode, as a runner alone).
   */
  mode?: ExecutionMode | 'auto';
  /** Keep each sample's stage logits (one array per stage it ran). */
  members?: boolean;
}

export interface CascadeSample {
  /** Combined output: log of the mean of the softmaxes of the stages this sample ran. */
  logits: Float32Array;
  /** The mean of those softmaxes (exp of `logits`). */
  probs: Float32Array;
  prediction: number;
  /** Stage after which the sample left (0-based). */
  stage: number;
  /** The exit index inside each stage's model the sample took, one per stage it ran. */
  stageExits: number[];
  /** FLOPs spent on this sample over all the stages it ran. */
  flops: number;
  /** flops / FLOPs of every stage at full depth. */
  costFraction: number;
  /** Each stage's own logits (with `members`). */
  members?: Float32Array[];
}

export interface CascadeSummary {
  batchSize: number;
  mode: ExecutionMode;
  /** Samples leaving after each stage. */
  stageCounts: number[];
  /** Samples each stage ran. */
  rowsPerStage: number[];
  flops: number;
  /** FLOPs of every stage at full depth for every sample. */
  fullFlops: number;
  wallMs: number;
}

export interface CascadeResult {
  samples: CascadeSample[];
  summary: CascadeSummary;
}

interface Buffers {
  logits: Tensor;
  combined: Tensor;
  probSum: Tensor;
  ids: Tensor;
  signals: Tensor;
  count: Tensor;
  flags: Tensor;
  dummy: Tensor;
  state: Tensor | null;
}

export class Cascade {
  readonly device: Device;
  readonly maxBatch: number;
  readonly numClasses: number;
  private readonly stages: CascadeStage[];
  private bufs: Buffers | null = null;
  private stateSize = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(stages: readonly (CascadeStage | Runner)[], options: CascadeOptions = {}) {
    if (!Array.isArray(stages) || stages.length < 1 || stages.length > 16)
      throw new ValidationError(`Cascade: needs 1 to 16 stages, got ${Array.isArray(stages) ? stages.length : stages}`);
    this.stages = stages.map((s, k) => {
      const st = 'runner' in s ? s : { runner: s as Runner };
      return { ...st, name: st.name ?? `stage${k}` };
    });
    const first = this.stages[0].runner;
    this.device = first.device;
    this.numClasses = first.model.numClasses;
    this.stages.forEach((s, k) => {
      if (s.runner.device !== this.device)
        throw new ValidationError(
          `Cascade: stage ${k} (${s.name}) runs on another device than stage 0; all stages must share one device`,
        );
      if (s.runner.model.numClasses !== this.numClasses)
        throw new ValidationError(
          `Cascade: stage ${k} (${s.name}) has ${s.runner.model.numClasses} classes, stage 0 has ${this.numClasses}; every stage must predict the same classes`,
        );
    });
    const smallest = Math.min(...this.stages.map((s) => s.runner.maxBatch));
    this.maxBatch = options.maxBatch ?? smallest;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1 || this.maxBatch > 4096)
      throw new ValidationError(`Cascade: maxBatch must be an integer in [1, 4096], got ${options.maxBatch}`);
  }

  get numStages(): number {
    return this.stages.length;
  }

  /** Per-row FLOPs of each stage at full depth, for an input like `input`. */
  stageCosts(input: ModelInput): number[] {
    return this.stages.map((s) => s.runner.costs(s.runner.model.bucket(input)).full);
  }

  private resolveMode(policy: ExitPolicy<any>, mode: CascadeRunOptions['mode']): ExecutionMode {
    const m = mode ?? 'auto';
    const gpu = this.device instanceof GpuDevice;
    const stagesOk = this.stages.every((s) => (s.policy ?? neverExit()).device);
    // auto: as a runner alone would: host mode where the stages run on ONNX Runtime's CPU path
    const ort = this.stages.some((s) => s.runner.ort);
    if (m === 'auto')
      return gpu && !ort && policy.device && stagesOk && !policy.needs?.includes('logits') ? 'device' : 'host';
    if (m === 'device') {
      if (!gpu)
        throw new ValidationError(
          `cascade: mode 'device' needs a GPU device; this one is ${this.device.describe()}: use mode 'host'`,
        );
      if (!policy.device)
        throw new ValidationError(`cascade: policy '${policy.name}' has no device (WGSL) form: use mode 'host'`);
      if (policy.needs?.includes('logits'))
        throw new ValidationError(
          `cascade: policy '${policy.name}' needs raw logits, which device mode does not provide: use mode 'host'`,
        );
      if (!stagesOk) throw new ValidationError("cascade: a stage's policy has no device (WGSL) form: use mode 'host'");
      return 'device';
    }
    if (m !== 'host') throw new ValidationError(`cascade: unknown mode '${m}': use 'host', 'device' or 'auto'`);
    return 'host';
  }

  /**
   * Runs the cascade on a batch. Overlapping calls are safe: they share the cascade's device buffers, so they
   * run one after another in call order.
   */
  run(input: ModelInput, options: CascadeRunOptions): Promise<CascadeResult> {
    const next = this.queue.then(() => this.runNow(input, options));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(input: ModelInput, options: CascadeRunOptions): Promise<CascadeResult> {
    if (!options || typeof options.policy?.decide !== 'function')
      throw new ValidationError('cascade.run: options.policy must be an exit policy (the deferral rule)');
    const n = this.stages[0].runner.model.batchSize(input);
    if (n === 0) throw new ValidationError('cascade.run: the batch is empty');
    const mode = this.resolveMode(options.policy, options.mode);
    const samples: CascadeSample[] = [];
    const t0 = performance.now();
    const summary: CascadeSummary = {
      batchSize: n,
      mode,
      stageCounts: this.stages.map(() => 0),
      rowsPerStage: this.stages.map(() => 0),
      flops: 0,
      fullFlops: 0,
      wallMs: 0,
    };
    for (let a = 0; a < n; a += this.maxBatch) {
      const b = Math.min(n, a + this.maxBatch);
      const chunk = a === 0 && b === n ? input : gatherInputRows(input, n, range(a, b));
      // full-depth costs of this chunk's sequence-length bucket in each stage
      const costs = this.stageCosts(chunk);
      samples.push(...(await this.runChunk(chunk, b - a, costs, mode, options, summary)));
      summary.fullFlops += (b - a) * costs.reduce((x, y) => x + y, 0);
    }
    for (const s of samples) summary.flops += s.flops;
    summary.wallMs = performance.now() - t0;
    return { samples, summary };
  }

  private buffers(policy: ExitPolicy<any>, mode: ExecutionMode): Buffers {
    const dev = this.device;
    const B = this.maxBatch;
    const C = this.numClasses;
    if (!this.bufs) {
      this.bufs = {
        logits: dev.tensor('f32', [B * C], undefined, 'cascade.logits'),
        combined: dev.tensor('f32', [B * C], undefined, 'cascade.combined'),
        probSum: dev.tensor('f32', [B * C], undefined, 'cascade.probSum'),
        ids: dev.tensor('u32', [B], undefined, 'cascade.ids'),
        signals: dev.tensor('f32', [B * SIGNALS_PER_ROW], undefined, 'cascade.signals'),
        count: dev.tensor('u32', [1], undefined, 'cascade.count'),
        flags: dev.tensor('u32', [B], undefined, 'cascade.flags'),
        dummy: dev.tensor('f32', [1], [0], 'cascade.dummy'),
        state: null,
      };
    }
    if (mode === 'device') {
      const size = Math.max(1, policy.device!.stateSize);
      if (!this.bufs.state || this.stateSize < size) {
        if (this.bufs.state) dev.free(this.bufs.state);
        this.bufs.state = dev.tensor('f32', [B * size], undefined, 'cascade.policyState');
        this.stateSize = size;
      }
    }
    return this.bufs;
  }

  private async runChunk(
    input: ModelInput,
    n: number,
    costs: number[],
    mode: ExecutionMode,
    options: CascadeRunOptions,
    summary: CascadeSummary,
  ): Promise<CascadeSample[]> {
    const { policy } = options;
    const S = this.stages.length;
    const C = this.numClasses;
    const dev = this.device;
    const total = costs.reduce((x, y) => x + y, 0);
    const cum: number[] = [];
    costs.reduce((acc, c, k) => {
      cum[k] = (acc + c) / total;
      return acc + c;
    }, 0);
    const info: PolicyInit = {
      batchSize: n,
      numExits: S,
      numClasses: C,
      exitBlocks: range(0, S),
      costFractions: cum,
    };
    const state = policy.init(info); // both modes: init checks the policy's options against the cascade
    const bufs = this.buffers(policy, mode);
    dev.write(bufs.probSum, new Float32Array(this.maxBatch * C));
    let decide: ReturnType<typeof decideKernel> | null = null;
    if (mode === 'device') {
      const dp = policy.device!;
      decide = decideKernel({ name: policy.name, device: dp }, S, C);
      // laid out with this policy's stride (the buffer may be larger, from a policy with more state)
      const ss = Math.max(1, dp.stateSize);
      const init = new Float32Array(this.maxBatch * this.stateSize);
      const iv = dp.initState ?? [];
      for (let s = 0; s < n; s++) for (let k = 0; k < ss; k++) init[s * ss + k] = iv[k] ?? 0;
      dev.write(bufs.state!, init);
    }

    const out: (CascadeSample | null)[] = new Array(n).fill(null);
    const flops = new Float64Array(n);
    const exits: number[][] = Array.from({ length: n }, () => []);
    const members: Float32Array[][] = Array.from({ length: n }, () => []);
    let live = range(0, n);
    for (let k = 0; k < S && live.length > 0; k++) {
      const stage = this.stages[k];
      const rows = live.length;
      summary.rowsPerStage[k] += rows;
      const sub = rows === n ? input : gatherInputRows(input, n, live);
      const r = await stage.runner.run(sub, { policy: stage.policy ?? neverExit(), mode });
      const logits = new Float32Array(rows * C);
      r.samples.forEach((s, i) => {
        logits.set(s.logits, i * C);
        flops[live[i]] += s.flops;
        exits[live[i]].push(s.exitIndex);
        if (options.members) members[live[i]].push(s.logits);
      });
      dev.write(bufs.logits, logits);
      dev.write(bufs.ids, Uint32Array.from(live));
      dev.dispatch(
        cascadeCombine,
        { logits: bufs.logits, sampleIds: bufs.ids, probSum: bufs.probSum, combined: bufs.combined },
        { rows, classes: C, batch: this.maxBatch, members: k + 1 },
      );
      dev.dispatch(
        exitSignals,
        {
          logits: bufs.combined,
          gateLogit: bufs.dummy,
          pooled: bufs.dummy,
          prevPooled: bufs.dummy,
          signals: bufs.signals,
        },
        { rows, classes: C, dim: 1 },
        { gate: false, similarity: false },
      );
      const isLast = k === S - 1;
      let leave: ArrayLike<number | boolean>;
      if (mode === 'device') {
        dev.write(bufs.count, [rows]);
        dev.dispatch(
          decide!,
          {
            count: bufs.count,
            sampleIds: bufs.ids,
            signals: bufs.signals,
            policy_state: bufs.state!,
            flags: bufs.flags,
          },
          { maxRows: this.maxBatch, exitIndex: k, isLast: isLast ? 1 : 0, cost: cum[k], batch: this.maxBatch },
        );
        leave = (await readRange(dev, bufs.flags, 0, rows)) as Uint32Array;
      } else {
        const raw = (await readRange(dev, bufs.signals, 0, rows * SIGNALS_PER_ROW)) as Float32Array;
        const signals = unpackSignals(raw, rows, Int32Array.from(live));
        const ctx: ExitContext = {
          exitIndex: k,
          numExits: S,
          block: k,
          numBlocks: S,
          isLast,
          costFraction: cum[k],
          numClasses: C,
        };
        leave = policy.decide(ctx, signals, state);
        if (!leave || leave.length !== rows)
          throw new ValidationError(
            `cascade: policy '${policy.name}' returned ${leave?.length ?? 'nothing'} decisions for ${rows} rows at stage ${k}`,
          );
      }
      const combined = (await readRange(dev, bufs.combined, 0, rows * C)) as Float32Array;
      const stay: number[] = [];
      for (let i = 0; i < rows; i++) {
        const sid = live[i];
        if (!(isLast || leave[i])) {
          stay.push(sid);
          continue;
        }
        const z = combined.slice(i * C, (i + 1) * C);
        const probs = Float32Array.from(z, (v) => Math.exp(v));
        out[sid] = {
          logits: z,
          probs,
          prediction: argmax(z),
          stage: k,
          stageExits: exits[sid],
          flops: flops[sid],
          costFraction: flops[sid] / total,
          ...(options.members ? { members: members[sid] } : {}),
        };
        summary.stageCounts[k]++;
      }
      live = stay;
    }
    return out.map((s, i) => {
      if (!s) throw new Error(`internal: cascade sample ${i} has no result`);
      return s;
    });
  }

  /** Frees the cascade's own device buffers (the stage runners stay the caller's). */
  dispose(): void {
    if (!this.bufs) return;
    for (const t of Object.values(this.bufs)) if (t) this.device.free(t as Tensor);
    this.bufs = null;
  }
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}

async function readRange(dev: Device, t: Tensor, offset: number, length: number) {
  if (dev instanceof GpuDevice) return dev.readRange(t, offset, length);
  return (await dev.read(t)).slice(offset, offset + length);
}

/** The rows `rows` (indices into a batch of n) of a model input, as a new input (compaction between stages). */
export function gatherInputRows(input: ModelInput, n: number, rows: readonly number[]): ModelInput {
  if ('ids' in input) {
    const ids = rows.map((r) => input.ids[r]);
    return input.lengths ? { ids, lengths: rows.map((r) => input.lengths![r]) } : { ids };
  }
  const f = input.features;
  if (Array.isArray(f)) return { features: rows.map((r) => f[r]) };
  const flat = f as Float32Array;
  const width = flat.length / n;
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, i) => {
    out.set(flat.subarray(r * width, (r + 1) * width), i * width);
  });
  return { features: out };
}
