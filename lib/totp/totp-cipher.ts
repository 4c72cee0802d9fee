import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { ResolvedTotpOptions } from '../two-factor-auth.options.js';

/**
 * AES-256-GCM for TOTP secrets at rest. The account id is authenticated data, so a ciphertext
 * copied onto another account's row does not decrypt. The first key encrypts; any configured
 * key decrypts, by the id stored beside the ciphertext.
 */
export class TotpCipher {
  constructor(private readonly keys: ResolvedTotpOptions['encryptionKeys']) {}

  encrypt(plaintext: string, accountId: string): { keyId: string; ciphertext: string } {
    const { id, key } = this.keys[0];
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(accountId, 'utf8'));
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const parts = [iv, cipher.getAuthTag(), data].map((b) => b.toString('base64url'));
    return { keyId: id, ciphertext: parts.join('.') };
  }

  /** The plaintext, or `null` if the key is gone or the data was tampered with. */
  decrypt(ciphertext: string, keyId: string, accountId: string): string | null {
    const key = this.keys.find((k) => k.id === keyId)?.key;
    const [iv, tag, data] = ciphertext.split('.').map((p) => Buffer.from(p, 'base64url'));
    if (!key || !iv || !tag || !data) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(Buffer.from(accountId, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}
