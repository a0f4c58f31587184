// voy-search ships types for its entry point only; its glue module (imported directly so the WASM
// can be instantiated by hand, see voy.ts) has the same API plus the hook that receives the WASM.
declare module 'voy-search/voy_search_bg.js' {
  export * from 'voy-search';
  export function __wbg_set_wasm(exports: WebAssembly.Exports): void;
}
