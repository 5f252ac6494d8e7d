#!/usr/bin/env bash
# `make demo`: run what the pipeline has so far on local Spark, on the embedded synthetic data.
# Today that is generate -> ingest -> sessionize; train, score and evaluate join as they land.
set -euo pipefail
python=$1 demo_dir=$2
seqrisk="$(dirname "$python")/seqrisk"
run=(--conf conf/local.yaml --set "tables.root=$demo_dir/lake")

rm -rf "$demo_dir/lake" "$demo_dir/raw"
mkdir -p "$demo_dir"
echo "demo: pipeline so far: generate -> ingest -> sessionize (train, score, evaluate are not built yet)"
echo
"$seqrisk" generate "${run[@]}" --out "$demo_dir/raw" 2>"$demo_dir/generate.log"
echo
"$seqrisk" ingest "${run[@]}" --input "$demo_dir/raw/events" --mapping generated 2>"$demo_dir/ingest.log"
echo
"$seqrisk" sessionize "${run[@]}" 2>"$demo_dir/sessionize.log"
echo
echo "demo: raw events and labels in $demo_dir/raw"
echo "demo: Delta tables (events, quarantine, sessions, windows) and vocabulary.json in $demo_dir/lake"
echo "demo: job logs in $demo_dir/*.log"
