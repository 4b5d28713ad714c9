// @offramp/server: an HTTP server for early-exit classifiers (Fastify), with dynamic batching per model and
// exit policy, Prometheus metrics and an OpenAPI document.

export { InputError, type ServedModel } from './models.js';
export { type BatchInfo, BatchScheduler, QueueFullError } from './scheduler.js';
export * from './schemas.js';
export { createServer, type OfframpContext, type OfframpServer, type ServerOptions } from './server.js';
