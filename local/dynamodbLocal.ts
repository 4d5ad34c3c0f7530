import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createConnection } from 'node:net';

export interface DynamoDbLocal {
  endpoint: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** The jar ships inside the npm package amplify-dynamodb-simulator, so `npm install` provides it. */
export function dynamoDbLocalJarDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('amplify-dynamodb-simulator/package.json')), 'emulator');
}

export function assertJavaAvailable(): void {
  const result = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new Error(
      'DynamoDB Local needs Java 17 or newer, and `java` was not found on PATH. Install a JDK/JRE ' +
        '(for example `apt-get install openjdk-17-jre-headless` or `brew install openjdk@17`), or point ' +
        'DYNAMODB_ENDPOINT at a DynamoDB you already run.',
    );
  }
  const version = /version "(\d+)/.exec(`${result.stderr}${result.stdout}`)?.[1];
  if (version && Number(version) < 17) {
    throw new Error(`DynamoDB Local needs Java 17 or newer; \`java -version\` reports ${version}. Install Java 17+.`);
  }
  // The loopback launcher runs as a Java source file, which needs the JDK's compiler module.
  const modules = spawnSync('java', ['--list-modules'], { encoding: 'utf8' });
  if (!modules.stdout?.includes('jdk.compiler')) {
    throw new Error(
      'DynamoDB Local is started through a small Java source launcher that needs a JDK, and this Java is a JRE ' +
        '(no jdk.compiler module). Install a JDK, for example `apt-get install openjdk-17-jdk-headless` or `brew install openjdk@17`.',
    );
  }
}

/** Binds DynamoDB Local to one address; DynamoDB Local itself has no host option (see the file). */
const LOOPBACK_LAUNCHER = fileURLToPath(new URL('./dynamodb/LoopbackDynamoDbLocal.java', import.meta.url));

function waitForPort(port: number, timeoutMs: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`DynamoDB Local exited with code ${child.exitCode} before listening on port ${port}`));
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`DynamoDB Local did not listen on port ${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

/** Only this machine may reach DynamoDB Local: it accepts any credentials. */
const LOOPBACK_HOST = '127.0.0.1';

/**
 * Starts AWS's DynamoDB Local (with Streams) as a child process, listening on 127.0.0.1 only and
 * with telemetry off. In memory by default; with `dataDir` the tables survive restarts.
 */
export async function startDynamoDbLocal(options: { port: number; dataDir?: string; quiet?: boolean }): Promise<DynamoDbLocal> {
  assertJavaAvailable();
  const jarDir = dynamoDbLocalJarDir();
  const storage = options.dataDir ? ['-sharedDb', '-dbPath', options.dataDir] : ['-inMemory', '-sharedDb'];
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const classPath = [join(jarDir, 'DynamoDBLocal.jar'), join(jarDir, 'DynamoDBLocal_lib', '*')].join(delimiter);
  const child = spawn(
    'java',
    [
      '-Xmx512m',
      `-Djava.library.path=${join(jarDir, 'DynamoDBLocal_lib')}`,
      '-cp',
      classPath,
      LOOPBACK_LAUNCHER,
      LOOPBACK_HOST,
      '-port',
      String(options.port),
      ...storage,
      // The local system needs no internet: DynamoDB Local would otherwise send usage telemetry to AWS.
      '-disableTelemetry',
    ],
    { cwd: jarDir, stdio: options.quiet ? 'ignore' : ['ignore', 'inherit', 'inherit'] },
  );
  await waitForPort(options.port, 30_000, child);
  return {
    endpoint: `http://127.0.0.1:${options.port}`,
    port: options.port,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      }),
  };
}
