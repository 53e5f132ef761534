// Development sign-in: while the server runs on its generated development JWT secret (no
// MPK_JWT_SECRET), a browser on this machine may ask for a short-lived token of any role, so that
// a newcomer can open the dashboard without a CLI. With MPK_JWT_SECRET set, or for anyone not on
// loopback, the endpoint does not exist (404).
//
//   GET  /api/dev-sign-in   -> { roles, expiresInSeconds, suggestions }
//   POST /api/dev-sign-in   { role, sub } -> { token, expiresAt }
import type http from 'node:http';
import { z } from 'zod';
import { mintToken } from '../auth/authenticator.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { ROLES } from '../db/enums.js';

export const DEV_SIGN_IN_PATH = '/api/dev-sign-in';
export const DEV_TOKEN_TTL_SECONDS = 3600;
const MAX_BODY = 4096;

const request = z.object({
  // Any case: 'admin' or 'ADMIN', as the token CLI and the claims spell roles in lower case.
  role: z.preprocess((value) => (typeof value === 'string' ? value.toUpperCase() : value), z.enum(ROLES)),
  sub: z
    .string()
    .trim()
    .min(1)
    .max(128)
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
});

const SUGGESTIONS = [
  { role: 'ADMIN', sub: 'dev-admin' },
  { role: 'OBSERVER', sub: 'dev-observer' },
  { role: 'USER', sub: 'dev-user' },
  { role: 'WORKER', sub: 'dev-worker' },
] as const;

const LOOPBACK_ADDRESS = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/;
const LOOPBACK_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(:\d+)?$/i;

/**
 * From this machine, and meant for it: the peer is a loopback address, the Host header names
 * loopback (a DNS-rebinding page reaches a loopback peer under a foreign name), and no proxy
 * forwarded it (a reverse proxy on the same host would make every client look local).
 */
export function isLoopbackRequest(req: http.IncomingMessage): boolean {
  return (
    LOOPBACK_ADDRESS.test(req.socket.remoteAddress ?? '') &&
    LOOPBACK_HOST.test(req.headers.host ?? '') &&
    req.headers['x-forwarded-for'] === undefined &&
    req.headers.forwarded === undefined
  );
}

function send(res: http.ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  let raw = '';
  for await (const chunk of req) {
    raw += chunk;
    if (raw.length > MAX_BODY) throw new Error('body too large');
  }
  return JSON.parse(raw);
}

export function createDevSignIn(deps: {
  jwtSecret: string;
  issuer?: string | undefined;
  audience?: string | undefined;
  clock: Clock;
  logger: Logger;
}) {
  const { jwtSecret, issuer, audience, clock, logger } = deps;
  return {
    /** Answers the request if it is for this endpoint and allowed; false to let it fall through (404). */
    async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
      if (!isLoopbackRequest(req)) return false;
      if (req.method === 'GET') {
        send(res, 200, { roles: ROLES, expiresInSeconds: DEV_TOKEN_TTL_SECONDS, suggestions: SUGGESTIONS });
        return true;
      }
      if (req.method !== 'POST') {
        res.setHeader('allow', 'GET, POST');
        send(res, 405, { error: 'Method not allowed' });
        return true;
      }
      // JSON only: a cross-site form cannot send it without a preflight this server never grants.
      if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
        send(res, 415, { error: 'Send { "role", "sub" } as application/json' });
        return true;
      }
      const parsed = request.safeParse(await readJson(req).catch(() => undefined));
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        send(res, 400, {
          error: `${issue.path.join('.') || 'body'}: ${issue.message}`,
          field: issue.path.join('.') || undefined,
        });
        return true;
      }
      const now = clock.now();
      const token = await mintToken({
        secret: jwtSecret,
        issuer,
        audience,
        sub: parsed.data.sub,
        role: parsed.data.role,
        now,
        expiresInSeconds: DEV_TOKEN_TTL_SECONDS,
      });
      logger.info({ role: parsed.data.role, sub: parsed.data.sub }, 'development sign-in: minted a token');
      send(res, 200, {
        token,
        expiresAt: new Date(Math.floor(now.getTime() / 1000) * 1000 + DEV_TOKEN_TTL_SECONDS * 1000).toISOString(),
      });
      return true;
    },
  };
}
export type DevSignIn = ReturnType<typeof createDevSignIn>;
