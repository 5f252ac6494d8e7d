"""The generate job: synthetic raw events and their labels, made in parallel by Spark.

Users are spread over tasks with `spark.range`; each task runs `synthetic.generate_frames` on its
users (executor side, in the installed package). Output: `OUT/events/` (CSV without a header, for
the `generated` mapping) and `OUT/labels.csv` (one row per anomalous span).
"""
from __future__ import annotations

import logging
import math
from calendar import timegm
from dataclasses import dataclass, field
from functools import partial
from typing import Iterator, Optional

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from seqrisk.config import Config, GenerateConfig
from seqrisk.job import start_job
from seqrisk.synthetic import ANOMALY_TYPES, AnomalyKnobs, GeneratorParams, generate_frames

log = logging.getLogger("seqrisk")

OUTPUT_SCHEMA = "kind string, line string, anomaly_type string, user_id string, start string, `end` string"
USERS_PER_TASK = 20_000


@dataclass
class GenerateSummary:
    run_id: str
    out: str
    users: int
    events: int = 0
    malformed: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)  # events inside anomalous spans
    spans_by_type: dict[str, int] = field(default_factory=dict)
    users_by_type: dict[str, int] = field(default_factory=dict)

    def report(self) -> str:
        anomalous_users = sum(self.users_by_type.values())
        lines = [
            f"generate {self.run_id}: {self.out}",
            f"  users               {self.users:>12,}  ({anomalous_users:,} with anomalies)",
            f"  events written      {self.events:>12,}  (+{self.malformed:,} malformed lines)" if self.malformed
            else f"  events written      {self.events:>12,}",
            f"  {'anomaly mix:':<20}" + " ".join(f"{h:>11}" for h in ("users", "spans", "events")),
        ]
        for kind in ANOMALY_TYPES:
            counts = (self.users_by_type.get(kind, 0), self.spans_by_type.get(kind, 0), self.events_by_type.get(kind, 0))
            lines.append(f"    {kind:<18}" + " ".join(f"{n:>11,}" for n in counts))
        return "\n".join(lines)


def run_generate(config: Config, *, out: Optional[str] = None, spark: Optional[SparkSession] = None) -> GenerateSummary:
    """Write `generate.users` users' events and labels under `out` (default `generate.out`)."""
    job = start_job("generate", config, spark)
    settings = config.generate
    out = (out or settings.out).rstrip("/")
    params = generator_params(settings)
    tasks = settings.partitions or max(job.spark.sparkContext.defaultParallelism, math.ceil(settings.users / USERS_PER_TASK))
    log.info("generate: %d users over %d days in %d tasks, into %s", settings.users, settings.days, tasks, out)

    rows = (
        job.spark.range(0, settings.users, numPartitions=tasks)
        .mapInPandas(partial(_generate_batches, params=params), OUTPUT_SCHEMA)
        .persist(StorageLevel.DISK_ONLY)  # events, labels and the summary read it; on disk, any size fits
    )
    try:
        rows.filter(F.col("kind") == "event").select("line").write.mode("overwrite").text(f"{out}/events")
        labels = rows.filter(F.col("kind") == "label").select("user_id", "anomaly_type", "start", "end")
        _write_single_csv(job.spark, labels.orderBy("user_id", "start"), f"{out}/labels.csv")
        return _summarize(job.run_id, out, settings.users, rows)
    finally:
        rows.unpersist()


def generator_params(settings: GenerateConfig) -> GeneratorParams:
    return GeneratorParams(
        seed=settings.seed,
        users=settings.users,
        days=settings.days,
        start_epoch_s=timegm(settings.start.timetuple()),
        anomaly_rate=settings.anomaly_rate,
        malformed_rate=settings.malformed_rate,
        items=settings.items,
        categories=settings.categories,
        anomalies={kind: AnomalyKnobs(**getattr(settings.anomalies, kind).model_dump()) for kind in ANOMALY_TYPES},
    )


def _generate_batches(batches: Iterator[pd.DataFrame], params: GeneratorParams) -> Iterator[pd.DataFrame]:
    for batch in batches:
        yield generate_frames(batch["id"], params)


def _summarize(run_id: str, out: str, users: int, rows) -> GenerateSummary:
    summary = GenerateSummary(run_id, out, users)
    counts = rows.groupBy("kind", "anomaly_type").agg(F.count("*").alias("n"), F.countDistinct("user_id").alias("users"))
    for row in counts.collect():  # a handful of rows: kinds x anomaly types
        if row["kind"] == "label":
            summary.spans_by_type[row["anomaly_type"]] = row["n"]
            summary.users_by_type[row["anomaly_type"]] = row["users"]
        elif row["anomaly_type"] == "malformed":
            summary.malformed = row["n"]
        else:
            summary.events += row["n"]
            if row["anomaly_type"] is not None:
                summary.events_by_type[row["anomaly_type"]] = row["n"]
    return summary


def _write_single_csv(spark: SparkSession, frame, path: str) -> None:
    """One CSV file with a header at `path` (Spark writes a folder; its one part file is moved)."""
    staging = f"{path}._staging"
    frame.coalesce(1).write.mode("overwrite").option("header", True).csv(staging)
    jvm = spark._jvm  # type: ignore[attr-defined]
    hadoop = jvm.org.apache.hadoop.fs
    target = hadoop.Path(path)
    fs = target.getFileSystem(spark._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    part = [s.getPath() for s in fs.listStatus(hadoop.Path(staging)) if s.getPath().getName().startswith("part-")][0]
    fs.delete(target, False)
    fs.rename(part, target)
    fs.delete(hadoop.Path(staging), True)
