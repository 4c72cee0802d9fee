import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { ResolvedTotpOptions } from '../options/two-factor-auth.options.js';

/** GCM's recommended nonce length (NIST SP 800-38D): 96 bits. */
const IV_BYTES = 12;
/**
 * The full 128-bit tag. Node accepts shorter tags (down to 4 bytes) on decryption unless told
 * the length, and a 32-bit tag can be forged with about 2^32 tries.
 */
const TAG_BYTES = 16;

/**
 * AES-256-GCM for TOTP secrets at rest. The account id is authenticated data, so a ciphertext
 * copied onto another account's row does not decrypt. The first key encrypts; any configured
 * key decrypts, by the id stored beside the ciphertext.
 */
export class TotpCipher {
  constructor(private readonly keys: ResolvedTotpOptions['encryptionKeys']) {}

  encrypt(plaintext: string, accountId: string): { keyId: string; ciphertext: string } {
    const { id, key } = this.keys[0];
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(accountId, 'utf8'));
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const parts = [iv, cipher.getAuthTag(), data].map((b) => b.toString('base64url'));
    return { keyId: id, ciphertext: parts.join('.') };
  }

  /**
   * The plaintext, or `null` if the key is gone, the data was tampered with, or the IV or tag
   * is not of the length `encrypt` writes.
   */
  decrypt(ciphertext: string, keyId: string, accountId: string): string | null {
    const key = this.keys.find((k) => k.id === keyId)?.key;
    const parts = ciphertext.split('.');
    if (!key || parts.length !== 3) return null;
    const [iv, tag, data] = parts.map((p) => Buffer.from(p, 'base64url'));
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(accountId, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}
