// Iteration-level scheduling across depths for /v1/classify (scheduler 'refill'): per model, one SteppedRunner
// (@offramp/core, ONNX Runtime CPU path) holds the rows in flight in per-depth stores. A loop steps it while
// anything is queued or live; before each step the queued requests are admitted into the slots of segment 0
// (up to the model's maxBatch rows there), so a request starts while older rows are still deep in the network,
// and each row is answered at the step it exits.
//
// Per-request policies: each request row is admitted as its own group with its own policy and policy state, so
// rows with different policies share every segment batch (one ONNX Runtime call per depth per step) and each
// policy's decide is called for its own rows: no grouping by policy spec is needed on the host path, and every
// answer equals the request run alone. The WebGPU path (device mode, one readback per batch) is not stepped:
// there 'refill' is refused at start-up (see docs/scheduling.md).
//
// Traced answers: a request spans several steps, each with other rows, so there is no one batch whose live rows
// per block or per-block times describe it: JobResult's rowsPerBlock and blockMs are left absent (the classify
// response's batch.rows_per_block and batch.block_ms with them); onBatch still reports each step's rowsPerBlock.
import { SteppedRunner } from '@offramp/core';
import { batchInput, type ServedModel } from './models.js';
import { type BatchInfo, type Job, type JobResult, QueueFullError, type SchedulerOptions } from './scheduler.js';

interface Pending {
  job: Job;
  at: number;
  admittedAt?: number;
  firstBatch?: number;
  resolve: (r: JobResult) => void;
  reject: (e: unknown) => void;
}

interface ModelLoop {
  model: ServedModel;
  stepped: SteppedRunner<Pending>;
  queue: Pending[];
  /** Rows admitted and not answered. */
  live: Set<Pending>;
  running: boolean;
}

/** Why a model cannot be served by the refill scheduler, or null when it can. */
export function refillUnsupported(m: ServedModel): string | null {
  if (m.runner.ort) return null;
  return `scheduler 'refill' needs the ONNX Runtime CPU path (a machine without a GPU, device 'auto'); model '${m.name}' runs on ${m.runner.backend}: use scheduler 'window'`;
}

export class RefillScheduler {
  private loops = new Map<string, ModelLoop>();
  private inflight = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  /** Bumped by failAll: steps of an older generation are not answered when they end. */
  private generation = 0;

  constructor(private readonly o: SchedulerOptions) {}

  /** Requests waiting for admission plus rows in flight. */
  get depth(): number {
    return this.inflight;
  }

  submit(job: Job): Promise<JobResult> {
    if (this.closed) return Promise.reject(new QueueFullError(this.inflight, 1));
    if (this.inflight >= this.o.maxQueue) {
      return Promise.reject(new QueueFullError(this.inflight, Math.max(1, Math.ceil(this.o.maxWaitMs / 1000))));
    }
    const why = refillUnsupported(job.model);
    if (why) return Promise.reject(new Error(why));
    let loop = this.loops.get(job.model.name);
    // a reloaded model (device recovery) is a new ServedModel: start a new loop for it
    if (!loop || loop.model !== job.model) {
      loop = {
        model: job.model,
        stepped: new SteppedRunner<Pending>(job.model.runner, { maxRows: job.model.maxBatch }),
        queue: [],
        live: new Set(),
        running: false,
      };
      this.loops.set(job.model.name, loop);
    }
    this.inflight++;
    const l = loop;
    const p = new Promise<JobResult>((resolve, reject) =>
      l.queue.push({ job, at: performance.now(), resolve, reject }),
    );
    if (!l.running) void this.run(l);
    return p;
  }

  /** Submits several jobs, all or none: refused as a whole when they do not all fit in the queue. */
  submitAll(jobs: Job[]): Promise<JobResult[]> {
    if (this.inflight + jobs.length > this.o.maxQueue && jobs.length > 1) {
      return Promise.reject(new QueueFullError(this.inflight, Math.max(1, Math.ceil(this.o.maxWaitMs / 1000))));
    }
    return Promise.all(jobs.map((j) => this.submit(j)));
  }

  /** Steps a model while it has queued or live rows. */
  private async run(l: ModelLoop): Promise<void> {
    l.running = true;
    const generation = this.generation;
    try {
      while (generation === this.generation && this.loops.get(l.model.name) === l && (l.queue.length || l.live.size)) {
        // admit into the free slots of segment 0 (rows of one request are admitted one by one, in order)
        const free = l.model.maxBatch - l.stepped.liveAt()[0];
        const admit = l.queue.splice(0, Math.max(0, free));
        const now = performance.now();
        // live first, so that a failure below answers every request taken from the queue
        for (const p of admit) {
          p.admittedAt = now;
          l.live.add(p);
        }
        for (const p of admit)
          await l.stepped.admit(batchInput([p.job.row]), { policy: p.job.policy, trace: p.job.trace, tag: p });
        const admitted = admit.length;
        const report = await l.stepped.step();
        if (generation !== this.generation) return;
        const computeMs = report.wallMs;
        const rows = report.batches.reduce((a, b) => a + b.rows, 0);
        const specs = new Set(admit.map((p) => p.job.policySpec));
        const info: BatchInfo = {
          model: l.model.name,
          policy: specs.size === 1 ? [...specs][0] : 'mixed',
          mode: 'host',
          size: rows,
          computeMs,
          rowsPerBlock: report.rowsPerBlock,
        };
        this.o.onBatch?.(info);
        const seg0 = report.batches.find((b) => b.exit === 0)?.rows ?? admitted;
        for (const p of admit) p.firstBatch = seg0;
        const end = performance.now();
        for (const f of report.finished) {
          const p = f.tag!;
          l.live.delete(p);
          this.inflight--;
          p.resolve({
            sample: f.result,
            batchSize: p.firstBatch ?? seg0,
            mode: 'host',
            queueMs: p.admittedAt! - p.at,
            computeMs: end - p.admittedAt!,
          });
        }
        if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
        // let the event loop take new requests before the next admission
        await new Promise((r) => setImmediate(r));
      }
    } catch (e) {
      if (generation === this.generation) {
        // a failed step loses every row of the model in flight: reject them and start clean
        l.stepped.clear();
        for (const p of l.live) p.reject(e);
        this.inflight -= l.live.size;
        l.live.clear();
        if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
      }
    } finally {
      l.running = false;
      // requests that came in after the loop decided to stop (or after a failure) get a new loop
      if (generation === this.generation && this.loops.get(l.model.name) === l && l.queue.length) void this.run(l);
    }
  }

  /**
   * Rejects every queued and live request with `err` at once (the device was lost) and forgets them; steps
   * still running end unheard. New requests are taken again.
   */
  failAll(err: unknown): number {
    this.generation++;
    let n = 0;
    for (const l of this.loops.values()) {
      for (const p of l.queue.splice(0)) {
        p.reject(err);
        n++;
      }
      for (const p of l.live) {
        p.reject(err);
        n++;
      }
      l.live.clear();
      l.stepped.clear();
    }
    this.loops.clear();
    this.inflight = 0;
    for (const w of this.idleWaiters.splice(0)) w();
    return n;
  }

  /** Refuses new requests and resolves when every queued and live request is answered. */
  drain(): Promise<void> {
    this.closed = true;
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }
}
