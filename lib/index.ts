export { TwoFactorAuthModule } from './two-factor-auth.module.js';
export {
  TWO_FACTOR_AUTH_MODULE_OPTIONS,
  type TwoFactorAuthForRootOptions,
  type TwoFactorAuthForRootAsyncOptions,
} from './two-factor-auth.module-definition.js';
export {
  TWO_FACTOR_AUTH_DEFAULTS,
  type TwoFactorAuthModuleOptions,
  type TwoFactorAuthModuleExtras,
  type TwoFactorAuthOptionsFactory,
  type TwoFactorJwk,
  type TwoFactorJwsAlgorithm,
  type TwoFactorLockoutOptions,
  type TwoFactorThrottleOptions,
  type TwoFactorRoutesOptions,
  type TwoFactorRevocationOptions,
  type TwoFactorPruneOptions,
  type TwoFactorPasswordOptions,
  type TwoFactorTotpOptions,
  type TwoFactorEncryptionKey,
  type TwoFactorIntrospectionClient,
  type TwoFactorRedisClient,
  type TwoFactorAccountsOptions,
  type TwoFactorAccountFields,
  type TwoFactorUsernameOptions,
  type TwoFactorClaims,
  type TwoFactorEntityClass,
  type TwoFactorDpopOptions,
  type TwoFactorDpopAlgorithm,
} from './core/options/two-factor-auth.options.js';
export {
  TwoFactorAuthConfigError,
  TWO_FACTOR_AUTH_BOUNDS,
} from './core/options/two-factor-auth.options-validation.js';
export { validateTwoFactorAuthOptions } from './two-factor-auth.validate.js';
export {
  TWO_FACTOR_AUTH_ENTITIES,
  TWO_FACTOR_AUTH_MIGRATIONS,
  twoFactorAuthSchema,
  type TwoFactorAuthSchema,
  type TwoFactorAuthSchemaOptions,
} from './core/database/schema.js';
export { AccountState } from './core/accounts/account-state.entity.js';
export type { AccountRecord } from './core/accounts/account.store.js';
export { normaliseUsername, type NormalisedUsername } from './core/accounts/username.util.js';
export { PasswordHasher } from './core/passwords/password-hasher.service.js';
export { TWO_FACTOR_STRATEGY, JWT_TWO_FACTOR_STRATEGY } from './http/strategies/strategy-names.js';
export { ACCESS_TOKEN_TYP, REFRESH_TOKEN_TYP } from './core/tokens/token.constants.js';
export { Account, type SecondFactorKind } from './core/accounts/account.entity.js';
export { SecretKey } from './core/secret-keys/secret-key.entity.js';
export { IssuedToken, type IssuedTokenType } from './core/tokens/issued-token.entity.js';
export { LoginAttempt } from './core/lockout/login-attempt.entity.js';
export { TokenFamily } from './core/tokens/token-family.entity.js';
export {
  RevocationRecord,
  type RevocationKind,
} from './core/revocation/revocation-record.entity.js';
export {
  AccountService,
  type CreatedAccount,
  type InTransaction,
} from './flows/accounts/account.service.js';
export { SecretKeyService } from './flows/secret-keys/secret-key.service.js';
export { TokenService } from './core/tokens/token.service.js';
export { TotpService, type TotpEnrolment, type TotpStatusView } from './flows/totp/totp.service.js';
export { TotpCredential, type TotpStatus } from './core/totp/totp-credential.entity.js';
export { RecoveryCode } from './core/totp/recovery-code.entity.js';
export {
  TWO_FACTOR_EVENT_PREFIX,
  type TwoFactorEventMap,
  type TwoFactorEventName,
} from './core/events/two-factor.events.js';
export type {
  TokenPair,
  AuthenticatedAccount,
  RevocationReason,
  IssueOptions,
  AccountChangeOptions,
  ChangeSession,
} from './core/tokens/token.types.js';
export type { DpopRefusal } from './core/tokens/access-token.verifier.js';
export { DpopProofGuard, DpopJkt } from './http/guards/dpop-proof.guard.js';
export { DpopProofVerifier, type DpopProofTarget } from './core/dpop/dpop-proof.verifier.js';
export { TwoFactorStrategy } from './http/strategies/two-factor.strategy.js';
export { JwtTwoFactorStrategy } from './http/strategies/jwt-two-factor.strategy.js';
export { JwtTwoFactorGuard, type GuardedRequest } from './http/guards/jwt-two-factor.guard.js';
export { TwoFactorCredentialsGuard } from './http/guards/two-factor-credentials.guard.js';
export {
  ReauthenticationGuard,
  type ReauthenticationRequest,
} from './http/guards/reauthentication.guard.js';
export type { AccountFactors, LoginCredentials } from './flows/login/login.service.js';
export type { IssueFor } from './core/tokens/token-issuer.service.js';
export { TokenThrottlerGuard } from './http/guards/token-throttler.guard.js';
export { CurrentAccount } from './http/decorators/current-account.decorator.js';
export { Public, IS_PUBLIC_KEY } from './http/decorators/public.decorator.js';
export {
  ErrorResponseDto,
  TokenPairDto,
  ReauthenticationDto,
} from './http/dto/token-request.dto.js';
export { TwoFactorExceptionFilter } from './http/errors/two-factor-exception.filter.js';
export {
  TwoFactorAuthError,
  InvalidCredentialsError,
  InvalidRefreshTokenError,
  LockedError,
  NotFoundError,
  ConflictError,
  InvalidInputError,
  UnavailableError,
  InvalidDpopProofError,
  DpopNonceRequiredError,
} from './core/errors.js';
export { toHttpException } from './http/errors/error-mapping.js';
export { TwoFactorAuthErrorFilter } from './http/errors/core-error.filter.js';
