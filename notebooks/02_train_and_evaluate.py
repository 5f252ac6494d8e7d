# Databricks notebook source
# MAGIC %md
# MAGIC # Train, score and evaluate
# MAGIC Trains the sequence model with Horovod (one process per GPU on a cluster; `train.workers` in the config),
# MAGIC scores every session, and evaluates against labels. Set `dry_run` to `true` to try a config in seconds.

# COMMAND ----------

import json
from pathlib import Path

import pandas as pd

from seqrisk.jobs.evaluate import run_evaluate
from seqrisk.jobs.score import run_score
from seqrisk.jobs.train import run_train
from seqrisk.notebook import Notebook
from seqrisk.spark import get_spark

nb = Notebook(globals(), conf="conf/local.yaml", tables_root="demo/lake", model_dir="demo/models", labels="demo/raw/labels.csv",
              report="demo/report", dry_run="false")
config = nb.config()
spark = get_spark(config.spark)

# COMMAND ----------

trained = run_train(config, dry_run=nb["dry_run"].lower() == "true", spark=spark)
print(trained.report())
nb.show(pd.DataFrame(trained.result["history"]))

# COMMAND ----------

scored = run_score(config, spark=spark)
print(scored.report())

# COMMAND ----------

evaluated = run_evaluate(config, labels=nb["labels"], report_dir=nb["report"], spark=spark)
print(evaluated.report())
metrics = json.loads((Path(nb["report"]) / "metrics.json").read_text())
nb.show(pd.DataFrame({name: {k: v for k, v in metrics[name].items() if k != "per_type"} for name in ("seqrisk", "baseline", "sequence_only", "count_only", "ngram_only", "replay_only")}))
nb.show(pd.DataFrame(metrics["seqrisk"]["per_type"]).T)
