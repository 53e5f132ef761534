// The dashboard in Debian's Chromium against a real server: signing in, forms that show the
// server's field errors, live tables, actions, role rules, reloads, and accessibility (axe).
// Without Chromium the file is skipped with a note, unless MPK_REQUIRE_BROWSER is set (CI).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import AxeBuilder from '@axe-core/playwright';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, dashboardPages, launchBrowser, openPage, type TestBrowser } from './support/browser.js';
import { createKey, disableKeys, leaseForNewUser, newUser, ok, Q, reportUsage } from './support/fixtures.js';
import { type TestServer, withTestServer } from './support/server.js';

const available = existsSync(CHROMIUM);
if (!available && process.env.MPK_REQUIRE_BROWSER)
  throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium`);
if (!available) console.warn(`Skipping browser tests: no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);

let server: TestServer;
let browser: TestBrowser;
let admin: string;
let worker: string;

/** Everything the page received from the server: HTTP bodies and WebSocket frames. */
function recordTraffic(page: Page) {
  const received: string[] = [];
  page.on('response', async (response) => {
    if (response.url().includes('/graphql') || response.url().includes('/api/'))
      received.push(await response.text().catch(() => ''));
  });
  page.on('websocket', (ws) => ws.on('framereceived', (frame) => received.push(String(frame.payload))));
  return received;
}

async function axe(page: Page, name: string) {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(
    bad.map(
      (v) =>
        `${name}: ${v.id} (${v.impact}) ${v.nodes
          .map((n) => `${n.target.join(' ')} ${n.failureSummary ?? ''}`)
          .slice(0, 3)
          .join(', ')}`,
    ),
  ).toEqual([]);
}

const live = (page: Page) =>
  page.locator('[data-testid="live-indicator"][data-state="connected"]').waitFor({ timeout: 10_000 });

