#!/usr/bin/env bash
# `make demo`: the whole pipeline on local Spark, on the embedded synthetic data, into $demo_dir.
# MLflow tracks into $demo_dir/mlflow, which a second demo keeps: its model must beat the champion
# of the first to score (`make demo DEMO_SET="train.epochs=1"` shows a refusal).
set -euo pipefail
python=$1 demo_dir=$2
shift 2
seqrisk="$(dirname "$python")/seqrisk"
store="$demo_dir/mlflow"
extra=()
for setting in "$@"; do extra+=(--set "$setting"); done

rm -rf "$demo_dir/lake" "$demo_dir/raw" "$demo_dir/models" "$demo_dir/report"
mkdir -p "$demo_dir"
echo "demo: generate -> ingest -> sessionize -> train (2 workers) -> promote -> score -> evaluate, about 4 minutes on 2 cores"
echo "demo: Spark's and the training launcher's own logs go to $demo_dir/pipeline.log"
echo
"$seqrisk" pipeline --conf conf/local.yaml \
  --set "tables.root=$demo_dir/lake" --set "model.dir=$demo_dir/models" \
  --set "generate.out=$demo_dir/raw" --set "evaluate.report=$demo_dir/report" \
  --set "mlflow.tracking_uri=sqlite:///$store/mlflow.db" --set "mlflow.artifact_location=$store/artifacts" \
  ${extra[@]+"${extra[@]}"} 2>"$demo_dir/pipeline.log"
echo
echo "demo: runs, metrics, plots and registered models in MLflow; open its UI with"
echo "  $(dirname "$python")/mlflow ui --backend-store-uri sqlite:///$store/mlflow.db   # then http://127.0.0.1:5000"
