import { describe, expect, it } from 'vitest';
import { followPointers } from './retomaton';

describe('RetoMaton pointers', () => {
  it('keep the next entry of every neighbour whose value is the written token, never past the datastore end', () => {
    // values[i] = the token after entry i
    const values = Int32Array.from([5, 7, 5, 9, 5]);
    expect(Array.from(followPointers(Int32Array.from([0, 1, 2, 4]), values, 5))).toEqual([1, 3]);
    expect(Array.from(followPointers(Int32Array.from([3]), values, 9))).toEqual([4]);
    expect(Array.from(followPointers(Int32Array.from([1, 3]), values, 5))).toEqual([]);
  });
});
