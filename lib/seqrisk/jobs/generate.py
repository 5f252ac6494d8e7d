"""The generate job: `generate.users` users' raw events and labels under `generate.out` (or `--out`).

Output: `OUT/events/` (CSV without a header, for the `generated` mapping) and `OUT/labels.csv` (one
row per anomalous span).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seqrisk.config import Config
from seqrisk.jobs.report import line, report
from seqrisk.jobs.start import start_job
from seqrisk.synthetic.generator import ANOMALY_TYPES
from seqrisk.synthetic.parallel import USERS_PER_TASK, generated_rows, write_single_csv

log = logging.getLogger("seqrisk")


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
        malformed = f"  (+{self.malformed:,} malformed lines)" if self.malformed else ""
        mix = [
            line(
                f"  {kind}",
                " ".join(
                    f"{n:>11,}"
                    for n in (self.users_by_type.get(kind, 0), self.spans_by_type.get(kind, 0), self.events_by_type.get(kind, 0))
                ),
            )
            for kind in ANOMALY_TYPES
        ]
        return report(
            f"generate {self.run_id}: {self.out}",
            line("users", self.users) + f"  ({anomalous_users:,} with anomalies)",
            line("events written", self.events) + malformed,
            line("anomaly mix:", " ".join(f"{h:>11}" for h in ("users", "spans", "events"))),
            *mix,
        )


def run_generate(config: Config, *, out: str | None = None, spark: SparkSession | None = None) -> GenerateSummary:
    """Write `generate.users` users' events and labels under `out` (default `generate.out`)."""
    job = start_job("generate", config, spark)
    settings = config.generate
    out = (out or settings.out).rstrip("/")
    tasks = settings.partitions or max(job.spark.sparkContext.defaultParallelism, math.ceil(settings.users / USERS_PER_TASK))
    log.info("generate: %d users over %d days in %d tasks, into %s", settings.users, settings.days, tasks, out)

    rows = (
        generated_rows(job.spark, settings, tasks).persist(
            StorageLevel.DISK_ONLY
        )  # events, labels and the summary read it; on disk, any size fits
    )
    try:
        rows.filter(F.col("kind") == "event").select("line").write.mode("overwrite").text(f"{out}/events")
        labels = rows.filter(F.col("kind") == "label").select("user_id", "anomaly_type", "start", "end")
        write_single_csv(job.spark, labels.orderBy("user_id", "start"), f"{out}/labels.csv")
        return _summarize(job.run_id, out, settings.users, rows)
    finally:
        rows.unpersist()


def _summarize(run_id: str, out: str, users: int, rows: DataFrame) -> GenerateSummary:
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
