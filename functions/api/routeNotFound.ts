import { httpHandler } from '../../shared/http/httpHandler';
import { ProblemError } from '../../shared/http/problem';
import { allowedMethodsForPath } from '../../shared/routeMatching';

/** The API's `$default` route: a known path with another method is a 405, anything else a 404. */
export const handler = httpHandler(async (event) => {
  const allowed = allowedMethodsForPath(event.rawPath);
  if (allowed.length > 0) {
    throw new ProblemError(405, 'method-not-allowed', `${event.requestContext.http.method} is not allowed on ${event.rawPath}; use ${allowed.join(', ')}.`, {
      headers: { Allow: allowed.join(', ') },
    });
  }
  throw new ProblemError(404, 'route-not-found', `No route matches ${event.requestContext.http.method} ${event.rawPath}; see GET /openapi.json for the API.`);
});
