// Compares two full-depth traces of the same data (offramp trace), e.g. a checkpoint's f32 weights against
// its F16 copy: per exit, accuracy of each, the share of samples whose argmax agrees, and the largest
// absolute difference of max_prob, entropy and the gate signal. Exits with status 1 when any exit's accuracy
// moves by more than --max-acc-delta points (default 0.05) or agreement is below --min-agreement percent
// (default 99.9).
//   tsx scripts/compare-traces.ts A.trace.json B.trace.json [--json] [--max-acc-delta 0.05] [--min-agreement 99.9]
import { resolve } from 'node:path';
import { readTraceFile } from '@offramp/policies';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const maxAccDelta = opt('--max-acc-delta', 0.05);
const minAgreement = opt('--min-agreement', 99.9);
const files = args.filter(
  (a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--max') && !args[i - 1]?.startsWith('--min'),
);
if (files.length !== 2) {
  console.error('usage: compare-traces.ts A.trace.json B.trace.json [--json] [--max-acc-delta P] [--min-agreement P]');
  process.exit(2);
}
const cwd = process.env.INIT_CWD ?? process.cwd();
const [a, b] = await Promise.all(files.map((f) => readTraceFile(resolve(cwd, f))));
const A = a.trace.samples;
const B = b.trace.samples;
if (A.length !== B.length) throw new Error(`the traces hold ${A.length} and ${B.length} samples`);
if (a.fingerprint.dataSha256 && b.fingerprint.dataSha256 && a.fingerprint.dataSha256 !== b.fingerprint.dataSha256)
  throw new Error('the traces were recorded on different data (data_sha256 differs)');
const E = a.trace.numExits;
if (b.trace.numExits !== E) throw new Error(`the traces have ${E} and ${b.trace.numExits} exits`);

const maxAbs = (x: number, y: number, m: number) =>
  Number.isFinite(x) && Number.isFinite(y) ? Math.max(m, Math.abs(x - y)) : m;
const exits = Array.from({ length: E }, (_, e) => {
  let correctA = 0;
  let correctB = 0;
  let labelled = 0;
  let agree = 0;
  let dProb = 0;
  let dEnt = 0;
  let dGate = 0;
  for (let i = 0; i < A.length; i++) {
    const s = A[i];
    const t = B[i];
    if (s.label !== undefined) {
      if (t.label !== s.label) throw new Error(`sample ${i} has labels ${s.label} and ${t.label}`);
      labelled++;
      if (s.argmax[e] === s.label) correctA++;
      if (t.argmax[e] === s.label) correctB++;
    }
    if (s.argmax[e] === t.argmax[e]) agree++;
    dProb = maxAbs(s.maxProb[e], t.maxProb[e], dProb);
    dEnt = maxAbs(s.entropy[e], t.entropy[e], dEnt);
    dGate = maxAbs(s.gate[e], t.gate[e], dGate);
  }
  const accA = labelled ? (100 * correctA) / labelled : Number.NaN;
  const accB = labelled ? (100 * correctB) / labelled : Number.NaN;
  return {
    exit: e,
    accuracyA: accA,
    accuracyB: accB,
    disagreements: A.length - agree,
    agreement: (100 * agree) / A.length,
    maxAbsDeltaMaxProb: dProb,
    maxAbsDeltaEntropy: dEnt,
    maxAbsDeltaGate: dGate,
  };
});
const pass = exits.every((x) => !(Math.abs(x.accuracyA - x.accuracyB) > maxAccDelta) && x.agreement >= minAgreement);
if (args.includes('--json')) {
  console.log(JSON.stringify({ a: files[0], b: files[1], samples: A.length, exits, pass }, null, 2));
} else {
  console.log(`${files[0]} vs ${files[1]}: ${A.length} samples`);
  for (const x of exits)
    console.log(
      `  exit ${x.exit}: accuracy ${x.accuracyA.toFixed(2)}% vs ${x.accuracyB.toFixed(2)}%, argmax agreement ${x.agreement.toFixed(2)}% (${x.disagreements} differ), max |Δ max_prob| ${x.maxAbsDeltaMaxProb.toExponential(2)}, max |Δ entropy| ${x.maxAbsDeltaEntropy.toExponential(2)}, max |Δ gate| ${x.maxAbsDeltaGate.toExponential(2)}`,
    );
  console.log(
    pass ? '  within tolerance' : `  OUT OF TOLERANCE (accuracy ±${maxAccDelta} pt, agreement ≥ ${minAgreement}%)`,
  );
}
process.exit(pass ? 0 : 1);
