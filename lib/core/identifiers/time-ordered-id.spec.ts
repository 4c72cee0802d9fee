import { timeOrderedId } from './time-ordered-id.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('timeOrderedId', () => {
  it('is a UUID version 7 whose first 48 bits are the time in milliseconds (RFC 9562 §5.7)', () => {
    const at = Date.UTC(2026, 11, 3, 18, 30, 0, 123);
    const id = timeOrderedId(at);
    expect(id).toMatch(UUID_V7);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(at);
  });

  it('sorts by time: an id made a millisecond later sorts after, as text and in an index', () => {
    const start = Date.now();
    const ids = Array.from({ length: 1000 }, (_, i) => timeOrderedId(start + i));
    expect([...ids].sort()).toEqual(ids);
  });

  it('keeps 74 random bits: ids of the same millisecond differ, across refills of the pool', () => {
    const at = Date.now();
    const ids = Array.from({ length: 5000 }, () => timeOrderedId(at));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(UUID_V7);
    // The random part is not a counter: the ids of one millisecond are not in their order.
    expect([...ids].sort()).not.toEqual(ids);
    // Every bit of the random part takes both values over the run.
    const randomHex = ids.map((id) => id.replace(/-/g, '').slice(16));
    const ones = new Set<number>();
    for (const hex of randomHex) {
      const bits = BigInt(`0x${hex}`) & ((1n << 62n) - 1n);
      for (let b = 0; b < 62; b++) if ((bits >> BigInt(b)) & 1n) ones.add(b);
    }
    expect(ones.size).toBe(62);
  });
});
