#!/usr/bin/env bash
# Reproduces RetroLab's shipped models from ../shared/data: tokenizer, corpus ids, base GPT,
# retrieval embedder + training neighbours, GPT continuation and RETRO-fit on the same tokens,
# ONNX export + int8 quantization + manifests, then the metrics measured on the shipped files.
# Every step is cached under models/.work and skipped when its output exists; training resumes
# from its last checkpoint. Run from anywhere: bash models/pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${RETROLAB_DATA:-../shared/data}"
W=models/.work
PY=/usr/bin/python3
mkdir -p "$W"

[ -f "$W/tokenizer.json" ] || npx tsx cli/train-tokenizer.ts "$DATA/wikitext-2/wiki.train.tokens" "$W/tokenizer.json" 8192
[ -f "$W/data/test.docs.json" ] || npx tsx cli/prepare-corpus.ts "$W/tokenizer.json" "$DATA/wikitext-2" "$W/data"

cd models
# 1. Base GPT (from scratch).
$PY -m retrolab.train --stage gpt --data .work/data --out .work/gpt-base --tokens 5e6 --lr 1e-3 \
    --eval-every 400 --threads 1
# 2. Frozen retrieval embedder (base GPT's token embeddings, IDF-weighted and centred, int8) and
#    exact training neighbours under RETRO's strict rule (never from the query's own article).
$PY -m retrolab.prepare_retrieval --gpt .work/gpt-base/model.pt --data .work/data --out .work/retrieval \
    --exclude-same-document
# 3. The fair pair. The GPT continues from the base GPT for 2M tokens; RETRO is then built on that
#    finished GPT with its decoder frozen (RETRO-fitting, RETRO paper section 4.2): only the neighbour
#    encoder and the chunked cross-attention train, on the same 2M tokens in the same batch order, with
#    the copy prior, the null slot, token-match features and a tapering share of oracle neighbours
#    (see the model card). RETRO's decoder is therefore the GPT, weight for weight.
STAGE2="--data .work/data --tokens 2e6 --warmup 50 --eval-every 100"
$PY -m retrolab.train --stage gpt $STAGE2 --init .work/gpt-base/model.pt --lr 3e-4 --out .work/gpt --threads 1
#    RETRO's neighbours are token-aligned (docs/retro-training.md): the query for an 8-token chunk is
#    the finished GPT's kNN-LM key at its last token, searched over the keys of every train position
#    (faiss IVF), and a match at p gives the 8 tokens ending at p and the 8 after them; never a
#    position of the query's own article. The chunk-retrieval neighbours of step 2 remain for the
#    comparison runs in docs/retro-training.md.
[ -f .work/aligned-c8/neighbours.npy ] || $PY -m retrolab.neighbours prepare --gpt .work/gpt/model.pt \
    --data .work/data --out .work/aligned-c8 --chunk 8 --probes 8
$PY -m retrolab.train --stage retro $STAGE2 --init .work/gpt/model.pt --lr 6e-4 --out .work/retro-aligned-c8 \
    --retrieval .work/aligned-c8 --chunk 8 --threads 2 --freeze-decoder --token-match --oracle-start 0.15 \
    --oracle-end 0 --eval-windows 100 --eval-window-step 10
# 3b. A RETRO that writes what it retrieves (docs/retro-training.md, "RETRO copies"): two more phases
#     of RETRO-fitting from that RETRO, the decoder still frozen. E: the token match spans the last 3
#     tokens, first 100 steps of a 2M-token schedule with 50% -> 30% own-document neighbours. G: each
#     neighbour is gated by its agreement with the retrieving chunk, first 200 steps of a 1.6M-token
#     schedule with 45% -> 30%. Both were stopped for time; --stop-at-step reproduces that.
RETROFIT="--stage retro --data .work/data --eval-every 100 --lr 6e-4 --retrieval .work/aligned-c8 --chunk 8 \
    --threads 1 --freeze-decoder --token-match --match-ngram 3 --eval-windows 48 --eval-window-step 20"
$PY -m retrolab.train $RETROFIT --tokens 2e6 --warmup 50 --init .work/retro-aligned-c8/model.pt \
    --out .work/retro-E --oracle-start 0.5 --oracle-end 0.3 --seed 4321 --stop-at-step 100
$PY -m retrolab.train $RETROFIT --chunk-agreement --tokens 1.6e6 --warmup 30 --init .work/retro-E/model.pt \
    --out .work/retro-G --oracle-start 0.45 --oracle-end 0.3 --seed 777 --stop-at-step 200
# 4. Export, quantize, ship (the GPT first: RETRO's manifest names the GPT decoder its queries need).
$PY -m retrolab.ship --model .work/gpt/model.pt --id gpt-wt2 --name GPT-WT2-7M --tokenizer .work/tokenizer.json \
    --embedder .work/retrieval/embedder.bin --data .work/data --public ../public/models --repo-models . \
    --work .work/export --training-json .work/gpt/training.json
$PY -m retrolab.ship --model .work/retro-G/model.pt --id retro-wt2 --name RETRO-WT2-9M \
    --tokenizer .work/tokenizer.json --embedder .work/retrieval/embedder.bin --data .work/data \
    --public ../public/models --repo-models . --work .work/export \
    --training-json .work/retro-G/training.json --query-model gpt-wt2
cd ..
# 5. Metrics measured on the shipped int8 files through the app's own TypeScript runtime. RETRO's
#    evals search the GPT's kNN-LM keys of WikiText-2 train (npm run setup:knn, skipped when up to date).
npm run setup:knn
bash models/measure.sh
(cd models && $PY -m retrolab.card --public ../public/models)
