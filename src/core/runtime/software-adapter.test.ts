import { describe, expect, it } from 'vitest';
import { softwareAdapter } from './runtime';

describe('softwareAdapter', () => {
  it('names software adapters and passes hardware ones', () => {
    expect(softwareAdapter({ info: { vendor: 'google', architecture: 'swiftshader' } })).toBe('swiftshader');
    expect(softwareAdapter({ info: { vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' } })).toBe('llvmpipe');
    expect(softwareAdapter({ isFallbackAdapter: true, info: { vendor: 'nvidia' } })).toBe('a fallback adapter');
    expect(softwareAdapter({ info: { vendor: 'nvidia', architecture: 'ada' } })).toBeNull();
    expect(softwareAdapter({})).toBeNull();
  });
});
