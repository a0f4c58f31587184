/**
 * Datastores: shard format (shard.ts), the queryable Datastore (datastore.ts), the builder and its
 * input parsers. The IndexedDB store (store.ts) is imported on its own: it needs a browser.
 */
export * from './errors';
export * from './checksum';
export * from './shard';
export * from './datastore';
export * from './builder';
export * from './parse';
