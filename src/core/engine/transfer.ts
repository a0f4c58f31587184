/**
 * How an engine marks buffers to be moved rather than copied when a result crosses to another
 * thread. In one thread nothing crosses, so the default returns the value as it is; a worker passes
 * Comlink's `transfer` (workers/*.worker.ts), which core does not import.
 */
export type Transfer = <T>(value: T, buffers: ArrayBuffer[]) => T;

export const inThread: Transfer = (value) => value;
