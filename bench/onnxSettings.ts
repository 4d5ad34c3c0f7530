/**
 * ONNX Runtime settings and what each costs, on the model's own ONNX file in a raw
 * onnxruntime-node session (the binary transformers.js loads):
 *
 * - reference grid: fixed token lengths and batch sizes (48x8, 64x8, 128x4) at q8 with 1 and 2
 *   intra-op threads and fp32 with 1, as the reference figures for bge-small's shape;
 * - intra-op threads (1, 2) and graph optimisation level (disabled, basic, extended, all) at 64x8;
 * - sequence bucketing: persona texts in batches of 32 as they come (padded to the longest of the
 *   batch) or sorted by length in windows (what embedDocuments did per call before it ran one text per run), with the padding each
 *   leaves;
 * - the per-persona CPU cost of the production path (embedDocuments), which the sizing table uses,
 *   with the default dtype on 1 and 2 intra-op threads and the other dtype on 1.
 *
 * Every rate is given twice: texts per wall-clock second, and texts per CPU-second of this process
 * (process.cpuUsage, all threads). On a machine shared with other work the wall rate falls with the
 * load; the CPU rate mostly does not, so it is the figure to compare with other machines.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createEmbedder } from '../shared/embedding';
import { onnxFileFor, resolveEmbedderSettings, type EmbeddingDtype } from '../shared/embedding/config';
import { transformersOrt } from './embeddingThroughput';

type Ort = ReturnType<typeof transformersOrt>;
type Session = Awaited<ReturnType<Ort['InferenceSession']['create']>>;
type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface CostMeasurement {
  textsPerSecond: number;
  textsPerCpuSecond: number;
  /** CPU milliseconds per text (1000 / textsPerCpuSecond). */
  cpuMsPerText: number;
}

/** Runs `work` (one call = `texts` texts) until `budgetMs` has passed; wall and CPU rates. */
export async function measureCost(work: () => Promise<unknown>, texts: number, budgetMs: number): Promise<CostMeasurement> {
  await work(); // warm-up: the first run of a shape allocates
  let done = 0;
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  while (performance.now() - started < budgetMs) {
    await work();
    done += texts;
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return {
    textsPerSecond: Math.round((done / seconds) * 10) / 10,
    textsPerCpuSecond: Math.round((done / cpuSeconds) * 10) / 10,
    cpuMsPerText: Math.round(((cpuSeconds * 1000) / done) * 100) / 100,
  };
}

async function openSession(ort: Ort, modelDir: string, dtype: EmbeddingDtype, threads: number, level: GraphOptimizationLevel = 'all'): Promise<{ session: Session; loadMs: number; rssDeltaMiB: number }> {
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  const session = await ort.InferenceSession.create(path.join(modelDir, onnxFileFor(dtype)), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: level,
  });
  return { session, loadMs: Math.round(performance.now() - started), rssDeltaMiB: Math.round((process.memoryUsage().rss - rssBefore) / 2 ** 20) };
}

/** Synthetic ids of a fixed length, all attended (no padding): the reference figures' inputs. */
function fixedFeeds(ort: Ort, sequence: number, batch: number, vocabSize: number) {
  const n = sequence * batch;
  const low = Math.min(1000, Math.floor(vocabSize / 2));
  const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(low + ((i * 7919) % (vocabSize - low))));
  return {
    input_ids: new ort.Tensor('int64', ids, [batch, sequence]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [batch, sequence]),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(n), [batch, sequence]),
  };
}

export interface ReferenceCell extends CostMeasurement {
  dtype: EmbeddingDtype;
  threads: number;
  sequence: number;
  batch: number;
}

export interface SettingsResult {
  session: { dtype: EmbeddingDtype; loadMs: number; rssDeltaMiB: number }[];
  reference: ReferenceCell[];
  graphOptimization: Array<{ level: GraphOptimizationLevel; loadMs: number } & CostMeasurement>;
  bucketing: Array<{ order: 'as they come' | 'sorted in windows of 128'; batch: number; paddingShare: number } & CostMeasurement>;
  /** Tokens per persona text with the model's tokenizer ([CLS] and [SEP] included). */
  meanTokens: number;
  /** The least any uncased WordPiece tokenizer could give: one token per word and punctuation mark, plus [CLS] and [SEP]. */
  meanWordsAndPunctuation: number;
  /** embedDocuments (the production embedder) in stream batches: the default dtype with 1 and 2 intra-op threads, the other dtype with 1. */
  embedDocuments: Array<{ dtype: EmbeddingDtype; threads: number } & CostMeasurement>;
  /** CPU-ms per persona of embedDocuments with the default dtype, for the sizing table. */
  perPersona: { dtype: EmbeddingDtype; oneThread: number; twoThreads: number };
}

/** The reference grid of the issue: [sequence, batch] at q8 x {1, 2} threads and fp32 x 1 thread. */
export const REFERENCE_SHAPES: Array<[number, number]> = [
  [48, 8],
  [64, 8],
  [128, 4],
];
export const REFERENCE_CONFIGS: Array<[EmbeddingDtype, number]> = [
  ['q8', 1],
  ['q8', 2],
  ['fp32', 1],
];

