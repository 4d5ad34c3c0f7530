import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './support/globalSetup';
import { einstein } from './support/apiClient';

/**
 * `npm start` (its script: tsx local/start.ts) must be reachable only by its user: every socket it or
 * its children listen on is a loopback address, DynamoDB Local runs without telemetry, both HTTP
 * servers refuse a foreign Host (DNS rebinding) and cross-origin browser writes, and the local Qdrant
 * server requires the API key that this run generated.
 */

let child: ReturnType<typeof spawn>;
let output = '';
let ports: { api: number; dynamodb: number; qdrant: number };
let dataDir: string;

function descendants(pid: number): number[] {
  const result = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  const direct = result.stdout.split('\n').map((line) => Number(line.trim())).filter(Boolean);
  return direct.flatMap((child) => [child, ...descendants(child)]);
}

/** An address of /proc/net/tcp{,6}: hex, each 32-bit word in host (little-endian) byte order. */
function decodeAddress(hex: string): string {
  const [address, port] = hex.split(':') as [string, string];
  const words = address.match(/.{8}/g)!.map((word) => Buffer.from(word, 'hex').reverse());
  const bytes = Buffer.concat(words);
  if (bytes.length === 4) return `${[...bytes].join('.')}:${parseInt(port, 16)}`;
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16));
  return `[${groups.join(':')}]:${parseInt(port, 16)}`;
}

/** Listening TCP sockets of these processes, read from /proc as `ss -ltnp` does. */
function listeningAddresses(pids: number[]): Array<{ pid: number; address: string }> {
  const listening = new Map<string, string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length > 9 && fields[3] === '0A') listening.set(fields[9]!, decodeAddress(fields[1]!));
    }
  }
  const found: Array<{ pid: number; address: string }> = [];
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target = '';
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && listening.has(inode)) found.push({ pid, address: listening.get(inode)! });
    }
  }
  return found;
}

const isLoopback = (address: string) =>
  /^127\.\d+\.\d+\.\d+:\d+$/.test(address) || /^\[0:0:0:0:0:0:0:1\]:\d+$/.test(address) || /^\[0:0:0:0:0:ffff:7f\d{2}:[0-9a-f]+\]:\d+$/.test(address);

