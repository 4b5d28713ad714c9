// config.json of a multi-exit text embedder (architecture 'encoder_embedder'): the encoder_classifier's blocks
// and weight names, embedding exits after chosen blocks, and ONE projection head shared by every exit and
// conditioned on a learned exit-index embedding (ModularStarEncoder). Per exit j after block b_j:
//   pooled = mean of h over the row's valid tokens          (B, d)
//   z      = LayerNorm(pooled)                              head.ln.{weight,bias} [d]
//   u      = [z ; E_j] · W + bias                           head.exit_embedding.weight [E, e]; head.proj.weight [d+e, p], .bias [p]
//   emb    = u / max(‖u‖, 1e-12)                            (B, p), unit length
// Since [z ; E_j]·W = z·W[:d] + E_j·W[d:], the exit index enters as a per-exit bias at inference.
import { ValidationError } from '../errors.js';

export interface EncoderEmbedderConfig {
  architecture: 'encoder_embedder';
  vocab_size: number;
  max_position: number;
  hidden_size: number;
  num_layers: number;
  num_heads: number;
  intermediate_size: number;
  layer_norm_eps?: number;
  /** Trailing ids equal to it are padding (excluded from attention and from the mean). */
  pad_token_id?: number;
  /** 0-based blocks with an embedding exit after them, increasing, ending with the last block. */
  exit_blocks: number[];
  /** Width of the embeddings (p). */
  embedding_dim: number;
  /** Width of the exit-index embedding (e). */
  exit_embedding_dim: number;
  pooling: 'mean';
}

/** Smallest norm the L2 normalisation divides by. */
export const EMBED_NORM_EPS = 1e-12;

const INT_FIELDS = [
  'vocab_size',
  'max_position',
  'hidden_size',
  'num_layers',
  'num_heads',
  'intermediate_size',
  'embedding_dim',
  'exit_embedding_dim',
] as const;

/** Checks a parsed config.json; throws ValidationError naming the field, the value and what is allowed. */
export function parseEmbedderConfig(raw: unknown, where = 'config.json'): EncoderEmbedderConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ValidationError(`${where}: expected a JSON object`);
  }
  const c = raw as Record<string, unknown>;
  if (c.architecture !== 'encoder_embedder') {
    throw new ValidationError(
      `${where}: architecture is ${JSON.stringify(c.architecture)}; an embedder needs "encoder_embedder"`,
    );
  }
  for (const k of INT_FIELDS) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1 << 24) {
      throw new ValidationError(`${where}: ${k} is ${JSON.stringify(v)}; expected an integer in [1, 16777216]`);
    }
  }
  const cfg = c as unknown as EncoderEmbedderConfig;
  if (cfg.hidden_size % cfg.num_heads !== 0) {
    throw new ValidationError(
      `${where}: hidden_size ${cfg.hidden_size} must be divisible by num_heads ${cfg.num_heads}`,
    );
  }
  if (c.layer_norm_eps !== undefined && !(typeof c.layer_norm_eps === 'number' && c.layer_norm_eps > 0)) {
    throw new ValidationError(`${where}: layer_norm_eps is ${JSON.stringify(c.layer_norm_eps)}; expected a number > 0`);
  }
  if (
    c.pad_token_id !== undefined &&
    !(
      Number.isInteger(c.pad_token_id) &&
      (c.pad_token_id as number) >= 0 &&
      (c.pad_token_id as number) < cfg.vocab_size
    )
  ) {
    throw new ValidationError(
      `${where}: pad_token_id is ${JSON.stringify(c.pad_token_id)}; expected an integer in [0, ${cfg.vocab_size})`,
    );
  }
  if (c.pooling !== 'mean') {
    throw new ValidationError(`${where}: pooling is ${JSON.stringify(c.pooling)}; allowed: "mean"`);
  }
  const bl = c.exit_blocks;
  const L = cfg.num_layers;
  if (
    !Array.isArray(bl) ||
    bl.length === 0 ||
    bl[bl.length - 1] !== L - 1 ||
    bl.some((b, i) => !Number.isInteger(b) || b < 0 || b >= L || (i > 0 && b <= bl[i - 1]))
  ) {
    throw new ValidationError(
      `${where}: exit_blocks is ${JSON.stringify(bl)}; expected increasing block indices in [0, ${L}) ending with ${L - 1}`,
    );
  }
  return cfg;
}

/** Every tensor of the model with its shape, by name (engine layouts: linear weights (in, out)). */
export function embedderTensorSpec(c: EncoderEmbedderConfig): Map<string, number[]> {
  const d = c.hidden_size;
  const s = new Map<string, number[]>();
  s.set('embeddings.token.weight', [c.vocab_size, d]);
  s.set('embeddings.position.weight', [c.max_position, d]);
  for (let i = 0; i < c.num_layers; i++) {
    const p = `blocks.${i}`;
    s.set(`${p}.ln1.weight`, [d]);
    s.set(`${p}.ln1.bias`, [d]);
    s.set(`${p}.attn.qkv.weight`, [d, 3 * d]);
    s.set(`${p}.attn.qkv.bias`, [3 * d]);
    s.set(`${p}.attn.out.weight`, [d, d]);
    s.set(`${p}.attn.out.bias`, [d]);
    s.set(`${p}.ln2.weight`, [d]);
    s.set(`${p}.ln2.bias`, [d]);
    s.set(`${p}.mlp.fc1.weight`, [d, c.intermediate_size]);
    s.set(`${p}.mlp.fc1.bias`, [c.intermediate_size]);
    s.set(`${p}.mlp.fc2.weight`, [c.intermediate_size, d]);
    s.set(`${p}.mlp.fc2.bias`, [d]);
  }
  s.set('head.ln.weight', [d]);
  s.set('head.ln.bias', [d]);
  s.set('head.exit_embedding.weight', [c.exit_blocks.length, c.exit_embedding_dim]);
  s.set('head.proj.weight', [d + c.exit_embedding_dim, c.embedding_dim]);
  s.set('head.proj.bias', [c.embedding_dim]);
  return s;
}

/**
 * FLOPs of one sequence of `T` valid tokens up to and including exit j (2 per multiply-add): the blocks up to
 * b_j (projections, attention over T keys, MLP), the mean, the LayerNorm, the projection and the normalisation.
 */
export function embedderFlops(c: EncoderEmbedderConfig, T: number, exit: number): number {
  const d = c.hidden_size;
  const ff = c.intermediate_size;
  const perBlock = T * (2 * d * 3 * d + 2 * d * d + 2 * 2 * d * ff) + 4 * T * T * d;
  const head = T * d + 8 * d + 2 * (d + c.exit_embedding_dim) * c.embedding_dim + 3 * c.embedding_dim;
  return (c.exit_blocks[exit] + 1) * perBlock + head;
}
