// Who is calling: the identity a verified token carries. Every layer speaks of callers in these
// terms; auth/ makes them, auth/permissions.ts decides what each may do.
import type { Role } from '../db/generated/enums.js';

export type { Role };

export interface Identity {
  userId: string;
  email: string | undefined;
  role: Role;
  /** When the token stops being valid (its `exp`): a long-lived connection ends then. */
  expiresAt?: Date;
}
