import { httpHandler } from '../../shared/http/httpHandler';
import { webPageResponse } from '../../shared/http/webAssets';

export const handler = httpHandler(async () =>
  webPageResponse({
    title: 'Persona console',
    asset: 'console',
    body: '<div id="app"><noscript>The persona console needs JavaScript. The API document is at <a href="docs">/docs</a>.</noscript></div>',
  }),
);
