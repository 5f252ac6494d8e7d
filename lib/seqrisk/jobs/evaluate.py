"""The evaluate job: session_risk against labels, for seqrisk, its detectors and the baseline.

Writes metrics.json (a stable shape), report.md and PNG plots into `evaluate.report` (or
`--report`; any URI: drawn in a local temporary folder, then copied). How the metrics are
computed: `seqrisk.evaluation.detector_report`. With `--model` (a folder or `models:/NAME@ALIAS`) the sessions are
scored by that model in memory instead of read from session_risk, and no table is written: how a
candidate is judged before it scores anything. `--from/--to` bound the session dates read (and,
with `--model`, scored). With MLflow on, the metrics and the report go to the run that trained the
model.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seqrisk.config import Config
from seqrisk.detectors.combination import Combination
from seqrisk.errors import SeqriskError
from seqrisk.evaluation.detector_report import (
    DETECTORS,
    NORMAL,
    binned_counts,
    detector_metrics,
    report_markdown,
    surprisal_bin,
    write_plots,
)
from seqrisk.evaluation.labels import label_sessions, open_labels
from seqrisk.jobs.report import line, report
from seqrisk.jobs.start import Job, date_range, start_job
from seqrisk.lake import uri_files
from seqrisk.model.model_dir import COMBINATION, HISTORY, ModelDir
from seqrisk.registry import model_store, tracking
from seqrisk.scoring.risk_model import load_risk_model
from seqrisk.scoring.session_risk import score_sessions
from seqrisk.sessions.sessionize import source_session_of

log = logging.getLogger("seqrisk")


@dataclass
class EvaluateSummary:
    run_id: str
    report_dir: str
    metrics: dict

    def report(self) -> str:
        m = self.metrics
        return report(
            f"evaluate {self.run_id}: {m['sessions']:,} sessions, {m['anomalous_sessions']:,} anomalous, model {m['model_version']}",
            line("report", f"{self.report_dir}/report.md"),
            line("", "".join(f"{name:>15}" for name in DETECTORS)),
            *(
                line(key, "".join(f"{m[name][key]:>15.3f}" for name in DETECTORS))
                for key in ("roc_auc", "pr_auc", "precision", "recall", "f1", "recall_at_1pct")
            ),
        )


def run_evaluate(
    config: Config,
    *,
    labels: str,
    report_dir: str | None = None,
    model_ref: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    spark: SparkSession | None = None,
) -> EvaluateSummary:
    """Join session_risk (or, with `model_ref`, the sessions scored by that model) with `labels` (a
    CSV file or a Delta table) and write the report; only the sessions of `date_from`..`date_to` when given."""
    dates = date_range(date_from, date_to, "evaluate every session")
    where = {"session_date": dates} if dates else None
    job = start_job("evaluate", config, spark)
    out = uri_files.local_uri(report_dir or config.evaluate.report)
    if model_ref is None:
        risk = job.lake.read("session_risk", where)
        versions = [r["model_version"] for r in risk.select("model_version").distinct().limit(5).collect()]
        model = _model_dir(job.spark, config, versions)
    else:
        model = tracking.fetch_model(job.spark, config.mlflow, config.model.dir, model_ref)
        load_risk_model(model)  # a model that cannot score fails here, before any Spark work
        versions = [model.version]
        scored = score_sessions(job.lake.read("sessions", where), model, config.score, job.run_id, job.started_at)
        risk = scored.persist(StorageLevel.MEMORY_AND_DISK)  # every detector's counts read it: score once
    try:
        metrics = _evaluate(job, config, risk, versions, model, labels, out, dates)
    finally:
        if model_ref is not None:
            risk.unpersist()
    return EvaluateSummary(job.run_id, str(out), metrics)


def _evaluate(
    job: Job, config: Config, risk: DataFrame, versions: list[str], model: ModelDir | None, labels: str, out: str, dates: list[str] | None
) -> dict:
    combination = Combination.from_bytes(model.files.get(COMBINATION)) if model else Combination()
    if combination.labeled_sessions:  # the cases the model was trained with do not count
        known = job.spark.createDataFrame([(i,) for i in combination.labeled_sessions], "session_id string")
        risk = risk.join(F.broadcast(known), on="session_id", how="left_anti")
    label_rows = open_labels(job.lake.tables, job.spark, labels)
    pieces = risk.withColumn("source_session_id", source_session_of(F.col("session_id")))  # a label marks all of a capped session
    labeled = label_sessions(pieces, label_rows).withColumn("label", F.coalesce("anomaly_type", F.lit(NORMAL)))
    counts = {name: binned_counts(labeled, column) for name, column in DETECTORS.items()}
    if not counts["seqrisk"]:
        within = f" between {dates[0]} and {dates[-1]}" if dates else ""
        raise SeqriskError(
            f"nothing to evaluate{within}: {job.lake.path('session_risk')} is empty (run `seqrisk score` first), or, with --model, the lake has no sessions"
        )

    high = combination.high(config.score.levels.high)
    cutoff, budget = surprisal_bin(high), config.evaluate.alert_budget_pct
    metrics = {
        "sessions": int(sum(counts["seqrisk"].values())),
        "anomalous_sessions": int(sum(n for (b, label), n in counts["seqrisk"].items() if label != NORMAL)),
        "model_version": ", ".join(sorted(versions)),
        "labels": str(labels),
        "session_dates": [dates[0], dates[-1]] if dates else None,
        "cutoff_pct": high,
        "alert_budget_pct": budget,
        "left_out_training_cases": len(combination.labeled_sessions),
        "training_labels": combination.labels,
        **{name: detector_metrics(c, cutoff, budget) for name, c in counts.items()},
    }
    history = model.json(HISTORY) if model else None
    with tempfile.TemporaryDirectory(prefix="seqrisk-report-") as folder:
        local = Path(folder)
        (local / "metrics.json").write_text(json.dumps(metrics, indent=1))
        plots = write_plots(local, counts, history)
        (local / "report.md").write_text(report_markdown(metrics, plots, history))
        for file in sorted(local.iterdir()):  # the report folder may be any URI
            uri_files.write_bytes(job.spark, uri_files.join(out, file.name), file.read_bytes())
        run_id = model.manifest.get("mlflow_run_id") if model else None
        if run_id and tracking.enabled(config.mlflow):
            tracking.log_evaluation(config.mlflow, run_id, metrics, local)
    log.info("evaluate: report written to %s", out)
    return metrics


def _model_dir(spark: SparkSession, config: Config, versions: list[str]) -> ModelDir | None:
    """The newest scoring model's directory, when it is at hand (under model.dir, beside score.model, or in the registry)."""
    if tracking.is_registry_reference(config.score.model):
        registered = tracking.fetch_model(spark, config.mlflow, config.model.dir, config.score.model)
        return registered if registered.version in versions else None
    roots = [config.model.dir] + ([uri_files.parent(config.score.model)] if config.score.model != model_store.LATEST else [])
    for version in sorted(versions, reverse=True):
        found = model_store.find_version(spark, roots, version)
        if found is not None:
            return found
    return None
