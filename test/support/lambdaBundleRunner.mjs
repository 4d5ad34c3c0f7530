// Runs one function's bundled asset the way the Lambda Node.js runtime does: the asset directory is
// the task root (cwd), `index.mjs` is imported once (module top level = the init phase), then each
// invocation message from the parent calls the exported `handler(event, context)`.
// Plain JavaScript on purpose: started with `node` and no loaders, as in Lambda.
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const taskRoot = process.argv[2];
const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'function';
let handler;
try {
  ({ handler } = await import(pathToFileURL(`${taskRoot}/index.mjs`).href));
  process.send({ type: 'ready' });
} catch (error) {
  process.send({ type: 'init-error', error: String(error?.stack ?? error) });
}

process.on('message', async ({ id, event, timeoutMs = 30_000 }) => {
  const deadline = Date.now() + timeoutMs;
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'artifact-test',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  try {
    const result = await handler(event, context);
    process.send({ id, result: result === undefined ? null : result });
  } catch (error) {
    process.send({ id, error: String(error?.stack ?? error) });
  }
});
