/**
 * `npm run model:test [-- <dir>]`: the small deterministic test model (lib/generatedModels/testModel.ts).
 * `npm run model:bge-shaped [-- <dir>]`: the MEANINGLESS benchmark model with bge-small-en-v1.5's
 * architecture and pseudo-random weights (lib/generatedModels/bgeShapedModel.ts); prints its
 * parameter count and file sizes beside bge-small's published ones.
 */
import { BGE_SMALL_PUBLISHED, generateBgeShapedModel } from '../lib/generatedModels/bgeShapedModel';
import { generateTestModel, type GenerateResult } from '../lib/generatedModels/testModel';

const [kind, dir] = process.argv.slice(2);
const started = Date.now();

function reportWritten(name: string, result: GenerateResult): void {
  const state = result.written.length === 0 ? 'already up to date' : `wrote ${result.written.join(', ')}`;
  console.log(`${name} in ${result.dir}: ${state} (${Date.now() - started} ms)`);
  console.log(`use it with EMBEDDING_MODEL_DIR=${result.dir}`);
}

const versus = (label: string, ours: number, published: number, unit: (n: number) => string) =>
  `${label}: ${unit(ours)} (bge-small-en-v1.5: ${unit(published)}; ${(((ours - published) / published) * 100).toFixed(1)}%)`;
const millions = (n: number) => `${(n / 1e6).toFixed(2)}M`;
const megabytes = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

async function main(): Promise<void> {
  if (kind === 'test') {
    reportWritten('test embedding model', await generateTestModel(dir));
  } else if (kind === 'bge-shaped') {
    const result = await generateBgeShapedModel(dir);
    reportWritten('MEANINGLESS bge-small-shaped benchmark model (random weights; its vectors mean nothing)', result);
    const { summary } = result;
    console.log(versus('parameters with the pooler', summary.parametersWithPooler, BGE_SMALL_PUBLISHED.parameters, millions) + `; ${summary.parameters.toLocaleString('en-US')} in the ONNX graph, which drops the pooler`);
    console.log(versus('onnx/model.onnx (fp32)', summary.fp32Bytes, BGE_SMALL_PUBLISHED.fp32Bytes, megabytes));
    console.log(versus('onnx/model_quantized.onnx (q8)', summary.q8Bytes, BGE_SMALL_PUBLISHED.q8Bytes, megabytes));
  } else {
    throw new Error('usage: tsx scripts/generateModel.ts test|bge-shaped [<dir>]');
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
