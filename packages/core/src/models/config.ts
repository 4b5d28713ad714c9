// config.json of an Offramp model: architecture, sizes and exit positions (HF-style, snake_case keys).
// Weight naming and layout conventions (shared by the engine, the weights loader and the training package):
//   * Linear weights are stored (in, out) row-major: y = x · W + b.
//   * Conv2d weights are stored (out, in, kh, kw); conv biases (out).
//   * LayerNorm: `.weight` (gamma) and `.bias` (beta).
// Tensor names (d = hidden, ff = intermediate, C = classes, g = gate hidden, V = vocab, P = max_position):
//   encoder_classifier (pre-LN; h = h + attn(ln1(h)); h = h + mlp(ln2(h)); GELU (tanh form); CLS = position 0)
//     embeddings.token.weight [V, d]          embeddings.position.weight [P, d]
//     blocks.{i}.ln1.{weight,bias} [d]        blocks.{i}.attn.qkv.weight [d, 3d] (q | k | v), .bias [3d]
//     blocks.{i}.attn.out.weight [d, d], .bias [d]
//     blocks.{i}.ln2.{weight,bias} [d]        blocks.{i}.mlp.fc1.weight [d, ff], .bias [ff]
//     blocks.{i}.mlp.fc2.weight [ff, d], .bias [d]
//     exits.{j}.ln.{weight,bias} [d]          (applied to the CLS state of block exits.blocks[j])
//     exits.{j}.pooler.weight [d, d], .bias [d]   (head 'pooler' only; tanh)
//     exits.{j}.classifier.weight [d, C], .bias [C]
//     exits.{j}.gate.fc1.weight [d, g], .bias [g] (tanh)   exits.{j}.gate.fc2.weight [g, 1], .bias [1]
//   mlp_classifier (block i: h = relu(h · W + b))
//     blocks.{i}.fc.weight [in, d], .bias [d]      exits.{j}.classifier / exits.{j}.gate as above
//   cnn_classifier (NCHW; stem and block convs are 3×3 with padding 1, each followed by ReLU)
//     stem.conv.weight [c0, in, 3, 3], .bias       blocks.{i}.conv1 (stride s_i), blocks.{i}.conv2 (stride 1)
//     exits.{j}: global average pool over H×W → classifier [c_i, C] (and gate) as above; with
//     exit_pool 'flatten' the head reads the whole (c_i, H_i, W_i) map flattened in NCHW order: [c_i·H_i·W_i, C]
// Exit heads of the MLP and CNN have no LayerNorm ('ln' tensors are absent).

export type ExitHeadKind = 'linear' | 'pooler';

export interface ExitsConfig {
  /** 0-based block indices with an exit head after them; must include the last block (the final head). */
  blocks: number[];
  /** 'linear': [LayerNorm →] Linear. 'pooler' (DeeBERT): [LayerNorm →] Linear + tanh → Linear. */
  head: ExitHeadKind;
  /** Adds a gate/λ head per exit: Linear + tanh → Linear → one sigmoid logit (JEI-DNN gates, PonderNet λ). */
  gate?: boolean;
  /** Hidden width of the gate head (default 64). */
  gate_hidden?: number;
}

export interface EncoderClassifierConfig {
  architecture: 'encoder_classifier';
  vocab_size: number;
  max_position: number;
  hidden_size: number;
  num_layers: number;
  num_heads: number;
  intermediate_size: number;
  num_classes: number;
  layer_norm_eps?: number;
  /** Id of the padding token; attention masks keys at padded positions. */
  pad_token_id?: number;
  exits: ExitsConfig;
}

export interface MlpClassifierConfig {
  architecture: 'mlp_classifier';
  /** Flattened input size (784 for 28×28). */
  input_size: number;
  hidden_size: number;
  num_layers: number;
  num_classes: number;
  exits: ExitsConfig;
}

export interface CnnClassifierConfig {
  architecture: 'cnn_classifier';
  image_size: number;
  in_channels: number;
  /** Output channels of each block; block i is conv3×3(stride) + ReLU → conv3×3 + ReLU. */
  channels: number[];
  /** Stride of each block's first conv (1 or 2). */
  strides: number[];
  /** Stem: conv3×3 in_channels → stem_channels + ReLU. */
  stem_channels: number;
  num_classes: number;
  /**
   * What an exit head reads: 'global' (default) the global average pool over H×W (c_i features), 'flatten'
   * the whole feature map in NCHW order (c_i·H_i·W_i features; keeps where things are, for stronger early exits).
   */
  exit_pool?: CnnExitPool;
  exits: ExitsConfig;
}

export type CnnExitPool = 'global' | 'flatten';

export type ModelConfig = EncoderClassifierConfig | MlpClassifierConfig | CnnClassifierConfig;

/** Every config.json also carries these keys. */
export interface ConfigEnvelope {
  offramp_format: 1;
  model: ModelConfig;
  /** Free-form provenance: dataset, recipe, seed, metrics. */
  meta?: Record<string, unknown>;
}
