// Request bodies of POST /v1/completions and /v1/chat/completions (zod), as much of OpenAI's API as a
// single-choice text model honours, plus the `offramp` extension; and the rendering of chat messages to
// one prompt for a plain (character-level) language model.
import { z } from 'zod';

export interface CompletionsLimits {
  /** Largest max_tokens a request may ask for. */
  maxTokens: number;
  /** Longest prompt in characters (after chat rendering); the model's own token limit applies as well. */
  maxPromptChars: number;
}

const MAX_STOP_SEQUENCES = 4;
const MAX_STOP_CHARS = 256;
const MAX_MESSAGES = 1024;

const notSupported = (what: string) => ({ error: `${what} is not supported by this server` });

function commonFields(limits: CompletionsLimits) {
  return {
    model: z.string().min(1).max(256),
    max_tokens: z.number().int().min(1).max(limits.maxTokens).nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    seed: z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER).nullish(),
    stop: z
      .union([
        z.string().min(1).max(MAX_STOP_CHARS),
        z.array(z.string().min(1).max(MAX_STOP_CHARS)).max(MAX_STOP_SEQUENCES),
      ])
      .nullish(),
    n: z.literal(1, { error: 'only n = 1 is supported (one choice per request)' }).nullish(),
    stream: z.boolean().nullish(),
    stream_options: z.strictObject({ include_usage: z.boolean().nullish() }).nullish(),
    user: z.string().max(256).nullish(),
    presence_penalty: z.literal(0, notSupported('a non-zero presence_penalty')).nullish(),
    frequency_penalty: z.literal(0, notSupported('a non-zero frequency_penalty')).nullish(),
    logprobs: z.union([z.literal(false), z.null()], notSupported('logprobs')).optional(),
    offramp: z
      .strictObject({
        policy: z.string().min(1).max(200).optional(),
        skip: z.enum(['freeze', 'partial']).optional(),
      })
      .nullish(),
  };
}

export function completionBodySchema(limits: CompletionsLimits) {
  return z.strictObject({
    ...commonFields(limits),
    prompt: z.union([z.string(), z.array(z.string()).length(1)], {
      error: 'prompt must be a string (or an array of exactly one string)',
    }),
    echo: z.literal(false, notSupported('echo')).nullish(),
    best_of: z.literal(1, notSupported('best_of > 1')).nullish(),
    suffix: z.null(notSupported('suffix')).optional(),
  });
}

const textPart = z.strictObject({ type: z.literal('text'), text: z.string() });

const message = z.strictObject({
  role: z.enum(['system', 'developer', 'user', 'assistant'], {
    error: 'role must be system, developer, user or assistant (tools are not supported)',
  }),
  content: z.union([z.string(), z.array(textPart)], {
    error: 'content must be a string or an array of text parts',
  }),
  name: z.string().max(256).optional(),
});

export type ChatMessage = z.infer<typeof message>;

export function chatBodySchema(limits: CompletionsLimits) {
  return z.strictObject({
    ...commonFields(limits),
    messages: z.array(message).min(1).max(MAX_MESSAGES),
    max_completion_tokens: z.number().int().min(1).max(limits.maxTokens).nullish(),
  });
}

export type CompletionBody = z.infer<ReturnType<typeof completionBodySchema>>;
export type ChatBody = z.infer<ReturnType<typeof chatBodySchema>>;

/**
 * One prompt from chat messages, for a model trained on plain text:
 *   system/developer:  "<text>\n\n"
 *   user:              "User: <text>\n"
 *   assistant:         "Assistant: <text>\n"
 * followed by "Assistant: " for the model to continue. Text parts of one message are joined with no separator.
 */
export function renderChat(messages: readonly ChatMessage[]): string {
  let out = '';
  for (const m of messages) {
    const text = typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join('');
    if (m.role === 'system' || m.role === 'developer') out += `${text}\n\n`;
    else out += `${m.role === 'user' ? 'User' : 'Assistant'}: ${text}\n`;
  }
  return `${out}Assistant: `;
}
