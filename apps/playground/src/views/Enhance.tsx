// The RBQE JPEG-artefact enhancer: a held-out grey picture, JPEG-compressed in the page at the chosen quality,
// every exit's output (a run with the static policy at each exit; the last one traces every exit's quality
// score), and the quality policy's own run at the slider's threshold: the exit it chose and its FLOPs.
import type { EnhancedImage, ImageEnhancer } from '@offramp/core';
import { policyFromSpec, staticPolicy } from '@offramp/policies';
import { useEffect, useRef, useState } from 'react';
import {
  ENHANCE_PICTURES,
  ENHANCE_SIZE,
  enhancePicture,
  jpegRoundTrip,
  loadEnhancer,
  psnr,
  toBase64,
} from '../lib/enhance.ts';
import { errorText, type Mode } from '../lib/state.ts';

const { width: W, height: H } = ENHANCE_SIZE;

function drawLuma(canvas: HTMLCanvasElement | null, luma: ArrayLike<number>): void {
  if (!canvas) return;
  canvas.width = W;
  canvas.height = H;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(W, H);
  for (let i = 0; i < W * H; i++) {
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = Math.round(Math.min(1, Math.max(0, luma[i])) * 255);
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function Picture({ luma, label, testId }: { luma: ArrayLike<number>; label: string; testId?: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => drawLuma(ref.current, luma), [luma]);
  return (
    <figure className="enhance-pic" data-testid={testId}>
      <canvas ref={ref} width={W} height={H} style={{ width: 2 * W, height: 2 * H, imageRendering: 'pixelated' }} />
      <figcaption>{label}</figcaption>
    </figure>
  );
}

interface Input {
  tag: string;
  clean: Float32Array;
  jpeg: Uint8Array;
  luma: Float32Array;
}

/** All enhancer runs of the page, one after another. */
let queue: Promise<unknown> = Promise.resolve();
function serial<T>(f: () => Promise<T>): Promise<T> {
  const p = queue.then(f, f);
  queue = p.catch(() => undefined);
  return p;
}

export function EnhanceView({ mode }: { mode: Mode }) {
  const [picture, setPicture] = useState(0);
  const [quality, setQuality] = useState(20);
  const [threshold, setThreshold] = useState(0.67);
  const [enh, setEnh] = useState<ImageEnhancer | null>(null);
  const [input, setInput] = useState<Input | null>(null);
  const [exits, setExits] = useState<{ tag: string; outs: EnhancedImage[]; scores: number[] } | null>(null);
  const [result, setResult] = useState<(EnhancedImage & { tag: string }) | null>(null);
  const [busy, setBusy] = useState(0);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    loadEnhancer().then(setEnh, (e) => setError(errorText(e)));
  }, []);

  useEffect(() => {
    const bytes = enhancePicture(picture);
    const { jpeg, luma } = jpegRoundTrip(bytes, W, H, quality);
    setInput({ tag: `${picture}-${quality}`, clean: Float32Array.from(bytes, (b) => b / 255), jpeg, luma });
  }, [picture, quality]);

  // every exit's output, once per input
  useEffect(() => {
    if (!enh || !input) return;
    let live = true;
    setBusy((b) => b + 1);
    const n = enh.config.levels;
    serial(async () => {
      const outs: EnhancedImage[] = [];
      for (let k = 0; k < n; k++) {
        const [o] = await enh.enhance([{ width: W, height: H, data: input.luma }], {
          policy: staticPolicy({ exit: k }),
          mode,
          trace: true,
        });
        outs.push(o);
      }
      return outs;
    })
      .then((outs) => {
        if (live) setExits({ tag: `${input.tag}-${mode}`, outs, scores: outs[n - 1].scores ?? [] });
      })
      .catch((e) => live && setError(errorText(e)))
      .finally(() => setBusy((b) => b - 1));
    return () => {
      live = false;
    };
  }, [enh, input, mode]);

  // the quality policy's run at the threshold
  useEffect(() => {
    if (!enh || !input) return;
    let live = true;
    setBusy((b) => b + 1);
    const policy = policyFromSpec(`quality:threshold=${threshold}`);
    serial(() => enh.enhance([{ width: W, height: H, data: input.luma }], { policy, mode, trace: true }))
      .then(([o]) => {
        if (live) {
          setResult({ ...o, tag: `${input.tag}-${mode}-${threshold}` });
          setError(null);
        }
      })
      .catch((e) => live && setError(errorText(e)))
      .finally(() => setBusy((b) => b - 1));
    return () => {
      live = false;
    };
  }, [enh, input, threshold, mode]);

  const inPsnr = input ? psnr(input.luma, input.clean) : null;
  const shown = exits && input && exits.tag.startsWith(`${input.tag}-`) ? exits : null;

  return (
    <div className="row">
      <div className="panel">
        <h2>Enhance: RBQE JPEG-artefact removal</h2>
        <div className="muted" data-testid="enhance-status">
          {enh ? `rbqe: ${enh.config.levels} exits, ${W}×${H} pictures (held out)` : 'loading checkpoints/rbqe…'}
        </div>
        <label>
          picture{' '}
          <select data-testid="enhance-picture" value={picture} onChange={(e) => setPicture(Number(e.target.value))}>
            {ENHANCE_PICTURES.map((p, i) => (
              <option key={p} value={i}>
                {p}
              </option>
            ))}
          </select>
        </label>{' '}
        <label>
          JPEG quality {quality}{' '}
          <input
            type="range"
            data-testid="enhance-quality"
            min={10}
            max={50}
            step={1}
            value={quality}
            onChange={(e) => setQuality(Number(e.target.value))}
          />
        </label>{' '}
        <label>
          quality threshold T = {threshold.toFixed(2)}{' '}
          <input
            type="range"
            data-testid="enhance-threshold"
            min={0}
            max={1}
            step={0.01}
            value={threshold}
            onChange={(e) => setThreshold(Number(e.target.value))}
          />
        </label>
        {error && (
          <div className="error" data-testid="enhance-error">
            {error}
          </div>
        )}
        {input && (
          <div className="row">
            <Picture luma={input.clean} label="clean" />
            <Picture
              luma={input.luma}
              label={`JPEG q${quality}: ${input.jpeg.length} bytes, ${inPsnr!.toFixed(2)} dB`}
              testId="enhance-jpeg"
            />
            {shown?.outs.map((o, k) => (
              <Picture
                key={o.exitIndex}
                luma={o.data}
                label={`exit ${k}: ${psnr(o.data, input.clean).toFixed(2)} dB`}
              />
            ))}
          </div>
        )}
      </div>
      <div className="panel" style={{ minWidth: 420 }}>
        <div
          data-testid="enhance-result"
          data-busy={busy}
          data-tag={result?.tag ?? ''}
          data-exits-tag={shown?.tag ?? ''}
          data-exit={result?.exitIndex ?? ''}
          data-scores={shown ? JSON.stringify(shown.scores) : ''}
          data-jpeg={input ? toBase64(input.jpeg) : ''}
          data-cost={result?.costFraction ?? ''}
        >
          {result && input && (
            <p>
              quality policy (T = {threshold.toFixed(2)}): left at <b>exit {result.exitIndex}</b>, PSNR{' '}
              {psnr(result.data, input.clean).toFixed(2)} dB (input {inPsnr!.toFixed(2)} dB),{' '}
              {(100 * result.costFraction).toFixed(1)}% of full-depth FLOPs
            </p>
          )}
        </div>
        {shown && input && (
          <table data-testid="enhance-exits">
            <thead>
              <tr>
                <th>exit</th>
                <th>quality score</th>
                <th>PSNR (dB)</th>
                <th>gain (dB)</th>
                <th>FLOPs</th>
              </tr>
            </thead>
            <tbody>
              {shown.outs.map((o, k) => {
                const p = psnr(o.data, input.clean);
                return (
                  <tr key={o.exitIndex} className={result?.exitIndex === k ? 'chosen' : ''}>
                    <td>{k}</td>
                    <td>{shown.scores[k]?.toFixed(4)}</td>
                    <td>{p.toFixed(2)}</td>
                    <td>{(p - inPsnr!).toFixed(2)}</td>
                    <td>{(100 * o.costFraction).toFixed(1)}%</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        <p className="muted">
          The quality policy leaves at the first exit whose score is at least T (the last exit otherwise). Scores and
          outputs are the model's own; PSNR is against the clean picture.
        </p>
      </div>
    </div>
  );
}
