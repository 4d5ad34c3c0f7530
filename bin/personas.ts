/**
 * `personas`: the operator's command line. Each command parses its flags, calls one function of
 * shared/operations/ and prints its report (text, or JSON with --json). See USAGE.
 */
import { createWriteStream } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createEmbedder, type EmbeddingDtype } from '../shared/embedding';
import { TEST_MODEL_HINT_DIR } from '../shared/embedding/config';
import { DEFAULT_API_URL, describeApiFailure, iamAuth, personaClientFor, type ApiTarget } from '../shared/operations/personaApiClient';
import type { SearchRequest, SearchResults } from '../packages/client/src/index';
import { sendsCredentialsInClear } from '../shared/http/loopbackHost';
import { TRAIT_NAMES } from '../shared/persona/schema';
import { SCOPES, type Scope } from '../shared/routes';
import { localEndpoints, localRuntimeConfig } from '../local/localConfig';
import { exportPersonas } from '../shared/operations/personaExport';
import { PERSONA_FILE_FORMATS, type PersonaFileFormat } from '../shared/operations/personaFileRecords';
import { importPersonas } from '../shared/operations/personaImport';
import { reindexCollection } from '../shared/operations/collectionReindex';
import { reconcileIndex, type ReconcileReport } from '../shared/operations/indexReconciler';
import { dynamoLeaseStore, leaseKey, ReconcileLeaseHeldError } from '../shared/operations/reconcileLease';
import { createDocumentClient } from '../shared/aws/dynamodb';
import { indexStatus } from '../shared/operations/indexStatus';
import { connectToStage } from '../shared/operations/stageConnections';
import { personaRepositoryFor } from '../shared/persona/personaRepository';
import { assertTenant } from '../shared/tenancy/tenancy';
import { sendLogsToStderr } from '../shared/observability';
import { progressBar } from './progressBar';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { streamClients } from '../shared/operations/personaChangeTail';
import { IN_AWS_ABOVE_PERSONAS, stepFunctionsBackfill } from '../shared/reindexAtScale/stepFunctionsBackfill';

