/**
 * `npm run bench:quality`: the search modes' retrieval quality on the real personas with the real
 * sentence encoder, on both retrieval sets (near-duplicate dev pairs, our paraphrase pairs), tune and
 * held-out parts apart (bench/searchQuality.ts), as markdown tables, written to
 * bench/results/search-quality.json.
 *
 *   npm run bench:quality                         all pairs of both sets
 *   npm run bench:quality -- --pairs 500          a fixed sample of the near-duplicate pairs (all paraphrases)
 *   npm run bench:quality -- --tune               the keyword settings grid (bench/keywordTuning.ts), tune parts
 *   npm run bench:quality -- --tune-fusion        the fusion grid (bench/fusionTuning.ts): chosen on the tune parts,
 *                                                 shown on the held-out parts
 *   npm run bench:quality -- --overlap            the content words each set's query and target share (bench/PARAPHRASES.md)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../infra/bundling';
import { KEYWORD_WEIGHT_POLICY, RRF_K } from '../shared/search/searchRequest';
import { KEYWORD_SETTINGS, keywordTokens } from '../shared/vectorIndex/keywordVector';
import { checkAgainstServerFusion, EVIDENCE_CANDIDATES, evaluateVariant, prepareFusionTuning, TASKS, type FusionMetrics, type FusionTuningData, type Variant } from './fusionTuning';
import { tuneKeywordSettings } from './keywordTuning';
import { machineInfo } from './machineInfo';
import { wordOverlap } from './paraphraseSet';
import { SPLITS } from './searchQuality';
import { loadPersonaDataset, nearDuplicateSet, paraphraseSet, RETRIEVAL_SETS, samplePairs, type PersonaDataset } from './personaDataset';
import { qualityDataAvailable } from './qualityModel';
import { comparisonTable, measureSearchQuality, qualityTable } from './searchQuality';

const argument = (name: string) => {
  const at = process.argv.indexOf(name);
  return at < 0 ? undefined : process.argv[at + 1];
};
const log = (line: string) => console.log(`[quality ${new Date().toISOString().slice(11, 19)}] ${line}`);

/** Each leg's candidates, as the product's prefetches (BLEND_CANDIDATES). */
const FUSION_TUNING_DEPTH = 1100;
const LIMITS = { semantic: FUSION_TUNING_DEPTH, keyword: FUSION_TUNING_DEPTH };

type Candidate = { label: string; variant: Exclude<Variant, { kind: 'leg' }> };

/** The variants tried: RRF over k and keyword weight, DBSF, and keyword weights chosen by evidence. */
function fusionCandidates(): Candidate[] {
  const candidates: Candidate[] = [{ label: 'DBSF', variant: { kind: 'fused', setting: { fusion: 'dbsf', k: 0, weights: { semantic: 1, keyword: 1 }, limits: LIMITS } } }];
  for (const k of [1, 2, 5, 10, 60])
    for (const keyword of [0.1, 0.2, 0.3, 0.5, 1, 2, 3, 5])
      candidates.push({ label: `RRF k ${k}, 1:${keyword}`, variant: { kind: 'fused', setting: { fusion: 'rrf', k, weights: { semantic: 1, keyword }, limits: LIMITS } } });
  for (const threshold of [0.3, 0.4, 0.5, 0.6, 0.7])
    for (const weak of [0.1, 0.2, 0.3, 0.5])
      for (const strong of [1, 2, 3, 5])
        candidates.push({
          label: `evidence ≥ ${threshold}: 1:${strong}, else 1:${weak}`,
          variant: { kind: 'policy', policy: { candidates: EVIDENCE_CANDIDATES, threshold, weak, strong }, k: RRF_K, limits: LIMITS },
        });
  return candidates;
}

/**
 * How much of the better single ranking's recall@10 and MRR a variant keeps, at worst over both sets
 * and both tasks: the choice rule ("never lose much of what the better ranking finds on either kind
 * of query"), applied to the tune parts only.
 */
function worstShare(metrics: Record<string, FusionMetrics>, legs: Record<string, FusionMetrics[]>): number {
  let worst = Infinity;
  for (const set of RETRIEVAL_SETS)
    for (const task of TASKS)
      for (const metric of ['recallAt10', 'mrr'] as const) {
        const best = Math.max(...legs[set]!.map((leg) => leg[task][metric]));
        worst = Math.min(worst, metrics[set]![task][metric] / best);
      }
  return worst;
}

const cells = (metrics: FusionMetrics) => TASKS.map((task) => `${metrics[task].recallAt10.toFixed(4)} / ${metrics[task].mrr.toFixed(4)}`).join(' | ');

