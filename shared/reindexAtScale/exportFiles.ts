/**
 * The files of a DynamoDB export to S3 (ExportTableToPointInTime, DYNAMODB_JSON), as the reindex in
 * AWS reads them. The layout (DynamoDB Developer Guide, "DynamoDB table export output format",
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html):
 *
 *   <prefix>/AWSDynamoDB/<ExportId>/manifest-summary.json   one JSON object: exportArn, exportTime,
 *                                                           s3Bucket, s3Prefix, manifestFilesS3Key, itemCount, outputFormat, ...
 *   <prefix>/AWSDynamoDB/<ExportId>/manifest-files.json     JSON lines, one per data file:
 *                                                           {"itemCount", "md5Checksum", "etag", "dataFileS3Key"}
 *   <prefix>/AWSDynamoDB/<ExportId>/data/<name>.json.gz     gzipped JSON lines, one item each: {"Item": {<DynamoDB JSON>}}
 *
 * "The export creates at least 1 file per partition": a large table comes out as a few large files,
 * so the unit of parallel work is not a file but a chunk of one (planChunks), small enough that one
 * Lambda invocation embeds it well within its 15 minutes.
 */
import { createGunzip } from 'node:zlib';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { unmarshall, type NativeAttributeValue } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { parseJsonLines } from '../jsonLines';
import type { Persona } from '../persona/schema';

export interface ManifestSummary {
  version: string;
  exportArn: string;
  startTime: string;
  endTime: string;
  tableArn: string;
  tableId: string;
  exportTime: string;
  s3Bucket: string;
  s3Prefix: string | null;
  s3SseAlgorithm: string;
  s3SseKmsKeyId: string | null;
  manifestFilesS3Key: string;
  billedSizeBytes: number;
  itemCount: number;
  outputFormat: 'DYNAMODB_JSON' | 'ION';
}

/** One line of manifest-files.json. */
export interface ManifestFileEntry {
  itemCount: number;
  md5Checksum: string;
  etag: string;
  dataFileS3Key: string;
}

/** One child's work: items [skip, skip + take) of one data file (counted in non-empty lines). */
export interface BackfillChunk {
  dataFileS3Key: string;
  skip: number;
  take: number;
}

/** Personas per chunk: ~2,000 is well under a minute per child at the measured rate (bench: backfill), far from Lambda's 15 minutes. */
export const DEFAULT_CHUNK_ITEMS = 2_000;

/** The id an export's ARN ends with (…/table/<name>/export/<ExportId>). */
export function exportIdOf(exportArn: string): string {
  const id = /\/export\/([^/]+)$/.exec(exportArn)?.[1];
  if (!id) throw new Error(`not a DynamoDB export ARN: ${exportArn}`);
  return id;
}

/** Where an export with this prefix and id writes its manifests. */
export function exportManifestKeys(prefix: string, exportId: string) {
  const base = `${prefix ? `${prefix.replace(/\/+$/, '')}/` : ''}AWSDynamoDB/${exportId}`;
  return { base, summary: `${base}/manifest-summary.json`, files: `${base}/manifest-files.json`, dataDir: `${base}/data` };
}

export function parseManifestFiles(text: string): ManifestFileEntry[] {
  return parseJsonLines(text, 'manifest-files.json', (value) => {
    const entry = value as Partial<ManifestFileEntry>;
    return typeof entry.dataFileS3Key === 'string' && typeof entry.itemCount === 'number'
      ? (entry as ManifestFileEntry)
      : 'has no dataFileS3Key and itemCount';
  });
}

/** Splits every data file into chunks of at most `chunkItems` items; empty files give none. */
export function planChunks(files: readonly ManifestFileEntry[], chunkItems = DEFAULT_CHUNK_ITEMS): BackfillChunk[] {
  if (!Number.isInteger(chunkItems) || chunkItems < 1) throw new Error(`chunkItems must be a whole number of at least 1, got ${chunkItems}`);
  return files.flatMap((file) =>
    Array.from({ length: Math.ceil(file.itemCount / chunkItems) }, (_, n) => ({
      dataFileS3Key: file.dataFileS3Key,
      skip: n * chunkItems,
      take: Math.min(chunkItems, file.itemCount - n * chunkItems),
    })),
  );
}

