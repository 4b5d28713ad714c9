// Dynamic batching: requests queue per (model, policy spec, sequence bucket); a queue is run as one batch
// when it holds the model's maxBatch rows or its oldest request has waited maxWaitMs, and at most `concurrency` batches
// of a model run at once (while they run, new requests gather into the next, larger batch). Each request is
// answered from its own row of the batch result. One policy spec per batch because device mode compiles one
// WGSL policy into the decide kernel of a run; per-row policies would need a different kernel.
import type { ExitPolicy, SampleResult } from '@offramp/core';
import { blockTimer } from './block-times.js';
import { batchInput, bucketOf, type EncodedRow, type ServedModel } from './models.js';

export class QueueFullError extends Error {
  readonly statusCode = 429;
  constructor(
    readonly depth: number,
    readonly retryAfterS: number,
  ) {
    super(`the server's queue is full (${depth} requests waiting); retry after ${retryAfterS} s`);
  }
}

export interface BatchInfo {
  model: string;
  policy: string;
  mode: 'device' | 'host';
  size: number;
  computeMs: number;
  /** Rows that entered each block of the model in this batch (block 0 = every row). */
  rowsPerBlock: number[];
}

export interface Job {
  model: ServedModel;
  policySpec: string;
  policy: ExitPolicy<any>;
  row: EncodedRow;
  trace: boolean;
}

export interface JobResult {
  sample: SampleResult;
  batchSize: number;
  mode: 'device' | 'host';
  queueMs: number;
  computeMs: number;
  /**
   * Rows that entered each block in the batch's run (its RunSummary). Absent from the refill scheduler, whose
   * requests span several steps rather than one batch.
   */
  rowsPerBlock?: number[];
  /**
   * Wall ms per block that ran (see block-times.ts), measured only when some request of the batch asked for a
   * trace and the run was in host mode; absent in device mode (one recorded submission, one readback).
   */
  blockMs?: number[];
}

interface Pending {
  job: Job;
  at: number;
  resolve: (r: JobResult) => void;
  reject: (e: unknown) => void;
}

interface Queue {
  key: string;
  model: ServedModel;
  items: Pending[];
  timer?: NodeJS.Timeout;
  due: boolean;
}

export interface SchedulerOptions {
  maxWaitMs: number;
  /** Most requests waiting or running, all models together; more are refused with QueueFullError. */
  maxQueue: number;
  onBatch?: (info: BatchInfo) => void;
}

export class BatchScheduler {
  private queues = new Map<string, Queue>();
  private running = new Map<string, number>();
  private inflight = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  /** The batches running now (failAll rejects their requests without waiting for them). */
  private runningBatches = new Set<Pending[]>();
  /** Bumped by failAll: batches of an older generation no longer count in the bookkeeping when they end. */
  private generation = 0;

  constructor(private readonly o: SchedulerOptions) {}

  /** Requests waiting for a batch plus those in running batches. */
  get depth(): number {
    return this.inflight;
  }

  submit(job: Job): Promise<JobResult> {
    if (this.closed) return Promise.reject(new QueueFullError(this.inflight, 1));
    if (this.inflight >= this.o.maxQueue) {
      return Promise.reject(new QueueFullError(this.inflight, Math.max(1, Math.ceil(this.o.maxWaitMs / 1000))));
    }
    const key = `${job.model.name}\u0000${job.policySpec}\u0000${bucketOf(job.model, job.row)}`;
    let q = this.queues.get(key);
    if (!q) {
      q = { key, model: job.model, items: [], due: false };
      this.queues.set(key, q);
    }
    this.inflight++;
    const p = new Promise<JobResult>((resolve, reject) =>
      q.items.push({ job, at: performance.now(), resolve, reject }),
    );
    if (q.items.length >= job.model.maxBatch) q.due = true;
    else if (!q.timer) {
      const queue = q;
      q.timer = setTimeout(() => {
        queue.timer = undefined;
        queue.due = true;
        this.pump();
      }, this.o.maxWaitMs);
    }
    this.pump();
    return p;
  }