export const USAGE = `Usage: personas <command> [options]

Commands:
  import FILE     Load personas from a JSON array, JSON lines or CSV file through POST /personas/batch.
                  Streamed, validated locally (rejected rows go to a report file), resumable and safe
                  to re-run (no duplicates). Prints the throughput at the end.
  export          Write every persona as JSON lines (stdout or --out), from the API or a table scan.
  reindex         Build a new collection (another model or dtype) from a parallel table scan, keep it
                  current with live changes, verify it, swap the alias, drop the old collection.
                  --in-aws: backfill from a DynamoDB export by the stack's Step Functions state machine
                  (default with --aws above ${IN_AWS_ABOVE_PERSONAS.toLocaleString('en-US')} personas); re-run to re-attach after an interruption.
  reconcile       Compare the table with the index (missing, stale, orphan, wrong-model points);
                  --repair fixes every difference.
  status          Counts in table and index, pending and failed changes, sync lag.
  search [QUERY]  Search through POST /personas/search (or the neighbours of --similar ID) and print
                  the ranked personas.
  migrate-tenancy Move a single-tenant stage's personas (and Idempotency-Keys) into tenant --tenant T,
                  for a stage that switches to tenancy=claim, then rebuild the index (reindex) with
                  the tenant index. Safe to re-run: it moves only what is left.
  token           Print a dev token of the local issuer (AUTH=jwt npm start) with the given scopes.
  mcp             Serve the API to AI agents as a Model Context Protocol server: over stdio for an MCP
                  client that starts it (tools to search, rank neighbours, read, list, and with the write
                  scope create, change and delete personas; personas as resources), or Streamable HTTP
                  with --http. See docs/mcp.md.
  redrive         Clear the indexer's failure destination: re-sync the personas its batches name (read
                  back from the stream within its 24 h, else by a full reconcile), delete each message
                  once its personas are in sync, report what it did. Exit code 3 when any is kept.

Target (defaults reach \`npm start\`):
  --api-url URL          API for import/export (env PERSONAS_API_URL, default ${DEFAULT_API_URL}, or
                         http://localhost:$API_PORT when API_PORT is set, as for npm start)
  --token TOKEN          bearer token sent on every API call (env PERSONAS_TOKEN), for a stage with
                         auth=jwt: personas:read for export and search, personas:write for import
  --iam                  sign every API call with SigV4, for a stage with auth=iam (AWS credentials from
                         the environment or profile, as the AWS SDK finds them; the region from the
                         ApiUrl's host name, else AWS_REGION)
  --header "NAME: VALUE" extra request header, repeatable
  --aws                  use DynamoDB in AWS (credentials and region from the AWS profile/env) instead
                         of DYNAMODB_ENDPOINT (default http://127.0.0.1:8000, or $DYNAMODB_PORT)
  Environment, as the functions read it: TABLE_NAME (personas), DYNAMODB_ENDPOINT, AWS_REGION,
  QDRANT_URL (http://127.0.0.1:6333, or $QDRANT_PORT), QDRANT_API_KEY or QDRANT_SECRET_ARN, QDRANT_COLLECTION (personas),
  EMBEDDING_MODEL_DIR, EMBEDDING_DTYPE (q8|fp32), EMBEDDING_MODEL_ID, EMBEDDING_MODEL_REVISION.
  Without EMBEDDING_MODEL_DIR and without --aws, the generated test model is used, as \`npm start\` does.

import FILE [--format json|jsonl|csv] [--batch-size 100] [--concurrency 4]
            [--checkpoint FILE.checkpoint.json] [--report FILE.rejected.jsonl]
  CSV columns: name, domain, modes, humor_usage, emotional_style, beliefs, signature_phrases,
  openness, conscientiousness, extraversion, agreeableness, neuroticism. List cells are
  ';'-separated (or a JSON array, when an item contains ';'). id/version/created_at/updated_at in
  JSON input (as export writes them) are ignored: every imported persona is new.
export [--out FILE] [--from api|table] [--tenant T]
  From the API: the personas the token's tenant sees. From the table: every persona (a tenant's
  with its tenant_id), or only tenant T's with --tenant.
migrate-tenancy --tenant T [--segments 4] [--grace-seconds N] [--skip-reindex]
reindex [--model-dir DIR] [--dtype q8|fp32] [--model-id ID] [--revision REV] [--segments 4]
        [--grace-seconds N] [--keep-old] [--in-aws | --on-this-machine] [--state-machine ARN]
  --in-aws embeds in the stack's backfill Lambdas, with the model they bundle: the model flags must
  name the same one (the run refuses another). --state-machine defaults to REINDEX_STATE_MACHINE_ARN
  (the stack output ReindexStateMachineArn).
reconcile [--repair] [--segments 4]      exit code 3 when differences remain, 4 when another reconcile
  of the index (the scheduled reconciler or another CLI run) holds the lease: it names the run and
  until when (IDEMPOTENCY_TABLE_NAME, default TABLE_NAME-idempotency; the output IdempotencyTableName)
search [QUERY] [--mode hybrid|semantic|keyword|personality|blend] [--fusion rrf|dbsf] [--explain]
       [--weights semantic=1,keyword=2] [--traits O,C,E,A,N] [--domain D,...] [--limit 10] [--similar ID]
  Modes: hybrid (default with a query, and for --similar: meaning and keywords fused), semantic
  (meaning), keyword (BM25: exact words, names), personality (default with --traits alone), blend (all three).
  --weights sets the RRF weight of rankings the mode fuses (others keep the API's defaults).
  --explain prints each result's rank and score in every ranking of the mode.
status [--failure-file $LOCAL_DATA_DIR/indexer-failures.jsonl (default .data/…)] [--queue-url SQS_URL]
token --scope personas:read[,personas:write,personas:admin] [--tenant T] [--expires 1h]
  Signs with the local issuer's key (kept in $LOCAL_DATA_DIR, default .data); --tenant sets the
  claim named by TENANT_CLAIM (default tenant_id). Use it as PERSONAS_TOKEN=$(personas token …).
mcp [--http [--port 3100] [--host 127.0.0.1]]
  stdio: calls the API (--api-url) with --token / PERSONAS_TOKEN (or --iam), and offers the write tools
  only when that token has personas:write (or admin), or there is none (or --iam: IAM decides). --http: each MCP client sends its own
  Authorization header, which goes on to the API; --token is refused there.
redrive [--queue-url SQS_URL (the stack's IndexerFailureQueueUrl output) | --failure-file FILE] [--segments 4]

Common: --json (print the report as JSON), -h/--help.

Output: results go to stdout, everything else (progress, logs, errors) to stderr. With --json, stdout
is exactly one JSON document (export writes JSON lines; with --json it needs --out and prints its
summary). A reader that stops early (personas export | head) ends the command quietly.

Exit codes: 0 done; 1 failed (the message names what failed and what to do); 2 usage mistake;
3 done, but something is left: differences remain (reconcile), failed batches were kept (redrive),
personas were not moved (migrate-tenancy); 4 another reconcile holds the lease (it names the run and
until when); 130 import interrupted (run the same command again to resume).`;

const common = {
  'api-url': { type: 'string' },
  token: { type: 'string' },
  iam: { type: 'boolean' },
  header: { type: 'string', multiple: true },
  aws: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];


class UsageError extends Error {}

type Values = Record<string, string | boolean | string[] | undefined>;

function stageEnv(values: Values): NodeJS.ProcessEnv {
  const local = localEndpoints();
  // An empty DYNAMODB_ENDPOINT means "the real DynamoDB" to tableConfig().
  return {
    ...process.env,
    DYNAMODB_ENDPOINT: values.aws ? '' : local.dynamodbEndpoint,
    QDRANT_URL: process.env.QDRANT_URL || local.qdrantUrl,
    ...(local.qdrantApiKey ? { QDRANT_API_KEY: local.qdrantApiKey } : {}),
  };
}

function apiTarget(values: Values, signal?: AbortSignal): ApiTarget {
  const headers: Record<string, string> = {};
  for (const header of (values.header as string[] | undefined) ?? []) {
    const colon = header.indexOf(':');
    if (colon <= 0) throw new UsageError(`--header takes "NAME: VALUE", got "${header}"`);
    headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
  }
  const token = ((values.token as string | undefined) || process.env.PERSONAS_TOKEN || '').trim().replace(/^Bearer\s+/i, '');
  if (token) headers.authorization ??= `Bearer ${token}`;
  const apiUrl = (values['api-url'] as string | undefined) || process.env.PERSONAS_API_URL || localEndpoints().apiUrl;
  if (values.iam) {
    if (values.token) throw new UsageError('--iam signs every request with SigV4 (auth=iam); it takes no --token');
    delete headers.authorization; // a PERSONAS_TOKEN in the environment: the signature replaces it
    return { apiUrl, headers, auth: iamAuth(apiUrl), ...(signal ? { signal } : {}) };
  }
  if (headers.authorization) warnOfTokenInClear(apiUrl);
  return { apiUrl, headers, ...(signal ? { signal } : {}) };
}

