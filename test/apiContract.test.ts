/**
 * The API document holds the API to its word (issue 31): Schemathesis (test/python/requirements.txt)
 * reads GET /openapi.json of the local system with AUTH=jwt and sends what the document allows and
 * what it forbids: its examples, the coverage phase's boundary and type-violating values, random
 * fuzzing, and stateful sequences along the document's links (create → get, replace, patch, delete,
 * similar and search by name; list → next page; search and similar → their first result), with
 * every check (no 5xx, documented status codes, content types, headers and response schemas,
 * schema-violating requests rejected, schema-valid ones accepted, missing required headers and
 * unsupported methods rejected, a deleted persona gone, auth not ignored). A second run without a
 * token holds the 401s to the document.
 *
 * The answers that depend on state the generated request cannot see (a stale ETag, a reused
 * Idempotency-Key, a cursor the API never issued, a query the model knows no word of) are listed
 * in EXPECTED_ANSWERS, each checked here to be declared by the document for its operation, status
 * and problem type; test/schemathesis/hooks.py accepts exactly those and nothing else.
 *
 * CONTRACT_SEED replays a run (the seed is printed); CONTRACT_EXAMPLES sets the examples per
 * operation and phase. Every failure it ever found is a case of test/schemathesis/regressions.json,
 * which test/apiContractRegressions.test.ts replays without Python.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { problemTypeUri } from '../shared/http/problem';
import { openApiDocument } from '../shared/openapi/openApiDocument';
import { routes, SCOPES } from '../shared/routes';
import { GTE_ABOVE_LTE } from '../shared/search/searchRequest';
import { samplePersona, einstein } from './support/apiClient';
import { startTestSystem } from './support/localSystem';

const SEED = Number(process.env.CONTRACT_SEED ?? 31);
/** Examples per operation and phase: with this document, about 2,300 generated cases in all (about a minute). */
const EXAMPLES = Number(process.env.CONTRACT_EXAMPLES ?? 40);
const HOOKS = resolve('test/schemathesis/hooks.py');

type Check = 'ST201' | 'ST202' | 'ST203';
interface ExpectedAnswer {
  operationId: string;
  /**
   * The Schemathesis failure it would be: ST201 schema-violating request answered otherwise than 400,
   * 401, 403-406, 409, 415, 422, 428, 429; ST202 schema-valid request answered 4xx other than 401,
   * 403, 404, 409, 429; ST203 missing required header answered otherwise than 400, 401, 403, 406, 415, 422.
   */
  failure: Check;
  status: number;
  problem: string;
  /** Only when every field error has this detail: a rule JSON Schema cannot state. */
  detail?: string;
  why: string;
}

export const EXPECTED_ANSWERS: ExpectedAnswer[] = [
  ...(['replacePersona', 'patchPersona', 'deletePersona'] as const).map((operationId) => ({
    operationId,
    failure: 'ST202' as const,
    status: 412,
    problem: 'stale-version',
    why: 'If-Match names a version that an earlier request of the run has replaced',
  })),
  ...(['createPersona', 'batchCreatePersonas'] as const).map((operationId) => ({
    operationId,
    failure: 'ST202' as const,
    status: 422,
    problem: 'idempotency-key-reused',
    why: 'an earlier request of the run sent this Idempotency-Key with another body',
  })),
  {
    operationId: 'patchPersona',
    failure: 'ST201',
    status: 412,
    problem: 'stale-version',
    why: 'a stale If-Match is answered before the patch is read (RFC 9110 §13.2.2 allows it): the patch applies to the current version only',
  },
  { operationId: 'createPersona', failure: 'ST202', status: 410, problem: 'persona-deleted', why: 'the replay of a key whose persona a later request deleted' },
  { operationId: 'listPersonas', failure: 'ST202', status: 400, problem: 'invalid-cursor', why: 'a generated cursor: only the API can sign one' },
  { operationId: 'searchPersonas', failure: 'ST202', status: 422, problem: 'query-not-embeddable', why: 'a generated query of which the embedding model knows no word' },
  ...(['searchPersonas', 'similarPersonas'] as const).map((operationId) => ({
    operationId,
    failure: 'ST202' as const,
    status: 400,
    problem: 'validation-error',
    detail: GTE_ABOVE_LTE,
    why: 'a trait range whose gte is above its lte: the one rule JSON Schema cannot state',
  })),
  {
    operationId: 'replacePersona',
    failure: 'ST203',
    status: 428,
    problem: 'precondition-required',
    why: 'a PUT without If-Match is answered 428 Precondition Required (RFC 6585 §3), as the document says',
  },
];

