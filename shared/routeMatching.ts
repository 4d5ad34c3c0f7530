import { routes, type RouteDefinition } from './routes';

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

/** Matches like API Gateway: the route with the most literal segments wins (`/personas/batch` over `/personas/{id}`). */
export function matchRoute(method: string, path: string): RouteMatch | undefined {
  const candidates = compiled
    .filter(({ route, pattern }) => (route.method === method || route.method === 'ANY') && pattern.test(path))
    .sort((a, b) => literalSegments(b.route.path) - literalSegments(a.route.path));
  const best = candidates[0];
  if (!best) return undefined;
  const values = best.pattern.exec(path)!.slice(1);
  return {
    route: best.route,
    pathParameters: Object.fromEntries(best.names.map((name, index) => [name, decodeURIComponent(values[index]!)])),
  };
}

export function allowedMethodsForPath(path: string): string[] {
  return [...new Set(compiled.filter(({ pattern }) => pattern.test(path)).map(({ route }) => route.method))];
}

export const defaultRoute = routes.find((route) => route.path === '$default')!;
