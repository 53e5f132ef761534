// What one instance takes on at once from the network: connections in all and per address, and
// request bodies being received (a byte budget, and a deadline for each body's progress). Without
// them, slow uploads hold memory and sockets for as long as their senders like: 1,500 connections
// each sending a 1 MiB body slowly once took the server from 304 MiB to 1.8 GiB.
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Limits } from '../config.js';
import type { Logger } from '../core/logger.js';

/** How long a client is told to wait when the body budget is spent: bodies in flight drain in seconds. */
export const BODY_BUDGET_RETRY_AFTER_SECONDS = 1;
/** Drops and cut-offs are logged at most this often, with counts: a flood must not flood the log too. */
const LOG_EVERY_MS = 10_000;

interface Upload {
  req: http.IncomingMessage;
  bytesRead: number;
  since: number;
}

/** Whether a request carries a body (announced by content-length, or chunked). */
export const hasBody = (req: http.IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;

export function createRequestLimits(limits: Limits, logger: Logger) {
  const perAddress = new Map<string, number>();
  const uploads = new Set<Upload>();
  let bodyBytes = 0;
  let sweeper: NodeJS.Timeout | undefined;
  const counts = { droppedTotal: 0, droppedPerAddress: 0, bodyBudget: 0, bodyIdle: 0 };
  let lastLog = 0;

  function note(what: keyof typeof counts) {
    counts[what]++;
    const now = Date.now();
    if (now - lastLog < LOG_EVERY_MS) return;
    lastLog = now;
    logger.warn({ ...counts }, 'connections or request bodies refused by the limits (counts since start)');
  }

  /** Closes the connections whose request body has made no progress for `bodyIdleTimeoutMs`. */
  function sweep() {
    const now = Date.now();
    for (const upload of uploads) {
      const { req } = upload;
      if (req.complete || req.destroyed) {
        uploads.delete(upload);
        continue;
      }
      const socket = req.socket;
      // A body nobody reads yet (the proxy awaiting its admission check) waits for this server,
      // not for its sender.
      if (socket.bytesRead !== upload.bytesRead || req.readableFlowing !== true) {
        upload.bytesRead = socket.bytesRead;
        upload.since = now;
      } else if (now - upload.since >= limits.bodyIdleTimeoutMs) {
        uploads.delete(upload);
        note('bodyIdle');
        socket.destroy();
      }
    }
    if (!uploads.size) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  }

  return {
    /** The node server's own options: how long headers and whole requests may take to arrive. */
    serverOptions: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // Node checks both deadlines every 30 s by default: "within seconds" needs a closer look.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
    } satisfies http.ServerOptions,

    /** Caps the server's connections, in all and per remote address. */
    attach(server: http.Server) {
      server.maxConnections = limits.maxConnections;
      server.on('drop', () => note('droppedTotal'));
      if (!limits.maxConnectionsPerAddress) return;
      server.on('connection', (socket: Socket) => {
        const address = socket.remoteAddress ?? '';
        const open = (perAddress.get(address) ?? 0) + 1;
        if (open > limits.maxConnectionsPerAddress) {
          note('droppedPerAddress');
          socket.destroy();
          return;
        }
        perAddress.set(address, open);
        socket.once('close', () => {
          const left = (perAddress.get(address) ?? 1) - 1;
          if (left > 0) perAddress.set(address, left);
          else perAddress.delete(address);
        });
      });
    },

    /**
     * Counts a request body, of at most `maxBytes`, against the budget until it has been received
     * (or the exchange is over): its announced size, or `maxBytes` when it comes in chunks. False
     * when the budget cannot take it (the caller answers 503); a request without a body is free.
     */
    admitBody(req: http.IncomingMessage, res: http.ServerResponse, maxBytes: number): boolean {
      if (!hasBody(req)) return true;
      const announced = Number(req.headers['content-length']);
      const bytes = req.headers['transfer-encoding'] !== undefined || !(announced >= 0) ? maxBytes : announced;
      // An announced size over the cap is refused with 413 before a byte is read: nothing to count.
      const reserved = bytes > maxBytes ? 0 : bytes;
      if (reserved && bodyBytes + reserved > limits.bodyBudgetBytes) {
        note('bodyBudget');
        return false;
      }
      bodyBytes += reserved;
      const upload: Upload = { req, bytesRead: req.socket.bytesRead, since: Date.now() };
      uploads.add(upload);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        bodyBytes -= reserved;
      };
      // Answered before its body is in (a 401, say), a request's body is read and dropped: no longer
      // held, but its sender is still timed until the body ends.
      const received = () => {
        release();
        uploads.delete(upload);
      };
      req.once('end', received);
      req.once('close', received);
      res.once('close', release);
      sweeper ??= setInterval(sweep, Math.max(50, Math.min(1000, Math.floor(limits.bodyIdleTimeoutMs / 4))));
      sweeper.unref();
      return true;
    },

    /** Bytes of request bodies counted now; connections open per address (for tests and metrics). */
    stats: () => ({ bodyBytes, uploads: uploads.size, addresses: perAddress.size, ...counts }),

    close() {
      clearInterval(sweeper);
      sweeper = undefined;
      uploads.clear();
    },
  };
}
export type RequestLimits = ReturnType<typeof createRequestLimits>;
