/**
 * The /docs page: Swagger UI from its npm package (swagger-ui-dist), bundled by esbuild, reading
 * the API document of the same origin. "Try it out" sends requests to this origin; the console's
 * bearer token (auth=jwt stages) is added to them when the user has entered one.
 */
import SwaggerUIBundle from 'swagger-ui-dist/swagger-ui-bundle.js';
import 'swagger-ui-dist/swagger-ui.css';
import './docs.css';
import { authorizationHeader } from '../console/token';

SwaggerUIBundle({
  url: new URL('openapi.json', window.location.href).pathname,
  dom_id: '#swagger-ui',
  deepLinking: true,
  tryItOutEnabled: true,
  // No call to the public validator service: the page talks to its own origin only.
  validatorUrl: null,
  requestInterceptor: (request: { headers: Record<string, string> }) => {
    const authorization = authorizationHeader();
    if (authorization && !request.headers.Authorization) request.headers.Authorization = authorization;
    return request;
  },
});
