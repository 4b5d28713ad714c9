// @offramp/cli: the `offramp` command line (bin.ts) and its parts, for programs that drive it.
export { type CalibrateOptions, calibrateCommand } from './commands/calibrate.js';
export { type DemoOptions, demoCommand, FASHION_CNN_SHAPE } from './commands/demo.js';
export { type EvalCommandOptions, evalCommand } from './commands/eval.js';
export { inspectCommand } from './commands/inspect.js';
export { newPolicyCommand, scaffoldFiles } from './commands/new-policy.js';
export { EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, RuntimeError, UsageError } from './errors.js';
export { type EvalConfig, type EvalResult, type PointResult, runEvaluation } from './evaluate.js';
export { plotSpec, renderSvg, svgToPng } from './plot.js';
export { parsePolicyList, parsePolicyRequest, splitPolicyList } from './policies.js';
export { buildProgram, run } from './program.js';
export { toCsv, toMarkdown, writeResults } from './report.js';
export { calibrateResultSchema, evalResultSchema } from './schema.js';
export { Logger } from './util/log.js';
export { levenshtein, nearest } from './util/suggest.js';
