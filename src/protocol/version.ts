/** Kept in step with package.json by test/protocol/version.test.ts. */
export const RUNWALL_VERSION = '0.1.0';
