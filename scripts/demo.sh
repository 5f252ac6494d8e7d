#!/usr/bin/env bash
# `make demo`: the whole pipeline on local Spark, on the embedded synthetic data, into $demo_dir.
set -euo pipefail
python=$1 demo_dir=$2
seqrisk="$(dirname "$python")/seqrisk"

rm -rf "$demo_dir/lake" "$demo_dir/raw" "$demo_dir/models" "$demo_dir/report"
mkdir -p "$demo_dir"
echo "demo: generate -> ingest -> sessionize -> train (2 Horovod workers) -> score -> evaluate, about 6 minutes"
echo "demo: Spark's and Horovod's own logs go to $demo_dir/pipeline.log"
echo
"$seqrisk" pipeline --conf conf/local.yaml \
  --set "tables.root=$demo_dir/lake" --set "model.dir=$demo_dir/models" \
  --set "generate.out=$demo_dir/raw" --set "evaluate.report=$demo_dir/report" \
  2>"$demo_dir/pipeline.log"
