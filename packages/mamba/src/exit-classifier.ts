// Exit classifiers of a Mamba LM with exits (DYNAMAX): one per early exit, reading the hidden state at the
// exit block and giving one logit (σ = probability that exiting there is right).
//   'mamba': a small Mamba block (RMSNorm → in_proj → conv → scan → out_proj to 1 logit + bias) that keeps
//            its own conv/SSM state per sequence across tokens, so it sees the trajectory;
//   'ffn':   a CALM-style one-hidden-layer FFN: fc2(ReLU(fc1(h))), stateless.
// Stored as safetensors (`exit_classifiers.{j}.…`) with the config as JSON in the metadata key
// `offramp_exit_classifiers`.
import {
  type Device,
  FormatError,
  type HostTensor,
  parseSafetensors,
  type Tensor,
  unary,
  ValidationError,
  writeSafetensors,
} from '@offramp/core';
import {
  type BlockDims,
  type BlockState,
  type BlockWeights,
  blockPrefill,
  blockStep,
  blockWeightTensors,
  linearOp,
  type Scope,
  uploadBlock,
} from './block.js';

export interface ExitClassifierConfig {
  kind: 'mamba' | 'ffn';
  /** Exit blocks (0-based) the classifiers read, one classifier each, increasing. */
  exits: number[];
  /** Hidden size d of the backbone. */
  hiddenSize: number;
  /** mamba: inner width, state size, dt rank and conv kernel of the classifier block. */
  inner?: number;
  stateSize?: number;
  rank?: number;
  convKernel?: number;
  /** ffn: hidden width. */
  hidden?: number;
  eps?: number;
}

export const EXIT_CLASSIFIER_METADATA_KEY = 'offramp_exit_classifiers';

export function classifierBlockDims(c: ExitClassifierConfig): BlockDims {
  if (c.kind !== 'mamba') throw new ValidationError(`exit classifier kind '${c.kind}' has no Mamba block`);
  return {
    d: c.hiddenSize,
    D: c.inner ?? 2 * c.hiddenSize,
    N: c.stateSize ?? 8,
    R: c.rank ?? Math.ceil(c.hiddenSize / 16),
    K: c.convKernel ?? 4,
    out: 1,
    residual: false,
    eps: c.eps ?? 1e-5,
  };
}

/** Expected tensor names and shapes of a classifier set. */
export function exitClassifierSpec(c: ExitClassifierConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  c.exits.forEach((_, j) => {
    const p = `exit_classifiers.${j}`;
    if (c.kind === 'mamba') {
      const { d, D, N, R, K } = classifierBlockDims(c);
      m.set(`${p}.norm.weight`, [d]);
      m.set(`${p}.mixer.in_proj.weight`, [2 * D, d]);
      m.set(`${p}.mixer.conv1d.weight`, [D, 1, K]);
      m.set(`${p}.mixer.conv1d.bias`, [D]);
      m.set(`${p}.mixer.x_proj.weight`, [R + 2 * N, D]);
      m.set(`${p}.mixer.dt_proj.weight`, [D, R]);
      m.set(`${p}.mixer.dt_proj.bias`, [D]);
      m.set(`${p}.mixer.A_log`, [D, N]);
      m.set(`${p}.mixer.D`, [D]);
      m.set(`${p}.mixer.out_proj.weight`, [1, D]);
      m.set(`${p}.mixer.out_proj.bias`, [1]);
    } else {
      const H = c.hidden ?? 2 * c.hiddenSize;
      m.set(`${p}.fc1.weight`, [H, c.hiddenSize]);
      m.set(`${p}.fc1.bias`, [H]);
      m.set(`${p}.fc2.weight`, [1, H]);
      m.set(`${p}.fc2.bias`, [1]);
    }
  });
  return m;
}

