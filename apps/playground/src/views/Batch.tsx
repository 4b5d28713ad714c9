import type { RunHooks, RunResult } from '@offramp/core';
import { useEffect, useState } from 'react';
import { type Classifier, loadClassifier } from '../lib/runtime.ts';
import { fashionBatch } from '../lib/samples.ts';
import { classifyAllOnServer, type ServerBatch, type ServerModel, serverModel } from '../lib/server.ts';
import { errorText, type Mode, SLIDER_POLICIES } from '../lib/state.ts';

const N = 64;
const COLORS = ['#2a9d8f', '#e9c46a', '#e76f51', '#8d6cab', '#4a90d9', '#999'];

/** A row's outcome, from the page's run or the server's answer. */
interface Row {
  exitIndex: number;
  exitBlock: number;
  prediction: number;
}

interface Shown {
  rows: Row[];
  labels: number[];
  rowsPerBlock: number[];
  /** Host mode (in the page, or the server's batches): wall ms per block. */
  blockMs: number[];
  /** Server mode: the engine batches' run time, summed. */
  computeMs?: number;
  /** Server mode: live rows per block as the server reported them, or counted from the rows' exit blocks. */
  rowsSource?: 'server' | 'exits';
  /** One line on how it ran. */
  summary: string;
  mode: string;
}

/** Element-wise sum of per-block lists of different lengths (a block no list reaches is left out). */
function sumPerBlock(lists: number[][]): number[] {
  const out: number[] = [];
  for (const l of lists) for (let b = 0; b < l.length; b++) out[b] = (out[b] ?? 0) + l[b];
  return out;
}

function rowsPerBlock(rows: Row[], blocks: number): number[] {
  const out = new Array(blocks).fill(0);
  for (const r of rows) for (let b = 0; b <= r.exitBlock; b++) out[b]++;
  return out;
}

/**
 * One batch of 64 test images through the Fashion CNN: which rows are still live in each block, the exits,
 * and the wall time per block (host mode: between the block's start and its exit decision, readback included;
 * device mode runs the whole loop on the GPU with one readback, so only the batch's wall time is known). In
 * server mode the live rows and block times are those the server reports for its engine batches.
 */
