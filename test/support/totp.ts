import { createHmac } from 'node:crypto';

/** RFC 4648 base32 decoding (no padding needed). */
export function base32Decode(input: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const char of input.replace(/=+$/, '').toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(char);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/**
 * An independent RFC 6238 implementation for the tests (so the module's library is checked
 * against something other than itself): the code of time step `step`.
 */
export function totpAt(secret: Buffer, step: number, digits = 6, algorithm = 'sha1'): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const hmac = createHmac(algorithm, secret).update(counter).digest();
  const offset = hmac[hmac.length - 1] & 0x0f;
  const binary = hmac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

/** The current 30-second step; waits for the next one when fewer than `margin` seconds remain. */
export async function freshStep(margin = 6, period = 30): Promise<number> {
  const now = Date.now() / 1000;
  const left = period - (now % period);
  if (left < margin) await new Promise((resolve) => setTimeout(resolve, left * 1000 + 100));
  return Math.floor(Date.now() / 1000 / period);
}
