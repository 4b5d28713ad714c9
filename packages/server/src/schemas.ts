// The request and response schemas (zod): they validate bodies and give the OpenAPI document.
import * as z from 'zod';

export const ClassifyInput = z.union([
  z.strictObject({ text: z.string().max(100_000).describe('Text for a text model (tokenized by the server)') }),
  z.strictObject({
    image: z
      .union([
        z.array(z.number().min(0).max(1)).min(1).max(65_536),
        z.string().min(1).max(1_000_000).describe('base64 PNG (optionally a data: URL)'),
      ])
      .describe('Pixel values in [0, 1] (row-major, 784 for a 28×28 grey image), or a base64 PNG'),
  }),
]);

export const ClassifyBody = z
  .strictObject({
    model: z.string().min(1).max(200).describe('A served model name (GET /v1/models)'),
    input: ClassifyInput.optional().describe('One input (give input or inputs)'),
    inputs: z
      .array(ClassifyInput)
      .min(1)
      .max(1024)
      .optional()
      .describe("Several inputs, answered as results[] in order (at most the server's maxBatch)"),
    policy: z
      .string()
      .min(1)
      .max(500)
      .optional()
      .describe("Exit policy spec, as on the command line: 'confidence:threshold=0.9', 'static:exit=2'"),
    trace: z.boolean().optional().describe('Include the signals at each exit the input reached'),
    truncate: z.boolean().optional().describe('Cut a text longer than the model takes (default: 400 instead)'),
  })
  .refine((b) => (b.input === undefined) !== (b.inputs === undefined), {
    message: 'give either input (one input) or inputs (a list), not both and not neither',
  });

export const ErrorResponse = z.object({ error: z.object({ message: z.string(), code: z.string() }) });

const Signal = z.array(z.number().nullable()).optional();
/** Signals at each exit reached; those the model lacks (gate, similarity) are left out. */
const Trace = z.object({
  maxProb: Signal,
  entropy: Signal,
  margin: Signal,
  argmax: Signal,
  gate: Signal,
  similarity: Signal,
});

const ClassifyResult = z.object({
  prediction: z.number().int(),
  label: z.string(),
  probabilities: z.array(z.number()),
  exit_block: z.number().int(),
  exit_index: z.number().int(),
  num_exits: z.number().int(),
  flops: z.number(),
  cost_fraction: z.number(),
  truncated: z.boolean().optional(),
  trace: Trace.optional(),
  batch: z
    .object({
      size: z.number().int().describe('Rows in the engine batch this input ran in (other requests included)'),
      mode: z.enum(['device', 'host']).describe('device: the policy ran on the GPU; host: in TypeScript'),
      queue_ms: z.number().describe('Time from arrival to the start of its batch'),
      compute_ms: z.number().describe("The batch's run time (every block, all its rows)"),
      rows_per_block: z
        .array(z.number().int())
        .optional()
        .describe(
          "Rows of the batch that entered each block (block 0: every row), from the run's summary. Absent with scheduler 'refill' (a request spans several steps, not one batch)",
        ),
      block_ms: z
        .array(z.number())
        .optional()
        .describe(
          "Host mode: wall ms of each block that ran, from the block's start to its exit decision (on the ONNX Runtime CPU path the blocks up to an exit run as one call: that segment's time is on its exit block, 0 on the others). Absent in device mode, where the batch is one recorded GPU submission with one readback and has no per-block times, and with scheduler 'refill'",
        ),
    })
    .optional()
    .describe('With trace: the engine batch this input ran in'),
});

export const ClassifyResponse = z.union([
  ClassifyResult.extend({ model: z.string(), policy: z.string() }),
  z.object({ model: z.string(), policy: z.string(), results: z.array(ClassifyResult) }),
]);

export const ModelsResponse = z.object({
  object: z.literal('list'),
  data: z.array(
    z.union([
      z.object({
        id: z.string(),
        object: z.literal('model'),
        kind: z.literal('classifier'),
        architecture: z.string(),
        input: z.enum(['image', 'text']),
        input_size: z.number().int(),
        num_blocks: z.number().int(),
        exit_blocks: z.array(z.number().int()),
        classes: z.array(z.string()),
        default_policy: z.string(),
        max_batch: z.number().int(),
        max_seq_len: z.number().int().optional(),
      }),
      z.object({
        id: z.string(),
        object: z.literal('model'),
        kind: z.literal('language-model'),
        architecture: z.string(),
        num_blocks: z.number().int(),
        exit_blocks: z.array(z.number().int()),
        vocab_size: z.number().int(),
        routes: z.array(z.string()),
        max_batch: z.number().int(),
        max_seq_len: z.number().int().optional(),
        /** 'webgpu' or 'ort-cpu' (ONNX Runtime on the host: `auto` on a software adapter). */
        execution_path: z.enum(['webgpu', 'ort-cpu']),
      }),
      z.object({
        id: z.string(),
        object: z.literal('model'),
        kind: z.literal('embedder'),
        architecture: z.string(),
        num_blocks: z.number().int(),
        exit_blocks: z.array(z.number().int()),
        dimensions: z.number().int(),
        max_position: z.number().int(),
        routes: z.array(z.string()),
      }),
      z.object({
        id: z.string(),
        object: z.literal('model'),
        kind: z.literal('enhancer'),
        architecture: z.string(),
        num_exits: z.number().int(),
        max_pixels: z.number().int(),
        routes: z.array(z.string()),
      }),
    ]),
  ),
});

export const HealthResponse = z.object({ status: z.literal('ok') });
export const ReadyResponse = z.object({
  status: z.enum(['ready', 'not_ready']),
  device: z.string(),
  models: z.array(z.string()),
  reason: z.string().optional(),
});
