// The early-exit loop. For each batch: stem → block → exit head → signals → policy → retire exited rows →
// compact live rows → next block ..., per sample. Host mode reads the signals back after each exit head and
// runs the policy in TypeScript; device mode runs the policy's WGSL form on the GPU, keeps the live count
// and the dispatch sizes on the GPU, and reads back once per batch. Both give identical exits and outputs.
import { ValidationError } from '../errors.js';
import { ortCpuOf } from '../ort/ort-cpu.js';
import { OrtRunner } from '../ort/ort-runner.js';
import type { Device } from '../runtime/device.js';
import { GpuDevice } from '../runtime/gpu-device.js';
import type { Kernel } from '../runtime/kernel.js';
import type { Tensor } from '../runtime/tensor.js';
import { argmax, softmax } from '../util/probs.js';
import { decideKernel } from './engine-kernels.js';
import type { BlockContext, ExecutionMode, RunHooks, RunSummary } from './hooks.js';
import type { EarlyExitModel, EncodedBatch, ModelInput } from './model.js';
import type { ExitContext, ExitPolicy, ExitSignals } from './policy.js';
import { Program } from './program.js';

export interface RunOptions {
  policy: ExitPolicy<any>;
  hooks?: RunHooks[];
  /** 'auto' (default): device mode when the device is a GPU and the policy has a WGSL form. */
  mode?: ExecutionMode | 'auto';
  /** Include each sample's per-exit signals in the result. */
  trace?: boolean;
}

export interface SampleTrace {
  maxProb: number[];
  entropy: number[];
  margin: number[];
  argmax: number[];
  gate: number[];
  similarity: number[];
}

export interface SampleResult {
  logits: Float32Array;
  probs: Float32Array;
  prediction: number;
  exitIndex: number;
  exitBlock: number;
  /** FLOPs this sample spent (stem, the blocks it ran, the exit heads it passed). */
  flops: number;
  /** flops / full-depth flops. */
  costFraction: number;
  /** Signals at each exit the sample reached (when `trace` is set). */
  trace?: SampleTrace;
}

export interface RunResult {
  samples: SampleResult[];
  summary: RunSummary;
}

export interface RunnerOptions {
  /** Largest batch one program handles; bigger inputs run in chunks. Default 32. */
  maxBatch?: number;
  /** Record GPU dispatches into indirect, precompiled programs (default true on GPU devices). */
  compiled?: boolean;
  /**
   * Largest storage binding in bytes; weights above it are bound as row windows. Defaults to the
   * device's maxStorageBufferBindingSize (lower it to exercise the split on small models).
   */
  bindingLimit?: number;
  /**
   * How many runs of one sequence-length bucket may be in flight at once (default 1). Each concurrent run
   * needs its own program (activations, signals, flags), so memory grows with it; runs beyond it wait in
   * arrival order. Overlapping `run()` calls are always safe: they never share a program's buffers.
   */
  concurrency?: number;
  /**
   * Take the ONNX Runtime CPU path when the device has one attached (createDevice 'auto' on a software
   * adapter). Default true; false runs on the device's own kernels (to force the WebGPU kernels, or for models
   * the ONNX path does not translate: image enhancers).
   */
  ort?: boolean;
}

/** The programs of one sequence-length bucket, and the runs waiting for one of them. */
interface ProgramSlot {
  programs: Program[];
  busy: Set<Program>;
  waiting: { resolve: (p: Program) => void; reject: (e: Error) => void }[];
}

interface DecideState {
  kernel: Kernel<any>;
  state: Tensor;
  stateSize: number;
  uniforms: GPUBuffer;
  bindGroups: GPUBindGroup[];
  pipeline: GPUComputePipeline;
}

export class Runner {
  readonly maxBatch: number;
  readonly concurrency: number;
  private slots = new Map<number, ProgramSlot>();
  private decideCache = new Map<Program, Map<string, DecideState>>();
  private readonly compiled: boolean;
  private readonly bindingLimit?: number;
  private disposed = false;
  /** The ONNX Runtime CPU path, when the device selects it (runs and host-mode runs go there). */
  readonly ort: OrtRunner | null;

