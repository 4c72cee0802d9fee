import { createCipheriv, randomBytes } from 'node:crypto';
import { TotpCipher } from '../../lib/core/totp/totp-cipher.js';

describe('TotpCipher (AES-256-GCM for TOTP secrets at rest)', () => {
  const key = randomBytes(32);
  const cipher = new TotpCipher([{ id: 'k1', key }]);
  const account = 'account-1';
  const secret = 'JBSWY3DPEHPK3PXP';

  /** The three base64url parts of a ciphertext as buffers. */
  function parts(ciphertext: string): [Buffer, Buffer, Buffer] {
    const [iv, tag, data] = ciphertext.split('.').map((p) => Buffer.from(p, 'base64url'));
    return [iv, tag, data];
  }
  const join = (...buffers: Buffer[]) => buffers.map((b) => b.toString('base64url')).join('.');

  /** A ciphertext made by hand with any IV and tag length, as an attacker could store it. */
  function encryptWith(ivBytes: number, tagBytes: number): string {
    const iv = randomBytes(ivBytes);
    const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: tagBytes });
    c.setAAD(Buffer.from(account, 'utf8'));
    const data = Buffer.concat([c.update(secret, 'utf8'), c.final()]);
    return join(iv, c.getAuthTag(), data);
  }

  it('decrypts what it encrypts, with a 12-byte IV and a 16-byte tag', () => {
    const { keyId, ciphertext } = cipher.encrypt(secret, account);
    expect(keyId).toBe('k1');
    const [iv, tag] = parts(ciphertext);
    expect(iv).toHaveLength(12);
    expect(tag).toHaveLength(16);
    expect(cipher.decrypt(ciphertext, keyId, account)).toBe(secret);
  });

  it.each([4, 8, 12, 15])('refuses the genuine tag truncated to %i bytes', (length) => {
    const { ciphertext } = cipher.encrypt(secret, account);
    const [iv, tag, data] = parts(ciphertext);
    expect(cipher.decrypt(join(iv, tag.subarray(0, length), data), 'k1', account)).toBeNull();
  });

  it('refuses a short tag even when it was made that short at encryption', () => {
    expect(cipher.decrypt(encryptWith(12, 4), 'k1', account)).toBeNull();
  });

  it.each([8, 16, 32])('refuses an IV of %i bytes', (ivBytes) => {
    expect(cipher.decrypt(encryptWith(ivBytes, 16), 'k1', account)).toBeNull();
  });

  it('refuses another account, a changed byte, an unknown key and a malformed value', () => {
    const { ciphertext } = cipher.encrypt(secret, account);
    expect(cipher.decrypt(ciphertext, 'k1', 'account-2')).toBeNull();
    const [iv, tag, data] = parts(ciphertext);
    data[0] ^= 1;
    expect(cipher.decrypt(join(iv, tag, data), 'k1', account)).toBeNull();
    expect(cipher.decrypt(ciphertext, 'k2', account)).toBeNull();
    expect(cipher.decrypt(`${ciphertext}.extra`, 'k1', account)).toBeNull();
    expect(cipher.decrypt('not-a-ciphertext', 'k1', account)).toBeNull();
  });
});
