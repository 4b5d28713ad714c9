// `offramp generate`: streams tokens from a language model with token-level early exit — a Llama-style
// decoder folder (LlamaForCausalLM) or a Mamba LM folder (MambaForCausalLM), told apart by config.json —
// showing the block each token left from (coloured on a terminal, or bracketed) and the depth saved. Any
// exit policy of the CLI grammar runs per token (built-ins, policy files, plugins, CALM's decaying
// threshold); the decoding strategy goes through one dispatch function, runStrategy.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Backend,
  type DecoderLM,
  type Device,
  type ExitPolicy,
  type GenerationModel,
  parseJsonText,
} from '@offramp/core';
import { FILE_LIMITS, readBoundedTextSync, resolveInside } from '@offramp/core/node';
import { asUsage, RuntimeError, UsageError } from '../errors.js';
import { fileInModelDir, modelKind, resolveModelDir } from '../model.js';
import { parseOptionString, parsePolicyRequest } from '../policies.js';
import { bars, fixed, pct } from '../util/format.js';
import type { Colors, Logger } from '../util/log.js';
import { didYouMean } from '../util/suggest.js';

type GenerateTokensOptions = import('@offramp/policies').GenerateTokensOptions;
type GenerateTokensResult = import('@offramp/policies').GenerateTokensResult;

export type GenerateStrategy = 'calm' | 'recompute' | 'skipdecode' | 'speculative';
export const GENERATE_STRATEGIES: readonly GenerateStrategy[] = ['calm', 'recompute', 'skipdecode', 'speculative'];

export interface GenerateCommandOptions {
  model: string;
  prompt: string;
  /** Default: confidence:threshold=0.9 for calm and recompute, never for skipdecode and speculative. */
  policy?: string;
  strategy?: GenerateStrategy;
  /** How each token's exit block is shown: 'color' (default), 'brackets' (text[block]) or 'none'. */
  depth?: 'color' | 'brackets' | 'none';
  maxTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
  /** Mamba: 'freeze' (default) or 'partial'; decoder: 'propagate' (default) or 'none'. */
  skip?: 'freeze' | 'partial' | 'propagate' | 'none';
  device: Backend;
  /** speculative: the early exit block that drafts (default the model's first early exit). */
  draftExit?: number;
  /** speculative: tokens drafted per round, or 'adaptive' (default). */
  draftTokens?: number | 'adaptive';
  /** skipdecode: top blocks run at the end of the schedule (default ⌈(L − 1) / 2⌉). */
  hMin?: number;
}

/**
 * The exit policy a --policy spec names, run per token: 'never' (null: full depth), CALM's decaying
 * threshold (decaying:threshold=λ,tau=τ,signal=maxProb|margin|similarity), or anything of the CLI's policy
 * grammar (a built-in with options or its defaults, file:PATH.json, module:PACKAGE[:options]).
 */
export async function tokenPolicyOf(spec: string): Promise<ExitPolicy<any> | null> {
  const P = await import('@offramp/policies');
  const t = spec.trim();
  const colon = t.indexOf(':');
  const name = (colon < 0 ? t : t.slice(0, colon)).trim();
  try {
    if (name === 'never' && colon < 0) return null;
    if (name === 'decaying')
      return P.decaying(colon < 0 ? {} : parseOptionString(t.slice(colon + 1), "policy 'decaying'"));
    const req = await parsePolicyRequest(t);
    switch (req.kind) {
      case 'sweep':
        return P.createPolicy(req.name);
      case 'builtin':
      case 'file':
        return P.createPolicy(req.name, req.options);
      case 'module':
        return req.factory(req.options);
    }
  } catch (e) {
    throw asUsage(e);
  }
}

/** What the dispatch runs: the model, the prompts and the loop's options. */
export interface StrategyRequest {
  model: GenerationModel;
  prompts: number[][];
  options: GenerateTokensOptions;
  /** The decoder under `model` (the decoder strategies drive it directly). */
  decoder?: DecoderLM;
  /** speculative: drafting exit block and tokens per round ('adaptive' by default). */
  draftExit?: number;
  draftTokens?: number | 'adaptive';
  /** skipdecode: top blocks at the end of the schedule. */
  hMin?: number;
}

/**
 * The one dispatch of --strategy. 'calm' is the host loop with token-level exits (the decoder's skipped
 * blocks get keys and values by CALM state propagation; Mamba freezes or partially updates them). The
 * others ('recompute', 'skipdecode', 'speculative') are decoder strategies of the generation loop (a Mamba
 * model is refused with a clear message). Every strategy streams: onToken gets each row's tokens as its loop
 * makes them final (one event per token, index counted per row).
 */
