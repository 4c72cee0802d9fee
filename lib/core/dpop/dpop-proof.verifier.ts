import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { InjectTwoFactorOptions } from '../options/inject.decorators.js';
import type {
  ResolvedTwoFactorAuthOptions,
  TwoFactorDpopAlgorithm,
} from '../options/two-factor-auth.options.js';
import { DpopNonceRequiredError, InvalidDpopProofError } from '../errors.js';
import { KeyRing } from '../keys/key-ring.js';
import { decodeBase64url, parseJsonObject, verifyInputOffThread } from '../keys/jws.util.js';
import { dpopKeyOf, type DpopKey } from './dpop-key.js';
import { DpopNonces } from './dpop-nonces.js';
import { DpopReplayStore } from './dpop-replay.store.js';
import { normaliseHtu } from './htu.util.js';

/** What a proof must match: the request it comes with, and the token it is presented with. */
export interface DpopProofTarget {
  /** The request's method as sent (`GET`, `POST`); `htm` must equal it. */
  method: string;
  /** The URL the client addressed (scheme, host, path); `htu` must equal it, normalised. */
  url: string;
  /** The access token the proof comes with (RFC 9449 §7): `ath` must be its SHA-256. */
  accessToken?: string;
  /** The thumbprint the proof's key must have: the `cnf.jkt` of the token it comes with. */
  jkt?: string;
}

/** The `typ` of a DPoP proof (RFC 9449 §4.2). */
const PROOF_TYP = 'dpop+jwt';
/** Longest proof accepted: a 8192-bit RSA key in the header fits well within it. */
const MAX_PROOF_LENGTH = 8192;
const COMPACT = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/;
/**
 * Longest proof header accepted (base64url): the header of an 8192-bit RSA key fits, with room
 * for a few members more.
 */
const MAX_HEADER_LENGTH = 2600;
/** Parsed proof headers remembered: one client sends the same header with every proof. */
const HEADER_CACHE_SIZE = 10_000;

interface ProofHeader {
  alg: TwoFactorDpopAlgorithm;
  key: DpopKey;
}

function parseJson(segment: string): Record<string, unknown> | null {
  const bytes = decodeBase64url(segment);
  return bytes && parseJsonObject(bytes);
}

/**
 * Checks DPoP proofs (RFC 9449 §4.3): one compact JWS with `typ` `dpop+jwt`, an allowed
 * asymmetric `alg`, a public `jwk` that verifies its signature, `htm` and `htu` of the request,
 * an `iat` within `dpop.proofMaxAge` (and at most `clockTolerance` ahead), `ath` when a token
 * comes with it, the server nonce when `dpop.nonce` is on, and a `jti` never accepted before
 * (the last check, so a refused proof uses nothing up). The answer is the key's thumbprint.
 */
@Injectable()
export class DpopProofVerifier {
  /** The accepted algorithms, as `WWW-Authenticate: DPoP algs="…"` announces them. */
  readonly algs: string;
  private readonly headers = new Map<string, ProofHeader>();
  private readonly allowed: ReadonlySet<string>;
  private readonly nonces: DpopNonces | null;
  private readonly maxAge: number;
  private readonly tolerance: number;

  constructor(
    @InjectTwoFactorOptions() options: ResolvedTwoFactorAuthOptions,
    keyRing: KeyRing,
    private readonly replays: DpopReplayStore,
  ) {
    const { dpop } = options;
    this.allowed = new Set(dpop.algorithms);
    this.algs = dpop.algorithms.join(' ');
    this.maxAge = dpop.proofMaxAge;
    this.tolerance = options.clockTolerance;
    this.nonces =
      dpop.nonce && keyRing.signer.signingKey
        ? new DpopNonces(keyRing.signer.signingKey, dpop.nonceLifetime, options.clockTolerance)
        : null;
  }

  /** A fresh server nonce for a `DPoP-Nonce` header, when `dpop.nonce` is on. */
  nonce(): string | undefined {
    return this.nonces?.issue();
  }

