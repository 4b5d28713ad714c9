import { useRef, useState } from 'react';
import { loadDecoder, type StreamedToken, streamGreedy } from '../lib/decoder.ts';
import { loadMamba, streamGreedyMamba } from '../lib/mamba.ts';
import { serverModel, streamCompletionOnServer } from '../lib/server.ts';
import { errorText } from '../lib/state.ts';

const PALETTE = ['#d7f0e5', '#bfe3f5', '#fbe6b8', '#f9cdb3', '#e9c2e8', '#ffffff'];

export type LmChoice = 'decoder' | 'mamba';

const LM_NAMES: Record<LmChoice, string> = { decoder: 'Austen decoder', mamba: 'Austen Mamba' };
/** The checkpoint names, which are also the names a server serves them under. */
const LM_CHECKPOINTS: Record<LmChoice, string> = { decoder: 'austen-decoder', mamba: 'austen-mamba' };

/** What the view needs of a loaded language model (the decoder's or the Mamba's). */
interface LoadedLm {
  numLayers: number;
  exits: readonly number[];
  /** Most new tokens after this prompt (the decoder's positions; the Mamba has none). */
  budget(prompt: string, wanted: number): number;
  stream(
    prompt: string,
    maxNewTokens: number,
    threshold: number,
    onToken: (t: StreamedToken) => void,
    shouldStop: () => boolean,
  ): Promise<StreamedToken[]>;
}

async function loadLm(choice: LmChoice): Promise<LoadedLm> {
  if (choice === 'decoder') {
    const d = await loadDecoder();
    return {
      numLayers: d.numLayers,
      exits: d.exits,
      budget: (prompt, wanted) => {
        const n = Math.min(wanted, d.maxPositions - d.tokenizer.encode(prompt).length);
        if (n < 1) throw new Error(`the prompt fills the model's ${d.maxPositions} positions; shorten it`);
        return n;
      },
      stream: (prompt, n, threshold, onToken, shouldStop) =>
        streamGreedy(d, prompt, n, { kind: 'maxProb', threshold }, onToken, shouldStop),
    };
  }
  const m = await loadMamba();
  return {
    numLayers: m.numLayers,
    exits: m.exits,
    budget: (prompt, wanted) => {
      const len = m.tokenizer.encode(prompt).length;
      if (len > m.maxPromptTokens)
        throw new Error(
          `the prompt is ${len} tokens, more than the ${m.maxPromptTokens} the Mamba prefills; shorten it`,
        );
      return wanted;
    },
    stream: (prompt, n, threshold, onToken, shouldStop) =>
      streamGreedyMamba(m, prompt, n, { kind: 'maxProb', threshold }, onToken, shouldStop),
  };
}

/**
 * The model on an `offramp serve`: greedy completions streamed from /v1/completions (server-sent events), each
 * chunk's tokens with their exit blocks; `policy` is the request's `offramp.policy` (the threshold slider's
 * confidence, or what the menu chose) and `skip` its treatment of skipped blocks.
 */
async function serverLm(base: string, choice: LmChoice, policy: string, skip: Skip): Promise<LoadedLm> {
  const name = LM_CHECKPOINTS[choice];
  const m = await serverModel(base, name, 'language-model');
  return {
    numLayers: m.num_blocks,
    exits: m.exit_blocks,
    budget: (_prompt, wanted) => wanted,
    stream: async (prompt, n, threshold, onToken, shouldStop) => {
      const out: StreamedToken[] = [];
      const ac = new AbortController();
      const spec = policy === 'confidence' ? `confidence:threshold=${threshold}` : policy;
      try {
        await streamCompletionOnServer(
          base,
          { model: name, prompt, maxTokens: n, policy: spec, skip },
          (piece) => {
            // a chunk holds one token, or several when text was held back: the text goes with its last token
            piece.exitBlocks.forEach((b, j) => {
              const t = {
                index: out.length,
                id: -1,
                text: j === piece.exitBlocks.length - 1 ? piece.text : '',
                exitBlock: b,
              };
              out.push(t);
              onToken(t);
            });
            if (shouldStop()) ac.abort();
          },
          ac.signal,
        );
      } catch (e) {
        if (!ac.signal.aborted) throw e;
      }
      return out;
    },
  };
}

