// A fake of the providers' key-management APIs, for the minted-key tests and the demo's minting key
// (nothing else): served by the fake provider (startFakeUpstream({ keyAdmin })) beside its inference
// endpoints, on the same origin, as the real providers serve both under one base URL. The wire
// formats follow the providers' documentation:
//
// OpenRouter (docs: openrouter.ai/docs/api/api-reference/api-keys, "Management API Keys"):
//   POST   /keys          { name, limit?, limit_reset?, include_byok_in_limit?, expires_at? }
//                         -> 201 { data: <key>, key: "<the new secret, shown once>" }
//   GET    /keys?offset=  -> { data: [<key>, ...] } (100 a page)
//   GET    /keys/{hash}   -> { data: <key> }
//   PATCH  /keys/{hash}   { name?, disabled?, limit?, limit_reset?, include_byok_in_limit? } -> { data: <key> }
//                         (the documented update has no expiry: the fake refuses fields it does not know)
//   DELETE /keys/{hash}   -> { deleted: true }
//   <key> = { hash, name, label, disabled, limit, limit_remaining, limit_reset, usage, usage_daily,
//             usage_monthly, created_at, updated_at, expires_at }
//   (a key's usage grows with what the fake provider charges for inference made with its secret)
//
// Venice (docs: docs.venice.ai/api-reference/endpoint/api_keys/*):
//   POST   /api_keys      { apiKeyType: "INFERENCE"|"ADMIN", description, consumptionLimit?: { usd?, diem?, vcu? },
//                           limitPeriod?, expiresAt? } -> { data: { apiKey, id, apiKeyType, description,
//                           consumptionLimit, expiresAt }, success: true }
//   PATCH  /api_keys      { id, description?, consumptionLimit?, limitPeriod?, expiresAt? } -> { data: <key>, success: true }
//   DELETE /api_keys?id=  -> { success: true }
//   GET    /api_keys      -> { object: "list", data: [<key>, ...] }
//   GET    /api_keys/{id} -> { data: <key with usage> }
//   <key> = { id, description, apiKeyType, consumptionLimits, limitPeriod, expiresAt, createdAt,
//             last6Chars, lastUsedAt, usage: { trailingSevenDays: { usd, diem } } } (usage: the last 7 days only)
//   Limits, as Venice documents them: 20 creations a minute (a sliding 60 s window here, answered 429
//   with Retry-After) and 500 active keys an account (answered 400).
//
// Both: 401 without the admin key; 404 for an unknown or deleted key; `failNext` makes the next
// calls fail with a status (429 with Retry-After), for the retry tests.
import { randomBytes } from 'node:crypto';
import type http from 'node:http';

export type KeyAdminStyle = 'openrouter' | 'venice';

/** A key the fake has minted, with everything the tests check. */
export interface FakeMintedKey {
  id: string;
  name: string;
  secret: string;
  limitUsd: number | null;
  expiresAt: string | null;
  disabled: boolean;
  createdAt: number;
  deletedAt: number | null;
  /** DELETE calls answered for this key (a second one finds it gone: 404). */
  deletes: number;
  /** What inference with this key has cost, all told (OpenRouter's `usage`: MPK sets no limit_reset). */
  usageUsd: number;
  /** Each charge (the clock's ms), for Venice's trailing seven days and OpenRouter's day and month. */
  charges: { at: number; usd: number }[];
}

/** One management call as received: method, path (with query) and body. Never a secret. */
export interface KeyAdminCall {
  method: string;
  path: string;
  body: Record<string, unknown>;
  at: number;
  status: number;
}

export interface FakeKeyAdmin {
  style: KeyAdminStyle;
  /** The management key the fake accepts. */
  adminKey: string;
  keys: Map<string, FakeMintedKey>;
  calls: KeyAdminCall[];
  /** When each successful creation happened (the clock's ms). */
  creations: number[];
  /** Creations refused for the rate (429) or the cap on active keys. */
  refusedCreations: number;
  /** The next `count` management calls fail with `status` (and Retry-After when given). */
  failNext: { count: number; status: number; retryAfterSeconds?: number };
  /**
   * Called for each management call once the fake has done what it asks (made or deleted the key):
   * a promise it returns holds the answer back until it settles (a crash test kills MPK meanwhile).
   */
  beforeAnswer: ((call: KeyAdminCall) => Promise<void> | undefined) | null;
  creationsPerMinute: number;
  maxActiveKeys: number;
  /** The most creations found in any 60 s window. */
  maxCreationsInAMinute(): number;
  /** Keys alive now: not deleted, not past their expiry. */
  activeKeys(): FakeMintedKey[];
  /**
   * Charges the minted key whose secret this is, if any and if it still works (the fake provider
   * calls it for every answer it meters); false for any other key.
   */
  charge(secret: string, usd: number, at?: Date): boolean;
  /** Whether this is a management route the fake answers (the rest is inference). */
  handles(method: string, route: string): boolean;
  answer(req: http.IncomingMessage, res: http.ServerResponse, route: string, body: Record<string, any>): void;
}

