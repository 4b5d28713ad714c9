// embed(): unit-length embeddings of token sequences from a Runner over an EncoderEmbedder, at one exit (the
// rows leave there: the blocks above it do not run) or at every exit in one pass. The same on every path: the
// WebGPU kernels, the CPU reference kernels, or ONNX Runtime (a Runner on a device with the ONNX Runtime CPU
// path attached runs the embedder's translated segments: exit k runs segments 0 … k).
import type { ExitPolicy } from '../engine/policy.js';
import type { Runner } from '../engine/runner.js';
import { ValidationError } from '../errors.js';
import { EncoderEmbedder } from './model.js';

export interface EmbedOptions {
  /** 0-based exit index, or 'all' for every exit in one pass. Default: the last exit. */
  exit?: number | 'all';
}

export interface EmbedResult {
  /** Embedding width p. */
  dim: number;
  /** The exits returned, in order (one, or all). */
  exits: number[];
  /** Per returned exit: n·p values, row i at [i·p, (i+1)·p). */
  vectors: Float32Array[];
  /** FLOPs each sequence spent (up to the requested exit; with 'all', the full depth). */
  flops: number[];
}

/** Leaves every row at exit `k` (host and device forms). */
export function exitAt(k: number): ExitPolicy<null> {
  return {
    name: 'exit-at',
    options: { exit: k },
    init: () => null,
    decide: (ctx, s) => new Uint8Array(s.count).fill(ctx.exitIndex >= k ? 1 : 0),
    device: {
      stateSize: 0,
      code: `fn policy_decide(sid: u32, exit_index: u32, s: Signals) -> bool { return exit_index >= ${k}u; }`,
    },
  };
}

export async function embed(
  runner: Runner,
  input: { ids: ArrayLike<number>[]; lengths?: ArrayLike<number> },
  options: EmbedOptions = {},
): Promise<EmbedResult> {
  const model = runner.model;
  if (!(model instanceof EncoderEmbedder)) {
    throw new ValidationError(
      `embed: the runner's model is a ${model.config.architecture}; embed needs an encoder_embedder`,
    );
  }
  const E = model.exitBlocks.length;
  const p = model.numClasses;
  const n = model.batchSize(input);
  const exit = options.exit ?? E - 1;
  if (exit === 'all') {
    const vectors = Array.from({ length: E }, () => new Float32Array(n * p));
    const seen = Array.from({ length: E }, () => new Uint8Array(n));
    const flops: number[] = [];
    // the runner numbers rows within a chunk of maxBatch: run the chunks here, each with its row offset
    for (let start = 0; start < n; start += runner.maxBatch) {
      const end = Math.min(n, start + runner.maxBatch);
      const policy: ExitPolicy<null> = {
        name: 'embed-all',
        needs: ['logits'],
        init: () => null,
        decide: (ctx, s) => {
          const z = s.logits!;
          for (let r = 0; r < s.count; r++) {
            vectors[ctx.exitIndex].set(z.subarray(r * p, (r + 1) * p), (start + s.sampleIds[r]) * p);
            seen[ctx.exitIndex][start + s.sampleIds[r]] = 1;
          }
          return new Uint8Array(s.count);
        },
      };
      const chunk = {
        ids: input.ids.slice(start, end),
        ...(input.lengths ? { lengths: Array.from(input.lengths).slice(start, end) } : {}),
      };
      const r = await runner.run(chunk, { policy, mode: 'host' });
      r.samples.forEach((smp, i) => {
        vectors[E - 1].set(smp.logits, (start + i) * p);
        seen[E - 1][start + i] = 1;
        flops.push(smp.flops);
      });
    }
    for (let j = 0; j < E; j++) {
      if (seen[j].some((v) => v === 0)) throw new Error(`internal: exit ${j} did not report every row`);
    }
    return { dim: p, exits: Array.from({ length: E }, (_, j) => j), vectors, flops };
  }
  if (!Number.isInteger(exit) || exit < 0 || exit >= E) {
    throw new ValidationError(`embed: exit is ${JSON.stringify(exit)}; expected an integer in [0, ${E - 1}] or 'all'`);
  }
  const r = await runner.run(input, { policy: exitAt(exit) });
  const out = new Float32Array(n * p);
  r.samples.forEach((s, i) => {
    if (s.exitIndex !== exit) throw new Error(`internal: row ${i} left at exit ${s.exitIndex}, not ${exit}`);
    out.set(s.logits, i * p);
  });
  return { dim: p, exits: [exit], vectors: [out], flops: r.samples.map((s) => s.flops) };
}
