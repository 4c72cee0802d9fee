import { Injectable, type OnModuleInit } from '@nestjs/common';
import argon2 from 'argon2';
import { randomBytes } from 'node:crypto';
import { InjectTwoFactorOptions } from '../common/inject.decorators.js';
import type { ResolvedTwoFactorAuthOptions } from '../two-factor-auth.options.js';

/**
 * argon2id password hashing. The work runs on libuv's thread pool, never on the event loop,
 * so a flood of logins does not stall other requests.
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
      argon2.hash(password, { type: argon2.argon2id, memoryCost, timeCost, parallelism }),
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

  /** True when `hash` was made with other parameters than the configured ones. */
  needsRehash(hash: string): boolean {
    const { memoryCost, timeCost, parallelism } = this.options.password;
    try {
      return argon2.needsRehash(hash, { memoryCost, timeCost, parallelism });
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