const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

const OPENROUTER_CREATE = new Set(['name', 'limit', 'limit_reset', 'include_byok_in_limit', 'expires_at']);
const OPENROUTER_PATCH = new Set(['name', 'disabled', 'limit', 'limit_reset', 'include_byok_in_limit']);
const VENICE_CREATE = new Set(['apiKeyType', 'description', 'consumptionLimit', 'limitPeriod', 'expiresAt']);
const VENICE_PATCH = new Set(['id', 'description', 'consumptionLimit', 'limitPeriod', 'expiresAt']);
/** ISO 8601 in UTC, as OpenRouter requires ("Must be UTC, other timezones will be rejected"). */
const UTC_ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

export function createFakeKeyAdmin(options: {
  style: KeyAdminStyle;
  clock?: { now(): Date };
  adminKey?: string;
  creationsPerMinute?: number;
  maxActiveKeys?: number;
}): FakeKeyAdmin {
  const now = () => (options.clock ?? { now: () => new Date() }).now().getTime();
  const style = options.style;
  const keys = new Map<string, FakeMintedKey>();
  let serial = 0;

  const alive = (k: FakeMintedKey) => k.deletedAt === null && (k.expiresAt === null || Date.parse(k.expiresAt) > now());
  const unknownField = (body: Record<string, unknown>, allowed: Set<string>) =>
    Object.keys(body).find((f) => !allowed.has(f));

  /** Sums in nano-dollars, so that a key's usage is the exact sum of its charges (no float dust). */
  const nano = (usd: number) => Math.round(usd * 1e9);
  const spentSince = (k: FakeMintedKey, since: number) =>
    k.charges.filter((c) => c.at >= since).reduce((sum, c) => sum + nano(c.usd), 0) / 1e9;
  function startOfUtc(unit: 'day' | 'month'): number {
    const d = new Date(now());
    return unit === 'day'
      ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())
      : Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }

  function openRouterKey(k: FakeMintedKey) {
    return {
      hash: k.id,
      name: k.name,
      label: `${k.secret.slice(0, 11)}...${k.secret.slice(-3)}`,
      disabled: k.disabled,
      limit: k.limitUsd,
      limit_remaining: k.limitUsd === null ? null : Math.max(0, k.limitUsd - k.usageUsd),
      limit_reset: null,
      usage: k.usageUsd,
      usage_daily: spentSince(k, startOfUtc('day')),
      usage_monthly: spentSince(k, startOfUtc('month')),
      created_at: new Date(k.createdAt).toISOString(),
      updated_at: null,
      expires_at: k.expiresAt,
    };
  }

  function veniceKey(k: FakeMintedKey) {
    return {
      id: k.id,
      description: k.name,
      apiKeyType: 'INFERENCE',
      consumptionLimits: { usd: k.limitUsd, diem: null, vcu: null },
      limitPeriod: 'LIFETIME',
      expiresAt: k.expiresAt,
      createdAt: new Date(k.createdAt).toISOString(),
      last6Chars: k.secret.slice(-6),
      lastUsedAt: null,
      // Venice documents a key's usage over the trailing seven days only.
      usage: { trailingSevenDays: { usd: String(spentSince(k, now() - 7 * 86_400_000)), diem: '0' } },
    };
  }

  function create(name: string, limitUsd: number | null, expiresAt: string | null): FakeMintedKey | number {
    const at = now();
    const recent = admin.creations.filter((t) => t > at - 60_000);
    if (recent.length >= admin.creationsPerMinute) return Math.ceil((recent[0]! + 60_000 - at) / 1000);
    if (admin.activeKeys().length >= admin.maxActiveKeys) return -1;
    serial++;
    const id =
      style === 'openrouter' ? randomBytes(32).toString('hex') : `${randomBytes(4).toString('hex')}-venice-${serial}`;
    const secret =
      style === 'openrouter'
        ? `sk-or-v1-${randomBytes(32).toString('hex')}`
        : `VENICE-INFERENCE-KEY-${randomBytes(24).toString('base64url')}`;
    const key: FakeMintedKey = {
      id,
      name,
      secret,
      limitUsd,
      expiresAt,
      disabled: false,
      createdAt: at,
      deletedAt: null,
      deletes: 0,
      usageUsd: 0,
      charges: [],
    };
    keys.set(id, key);
    admin.creations.push(at);
    return key;
  }

  function remove(res: http.ServerResponse, id: string, ok: unknown) {
    const key = keys.get(id);
    if (!key || key.deletedAt !== null) return json(res, 404, { error: { code: 404, message: 'Key not found' } });
    key.deletedAt = now();
    key.deletes++;
    return json(res, 200, ok);
  }

  function openRouter(res: http.ServerResponse, method: string, route: string, url: URL, body: Record<string, any>) {
    const hash = route.startsWith('/keys/') ? decodeURIComponent(route.slice('/keys/'.length)) : null;
    if (method === 'POST' && route === '/keys') {
      const unknown = unknownField(body, OPENROUTER_CREATE);
      if (unknown) return json(res, 400, { error: { code: 400, message: `Unknown field ${unknown}` } });
      if (typeof body.name !== 'string' || !body.name)
        return json(res, 400, { error: { code: 400, message: 'name is required' } });
      if (body.expires_at != null && !UTC_ISO.test(String(body.expires_at)))
        return json(res, 400, { error: { code: 400, message: 'expires_at must be an ISO 8601 UTC timestamp' } });
      const made = create(body.name, body.limit ?? null, body.expires_at ?? null);
      if (typeof made === 'number') return tooMany(res, made);
      return json(res, 201, { data: openRouterKey(made), key: made.secret });
    }
    if (method === 'GET' && route === '/keys') {
      const offset = Number(url.searchParams.get('offset') ?? 0);
      const live = [...keys.values()].filter((k) => k.deletedAt === null);
      return json(res, 200, { data: live.slice(offset, offset + 100).map(openRouterKey) });
    }
    const key = hash ? keys.get(hash) : undefined;
    if (method === 'DELETE' && hash) return remove(res, hash, { deleted: true });
    if (!key || key.deletedAt !== null) return json(res, 404, { error: { code: 404, message: 'Key not found' } });
    if (method === 'GET') return json(res, 200, { data: openRouterKey(key) });
    if (method === 'PATCH') {
      const unknown = unknownField(body, OPENROUTER_PATCH);
      if (unknown) return json(res, 400, { error: { code: 400, message: `Unknown field ${unknown}` } });
      if (body.disabled !== undefined) key.disabled = Boolean(body.disabled);
      if (body.limit !== undefined) key.limitUsd = body.limit;
      return json(res, 200, { data: openRouterKey(key) });
    }
    return json(res, 405, { error: { code: 405, message: 'Method not allowed' } });
  }

  function venice(res: http.ServerResponse, method: string, route: string, url: URL, body: Record<string, any>) {
    if (method === 'POST' && route === '/api_keys') {
      const unknown = unknownField(body, VENICE_CREATE);
      if (unknown) return json(res, 400, { success: false, error: `Unknown field ${unknown}` });
      if (body.apiKeyType !== 'INFERENCE' && body.apiKeyType !== 'ADMIN')
        return json(res, 400, { success: false, error: 'apiKeyType must be INFERENCE or ADMIN' });
      if (typeof body.description !== 'string' || !body.description)
        return json(res, 400, { success: false, error: 'description is required' });
      const made = create(body.description, body.consumptionLimit?.usd ?? null, body.expiresAt ?? null);
      if (made === -1) {
        admin.refusedCreations++;
        return json(res, 400, { success: false, error: `An account may hold at most ${admin.maxActiveKeys} API keys` });
      }
      if (typeof made === 'number') return tooMany(res, made);
      const { usage: _usage, ...shown } = veniceKey(made);
      return json(res, 200, {
        data: {
          ...shown,
          apiKey: made.secret,
          consumptionLimit: { usd: made.limitUsd },
        },
        success: true,
      });
    }
    if (method === 'GET' && route === '/api_keys') {
      return json(res, 200, {
        object: 'list',
        data: [...keys.values()].filter((k) => k.deletedAt === null).map(veniceKey),
      });
    }
    if (method === 'DELETE' && route === '/api_keys')
      return remove(res, url.searchParams.get('id') ?? '', { success: true });
    if (method === 'PATCH' && route === '/api_keys') {
      const unknown = unknownField(body, VENICE_PATCH);
      if (unknown) return json(res, 400, { success: false, error: `Unknown field ${unknown}` });
      const key = keys.get(String(body.id ?? ''));
      if (!key || key.deletedAt !== null) return json(res, 404, { success: false, error: 'API key not found' });
      if (body.consumptionLimit !== undefined) key.limitUsd = body.consumptionLimit?.usd ?? null;
      if (body.expiresAt !== undefined) key.expiresAt = body.expiresAt || null;
      return json(res, 200, { data: veniceKey(key), success: true });
    }
    if (method === 'GET' && route.startsWith('/api_keys/')) {
      const key = keys.get(decodeURIComponent(route.slice('/api_keys/'.length)));
      if (!key || key.deletedAt !== null) return json(res, 404, { success: false, error: 'API key not found' });
      return json(res, 200, { data: veniceKey(key) });
    }
    return json(res, 405, { success: false, error: 'Method not allowed' });
  }

  function tooMany(res: http.ServerResponse, retryAfterSeconds: number) {
    admin.refusedCreations++;
    return json(
      res,
      429,
      { error: { code: 429, message: 'Too many API key creations; try again later' } },
      { 'retry-after': String(Math.max(1, retryAfterSeconds)) },
    );
  }

  const admin: FakeKeyAdmin = {
    style,
    adminKey: options.adminKey ?? `${style}-admin-${randomBytes(12).toString('hex')}`,
    keys,
    calls: [],
    creations: [],
    refusedCreations: 0,
    failNext: { count: 0, status: 500 },
    beforeAnswer: null,
    creationsPerMinute: options.creationsPerMinute ?? (style === 'venice' ? 20 : 1_000_000),
    maxActiveKeys: options.maxActiveKeys ?? (style === 'venice' ? 500 : 1_000_000),
    maxCreationsInAMinute() {
      let most = 0;
      for (let i = 0, j = 0; i < admin.creations.length; i++) {
        while (admin.creations[i]! - admin.creations[j]! >= 60_000) j++;
        most = Math.max(most, i - j + 1);
      }
      return most;
    },
    activeKeys: () => [...keys.values()].filter(alive),
    charge(secret, usd, at) {
      const key = [...keys.values()].find((k) => k.secret === secret);
      if (!key || !alive(key)) return false;
      // The fake's own clock unless told when (a test's clock may not be the wall clock).
      key.charges.push({ at: at?.getTime() ?? now(), usd });
      key.usageUsd = (nano(key.usageUsd) + nano(usd)) / 1e9;
      return true;
    },
    handles(method, route) {
      if (style === 'openrouter') return route === '/keys' || route.startsWith('/keys/');
      if (route === '/api_keys') return true;
      return method === 'GET' && route.startsWith('/api_keys/') && !route.startsWith('/api_keys/rate_limits');
    },
    answer(req, res, route, body) {
      const method = req.method ?? 'GET';
      const url = new URL(req.url ?? '/', 'http://fake');
      const call: KeyAdminCall = { method, path: `${route}${url.search}`, body, at: now(), status: 0 };
      admin.calls.push(call);
      const send = res.writeHead.bind(res);
      res.writeHead = ((status: number, ...rest: never[]) => {
        call.status = status;
        return send(status, ...rest);
      }) as typeof res.writeHead;
      if (req.headers.authorization !== `Bearer ${admin.adminKey}`)
        return json(res, 401, { error: { code: 401, message: 'A management key is required' } });
      if (admin.failNext.count > 0) {
        admin.failNext.count--;
        const retry = admin.failNext.retryAfterSeconds;
        return json(
          res,
          admin.failNext.status,
          { error: { code: admin.failNext.status, message: 'Temporarily unavailable' } },
          retry === undefined ? {} : { 'retry-after': String(retry) },
        );
      }
      const hold = admin.beforeAnswer?.(call);
      if (hold) {
        const end = res.end.bind(res) as (...args: unknown[]) => void;
        res.end = ((...args: unknown[]) => {
          void hold.then(() => {
            if (!res.destroyed) end(...args);
          });
          return res;
        }) as typeof res.end;
      }
      return style === 'openrouter' ? openRouter(res, method, route, url, body) : venice(res, method, route, url, body);
    },
  };
  return admin;
}
