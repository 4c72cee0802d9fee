import { Injectable } from '@nestjs/common';
import { InjectTwoFactorOptions } from '../../core/options/inject.decorators.js';
import type { ResolvedTwoFactorAuthOptions } from '../../core/options/two-factor-auth.options.js';
import {
  DpopNonceRequiredError,
  InvalidDpopProofError,
  UnavailableError,
} from '../../core/errors.js';
import { DpopProofVerifier } from '../../core/dpop/dpop-proof.verifier.js';
import {
  UNAVAILABLE,
  type AccessDecision,
  type DpopRefusal,
} from '../../core/tokens/access-token.verifier.js';
import { dpopProofOf, dpopTarget, type DpopHttpRequest } from './dpop-request.util.js';

/** `Authorization: DPoP …` (the scheme is case-insensitive); the token is parsed elsewhere. */
const DPOP_SCHEME = /^dpop /i;

/**
 * The DPoP side of a guarded request (RFC 9449 §7): a token bound to a key (`cnf.jkt`) is
 * accepted only with the `DPoP` scheme and a proof of this request by that key; the `DPoP`
 * scheme is accepted only with a bound token; with `dpop.required` an unbound token is refused.
 * A token without a binding, sent as `Bearer`, passes through unchanged.
 */
@Injectable()
export class DpopAccess {
  private readonly required: boolean;
  private readonly publicUrl: string | undefined;
  private readonly invalidToken: AccessDecision;
  private readonly invalidProof: AccessDecision;
  /** The proof check of each request with a bound token. */
  private readonly proven = new WeakMap<
    object,
    { token: string; decision: Promise<AccessDecision> }
  >();

  constructor(
    @InjectTwoFactorOptions() options: ResolvedTwoFactorAuthOptions,
    private readonly proofs: DpopProofVerifier,
  ) {
    this.required = options.dpop.required;
    this.publicUrl = options.dpop.publicUrl;
    this.invalidToken = this.refusal('invalid_token');
    this.invalidProof = this.refusal('invalid_dpop_proof');
  }

  /** `decision` about `token`, confirmed (or refused) by the request's scheme and proof. */
  confirm(
    decision: AccessDecision,
    request: DpopHttpRequest,
    token: string | null,
  ): AccessDecision | Promise<AccessDecision> {
    if (decision.outcome === 'unavailable') return decision;
    const dpopScheme = DPOP_SCHEME.test(request.headers.authorization as string);
    const jkt = decision.outcome === 'accepted' ? decision.principal.jkt : undefined;
    if (jkt === undefined || token === null) {
      return dpopScheme || this.required ? this.invalidToken : decision;
    }
    if (!dpopScheme) return this.invalidToken;
    // Proven once per request: a route guarded twice (a global guard and its own) must not
    // check its proof again, or the second check would take it for a replay.
    const known = this.proven.get(request);
    if (known && known.token === token) return known.decision;
    const proven = this.prove(decision, request, token, jkt);
    this.proven.set(request, { token, decision: proven });
    return proven;
  }

  private async prove(
    decision: AccessDecision,
    request: DpopHttpRequest,
    accessToken: string,
    jkt: string,
  ): Promise<AccessDecision> {
    try {
      const target = dpopTarget(request, this.publicUrl);
      await this.proofs.verify(dpopProofOf(request), { ...target, accessToken, jkt });
      return decision;
    } catch (error) {
      if (error instanceof InvalidDpopProofError) return this.invalidProof;
      if (error instanceof DpopNonceRequiredError) {
        return this.refusal('use_dpop_nonce', error.nonce);
      }
      if (error instanceof UnavailableError) return UNAVAILABLE;
      throw error;
    }
  }

  private refusal(error: DpopRefusal['error'], nonce?: string): AccessDecision {
    const dpop: DpopRefusal = { error, algs: this.proofs.algs, ...(nonce ? { nonce } : {}) };
    return Object.freeze({ outcome: 'refused', dpop: Object.freeze(dpop) });
  }
}
