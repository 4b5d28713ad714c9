// A synthetic trace for the calibration tests (not part of the package build).
import { mulberry32 } from '@offramp/core';
import type { Trace, TraceSample } from '../calibration/trace.js';

/** A 4-exit, 5-class trace where later exits are more confident and more often right. */
export function randomTrace(n: number, seed: number): Trace {
  const rand = mulberry32(seed);
  const E = 4;
  const C = 5;
  const samples = Array.from({ length: n }, (): TraceSample => {
    const label = Math.floor(rand() * C);
    const s: TraceSample = {
      label,
      maxProb: [],
      entropy: [],
      margin: [],
      argmax: [],
      gate: [],
      similarity: [],
      finalPrediction: 0,
    };
    const hard = rand();
    for (let e = 0; e < E; e++) {
      const skill = (e + 1) / E - hard * 0.5;
      const right = rand() < 0.3 + 0.6 * Math.max(0, skill);
      const conf = Math.fround(
        Math.min(1, Math.max(1 / C, 0.2 + 0.8 * (right ? rand() ** 0.5 : rand() ** 2) * (0.5 + skill))),
      );
      s.maxProb.push(conf);
      s.entropy.push(Math.fround((1 - conf) * Math.log(C) + 0.01 * rand()));
      s.margin.push(Math.fround(conf * (0.5 + 0.5 * rand())));
      s.argmax.push(right ? label : (label + 1 + Math.floor(rand() * (C - 1))) % C);
      s.gate.push(Math.fround(rand()));
      s.similarity.push(e === 0 ? Number.NaN : Math.fround(rand()));
    }
    s.finalPrediction = s.argmax[E - 1];
    return s;
  });
  return {
    numExits: E,
    numClasses: C,
    numBlocks: 8,
    exitBlocks: [1, 3, 5, 7],
    costFractions: [0.3, 0.55, 0.8, 1],
    samples,
  };
}
