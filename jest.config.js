// ESM + TypeScript: Helia and friends are ESM-only, so jest runs with --experimental-vm-modules
// (set by `npm test`) and ts-jest in ESM mode.
/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/bridge/src', '<rootDir>/bridge/test'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  globalSetup: '<rootDir>/bridge/test/global-setup.ts',
  globalTeardown: '<rootDir>/bridge/test/global-teardown.ts',
  testTimeout: 60_000,
  // Daemons (tor, nginx) are shared across files; two workers fit the two cores here.
  maxWorkers: 2,
};
