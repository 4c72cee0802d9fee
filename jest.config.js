/**
 * Jest runs in native ESM mode (NestJS 12 ships ESM only, and Jest can only
 * require ESM itself on Node >= 24.9). ts-jest transpiles each file on its
 * own; type-checking is done once by `npm run typecheck`.
 */
export default {
  testEnvironment: 'node',
  rootDir: '.',
  roots: ['<rootDir>/test', '<rootDir>/lib'],
  testRegex: '.*\\.(spec|e2e-spec)\\.ts$',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^nestjs-rest-2fa$': '<rootDir>/lib/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true }],
    'node_modules/@nestjs/throttler/.+\\.js$': '<rootDir>/test/setup/esm-from-cjs.transformer.cjs',
  },
  transformIgnorePatterns: ['/node_modules/(?!@nestjs/throttler/)'],
  setupFiles: ['<rootDir>/test/setup/env.ts'],
  setupFilesAfterEnv: ['<rootDir>/test/setup/nest-globals.ts'],
  globalSetup: '<rootDir>/test/setup/global-setup.js',
  testTimeout: 30000,
  maxWorkers: 2,
};
