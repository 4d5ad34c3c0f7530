// Stand-in for `sharp` in embedding Lambda bundles (esbuild alias, see infra/bundling.ts).
// transformers.js imports sharp when it loads and throws if the import is falsy; it only calls
// it for image inputs, which this project never has. Text embedding works without libvips.
export default function sharp() {
  throw new Error('sharp (image processing) is not bundled into persona-db Lambda functions');
}
