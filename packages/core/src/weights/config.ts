// Validation of an Offramp config.json (schema in zod, cross-field rules by hand), the tensor names and
// shapes a config implies (the naming table in models/config.ts), and a check of actual tensors against them.
import * as z from 'zod';
import { FormatError } from '../errors.js';
import type { CnnClassifierConfig, ConfigEnvelope, ExitsConfig, ModelConfig } from '../models/config.js';

export const ARCHITECTURES = ['encoder_classifier', 'mlp_classifier', 'cnn_classifier'] as const;

/** Inclusive ranges of the integer fields; anything outside is rejected as a corrupt or mistaken config. */
export const CONFIG_LIMITS = {
  vocab_size: [1, 2_000_000],
  max_position: [1, 1_048_576],
  hidden_size: [1, 65_536],
  num_layers: [1, 1_024],
  num_heads: [1, 1_024],
  intermediate_size: [1, 262_144],
  num_classes: [1, 1_000_000],
  input_size: [1, 16_777_216],
  image_size: [1, 8_192],
  in_channels: [1, 1_024],
  /** Each entry of a CNN's `channels`, and `stem_channels`. */
  channels: [1, 16_384],
  stem_channels: [1, 16_384],
  /** Number of CNN blocks (length of `channels`). */
  cnn_blocks: [1, 1_024],
  gate_hidden: [1, 65_536],
  /** `pad_token_id` must also be below `vocab_size`. */
  pad_token_id: [0, 2_000_000 - 1],
} as const satisfies Record<string, readonly [number, number]>;

/** Problems listed in a config error (the count is always complete). */
const MAX_LISTED_ISSUES = 25;

/** Default hidden width of a gate head (ExitsConfig.gate_hidden). */
export const DEFAULT_GATE_HIDDEN = 64;

// ---------------------------------------------------------------------------------------------------------
// Schema

const intIn = (field: keyof typeof CONFIG_LIMITS) => {
  const [min, max] = CONFIG_LIMITS[field];
  const error = `must be an integer in [${min}, ${max}]`;
  return z.int({ error }).min(min, { error }).max(max, { error });
};

function strict<T extends z.ZodRawShape>(shape: T) {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys')
        return `unknown key${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => JSON.stringify(k)).join(', ')}; allowed keys: ${allowed}`;
      if (iss.code === 'invalid_type') return 'must be an object';
      return undefined;
    },
  });
}

const exitsSchema = strict({
  blocks: z
    .array(z.int({ error: 'must be a non-negative integer' }).min(0, { error: 'must be a non-negative integer' }), {
      error: 'must be an array of block indices',
    })
    .min(1, { error: 'must list at least one block (the last one)' })
    .max(CONFIG_LIMITS.num_layers[1], {
      error: `must list at most ${CONFIG_LIMITS.num_layers[1]} blocks (one exit per block at most)`,
    }),
  head: z.enum(['linear', 'pooler'], { error: "must be 'linear' or 'pooler'" }),
  gate: z.boolean({ error: 'must be true or false' }).optional(),
  gate_hidden: intIn('gate_hidden').optional(),
});

const encoderSchema = strict({
  architecture: z.literal('encoder_classifier'),
  vocab_size: intIn('vocab_size'),
  max_position: intIn('max_position'),
  hidden_size: intIn('hidden_size'),
  num_layers: intIn('num_layers'),
  num_heads: intIn('num_heads'),
  intermediate_size: intIn('intermediate_size'),
  num_classes: intIn('num_classes'),
  layer_norm_eps: z
    .number({ error: 'must be a number in (0, 1)' })
    .gt(0, { error: 'must be a number in (0, 1)' })
    .lt(1, { error: 'must be a number in (0, 1)' })
    .optional(),
  pad_token_id: intIn('pad_token_id').optional(),
  exits: exitsSchema,
});

const mlpSchema = strict({
  architecture: z.literal('mlp_classifier'),
  input_size: intIn('input_size'),
  hidden_size: intIn('hidden_size'),
  num_layers: intIn('num_layers'),
  num_classes: intIn('num_classes'),
  exits: exitsSchema,
});

