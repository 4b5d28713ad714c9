// The Pareto explorer's computation, shared by the view and the tests: the built-in policies and grids swept
// over a trace, and the frontier of accuracy against compute.
import { type Grid, paretoFrontier, policyToJson, type SweepPoint, sweep, type Trace } from '@offramp/policies';

export const SWEEPS: Record<string, Grid> = {
  confidence: { threshold: { from: 0.5, to: 1, steps: 21 } },
  entropy: { threshold: { from: 0.02, to: 1.5, steps: 21 } },
  margin: { threshold: { from: 0.1, to: 1, steps: 19 } },
  patience: { patience: [1, 2] },
};

export interface ParetoPoint extends SweepPoint {
  policy: string;
  /** Index in the list of every point. */
  id: number;
}

export function sweepAll(trace: Trace): { points: ParetoPoint[]; frontier: ParetoPoint[] } {
  const points: ParetoPoint[] = [];
  for (const [policy, grid] of Object.entries(SWEEPS)) {
    for (const p of sweep(policy, grid, trace)) points.push({ ...p, policy, id: points.length });
  }
  return { points, frontier: paretoFrontier(points) };
}

/** A short label of a point: `confidence threshold=0.9`. */
export function pointLabel(p: { policy: string; options: Record<string, unknown> }): string {
  const o = Object.entries(p.options)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toFixed(4)) : v}`)
    .join(' ');
  return `${p.policy} ${o}`;
}

/**
 * The policy file of a swept point (what the view shows and downloads), the same whichever way the trace of
 * `traced` images was recorded (in the page or through a server).
 */
export function policyFileText(p: SweepPoint & { policy: string }, traced: number): string {
  const file = policyToJson(
    { name: p.policy, options: p.options },
    { trace: `fashion-cnn, ${traced} exported test images`, accuracy: p.accuracy, meanCost: p.meanCost },
  );
  return `${JSON.stringify(file, null, 2)}\n`;
}
