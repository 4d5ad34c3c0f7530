import { startApiServer, type ApiServer } from '../../local/apiServer';

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

export interface ApiRequest {
  body?: unknown;
  /** Sent as is, bypassing JSON encoding (for malformed bodies). */
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
}

/** A tiny HTTP client for the local API server, speaking real HTTP like any user would. */
export function apiClient(baseUrl: string) {
  return async function call(method: string, path: string, request: ApiRequest = {}): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...request.headers };
    let body: string | Buffer | undefined = request.rawBody;
    if (body === undefined && request.body !== undefined) {
      body = JSON.stringify(request.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(baseUrl + path, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, text, json };
  };
}

export async function startTestApi(): Promise<{ server: ApiServer; api: ReturnType<typeof apiClient> }> {
  const server = await startApiServer({ port: 0 });
  return { server, api: apiClient(server.url) };
}

export const einsteinJson =
  '{"name":"Albert Einstein","domain":["physics","philosophy"],"modes":["Educator","Debater"],"humor_usage":"low","emotional_style":"reserved","beliefs":["Imagination is more important than knowledge"],"signature_phrases":["E=mc²"],"traits":{"openness":0.95,"conscientiousness":0.72,"extraversion":0.3,"agreeableness":0.7,"neuroticism":0.25}}';

export const einstein = JSON.parse(einsteinJson) as Record<string, unknown>;

/** A valid persona that differs by `n`, for bulk tests. */
export function samplePersona(n: number): Record<string, unknown> {
  return {
    name: `Persona ${n}`,
    domain: [`domain-${n % 7}`],
    modes: ['Educator'],
    humor_usage: (['none', 'low', 'medium', 'high'] as const)[n % 4],
    emotional_style: 'calm',
    beliefs: [`belief ${n}`],
    signature_phrases: [`phrase ${n}`],
    traits: { openness: (n % 10) / 10, conscientiousness: 0.5, extraversion: 0.5, agreeableness: 0.5, neuroticism: 0.5 },
  };
}
