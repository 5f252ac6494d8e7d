"""The Spark session: one factory for local runs, spark-submit and notebooks."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from seqrisk.config import SparkConfig

# pandas-on-Spark and Arrow conversions expect this with pyarrow >= 2 (PySpark's own advice).
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")

# Settings every seqrisk job relies on, whatever the environment.
REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # Bad input must parse to null (then quarantine), not fail the job: casts follow non-ANSI rules.
    "spark.sql.ansi.enabled": "false",
    # Microsecond timestamps in Parquet (not INT96), so delta-rs and DuckDB read the same types.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.adaptive.enabled": "true",
}


def get_spark(conf: SparkConfig) -> SparkSession:
    """Return the active session (cluster, notebook) or build a new one from `conf`.

    On an existing session (Databricks, a notebook) only runtime SQL settings are applied.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        _apply_runtime_conf(active, conf)
        return active

    if conf.master and conf.master.startswith("local"):
        # Local workers must run the same interpreter (the project virtualenv) as the driver.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

    builder = SparkSession.builder.appName(conf.app_name)
    if conf.master:
        builder = builder.master(conf.master)
    utc_jvm = "-Duser.timezone=UTC"
    settings = {
        **REQUIRED_CONF,
        "spark.sql.shuffle.partitions": str(conf.shuffle_partitions),
        "spark.driver.extraJavaOptions": utc_jvm,
        "spark.executor.extraJavaOptions": utc_jvm,
        **conf.extra,
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _apply_runtime_conf(spark: SparkSession, conf: SparkConfig) -> None:
    settings = {**REQUIRED_CONF, "spark.sql.shuffle.partitions": str(conf.shuffle_partitions), **conf.extra}
    for key, value in settings.items():
        if spark.conf.isModifiable(key):
            spark.conf.set(key, value)
