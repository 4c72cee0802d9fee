import { jest } from '@jest/globals';
import { MemoryThrottlerStorage } from '../../lib/http/throttle/memory-throttler.storage.js';

describe('MemoryThrottlerStorage', () => {
  let storage: MemoryThrottlerStorage;

  beforeEach(() => {
    jest.useFakeTimers({ now: new Date('2026-12-02T10:00:00Z') });
    storage = new MemoryThrottlerStorage();
  });
  afterEach(() => {
    storage.onApplicationShutdown();
    jest.useRealTimers();
  });

  const hit = (key = 'client-a', ttl = 60_000, limit = 3) =>
    storage.increment(key, ttl, limit, ttl, 'default');

  it('counts each client on its own and blocks past the limit until the window ends', async () => {
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await hit());
    expect(answers.map((a) => [a.totalHits, a.isBlocked])).toEqual([
      [1, false],
      [2, false],
      [3, false],
      [4, true],
    ]);
    expect(answers[3].timeToBlockExpire).toBe(60);
    expect((await hit('client-b')).isBlocked).toBe(false);

    jest.advanceTimersByTime(59_000);
    const late = await hit();
    expect([late.isBlocked, late.timeToBlockExpire]).toEqual([true, 1]);
    jest.advanceTimersByTime(1_000);
    const next = await hit();
    expect([next.totalHits, next.isBlocked, next.timeToExpire]).toEqual([1, false, 60]);
  });

  it('keeps one number per client whatever the limit: 300,000 hits in one window neither throw nor block under a limit of 1,000,000', async () => {
    let last = await hit('busy', 60_000, 1_000_000);
    for (let i = 1; i < 300_000; i++) last = await hit('busy', 60_000, 1_000_000);
    expect([last.totalHits, last.isBlocked]).toEqual([300_000, false]);
  });

  it('forgets the clients whose window has ended', async () => {
    await hit('a', 1_000);
    await hit('b', 1_000);
    await hit('c', 120_000);
    expect(storage.size).toBe(3);
    jest.advanceTimersByTime(1_001);
    expect(storage.size).toBe(1);
  });
});