const [minBlocks, maxBlocks] = CONFIG_LIMITS.cnn_blocks;
const cnnSchema = strict({
  architecture: z.literal('cnn_classifier'),
  image_size: intIn('image_size'),
  in_channels: intIn('in_channels'),
  channels: z
    .array(intIn('channels'), { error: 'must be an array of channel counts, one per block' })
    .min(minBlocks, { error: `must list between ${minBlocks} and ${maxBlocks} blocks` })
    .max(maxBlocks, { error: `must list between ${minBlocks} and ${maxBlocks} blocks` }),
  strides: z.array(z.literal([1, 2], { error: 'must be 1 or 2' }), {
    error: 'must be an array of strides (1 or 2), one per block',
  }),
  stem_channels: intIn('stem_channels'),
  num_classes: intIn('num_classes'),
  exit_pool: z.enum(['global', 'flatten'], { error: "must be 'global' or 'flatten'" }).optional(),
  exits: exitsSchema,
});

const modelSchema = z.discriminatedUnion('architecture', [encoderSchema, mlpSchema, cnnSchema], {
  error: (iss) => {
    // A non-object arrives as 'invalid_type' (not in the declared issue codes of a union).
    if ((iss.code as string) === 'invalid_type') return 'must be an object with an "architecture" key';
    const arch = (iss.input as { architecture?: unknown } | undefined)?.architecture;
    return `unknown architecture ${arch === undefined ? '(missing)' : JSON.stringify(arch)}; allowed: ${ARCHITECTURES.join(', ')}`;
  },
});

const envelopeSchema = strict({
  offramp_format: z.literal(1, { error: 'must be 1 (the only config format version)' }),
  model: modelSchema,
  meta: z.record(z.string(), z.unknown(), { error: 'must be an object' }).optional(),
});

// The schema must produce the types the engine and the training code use.
type Parsed = z.infer<typeof envelopeSchema>;
const _typesAgree: (p: Parsed) => ConfigEnvelope = (p) => p;
void _typesAgree;

// ---------------------------------------------------------------------------------------------------------
// Parsing

export interface ConfigIssue {
  /** Field path, e.g. `model.exits.blocks[2]`; `(root)` for the document itself. */
  path: string;
  message: string;
}

export interface ParseConfigOptions {
  /** Where the config came from (a file path), for messages. */
  source?: string;
}

type Path = readonly PropertyKey[];

function formatPath(path: Path): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (typeof p === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out || '(root)';
}

function valueAt(root: unknown, path: Path): { found: boolean; value: unknown } {
  let v: unknown = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, p)) return { found: false, value: undefined };
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return { found: true, value: v };
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === null || typeof v !== 'object') return String(v);
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

/**
 * Validates a parsed config.json and returns it typed. Throws FormatError listing every problem found,
 * each with its field path, what was found and what is allowed.
 */
export function parseModelConfig(json: unknown, options: ParseConfigOptions = {}): ConfigEnvelope {
  const issues = configIssues(json);
  if (issues.length) {
    const where = options.source ? `${options.source}: ` : '';
    throw new FormatError(
      `${where}invalid model config (${issues.length} problem${issues.length > 1 ? 's' : ''}):\n${issues
        .slice(0, MAX_LISTED_ISSUES)
        .map((i) => `  ${i.path}: ${i.message}`)
        .join('\n')}${issues.length > MAX_LISTED_ISSUES ? `\n  … and ${issues.length - MAX_LISTED_ISSUES} more` : ''}`,
    );
  }
  return envelopeSchema.parse(json) as ConfigEnvelope;
}

/** Every problem of a config, schema and cross-field rules together (empty when valid). */
export function configIssues(json: unknown): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const result = envelopeSchema.safeParse(json);
  if (!result.success) {
    for (const iss of result.error.issues) {
      const { found, value } = valueAt(json, iss.path);
      let message = iss.message;
      if (iss.code === 'unrecognized_keys' || iss.code === 'invalid_union') {
        // the message already names what was found
      } else if (!found || value === undefined) message = `missing; ${message}`;
      else message = `${message}, got ${show(value)}`;
      out.push({ path: formatPath(iss.path), message });
    }
  }
  const model = valueAt(json, ['model']).value;
  if (model && typeof model === 'object') crossChecks(model as Record<string, unknown>, out);
  return out;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
/** True when `v` is a valid value of `field` (cross-field rules only look at fields that are themselves valid). */
const valid = (field: keyof typeof CONFIG_LIMITS, v: unknown): v is number =>
  isInt(v) && v >= CONFIG_LIMITS[field][0] && v <= CONFIG_LIMITS[field][1];

