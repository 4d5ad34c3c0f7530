import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { generateTestModel, TEST_MODEL_HIDDEN_SIZE, TEST_MODEL_ID } from '../lib/generatedModels/testModel';
import {
  BGE_QUERY_PREFIX,
  createEmbedder,
  EmbeddingConfigError,
  EmbeddingModelUnavailableError,
  getEmbedder,
  resetEmbedder,
  UnembeddableTextError,
  type EmbedEvent,
  type Embedder,
} from '../shared/embedding';
import { expectBatchIndependent, mixedLengthTexts } from './support/batchIndependence';
import { GLOVE_MODEL_DIR, MINILM_MODEL_DIR, sharedReason } from './support/sharedAssets';

const dot = (a: number[], b: number[]): number => a.reduce((sum, x, i) => sum + x * (b[i] ?? Number.NaN), 0);
const norm = (a: number[]): number => Math.sqrt(dot(a, a));
const maxDiff = (a: number[], b: number[]): number => Math.max(...a.map((x, i) => Math.abs(x - (b[i] ?? Number.NaN))));

const PERSONAS = [
  'Albert Einstein, a theoretical physicist who explains relativity with thought experiments about trains and clocks.',
  'A French pastry chef who bakes croissants and gives patient lessons on laminated dough.',
  'A jazz drummer obsessed with swing rhythm, bebop and improvisation.',
  'A stoic philosopher who loves to debate ethics and virtue, with a sarcastic sense of humor.',
  'A software engineer mentoring beginners in debugging TypeScript code.',
];

