// ONNX Runtime sessions built once per key (a graph kind and its segment) and shared by the calls that need
// them; a failed build is forgotten so the next call retries; dispose releases every session. Used by the
// generation models on the CPU path (OrtDecoderLM, OrtMambaLM).
import { ValidationError } from '../errors.js';
import type { OrtCpu, OrtSession } from './ort-cpu.js';

export class OrtSessionCache {
  private readonly sessions = new Map<string, Promise<OrtSession>>();
  private disposed = false;

  /** `owner` names the model in errors (e.g. 'OrtDecoderLM'). */
  constructor(
    private readonly ortCpu: OrtCpu,
    private readonly owner: string,
  ) {}

  /** Sessions built or being built. */
  get size(): number {
    return this.sessions.size;
  }

  /** The session for `key`, built from the ONNX bytes `build` returns on first use. */
  get(key: string, build: () => Uint8Array): Promise<OrtSession> {
    if (this.disposed) throw new ValidationError(`${this.owner}: the model was disposed`);
    let s = this.sessions.get(key);
    if (!s) {
      s = this.ortCpu.createSession(build());
      this.sessions.set(key, s);
      s.catch(() => this.sessions.delete(key));
    }
    return s;
  }

  /** Releases every session; later `get` calls fail with a ValidationError. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s.catch(() => null))?.release();
  }
}
