/**
 * The documentation's shell blocks, run as a reader runs them: every ```bash block of README.md and
 * docs/*.md, pasted into bash against `npm start` (started here exactly as the README says, with
 * other ports), command by command, and each command's answer checked: HTTP status, headers and the
 * fields its comment promises, or the CLI's exit code and output. So the docs cannot drift from the
 * product: a changed command without a check here fails, and so does a check whose command is gone.
 *
 * A block that cannot run here says so on the line before it, with a reason:
 * `<!-- docs-test: skip: deploys to AWS -->`. Every fenced block names its language, so a shell
 * block cannot hide as plain text.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../infra/bundling';
import { freePort } from './support/globalSetup';

const PAGES = ['README.md', ...readdirSync(path.join(PROJECT_ROOT, 'docs')).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)];
const SHELLS = new Set(['bash', 'sh', 'shell', 'console']);
const SKIP_MARK = /^<!-- docs-test: skip: (.+\S) -->$/;
/** A block for a system started otherwise, e.g. `<!-- docs-test: system: AUTH=jwt TENANCY=claim -->` (= `AUTH=jwt TENANCY=claim npm start`). */
const SYSTEM_MARK = /^<!-- docs-test: system: ((?:[A-Z_]+=\S+ ?)+) -->$/;

interface Command {
  /** 1-based line in the page where the command starts. */
  line: number;
  text: string;
}
interface ShellBlock {
  page: string;
  line: number;
  commands: Command[];
  skip: string | undefined;
  /** The variables `npm start` runs with for this block (none: plain `npm start`). */
  system: string;
}

/** The fenced blocks of a page: shell blocks with their commands (continuation lines joined, comments dropped). */
function readBlocks(page: string): { shell: ShellBlock[]; unlabelled: number[] } {
  const lines = readFileSync(path.join(PROJECT_ROOT, page), 'utf8').split('\n');
  const shell: ShellBlock[] = [];
  const unlabelled: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\S*)/.exec(lines[i]!);
    if (!fence) continue;
    const language = fence[1]!;
    if (!language) unlabelled.push(i + 1);
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!);
    if (!SHELLS.has(language)) continue;
    const before = lines.slice(0, start).reverse().find((line) => line.trim() !== '') ?? '';
    const commands: Command[] = [];
    for (let j = 0; j < body.length; j++) {
      if (!body[j]!.trim() || body[j]!.trimStart().startsWith('#')) continue;
      const line = start + 2 + j;
      let text = body[j]!;
      while (text.endsWith('\\') && j + 1 < body.length) text = `${text}\n${body[++j]!}`;
      commands.push({ line, text });
    }
    shell.push({ page, line: start + 1, commands, skip: SKIP_MARK.exec(before)?.[1], system: SYSTEM_MARK.exec(before)?.[1]?.trim() ?? '' });
  }
  return { shell, unlabelled };
}

interface Step {
  command: string;
  exit: number;
  stdout: string;
  stderr: string;
  /** A `curl -i` answer. */
  http?: { status: number; headers: Headers; body: string };
  /** The JSON body (curl -i) or stdout, when it is JSON. */
  json?: any;
}
type State = Record<string, any>;
type Check = (step: Step, state: State, context: { dataDir: string; workDir: string }) => void;

const quiet: Check = (step) => {
  expect(step.exit, step.stderr).toBe(0);
  expect(step.stdout.trim()).toBe('');
};
const status = (code: number, headers: Record<string, string | RegExp | null> = {}): Check => (step) => {
  expect(step.http?.status, `${step.stdout}\n${step.stderr}`).toBe(code);
  for (const [name, value] of Object.entries(headers)) {
    const actual = step.http!.headers.get(name);
    if (value instanceof RegExp) expect(actual, name).toMatch(value);
    else expect(actual, name).toBe(value);
  }
};
const all = (...checks: Check[]): Check => (step, state, context) => checks.forEach((check) => check(step, state, context));
const exits = (code: number, stdout?: RegExp): Check => (step) => {
  expect(step.exit, `${step.stdout}\n${step.stderr}`).toBe(code);
  if (stdout) expect(step.stdout.trimEnd()).toMatch(stdout);
};
const cliLines = (stdout: string) => stdout.trim().split('\n').filter((line) => /^\s*\d+\. /.test(line));

