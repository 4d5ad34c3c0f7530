/**
 * `npm run bench:quality`: the search modes' retrieval quality on the real personas and their dev
 * pairs (bench/searchQuality.ts), as a markdown table, written to bench/results/search-quality.json.
 *
 *   npm run bench:quality                 all dev pairs
 *   npm run bench:quality -- --pairs 500  a fixed sample of them
 *   npm run bench:quality -- --tune       the keyword settings grid (bench/keywordTuning.ts) on the dev pairs
 *   npm run bench:quality -- --tune-fusion  the hybrid fusion grid (bench/fusionTuning.ts), chosen on one half of the
 *                                           dev pairs' families and checked on the other
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../infra/bundling';
import { KEYWORD_SETTINGS } from '../shared/vectorIndex/keywordVector';
import { checkAgainstServerFusion, evaluateVariant, fusionGrid, prepareFusionTuning, type FusionMetrics, type FusionSetting } from './fusionTuning';
import { tuneKeywordSettings } from './keywordTuning';
import { machineInfo } from './machineInfo';
import { loadPersonaDataset, samplePairs, type DevPair, type PersonaDataset } from './personaDataset';
import { comparisonTable, measureSearchQuality, QUALITY_MODEL_DIR, qualityDataAvailable, qualityTable } from './searchQuality';

const argument = (name: string) => {
  const at = process.argv.indexOf(name);
  return at < 0 ? undefined : process.argv[at + 1];
};
const log = (line: string) => console.log(`[quality ${new Date().toISOString().slice(11, 19)}] ${line}`);

const FUSION_TUNING_DEPTH = 1100;

const describeSetting = (setting: FusionSetting) =>
  `${setting.fusion === 'rrf' ? `rrf k=${setting.k} w=${setting.weights.semantic}:${setting.weights.keyword}` : 'dbsf'} limits=${setting.limits.semantic}/${setting.limits.keyword}`;

const metricCells = (metrics: FusionMetrics) =>
  [metrics.search.recallAt10, metrics.search.mrr, metrics.similar.recallAt10, metrics.similar.mrr].map((value) => value.toFixed(4)).join(' | ');

/** Whether a fused variant is at least as good as the better leg on recall@10 and MRR, for search and similar. */
const meetsTarget = (fused: FusionMetrics, legs: FusionMetrics[]) =>
  (['search', 'similar'] as const).every((task) =>
    (['recallAt10', 'mrr'] as const).every((metric) => fused[task][metric] >= Math.max(...legs.map((leg) => leg[task][metric]))),
  );

async function printFusionTuning(dataset: PersonaDataset, pairs: readonly DevPair[]): Promise<void> {
  log(`ranking ${pairs.length} dev pairs' queries ${FUSION_TUNING_DEPTH} deep in both legs`);
  const data = await prepareFusionTuning(dataset, pairs, QUALITY_MODEL_DIR, FUSION_TUNING_DEPTH);
  const counts = (['tune', 'check'] as const).map((split) => `${split} ${data.splitOfQuery.filter((s) => s === split).length}`);
  log(`query personas: ${counts.join(', ')}`);
  const grid = fusionGrid(FUSION_TUNING_DEPTH);
  for (const setting of [grid[0]!, grid[grid.length - 1]!, grid[7]!]) checkAgainstServerFusion(data, setting, 200);
  log('the grid\'s fusion agrees with the local server\'s on 200 queries');
  console.log(
    '| variant | tune: search R@10 | search MRR | similar R@10 | similar MRR | check: search R@10 | search MRR | similar R@10 | similar MRR | target met (tune / check) | BM25-blind tune: search R@10 | similar R@10 |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  const legs = { tune: [] as FusionMetrics[], check: [] as FusionMetrics[] };
  for (const leg of ['keyword', 'semantic'] as const) {
    const tune = evaluateVariant(data, 'tune', { kind: 'leg', leg });
    const check = evaluateVariant(data, 'check', { kind: 'leg', leg });
    legs.tune.push(tune);
    legs.check.push(check);
    console.log(`| ${leg} | ${metricCells(tune)} | ${metricCells(check)} | | | |`);
  }
  for (const setting of grid) {
    const tune = evaluateVariant(data, 'tune', { kind: 'fused', setting });
    const check = evaluateVariant(data, 'check', { kind: 'fused', setting });
    const met = `${meetsTarget(tune, legs.tune) ? 'yes' : 'no'} / ${meetsTarget(check, legs.check) ? 'yes' : 'no'}`;
    const blind = evaluateVariant(data, 'tune', { kind: 'fused', setting }, true);
    console.log(`| ${describeSetting(setting)} | ${metricCells(tune)} | ${metricCells(check)} | ${met} | ${blind.search.recallAt10.toFixed(4)} | ${blind.similar.recallAt10.toFixed(4)} |`);
  }
}

async function main(): Promise<void> {
  if (!qualityDataAvailable()) {
    console.error('bench:quality needs ../shared/data/personas and ../shared/models/glove-sif-50d beside the project; they are not there.');
    process.exitCode = 1;
    return;
  }
  const pairs = argument('--pairs') ? Number(argument('--pairs')) : undefined;
  if (process.argv.includes('--tune-fusion')) {
    const dataset = loadPersonaDataset();
    await printFusionTuning(dataset, pairs ? samplePairs(dataset.pairs, pairs) : dataset.pairs);
    return;
  }
  if (process.argv.includes('--tune')) {
    const dataset = loadPersonaDataset();
    const sample = samplePairs(dataset.pairs, pairs ?? 1000);
    console.log(`keyword settings on ${sample.length} dev pairs (search: query = a's text; similar: a's stored vector)`);
    console.log('| stem | stop words | k1 | b | average length | search R@1 | search R@10 | search MRR | similar R@1 | similar R@10 | similar MRR |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const row of tuneKeywordSettings(dataset, sample, KEYWORD_SETTINGS)) {
      const { stem, dropStopwords, k1, b, averageLength } = row.settings;
      const cells = [row.search.recallAt1, row.search.recallAt10, row.search.mrr, row.similar.recallAt1, row.similar.recallAt10, row.similar.mrr];
      console.log(`| ${stem} | ${dropStopwords ? 'dropped' : 'kept'} | ${k1} | ${b} | ${averageLength} | ${cells.map((value) => value.toFixed(4)).join(' | ')} |`);
    }
    return;
  }
  const machine = machineInfo();
  const report = await measureSearchQuality({ ...(pairs ? { pairs } : {}), log });
  const table = qualityTable(report);
  console.log(`\n${report.personas} personas, ${report.pairs} dev pairs, ${report.model}; indexed in ${report.indexSeconds.toFixed(0)} s, queried in ${report.querySeconds.toFixed(0)} s\n`);
  console.log(table);
  console.log(`\nThe default hybrid minus each single ranking, pair by pair (95% bootstrap intervals, query personas resampled):\n\n${comparisonTable(report)}`);
  const dir = path.join(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, pairs ? 'search-quality-sample.json' : 'search-quality.json');
  writeFileSync(file, `${JSON.stringify({ machine, keywordSettings: KEYWORD_SETTINGS, ...report }, null, 2)}\n`);
  log(`written ${path.relative(PROJECT_ROOT, file)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
