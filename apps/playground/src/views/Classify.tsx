import type { ModelInput, SampleResult } from '@offramp/core';
import { useEffect, useMemo, useRef, useState } from 'react';
import { allExits, type Classifier, type ExitView, loadClassifier, pixelsToFeatures } from '../lib/runtime.ts';
import {
  FASHION_CLASSES,
  FASHION_COUNT,
  FASHION_SIZE,
  fashionImage,
  IMDB_CLASSES,
  IMDB_REVIEWS,
} from '../lib/samples.ts';
import { classifyOnServer, type ServerClassifyResult } from '../lib/server.ts';
import { errorText, type Mode, SLIDER_POLICIES, type SliderPolicy } from '../lib/state.ts';
import { DrawPad } from './DrawPad.tsx';

const THUMBS = Math.min(32, FASHION_COUNT);

export function drawImage(canvas: HTMLCanvasElement | null, bytes: Uint8Array): void {
  if (!canvas) return;
  const { width, height } = FASHION_SIZE;
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(width, height);
  for (let i = 0; i < bytes.length; i++) {
    img.data[i * 4] = img.data[i * 4 + 1] = img.data[i * 4 + 2] = bytes[i];
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

type Dataset = 'fashion' | 'imdb';

export function ClassifyView({ mode, server = '' }: { mode: Mode; server?: string }) {
  const [dataset, setDataset] = useState<Dataset>('fashion');
  const [image, setImage] = useState(0);
  /** A drawn image (bytes), used instead of the test image while set. */
  const [drawn, setDrawn] = useState<Uint8Array | null>(null);
  const [text, setText] = useState(IMDB_REVIEWS[0].text);
  const [policyName, setPolicyName] = useState<SliderPolicy>('confidence');
  const [threshold, setThreshold] = useState(SLIDER_POLICIES.confidence.initial);
  const [clf, setClf] = useState<Classifier | null>(null);
  const [exits, setExits] = useState<ExitView[] | null>(null);
  const [result, setResult] = useState<
    (SampleResult & { mode: string; ms: number; threshold: number; tag: string }) | null
  >(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(0);
  const [firstInferenceMs, setFirstInferenceMs] = useState<number | null>(null);
  const [remote, setRemote] = useState<(ServerClassifyResult & { ms: number }) | null>(null);
  const mainCanvas = useRef<HTMLCanvasElement>(null);
  const classes = dataset === 'fashion' ? FASHION_CLASSES : IMDB_CLASSES;
  const checkpoint = dataset === 'fashion' ? 'fashion-cnn' : 'imdb-encoder';

  useEffect(() => {
    let live = true;
    setClf(null);
    setExits(null);
    setResult(null);
    setError(null);
    setFirstInferenceMs(null);
    if (server) return;
    loadClassifier(checkpoint).then(
      (c) => live && setClf(c),
      (e) => live && setError(errorText(e)),
    );
    return () => {
      live = false;
    };
  }, [checkpoint, server]);

  // server mode: the same input and policy sent to offramp serve
  useEffect(() => {
    if (!server) {
      setRemote(null);
      return;
    }
    let live = true;
    setBusy((b) => b + 1);
    const t0 = performance.now();
    const input =
      dataset === 'fashion' ? { image: Array.from(drawn ?? fashionImage(image).bytes, (b) => b / 255) } : { text };
    classifyOnServer(server, checkpoint, input, `${policyName}:threshold=${threshold}`)
      .then(
        (r) => {
          if (!live) return;
          setRemote({ ...r, ms: performance.now() - t0 });
          setError(null);
        },
        (e) => {
          if (!live) return;
          setRemote(null);
          setError(errorText(e));
        },
      )
      .finally(() => setBusy((b) => b - 1));
    return () => {
      live = false;
    };
  }, [server, checkpoint, dataset, image, text, drawn, policyName, threshold]);

  const input: ModelInput | null = useMemo(() => {
    if (!clf) return null;
    if (dataset === 'fashion') return { features: [pixelsToFeatures(drawn ?? fashionImage(image).bytes)] };
    if (!clf.tokenizer) return null;
    return { ids: [clf.tokenizer.encodeUnpadded(text, clf.maxTokens ?? 256)] };
  }, [clf, dataset, image, text, drawn]);

  useEffect(() => {
    if (dataset === 'fashion') drawImage(mainCanvas.current, drawn ?? fashionImage(image).bytes);
  }, [dataset, image, drawn]);

  // every exit's probabilities: once per input
  useEffect(() => {
    if (!clf || !input) return;
    let live = true;
    setBusy((b) => b + 1);
    allExits(clf, input)
      .then(
        (v) => live && setExits(v),
        (e) => live && setError(errorText(e)),
      )
      .finally(() => setBusy((b) => b - 1));
    return () => {
      live = false;
    };
  }, [clf, input]);

  // the policy's own run: on every input, threshold, policy or mode change
  useEffect(() => {
    if (!clf || !input) return;
    let live = true;
    setBusy((b) => b + 1);
    const t0 = performance.now();
    const policy = SLIDER_POLICIES[policyName].make(threshold);
    // what this run is of, for the page's data attributes: the drawing, a test image or a text
    const tag = dataset === 'imdb' ? 'text' : drawn ? 'drawn' : `image-${image}`;
    clf.runner
      .run(input, { policy, mode })
      .then(
        (r) => {
          if (!live) return;
          const ms = performance.now() - t0;
          setFirstInferenceMs((f) => f ?? ms);
          setResult({ ...r.samples[0], mode: r.summary.mode, ms, threshold, tag });
          setError(null);
        },
        (e) => live && setError(errorText(e)),
      )
      .finally(() => setBusy((b) => b - 1));
    return () => {
      live = false;
    };
  }, [clf, input, policyName, threshold, mode, dataset, drawn, image]);

  const spec = SLIDER_POLICIES[policyName];
  const label = dataset === 'fashion' ? fashionImage(image).label : 0;
  return (
    <div>
      <div className="panel">
        <label>
          <input
            type="radio"
            checked={dataset === 'fashion'}
            onChange={() => setDataset('fashion')}
            data-testid="ds-fashion"
          />{' '}
          Fashion-MNIST CNN
        </label>
        <label>
          <input type="radio" checked={dataset === 'imdb'} onChange={() => setDataset('imdb')} data-testid="ds-imdb" />{' '}
          IMDB encoder
        </label>
        <span className="muted" data-testid="load-status">
          {server
            ? `${checkpoint} on the server ${server}`
            : clf
              ? `${clf.name} loaded in ${clf.loadMs.toFixed(0)} ms`
              : error
                ? ''
                : `loading ${checkpoint}…`}
        </span>
      </div>
      {error && (
        <div className="error" data-testid="classify-error">
          {error}
        </div>
      )}
      <div className="row">
        <div className="panel">
          {dataset === 'fashion' ? (
            <>
              <canvas
                ref={mainCanvas}
                data-testid="shown-image"
                style={{ width: 140, height: 140, imageRendering: 'pixelated' }}
              />
              <div className="muted">{drawn ? 'your drawing' : `test image ${image}: ${FASHION_CLASSES[label]}`}</div>
              <div className="thumbs">
                {Array.from({ length: THUMBS }, (_, i) => (
                  <canvas
                    // biome-ignore lint/suspicious/noArrayIndexKey: a fixed list of images
                    key={i}
                    data-testid={`thumb-${i}`}
                    className={i === image && !drawn ? 'sel' : ''}
                    ref={(c) => drawImage(c, fashionImage(i).bytes)}
                    onClick={() => {
                      setImage(i);
                      setDrawn(null);
                    }}
                  />
                ))}
              </div>
              <DrawPad size={FASHION_SIZE.width} onImage={setDrawn} />
            </>
          ) : (
            <>
              <select onChange={(e) => setText(IMDB_REVIEWS[Number(e.target.value)].text)} data-testid="review-pick">
                {IMDB_REVIEWS.map((r, i) => (
                  // biome-ignore lint/suspicious/noArrayIndexKey: a fixed list of reviews
                  <option key={i} value={i}>
                    review {i} ({IMDB_CLASSES[r.label]}): {r.text.slice(0, 40)}…
                  </option>
                ))}
              </select>
              <textarea
                rows={8}
                cols={60}
                value={text}
                onChange={(e) => setText(e.target.value)}
                data-testid="review"
              />
            </>
          )}
        </div>
        <div className="panel" style={{ minWidth: 420 }}>
          <div>
            <select
              value={policyName}
              data-testid="policy"
              onChange={(e) => {
                const p = e.target.value as SliderPolicy;
                setPolicyName(p);
                setThreshold(SLIDER_POLICIES[p].initial);
              }}
            >
              {Object.entries(SLIDER_POLICIES).map(([k, v]) => (
                <option key={k} value={k}>
                  {v.label}
                </option>
              ))}
            </select>{' '}
            τ ={' '}
            <input
              type="range"
              data-testid="threshold"
              min={spec.min}
              max={spec.max}
              step={0.001}
              value={threshold}
              onChange={(e) => setThreshold(Number(e.target.value))}
            />{' '}
            <span data-testid="threshold-value">{threshold.toFixed(3)}</span>
          </div>
          <div
            data-testid="result"
            data-busy={busy > 0 ? '1' : '0'}
            data-exit={result?.exitIndex ?? ''}
            data-prediction={result?.prediction ?? ''}
            data-threshold={result?.threshold ?? ''}
            data-tag={result?.tag ?? ''}
            data-mode={result?.mode ?? ''}
          >
            {result && (
              <p>
                exit <b data-testid="chosen-exit">{result.exitIndex}</b> (block {result.exitBlock}) → prediction{' '}
                <b data-testid="prediction">{classes[result.prediction]}</b> (
                {(result.probs[result.prediction] * 100).toFixed(1)}%), FLOPs saved{' '}
                <b data-testid="flops-saved">{((1 - result.costFraction) * 100).toFixed(1)}%</b> (
                {result.flops.toLocaleString()} FLOPs), {result.mode} mode, {result.ms.toFixed(1)} ms
                {firstInferenceMs !== null && (
                  <span className="muted" data-testid="first-inference" data-ms={firstInferenceMs}>
                    {' '}
                    · first inference {firstInferenceMs.toFixed(0)} ms
                  </span>
                )}
              </p>
            )}
          </div>
          {server && (
            <div
              data-testid="server-result"
              data-busy={busy > 0 ? '1' : '0'}
              data-exit={remote?.exit_index ?? ''}
              data-prediction={remote?.prediction ?? ''}
              data-threshold={threshold}
            >
              {remote && (
                <>
                  <p>
                    server: exit <b>{remote.exit_index}</b> (block {remote.exit_block}) → prediction{' '}
                    <b>{remote.label}</b> ({(remote.probabilities[remote.prediction] * 100).toFixed(1)}%), FLOPs saved{' '}
                    <b>{((1 - remote.cost_fraction) * 100).toFixed(1)}%</b>, {remote.ms.toFixed(1)} ms round trip
                  </p>
                  <table>
                    <thead>
                      <tr>
                        <th>exit</th>
                        <th>prediction</th>
                        <th>max prob</th>
                      </tr>
                    </thead>
                    <tbody>
                      {(remote.trace?.argmax ?? []).map((a, e) => (
                        // biome-ignore lint/suspicious/noArrayIndexKey: exits by index
                        <tr key={e} className={e === remote.exit_index ? 'chosen' : ''}>
                          <td>{e}</td>
                          <td>{a === null ? '–' : classes[a]}</td>
                          <td>{((remote.trace?.maxProb?.[e] ?? Number.NaN) * 100).toFixed(1)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </>
              )}
            </div>
          )}
          {!server && exits && (
            <table data-testid="exits">
              <thead>
                <tr>
                  <th>exit</th>
                  <th>block</th>
                  <th>prediction</th>
                  {classes.map((c) => (
                    <th key={c}>{c}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {exits.map((x) => (
                  <tr
                    key={x.exitIndex}
                    className={result?.exitIndex === x.exitIndex ? 'chosen' : ''}
                    data-testid={`exit-row-${x.exitIndex}`}
                  >
                    <td>{x.exitIndex}</td>
                    <td>{x.block}</td>
                    <td>{classes[x.prediction]}</td>
                    {x.probs.map((p, c) => (
                      <td key={classes[c]} title={p.toFixed(4)}>
                        {(p * 100).toFixed(1)}
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      </div>
    </div>
  );
}
