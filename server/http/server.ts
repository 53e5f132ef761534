// The node HTTP server: routes /graphql to Yoga, answers health checks, serves the dashboard, and
// caps request bodies before anything parses them (their size, their count against the instance's
// body budget, how long they may take: see limits.ts).
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import type { Logger } from '../core/logger.js';
import { MAX_REQUEST_BYTES as MAX_PROXY_BODY_BYTES } from '../usage/proxy.js';
import { DEV_SIGN_IN_PATH, type DevSignIn } from './dev-sign-in.js';
import { serveGraphiQL, wantsGraphiQL } from './graphiql.js';
import { BODY_BUDGET_RETRY_AFTER_SECONDS, type RequestLimits } from './limits.js';
import type { GraphQLHandler } from './yoga.js';

export const MAX_BODY_BYTES = 1024 * 1024;

export interface Readiness {
  ready: boolean;
  checks: Record<string, string>;
}

export interface HttpDeps {
  graphql: GraphQLHandler;
  logger: Logger;
  readiness: () => Promise<Readiness>;
  /** The metering proxy, serving /v1/*. */
  proxy?: {
    handle(req: http.IncomingMessage, res: http.ServerResponse, pathname: string, search: string): Promise<void>;
  };
  /** Extra fields for /healthz, such as whether this instance runs the scheduler. */
  health?: () => Record<string, unknown>;
  /** The built dashboard (web/dist); absent files answer 404. */
  staticDir: string;
  /** Development sign-in, present only while the server runs on its generated JWT secret. */
  devSignIn?: DevSignIn;
  /** Connection caps, timeouts and the request body budget; none when absent (some tests). */
  limits?: RequestLimits;
  /** GET /metrics (Prometheus text, behind its own access rules); a JSON 404 when absent. */
  metrics?: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;
}

/**
 * Paths that belong to the API, never to the dashboard: anything under them that no route
 * answers is a JSON 404, not the app's HTML.
 */
const API_PREFIXES = ['/api', '/v1', '/graphql', '/healthz', '/readyz', '/metrics', '/.well-known'];
const isApiPath = (pathname: string) =>
  API_PREFIXES.some((prefix) => pathname === prefix || pathname.startsWith(`${prefix}/`));

// The dashboard's page: its scripts and styles come from this server only; Mantine and the charts
// set inline styles. Everything else it talks to is this origin (HTTP and WebSocket).
const DASHBOARD_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
};