/** The table row of one data-file line ({"Item": {...}}), as a whole-table scan returns it (a tenant's key and tenant_id included). */
export function rowOfExportLine(line: string): Persona {
  const parsed = JSON.parse(line) as { Item?: Record<string, AttributeValue> };
  if (!parsed.Item || typeof parsed.Item !== 'object') throw new Error(`export line without "Item": ${line.slice(0, 200)}`);
  return unmarshall(parsed.Item as Record<string, NativeAttributeValue>) as Persona;
}

/** The line a data file holds for a row (the exporter's side of rowOfExportLine). */
export const exportLineOf = (item: Record<string, AttributeValue>): string => JSON.stringify({ Item: item });

/**
 * Rows [skip, skip + take) of a gzipped data file, in pages of `pageSize`. Reading stops (and the
 * body is released) once the chunk's last row is read, so a chunk near a file's start costs only
 * its own part of the download.
 */
export async function* readChunkRows(gzippedBody: Readable, chunk: Pick<BackfillChunk, 'skip' | 'take'>, pageSize: number): AsyncGenerator<Persona[]> {
  const gunzip = createGunzip();
  const lines = createInterface({ input: gzippedBody.pipe(gunzip), crlfDelay: Infinity });
  let index = 0;
  let page: Persona[] = [];
  const end = chunk.skip + chunk.take;
  try {
    for await (const line of lines) {
      if (line.trim() === '') continue;
      const at = index++;
      if (at < chunk.skip) continue;
      page.push(rowOfExportLine(line));
      if (page.length === pageSize) {
        yield page;
        page = [];
      }
      if (index >= end) break;
    }
    if (page.length > 0) yield page;
  } finally {
    lines.close();
    gunzip.destroy();
    gzippedBody.destroy();
  }
  if (index < end) throw new Error(`the data file holds ${index} items, fewer than the ${end} its manifest entry promised`);
}

/** The plan step's input: the export's summary manifest (DescribeExport's ExportManifest) and where to write the work list. */
export interface PlanBackfillEvent {
  bucket: string;
  manifestSummaryKey: string;
  workListKey: string;
  chunkItems?: number;
}

export interface BackfillPlan {
  exportArn: string;
  exportTime: string;
  files: number;
  personas: number;
  chunks: number;
  chunkItems: number;
  workListKey: string;
}

export interface ObjectStore {
  getText(bucket: string, key: string): Promise<string>;
  putText(bucket: string, key: string, body: string, contentType: string): Promise<void>;
}

/**
 * Reads an export's manifests and writes the Distributed Map's work list: JSON lines, one chunk
 * each. manifest-files.json sits beside manifest-summary.json (the documented layout), so it is
 * found from the summary's own key. A re-run writes the same list.
 */
export async function planBackfill(store: ObjectStore, event: PlanBackfillEvent): Promise<BackfillPlan> {
  const summary = JSON.parse(await store.getText(event.bucket, event.manifestSummaryKey)) as ManifestSummary;
  if (summary.outputFormat !== 'DYNAMODB_JSON') throw new Error(`export ${summary.exportArn} is in ${summary.outputFormat}; the backfill reads DYNAMODB_JSON`);
  const filesKey = `${event.manifestSummaryKey.slice(0, event.manifestSummaryKey.lastIndexOf('/') + 1)}manifest-files.json`;
  const files = parseManifestFiles(await store.getText(event.bucket, filesKey));
  const chunkItems = event.chunkItems ?? DEFAULT_CHUNK_ITEMS;
  const chunks = planChunks(files, chunkItems);
  const personas = files.reduce((sum, file) => sum + file.itemCount, 0);
  if (personas !== summary.itemCount) throw new Error(`manifest-files.json counts ${personas} items, manifest-summary.json ${summary.itemCount}: the export is incomplete`);
  await store.putText(event.bucket, event.workListKey, chunks.map((chunk) => `${JSON.stringify(chunk)}\n`).join(''), 'application/x-ndjson');
  return { exportArn: summary.exportArn, exportTime: summary.exportTime, files: files.length, personas, chunks: chunks.length, chunkItems, workListKey: event.workListKey };
}
