// Prometheus metrics of one server instance (its own registry, so two servers in one process never mix).
import type { PoolStats } from '@offramp/core';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What the decode scheduler of one served language model reports (DecodeScheduler.stats()). */
export interface LmStats {
  active: number;
  queued: number;
  steps: number;
  tokens: number;
  stepRows: number;
}

/** What the metrics read from the server when scraped. */
export interface MetricSources {
  /** Classify requests waiting or in a running batch. */
  queueDepth: () => number;
  /** The decode scheduler of each served language model. */
  lmStats?: () => Map<string, LmStats>;
  /** The GPU device's buffer pool now (null on the CPU device). */
  pool?: () => PoolStats | null;
  /** Whether the server is recreating its device and reloading its models. */
  recovering?: () => boolean;
}

export function createMetrics(sources: MetricSources) {
  const { queueDepth, lmStats = () => new Map<string, LmStats>() } = sources;
  const registry = new Registry();
  // process_resident_memory_bytes, heap sizes, event-loop lag, GC (read when scraped)
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'offramp_http_requests_total',
    help: 'HTTP requests by route and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const total = new Histogram({
    name: 'offramp_request_duration_seconds',
    help: 'Time from receiving a request to sending its answer, by route',
    labelNames: ['route'] as const,
    buckets: latencyBuckets,
    registers: [registry],
  });
  const queueWait = new Histogram({
    name: 'offramp_queue_wait_seconds',
    help: 'Time a classify request waited for its batch to start',
    labelNames: ['model'] as const,
    buckets: latencyBuckets,
    registers: [registry],
  });
  const compute = new Histogram({
    name: 'offramp_batch_compute_seconds',
    help: 'Time the engine took to run one batch',
    labelNames: ['model', 'mode'] as const,
    buckets: latencyBuckets,
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: 'offramp_batch_size',
    help: 'Requests per engine batch',
    labelNames: ['model'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [registry],
  });
  const blockRows = new Histogram({
    name: 'offramp_block_live_rows',
    help: 'Rows that entered each block in one classify batch (block 0: the whole batch), by model',
    labelNames: ['model', 'block'] as const,
    buckets: [0, 1, 2, 4, 8, 16, 32, 64, 128],
    registers: [registry],
  });
  const deviceLosses = new Counter({
    name: 'offramp_device_losses_total',
    help: 'Times the GPU device was lost (or failed a run) and the server recreated it and reloaded its models',
    registers: [registry],
  });
  new Gauge({
    name: 'offramp_device_recovering',
    help: '1 while the server recreates its device and reloads its models (requests get 503), else 0',
    registers: [registry],
    collect() {
      this.set(sources.recovering?.() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'offramp_buffer_pool_bytes',
    help: "Device memory held by the GPU device's buffer pool (buffers in use and free for reuse), in bytes",
    registers: [registry],
    collect() {
      this.set(sources.pool?.()?.allocatedBytes ?? 0);
    },
  });
  new Gauge({
    name: 'offramp_buffer_pool_in_use_bytes',
    help: "Bytes of the buffer pool's buffers handed out now (weights, activations, staging)",
    registers: [registry],
    collect() {
      this.set(sources.pool?.()?.inUseBytes ?? 0);
    },
  });
  const exitBlock = new Histogram({
    name: 'offramp_exit_block',
    help: 'Block at which classify requests left the network, by model and policy spec',
    labelNames: ['model', 'policy'] as const,
    buckets: [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24, 32],
    registers: [registry],
  });
  const flopsSpent = new Counter({
    name: 'offramp_flops_spent_total',
    help: 'FLOPs spent on classify requests',
    labelNames: ['model'] as const,
    registers: [registry],
  });
  const flopsFull = new Counter({
    name: 'offramp_flops_full_depth_total',
    help: 'FLOPs the same requests would have spent at full depth',
    labelNames: ['model'] as const,
    registers: [registry],
  });
  const spent = new Map<string, [number, number]>();
  new Gauge({
    name: 'offramp_flops_saved_ratio',
    help: '1 − spent / full-depth FLOPs over all classify requests so far, by model',
    labelNames: ['model'] as const,
    registers: [registry],
    collect() {
      for (const [model, [s, f]] of spent) this.set({ model }, f > 0 ? 1 - s / f : 0);
    },
  });
  new Gauge({
    name: 'offramp_queue_depth',
    help: 'Classify requests waiting for a batch or in a running batch',
    registers: [registry],
    collect() {
      this.set(queueDepth());
    },
  });
  // language models: read from each decode scheduler when scraped (counters as gauges of running totals)
  const lmGauge = (name: string, help: string, value: (s: LmStats) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['model'] as const,
      registers: [registry],
      collect() {
        for (const [model, s] of lmStats()) this.set({ model }, value(s));
      },
    });
  lmGauge('offramp_lm_tokens_total', 'Tokens a language model has produced (prefill tokens included)', (s) => s.tokens);
  lmGauge('offramp_lm_decode_steps_total', 'Decode steps a language model has run', (s) => s.steps);
  lmGauge(
    'offramp_lm_decode_rows_total',
    'Sequences summed over decode steps (÷ steps = mean decode batch)',
    (s) => s.stepRows,
  );
  lmGauge('offramp_lm_active_sequences', 'Sequences in the decode batch now', (s) => s.active);
  lmGauge('offramp_lm_queued_requests', 'Completion requests waiting for a decode slot', (s) => s.queued);
  return {
    registry,
    requests,
    total,
    queueWait,
    compute,
    batchSize,
    exitBlock,
    blockRows,
    deviceLosses,
    /** Records one answered sample's compute. */
    flops(model: string, flops: number, costFraction: number) {
      const full = costFraction > 0 ? flops / costFraction : flops;
      flopsSpent.inc({ model }, flops);
      flopsFull.inc({ model }, full);
      const s = spent.get(model) ?? [0, 0];
      s[0] += flops;
      s[1] += full;
      spent.set(model, s);
    },
  };
}

export type ServerMetrics = ReturnType<typeof createMetrics>;
