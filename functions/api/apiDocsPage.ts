import { httpHandler } from '../../shared/http/httpHandler';
import { webPageResponse } from '../../shared/http/webAssets';

// Swagger UI sets inline styles on its elements, hence 'unsafe-inline' for styles (never for scripts).
export const handler = httpHandler(async () =>
  webPageResponse({
    title: 'persona-db API',
    asset: 'docs',
    styleSrc: "'self' 'unsafe-inline'",
    body: '<p class="docs-links"><a href="console">Open the persona console</a> · <a href="openapi.json">openapi.json</a></p>\n<div id="swagger-ui"><noscript>This page needs JavaScript; the API document itself is at <a href="openapi.json">openapi.json</a>.</noscript></div>',
  }),
);
