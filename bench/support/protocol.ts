/** Messages between the bench runner and its fixture processes (over the fork IPC channel). */

export type FixtureRequest =
  | { id: number; cmd: 'stats'; gc?: boolean; resetDelay?: boolean }
  | { id: number; cmd: 'mark' }
  | { id: number; cmd: 'stop' };

export type FixtureReply =
  | { type: 'ready'; info: Record<string, unknown> }
  | { type: 'fatal'; message: string }
  | { type: 'reply'; id: number; result?: Record<string, unknown>; error?: string };

/** What a fixture's `stats` command answers. */
export interface FixtureStats {
  heapUsed: number;
  rss: number;
  gcExposed: boolean;
  /** How late the event loop ran a 5 ms timer, in ms (the interval minus the 5 ms). */
  eventLoopDelay: { p50: number; p99: number; max: number };
  /** Two-factor fixtures only: revoked `jti`s held by the revocation view. */
  revokedInView?: number;
  /** Two-factor fixtures only: tokens in AccessTokenVerifier's cache of verified tokens. */
  verifiedCached?: number;
}
