"""What every job starts with: a run id, the effective config printed, a Spark session, the lake;
and the `--from/--to` dates every ranged job reads the same way."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from pyspark.sql import SparkSession

from seqrisk.config import Config
from seqrisk.errors import SeqriskError
from seqrisk.lake.lake import Lake
from seqrisk.progress import enable_progress_logging, follow_stages
from seqrisk.spark import get_spark

log = logging.getLogger("seqrisk")


@dataclass(frozen=True)
class Job:
    name: str
    run_id: str
    started_at: datetime
    config: Config
    spark: SparkSession
    lake: Lake


def start_job(name: str, config: Config, spark: SparkSession | None = None) -> Job:
    """Open a job run: every row it writes carries the returned `run_id`."""
    enable_progress_logging()
    started_at = datetime.now(UTC)
    run_id = f"{name}-{started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    log.info("%s: run %s, effective config:\n%s", name, run_id, config.to_yaml().rstrip())
    spark = spark or get_spark(config.spark)
    follow_stages(spark, name, config.spark.progress_seconds)
    lake = Lake.open(spark, config.tables)
    log.info("%s: Delta tables through %s, under %s", name, lake.tables.backend, lake.root)
    return Job(name, run_id, started_at, config, spark, lake)


def date_range(date_from: date | None, date_to: date | None, everything: str) -> list[str] | None:
    """The ISO dates of `--from`..`--to`, or None when neither is given (the job does `everything`)."""
    if date_from is None and date_to is None:
        return None
    if date_from is None or date_to is None:
        raise SeqriskError(f"give both --from and --to, or neither ({everything})")
    if date_from > date_to:
        raise SeqriskError(f"--from {date_from} is after --to {date_to}")
    return [(date_from + timedelta(days=i)).isoformat() for i in range((date_to - date_from).days + 1)]
