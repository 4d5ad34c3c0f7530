/**
 * `npm run bench:quality`: the search modes' retrieval quality on the real personas and their dev
 * pairs (bench/searchQuality.ts), as a markdown table, written to bench/results/search-quality.json.
 *
 *   npm run bench:quality                 all dev pairs
 *   npm run bench:quality -- --pairs 500  a fixed sample of them
 *   npm run bench:quality -- --tune       the keyword settings grid (bench/keywordTuning.ts) on the dev pairs
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../infra/bundling';
import { KEYWORD_SETTINGS } from '../shared/vectorIndex/keywordVector';
import { tuneKeywordSettings } from './keywordTuning';
import { machineInfo } from './machineInfo';
import { loadPersonaDataset, samplePairs } from './personaDataset';
import { measureSearchQuality, qualityDataAvailable, qualityTable } from './searchQuality';

const argument = (name: string) => {
  const at = process.argv.indexOf(name);
  return at < 0 ? undefined : process.argv[at + 1];
};
const log = (line: string) => console.log(`[quality ${new Date().toISOString().slice(11, 19)}] ${line}`);

async function main(): Promise<void> {
  if (!qualityDataAvailable()) {
    console.error('bench:quality needs ../shared/data/personas and ../shared/models/glove-sif-50d beside the project; they are not there.');
    process.exitCode = 1;
    return;
  }
  const pairs = argument('--pairs') ? Number(argument('--pairs')) : undefined;
  if (process.argv.includes('--tune')) {
    const dataset = loadPersonaDataset();
    const sample = samplePairs(dataset.pairs, pairs ?? 1000);
    console.log(`keyword settings on ${sample.length} dev pairs (search: query = a's text; similar: a's stored vector)`);
    console.log('| stem | stop words | k1 | b | search R@1 | search R@10 | search MRR | similar R@1 | similar R@10 | similar MRR |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const row of tuneKeywordSettings(dataset, sample, KEYWORD_SETTINGS)) {
      const { stem, dropStopwords, k1, b } = row.settings;
      const cells = [row.search.recallAt1, row.search.recallAt10, row.search.mrr, row.similar.recallAt1, row.similar.recallAt10, row.similar.mrr];
      console.log(`| ${stem} | ${dropStopwords ? 'dropped' : 'kept'} | ${k1} | ${b} | ${cells.map((value) => value.toFixed(3)).join(' | ')} |`);
    }
    return;
  }
  const machine = machineInfo();
  const report = await measureSearchQuality({ ...(pairs ? { pairs } : {}), log });
  const table = qualityTable(report);
  console.log(`\n${report.personas} personas, ${report.pairs} dev pairs, ${report.model}; indexed in ${report.indexSeconds.toFixed(0)} s, queried in ${report.querySeconds.toFixed(0)} s\n`);
  console.log(table);
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