let warnedOfTokenInClear = false;
/** Warns once when the bearer token would travel unencrypted: plain http to a host off this machine. */
function warnOfTokenInClear(apiUrl: string): void {
  let url: URL;
  try {
    url = new URL(apiUrl);
  } catch {
    return; // the request itself reports the malformed URL
  }
  if (warnedOfTokenInClear || !sendsCredentialsInClear(url)) return;
  warnedOfTokenInClear = true;
  process.stderr.write(
    `warning: the bearer token goes over plain http to ${url.host}, readable by anyone on the network path and reusable until it expires; ` +
      'use the https ApiUrl of the stack (http is for npm start on this machine)\n',
  );
}

function wholeNumber(values: Values, name: string, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`--${name} takes a whole number of at least 1, got "${String(raw)}"`);
  return value;
}

/** The embedder the indexer of this target uses: EMBEDDING_* env, else (locally) the generated test model. */
async function embedderFor(values: Values, overrides: { modelDir?: string; dtype?: EmbeddingDtype; modelId?: string; revision?: string } = {}) {
  let modelDir = overrides.modelDir ?? process.env.EMBEDDING_MODEL_DIR;
  if (!modelDir && !values.aws) {
    const { generateTestModel } = await import('../lib/generatedModels/testModel');
    modelDir = (await generateTestModel()).dir;
    process.stderr.write(`embedding model: the generated test model in ${TEST_MODEL_HINT_DIR} (set EMBEDDING_MODEL_DIR or --model-dir for a real one)\n`);
  }
  return createEmbedder({
    ...(modelDir ? { modelDir } : {}),
    ...(overrides.dtype ? { dtype: overrides.dtype } : {}),
    ...(overrides.modelId ? { modelId: overrides.modelId } : {}),
    ...(overrides.revision ? { revision: overrides.revision } : {}),
  });
}

const print = (values: Values, report: unknown, text: string) => console.log(values.json ? JSON.stringify(report, null, 2) : text);

async function runImport(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...common, format: { type: 'string' }, 'batch-size': { type: 'string' }, concurrency: { type: 'string' }, checkpoint: { type: 'string' }, report: { type: 'string' } },
  });
  if (values.help) return usage();
  const [file, ...extra] = positionals;
  if (!file || extra.length > 0) throw new UsageError('import takes exactly one FILE');
  const format = values.format as PersonaFileFormat | undefined;
  if (format && !PERSONA_FILE_FORMATS.includes(format)) throw new UsageError(`--format takes ${PERSONA_FILE_FORMATS.join(', ')}`);
  const interrupt = new AbortController();
  const onSignal = () => {
    process.stderr.write('\ninterrupted: finishing the checkpoint…\n');
    interrupt.abort(new Error('interrupted'));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const bar = progressBar();
  const report = await importPersonas({
    ...apiTarget(values, interrupt.signal),
    file,
    ...(format ? { format } : {}),
    batchSize: wholeNumber(values, 'batch-size', 100),
    concurrency: wholeNumber(values, 'concurrency', 4),
    ...(values.checkpoint ? { checkpointFile: values.checkpoint } : {}),
    ...(values.report ? { reportFile: values.report } : {}),
    // Rows the API has answered (or that were rejected before sending), never rows merely read.
    onProgress: (p) => bar.update({ done: p.rowsDone, total: p.totalRows, items: p.imported, unit: 'personas', elapsedMs: p.elapsedMs, ...(p.rejected ? { note: `${p.rejected} rejected` } : {}) }),
  }).finally(() => {
    bar.done();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });
  print(
    values,
    report,
    [
      `${report.completed ? 'imported' : 'INTERRUPTED'} ${report.file} (${report.format}): ${report.rows} rows, ${report.valid} valid, ${report.rejected} rejected` +
        (report.rejected ? ` (reasons in ${report.reportFile})` : ''),
      `batches: ${report.batches} (${report.batchesSent} sent, ${report.batchesSkipped} already done by an earlier run)`,
      `throughput: ${report.personasWritten} personas written in ${(report.durationMs / 1000).toFixed(1)} s` +
        (report.personasWritten > 0 ? ` = ${report.personasPerSecond.toFixed(0)} personas/s` : '') +
        (report.personasReplayed > 0 ? `; ${report.personasReplayed} already imported by an earlier run (answered from its Idempotency-Key, not written again)` : ''),
      report.completed ? `checkpoint: ${report.checkpointFile} (a re-run sends nothing)` : `run the same command again to resume (checkpoint: ${report.checkpointFile})`,
    ].join('\n'),
  );
  return report.completed ? 0 : 130;
}

