// Device, checkpoints and classifiers in the browser: WebGPU through navigator.gpu only (core's main entry),
// checkpoint files fetched from the site (./checkpoints/<name>/<file>) and kept in the Cache API, parsed with
// core's safetensors reader and config validation.
import {
  assertTensors,
  buildModel,
  type ConfigEnvelope,
  createGpuDevice,
  type Device,
  type EarlyExitModel,
  type ExitPolicy,
  FormatError,
  type GpuDevice,
  type HostTensor,
  modelTensorSpec,
  parseJsonText,
  parseModelConfig,
  parseSafetensors,
  Runner,
  type SafetensorsTensor,
} from '@offramp/core';
import { WordTokenizer } from '@offramp/tokenizers/word';
import { CHECKPOINT_FILES } from './checkpoint-list.ts';

export const CACHE_NAME = 'offramp-checkpoints-v1';

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  description: string;
  isFallback: boolean;
  text: string;
}

let devicePromise: Promise<GpuDevice> | null = null;

/** Whether this browser exposes WebGPU at all. */
export function hasWebGpu(): boolean {
  return typeof navigator !== 'undefined' && 'gpu' in navigator && Boolean((navigator as { gpu?: unknown }).gpu);
}

/** The one WebGPU device of the page (created on first use). */
export function getDevice(): Promise<GpuDevice> {
  if (!devicePromise) {
    devicePromise = createGpuDevice().catch((e) => {
      devicePromise = null;
      throw e;
    });
  }
  return devicePromise;
}

export function adapterInfo(device: GpuDevice): AdapterInfo {
  const a = device.adapter as unknown as {
    vendor: string;
    architecture: string;
    description: string;
    isFallback: boolean;
  };
  return { ...a, text: device.describe() };
}

/** Fetches a checkpoint file through the Cache API (network on the first visit, the cache afterwards). */
export async function fetchCheckpointFile(name: string, file: string): Promise<{ bytes: Uint8Array; cached: boolean }> {
  if (!CHECKPOINT_FILES[name]?.includes(file))
    throw new FormatError(
      `unknown checkpoint file ${name}/${file}; known: ${Object.keys(CHECKPOINT_FILES).join(', ')}`,
    );
  const url = new URL(`checkpoints/${name}/${file}`, document.baseURI).href;
  const cache = typeof caches !== 'undefined' ? await caches.open(CACHE_NAME).catch(() => null) : null;
  let res = cache ? await cache.match(url) : undefined;
  const cached = Boolean(res);
  if (!res) {
    res = await fetch(url);
    if (!res.ok) throw new FormatError(`could not fetch ${url}: HTTP ${res.status}`);
    if (cache) await cache.put(url, res.clone());
  }
  return { bytes: new Uint8Array(await res.arrayBuffer()), cached };
}

export async function fetchCheckpointJson(name: string, file: string): Promise<unknown> {
  const { bytes } = await fetchCheckpointFile(name, file);
  return parseJsonText(new TextDecoder().decode(bytes), `${name}/${file}`);
}

/** Float32 host tensors from parsed safetensors. */
export function hostTensors(tensors: Map<string, SafetensorsTensor>): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [k, t] of tensors) {
    const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>);
    out.set(k, { shape: [...t.shape], data });
  }
  return out;
}

export interface Classifier {
  name: string;
  envelope: ConfigEnvelope;
  model: EarlyExitModel;
  runner: Runner;
  device: Device;
  tokenizer?: WordTokenizer;
  /** Token length the text model was trained with (max_position). */
  maxTokens?: number;
  loadMs: number;
}

const classifiers = new Map<string, Promise<Classifier>>();

/** Loads (once) a classifier checkpoint: config, weights, tokenizer for text models, model and runner. */
export function loadClassifier(name: string): Promise<Classifier> {
  let p = classifiers.get(name);
  if (!p) {
    p = (async () => {
      const t0 = performance.now();
      const device = await getDevice();
      const envelope = parseModelConfig(await fetchCheckpointJson(name, 'config.json'), {
        source: `${name}/config.json`,
      });
      const { bytes } = await fetchCheckpointFile(name, 'model.safetensors');
      const parsed = parseSafetensors(bytes);
      assertTensors(modelTensorSpec(envelope.model), parsed.tensors, `${name}/model.safetensors`);
      const model = buildModel(device, envelope.model, hostTensors(parsed.tensors));
      const runner = new Runner(device, model, { maxBatch: 64 });
      let tokenizer: WordTokenizer | undefined;
      let maxTokens: number | undefined;
      if (envelope.model.architecture === 'encoder_classifier') {
        tokenizer = WordTokenizer.fromJSON(
          await fetchCheckpointJson(name, 'word-tokenizer.json'),
          `${name}/word-tokenizer.json`,
        );
        maxTokens = envelope.model.max_position;
      }
      return { name, envelope, model, runner, device, tokenizer, maxTokens, loadMs: performance.now() - t0 };
    })();
    p.catch(() => classifiers.delete(name));
    classifiers.set(name, p);
  }
  return p;
}

export interface ExitView {
  exitIndex: number;
  block: number;
  probs: number[];
  prediction: number;
}

/**
 * Every exit's probabilities for one input: a full-depth host-mode run with a probe policy that asks for the
 * logits and never exits early.
 */
export async function allExits(c: Classifier, input: Parameters<Runner['run']>[0]): Promise<ExitView[]> {
  const views: ExitView[] = [];
  const probe: ExitPolicy<null> = {
    name: 'probe',
    needs: ['logits'],
    options: {},
    init: () => null,
    decide(ctx, s) {
      const C = ctx.numClasses;
      const z = Array.from(s.logits!.subarray(0, C));
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const sum = e.reduce((a, b) => a + b, 0);
      const probs = e.map((v) => v / sum);
      views.push({ exitIndex: ctx.exitIndex, block: ctx.block, probs, prediction: s.argmax[0] });
      return new Uint8Array(s.count);
    },
  };
  await c.runner.run(input, { policy: probe, mode: 'host' });
  return views;
}

/** Fashion-MNIST bytes (0..255) → the model's input row (pixels / 255), as in training. */
export function pixelsToFeatures(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] / 255;
  return out;
}
