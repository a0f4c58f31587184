import { Worker } from 'node:worker_threads';

/**
 * A worker thread running a TypeScript module. The tools run under tsx, whose loader a worker
 * thread does not inherit, so the worker registers it before importing the module.
 */
export function tsWorker(file: URL, workerData: unknown): Worker {
  // Resolved here: the worker's own resolution would start from the current directory.
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(file.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}
