// Compiles a model's graph for one (max batch, sequence length) into a program: the full op list with the
// early-exit bookkeeping around each exit head, a memory plan (scratch buffers reused by liveness), and on a
// GPU device the pipelines, bind groups, a control buffer with every op's uniforms and indirect dispatch
// arguments, and per-group tables that set them from the live-row count, so running issues dispatches only.
import { ValidationError } from '../errors.js';
import { exitSignals } from '../kernels/exit-signals.js';
import { qualityScore, qualityScoreFlops } from '../kernels/quality-score.js';
import type { Device } from '../runtime/device.js';
import { type DType, viewTyped } from '../runtime/dtype.js';
import { GpuDevice } from '../runtime/gpu-device.js';
import { foldDispatch } from '../runtime/kernel.js';
import { type Bindable, Tensor } from '../runtime/tensor.js';
import { compactRows, gatherCarried, patchControl, retireRows } from './engine-kernels.js';
import { type CarriedDecl, GraphBuilder, type OpDecl, type TensorDecl, type TRef } from './graph.js';
import type { EarlyExitModel, ExitHeadOut } from './model.js';

const UNIFORM_ALIGN = 256;
const CONTROL_USAGE = 0x40 | 0x80 | 0x100 | 0x08; // UNIFORM | STORAGE | INDIRECT | COPY_DST

export interface ExitInfo {
  index: number;
  block: number;
  classes: number;
  /** Op index before which the decision for this exit is taken. */
  decideAt: number;
  logits: TRef;
  hasGate: boolean;
}

export interface MemoryPlan {
  /** Bytes of scratch buffers after reuse by liveness, and without reuse. */
  scratchBytes: number;
  scratchBytesNaive: number;
  persistentBytes: number;
  slots: number;
}

interface GpuOpState {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  argsOffset: number;
}

interface GpuGroup {
  patchPipeline: GPUComputePipeline;
  patchBindGroup: GPUBindGroup;
  patchDispatch: number;
}

/** Results layout in one tensor, so device mode needs one readback: out | trace | history. */
export interface ResultsLayout {
  outOffset: number;
  traceOffset: number;
  historyOffset: number;
  length: number;
  outStride: number;
}

/** The same storage seen as another 4-byte dtype (scratch slots are shared by tensors of any dtype). */
function aliasTensor(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return t;
  const h = t.handle;
  const handle = ArrayBuffer.isView(h) ? viewTyped(dtype, h.buffer, h.byteOffset, h.length) : h;
  return new Tensor(t.device, dtype, t.shape, handle, t.label);
}

export class Program {
  readonly ops: OpDecl[];
  readonly exits: ExitInfo[];
  /** Op index where each group starts (group g ends at exit g's compaction). */
  readonly groupStarts: number[];
  readonly carried: CarriedDecl[];
  readonly plan: MemoryPlan;
  readonly results: ResultsLayout;
  /** Per-row FLOPs: stem, each block, each exit head. */
  readonly flops: { stem: number; blocks: number[]; heads: number[]; atExit: number[] };
  // engine tensors
  readonly count: Tensor;
  readonly flags: Tensor;
  readonly sampleIds: Tensor;
  readonly signals: Tensor;
  readonly resultsTensor: Tensor;
  private readonly bound = new Map<number, Tensor>();
  private readonly owned: Tensor[] = [];
  private gpuOps: GpuOpState[] | null = null;
  private gpuGroups: GpuGroup[] | null = null;
  private control: GPUBuffer | null = null;
  private patchUniforms: GPUBuffer | null = null;

