#!/usr/bin/env bash
# `make demo`: run what the pipeline has so far on local Spark, on the embedded synthetic data.
# Today that is generate -> ingest -> sessionize -> train; score and evaluate join as they land.
set -euo pipefail
python=$1 demo_dir=$2
seqrisk="$(dirname "$python")/seqrisk"
run=(--conf conf/local.yaml --set "tables.root=$demo_dir/lake" --set "model.dir=$demo_dir/models")

rm -rf "$demo_dir/lake" "$demo_dir/raw" "$demo_dir/models"
mkdir -p "$demo_dir"
echo "demo: pipeline so far: generate -> ingest -> sessionize -> train (score and evaluate are not built yet)"
echo
"$seqrisk" generate "${run[@]}" --out "$demo_dir/raw" 2>"$demo_dir/generate.log"
echo
"$seqrisk" ingest "${run[@]}" --input "$demo_dir/raw/events" --mapping generated 2>"$demo_dir/ingest.log"
echo
"$seqrisk" sessionize "${run[@]}" 2>"$demo_dir/sessionize.log"
echo
echo "demo: training with 2 Horovod workers on local Spark (about 3 minutes; progress in $demo_dir/train.log)"
"$seqrisk" train "${run[@]}" 2>"$demo_dir/train.log"
echo
echo "demo: raw events and labels in $demo_dir/raw"
echo "demo: Delta tables (events, quarantine, sessions, windows) and vocabulary.json in $demo_dir/lake"
echo "demo: the trained model directory in $demo_dir/models"
echo "demo: job logs in $demo_dir/*.log"
