// @offramp/server: an HTTP server for early-exit models (Fastify): classifiers with dynamic batching per model
// and exit policy, Mamba language models behind OpenAI-compatible completion routes with continuous batching of
// decode steps, Prometheus metrics and an OpenAPI document.

export * from './completions.js';
export { type EmbeddingsPluginOptions, embeddingsPlugin } from './embeddings.js';
export { DeviceLostError, RecoveringError } from './faults.js';
export { InputError, LimitError, type ServedModel } from './models.js';
export { RefillScheduler, refillUnsupported } from './refill-scheduler.js';
export { type BatchInfo, BatchScheduler, QueueFullError } from './scheduler.js';
export * from './schemas.js';
export {
  createServer,
  type ModelEntry,
  type OfframpContext,
  type OfframpServer,
  type ServerOptions,
} from './server.js';
