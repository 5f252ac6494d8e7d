"""Labels files (DESIGN.md, "Jobs and their contract"), and which sessions they mark.

A labels file is CSV with a header: `user_id` (required), `session_id` (optional: labels per
session), `anomaly_type`, and optional `start` and `end` (ISO times bounding the anomalous span).
Sessions and users absent from it are normal.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seqrisk.errors import SeqriskError

LABEL_COLUMNS = ("user_id", "session_id", "anomaly_type", "start", "end")
UNKNOWN_TYPE = "anomalous"  # the type given to labels that name none


def read_labels(spark: SparkSession, path: str) -> DataFrame:
    """The labels at `path`, with every optional column present (null where the file has none)."""
    return labels_frame(spark.read.option("header", True).csv(path), path)


def open_labels(tables, spark: SparkSession, path: str) -> DataFrame:
    """Labels from a Delta table at `path` when there is one, else from a CSV file."""
    return labels_frame(tables.read(path), path) if tables.exists(path) else read_labels(spark, path)


def labels_frame(raw: DataFrame, source: str = "the labels table") -> DataFrame:
    """Labels from any DataFrame with the labels columns (a labels table, for example)."""
    if "user_id" not in raw.columns:
        raise SeqriskError(f"labels {source} has no user_id column; its columns are {raw.columns}")
    unknown = set(raw.columns) - set(LABEL_COLUMNS) - {"run_id"}
    if unknown:
        raise SeqriskError(f"labels {source} has unexpected columns {sorted(unknown)}; allowed: {', '.join(LABEL_COLUMNS)}")

    def column(name: str, kind: str = "string"):
        return (F.col(name) if name in raw.columns else F.lit(None)).cast(kind).alias(name)

    return raw.select(
        column("user_id"),
        column("session_id"),
        F.coalesce(column("anomaly_type"), F.lit(UNKNOWN_TYPE)).alias("anomaly_type"),
        column("start", "timestamp"),
        column("end", "timestamp"),
    )


def label_sessions(sessions: DataFrame, labels: DataFrame) -> DataFrame:
    """`sessions` with `anomaly_type`: the label a session matches, null for normal sessions.

    A label with a `session_id` marks that session, and every piece cut from it when `sessions` has
    `source_session_id` (the source's session a stored one belongs to); otherwise it marks the user's
    sessions that overlap [start, end] (all of the user's sessions when it has no span). A session
    matching labels of several types takes the first type by name. Labels are small: they are broadcast.
    """
    by_session = F.broadcast(labels.filter(F.col("session_id").isNotNull()).select("session_id", "anomaly_type"))
    by_span = labels.filter(F.col("session_id").isNull())
    keys = sessions.select("session_id", "user_id", "session_start", "session_end")
    session_matches = keys.join(by_session, on="session_id", how="inner")
    if "source_session_id" in sessions.columns:
        pieces = sessions.select("session_id", F.col("source_session_id").alias("source"))
        session_matches = session_matches.select("session_id", "anomaly_type").unionByName(
            pieces.join(by_session.withColumnRenamed("session_id", "source"), on="source", how="inner").drop("source")
        )
    overlaps = (F.col("start").isNull() | (F.col("start") <= F.col("session_end"))) & (
        F.col("end").isNull() | (F.col("end") >= F.col("session_start"))
    )
    span_matches = keys.join(F.broadcast(by_span.drop("session_id")), on="user_id", how="inner").filter(overlaps)
    matched = (
        session_matches.select("session_id", "anomaly_type")
        .unionByName(span_matches.select("session_id", "anomaly_type"))
        .groupBy("session_id")
        .agg(F.min("anomaly_type").alias("anomaly_type"))
    )
    return sessions.join(matched, on="session_id", how="left")
