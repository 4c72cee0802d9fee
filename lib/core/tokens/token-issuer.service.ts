import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AccountStore } from '../accounts/account.store.js';
import { timeOrderedId } from '../identifiers/time-ordered-id.js';
import { TokenRecords, type RefreshRecord } from './token-records.js';
import { RawQuery, type ChainedWrite } from '../database/raw-query.js';
import { TwoFactorAuthConfigError } from '../options/two-factor-auth.options-validation.js';
import { InjectTwoFactorOptions } from '../options/inject.decorators.js';
import {
  InvalidCredentialsError,
  InvalidDpopProofError,
  InvalidRefreshTokenError,
} from '../errors.js';
import { retryOnConflict } from '../database/conflict-retry.js';
import { AuditEvents } from '../events/audit-events.service.js';
import { KeyRing } from '../keys/key-ring.js';
import { ACCESS_TOKEN_TYP, REFRESH_TOKEN_TYP } from './token.constants.js';
import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';
import { checkClaims, RESERVED_CLAIMS, type ClaimSet } from './claims.util.js';
import { IssuedToken, type IssuedTokenType } from './issued-token.entity.js';
import { TokenRevoker } from './token-revoker.service.js';
import type { IssueOptions, TokenPair } from './token.types.js';

/**
 * The account a login's tokens are for: an `AccountRecord` as the login read it (its epoch and
 * row, so that a revoke-all since then withdraws the tokens), or just `{ id }` to read it now.
 */
export interface IssueFor {
  id: string;
  tokenEpoch?: number;
  row?: object;
}

/** `issuePair`'s answer when the family (or its account) died before the new pair was live. */
const FAMILY_DEAD = Symbol('family dead');

/** The columns of a token record, in the order of `recordValues`. */
const RECORD_COLUMNS =
  'jti, account_id, type, iss, sub, aud, kid, iat, nbf, exp, family_id, parent_jti, ' +
  'replaced_by, revoked_at, revoked_reason, created_at';
const RECORD_VALUES = RECORD_COLUMNS.split(',')
  .map(() => '?')
  .join(', ');

function recordValues(row: IssuedToken): unknown[] {
  return [
    row.jti,
    row.accountId,
    row.type,
    row.iss,
    row.sub,
    row.aud,
    row.kid,
    row.iat,
    row.nbf,
    row.exp,
    row.familyId,
    row.parentJti,
    row.replacedBy,
    row.revokedAt,
    row.revokedReason,
    row.createdAt,
  ];
}

/** What a token record is made from. */
interface RecordSpec {
  type: IssuedTokenType;
  jti: string;
  accountId: string;
  iat: number;
  ttl: number;
  familyId: string;
  parentJti: string | null;
  now: number;
}

/**
 * Issues tokens: a login's first pair, and a new pair for a spent refresh token. Every issued
 * token has a row first.
 *
 * Races with revocation are settled by write-then-check: a login or refresh writes its new rows,
 * then reads its family and the account's token epoch; a logout (family) or revoke-all (epoch)
 * writes its mark first, then revokes the rows (see `TokenRevoker`). Whichever order the
 * database sees, either the revocation finds the new rows, or the issuer sees the mark and
 * withdraws them: once a revocation has answered, no token it covers refreshes, on any instance.
 * Access tokens are refused at once by the instance that revoked them, and by the others as
 * their `RevocationView` learns of it (Redis at once, the database poll within `syncInterval`).
 */
@Injectable()
export class TokenIssuer implements OnApplicationShutdown {
  private readonly logger = new Logger('TwoFactorAuth');
  private readonly raw: RawQuery;

  constructor(
    @InjectDataSource() dataSource: DataSource,
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    private readonly keyRing: KeyRing,
    private readonly revoker: TokenRevoker,
    private readonly events: AuditEvents,
    private readonly accounts: AccountStore,
    private readonly records: TokenRecords,
  ) {
    this.raw = new RawQuery(dataSource);
  }

  /** Stops the SQLite writer thread, once the writes already sent to it are committed. */
  async onApplicationShutdown(): Promise<void> {
    await this.raw.closeWriter();
  }