  constructor(
    readonly device: Device,
    readonly model: EarlyExitModel,
    weights: Map<string, Tensor>,
    readonly maxRows: number,
    readonly T: number,
    bindingLimit?: number,
  ) {
    if (!Number.isInteger(maxRows) || maxRows < 1 || maxRows > 4096) {
      throw new ValidationError(`maxBatch must be an integer in [1, 4096], got ${maxRows}`);
    }
    const E = model.exitBlocks.length;
    const C = model.numClasses;
    const own = (t: Tensor) => {
      this.owned.push(t);
      return t;
    };
    this.count = own(device.tensor('u32', [1], undefined, 'engine.count'));
    this.flags = own(device.tensor('u32', [maxRows], undefined, 'engine.flags'));
    this.sampleIds = own(device.tensor('u32', [maxRows], undefined, 'engine.sampleIds'));
    const idx = own(device.tensor('u32', [maxRows], undefined, 'engine.idx'));
    this.signals = own(device.tensor('f32', [maxRows * 8], undefined, 'engine.signals'));
    const align = Math.max(1, device.limits.minStorageBufferOffsetAlignment / 4);
    const up = (n: number) => Math.ceil(n / align) * align;
    const outStride = C + 2;
    const traceOffset = up(maxRows * outStride);
    const historyOffset = traceOffset + up(maxRows * E * 8);
    this.results = { outOffset: 0, traceOffset, historyOffset, length: historyOffset + up(E), outStride };
    this.resultsTensor = own(device.tensor('f32', [this.results.length], undefined, 'engine.results'));
    const identity = own(
      device.tensor(
        'u32',
        [maxRows],
        Uint32Array.from({ length: maxRows }, (_, i) => i),
        'engine.identity',
      ),
    );
    const dummy = own(device.tensor('f32', [Math.max(maxRows, 4)], undefined, 'engine.dummy'));

    const b = new GraphBuilder(maxRows, weights);
    b.bindingLimit = bindingLimit;
    b.identity = b.system('identity', identity);
    const sys = {
      count: b.system('count', this.count),
      flags: b.system('flags', this.flags),
      sampleIds: b.system('sampleIds', this.sampleIds),
      idx: b.system('idx', idx),
      signals: b.system('signals', this.signals),
      dummy: b.system('dummy', dummy),
      out: { decl: b.system('results', this.resultsTensor).decl, offset: 0, length: maxRows * outStride },
      trace: { decl: b.system('results', this.resultsTensor).decl, offset: traceOffset, length: maxRows * E * 8 },
      history: { decl: b.system('results', this.resultsTensor).decl, offset: historyOffset, length: E },
    };
    const prog = model.program(b, T);
    b.enter('stem', -1);
    prog.stem();
    const exitAt = new Map(model.exitBlocks.map((blk, j) => [blk, j]));
    const exits: ExitInfo[] = [];
    const groupStarts = [0];
    // pooled states carried to the next exit for the saturation signal, one carried tensor per width
    const prevPooledByDim = new Map<number, CarriedDecl>();
    let prevDim = -1;
    for (let i = 0; i < model.numBlocks; i++) {
      b.enter('block', i);
      prog.block(i);
      const j = exitAt.get(i);
      if (j === undefined) continue;
      b.enter('head', j);
      const head: ExitHeadOut = prog.exit(j);
      let prevPooled = prevPooledByDim.get(head.poolDim);
      if (!prevPooled) {
        prevPooled = b.carry(`engine.prevPooled${head.poolDim}`, head.poolDim);
        prevPooledByDim.set(head.poolDim, prevPooled);
      }
      // similarity only between consecutive exits whose pooled states have the same width
      const hasPrev = j > 0 && prevDim === head.poolDim;
      prevDim = head.poolDim;
      b.enter('engine', j);
      b.op(
        exitSignals,
        {
          logits: head.logits,
          gateLogit: head.gateLogit ?? sys.dummy,
          pooled: head.pooled,
          prevPooled: hasPrev ? b.cur(prevPooled) : sys.dummy,
          signals: sys.signals,
        },
        (r) => ({ rows: r, classes: head.classes, dim: head.poolDim }),
        { spec: { gate: Boolean(head.gateLogit), similarity: hasPrev }, label: `exit${j}.signals` },
      );
      if (head.image) {
        // an image exit: its quality score goes into the gate slot (counted as part of the head's FLOPs)
        const { channels, height, width } = head.image;
        b.enter('head', j);
        b.op(
          qualityScore,
          { x: head.logits, y: sys.signals },
          (r) => ({ B: r, C: channels, H: height, W: width, yStride: 8, yOffset: 4 }),
          { flopsPerRow: qualityScoreFlops(height, width), label: `exit${j}.quality` },
        );
        b.enter('engine', j);
      }
      exits.push({
        index: j,
        block: i,
        classes: head.classes,
        decideAt: b.ops.length,
        logits: head.logits,
        hasGate: Boolean(head.gateLogit) || Boolean(head.image),
      });
      b.op(
        retireRows,
        {
          count: sys.count,
          flags: sys.flags,
          sampleIds: sys.sampleIds,
          logits: head.logits,
          signals: sys.signals,
          out: sys.out,
          trace: sys.trace,
        },
        () => ({ maxRows, classes: C, exitIndex: j, numExits: E, batch: maxRows }),
        { label: `exit${j}.retire` },
      );
      if (j === E - 1) break;
      b.op(
        compactRows,
        { count: sys.count, flags: sys.flags, sampleIds: sys.sampleIds, idx: sys.idx, history: sys.history },
        () => ({ maxRows, exitIndex: j }),
        { label: `exit${j}.compact` },
      );
      groupStarts.push(b.ops.length);
      for (const c of b.carried) {
        const src = c === prevPooled ? head.pooled : b.cur(c);
        const width = c.width;
        b.op(gatherCarried, { count: sys.count, idx: sys.idx, src, dst: b.next(c) }, () => ({ maxRows, width }), {
          label: `gather.${c.name}`,
        });
      }
    }
    if (exits.length !== E) throw new ValidationError(`model declares ${E} exits but built ${exits.length}`);
    // the last exit must retire everything: compaction after it is not needed, but history[E-1] = 0
    this.ops = b.ops;
    this.exits = exits;
    this.groupStarts = groupStarts;
    this.carried = b.carried;
    for (const c of b.carried) c.current = c.initial;

    // FLOPs per row by segment
    const blocks = new Array(model.numBlocks).fill(0);
    const heads = new Array(E).fill(0);
    let stem = 0;
    for (const op of b.ops) {
      if (op.segment === 'stem') stem += op.flopsPerRow;
      else if (op.segment === 'block') blocks[op.index] += op.flopsPerRow;
      else if (op.segment === 'head') heads[op.index] += op.flopsPerRow;
    }
    const atExit = exits.map(
      (e) =>
        stem +
        blocks.slice(0, e.block + 1).reduce((a, x) => a + x, 0) +
        heads.slice(0, e.index + 1).reduce((a, x) => a + x, 0),
    );
    this.flops = { stem, blocks, heads, atExit };

    // before any buffer of the plan is created or a pipeline compiled: an oversized binding would otherwise
    // surface as Dawn validation text (printed by Dawn itself) and a GPU error naming no tensor
    if (device instanceof GpuDevice) this.checkBindingSizes(device.limits.maxStorageBufferBindingSize);
    this.plan = this.planMemory(b.tensors);
    if (device instanceof GpuDevice) this.compileGpu(device);
  }

