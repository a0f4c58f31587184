#!/usr/bin/env bash
# Measures every metric in the shipped manifests with `npm run eval` (the app's own TypeScript
# runtime on the shipped int8 ONNX files) and writes them in. Two evals run at a time (2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p models/.work/eval
run() {  # name, then eval arguments
  local name=$1; shift
  npm run --silent eval -- "$@" > "models/.work/eval/$name.json" 2> "models/.work/eval/$name.log"
  echo "$name: $(cat "models/.work/eval/$name.json")"
}
# RETRO (token-aligned) reads public/datastores/wikitext-2-train.knn-pca64.rlds (npm run setup:knn).
run retro_valid_real --model public/models/retro-wt2 --split valid --neighbours real --write-metrics wt2_valid
run gpt_test --model public/models/gpt-wt2 --split test --write-metrics wt2_test &
run retro_test_real --model public/models/retro-wt2 --split test --neighbours real --write-metrics wt2_test
wait
run gpt_valid --model public/models/gpt-wt2 --split valid --write-metrics wt2_valid &
run retro_test_random --model public/models/retro-wt2 --split test --neighbours random --write-metrics wt2_test_random_neighbours
wait
run retro_test_leakage --model public/models/retro-wt2 --split test --neighbours leakage --write-metrics wt2_test_leakage
