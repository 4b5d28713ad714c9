// Errors of the command line and their exit codes: 0 success, 1 a runtime failure (files missing or damaged,
// GPU errors, results that do not check out), 2 a usage error (bad command line: unknown command, option,
// policy or dataset, option values out of range).
import { FormatError, GpuError, ValidationError } from '@offramp/core';

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

/** The command line is wrong: exit code 2. */
export class UsageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UsageError';
  }
}

/** The command was well formed but failed while running: exit code 1. */
export class RuntimeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RuntimeError';
  }
}

/** Exit code for an error thrown by a command. */
export function exitCodeOf(e: unknown): number {
  if (e instanceof UsageError) return EXIT_USAGE;
  if (e instanceof RuntimeError || e instanceof FormatError || e instanceof GpuError) return EXIT_RUNTIME;
  // a ValidationError that reaches the top was raised by option or policy checks on user input
  if (e instanceof ValidationError) return EXIT_USAGE;
  return EXIT_RUNTIME;
}

/** A ValidationError (bad user input) becomes a UsageError with the same message; others pass through. */
export function asUsage(e: unknown, prefix?: string): unknown {
  if (e instanceof ValidationError) return new UsageError(prefix ? `${prefix}: ${e.message}` : e.message, { cause: e });
  return e;
}

/** The message printed for an error: its text, and with `verbose` its stack and causes. */
export function formatError(e: unknown, verbose: boolean): string {
  if (!(e instanceof Error)) return String(e);
  if (!verbose) return e.message;
  let out = e.stack ?? e.message;
  let cause = (e as { cause?: unknown }).cause;
  for (let depth = 0; cause instanceof Error && depth < 5; depth++) {
    out += `\ncaused by: ${cause.stack ?? cause.message}`;
    cause = (cause as { cause?: unknown }).cause;
  }
  return out;
}
