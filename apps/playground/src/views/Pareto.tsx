import * as Plot from '@observablehq/plot';
import { policyToJson, recordTrace, type Trace } from '@offramp/policies';
import { useEffect, useRef, useState } from 'react';
import { type ParetoPoint, pointLabel, policyFileText, sweepAll } from '../lib/pareto.ts';
import { loadClassifier } from '../lib/runtime.ts';
import { FASHION_COUNT, fashionBatch } from '../lib/samples.ts';
import { classifyAllOnServer, policySpec, recordTraceOnServer, serverModel } from '../lib/server.ts';
import { errorText, type Mode } from '../lib/state.ts';

const CHUNK = 32;

interface Measured {
  accuracy: number;
  meanCost: number;
  mode: string;
}

/** How the last trace was recorded: where, how many images, and how long it took. */
interface Recorded {
  where: string;
  ms: number;
}

/**
 * Records a full-depth trace of the Fashion CNN on the exported test images (chunk by chunk, with progress),
 * sweeps the built-in policies over it offline, plots accuracy against compute with the frontier; a clicked
 * point is run for real on the device and can be saved as a policy file for the CLI.
 */
export function ParetoView({ mode, server = '' }: { mode: Mode; server?: string }) {
  const [n, setN] = useState(128);
  const [progress, setProgress] = useState<number | null>(null);
  const [trace, setTrace] = useState<Trace | null>(null);
  const [sweepRes, setSweepRes] = useState<ReturnType<typeof sweepAll> | null>(null);
  const [chosen, setChosen] = useState<ParetoPoint | null>(null);
  const [measured, setMeasured] = useState<Measured | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [recorded, setRecorded] = useState<Recorded | null>(null);
  const plotRef = useRef<HTMLDivElement>(null);

  const record = async () => {
    setError(null);
    setTrace(null);
    setSweepRes(null);
    setChosen(null);
    setMeasured(null);
    setRecorded(null);
    try {
      let all: Trace | null = null;
      setProgress(0);
      const t0 = performance.now();
      if (server) {
        // through the server: requests of its max_batch images, every exit's signals in the answers
        const { features, labels } = fashionBatch(n);
        all = await recordTraceOnServer(server, 'fashion-cnn', features, labels, { onProgress: setProgress });
      } else {
        const clf = await loadClassifier('fashion-cnn');
        for (let a = 0; a < n; a += CHUNK) {
          const { features, labels } = fashionBatch(Math.min(CHUNK, n - a), a);
          const t = await recordTrace(clf.runner, { features }, labels);
          if (!all) all = t;
          else all.samples.push(...t.samples);
          setProgress(Math.min(n, a + CHUNK));
        }
      }
      setRecorded({ where: server ? `the server ${server}` : 'this page', ms: performance.now() - t0 });
      setTrace(all);
      setSweepRes(sweepAll(all!));
    } catch (e) {
      setError(errorText(e));
    } finally {
      setProgress(null);
    }
  };

  useEffect(() => {
    const el = plotRef.current;
    if (!el || !sweepRes) return;
    const { points, frontier } = sweepRes;
    const svg = Plot.plot({
      width: 720,
      height: 380,
      grid: true,
      x: { label: 'mean compute (fraction of full depth)', domain: [0, 1] },
      y: { label: 'accuracy' },
      color: { legend: true },
      marks: [
        Plot.line(frontier, { x: 'meanCost', y: 'accuracy', stroke: '#333', strokeDasharray: '4,3' }),
        Plot.dot(points, {
          x: 'meanCost',
          y: 'accuracy',
          stroke: 'policy',
          r: 4,
          tip: true,
          title: (p: ParetoPoint) => pointLabel(p),
        }),
        Plot.dot(frontier, { x: 'meanCost', y: 'accuracy', fill: 'policy', r: 4 }),
      ],
    });
    // clicks on the dots of every point (the second mark): circle i is point i
    const circles = svg.querySelectorAll('g[aria-label="dot"]')[0]?.querySelectorAll('circle') ?? [];
    circles.forEach((c, i) => {
      c.setAttribute('data-testid', `point-${points[i].id}`);
      c.style.cursor = 'pointer';
      c.addEventListener('click', () => setChosen(points[i]));
    });
    el.replaceChildren(svg);
  }, [sweepRes]);

  // the clicked point, run for real on the traced images
  useEffect(() => {
    if (!chosen || !trace) return;
    let live = true;
    setMeasured(null);
    (async () => {
      const { features, labels } = fashionBatch(trace.samples.length);
      if (server) {
        // the point's policy as a spec, run by the server on the traced images
        const m = await serverModel(server, 'fashion-cnn', 'classifier');
        const spec = policySpec(chosen.policy, chosen.options);
        const rs = await classifyAllOnServer(
          server,
          m,
          features.map((f) => ({ image: Array.from(f) })),
          spec,
        );
        const acc = rs.filter((r, i) => r.prediction === labels[i]).length / labels.length;
        const cost = rs.reduce((a, r) => a + r.cost_fraction, 0) / labels.length;
        if (live) setMeasured({ accuracy: acc, meanCost: cost, mode: 'server' });
        return;
      }
      const clf = await loadClassifier('fashion-cnn');
      const policy = policyToJson({ name: chosen.policy, options: chosen.options });
      const { policyFromJson } = await import('@offramp/policies');
      const r = await clf.runner.run({ features }, { policy: policyFromJson(policy), mode });
      const acc = r.samples.filter((s, i) => s.prediction === labels[i]).length / labels.length;
      const cost = r.samples.reduce((a, s) => a + s.costFraction, 0) / labels.length;
      if (live) setMeasured({ accuracy: acc, meanCost: cost, mode: `${r.summary.mode} mode` });
    })().catch((e) => live && setError(errorText(e)));
    return () => {
      live = false;
    };
  }, [chosen, trace, mode, server]);

  const fileText = chosen && trace ? policyFileText(chosen, trace.samples.length) : '';
  return (
    <div>
      <div className="panel">
        Trace of the Fashion CNN on the first{' '}
        <select value={n} onChange={(e) => setN(Number(e.target.value))} data-testid="trace-size">
          {[32, 64, 128, FASHION_COUNT].map((v) => (
            <option key={v} value={v}>
              {v}
            </option>
          ))}
        </select>{' '}
        exported test images{server ? ', recorded through the server' : ''}{' '}
        <button type="button" onClick={record} disabled={progress !== null} data-testid="record">
          record trace
        </button>{' '}
        {progress !== null && (
          <>
            <progress max={n} value={progress} /> {progress}/{n}
          </>
        )}
      </div>
      {error && <div className="error">{error}</div>}
      {sweepRes && trace && (
        <div className="panel">
          <p data-testid="sweep-summary" data-trace-ms={recorded?.ms ?? ''}>
            Trace recorded in {recorded?.where} in {((recorded?.ms ?? 0) / 1000).toFixed(2)} s. {sweepRes.points.length}{' '}
            policy settings swept offline on {trace.samples.length} images; full model accuracy{' '}
            {((sweepRes.points[0].fullAccuracy ?? 0) * 100).toFixed(1)}%; {sweepRes.frontier.length} on the frontier.
            Click a point to load it.
          </p>
          <div
            ref={plotRef}
            data-testid="pareto-plot"
            data-frontier={JSON.stringify(
              sweepRes.frontier.map((p) => ({
                policy: p.policy,
                options: p.options,
                accuracy: p.accuracy,
                meanCost: p.meanCost,
              })),
            )}
          />
        </div>
      )}
      {chosen && (
        <div className="panel" data-testid="chosen-point">
          <p>
            <b>{pointLabel(chosen)}</b>: simulated accuracy {((chosen.accuracy ?? 0) * 100).toFixed(1)}% at{' '}
            {(chosen.meanCost * 100).toFixed(1)}% compute
            {measured && (
              <span data-testid="measured" data-accuracy={measured.accuracy} data-cost={measured.meanCost}>
                {' '}
                · run {measured.mode === 'server' ? 'on the server' : `on the device (${measured.mode})`}:{' '}
                {(measured.accuracy * 100).toFixed(1)}% at {(measured.meanCost * 100).toFixed(1)}% compute
              </span>
            )}
          </p>
          <pre data-testid="policy-file">{fileText}</pre>
          <a
            href={`data:application/json;charset=utf-8,${encodeURIComponent(fileText)}`}
            download={`${chosen.policy}.policy.json`}
          >
            download policy file
          </a>{' '}
          <span className="muted">
            (use it with the CLI: offramp eval -m checkpoints/fashion-cnn -p file:{chosen.policy}.policy.json)
          </span>
        </div>
      )}
    </div>
  );
}
