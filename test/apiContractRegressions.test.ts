/**
 * The negative-input corpus (issue 31): every case the API contract fuzzer (test/apiContract.test.ts)
 * ever found, kept in test/schemathesis/regressions.json and replayed here without Python, against
 * the local system with AUTH=jwt. Each case checks the answer (status, problem type or API
 * Gateway's message, field errors), that the API document declares that answer for the operation
 * and that the body matches the document's response schema, and, where the case says so, the
 * document's verdict on the request (its body and header schemas accept or reject it).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { problemTypeUri } from '../shared/http/problem';
import { openApiDocument } from '../shared/openapi/openApiDocument';
import { SCOPES } from '../shared/routes';
import { einstein, type ApiResponse } from './support/apiClient';
import { documentSchemas } from './support/documentSchemas';
import { startTestSystem } from './support/localSystem';

interface CorpusRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** false: sent without a token. */
  token?: boolean;
}

interface CorpusCase {
  name: string;
  found: string;
  request: CorpusRequest;
  before?: CorpusRequest[];
  expect: { status: number | number[]; problem?: string; gateway?: string; errors?: Array<{ pointer: string; detail: string }> };
  document?: 'accepts' | 'rejects';
}

const corpus = JSON.parse(readFileSync('test/schemathesis/regressions.json', 'utf8')) as { cases: CorpusCase[] };

type Json = Record<string, any>;
const document = openApiDocument() as Json;
const schemaFor = documentSchemas(openApiDocument());
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

/** The document's operation for a request: the path template with the most literal segments that matches. */
function operationFor(method: string, path: string): { operation: Json | undefined; pointer: string } {
  const bare = path.split('?')[0]!;
  const candidates = Object.keys(document.paths)
    .filter((template) => new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}$`).test(bare) && document.paths[template][method.toLowerCase()])
    .sort((a, b) => b.split('{').length - a.split('{').length)
    .reverse();
  const template = candidates[0];
  if (!template || !METHODS.includes(method.toLowerCase())) return { operation: document['x-unmatched-requests'], pointer: '#/x-unmatched-requests' };
  return { operation: document.paths[template][method.toLowerCase()], pointer: `#/paths/${template.replace(/~/g, '~0').replace(/\//g, '~1')}/${method.toLowerCase()}` };
}

let env: Awaited<ReturnType<typeof startTestSystem>>;
let authorization: Record<string, string>;

beforeAll(async () => {
  env = await startTestSystem({ auth: 'jwt' });
  authorization = { authorization: `Bearer ${await env.system.issuer!.sign({ scopes: SCOPES })}` };
});

afterAll(() => env?.system.stop());

/**
 * Sends a case over node:http rather than fetch, which refuses some of what fuzzers send (TRACE,
 * header values beyond Latin-1: those go as their UTF-8 bytes, as the wire carries them).
 */
async function send(request: CorpusRequest, values: Record<string, string>): Promise<ApiResponse> {
  const fill = (text: string) => text.replace(/\{(persona|key|previous\.id)\}/g, (_, name: string) => values[name] ?? `{${name}}`);
  const headers: Record<string, string> = { ...(request.token === false ? {} : authorization) };
  for (const [name, value] of Object.entries(request.headers ?? {})) headers[name] = Buffer.from(fill(value), 'utf8').toString('latin1');
  const body = request.body !== undefined ? Buffer.from(JSON.stringify(request.body)) : undefined;
  return new Promise((resolveResponse, reject) => {
    const outgoing = httpRequest(`${env.system.apiUrl}${fill(request.path)}`, { method: request.method, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } }, (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(incoming.headers)) if (typeof value === 'string') responseHeaders.set(name, value);
        resolveResponse({ status: incoming.statusCode!, headers: responseHeaders, text, json });
      });
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

describe(`the negative-input corpus: ${corpus.cases.length} cases the contract fuzzer found`, () => {
  it.each(corpus.cases.map((entry) => [entry.name, entry] as const))('%s', async (_, entry) => {
    const values: Record<string, string> = { key: randomUUID() };
    if (`${entry.request.path}${JSON.stringify(entry.before ?? [])}`.includes('{persona}')) {
      const created = await env.api('POST', '/personas', { body: einstein, headers: authorization });
      expect(created.status).toBe(201);
      values.persona = created.json.id;
    }
    for (const step of entry.before ?? []) {
      const response = await send(step, values);
      expect(response.status, `before: ${step.method} ${step.path} → ${response.text.slice(0, 200)}`).toBeLessThan(300);
      if (response.json?.id) values['previous.id'] = response.json.id;
    }
    const response = await send(entry.request, values);
    const label = `${entry.request.method} ${entry.request.path} → ${response.status} ${response.text.slice(0, 300)}`;

    const statuses = [entry.expect.status].flat();
    expect(statuses, label).toContain(response.status);
    if (entry.expect.problem) {
      expect(response.headers.get('content-type'), label).toContain('application/problem+json');
      expect(response.json.type, label).toBe(problemTypeUri(entry.expect.problem));
    }
    if (entry.expect.gateway) expect(response.json, label).toEqual({ message: entry.expect.gateway });
    if (entry.expect.errors) expect(response.json.errors, label).toEqual(expect.arrayContaining(entry.expect.errors));

    // The document tells the truth about it: the answer is declared, with this problem type and body.
    const { operation, pointer } = operationFor(entry.request.method, entry.request.path);
    const documented = operation?.responses?.[String(response.status)];
    expect(documented, `${label}: not documented at ${pointer}`).toBeDefined();
    const mediaType = response.headers.get('content-type')?.split(';')[0];
    if (mediaType && response.text && documented.content) {
      expect(Object.keys(documented.content), label).toContain(mediaType);
      const validation = schemaFor(`${pointer}/responses/${response.status}/content/${mediaType.replace(/\//g, '~1')}/schema`).safeParse(response.json);
      expect(validation.errors, label).toEqual([]);
    }

    // And about the request, where the case says what it should say.
    if (entry.document) {
      const verdicts: boolean[] = [];
      if (entry.request.body !== undefined) {
        const [bodyMediaType] = Object.keys(operation!.requestBody.content);
        verdicts.push(schemaFor(`${pointer}/requestBody/content/${bodyMediaType!.replace(/\//g, '~1')}/schema`).safeParse(entry.request.body).success);
      }
      for (const [name, value] of Object.entries(entry.request.headers ?? {})) {
        const parameter = (operation!.parameters ?? [])
          .map((item: Json) => (item.$ref ? document.components.parameters[item.$ref.split('/').pop()] : item))
          .find((item: Json) => item.in === 'header' && item.name.toLowerCase() === name.toLowerCase());
        if (parameter?.schema?.pattern) verdicts.push(new RegExp(parameter.schema.pattern, 'u').test(value.replace('{key}', values.key!)));
      }
      expect(verdicts.every(Boolean), `${label}: the document should ${entry.document === 'accepts' ? 'accept' : 'reject'} the request`).toBe(entry.document === 'accepts');
    }
  });
});
