import js from '@eslint/js';
import globals from 'globals';
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

// Module boundaries (../shared/ARCHITECTURE.md): the UI reaches workers only through src/client;
// src/core never touches React or the DOM; one module owns each outside library.
const uiRestrictions = {
  patterns: [
    { group: ['**/core/runtime/**', '**/core/datastore/store*'], message: 'UI code goes through src/client.' },
    { group: ['onnxruntime-web', 'onnxruntime-web/*', 'idb', 'voy-search'], message: 'UI code goes through src/client.' },
  ],
};

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
  {
    files: ['src/features/**/*.{ts,tsx}', 'src/ui/**/*.{ts,tsx}', 'src/App.tsx', 'src/main.tsx'],
    rules: { 'no-restricted-imports': ['error', uiRestrictions] },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['react', 'react-dom', '**/features/**', '**/ui/**', '**/client/**'], message: 'core/ is pure TypeScript.' }],
      }],
    },
  },
  {
    files: ['src/core/**/*.ts', 'workers/**/*.ts', 'cli/**/*.ts'],
    ignores: ['src/core/runtime/**'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'onnxruntime-web', message: 'Only src/core/runtime imports onnxruntime-web.' },
                { name: 'onnxruntime-web/webgpu', message: 'Only src/core/runtime imports onnxruntime-web.' }],
        patterns: [{ group: ['react', 'react-dom'], message: 'core/ is pure TypeScript.' }],
      }],
    },
  },
);
