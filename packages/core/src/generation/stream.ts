// Streaming of generated tokens as they become final, shared by every generation loop: the device loops
// deliver after each readback (stepsPerSubmit tokens per row), the host loops after each step, speculative
// decoding after each round (the accepted drafts and the full model's token).

/** Receives a row's new tokens and the block each left from, in order, as soon as they are final. */
export type TokenSink = (row: number, tokens: readonly number[], exitBlocks: readonly number[]) => void;

/**
 * A flush function over growing per-row token lists: each call hands the sink every token appended since
 * the previous call (nothing when the sink is absent). exitBlocks may be a function for loops that do not
 * record depths (speculative decoding: every kept token is the full model's).
 */
export function tokenStreamer(
  tokens: readonly (readonly number[])[],
  exitBlocks: readonly (readonly number[])[] | ((row: number, count: number) => number[]),
  sink: TokenSink | undefined,
): () => void {
  const sent = tokens.map(() => 0);
  return () => {
    if (!sink) return;
    for (let b = 0; b < tokens.length; b++) {
      const n = tokens[b].length;
      if (n <= sent[b]) continue;
      const fresh = tokens[b].slice(sent[b]);
      const depth = typeof exitBlocks === 'function' ? exitBlocks(b, fresh.length) : exitBlocks[b].slice(sent[b], n);
      sent[b] = n;
      sink(b, fresh, depth);
    }
  };
}
