// GraphiQL, served by MPK itself: the page and every asset it needs come from the
// @graphql-yoga/render-graphiql package (no CDN), so it works on a machine without internet.
// The page is ~9 MB of inlined scripts: it is rendered once and compressed once (off the event
// loop, in libuv's thread pool), then served from memory with the encoding the browser accepts.
import type http from 'node:http';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';

// A header example that is valid JSON and that the server tolerates for the schema fetch: an
// introspection-only request with a bad token is answered anonymously (see yoga.ts).
export const AUTHORIZATION_EXAMPLE = 'Bearer <paste a token: npm run token -- --role admin --sub you>';
const HEADERS_EXAMPLE = JSON.stringify({ Authorization: AUTHORIZATION_EXAMPLE }, null, 2);

const DEFAULT_QUERY = `# MPK GraphQL
#
# Put a token in the Authorization header (Headers tab below): "Bearer eyJ...".
# Get one with:  npm run -s token -- --role admin --sub you
# (roles: admin, observer, user, worker). The schema loads without one.

query Pool {
  me { id role tier }
  poolSummary { spendTodayUsd spendThisMonthUsd keysNearLimit { label } }
  managedKeys(first: 10) { edges { node { id label provider maskedKey status spendTodayUsd } } }
}
`;

interface Rendered {
  identity: Buffer;
  gzip: Buffer;
  brotli: Buffer;
}

let rendered: Promise<Rendered> | undefined;

async function render(): Promise<Rendered> {
  const html = Buffer.from(
    renderGraphiQL({
      title: 'MPK GraphQL',
      headers: HEADERS_EXAMPLE,
      defaultQuery: DEFAULT_QUERY,
      shouldPersistHeaders: false,
    }),
  );
  const [gzipped, brotli] = await Promise.all([
    promisify(gzip)(html),
    promisify(brotliCompress)(html, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } }),
  ]);
  return { identity: html, gzip: gzipped, brotli };
}

/** Whether a request to /graphql is a browser asking for the page rather than an operation. */
export const wantsGraphiQL = (req: http.IncomingMessage) =>
  req.method === 'GET' && Boolean(req.headers.accept?.includes('text/html'));

export async function serveGraphiQL(req: http.IncomingMessage, res: http.ServerResponse) {
  rendered ??= render();
  const page = await rendered;
  const accepted = String(req.headers['accept-encoding'] ?? '');
  const [encoding, body] = /\bbr\b/.test(accepted)
    ? ['br', page.brotli]
    : /\bgzip\b/.test(accepted)
      ? ['gzip', page.gzip]
      : [undefined, page.identity];
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': body.length,
    'cache-control': 'no-cache',
    vary: 'accept-encoding',
    'x-content-type-options': 'nosniff',
    ...(encoding ? { 'content-encoding': encoding } : {}),
  });
  res.end(body);
}
