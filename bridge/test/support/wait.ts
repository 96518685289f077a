// The waiting helpers live beside the unit tests' (bridge/src/util/test-support/wait.ts); the end-to-end
// tests import them from here as before.
export * from '../../src/util/test-support/wait.js';
