/**
 * First start: an empty database gets one tenant, an operator API key and an
 * operator user, printed once by `runwall server` (only their hashes are kept).
 */
import { newPassword } from './auth/secrets.js';
import type { Store } from './store/types.js';

export interface FirstStart {
  readonly tenant: string;
  readonly apiKey: string;
  readonly email: string;
  readonly password: string;
}

export const FIRST_TENANT = 'default';
export const FIRST_EMAIL = 'admin@runwall.local';

/** Creates the first tenant and operator when there is no tenant yet; null when the database was already set up. */
export async function bootstrap(store: Store): Promise<FirstStart | null> {
  if ((await store.countTenants()) > 0) return null;
  try {
    const tenant = await store.createTenant(FIRST_TENANT, 'Default organisation');
    const { key } = await store.createApiKey(tenant.id, 'operator', 'first operator key');
    const password = newPassword();
    await store.createUser(tenant.id, FIRST_EMAIL, password, 'operator');
    return { tenant: tenant.slug, apiKey: key, email: FIRST_EMAIL, password };
  } catch (error) {
    // Another server process started on the same empty database at the same moment and won.
    if (error instanceof Error && 'code' in error && (error as { code: unknown }).code === 'RW_CONFLICT') return null;
    throw error;
  }
}