function sendJson(res: http.ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

export function createHttpServer(deps: HttpDeps): http.Server {
  const { graphql, logger, readiness } = deps;
  const staticRoot = path.resolve(deps.staticDir);

  async function serveStatic(req: http.IncomingMessage, res: http.ServerResponse, pathname: string) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'Method not allowed' });
    let file = path.resolve(staticRoot, `.${decodeURIComponent(pathname)}`);
    if (!file.startsWith(staticRoot + path.sep) && file !== staticRoot)
      return sendJson(res, 404, { error: 'Not found' });
    let info = await stat(file).catch(() => undefined);
    // The dashboard routes on the client (/keys/<id>, /leases?status=...): paths without an
    // extension get index.html, so that a reload or a shared link opens the right page.
    if (!info?.isFile() && !path.extname(pathname)) {
      file = path.join(staticRoot, 'index.html');
      info = await stat(file).catch(() => undefined);
    }
    if (!info?.isFile()) return sendJson(res, 404, { error: 'Not found' });
    const immutable = pathname.startsWith('/assets/');
    const html = path.extname(file) === '.html';
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
      'content-length': info.size,
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'x-content-type-options': 'nosniff',
      ...(html ? DASHBOARD_HEADERS : {}),
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file).pipe(res);
  }

  /**
   * Reads the body up to the cap before Yoga sees it, whether its size is announced by
   * content-length or it arrives in chunks; undefined (and a 413 sent) when it is over.
   */
  function readCappedBody(req: http.IncomingMessage, res: http.ServerResponse): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      const refuse = () => {
        // Close the connection after the answer: the rest of the upload is not worth reading, and
        // a client must not reuse a socket with half a body still in it.
        res.setHeader('connection', 'close');
        res.once('finish', () => req.socket.destroy());
        sendJson(res, 413, {
          errors: [
            { message: `Request body exceeds ${MAX_BODY_BYTES} bytes`, extensions: { code: 'PAYLOAD_TOO_LARGE' } },
          ],
        });
        req.pause();
        resolve(undefined);
      };
      if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return refuse();
      const chunks: Buffer[] = [];
      let received = 0;
      const onData = (chunk: Buffer) => {
        received += chunk.length;
        if (received <= MAX_BODY_BYTES) return void chunks.push(chunk);
        req.off('data', onData);
        refuse();
      };
      req.on('data', onData);
      req.once('end', () => resolve(received <= MAX_BODY_BYTES ? Buffer.concat(chunks) : undefined));
      req.once('error', reject);
    });
  }

  /** The body budget is spent: try again in a moment, in the route's own error shape. */
  function bodyBudgetSpent(res: http.ServerResponse, proxied: boolean) {
    const message = 'The server is receiving too many request bodies at once; try again shortly';
    res.setHeader('retry-after', String(BODY_BUDGET_RETRY_AFTER_SECONDS));
    // The body is not read: the connection cannot carry another request after this answer.
    res.setHeader('connection', 'close');
    sendJson(
      res,
      503,
      proxied
        ? { error: { message, type: 'server_error', param: null, code: 'server_busy' } }
        : { errors: [{ message, extensions: { code: 'SERVER_BUSY' } }] },
    );
  }

  const server = http.createServer(deps.limits?.serverOptions ?? {}, async (req, res) => {
    const started = performance.now();
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    res.setHeader('x-request-id', requestId);
    const raw = req.url ?? '/';
    // The proxy's paths are matched as sent (an unknown one is a 404 there); the rest is parsed.
    const proxied = raw.startsWith('/v1/');
    const query = raw.indexOf('?');
    const { pathname, search } = proxied
      ? { pathname: query < 0 ? raw : raw.slice(0, query), search: query < 0 ? '' : raw.slice(query) }
      : new URL(raw, 'http://localhost');
    res.on('finish', () => {
      // A proxied request that went through is already a row of the usage ledger: its access line
      // is debug-level, so that the proxy's hot path does not pay a log write per request. So is a
      // rate-limited one (429): a caller looping on its refusals must not cost a log write each.
      const level = (proxied && res.statusCode < 400) || res.statusCode === 429 ? 'debug' : 'info';
      if (!logger.isLevelEnabled(level)) return;
      logger[level](
        {
          requestId,
          method: req.method,
          path: pathname,
          status: res.statusCode,
          ms: Math.round(performance.now() - started),
        },
        'request',
      );
    });
    try {
      if (pathname === '/healthz') return sendJson(res, 200, { status: 'ok', ...deps.health?.() });
      if (pathname === '/readyz') {
        const result = await readiness();
        return sendJson(res, result.ready ? 200 : 503, {
          status: result.ready ? 'ready' : 'not ready',
          checks: result.checks,
        });
      }
      if (proxied && deps.proxy) {
        if (deps.limits && !deps.limits.admitBody(req, res, MAX_PROXY_BODY_BYTES)) return bodyBudgetSpent(res, true);
        return await deps.proxy.handle(req, res, pathname, search);
      }
      if (pathname === '/graphql' && wantsGraphiQL(req)) return await serveGraphiQL(req, res);
      if (pathname === '/graphql') {
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          if (deps.limits && !deps.limits.admitBody(req, res, MAX_BODY_BYTES)) return bodyBudgetSpent(res, false);
          const body = await readCappedBody(req, res);
          if (!body) return;
          // The adapter takes a body that was already read from `body` instead of the stream.
          (req as http.IncomingMessage & { body?: Buffer }).body = body;
        }
        return await graphql.handle(req, res, { requestId });
      }
      if (pathname === '/metrics' && deps.metrics) return await deps.metrics(req, res);
      if (pathname === DEV_SIGN_IN_PATH && (await deps.devSignIn?.handle(req, res))) return;
      if (isApiPath(pathname)) return sendJson(res, 404, { error: 'Not found' });
      return await serveStatic(req, res, pathname);
    } catch (error) {
      // A body cut off before its end (its client went away, or the body idle timeout closed it)
      // is no failure of the server's: no error line per upload an attacker abandons.
      if (req.destroyed && (error as NodeJS.ErrnoException).code === 'ECONNRESET') {
        logger.debug({ requestId }, 'request body cut off');
        return;
      }
      logger.error({ err: error, requestId }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'Internal server error' });
      else res.destroy();
    }
  });
  deps.limits?.attach(server);
  return server;
}
