import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In, LessThan, type Repository } from 'typeorm';
import { InjectTwoFactorOptions } from '../options/inject.decorators.js';
import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';
import { IssuedToken } from './issued-token.entity.js';
import { TokenFamily } from './token-family.entity.js';

/** Deletes the token rows (and families) nobody can use any more. */
@Injectable()
export class TokenPruner {
  private readonly tokens: Repository<IssuedToken>;
  private readonly families: Repository<TokenFamily>;

  constructor(
    @InjectDataSource() dataSource: DataSource,
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
  ) {
    this.tokens = dataSource.getRepository(IssuedToken);
    this.families = dataSource.getRepository(TokenFamily);
  }

  /**
   * Deletes token records that expired more than `prune.graceSeconds` ago, in batches of
   * `prune.batchSize`, and the families left empty. Returns the number of token rows deleted.
   */
  async prune(): Promise<number> {
    const nowMs = Date.now();
    const cutoff = Math.floor(nowMs / 1000) - this.options.prune.graceSeconds;
    const take = this.options.prune.batchSize;
    let deleted = 0;
    for (;;) {
      const batch = await this.tokens.find({
        select: { jti: true },
        where: { exp: LessThan(cutoff) },
        take,
      });
      if (batch.length === 0) break;
      await this.tokens.delete({ jti: In(batch.map((b) => b.jti)) });
      deleted += batch.length;
      if (batch.length < take) break;
    }
    await this.families
      .createQueryBuilder()
      .delete()
      .where('created_at < :before', { before: cutoff * 1000 })
      .andWhere(
        'NOT EXISTS (SELECT 1 FROM tfa_issued_tokens t WHERE t.family_id = tfa_token_families.id)',
      )
      .execute();
    return deleted;
  }
}
