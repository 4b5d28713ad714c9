// Continuous batching of decode steps for one language model (a Mamba LM or a decoder, through LmBackend): requests join and leave a shared decode batch
// between steps. New requests are prefilled together (up to a budget of padded prompt tokens) into a
// prefill cache; before the next step their rows are merged with the running batch's (states read back
// once per block and written into a new cache of the new size), and finished or abandoned rows are
// compacted out the same way. Requests whose
// exit options differ (rule, skip) decode in separate groups, because a model's step takes one exit option
// for the whole batch; each loop iteration steps every group once.
//   per step and group: tokens (B) → step → logits (B, V), exit blocks (B) → one token per row
// Each request samples with its own seeded generator, so its tokens do not depend on its neighbours.
import { mulberry32 } from '@offramp/core';
import { type ExitOptions, type SamplingOptions, sampleToken } from '@offramp/mamba';
import type { LmBackend, LmCache } from './completions-backend.js';

export type FinishReason = 'stop' | 'length' | 'aborted';

export interface DecodeRequest {
  /** Prompt token ids (non-empty, within the model's prompt limit). */
  prompt: readonly number[];
  /** Most tokens to generate (≥ 1). */
  maxTokens: number;
  /** Temperature (0 = greedy), top-k, top-p and seed of this request's own sampler. */
  sampling?: SamplingOptions;
  /** Exit rule and skipped-state treatment (default: full depth). Classifier rules are not supported. */
  exit?: ExitOptions;
  /** Aborting removes the request from the batch before the next step. */
  signal?: AbortSignal;
  /**
   * Called with each new token and the block it left from (numLayers − 1 = full depth; the first token
   * comes from the prefill). Return true to end the sequence here (finish reason 'stop').
   */
  onToken(token: number, exitBlock: number): boolean | undefined;
}

export interface DecodeResult {
  finishReason: FinishReason;
  /** Tokens delivered to onToken. */
  tokens: number;
}

export interface DecodeSchedulerOptions {
  /** Most sequences decoding at once, over all groups (default 16); later requests wait in a queue. */
  maxBatch?: number;
  /** Most requests waiting for a slot (default 64); submit() throws SchedulerBusyError beyond it. */
  maxQueue?: number;
}

export interface DecodeSchedulerStats {
  /** Sequences in the decode batch now. */
  active: number;
  /** Requests waiting for a slot. */
  queued: number;
  /** Decode steps run (one per group per iteration). */
  steps: number;
  /** Tokens produced (prefill tokens included). */
  tokens: number;
  /** Largest number of rows one step has run. */
  maxStepRows: number;
  /** Σ rows over steps (mean batch = stepRows / steps). */
  stepRows: number;
  /** Prefills run, and Σ prompts over them (prompts prefilled together share one). */
  prefills: number;
  prefillRows: number;
}

/** The queue is full: the caller should answer 503 (try again later). */
export class SchedulerBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchedulerBusyError';
  }
}

interface Seq {
  req: DecodeRequest;
  rand: () => number;
  next: number;
  count: number;
  /** This sequence's prefill cache and its row there, until it is merged into its group's cache. */
  own: { shared: SharedCache; row: number } | null;
  /** Row in the group's cache (when own is null). */
  row: number;
  resolve(r: DecodeResult): void;
  reject(e: unknown): void;
}

interface Group {
  exit: ExitOptions | undefined;
  seqs: Seq[];
  cache: LmCache | null;
  dirty: boolean;
}

/** A prefill cache shared by the sequences prefilled together; disposed when the last one leaves it. */
interface SharedCache {
  cache: LmCache;
  refs: number;
}

function release(s: Seq): void {
  if (!s.own) return;
  if (--s.own.shared.refs === 0) s.own.shared.cache.dispose();
  s.own = null;
}

/**
 * Most prompt tokens one batched prefill pads to (batch × longest prompt): a prefill keeps every block's
 * activations for every padded token (≈ 20 KiB a token for the Austen model).
 */
export const PREFILL_TOKEN_BUDGET = 8192;

interface Pending {
  req: DecodeRequest;
  resolve(r: DecodeResult): void;
  reject(e: unknown): void;
}

function exitKey(exit: ExitOptions | undefined): string {
  const r = exit?.rule ?? { kind: 'never' };
  return JSON.stringify([r, r.kind === 'never' ? 'freeze' : (exit?.skip ?? 'freeze')]);
}

