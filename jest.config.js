/** Jest in ESM mode (Nest 12 is ESM-only): run through `npm test`, which passes --experimental-vm-modules. */
export default {
  // Nest's logs are printed for failed tests only (TEST_LOGS=all prints them all).
  testEnvironment: '<rootDir>/test/support/log-on-failure-environment.cjs',
  setupFilesAfterEnv: ['<rootDir>/test/support/test-logs.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  testMatch: ['<rootDir>/test/**/*.spec.ts'],
  // test/compat/nest11-cjs is an app of its own, with its own Jest (npm run test:compat).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/compat/'],
  modulePathIgnorePatterns: ['<rootDir>/test/compat/'],
  globalSetup: '<rootDir>/test/support/global-setup.js',
  testTimeout: 60_000,
  maxWorkers: 2,
};
