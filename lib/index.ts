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
} from './two-factor-auth.options.js';
export {
  TwoFactorAuthConfigError,
  TWO_FACTOR_AUTH_BOUNDS,
} from './two-factor-auth.options-validation.js';
export { validateTwoFactorAuthOptions } from './two-factor-auth.validate.js';
export {
  TWO_FACTOR_AUTH_ENTITIES,
  TWO_FACTOR_AUTH_MIGRATIONS,
  TWO_FACTOR_STRATEGY,
  JWT_TWO_FACTOR_STRATEGY,
  ACCESS_TOKEN_TYP,
  REFRESH_TOKEN_TYP,
} from './two-factor-auth.constants.js';
export { Account, type SecondFactorKind } from './accounts/account.entity.js';
export { SecretKey } from './secret-keys/secret-key.entity.js';
export { IssuedToken, type IssuedTokenType } from './tokens/issued-token.entity.js';
export { LoginAttempt } from './lockout/login-attempt.entity.js';
export { TokenFamily } from './tokens/token-family.entity.js';
export { RevocationRecord, type RevocationKind } from './revocation/revocation-record.entity.js';
export { AccountService, type CreatedAccount } from './accounts/account.service.js';
export { SecretKeyService } from './secret-keys/secret-key.service.js';
export { TokenService } from './tokens/token.service.js';
export { TotpService, type TotpEnrolment, type TotpStatusView } from './totp/totp.service.js';
export { TotpCredential, type TotpStatus } from './totp/totp-credential.entity.js';
export { RecoveryCode } from './totp/recovery-code.entity.js';
export {
  TWO_FACTOR_EVENT_PREFIX,
  type TwoFactorEventMap,
  type TwoFactorEventName,
} from './events/two-factor.events.js';
export type { TokenPair, AuthenticatedAccount, RevocationReason } from './tokens/token.types.js';
export { TwoFactorStrategy } from './strategies/two-factor.strategy.js';
export { JwtTwoFactorStrategy } from './strategies/jwt-two-factor.strategy.js';
export { JwtTwoFactorGuard, type GuardedRequest } from './guards/jwt-two-factor.guard.js';
export { TwoFactorCredentialsGuard } from './guards/two-factor-credentials.guard.js';
export {
  ReauthenticationGuard,
  type ReauthenticationRequest,
} from './guards/reauthentication.guard.js';
export type { AccountFactors, LoginCredentials } from './accounts/login.service.js';
export { TokenThrottlerGuard } from './guards/token-throttler.guard.js';
export { CurrentAccount } from './decorators/current-account.decorator.js';
export { Public, IS_PUBLIC_KEY } from './decorators/public.decorator.js';
export {
  ErrorResponseDto,
  TokenPairDto,
  ReauthenticationDto,
} from './tokens/dto/token-request.dto.js';
export { TwoFactorExceptionFilter } from './common/two-factor-exception.filter.js';
export {
  TwoFactorAuthError,
  InvalidCredentialsError,
  InvalidRefreshTokenError,
  LockedError,
  NotFoundError,
  ConflictError,
  InvalidInputError,
  UnavailableError,
} from './core/errors.js';
export { toHttpException } from './http/error-mapping.js';
export { TwoFactorAuthErrorFilter } from './http/core-error.filter.js';