async function runExport(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...common, out: { type: 'string' }, from: { type: 'string' }, tenant: { type: 'string' } } });
  if (values.help) return usage();
  const from = values.from ?? 'api';
  if (from !== 'api' && from !== 'table') throw new UsageError('--from takes api or table');
  if (values.tenant !== undefined && from !== 'table') throw new UsageError("--tenant is for --from table; through the API the token's tenant decides");
  const tenant = values.tenant === undefined ? undefined : assertTenant(values.tenant, '--tenant');
  if (values.json && !values.out) throw new UsageError('export writes JSON lines to stdout; --json (a summary as one JSON document) needs --out FILE');
  const out = values.out ? createWriteStream(values.out) : process.stdout;
  const tableRepository = async () => {
    const stage = await connectToStage(stageEnv(values));
    return tenant === undefined ? stage.repository : personaRepositoryFor(stage.tables, tenant);
  };
  const source = from === 'api' ? { kind: 'api' as const, api: apiTarget(values) } : { kind: 'table' as const, repository: await tableRepository() };
  const result = await exportPersonas(source, out);
  if (values.out) await new Promise<void>((resolve) => (out as NodeJS.WritableStream).end(resolve));
  const summary = `exported ${result.personas} personas from the ${from} in ${(result.durationMs / 1000).toFixed(1)} s${values.out ? ` to ${values.out}` : ''}`;
  if (values.json) print(values, { ...result, from, out: values.out }, summary);
  else process.stderr.write(`${summary}\n`);
  return 0;
}

function describeReconcile(report: ReconcileReport): string {
  const lines = [`table: ${report.personas} personas; index ${report.collection} (${report.model}): ${report.points} points`];
  const kinds = Object.entries(report.byKind).filter(([, count]) => count > 0);
  lines.push(report.drift.length === 0 ? 'no differences' : `${report.drift.length} differences: ${kinds.map(([kind, count]) => `${count} ${kind}`).join(', ')}`);
  for (const entry of report.drift.slice(0, 20)) lines.push(`  ${entry.kind.padEnd(14)} ${entry.id}  ${entry.detail}`);
  if (report.drift.length > 20) lines.push(`  … ${report.drift.length - 20} more (--json lists all)`);
  if (report.repair) {
    const done = Object.entries(report.repair.actions).filter(([, count]) => count > 0);
    lines.push(`repair: ${done.map(([action, count]) => `${count} ${action}`).join(', ') || 'nothing to do'}; ${report.repair.remaining.length} differences remain`);
    for (const error of report.repair.errors) lines.push(`  error ${error}`);
  } else if (report.drift.length > 0) {
    lines.push('run `personas reconcile --repair` to fix them');
  }
  return lines.join('\n');
}

/** The CLI's reconcile lease lasts this long and is renewed as pages go (a crashed run's lease expires after it). */
const CLI_LEASE_MS = 10 * 60_000;

async function runReconcile(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...common, repair: { type: 'boolean' }, segments: { type: 'string' } } });
  if (values.help) return usage();
  const stage = await connectToStage(stageEnv(values));
  const embedder = values.repair ? await embedderFor(values) : undefined;
  try {
    const report = await reconcileIndex(
      { repository: stage.repository, qdrant: stage.qdrant, collection: stage.alias, segments: wholeNumber(values, 'segments', 4), ...(embedder ? { embedder } : {}) },
      {
        repair: !!values.repair,
        // The scheduled reconciler's lease (IDEMPOTENCY_TABLE_NAME): one run of the alias at a time.
        lease: {
          store: dynamoLeaseStore(createDocumentClient(stage.tables), stage.tables.idempotencyTableName),
          key: leaseKey(stage.alias),
          holder: `personas reconcile${values.repair ? ' --repair' : ''} on ${hostname()} (pid ${process.pid})`,
          durationMs: () => CLI_LEASE_MS,
        },
      },
    );
    print(values, report, describeReconcile(report));
    return report.remaining === 0 ? 0 : 3;
  } catch (error) {
    if (!(error instanceof ReconcileLeaseHeldError)) throw error;
    console.error(`personas reconcile: ${error.message}`);
    return 4;
  } finally {
    await embedder?.dispose();
  }
}

async function runStatus(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...common, 'failure-file': { type: 'string' }, 'queue-url': { type: 'string' } } });
  if (values.help) return usage();
  const stage = await connectToStage(stageEnv(values));
  const queueUrl = values['queue-url'];
  const report = await indexStatus({
    repository: stage.repository,
    qdrant: stage.qdrant,
    alias: stage.alias,
    tableName: stage.tables.personaTableName,
    ...(queueUrl
      ? { failureQueueDepth: () => import('../shared/operations/failureQueueDepth').then(({ failureQueueDepth }) => failureQueueDepth(queueUrl, stage.tables.region)) }
      : { failureFile: values['failure-file'] ?? `${process.env.LOCAL_DATA_DIR ?? '.data'}/indexer-failures.jsonl` }),
  });
  const lag = report.syncLagMs === null ? 'n/a' : report.syncLagMs === 0 ? '0 (index has the newest write)' : `${(report.syncLagMs / 1000).toFixed(1)} s`;
  print(
    values,
    report,
    [
      `table ${report.table.name}: ${report.table.personas} personas, newest write ${report.table.newestUpdatedAt ?? '-'}`,
      `index ${report.index.alias} -> ${report.index.collection} (${report.index.model ?? 'unknown model'}): ${report.index.points} points, newest ${report.index.newestUpdatedAt ?? '-'}`,
      `pending: ${report.pending} personas not yet (or not fully) indexed, ${report.pendingDeletes} deletes not yet applied`,
      `failed: ${report.failed ? `${report.failed.batches} batches${report.failed.records === null ? '' : ` (${report.failed.records} records)`} in ${report.failed.where}` : 'n/a'}`,
      `sync lag: ${lag}`,
      ...(report.index.embedding ? [`embedding: ${report.index.embedding}`] : []),
      ...(report.otherCollections.length ? [`other collections: ${report.otherCollections.join(', ')} (a reindex in progress or left over)`] : []),
    ].join('\n'),
  );
  return 0;
}