  /**
   * The thumbprint of the key that signed `proof` (the `DPoP` header's value), when the proof
   * is good for `target`.
   * @throws InvalidDpopProofError for a missing, malformed, replayed or non-matching proof.
   * @throws DpopNonceRequiredError when nonces are on and the proof lacks a current one.
   * @throws UnavailableError when the shared replay record (Redis) cannot answer.
   */
  async verify(proof: unknown, target: DpopProofTarget): Promise<string> {
    const now = Date.now() / 1000;
    const parts =
      typeof proof === 'string' && proof.length <= MAX_PROOF_LENGTH ? COMPACT.exec(proof) : null;
    const header = parts && this.header(parts[1]);
    const claims = header && parseJson(parts[2]);
    const { jti, htm, htu, iat, ath } = claims ?? {};
    // The claims first (cheap), the signature after: a proof that cannot fit costs no
    // signature check.
    const fits =
      header !== null &&
      typeof jti === 'string' &&
      jti.length > 0 &&
      jti.length <= 256 &&
      htm === target.method &&
      typeof htu === 'string' &&
      typeof iat === 'number' &&
      Number.isFinite(iat) &&
      now - iat <= this.maxAge &&
      iat - now <= this.tolerance &&
      (target.jkt === undefined || target.jkt === header.key.jkt) &&
      (target.accessToken === undefined ||
        ath === createHash('sha256').update(target.accessToken).digest('base64url'));
    if (!fits) throw new InvalidDpopProofError();
    // The request's URL must be one (a host like `[:::]` or a port of 99999 is not); clients
    // send it as it was addressed, and the same string needs no second normalising.
    const expected = normaliseHtu(target.url);
    if (expected === null || (htu !== target.url && normaliseHtu(htu) !== expected)) {
      throw new InvalidDpopProofError();
    }
    const signature = decodeBase64url(parts![3]);
    const algorithm = header.alg === 'Ed25519' ? 'EdDSA' : header.alg;
    const input = `${parts![1]}.${parts![2]}`;
    if (!signature || !(await verifyInputOffThread(algorithm, header.key.key, input, signature))) {
      throw new InvalidDpopProofError();
    }
    // Only a header whose signature checked out is remembered: no flood of made-up headers can
    // fill the cache or push real clients' entries out.
    this.remember(parts![1], header);
    if (this.nonces && !this.nonces.accepts(claims!.nonce)) {
      throw new DpopNonceRequiredError(this.nonces.issue());
    }
    // Remembered until every instance would refuse the proof as too old anyway (their clocks
    // may differ by the tolerance).
    const expiresAt = Math.ceil((iat + this.maxAge + this.tolerance + 1) * 1000);
    if (!(await this.replays.claim(header.key.jkt, jti, expiresAt))) {
      throw new InvalidDpopProofError();
    }
    return header.key.jkt;
  }

  /** The proof's header, checked and its key imported, or `null`. */
  private header(segment: string): ProofHeader | null {
    const known = this.headers.get(segment);
    if (known) return known;
    if (segment.length > MAX_HEADER_LENGTH) return null;
    const fields = parseJson(segment);
    if (!fields || fields.typ !== PROOF_TYP || 'crit' in fields) return null;
    const alg = fields.alg;
    if (typeof alg !== 'string' || !this.allowed.has(alg)) return null;
    const key = dpopKeyOf(alg as TwoFactorDpopAlgorithm, fields.jwk);
    return key ? { alg: alg as TwoFactorDpopAlgorithm, key } : null;
  }

  private remember(segment: string, header: ProofHeader): void {
    if (this.headers.has(segment)) return;
    if (this.headers.size >= HEADER_CACHE_SIZE) {
      const oldest = this.headers.keys().next().value;
      if (oldest !== undefined) this.headers.delete(oldest);
    }
    this.headers.set(segment, header);
  }
}
