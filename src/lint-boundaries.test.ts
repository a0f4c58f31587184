/**
 * The import boundaries hold only while ESLint enforces them: feed it forbidden imports, as the file
 * groups of eslint.config.js would see them, and expect an error for each (and none for an allowed one).
 */
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint();

async function restricted(filePath: string, code: string): Promise<boolean> {
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages.some((m) => m.ruleId === 'no-restricted-imports');
}

describe('lint boundaries', () => {
  it.each([
    ['src/core/models/probe.ts', "import { x } from '../../client';"],
    ['src/core/models/probe.ts', "import { x } from '../../features/compare/settings';"],
    ['src/core/models/probe.ts', "import React from 'react';"],
    ['src/core/models/probe.ts', "import { x } from '../../../cli/datastore-node';"],
    ['src/core/models/probe.ts', "import * as ort from 'onnxruntime-web';"],
    ['src/core/knnlm/probe.ts', "import { openDB } from 'idb';"],
    ['src/core/knnlm/probe.ts', "import * as voy from 'voy-search';"],
    ['src/core/engine/probe.ts', "import MiniSearch from 'minisearch';"],
    ['src/features/compare/probe.tsx', "import MiniSearch from 'minisearch';"],
    ['src/features/compare/probe.tsx', "import { Runtime } from '../../core/runtime';"],
    ['src/features/compare/probe.tsx', "import { openDB } from 'idb';"],
    ['src/protocol/probe.ts', "import { x } from '../core/models';"],
    ['workers/probe.ts', "import * as ort from 'onnxruntime-web';"],
    ['cli/probe.ts', "import { openDB } from 'idb';"],
  ])('%s: %s is an error', async (file, code) => {
    expect(await restricted(file, code)).toBe(true);
  });

  it.each([
    ['src/core/runtime/probe.ts', "import * as ort from 'onnxruntime-web';"],
    ['src/core/datastore/store.ts', "import { openDB } from 'idb';"],
    ['src/core/retrieval/bm25.ts', "import MiniSearch from 'minisearch';"],
    ['src/features/compare/probe.tsx', "import { x } from '../../client';"],
    ['workers/probe.ts', "import { x } from '../src/core/models';"],
  ])('%s: %s is allowed', async (file, code) => {
    expect(await restricted(file, code)).toBe(false);
  });
});