type Json = Record<string, any>;
const document = openApiDocument() as Json;
const routeOf = (operationId: string) => routes.find((route) => route.name === operationId)!;
const operationLabel = (operationId: string) => `${routeOf(operationId).method} ${routeOf(operationId).path}`;

/** The problem types the document lists for a status of an operation. */
function documentedProblemTypes(operationId: string, status: number): string[] {
  const route = routeOf(operationId);
  const response = document.paths[route.path]?.[route.method.toLowerCase()]?.responses?.[String(status)];
  const schema = response?.content?.['application/problem+json']?.schema;
  return (schema?.allOf ?? []).flatMap((part: Json) => part.properties?.type?.enum ?? []);
}

interface Run {
  report: Json;
  output: string;
  accepted: Array<{ operation: string; failure: string; status: number; type: string }>;
  seconds: number;
}

/** `st run` against the document of `apiUrl`; resolves with its JSON report and console output. */
async function schemathesis(apiUrl: string, options: { token?: string; phases: string; examples: number; excludeChecks?: string[] }): Promise<Run> {
  const workDir = mkdtempSync(join(tmpdir(), 'persona-contract-'));
  // The document as GET /openapi.json served it (with auth=jwt that needs a token too, so the runs
  // read it from a file).
  const documentFile = join(workDir, 'openapi.json');
  writeFileSync(documentFile, JSON.stringify(served));
  const expected = join(workDir, 'expected-answers.json');
  const acceptedLog = join(workDir, 'accepted-answers.jsonl');
  const byLabel: Record<string, Json[]> = {};
  for (const answer of EXPECTED_ANSWERS) {
    (byLabel[operationLabel(answer.operationId)] ??= []).push({ failure: answer.failure, status: answer.status, type: problemTypeUri(answer.problem), ...(answer.detail ? { detail: answer.detail } : {}) });
  }
  writeFileSync(expected, JSON.stringify(byLabel));
  writeFileSync(acceptedLog, '');
  const reportPath = join(workDir, 'report.json');
  const args = [
    'run',
    documentFile,
    '--url', apiUrl,
    '--checks', 'all',
    ...(options.excludeChecks ? ['--exclude-checks', options.excludeChecks.join(',')] : []),
    '--phases', options.phases,
    '--seed', String(SEED),
    '--max-examples', String(options.examples),
    '--workers', '2',
    '--generation-database', 'none',
    '--report', 'json',
    '--report-json-path', reportPath,
    '--no-color',
    ...(options.token ? ['--header', `Authorization: Bearer ${options.token}`] : []),
  ];
  const started = performance.now();
  const output = await new Promise<string>((resolveRun, reject) => {
    // cwd: a fresh directory, so that no schemathesis.toml or .hypothesis of the checkout is read.
    const child = spawn('st', args, {
      cwd: workDir,
      env: { ...process.env, SCHEMATHESIS_HOOKS: HOOKS, PERSONA_DB_EXPECTED_ANSWERS: expected, PERSONA_DB_ACCEPTED_ANSWERS: acceptedLog },
    });
    let text = '';
    child.stdout.on('data', (chunk) => (text += chunk));
    child.stderr.on('data', (chunk) => (text += chunk));
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new Error('Schemathesis is not installed: python3 -m pip install -r test/python/requirements.txt') : error),
    );
    child.on('close', () => resolveRun(text));
  });
  let report: Json;
  try {
    report = JSON.parse(readFileSync(reportPath, 'utf8')) as Json;
  } catch {
    throw new Error(`Schemathesis wrote no report:\n${output}`);
  }
  const accepted = readFileSync(acceptedLog, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Run['accepted'][number]);
  return { report, output, accepted, seconds: (performance.now() - started) / 1000 };
}

