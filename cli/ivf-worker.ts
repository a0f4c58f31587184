/** buildIvfFile on a worker thread (cli/knn.ts buildIvfFileInWorker): its log lines go to stderr. */
import { parentPort, workerData } from 'node:worker_threads';
import { buildIvfFile, type BuildIvfFileOptions } from './knn';

const { options, prefix } = workerData as { options: Omit<BuildIvfFileOptions, 'log'>; prefix: string };
parentPort!.postMessage(buildIvfFile({ ...options, log: (line) => process.stderr.write(`${prefix}${line}\n`) }));
