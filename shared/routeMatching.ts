import { ProblemError } from './http/problem';
import { routeMethods, routes, type RouteDefinition } from './routes';

export interface RouteMatch {
  route: RouteDefinition;
  pathParameters: Record<string, string>;
}

const compiled = routes
  .filter((route) => route.path !== '$default')
  .map((route) => ({
    route,
    names: [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]!),
    pattern: new RegExp('^' + route.path.replace(/\{\w+\}/g, '([^/]+)') + '$'),
  }));

const literalSegments = (path: string) => path.split('/').filter((segment) => !segment.startsWith('{')).length;

/** A percent-escape that is not UTF-8 (`%ff`) stays as sent; the parameter's own check then rejects it. */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Matches like API Gateway: the route with the most literal segments wins (`/personas/batch` over `/personas/{id}`). */
export function matchRoute(method: string, path: string): RouteMatch | undefined {
  const candidates = compiled
    .filter(({ route, pattern }) => (routeMethods(route).includes(method as RouteDefinition['method']) || route.method === 'ANY') && pattern.test(path))
    .sort((a, b) => literalSegments(b.route.path) - literalSegments(a.route.path));
  const best = candidates[0];
  if (!best) return undefined;
  const values = best.pattern.exec(path)!.slice(1);
  return {
    route: best.route,
    pathParameters: Object.fromEntries(best.names.map((name, index) => [name, decodePathSegment(values[index]!)])),
  };
}

const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * The methods of the resource at `path`: those of its most specific route path, so that
 * /personas/batch has POST only, although /personas/{id} matches it too.
 */
export function allowedMethodsForPath(path: string): string[] {
  const matching = compiled.filter(({ pattern }) => pattern.test(path));
  const mostLiterals = Math.max(...matching.map(({ route }) => literalSegments(route.path)));
  const methods = new Set(matching.filter(({ route }) => literalSegments(route.path) === mostLiterals).flatMap(({ route }) => routeMethods(route)));
  return METHOD_ORDER.filter((method) => methods.has(method as RouteDefinition['method']));
}

export function methodNotAllowedProblem(method: string, path: string, allowed: readonly string[]): ProblemError {
  return new ProblemError(405, 'method-not-allowed', `${method} is not allowed on ${path}; use ${allowed.join(', ')}.`, {
    headers: { Allow: allowed.join(', ') },
  });
}

export const defaultRoute = routes.find((route) => route.path === '$default')!;