  constructor(
    readonly device: Device,
    readonly model: EarlyExitModel,
    options: RunnerOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 32;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1 || this.maxBatch > 4096) {
      throw new ValidationError(`maxBatch must be an integer in [1, 4096], got ${options.maxBatch}`);
    }
    this.concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1 || this.concurrency > 64) {
      throw new ValidationError(`concurrency must be an integer in [1, 64], got ${options.concurrency}`);
    }
    this.compiled = (options.compiled ?? true) && device instanceof GpuDevice;
    this.bindingLimit = options.bindingLimit;
    const ortCpu = options.ort === false ? null : ortCpuOf(device);
    this.ort = ortCpu ? new OrtRunner(ortCpu, device, model) : null;
  }

  /** The path runs take: ONNX Runtime on the CPU, WebGPU kernels, or the CPU reference kernels. */
  get backend(): 'ort-cpu' | 'webgpu' | 'cpu-reference' {
    return this.ort ? 'ort-cpu' : this.device.kind === 'gpu' ? 'webgpu' : 'cpu-reference';
  }

  private slot(T: number): ProgramSlot {
    let s = this.slots.get(T);
    if (!s) {
      s = { programs: [], busy: new Set(), waiting: [] };
      this.slots.set(T, s);
    }
    return s;
  }

  private newProgram(T: number): Program {
    const p = new Program(this.device, this.model, this.model.weights, this.maxBatch, T, this.bindingLimit);
    if (!this.compiled && p.compiled) throw new Error('internal: unexpected compiled program');
    return p;
  }

  /** The (first) compiled program for sequence length T, built on first use; for inspection and costs. */
  program(T: number): Program {
    const s = this.slot(T);
    if (s.programs.length === 0) s.programs.push(this.newProgram(T));
    return s.programs[0];
  }

  /**
   * Leases a program of bucket T for one run: a free one, a new one while fewer than `concurrency` exist,
   * else the first to be released (runs are served in arrival order).
   */
  private acquire(T: number): Promise<Program> {
    if (this.disposed) throw new ValidationError('run: this runner was disposed');
    const s = this.slot(T);
    const free = s.programs.find((p) => !s.busy.has(p));
    if (free && s.waiting.length === 0) {
      s.busy.add(free);
      return Promise.resolve(free);
    }
    if (s.programs.length < this.concurrency) {
      const p = this.newProgram(T);
      s.programs.push(p);
      s.busy.add(p);
      return Promise.resolve(p);
    }
    return new Promise((resolve, reject) => s.waiting.push({ resolve, reject }));
  }

  private release(T: number, p: Program): void {
    const s = this.slot(T);
    const next = s.waiting.shift();
    if (next && !this.disposed)
      next.resolve(p); // handed over still busy
    else s.busy.delete(p);
  }

  /** Runs currently holding a program, and runs waiting for one (all buckets). */
  get pending(): { running: number; waiting: number } {
    let running = 0;
    let waiting = 0;
    for (const s of this.slots.values()) {
      running += s.busy.size;
      waiting += s.waiting.length;
    }
    return { running, waiting };
  }

  /** Per-row FLOPs at each exit, and at full depth, for sequence length T. */
  costs(T: number): { atExit: number[]; full: number } {
    const f = this.program(T).flops;
    return { atExit: f.atExit, full: f.atExit[f.atExit.length - 1] };
  }

  async run(input: ModelInput, options: RunOptions): Promise<RunResult> {
    const n = this.model.batchSize(input);
    if (n === 0) throw new ValidationError('run: the batch is empty');
    if (n <= this.maxBatch) return this.runChunk(input, options);
    // larger batches run in chunks of maxBatch; results are concatenated
    const samples: SampleResult[] = [];
    const summaries: RunSummary[] = [];
    for (let s = 0; s < n; s += this.maxBatch) {
      const r = await this.runChunk(sliceInput(input, n, s, Math.min(n, s + this.maxBatch)), options);
      samples.push(...r.samples);
      summaries.push(r.summary);
    }
    return { samples, summary: mergeSummaries(summaries) };
  }

  private resolveMode(policy: ExitPolicy<any>, mode: RunOptions['mode']): ExecutionMode {
    const m = mode ?? 'auto';
    if (m === 'auto') return this.compiled && policy.device && !policy.needs?.includes('logits') ? 'device' : 'host';
    if (m === 'device') {
      if (!this.compiled)
        throw new ValidationError(
          `mode 'device' needs a GPU device with compiled programs; this runner is on ${this.device.describe()}: use mode 'host'`,
        );
      if (!policy.device)
        throw new ValidationError(`policy '${policy.name}' has no device (WGSL) form: use mode 'host'`);
      if (policy.needs?.includes('logits'))
        throw new ValidationError(
          `policy '${policy.name}' needs raw logits, which device mode does not provide: use mode 'host'`,
        );
      return 'device';
    }
    if (m !== 'host') throw new ValidationError(`unknown mode '${m}': use 'host', 'device' or 'auto'`);
    return 'host';
  }

  private async runChunk(input: ModelInput, options: RunOptions): Promise<RunResult> {
    // the ONNX Runtime path, unless device mode is asked for on a GPU device that has it attached
    if (this.ort && !(options.mode === 'device' && this.device.kind === 'gpu')) return this.ort.run(input, options);
    const t0 = performance.now();
    const mode = this.resolveMode(options.policy, options.mode);
    const T = this.model.bucket(input);
    const enc = this.model.encode(input, T); // validates the input before a program is leased
    const prog = await this.acquire(T);
    try {
      return await this.runOn(prog, enc, mode, options, t0);
    } finally {
      this.release(T, prog);
    }
  }

  private async runOn(
    prog: Program,
    enc: EncodedBatch,
    mode: ExecutionMode,
    options: RunOptions,
    t0: number,
  ): Promise<RunResult> {
    const { policy } = options;
    const hooks = options.hooks ?? [];
    const model = this.model;
    const n = enc.rows;
    const E = model.exitBlocks.length;
    const C = model.numClasses;
    const dev = this.device;
    const full = prog.flops.atExit[E - 1];
    const costFractions = prog.flops.atExit.map((f) => f / full);
    const info = { batchSize: n, numExits: E, numClasses: C, exitBlocks: model.exitBlocks, costFractions };

    // inputs
    for (const [name, data] of Object.entries(enc.data)) {
      const t = prog.inputTensor(name);
      if (!t) throw new Error(`internal: model input '${name}' is not used by the program`);
      dev.write(t, data);
    }
    dev.write(prog.count, [n]);
    dev.write(
      prog.sampleIds,
      Uint32Array.from({ length: n }, (_, i) => i),
    );

    let decide: DecideState | null = null;
    let state: unknown = null;
    // init runs in both modes: it is where a policy checks its options against the model (a per-exit list
    // of the wrong length, a threshold past ln C), and device mode must refuse what host mode refuses
    state = policy.init(info);
    if (mode === 'device') decide = this.prepareDecide(prog, policy, n, costFractions);

    let readbacks = 0;
    let live = n;
    let ids = Int32Array.from({ length: n }, (_, i) => i);
    const exitIndexOf = new Int32Array(n).fill(-1);
    const hostCalls = mode === 'host';
    const ctxOf = (block: number, liveRows: number): BlockContext => ({ block, liveRows, batchSize: n, mode });
    const opsByBlockStart = new Map<number, number>();
    prog.ops.forEach((op, k) => {
      if (op.segment === 'block' && !opsByBlockStart.has(op.index)) opsByBlockStart.set(op.index, k);
    });
    let nextExit = 0;
    let stopped = false;
    for (let g = 0; g < prog.groupStarts.length && !stopped; g++) {
      const start = prog.groupStarts[g];
      const end = g + 1 < prog.groupStarts.length ? prog.groupStarts[g + 1] : prog.ops.length;
      const rowsInGroup = live; // every op of the group is sized for the rows that entered it
      if (prog.compiled) prog.recordPatch(g);
      for (let k = start; k < end; k++) {
        const op = prog.ops[k];
        if (hostCalls && opsByBlockStart.get(op.index) === k && op.segment === 'block') {
          for (const h of hooks) h.beforeBlock?.(ctxOf(op.index, live));
        }
        const ex = prog.exits[nextExit];
        if (ex && ex.decideAt === k) {
          nextExit++;
          if (mode === 'device') {
            this.recordDecide(decide!, ex.index);
          } else {
            // host mode: read the signals of the live rows, let the policy decide, upload the flags
            readbacks++;
            const raw = (await readRange(dev, prog.signals, 0, live * 8)) as Float32Array;
            const signals = unpackSignals(raw, live, ids);
            if (policy.needs?.includes('logits')) {
              signals.logits = (await readRange(dev, prog.tensorOf(ex.logits), 0, live * ex.classes)) as Float32Array;
            }
            const isLast = ex.index === E - 1;
            const ctx: ExitContext = {
              exitIndex: ex.index,
              numExits: E,
              block: ex.block,
              numBlocks: model.numBlocks,
              isLast,
              costFraction: costFractions[ex.index],
              numClasses: C,
            };
            const decided = policy.decide(ctx, signals, state);
            if (!decided || decided.length !== live) {
              throw new ValidationError(
                `policy '${policy.name}' returned ${decided?.length ?? 'nothing'} decisions for ${live} rows at exit ${ex.index}`,
              );
            }
            const flags = new Uint32Array(live);
            const exiting: number[] = [];
            const stay: number[] = [];
            for (let r = 0; r < live; r++) {
              flags[r] = isLast || decided[r] ? 1 : 0;
              (flags[r] ? exiting : stay).push(ids[r]);
            }
            dev.write(prog.flags, flags);
            for (const sid of exiting) exitIndexOf[sid] = ex.index;
            const ctxB = ctxOf(ex.block, live);
            for (const h of hooks) {
              h.afterBlock?.(ctxB, {
                liveRows: stay.length,
                exit: { index: ex.index, signals, exiting: Int32Array.from(exiting) },
              });
              for (const sid of exiting) h.onExit?.(sid, { exitIndex: ex.index, block: ex.block });
            }
            live = stay.length;
            ids = Int32Array.from(stay);
            if (live === 0) stopped = true;
          }
        }
        if (prog.compiled) prog.recordOp(k);
        else prog.runOpEager(k, rowsInGroup);
        if (hostCalls && op.segment === 'block' && isLastOpOfBlock(prog, k) && !model.exitBlocks.includes(op.index)) {
          for (const h of hooks) h.afterBlock?.(ctxOf(op.index, live), { liveRows: live });
        }
      }
    }

    // the single readback of device mode (host mode reads results the same way)
    readbacks++;
    const res = (await readRange(dev, prog.resultsTensor, 0, prog.results.length)) as Float32Array;
    const { outStride, traceOffset } = prog.results;
    const samples: SampleResult[] = [];
    const exitCounts = new Array(E).fill(0);
    let flops = 0;
    let exitBlockSum = 0;
    for (let s = 0; s < n; s++) {
      const o = s * outStride;
      const logits = res.slice(o, o + C);
      const exitIndex = res[o + C];
      if (!Number.isInteger(exitIndex) || exitIndex < 0 || exitIndex >= E) {
        throw new Error(`internal: sample ${s} has no exit recorded (got ${exitIndex})`);
      }
      if (mode === 'host' && exitIndex !== exitIndexOf[s])
        throw new Error(
          `internal: exit of sample ${s} differs between host (${exitIndexOf[s]}) and GPU (${exitIndex})`,
        );
      const probs = softmax(logits);
      const f = prog.flops.atExit[exitIndex];
      flops += f;
      exitCounts[exitIndex]++;
      exitBlockSum += model.exitBlocks[exitIndex];
      const sample: SampleResult = {
        logits,
        probs,
        prediction: argmax(logits),
        exitIndex,
        exitBlock: model.exitBlocks[exitIndex],
        flops: f,
        costFraction: f / full,
      };
      if (options.trace) {
        const tr: SampleTrace = { maxProb: [], entropy: [], margin: [], argmax: [], gate: [], similarity: [] };
        for (let j = 0; j <= exitIndex; j++) {
          const b = traceOffset + (s * E + j) * 8;
          tr.maxProb.push(res[b]);
          tr.entropy.push(res[b + 1]);
          tr.margin.push(res[b + 2]);
          tr.argmax.push(res[b + 3]);
          tr.gate.push(res[b + 4]);
          tr.similarity.push(res[b + 5]);
        }
        sample.trace = tr;
      }
      samples.push(sample);
    }
    // rows per block, from where each sample left
    const rowsPerBlock = new Array(model.numBlocks).fill(0);
    for (const s of samples) for (let i = 0; i <= s.exitBlock; i++) rowsPerBlock[i]++;
    if (mode === 'device' && hooks.length) replayHooks(hooks, samples, res, prog, model, n, mode);
    const summary: RunSummary = {
      batchSize: n,
      mode,
      exitCounts,
      rowsPerBlock,
      meanExitBlock: exitBlockSum / n,
      flops,
      fullDepthFlops: full * n,
      readbacks,
      wallMs: performance.now() - t0,
      backend: this.device.kind === 'gpu' ? 'webgpu' : 'cpu-reference',
    };
    for (const h of hooks) h.onRunEnd?.(summary);
    return { samples, summary };
  }

  private prepareDecide(prog: Program, policy: ExitPolicy<any>, n: number, costFractions: number[]): DecideState {
    const dev = this.device as GpuDevice;
    const dp = policy.device!;
    const key = `${policy.name}|${dp.code}|${dp.stateSize}`;
    let cache = this.decideCache.get(prog);
    if (!cache) {
      cache = new Map();
      this.decideCache.set(prog, cache);
    }
    let st = cache.get(key);
    const E = this.model.exitBlocks.length;
    if (!st) {
      const kernel = decideKernel({ name: policy.name, device: dp }, E, this.model.numClasses);
      const stateSize = Math.max(1, dp.stateSize);
      const state = dev.tensor('f32', [this.maxBatch * stateSize], undefined, `${policy.name}.state`);
      const uniforms = dev.gpu.createBuffer({ size: E * 256, usage: 0x40 | 0x08, label: 'decide.uniforms' });
      const { pipeline, layout } = dev.pipelines.get(kernel, kernel.spec);
      const buf = (t: Tensor) => ({ buffer: t.handle as GPUBuffer, size: t.byteLength });
      const bindGroups = Array.from({ length: E }, (_, j) =>
        dev.gpu.createBindGroup({
          layout,
          entries: [
            { binding: 0, resource: { buffer: uniforms, offset: j * 256, size: 32 } },
            { binding: 1, resource: buf(prog.count) },
            { binding: 2, resource: buf(prog.sampleIds) },
            { binding: 3, resource: buf(prog.signals) },
            { binding: 4, resource: buf(state) },
            { binding: 5, resource: buf(prog.flags) },
          ],
        }),
      );
      st = { kernel, state, stateSize, uniforms, bindGroups, pipeline };
      cache.set(key, st);
    }
    // per-run: uniforms (cost fractions) and the initial policy state
    for (let j = 0; j < E; j++) {
      const p = st.kernel.packParams({
        maxRows: this.maxBatch,
        exitIndex: j,
        isLast: j === E - 1 ? 1 : 0,
        cost: costFractions[j],
        batch: this.maxBatch,
      });
      dev.flush();
      dev.gpu.queue.writeBuffer(st.uniforms, j * 256, p);
    }
    const init = new Float32Array(this.maxBatch * st.stateSize);
    const iv = dp.initState ?? [];
    for (let s = 0; s < n; s++) for (let k = 0; k < st.stateSize; k++) init[s * st.stateSize + k] = iv[k] ?? 0;
    dev.write(st.state, init);
    return st;
  }

  private recordDecide(st: DecideState, exit: number): void {
    const dev = this.device as GpuDevice;
    const pass = dev.computePass();
    dev.noteKernel(st.kernel.name);
    pass.setPipeline(st.pipeline);
    pass.setBindGroup(0, st.bindGroups[exit]);
    pass.dispatchWorkgroups(Math.ceil(this.maxBatch / 64));
  }

  dispose(): void {
    this.disposed = true;
    void this.ort?.dispose();
    for (const s of this.slots.values()) {
      for (const w of s.waiting.splice(0))
        w.reject(new ValidationError('run: the runner was disposed before this run started'));
      for (const p of s.programs) p.dispose();
    }
    for (const cache of this.decideCache.values())
      for (const d of cache.values()) {
        d.state.dispose();
        d.uniforms.destroy();
      }
    this.slots.clear();
    this.decideCache.clear();
  }
}

