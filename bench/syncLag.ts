/**
 * Write-to-searchable lag through the running system: writes go to the API on an open-loop
 * schedule (write i is sent at start + i / rate, whether or not earlier ones have answered),
 * alternating POST /personas (a new persona) and PATCH /personas/{id} (a text change of an
 * existing one, so it is embedded again). Every write gives the persona a domain of its own,
 * a marker, which makes the write's version findable.
 *
 * Lag = from sending the write to the first poll that sees it: in Qdrant, the point with that
 * version or later (one retrieve for all pending writes per poll); through the API, a
 * POST /personas/search filtered on pending markers that returns the persona. Polls run every
 * `pollIntervalMs`, and a write counts as seen when a poll's answer arrives, so lags are upper
 * bounds by at most a poll interval plus a round trip.
 */
import type { QdrantClient } from '@qdrant/js-client-rest';
import { personaLimits } from '../shared/persona/schema';
import { apiClient } from '../test/support/apiClient';
import { summarize, type LatencySummary } from './latencyStats';
import { benchPersona } from './personaCorpus';

export type Visibility = 'qdrant-retrieve' | 'search-api';

export interface LagRunOptions {
  apiUrl: string;
  qdrant: QdrantClient;
  collection: string;
  /** Existing personas the PATCH writes go to (in turn). */
  patchTargets: readonly string[];
  ratePerSecond: number;
  durationMs: number;
  visibility: Visibility;
  pollIntervalMs: number;
  /** Distinguishes this run's markers and new personas from other runs'. */
  runId: string;
  /** After the last write, how long to wait for the rest to become visible. */
  drainTimeoutMs?: number;
}

export interface LagRunResult {
  ratePerSecond: number;
  visibility: Visibility;
  durationSeconds: number;
  writes: number;
  /** Writes sent per second of schedule, as achieved (the bench's own timer). */
  achievedRate: number;
  failedWrites: number;
  /** Writes never seen within the drain timeout. */
  unseen: number;
  /** The first few unseen writes and what Qdrant holds for them at the end, to tell why. */
  unseenWrites: Array<{ kind: string; id?: string; version?: number; marker: string; indexed?: unknown }>;
  lagMs: LatencySummary;
  /** The API's response time for the writes themselves. */
  writeLatencyMs: LatencySummary;
  /** p50 lag of the first and the last quarter of writes: a growing backlog shows as a rise. */
  firstQuarterP50Ms: number;
  lastQuarterP50Ms: number;
  keptUp: boolean;
  pollIntervalMs: number;
}