function printFusionTuning(data: FusionTuningData): void {
  const header = RETRIEVAL_SETS.flatMap((set) => SPLITS.flatMap((split) => TASKS.map((task) => `${set} ${split}: ${task} R@10 / MRR`)));
  console.log(`| variant | ${header.join(' | ')} | worst share kept (tune) |`);
  console.log(`|---|${header.map(() => '---|').join('')}---|`);
  const evaluate = (variant: Variant) =>
    Object.fromEntries(SPLITS.map((split) => [split, Object.fromEntries(RETRIEVAL_SETS.map((set) => [set, evaluateVariant(data, set, split, variant)]))])) as Record<
      (typeof SPLITS)[number],
      Record<string, FusionMetrics>
    >;
  const legs = { keyword: evaluate({ kind: 'leg', leg: 'keyword' }), semantic: evaluate({ kind: 'leg', leg: 'semantic' }) };
  const legsOf = (split: (typeof SPLITS)[number]) => Object.fromEntries(RETRIEVAL_SETS.map((set) => [set, [legs.keyword[split][set]!, legs.semantic[split][set]!]]));
  const row = (label: string, metrics: ReturnType<typeof evaluate>, share?: number) =>
    console.log(`| ${label} | ${RETRIEVAL_SETS.flatMap((set) => SPLITS.map((split) => cells(metrics[split][set]!))).join(' | ')} | ${share === undefined ? '' : share.toFixed(4)} |`);
  row('keyword', legs.keyword);
  row('semantic', legs.semantic);
  let best: { label: string; share: number } | undefined;
  for (const { label, variant } of fusionCandidates()) {
    const metrics = evaluate(variant);
    const share = worstShare(metrics.tune, legsOf('tune'));
    if (!best || share > best.share) best = { label, share };
    row(label, metrics, share);
  }
  console.log(`\nBest by the rule (the largest worst share kept on the tune parts): ${best!.label} (${best!.share.toFixed(4)}).`);
  console.log(`The product's default: evidence ≥ ${KEYWORD_WEIGHT_POLICY.threshold}: 1:${KEYWORD_WEIGHT_POLICY.strong}, else 1:${KEYWORD_WEIGHT_POLICY.weak} (k ${RRF_K}).`);
}

function printKeywordTuning(dataset: PersonaDataset): void {
  const sets = [nearDuplicateSet(dataset), paraphraseSet(dataset)];
  console.log(`keyword settings on the tune parts (search: the query persona's text; similar: its stored vector)`);
  console.log(`| stem | stop words | k1 | b | average length | ${sets.flatMap((set) => TASKS.map((task) => `${set.name}: ${task} R@10 / MRR`)).join(' | ')} |`);
  console.log(`|---|---|---|---|---|${sets.flatMap(() => TASKS.map(() => '---|')).join('')}`);
  for (const { settings, rows } of tuneKeywordSettings(dataset, sets, KEYWORD_SETTINGS)) {
    const { stem, dropStopwords, k1, b, averageLength } = settings;
    console.log(`| ${stem} | ${dropStopwords ? 'dropped' : 'kept'} | ${k1} | ${b} | ${averageLength} | ${rows.map((row) => cells(row)).join(' | ')} |`);
  }
}

function printOverlap(dataset: PersonaDataset): void {
  const text = (sourceId: string) => dataset.bySourceId.get(sourceId)!.text;
  const paraphrases = (origin: string) => dataset.paraphrases.filter((pair) => pair.id.startsWith(origin)).map((pair) => ({ query: pair.text, target: text(pair.id) }));
  const rows: Array<[string, Array<{ query: string; target: string }>]> = [
    ['paraphrase pairs', [...paraphrases('spcpc-'), ...paraphrases('spcnew-')]],
    ['  of PersonaChat personas', paraphrases('spcpc-')],
    ['  of synthetic personas', paraphrases('spcnew-')],
    ['near-duplicate dev pairs', dataset.pairs.map((pair) => ({ query: text(pair.a), target: text(pair.b) }))],
  ];
  console.log('| pairs | count | content-word Jaccard | share of the query\'s content words in the target |\n|---|---|---|---|');
  for (const [label, pairs] of rows) {
    const overlap = wordOverlap(pairs, (words) => keywordTokens(words));
    console.log(`| ${label} | ${overlap.pairs} | ${overlap.jaccard.toFixed(3)} | ${overlap.queryWordsInTarget.toFixed(3)} |`);
  }
}

async function main(): Promise<void> {
  if (!qualityDataAvailable()) {
    console.error('bench:quality needs ../shared/data/personas and ../shared/models/all-MiniLM-L6-v2 beside the project; they are not there.');
    process.exitCode = 1;
    return;
  }
  const pairs = argument('--pairs') ? Number(argument('--pairs')) : undefined;
  if (process.argv.includes('--tune-fusion')) {
    const dataset = loadPersonaDataset();
    const sets = [nearDuplicateSet(dataset, pairs ? samplePairs(dataset.pairs, pairs) : dataset.pairs), paraphraseSet(dataset)];
    const data = await prepareFusionTuning(dataset, sets, FUSION_TUNING_DEPTH, log);
    for (const { variant } of fusionCandidates().filter((_, i) => i % 17 === 0)) checkAgainstServerFusion(data, variant, 100);
    log(`the grid's fusion agrees with the local server's on 100 queries of each set (${data.model})`);
    printFusionTuning(data);
    return;
  }
  if (process.argv.includes('--overlap')) {
    printOverlap(loadPersonaDataset());
    return;
  }
  if (process.argv.includes('--tune')) {
    printKeywordTuning(loadPersonaDataset());
    return;
  }
  const machine = machineInfo();
  const report = await measureSearchQuality({ ...(pairs ? { nearDuplicatePairs: pairs } : {}), log });
  console.log(`\n${report.personas} personas, ${report.model}; indexed in ${report.indexSeconds.toFixed(0)} s, queried in ${report.querySeconds.toFixed(0)} s`);
  for (const set of RETRIEVAL_SETS)
    for (const split of SPLITS) console.log(`\n${set}, ${split} (${report.sets[set].queries} query personas in all):\n\n${qualityTable(report, set, split)}`);
  console.log(`\nThe default minus each single ranking, pair by pair (95% bootstrap intervals, query personas resampled):\n\n${comparisonTable(report)}`);
  const dir = path.join(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, pairs ? 'search-quality-sample.json' : 'search-quality.json');
  writeFileSync(file, `${JSON.stringify({ machine, keywordSettings: KEYWORD_SETTINGS, keywordWeightPolicy: KEYWORD_WEIGHT_POLICY, ...report }, null, 2)}\n`);
  log(`written ${path.relative(PROJECT_ROOT, file)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
