// HuggingFace Mamba-1 tensor names → the names this package uses (no `backbone.` prefix, `embeddings`),
// checked against the config: every expected tensor present with its shape, nothing unexpected, float data.
// The LM head is tied to the embedding when `lm_head.weight` is absent.
import { FormatError, type HostTensor } from '@offramp/core';
import { type MambaConfig, mambaTensorSpec } from './config.js';

export interface NormalizedWeights {
  tensors: Map<string, HostTensor>;
  /** True when the file has no lm_head.weight and the head reuses the embedding. */
  tiedHead: boolean;
}

/** Maps one HF / original-checkpoint name to this package's name. */
export function normalizeName(name: string): string {
  let n = name.startsWith('backbone.') ? name.slice('backbone.'.length) : name;
  if (n === 'embedding.weight') n = 'embeddings.weight';
  return n;
}

export function normalizeMambaTensors(
  config: MambaConfig,
  tensors: Map<string, { shape: readonly number[]; data: ArrayLike<number> }>,
  where = 'weights',
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
  const tiedHead = !out.has('lm_head.weight');
  const spec = mambaTensorSpec(config, !tiedHead);
  const problems: string[] = [];
  for (const [n, shape] of spec) {
    const t = out.get(n);
    if (!t) {
      problems.push(`missing '${n}' [${shape.join(', ')}]`);
      continue;
    }
    // conv1d weights may be stored (D, 1, K) or (D, K)
    const same =
      t.shape.length === shape.length
        ? t.shape.every((v, i) => v === shape[i])
        : n.endsWith('conv1d.weight') && t.shape.length === 2 && t.shape[0] === shape[0] && t.shape[1] === shape[2];
    if (!same) problems.push(`'${from.get(n)}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  const unexpected = [...out.keys()].filter((n) => !spec.has(n)).map((n) => `'${from.get(n)}'`);
  if (unexpected.length)
    problems.push(`unexpected tensors ${unexpected.slice(0, 10).join(', ')}${unexpected.length > 10 ? ', …' : ''}`);
  if (problems.length) {
    const c = config;
    throw new FormatError(
      `${where} do not match the config (hidden_size ${c.hiddenSize}, num_hidden_layers ${c.numLayers}, intermediate_size ${c.intermediateSize}, state_size ${c.stateSize}, time_step_rank ${c.timeStepRank}, conv_kernel ${c.convKernel}, vocab_size ${c.vocabSize}, use_bias ${c.useBias}, use_conv_bias ${c.useConvBias}): ${problems.slice(0, 12).join('; ')}${problems.length > 12 ? `; … (${problems.length} problems)` : ''}`,
    );
  }
  return { tensors: out, tiedHead };
}
