// The signed-in session: the bearer token (sessionStorage, so it ends with the tab) and, after a
// sign-out, why it ended. Components read it through useSession(); everything that can end a
// session (a rejected token, its expiry, a socket closed for it) calls signOut with a reason.
import { useSyncExternalStore } from 'react';

const TOKEN_KEY = 'mpk.token';
const REASON_KEY = 'mpk.signedOutBecause';

export interface Session {
  token: string;
  /** Why the last session ended, shown on the sign-in page ("token rejected: expired"). */
  reason: string;
}

let current: Session = {
  token: sessionStorage.getItem(TOKEN_KEY) ?? '',
  reason: sessionStorage.getItem(REASON_KEY) ?? '',
};
const listeners = new Set<() => void>();

function set(next: Session) {
  current = next;
  if (next.token) sessionStorage.setItem(TOKEN_KEY, next.token);
  else sessionStorage.removeItem(TOKEN_KEY);
  if (next.reason) sessionStorage.setItem(REASON_KEY, next.reason);
  else sessionStorage.removeItem(REASON_KEY);
  for (const listener of listeners) listener();
}

/** The stored token, read before React starts. */
export const readToken = () => current.token;

export function signIn(token: string) {
  set({ token: token.trim().replace(/^Bearer\s+/i, ''), reason: '' });
}

export function signOut(reason = '') {
  if (!current.token && current.reason === reason) return;
  set({ token: '', reason });
}

export function useSession(): Session {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => current,
  );
}

/** The token's `exp` as a time, if it can be read (the server still decides whether it is valid). */
export function tokenExpiry(token: string): Date | null {
  try {
    const payload = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: unknown };
    return typeof payload.exp === 'number' ? new Date(payload.exp * 1000) : null;
  } catch {
    return null;
  }
}

const REJECTIONS: Record<string, string> = {
  EXPIRED: 'expired',
  BAD_SIGNATURE: 'wrong signature',
  MALFORMED: 'malformed',
  INVALID_CLAIMS: 'missing or invalid claims',
  ALGORITHM: 'algorithm not accepted',
  UNKNOWN_ROLE: 'unknown role',
};

/** "token rejected: expired", from the server's `extensions.reason`. */
export const rejectionMessage = (reason: unknown) => `token rejected: ${REJECTIONS[String(reason)] ?? 'not accepted'}`;