function isLastOpOfBlock(prog: Program, k: number): boolean {
  const op = prog.ops[k];
  const next = prog.ops[k + 1];
  return next?.segment !== 'block' || next.index !== op.index;
}

async function readRange(dev: Device, t: Tensor, offset: number, length: number) {
  if (dev instanceof GpuDevice) return dev.readRange(t, offset, length);
  return (await dev.read(t)).slice(offset, offset + length);
}

export function unpackSignals(raw: Float32Array, count: number, ids: Int32Array): ExitSignals {
  const s: ExitSignals = {
    count,
    sampleIds: ids.slice(0, count),
    maxProb: new Float32Array(count),
    entropy: new Float32Array(count),
    margin: new Float32Array(count),
    argmax: new Int32Array(count),
    gate: new Float32Array(count),
    similarity: new Float32Array(count),
  };
  for (let r = 0; r < count; r++) {
    const b = r * 8;
    s.maxProb[r] = raw[b];
    s.entropy[r] = raw[b + 1];
    s.margin[r] = raw[b + 2];
    s.argmax[r] = raw[b + 3];
    s.gate[r] = raw[b + 4];
    s.similarity[r] = raw[b + 5];
  }
  return s;
}

/** Device mode: replays the hook calls of host mode, in loop order, from the trace. */
function replayHooks(
  hooks: RunHooks[],
  samples: SampleResult[],
  res: Float32Array,
  prog: Program,
  model: EarlyExitModel,
  n: number,
  mode: ExecutionMode,
): void {
  const E = model.exitBlocks.length;
  let liveIds = Array.from({ length: n }, (_, i) => i);
  let e = 0;
  for (let b = 0; b < model.numBlocks && liveIds.length > 0; b++) {
    const ctx: BlockContext = { block: b, liveRows: liveIds.length, batchSize: n, mode };
    for (const h of hooks) h.beforeBlock?.(ctx);
    if (model.exitBlocks[e] === b) {
      const raw = new Float32Array(liveIds.length * 8);
      liveIds.forEach((sid, r) => {
        const t = prog.results.traceOffset + (sid * E + e) * 8;
        raw.set(res.subarray(t, t + 8), r * 8);
      });
      const signals = unpackSignals(raw, liveIds.length, Int32Array.from(liveIds));
      const exiting = liveIds.filter((sid) => samples[sid].exitIndex === e);
      const stay = liveIds.filter((sid) => samples[sid].exitIndex !== e);
      for (const h of hooks) {
        h.afterBlock?.(ctx, { liveRows: stay.length, exit: { index: e, signals, exiting: Int32Array.from(exiting) } });
        for (const sid of exiting) h.onExit?.(sid, { exitIndex: e, block: b });
      }
      liveIds = stay;
      e++;
    } else {
      for (const h of hooks) h.afterBlock?.(ctx, { liveRows: liveIds.length });
    }
  }
}