type Skip = 'freeze' | 'partial';

/** The Austen decoder or Mamba streaming text greedily, each token coloured by the block it left from. */
export function GenerateView({ server = '' }: { server?: string }) {
  const [choice, setChoice] = useState<LmChoice>('decoder');
  const [prompt, setPrompt] = useState('It is a truth universally acknowledged, that');
  const [maxTokens, setMaxTokens] = useState(60);
  const [threshold, setThreshold] = useState(0.6);
  const [tokens, setTokens] = useState<StreamedToken[]>([]);
  const [dec, setDec] = useState<(LoadedLm & { choice: LmChoice }) | null>(null);
  const [running, setRunning] = useState(false);
  /** Decode rate: tokens after the first per second since the first. */
  const [rate, setRate] = useState<number | null>(null);
  /** From the click to the first token (prefill; pipelines compiled on first use). */
  const [firstMs, setFirstMs] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  /** Server mode: the `offramp.policy` (confidence uses the slider's τ) and the skipped blocks' treatment. */
  const [srvPolicy, setSrvPolicy] = useState('confidence');
  const [skip, setSkip] = useState<Skip>('freeze');
  const stop = useRef(false);

  const run = async () => {
    setError(null);
    setTokens([]);
    setRate(null);
    setFirstMs(null);
    setRunning(true);
    stop.current = false;
    try {
      if (prompt.length === 0) throw new Error('the prompt is empty; give the text to continue');
      const lm = server ? await serverLm(server, choice, srvPolicy, skip) : await loadLm(choice);
      setDec({ ...lm, choice });
      const budget = lm.budget(prompt, maxTokens);
      const t0 = performance.now();
      let n = 0;
      let tFirst = 0;
      await lm.stream(
        prompt,
        budget,
        threshold,
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

  const shown = dec?.choice === choice ? dec : null;
  const L = dec?.numLayers ?? 6;
  const meanDepth = tokens.length ? tokens.reduce((a, t) => a + t.exitBlock + 1, 0) / (tokens.length * L) : null;
  return (
    <div className="panel">
      <p>
        <select
          value={choice}
          onChange={(e) => setChoice(e.target.value as LmChoice)}
          disabled={running}
          data-testid="gen-model"
        >
          <option value="decoder">{LM_NAMES.decoder}</option>
          <option value="mamba">{LM_NAMES.mamba}</option>
        </select>{' '}
        ({shown ? `${shown.numLayers} blocks, exits after blocks ${shown.exits.join(', ')}` : '6 blocks'}), greedy, a
        token leaves when its exit's max probability ≥ τ ={' '}
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
        {server && (
          <>
            {' '}
            · on the server {server}: policy{' '}
            <select value={srvPolicy} onChange={(e) => setSrvPolicy(e.target.value)} data-testid="gen-policy">
              <option value="confidence">confidence (τ above)</option>
              <option value="never">never (full depth)</option>
              {(shown?.exits ?? (choice === 'mamba' ? [3, 4, 5] : [1, 2, 3, 4, 5])).map((b) => (
                <option key={b} value={`fixed:block=${b}`}>
                  fixed: every token after block {b}
                </option>
              ))}
            </select>{' '}
            skipped blocks{' '}
            <select value={skip} onChange={(e) => setSkip(e.target.value as Skip)} data-testid="gen-skip">
              <option value="freeze">freeze</option>
              <option value="partial">partial</option>
            </select>
          </>
        )}
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
        data-model={dec?.choice ?? ''}
        data-ids={JSON.stringify(tokens.map((t) => t.id))}
        data-exits={JSON.stringify(tokens.map((t) => t.exitBlock))}
        data-text={tokens.map((t) => t.text).join('')}
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
        {(dec?.exits ?? (choice === 'mamba' ? [3, 4, 5] : [1, 2, 3, 4, 5])).map((b) => (
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
