import js from '@eslint/js';
import globals from 'globals';
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

// Module boundaries (docs/architecture in README "How it is built"). ESLint applies the *last*
// matching block's `no-restricted-imports` to a file, so every file group below gets exactly one
// merged list, and the groups do not overlap (checked by src/lint-boundaries.test.ts).
const REACT = { group: ['react', 'react-dom', 'react/*', 'react-dom/*'], message: 'core/, workers and CLIs are plain TypeScript: no React.' };
const UI_LAYERS = { group: ['**/features', '**/features/**', '**/ui', '**/ui/**', '**/client', '**/client/**', '**/App', '**/main'], message: 'core/ never imports the UI or its client.' };
const ENTRY_POINTS = { group: ['**/workers/**', '**/cli/**', '../cli/*', '../../cli/*', '../../../cli/*'], message: 'core/ is imported by workers and CLIs, never the reverse.' };
const ORT = { group: ['onnxruntime-web', 'onnxruntime-web/*', 'onnxruntime-node', 'onnxruntime-common'], message: 'Only src/core/runtime imports onnxruntime.' };
const IDB = { group: ['idb'], message: 'Only src/core/datastore/store.ts imports idb.' };
const VOY = { group: ['voy-search', 'voy-search/*'], message: 'Only src/core/retrieval/voy* imports voy-search.' };
const MINISEARCH = { group: ['minisearch', 'minisearch/*'], message: 'Only src/core/retrieval/bm25.ts imports minisearch.' };
const UI_OUTSIDE = { group: ['**/core/runtime', '**/core/runtime/**', '**/core/datastore/store', '**/core/datastore/store*', '**/workers/**'], message: 'UI code goes through src/client.' };

const restrict = (...patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });

export default tseslint.config(
  { ignores: ['dist', 'node_modules', 'models', 'public', 'test-results', '.cache'] },
  {
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    files: ['**/*.{ts,tsx}'],
    languageOptions: { ecmaVersion: 2022, globals: { ...globals.browser, ...globals.node } },
    plugins: { 'react-hooks': reactHooks },
    rules: {
      ...reactHooks.configs.recommended.rules,
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  // The UI: React, through src/client only.
  { files: ['src/features/**/*.{ts,tsx}', 'src/ui/**/*.{ts,tsx}', 'src/App.tsx', 'src/main.tsx'], rules: restrict(UI_OUTSIDE, ORT, IDB, VOY, MINISEARCH) },
  // core: pure TypeScript. Its Node-side tests may read files through the CLI helpers.
  { files: ['src/core/**/*.ts'], ignores: ['src/core/runtime/**', 'src/core/datastore/store.ts', 'src/core/retrieval/voy*', 'src/core/retrieval/bm25.ts', 'src/core/**/*.test.ts'], rules: restrict(REACT, UI_LAYERS, ENTRY_POINTS, ORT, IDB, VOY, MINISEARCH) },
  { files: ['src/core/**/*.test.ts'], ignores: ['src/core/runtime/**'], rules: restrict(REACT, UI_LAYERS, ORT, IDB, VOY, MINISEARCH) },
  { files: ['src/core/runtime/**/*.ts'], rules: restrict(REACT, UI_LAYERS, ENTRY_POINTS, IDB, VOY, MINISEARCH) },
  { files: ['src/core/datastore/store.ts'], rules: restrict(REACT, UI_LAYERS, ENTRY_POINTS, ORT, VOY, MINISEARCH) },
  { files: ['src/core/retrieval/voy*'], rules: restrict(REACT, UI_LAYERS, ENTRY_POINTS, ORT, IDB, MINISEARCH) },
  { files: ['src/core/retrieval/bm25.ts'], rules: restrict(REACT, UI_LAYERS, ENTRY_POINTS, ORT, IDB, VOY) },
  // protocol: a leaf of types and constants.
  { files: ['src/protocol/**/*.ts'], rules: restrict({ group: ['../*', '../../*', 'react', 'idb', 'voy-search', 'minisearch', 'onnxruntime-web', 'onnxruntime-web/*'], message: 'src/protocol is a leaf: it imports nothing outside itself.' }) },
  // Worker entries and CLIs drive core; they never reach libraries core owns.
  { files: ['workers/**/*.ts', 'cli/**/*.ts'], rules: restrict(REACT, ORT, IDB, VOY, MINISEARCH) },
);