export async function measureOnnxSettings(modelDir: string, texts: readonly string[], streamBatchSize: number, budgetMs: number): Promise<SettingsResult> {
  const defaultDtype = resolveEmbedderSettings().dtype;
  const ort = transformersOrt();
  const { vocab_size: vocabSize } = JSON.parse(readFileSync(path.join(modelDir, 'config.json'), 'utf8')) as { vocab_size: number };
  const result: SettingsResult = { session: [], reference: [], graphOptimization: [], bucketing: [], meanTokens: 0, meanWordsAndPunctuation: 0, embedDocuments: [], perPersona: { dtype: defaultDtype, oneThread: 0, twoThreads: 0 } };

  for (const [dtype, threads] of REFERENCE_CONFIGS) {
    const { session, loadMs, rssDeltaMiB } = await openSession(ort, modelDir, dtype, threads);
    if (threads === 1) result.session.push({ dtype, loadMs, rssDeltaMiB });
    for (const [sequence, batch] of REFERENCE_SHAPES) {
      const feeds = fixedFeeds(ort, sequence, batch, vocabSize);
      result.reference.push({ dtype, threads, sequence, batch, ...(await measureCost(() => session.run(feeds), batch, budgetMs)) });
    }
    await session.release();
  }

  for (const level of ['disabled', 'basic', 'extended', 'all'] as const) {
    const { session, loadMs } = await openSession(ort, modelDir, 'q8', 1, level);
    const feeds = fixedFeeds(ort, 64, 8, vocabSize);
    result.graphOptimization.push({ level, loadMs, ...(await measureCost(() => session.run(feeds), 8, budgetMs)) });
    await session.release();
  }

  // Sequence bucketing, on the model's tokenizer and persona texts, q8, 1 thread.
  const { AutoTokenizer } = await import('@huggingface/transformers');
  const tokenizer = await AutoTokenizer.from_pretrained(modelDir, { local_files_only: true });
  const tokenCount = (text: string) => (tokenizer(text, { truncation: true }) as unknown as { input_ids: { dims: number[] } }).input_ids.dims.at(-1)!;
  const lengths = new Map(texts.map((text) => [text, tokenCount(text)]));
  const { session } = await openSession(ort, modelDir, 'q8', 1);
  const batch = 32;
  const orders: Array<[SettingsResult['bucketing'][number]['order'], string[]]> = [
    ['as they come', [...texts]],
    ['sorted in windows of 128', sortedInWindows(texts, lengths, 128)],
  ];
  for (const [order, ordered] of orders) {
    let cursor = 0;
    let real = 0;
    let padded = 0;
    for (let start = 0; start + batch <= ordered.length; start += batch) {
      const slice = ordered.slice(start, start + batch).map((text) => lengths.get(text)!);
      real += slice.reduce((a, b) => a + b, 0);
      padded += Math.max(...slice) * slice.length;
    }
    const run = async () => {
      const slice = Array.from({ length: batch }, () => ordered[cursor++ % ordered.length]!);
      const encoded = tokenizer(slice, { padding: true, truncation: true }) as unknown as Record<string, { data: BigInt64Array; dims: number[] }>;
      const feeds = Object.fromEntries(session.inputNames.map((name) => [name, new ort.Tensor('int64', encoded[name]!.data, encoded[name]!.dims)]));
      return session.run(feeds);
    };
    result.bucketing.push({ order, batch, paddingShare: Math.round((1 - real / padded) * 1000) / 1000, ...(await measureCost(run, batch, budgetMs)) });
  }
  await session.release();

  result.meanTokens = Math.round(([...lengths.values()].reduce((a, b) => a + b, 0) / lengths.size) * 10) / 10;
  const pieces = texts.map((text) => (text.toLowerCase().match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu)?.length ?? 0) + 2);
  result.meanWordsAndPunctuation = Math.round((pieces.reduce((a, b) => a + b, 0) / pieces.length) * 10) / 10;
  const otherDtype: EmbeddingDtype = defaultDtype === 'q8' ? 'fp32' : 'q8';
  for (const [dtype, threads] of [[defaultDtype, 1], [defaultDtype, 2], [otherDtype, 1]] as const) {
    const embedder = await createEmbedder({ modelDir, threads, dtype });
    let cursor = 0;
    const next = () => Array.from({ length: streamBatchSize }, () => texts[cursor++ % texts.length]!);
    result.embedDocuments.push({ dtype, threads, ...(await measureCost(() => embedder.embedDocuments(next()), streamBatchSize, budgetMs * 3)) });
    await embedder.dispose();
  }
  const cost = (threads: number) => result.embedDocuments.find((run) => run.dtype === defaultDtype && run.threads === threads)!.cpuMsPerText;
  result.perPersona = { dtype: defaultDtype, oneThread: cost(1), twoThreads: cost(2) };
  return result;
}

function sortedInWindows(texts: readonly string[], lengths: Map<string, number>, window: number): string[] {
  const out: string[] = [];
  for (let start = 0; start < texts.length; start += window) out.push(...texts.slice(start, start + window).sort((a, b) => lengths.get(a)! - lengths.get(b)!));
  return out;
}