export async function runStrategy(strategy: GenerateStrategy, r: StrategyRequest): Promise<GenerateTokensResult> {
  if (!GENERATE_STRATEGIES.includes(strategy))
    throw new UsageError(
      `--strategy '${strategy}' is unknown${didYouMean(strategy, GENERATE_STRATEGIES)}: use ${GENERATE_STRATEGIES.join(', ')}`,
    );
  if (strategy !== 'calm' && r.model.kind !== 'decoder')
    throw new UsageError(
      `--strategy ${strategy} is a decoder strategy; a ${r.model.kind} model generates with --strategy calm (token-level exits, --skip freeze or partial)`,
    );
  if (strategy === 'calm') {
    const P = await import('@offramp/policies');
    return P.generateTokens(r.model, r.prompts, r.options);
  }
  const lm = r.decoder;
  if (!lm) throw new RuntimeError(`--strategy ${strategy} needs a decoder model`);
  const core = await import('@offramp/core');
  const o = r.options;
  const L = lm.numLayers;
  // tokens reach onToken as each loop makes them final (a readback, a step, a speculative round)
  const emitted = r.prompts.map(() => 0);
  const onTokens: import('@offramp/core').TokenSink = (row, tokens, exitBlocks) => {
    tokens.forEach((token, j) => {
      o.onToken?.({ index: emitted[row]++, rows: [{ row, token, exitBlock: exitBlocks[j] }] });
    });
  };
  let out: { tokens: number[][]; exitBlocks: number[][]; blocksRun: number };
  try {
    if (strategy === 'speculative') {
      if (o.policy)
        throw new UsageError(
          '--strategy speculative is lossless: it drafts with an early exit and keeps only what the full model would produce, so it takes no --policy (use --policy never); choose the drafting exit with --draft-exit',
        );
      const early = lm.exits.slice(0, -1);
      const draftExit = r.draftExit ?? early[0];
      if (draftExit === undefined || !early.includes(draftExit))
        throw new UsageError(
          `--draft-exit ${r.draftExit ?? '(default)'}: speculative decoding drafts from an early exit of this model: ${early.join(', ') || 'it has none'}`,
        );
      const k = r.draftTokens ?? 'adaptive';
      const res = await core.speculativeGenerate(lm, r.prompts, {
        maxNewTokens: o.maxNewTokens,
        draftExit,
        k: k === 'adaptive' ? 4 : k,
        adaptive: k === 'adaptive',
        sampling: o.sampling,
        stop: o.stop ? [...o.stop] : undefined,
        onTokens,
      });
      // every token is the full model's; its depth is the whole network
      out = { tokens: res.tokens, exitBlocks: res.tokens.map((t) => t.map(() => L - 1)), blocksRun: res.blocks };
    } else {
      if (o.skip === 'none')
        throw new UsageError(`--skip none applies to --strategy calm only; ${strategy} handles skipped blocks itself`);
      let rule: import('@offramp/core').DecoderExitRule | undefined;
      if (strategy === 'recompute') {
        if (!o.policy)
          throw new UsageError('--strategy recompute needs an exit --policy (for example confidence:threshold=0.9)');
        const P = await import('@offramp/policies');
        rule = P.tokenExitRule(
          o.policy,
          { numLayers: L, exits: lm.exits, vocabSize: lm.V },
          {
            batch: r.prompts.length,
            maxNewTokens: o.maxNewTokens,
          },
        ).decoderRule();
      } else if (o.policy)
        throw new UsageError(
          '--strategy skipdecode decides depth by position, not by a policy (use --policy never); set the schedule with --h-min',
        );
      const res = await core.generateWithStrategy(lm, r.prompts, {
        strategy,
        maxNewTokens: o.maxNewTokens,
        sampling: o.sampling,
        stop: o.stop ? [...o.stop] : undefined,
        exit: rule ? { rule } : undefined,
        schedule: strategy === 'skipdecode' ? { hMin: r.hMin ?? Math.max(1, Math.ceil((L - 1) / 2)) } : undefined,
        onTokens,
      });
      out = res;
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof RuntimeError) throw e;
    throw asUsage(e);
  }
  const later = out.tokens.reduce((a, t) => a + Math.max(0, t.length - 1), 0);
  return {
    tokens: out.tokens,
    exitBlocks: out.exitBlocks,
    blocksRun: out.blocksRun,
    depthFraction: later > 0 ? out.blocksRun / (later * L) : 1,
  };
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

/** 'decoder' for a Llama-style folder (LlamaForCausalLM / model_type llama), 'mamba' for a Mamba LM. */
export function lmKindOf(dir: string): 'decoder' | 'mamba' {
  const p = join(dir, 'config.json');
  if (existsSync(p)) {
    let j: unknown = null;
    try {
      j = parseJsonText(readBoundedTextSync(p, { maxBytes: FILE_LIMITS.json, what: 'the model config' }), p);
    } catch (e) {
      throw new RuntimeError((e as Error).message, { cause: e });
    }
    if (j && typeof j === 'object' && !Array.isArray(j)) {
      const o = j as { architectures?: unknown; model_type?: unknown };
      const arch = Array.isArray(o.architectures) ? o.architectures : [];
      if (arch.includes('LlamaForCausalLM') || o.model_type === 'llama') return 'decoder';
      if (arch.includes('MambaForCausalLM')) return 'mamba';
    }
  }
  const kind = modelKind(dir);
  if (kind === 'mamba-lm') return 'mamba';
  throw new UsageError(
    `${dir} is a classifier; generate needs a language model folder: a Llama-style decoder (config.json with architectures LlamaForCausalLM) or a Mamba LM (MambaForCausalLM), e.g. checkpoints/austen-mamba`,
  );
}

interface LoadedLm {
  model: GenerationModel;
  /** The decoder itself (decoder folders), for the decoder strategies. */
  decoder?: DecoderLM;
  /** Set when `model` runs on the ONNX Runtime CPU path (OrtDecoderLM, OrtMambaLM): what runs it. */
  ortPath?: string;
  encode(text: string): number[];
  decode(ids: number[]): string;
  maxPromptTokens: number;
  describe: string;
  dispose(): void;
}

async function loadLm(dir: string, kind: 'decoder' | 'mamba', device: Device): Promise<LoadedLm> {
  if (kind === 'decoder') {
    const core = await import('@offramp/core');
    const { loadDecoderLM } = await import('@offramp/core/node');
    const { model: lm, loaded } = await loadDecoderLM(dir, device);
    const tok = loaded.tokenizer;
    if (!tok) {
      lm.dispose();
      throw new RuntimeError(`${dir} has no tokenizer (tokenizer.json or a char tokenizer named in config.json)`);
    }
    // where the device carries the ONNX Runtime CPU path (auto on a software adapter), token-level generation
    // (calm) runs on it; the other strategies drive the DecoderLM on the device
    const ortCpu = core.ortCpuOf(device);
    const ortLm = ortCpu
      ? new core.OrtDecoderLM(ortCpu, loaded.config, loaded.tensors, { exits: [...lm.exits] })
      : null;
    return {
      model: ortLm ?? core.decoderGenerationModel(lm),
      decoder: lm,
      ortPath: ortLm?.describe(),
      encode: (t) => tok.encode(t),
      decode: (ids) => tok.decode(ids),
      maxPromptTokens: Math.min(lm.maxTokens, lm.config.maxPositionEmbeddings - 1),
      describe: `decoder, ${lm.numLayers} blocks`,
      dispose: () => {
        lm.dispose();
        void ortLm?.dispose();
      },
    };
  }
  const train = await import('@offramp/train');
  let tok: { encode(t: string): Int32Array; decode(ids: ArrayLike<number>): string };
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
  const { model: lm, loaded } = await node.loadMambaLM(device, dir);
  // the ONNX Runtime CPU path, where the device carries it (as for the decoder)
  const ortCpu = (await import('@offramp/core')).ortCpuOf(device);
  const ortLm = ortCpu ? new mamba.OrtMambaLM(ortCpu, loaded.config, loaded.tensors, { exits: [...lm.exits] }) : null;
  return {
    model: ortLm ?? mamba.mambaGenerationModel(lm),
    ortPath: ortLm ? `Mamba on ${ortCpu!.describe()}` : undefined,
    encode: (t) => Array.from(tok.encode(t)),
    decode: (ids) => tok.decode(ids),
    maxPromptTokens: lm.maxPromptTokens,
    describe: `Mamba, ${lm.numLayers} blocks`,
    dispose: () => {
      lm.dispose();
      void ortLm?.dispose();
    },
  };
}

export async function generateCommand(o: GenerateCommandOptions, log: Logger) {
  const dir = resolveModelDir(o.model);
  const kind = lmKindOf(dir);
  if (!o.prompt) throw new UsageError('--prompt is empty; give the text to continue');
  if (o.prompt.length > MAX_PROMPT_CHARS)
    throw new UsageError(
      `--prompt is ${o.prompt.length} characters, more than the limit of ${MAX_PROMPT_CHARS}; a prefill keeps every block's activations for every prompt token, so give a shorter prompt`,
    );
  if (!Number.isInteger(o.maxTokens) || o.maxTokens < 1)
    throw new UsageError(`--max-tokens must be a positive integer, got ${o.maxTokens}`);
  const strategy = o.strategy ?? 'calm';
  const skips = kind === 'decoder' ? ['propagate', 'none'] : ['freeze', 'partial'];
  if (o.skip !== undefined && !skips.includes(o.skip))
    throw new UsageError(`--skip ${o.skip} is not a ${kind} strategy; use ${skips.join(' or ')}`);
  const policySpec =
    o.policy ?? (strategy === 'calm' || strategy === 'recompute' ? 'confidence:threshold=0.9' : 'never');
  const policy = await tokenPolicyOf(policySpec);
  const core = await import('@offramp/core');
  const sampling = { temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed };
  try {
    core.checkSampling(sampling);
  } catch (e) {
    throw asUsage(e);
  }
  const device = await core.createDevice({ backend: o.device });
  const c = log.c;
  let lm: LoadedLm | null = null;
  try {
    lm = await loadLm(dir, kind, device);
    const { model } = lm;
    const L = model.numLayers;
    const prompt = lm.encode(o.prompt);
    if (!prompt.length) throw new UsageError('the prompt encodes to no tokens');
    if (prompt.length > lm.maxPromptTokens)
      throw new UsageError(
        `the prompt encodes to ${prompt.length} tokens, more than the limit of ${lm.maxPromptTokens} tokens this model prefills; give a shorter prompt`,
      );
    if (prompt.length + o.maxTokens > model.maxSequenceLength)
      throw new UsageError(
        `the prompt (${prompt.length} tokens) plus --max-tokens ${o.maxTokens} exceed this model's ${model.maxSequenceLength} positions; lower --max-tokens`,
      );
    const depth = o.depth ?? 'color';
    // which execution path the tokens take (as eval and demo print it)
    const path = strategy === 'calm' && lm.ortPath ? 'ort-cpu' : device.kind === 'gpu' ? 'webgpu' : 'cpu-reference';
    log.info(
      c.dim(
        `device ${device.describe()}; path ${path}${path === 'ort-cpu' ? ` (${lm.ortPath})` : ''}; ${lm.describe}, exits after ${model.exits.join(', ')}; strategy ${strategy}; policy ${policySpec}${depth === 'color' ? `; colours: ${model.exits.map((b) => blockColor(c, b, L)(`block ${b}`)).join(' ')}` : ''}`,
      ),
    );
    const tokens: { id: number; text: string; exitBlock: number }[] = [];
    log.write(log.json ? '' : o.prompt);
    const show = (text: string, block: number) => {
      if (log.json) return;
      if (depth === 'brackets') log.write(`${text}${c.dim(`[${block}]`)}`);
      else if (depth === 'color') log.write(blockColor(c, block, L)(text));
      else log.write(text);
    };
    const t0 = performance.now();
    const res = await runStrategy(strategy, {
      model,
      decoder: lm.decoder,
      draftExit: o.draftExit,
      draftTokens: o.draftTokens,
      hMin: o.hMin,
      prompts: [prompt],
      options: {
        maxNewTokens: o.maxTokens,
        policy: policy ?? undefined,
        skip: o.skip,
        sampling,
        onToken: (ev) => {
          for (const r of ev.rows) {
            const text = lm!.decode([r.token]);
            tokens.push({ id: r.token, text, exitBlock: r.exitBlock });
            show(text, r.exitBlock);
          }
        },
      },
    });
    const ms = performance.now() - t0;
    if (!log.json) log.write('\n');
    const hist = model.exits.map((b) => ({
      label: `block ${b}`,
      value: tokens.slice(1).filter((t) => t.exitBlock === b).length,
    }));
    log.info();
    log.info(
      `${tokens.length} tokens in ${fixed(ms / 1000, 2)} s (${fixed(tokens.length / (ms / 1000), 1)} tokens/s); blocks run per token ${pct(res.depthFraction, 1)} of full depth`,
    );
    for (const line of bars(hist, 28)) log.info(`  ${line}`);
    const out = {
      command: 'generate',
      model: dir,
      kind,
      strategy,
      policy: policySpec,
      skip: o.skip ?? model.skipStrategies[0],
      prompt: o.prompt,
      text: tokens.map((t) => t.text).join(''),
      tokens,
      depthFraction: res.depthFraction,
      tokensPerSec: tokens.length / (ms / 1000),
      exitBlocks: [...model.exits],
      numBlocks: L,
      device: device.describe(),
      path,
    };
    log.result(out);
    return out;
  } finally {
    lm?.dispose();
    device.destroy();
  }
}
