import { createHmac } from 'node:crypto';
import type { HttpTarget } from './race.js';

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

/** What `enrolTotp` leaves: a TOTP account, its secret and codes, and a live access token. */
export interface TotpAccount {
  username: string;
  password: string;
  /** The secret key the account had before TOTP (no longer a factor). */
  formerSecretKey: string;
  secret: Buffer;
  /** The step whose code confirmed the enrolment (spent, like every earlier step). */
  step: number;
  /** Ten recovery codes, of which the last has been used to log in again. */
  recoveryCodes: string[];
  accessToken: string;
}

/**
 * Turns a secret-key account of the sample app into a TOTP one over HTTP (start with
 * re-authentication, confirm at once, log in again with the last recovery code: confirming
 * ends every session). Fast enough for an enrolment TTL of a few seconds.
 */
export async function enrolTotp(
  target: HttpTarget,
  account: { username: string; password: string; secretKey: string },
): Promise<TotpAccount> {
  const { username, password, secretKey } = account;
  const login = await target
    .http()
    .post('/auth/token')
    .send({ username, password, secretKey })
    .expect(200);
  const auth = { Authorization: `Bearer ${login.body.access_token}` };
  const step = await freshStep();
  const started = await target
    .http()
    .post('/me/totp')
    .set(auth)
    .send({ password: account.password, secretKey: account.secretKey })
    .expect(200);
  const secret = base32Decode(started.body.secret);
  const confirmed = await target
    .http()
    .post('/me/totp/confirm')
    .set(auth)
    .send({ otp: totpAt(secret, step) })
    .expect(200);
  const recoveryCodes = confirmed.body.recoveryCodes as string[];
  const again = await target
    .http()
    .post('/auth/token')
    .send({
      username: account.username,
      password: account.password,
      recoveryCode: recoveryCodes[9],
    })
    .expect(200);
  return {
    username: account.username,
    password: account.password,
    formerSecretKey: account.secretKey,
    secret,
    step,
    recoveryCodes,
    accessToken: again.body.access_token,
  };
}
