import { httpHandler } from '../../shared/http/httpHandler';
import { ProblemError } from '../../shared/http/problem';
import { allowedMethodsForPath, methodNotAllowedProblem } from '../../shared/routeMatching';

/** The API's `$default` route: a known path with another method is a 405, anything else a 404. */
export const handler = httpHandler(async (event) => {
  const allowed = allowedMethodsForPath(event.rawPath);
  if (allowed.length > 0) throw methodNotAllowedProblem(event.requestContext.http.method, event.rawPath, allowed);
  throw new ProblemError(404, 'route-not-found', `No route matches ${event.requestContext.http.method} ${event.rawPath}; see GET /openapi.json for the API.`);
});
