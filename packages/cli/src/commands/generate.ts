// `offramp generate`: streams tokens from a Mamba language model (@offramp/mamba) with token-level early
// exit, showing the block each token left from (coloured on a terminal) and the depth saved.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Backend, parseJsonText } from '@offramp/core';
import { FILE_LIMITS, readBoundedTextSync, resolveInside } from '@offramp/core/node';
import { asUsage, RuntimeError, UsageError } from '../errors.js';
import { fileInModelDir, modelKind, resolveModelDir } from '../model.js';
import { parseOptionString } from '../policies.js';
import { bars, fixed, pct } from '../util/format.js';
import type { Colors, Logger } from '../util/log.js';
import { didYouMean } from '../util/suggest.js';

export interface GenerateCommandOptions {
  model: string;
  prompt: string;
  policy: string;
  maxTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
  skip: 'freeze' | 'partial';
  device: Backend;
}

const GENERATE_POLICIES = ['never', 'confidence', 'entropy', 'static'] as const;

/** The LM's exit rule for a policy spec: never, confidence:threshold=τ, entropy:threshold=S, static:exit=k. */
export function exitRuleOf(spec: string, exits: readonly number[]) {
  const colon = spec.indexOf(':');
  const name = (colon < 0 ? spec : spec.slice(0, colon)).trim();
  const o = colon < 0 ? {} : parseOptionString(spec.slice(colon + 1), `policy '${name}'`);
  const num = (k: string, lo: number, hi: number, def?: number): number => {
    const v = o[k] ?? def;
    if (typeof v !== 'number' || !(v >= lo && v <= hi))
      throw new UsageError(
        `policy '${name}': option '${k}' must be a number in [${lo}, ${hi}], got ${JSON.stringify(o[k])}`,
      );
    return v;
  };
  const only = (...keys: string[]) => {
    for (const k of Object.keys(o))
      if (!keys.includes(k))
        throw new UsageError(
          `policy '${name}': unknown option '${k}'${didYouMean(k, keys)}; options: ${keys.join(', ') || 'none'}`,
        );
  };
  switch (name) {
    case 'never':
      only();
      return { kind: 'never' as const };
    case 'confidence':
      only('threshold');
      return { kind: 'maxProb' as const, threshold: num('threshold', 0, 1, 0.9) };
    case 'entropy':
      only('threshold');
      return { kind: 'entropy' as const, threshold: num('threshold', 0, 100) };
    case 'static': {
      only('exit');
      const e = num('exit', 0, exits.length - 1);
      if (!Number.isInteger(e))
        throw new UsageError(`policy 'static': option 'exit' must be an integer in [0, ${exits.length - 1}], got ${e}`);
      return { kind: 'fixed' as const, block: exits[e] };
    }
    default:
      throw new UsageError(
        `policy '${name}' is not available for generation${didYouMean(name, GENERATE_POLICIES)}: use ${GENERATE_POLICIES.join(', ')} (e.g. confidence:threshold=0.9)`,
      );
  }
}

/**
 * The tokenizer file named in config.json (`offramp.tokenizer`), if any, resolved inside the model folder
 * (an absolute path, a '..' escape or a symbolic link out of the folder is refused).
 */
function tokenizerOf(dir: string): string | undefined {
  const p = join(dir, 'config.json');
  const j = parseJsonText(readBoundedTextSync(p, { maxBytes: FILE_LIMITS.json, what: 'the model config' }), p) as {
    offramp?: { tokenizer?: unknown };
  } | null;
  const t = j?.offramp?.tokenizer;
  if (t === undefined || t === null) return undefined;
  if (typeof t !== 'string')
    throw new RuntimeError(`${p}: offramp.tokenizer must be a file name inside the model folder, got ${typeof t}`);
  return resolveInside(dir, t, p);
}

/** Longest --prompt accepted, in characters (the model's own cap, in tokens, is checked after encoding). */
export const MAX_PROMPT_CHARS = 32_768;

function blockColor(c: Colors, block: number, L: number): (s: string) => string {
  if (block >= L - 1) return (s) => s;
  const palette = [c.green, c.cyan, c.blue, c.magenta, c.yellow];
  return palette[Math.min(palette.length - 1, Math.max(0, block - (L - 1 - palette.length)))] ?? c.green;
}

