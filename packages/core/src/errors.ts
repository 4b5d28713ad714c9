// Error types of Offramp. Every error says what was wrong, where, and what would be right.

export class OfframpError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input from a user: wrong shape, option out of range, unknown name. */
export class ValidationError extends OfframpError {}

/** A GPU-side failure: a kernel that failed validation, ran out of memory, or a lost device. */
export class GpuError extends OfframpError {}

/** A weights or config file that cannot be read: truncated, corrupt, or inconsistent. */
export class FormatError extends OfframpError {}