  /** Every op binding (a weight, its window, or maxRows rows of an activation) within the binding limit. */
  private checkBindingSizes(limit: number): void {
    for (const op of this.ops) {
      for (const name of op.kernel.bindingNames) {
        const ref = op.bind[name];
        const d = ref.decl;
        const total = d.tensor ? d.tensor.length : Math.max(1, d.perRow * this.maxRows + d.fixed);
        const bytes = Math.max(4, (ref.length ?? total - (ref.offset ?? 0)) * 4);
        if (bytes <= limit) continue;
        const where = `op '${op.label}': tensor '${d.name}' (binding '${name}')`;
        if (d.tensor || d.perRow === 0)
          throw new ValidationError(
            `${where} is ${bytes} bytes, over this device's maxStorageBufferBindingSize of ${limit} bytes; the model is too large for this device`,
          );
        const fit = Math.floor((limit / 4 - d.fixed) / d.perRow);
        throw new ValidationError(
          `${where} is ${bytes} bytes (${d.perRow} values per row × ${this.maxRows} rows), over this device's maxStorageBufferBindingSize of ${limit} bytes; ${fit >= 1 ? `use a batch of at most ${fit} rows` : 'one row alone does not fit: the model is too wide for this device'}`,
        );
      }
    }
  }

  /** Assigns buffers: persistent ones get their own; scratch tensors share slots by liveness. */
  private planMemory(decls: TensorDecl[]): MemoryPlan {
    const first = new Map<number, number>();
    const last = new Map<number, number>();
    this.ops.forEach((op, k) => {
      for (const ref of Object.values(op.bind)) {
        const id = ref.decl.id;
        if (!first.has(id)) first.set(id, k);
        last.set(id, k);
      }
    });
    let persistentBytes = 0;
    let scratchBytesNaive = 0;
    const slots: { bytes: number; freeAt: number; tensor?: Tensor }[] = [];
    const scratch = decls
      .filter((d) => d.kind === 'scratch' && first.has(d.id))
      .sort((a, b) => first.get(a.id)! - first.get(b.id)!);
    const assign = new Map<number, number>();
    for (const d of scratch) {
      const bytes = d.perRow * this.maxRows * 4;
      scratchBytesNaive += bytes;
      const start = first.get(d.id)!;
      let best = -1;
      for (let s = 0; s < slots.length; s++) {
        if (
          slots[s].freeAt < start &&
          (best < 0 || Math.abs(slots[s].bytes - bytes) < Math.abs(slots[best].bytes - bytes))
        )
          best = s;
      }
      if (best < 0) {
        slots.push({ bytes, freeAt: last.get(d.id)! });
        best = slots.length - 1;
      } else {
        slots[best].bytes = Math.max(slots[best].bytes, bytes);
        slots[best].freeAt = last.get(d.id)!;
      }
      assign.set(d.id, best);
    }
    for (const s of slots)
      s.tensor = this.own(this.device.tensor('u32', [Math.max(1, s.bytes / 4)], undefined, 'scratch'));
    for (const d of decls) {
      if (d.tensor) {
        this.bound.set(d.id, d.tensor);
      } else if (d.kind === 'scratch') {
        const s = assign.get(d.id);
        if (s !== undefined) this.bound.set(d.id, aliasTensor(slots[s].tensor!, d.dtype));
      } else {
        const t = this.own(
          this.device.tensor(d.dtype, [Math.max(1, d.perRow * this.maxRows + d.fixed)], undefined, d.name),
        );
        persistentBytes += t.byteLength;
        this.bound.set(d.id, t);
      }
    }
    return {
      scratchBytes: slots.reduce((a, s) => a + s.bytes, 0),
      scratchBytesNaive,
      persistentBytes,
      slots: slots.length,
    };
  }