describe('embedding module with the generated test model', () => {
  let workDir: string;
  let modelDir: string;
  let embedder: Embedder;
  const events: EmbedEvent[] = [];

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'embedding-test-'));
    // Named as the model names itself (config.json `_name_or_path` persona-db/persona-test-model), so its id is that.
    modelDir = path.join(workDir, 'persona-test-model');
    await generateTestModel(modelDir);
    // The production path: only the environment says where the model is.
    embedder = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: modelDir }, onEmbed: (e) => events.push(e) });
  });

  afterAll(async () => {
    await embedder?.dispose();
    await rm(workDir, { recursive: true, force: true });
  });

  it('generates byte-identical files on every run, quickly and small', async () => {
    const again = path.join(workDir, 'again');
    const started = performance.now();
    const result = await generateTestModel(again);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(result.files).toEqual(
      expect.arrayContaining([
        'config.json',
        'tokenizer.json',
        'tokenizer_config.json',
        'onnx/model.onnx',
        'onnx/model_quantized.onnx',
        // The sentence-transformers description a hub model carries: pooling, normalisation, prompts.
        'modules.json',
        '1_Pooling/config.json',
        'config_sentence_transformers.json',
      ]),
    );
    let total = 0;
    for (const file of result.files) {
      const [a, b] = await Promise.all([readFile(path.join(modelDir, file)), readFile(path.join(again, file))]);
      expect(Buffer.compare(a, b), file).toBe(0);
      total += a.length;
    }
    expect(total).toBeLessThan(8 * 1024 * 1024);
    // A second run over an identical model rewrites nothing.
    expect((await generateTestModel(again)).written).toEqual([]);
  });

  it('describes the model, with the pooling, normalisation and prompts its directory states', () => {
    expect(embedder.model).toEqual({
      id: TEST_MODEL_ID,
      revision: expect.stringMatching(/^sha256:[0-9a-f]{16}$/),
      dimension: TEST_MODEL_HIDDEN_SIZE,
      dtype: 'q8',
      pooling: 'cls',
      normalize: true,
      queryPrefix: BGE_QUERY_PREFIX,
      documentPrefix: '',
      maxTokens: 512,
    });
    expect(embedder.queryPrefix).toBe(BGE_QUERY_PREFIX);
    expect(embedder.conventions.sources).toEqual({
      pooling: 'model directory',
      normalize: 'model directory',
      queryPrefix: 'model directory',
      documentPrefix: 'model directory',
      maxTokens: 'model directory',
    });
  });

  it("takes the id from the folder, config.json's `_name_or_path` only where it names that folder, EMBEDDING_MODEL_ID over both", async () => {
    const elsewhere = path.join(workDir, 'my-encoder');
    await cp(modelDir, elsewhere, { recursive: true });
    const byFolder = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: elsewhere } });
    const named = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: elsewhere, EMBEDDING_MODEL_ID: 'example-org/my-encoder' } });
    try {
      // `_name_or_path` (persona-db/persona-test-model) is where the weights came from, not this folder's model.
      expect(byFolder.model.id).toBe('my-encoder');
      expect(named.model.id).toBe('example-org/my-encoder');
    } finally {
      await byFolder.dispose();
      await named.dispose();
    }
  });

  describe('conventions from the sentence-transformers files', () => {
    /** A copy of the test model with its sentence-transformers files replaced (undefined: removed). */
    async function variant(name: string, files: Record<string, unknown>): Promise<string> {
      const dir = path.join(workDir, name);
      await cp(modelDir, dir, { recursive: true });
      for (const [file, content] of Object.entries(files)) {
        if (content === undefined) await rm(path.join(dir, file), { recursive: true, force: true });
        else await writeFile(path.join(dir, file), JSON.stringify(content));
      }
      return dir;
    }
    const modules = (withNormalize: boolean) => [
      { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
      { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
      ...(withNormalize ? [{ idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' }] : []),
    ];
    const poolingConfig = (mode: string) => ({ word_embedding_dimension: TEST_MODEL_HIDDEN_SIZE, [`pooling_mode_${mode}`]: true });

    const bareFiles = { 'modules.json': undefined, '1_Pooling': undefined, 'config_sentence_transformers.json': undefined, 'sentence_bert_config.json': undefined };

    it("gives a directory that says nothing mean pooling and no prompts, and bge's conventions only to the bge English v1.5 ids", async () => {
      const bare = await variant('bare', bareFiles);
      const silent = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: bare } });
      try {
        // What sentence-transformers makes of a bare transformer: mean pooling, no prompts; cut at the tokenizer's 512.
        expect(silent.model).toMatchObject({ id: 'bare', pooling: 'mean', normalize: true, queryPrefix: '', documentPrefix: '', maxTokens: 512 });
        expect(Object.values(silent.conventions.sources)).toEqual(['default', 'default', 'default', 'default', 'default']);
        const [doc] = await silent.embedDocuments(['a stoic philosopher']);
        expect(await silent.embedQuery('a stoic philosopher')).toEqual(doc);
      } finally {
        await silent.dispose();
      }
      // The same files under a bge English v1.5 id, by folder or by EMBEDDING_MODEL_ID: the bge card's conventions.
      // bge-small-en-v1.5's own config_sentence_transformers.json holds only `__version__` (no prompts).
      const bgeFolder = await variant('bge-small-en-v1.5', { ...bareFiles, 'config_sentence_transformers.json': { __version__: { sentence_transformers: '2.2.2' } } });
      for (const env of [{ EMBEDDING_MODEL_DIR: bgeFolder }, { EMBEDDING_MODEL_DIR: bare, EMBEDDING_MODEL_ID: 'Xenova/bge-base-en-v1.5' }]) {
        const bge = await createEmbedder({ env });
        try {
          expect(bge.model).toMatchObject({ pooling: 'cls', normalize: true, queryPrefix: BGE_QUERY_PREFIX, documentPrefix: '' });
          expect(Object.values(bge.conventions.sources)).toEqual(['bge model card', 'bge model card', 'bge model card', 'bge model card', 'default']);
        } finally {
          await bge.dispose();
        }
      }
      // Not bge English v1.5: no instruction (bge's v1 or Chinese models have other ones).
      const other = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: bare, EMBEDDING_MODEL_ID: 'BAAI/bge-small-zh-v1.5' } });
      expect(other.model).toMatchObject({ pooling: 'mean', queryPrefix: '' });
      await other.dispose();
      // sentence-transformers writes `"prompts": {}` for a model without prompts: that says "no prefix".
      const saysMean = await variant('says-mean', {
        '1_Pooling/config.json': poolingConfig('mean_tokens'),
        'config_sentence_transformers.json': { prompts: {}, default_prompt_name: null },
      });
      const mean = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: saysMean } });
      try {
        expect(mean.model).toMatchObject({ pooling: 'mean', normalize: true, queryPrefix: '', documentPrefix: '' });
        const [doc] = await mean.embedDocuments(['a stoic philosopher']);
        expect(maxDiff(await mean.embedQuery('a stoic philosopher'), doc ?? [])).toBeLessThan(1e-6);
        // Mean pooling gives other vectors than CLS pooling of the same weights (close ones with this
        // model, whose every position is the sentence mean plus a small share of its own token).
        const [cls] = await embedder.embedDocuments(['a stoic philosopher']);
        expect(maxDiff(doc ?? [], cls ?? [])).toBeGreaterThan(1e-4);
      } finally {
        await mean.dispose();
      }
    });

    it('reads query and document prompts (and the default prompt), and a missing Normalize module', async () => {
      const dir = await variant('prompts', {
        'modules.json': modules(false),
        'config_sentence_transformers.json': { prompts: { query: 'query: ', passage: 'passage: ' }, default_prompt_name: null },
      });
      const prompted = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: dir } });
      try {
        expect(prompted.model).toMatchObject({ pooling: 'cls', normalize: false, queryPrefix: 'query: ', documentPrefix: 'passage: ' });
        const [doc] = await prompted.embedDocuments(['jazz drummer']);
        const [same] = await embedder.embedDocuments(['passage: jazz drummer']);
        // Not normalised: the same direction as the unit vector, another length.
        expect(Math.abs(norm(doc ?? []) - 1)).toBeGreaterThan(1e-3);
        expect(dot(doc ?? [], same ?? []) / norm(doc ?? [])).toBeGreaterThan(1 - 1e-6);
      } finally {
        await prompted.dispose();
      }
      const byDefault = await variant('default-prompt', {
        'config_sentence_transformers.json': { prompts: { retrieval: 'Represent: ' }, default_prompt_name: 'retrieval' },
      });
      const defaulted = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: byDefault } });
      try {
        expect(defaulted.model).toMatchObject({ queryPrefix: 'Represent: ', documentPrefix: 'Represent: ' });
      } finally {
        await defaulted.dispose();
      }
    });

    it("cuts texts at sentence_bert_config.json's max_seq_length, keeping [CLS] and [SEP] as Hugging Face tokenizers do", async () => {
      const dir = await variant('short', { 'sentence_bert_config.json': { max_seq_length: 8, do_lower_case: true } });
      const short = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: dir } });
      try {
        expect(short.model.maxTokens).toBe(8);
        expect(short.conventions.sources.maxTokens).toBe('model directory');
        const words = 'a jazz drummer who plays swing and bebop in smoky clubs every night';
        // 8 tokens: [CLS], the first six words, [SEP], i.e. what the uncut model makes of the first six
        // words. This model's every output row mixes in every input token, so a cut that dropped [SEP]
        // ([CLS] and seven words, transformers.js's own truncation) would give another vector.
        const [cut, sevenWords] = await short.embedDocuments([words, 'a jazz drummer who plays swing and']);
        const [firstSix, whole] = await embedder.embedDocuments(['a jazz drummer who plays swing', words]);
        expect(cut).toEqual(firstSix);
        expect(sevenWords).toEqual(firstSix);
        expect(maxDiff(whole ?? [], cut ?? [])).toBeGreaterThan(1e-4);
      } finally {
        await short.dispose();
      }
      const beyond = await variant('beyond-positions', { 'sentence_bert_config.json': { max_seq_length: 4096 } });
      const capped = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: beyond } });
      expect(capped.model.maxTokens).toBe(512); // never past max_position_embeddings
      await capped.dispose();
      const bad = await variant('bad-length', { 'sentence_bert_config.json': { max_seq_length: 'long' } });
      expect(await createEmbedder({ env: { EMBEDDING_MODEL_DIR: bad } }).catch((e: unknown) => e)).toBeInstanceOf(EmbeddingConfigError);
    });

    it('lets EMBEDDING_* variables override the directory, and refuses pooling it cannot do unless overridden', async () => {
      const overridden = await createEmbedder({
        env: {
          EMBEDDING_MODEL_DIR: modelDir,
          EMBEDDING_POOLING: 'mean',
          EMBEDDING_NORMALIZE: 'false',
          EMBEDDING_QUERY_PREFIX: '',
          EMBEDDING_DOCUMENT_PREFIX: 'doc: ',
        },
      });
      try {
        expect(overridden.model).toMatchObject({ pooling: 'mean', normalize: false, queryPrefix: '', documentPrefix: 'doc: ' });
        expect(Object.values(overridden.conventions.sources)).toEqual(['setting', 'setting', 'setting', 'setting', 'model directory']);
      } finally {
        await overridden.dispose();
      }
      const maxPooling = await variant('max-pooling', { '1_Pooling/config.json': poolingConfig('max_tokens') });
      const refused = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: maxPooling } }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(EmbeddingConfigError);
      expect((refused as Error).message).toMatch(/max pooling.*EMBEDDING_POOLING/);
      const forced = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: maxPooling, EMBEDDING_POOLING: 'cls' } });
      expect(forced.model.pooling).toBe('cls');
      await forced.dispose();
      expect(await createEmbedder({ env: { EMBEDDING_MODEL_DIR: modelDir, EMBEDDING_NORMALIZE: 'maybe' } }).catch((e: unknown) => e)).toBeInstanceOf(
        EmbeddingConfigError,
      );
    });
  });

  it('returns unit vectors of the model dimension, the same on every call', async () => {
    const texts = [PERSONAS[0] ?? '', ''];
    const first = await embedder.embedDocuments(texts);
    for (const v of first) {
      expect(v).toHaveLength(embedder.model.dimension);
      expect(Math.abs(norm(v) - 1)).toBeLessThan(1e-5);
    }
    expect(await embedder.embedDocuments(texts)).toEqual(first);
    expect(await embedder.embedQuery('jazz drummer')).toEqual(await embedder.embedQuery('jazz drummer'));
  });

  it('embeds each text in an ONNX run of its own: the same bits whatever it is embedded with, queries and documents alike, q8 and fp32', async () => {
    const before = { ...embedder.stats };
    await embedder.embedDocuments(PERSONAS);
    expect(embedder.stats).toEqual({ calls: before.calls + 1, texts: before.texts + PERSONAS.length, runs: before.runs + PERSONAS.length });
    const texts = [...PERSONAS, ...mixedLengthTexts(PERSONAS[0]!)];
    await expectBatchIndependent(embedder, texts);
    const fp32 = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: modelDir, EMBEDDING_DTYPE: 'fp32' } });
    try {
      await expectBatchIndependent(fp32, texts);
    } finally {
      await fp32.dispose();
    }
  });

  it('runs ONNX Runtime on EMBEDDING_THREADS intra-op threads with the same vectors, and rejects a bad count', async () => {
    const single = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: modelDir, EMBEDDING_THREADS: '1' } });
    try {
      const [a, b] = await Promise.all([single.embedDocuments(PERSONAS), embedder.embedDocuments(PERSONAS)]);
      expect(Math.max(...a.map((v, i) => maxDiff(v, b[i] ?? [])))).toBeLessThan(1e-5);
    } finally {
      await single.dispose();
    }
    await expect(createEmbedder({ env: { EMBEDDING_MODEL_DIR: modelDir, EMBEDDING_THREADS: 'two' } })).rejects.toThrow(/EMBEDDING_THREADS must be a positive integer/);
  });

  it('ranks the persona that shares distinctive words with the query first', async () => {
    const docs = await embedder.embedDocuments(PERSONAS);
    const queries = [
      'relativity and thought experiments',
      'croissants and laminated dough',
      'swing, bebop and improvisation',
      'a debate about virtue and ethics',
      'debugging typescript code',
    ];
    for (const [expected, query] of queries.entries()) {
      const q = await embedder.embedQuery(query);
      const scores = docs.map((d) => dot(q, d));
      const best = scores.indexOf(Math.max(...scores));
      expect(best, `${query}: ${scores.map((s) => s.toFixed(3)).join(' ')}`).toBe(expected);
    }
    // Unrelated texts are far apart, texts sharing words are closer.
    const [physics, pastry, relativity] = await embedder.embedDocuments([
      'a physicist who loves thought experiments',
      'a pastry chef who bakes bread',
      'thought experiments about relativity',
    ]);
    expect(dot(physics ?? [], relativity ?? [])).toBeGreaterThan(dot(physics ?? [], pastry ?? []) + 0.2);
  });

  it('puts the query prefix before queries only', async () => {
    const text = 'a stoic philosopher';
    const [doc] = await embedder.embedDocuments([text]);
    const [prefixedDoc] = await embedder.embedDocuments([BGE_QUERY_PREFIX + text]);
    const query = await embedder.embedQuery(text);
    expect(maxDiff(query, doc ?? [])).toBeGreaterThan(1e-3);
    expect(maxDiff(query, prefixedDoc ?? [])).toBeLessThan(1e-6);
  });

  it('counts embedding work and reports it, and does nothing for no texts', async () => {
    const before = { ...embedder.stats };
    const seen = events.length;
    expect(await embedder.embedDocuments([])).toEqual([]);
    expect(embedder.stats).toEqual(before);
    await embedder.embedQuery('jazz');
    await embedder.embedDocuments(['a', 'b', 'c']);
    expect(embedder.stats).toEqual({ calls: before.calls + 2, texts: before.texts + 4, runs: before.runs + 4 });
    expect(events.slice(seen).map(({ kind, texts, runs }) => ({ kind, texts, runs }))).toEqual([
      { kind: 'query', texts: 1, runs: 1 },
      { kind: 'documents', texts: 3, runs: 3 },
    ]);
  });

  it('loads fp32 (onnx/model.onnx) as well as q8, with close vectors', async () => {
    const fp32 = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: modelDir, EMBEDDING_DTYPE: 'fp32' } });
    try {
      expect(fp32.model.dtype).toBe('fp32');
      expect(fp32.model.dimension).toBe(embedder.model.dimension);
      expect(fp32.model.revision).not.toBe(embedder.model.revision);
      const [a] = await fp32.embedDocuments([PERSONAS[2] ?? '']);
      const [b] = await embedder.embedDocuments([PERSONAS[2] ?? '']);
      expect(dot(a ?? [], b ?? [])).toBeGreaterThan(0.999);
    } finally {
      await fp32.dispose();
    }
  });

  it('finds a hub model in the transformers.js cache without the network', async () => {
    const cacheDir = path.join(workDir, 'cache');
    const modelId = 'example-org/cached-model';
    await mkdir(path.join(cacheDir, 'example-org'), { recursive: true });
    await cp(modelDir, path.join(cacheDir, modelId), { recursive: true });
    const cached = await createEmbedder({
      env: { EMBEDDING_MODEL_ID: modelId, EMBEDDING_CACHE_DIR: cacheDir, EMBEDDING_ALLOW_REMOTE: 'false' },
    });
    try {
      expect(cached.model).toMatchObject({ id: modelId, revision: 'main', dimension: TEST_MODEL_HIDDEN_SIZE });
    } finally {
      await cached.dispose();
    }
  });

  it('fails at once, saying what to set, when no model is available offline', async () => {
    const emptyCache = path.join(workDir, 'empty-cache');
    const cases = [
      { EMBEDDING_CACHE_DIR: emptyCache, EMBEDDING_ALLOW_REMOTE: 'false' },
      { EMBEDDING_MODEL_DIR: path.join(workDir, 'no-such-model') },
    ];
    for (const env of cases) {
      const started = performance.now();
      const error = await createEmbedder({ env }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(error).toBeInstanceOf(EmbeddingModelUnavailableError);
      expect((error as Error).message).toMatch(/EMBEDDING_MODEL_DIR/);
      expect((error as Error).message).toContain('npm run model:test');
    }
    // A directory that is not there is named as such, not as one lacking every file.
    const absent = (await createEmbedder({ env: { EMBEDDING_MODEL_DIR: path.join(workDir, 'no-such-model') } }).catch((e: unknown) => e)) as Error;
    expect(absent.message).toContain(`EMBEDDING_MODEL_DIR=${path.join(workDir, 'no-such-model')} does not exist`);
    expect(absent.message).not.toMatch(/lacks/);
    const empty = path.join(workDir, 'empty-model');
    await mkdir(empty, { recursive: true });
    const lacking = (await createEmbedder({ env: { EMBEDDING_MODEL_DIR: empty } }).catch((e: unknown) => e)) as Error;
    expect(lacking.message).toMatch(/empty-model lacks config\.json, tokenizer\.json, tokenizer_config\.json, onnx\/model_quantized\.onnx/);
  });

  it('asks the hub only when allowed, and turns its failure into the same helpful error', async () => {
    const requests: string[] = [];
    const hub = createServer((req, res) => {
      requests.push(req.url ?? '');
      res.writeHead(401).end();
    });
    await new Promise<void>((resolve) => hub.listen(0, '127.0.0.1', resolve));
    const { env } = await import('@huggingface/transformers');
    const savedHost = env.remoteHost;
    env.remoteHost = `http://127.0.0.1:${(hub.address() as AddressInfo).port}/`;
    try {
      const cacheDir = path.join(workDir, 'remote-cache');
      const attempt = (allowRemote: string) =>
        createEmbedder({ env: { EMBEDDING_CACHE_DIR: cacheDir, EMBEDDING_ALLOW_REMOTE: allowRemote } }).then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(await attempt('false')).toBeInstanceOf(EmbeddingModelUnavailableError);
      expect(requests).toEqual([]);

      const started = performance.now();
      const error = await attempt('true');
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(requests.length).toBeGreaterThan(0);
      expect(requests[0]).toMatch(/^\/BAAI\/bge-small-en-v1\.5\/resolve\/main\//);
      expect(error).toBeInstanceOf(EmbeddingModelUnavailableError);
      expect((error as Error).message).toContain('could not be downloaded');
      expect((error as Error).message).toContain('npm run model:test');
    } finally {
      env.remoteHost = savedHost;
      await new Promise((resolve) => hub.close(resolve));
    }
  });

  it('getEmbedder loads once per process from the environment', async () => {
    const saved = process.env.EMBEDDING_MODEL_DIR;
    process.env.EMBEDDING_MODEL_DIR = modelDir;
    try {
      const [a, b] = await Promise.all([getEmbedder(), getEmbedder()]);
      expect(a).toBe(b);
      expect(await getEmbedder()).toBe(a);
      expect(a.model.id).toBe(TEST_MODEL_ID);
    } finally {
      await resetEmbedder();
      if (saved === undefined) delete process.env.EMBEDDING_MODEL_DIR;
      else process.env.EMBEDDING_MODEL_DIR = saved;
    }
  });
});

