import { BoundedCache } from '../../lib/bounded-cache.js';
import { printable, quoted } from '../../lib/printable.js';

describe('printable', () => {
  it('escapes what could forge a log line or drive a terminal', () => {
    expect(printable('a\nb\r\tc')).toBe('a\\nb\\r\\tc');
    expect(printable('\u001b[31mred\u0007')).toBe('\\x1b[31mred\\x07');
    expect(printable('x\u0085y\u2028z\u202edir\u2066')).toBe('x\\x85y\\u2028z\\u202edir\\u2066');
    expect(printable('plain Ünïcödé ✓ "quoted" \\')).toBe('plain Ünïcödé ✓ "quoted" \\');
  });

  it('cuts long values with an ellipsis, never in the middle of a surrogate pair', () => {
    expect(printable('x'.repeat(1_000_000))).toBe(`${'x'.repeat(200)}…`);
    expect(printable('abcdef', 3)).toBe('abc…');
    expect(printable(`ab😀`, 3)).toBe('ab…');
    expect(quoted('\n'.repeat(500), 4)).toBe('"\\n\\n\\n\\n…"');
    expect(printable(42)).toBe('42');
  });
});

describe('BoundedCache', () => {
  it('holds at most its entries and its bytes, forgetting the oldest first', () => {
    const cache = new BoundedCache<string, number>(3, 100);
    for (const key of ['a', 'b', 'c', 'd']) cache.set(key, key.charCodeAt(0), 10);
    expect([cache.get('a'), cache.get('b'), cache.get('d')]).toEqual([undefined, 98, 100]);
    expect(cache.size).toBe(3);
    cache.set('big', 1, 80);
    expect(cache.byteSize).toBeLessThanOrEqual(100);
    expect([cache.get('b'), cache.get('c'), cache.get('d'), cache.get('big')]).toEqual([undefined, 99, 100, 1]);
  });

  it('keeps nothing larger than its whole budget, and counts a replaced entry once', () => {
    const cache = new BoundedCache<string, string>(10, 100);
    expect(cache.set('huge', 'v', 101)).toBe('v');
    expect(cache.get('huge')).toBeUndefined();
    cache.set('k', 'one', 60);
    cache.set('k', 'two', 60);
    expect([cache.get('k'), cache.size, cache.byteSize]).toEqual(['two', 1, 60]);
    cache.clear();
    expect([cache.size, cache.byteSize]).toEqual([0, 0]);
  });
});