export function BatchView({ mode, server = '' }: { mode: Mode; server?: string }) {
  const [clf, setClf] = useState<Classifier | null>(null);
  const [remote, setRemote] = useState<ServerModel | null>(null);
  const [threshold, setThreshold] = useState(0.9);
  const [res, setRes] = useState<Shown | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setRes(null);
    setError(null);
    if (server) {
      setRemote(null);
      serverModel(server, 'fashion-cnn', 'classifier').then(setRemote, (e) => setError(errorText(e)));
    } else loadClassifier('fashion-cnn').then(setClf, (e) => setError(errorText(e)));
  }, [server]);

  // server mode: the 64 images sent at once (requests of the server's max_batch, in parallel)
  useEffect(() => {
    if (!server || !remote) return;
    let live = true;
    setBusy(true);
    const { features, labels } = fashionBatch(N);
    const t0 = performance.now();
    classifyAllOnServer(
      server,
      remote,
      features.map((f) => ({ image: Array.from(f) })),
      `confidence:threshold=${threshold}`,
      { trace: true, parallel: true },
    )
      .then(
        (rs) => {
          if (!live) return;
          const ms = performance.now() - t0;
          const rows = rs.map((r) => ({ exitIndex: r.exit_index, exitBlock: r.exit_block, prediction: r.prediction }));
          // the engine batches the rows ran in, as the server reports them (size, mode, run time, live rows and
          // host-mode wall time per block), each once
          const seen = new Map<string, ServerBatch>();
          for (const r of rs) if (r.batch) seen.set(`${r.batch.size}/${r.batch.compute_ms}`, r.batch);
          const batches = [...seen.values()];
          const reported = batches.length > 0 && rs.every((r) => r.batch?.rows_per_block);
          const flops = rs.reduce((a, r) => a + r.cost_fraction, 0) / rs.length;
          setRes({
            rows,
            labels,
            rowsPerBlock: reported
              ? sumPerBlock(batches.map((b) => b.rows_per_block!))
              : rowsPerBlock(rows, remote.num_blocks),
            // block times summed over the engine batches (present only when every batch ran in host mode)
            blockMs:
              batches.length && batches.every((b) => b.block_ms) ? sumPerBlock(batches.map((b) => b.block_ms!)) : [],
            computeMs: batches.reduce((a, b) => a + b.compute_ms, 0),
            rowsSource: reported ? 'server' : 'exits',
            mode: 'server',
            summary: `server ${server} · round trip ${ms.toFixed(1)} ms (requests of at most ${remote.max_batch} images) · engine batch(es): ${
              batches.length
                ? batches.map((b) => `${b.size} rows, ${b.mode} mode, ${b.compute_ms.toFixed(1)} ms`).join('; ')
                : 'not reported by this server'
            } · FLOPs ${(flops * 100).toFixed(1)}% of full depth`,
          });
          setError(null);
        },
        (e) => live && setError(errorText(e)),
      )
      .finally(() => live && setBusy(false));
    return () => {
      live = false;
    };
  }, [server, remote, threshold]);

  useEffect(() => {
    if (!clf || server) return;
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
          setRes(fromRun(r, r.summary.mode === 'host' ? blockMs : [], labels));
          setError(null);
        },
        (e) => live && setError(errorText(e)),
      )
      .finally(() => live && setBusy(false));
    return () => {
      live = false;
    };
  }, [clf, threshold, mode, server]);

  const blocks = res?.rowsPerBlock.length ?? 0;
  const correct = res ? res.rows.filter((s, i) => s.prediction === res.labels[i]).length : 0;
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
          <p data-testid="batch-summary" data-mode={res.mode}>
            {res.summary} · accuracy {correct}/{N}
          </p>
          <table
            data-testid="batch-table"
            data-rows-source={res.rowsSource ?? 'run'}
            data-block-ms={JSON.stringify(res.blockMs)}
            data-compute-ms={res.computeMs ?? ''}
          >
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
                  <td data-testid={`live-${b}`}>{res.rowsPerBlock[b]}</td>
                  <td data-testid={`ms-${b}`}>{res.blockMs[b] !== undefined ? res.blockMs[b].toFixed(1) : '–'}</td>
                  <td style={{ textAlign: 'left' }}>
                    {res.rows.map((s, i) => (
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
          {res.mode === 'device' && (
            <p className="muted">Per-block wall time needs host mode (device mode reads back once per batch).</p>
          )}
          {res.mode === 'server' && (
            <p className="muted">
              {res.rowsSource === 'server'
                ? "Live rows per block as the server reports them for its engine batches (summed over the batches, other clients' rows included)"
                : "Live rows per block counted from each row's exit block (this server does not report them)"}
              {res.blockMs.length
                ? '; wall ms per block as the server timed them in host mode (summed over the batches; on its ONNX Runtime CPU path a segment of blocks runs as one call and its time is on its exit block).'
                : '; no per-block times: the server ran device mode (one GPU submission, one readback per batch) or does not report them.'}
            </p>
          )}
          <span data-testid="batch-exits" hidden data-exits={JSON.stringify(res.rows.map((r) => r.exitBlock))} />
        </>
      )}
    </div>
  );
}

function fromRun(r: RunResult, blockMs: number[], labels: number[]): Shown {
  const m = r.summary;
  return {
    rows: r.samples,
    labels,
    rowsPerBlock: m.rowsPerBlock,
    blockMs,
    mode: m.mode,
    summary: `${m.mode} mode · wall ${m.wallMs.toFixed(1)} ms · ${m.readbacks} readback(s) · FLOPs ${(
      (m.flops / m.fullDepthFlops) * 100
    ).toFixed(1)}% of full depth · exits per head ${m.exitCounts.join(' / ')}`,
  };
}
