/**
 * The persona database as a Model Context Protocol server (the official TypeScript SDK), for agents:
 * tools to search, rank neighbours, read and list personas, and (for a caller allowed to write) to
 * create, change and delete them; every persona also as a resource, `persona://{id}`. Each tool
 * calls the API through the typed client with the caller's credentials, so scopes, tenants, limits
 * and validation hold exactly as for any other caller. Input schemas are the API's own zod schemas
 * (the ones that validate its requests); results are structured content checked against the
 * response schemas, with a short text rendering for models that read text.
 */
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { decodeJwt } from 'jose';
import { z } from 'zod';
import { ApiError, ApiNetworkError, type PersonaClient, type PersonaInput, type PersonaMergePatch, type SearchRequest, type SimilarOptions } from '../../packages/client/src/index';
import { tokenScopes } from '../http/accessControl';
import { personaListPageSchema } from '../openapi/apiSchemas';
import { listLimits } from '../persona/personaService';
import { personaInputSchema, personaMergePatchSchema, personaSchema } from '../persona/schema';
import { searchRequestSchema, similarRequestSchema } from '../search/searchRequest';
import { searchResultsSchema, similarResultsSchema } from '../search/searchResults';
import { ADMIN_SCOPE } from '../routes';

export const PERSONA_RESOURCE_SCHEME = 'persona';
export const personaUri = (id: string) => `${PERSONA_RESOURCE_SCHEME}://${id}`;

export interface PersonaMcpOptions {
  client: PersonaClient;
  /** Offer the tools that write (create, update, delete). See canWriteWith. */
  write: boolean;
  version?: string;
}

/**
 * Whether a caller gets the write tools: a bearer token whose scope (read as the API reads it:
 * `scope`, else `scp`) holds personas:write or personas:admin. No token (an open stage) or IAM
 * credentials: yes, and the API decides. The token is only read here, never trusted: the API checks it.
 */
export function canWriteWith(bearerToken: string | undefined): boolean {
  if (!bearerToken) return true;
  let claims: Record<string, unknown>;
  try {
    claims = decodeJwt(bearerToken);
  } catch {
    return false; // not a JWT: the API will refuse it, and no write tool would help
  }
  const scopes = tokenScopes(Object.fromEntries(Object.entries(claims).map(([name, value]) => [name, Array.isArray(value) ? value.join(' ') : String(value)])));
  return scopes.includes('personas:write') || scopes.includes(ADMIN_SCOPE);
}

/**
 * The same object schema without its registry id: with one, zod writes a `$ref` to a definition,
 * and MCP wants a tool's input and output schemas to be objects at the top.
 */
const inline = <Shape extends z.ZodRawShape>(schema: z.ZodObject<Shape>) => z.strictObject(schema.shape);
const personaInput = inline(personaInputSchema);
const persona = inline(personaSchema);

const personaId = z.uuid().describe('The persona id (a UUID).');
const expectedVersion = z
  .int()
  .min(1)
  .optional()
  .describe('The version you read (persona.version): the change applies only if nobody changed the persona since (If-Match); otherwise the answer is stale-version with the current version.');

/** A tool's answer: the data as structured content, and a short text for models that read text. */
const answer = (structured: Record<string, unknown>, text: string): CallToolResult => ({ structuredContent: structured, content: [{ type: 'text', text }] });

/** An API failure as a tool error the model can act on: status, problem type, detail, the invalid fields. */
function failure(error: unknown): CallToolResult {
  if (error instanceof ApiError) {
    const problem = { status: error.status, type: error.type, title: error.title, detail: error.detail, errors: error.errors };
    return { isError: true, content: [{ type: 'text', text: error.message }, { type: 'text', text: JSON.stringify(problem) }] };
  }
  if (error instanceof ApiNetworkError) return { isError: true, content: [{ type: 'text', text: `${error.message}; is the API running?` }] };
  throw error;
}

const run = (work: () => Promise<CallToolResult>) => work().catch(failure);

type Hit = { id: string; name: string; score: number };
const ranked = (items: Hit[], page: { mode: string; score_type: string; next_offset: number | null }) =>
  [
    `${items.length} result(s), mode ${page.mode}, score ${page.score_type}${page.next_offset === null ? '' : `; next page at offset ${page.next_offset}`}`,
    ...items.map((item, index) => `${index + 1}. ${item.score.toFixed(4)}  ${item.name}  ${personaUri(item.id)}`),
  ].join('\n');

const describePersona = (persona: { id: string; name: string; version: number; domain: string[] }) =>
  `${persona.name} (${persona.domain.join(', ')}), version ${persona.version}, ${personaUri(persona.id)}`;

