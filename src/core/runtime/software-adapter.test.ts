import { describe, expect, it } from 'vitest';
import { softwareAdapter, warmupVerdict } from './runtime';

describe('softwareAdapter', () => {
  it('names software adapters and passes hardware ones', () => {
    expect(softwareAdapter({ info: { vendor: 'google', architecture: 'swiftshader' } })).toBe('swiftshader');
    expect(softwareAdapter({ info: { vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' } })).toBe('llvmpipe');
    expect(softwareAdapter({ isFallbackAdapter: true, info: { vendor: 'nvidia' } })).toBe('a fallback adapter');
    expect(softwareAdapter({ info: { vendor: 'nvidia', architecture: 'ada' } })).toBeNull();
    expect(softwareAdapter({})).toBeNull();
  });
});

describe('Auto between two real backends', () => {
  it('keeps the backend whose warm-up runs were faster, and says both times', () => {
    const slowGpu = warmupVerdict({ webgpu: [9, 30, 12], wasm: [4, 5, 40] });
    expect(slowGpu.backend).toBe('wasm');
    expect(slowGpu.reason).toBe('WASM was faster in the warm-up (WebGPU 12.0 ms, WASM 5.0 ms per warm-up run)');
    const fastGpu = warmupVerdict({ webgpu: [2, 2.5, 3], wasm: [4, 5, 1] });
    expect(fastGpu.backend).toBe('webgpu');
    expect(fastGpu.reason).toMatch(/^WebGPU was faster in the warm-up \(WebGPU 2\.5 ms, WASM 4\.0 ms/);
    expect(warmupVerdict({ webgpu: [3, 3], wasm: [3, 3] }).backend).toBe('webgpu');
  });
});
