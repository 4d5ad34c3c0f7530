/**
 * How fast the console opens on a full collection: Chromium (the system's, as in the browser
 * tests) loads GET /console from the bench's API process, in a fresh browser context per run (no
 * cache). Times are the page's own clock (performance.now(), from the start of navigation):
 * - first rows: the first page of the table is on screen (the "loads in under 1 s");
 * - all loaded: every persona is in the page (the rest stream in behind the first rows);
 * - map: from switching to the map until every point is drawn (all personas already loaded).
 */
import { chromiumPath, launchChromium } from '../test/support/browser';
import { summarize, type LatencySummary } from './latencyStats';

export interface ConsoleLoadResult {
  personas: number;
  runs: number;
  firstRowsMs: LatencySummary;
  allLoadedMs: LatencySummary;
  mapMs: LatencySummary;
}

export const CONSOLE_FIRST_ROWS_TARGET_MS = 1000;

export async function measureConsoleLoad(apiUrl: string, personas: number, runs: number): Promise<ConsoleLoadResult | undefined> {
  if (!chromiumPath) return undefined;
  const browser = await launchChromium();
  const firstRows: number[] = [];
  const allLoaded: number[] = [];
  const map: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      const context = await browser.browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      await page.goto(`${apiUrl}/console#/`, { waitUntil: 'commit' });
      // Polled every animation frame: the figure is the first frame with rows (at most ~16 ms late).
      firstRows.push(await page.waitForFunction(() => (globalThis as any).document.querySelector('table.personas tbody tr') && performance.now(), undefined, { polling: 'raf', timeout: 60_000 }).then((handle) => handle.jsonValue() as Promise<number>));
      const status = `${personas.toLocaleString()} of ${personas.toLocaleString()} personas.`;
      allLoaded.push(
        await page
          .waitForFunction((text) => (globalThis as any).document.querySelector('[data-testid="browse-status"]')?.textContent?.includes(text) && performance.now(), status, { polling: 'raf', timeout: 120_000 })
          .then((handle) => handle.jsonValue() as Promise<number>),
      );
      const mapStart = await page.evaluate(() => {
        const started = performance.now();
        (globalThis as any).location.hash = '#/map';
        return started;
      });
      const mapDone = await page
        .waitForFunction((count) => (globalThis as any).document.querySelectorAll('[data-testid="map"] .points circle').length === count && performance.now(), personas, { polling: 'raf', timeout: 60_000 })
        .then((handle) => handle.jsonValue() as Promise<number>);
      map.push(mapDone - mapStart);
      await context.close();
    }
  } finally {
    await browser.close();
  }
  return { personas, runs, firstRowsMs: summarize(firstRows), allLoadedMs: summarize(allLoaded), mapMs: summarize(map) };
}
