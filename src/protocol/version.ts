/** Kept in step with package.json by test/protocol/version.test.ts. */
export const RUNWALL_VERSION = '0.1.0';

/** The run report's format; a reader refuses any other. Here, apart from the report's schema, so writing a report does not load TypeBox. */
export const REPORT_SCHEMA_VERSION = 1;
