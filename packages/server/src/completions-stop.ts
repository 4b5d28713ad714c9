// Stop sequences over streamed text: text is released as soon as no stop sequence can begin in it, a
// possible beginning of one is held back until the next token decides, and the output ends just before
// stop sequence completed first (which is not included, as in OpenAI's API).

export class StopMatcher {
  private held = '';
  private stopped = false;

  constructor(private readonly stops: readonly string[]) {
    if (stops.some((s) => s.length === 0)) throw new RangeError('StopMatcher: a stop sequence is empty');
  }

  /** Adds generated text; returns the text now safe to emit and whether a stop sequence ended it. */
  push(text: string): { emit: string; stopped: boolean } {
    if (this.stopped) return { emit: '', stopped: true };
    const t = this.held + text;
    // the stop sequence completed first (the earliest end; of those ending together, the longest)
    let cut = -1;
    let end = Number.POSITIVE_INFINITY;
    for (const s of this.stops) {
      const i = t.indexOf(s);
      if (i >= 0 && (i + s.length < end || (i + s.length === end && i < cut))) {
        cut = i;
        end = i + s.length;
      }
    }
    if (cut >= 0) {
      this.held = '';
      this.stopped = true;
      return { emit: t.slice(0, cut), stopped: true };
    }
    // hold back the longest suffix of t that a stop sequence starts with
    let hold = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, t.length); k > hold; k--) {
        if (t.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    this.held = t.slice(t.length - hold);
    return { emit: t.slice(0, t.length - hold), stopped: false };
  }

  /** The held-back text, at the end of a generation that no stop sequence ended. */
  flush(): string {
    const h = this.held;
    this.held = '';
    return h;
  }
}
