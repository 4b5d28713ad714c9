// Multi-exit text embeddings: config and tensor spec, the engine model, embed(), and a float64 reference.
export * from './config.js';
export * from './embed.js';
export * from './model.js';
export * from './reference.js';
