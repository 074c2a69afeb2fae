import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalServer } from '../../local/server.js';
import { SHARED_CLONE_PATH, startTestPlane, type TestPlane } from '../support/control-plane.js';
import { tempDir } from '../support/engines.js';

// The web console in headless Chromium (Debian's, installed by test/support/ensure-chromium.mjs
// before the tests): the tenant table and the timeline of a real execution's states.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('the local web console', () => {
  let t: TestPlane;
  let server: LocalServer;
  let browser: Browser;
  let executionName: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `${CHROMIUM} is missing: run \`node test/support/ensure-chromium.mjs\` (npm test does) or set CHROMIUM_PATH`,
      );
    t = await startTestPlane();
    server = await LocalServer.start({ plane: t.plane, port: 0 });
    const r = await t.create({ tenantId: 'console-a', engine: 'sqlite' });
    expect(r.status, r.cause).toBe('SUCCEEDED');
    executionName = r.name;
    await t.plane.checkHealth();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await t?.close();
  });

  it('lists the tenants with their health and draws an execution as a timeline of its states', async () => {
    const token = await server.issuer.mint({ email: 'ops@console.example', operator: true });
    const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    const failures: string[] = [];
    page.on('pageerror', (e) => failures.push(e.message));
    await page.goto(`${server.url}/console#token=${token}`);
    const row = page.locator('tr.tenant', { hasText: 'console-a' });
    await row.waitFor();
    expect(await row.textContent()).toMatch(/READY.*HEALTHY.*sqlite/);
    await row.click();
    const timeline = page.locator(`section.timeline[data-execution="${executionName}"]`);
    await timeline.waitFor();
    const states = await timeline
      .locator('.step')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-state')));
    expect(states).toEqual(SHARED_CLONE_PATH);
    expect(await timeline.textContent()).toMatch(/SUCCEEDED/);
    const widths = await timeline
      .locator('.bar')
      .evaluateAll((els) => els.map((e) => (e as unknown as { offsetWidth: number }).offsetWidth));
    expect(widths.every((w) => w >= 2)).toBe(true);
    // CONSOLE_SCREENSHOT=path keeps the picture somewhere you can look at it.
    const shot = process.env.CONSOLE_SCREENSHOT ?? join(tempDir('console'), 'timeline.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect((await stat(shot)).size).toBeGreaterThan(5_000);
    expect(failures).toEqual([]);
  });

  it('without a token says how to get one, and the API refuses a bad one', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/console`);
    await page.locator('text=clonectl console').waitFor();
    await page.goto(`${server.url}/console#token=not-a-token`);
    await page.locator('p.error').waitFor();
  });
});