export class DecodeScheduler {
  readonly maxBatch: number;
  readonly maxQueue: number;
  private readonly queue: Pending[] = [];
  private readonly groups = new Map<string, Group>();
  private running = false;
  /** Requests taken from the queue and being prefilled (they hold a slot). */
  private admitting = 0;
  private closed = false;
  private readonly counters = { steps: 0, tokens: 0, maxStepRows: 0, stepRows: 0, prefills: 0, prefillRows: 0 };

  constructor(
    readonly model: LmBackend,
    options: DecodeSchedulerOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 16;
    this.maxQueue = options.maxQueue ?? 64;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1)
      throw new RangeError(`DecodeScheduler: maxBatch must be a positive integer, got ${options.maxBatch}`);
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < 0)
      throw new RangeError(`DecodeScheduler: maxQueue must be a non-negative integer, got ${options.maxQueue}`);
  }

  get active(): number {
    let n = this.admitting;
    for (const g of this.groups.values()) n += g.seqs.length;
    return n;
  }

  stats(): DecodeSchedulerStats {
    return { active: this.active, queued: this.queue.length, ...this.counters };
  }

  /**
   * Queues a request; resolves when it finishes (stop, length or aborted). Throws SchedulerBusyError at
   * once when the queue is full. Errors of the model (a failed prefill or step) reject the requests involved.
   */
  submit(req: DecodeRequest): Promise<DecodeResult> {
    if (this.closed) return Promise.reject(new Error('DecodeScheduler: closed'));
    if (this.queue.length >= this.maxQueue && this.active + this.queue.length >= this.maxBatch) {
      throw new SchedulerBusyError(
        `the server is busy: ${this.active} sequences decoding and ${this.queue.length} waiting (limit ${this.maxQueue}); try again later`,
      );
    }
    return new Promise<DecodeResult>((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      this.kick();
    });
  }

  /** Rejects queued and running requests (with `err`, or a 'closed' error) and frees their caches. */
  close(err: unknown = new Error('DecodeScheduler: closed')): void {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(err);
    for (const g of this.groups.values()) this.failGroup(g, err);
    this.groups.clear();
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    // start on the next turn of the event loop, so that requests arriving together are prefilled together
    void new Promise<void>((r) => setImmediate(r))
      .then(() => this.loop())
      .finally(() => {
        this.running = false;
        if (!this.closed && this.queue.length) this.kick();
      });
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      await this.admit();
      if (this.active === 0 && this.queue.length === 0) return;
      for (const [key, g] of [...this.groups]) {
        await this.stepGroup(g);
        if (g.seqs.length === 0) {
          g.cache?.dispose();
          this.groups.delete(key);
        }
      }
      // let the event loop write streamed chunks and take new requests between steps
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /**
   * Prefills waiting requests while there are free slots, several at once within PREFILL_TOKEN_BUDGET, and
   * delivers their first tokens.
   */
  private async admit(): Promise<void> {
    while (this.queue.length && this.active < this.maxBatch && !this.closed) {
      const batch: Pending[] = [];
      let longest = 0;
      while (this.queue.length && this.active + batch.length < this.maxBatch) {
        const p = this.queue[0];
        if (p.req.signal?.aborted) {
          this.queue.shift();
          p.resolve({ finishReason: 'aborted', tokens: 0 });
          continue;
        }
        const len = Math.max(longest, p.req.prompt.length);
        if (batch.length && len * (batch.length + 1) > PREFILL_TOKEN_BUDGET) break;
        batch.push(this.queue.shift()!);
        longest = len;
      }
      if (batch.length === 0) continue;
      this.admitting += batch.length;
      try {
        await this.prefill(batch);
      } finally {
        this.admitting -= batch.length;
      }
    }
  }

  private async prefill(batch: Pending[]): Promise<void> {
    let r: Awaited<ReturnType<LmBackend['prefill']>>;
    try {
      r = await this.model.prefill(batch.map((p) => p.req.prompt));
    } catch (e) {
      // one bad prompt must not fail its neighbours: prefill them one by one
      if (batch.length === 1) batch[0].reject(e);
      else for (const p of batch) await this.prefill([p]);
      return;
    }
    this.counters.prefills++;
    this.counters.prefillRows += batch.length;
    const shared: SharedCache = { cache: r.cache, refs: batch.length };
    batch.forEach((p, b) => {
      const seq: Seq = {
        req: p.req,
        rand: mulberry32(p.req.sampling?.seed ?? 0),
        next: 0,
        count: 0,
        own: { shared, row: b },
        row: 0,
        resolve: p.resolve,
        reject: p.reject,
      };
      const token = sampleToken(r.logits, b * this.model.V, this.model.V, p.req.sampling ?? {}, seq.rand);
      if (this.deliver(seq, token, this.model.L - 1)) {
        release(seq);
        return;
      }
      const key = exitKey(p.req.exit);
      let g = this.groups.get(key);
      if (!g) {
        g = { exit: p.req.exit, seqs: [], cache: null, dirty: false };
        this.groups.set(key, g);
      }
      g.seqs.push(seq);
      g.dirty = true;
    });
  }

  /** Hands a token to its request; returns true (and settles the request) when the sequence is done. */
  private deliver(seq: Seq, token: number, exitBlock: number): boolean {
    seq.count++;
    this.counters.tokens++;
    let stop: boolean | undefined;
    try {
      stop = seq.req.onToken(token, exitBlock);
    } catch (e) {
      seq.reject(e);
      return true;
    }
    const reason: FinishReason | null = stop
      ? 'stop'
      : seq.count >= seq.req.maxTokens
        ? 'length'
        : seq.req.signal?.aborted
          ? 'aborted'
          : null;
    if (reason) {
      seq.resolve({ finishReason: reason, tokens: seq.count });
      return true;
    }
    seq.next = token;
    return false;
  }

  private async stepGroup(g: Group): Promise<void> {
    const live = g.seqs.filter((s) => {
      if (!s.req.signal?.aborted) return true;
      release(s);
      s.resolve({ finishReason: 'aborted', tokens: s.count });
      return false;
    });
    if (live.length !== g.seqs.length) {
      g.seqs = live;
      g.dirty = true;
    }
    if (g.seqs.length === 0) return;
    try {
      if (g.dirty) await this.rebuild(g);
      const seqs = g.seqs;
      const r = await this.model.step(
        seqs.map((s) => s.next),
        g.cache!,
        g.exit,
      );
      this.counters.steps++;
      this.counters.stepRows += seqs.length;
      this.counters.maxStepRows = Math.max(this.counters.maxStepRows, seqs.length);
      const V = this.model.V;
      const keep: Seq[] = [];
      for (const s of seqs) {
        const token = sampleToken(r.logits, s.row * V, V, s.req.sampling ?? {}, s.rand);
        if (!this.deliver(s, token, r.exitBlocks[s.row])) keep.push(s);
      }
      if (keep.length !== seqs.length) {
        g.seqs = keep;
        g.dirty = true;
      }
    } catch (e) {
      this.failGroup(g, e);
    }
  }

  private failGroup(g: Group, e: unknown): void {
    for (const s of g.seqs) {
      release(s);
      s.reject(e);
    }
    g.seqs = [];
    g.cache?.dispose();
    g.cache = null;
  }

  /**
   * A cache holding exactly the group's sequences, in order: rows of the previous cache and of new
   * sequences' prefill caches, read back once per block tensor and written into a new cache.
   */
  private async rebuild(g: Group): Promise<void> {
    g.dirty = false;
    const seqs = g.seqs;
    const first = seqs[0].own;
    if (seqs.length === 1 && first && first.shared.cache.batch === 1) {
      g.cache?.dispose();
      g.cache = first.shared.cache;
      seqs[0].own = null;
      seqs[0].row = 0;
      return;
    }
    const old = g.cache;
    const oldRows = old && seqs.some((s) => !s.own);
    const m = this.model;
    const read = async (c: LmCache) => {
      const states: Float32Array[] = [];
      for (const t of m.stateTensors(c)) states.push((await t.read()) as Float32Array);
      return states;
    };
    const oldStates = oldRows ? await read(old) : null;
    const ownStates = new Map<SharedCache, Float32Array[]>();
    for (const s of seqs)
      if (s.own && !ownStates.has(s.own.shared)) ownStates.set(s.own.shared, await read(s.own.shared.cache));
    const n = seqs.length;
    const cache = m.newCache(n);
    m.stateTensors(cache).forEach((t, k) => {
      const w = t.length / n;
      const data = new Float32Array(n * w);
      seqs.forEach((s, i) => {
        const src = s.own ? ownStates.get(s.own.shared)! : oldStates!;
        const row = s.own ? s.own.row : s.row;
        data.set(src[k].subarray(row * w, (row + 1) * w), i * w);
      });
      t.write(data);
    });
    if (m.rowLength && m.setRowLength)
      seqs.forEach((s, i) => {
        const src = s.own ? s.own.shared.cache : old!;
        m.setRowLength!(cache, i, m.rowLength!(src, s.own ? s.own.row : s.row));
      });
    old?.dispose();
    seqs.forEach((s, i) => {
      release(s);
      s.row = i;
    });
    g.cache = cache;
  }
}
