import { ConfigurableModuleBuilder } from '@nestjs/common';
import {
  TWO_FACTOR_AUTH_DEFAULTS,
  type TwoFactorAuthModuleExtras,
  type TwoFactorAuthModuleOptions,
} from './core/options/two-factor-auth.options.js';

export const {
  ConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN: TWO_FACTOR_AUTH_MODULE_OPTIONS,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<TwoFactorAuthModuleOptions>({ moduleName: 'TwoFactorAuth' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createTwoFactorAuthOptions')
  .setExtras<TwoFactorAuthModuleExtras>(
    {
      routes: TWO_FACTOR_AUTH_DEFAULTS.routes,
      isGlobal: TWO_FACTOR_AUTH_DEFAULTS.isGlobal,
      accounts: undefined,
    },
    (definition, extras) => ({ ...definition, global: extras.isGlobal === true }),
  )
  .build();

/** Argument of `TwoFactorAuthModule.forRoot()`. */
export type TwoFactorAuthForRootOptions = typeof OPTIONS_TYPE;
/** Argument of `TwoFactorAuthModule.forRootAsync()`: `useFactory`, `useClass` or `useExisting`. */
export type TwoFactorAuthForRootAsyncOptions = typeof ASYNC_OPTIONS_TYPE;
