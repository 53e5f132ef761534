// Lease tokens: what an agent presents to the metering proxy instead of the provider key. A token
// is the lease id with an HMAC under a key derived from MPK_JWT_SECRET: nothing to store, not
// forgeable, and it stops working the moment the lease ends because the proxy checks the lease's
// state on every request (from its admission cache, which the lease's end invalidates).
// (Rotating MPK_JWT_SECRET invalidates outstanding tokens.)
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isUuid } from '../core/ids.js';

const PREFIX = 'mpk_lt_';

/** How many verified tokens are remembered: an HMAC costs more than the rest of admission. */
const VERIFIED_CACHE = 10_000;

export function createLeaseTokens(jwtSecret: string) {
  const key = createHmac('sha256', jwtSecret).update('mpk lease token v1').digest();
  const sign = (leaseId: string) => createHmac('sha256', key).update(leaseId).digest('base64url');
  // Token -> lease id for tokens already verified. A token is valid forever as a signature (the
  // lease's state is what ends it), so remembering it changes nothing but the cost.
  const verified = new Map<string, string>();
  return {
    mint: (leaseId: string) => `${PREFIX}${leaseId}.${sign(leaseId)}`,
    /** The lease id a token stands for, or null for anything that is not a valid token. */
    verify(token: string): string | null {
      const known = verified.get(token);
      if (known) return known;
      if (!token.startsWith(PREFIX) || token.length > 128) return null;
      const [leaseId, mac] = token.slice(PREFIX.length).split('.');
      if (!leaseId || !mac || !isUuid(leaseId)) return null;
      const expected = Buffer.from(sign(leaseId));
      const given = Buffer.from(mac);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
      if (verified.size >= VERIFIED_CACHE) verified.delete(verified.keys().next().value!);
      verified.set(token, leaseId);
      return leaseId;
    },
  };
}
export type LeaseTokens = ReturnType<typeof createLeaseTokens>;
