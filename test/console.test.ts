/**
 * The persona console (GET /console) and the API docs page (GET /docs) in a real browser:
 * Debian's Chromium driven by playwright-core, against the whole local system (the same handlers,
 * DynamoDB Local, the local Qdrant server, the stream worker) with seeded personas. Every user
 * flow of the console runs here; screenshots of each main view go to test-artifacts/console/
 * (git-ignored). Without a Chromium the browser tests are skipped with a message saying how to
 * install one; the HTTP checks of the pages and assets run regardless.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { benchPersona } from '../bench/personaCorpus';
import { TRAIT_NAMES } from '../shared/persona/schema';
import { startTestSystem } from './support/localSystem';
import { CHROMIUM_MISSING, chromiumPath, collectBrowserErrors, launchChromium, type Page, type TestBrowser } from './support/browser';
import { pastryChef, jazzDrummer } from './support/searchFixtures';
import { einstein } from './support/apiClient';
import { MINILM_MODEL_DIR, sharedReason } from './support/sharedAssets';

const ARTIFACTS = path.resolve('test-artifacts', 'console');
const SEEDED = 150;

let env: Awaited<ReturnType<typeof startTestSystem>>;
let seeded: Array<Record<string, any>> = [];

beforeAll(async () => {
  // Searches are judged by a real sentence encoder where ../shared has one, else by the generated test model.
  env = await startTestSystem({}, MINILM_MODEL_DIR ? { modelDir: MINILM_MODEL_DIR } : {});
  const personas = [einstein, pastryChef, jazzDrummer, ...Array.from({ length: SEEDED - 3 }, (_, n) => benchPersona(n))];
  for (let start = 0; start < personas.length; start += 100) {
    const response = await env.api('POST', '/personas/batch', { body: { personas: personas.slice(start, start + 100) } });
    expect(response.status).toBe(200);
    expect(response.json.failed).toBe(0);
  }
  seeded = (await env.api('GET', '/personas?limit=100')).json.items;
  let page = await env.api('GET', '/personas?limit=100');
  seeded = page.json.items;
  while (page.json.next_cursor) {
    page = await env.api('GET', `/personas?limit=100&cursor=${encodeURIComponent(page.json.next_cursor)}`);
    seeded.push(...page.json.items);
  }
  expect(seeded).toHaveLength(SEEDED);
  await env.system.streamWorker.drain();
});
afterAll(() => env?.system.stop());

const byName = (name: string) => seeded.find((persona) => persona.name === name)!;

describe('the pages and their assets over HTTP', () => {
  it('GET /console and GET /docs are HTML shells whose policy allows scripts and requests of their own origin only', async () => {
    for (const [path, asset] of [['/console', 'console'], ['/docs', 'docs']]) {
      const response = await env.api('GET', path!);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const policy = response.headers.get('content-security-policy')!;
      expect(policy).toContain("default-src 'none'");
      expect(policy).toContain("script-src 'self'");
      expect(policy).toContain("connect-src 'self'");
      expect(policy).not.toMatch(/script-src[^;]*unsafe/);
      expect(response.text).toContain(`<script type="module" src="assets/${asset}.js"></script>`);
      // No CDN: every script and stylesheet the page names is relative to its own origin.
      expect(response.text).not.toMatch(/(src|href)="(https?:)?\/\//);
    }
  });

  it('assets come with an ETag (If-None-Match answers 304), gzip when accepted, and a 404 problem for unknown names', async () => {
    const plain = await env.api('GET', '/assets/console.js', { headers: { 'accept-encoding': 'identity' } });
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(plain.headers.get('content-encoding')).toBeNull();
    const etag = plain.headers.get('etag')!;
    expect(etag).toMatch(/^"[\w-]{22}"$/);
    expect(plain.headers.get('cache-control')).toBe('no-cache');

    // fetch() would gunzip transparently; a raw request shows the encoded body.
    const { request } = await import('node:http');
    const gzipped = await new Promise<{ status: number; encoding: string | undefined; body: Buffer }>((resolve, reject) => {
      request(`${env.system.apiUrl}/assets/console.js`, { headers: { 'accept-encoding': 'gzip, deflate' } }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode!, encoding: response.headers['content-encoding'], body: Buffer.concat(chunks) }));
      })
        .on('error', reject)
        .end();
    });
    expect(gzipped.status).toBe(200);
    expect(gzipped.encoding).toBe('gzip');
    expect(gzipped.body.length).toBeLessThan(plain.text.length / 2);
    expect(gunzipSync(gzipped.body).toString('utf8')).toBe(plain.text);

    const revalidated = await env.api('GET', '/assets/console.js', { headers: { 'if-none-match': etag } });
    expect(revalidated.status).toBe(304);
    expect(revalidated.text).toBe('');

    // A name longer than the file system allows (ENAMETOOLONG) is a 404 as well, not a 500.
    for (const name of ['nope.js', '..%2Fpackage.json', '.env', 'console.map', `${'a'.repeat(300)}.js`]) {
      const missing = await env.api('GET', `/assets/${name}`);
      expect(missing.status, name).toBe(404);
      expect(missing.headers.get('content-type')).toContain('application/problem+json');
    }
  });

  it('a name that is no asset is not remembered: anonymous requests for random names cannot grow the function\'s cache', async () => {
    // The route is public, so a miss must cost no memory: the name is looked up again next time
    // (here it has appeared meanwhile, which a remembered miss would keep answering 404).
    const name = `late-${randomUUID()}.js`;
    expect((await env.api('GET', `/assets/${name}`)).status).toBe(404);
    const file = path.join(process.env.WEB_ASSETS_DIR!, name);
    writeFileSync(file, 'export {};\n');
    try {
      const found = await env.api('GET', `/assets/${name}`, { headers: { 'accept-encoding': 'identity' } });
      expect(found.status).toBe(200);
      expect(found.text).toBe('export {};\n');
    } finally {
      rmSync(file);
    }
  });
});

if (!chromiumPath) {
  console.warn(`[console.test] browser tests skipped: ${CHROMIUM_MISSING}`);
  describe('the console in Chromium', () => {
    it.skip(`skipped: ${CHROMIUM_MISSING}`, () => undefined);
  });
}

describe.skipIf(!chromiumPath)('the console in Chromium', () => {
  let browser: TestBrowser;
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    rmSync(ARTIFACTS, { recursive: true, force: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launchChromium();
    page = await browser.browser.newPage({ viewport: { width: 1280, height: 900 } });
    errors = collectBrowserErrors(page);
  });
  afterAll(() => browser?.close());
  // "No console errors": every flow ends with none logged by the page.
  afterEach(() => {
    expect(errors).toEqual([]);
    errors.length = 0;
  });

  const open = async (fragment: string) => {
    await page.goto(`${env.system.apiUrl}/console#${fragment}`);
    await page.locator('h1').first().waitFor();
  };
  const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  const rowNames = () => page.locator('table.personas tbody tr td:first-child a').allTextContents();

  it('the first open of http://localhost:PORT/console, the README\'s URL, shows the personas: every time, and in a background tab', async () => {
    const readmeUrl = `http://localhost:${new URL(env.system.apiUrl).port}/console`;
    expect(readFileSync('README.md', 'utf8')).toContain('http://localhost:3000/console');
    const firstOpen = async (setup: (page: Page) => Promise<void> = async () => undefined) => {
      const context = await browser.browser.newContext({ viewport: { width: 1280, height: 900 } }); // a first visit: no cache, no storage
      try {
        const fresh = await context.newPage();
        const freshErrors = collectBrowserErrors(fresh);
        await setup(fresh);
        await fresh.goto(readmeUrl);
        await expect.poll(() => fresh.getByTestId('browse-status').textContent(), { timeout: 10_000 }).toContain(`${SEEDED} of ${SEEDED} personas.`);
        expect(await fresh.locator('table.personas tbody tr').count()).toBe(25);
        expect(freshErrors).toEqual([]);
      } finally {
        await context.close();
      }
    };
    for (let run = 0; run < 4; run++) await firstOpen();
    // The race the first open lost: the browse view rendered the empty store, the first page of
    // personas arrived before the view's effect subscribed to the store, and nothing re-rendered it
    // ("0 of 0 personas (loading more…)" for good). Preact runs effects after the next animation
    // frame, or after a 35 ms timer without one (preact/hooks afterNextFrame, RAF_TIMEOUT). A tab in
    // the background has no frames (MDN, Window.requestAnimationFrame: "paused in most browsers when
    // running in background tabs") and its timers run at most once a second (Chrome, "Heavy
    // throttling of chained JS timers": hidden pages' timers are checked once per second), which
    // widens that window to a second. Here: such a tab, and the first page of personas answered
    // the moment the browse view has rendered.
    for (let run = 0; run < 3; run++) {
      await firstOpen(async (fresh) => {
        let rendered!: () => void;
        const browseRendered = new Promise<void>((resolve) => (rendered = resolve));
        await fresh.exposeFunction('browseRendered', () => rendered());
        await fresh.addInitScript(() => {
          const page = globalThis as any;
          page.requestAnimationFrame = () => 0;
          const setTimeoutNow = page.setTimeout;
          page.setTimeout = (callback: () => void, ms = 0, ...rest: unknown[]) => setTimeoutNow(callback, ms > 0 ? Math.max(ms, 1000) : ms, ...rest);
          new page.MutationObserver((_: unknown, observer: { disconnect(): void }) => {
            if (!page.document.querySelector('[data-testid="browse-status"]')) return;
            observer.disconnect();
            page.browseRendered();
          }).observe(page.document, { childList: true, subtree: true });
        });
        await fresh.route(/\/personas\?limit=100$/, async (route) => {
          const response = await route.fetch();
          await browseRendered;
          await route.fulfill({ response });
        });
      });
    }
  });

  it('browse: every persona, filters with the API semantics, sortable columns, paging', async () => {
    await open('/');
    await expect.poll(() => page.getByTestId('browse-status').textContent()).toContain(`${SEEDED} of ${SEEDED} personas.`);
    expect(await rowNames()).toHaveLength(25);
    await shot('browse');

    await page.getByLabel('high').check();
    const high = seeded.filter((persona) => persona.humor_usage === 'high');
    await expect.poll(() => page.getByTestId('browse-status').textContent()).toContain(`${high.length} of ${SEEDED} personas match the filters.`);
    await page.locator('summary', { hasText: 'Trait ranges' }).click();
    await page.locator('#browse-openness-gte').fill('0.5');
    const expected = high.filter((persona) => persona.traits.openness >= 0.5);
    await expect.poll(() => page.getByTestId('browse-status').textContent()).toContain(`${expected.length} of ${SEEDED}`);

    // Sorting by openness: highest first, then lowest first.
    const firstOpenness = async () => Number(await page.locator('table.personas tbody tr:first-child td.trait-col').first().textContent());
    const opennessValues = expected.map((persona) => persona.traits.openness as number);
    await page.getByRole('button', { name: /^O/ }).click();
    await page.locator('th[aria-sort="descending"]').waitFor();
    expect(await firstOpenness()).toBe(Math.max(...opennessValues));
    await page.getByRole('button', { name: /^O/ }).click();
    await page.locator('th[aria-sort="ascending"]').waitFor();
    expect(await firstOpenness()).toBe(Math.min(...opennessValues));
    // Names sort in natural order ("Ada 9" before "Ada 10"), then reverse.
    const names = expected.map((persona) => persona.name as string).sort(new Intl.Collator('en', { numeric: true, sensitivity: 'base' }).compare);
    await page.getByRole('button', { name: /^Name/ }).click();
    expect(await rowNames()).toEqual(names.slice(0, 25));
    await page.getByRole('button', { name: /^Name/ }).click();
    expect(await rowNames()).toEqual(names.reverse().slice(0, 25));

    await page.locator('#browse-domain').fill('cooking');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await expect.poll(() => page.getByTestId('browse-status').textContent()).toContain(`${SEEDED} of ${SEEDED} personas.`);
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByText('Page 2 of 6').waitFor();
  });

  it.skipIf(!MINILM_MODEL_DIR)(`search by meaning: words the chef's persona does not hold find her first, by semantic and by the default ${sharedReason(MINILM_MODEL_DIR, 'models/all-MiniLM-L6-v2')}`, async () => {
    await open('/search');
    for (const mode of ['semantic', 'hybrid']) {
      await page.locator(`input[name="mode"][value="${mode}"]`).check();
      await page.locator('#search-query').fill('someone who bakes French breakfast breads');
      await page.getByRole('button', { name: 'Search', exact: true }).click();
      await page.locator('#results-heading', { hasText: `mode ${mode}` }).waitFor();
      await expect.poll(async () => (await page.getByTestId('search-results').locator('li a').allTextContents())[0])
        .toBe('Chloé Martin');
    }
  });

  it('search: one form for every mode the API document lists, with scores and filters', async () => {
    const document = (await env.api('GET', '/openapi.json')).json;
    const modes: string[] = document.components.schemas.SearchRequest.properties.mode.enum;
    expect(modes).toEqual(expect.arrayContaining(['semantic', 'personality', 'blend']));
    await open('/search');
    const radios = await page.locator('input[name="mode"]').evaluateAll((inputs) => inputs.map((input) => (input as unknown as { value: string }).value));
    expect(radios).toEqual(modes);

    const chef = byName('Chloé Martin');
    for (const mode of modes) {
      await page.locator(`input[name="mode"][value="${mode}"]`).check();
      const hasText = (await page.locator('#search-query').count()) > 0;
      const hasTraits = (await page.locator('#search-traits-openness').count()) > 0;
      expect([hasText, hasTraits], mode).toEqual([mode !== 'personality', mode === 'personality' || mode === 'blend']);
      if (hasText) await page.locator('#search-query').fill('croissant pastry butter dough');
      if (hasTraits) for (const trait of TRAIT_NAMES) await page.locator(`#search-traits-${trait}`).fill(String(chef.traits[trait]));
      await page.getByRole('button', { name: 'Search', exact: true }).click();
      await page.locator('#results-heading', { hasText: `mode ${mode}` }).waitFor();
      const results = page.getByTestId('search-results').locator('li');
      expect(await results.count(), mode).toBeGreaterThan(0);
      // The pastry chef matches the text and has exactly the target profile: she ranks first in each mode.
      expect(await results.first().locator('a').textContent(), mode).toBe('Chloé Martin');
      const score = Number(await results.first().locator('.score').textContent());
      expect(Number.isFinite(score), mode).toBe(true);
      if (mode === 'personality') expect(score).toBe(0);
      if (mode === 'semantic') await shot('search');
    }

    // A filter goes to the API: only personas whose humor is "high".
    await page.locator(`input[name="mode"][value="semantic"]`).check();
    await page.locator('summary', { hasText: 'Filters' }).click();
    await page.locator('.search-form').getByLabel('high').check();
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await expect.poll(async () => (await page.getByTestId('search-results').locator('li a').allTextContents())[0]).not.toBe('Chloé Martin');
    const names = await page.getByTestId('search-results').locator('li a').allTextContents();
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(byName(name).humor_usage, name).toBe('high');

    // A field the API rejects is shown beside its field.
    await page.locator('#search-query').fill('   ');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.locator('#search-query-error').waitFor();
    expect(await page.locator('#search-query-error').textContent()).toContain('must not be empty');
  });

  it('a persona page: every field, the radar (overlaid with a similar persona), similar personas by text, personality and blend with scores', async () => {
    await open('/');
    await page.locator('#browse-domain').fill('cooking');
    await page.getByRole('link', { name: 'Chloé Martin' }).click();
    await page.locator('h1', { hasText: 'Chloé Martin' }).waitFor();
    const chef = byName('Chloé Martin');
    const text = await page.locator('dl.fields').textContent();
    for (const value of [...chef.domain, ...chef.modes, chef.humor_usage, chef.emotional_style, ...chef.beliefs, ...chef.signature_phrases, chef.id]) {
      expect(text).toContain(value);
    }
    for (const trait of TRAIT_NAMES) expect(text).toContain(`${trait}${chef.traits[trait].toFixed(2)}`);
    // The radar: five axes, one polygon whose vertices sit at the trait scores.
    const radar = page.getByTestId('radar');
    expect(await radar.locator('.axis-label').allTextContents()).toEqual([...TRAIT_NAMES]);
    expect(await radar.locator('.series').count()).toBe(1);
    expect(await radar.locator('desc').textContent()).toContain('Chloé Martin: openness 0.70, conscientiousness 0.90');

    const similar = page.getByTestId('similar');
    for (const mode of ['semantic', 'personality', 'blend']) {
      const list = similar.locator('section', { has: page.locator(`#similar-${mode}`) });
      await list.locator('ol.results li').first().waitFor();
      expect(await list.locator('ol.results li').count(), mode).toBe(5);
      expect(await list.locator('.score').allTextContents()).toEqual(expect.arrayContaining([expect.stringMatching(/^-?\d/)]));
      expect(await list.locator('a').allTextContents()).not.toContain('Chloé Martin');
    }
    await page.getByTestId('versions').getByText('index v1: up to date').waitFor();

    // Overlay the first personality neighbour.
    const neighbour = similar.locator('section', { has: page.locator('#similar-personality') }).locator('li').first();
    const neighbourName = await neighbour.locator('a').textContent();
    await neighbour.getByRole('button', { name: 'overlay' }).click();
    expect(await radar.locator('.series').count()).toBe(2);
    expect(await radar.locator('.series-1').getAttribute('data-series')).toBe(neighbourName);
    expect(await page.locator('#compare').inputValue()).toBe(byName(neighbourName!).id);
    await shot('persona');
  });

  it('create: a field error from the API shows beside its field; after the fix the persona is created once', async () => {
    await open('/new');
    await page.locator('#field-name').fill('Ada Console');
    await page.locator('#field-domain').fill('computing\nmathematics');
    await page.locator('#field-modes').fill('Educator');
    await page.locator('#field-humor_usage').selectOption('low');
    await page.locator('#edit-traits-openness').fill('1.5');
    await page.getByRole('button', { name: 'Create' }).click();
    const fieldError = page.locator('#edit-traits-openness-error');
    await fieldError.waitFor();
    expect(await fieldError.textContent()).toBe('must be between 0 and 1');
    expect(await page.locator('#edit-traits-openness').getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByTestId('error-summary').textContent()).toContain('openness: must be between 0 and 1');
    // Focus moved to the summary, so a keyboard user hears what to fix.
    await expect.poll(() => page.evaluate(() => (globalThis as any).document.activeElement?.className)).toBe('summary-anchor');
    await shot('create-error');

    await page.locator('#edit-traits-openness').fill('0.8');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.locator('h1', { hasText: 'Ada Console' }).waitFor();
    await page.getByText('Saved version 1.').waitFor();
    const id = decodeURIComponent(new URL(page.url()).hash.split('/')[2]!.split('?')[0]!);
    const stored = await env.api('GET', `/personas/${id}`);
    expect(stored.json).toMatchObject({ name: 'Ada Console', domain: ['computing', 'mathematics'], modes: ['Educator'], humor_usage: 'low', version: 1 });
    expect(stored.json.traits.openness).toBe(0.8);
    expect(stored.json).not.toHaveProperty('emotional_style');
  });

  it('edit with a stale version: the 412 shows what changed, and the user reapplies their change on the latest version', async () => {
    const drummer = byName('Max Beat');
    await open(`/personas/${drummer.id}/edit`);
    await page.locator('#field-name').waitFor();
    await page.locator('#field-name').fill('Max Beat Jr.');
    // Meanwhile someone else changes the emotional style (version 2).
    const theirs = await env.api('PATCH', `/personas/${drummer.id}`, {
      rawBody: JSON.stringify({ emotional_style: 'serene' }),
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    expect(theirs.status).toBe(200);
    await page.getByRole('button', { name: 'Save' }).click();
    const conflict = page.getByTestId('conflict');
    await conflict.waitFor();
    expect(await conflict.locator('h2').textContent()).toBe('Someone saved version 2 while you were editing version 1');
    const row = conflict.locator('tbody tr');
    expect(await row.count()).toBe(1);
    expect(await row.locator('th, td').allTextContents()).toEqual(['Emotional style', 'passionate', 'serene', 'unchanged']);
    expect(await conflict.textContent()).toContain('Your changes: Name.');
    await shot('edit-conflict');

    await conflict.getByRole('button', { name: 'Reapply my changes to version 2' }).click();
    expect(await page.locator('#field-name').inputValue()).toBe('Max Beat Jr.');
    expect(await page.locator('#field-emotional_style').inputValue()).toBe('serene');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved version 3.').waitFor();
    const stored = await env.api('GET', `/personas/${drummer.id}`);
    expect(stored.json).toMatchObject({ name: 'Max Beat Jr.', emotional_style: 'serene', version: 3 });
  });

  it('delete asks for confirmation; Cancel keeps the persona, Delete removes it', async () => {
    // A persona no other test here opens or edits (list order follows random ids, so the last one could be one of those).
    const named = new Set(['Chloé Martin', 'Max Beat']);
    const victim = [...seeded].reverse().find((persona) => !named.has(persona.name))!;
    await open(`/personas/${victim.id}`);
    await page.getByRole('button', { name: 'Delete…' }).click();
    const dialog = page.locator('dialog[open]');
    await dialog.waitFor();
    expect(await dialog.locator('h2').textContent()).toBe(`Delete ${victim.name}?`);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('dialog[open]').waitFor({ state: 'detached' });
    expect((await env.api('GET', `/personas/${victim.id}`)).status).toBe(200);

    await page.getByRole('button', { name: 'Delete…' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByText(`Deleted ${victim.name}.`).waitFor();
    expect((await env.api('GET', `/personas/${victim.id}`)).status).toBe(404);
    expect(await rowNames()).not.toContain(victim.name);
  });

  it('import: a JSON lines file with one bad row creates the others and reports the bad row with its field', async () => {
    const file = path.join(tmpdir(), `console-import-${Date.now()}.jsonl`);
    const row = (n: number, openness = 0.4) => JSON.stringify({ ...benchPersona(5000 + n), name: `Imported ${n}`, traits: { ...benchPersona(5000 + n).traits, openness } });
    writeFileSync(file, [row(1), row(2, 2), '', row(3)].join('\n') + '\n');
    await open('/import');
    await page.locator('#import-file').setInputFiles(file);
    await page.getByRole('button', { name: 'Import' }).click();
    const report = page.getByTestId('import-report');
    await report.waitFor();
    expect(await report.locator('h2').textContent()).toBe('2 created, 1 rejected');
    expect(await report.locator('tbody tr td').allTextContents()).toEqual(['line 2', '#/traits/openness', 'must be between 0 and 1']);
    expect(await page.getByTestId('import-progress').textContent()).toContain('3 of 3 rows sent');
    expect(await page.locator('#import-progress').evaluate((bar) => [(bar as unknown as { value: number; max: number }).value, (bar as unknown as { value: number; max: number }).max])).toEqual([3, 3]);
    await shot('import');
    rmSync(file);
    const all = await env.api('POST', '/personas/search', { body: { mode: 'personality', traits: benchPersona(5001).traits, limit: 100, hydrate: true } });
    expect(all.status).toBe(200);

    // A CSV file goes through the same columns as the CLI's import.
    const csv = path.join(tmpdir(), `console-import-${Date.now()}.csv`);
    writeFileSync(csv, 'name,domain,modes,openness,conscientiousness,extraversion,agreeableness,neuroticism\nCsv Persona,art;music,Coach,0.1,0.2,0.3,0.4,0.5\n,art,Coach,0.1,0.2,0.3,0.4,0.5\n');
    await page.locator('#import-file').setInputFiles(csv);
    await page.getByRole('button', { name: 'Import' }).click();
    await page.locator('[data-testid="import-report"] h2', { hasText: '1 created, 1 rejected' }).waitFor();
    expect(await report.locator('tbody tr td').allTextContents()).toEqual(['line 3', '#/name', expect.stringContaining('required')]);
    rmSync(csv);
  });

  it('the map: every persona as a point, axes explained, colour by a field, hover shows the name, click and Enter open the persona', async () => {
    const total = (await env.api('GET', '/personas?limit=100')).json.items.length;
    expect(total).toBeGreaterThan(0);
    await open('/map');
    const points = page.getByTestId('map').locator('.points circle');
    const expectedCount = await countPersonas();
    await expect.poll(() => points.count()).toBe(expectedCount);
    const axes = await page.getByTestId('map-axes').textContent();
    expect(axes).toMatch(/Horizontal \(\d+% of the variance\): right is more \w+/);
    expect(axes).toMatch(/Vertical \(\d+% of the variance\): up is more \w+/);
    await page.locator('#map-colour').selectOption('openness');
    expect(await page.locator('ul.legend li').first().textContent()).toContain('openness 0');
    await page.locator('#map-colour').selectOption('humor_usage');
    expect(await page.locator('ul.legend').textContent()).toMatch(/high \(\d+\)/);

    // A point drawn on top at its own centre (points may overlap), so the pointer reaches that one.
    const uncovered = await page.evaluate(() => {
      const circles = [...(globalThis as any).document.querySelectorAll('[data-testid="map"] .points circle')];
      return circles.findIndex((circle: any) => {
        const box = circle.getBoundingClientRect();
        return (globalThis as any).document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2) === circle;
      });
    });
    expect(uncovered).toBeGreaterThanOrEqual(0);
    const point = points.nth(uncovered);
    const name = await point.getAttribute('data-name');
    await point.hover();
    expect(await page.locator('.map-active text').textContent()).toBe(name);
    await shot('map');
    await point.click();
    await page.locator('h1', { hasText: name! }).waitFor();

    // Keyboard only: focus the map, move with an arrow key, open with Enter (the mouse out of the way).
    await page.mouse.move(0, 0);
    await open('/map');
    await expect.poll(() => points.count()).toBe(expectedCount);
    await page.getByTestId('map').focus();
    await page.keyboard.press('ArrowRight');
    const chosen = await page.locator('.map-active text').textContent();
    expect(chosen).toBeTruthy();
    await page.keyboard.press('Enter');
    await page.locator('h1', { hasText: chosen! }).waitFor();
  });

  it('works by keyboard alone and at 320 px: the navigation is reachable with Tab, and no view scrolls sideways', async () => {
    // A fresh page load (not a fragment change): focus starts at the top of the document.
    await page.goto('about:blank');
    await open('/');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (globalThis as any).document.activeElement?.textContent)).toBe('Skip to content');
    let label = '';
    for (let presses = 0; presses < 10 && label !== 'Search'; presses++) {
      await page.keyboard.press('Tab');
      label = (await page.evaluate(() => (globalThis as any).document.activeElement?.textContent)) ?? '';
    }
    expect(label).toBe('Search');
    await page.keyboard.press('Enter');
    await page.locator('h1', { hasText: 'Search' }).waitFor();
    // The heading takes focus in an effect that runs after the view renders: poll for it.
    await expect.poll(() => page.evaluate(() => (globalThis as any).document.activeElement?.tagName)).toBe('H1');

    await page.setViewportSize({ width: 320, height: 700 });
    const chef = byName('Chloé Martin');
    for (const [fragment, name] of [['/', 'browse-320'], [`/personas/${chef.id}`, 'persona-320'], ['/search', ''], ['/new', ''], ['/import', ''], ['/map', '']] as const) {
      await open(fragment);
      await page.waitForLoadState('networkidle');
      const overflow = await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth - (globalThis as any).document.documentElement.clientWidth);
      expect(overflow, fragment).toBeLessThanOrEqual(0);
      if (name) await shot(name);
    }
    await page.setViewportSize({ width: 1920, height: 1080 });
    await open(`/personas/${chef.id}`);
    await page.getByTestId('similar').locator('ol.results li').first().waitFor();
    await shot('persona-1920');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('/docs: Swagger UI from the bundled package, linked from the console, tries a request against the same origin', async () => {
    await open('/');
    await page.getByRole('link', { name: 'API docs' }).click();
    await page.locator('.swagger-ui .info .title').waitFor();
    expect(await page.locator('.swagger-ui .info .title').textContent()).toContain('persona-db API');
    const operation = page.locator('#operations-personas-listPersonas');
    await operation.locator('.opblock-summary').first().click();
    await operation.getByRole('button', { name: 'Try it out' }).or(operation.getByRole('button', { name: 'Execute' })).first().waitFor();
    if (await operation.getByRole('button', { name: 'Try it out' }).count()) await operation.getByRole('button', { name: 'Try it out' }).click();
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await operation.getByRole('button', { name: 'Execute' }).click();
    await operation.locator('.live-responses-table tbody .response-col_status').first().waitFor();
    expect((await operation.locator('.live-responses-table tbody .response-col_status').first().textContent())?.trim()).toBe('200');
    expect(requests.some((url) => url.startsWith(`${env.system.apiUrl}/personas`))).toBe(true);
    expect(requests.every((url) => url.startsWith(env.system.apiUrl) || url.startsWith('data:'))).toBe(true);
    // The similar route's `ranking` object parameter (mode, fusion, weights, with the rules between
    // them) is sent as its own name=value pairs, as OpenAPI's exploded form style says.
    const similar = page.locator('#operations-search-similarPersonas');
    await similar.locator('.opblock-summary').first().click();
    if (await similar.getByRole('button', { name: 'Try it out' }).count()) await similar.getByRole('button', { name: 'Try it out' }).click();
    await similar.locator('tr[data-param-name="id"] input').fill(byName('Chloé Martin').id);
    await similar.locator('tr[data-param-name="ranking"] textarea').fill('{"mode": "blend", "weights.personality": 2}');
    requests.length = 0;
    await similar.getByRole('button', { name: 'Execute' }).click();
    await similar.locator('.live-responses-table tbody .response-col_status').first().waitFor();
    expect((await similar.locator('.live-responses-table tbody .response-col_status').first().textContent())?.trim()).toBe('200');
    const sent = new URL(requests.find((url) => url.includes('/similar'))!);
    expect(Object.fromEntries(sent.searchParams)).toMatchObject({ mode: 'blend', 'weights.personality': '2' });
    expect(await page.locator('.swagger-ui .errors-wrapper').count()).toBe(0);
    await shot('docs');
    await page.getByRole('link', { name: 'Open the persona console' }).click();
    await page.locator('h1', { hasText: 'Personas' }).waitFor();
  });
});

async function countPersonas(): Promise<number> {
  let count = 0;
  let cursor: string | null = null;
  do {
    const page: { json: { items: unknown[]; next_cursor: string | null } } = await env.api('GET', `/personas?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    count += page.json.items.length;
    cursor = page.json.next_cursor;
  } while (cursor);
  return count;
}