function summary(run: Run): string {
  const counts = new Map<string, number>();
  for (const answer of run.accepted) {
    const key = `${answer.operation} ${answer.status} ${answer.type.split('/').pop()}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, count]) => `${key} ×${count}`).join('; ') || 'none';
}

/** Fails with Schemathesis's own report (each failure with its curl reproduction) unless the run is clean. */
function expectClean(run: Run, label: string): void {
  const failures = run.report.failures as Json[];
  if (failures.length > 0 || run.report.errors.length > 0 || run.report.exit_code !== 0) {
    throw new Error(`Schemathesis ${label} (seed ${SEED}; replay with CONTRACT_SEED=${SEED}) found failures:\n${run.output}`);
  }
  expect(run.report.operations, label).toMatchObject({ selected: routes.length - 1, tested: routes.length - 1, errored: 0 });
}

let env: Awaited<ReturnType<typeof startTestSystem>>;
let served: Json;

beforeAll(async () => {
  env = await startTestSystem({ auth: 'jwt' });
  // Something to find, list and page through before the stateful phase creates its own.
  const token = await env.system.issuer!.sign({ scopes: SCOPES });
  const authorization = { authorization: `Bearer ${token}` };
  for (const body of [einstein, samplePersona(1), samplePersona(2)]) {
    expect((await env.api('POST', '/personas', { body, headers: authorization })).status).toBe(201);
  }
  await env.system.streamWorker.drain();
  const response = await env.api('GET', '/openapi.json', { headers: authorization });
  expect(response.status).toBe(200);
  served = response.json as Json;
});

afterAll(() => env?.system.stop());

describe('the API document, held to account by Schemathesis', () => {
  it('every answer the run accepts as state-dependent is one the document declares', () => {
    for (const answer of EXPECTED_ANSWERS) {
      expect(documentedProblemTypes(answer.operationId, answer.status), `${answer.operationId} ${answer.status}`).toContain(problemTypeUri(answer.problem));
    }
  });

  it('the blank-string pattern means in Python (Schemathesis) exactly what it means to the API', async () => {
    const pattern = (document.components.schemas as Json).PersonaInput.properties.name.pattern as string;
    const script = 'import re, sys, json\np = re.compile(sys.argv[1])\nprint(json.dumps([c for c in range(0x10000) if not 0xd800 <= c <= 0xdfff and p.search(chr(c)) is None]))';
    const output = await new Promise<string>((resolveRun, reject) => {
      const child = spawn('python3', ['-c', script, pattern]);
      let text = '';
      child.stdout.on('data', (chunk) => (text += chunk));
      child.on('error', reject);
      child.on('close', () => resolveRun(text));
    });
    const blankToPython = JSON.parse(output) as number[];
    const blankToApi = Array.from({ length: 0x10000 }, (_, code) => code).filter((code) => (code < 0xd800 || code > 0xdfff) && String.fromCharCode(code).trim() === '');
    expect(blankToPython).toEqual(blankToApi);
  });

  it(`with a token of all three scopes: examples, coverage, fuzzing and stateful phases, every check, 0 failures (seed ${SEED})`, async () => {
    const token = await env.system.issuer!.sign({ scopes: SCOPES, expiresIn: '1h' });
    const run = await schemathesis(env.system.apiUrl, { token, phases: 'examples,coverage,fuzzing,stateful', examples: EXAMPLES });
    console.log(
      `[contract] seed ${SEED}: ${run.report.test_cases.generated} generated cases over ${run.report.operations.tested} operations in ${run.seconds.toFixed(0)} s; ` +
        `accepted as state-dependent: ${summary(run)}`,
    );
    expectClean(run, 'with a token');
    expect(run.report.test_cases.generated).toBeGreaterThanOrEqual(1000);
    for (const phase of ['examples', 'coverage', 'fuzzing', 'stateful']) expect(run.report.phases[phase].status, phase).toBe('success');
  }, 900_000);

  it(`without a token: every operation that needs one answers the documented 401 (seed ${SEED})`, async () => {
    // Without a token, API Gateway refuses a method no route has 401 before routing (the $default
    // route needs a valid token, see x-unmatched-requests); the run with a token checks those 405s.
    const run = await schemathesis(env.system.apiUrl, { phases: 'examples,coverage,fuzzing', examples: 5, excludeChecks: ['unsupported_method'] });
    console.log(`[contract] without a token, seed ${SEED}: ${run.report.test_cases.generated} generated cases in ${run.seconds.toFixed(0)} s`);
    expectClean(run, 'without a token');
    expect(run.accepted).toEqual([]);
  }, 600_000);
});