const EINSTEIN_TRAITS = { openness: 0.95, conscientiousness: 0.72, extraversion: 0.3, agreeableness: 0.7, neuroticism: 0.25 };

/**
 * What each documented command must answer, by page and command (first match); a command that
 * appears n times takes n checks, in order.
 */
const EXPECTED: Array<{ page: string; command: RegExp; checks: Check[] }> = [
  // README, "Try it"
  { page: 'README.md', command: /^(API=|json\(\) |EINSTEIN=)/, checks: [quiet, quiet, quiet] },
  {
    page: 'README.md',
    command: /^curl -s -i -w '\\n' -X POST \$API\/personas -H 'content-type: application\/json' -H 'Idempotency-Key: einstein-1'/,
    checks: [
      all(status(201, { etag: '"1"', location: /\/personas\/[0-9a-f-]{36}$/, 'idempotent-replayed': null }), (step, state) => {
        expect(step.json).toMatchObject({ name: 'Albert Einstein', version: 1, signature_phrases: ['E=mc²'], traits: EINSTEIN_TRAITS });
        expect(step.http!.headers.get('location')).toMatch(new RegExp(`/personas/${step.json.id}$`));
        state.einstein = step.json.id;
      }),
      all(status(201, { etag: '"1"', 'idempotent-replayed': 'true' }), (step, state) => expect(step.json.id).toBe(state.einstein)),
    ],
  },
  { page: 'README.md', command: /^ID=\$\(curl /, checks: [quiet] },
  {
    page: 'README.md',
    command: /^curl -s -i -w '\\n' \$API\/personas\/\$ID$/,
    checks: [all(status(200, { etag: '"1"' }), (step, state) => expect(step.json).toMatchObject({ id: state.einstein, name: 'Albert Einstein', signature_phrases: ['E=mc²'] }))],
  },
  {
    page: 'README.md',
    command: /^curl -s -i -w '\\n' -X PUT /,
    checks: [all(status(200, { etag: '"2"' }), (step) => expect(step.json).toMatchObject({ version: 2, domain: ['physics'], humor_usage: 'medium', beliefs: [] }))],
  },
  {
    page: 'README.md',
    command: /^curl -s -i -w '\\n' -X PATCH /,
    checks: [
      all(status(200, { etag: '"3"' }), (step) => {
        expect(step.json).toMatchObject({ version: 3, beliefs: ['God does not play dice'], traits: { ...EINSTEIN_TRAITS, extraversion: 0.4 } });
        expect(step.json).not.toHaveProperty('humor_usage');
      }),
    ],
  },
  {
    page: 'README.md',
    command: /^curl -s -w '\\n' -X POST \$API\/personas\/batch /,
    checks: [
      (step) => {
        expect(step.json).toMatchObject({ created: 1, failed: 1, results: [{ index: 0, status: 201 }, { index: 1, status: 400 }] });
        expect(step.json.results[1].errors.map((error: { pointer: string }) => error.pointer)).toEqual(expect.arrayContaining(['#/personas/1/name', '#/personas/1/domain']));
      },
    ],
  },
  {
    page: 'README.md',
    command: /^curl -s -w '\\n' "\$API\/personas\?limit=1"$/,
    checks: [(step, state) => {
      expect(step.json.items).toHaveLength(1);
      expect(typeof step.json.next_cursor).toBe('string'); // two personas by now: the cursor leads somewhere
      state.firstListed = step.json.items[0].id;
    }],
  },
  { page: 'README.md', command: /^CURSOR=\$\(curl /, checks: [quiet] },
  {
    page: 'README.md',
    command: /^curl -s -w '\\n' "\$API\/personas\?limit=1&cursor=\$CURSOR"$/,
    checks: [(step, state) => {
      expect(step.json.items).toHaveLength(1);
      expect(step.json.items[0].id).not.toBe(state.firstListed);
    }],
  },
  {
    page: 'README.md',
    command: /^curl -s -w '\\n' -X POST \$API\/personas -H 'content-type: application\/json' -d '\{"name":"X"/,
    checks: [(step) => {
      expect(step.json).toMatchObject({ status: 400, type: 'https://persona-db.dev/problems/validation-error' });
      expect(step.json.errors.map((error: { pointer: string }) => error.pointer)).toEqual(expect.arrayContaining(['#/traits/openness', '#/age']));
    }],
  },
  { page: 'README.md', command: /^sleep 1$/, checks: [quiet] },
  {
    page: 'README.md',
    command: /^curl -s -w '\\n' -X POST \$API\/personas\/search .*\n.*"query":"a physicist fond of thought experiments"/,
    checks: [(step) => {
      expect(step.json).toMatchObject({ mode: 'hybrid', limit: 5 });
      expect(step.json.items.map((item: { name: string }) => item.name)).toContain('Albert Einstein');
      for (const item of step.json.items) {
        expect(item.domain.some((domain: string) => ['physics', 'cooking'].includes(domain))).toBe(true);
        expect(item.traits.openness).toBeGreaterThanOrEqual(0.8);
      }
    }],
  },
  {
    page: 'README.md',
    command: /"mode":"keyword","query":"Einstein imagination","explain":true/,
    checks: [(step) => {
      expect(step.json).toMatchObject({ mode: 'keyword', score_type: 'bm25' });
      expect(step.json.items[0]).toMatchObject({ name: 'Albert Einstein', explain: { keyword: { rank: 1 } } });
    }],
  },
  {
    page: 'README.md',
    command: /\n\s+-d '\{"mode":"personality"/,
    checks: [(step) => {
      expect(step.json.mode).toBe('personality');
      // Julia Child's profile is the nearest to the target (Euclidean 0.15), Einstein's far (0.56).
      expect(step.json.items[0].name).toBe('Julia Child');
      expect(step.json.items[0].score).toBeLessThan(step.json.items[1].score);
    }],
  },
  {
    page: 'README.md',
    command: /^curl -s -w '\\n' "\$API\/personas\/\$ID\/similar\?limit=5"$/,
    checks: [(step, state) => {
      expect(step.json.mode).toBe('hybrid');
      expect(step.json.items.length).toBeGreaterThan(0);
      expect(step.json.items.map((item: { id: string }) => item.id)).not.toContain(state.einstein);
    }],
  },
  {
    page: 'README.md',
    command: /similar\?mode=personality&humor_usage=medium,high&traits\.openness\.gte=0\.5"$/,
    checks: [(step, state) => {
      expect(step.json.mode).toBe('personality');
      expect(step.json.items.map((item: { name: string }) => item.name)).toContain('Julia Child');
      for (const item of step.json.items) {
        expect(item.id).not.toBe(state.einstein);
        expect(['medium', 'high']).toContain(item.humor_usage);
        expect(item.traits.openness).toBeGreaterThanOrEqual(0.5);
      }
    }],
  },
  { page: 'README.md', command: /openapi\.json" \| json '\.info\.title'$/, checks: [exits(0, /^persona-db API$/)] },
  {
    page: 'README.md',
    command: /^curl -s -i -w '\\n' -X DELETE \$API\/personas\/\$ID$/,
    checks: [status(204), all(status(404), (step) => expect(step.json.type).toBe('https://persona-db.dev/problems/persona-not-found'))],
  },

  // docs/search.md
  { page: 'docs/search.md', command: /^API=/, checks: [quiet] },
  {
    page: 'docs/search.md',
    command: /"mode":"blend","query":"cooking teacher"/,
    checks: [(step) => {
      expect(step.json).toMatchObject({ mode: 'blend', limit: 3 });
      // Hydrated: full records from the table, with the fields the index payload does not carry.
      expect(step.json.items[0]).toMatchObject({ name: 'Julia Child', version: 1, created_at: expect.any(String), beliefs: [] });
    }],
  },
  {
    page: 'docs/search.md',
    command: /"query":"jazz music","fusion":"dbsf","explain":true/,
    checks: [(step) => {
      expect(step.json).toMatchObject({ mode: 'hybrid', score_type: 'dbsf' });
      expect(step.json.items[0]).toMatchObject({ name: 'Miles Davis', explain: { keyword: { rank: 1 }, semantic: { rank: expect.any(Number) } } });
    }],
  },
  {
    page: 'docs/search.md',
    command: /\/similar\?mode=keyword&domain=music,cooking&explain=true"$/,
    checks: [(step) => {
      expect(step.json.mode).toBe('keyword');
      expect(step.json.items.length).toBeGreaterThan(0);
      for (const item of step.json.items) expect(['music', 'cooking'].some((domain) => item.domain.includes(domain))).toBe(true);
      expect(step.json.items.map((item: { name: string }) => item.name)).not.toContain('Ada Lovelace');
    }],
  },

  // docs/security.md, against AUTH=jwt TENANCY=claim npm start
  { page: 'docs/security.md', command: /^(API=|ADA=|READER=\$\(npx personas token|WRITER=\$\(npx personas token)/, checks: [quiet, quiet, quiet, quiet] },
  {
    page: 'docs/security.md',
    command: /^curl -s -i -w '\\n' \$API\/personas$/,
    checks: [all(status(401), (step) => expect(step.json).toEqual({ message: 'Unauthorized' }))],
  },
  {
    page: 'docs/security.md',
    command: /^curl -s -i -w '\\n' -X POST \$API\/personas -H "authorization: Bearer \$(READER|WRITER)"/,
    checks: [
      all(status(403), (step) => expect(step.json).toEqual({ message: 'Forbidden' })),
      all(status(201, { etag: '"1"' }), (step, state) => {
        expect(step.json).toMatchObject({ name: 'Ada Lovelace' });
        expect(step.json).not.toHaveProperty('tenant_id');
        state.acmeAda = step.json.id;
      }),
    ],
  },
  {
    page: 'docs/security.md',
    command: /--scope personas:read --tenant globex\)"$/,
    checks: [(step) => expect(step.json).toEqual({ items: [], next_cursor: null })],
  },
  {
    page: 'docs/security.md',
    command: /--scope personas:read\)"$/,
    checks: [all(status(403), (step) => {
      expect(step.json).toMatchObject({ type: 'https://persona-db.dev/problems/tenant-required' });
      expect(step.json.detail).toContain('personas token --scope … --tenant T');
    })],
  },
  {
    page: 'docs/security.md',
    command: /^PERSONAS_TOKEN=\$READER npx personas export$/,
    checks: [(step, state) => {
      expect(step.exit, step.stderr).toBe(0);
      const lines = step.stdout.trim().split('\n').map((line) => JSON.parse(line));
      expect(lines.map((persona) => persona.id)).toEqual([state.acmeAda]);
    }],
  },

  // docs/operations.md: the CLI
  { page: 'docs/operations.md', command: /^printf '%s\\n' /, checks: [quiet] },
  {
    page: 'docs/operations.md',
    command: /^npx personas import people\.jsonl /,
    checks: [(step, _state, { workDir }) => {
      expect(step.exit, step.stderr).toBe(0);
      expect(step.stdout).toMatch(/^imported people\.jsonl \(jsonl\): 3 rows, 2 valid, 1 rejected \(reasons in people\.jsonl\.rejected\.jsonl\)$/m);
      const rejected = readFileSync(path.join(workDir, 'people.jsonl.rejected.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
      expect(rejected).toHaveLength(1);
      expect(rejected[0]).toMatchObject({ index: 2, line: 3 });
      expect(rejected[0].errors.map((error: { pointer: string }) => error.pointer)).toEqual(expect.arrayContaining(['#/domain', '#/traits']));
    }],
  },
  {
    page: 'docs/operations.md',
    command: /^npx personas export --out all\.jsonl /,
    checks: [(step, _state, { workDir }) => {
      expect(step.exit, step.stderr).toBe(0);
      expect(step.stdout).toBe('');
      const names = readFileSync(path.join(workDir, 'all.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line).name);
      expect(names).toEqual(expect.arrayContaining(['Ada Lovelace', 'Miles Davis', 'Julia Child']));
      expect(step.stderr).toContain(`exported ${names.length} personas from the api`);
    }],
  },
  { page: 'docs/operations.md', command: /^npx personas status {2,}/, checks: [exits(0, /^table personas: \d+ personas, newest write \S+\nindex personas -> personas-v1 \(.+\): \d+ points/)] },
  {
    page: 'docs/operations.md',
    command: /^npx personas status --json /,
    checks: [(step) => {
      expect(step.exit, step.stderr).toBe(0);
      expect(step.json).toMatchObject({ table: { name: 'personas' }, index: { alias: 'personas' } });
      expect(step.json.table.personas).toBeGreaterThanOrEqual(3);
    }],
  },
  {
    page: 'docs/operations.md',
    command: /^npx personas search "plays the saxophone"/,
    checks: [(step) => {
      expect(step.exit, step.stderr).toBe(0);
      expect(step.stdout).toMatch(/^mode hybrid, score rrf\n/);
      expect(cliLines(step.stdout).length).toBeGreaterThan(0);
    }],
  },
  {
    page: 'docs/operations.md',
    command: /^npx personas search "music mistakes" --mode keyword --explain$/,
    checks: [(step) => {
      expect(step.exit, step.stderr).toBe(0);
      expect(step.stdout).toMatch(/^mode keyword, score bm25\n/);
      expect(cliLines(step.stdout)[0]).toMatch(/^\s+1\. \d+\.\d{4} {2}Miles Davis {2}[0-9a-f-]{36} {2}\(keyword #1 /);
    }],
  },
  {
    page: 'docs/operations.md',
    command: /^npx personas search --traits /,
    checks: [(step) => {
      expect(step.exit, step.stderr).toBe(0);
      expect(step.stdout).toMatch(/^mode personality, score euclidean_distance\n/);
      expect(cliLines(step.stdout)[0]).toContain('Julia Child');
    }],
  },
  { page: 'docs/operations.md', command: /^ID=\$\(npx personas search "Ada Lovelace"/, checks: [quiet] },
  {
    page: 'docs/operations.md',
    command: /^npx personas search --similar \$ID --mode hybrid --fusion dbsf$/,
    checks: [(step) => {
      expect(step.exit, step.stderr).toBe(0);
      expect(step.stdout).toMatch(/^mode hybrid, score dbsf\n/);
      expect(step.stdout).not.toContain('Ada Lovelace'); // the persona itself is never its own neighbour
      expect(cliLines(step.stdout).length).toBeGreaterThan(0);
    }],
  },
  { page: 'docs/operations.md', command: /^npx personas search "loves the outdoors" --weights /, checks: [exits(0, /^mode hybrid, score rrf\n/)] },
  { page: 'docs/operations.md', command: /^npx personas reconcile {2,}/, checks: [exits(0, /\nno differences$/)] },
  { page: 'docs/operations.md', command: /^npx personas reconcile --repair /, checks: [exits(0, /\nrepair: nothing to do; 0 differences remain$/)] },
  { page: 'docs/operations.md', command: /^npx personas redrive /, checks: [exits(0, /^0 failed batch\(es\) in /)] },
  {
    page: 'docs/operations.md',
    command: /^npx personas reindex {2,}/,
    checks: [exits(0, /^personas now points at personas-v2 \(.+\); it was personas-v1 \(.+\), now dropped\n.*\nverified: \d+ personas, zero differences/)],
  },
  {
    page: 'docs/operations.md',
    command: /^npx personas export --from table --tenant acme /,
    checks: [(step) => {
      expect(step.exit, step.stderr).toBe(0);
      expect(step.stdout).toBe('');
      expect(step.stderr).toContain('exported 0 personas from the table');
    }],
  },
];

/** The product's own settings are left out of the system's environment: the docs' defaults apply. */
const PRODUCT_VARIABLES = /^(AUTH|TENANCY|TENANT_CLAIM|TABLE_NAME|IDEMPOTENCY_TABLE_NAME|DYNAMODB_ENDPOINT|QDRANT_URL|QDRANT_API_KEY|QDRANT_COLLECTION|EMBEDDING_.+|PERSONAS_.+|POWERTOOLS_.+|LOCAL_.+|API_PORT|API_HOST|DYNAMODB_PORT|QDRANT_PORT|CURSOR_SIGNING_KEY.*)$/;

let workDir: string;
let baseEnv: NodeJS.ProcessEnv;

interface RunningSystem {
  /** The shell's environment: what the reader set for `npm start` (other ports; the block's variables). */
  env: NodeJS.ProcessEnv;
  apiPort: number;
  ports: { api: number; dynamodb: number; qdrant: number };
  dataDir: string;
  output: () => string;
  stop(): Promise<void>;
}

/** `VARIABLES npm start` as a reader runs it, on free ports, in its own process group (so stopping it is Ctrl-C's SIGINT to the whole tree). */
async function startSystem(variables: string): Promise<RunningSystem> {
  const ports = { api: await freePort(), dynamodb: await freePort(), qdrant: await freePort() };
  const dataDir = mkdtempSync(path.join(tmpdir(), 'docs-data-'));
  const extra = Object.fromEntries(variables.split(/\s+/).filter(Boolean).map((assignment) => assignment.split('=') as [string, string]));
  const env = { ...baseEnv, ...extra, API_PORT: String(ports.api), DYNAMODB_PORT: String(ports.dynamodb), QDRANT_PORT: String(ports.qdrant), LOCAL_DATA_DIR: dataDir };
  const child: ChildProcess = spawn('npm', ['start'], { cwd: PROJECT_ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const stop = async () => {
    if (child.pid && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(-child.pid, 'SIGINT');
      const stopped = await Promise.race([exited.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 30_000))]);
      if (!stopped) process.kill(-child.pid, 'SIGKILL');
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  running.add(stop);
  const deadline = Date.now() + 150_000;
  while (!output.includes('press Ctrl-C to stop')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${variables} npm start did not come up:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { env, apiPort: ports.api, ports, dataDir, output: () => output, stop };
}
const running = new Set<() => Promise<void>>();

beforeAll(() => {
  // The reader's folder: the project's package.json, bin/ and node_modules (npx personas finds its
  // bin there), so the files the docs write (people.jsonl, all.jsonl) land here, not in the clone.
  workDir = mkdtempSync(path.join(tmpdir(), 'docs-run-'));
  for (const entry of ['package.json', 'bin', 'node_modules']) symlinkSync(path.join(PROJECT_ROOT, entry), path.join(workDir, entry));
  // A reader sets only what the docs say: other ports (here) and a block's variables, nothing else.
  baseEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !PRODUCT_VARIABLES.test(name)));
});

afterAll(async () => {
  for (const stop of running) await stop();
  if (workDir && existsSync(workDir)) rmSync(workDir, { recursive: true, force: true });
}, 90_000);

/** Runs a block's commands in one bash, as pasted: shell variables carry from one command to the next. */
function runBlock(block: ShellBlock, system: RunningSystem): Promise<Step[]> {
  const script = block.commands
    .map((command, i) => {
      const text = command.text.replaceAll('localhost:3000', `localhost:${system.apiPort}`);
      return `printf '\\n@@step ${i}@@\\n'; printf '\\n@@step ${i}@@\\n' >&2\n${text}\nprintf '\\n@@exit ${i} %d@@\\n' $?`;
    })
    .join('\n');
  return new Promise((resolve, reject) => {
    const shell = spawn('bash', ['-c', script], { cwd: workDir, env: system.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    shell.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    shell.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    shell.once('error', reject);
    shell.once('close', () => {
      resolve(
        block.commands.map((command, i) => {
          const out = new RegExp(`\\n@@step ${i}@@\\n([^]*?)\\n@@exit ${i} (\\d+)@@\\n`).exec(stdout);
          if (!out) throw new Error(`${block.page}:${command.line}: no output markers (the shell stopped?)\n${stdout}\n${stderr}`);
          const err = new RegExp(`\\n@@step ${i}@@\\n([^]*?)(?=\\n@@step ${i + 1}@@\\n|$)`).exec(stderr)?.[1] ?? '';
          return parseStep(command.text, Number(out[2]), out[1]!, err);
        }),
      );
    });
  });
}

function parseStep(command: string, exit: number, stdout: string, stderr: string): Step {
  const step: Step = { command, exit, stdout, stderr };
  const response = /^HTTP\/[\d.]+ (\d{3})[^\r\n]*\r\n([^]*?)\r\n\r\n([^]*)$/.exec(stdout);
  if (response) {
    const headers = new Headers();
    for (const line of response[2]!.split('\r\n')) {
      const colon = line.indexOf(':');
      headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
    }
    step.http = { status: Number(response[1]), headers, body: response[3]!.trim() };
  }
  const body = step.http?.body ?? stdout.trim();
  try {
    step.json = body ? JSON.parse(body) : undefined;
  } catch {
    // not JSON: text output
  }
  return step;
}

const blocks = PAGES.flatMap((page) => readBlocks(page).shell);
const runnable = blocks.filter((block) => !block.skip);

describe('the docs', () => {
  it('label every fenced block with its language, and say why a shell block cannot run here', () => {
    for (const page of PAGES) expect(readBlocks(page).unlabelled, `${page}: fenced blocks without a language (lines)`).toEqual([]);
    for (const block of blocks.filter((candidate) => candidate.skip)) expect(block.skip!.length, `${block.page}:${block.line}`).toBeGreaterThan(10);
    expect(runnable.length).toBeGreaterThanOrEqual(2);
  });

  it('have a check for every command of every runnable block, and no check for a command that is gone', () => {
    const used = new Map<(typeof EXPECTED)[number], number>();
    const missing: string[] = [];
    for (const block of runnable) {
      for (const command of block.commands) {
        const expectation = EXPECTED.find((entry) => entry.page === block.page && entry.command.test(command.text));
        if (!expectation) missing.push(`${block.page}:${command.line}: ${command.text.split('\n')[0]}`);
        else used.set(expectation, (used.get(expectation) ?? 0) + 1);
      }
    }
    expect(missing, 'documented commands without a check in test/docsCommands.test.ts').toEqual([]);
    for (const entry of EXPECTED) expect(used.get(entry) ?? 0, `${entry.page} ${entry.command}: commands matched`).toBe(entry.checks.length);
  });

  it('answer as documented when pasted into a shell against npm start', { timeout: 600_000 }, async () => {
    const state: State = {};
    const seen = new Map<(typeof EXPECTED)[number], number>();
    // Plain `npm start` first (the README, then the pages in order), then each other way of starting it.
    const systems = [...new Set(['', ...runnable.map((block) => block.system)])];
    for (const variables of systems) {
      const system = await startSystem(variables);
      if (variables === '') {
        // The README's quick start: the ports of its table, and the default model said to be no semantic one.
        expect(system.output()).toContain(`API on http://localhost:${system.ports.api}`);
        expect(system.output()).toContain(`DynamoDB Local on http://127.0.0.1:${system.ports.dynamodb}`);
        expect(system.output()).toContain(`Qdrant (local server) on http://127.0.0.1:${system.ports.qdrant}`);
        expect(system.output()).toMatch(/embedding model: generated test model in .*: not a semantic model/);
      }
      for (const block of runnable.filter((candidate) => candidate.system === variables)) {
        const steps = await runBlock(block, system);
        steps.forEach((step, i) => {
          const command = block.commands[i]!;
          const expectation = EXPECTED.find((entry) => entry.page === block.page && entry.command.test(command.text))!;
          const n = seen.get(expectation) ?? 0;
          seen.set(expectation, n + 1);
          try {
            expectation.checks[n]!(step, state, { dataDir: system.dataDir, workDir });
          } catch (error) {
            (error as Error).message = `${block.page}:${command.line}: ${command.text.split('\n')[0]}\n  exit ${step.exit}\n  stdout: ${step.stdout.slice(0, 1500)}\n  stderr: ${step.stderr.slice(0, 1500)}\n${(error as Error).message}`;
            throw error;
          }
        });
      }
      await system.stop();
      running.delete(system.stop);
    }
  });
});