describe(`embedding module with a real word-embedding model ${sharedReason(GLOVE_MODEL_DIR, 'models/glove-sif-50d')}`, () => {
  let glove: Embedder;
  beforeAll(async () => {
    if (GLOVE_MODEL_DIR) glove = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: GLOVE_MODEL_DIR } });
  });
  afterAll(async () => glove?.dispose());

  it.skipIf(!GLOVE_MODEL_DIR)('takes mean pooling and no prompt from the directory alone (no EMBEDDING_* besides the directory)', () => {
    expect(glove.model).toMatchObject({ id: 'glove-sif-50d', dimension: 50, dtype: 'q8', pooling: 'mean', normalize: true, queryPrefix: '', documentPrefix: '' });
  });

  it.skipIf(!GLOVE_MODEL_DIR)('ranks a physicist query to the Einstein persona, by the meaning of the whole text', async () => {
    const texts = [
      'Albert Einstein: a theoretical physicist who explains relativity through imagined scenarios.',
      'A pastry chef who bakes croissants and French desserts.',
      'A jazz drummer who plays swing and bebop in smoky clubs.',
    ];
    const query = 'a physicist fond of thought experiments';
    const [einstein, chef, drummer] = await glove.embedDocuments(texts);
    const q = await glove.embedQuery(query);
    expect(dot(q, einstein ?? [])).toBeGreaterThan(dot(q, chef ?? []) + 0.05);
    expect(dot(q, einstein ?? [])).toBeGreaterThan(dot(q, drummer ?? []) + 0.05);
    // The reason is mean pooling: with CLS pooling this model's "sentence" vector is its first word's
    // vector ("albert", "a", "a"), and the two texts starting with "a" tie with the query exactly.
    const cls = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: GLOVE_MODEL_DIR, EMBEDDING_POOLING: 'cls' } });
    try {
      const [, clsChef, clsDrummer] = await cls.embedDocuments(texts);
      const [firstWord] = await cls.embedDocuments(['a']);
      expect(maxDiff(clsChef ?? [], firstWord ?? [])).toBe(0);
      expect(maxDiff(clsDrummer ?? [], firstWord ?? [])).toBe(0);
    } finally {
      await cls.dispose();
    }
  });

  it.skipIf(!GLOVE_MODEL_DIR)('fails only the texts whose embedding is a zero vector (words it does not know), keeping the others', async () => {
    const texts = ['a physicist who loves thought experiments', 'qwzxv blorftish zzyzzx', 'a chef who bakes bread'];
    const error = await glove.embedDocuments(texts).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnembeddableTextError);
    const { indices, vectors } = error as UnembeddableTextError;
    expect(indices).toEqual([1]);
    expect(vectors[1]).toBeUndefined();
    expect(vectors[0]).toEqual((await glove.embedDocuments([texts[0]!]))[0]);
    expect(vectors[2]).toEqual((await glove.embedDocuments([texts[2]!]))[0]);
    expect(await glove.embedQuery('qwzxv blorftish').catch((e: unknown) => e)).toBeInstanceOf(UnembeddableTextError);
    expect(await glove.embedQuery('   ').catch((e: unknown) => e)).toBeInstanceOf(UnembeddableTextError);
  });
});