describe.skipIf(!available)('dashboard in Chromium', () => {
  withTestServer(
    { config: { generatedSecrets: ['MPK_JWT_SECRET'] }, roles: 'b' },
    (s) => ({ server, admin, worker } = s),
  );
  beforeAll(async () => {
    await disableKeys(server);
    browser = await launchBrowser(server.url);
  });
  afterAll(async () => browser?.close());

  it(
    'signs an admin in with a pasted token; a field error for a bad limit; ' +
      'a new key shown masked, its secret nowhere',
    async () => {
      const { page } = await browser.page();
      const traffic = recordTraffic(page);
      await page.goto('/keys');
      await page.getByLabel('Bearer token').fill(admin);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByTestId('me-role').filter({ hasText: 'ADMIN' }).waitFor({ timeout: 10_000 });
      await page.getByRole('button', { name: 'Add key' }).first().click();
      const dialog = page.getByRole('dialog');
      const secret = `sk-or-v1-browser-${randomBytes(12).toString('hex')}`;
      await dialog.getByLabel('Label').fill('browser-made');
      await dialog.getByLabel('API key').fill(secret);
      await dialog.getByLabel('Daily limit (USD, UTC day)').fill('-5');
      await dialog.getByRole('button', { name: 'Add key' }).click();
      const limit = dialog.getByLabel('Daily limit (USD, UTC day)');
      await page.waitForFunction(() => document.querySelector('[aria-invalid="true"]') !== null, undefined, {
        timeout: 5000,
      });
      expect(await limit.getAttribute('aria-invalid')).toBe('true');
      expect(await dialog.innerText()).toMatch(/dailyLimitUsd must not be negative/);
      await limit.fill('12.50');
      await dialog.getByRole('button', { name: 'Add key' }).click();
      await page.waitForURL(/\/keys\/[0-9a-f-]{36}$/, { timeout: 10_000 });
      await page.getByText('browser-made').first().waitFor();
      const masked = `${secret.slice(0, 6)}...${secret.slice(-4)}`;
      await page.getByText(masked).first().waitFor();
      const text = await page.locator('body').innerText();
      expect(text).not.toContain(secret);
      expect(traffic.length).toBeGreaterThan(0);
      expect(traffic.filter((body) => body.includes(secret))).toEqual([]);
    },
  );

  it('shows a lease granted elsewhere within 1 s, revokes it from the table, and the feed says so', async () => {
    await disableKeys(server);
    await createKey(server, admin, { label: 'live-key', maxActiveLeases: 50 });
    const { page } = await browser.page({ token: admin });
    await page.goto('/leases');
    await live(page);
    await page.getByRole('heading', { name: 'Leases' }).waitFor();
    const lease = await leaseForNewUser(server, { agentId: 'live-agent' }, { prefix: 'granted' });
    const granted = Date.now();
    const row = page.locator(`tr[data-lease-id="${lease.id}"]`);
    await row.waitFor({ timeout: 1000 });
    expect(Date.now() - granted).toBeLessThan(1000);
    expect(await row.getAttribute('data-status')).toBe('ACTIVE');
    expect(await row.innerText()).toContain('live-key');

    await row.getByRole('button', { name: /Revoke lease/ }).click();
    await page.getByRole('dialog').getByLabel('Reason').fill('browser test');
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke lease' }).click();
    await page.locator(`tr[data-lease-id="${lease.id}"][data-status="REVOKED"]`).waitFor({ timeout: 3000 });
    // The feed on the overview, reached without a reload.
    await page.getByRole('link', { name: 'Overview' }).click();
    await page
      .locator(`[data-testid="event-feed"] [data-event-type="REVOKED"][data-lease-id="${lease.id}"]`)
      .waitFor({ timeout: 5000 });
    expect(
      await page
        .locator(`[data-testid="event-feed"] [data-event-type="REVOKED"][data-lease-id="${lease.id}"]`)
        .innerText(),
    ).toMatch(/stops agent/i);
  });

  it('extends a lease and changes its cap from the lease page; a reload keeps the page', async () => {
    const lease = await leaseForNewUser(server, {}, { prefix: 'ext' });
    const { page } = await browser.page({ token: admin });
    await page.goto(`/leases/${lease.id}`);
    await page.getByRole('heading', { name: new RegExp(`Lease ${lease.id.slice(0, 8)}`) }).waitFor();
    await page.reload();
    await page.getByRole('heading', { name: new RegExp(`Lease ${lease.id.slice(0, 8)}`) }).waitFor({ timeout: 10_000 });

    await page.getByRole('button', { name: 'Extend' }).click();
    await page.getByRole('dialog').getByText('7 d').click();
    await page.getByRole('dialog').getByRole('button', { name: 'Extend' }).click();
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    const extended = ok(await server.gql(Q.lease, { id: lease.id }, admin), 'lease');
    expect(new Date(extended.expiresAt).getTime() - new Date(lease.expiresAt).getTime()).toBe(7 * 86_400_000);
    await page.locator('[data-testid="lease-timeline"]').getByText('EXTENDED').first().waitFor({ timeout: 5000 });

    await page.getByRole('button', { name: 'Change cap' }).click();
    await page.getByRole('dialog').getByLabel('Spend cap (USD)').fill('abc');
    await page.getByRole('dialog').getByRole('button', { name: 'Set cap' }).click();
    await page
      .getByRole('dialog')
      .getByText(/Decimal must be a number/)
      .waitFor({ timeout: 5000 });
    await page.getByRole('dialog').getByLabel('Spend cap (USD)').fill('7.25');
    await page.getByRole('dialog').getByRole('button', { name: 'Set cap' }).click();
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    expect(ok(await server.gql(Q.lease, { id: lease.id }, admin), 'lease').spendCapUsd).toBe('7.25');
    await page.getByText('$7.25').first().waitFor({ timeout: 5000 });
  });

  it("moves a key's spend bars live when usage is reported", async () => {
    const key = await createKey(server, admin, { label: 'bars-key', dailyLimitUsd: '10', monthlyLimitUsd: '100' });
    await disableKeys(server, key.id);
    const lease = await leaseForNewUser(server, {}, { prefix: 'bars' });
    const { page } = await browser.page({ token: admin });
    await page.goto('/keys');
    await live(page);
    const today = page.locator(`[aria-label="$0.00 of $10.00 this UTC day"]`);
    await today.waitFor({ state: 'attached', timeout: 5000 });
    ok(await reportUsage(server, worker, { leaseId: lease.id, costUsd: '4.5' }), 'reportUsage');
    const moved = page.locator(`[aria-label="$4.50 of $10.00 this UTC day"]`);
    await moved.waitFor({ state: 'attached', timeout: 3000 });
    expect(Number(await moved.getAttribute('aria-valuenow'))).toBe(45);
    await page.locator(`[aria-label="$4.50 of $100.00 this UTC month"]`).waitFor({ state: 'attached', timeout: 3000 });
  });

  it('shows an observer every page and no action control', async () => {
    const observer = await server.token('OBSERVER', 'observer-b');
    const { page } = await browser.page({ token: observer });
    const key = await createKey(server, admin, { label: 'observed-key' });
    await disableKeys(server, key.id);
    const lease = await leaseForNewUser(server, {}, { prefix: 'observed' });
    const action =
      /add key|edit|disable|enable|rotate|revoke|extend|change cap|reactivate|release|save|set tier|change tier/i;
    // Not /agents: that page is for users and admins.
    for (const path of dashboardPages(key.id, lease.id).filter((p) => p !== '/agents')) {
      await openPage(page, path);
      const buttons = await page.getByRole('button').allInnerTexts();
      const actions = buttons.filter((b) => action.test(b));
      expect(actions, path).toEqual([]);
      expect(await page.locator('[aria-label^="Actions for"]').count(), path).toBe(0);
      expect(await page.getByText('Not allowed').count(), path).toBe(0);
    }
  });

  it('shows a user only My agents, where they request and release; /keys says not allowed', async () => {
    await createKey(server, admin, { provider: 'VENICE', label: 'venice-for-users' });
    const { token: user } = await newUser(server, { prefix: 'agent-user' });
    const { page } = await browser.page({ token: user });
    await page.goto('/');
    await page.waitForURL(/\/agents$/, { timeout: 10_000 });
    const nav = await page.getByRole('navigation', { name: 'Pages' }).getByRole('link').allInnerTexts();
    expect(nav.map((n) => n.trim())).toEqual(['My agents']);
    await live(page);
    await page.getByLabel('Provider').first().click();
    await page.getByRole('option', { name: 'Venice' }).click();
    await page.getByLabel('Agent id').fill('my-bot');
    await page.getByRole('button', { name: 'Request lease' }).click();
    const row = page.locator('tr[data-status="ACTIVE"]', { hasText: 'my-bot' });
    await row.waitFor({ timeout: 5000 });
    // A second agent is over the FREE tier's limit: refused in words.
    await page.getByLabel('Agent id').fill('second-bot');
    await page.getByRole('button', { name: 'Request lease' }).click();
    await page.getByText(/Your tier \(FREE\) allows 1 active agent/).waitFor({ timeout: 5000 });
    await page.getByText('TIER_LIMIT_REACHED').waitFor();
    await row.getByRole('button', { name: 'Release' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Release' }).click();
    await page.locator('tr[data-status="RELEASED"]', { hasText: 'my-bot' }).waitFor({ timeout: 5000 });
    await axe(page, '/agents');

    await page.goto('/keys');
    await page.getByRole('heading', { name: 'Not allowed' }).waitFor({ timeout: 10_000 });
    expect(await page.getByText(/Your role \(USER\) cannot open this page/).count()).toBe(1);
  });

  it("sets and clears a tier's request rate per lease from the tiers page", async () => {
    const { page } = await browser.page({ token: admin });
    const rateOf = async () =>
      (await server.app.db.tierPolicy.findUniqueOrThrow({ where: { tier: 'PRO' } })).requestsPerMinute;
    await page.goto('/tiers');
    await page.getByRole('button', { name: 'Edit PRO policy' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Request rate per lease (requests a minute)').fill('120');
    await dialog.getByText('Request rate per lease: no limit → 120 a minute').waitFor({ timeout: 5000 });
    await dialog.getByRole('button', { name: 'Save policy' }).click();
    await dialog.waitFor({ state: 'detached', timeout: 5000 });
    await expect.poll(rateOf).toBe(120);
    await page.getByText('requests a minute through the metering proxy, then 429').waitFor({ timeout: 5000 });

    await page.getByRole('button', { name: 'Edit PRO policy' }).click();
    await dialog.getByLabel('Request rate per lease (requests a minute)').fill('');
    await dialog.getByText('Request rate per lease: 120 a minute → no limit').waitFor({ timeout: 5000 });
    await dialog.getByRole('button', { name: 'Save policy' }).click();
    await dialog.waitFor({ state: 'detached', timeout: 5000 });
    await expect.poll(rateOf).toBe(null);
  });

  it('says why a token is rejected, and answers /v1/nope with JSON', async () => {
    const expired = await server.token('ADMIN', 'late', { now: new Date(Date.now() - 7200_000), expiresInSeconds: 60 });
    const { page } = await browser.page();
    await page.goto('/');
    await page.getByLabel('Bearer token').fill(expired);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByTestId('signin-reason').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('signin-reason').innerText()).toContain('token rejected: expired');
    await page.getByLabel('Bearer token').fill('not-a-jwt');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByText('token rejected: malformed').waitFor({ timeout: 10_000 });
    await axe(page, 'sign-in');

    const response = await page.goto('/v1/nope');
    expect(response?.status()).toBe(404);
    expect(response?.headers()['content-type']).toMatch(/application\/json/);
    expect(JSON.parse(await response!.text()).error.code).toBe('unknown_url');
  });

  it('offers development sign-in on the generated secret, and returns to sign-in when the token expires', async () => {
    const { page } = await browser.page();
    await page.goto('/tiers');
    await page.getByRole('button', { name: /Sign in for development as ADMIN\/dev-admin/ }).click();
    await page.getByRole('heading', { name: 'Tiers' }).waitFor({ timeout: 10_000 });
    // A token that runs out mid-session sends the page back to sign-in, saying why. It lives long
    // enough for the page to render first on a busy machine (3 s was not, with several test runs at once).
    const brief = await server.token('OBSERVER', 'brief', { expiresInSeconds: 6 });
    const short = await browser.page({ token: brief });
    await short.page.goto('/keys');
    await short.page.getByRole('heading', { name: 'Keys' }).waitFor({ timeout: 10_000 });
    await short.page.getByText('token rejected: expired').waitFor({ timeout: 8000 });
  });

  // axe takes 3-6 s a page on a busy machine: ten analyses need more than the default 60 s.
  it('has no serious or critical accessibility violation on any page', async () => {
    const key = await createKey(server, admin, { label: 'a11y-key', dailyLimitUsd: '5' });
    await disableKeys(server, key.id);
    const lease = await leaseForNewUser(server, { agentId: 'a11y-agent' }, { prefix: 'a11y' });
    ok(await reportUsage(server, worker, { leaseId: lease.id, costUsd: '4.25', model: 'm' }), 'reportUsage');
    ok(await server.gql(Q.revoke, { id: lease.id, reason: 'a11y' }, admin), 'revokeLease');
    const { page } = await browser.page({ token: admin });
    for (const path of dashboardPages(key.id, lease.id)) {
      await openPage(page, path);
      await axe(page, path);
    }
    // And with a dialog open.
    await page.goto('/keys');
    await page.getByRole('button', { name: 'Add key' }).first().click();
    await page.getByRole('dialog').waitFor();
    await page.waitForTimeout(500); // the dialog's opening transition
    await axe(page, '/keys with the add-key dialog');
  }, 120_000);
});
