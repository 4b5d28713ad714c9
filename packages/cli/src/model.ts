// Finding and loading a model directory: a path, or the name of a shipped checkpoint (checkpoints/NAME in
// the checkout, else in the installed @offramp/models package). Offramp classifiers (config.json with offramp_format) load through @offramp/core; Mamba
// language models (HuggingFace-style config.json) through @offramp/mamba. Errors say how to get the model.
import { existsSync, lstatSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { type ConfigEnvelope, type HostTensor, parseJsonText } from '@offramp/core';
import { FILE_LIMITS, readBoundedTextSync, resolveInside } from '@offramp/core/node';
import { RuntimeError } from './errors.js';
import { checkpointsDir, SHIPPED_MODELS } from './util/workspace.js';

export type ModelKind = 'classifier' | 'mamba-lm';

/** Resolves `--model`: an existing path, else checkpoints/NAME of the checkout or of @offramp/models. */
export function resolveModelDir(spec: string): string {
  const direct = resolve(spec);
  if (existsSync(direct)) return direct;
  const ck = checkpointsDir();
  if (ck && !spec.includes('/') && existsSync(join(ck, spec))) return join(ck, spec);
  throw new RuntimeError(missingModelMessage(spec));
}

function missingModelMessage(spec: string): string {
  const name = basename(spec);
  const ck = checkpointsDir();
  const have = ck && existsSync(ck) ? SHIPPED_MODELS.filter((m) => existsSync(join(ck, m, 'config.json'))) : [];
  const lines = [`model directory '${spec}' does not exist (expected a folder with config.json and model.safetensors)`];
  if ((SHIPPED_MODELS as readonly string[]).includes(name)) {
    lines.push(
      `'${name}' is a shipped model: it comes with the @offramp/models package (installed with @offramp/cli) and lives in checkpoints/${name} of an Offramp checkout; to train it again run \`pnpm train:${name}\` at the repository root`,
    );
  }
  if (have.length) lines.push(`models available here: ${have.map((m) => `checkpoints/${m}`).join(', ')}`);
  else
    lines.push(
      'shipped models: checkpoints/fashion-cnn, checkpoints/imdb-encoder, ... (train one with `pnpm train:fashion-cnn`)',
    );
  return lines.join('\n  ');
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink(); // a dangling link or a loop: the read below says which
  } catch {
    return false;
  }
}

/** Which loader a directory needs, from its config.json (an embedder is refused: see servableKind). */
export function modelKind(dir: string): ModelKind {
  const kind = servableKind(dir);
  if (kind === 'embedder')
    throw new RuntimeError(
      `${dir} holds a multi-exit embedder (architecture encoder_embedder): use \`offramp embed\`, \`offramp index\` and \`offramp search\`, or serve it (\`offramp serve\` answers /v1/embeddings)`,
    );
  return kind;
}

/** What a directory holds, from its config.json: a classifier, a language model or a multi-exit embedder. */
export function servableKind(dir: string): ModelKind | 'embedder' {
  const p = join(dir, 'config.json');
  if (!existsSync(p) && !isLink(p)) {
    const isDir = existsSync(dir) && statSync(dir).isDirectory();
    throw new RuntimeError(
      `${isDir ? `${dir} has no config.json` : `${dir} is not a directory`}; a model directory holds config.json and model.safetensors`,
    );
  }
  let json: unknown;
  try {
    // bounded: a regular file within the config cap (a FIFO or /dev/zero is refused), BOM accepted, nesting limited
    json = parseJsonText(
      readBoundedTextSync(p, { maxBytes: FILE_LIMITS.json, what: 'the model config (config.json)' }),
      p,
    );
  } catch (e) {
    throw new RuntimeError((e as Error).message, { cause: e });
  }
  if (!json || typeof json !== 'object' || Array.isArray(json))
    throw new RuntimeError(
      `${p} holds ${Array.isArray(json) ? 'an array' : json === null ? 'null' : `a ${typeof json}`}; a model config is a JSON object`,
    );
  if ('offramp_format' in json) return 'classifier';
  if ((json as Record<string, unknown>).architecture === 'encoder_embedder') return 'embedder';
  const keys = Object.keys(json);
  const modelType = (json as Record<string, unknown>).model_type;
  if ((typeof modelType === 'string' && /mamba/i.test(modelType)) || keys.some((k) => MAMBA_KEYS.includes(k)))
    return 'mamba-lm';
  const shown = keys.slice(0, 8).map((k) => `'${k}'`);
  throw new RuntimeError(
    `${p} has neither offramp_format (an Offramp classifier) nor the fields of a Hugging Face Mamba config (hidden_size or d_model, num_hidden_layers or n_layer, vocab_size); it has ${keys.length ? `${shown.join(', ')}${keys.length > 8 ? `, … (${keys.length} keys)` : ''}` : 'no fields'}`,
  );
}

/** Fields that mark a Hugging Face Mamba config.json (current and original key styles). */
const MAMBA_KEYS = ['hidden_size', 'd_model', 'num_hidden_layers', 'n_layer', 'state_size', 'd_state'];

export interface LoadedClassifier {
  dir: string;
  name: string;
  envelope: ConfigEnvelope;
  /** The weights, as float32 host tensors. */
  tensors: Map<string, HostTensor & { dtype: string }>;
  /** Total number of weights. */
  parameters: number;
}

/** Loads and validates an Offramp classifier directory. */
export async function loadClassifier(spec: string): Promise<LoadedClassifier> {
  const dir = resolveModelDir(spec);
  if (modelKind(dir) !== 'classifier') {
    throw new RuntimeError(
      `${dir} holds a Mamba language model (HuggingFace-style config.json); this command needs an Offramp classifier (config.json with offramp_format): use \`offramp generate\` for language models`,
    );
  }
  const { loadModelDir } = await import('@offramp/core/node');
  const { config, tensors: raw } = await loadModelDir(dir);
  const tensors = new Map<string, HostTensor & { dtype: string }>();
  let parameters = 0;
  for (const [name, t] of raw) {
    parameters += t.shape.reduce((a, b) => a * b, 1);
    const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>);
    tensors.set(name, { shape: [...t.shape], data, dtype: t.dtype });
  }
  return { dir, name: basename(dir), envelope: config, tensors, parameters };
}

/**
 * A file of the model folder found by its name (not named in config.json): the path, after checking that it
 * does not lead out of the folder through a symbolic link.
 */
export function fileInModelDir(dir: string, name: string): string {
  try {
    return resolveInside(dir, name, join(dir, name));
  } catch (e) {
    throw new RuntimeError(
      `${join(dir, name)} leads outside the model folder ${dir} (a symbolic link); files a model uses must be inside its folder`,
      { cause: e },
    );
  }
}

/** A string field of the model's meta, if present. */
export function metaString(env: ConfigEnvelope, ...keys: string[]): string | undefined {
  const m = env.meta ?? {};
  for (const k of keys) {
    const v = (m as Record<string, unknown>)[k];
    if (typeof v === 'string' && v) return v;
  }
  return undefined;
}

/** A number field of the model's meta, if present. */
export function metaNumber(env: ConfigEnvelope, ...keys: string[]): number | undefined {
  const m = env.meta ?? {};
  for (const k of keys) {
    const v = (m as Record<string, unknown>)[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}
