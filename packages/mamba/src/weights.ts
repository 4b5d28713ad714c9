// HuggingFace Mamba-1 tensor names → the names this package uses (no `backbone.` prefix, `embeddings`),
// checked against the config: every expected tensor present with its shape, nothing unexpected, float data.
// The LM head follows `tie_word_embeddings` (HuggingFace semantics; see normalizeMambaTensors).
import { FormatError, type HostTensor } from '@offramp/core';
import { type MambaConfig, mambaTensorSpec } from './config.js';

export interface NormalizedWeights {
  tensors: Map<string, HostTensor>;
  /** True when the head is the embedding (config tie_word_embeddings, the default). */
  tiedHead: boolean;
}

/** Maps one HF / original-checkpoint name to this package's name. */
export function normalizeName(name: string): string {
  let n = name.startsWith('backbone.') ? name.slice('backbone.'.length) : name;
  if (n === 'embedding.weight') n = 'embeddings.weight';
  return n;
}

export interface NormalizeOptions {
  /** Warnings about weights that load but look wrong (an ignored lm_head.weight). Default: none. */
  onWarning?: (message: string) => void;
}

/** Problems listed in a mismatch error (the counts are always complete). */
const MAX_LISTED = 12;

/**
 * Maps HF names to this package's names and checks them against the config. The head follows the config's
 * `tie_word_embeddings` as HuggingFace does: tied (the default), the head is the embedding and an
 * `lm_head.weight` in the file is ignored (with a warning when it differs from the embedding); not tied,
 * `lm_head.weight` is required. Unexpected names are listed first, and a prefix that every name has (or
 * lacks) compared with the expected names is pointed out.
 */