async function runRedrive(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...common, 'failure-file': { type: 'string' }, 'queue-url': { type: 'string' }, segments: { type: 'string' } } });
  if (values.help) return usage();
  const [{ redriveFailures }, { fileFailureSource, sqsFailureSource }, { streamClients }] = await Promise.all([
    import('../shared/operations/failureRedrive'),
    import('../shared/operations/failureSources'),
    import('../shared/operations/personaChangeTail'),
  ]);
  const queueUrl = values['queue-url'];
  const source = queueUrl ? sqsFailureSource(queueUrl) : fileFailureSource(values['failure-file'] ?? `${process.env.LOCAL_DATA_DIR ?? '.data'}/indexer-failures.jsonl`);
  const stage = await connectToStage(stageEnv(values));
  const embedder = await embedderFor(values);
  try {
    const report = await redriveFailures({
      repository: stage.repository,
      qdrant: stage.qdrant,
      collection: stage.alias,
      embedder,
      streams: streamClients(stage.tables).streams,
      source,
      segments: wholeNumber(values, 'segments', 4),
    });
    const repaired = Object.entries(report.repaired).filter(([, count]) => count > 0).map(([action, count]) => `${count} ${action}`).join(', ') || 'nothing to change';
    print(
      values,
      report,
      [
        `${report.batches} failed batch(es) in ${report.source}`,
        ...(report.batches === 0 ? [] : [
          `${report.fromStream} read back from the stream: ${report.personas} persona(s) checked, ${repaired}`,
          ...(report.reconcile ? [`${report.byReconcile} past the stream's retention: full reconcile found ${report.reconcile.found} difference(s), ${report.reconcile.remaining} remain`] : []),
          `${report.deleted} deleted (their personas are in sync), ${report.kept.length} kept`,
          ...report.kept.map((entry) => `  kept ${entry.batch}: ${entry.reason}`),
          ...report.errors.map((error) => `  error ${error}`),
        ]),
      ].join('\n'),
    );
    return report.kept.length === 0 ? 0 : 3;
  } finally {
    await embedder.dispose();
  }
}

