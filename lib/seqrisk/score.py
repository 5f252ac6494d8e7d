"""The score job: every session of a lake through a model directory, into session_risk and user_risk.

Sessions go through `mapInPandas` (`scoring.score_batches`). The driver reads the model directory
(any URI, `model_store`), verifies it and broadcasts its bytes; each Python worker verifies them
against the manifest and loads the model once, then scores windows in large tensor batches. `session_risk` is partitioned by
`session_date`; a `--from/--to` run replaces only those dates. `user_risk` is partitioned by
`as_of_date` (the run's last session date): one row per user and daily run, aggregating the
`score.user_window_days` days of session_risk up to that date. Shuffles: by sequence hash (users per
sequence, before scoring) and by user (the user aggregate).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import partial
from typing import Optional

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from seqrisk import model_store
from seqrisk.config import Config, ScoreConfig
from seqrisk.errors import SeqriskError
from seqrisk.job import date_range, start_job
from seqrisk.reasons import ACTIONS
from seqrisk.model_dir import ModelDir
from seqrisk.scoring import SESSION_RISK_DDL, load_risk_model, score_batches, scorer_input
from seqrisk.tables import TableWrite

log = logging.getLogger("seqrisk")
IGNORED_ON_RERUN = ("run_id", "scored_at")  # a rerun that would change nothing else writes nothing
TOP_USER_REASONS = 3


@dataclass
class ScoreSummary:
    run_id: str
    model_version: str
    model_path: str
    dates: str
    as_of_date: Optional[date] = None
    sessions: int = 0
    users: int = 0
    levels: dict = field(default_factory=dict)
    actions: dict = field(default_factory=dict)
    unchanged: bool = False

    def report(self) -> str:
        lines = [
            f"score {self.run_id}: {self.dates}, model {self.model_version}",
            f"  model directory     {self.model_path}",
            f"  sessions scored     {self.sessions:>12,}",
            f"  users (as of {self.as_of_date})  {self.users:>8,}",
            "  risk levels         " + ", ".join(f"{k} {self.levels.get(k, 0):,}" for k in ("low", "medium", "high")),
            "  actions             " + ", ".join(f"{k} {self.actions.get(k, 0):,}" for k in ACTIONS),
        ]
        if self.unchanged:
            lines.append("  tables unchanged: the output equals what they already hold")
        return "\n".join(lines)


def run_score(
    config: Config, *, date_from: Optional[date] = None, date_to: Optional[date] = None, spark: Optional[SparkSession] = None
) -> ScoreSummary:
    """Score all sessions, or only those of `date_from`..`date_to`, and publish both risk tables."""
    dates = date_range(date_from, date_to, "score every session")
    job = start_job("score", config, spark)
    directory = model_store.fetch(job.spark, model_store.resolve(job.spark, config.model.dir, config.score.model))
    model = load_risk_model(directory)  # a bad model directory fails here, before any Spark work
    ranged = date_from is not None
    summary = ScoreSummary(job.run_id, model.version, directory.location, f"{date_from} to {date_to}" if ranged else "all dates")
    where = {"session_date": dates} if ranged else None

    sessions = job.lake.read("sessions", where)
    log.info("score: scoring sessions with model %s", model.version)
    risk = score_sessions(sessions, directory, config.score, job.run_id, job.started_at).persist()
    try:
        counts = risk.groupBy("risk_level", "action").agg(F.count("*").alias("n"), F.max("session_date").alias("last")).collect()  # at most 12 rows
        summary.sessions = sum(r["n"] for r in counts)
        if not summary.sessions:
            raise SeqriskError("no sessions to score" + (f" between {date_from} and {date_to}" if ranged else "") + "; run `seqrisk sessionize` first")
        for r in counts:
            summary.levels[r["risk_level"]] = summary.levels.get(r["risk_level"], 0) + r["n"]
            summary.actions[r["action"]] = summary.actions.get(r["action"], 0) + r["n"]
        summary.as_of_date = date_to if ranged else max(r["last"] for r in counts)

        session_risk_path, user_risk_path = job.lake.path("session_risk"), job.lake.path("user_risk")
        window = _user_window(job.lake.tables, session_risk_path, risk, summary.as_of_date, config.score.user_window_days, dates)
        users = user_risk(window, summary.as_of_date, model.version, job.started_at, job.run_id).persist()
        summary.users = users.count()
        as_of = {"as_of_date": [summary.as_of_date.isoformat()]}
        if job.lake.tables.holds(session_risk_path, risk, where, IGNORED_ON_RERUN) and job.lake.tables.holds(user_risk_path, users, as_of, IGNORED_ON_RERUN):
            summary.unchanged = True
        else:
            log.info("score: writing session_risk and user_risk")
            job.lake.tables.publish(
                TableWrite(session_risk_path, risk, "overwrite", ("session_date",), where),
                TableWrite(user_risk_path, users, "overwrite", ("as_of_date",), as_of),
                run_id=job.run_id,
            )
        users.unpersist()
        return summary
    finally:
        risk.unpersist()


def score_sessions(sessions: DataFrame, model: ModelDir, settings: ScoreConfig, run_id: str, scored_at: datetime) -> DataFrame:
    """session_risk rows for a DataFrame of sessions (lazy); the model directory goes to the executors as a broadcast."""
    naive_utc = scored_at.astimezone(timezone.utc).replace(tzinfo=None)  # as the UTC Spark session hands times to pandas
    shipped = sessions.sparkSession.sparkContext.broadcast(model)
    score = partial(score_batches, model=shipped, settings=settings, run_id=run_id, scored_at=naive_utc)
    return scorer_input(sessions).mapInPandas(score, SESSION_RISK_DDL)


def _user_window(tables, session_risk_path: str, risk: DataFrame, as_of: date, days: int, replaced: Optional[list[str]]) -> DataFrame:
    """session_risk as it will be after this run, for the `days` days up to `as_of`."""
    first = as_of - timedelta(days=days - 1)
    in_window = F.col("session_date").between(F.lit(first), F.lit(as_of))
    current = risk.filter(in_window)
    if replaced is not None and tables.exists(session_risk_path):  # dates this run does not replace keep their rows
        kept = tables.read(session_risk_path).filter(in_window & ~F.col("session_date").cast("string").isin(replaced))
        current = current.unionByName(kept.select(*risk.columns))
    return current


def user_risk(session_risk: DataFrame, as_of: date, model_version: str, scored_at: datetime, run_id: str) -> DataFrame:
    """One row per user: session counts, highest and typical risk, dominant reasons, strongest action.

    The dominant reasons are the (at most three) most frequent among the user's medium and high
    sessions, ties by name. Shuffle: by user.
    """
    action_rank = F.create_map(*[F.lit(v) for i, a in enumerate(ACTIONS, start=1) for v in (a, i)])[F.col("action")]
    per_user = session_risk.groupBy("user_id").agg(
        F.count("*").cast("int").alias("n_sessions"),
        F.sum((F.col("risk_level") == "high").cast("int")).alias("high_risk_sessions"),
        F.sum((F.col("risk_level") == "medium").cast("int")).alias("medium_risk_sessions"),
        F.max("score").alias("max_score"),
        F.max("risk_pct").alias("max_risk_pct"),
        F.median("risk_pct").alias("typical_risk_pct"),
        F.max(action_rank).alias("action_rank"),
        F.min("session_start").alias("first_session_start"),
        F.max("session_start").alias("last_session_start"),
    )
    reason_counts = (
        session_risk.filter(F.col("risk_level") != "low")
        .select("user_id", F.explode("reasons").alias("reason"))
        .groupBy("user_id", "reason")
        .count()
    )
    ranked = reason_counts.withColumn("rank", F.row_number().over(Window.partitionBy("user_id").orderBy(F.desc("count"), "reason")))
    top_reasons = (
        ranked.filter(F.col("rank") <= TOP_USER_REASONS)
        .groupBy("user_id")
        .agg(F.transform(F.array_sort(F.collect_list(F.struct("rank", "reason"))), lambda s: s["reason"]).alias("top_reasons"))
    )
    return per_user.join(top_reasons, on="user_id", how="left").select(
        "user_id",
        F.lit(as_of).alias("as_of_date"),
        "n_sessions",
        "high_risk_sessions",
        "medium_risk_sessions",
        "max_score",
        "max_risk_pct",
        "typical_risk_pct",
        F.coalesce("top_reasons", F.array().cast("array<string>")).alias("top_reasons"),
        F.element_at(F.array(*[F.lit(a) for a in ACTIONS]), F.col("action_rank")).alias("action"),
        "first_session_start",
        "last_session_start",
        F.lit(model_version).alias("model_version"),
        F.lit(scored_at).alias("scored_at"),  # an aware datetime: Spark converts it to UTC itself
        F.lit(run_id).alias("run_id"),
    )
