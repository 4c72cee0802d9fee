import { Injectable, type OnModuleInit } from '@nestjs/common';
import * as argon2 from '@node-rs/argon2';
import { randomBytes } from 'node:crypto';
import { InjectTwoFactorOptions } from '../options/inject.decorators.js';
import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';

// `Algorithm` and `Version` are ambient const enums, which isolated modules cannot read: their
// values are spelled here (`Algorithm.Argon2id`, `Version.V0x13`).
const ARGON2ID = 2 as argon2.Algorithm;
const VERSION_19 = 1 as argon2.Version;

/**
 * argon2id password hashing (`@node-rs/argon2`: prebuilt, no install script), stored as PHC
 * strings that any argon2 library reads, those of `argon2` (node-argon2) included. The work runs
 * on libuv's thread pool, never on the event loop, so a flood of logins does not stall other
 * requests.
 */
@Injectable()
export class PasswordHasher implements OnModuleInit {
  private dummyHash = '';
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(@InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions) {}

  /** A hash of a random password, verified when the username is unknown so timing matches. */
  async onModuleInit(): Promise<void> {
    this.dummyHash = await this.hash(randomBytes(16).toString('base64url'));
  }

  hash(password: string): Promise<string> {
    const { memoryCost, timeCost, parallelism } = this.options.password;
    return this.limit(() =>
      argon2.hash(password, {
        algorithm: ARGON2ID,
        version: VERSION_19,
        memoryCost,
        timeCost,
        parallelism,
      }),
    );
  }

  /** Checks `password` against `hash`; with no hash, pays the same cost and fails. */
  async verify(hash: string | null, password: string): Promise<boolean> {
    try {
      const ok = await this.limit(() => argon2.verify(hash ?? this.dummyHash, password));
      return ok && hash !== null;
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

  /** Runs `work` when fewer than `password.concurrency` hashes are running (first come, first served). */
  private async limit<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.options.password.concurrency) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      // Hand the slot straight to the next in line, or free it.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