async function runReindex(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...common,
      'model-dir': { type: 'string' },
      dtype: { type: 'string' },
      'model-id': { type: 'string' },
      revision: { type: 'string' },
      segments: { type: 'string' },
      'grace-seconds': { type: 'string' },
      'keep-old': { type: 'boolean' },
      'in-aws': { type: 'boolean' },
      'on-this-machine': { type: 'boolean' },
      'state-machine': { type: 'string' },
    },
  });
  if (values.help) return usage();
  const dtype = values.dtype as EmbeddingDtype | undefined;
  if (dtype && dtype !== 'q8' && dtype !== 'fp32') throw new UsageError('--dtype takes q8 or fp32');
  if (values['in-aws'] && values['on-this-machine']) throw new UsageError('--in-aws and --on-this-machine exclude each other');
  const stateMachineArn = values['state-machine'] || process.env.REINDEX_STATE_MACHINE_ARN || undefined;
  if (values['in-aws'] && !stateMachineArn) {
    throw new UsageError('--in-aws needs the reindex state machine: --state-machine ARN or REINDEX_STATE_MACHINE_ARN (the stack output ReindexStateMachineArn)');
  }
  const stage = await connectToStage(stageEnv(values));
  const { dynamodb } = streamClients(stage.tables);
  const tablePersonas = async () => (await dynamodb.send(new DescribeTableCommand({ TableName: stage.tables.personaTableName }))).Table?.ItemCount;
  let inAws = !!values['in-aws'];
  if (!inAws && !values['on-this-machine'] && values.aws && stateMachineArn) {
    // DescribeTable's ItemCount is refreshed about every six hours: enough to choose the path.
    const personas = (await tablePersonas()) ?? 0;
    inAws = personas > IN_AWS_ABOVE_PERSONAS;
    process.stderr.write(`reindex: about ${personas.toLocaleString('en-US')} personas: backfilling ${inAws ? `in AWS (above ${IN_AWS_ABOVE_PERSONAS.toLocaleString('en-US')}; --on-this-machine to embed here)` : 'on this machine (--in-aws to use the state machine)'}\n`);
  }
  const embedder = await embedderFor(values, {
    ...(values['model-dir'] ? { modelDir: values['model-dir'] } : {}),
    ...(dtype ? { dtype } : {}),
    ...(values['model-id'] ? { modelId: values['model-id'] } : {}),
    ...(values.revision ? { revision: values.revision } : {}),
  });
  const bar = progressBar();
  const started = performance.now();
  // The execution in AWS outlives this process: an interrupted run leaves it going, and the next run re-attaches.
  const detach = () => {
    bar.done();
    process.stderr.write('\ninterrupted: the backfill execution keeps running in AWS; run the same command again to re-attach (the new collection is kept)\n');
    process.exit(130);
  };
  if (inAws) process.once('SIGINT', detach).once('SIGTERM', detach);
  try {
    const backfill = inAws
      ? stepFunctionsBackfill({ sfn: new SFNClient({ region: stage.tables.region }), stateMachineArn: stateMachineArn!, qdrant: stage.qdrant, tablePersonas })
      : undefined;
    const report = await reindexCollection(
      { repository: stage.repository, qdrant: stage.qdrant, alias: stage.alias, tables: stage.tables, embedder },
      {
        segments: wholeNumber(values, 'segments', 4),
        ...(values['grace-seconds'] !== undefined ? { graceMs: wholeNumber(values, 'grace-seconds', 1) * 1000 } : {}),
        keepOld: !!values['keep-old'],
        // A table that needs the backfill in AWS does not fit one process's memory for a whole comparison either.
        ...(backfill ? { backfill, verification: 'paged' as const } : {}),
        onPhase: (phase, detail) => {
          bar.done();
          process.stderr.write(`reindex: ${phase}: ${detail}\n`);
        },
        // On this machine the table's size is not known up front (a scan would cost as much as the backfill): count and rate only.
        onBackfillProgress: (progress) =>
          bar.update({
            done: progress.personas,
            total: progress.totalPersonas ?? 0,
            items: progress.personas,
            unit: inAws ? 'personas (estimated)' : 'personas embedded',
            elapsedMs: performance.now() - started,
            ...(progress.note ? { note: progress.note } : {}),
          }),
      },
    );
    const changed = report.from.model !== report.to.model;
    print(
      values,
      report,
      [
        `${report.alias} now points at ${report.to.collection} (${report.to.model}); it was ${report.from.collection} (${report.from.model ?? 'unknown model'})${report.oldCollectionDropped ? ', now dropped' : ', kept (--keep-old)'}`,
        `backfill by ${report.backfill.by}${report.attached ? ` (attached: ${report.attached})` : ''}: ${report.backfill.personas} personas in ${(report.backfill.durationMs / 1000).toFixed(1)} s = ${report.backfill.personasPerSecond.toFixed(0)} personas/s${report.backfill.detail ? ` (${report.backfill.detail})` : ''}; ${report.liveChanges} live changes followed`,
        `verified: ${report.personas} personas, zero differences (${report.repairedBeforeSwap} repaired before the swap, ${report.repairedAfterSwap} after)`,
        ...(changed
          ? [
              `The model changed: restart or redeploy the indexer and the search functions with ${report.to.model} now (EMBEDDING_MODEL_DIR / EMBEDDING_DTYPE; in AWS: npm run deploy with that model).`,
              'Until then the indexer refuses to write into the new collection (its changes are retried, then land in the failure destination); run `personas reconcile --repair` after the restart.',
            ]
          : []),
      ].join('\n'),
    );
    return 0;
  } finally {
    process.off('SIGINT', detach).off('SIGTERM', detach);
    bar.done();
    dynamodb.destroy();
    await embedder.dispose();
  }
}

async function runMigrateTenancy(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...common, tenant: { type: 'string' }, segments: { type: 'string' }, 'grace-seconds': { type: 'string' }, 'skip-reindex': { type: 'boolean' } },
  });
  if (values.help) return usage();
  if (values.tenant === undefined) throw new UsageError('migrate-tenancy needs --tenant T: the tenant that receives every persona of this stage');
  const tenant = assertTenant(values.tenant, '--tenant');
  const [{ migrateToTenant }, { createDocumentClient }] = await Promise.all([import('../shared/operations/tenancyMigration'), import('../shared/aws/dynamodb')]);
  const stage = await connectToStage(stageEnv(values));
  const report = await migrateToTenant({ client: createDocumentClient(stage.tables), tables: { personas: stage.tables.personaTableName, idempotency: stage.tables.idempotencyTableName } }, tenant);
  const lines = [
    `moved ${report.moved} personas into tenant ${tenant} (${report.alreadyTenants} were already a tenant's) and ${report.idempotencyKeysMoved} Idempotency-Keys in ${(report.durationMs / 1000).toFixed(1)} s`,
    ...report.skipped.slice(0, 20).map((entry) => `  not moved ${entry.id}: ${entry.reason}`),
    ...(report.skipped.length > 0 ? [`${report.skipped.length} not moved: run the same command again`] : []),
  ];
  if (values['skip-reindex'] || report.skipped.length > 0) {
    print(values, report, [...lines, 'index not rebuilt: run `personas reindex` once every persona is moved'].join('\n'));
    return report.skipped.length > 0 ? 3 : 0;
  }
  process.stderr.write(`${lines.join('\n')}\nrebuilding the index with the tenant index (personas reindex)…\n`);
  const embedder = await embedderFor(values);
  try {
    const reindex = await reindexCollection(
      { repository: stage.repository, qdrant: stage.qdrant, alias: stage.alias, tables: stage.tables, embedder },
      {
        segments: wholeNumber(values, 'segments', 4),
        ...(values['grace-seconds'] !== undefined ? { graceMs: wholeNumber(values, 'grace-seconds', 1) * 1000 } : {}),
        onPhase: (phase, detail) => void process.stderr.write(`reindex: ${phase}: ${detail}\n`),
      },
    );
    print(values, { ...report, reindex }, [...lines, `${reindex.alias} now points at ${reindex.to.collection}: ${reindex.personas} personas, zero differences`].join('\n'));
    return 0;
  } finally {
    await embedder.dispose();
  }
}

