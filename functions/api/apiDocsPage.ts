import { httpHandler } from '../../shared/http/httpHandler';
import { header } from '../../shared/http/request';
import { openApiDocument } from '../../shared/openapi/openApiDocument';
import { renderDocsPage } from '../../shared/openapi/docsPage';

export const handler = httpHandler(async (event) => {
  // The curl examples name the host the page was served from.
  const baseUrl = `${header(event, 'x-forwarded-proto') ?? 'http'}://${header(event, 'host') ?? event.requestContext.domainName}`;
  return {
    statusCode: 200,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      // The page has no scripts and no external assets; the policy keeps it that way.
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
      'cache-control': 'public, max-age=300',
    },
    body: renderDocsPage(openApiDocument(), baseUrl),
  };
});
