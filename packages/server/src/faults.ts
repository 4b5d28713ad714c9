// Device faults as HTTP answers: a request caught by a lost device (or a GPU error during its run), and a
// request that arrives while the server recreates its device and reloads its models. Both are 503 with
// Retry-After: the request was fine and can be sent again once the server is ready.

/**
 * The GPU device was lost, or a run failed on it with a GPU error (`failed`), while this request was queued
 * or running. Either way the code is `device_lost`: the server recreates the device.
 */
export class DeviceLostError extends Error {
  readonly statusCode = 503;
  readonly code = 'device_lost';
  constructor(
    readonly reason: string,
    readonly retryAfterS: number,
    readonly failed = false,
  ) {
    super(
      `the GPU device ${failed ? 'failed' : 'was lost'} while this request was in flight (${reason}); the server is recreating it and reloading its models: retry after ${retryAfterS} s`,
    );
    this.name = 'DeviceLostError';
  }
}

/** The server is recovering from a lost device: not ready for requests yet. */
export class RecoveringError extends Error {
  readonly statusCode = 503;
  readonly code = 'recovering';
  constructor(readonly retryAfterS: number) {
    super(
      `the server is recovering from a lost GPU device (recreating it and reloading its models); retry after ${retryAfterS} s`,
    );
    this.name = 'RecoveringError';
  }
}

/** Whether an error is one of the 503s above (answered with its message and a Retry-After header). */
export function isDeviceFault(e: unknown): e is DeviceLostError | RecoveringError {
  return e instanceof DeviceLostError || e instanceof RecoveringError;
}
