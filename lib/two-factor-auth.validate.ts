import { KeyRing } from './core/keys/key-ring.js';
import { resolveTwoFactorAuthOptions } from './core/options/two-factor-auth.options-validation.js';
import type { TwoFactorAuthModuleOptions } from './core/options/two-factor-auth.options.js';

/**
 * Checks module options (every option, and every key of the key ring) exactly as the module
 * will at start-up, and throws `TwoFactorAuthConfigError` naming the first bad one. Call it
 * before `NestFactory.create()` to fail before anything connects to a database.
 */
export function validateTwoFactorAuthOptions(options: TwoFactorAuthModuleOptions): void {
  KeyRing.fromJwks(resolveTwoFactorAuthOptions(options).keys);
}
