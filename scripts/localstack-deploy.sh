#!/usr/bin/env bash
# Deploys the persona-db dev stack to LocalStack with cdklocal (aws-cdk-local) and points its
# functions at the Qdrant of docker-compose.yml. Start both first: `npm run localstack:up`.
# Not verified in this repository (no Docker daemon where it was written); see infra/README.md.
#
# Environment (all optional):
#   AWS_ENDPOINT_URL        LocalStack endpoint                       (default http://localhost:4566)
#   AWS_DEFAULT_REGION      region                                     (default us-east-1)
#   QDRANT_API_KEY          the compose Qdrant's API key               (default as in docker-compose.yml)
#   LOCALSTACK_LAMBDA_ARCH  arm64 | x86_64 for the functions           (default: this machine's)
#   EMBEDDING_MODEL_DIR     model bundled into the embedding functions (default: the generated test model)
#   Extra arguments are passed to `cdklocal deploy`, e.g. -c auth=iam.
set -euo pipefail
cd "$(dirname "$0")/.."

endpoint="${AWS_ENDPOINT_URL:-http://localhost:4566}"
region="${AWS_DEFAULT_REGION:-us-east-1}"
qdrant_api_key="${QDRANT_API_KEY:-persona-db-local-qdrant-key}"
# As the Lambda containers see Qdrant on the compose network (LAMBDA_DOCKER_NETWORK).
qdrant_url_for_lambda="http://qdrant:6333"

# LocalStack runs Lambda containers on the host's architecture unless qemu emulation is set up;
# the embedding functions carry the onnxruntime binding of exactly that architecture.
case "$(uname -m)" in
  x86_64 | amd64) default_arch=x86_64 ;;
  *) default_arch=arm64 ;;
esac
arch="${LOCALSTACK_LAMBDA_ARCH:-$default_arch}"

if ! curl -fsS "$endpoint/_localstack/health" >/dev/null; then
  echo "LocalStack is not reachable at $endpoint; run: npm run localstack:up" >&2
  exit 1
fi
if [ -z "${EMBEDDING_MODEL_DIR:-}" ] && [ ! -f .cache/models/persona-test-model/config.json ]; then
  npm run model:test
fi

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION="$region" AWS_DEFAULT_REGION="$region"
export AWS_ENDPOINT_URL="$endpoint"
export AWS_ENVAR_ALLOWLIST=AWS_REGION,AWS_DEFAULT_REGION,AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY
context=(-c stage=dev -c "architecture=$arch")
outputs=cdk.out/localstack-outputs.json

npx cdklocal bootstrap "aws://000000000000/$region" "${context[@]}"
npx cdklocal deploy --all --require-approval never --outputs-file "$outputs" "${context[@]}" "$@"

# The stack creates the Qdrant secret with a placeholder url and a random apiKey: replace both.
# Plain http only inside the compose network, so the explicit (and logged) opt-out goes with it;
# the functions refuse http to any other non-loopback host (shared/vectorIndex/qdrantConnection.ts).
SECRET_VALUE="{\"url\":\"$qdrant_url_for_lambda\",\"apiKey\":\"$qdrant_api_key\",\"allowInsecureHttp\":true}" OUTPUTS="$outputs" node --input-type=module -e '
  import { readFileSync } from "node:fs";
  import { PutSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
  const outputs = Object.values(JSON.parse(readFileSync(process.env.OUTPUTS, "utf8")))[0];
  const client = new SecretsManagerClient({ endpoint: process.env.AWS_ENDPOINT_URL, region: process.env.AWS_REGION });
  await client.send(new PutSecretValueCommand({ SecretId: outputs.QdrantSecretArn, SecretString: process.env.SECRET_VALUE }));
  console.log(`Qdrant secret ${outputs.QdrantSecretArn} -> ${JSON.parse(process.env.SECRET_VALUE).url}`);
  console.log(`API: ${outputs.ApiUrl}`);
'
echo "Host-side tools reach the same Qdrant at http://localhost:16333 (api-key: $qdrant_api_key)."