function usage(): number {
  console.log(USAGE);
  return 0;
}

/**
 * Qdrant's answer, named with its URL, status and what to do: its client throws HTTP answers as an
 * ApiError (status, statusText, url, data: Qdrant's `{"status": {"error": …}}`) whose message is only
 * the status text ("Unauthorized").
 */
function describeQdrantAnswer(error: unknown): string | undefined {
  const answer = error as { status?: unknown; url?: unknown; statusText?: unknown; data?: { status?: { error?: unknown } } };
  if (typeof answer.status !== 'number' || typeof answer.url !== 'string' || !answer.url) return undefined;
  const said = typeof answer.data?.status?.error === 'string' ? answer.data.status.error : String(answer.statusText ?? '');
  const local = localRuntimeConfig(process.env, []);
  const fix =
    answer.status === 401 || answer.status === 403
      ? `set QDRANT_API_KEY to that Qdrant's API key (npm start's own server makes one per run and writes it to ${local.qdrantApiKeyFile}; ` +
        'the CLI reads it by itself when QDRANT_URL is unset or names that server, on QDRANT_PORT)'
      : answer.status === 404
        ? `check QDRANT_URL and QDRANT_COLLECTION (${process.env.QDRANT_COLLECTION || 'personas'}): the API and the indexer create the collection when they start`
        : 'see what Qdrant said';
  return `Qdrant at ${new URL(answer.url).origin} answered ${answer.status}${said ? ` (${said})` : ''} to ${answer.url}; ${fix}`;
}

/** DynamoDB without the table: name the endpoint and the variable that names the table. */
function describeMissingTable(error: unknown): string | undefined {
  if ((error as { name?: string }).name !== 'ResourceNotFoundException') return undefined;
  const endpoint = process.env.DYNAMODB_ENDPOINT || localEndpoints().dynamodbEndpoint;
  return `DynamoDB at ${endpoint} has no table ${process.env.TABLE_NAME || 'personas'} (${(error as Error).message}); TABLE_NAME names it (npm start creates it; in AWS: the stack's TableName output, with --aws)`;
}

/** A failure as the user should read it: what failed (URL or endpoint), its status, and what to do. */
function describeFailure(error: unknown): string {
  return describeApiFailure(error) ?? describeQdrantAnswer(error) ?? describeMissingTable(error) ?? describeConnectionFailure(error);
}

/** A connection failure names what it tried to reach (the address in the error's cause, matched to the target). */
function describeConnectionFailure(error: unknown): string {
  const message = (error as Error).message;
  const cause = (error as { cause?: { code?: string; address?: string; port?: number } }).cause ?? (error as { code?: string; address?: string; port?: number });
  const code = cause?.code;
  if (!code || !/^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|EAI_AGAIN)$/.test(code)) return message;
  const stage = stageEnv({});
  const targets = [
    { name: 'DynamoDB', url: stage.DYNAMODB_ENDPOINT, settings: 'DYNAMODB_ENDPOINT or DYNAMODB_PORT' },
    { name: 'Qdrant', url: stage.QDRANT_URL, settings: 'QDRANT_URL or QDRANT_PORT' },
    { name: 'the API', url: localEndpoints().apiUrl, settings: '--api-url, PERSONAS_API_URL or API_PORT' },
  ].filter((target) => target.url);
  const port = cause.port ?? Number(/:(\d+)\b/.exec(message)?.[1]);
  const reached = targets.filter((target) => Number(new URL(target.url!).port) === port);
  const named = (reached.length ? reached : targets).map((target) => `${target.name} at ${target.url} (set by ${target.settings})`).join(', or ');
  return `could not reach ${named}: ${code}${message.includes(code) ? '' : ` (${message})`}; is it running (npm start)?`;
}

