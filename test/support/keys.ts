import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKey } from '../../lib/cli/keys.command.js';
import type { TwoFactorJwk, TwoFactorJwsAlgorithm } from '../../lib/index.js';

/** A fresh private JWK (or HMAC secret) for `alg`, with `kid`: the CLI's generator, 2048-bit RSA. */
export function generateJwk(alg: TwoFactorJwsAlgorithm, kid: string): TwoFactorJwk {
  return generateKey(alg, kid, { modulusLength: 2048 });
}

/** Writes a JWK Set file and returns its path. */
export function writeJwks(dir: string, keys: TwoFactorJwk[], name = 'jwks.json'): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify({ keys }));
  return file;
}
