import { Injectable } from '@nestjs/common';
import { createHmac, hkdfSync, type KeyObject } from 'node:crypto';
import { KeyRing } from '../keys/key-ring.js';
import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';
import { InjectTwoFactorOptions } from '../options/inject.decorators.js';

/**
 * Keyed hashes of identifiers (normalised usernames) for the lockout table and audit events.
 * An unkeyed hash of a username is reversed by a dictionary, including the passwords people
 * type into the username field; an HMAC under a server secret is not. The key is derived from
 * `secretKeyPepper` when set (stable across signing-key rotations), else from the signing key.
 */
@Injectable()
export class IdentifierHasher {
  private readonly key: Buffer;

  constructor(@InjectTwoFactorOptions() options: ResolvedTwoFactorAuthOptions, keyRing: KeyRing) {
    const material = options.secretKeyPepper ?? keyMaterial(keyRing.signer.signingKey);
    this.key = Buffer.from(
      hkdfSync('sha256', material, 'nestjs-rest-2fa', 'identifier-hash/v1', 32),
    );
  }

  /** HMAC-SHA-256 (hex) of `identifier` under the derived key. */
  hash(identifier: string): string {
    return createHmac('sha256', this.key).update(identifier, 'utf8').digest('hex');
  }
}

function keyMaterial(key: KeyObject | null): Buffer {
  // The ring refuses a public-only first key at start-up, so the signer always has one.
  if (!key) throw new Error('The signing key has no private part');
  return key.type === 'secret' ? key.export() : key.export({ format: 'der', type: 'pkcs8' });
}
