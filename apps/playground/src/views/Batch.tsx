import type { RunHooks, RunResult } from '@offramp/core';
import { useEffect, useState } from 'react';
import { type Classifier, loadClassifier } from '../lib/runtime.ts';
import { fashionBatch } from '../lib/samples.ts';
import { errorText, type Mode, SLIDER_POLICIES } from '../lib/state.ts';

const N = 64;
const COLORS = ['#2a9d8f', '#e9c46a', '#e76f51', '#8d6cab', '#4a90d9', '#999'];

/**
 * One batch of 64 test images through the Fashion CNN: which rows are still live in each block, the exits,
 * and the wall time per block (host mode: between the block's start and its exit decision, readback included;
 * device mode runs the whole loop on the GPU with one readback, so only the batch's wall time is known).
 */
export function BatchView({ mode }: { mode: Mode }) {
  const [clf, setClf] = useState<Classifier | null>(null);
  const [threshold, setThreshold] = useState(0.9);
  const [res, setRes] = useState<(RunResult & { blockMs: number[]; labels: number[] }) | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    loadClassifier('fashion-cnn').then(setClf, (e) => setError(errorText(e)));
  }, []);

  useEffect(() => {
    if (!clf) return;
    let live = true;
    setBusy(true);
    const { features, labels } = fashionBatch(N);
    const starts: number[] = [];
    const blockMs: number[] = [];
    const hooks: RunHooks = {
      beforeBlock: (ctx) => {
        starts[ctx.block] = performance.now();
      },
      afterBlock: (ctx) => {
        blockMs[ctx.block] = performance.now() - starts[ctx.block];
      },
    };
    clf.runner
      .run({ features }, { policy: SLIDER_POLICIES.confidence.make(threshold), mode, hooks: [hooks] })
      .then(
        (r) => {
          if (!live) return;
          setRes({ ...r, blockMs: r.summary.mode === 'host' ? blockMs : [], labels });
          setError(null);
        },
        (e) => live && setError(errorText(e)),
      )
      .finally(() => live && setBusy(false));
    return () => {
      live = false;
    };
  }, [clf, threshold, mode]);

  const blocks = clf?.model.numBlocks ?? 0;
  const correct = res ? res.samples.filter((s, i) => s.prediction === res.labels[i]).length : 0;
  return (
    <div className="panel" data-testid="batch" data-busy={busy ? '1' : '0'}>
      <p>
        {N} Fashion-MNIST test images in one batch, confidence policy τ ={' '}
        <input
          type="range"
          min={0}
          max={1}
          step={0.001}
          value={threshold}
          data-testid="batch-threshold"
          onChange={(e) => setThreshold(Number(e.target.value))}
        />{' '}
        {threshold.toFixed(3)}
      </p>
      {error && <div className="error">{error}</div>}
      {res && (
        <>
          <p>
            {res.summary.mode} mode · wall {res.summary.wallMs.toFixed(1)} ms · {res.summary.readbacks} readback(s) ·
            FLOPs {((res.summary.flops / res.summary.fullDepthFlops) * 100).toFixed(1)}% of full depth · exits per head{' '}
            {res.summary.exitCounts.join(' / ')} · accuracy {correct}/{N}
          </p>
          <table data-testid="batch-table">
            <thead>
              <tr>
                <th>block</th>
                <th>live rows</th>
                <th>wall ms</th>
                <th style={{ textAlign: 'left' }}>rows (coloured by the exit they take; grey: already left)</th>
              </tr>
            </thead>
            <tbody>
              {Array.from({ length: blocks }, (_, b) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: blocks by index
                <tr key={b}>
                  <td>{b}</td>
                  <td data-testid={`live-${b}`}>{res.summary.rowsPerBlock[b]}</td>
                  <td>{res.blockMs[b] !== undefined ? res.blockMs[b].toFixed(1) : '–'}</td>
                  <td style={{ textAlign: 'left' }}>
                    {res.samples.map((s, i) => (
                      <span
                        // biome-ignore lint/suspicious/noArrayIndexKey: samples by index
                        key={i}
                        title={`sample ${i}: exit ${s.exitIndex}`}
                        style={{
                          display: 'inline-block',
                          width: 8,
                          height: 12,
                          marginRight: 1,
                          background: s.exitBlock >= b ? COLORS[s.exitIndex % COLORS.length] : '#e4e8ec',
                        }}
                      />
                    ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {res.summary.mode === 'device' && (
            <p className="muted">Per-block wall time needs host mode (device mode reads back once per batch).</p>
          )}
        </>
      )}
    </div>
  );
}
