// GET /metrics: the instance's Prometheus text, for
// - a bearer JWT whose role may read (ADMIN, OBSERVER: the role table's 'HTTP.metrics' row),
// - the bearer MPK_METRICS_TOKEN (a scraper's static secret, compared in constant time),
// - or, with no credentials, a peer address listed in MPK_METRICS_ADDRESSES (loopback by default).
// The address is the TCP peer's, never a header's: X-Forwarded-For is anyone's to write. A request
// that carries a forwarding header came through a proxy, so its loopback peer says nothing about
// the client: it needs a credential like any remote one.
import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { isIP } from 'node:net';
import type { Authenticator } from '../auth/authenticator.js';
import { authorize } from '../auth/permissions.js';
import { MpkError } from '../core/errors.js';
import { DEFAULT_METRICS_ADDRESSES, metricsAddressList } from './addresses.js';
import type { Metrics } from './metrics.js';

export interface MetricsAccess {
  /** MPK_METRICS_TOKEN: a bearer secret that may scrape; none when absent. */
  token?: string | undefined;
  /** MPK_METRICS_ADDRESSES: peers that may scrape without credentials (`loopback`, IPs, CIDRs). */
  addresses?: readonly string[];
}

const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip'];

/** The peer's address as the socket has it, IPv4-mapped IPv6 (`::ffff:10.0.0.1`) read as IPv4. */
function peerAddress(req: http.IncomingMessage): { address: string; family: 'ipv4' | 'ipv6' } | undefined {
  let address = req.socket.remoteAddress;
  if (!address) return undefined;
  if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) address = address.slice(7);
  const family = isIP(address);
  return family ? { address, family: family === 4 ? 'ipv4' : 'ipv6' } : undefined;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

export function createMetricsEndpoint(deps: {
  metrics: Pick<Metrics, 'render' | 'contentType'>;
  authenticator: Pick<Authenticator, 'authenticate'>;
  access: MetricsAccess;
}) {
  const { metrics, authenticator } = deps;
  const allowed = metricsAddressList(deps.access.addresses ?? DEFAULT_METRICS_ADDRESSES);
  // Compared as digests: equal lengths for timingSafeEqual, and no early exit on the first byte.
  const token = deps.access.token ? digest(deps.access.token) : undefined;

  function refuse(res: http.ServerResponse, status: 401 | 403 | 405, message: string) {
    const body = JSON.stringify({ error: message });
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      ...(status === 401 ? { 'www-authenticate': 'Bearer realm="mpk-metrics"' } : {}),
      ...(status === 405 ? { allow: 'GET, HEAD' } : {}),
    });
    res.end(body);
  }

  /** Why the caller may not read the metrics (status and words), or null when they may. */
  async function refusal(req: http.IncomingMessage): Promise<[401 | 403, string] | null> {
    const authorization = req.headers.authorization;
    if (!authorization) {
      const peer = peerAddress(req);
      const forwarded = FORWARDING_HEADERS.some((name) => req.headers[name] !== undefined);
      if (peer && !forwarded && allowed.check(peer.address, peer.family)) return null;
      return [401, 'Metrics need a bearer token (an ADMIN or OBSERVER token, or MPK_METRICS_TOKEN)'];
    }
    const bearer = /^Bearer\s+(\S+)$/i.exec(authorization.trim())?.[1];
    if (token && bearer && timingSafeEqual(digest(bearer), token)) return null;
    try {
      authorize(await authenticator.authenticate(authorization), 'HTTP.metrics');
      return null;
    } catch (error) {
      if (error instanceof MpkError && error.code === 'FORBIDDEN') return [403, error.message];
      if (error instanceof MpkError) return [401, error.message];
      throw error;
    }
  }

  return async function handle(req: http.IncomingMessage, res: http.ServerResponse) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, 'Method not allowed');
    const refused = await refusal(req);
    if (refused) return refuse(res, ...refused);
    const text = await metrics.render();
    res.writeHead(200, {
      'content-type': metrics.contentType,
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : text);
  };
}
export type MetricsEndpoint = ReturnType<typeof createMetricsEndpoint>;