export function checkExitClassifierTensors(
  c: ExitClassifierConfig,
  t: Map<string, { shape: readonly number[] }>,
  where: string,
): void {
  if (c.kind !== 'mamba' && c.kind !== 'ffn')
    throw new ValidationError(`${where}: kind must be 'mamba' or 'ffn', got ${JSON.stringify(c.kind)}`);
  const spec = exitClassifierSpec(c);
  const problems: string[] = [];
  for (const [n, shape] of spec) {
    const x = t.get(n);
    if (!x) problems.push(`missing '${n}' [${shape.join(', ')}]`);
    else if (x.shape.length !== shape.length || x.shape.some((v, i) => v !== shape[i])) {
      problems.push(`'${n}' has shape [${x.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
  }
  for (const n of t.keys()) if (!spec.has(n)) problems.push(`unexpected '${n}'`);
  if (problems.length) throw new FormatError(`${where}: ${problems.slice(0, 10).join('; ')}`);
}

interface Ffn {
  W1: Tensor;
  b1: Tensor;
  W2: Tensor;
  b2: Tensor;
  H: number;
}

/** The classifiers on a device. */
export class ExitClassifiers {
  readonly blocks: BlockWeights[] = [];
  readonly ffns: Ffn[] = [];
  constructor(
    readonly device: Device,
    readonly config: ExitClassifierConfig,
    tensors: Map<string, HostTensor>,
  ) {
    checkExitClassifierTensors(config, tensors, 'exit classifiers');
    config.exits.forEach((_, j) => {
      const p = `exit_classifiers.${j}`;
      if (config.kind === 'mamba') this.blocks.push(uploadBlock(device, tensors, p, classifierBlockDims(config)));
      else {
        const g = (n: string) => tensors.get(`${p}.${n}`)!;
        const up = (n: string) => device.tensor('f32', g(n).shape, g(n).data, `${p}.${n}`);
        this.ffns.push({
          W1: up('fc1.weight'),
          b1: up('fc1.bias'),
          W2: up('fc2.weight'),
          b2: up('fc2.bias'),
          H: g('fc1.bias').shape[0],
        });
      }
    });
  }

  get stateful(): boolean {
    return this.config.kind === 'mamba';
  }

  /** Zero state for classifier j over `batch` rows (null for stateless classifiers). */
  newState(j: number, batch: number): BlockState | null {
    if (!this.stateful) return null;
    const { D, N, K } = this.blocks[j].dims;
    return {
      conv: this.device.tensor('f32', [batch, D, K], new Float32Array(batch * D * K), `exitClassifier${j}.conv`),
      ssm: this.device.tensor('f32', [batch, D, N], new Float32Array(batch * D * N), `exitClassifier${j}.ssm`),
    };
  }

  /** Prefill over (B, T) rows of exit-block hidden states; fills `state`, returns logits (B·T, 1). */
  prefill(
    s: Scope,
    j: number,
    h: Tensor,
    B: number,
    T: number,
    lengths: Tensor | null,
    state: BlockState | null,
  ): Tensor {
    if (this.stateful) return blockPrefill(s, this.blocks[j], h, B, T, lengths, state!);
    return this.ffn(s, j, h, B * T);
  }

  /** One token for n rows; `rows` picks their state rows. Returns logits (n, 1). */
  step(s: Scope, j: number, h: Tensor, n: number, rows: Tensor | null, state: BlockState | null): Tensor {
    if (this.stateful) return blockStep(s, this.blocks[j], h, n, rows, state!)!;
    return this.ffn(s, j, h, n);
  }

  private ffn(s: Scope, j: number, h: Tensor, n: number): Tensor {
    const f = this.ffns[j];
    const d = this.config.hiddenSize;
    const a = s.f32([n, f.H]);
    linearOp(this.device, h, f.W1, n, f.H, d, a, f.b1);
    const r = s.f32([n, f.H]);
    this.device.dispatch(unary, { x: a, y: r }, { n: n * f.H }, { op: 'relu' });
    const o = s.f32([n, 1]);
    linearOp(this.device, r, f.W2, n, 1, f.H, o, f.b2);
    return o;
  }

  dispose(): void {
    for (const b of this.blocks) for (const t of blockWeightTensors(b)) t.dispose();
    for (const f of this.ffns) for (const t of [f.W1, f.b1, f.W2, f.b2]) t.dispose();
  }
}

/** Serialises classifier tensors with their config in the safetensors metadata. */
export function exitClassifiersToSafetensors(
  config: ExitClassifierConfig,
  tensors: Map<string, HostTensor>,
): Uint8Array {
  checkExitClassifierTensors(config, tensors, 'exit classifiers');
  return writeSafetensors(tensors, { [EXIT_CLASSIFIER_METADATA_KEY]: JSON.stringify(config) });
}

/** Reads a classifier file written by exitClassifiersToSafetensors. */
export function readExitClassifiers(
  bytes: Uint8Array,
  where = 'exit classifiers',
): { config: ExitClassifierConfig; tensors: Map<string, HostTensor> } {
  // a plain Uint8Array view: Node's Buffer.slice does not copy, which the copying decoder relies on
  const file = parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), { copy: true });
  const raw = file.metadata[EXIT_CLASSIFIER_METADATA_KEY];
  if (!raw)
    throw new FormatError(
      `${where}: no '${EXIT_CLASSIFIER_METADATA_KEY}' entry in the safetensors metadata; not an exit-classifier file`,
    );
  let config: ExitClassifierConfig;
  try {
    config = JSON.parse(raw);
  } catch (e) {
    throw new FormatError(`${where}: metadata '${EXIT_CLASSIFIER_METADATA_KEY}' is not JSON: ${(e as Error).message}`);
  }
  const tensors = new Map<string, HostTensor>();
  for (const [n, t] of file.tensors) {
    if (!(t.data instanceof Float32Array))
      throw new FormatError(`${where}: tensor '${n}' is ${t.dtype}; expected float`);
    tensors.set(n, { shape: t.shape, data: t.data });
  }
  checkExitClassifierTensors(config, tensors, where);
  return { config, tensors };
}