  private own(t: Tensor): Tensor {
    this.owned.push(t);
    return t;
  }

  tensorOf(ref: TRef | TensorDecl): Tensor {
    const decl = 'decl' in ref ? ref.decl : ref;
    const t = this.bound.get(decl.id);
    if (!t) throw new Error(`internal: tensor '${decl.name}' has no buffer`);
    return t;
  }

  /** The binding of an op argument (a window for split weights and the results tensor). */
  bindable(ref: TRef): Bindable {
    const t = this.tensorOf(ref);
    if (ref.offset === undefined && ref.length === undefined) return t;
    return { tensor: t, offset: ref.offset ?? 0, length: ref.length ?? t.length - (ref.offset ?? 0) };
  }

  /** Builds pipelines, bind groups, the control buffer and the per-group patch tables. */
  private compileGpu(dev: GpuDevice): void {
    const gpu = dev.gpu;
    const n = this.ops.length;
    const argsBase = n * UNIFORM_ALIGN;
    const controlBytes = argsBase + n * 12;
    this.control = gpu.createBuffer({ size: controlBytes, usage: CONTROL_USAGE, label: 'engine.control' });
    const limit = dev.limits.maxComputeWorkgroupsPerDimension;
    this.gpuOps = this.ops.map((op, k) => {
      const { pipeline, layout } = dev.pipelines.get(op.kernel, op.spec);
      const uniformBytes = op.kernel.packParams(op.params(0)).byteLength;
      const entries: GPUBindGroupEntry[] = [
        { binding: 0, resource: { buffer: this.control!, offset: k * UNIFORM_ALIGN, size: uniformBytes } },
      ];
      op.kernel.bindingNames.forEach((name, i) => {
        const v = this.bindable(op.bind[name]);
        const tensor = 'tensor' in v ? v.tensor : v;
        const offset = 'tensor' in v ? v.offset : 0;
        const length = 'tensor' in v ? v.length : tensor.length;
        const want = op.kernel.bindings[name];
        if (tensor.dtype !== want.type && !want.raw) {
          throw new ValidationError(`op '${op.label}': binding '${name}' must be ${want.type}, got ${tensor.dtype}`);
        }
        entries.push({
          binding: i + 1,
          resource: { buffer: tensor.handle as GPUBuffer, offset: offset * 4, size: Math.max(4, length * 4) },
        });
      });
      const bindGroup = gpu.createBindGroup({ layout, entries, label: op.label });
      return { pipeline, bindGroup, argsOffset: argsBase + k * 12 };
    });
    // per-group tables: for r = 0..maxRows, the uniform words and dispatch args of every op in the group
    const bounds = [...this.groupStarts, n];
    const patchParams: ArrayBuffer[] = [];
    const groups: { table: Uint32Array; map: Uint32Array; width: number }[] = [];
    for (let g = 0; g < this.groupStarts.length; g++) {
      const ops = this.ops.slice(bounds[g], bounds[g + 1]);
      const words: number[] = [];
      const mapping: number[] = [];
      ops.forEach((op, i) => {
        const k = bounds[g] + i;
        const u = op.kernel.packParams(op.params(0)).byteLength / 4;
        for (let w = 0; w < u; w++) mapping.push((k * UNIFORM_ALIGN) / 4 + w);
        for (let w = 0; w < 3; w++) mapping.push((argsBase + k * 12) / 4 + w);
        words.push(u + 3);
      });
      const width = mapping.length;
      const table = new Uint32Array((this.maxRows + 1) * width);
      for (let r = 0; r <= this.maxRows; r++) {
        let o = r * width;
        for (const op of ops) {
          const p = op.params(r);
          op.kernel.checkParams(p);
          const u = new Uint32Array(op.kernel.packParams(p));
          table.set(u, o);
          o += u.length;
          const d = op.kernel.dispatch(p, op.spec);
          const args = op.kernel.linear ? foldDispatch(d[0], limit) : d;
          if (args.some((a) => a > limit))
            throw new ValidationError(
              `op '${op.label}': dispatch [${args}] for ${r} rows exceeds ${limit} workgroups per dimension`,
            );
          table.set(args, o);
          o += 3;
        }
      }
      groups.push({ table, map: Uint32Array.from(mapping), width });
      patchParams.push(patchControl.packParams({ maxRows: this.maxRows, width, controlWords: controlBytes / 4 }));
    }
    this.patchUniforms = gpu.createBuffer({
      size: groups.length * UNIFORM_ALIGN,
      usage: 0x40 | 0x08,
      label: 'engine.patchUniforms',
    });
    patchParams.forEach((p, g) => {
      gpu.queue.writeBuffer(this.patchUniforms!, g * UNIFORM_ALIGN, p);
    });
    const { pipeline: patchPipeline, layout: patchLayout } = dev.pipelines.get(patchControl);
    const controlAsU32 = { buffer: this.control, size: controlBytes };
    this.gpuGroups = groups.map((grp, g) => {
      const table = this.own(dev.tensor('u32', [grp.table.length], grp.table, `engine.table${g}`));
      const map = this.own(dev.tensor('u32', [grp.map.length], grp.map, `engine.map${g}`));
      const patchBindGroup = gpu.createBindGroup({
        layout: patchLayout,
        entries: [
          { binding: 0, resource: { buffer: this.patchUniforms!, offset: g * UNIFORM_ALIGN, size: 16 } },
          { binding: 1, resource: { buffer: this.count.handle as GPUBuffer, size: 4 } },
          { binding: 2, resource: { buffer: table.handle as GPUBuffer, size: table.byteLength } },
          { binding: 3, resource: { buffer: map.handle as GPUBuffer, size: map.byteLength } },
          { binding: 4, resource: controlAsU32 },
        ],
        label: `patch${g}`,
      });
      return { patchPipeline, patchBindGroup, patchDispatch: Math.ceil(grp.width / 64) };
    });
  }