  /**
   * Issues an access token and a refresh token for `account`, starting a new family
   * (a login). Both rows are committed before the tokens are returned. Pass the account as
   * read when its factors were checked (with `tokenEpoch`): a revoke-all that lands between
   * that check and the issue withdraws the new tokens.
   * With `options.jkt` the pair is bound to that DPoP key (RFC 9449).
   * @throws InvalidCredentialsError when the account was revoked, disabled or deleted meanwhile.
   */
  async issue(account: IssueFor, options: IssueOptions = {}): Promise<TokenPair> {
    const read =
      account.tokenEpoch !== undefined && account.row !== undefined
        ? null
        : await this.accounts.findById(account.id);
    const epoch = account.tokenEpoch ?? read?.tokenEpoch;
    const row = account.row ?? read?.row;
    if (epoch === undefined || row === undefined) throw new InvalidCredentialsError();
    const claims = await this.claimsOf(row);
    const familyId = timeOrderedId();
    // The family and its first pair in one chain: one commit on SQLite.
    const issued = await this.unlessAccountGone(account.id, () =>
      this.issuePair(account.id, familyId, null, claims, timeOrderedId(), options.jkt, {
        sql:
          'INSERT INTO tfa_token_families (id, account_id, epoch, revoked_at, created_at) ' +
          'VALUES (?, ?, ?, NULL, ?)',
        params: [familyId, account.id, epoch, Date.now()],
        need: 1,
      }),
    );
    if (issued === null || issued === FAMILY_DEAD) throw new InvalidCredentialsError();
    const { pair, accessJti } = issued;
    this.events.emit('token.issued', { accountId: account.id, jti: accessJti, familyId });
    return pair;
  }
  /**
   * Spends `refreshToken` and returns a new pair in the same family. A refresh token works
   * once: presenting a spent one again is taken as theft and revokes the whole family.
   * Of two requests racing with one token, at most one wins; a logout or revoke-all racing
   * with it always wins.
   *
   * A refresh token bound to a DPoP key needs `options.jkt`, the thumbprint of that key's proof
   * (checked before anything is read or spent, so a thief without the key changes nothing), and
   * its new pair is bound to the same key. An unbound refresh token refreshed with a proof gets
   * a pair bound to the proof's key.
   * @throws InvalidRefreshTokenError for any token that is not a live refresh token.
   * @throws InvalidDpopProofError for a bound refresh token without a proof by its key.
   */
  async refresh(refreshToken: string, options: IssueOptions = {}): Promise<TokenPair> {
    // The signature on the thread pool: the event loop serves other requests meanwhile.
    const verified = await this.keyRing.verifyOffThread(refreshToken, REFRESH_TOKEN_TYP);
    const claims = verified ? checkClaims(verified.payload, this.options) : null;
    if (!claims) throw new InvalidRefreshTokenError();
    if (claims.jkt !== undefined && claims.jkt !== options.jkt) throw new InvalidDpopProofError();
    const jkt = options.jkt;
    // One read first: the record, its family and its account. A token that cannot be refreshed
    // is refused before anything is spent or computed; the claims are computed before the
    // token is spent, so a failing `claims` hook never costs the client its session.
    const record = await this.records.refreshRecord(claims.jti);
    const account = record?.liveAccount;
    const usable =
      record !== null &&
      record.type === 'refresh' &&
      record.sub === claims.sub &&
      record.revokedAt === null &&
      account != null &&
      claims.iat >= Math.floor(account.tokensValidAfter / 1000);
    if (!usable || !account) {
      await this.refuseSpent(claims.jti, record);
      throw new InvalidRefreshTokenError();
    }
    const extra = await this.claimsOfAccount(account.id, record.accountRow);
    const newRefreshJti = timeOrderedId();
    // Spending the token and writing its successors are one chain (one commit on SQLite); the
    // successors are written only if this request is the one that spent it.
    const issued = await this.unlessAccountGone(account.id, () =>
      this.issuePair(account.id, record.familyId, claims.jti, extra, newRefreshJti, jkt, {
        sql:
          "UPDATE tfa_issued_tokens SET revoked_at = ?, revoked_reason = 'rotated', replaced_by = ? " +
          "WHERE jti = ? AND type = 'refresh' AND sub = ? AND revoked_at IS NULL",
        params: [Date.now(), newRefreshJti, claims.jti, claims.sub],
        need: 1,
      }),
    );
    if (issued === null) {
      // Spent by a racing request with the same token, or revoked meanwhile: read it again.
      await this.refuseSpent(claims.jti, await this.records.refreshRecord(claims.jti));
      throw new InvalidRefreshTokenError();
    }
    if (issued === FAMILY_DEAD) throw new InvalidRefreshTokenError();
    const { pair, accessJti } = issued;
    this.events.emit('token.refreshed', {
      accountId: account.id,
      jti: accessJti,
      familyId: record.familyId,
    });
    return pair;
  }

