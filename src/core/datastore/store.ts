/**
 * The IndexedDB store of datastores: the only module that imports `idb`. Shard bytes and their
 * metadata live in separate object stores so that listing never reads shard bytes, and every write
 * that touches both is one transaction, so a failed write (quota) leaves nothing half-written.
 * Runs in a worker or on the main thread (IndexedDB exists in both); no DOM beyond that.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import { formatBytes } from '../io';

export type DatastoreOrigin = 'default' | 'custom' | 'imported';

/** What the app knows about a stored datastore without reading its shard. */
export interface DatastoreRecord {
  id: string;
  name: string;
  origin: DatastoreOrigin;
  /** Shard size in bytes. */
  bytes: number;
  chunks: number;
  documents: number;
  /** ms since epoch */
  createdAt: number;
  /** Free text: where it came from (file names, corpus). */
  description?: string;
  /** The embedder the shard was built with: a new model release may need a rebuilt shard. */
  embedderFingerprint?: string;
  /** The shard's kNN-LM sections, when it has them (keys of one GPT's weights). */
  knnlm?: KnnRecordInfo;
  /**
   * 'knnlm': a kNN-LM-only shard (no chunks), e.g. the built-in WikiText-2 one: RETRO cannot read
   * it, so it is kept out of the chunk datastore list. Absent means a chunk datastore.
   */
  kind?: 'chunks' | 'knnlm';
}

export interface KnnRecordInfo {
  entries: number;
  dim: number;
  model: string;
  decoderSha256: string;
}

/** What a shard header says about its kNN-LM sections (undefined when it has none). */
export function knnRecordInfo(meta: { knnlm?: { count: number; dim: number; model: { id: string; decoderSha256: string } } }): KnnRecordInfo | undefined {
  const k = meta.knnlm;
  return k ? { entries: k.count, dim: k.dim, model: k.model.id, decoderSha256: k.model.decoderSha256 } : undefined;
}

export interface StorageEstimateInfo {
  usage: number | null;
  quota: number | null;
  persisted: boolean | null;
}

type SettingKey = 'activeDatastore' | 'defaultsInstalled' | 'indexKind';

interface RetroLabDB extends DBSchema {
  datastores: { key: string; value: DatastoreRecord; indexes: { 'by-created': number } };
  /**
   * Shard bytes: an ArrayBuffer, or a Blob for kNN-LM-only shards (the browser keeps a stored Blob
   * on disk, so the ~200 MB built-in one is read section by section, never whole: KnnDatastore.load).
   */
  shards: { key: string; value: { id: string; bytes: ArrayBuffer | Blob } };
  settings: { key: SettingKey; value: { key: SettingKey; value: string } };
}

export const DB_NAME = 'retrolab';
const DB_VERSION = 1;

/** Writing a datastore failed because the browser's storage quota for this site is exhausted. */
export class StorageQuotaError extends Error {
  override name = 'StorageQuotaError';
  constructor(
    message: string,
    readonly neededBytes: number,
    readonly availableBytes: number | null,
  ) {
    super(message);
  }
}

export class DatastoreNotFoundError extends Error {
  override name = 'DatastoreNotFoundError';
}


function isQuotaError(error: unknown): boolean {
  if (!(error instanceof Error) && !(typeof DOMException !== 'undefined' && error instanceof DOMException)) return false;
  const e = error as { name?: string; message?: string };
  return e.name === 'QuotaExceededError' || /quota/i.test(e.message ?? '');
}

function slug(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return s || 'datastore';
}

/** Copies a view into a standalone ArrayBuffer, so the stored value never drags a larger buffer along. */
function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) {
    return bytes.buffer;
  }
  return bytes.slice().buffer as ArrayBuffer;
}

export class DatastoreStore {
  private constructor(private readonly db: IDBPDatabase<RetroLabDB>) {}

  static async open(name: string = DB_NAME): Promise<DatastoreStore> {
    const db = await openDB<RetroLabDB>(name, DB_VERSION, {
      upgrade(database) {
        const records = database.createObjectStore('datastores', { keyPath: 'id' });
        records.createIndex('by-created', 'createdAt');
        database.createObjectStore('shards', { keyPath: 'id' });
        database.createObjectStore('settings', { keyPath: 'key' });
      },
    });
    return new DatastoreStore(db);
  }

  close(): void {
    this.db.close();
  }

  /** Oldest first, so the defaults stay on top of the list. */
  async list(): Promise<DatastoreRecord[]> {
    return this.db.getAllFromIndex('datastores', 'by-created');
  }

  async getRecord(id: string): Promise<DatastoreRecord | undefined> {
    return this.db.get('datastores', id);
  }

  async get(id: string): Promise<{ record: DatastoreRecord; bytes: Uint8Array }> {
    const tx = this.db.transaction(['datastores', 'shards'], 'readonly');
    const [record, shard] = await Promise.all([tx.objectStore('datastores').get(id), tx.objectStore('shards').get(id), tx.done]);
    if (!record || !shard) throw new DatastoreNotFoundError(`No stored datastore with id "${id}".`);
    return { record, bytes: new Uint8Array(shard.bytes instanceof Blob ? await shard.bytes.arrayBuffer() : shard.bytes) };
  }

