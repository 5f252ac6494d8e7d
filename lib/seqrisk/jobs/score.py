"""The score job: every session of the lake (or `--from/--to` dates) through a model directory,
into `session_risk` and `user_risk`.

The driver reads the model directory (any URI, or `models:/NAME@ALIAS` from MLflow's registry) and verifies it before any table is
read; `score.score_sessions` broadcasts it to the executors. `session_risk` is partitioned by
`session_date`; a `--from/--to` run replaces only those dates. `user_risk` is partitioned by
`as_of_date` (the run's last session date): one row per user and daily run, aggregating the
`score.user_window_days` days of session_risk up to that date.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seqrisk.config import Config
from seqrisk.detectors.reasons import ACTIONS
from seqrisk.errors import SeqriskError
from seqrisk.jobs.report import line, report
from seqrisk.jobs.start import date_range, start_job
from seqrisk.lake.contracts import conform
from seqrisk.lake.tables import TableWrite
from seqrisk.registry import tracking
from seqrisk.scoring.risk_model import load_risk_model
from seqrisk.scoring.session_risk import score_sessions, user_risk

log = logging.getLogger("seqrisk")
IGNORED_ON_RERUN = ("run_id", "scored_at")  # a rerun that would change nothing else writes nothing


@dataclass
class ScoreSummary:
    run_id: str
    model_version: str
    model_path: str
    dates: str
    as_of_date: date | None = None
    sessions: int = 0
    users: int = 0
    levels: dict = field(default_factory=dict)
    actions: dict = field(default_factory=dict)
    unchanged: bool = False

    def report(self) -> str:
        return report(
            f"score {self.run_id}: {self.dates}, model {self.model_version}",
            line("model directory", self.model_path),
            line("sessions scored", self.sessions),
            line("users", self.users) + f"  (as of {self.as_of_date})",
            line("risk levels", ", ".join(f"{k} {self.levels.get(k, 0):,}" for k in ("low", "medium", "high"))),
            line("actions", ", ".join(f"{k} {self.actions.get(k, 0):,}" for k in ACTIONS)),
            *(["  tables unchanged: the output equals what they already hold"] if self.unchanged else []),
        )


def run_score(
    config: Config, *, date_from: date | None = None, date_to: date | None = None, spark: SparkSession | None = None
) -> ScoreSummary:
    """Score all sessions, or only those of `date_from`..`date_to`, and publish both risk tables."""
    dates = date_range(date_from, date_to, "score every session")
    job = start_job("score", config, spark)
    directory = tracking.fetch_model(job.spark, config.mlflow, config.model.dir, config.score.model)
    model = load_risk_model(directory)  # a bad model directory fails here, before any Spark work
    ranged = date_from is not None
    summary = ScoreSummary(job.run_id, model.version, directory.location, f"{date_from} to {date_to}" if ranged else "all dates")
    where = {"session_date": dates} if dates is not None else None

    sessions = job.lake.read("sessions", where)
    log.info("score: scoring sessions with model %s", model.version)
    risk = score_sessions(sessions, directory, config.score, job.run_id, job.started_at).persist()
    try:
        counts = (
            risk.groupBy("risk_level", "action").agg(F.count("*").alias("n"), F.max("session_date").alias("last")).collect()
        )  # at most 12 rows
        summary.sessions = sum(r["n"] for r in counts)
        if not summary.sessions:
            raise SeqriskError(
                "no sessions to score" + (f" between {date_from} and {date_to}" if ranged else "") + "; run `seqrisk sessionize` first"
            )
        for r in counts:
            summary.levels[r["risk_level"]] = summary.levels.get(r["risk_level"], 0) + r["n"]
            summary.actions[r["action"]] = summary.actions.get(r["action"], 0) + r["n"]
        as_of_date: date = date_to if date_to is not None else max(r["last"] for r in counts)
        summary.as_of_date = as_of_date

        session_risk_path, user_risk_path = job.lake.path("session_risk"), job.lake.path("user_risk")
        window = _user_window(job.lake.tables, session_risk_path, risk, as_of_date, config.score.user_window_days, dates)
        users = user_risk(window, as_of_date, model.version, job.started_at, job.run_id).persist()
        summary.users = users.count()
        as_of = {"as_of_date": [as_of_date.isoformat()]}
        if job.lake.tables.holds(session_risk_path, risk, where, IGNORED_ON_RERUN) and job.lake.tables.holds(
            user_risk_path, users, as_of, IGNORED_ON_RERUN
        ):
            summary.unchanged = True
        else:
            log.info("score: writing session_risk and user_risk")
            job.lake.tables.publish(
                TableWrite(session_risk_path, conform(risk, "session_risk"), "overwrite", ("session_date",), where),
                TableWrite(user_risk_path, conform(users, "user_risk"), "overwrite", ("as_of_date",), as_of),
                run_id=job.run_id,
            )
        users.unpersist()
        return summary
    finally:
        risk.unpersist()


def _user_window(tables, session_risk_path: str, risk: DataFrame, as_of: date, days: int, replaced: list[str] | None) -> DataFrame:
    """session_risk as it will be after this run, for the `days` days up to `as_of`."""
    first = as_of - timedelta(days=days - 1)
    in_window = F.col("session_date").between(F.lit(first), F.lit(as_of))
    current = risk.filter(in_window)
    if replaced is not None and tables.exists(session_risk_path):  # dates this run does not replace keep their rows
        kept = tables.read(session_risk_path).filter(in_window & ~F.col("session_date").cast("string").isin(replaced))
        current = current.unionByName(kept.select(*risk.columns))
    return current