// Rules spanning several fields, applied to whichever fields are well-formed (so all problems show at once).
function crossChecks(m: Record<string, unknown>, out: ConfigIssue[]): void {
  const add = (path: Path, message: string) => out.push({ path: formatPath(['model', ...path]), message });
  let blocks: number | undefined;
  let blocksFrom = '';
  if (m.architecture === 'encoder_classifier' || m.architecture === 'mlp_classifier') {
    if (valid('num_layers', m.num_layers)) {
      blocks = m.num_layers;
      blocksFrom = `num_layers = ${blocks}`;
    }
  }
  if (m.architecture === 'encoder_classifier') {
    const { hidden_size: d, num_heads: h, pad_token_id: pad, vocab_size: v } = m;
    if (valid('hidden_size', d) && valid('num_heads', h) && d % h !== 0)
      add(['num_heads'], `hidden_size ${d} is not divisible by num_heads ${h}; the head size d/h must be an integer`);
    if (valid('pad_token_id', pad) && valid('vocab_size', v) && pad >= v)
      add(['pad_token_id'], `must be below vocab_size ${v}, got ${pad}`);
  }
  if (m.architecture === 'cnn_classifier' && Array.isArray(m.channels) && valid('cnn_blocks', m.channels.length)) {
    blocks = m.channels.length;
    blocksFrom = `channels has ${blocks} entries`;
    if (Array.isArray(m.strides) && m.strides.length !== blocks)
      add(['strides'], `has ${m.strides.length} entries but channels has ${blocks}; give one stride per block`);
  }
  const exits = m.exits as Partial<ExitsConfig> | undefined;
  if (blocks === undefined || !exits || typeof exits !== 'object' || !Array.isArray(exits.blocks)) return;
  const list = exits.blocks as unknown[];
  let prev: number | undefined;
  list.forEach((b, i) => {
    if (!isInt(b) || b < 0) return;
    if (b >= blocks) add(['exits', 'blocks', i], `block ${b} is outside [0, ${blocks}) (${blocksFrom})`);
    if (prev !== undefined && b <= prev)
      add(
        ['exits', 'blocks', i],
        `${b} does not come after ${prev}; blocks must be sorted ascending without duplicates`,
      );
    prev = b;
  });
  if (list.length > 0 && !list.includes(blocks - 1))
    add(
      ['exits', 'blocks'],
      `must include the last block ${blocks - 1} (the final exit; ${blocksFrom}), got ${show(list)}`,
    );
}

// ---------------------------------------------------------------------------------------------------------
// Expected tensors

/** Features a CNN exit head after `block` reads: c_i (global average pool) or c_i·H_i·W_i ('flatten'). */
export function cnnExitWidth(cfg: CnnClassifierConfig, block: number): number {
  const c = cfg.channels[block];
  if ((cfg.exit_pool ?? 'global') === 'global') return c;
  let hw = cfg.image_size;
  for (let i = 0; i <= block; i++) hw = Math.floor((hw + 2 - 3) / cfg.strides[i]) + 1;
  return c * hw * hw;
}

/** Every tensor name a model of this config has, with its shape (see the naming table in models/config.ts). */
export function modelTensorSpec(cfg: ModelConfig): Map<string, number[]> {
  const spec = new Map<string, number[]>();
  const add = (name: string, shape: number[]) => spec.set(name, shape);
  const linear = (prefix: string, inF: number, outF: number) => {
    add(`${prefix}.weight`, [inF, outF]);
    add(`${prefix}.bias`, [outF]);
  };
  const norm = (prefix: string, d: number) => {
    add(`${prefix}.weight`, [d]);
    add(`${prefix}.bias`, [d]);
  };
  const conv = (prefix: string, inC: number, outC: number) => {
    add(`${prefix}.weight`, [outC, inC, 3, 3]);
    add(`${prefix}.bias`, [outC]);
  };
  const exits = (widthOf: (block: number) => number, layerNorm: boolean) => {
    const { blocks, head, gate } = cfg.exits;
    const g = cfg.exits.gate_hidden ?? DEFAULT_GATE_HIDDEN;
    blocks.forEach((block, j) => {
      const d = widthOf(block);
      const p = `exits.${j}`;
      if (layerNorm) norm(`${p}.ln`, d);
      if (head === 'pooler') linear(`${p}.pooler`, d, d);
      linear(`${p}.classifier`, d, cfg.num_classes);
      if (gate) {
        linear(`${p}.gate.fc1`, d, g);
        linear(`${p}.gate.fc2`, g, 1);
      }
    });
  };

  switch (cfg.architecture) {
    case 'encoder_classifier': {
      const d = cfg.hidden_size;
      const ff = cfg.intermediate_size;
      add('embeddings.token.weight', [cfg.vocab_size, d]);
      add('embeddings.position.weight', [cfg.max_position, d]);
      for (let i = 0; i < cfg.num_layers; i++) {
        const p = `blocks.${i}`;
        norm(`${p}.ln1`, d);
        linear(`${p}.attn.qkv`, d, 3 * d);
        linear(`${p}.attn.out`, d, d);
        norm(`${p}.ln2`, d);
        linear(`${p}.mlp.fc1`, d, ff);
        linear(`${p}.mlp.fc2`, ff, d);
      }
      exits(() => d, true);
      break;
    }
    case 'mlp_classifier': {
      const d = cfg.hidden_size;
      for (let i = 0; i < cfg.num_layers; i++) linear(`blocks.${i}.fc`, i === 0 ? cfg.input_size : d, d);
      exits(() => d, false);
      break;
    }
    case 'cnn_classifier': {
      conv('stem.conv', cfg.in_channels, cfg.stem_channels);
      cfg.channels.forEach((c, i) => {
        conv(`blocks.${i}.conv1`, i === 0 ? cfg.stem_channels : cfg.channels[i - 1], c);
        conv(`blocks.${i}.conv2`, c, c);
      });
      exits((block) => cnnExitWidth(cfg, block), false);
      break;
    }
    default:
      throw new FormatError(
        `modelTensorSpec: unknown architecture ${JSON.stringify((cfg as { architecture?: unknown }).architecture)}; allowed: ${ARCHITECTURES.join(', ')}`,
      );
  }
  return spec;
}

