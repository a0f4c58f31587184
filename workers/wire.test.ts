/**
 * Errors across a Comlink link, with workers/wire.ts's handler on both ends (Node's MessageChannel
 * stands in for a worker's): the class name, message and code arrive, and a thrown non-Error
 * arrives as an Error, not as a bare string.
 */
import { MessageChannel } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelLoadError } from '../src/core/runtime/errors';
import { installErrorTransfer } from './wire';

installErrorTransfer();
const channel = new MessageChannel();
const served = {
  load(): never {
    throw new ModelLoadError('hash-mismatch', 'decoder.onnx: sha256 differs from the manifest');
  },
  abort(): never {
    throw Object.assign(new Error('the datastore build was cancelled'), { name: 'AbortError' });
  },
  text(): string {
    throw 'a bare string';
  },
};
Comlink.expose(served, nodeEndpoint(channel.port1));
const remote = Comlink.wrap<typeof served>(nodeEndpoint(channel.port2));

afterAll(() => {
  channel.port1.close();
  channel.port2.close();
});

describe('errors crossing a worker link', () => {
  it('keep their name, message and code', async () => {
    await expect(remote.load()).rejects.toMatchObject({ name: 'ModelLoadError', message: 'decoder.onnx: sha256 differs from the manifest', code: 'hash-mismatch' });
    await expect(remote.abort()).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('arrive as Errors even when a string was thrown', async () => {
    const error: unknown = await remote.text().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: 'Error', message: 'a bare string' });
  });
});