  /** The stored shard as a Blob when it was stored as one (kNN-LM-only shards), else its bytes. */
  async getShard(id: string): Promise<{ record: DatastoreRecord } & ({ blob: Blob } | { bytes: Uint8Array })> {
    const tx = this.db.transaction(['datastores', 'shards'], 'readonly');
    const [record, shard] = await Promise.all([tx.objectStore('datastores').get(id), tx.objectStore('shards').get(id), tx.done]);
    if (!record || !shard) throw new DatastoreNotFoundError(`No stored datastore with id "${id}".`);
    return shard.bytes instanceof Blob ? { record, blob: shard.bytes } : { record, bytes: new Uint8Array(shard.bytes) };
  }

  /** An id derived from the name that no stored datastore uses yet. */
  async freshId(name: string): Promise<string> {
    const base = slug(name);
    const taken = new Set(await this.db.getAllKeys('datastores'));
    if (!taken.has(base)) return base;
    for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
  }

  /**
   * Stores (or replaces) a datastore: record and shard in one transaction. On a quota failure the
   * transaction aborts as a whole and a StorageQuotaError says how much is needed and what to delete.
   */
  async put(record: DatastoreRecord, bytes: Uint8Array | Blob): Promise<void> {
    const size = bytes instanceof Blob ? bytes.size : bytes.byteLength;
    const stored: DatastoreRecord = { ...record, bytes: size };
    const value = bytes instanceof Blob ? bytes : record.kind === 'knnlm' ? new Blob([toArrayBuffer(bytes)]) : toArrayBuffer(bytes);
    const tx = this.db.transaction(['datastores', 'shards'], 'readwrite');
    try {
      await Promise.all([
        tx.objectStore('shards').put({ id: record.id, bytes: value }),
        tx.objectStore('datastores').put(stored),
        tx.done,
      ]);
    } catch (error) {
      // The other request's rejection would otherwise surface as an unhandled rejection.
      tx.done.catch(() => undefined);
      if (isQuotaError(error)) throw await this.quotaError(record, size);
      throw error;
    }
  }

  async delete(id: string): Promise<void> {
    const tx = this.db.transaction(['datastores', 'shards', 'settings'], 'readwrite');
    const active = await tx.objectStore('settings').get('activeDatastore');
    await Promise.all([
      tx.objectStore('datastores').delete(id),
      tx.objectStore('shards').delete(id),
      active?.value === id ? tx.objectStore('settings').delete('activeDatastore') : Promise.resolve(),
    ]);
    await tx.done;
  }

  /** The shard as a file the user can save; the bytes are the self-describing .rlds shard. */
  async exportFile(id: string): Promise<File> {
    const { record, bytes } = await this.get(id);
    return new File([toArrayBuffer(bytes)], `${slug(record.name)}.rlds`, { type: 'application/octet-stream' });
  }

  async getSetting(key: SettingKey): Promise<string | undefined> {
    return (await this.db.get('settings', key))?.value;
  }

  async setSetting(key: SettingKey, value: string): Promise<void> {
    await this.db.put('settings', { key, value });
  }

  async getActive(): Promise<string | undefined> {
    return this.getSetting('activeDatastore');
  }

  async setActive(id: string): Promise<void> {
    if (!(await this.getRecord(id))) throw new DatastoreNotFoundError(`No stored datastore with id "${id}".`);
    await this.setSetting('activeDatastore', id);
  }

  static async estimate(): Promise<StorageEstimateInfo> {
    const storage = typeof navigator !== 'undefined' ? navigator.storage : undefined;
    if (!storage?.estimate) return { usage: null, quota: null, persisted: null };
    const [estimate, persisted] = await Promise.all([
      storage.estimate(),
      storage.persisted ? storage.persisted().catch(() => null) : Promise.resolve(null),
    ]);
    return { usage: estimate.usage ?? null, quota: estimate.quota ?? null, persisted };
  }

  private async quotaError(record: DatastoreRecord, needed: number): Promise<StorageQuotaError> {
    const { usage, quota } = await DatastoreStore.estimate();
    // Browsers may report a rounded or padded quota (anti-fingerprinting), so "free" is only quoted
    // when it explains the failure.
    const free = usage !== null && quota !== null ? Math.max(0, quota - usage) : null;
    const available = free !== null && free < needed ? free : null;
    const room =
      available !== null
        ? ` Only ${formatBytes(available)} is free for this site (${formatBytes(usage ?? 0)} used of ${formatBytes(quota ?? 0)}).`
        : " The browser's storage limit for this site is reached.";
    const others = (await this.list()).filter((r) => r.id !== record.id).sort((a, b) => b.bytes - a.bytes);
    let advice: string;
    if (others.length === 0) {
      advice = 'Free disk space or allow this site more storage in the browser settings, then try again.';
    } else {
      const shortfall = available === null ? needed : needed - available;
      // Suggest the fewest datastores (largest first) whose removal frees the shortfall.
      const pick: DatastoreRecord[] = [];
      let freed = 0;
      for (const r of others) {
        if (freed >= shortfall) break;
        pick.push(r);
        freed += r.bytes;
      }
      const names = pick.map((r) => `"${r.name}" (${formatBytes(r.bytes)})`).join(', ');
      advice = `Delete ${names} to make room, or free disk space, then try again.`;
    }
    return new StorageQuotaError(
      `Not enough storage to save "${record.name}": it needs ${formatBytes(needed)}.${room} Nothing was saved. ${advice}`,
      needed,
      available,
    );
  }
}
