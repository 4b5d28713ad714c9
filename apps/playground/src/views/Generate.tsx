import { useRef, useState } from 'react';
import { type LoadedDecoder, loadDecoder, type StreamedToken, streamGreedy } from '../lib/decoder.ts';
import { errorText } from '../lib/state.ts';

const PALETTE = ['#d7f0e5', '#bfe3f5', '#fbe6b8', '#f9cdb3', '#e9c2e8', '#ffffff'];

/** The Austen decoder streaming text greedily, each token coloured by the block it left from. */
export function GenerateView() {
  const [prompt, setPrompt] = useState('It is a truth universally acknowledged, that');
  const [maxTokens, setMaxTokens] = useState(60);
  const [threshold, setThreshold] = useState(0.6);
  const [tokens, setTokens] = useState<StreamedToken[]>([]);
  const [dec, setDec] = useState<LoadedDecoder | null>(null);
  const [running, setRunning] = useState(false);
  /** Decode rate: tokens after the first per second since the first. */
  const [rate, setRate] = useState<number | null>(null);
  /** From the click to the first token (prefill; pipelines compiled on first use). */
  const [firstMs, setFirstMs] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const stop = useRef(false);

  const run = async () => {
    setError(null);
    setTokens([]);
    setRate(null);
    setFirstMs(null);
    setRunning(true);
    stop.current = false;
    try {
      const d = await loadDecoder();
      setDec(d);
      const budget = Math.min(maxTokens, d.maxPositions - d.tokenizer.encode(prompt).length);
      if (budget < 1) throw new Error(`the prompt fills the model's ${d.maxPositions} positions; shorten it`);
      const t0 = performance.now();
      let n = 0;
      let tFirst = 0;
      await streamGreedy(
        d,
        prompt,
        budget,
        { kind: 'maxProb', threshold },
        (t) => {
          n++;
          const now = performance.now();
          setTokens((ts) => [...ts, t]);
          if (n === 1) {
            tFirst = now;
            setFirstMs(now - t0);
          } else setRate((n - 1) / ((now - tFirst) / 1000));
        },
        () => stop.current,
      );
    } catch (e) {
      setError(errorText(e));
    } finally {
      setRunning(false);
    }
  };

  const L = dec?.numLayers ?? 6;
  const meanDepth = tokens.length ? tokens.reduce((a, t) => a + t.exitBlock + 1, 0) / (tokens.length * L) : null;
  return (
    <div className="panel">
      <p>
        Austen decoder (6 blocks, exits after blocks {dec ? dec.exits.join(', ') : '1–5'}), greedy, a token leaves when
        its exit's max probability ≥ τ ={' '}
        <input
          type="range"
          min={0}
          max={1}
          step={0.01}
          value={threshold}
          onChange={(e) => setThreshold(Number(e.target.value))}
          data-testid="gen-threshold"
        />{' '}
        {threshold.toFixed(2)}
      </p>
      <textarea rows={2} value={prompt} onChange={(e) => setPrompt(e.target.value)} data-testid="prompt" />
      <p>
        <label>
          tokens{' '}
          <input
            type="number"
            min={1}
            max={120}
            value={maxTokens}
            onChange={(e) => setMaxTokens(Number(e.target.value))}
            data-testid="max-tokens"
            style={{ width: 60 }}
          />
        </label>
        <button type="button" onClick={run} disabled={running} data-testid="generate">
          generate
        </button>{' '}
        <button type="button" onClick={() => (stop.current = true)} disabled={!running}>
          stop
        </button>{' '}
        <span data-testid="gen-stats" data-done={!running && tokens.length > 0 ? '1' : '0'} data-rate={rate ?? ''}>
          {tokens.length > 0 &&
            `${tokens.length} tokens · first after ${firstMs?.toFixed(0)} ms · ${rate === null ? '–' : rate.toFixed(1)} tokens/s after it · mean depth ${((meanDepth ?? 0) * 100).toFixed(0)}% of the blocks`}
        </span>
      </p>
      {error && <div className="error">{error}</div>}
      <p
        className="tokens"
        data-testid="tokens"
        data-ids={JSON.stringify(tokens.map((t) => t.id))}
        data-exits={JSON.stringify(tokens.map((t) => t.exitBlock))}
      >
        <span style={{ color: '#66727e' }}>{prompt}</span>
        {tokens.map((t) => (
          <span
            key={t.index}
            title={`left after block ${t.exitBlock}`}
            style={{ background: PALETTE[Math.min(t.exitBlock, PALETTE.length - 1)] }}
          >
            {t.text}
          </span>
        ))}
      </p>
      <p className="muted">
        colour = block the token left from:{' '}
        {(dec?.exits ?? [1, 2, 3, 4, 5]).map((b) => (
          <span
            key={b}
            style={{ background: PALETTE[Math.min(b, PALETTE.length - 1)], padding: '0 0.4rem', marginRight: 4 }}
          >
            {b === L - 1 ? `${b} (full)` : b}
          </span>
        ))}
      </p>
    </div>
  );
}
