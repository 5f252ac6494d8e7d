"""Sessions into session_risk rows, and session_risk into user_risk rows (the score job's work).

Sessions go through `mapInPandas` (`scoring.score_batches`): the driver broadcasts the verified
model directory's bytes; each Python worker verifies them against the manifest and loads the model
once, then scores windows in large tensor batches. Shuffles: by sequence hash (users per sequence,
before scoring) and by user (the user aggregate).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import partial

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from seqrisk.detectors.reasons import ACTIONS
from seqrisk.lake.contracts import SESSION_RISK
from seqrisk.model.model_dir import ModelDir
from seqrisk.scoring.risk_model import score_batches, scorer_input
from seqrisk.scoring.settings import ScoreConfig

TOP_USER_REASONS = 3


def score_sessions(sessions: DataFrame, model: ModelDir, settings: ScoreConfig, run_id: str, scored_at: datetime) -> DataFrame:
    """session_risk rows for a DataFrame of sessions (lazy); the model directory goes to the executors as a broadcast."""
    naive_utc = scored_at.astimezone(UTC).replace(tzinfo=None)  # as the UTC Spark session hands times to pandas
    shipped = sessions.sparkSession.sparkContext.broadcast(model)
    score = partial(score_batches, model=shipped, settings=settings, run_id=run_id, scored_at=naive_utc)
    return scorer_input(sessions).mapInPandas(score, SESSION_RISK)


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
