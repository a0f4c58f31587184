/**
 * Cancellation and responsiveness for long builds (chunk datastores, kNN-LM keys) that run in a
 * worker or in Node: the build calls the checkpoint often; it throws BuildAbortedError once the
 * signal is aborted, and every `everyMs` yields to the event loop so progress messages and a
 * cancel can get through.
 */
import { yieldToEventLoop } from '../event-loop';
import { BuildAbortedError } from './errors';

export const clock = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** Returns checkpoint(force?) → true when it yielded (a good moment to report progress). */
export function buildCheckpoint(signal: AbortSignal | undefined, everyMs: number): (force?: boolean) => Promise<boolean> {
  let lastYield = clock();
  return async (force = false) => {
    if (signal?.aborted) throw new BuildAbortedError();
    if (force || clock() - lastYield >= everyMs) {
      await yieldToEventLoop();
      lastYield = clock();
      if (signal?.aborted) throw new BuildAbortedError();
      return true;
    }
    return false;
  };
}