export function normalizeMambaTensors(
  config: MambaConfig,
  tensors: Map<string, { shape: readonly number[]; data: ArrayLike<number> }>,
  where = 'weights',
  options: NormalizeOptions = {},
): NormalizedWeights {
  const out = new Map<string, HostTensor>();
  const from = new Map<string, string>();
  for (const [name, t] of tensors) {
    const n = normalizeName(name);
    if (from.has(n)) throw new FormatError(`${where}: tensors '${from.get(n)}' and '${name}' both name '${n}'`);
    from.set(n, name);
    if (!(t.data instanceof Float32Array)) {
      const kind = (t.data as object).constructor?.name ?? typeof t.data;
      throw new FormatError(
        `${where}: tensor '${name}' holds ${kind} data; Mamba weights must be float (F32, F16, BF16 or F64 in the file)`,
      );
    }
    out.set(n, { shape: [...t.shape], data: t.data });
  }
  const tiedHead = config.tieWordEmbeddings;
  if (tiedHead && out.has('lm_head.weight')) {
    const head = out.get('lm_head.weight')!;
    const emb = out.get('embeddings.weight');
    const same =
      emb !== undefined &&
      head.shape.length === emb.shape.length &&
      head.shape.every((v, i) => v === emb.shape[i]) &&
      head.data.every((v, i) => Object.is(v, emb.data[i]));
    if (!same)
      options.onWarning?.(
        `${where}: '${from.get('lm_head.weight')}' differs from the embedding but tie_word_embeddings is true, so the head is the embedding (as in HuggingFace) and '${from.get('lm_head.weight')}' is ignored; set "tie_word_embeddings": false in config.json to use it`,
      );
    out.delete('lm_head.weight');
    from.delete('lm_head.weight');
  }
  const spec = mambaTensorSpec(config, !tiedHead);
  const unexpected = [...out.keys()].filter((n) => !spec.has(n)).map((n) => from.get(n)!);
  const missing: string[] = [];
  const shapes: string[] = [];
  for (const [n, shape] of spec) {
    const t = out.get(n);
    if (!t) {
      missing.push(n);
      continue;
    }
    // conv1d weights may be stored (D, 1, K) or (D, K)
    const same =
      t.shape.length === shape.length
        ? t.shape.every((v, i) => v === shape[i])
        : n.endsWith('conv1d.weight') && t.shape.length === 2 && t.shape[0] === shape[0] && t.shape[1] === shape[2];
    if (!same) shapes.push(`'${from.get(n)}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  if (unexpected.length || missing.length || shapes.length) {
    const c = config;
    const parts: string[] = [];
    const hint = prefixHint(unexpected, missing);
    if (hint) parts.push(hint);
    const list = (items: string[]) =>
      `${items.slice(0, MAX_LISTED).join(', ')}${items.length > MAX_LISTED ? `, … (${items.length} in all)` : ''}`;
    if (unexpected.length)
      parts.push(
        `${unexpected.length} unexpected tensor${unexpected.length > 1 ? 's' : ''} ${list(unexpected.map((n) => `'${n}'`))}`,
      );
    if (shapes.length) parts.push(`${shapes.length} shape mismatch${shapes.length > 1 ? 'es' : ''}: ${list(shapes)}`);
    if (missing.length) {
      const head =
        missing.includes('lm_head.weight') && !tiedHead
          ? ' (tie_word_embeddings is false, so the file must hold lm_head.weight; set it to true to use the embedding as the head)'
          : '';
      parts.push(`${missing.length} missing ${list(missing.map((n) => `'${n}' [${spec.get(n)!.join(', ')}]`))}${head}`);
    }
    throw new FormatError(
      `${where} do not match the config (hidden_size ${c.hiddenSize}, num_hidden_layers ${c.numLayers}, intermediate_size ${c.intermediateSize}, state_size ${c.stateSize}, time_step_rank ${c.timeStepRank}, conv_kernel ${c.convKernel}, vocab_size ${c.vocabSize}, use_bias ${c.useBias}, use_conv_bias ${c.useConvBias}, tie_word_embeddings ${c.tieWordEmbeddings}): ${parts.join('; ')}`,
    );
  }
  return { tensors: out, tiedHead };
}

/**
 * When the unexpected names are the missing ones with an extra leading prefix (every name starts with
 * 'model.'), or with a leading part removed, says so.
 */
export function prefixHint(unexpected: readonly string[], missing: readonly string[]): string | undefined {
  if (!unexpected.length || !missing.length) return undefined;
  const norm = (n: string) => normalizeName(n);
  const missingSet = new Set(missing);
  // an extra prefix: strip the part before the first dot(s) until the name is known
  const first = unexpected[0];
  for (let i = first.indexOf('.'); i > 0; i = first.indexOf('.', i + 1)) {
    const prefix = first.slice(0, i + 1);
    if (!unexpected.every((n) => n.startsWith(prefix))) break;
    const stripped = unexpected.map((n) => norm(n.slice(prefix.length)));
    const hits = stripped.filter((n) => missingSet.has(n)).length;
    if (hits >= Math.max(1, Math.ceil(unexpected.length / 2)))
      return `every unexpected tensor name starts with '${prefix}' (e.g. '${first}'); without it ${hits} of them are expected names — remove the prefix when exporting (expected names look like 'backbone.${missing[0]}' or '${missing[0]}')`;
  }
  // a missing part: the unexpected names are expected ones with a leading part cut off
  const bySuffix = new Map<string, string>();
  for (const m of missing)
    for (let i = m.indexOf('.'); i > 0; i = m.indexOf('.', i + 1)) bySuffix.set(m.slice(i + 1), m.slice(0, i + 1));
  const cut = unexpected.filter((n) => bySuffix.has(norm(n)));
  if (cut.length >= Math.max(1, Math.ceil(unexpected.length / 2))) {
    const lost = bySuffix.get(norm(cut[0]))!;
    return `${cut.length} unexpected tensor name${cut.length > 1 ? 's' : ''} lack a leading '${lost}' (e.g. '${cut[0]}' for '${lost}${norm(cut[0])}')`;
  }
  return undefined;
}
