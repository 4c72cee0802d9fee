import { Injectable } from '@nestjs/common';
import { timingSafeEqual, createHash } from 'node:crypto';
import { InjectTwoFactorOptions } from '../options/inject.decorators.js';
import { KeyRing } from '../keys/key-ring.js';
import { ACCESS_TOKEN_TYP, REFRESH_TOKEN_TYP } from './token.constants.js';
import type { ResolvedTwoFactorAuthOptions } from '../options/two-factor-auth.options.js';
import { checkClaims } from './claims.util.js';
import { TokenRecords } from './token-records.js';

/** RFC 7662 §2.2 response. */
export interface IntrospectionResponse {
  active: boolean;
  token_type?: 'access_token' | 'refresh_token';
  sub?: string;
  username?: string;
  iss?: string;
  aud?: string;
  jti?: string;
  iat?: number;
  nbf?: number;
  exp?: number;
  /** For a DPoP-bound token: the thumbprint of its key (RFC 9449 §6.2). */
  cnf?: { jkt: string };
}

/**
 * Token introspection (RFC 7662) for resource servers that cannot verify tokens themselves.
 * A token is active when its signature, claims and record all hold right now: it is read from
 * the database every time (no cache), so the answer is authoritative.
 */
@Injectable()
export class IntrospectionService {
  constructor(
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    private readonly keyRing: KeyRing,
    private readonly records: TokenRecords,
  ) {}

  /** Whether introspection is configured. */
  get enabled(): boolean {
    return this.options.introspection !== false;
  }

  /** True when `id`/`secret` name a configured client (constant-time on the secret). */
  authenticateClient(id: string, secret: string): boolean {
    const clients = this.options.introspection ? this.options.introspection.clients : [];
    const presented = digest(secret);
    let ok = false;
    for (const client of clients) {
      const match = timingSafeEqual(digest(client.secret), presented);
      ok = ok || (match && client.id === id);
    }
    return ok;
  }

  async introspect(token: string): Promise<IntrospectionResponse> {
    const inactive = { active: false };
    const access = this.keyRing.verify(token, ACCESS_TOKEN_TYP);
    const jws = access ?? this.keyRing.verify(token, REFRESH_TOKEN_TYP);
    const claims = jws && checkClaims(jws.payload, this.options);
    if (!jws || !claims) return inactive;
    const live = await this.records.live(claims, jws.header.kid, access ? 'access' : 'refresh');
    if (!live) return inactive;
    const { account } = live;
    return {
      active: true,
      token_type: access ? 'access_token' : 'refresh_token',
      sub: claims.sub,
      username: account.username,
      iss: claims.iss,
      ...(live.aud ? { aud: live.aud } : {}),
      jti: claims.jti,
      iat: claims.iat,
      nbf: claims.nbf,
      exp: claims.exp,
      ...(claims.jkt === undefined ? {} : { cnf: { jkt: claims.jkt } }),
    };
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
