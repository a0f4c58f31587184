/**
 * Errors of the datastore module. Each sets `name`, so it survives a worker boundary as
 * {name, message} and the UI can tell "not a datastore" from "damaged" from "bad input file".
 * The names are listed in src/protocol/shard.ts (ShardErrorName, InputErrorName).
 */
import type { InputErrorName, ShardErrorName } from '../../protocol/shard';

/** A shard could not be read. */
export class ShardError extends Error {
  override name: ShardErrorName | 'ShardError' = 'ShardError';
}

/** The bytes do not start with the shard magic: not a RetroLab datastore at all. */
export class ShardMagicError extends ShardError {
  override name = 'ShardMagicError' as const;
}

/** A shard of another format version. */
export class ShardVersionError extends ShardError {
  override name = 'ShardVersionError' as const;
  constructor(
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      found > supported
        ? `this datastore uses format version ${found}, newer than this app reads (${supported}); update RetroLab or rebuild the datastore`
        : `this datastore uses format version ${found}, which this app no longer reads (it reads ${supported}); rebuild the datastore`,
    );
  }
}

/** Fewer bytes than the header promises: an interrupted download or copy. */
export class ShardTruncatedError extends ShardError {
  override name = 'ShardTruncatedError' as const;
  constructor(
    readonly expectedBytes: number | null,
    readonly actualBytes: number,
  ) {
    super(
      expectedBytes === null
        ? `the datastore file is truncated: ${actualBytes} bytes is shorter than its header`
        : `the datastore file is truncated: ${actualBytes.toLocaleString('en')} of ${expectedBytes.toLocaleString('en')} bytes`,
    );
  }
}

/** Checksums or structure do not hold: the bytes were damaged. */
export class ShardCorruptError extends ShardError {
  override name = 'ShardCorruptError' as const;
  constructor(
    message: string,
    /** the section that failed, when one did */
    readonly section?: string,
  ) {
    super(message);
  }
}

/** A valid shard that does not fit what it is used with (another embedder or tokenizer). */
export class ShardMismatchError extends ShardError {
  override name = 'ShardMismatchError' as const;
}

/** A file given to the builder cannot be used. */
export class InputError extends Error {
  override name: InputErrorName | 'InputError' = 'InputError';
  constructor(
    message: string,
    /** the file it is about */
    readonly fileName: string,
  ) {
    super(message);
  }
}

export class EmptyInputError extends InputError {
  override name = 'EmptyInputError' as const;
}
export class BinaryInputError extends InputError {
  override name = 'BinaryInputError' as const;
}
export class InvalidUtf8Error extends InputError {
  override name = 'InvalidUtf8Error' as const;
}
export class InputTooLargeError extends InputError {
  override name = 'InputTooLargeError' as const;
}
export class UnsupportedFormatError extends InputError {
  override name = 'UnsupportedFormatError' as const;
}
export class JsonlLineError extends InputError {
  override name = 'JsonlLineError' as const;
  constructor(
    message: string,
    fileName: string,
    /** 1-based line number */
    readonly line: number,
  ) {
    super(message, fileName);
  }
}

/** The build was cancelled through its AbortSignal; named like DOM aborts so one check fits both. */
export class BuildAbortedError extends Error {
  override name = 'AbortError';
  constructor() {
    super('the datastore build was cancelled');
  }
}