/** A raw HTTP request, so that Host can be set as a browser after DNS rebinding would send it. */
function rawRequest(port: number, method: string, path: string, headers: Record<string, string>, body?: string) {
  return new Promise<{ status: number; text: string; headers: Record<string, unknown> }>((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, method, path, headers, setHost: false }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text, headers: response.headers }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

beforeAll(async () => {
  ports = { api: await freePort(), dynamodb: await freePort(), qdrant: await freePort() };
  dataDir = mkdtempSync(join(tmpdir(), 'persona-security-'));
  const env: NodeJS.ProcessEnv = { ...process.env, API_PORT: String(ports.api), DYNAMODB_PORT: String(ports.dynamodb), QDRANT_PORT: String(ports.qdrant), LOCAL_DATA_DIR: dataDir };
  for (const name of ['DYNAMODB_ENDPOINT', 'QDRANT_URL', 'QDRANT_API_KEY', 'TABLE_NAME', 'QDRANT_COLLECTION', 'LOCAL_ALLOWED_HOSTS']) delete env[name];
  child = spawn(process.execPath, ['--import', 'tsx', 'local/start.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 90_000;
  while (!output.includes('press Ctrl-C to stop')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not come up:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}, 120_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGINT');
    await new Promise((resolve) => child.once('exit', resolve));
  }
});

describe('npm start listens on loopback only', () => {
  it('every listening socket of npm start and its children is on 127.0.0.1 or ::1 (DynamoDB Local included)', () => {
    const pids = [child.pid!, ...descendants(child.pid!)];
    const sockets = listeningAddresses(pids);
    const ownPorts = new Set(sockets.map(({ address }) => Number(address.split(':').pop())));
    for (const port of Object.values(ports)) expect(ownPorts, `nothing listens on ${port}: ${JSON.stringify(sockets)}`).toContain(port);
    for (const socket of sockets) expect(isLoopback(socket.address), `${socket.address} (pid ${socket.pid})`).toBe(true);
    // Cross-check with ss where it is installed.
    const ss = spawnSync('ss', ['-ltnH'], { encoding: 'utf8' });
    if (ss.status === 0) {
      for (const port of Object.values(ports)) {
        const lines = ss.stdout.split('\n').filter((line) => new RegExp(`[:\\]]${port}\\s`).test(line));
        expect(lines.length, `ss shows nothing on ${port}`).toBeGreaterThan(0);
        for (const line of lines) expect(line).toMatch(/(127\.0\.0\.1|\[::1\]|\[::ffff:127\.0\.0\.1\]):\d+/);
      }
    }
  });

  it('DynamoDB Local runs with telemetry off', () => {
    const commands = descendants(child.pid!).map((pid) => spawnSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim());
    const dynamodb = commands.find((command) => command.includes('DynamoDBLocal.jar'));
    expect(dynamodb).toBeDefined();
    expect(dynamodb).toContain('-disableTelemetry');
  });
});

describe('the local API refuses requests a web page could make', () => {
  const json = { 'content-type': 'application/json' };

  it('a Host that is not loopback (DNS rebinding) is a 403 problem, for reads and writes', async () => {
    for (const method of ['GET', 'POST']) {
      const response = await rawRequest(ports.api, method, '/personas', { ...json, host: `rebind.attacker.example:${ports.api}` }, method === 'POST' ? JSON.stringify(einstein) : undefined);
      expect(response.status).toBe(403);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(JSON.parse(response.text).type).toMatch(/local-request-refused$/);
    }
    expect((await rawRequest(ports.api, 'GET', '/personas', { host: `localhost:${ports.api}` })).status).toBe(200);
    expect((await rawRequest(ports.api, 'GET', '/personas', { host: `127.0.0.1:${ports.api}` })).status).toBe(200);
  });

  it('a write from another origin is a 403; from its own origin or with no Origin (curl, the CLI) it is served', async () => {
    const host = `localhost:${ports.api}`;
    const body = JSON.stringify(einstein);
    const foreign = await rawRequest(ports.api, 'POST', '/personas', { ...json, host, origin: 'https://evil.example' }, body);
    expect(foreign.status).toBe(403);
    // A simple form post (no preflight) is refused the same way.
    expect((await rawRequest(ports.api, 'POST', '/personas', { 'content-type': 'text/plain', host, origin: 'null' }, body)).status).toBe(403);
    expect((await rawRequest(ports.api, 'POST', '/personas', { ...json, host, origin: `http://${host}` }, body)).status).toBe(201);
    expect((await rawRequest(ports.api, 'POST', '/personas', { ...json, host }, body)).status).toBe(201);
  });
});

describe('the local Qdrant server', () => {
  const keyFile = () => join(dataDir, 'qdrant-api-key');

  it('requires this run’s API key, which npm start leaves readable only by its user', async () => {
    const key = readFileSync(keyFile(), 'utf8').trim();
    expect(key.length).toBeGreaterThanOrEqual(32);
    expect(statSync(keyFile()).mode & 0o077).toBe(0);
    const host = `127.0.0.1:${ports.qdrant}`;
    expect((await rawRequest(ports.qdrant, 'GET', '/collections', { host })).status).toBe(401);
    expect((await rawRequest(ports.qdrant, 'GET', '/collections', { host, 'api-key': 'guess' })).status).toBe(401);
    expect((await rawRequest(ports.qdrant, 'GET', '/collections', { host, 'api-key': key })).status).toBe(200);
    // The product sends it: a persona created through the API reaches the index.
    const created = await rawRequest(ports.api, 'POST', '/personas', { 'content-type': 'application/json', host: `localhost:${ports.api}` }, JSON.stringify(einstein));
    const id = JSON.parse(created.text).id as string;
    let indexed = 0;
    for (let attempt = 0; attempt < 100 && indexed !== 200; attempt++) {
      indexed = (await rawRequest(ports.qdrant, 'GET', `/collections/personas/points/${id}`, { host, 'api-key': key })).status;
      if (indexed !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(indexed).toBe(200);
  });

  it('refuses a foreign Host and a cross-origin write even with the key', async () => {
    const key = readFileSync(keyFile(), 'utf8').trim();
    expect((await rawRequest(ports.qdrant, 'GET', '/collections', { host: `rebind.attacker.example:${ports.qdrant}`, 'api-key': key })).status).toBe(403);
    const write = await rawRequest(
      ports.qdrant,
      'PUT',
      '/collections/evil',
      { host: `127.0.0.1:${ports.qdrant}`, origin: 'https://evil.example', 'content-type': 'text/plain', 'api-key': key },
      JSON.stringify({ vectors: { size: 2, distance: 'Cosine' } }),
    );
    expect(write.status).toBe(403);
  });

  it('removes the key file when npm start stops', async () => {
    child.kill('SIGINT');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(existsSync(keyFile())).toBe(false);
  });
});