/**
 * The shared all-MiniLM-L6-v2 (../shared/models/all-MiniLM-L6-v2, see its README): a published
 * sentence-transformers model whose directory names no prompts, mean pooling, a Normalize module and
 * max_seq_length 256, and whose config.json `_name_or_path` is its base model
 * (nreimers/MiniLM-L6-H384-uncased). reference_vectors.json holds its embeddings from onnxruntime in
 * Python (mean pooled over the attended tokens, normalised, texts cut at 256 tokens), fp32 and q8.
 */
describe(`embedding module with a real sentence encoder ${sharedReason(MINILM_MODEL_DIR, 'models/all-MiniLM-L6-v2')}`, () => {
  interface ReferenceVectors {
    max_seq_length: number;
    texts: string[];
    fp32: number[][];
    q8: number[][];
  }
  let reference: ReferenceVectors;
  const embedders: Partial<Record<'fp32' | 'q8', Embedder>> = {};
  const cosine = (a: number[], b: number[]) => dot(a, b) / (norm(a) * norm(b));

  beforeAll(async () => {
    if (!MINILM_MODEL_DIR) return;
    reference = JSON.parse(await readFile(path.join(MINILM_MODEL_DIR, 'reference_vectors.json'), 'utf8')) as ReferenceVectors;
    // Nothing but the directory: what a new user sets.
    embedders.fp32 = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: MINILM_MODEL_DIR, EMBEDDING_DTYPE: 'fp32' } });
    embedders.q8 = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: MINILM_MODEL_DIR, EMBEDDING_DTYPE: 'q8' } });
  });
  afterAll(async () => {
    await embedders.fp32?.dispose();
    await embedders.q8?.dispose();
  });

  it.skipIf(!MINILM_MODEL_DIR)('takes its conventions from the directory: mean pooling, unit vectors, no prompts, 256 tokens, and its own name', () => {
    for (const embedder of [embedders.fp32!, embedders.q8!]) {
      expect(embedder.model).toMatchObject({ id: 'all-MiniLM-L6-v2', pooling: 'mean', normalize: true, queryPrefix: '', documentPrefix: '', maxTokens: reference.max_seq_length });
      expect(embedder.conventions.sources).toEqual({ pooling: 'model directory', normalize: 'model directory', queryPrefix: 'default', documentPrefix: 'default', maxTokens: 'model directory' });
    }
  });

  it.skipIf(!MINILM_MODEL_DIR)('embeds a query like a document of the same text (no bge instruction before it)', async () => {
    const text = reference.texts[3]!;
    const [doc] = await embedders.fp32!.embedDocuments([text]);
    expect(cosine(await embedders.fp32!.embedQuery(text), doc!)).toBeGreaterThan(0.999999);
    // What the bge instruction did to this model's query of the same text (0.695 in the persona example).
    const [instructed] = await embedders.fp32!.embedDocuments([BGE_QUERY_PREFIX + text]);
    expect(cosine(instructed!, doc!)).toBeLessThan(0.9);
  });

  it.skipIf(!MINILM_MODEL_DIR)('gives the reference vectors (fp32 within cosine 0.99999, q8 within 0.999), the 800-character text cut at 256 tokens', async () => {
    for (const [dtype, floor] of [['fp32', 0.99999], ['q8', 0.999]] as const) {
      const embedder = embedders[dtype]!;
      for (const [i, text] of reference.texts.entries()) {
        const [alone] = await embedder.embedDocuments([text]);
        expect(cosine(alone!, reference[dtype][i]!), `${dtype} text ${i} alone`).toBeGreaterThan(floor);
      }
    }
    // That is max_seq_length at work: the same files without sentence_bert_config.json cut at the
    // tokenizer's 512 and miss the long text's reference (cosine 0.984).
    const long = reference.texts.findIndex((text) => text.length >= 800);
    const withoutLimit = await mkdtemp(path.join(tmpdir(), 'minilm-512-'));
    try {
      for (const entry of await readdir(MINILM_MODEL_DIR!)) {
        if (entry !== 'sentence_bert_config.json') await symlink(path.join(MINILM_MODEL_DIR!, entry), path.join(withoutLimit, entry));
      }
      const at512 = await createEmbedder({ env: { EMBEDDING_MODEL_DIR: withoutLimit, EMBEDDING_DTYPE: 'fp32' } });
      try {
        expect(at512.model.maxTokens).toBe(512);
        const [vector] = await at512.embedDocuments([reference.texts[long]!]);
        expect(cosine(vector!, reference.fp32[long]!)).toBeLessThan(0.999);
      } finally {
        await at512.dispose();
      }
    } finally {
      await rm(withoutLimit, { recursive: true, force: true });
    }
  });

  it.skipIf(!MINILM_MODEL_DIR)('gives the reference vectors to texts embedded in batches among texts of very different lengths, fp32 and q8', async () => {
    for (const [dtype, floor] of [['fp32', 0.99999], ['q8', 0.999]] as const) {
      const embedder = embedders[dtype]!;
      const together = await embedder.embedDocuments(reference.texts);
      const mixed = await embedder.embedDocuments([...PERSONAS, ...reference.texts, ...PERSONAS.map((p) => p.repeat(4))]);
      for (const [i] of reference.texts.entries()) {
        expect(cosine(together[i]!, reference[dtype][i]!), `${dtype} text ${i} in one call`).toBeGreaterThan(floor);
        expect(cosine(mixed[PERSONAS.length + i]!, reference[dtype][i]!), `${dtype} text ${i} among others`).toBeGreaterThan(floor);
      }
    }
  });

  it.skipIf(!MINILM_MODEL_DIR)('gives a text the same bits whatever it is embedded with, queries and documents alike, fp32 and q8', async () => {
    const texts = [...reference.texts, ...mixedLengthTexts(PERSONAS[1]!)];
    for (const dtype of ['fp32', 'q8'] as const) await expectBatchIndependent(embedders[dtype]!, texts);
  });
});