export function createPersonaMcpServer({ client, write, version = '0.1.0' }: PersonaMcpOptions): McpServer {
  const server = new McpServer(
    { name: 'persona-db', version },
    {
      instructions:
        'A database of personas (name, domains, conversational modes, beliefs, signature phrases, humor, emotional style, Big Five traits). ' +
        'search_personas finds personas by meaning, keywords or a personality profile; similar_personas ranks the neighbours of one; get_persona reads one (also as the resource persona://{id}). ' +
        (write ? 'create_persona, update_persona and delete_persona change the database.' : 'This caller may read only.'),
    },
  );

  server.registerTool(
    'search_personas',
    {
      title: 'Search personas',
      description:
        'Ranks personas by `mode`: hybrid (meaning and keywords, the default with `query`), semantic, keyword (exact words, names), personality (closest Big Five profile to `traits`, the default with traits alone) or blend (all three). `filter` narrows by domain, modes, humor, emotional style and trait ranges. Pages: `limit` results from `offset`; next_offset continues.',
      inputSchema: searchRequestSchema,
      outputSchema: searchResultsSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (request) => run(async () => {
      const page = await client.searchPersonas(request as SearchRequest);
      return answer(page, ranked(page.items, page));
    }),
  );

  server.registerTool(
    'similar_personas',
    {
      title: 'Personas similar to one persona',
      description: 'The neighbours of the persona `id` by its stored vectors (it is never among them); modes, filters and pages as in search_personas (default mode hybrid).',
      inputSchema: z.strictObject({ id: personaId, ...similarRequestSchema.shape }),
      outputSchema: similarResultsSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ id, ...options }) => run(async () => {
      const page = await client.similarPersonas(id, options as SimilarOptions);
      return answer(page, ranked(page.items, page));
    }),
  );

  server.registerTool(
    'get_persona',
    {
      title: 'Read a persona',
      description: 'The persona with this id, as stored now; its version is what update_persona and delete_persona take as expected_version.',
      inputSchema: z.strictObject({ id: personaId }),
      outputSchema: persona,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ id }) => run(async () => {
      const persona = await client.getPersona(id);
      return answer(persona, describePersona(persona));
    }),
  );

  server.registerTool(
    'list_personas',
    {
      title: 'List personas',
      description: `One page of personas in table order (not ranked); pass next_cursor as cursor for the next page.`,
      inputSchema: z.strictObject({
        limit: z.int().min(1).max(listLimits.max).optional().describe(`Personas per page (default ${listLimits.default}).`),
        cursor: z.string().min(1).optional().describe('next_cursor of the previous page.'),
      }),
      outputSchema: personaListPageSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (query) => run(async () => {
      const page = await client.listPersonas(query);
      return answer(page, [`${page.items.length} persona(s)${page.next_cursor ? '; more with cursor next_cursor' : ''}`, ...page.items.map(describePersona)].join('\n'));
    }),
  );

  if (write) {
    server.registerTool(
      'create_persona',
      {
        title: 'Create a persona',
        description: 'Stores a new persona (version 1). Sent with an Idempotency-Key, so a retried call creates it once.',
        inputSchema: personaInput,
        outputSchema: persona,
        annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
      },
      (input) => run(async () => {
        const persona = await client.createPersona(input as PersonaInput);
        return answer(persona, `created ${describePersona(persona)}`);
      }),
    );

    server.registerTool(
      'update_persona',
      {
        title: 'Change a persona',
        description:
          'Applies `patch`, a JSON Merge Patch (RFC 7396) of the persona: members given replace, null removes an optional member, traits merge member by member. The result must be a valid persona.',
        inputSchema: z.strictObject({
          id: personaId,
          patch: inline(personaMergePatchSchema).describe('The fields to change, e.g. {"traits": {"openness": 0.9}} or {"humor_usage": null}.'),
          expected_version: expectedVersion,
        }),
        outputSchema: persona,
        annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
      },
      ({ id, patch, expected_version }) => run(async () => {
        const persona = await client.patchPersona(id, patch as PersonaMergePatch, expected_version === undefined ? {} : { ifMatch: expected_version });
        return answer(persona, `updated ${describePersona(persona)}`);
      }),
    );

    server.registerTool(
      'delete_persona',
      {
        title: 'Delete a persona',
        description: 'Deletes the persona (with expected_version, only that version). It leaves the search index within seconds.',
        inputSchema: z.strictObject({ id: personaId, expected_version: expectedVersion }),
        outputSchema: z.object({ id: z.string(), deleted: z.literal(true) }),
        annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
      },
      ({ id, expected_version }) => run(async () => {
        await client.deletePersona(id, expected_version === undefined ? {} : { ifMatch: expected_version });
        return answer({ id, deleted: true }, `deleted ${personaUri(id)}`);
      }),
    );
  }

  server.registerResource(
    'persona',
    new ResourceTemplate(`${PERSONA_RESOURCE_SCHEME}://{id}`, {
      // A listing is the first page; list_personas pages through the rest.
      list: async () => {
        const page = await client.listPersonas({ limit: listLimits.max });
        return { resources: page.items.map((persona) => ({ uri: personaUri(persona.id), name: persona.name, description: persona.domain.join(', '), mimeType: 'application/json' })) };
      },
    }),
    { title: 'Persona', description: 'A stored persona as JSON (the API document\'s Persona schema).', mimeType: 'application/json' },
    async (uri, { id }) => {
      const persona = await client.getPersona(String(id));
      return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(persona, null, 2) }] };
    },
  );

  return server;
}