  /**
   * A refresh token presented after it was rotated is taken as theft: its whole family is
   * revoked. Any other refused token (revoked, of a dead family) changes nothing.
   */
  private async refuseSpent(jti: string, record: RefreshRecord | null): Promise<void> {
    if (record?.type !== 'refresh' || record.replacedBy === null) return;
    this.logger.warn(`Refresh token re-used; revoking its family ${record.familyId}`);
    this.events.emit('refresh.reused', {
      accountId: record.accountId,
      familyId: record.familyId,
      jti,
    });
    // The re-used token says why in its record, for whoever investigates.
    await retryOnConflict(() =>
      this.raw.run("UPDATE tfa_issued_tokens SET revoked_reason = 'reuse-detected' WHERE jti = ?", [
        jti,
      ]),
    );
    await this.revoker.revokeFamily(record.familyId, 'reuse-detected');
  }

  /** Signature, `typ` and registered claims of a token (no revocation check). */
  verifyClaims(token: string, typ: string): ClaimSet | null {
    const verified = this.keyRing.verify(token, typ);
    return verified ? checkClaims(verified.payload, this.options) : null;
  }
  /**
   * `claimsOf` the account's row when there is a `claims` hook: `row` if the refresh's read
   * brought it (the default store), else read now.
   */
  private async claimsOfAccount(
    accountId: string,
    row: object | null,
  ): Promise<Record<string, unknown>> {
    if (!this.options.claims) return {};
    if (row) return this.claimsOf(row);
    const account = await this.accounts.findById(accountId);
    if (!account) throw new InvalidRefreshTokenError();
    return this.claimsOf(account.row);
  }