export async function generateCommand(o: GenerateCommandOptions, log: Logger) {
  const dir = resolveModelDir(o.model);
  if (modelKind(dir) !== 'mamba-lm')
    throw new UsageError(
      `${dir} is a classifier; generate needs a Mamba language model directory (HuggingFace-style config.json, e.g. checkpoints/austen-mamba)`,
    );
  if (!o.prompt) throw new UsageError('--prompt is empty; give the text to continue');
  if (o.prompt.length > MAX_PROMPT_CHARS)
    throw new UsageError(
      `--prompt is ${o.prompt.length} characters, more than the limit of ${MAX_PROMPT_CHARS}; a prefill keeps every block's activations for every prompt token, so give a shorter prompt`,
    );
  if (!Number.isInteger(o.maxTokens) || o.maxTokens < 1)
    throw new UsageError(`--max-tokens must be a positive integer, got ${o.maxTokens}`);
  const train = await import('@offramp/train');
  let tok: { encode(t: string): Int32Array; decode(ids: ArrayLike<number>): string; vocabSize?: number };
  const named = tokenizerOf(dir);
  if (named?.endsWith('tokenizer.json') && !named.endsWith('char-tokenizer.json') && existsSync(named))
    tok = train.loadBpeTokenizer(named);
  else if (named && existsSync(named)) tok = train.CharTokenizer.load(named);
  else if (existsSync(join(dir, 'char-tokenizer.json')))
    tok = train.CharTokenizer.load(fileInModelDir(dir, 'char-tokenizer.json'));
  else if (existsSync(join(dir, 'tokenizer.json'))) tok = train.loadBpeTokenizer(fileInModelDir(dir, 'tokenizer.json'));
  else throw new RuntimeError(`${dir} has no tokenizer (char-tokenizer.json or tokenizer.json)`);
  let mamba: typeof import('@offramp/mamba');
  let node: typeof import('@offramp/mamba/node');
  try {
    mamba = await import('@offramp/mamba');
    node = await import('@offramp/mamba/node');
  } catch (e) {
    throw new RuntimeError(`the Mamba language model (@offramp/mamba) is not available: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const core = await import('@offramp/core');
  const device = await core.createDevice({ backend: o.device });
  const c = log.c;
  let lm: InstanceType<typeof mamba.MambaLM> | null = null;
  try {
    const loaded = await node.loadMambaLM(device, dir);
    lm = loaded.model;
    const L = lm.numLayers;
    const rule = (() => {
      try {
        return exitRuleOf(o.policy, lm.exits);
      } catch (e) {
        throw asUsage(e);
      }
    })();
    const exit = { rule, skip: o.skip };
    const sampling = { temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed };
    try {
      mamba.checkSampling(sampling);
    } catch (e) {
      throw asUsage(e);
    }
    const prompt = Array.from(tok.encode(o.prompt));
    if (!prompt.length) throw new UsageError('the prompt encodes to no tokens');
    if (prompt.length > lm.maxPromptTokens)
      throw new UsageError(
        `the prompt encodes to ${prompt.length} tokens, more than the limit of ${lm.maxPromptTokens} tokens this model prefills; give a shorter prompt`,
      );
    log.info(
      c.dim(
        `device ${device.describe()}; ${L} blocks, exits after ${lm.exits.join(', ')}; policy ${o.policy}; colours: ${lm.exits.map((b) => blockColor(c, b, L)(`block ${b}`)).join(' ')}`,
      ),
    );
    const rand = core.mulberry32(o.seed);
    const t0 = performance.now();
    const { logits, cache } = await lm.prefill([prompt]);
    const tokens: { id: number; text: string; exitBlock: number }[] = [];
    log.write(log.json ? '' : o.prompt);
    let next = mamba.sampleToken(logits, 0, lm.V, sampling, rand);
    let block = L - 1;
    let blocksRun = 0;
    try {
      for (let k = 0; k < o.maxTokens; k++) {
        const text = tok.decode([next]);
        tokens.push({ id: next, text, exitBlock: block });
        if (!log.json) log.write(blockColor(c, block, L)(text));
        if (k + 1 === o.maxTokens) break;
        const r = await lm.step([next], cache, exit);
        blocksRun += r.blocksRun;
        block = r.exitBlocks[0];
        next = mamba.sampleToken(r.logits, 0, lm.V, sampling, rand);
      }
    } finally {
      cache.dispose();
    }
    const ms = performance.now() - t0;
    if (!log.json) log.write('\n');
    const steps = tokens.length - 1;
    const depthFraction = steps > 0 ? blocksRun / (steps * L) : 1;
    const hist = lm.exits.map((b) => ({
      label: `block ${b}`,
      value: tokens.slice(1).filter((t) => t.exitBlock === b).length,
    }));
    log.info();
    log.info(
      `${tokens.length} tokens in ${fixed(ms / 1000, 2)} s (${fixed(tokens.length / (ms / 1000), 1)} tokens/s); blocks run per token ${pct(depthFraction, 1)} of full depth`,
    );
    for (const line of bars(hist, 28)) log.info(`  ${line}`);
    const out = {
      command: 'generate',
      model: dir,
      policy: o.policy,
      prompt: o.prompt,
      text: tokens.map((t) => t.text).join(''),
      tokens,
      depthFraction,
      tokensPerSec: tokens.length / (ms / 1000),
      exitBlocks: [...lm.exits],
      numBlocks: L,
      device: device.describe(),
    };
    log.result(out);
    return out;
  } finally {
    lm?.dispose();
    device.destroy();
  }
}
