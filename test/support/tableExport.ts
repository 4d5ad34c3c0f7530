/**
 * Writes a DynamoDB Local table into an S3 stand-in in the exact layout of a DynamoDB export to S3
 * (ExportTableToPointInTime, DYNAMODB_JSON), as the DynamoDB Developer Guide documents it
 * ("DynamoDB table export output format",
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html):
 *
 * - `<prefix>/AWSDynamoDB/<ExportId>/_started` (empty), `manifest-summary.json` (version 2020-06-30,
 *   exportArn, startTime, endTime, tableArn, tableId, exportTime, s3Bucket, s3Prefix, s3SseAlgorithm,
 *   s3SseKmsKeyId, manifestFilesS3Key, billedSizeBytes, itemCount, outputFormat) and its `.checksum`,
 *   `manifest-files.json` (JSON lines: itemCount, md5Checksum, etag, dataFileS3Key) and its `.checksum`;
 * - `data/<random>.json.gz`: gzipped JSON lines `{"Item": {<DynamoDB JSON>}}`. "The export creates at
 *   least 1 file per partition", and an empty partition gives an empty file: here one file per
 *   parallel-scan segment stands for a partition (the partitions' hashed keyspaces).
 *
 * Items are the table's raw attribute values (a low-level Scan), as the export writes them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { DynamoDBClient, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import type { TableConfig } from '../../shared/config';
import { exportLineOf, exportManifestKeys, type ManifestFileEntry, type ManifestSummary } from '../../shared/reindexAtScale/exportFiles';
import type { S3StandIn } from './s3StandIn';

export interface WrittenExport {
  exportArn: string;
  exportId: string;
  summaryKey: string;
  filesKey: string;
  dataFileKeys: string[];
  itemCount: number;
  exportTime: Date;
}

/** An ExportId as DynamoDB forms them: epoch milliseconds, a dash, eight hex characters. */
const newExportId = (at: Date) => `${at.getTime()}-${randomBytes(4).toString('hex')}`;

export async function writeTableExport(
  s3: S3StandIn,
  tables: TableConfig,
  target: { bucket: string; prefix: string; partitions?: number; account?: string; exportId?: string },
): Promise<WrittenExport> {
  const client = new DynamoDBClient({ region: tables.region, endpoint: tables.dynamodbEndpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const exportTime = new Date();
  const exportId = target.exportId ?? newExportId(exportTime);
  const tableArn = `arn:aws:dynamodb:${tables.region}:${target.account ?? '123456789012'}:table/${tables.personaTableName}`;
  const exportArn = `${tableArn}/export/${exportId}`;
  const keys = exportManifestKeys(target.prefix, exportId);
  const partitions = target.partitions ?? 3;
  s3.put(target.bucket, `${keys.base}/_started`, '');

  const entries: ManifestFileEntry[] = [];
  let billedSizeBytes = 0;
  for (let segment = 0; segment < partitions; segment++) {
    const items: Record<string, AttributeValue>[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await client.send(new ScanCommand({ TableName: tables.personaTableName, ConsistentRead: true, Segment: segment, TotalSegments: partitions, ...(start ? { ExclusiveStartKey: start } : {}) }));
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    const text = items.map((item) => `${exportLineOf(item)}\n`).join('');
    billedSizeBytes += Buffer.byteLength(text);
    const body = gzipSync(text);
    const dataFileS3Key = `${keys.dataDir}/${randomBytes(13).toString('base64url').toLowerCase()}.json.gz`;
    s3.put(target.bucket, dataFileS3Key, body);
    entries.push({ itemCount: items.length, md5Checksum: createHash('md5').update(body).digest('base64'), etag: createHash('md5').update(body).digest('hex'), dataFileS3Key });
  }
  client.destroy();

  const filesText = entries.map((entry) => `${JSON.stringify(entry)}\n`).join('');
  s3.put(target.bucket, keys.files, filesText);
  s3.put(target.bucket, `${keys.base}/manifest-files.checksum`, createHash('md5').update(filesText).digest('hex'));
  const itemCount = entries.reduce((sum, entry) => sum + entry.itemCount, 0);
  const summary: ManifestSummary = {
    version: '2020-06-30',
    exportArn,
    startTime: exportTime.toISOString(),
    endTime: new Date().toISOString(),
    tableArn,
    tableId: randomBytes(16).toString('hex'),
    exportTime: exportTime.toISOString(),
    s3Bucket: target.bucket,
    s3Prefix: target.prefix || null,
    s3SseAlgorithm: 'AES256',
    s3SseKmsKeyId: null,
    manifestFilesS3Key: keys.files,
    billedSizeBytes,
    itemCount,
    outputFormat: 'DYNAMODB_JSON',
  };
  const summaryText = JSON.stringify(summary);
  s3.put(target.bucket, keys.summary, summaryText);
  s3.put(target.bucket, `${keys.base}/manifest-summary.checksum`, createHash('md5').update(summaryText).digest('hex'));
  return { exportArn, exportId, summaryKey: keys.summary, filesKey: keys.files, dataFileKeys: entries.map((entry) => entry.dataFileS3Key), itemCount, exportTime };
}
