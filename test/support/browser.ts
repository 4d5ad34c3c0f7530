/**
 * Chromium for the browser tests: the system's browser (Debian's `chromium` package), driven by
 * playwright-core, which never downloads a browser of its own. Each launch gets a fresh profile
 * (playwright's own temporary --user-data-dir, removed when the browser closes).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].filter(
  (path): path is string => !!path,
);

export const chromiumPath: string | undefined = CANDIDATES.find((path) => existsSync(path));

export const CHROMIUM_MISSING =
  'no Chromium found (looked for $CHROMIUM_PATH, /usr/bin/chromium, /usr/bin/chromium-browser, /usr/bin/google-chrome): ' +
  'install Debian\'s browser with `apt-get update && apt-get install -y chromium` (as .ci/run does) or set CHROMIUM_PATH';

export interface TestBrowser {
  browser: Browser;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: chromiumPath!,
    headless: true,
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
  return {
    browser,
    close: () => browser.close(),
  };
}

/**
 * Errors of a page, so a test can assert there were none: uncaught exceptions, console.error and
 * console.warn calls, failed requests, server errors (5xx), and any failed page, script or
 * stylesheet load. Chromium also logs every 4xx answer to fetch() ("Failed to load resource");
 * those are API answers the page handles (a 400 shown beside its field, a 412 conflict, a 409
 * "not indexed yet" it retries) and are left out; which ones each flow expects, its test asserts.
 */
export function collectBrowserErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() !== 'error' && message.type() !== 'warning') return;
    if (/^Failed to load resource: the server responded with a status of 4\d\d/.test(message.text())) return;
    errors.push(`console.${message.type()}: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    const reason = request.failure()?.errorText;
    // The console aborts its own API calls when the user leaves a view before they finish; that is not a failure.
    if (reason === 'net::ERR_ABORTED' && ['fetch', 'xhr'].includes(request.resourceType())) return;
    errors.push(`request failed: ${request.method()} ${request.url()}: ${reason}`);
  });
  page.on('response', (response) => {
    const type = response.request().resourceType();
    if (response.status() >= 500 || (response.status() >= 400 && ['document', 'script', 'stylesheet', 'image', 'font'].includes(type))) {
      errors.push(`${response.status()} for ${type} ${response.url()}`);
    }
  });
  return errors;
}

export type { Browser, BrowserContext, Page };