// ---------------------------------------------------------------------------------------------------------
// Checking actual tensors

export interface TensorCheckReport {
  ok: boolean;
  /** Expected but absent, with the expected shape. */
  missing: { name: string; shape: number[] }[];
  /** Present but not expected, with the shape found. */
  unexpected: { name: string; shape: readonly number[] }[];
  /** Present with another shape. */
  mismatched: { name: string; expected: number[]; actual: readonly number[] }[];
}

/** Compares actual tensors with the expected names and shapes; lists every difference. */
export function checkTensors(
  expected: ReadonlyMap<string, number[]>,
  actual: ReadonlyMap<string, { shape: readonly number[] }>,
): TensorCheckReport {
  const report: TensorCheckReport = { ok: true, missing: [], unexpected: [], mismatched: [] };
  for (const [name, shape] of expected) {
    const a = actual.get(name);
    if (!a) report.missing.push({ name, shape });
    else if (a.shape.length !== shape.length || a.shape.some((d, i) => d !== shape[i]))
      report.mismatched.push({ name, expected: shape, actual: a.shape });
  }
  for (const [name, a] of actual) if (!expected.has(name)) report.unexpected.push({ name, shape: a.shape });
  report.ok = !report.missing.length && !report.unexpected.length && !report.mismatched.length;
  return report;
}

/** A TensorCheckReport as text, at most `limit` lines per kind (the counts are always complete). */
export function formatTensorReport(report: TensorCheckReport, limit = 25): string {
  const dims = (s: readonly number[]) => `[${s.join(', ')}]`;
  const lines: string[] = [];
  const section = <T>(title: string, items: T[], line: (t: T) => string) => {
    if (!items.length) return;
    lines.push(`${items.length} ${title}:`);
    for (const it of items.slice(0, limit)) lines.push(`  ${line(it)}`);
    if (items.length > limit) lines.push(`  … and ${items.length - limit} more`);
  };
  section('missing tensors', report.missing, (t) => `${t.name} (expected ${dims(t.shape)})`);
  section(
    'shape mismatches',
    report.mismatched,
    (t) => `${t.name}: expected ${dims(t.expected)}, found ${dims(t.actual)}`,
  );
  section('unexpected tensors', report.unexpected, (t) => `${t.name} ${dims(t.shape)}`);
  return lines.join('\n');
}

/** Thrown by assertTensors; carries the full report. */
export class TensorMismatchError extends FormatError {
  constructor(
    message: string,
    readonly report: TensorCheckReport,
  ) {
    super(message);
  }
}

/** checkTensors, throwing TensorMismatchError (a FormatError) that lists every difference. */
export function assertTensors(
  expected: ReadonlyMap<string, number[]>,
  actual: ReadonlyMap<string, { shape: readonly number[] }>,
  where = 'weights',
): void {
  const report = checkTensors(expected, actual);
  if (!report.ok)
    throw new TensorMismatchError(`${where} do not match the model config:\n${formatTensorReport(report)}`, report);
}
