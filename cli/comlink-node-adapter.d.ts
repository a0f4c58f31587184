// Node's ESM resolver needs the adapter's file extension; its types sit beside it without one.
declare module 'comlink/dist/esm/node-adapter.mjs' {
  export { default } from 'comlink/dist/esm/node-adapter';
}