function sliceInput(input: ModelInput, n: number, a: number, b: number): ModelInput {
  if ('ids' in input)
    return input.lengths
      ? { ids: input.ids.slice(a, b), lengths: Array.prototype.slice.call(input.lengths, a, b) as number[] }
      : { ids: input.ids.slice(a, b) };
  const f = input.features;
  if (Array.isArray(f)) return { features: f.slice(a, b) };
  const width = f.length / n;
  return { features: f.slice(a * width, b * width) };
}

function mergeSummaries(s: RunSummary[]): RunSummary {
  const out: RunSummary = {
    ...s[0],
    batchSize: 0,
    exitCounts: s[0].exitCounts.map(() => 0),
    rowsPerBlock: s[0].rowsPerBlock.map(() => 0),
    meanExitBlock: 0,
    flops: 0,
    fullDepthFlops: 0,
    readbacks: 0,
    wallMs: 0,
  };
  let blockSum = 0;
  for (const x of s) {
    out.batchSize += x.batchSize;
    for (let i = 0; i < x.exitCounts.length; i++) out.exitCounts[i] += x.exitCounts[i];
    for (let i = 0; i < x.rowsPerBlock.length; i++) out.rowsPerBlock[i] += x.rowsPerBlock[i];
    blockSum += x.meanExitBlock * x.batchSize;
    out.flops += x.flops;
    out.fullDepthFlops += x.fullDepthFlops;
    out.readbacks += x.readbacks;
    out.wallMs += x.wallMs;
  }
  out.meanExitBlock = blockSum / out.batchSize;
  return out;
}
