// `npm run screenshots`: the demo's living pool, photographed page by page in Debian's Chromium,
// into docs/screenshots/ (the README shows them), the minting key's page and a lease on it (its
// minted provider key) included. Run it after changing a page.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { launchBrowser } from '../tests/support/browser.js';
import { startDemo } from './demo.js';
import { USERS } from './story.js';

const OUT = path.resolve(import.meta.dirname, '../docs/screenshots');
/** Long enough for the agents to take leases and for live events to fill the feed. */
const SETTLE_MS = Number(process.env.SCREENSHOTS_SETTLE_MS ?? 20_000);
/** How long to wait, after that, for a lease at work on the minting key. */
const MINTED_WAIT_MS = 120_000;

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'mpk-screenshots-'));
const demo = await startDemo({
  port: 0,
  host: '127.0.0.1',
  dataDir,
  agents: 6,
  log: (line) => console.log(`demo: ${line}`),
});
const browser = await launchBrowser(demo.url);
try {
  await mkdir(OUT, { recursive: true });
  console.log(`letting the demo run for ${SETTLE_MS / 1000} s`);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const db = demo.app.db;
  // The demo runs on the generated development secret: its development sign-in mints the tokens.
  const signIn = async (role: string, sub: string) => {
    const res = await fetch(`${demo.url}/api/dev-sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ role, sub }),
    });
    return ((await res.json()) as { token: string }).token;
  };
  const key = await db.managedKey.findFirstOrThrow({ where: { label: 'openrouter-main' } });
  const lease = await db.lease.findFirstOrThrow({
    where: { status: 'ACTIVE', requestCount: { gt: 0 }, key: { mode: 'SHARED' } },
    orderBy: { grantedAt: 'desc' },
  });
  const holder = USERS.find((u) => u.id === lease.userId) ?? USERS[0]!;
  const mintingKey = await db.managedKey.findFirstOrThrow({ where: { mode: 'MINT' } });
  /**
   * A lease at work on its minted key (the agents take one on the minting key every minute or so:
   * waited for up to MINTED_WAIT_MS), else the latest that was.
   */
  const mintedLease = async () => {
    const onMintingKey = { keyId: mintingKey.id, requestCount: { gt: 0 } };
    const atWork = () =>
      db.lease.findFirst({
        where: { ...onMintingKey, status: 'ACTIVE', mintedKey: { status: 'ACTIVE' } },
        orderBy: { grantedAt: 'desc' },
      });
    const until = Date.now() + MINTED_WAIT_MS;
    let found = await atWork();
    while (!found && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 2_000));
      found = await atWork();
    }
    found ??= await db.lease.findFirstOrThrow({ where: onMintingKey, orderBy: { grantedAt: 'desc' } });
    // The provider's figure for its minted key, read now rather than at the next minute's reconciliation.
    await demo.app.reconcile.runOnce();
    return found;
  };

  const shoot = async (name: string, pathname: string, token: string | undefined, ready: string | string[]) => {
    const { page, context } = await browser.page({ token, viewport: { width: 1440, height: 900 } });
    await page.goto(pathname);
    for (const selector of [ready].flat()) await page.locator(selector).first().waitFor({ timeout: 15_000 });
    await page.waitForLoadState('networkidle');
    await page.waitForTimeout(800);
    // Lists as the first screen shows them; detail pages whole.
    await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: name.endsWith('detail') });
    await context.close();
    console.log(`wrote docs/screenshots/${name}.png`);
  };
  const admin = await signIn('ADMIN', 'admin@demo');
  const user = await signIn('USER', holder.id);
  await shoot('sign-in', '/', undefined, 'text=Sign in for development');
  await shoot('overview', '/', admin, '[data-testid="event-feed"] [data-event-type]');
  await shoot('keys', '/keys', admin, 'tr[data-key-id]');
  await shoot('key-detail', `/keys/${key.id}`, admin, 'text=Daily spend, last 30 UTC days');
  await shoot('leases', '/leases', admin, 'tr[data-lease-id]');
  await shoot('lease-detail', `/leases/${lease.id}`, admin, '[data-testid="lease-timeline"]');
  // The minting key with that lease's minted key in use, then the lease.
  const minted = await mintedLease();
  await shoot('minting-key-detail', `/keys/${mintingKey.id}`, admin, [
    'text=Daily spend, last 30 UTC days',
    '[data-testid="provider-jobs"] [data-job-status]',
  ]);
  await shoot('minted-lease-detail', `/leases/${minted.id}`, admin, [
    '[data-testid="lease-timeline"]',
    '[data-testid="minted-key"]',
    '[data-testid="provider-jobs"] [data-job-status]',
  ]);
  await shoot('users', '/users', admin, 'tbody tr');
  await shoot('tiers', '/tiers', admin, 'text=ENTERPRISE');
  await shoot('audit', '/audit', admin, 'tbody tr');
  await shoot('agents', '/agents', user, 'tr[data-lease-id]');
} finally {
  await browser.close();
  await demo.stop();
  await rm(dataDir, { recursive: true, force: true });
}
