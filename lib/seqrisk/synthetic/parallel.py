"""Synthetic raw events and their labels, made in parallel by Spark (the generate job's work).

Users are spread over tasks with `spark.range`; each task runs `synthetic.generate_frames` on its
users (executor side, in the installed package). Output: `OUT/events/` (CSV without a header, for
the `generated` mapping) and `OUT/labels.csv` (one row per anomalous span).
"""

from __future__ import annotations

import logging
from calendar import timegm
from collections.abc import Iterator
from functools import partial

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from seqrisk.lake import uri_files
from seqrisk.synthetic.generator import ANOMALY_TYPES, AnomalyKnobs, GeneratorParams, generate_frames
from seqrisk.synthetic.settings import GenerateConfig

log = logging.getLogger("seqrisk")

OUTPUT_SCHEMA = "kind string, line string, anomaly_type string, user_id string, start string, `end` string"
USERS_PER_TASK = 20_000


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


def generated_rows(spark: SparkSession, settings: GenerateConfig, tasks: int) -> DataFrame:
    """One row per output line: `kind` event (a raw CSV line) or label (an anomalous span)."""
    params = generator_params(settings)
    return spark.range(0, settings.users, numPartitions=tasks).mapInPandas(partial(_generate_batches, params=params), OUTPUT_SCHEMA)


def _generate_batches(batches: Iterator[pd.DataFrame], params: GeneratorParams) -> Iterator[pd.DataFrame]:
    for batch in batches:
        yield generate_frames(batch["id"], params)


def write_single_csv(spark: SparkSession, frame, path: str) -> None:
    """One CSV file with a header at `path` (Spark writes a folder; its one part file is moved)."""
    staging = f"{path}._staging"
    frame.coalesce(1).write.mode("overwrite").option("header", True).csv(staging)
    part = next(name for name in uri_files.list_names(spark, staging) if name.startswith("part-"))
    uri_files.delete(spark, path)
    uri_files.rename(spark, uri_files.join(staging, part), path)
    uri_files.delete(spark, staging)
