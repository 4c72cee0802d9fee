import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import * as argon2 from '@node-rs/argon2';
import { randomBytes } from 'node:crypto';
import { InjectTwoFactorOptions } from '../options/inject.decorators.js';
import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';
import { Argon2Pool } from './argon2-pool.js';

/**
 * The nice value of the hashing threads (Linux): the event loop (0) wins the CPU about nine
 * times out of ten against them, so guarded requests stay fast while logins pour in.
 */
const HASHING_NICE = 10;

// `Algorithm` and `Version` are ambient const enums, which isolated modules cannot read: their
// values are spelled here (`Algorithm.Argon2id`, `Version.V0x13`).
const ARGON2ID = 2 as argon2.Algorithm;
const VERSION_19 = 1 as argon2.Version;

/**
 * argon2id password hashing (`@node-rs/argon2`: prebuilt, no install script), stored as PHC
 * strings that any argon2 library reads, those of `argon2` (node-argon2) included. The work runs
 * on `password.concurrency` threads of its own at a lower priority, never on the event loop, so
 * a flood of logins uses the CPU that other requests leave and does not stall them.
 */
@Injectable()
export class PasswordHasher implements OnModuleInit, OnApplicationShutdown {
  private dummyHash = '';
  private readonly pool: Argon2Pool;

  constructor(@InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions) {
    this.pool = new Argon2Pool(options.password.concurrency, HASHING_NICE);
  }

  /** A hash of a random password, verified when the username is unknown so timing matches. */
  async onModuleInit(): Promise<void> {
    this.dummyHash = await this.hash(randomBytes(16).toString('base64url'));
  }

  /** Stops the hashing threads. */
  async onApplicationShutdown(): Promise<void> {
    await this.pool.close();
  }

  /** The PHC string of `password` under the configured parameters. */
  hash(password: string): Promise<string> {
    const { memoryCost, timeCost, parallelism } = this.options.password;
    return this.pool.hash(password, {
      algorithm: ARGON2ID,
      version: VERSION_19,
      memoryCost,
      timeCost,
      parallelism,
    });
  }

  /**
   * Checks `password` against `hash`. Without a hash, or with one that is no argon2 PHC string
   * (an empty column, a legacy bcrypt hash), it pays the same cost against a dummy and fails:
   * a wrong password takes as long whatever the account holds.
   */
  async verify(hash: string | null, password: string): Promise<boolean> {
    const usable = hash !== null && hash.startsWith('$argon2');
    try {
      const ok = await this.pool.verify(usable ? hash : this.dummyHash, password);
      return ok && usable;
    } catch {
      return false;
    }
  }

  /**
   * True when `hash` was made with other parameters than the configured ones, or is not an
   * argon2id (version 19) hash at all.
   */
  needsRehash(hash: string): boolean {
    const { memoryCost, timeCost, parallelism } = this.options.password;
    try {
      const made = argon2.parseOptions(hash);
      return (
        made.algorithm !== ARGON2ID ||
        made.version !== VERSION_19 ||
        made.memoryCost !== memoryCost ||
        made.timeCost !== timeCost ||
        made.parallelism !== parallelism
      );
    } catch {
      return true;
    }
  }
}
