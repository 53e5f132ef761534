// The dashboard's minted keys in Debian's Chromium against a real server whose scheduler runs the
// provider job queue, and a fake OpenRouter whose key-management API (demo/fake-key-admin.ts) mints
// the keys: a MINT key added through the form, a lease's own provider key on its page, a job that
// fails for good shown on the lease and key pages and announced on the overview, and its retry.
// Without Chromium the file is skipped with a note, unless MPK_REQUIRE_BROWSER is set (CI).
import { existsSync } from 'node:fs';
import AxeBuilder from '@axe-core/playwright';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeKeyAdmin, type FakeKeyAdmin } from '../demo/fake-key-admin.js';
import { type FakeUpstream, startFakeUpstream } from '../demo/fake-provider.js';
import { CHROMIUM, launchBrowser, openPage, type TestBrowser } from './support/browser.js';
import { createMintingKey, disableKeys, newUser, ok, Q, requestLease } from './support/fixtures.js';
import { type TestServer, withTestServer } from './support/server.js';

const available = existsSync(CHROMIUM);
if (!available && process.env.MPK_REQUIRE_BROWSER)
  throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium`);
if (!available) console.warn(`Skipping browser tests: no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);

/** Tries of a provider job before it is IRRECOVERABLE: two, 1 s apart (the runner's first backoff). */
const ATTEMPTS = 2;
let server: TestServer;
let browser: TestBrowser;
let admin: string;
let keyAdmin: FakeKeyAdmin;
let upstream: FakeUpstream;

async function axe(page: Page, name: string) {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${name}: ${v.id} (${v.impact}) ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual(
    [],
  );
}

const jobRow = (page: Page, kind: string, status: string) =>
  page.locator(`[data-testid="provider-jobs"] tr[data-job-kind="${kind}"][data-job-status="${status}"]`);

