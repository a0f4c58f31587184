import type { BackendInfo } from '../../protocol/model';
import { InferenceError, errorMessage } from './errors';
import type { OrtSession, OrtTensor } from './ort';
import { RtTensor } from './tensor';

/**
 * One ONNX graph loaded on one backend. Calls are queued: onnxruntime-web must not run a session
 * twice at once, and the UI may ask two things of one worker back to back.
 */
export class RuntimeSession {
  readonly label: string;
  private info: BackendInfo;
  private readonly session: OrtSession;
  private queue: Promise<unknown> = Promise.resolve();
  private released = false;

  constructor(session: OrtSession, label: string, backend: BackendInfo) {
    this.session = session;
    this.label = label;
    this.info = backend;
  }

  /** The backend this graph runs on and why. */
  get backend(): BackendInfo {
    return this.info;
  }

  /** For the runtime only: set once the self-check has decided. */
  setBackendInfo(info: BackendInfo): void {
    this.info = info;
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs the graph; every output comes back as an RtTensor (on the GPU if so configured). */
  run(feeds: Record<string, RtTensor>): Promise<Record<string, RtTensor>> {
    const result = this.queue.then(() => this.runNow(feeds));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async runNow(feeds: Record<string, RtTensor>): Promise<Record<string, RtTensor>> {
    if (this.released) throw new InferenceError(`${this.label}: session was released`);
    const ortFeeds: Record<string, OrtTensor> = {};
    for (const [name, tensor] of Object.entries(feeds)) ortFeeds[name] = tensor.ortTensor;
    let outputs: Record<string, OrtTensor>;
    try {
      outputs = (await this.session.run(ortFeeds)) as Record<string, OrtTensor>;
    } catch (error) {
      throw new InferenceError(`${this.label} (${this.backend.backend}): ${errorMessage(error)}`, { cause: error });
    }
    const wrapped: Record<string, RtTensor> = {};
    for (const [name, tensor] of Object.entries(outputs)) wrapped[name] = new RtTensor(tensor);
    return wrapped;
  }

  async release(): Promise<void> {
    if (this.released) return;
    await this.queue;
    this.released = true;
    await this.session.release();
  }
}