  /** Starts every due batch whose model has a free run slot. */
  private pump(): void {
    for (const q of this.queues.values()) {
      const name = q.model.name;
      while (q.items.length && (q.due || this.closed) && (this.running.get(name) ?? 0) < q.model.runner.concurrency) {
        const maxBatch = q.model.maxBatch;
        const batch = q.items.splice(0, maxBatch);
        if (q.items.length < maxBatch) q.due = false;
        if (q.items.length && !q.timer && !q.due) {
          q.timer = setTimeout(() => {
            q.timer = undefined;
            q.due = true;
            this.pump();
          }, this.o.maxWaitMs);
        }
        if (!q.items.length && q.timer) {
          clearTimeout(q.timer);
          q.timer = undefined;
        }
        this.running.set(name, (this.running.get(name) ?? 0) + 1);
        void this.runBatch(q.model, batch);
      }
      if (!q.items.length && !q.timer) this.queues.delete(q.key);
    }
  }

  private async runBatch(m: ServedModel, batch: Pending[]): Promise<void> {
    const first = batch[0].job;
    const start = performance.now();
    const generation = this.generation;
    this.runningBatches.add(batch);
    try {
      const trace = batch.some((p) => p.job.trace);
      // per-block times only for traced batches: untraced ones run without hooks
      const timer = trace ? blockTimer() : null;
      // 'auto': device mode when the device is a GPU and the policy has a WGSL form, else host mode
      const res = await m.runner.run(batchInput(batch.map((p) => p.job.row)), {
        policy: first.policy,
        mode: 'auto',
        trace,
        ...(timer ? { hooks: [timer.hooks] } : {}),
      });
      const mode = res.summary.mode;
      const computeMs = performance.now() - start;
      const rowsPerBlock = res.summary.rowsPerBlock;
      const blockMs = timer?.blockMs(res.summary);
      this.o.onBatch?.({
        model: m.name,
        policy: first.policySpec,
        mode,
        size: batch.length,
        computeMs,
        rowsPerBlock,
      });
      batch.forEach((p, i) => {
        p.resolve({
          sample: res.samples[i],
          batchSize: batch.length,
          mode,
          queueMs: start - p.at,
          computeMs,
          rowsPerBlock,
          ...(blockMs ? { blockMs } : {}),
        });
      });
    } catch (e) {
      for (const p of batch) p.reject(e);
    } finally {
      this.runningBatches.delete(batch);
      if (generation === this.generation) {
        this.inflight -= batch.length;
        this.running.set(m.name, (this.running.get(m.name) ?? 1) - 1);
        this.pump();
        if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
      }
    }
  }

  /**
   * Rejects every queued and running request with `err` at once (the device was lost: running batches may
   * never finish well) and forgets them; batches still running end unheard. New requests are taken again.
   */
  failAll(err: unknown): number {
    this.generation++;
    let n = 0;
    for (const q of this.queues.values()) {
      if (q.timer) clearTimeout(q.timer);
      for (const p of q.items.splice(0)) {
        p.reject(err);
        n++;
      }
    }
    for (const batch of this.runningBatches) {
      for (const p of batch) p.reject(err);
      n += batch.length;
    }
    this.queues.clear();
    this.runningBatches.clear();
    this.running.clear();
    this.inflight = 0;
    for (const w of this.idleWaiters.splice(0)) w();
    return n;
  }

  /** Submits several jobs, all or none: refused as a whole when they do not all fit in the queue. */
  submitAll(jobs: Job[]): Promise<JobResult[]> {
    if (this.inflight + jobs.length > this.o.maxQueue && jobs.length > 1) {
      return Promise.reject(new QueueFullError(this.inflight, Math.max(1, Math.ceil(this.o.maxWaitMs / 1000))));
    }
    return Promise.all(jobs.map((j) => this.submit(j)));
  }

  /** Refuses new requests, runs what is queued at once, and resolves when nothing is left. */
  drain(): Promise<void> {
    this.closed = true;
    this.pump();
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }
}