interface PendingWrite {
  index: number;
  kind: 'POST' | 'PATCH';
  sentAt: number;
  marker: string;
  id?: string;
  version?: number;
  seenAt?: number;
  failed?: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runLag(options: LagRunOptions): Promise<LagRunResult> {
  const api = apiClient(options.apiUrl);
  const total = Math.round((options.ratePerSecond * options.durationMs) / 1000);
  const interval = 1000 / options.ratePerSecond;
  const writes: PendingWrite[] = [];
  const inFlight: Array<Promise<void>> = [];
  const writeLatencies: number[] = [];

  const send = async (write: PendingWrite): Promise<void> => {
    const persona = benchPersona(1_000_000 + write.index);
    const response = write.kind === 'POST'
      ? await api('POST', '/personas', { body: { ...persona, domain: [write.marker] } })
      : await api('PATCH', `/personas/${options.patchTargets[(write.index >> 1) % options.patchTargets.length]}`, {
          rawBody: JSON.stringify({ domain: [write.marker], beliefs: persona.beliefs }),
          headers: { 'content-type': 'application/merge-patch+json' },
        });
    writeLatencies.push(performance.now() - write.sentAt);
    if (response.status !== 200 && response.status !== 201) {
      write.failed = true;
      return;
    }
    write.id = response.json.id as string;
    write.version = response.json.version as number;
  };

  let scheduleDone = false;
  let stopPolling = false;
  const pollErrors: string[] = [];
  const poller = (async () => {
    for (;;) {
      const pending = writes.filter((write) => write.id !== undefined && write.seenAt === undefined);
      const allSettled = scheduleDone && writes.every((write) => write.failed || write.seenAt !== undefined);
      if (allSettled) return;
      if (pending.length > 0) {
        try {
          const seen = options.visibility === 'qdrant-retrieve' ? await seenInQdrant(options, pending) : await seenThroughSearch(api, pending);
          const now = performance.now();
          for (const write of seen) write.seenAt ??= now;
        } catch (error) {
          pollErrors.push((error as Error).message);
          if (pollErrors.length > 20) throw new Error(`visibility polls keep failing: ${pollErrors.slice(-3).join('; ')}`);
        }
      }
      if (stopPolling) return;
      await sleep(options.pollIntervalMs);
    }
  })();
  poller.catch(() => undefined); // awaited below; this only keeps an early failure from counting as unhandled

  const started = performance.now();
  for (let index = 0; index < total; index++) {
    const due = started + index * interval;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const kind = index % 2 === 0 || options.patchTargets.length === 0 ? 'POST' : 'PATCH';
    const write: PendingWrite = { index, kind, sentAt: performance.now(), marker: `bench-${options.runId}-${index}` };
    writes.push(write);
    inFlight.push(send(write).catch(() => void (write.failed = true)));
  }
  const scheduleSeconds = (performance.now() - started) / 1000;
  await Promise.all(inFlight);
  scheduleDone = true;
  const drainDeadline = setTimeout(() => (stopPolling = true), options.drainTimeoutMs ?? 30_000);
  await poller;
  clearTimeout(drainDeadline);

  const unseenWrites = await Promise.all(
    writes
      .filter((write) => !write.failed && write.seenAt === undefined)
      .slice(0, 5)
      .map(async (write) => ({
        kind: write.kind,
        id: write.id,
        version: write.version,
        marker: write.marker,
        indexed: write.id ? (await options.qdrant.retrieve(options.collection, { ids: [write.id], with_payload: ['version', 'domain'] }))[0]?.payload : undefined,
      })),
  );
  const lags = writes.filter((write) => write.seenAt !== undefined).map((write) => write.seenAt! - write.sentAt);
  const quarter = Math.max(1, Math.floor(writes.length / 4));
  const quarterP50 = (slice: PendingWrite[]) => summarize(slice.filter((write) => write.seenAt !== undefined).map((write) => write.seenAt! - write.sentAt)).p50;
  const lagMs = summarize(lags);
  const unseen = writes.filter((write) => !write.failed && write.seenAt === undefined).length;
  const failedWrites = writes.filter((write) => write.failed).length;
  const firstQuarterP50Ms = quarterP50(writes.slice(0, quarter));
  const lastQuarterP50Ms = quarterP50(writes.slice(-quarter));
  const achievedRate = total / Math.max(scheduleSeconds, interval / 1000);
  return {
    ratePerSecond: options.ratePerSecond,
    visibility: options.visibility,
    durationSeconds: Math.round(scheduleSeconds * 10) / 10,
    writes: total,
    achievedRate: Math.round(achievedRate * 10) / 10,
    failedWrites,
    unseen,
    unseenWrites,
    lagMs,
    writeLatencyMs: summarize(writeLatencies),
    firstQuarterP50Ms,
    lastQuarterP50Ms,
    // Keeping up: everything seen, p99 within a second, and no backlog building over the run.
    keptUp: failedWrites === 0 && unseen === 0 && lagMs.p99 <= 1000 && lastQuarterP50Ms <= 2 * firstQuarterP50Ms + 200,
    pollIntervalMs: options.pollIntervalMs,
  };
}

async function seenInQdrant(options: LagRunOptions, pending: PendingWrite[]): Promise<PendingWrite[]> {
  const points = await options.qdrant.retrieve(options.collection, { ids: pending.map((write) => write.id!), with_payload: ['version'], with_vector: false });
  const versions = new Map(points.map((point) => [String(point.id), Number((point.payload as { version?: number } | null)?.version ?? 0)]));
  return pending.filter((write) => (versions.get(write.id!) ?? 0) >= write.version!);
}

async function seenThroughSearch(api: ReturnType<typeof apiClient>, pending: PendingWrite[]): Promise<PendingWrite[]> {
  const seen: PendingWrite[] = [];
  // A filter takes at most labelCount domains; one search per chunk of pending markers.
  for (let start = 0; start < pending.length; start += personaLimits.labelCount) {
    const chunk = pending.slice(start, start + personaLimits.labelCount);
    const response = await api('POST', '/personas/search', { body: { query: 'persona', filter: { domain: chunk.map((write) => write.marker) }, limit: 100 } });
    if (response.status !== 200) throw new Error(`search answered ${response.status}: ${response.text.slice(0, 300)}`);
    const found = new Set((response.json.items as Array<{ id: string; domain: string[] }>).map((item) => `${item.id} ${item.domain.join(',')}`));
    seen.push(...chunk.filter((write) => found.has(`${write.id} ${write.marker}`)));
  }
  return seen;
}
