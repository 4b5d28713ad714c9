// One entry point for the decoder's generation strategies, by name, for the CLI and the benchmarks:
//   'calm'       per-token exits by a rule; skipped blocks' K/V from the exit's hidden state (CALM
//                propagation). Runs in the device loop (generateOnDevice) unless mode is 'host' or the rule
//                is custom (then the host loop).
//   'recompute'  per-token exits by a rule; skipped blocks' K/V recomputed from the exited token in the
//                dispatches of the next step that runs deeper (EE-LLM; fused: false runs it as a pass of its
//                own before the next step), so later tokens see full-depth K/V (generateRecompute).
//   'skipdecode' one depth per step shared by the batch, non-increasing; lower blocks skipped
//                (generateSkipDecode, device loop).
import { ValidationError } from '../errors.js';
import type { DecoderExitRule, DecoderLM } from '../models/decoder-lm.js';
import type { SamplingOptions } from '../models/sampling.js';
import { generateHostLoop, generateOnDevice } from './gpu-loop.js';
import { generateRecompute } from './recompute.js';
import { generateSkipDecode, type SkipDecodeSchedule } from './skipdecode.js';
import type { TokenSink } from './stream.js';

export type GenerationStrategy = 'calm' | 'recompute' | 'skipdecode';
export const GENERATION_STRATEGIES: readonly GenerationStrategy[] = ['calm', 'recompute', 'skipdecode'];

export interface StrategyOptions {
  strategy: GenerationStrategy;
  maxNewTokens: number;
  sampling?: SamplingOptions;
  stop?: number[];
  /** Exit rule of 'calm' and 'recompute' (default never). */
  exit?: { rule: DecoderExitRule };
  /** SkipDecode's schedule (required for 'skipdecode'). */
  schedule?: SkipDecodeSchedule;
  /** 'calm' only: 'device' (default) or 'host'. */
  mode?: 'device' | 'host';
  /** 'recompute' only: recompute inside the next step's dispatches (default true) or in a pass of its own. */
  fused?: boolean;
  /** 'calm' on the device: gate a step's blocks off once no row is live (default true; see gpu-loop.ts). */
  gate?: boolean;
  /** Device loop: decode steps per submission. */
  stepsPerSubmit?: number;
  /** Streams tokens as they become final (per readback in the device loops, per step on the host). */
  onTokens?: TokenSink;
}

export interface StrategyResult {
  strategy: GenerationStrategy;
  tokens: number[][];
  /** Per token, the block its logits came from (full depth = numLayers − 1; always so for skipdecode). */
  exitBlocks: number[][];
  /** Blocks the tokens after the first ran (their own forward). */
  blocksRun: number;
  /**
   * Blocks computed on the device, recomputation included (the device loop runs masked rows too: every row
   * of a step up to its deepest exit with the dispatch gate on, every block with it off).
   */
  blocksComputed: number;
  /** blocksRun / (tokens after the first × numLayers). */
  depthFraction: number;
}

export async function generateWithStrategy(
  model: DecoderLM,
  prompts: readonly (readonly number[])[],
  o: StrategyOptions,
): Promise<StrategyResult> {
  const base = { maxNewTokens: o.maxNewTokens, sampling: o.sampling, stop: o.stop, onTokens: o.onTokens };
  let r: { tokens: number[][]; exitBlocks: number[][]; blocksRun: number; blocksComputed: number };
  switch (o.strategy) {
    case 'calm': {
      const rule = o.exit?.rule ?? { kind: 'never' };
      const host = o.mode === 'host' || rule.kind === 'custom';
      if (o.mode !== undefined && o.mode !== 'host' && o.mode !== 'device')
        throw new ValidationError(`generateWithStrategy: mode must be 'device' or 'host', got '${o.mode}'`);
      r = host
        ? await generateHostLoop(model, prompts, { ...base, exit: { rule } })
        : await generateOnDevice(model, prompts, {
            ...base,
            exit: { rule },
            stepsPerSubmit: o.stepsPerSubmit,
            gate: o.gate,
          });
      break;
    }
    case 'recompute':
      r = await generateRecompute(model, prompts, {
        ...base,
        exit: { rule: o.exit?.rule ?? { kind: 'never' } },
        fused: o.fused,
      });
      break;
    case 'skipdecode':
      if (!o.schedule)
        throw new ValidationError(
          "generateWithStrategy: strategy 'skipdecode' needs a schedule { hMin, hMax?, warmup?, t0?, T? }",
        );
      r = await generateSkipDecode(model, prompts, { ...base, schedule: o.schedule, stepsPerSubmit: o.stepsPerSubmit });
      break;
    default:
      throw new ValidationError(
        `generateWithStrategy: unknown strategy '${(o as { strategy: string }).strategy}'; use ${GENERATION_STRATEGIES.join(', ')}`,
      );
  }
  const later = r.tokens.reduce((a, t) => a + Math.max(0, t.length - 1), 0);
  return {
    strategy: o.strategy,
    tokens: r.tokens,
    exitBlocks: r.exitBlocks,
    blocksRun: r.blocksRun,
    blocksComputed: r.blocksComputed,
    depthFraction: later ? r.blocksRun / (later * model.L) : 1,
  };
}
