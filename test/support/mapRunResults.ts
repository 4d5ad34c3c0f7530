/**
 * What a Distributed Map's ResultWriter leaves in S3 when its Map Run ends, for stand-in executions
 * (test/support/stepFunctionsStandIn.ts) whose readers are the code under test. As the Step
 * Functions Developer Guide documents it ("ResultWriter (Map)", exporting to Amazon S3:
 * https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html): under
 * `<Prefix>/<Map Run id>/`, a `manifest.json` {DestinationBucket, MapRunArn, ResultFiles: {FAILED,
 * PENDING, SUCCEEDED: [{Key, Size}]}} and, per status, `<STATUS>_<n>.json` files, each a JSON array
 * of child executions with their metadata (ExecutionArn, Name, Status, StartDate, StopDate,
 * StateMachineArn) and Input and Output as JSON strings (Transformation NONE, the default when the
 * results go to S3). The Map state's output is {MapRunArn, ResultWriterDetails: {Bucket, Key}}, Key
 * the manifest's.
 */
import type { S3StandIn } from './s3StandIn';

export function writeMapRunResults(
  s3: S3StandIn,
  target: { bucket: string; prefix: string; mapRunArn: string; stateMachineArn: string },
  children: ReadonlyArray<{ input: unknown; output: unknown }>,
): { MapRunArn: string; ResultWriterDetails: { Bucket: string; Key: string } } {
  const runId = target.mapRunArn.split(':').at(-1)!;
  const base = `${target.prefix}/${runId}`;
  const now = new Date().toISOString();
  const entries = children.map((child, n) => ({
    ExecutionArn: `${target.mapRunArn.replace(':mapRun:', ':execution:')}:${n}`,
    Input: JSON.stringify(child.input),
    InputDetails: { Included: true },
    Name: String(n),
    Output: JSON.stringify(child.output),
    OutputDetails: { Included: true },
    RedriveCount: 0,
    RedriveStatus: 'NOT_REDRIVABLE',
    RedriveStatusReason: 'Execution is SUCCEEDED and cannot be redriven',
    StartDate: now,
    StateMachineArn: target.stateMachineArn,
    Status: 'SUCCEEDED',
    StopDate: now,
  }));
  const file = `${base}/SUCCEEDED_0.json`;
  const body = JSON.stringify(entries);
  s3.put(target.bucket, file, body);
  const manifestKey = `${base}/manifest.json`;
  s3.put(target.bucket, manifestKey, JSON.stringify({ DestinationBucket: target.bucket, MapRunArn: target.mapRunArn, ResultFiles: { FAILED: [], PENDING: [], SUCCEEDED: [{ Key: file, Size: Buffer.byteLength(body) }] } }));
  return { MapRunArn: target.mapRunArn, ResultWriterDetails: { Bucket: target.bucket, Key: manifestKey } };
}