  get compiled(): boolean {
    return this.gpuOps !== null;
  }

  /** Records group g's patch (sets its uniforms and dispatch args from the live count). */
  recordPatch(g: number): void {
    const dev = this.device as GpuDevice;
    const grp = this.gpuGroups![g];
    const pass = dev.computePass();
    dev.noteKernel('patchControl');
    pass.setPipeline(grp.patchPipeline);
    pass.setBindGroup(0, grp.patchBindGroup);
    pass.dispatchWorkgroups(grp.patchDispatch);
  }

  /** Records op k with its indirect arguments. */
  recordOp(k: number): void {
    const dev = this.device as GpuDevice;
    const st = this.gpuOps![k];
    const pass = dev.computePass();
    dev.noteKernel(this.ops[k].label);
    pass.setPipeline(st.pipeline);
    pass.setBindGroup(0, st.bindGroup);
    pass.dispatchWorkgroupsIndirect(this.control!, st.argsOffset);
  }

  /** Runs op k directly with r live rows (CPU device, or the GPU without compiled dispatch). */
  runOpEager(k: number, r: number): void {
    const op = this.ops[k];
    const bindings: Record<string, Bindable> = {};
    for (const name of op.kernel.bindingNames) bindings[name] = this.bindable(op.bind[name]);
    this.device.dispatch(op.kernel, bindings, op.params(r), op.spec);
  }

  /** Initial buffers of inputs and carried tensors, by name. */
  inputTensor(name: string): Tensor | undefined {
    for (const c of this.carried) if (c.name === name) return this.tensorOf(c.buffers[c.initial]);
    for (const op of this.ops) {
      for (const ref of Object.values(op.bind))
        if (ref.decl.kind === 'input' && ref.decl.name === name) return this.tensorOf(ref);
    }
    return undefined;
  }

  dispose(): void {
    this.device.flush();
    for (const t of this.owned) t.dispose();
    this.control?.destroy();
    this.patchUniforms?.destroy();
  }
}
