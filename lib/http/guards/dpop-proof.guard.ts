import {
  createParamDecorator,
  Injectable,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { InjectTwoFactorOptions } from '../../core/options/inject.decorators.js';
import type { ResolvedTwoFactorAuthOptions } from '../../core/options/two-factor-auth.options.js';
import { InvalidDpopProofError } from '../../core/errors.js';
import { DpopProofVerifier } from '../../core/dpop/dpop-proof.verifier.js';
import { dpopProofOf, dpopTarget, type DpopHttpRequest } from '../dpop/dpop-request.util.js';

/** The thumbprint each token request's proof was checked for. */
const PROVEN = new WeakMap<object, string>();

/**
 * Checks the `DPoP` proof of a token request (RFC 9449 §5), before the credentials are: a
 * request without one passes (its tokens will be Bearer tokens) unless `dpop.required`; a bad
 * proof answers `400` `invalid_dpop_proof`, or `use_dpop_nonce` with a `DPoP-Nonce` header.
 * The module's `/token` and `/refresh` routes use it; an application's own token route can too,
 * reading the key with `@DpopJkt()` and passing it to `TokenService.issue(account, { jkt })`.
 */
@Injectable()
export class DpopProofGuard implements CanActivate {
  constructor(
    @InjectTwoFactorOptions() private readonly options: ResolvedTwoFactorAuthOptions,
    private readonly proofs: DpopProofVerifier,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<DpopHttpRequest>();
    const proof = dpopProofOf(request);
    if (proof === undefined) {
      if (this.options.dpop.required) throw new InvalidDpopProofError();
      return true;
    }
    const target = dpopTarget(request, this.options.dpop.publicUrl);
    PROVEN.set(request, await this.proofs.verify(proof, target));
    return true;
  }
}

/**
 * The thumbprint of the key whose DPoP proof `DpopProofGuard` accepted for this request, or
 * `undefined` when the request came without a proof: `TokenService.issue(account, { jkt })`.
 */
export const DpopJkt = createParamDecorator(
  (_data: unknown, context: ExecutionContext): string | undefined =>
    PROVEN.get(context.switchToHttp().getRequest<object>()),
);