  /**
   * The application's claims for `row` (the `claims` option), checked: a plain object without
   * registered names. A hook that breaks the rule fails the request with an error naming the
   * claim: it is a bug of the application, never something a client can cause.
   */
  private async claimsOf(row: object): Promise<Record<string, unknown>> {
    const hook = this.options.claims;
    if (!hook) return {};
    const claims: unknown = await hook(row);
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
      throw new TwoFactorAuthConfigError('claims', 'must return a plain object of claims.');
    }
    for (const name of Object.keys(claims)) {
      if (RESERVED_CLAIMS.has(name)) {
        throw new TwoFactorAuthConfigError(
          'claims',
          `returned "${name}", a registered claim the module sets itself; give the application's claim another name.`,
        );
      }
    }
    return claims as Record<string, unknown>;
  }

  /**
   * Runs `write`; if it fails because the account was deleted meanwhile (a foreign key), the
   * answer is the one failure of a refused login or refresh, not a server error.
   */
  private async unlessAccountGone<T>(accountId: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (await this.accounts.states().exists({ where: { id: accountId } })) throw error;
      throw new InvalidRefreshTokenError();
    }
  }
  /** Revokes rows written for tokens that are never handed out. */
  private async withdraw(jtis: string[]): Promise<void> {
    await retryOnConflict(() =>
      this.raw.run(
        "UPDATE tfa_issued_tokens SET revoked_at = ?, revoked_reason = 'withdrawn' " +
          `WHERE jti IN (${jtis.map(() => '?').join(', ')}) AND revoked_at IS NULL`,
        [Date.now(), ...jtis],
      ),
    );
  }
  /**
   * Writes the records of a new pair after `first` (a family's row, or the spending of the
   * refresh token it replaces), checks that the family is still live, and signs the pair.
   * `null`, with nothing written, when `first` did not change its one row; `FAMILY_DEAD`, the
   * new rows withdrawn, when the check fails (the spent token stays spent: a refresh refused
   * here is never worth retrying). A logout, re-use or revoke-all racing with it either revoked
   * the new rows, or left its mark for the check to find: never neither (on SQLite the check
   * runs in the writes' own transaction).
   */
  private async issuePair(
    accountId: string,
    familyId: string,
    parentJti: string | null,
    claims: Record<string, unknown>,
    refreshJti: string,
    jkt: string | undefined,
    first: ChainedWrite,
  ): Promise<{ pair: TokenPair; accessJti: string } | typeof FAMILY_DEAD | null> {
    const { accessTokenTtl, refreshTokenTtl } = this.options;
    const now = Date.now();
    const iat = Math.floor(now / 1000);
    const common = { accountId, iat, familyId, parentJti, now };
    const access = this.record({
      ...common,
      type: 'access',
      jti: timeOrderedId(),
      ttl: accessTokenTtl,
    });
    const refresh = this.record({
      ...common,
      type: 'refresh',
      jti: refreshJti,
      ttl: refreshTokenTtl,
    });
    // RFC 9449 §6.1: the confirmation of a bound pair, set after the application's claims.
    const cnf = jkt === undefined ? {} : { cnf: { jkt } };
    const inputs = [
      this.keyRing.signingInput(ACCESS_TOKEN_TYP, payloadOf(access, { ...claims, ...cnf })),
      this.keyRing.signingInput(REFRESH_TOKEN_TYP, payloadOf(refresh, cnf)),
    ];
    // ES256 and EdDSA pairs are signed by the SQLite writer thread right after its commit, off
    // the event loop, where there is one; never before the records are committed.
    const spec = this.keyRing.signerSpec;
    const written = await this.raw.checkedChain(
      [
        first,
        {
          sql: `INSERT INTO tfa_issued_tokens (${RECORD_COLUMNS}) VALUES (${RECORD_VALUES}), (${RECORD_VALUES})`,
          params: [...recordValues(access), ...recordValues(refresh)],
        },
      ],
      this.records.familyCheck(familyId),
      spec ? { ...spec, inputs } : undefined,
    );
    if (written.holds === null) return null;
    if (!written.holds) {
      await this.withdraw([access.jti, refresh.jti]);
      return FAMILY_DEAD;
    }
    const { signatures } = written;
    // Else both signatures here (on the thread pool, for the algorithms that cost more than the hop).
    const [accessToken, refreshToken] = signatures
      ? inputs.map((input, i) => this.keyRing.withSignature(input, signatures[i]))
      : await Promise.all(inputs.map((input) => this.keyRing.signInputOffThread(input)));
    const pair: TokenPair = {
      access_token: accessToken,
      token_type: jkt === undefined ? 'Bearer' : 'DPoP',
      expires_in: accessTokenTtl,
      refresh_token: refreshToken,
      refresh_expires_in: refreshTokenTtl,
    };
    return { pair, accessJti: access.jti };
  }
  /**
   * A new token's record. Built by hand, not with the repository's `create` (which walks the
   * entity's metadata: tens of µs a call, twice per login and refresh, for the same object).
   */
  private record(spec: RecordSpec): IssuedToken {
    return Object.assign(new IssuedToken(), {
      jti: spec.jti,
      accountId: spec.accountId,
      type: spec.type,
      iss: this.options.issuer,
      sub: spec.accountId,
      aud: this.options.audience ?? null,
      kid: this.keyRing.signer.kid,
      iat: spec.iat,
      nbf: spec.iat,
      exp: spec.iat + spec.ttl,
      familyId: spec.familyId,
      parentJti: spec.parentJti,
      replacedBy: null,
      revokedAt: null,
      revokedReason: null,
      createdAt: spec.now,
    });
  }
}

/** The claims of a token: the application's `claims` first, the registered ones from its record. */
function payloadOf(row: IssuedToken, claims: Record<string, unknown>): Record<string, unknown> {
  return {
    ...claims,
    iss: row.iss,
    sub: row.sub,
    ...(row.aud ? { aud: row.aud } : {}),
    iat: row.iat,
    nbf: row.nbf,
    exp: row.exp,
    jti: row.jti,
  };
}
