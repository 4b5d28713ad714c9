// Training API of @offramp/train: tfjs forms of the engine's models, exit-head recipes, the training loop with
// resumable checkpoints, evaluation of exits and export to Offramp model directories.
export * from './backend.js';
export * from './checkpoint.js';
export * from './cli.js';
export * from './custom.js';
export * from './evaluate.js';
export * from './examples.js';
export * from './feature-cache.js';
export * from './finish.js';
export * from './model-card.js';
export * from './models.js';
export * from './optimizer.js';
export * from './pretrain.js';
export * from './progress.js';
export * from './recipes.js';
export * from './trainer.js';
