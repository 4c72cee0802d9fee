#!/usr/bin/env node
import { existsSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { TwoFactorAuthConfigError } from '../core/options/two-factor-auth.options-validation.js';
import {
  generateKey,
  readJwkSet,
  retire,
  rotate,
  UsageError,
  writeJwkSet,
} from './keys.command.js';

const USAGE = `nestjs-rest-2fa — operator tooling

  nestjs-rest-2fa keys generate [--alg ES256] [--kid ID] [--out FILE]
      A new JWK Set with one private key (printed, or written to FILE, which must not exist).
  nestjs-rest-2fa keys rotate FILE [--alg ALG] [--kid ID]
      Puts a new signing key first in FILE; old keys stay and keep verifying.
  nestjs-rest-2fa keys retire FILE KID
      Removes a key that no longer signs; tokens it signed stop working.

Algorithms: HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA`;

/** Runs the CLI; returns the exit code. Exported for tests. */
export function run(
  argv: string[],
  out: (text: string) => void,
  err: (text: string) => void,
): number {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        alg: { type: 'string' },
        kid: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    const [group, command, ...rest] = positionals;
    if (values.help || group !== 'keys' || !command) {
      (values.help ? out : err)(USAGE);
      return values.help ? 0 : 2;
    }
    if (command === 'generate') {
      const set = { keys: [generateKey(values.alg ?? 'ES256', values.kid)] };
      if (values.out) {
        if (existsSync(values.out)) {
          throw new UsageError(
            `${values.out} exists; use \`keys rotate ${values.out}\` to add a key to it`,
          );
        }
        writeJwkSet(values.out, set, { replace: false });
        out(`Wrote ${values.out} (kid ${set.keys[0].kid}). Point JWT_KEYS_FILE at it.`);
      } else {
        out(JSON.stringify(set, null, 2));
      }
      return 0;
    }
    if (command === 'rotate' && rest.length === 1) {
      const next = rotate(readJwkSet(rest[0]), values.alg, values.kid);
      writeJwkSet(rest[0], next, { replace: true });
      out(
        `New signing key ${next.keys[0].kid} is first in ${rest[0]}; restart the instances to use it.`,
      );
      return 0;
    }
    if (command === 'retire' && rest.length === 2) {
      writeJwkSet(rest[0], retire(readJwkSet(rest[0]), rest[1]), { replace: true });
      out(`Removed ${rest[1]} from ${rest[0]}; restart the instances: its tokens stop working.`);
      return 0;
    }
    err(USAGE);
    return 2;
  } catch (error) {
    if (
      error instanceof UsageError ||
      error instanceof TwoFactorAuthConfigError ||
      error instanceof TypeError
    ) {
      err(`Error: ${error.message}`);
      return 2;
    }
    throw error;
  }
}

// Run only when executed (also through the node_modules/.bin symlink), not when imported.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  process.exitCode = run(
    process.argv.slice(2),
    (text) => process.stdout.write(`${text}\n`),
    (text) => process.stderr.write(`${text}\n`),
  );
}
