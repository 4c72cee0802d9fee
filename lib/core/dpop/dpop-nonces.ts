import { createHmac, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';

const TAG_BYTES = 16;
const NONCE = /^[A-Za-z0-9_-]{27}$/;

/**
 * Server nonces for DPoP proofs (RFC 9449 §8), without shared state: a nonce is the time it was
 * made and an HMAC of that time, under a key derived (HKDF) from the signing key. Every instance
 * with the same key ring makes and accepts the same nonces; rotating the signing key retires
 * them, and clients simply get a new one with their next `use_dpop_nonce` answer.
 */
export class DpopNonces {
  private readonly key: Buffer;

  constructor(
    signingKey: KeyObject,
    private readonly lifetimeSeconds: number,
    private readonly toleranceSeconds: number,
  ) {
    const material =
      signingKey.type === 'secret'
        ? signingKey.export()
        : signingKey.export({ format: 'der', type: 'pkcs8' });
    this.key = Buffer.from(
      hkdfSync('sha256', material, 'nestjs-rest-2fa', 'dpop-nonce', 32) as ArrayBuffer,
    );
  }

  /** A nonce made now. */
  issue(nowSeconds = Math.floor(Date.now() / 1000)): string {
    const time = Buffer.alloc(4);
    time.writeUInt32BE(nowSeconds >>> 0);
    return Buffer.concat([time, this.tag(time)]).toString('base64url');
  }

  /** Whether `nonce` was made by this key ring no longer than the lifetime ago. */
  accepts(nonce: unknown, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
    if (typeof nonce !== 'string' || !NONCE.test(nonce)) return false;
    const bytes = Buffer.from(nonce, 'base64url');
    if (bytes.length !== 4 + TAG_BYTES) return false;
    const time = bytes.subarray(0, 4);
    if (!timingSafeEqual(bytes.subarray(4), this.tag(time))) return false;
    const age = nowSeconds - time.readUInt32BE();
    return age <= this.lifetimeSeconds && age >= -this.toleranceSeconds;
  }

  private tag(time: Buffer): Buffer {
    return createHmac('sha256', this.key).update(time).digest().subarray(0, TAG_BYTES);
  }
}
