/**
 * Jest runs in native ESM mode (NestJS 12 ships ESM only, and Jest can only
 * require ESM itself on Node >= 24.9). ts-jest transpiles each file on its
 * own; type-checking is done once by `npm run typecheck`.
 */
export default {
  testEnvironment: 'node',
  rootDir: '.',
  roots: ['<rootDir>/test'],
  testRegex: '.*\\.(spec|e2e-spec)\\.ts$',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true }] },
  setupFiles: ['<rootDir>/test/setup/env.ts'],
  globalSetup: '<rootDir>/test/setup/global-setup.js',
  testTimeout: 30000,
  maxWorkers: 2,
};
