/**
 * The console against `AUTH=jwt` (the local runtime with API Gateway's JWT authorizer), in Chromium:
 * without a token the user is told to enter one; a pasted token is kept in the tab's sessionStorage
 * and sent as `Authorization: Bearer` on every API call; a token without the scope a change needs
 * gets a message saying which scope. Skipped, saying so, without a Chromium.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scope } from '../shared/routes';
import { CHROMIUM_MISSING, chromiumPath, collectBrowserErrors, launchChromium, type Page, type TestBrowser } from './support/browser';
import { samplePersona } from './support/apiClient';
import { startTestSystem } from './support/localSystem';

let env: Awaited<ReturnType<typeof startTestSystem>>;
const token = (scopes: Scope[]) => env.system.issuer!.sign({ scopes });

beforeAll(async () => {
  env = await startTestSystem({ auth: 'jwt' });
  const admin = { authorization: `Bearer ${await token(['personas:admin'])}` };
  for (const n of [1, 2, 3]) expect((await env.api('POST', '/personas', { body: { ...samplePersona(n), name: `Guarded ${n}` }, headers: admin })).status).toBe(201);
});
afterAll(() => env?.system.stop());

if (!chromiumPath) {
  describe('the console with auth=jwt in Chromium', () => {
    it.skip(`skipped: ${CHROMIUM_MISSING}`, () => undefined);
  });
}

describe.skipIf(!chromiumPath)('the console with auth=jwt in Chromium', () => {
  let browser: TestBrowser;
  let page: Page;
  let errors: string[];
  const authorizations: string[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
    page = await browser.browser.newPage({ viewport: { width: 1280, height: 900 } });
    errors = collectBrowserErrors(page);
    page.on('request', (request) => {
      if (request.resourceType() === 'fetch') authorizations.push(request.headers().authorization ?? '');
    });
  });
  afterAll(() => browser?.close());

  it('asks for a token, sends the pasted one as a bearer token, and names the scope a refused change needs', async () => {
    await page.goto(`${env.system.apiUrl}/console#/`);
    await page.getByText('The API wants a valid token').first().waitFor();

    const reader = await token(['personas:read']);
    await page.getByRole('button', { name: /API token/ }).click();
    await page.locator('#token-input').fill(reader);
    await page.getByRole('button', { name: 'Save and reload' }).click();
    await expect.poll(() => page.getByTestId('browse-status').textContent()).toContain('3 of 3 personas.');
    expect(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(key: string): string | null } }).sessionStorage.getItem('persona-db.bearer-token'))).toBe(reader);
    expect(authorizations.filter(Boolean).every((value) => value === `Bearer ${reader}`)).toBe(true);
    expect(authorizations.filter(Boolean).length).toBeGreaterThan(0);

    // Read-only: a delete is refused by the gateway (403) and the console says which scope it needs.
    await page.getByRole('link', { name: 'Guarded 1' }).click();
    await page.getByRole('button', { name: 'Delete…' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByText(/lacks the scope[^]*personas:write/).first().waitFor();
    expect((await env.api('GET', '/personas?limit=10', { headers: { authorization: `Bearer ${reader}` } })).json.items).toHaveLength(3);
    // The 401 and 403 answers are the expected ones (Chromium logs them, the helper leaves 4xx out).
    expect(errors).toEqual([]);
  });
});