describe.skipIf(!available)('minted keys in the dashboard', () => {
  withTestServer({ config: { providerJobAttempts: ATTEMPTS }, roles: 'mint' }, (s) => ({ server, admin } = s));
  beforeAll(async () => {
    await disableKeys(server);
    keyAdmin = createFakeKeyAdmin({ style: 'openrouter' });
    upstream = await startFakeUpstream({ keyAdmin });
    browser = await launchBrowser(server.url);
  });
  afterAll(async () => {
    await browser?.close();
    await upstream?.close();
  });

  it(
    'adds a MINT key through the form; a lease shows its own provider key; a failed-for-good DELETE is shown ' +
      'on the lease, key and overview pages and retried from the lease page until the lease is clean',
    async () => {
      const { page } = await browser.page({ token: admin });
      await openPage(page, '/keys');
      await page.getByRole('button', { name: 'Add key' }).first().click();
      const dialog = page.getByRole('dialog');
      // SHARED by default, each mode explained where it is chosen.
      expect(await dialog.getByTestId('key-mode-words').innerText()).toMatch(/lent as it is/);
      await dialog.getByText('MINT: a provider key per lease').click();
      expect(await dialog.getByTestId('key-mode-words').innerText()).toMatch(
        /management key \(OpenRouter\) or an ADMIN key \(Venice\).*provider key of its own/,
      );
      expect(await dialog.getByLabel('Max minted keys').getAttribute('placeholder')).toBe('no cap');
      await dialog.getByLabel('Provider').first().click();
      await page.getByRole('option', { name: 'Venice' }).click();
      expect(await dialog.getByLabel('Max minted keys').getAttribute('placeholder')).toBe(
        'Venice default 500 (its per-account limit)',
      );
      await dialog.getByLabel('Provider').first().click();
      await page.getByRole('option', { name: 'OpenRouter' }).click();
      await dialog.getByLabel('Label').fill('browser-minting');
      await dialog.getByLabel('Management / admin key').fill(keyAdmin.adminKey);
      await dialog.getByLabel('Base URL').fill(upstream.url);
      await dialog.getByLabel('Default model').fill('fake-model');
      await dialog.getByLabel('Max minted keys').fill('40');
      await axe(page, '/keys with the add-key dialog on MINT');
      await dialog.getByRole('button', { name: 'Add key' }).click();
      await page.waitForURL(/\/keys\/[0-9a-f-]{36}$/, { timeout: 10_000 });
      const keyId = page.url().split('/').at(-1)!;
      expect(await page.getByTestId('minted-count').innerText()).toBe('0 in use / 40 max');
      const stored = await server.app.db.managedKey.findUniqueOrThrow({ where: { id: keyId } });
      expect(stored).toMatchObject({ mode: 'MINT', maxMintedKeys: 40, label: 'browser-minting' });
      // Editing: the mode stays what it was (said so), the cap of minted keys changes.
      await page.getByRole('button', { name: 'Edit' }).click();
      const edit = page.getByRole('dialog');
      expect(await edit.getByTestId('key-mode-words').innerText()).toMatch(/chosen when the key is added/);
      await edit.getByLabel('Max minted keys').fill('30');
      await edit.getByRole('button', { name: 'Save' }).click();
      await edit.waitFor({ state: 'detached', timeout: 5000 });
      await page.getByTestId('minted-count').filter({ hasText: '0 in use / 30 max' }).waitFor({ timeout: 5000 });
      await disableKeys(server, keyId);

      // A grant: the scheduler's runner makes the lease's own provider key at the fake.
      const user = await newUser(server, { prefix: 'minted' });
      const lease = (await requestLease(server, user.token, { provider: 'OPENROUTER', framework: 'GENERIC' })) as {
        id: string;
      };
      await openPage(page, `/leases/${lease.id}`);
      const minted = page.getByTestId('minted-key');
      await minted.locator('[data-status="ACTIVE"]').waitFor({ timeout: 10_000 });
      const made = [...keyAdmin.keys.values()][0]!;
      const panel = await minted.innerText();
      expect(await minted.locator(`[data-provider-key-id="${made.id}"]`).getAttribute('title')).toBe(made.id);
      expect(panel).toMatch(/sk-or-\.\.\.[0-9a-f]{4}/);
      expect(panel).toContain('$5.00'); // the FREE tier's cap, as the provider-side limit
      expect(await page.locator('body').innerText()).not.toContain(made.secret);
      await jobRow(page, 'CREATE', 'DONE').waitFor({ timeout: 10_000 });

      // The provider refuses the deletion every time: after its tries the job is IRRECOVERABLE. (Each
      // try reads the key's usage first, which fails too and does not stop the deletion being tried.)
      keyAdmin.failNext = { count: 2 * ATTEMPTS, status: 500 };
      ok(await server.gql(Q.revoke, { id: lease.id, reason: 'browser minting' }, admin), 'revokeLease');
      const failed = jobRow(page, 'DELETE', 'IRRECOVERABLE');
      await failed.waitFor({ timeout: 15_000 });
      expect(await failed.innerText()).toContain(`DELETE /keys/${made.id} answered 500`);
      const clean = page.getByTestId('lease-clean');
      expect(await clean.getAttribute('data-clean')).toBe('false');
      expect(await clean.innerText()).toMatch(/deleting its provider key failed for good/);
      await axe(page, '/leases/:id with a failed job');

      // The key's page lists the job (with its lease); the keys and overview pages announce it.
      await openPage(page, `/keys/${keyId}`);
      await jobRow(page, 'DELETE', 'IRRECOVERABLE').waitFor({ timeout: 5000 });
      expect(await jobRow(page, 'DELETE', 'IRRECOVERABLE').innerText()).toContain(lease.id.slice(0, 8));
      await axe(page, '/keys/:id of a MINT key with a failed job');
      await openPage(page, '/');
      const alert = page.getByTestId('failing-jobs');
      await alert.waitFor({ timeout: 5000 });
      expect(await alert.innerText()).toMatch(/1 provider job failed for good[\s\S]*DELETE for lease/);
      await axe(page, '/ with failing jobs');
      await openPage(page, '/keys');
      await page.getByTestId('failing-jobs').waitFor({ timeout: 5000 });
      // The minted key counts until its deletion is confirmed.
      expect(await page.locator(`tr[data-key-id="${keyId}"]`).innerText()).toMatch(/MINT\s*1 \/ 30/);

      // Retried from the lease page: the consequence said, the job runs again and the lease is clean.
      await page
        .getByTestId('failing-jobs')
        .getByRole('link', { name: lease.id.slice(0, 8) })
        .click();
      await page.getByTestId('minted-key').waitFor({ timeout: 10_000 });
      await failed.getByRole('button', { name: /Retry provider job/ }).click();
      const confirm = page.getByRole('dialog');
      expect(await confirm.innerText()).toMatch(
        /try to delete the provider key again now[\s\S]*not ended-and-clean[\s\S]*fails again/,
      );
      await confirm.getByRole('button', { name: 'Retry job' }).click();
      await confirm.waitFor({ state: 'detached', timeout: 5000 });
      await jobRow(page, 'DELETE', 'DONE').waitFor({ timeout: 15_000 });
      await page.locator('[data-testid="lease-clean"][data-clean="true"]').waitFor({ timeout: 10_000 });
      expect(await page.getByTestId('lease-clean').innerText()).toMatch(/deleted at the provider/);
      expect(made.deletedAt).not.toBeNull();
      expect(made.deletes).toBe(1);
      const retried = await server.app.db.auditEntry.findFirst({ where: { action: 'providerJob.retry' } });
      expect(retried?.actorId).toBe('admin-mint');

      // Nothing fails any more: the overview's alert is gone.
      await openPage(page, '/');
      expect(await page.getByTestId('failing-jobs').count()).toBe(0);
    },
  );

  it("pages a minting key's provider jobs, newest first, 20 at a time, the cursor in the URL", async () => {
    const key = (await createMintingKey(
      server,
      admin,
      { provider: 'OPENROUTER', adminKey: keyAdmin.adminKey, url: upstream.url },
      { label: 'browser-paged-jobs' },
    )) as { id: string };
    await disableKeys(server, key.id);
    // Eleven leases granted and revoked: a CREATE and a DELETE job each, 22 in all.
    const user = await newUser(server, { prefix: 'paged', tier: 'ENTERPRISE', admin });
    for (let i = 0; i < 11; i++) {
      const lease = (await requestLease(server, user.token, {
        provider: 'OPENROUTER',
        framework: 'GENERIC',
        agentId: `paged-${i}`,
      })) as { id: string };
      ok(await server.gql(Q.revoke, { id: lease.id, reason: 'paging' }, admin), 'revokeLease');
    }
    const newestFirst = (
      await server.app.db.providerJob.findMany({ where: { mintingKeyId: key.id }, orderBy: { id: 'desc' } })
    ).map((j) => String(j.id));
    expect(newestFirst).toHaveLength(22);

    const { page } = await browser.page({ token: admin });
    await openPage(page, `/keys/${key.id}`);
    const jobs = page.getByTestId('provider-jobs');
    const shownIds = () =>
      jobs.locator('tr[data-job-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-job-id')));
    await jobs.getByText('20 shown of 22 jobs').waitFor({ timeout: 10_000 });
    expect(await shownIds()).toEqual(newestFirst.slice(0, 20));
    expect(await jobs.getByRole('button', { name: 'Previous' }).isDisabled()).toBe(true);

    await jobs.getByRole('button', { name: 'Next' }).click();
    await page.waitForURL(/[?&]after=/, { timeout: 5000 });
    await jobs.getByText('2 shown of 22 jobs').waitFor({ timeout: 10_000 });
    expect(await shownIds()).toEqual(newestFirst.slice(20));
    expect(await jobs.getByRole('button', { name: 'Next' }).isDisabled()).toBe(true);
    await axe(page, '/keys/:id on its second page of provider jobs');

    // A reload keeps the page (the cursor is in the URL); Previous goes back to the newest.
    await page.reload();
    await jobs.getByText('2 shown of 22 jobs').waitFor({ timeout: 10_000 });
    await jobs.getByRole('button', { name: 'Previous' }).click();
    await page.waitForURL(/[?&]before=/, { timeout: 5000 });
    await jobs.getByText('20 shown of 22 jobs').waitFor({ timeout: 10_000 });
    expect(await shownIds()).toEqual(newestFirst.slice(0, 20));
  });
});
