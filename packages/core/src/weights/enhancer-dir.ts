// The RBQE enhancer's folder: config.json `{ offramp_format: 1, model: EnhancerConfig, meta }` and
// model.safetensors (F32), the same layout as the classifiers' folders. Node only (reads and writes files).
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FormatError, ValidationError } from '../errors.js';
import type { HostTensor } from '../models/common.js';
import { checkEnhancerConfig, checkEnhancerWeights, type EnhancerConfig } from '../models/enhancer.js';
import { FILE_LIMITS, readBoundedFileSync, readBoundedTextSync } from '../util/files.js';
import { parseSafetensors, writeSafetensors } from './safetensors.js';

export interface EnhancerDir {
  config: EnhancerConfig;
  tensors: Map<string, HostTensor>;
  meta: Record<string, unknown>;
}

/** Reads and checks an enhancer folder; errors name the file and what is wrong. */
export function loadEnhancerDir(dir: string): EnhancerDir {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ValidationError(`model folder ${dir} does not exist (expected config.json and model.safetensors)`);
  }
  const cfgPath = path.join(dir, 'config.json');
  const wPath = path.join(dir, 'model.safetensors');
  for (const p of [cfgPath, wPath])
    if (!existsSync(p)) throw new ValidationError(`model folder ${dir}: ${path.basename(p)} is missing`);
  let json: { offramp_format?: unknown; model?: EnhancerConfig; meta?: Record<string, unknown> };
  // bounded reads: regular files within the config and weights caps
  const text = readBoundedTextSync(cfgPath, { maxBytes: FILE_LIMITS.json, what: 'the enhancer config' });
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${cfgPath}: not valid JSON (${(e as Error).message})`);
  }
  if (!json || typeof json !== 'object' || json.offramp_format !== 1 || !json.model) {
    throw new FormatError(`${cfgPath}: expected { "offramp_format": 1, "model": { ... } }`);
  }
  if (json.model.architecture !== 'rbqe_enhancer') {
    throw new ValidationError(
      `${cfgPath}: architecture '${json.model.architecture}' is not an image enhancer (expected 'rbqe_enhancer')`,
    );
  }
  checkEnhancerConfig(json.model);
  const file = parseSafetensors(
    readBoundedFileSync(wPath, { maxBytes: FILE_LIMITS.weights, what: 'the enhancer weights' }),
    { copy: true },
  );
  const tensors = new Map<string, HostTensor>();
  for (const [name, t] of file.tensors) {
    if (!(t.data instanceof Float32Array)) throw new FormatError(`${wPath}: tensor '${name}' is not floating point`);
    tensors.set(name, { shape: t.shape, data: t.data });
  }
  checkEnhancerWeights(json.model, tensors);
  return { config: json.model, tensors, meta: json.meta ?? {} };
}

/** Writes config.json and model.safetensors (F32) into `dir`. */
export function saveEnhancerDir(
  dir: string,
  config: EnhancerConfig,
  tensors: Map<string, HostTensor>,
  meta = {},
): void {
  checkEnhancerWeights(config, tensors);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'config.json'),
    `${JSON.stringify({ offramp_format: 1, model: config, meta }, null, 2)}\n`,
  );
  const out = new Map([...tensors].map(([n, t]) => [n, { dtype: 'F32' as const, shape: t.shape, data: t.data }]));
  writeFileSync(path.join(dir, 'model.safetensors'), writeSafetensors(out));
}
