import { randomFillSync } from 'node:crypto';

/** Random bytes drawn in batches, as node:crypto's `randomUUID` does: one call per 256 ids. */
const POOL = Buffer.alloc(16 * 256);
let used = POOL.length;

/**
 * A new UUID version 7 (RFC 9562 §5.7): the Unix time in milliseconds in its first 48 bits,
 * then 74 random bits. The module's token ids (`jti`, a family's id) are made this way so that
 * the rows written one after the other sit next to each other in the primary-key index: a
 * random (version 4) key lands each insert on a page of its own, and every such page is
 * written again at each commit. The random part keeps ids unguessable among those of the same
 * millisecond; an id is no secret anyway (it is in the signed token, beside `iat`).
 */
export function timeOrderedId(now = Date.now()): string {
  if (used === POOL.length) {
    randomFillSync(POOL);
    used = 0;
  }
  const bytes = POOL.subarray(used, used + 16);
  used += 16;
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