async function runSearch(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...common,
      mode: { type: 'string' },
      fusion: { type: 'string' },
      weights: { type: 'string' },
      explain: { type: 'boolean' },
      traits: { type: 'string' },
      domain: { type: 'string' },
      limit: { type: 'string' },
      similar: { type: 'string' },
    },
  });
  if (values.help) return usage();
  const query = positionals.join(' ').trim();
  const traits = values.traits?.split(',').map(Number);
  if (traits && (traits.length !== TRAIT_NAMES.length || traits.some((value) => !(value >= 0 && value <= 1)))) {
    throw new UsageError(`--traits takes ${TRAIT_NAMES.length} numbers from 0 to 1 (${TRAIT_NAMES.join(',')}), got "${values.traits}"`);
  }
  const weights = values.weights?.split(',').map((entry) => entry.split('='));
  if (weights?.some((entry) => entry.length !== 2 || !(Number(entry[1]) > 0))) {
    throw new UsageError(`--weights takes RANKING=WEIGHT pairs, comma-separated, each weight above 0 (e.g. semantic=1,keyword=2), got "${values.weights}"`);
  }
  // Modes and fusions as typed; the API checks them and names a wrong one.
  const options = {
    ...(values.mode ? { mode: values.mode as SearchRequest['mode'] } : {}),
    ...(values.fusion ? { fusion: values.fusion as SearchRequest['fusion'] } : {}),
    ...(values.explain ? { explain: true } : {}),
    limit: wholeNumber(values, 'limit', 10),
    ...(weights ? { weights: Object.fromEntries(weights.map(([ranking, weight]) => [ranking, Number(weight)])) } : {}),
    ...(values.domain ? { filter: { domain: values.domain.split(',') } } : {}),
  };
  const client = personaClientFor(apiTarget(values));
  let answer: SearchResults;
  if (values.similar) {
    if (query || traits) throw new UsageError('--similar ranks the neighbours of a persona: give no query or --traits with it');
    answer = await client.similarPersonas(values.similar, options);
  } else {
    if (!query && !traits) throw new UsageError('search takes a QUERY, --traits or both (with --mode blend)');
    answer = await client.searchPersonas({
      ...options,
      ...(query ? { query } : {}),
      ...(traits ? { traits: Object.fromEntries(TRAIT_NAMES.map((name, i) => [name, traits[i]])) as SearchRequest['traits'] } : {}),
    });
  }
  if (values.json) {
    console.log(JSON.stringify(answer, null, 2));
    return 0;
  }
  console.log(`mode ${answer.mode}, score ${answer.score_type}`);
  answer.items.forEach((item, index) => {
    const explained = item.explain
      ? `  (${Object.entries(item.explain).map(([ranking, at]) => `${ranking} ${at.rank === null ? '-' : `#${at.rank} ${at.score!.toFixed(4)}`}`).join(', ')})`
      : '';
    console.log(`${String(index + 1).padStart(3)}. ${item.score.toFixed(4)}  ${item.name}  ${item.id}${explained}`);
  });
  return 0;
}

async function runToken(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { scope: { type: 'string', multiple: true }, tenant: { type: 'string' }, expires: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return usage();
  if (positionals.length > 0) throw new UsageError('token takes no arguments; scopes go in --scope');
  const scopes = (values.scope ?? []).flatMap((value) => value.split(',')).map((scope) => scope.trim()).filter(Boolean);
  if (scopes.length === 0) throw new UsageError(`token needs --scope (one or more of ${SCOPES.join(', ')})`);
  const unknown = scopes.filter((scope) => !SCOPES.includes(scope as Scope));
  if (unknown.length) throw new UsageError(`unknown scope ${unknown.join(', ')}; the API's scopes are ${SCOPES.join(', ')}`);
  if (values.tenant !== undefined) assertTenant(values.tenant, '--tenant');
  const { localIssuer } = await import('../local/localIssuer');
  const issuer = await localIssuer();
  let token: string;
  try {
    token = await issuer.sign({ scopes: scopes as Scope[], ...(values.tenant !== undefined ? { tenant: values.tenant } : {}), ...(values.expires ? { expiresIn: values.expires } : {}) });
  } catch (error) {
    if (error instanceof TypeError && /time period/i.test(error.message)) throw new UsageError(`--expires takes a time span such as 15m, 1h or 7d, got "${values.expires}"`);
    throw error;
  }
  console.log(token);
  return 0;
}

async function runMcp(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { ...common, http: { type: 'boolean' }, port: { type: 'string' }, host: { type: 'string' } } });
  if (values.help) return usage();
  if (positionals.length > 0) throw new UsageError('mcp takes no arguments');
  if (!values.http && (values.port !== undefined || values.host !== undefined)) throw new UsageError('--port and --host are for --http');
  const { apiUrl, auth, headers: { authorization, ...headers } = {} } = apiTarget(values);
  const target = { apiUrl, headers, ...(auth ? { auth } : {}) };
  const { serveMcpOverStdio, startMcpHttpServer } = await import('../shared/mcp/mcpTransports');
  if (!values.http) {
    await serveMcpOverStdio(target, authorization?.replace(/^Bearer\s+/i, ''));
    return 0;
  }
  if (authorization || auth) throw new UsageError('with --http each MCP client sends its own Authorization header (passed on to the API); --token, PERSONAS_TOKEN and --iam are for stdio');
  const port = values.port === undefined ? 3100 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError(`--port takes a port number from 0 (any free port) to 65535, got "${values.port}"`);
  const server = await startMcpHttpServer(target, { port, ...(values.host ? { host: values.host } : {}) });
  process.stderr.write(`MCP server (Streamable HTTP) on ${server.url}, for the API at ${target.apiUrl}; Ctrl-C stops it\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}

const commands: Record<string, (args: string[]) => Promise<number>> = {
  token: runToken,
  mcp: runMcp,
  import: runImport,
  search: runSearch,
  export: runExport,
  reindex: runReindex,
  reconcile: runReconcile,
  status: runStatus,
  redrive: runRedrive,
  'migrate-tenancy': runMigrateTenancy,
};

/** `personas export | head`: the reader has what it wanted; stop quietly (as Unix tools do on SIGPIPE) instead of "write EPIPE". */
function endQuietlyWhenStdoutCloses(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(0);
  });
}

export async function main(argv: string[]): Promise<number> {
  sendLogsToStderr();
  endQuietlyWhenStdoutCloses();
  const [command, ...args] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') return usage();
  const run = commands[command];
  if (!run) {
    console.error(`unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(args);
  } catch (error) {
    const usageProblem = error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    console.error(`personas ${command}: ${describeFailure(error)}${usageProblem ? '\n(see personas --help)' : ''}`);
    return usageProblem ? 2 : 1;
  }
}

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.exitCode = await main(process.argv.slice(2));
