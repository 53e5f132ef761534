// Debian's Chromium driven by playwright-core, for the dashboard's end-to-end tests, the
// screenshots and the web benchmark. The flags keep Chromium off the (closed) network; every
// launch gets a fresh temporary profile from Playwright.
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface TestBrowser {
  browser: Browser;
  /** A fresh context (its own sessionStorage) with the dashboard signed in with `token`, if given. */
  page(options?: {
    token?: string;
    viewport?: { width: number; height: number };
  }): Promise<{ page: Page; context: BrowserContext }>;
  close(): Promise<void>;
}

export async function launchBrowser(baseUrl: string): Promise<TestBrowser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  const contexts: BrowserContext[] = [];
  return {
    browser,
    async page(options = {}) {
      const context = await browser.newContext({
        baseURL: baseUrl,
        viewport: options.viewport ?? { width: 1440, height: 900 },
      });
      contexts.push(context);
      if (options.token) {
        // The dashboard keeps its token in sessionStorage: put it there before any page script runs.
        await context.addInitScript((token) => {
          if (!sessionStorage.getItem('mpk.signedIn')) {
            sessionStorage.setItem('mpk.token', token);
            sessionStorage.setItem('mpk.signedIn', '1');
          }
        }, options.token);
      }
      const page = await context.newPage();
      return { page, context };
    },
    async close() {
      for (const context of contexts) await context.close().catch(() => {});
      await browser.close();
    },
  };
}

/** Every page of the dashboard, with the detail pages of one key and one lease. */
export const dashboardPages = (keyId: string, leaseId: string) =>
  ['/', '/keys', `/keys/${keyId}`, '/leases', `/leases/${leaseId}`, '/users', '/tiers', '/audit', '/agents'] as const;

/** Opens `path` and waits until its heading is up and its queries have settled. */
export async function openPage(page: Page, path: string) {
  await page.goto(path);
  await page.getByRole('heading', { level: 1 }).first().waitFor({ timeout: 10_000 });
  await page.waitForLoadState('networkidle');
}
