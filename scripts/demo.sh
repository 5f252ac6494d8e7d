#!/usr/bin/env bash
# `make demo`: run what the pipeline has so far on local Spark, into DEMO_DIR.
# Today that is ingestion of the three real clickstream slices in ../shared/data; the synthetic
# dataset, sessionization, training, scoring and evaluation join as they land.
set -euo pipefail
python=$1 demo_dir=$2
data="$(cd "$(dirname "$0")/.." && pwd)/../shared/data"
seqrisk="$(dirname "$python")/seqrisk"
lake="$demo_dir/lake"

if [ ! -d "$data" ]; then
  echo "demo: the real data slices are not at $data; nothing to ingest yet" >&2
  exit 1
fi
rm -rf "$lake"
echo "demo: ingesting three real clickstream slices into $lake (pipeline so far: ingest only)"
for source in "taobao_userbehavior_815users.csv taobao" "rees46_2019oct_head17k.csv rees46" "trivago_sessions_100k.parquet trivago"; do
  set -- $source
  "$seqrisk" ingest --conf conf/local.yaml --set "tables.root=$lake" --input "$data/$1" --mapping "$2" 2>"$demo_dir/ingest-$2.log"
done
echo
echo "demo: tables written under $lake (events, quarantine); logs in $demo_dir/ingest-*.log"
echo "demo: not built yet: generate, sessionize, train, score, evaluate (issues 3-7)"
