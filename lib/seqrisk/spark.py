"""The Spark session: one factory for local runs, spark-submit and notebooks.

A new session gets Delta's SQL extension and catalog wherever delta-spark's jars will be on its
classpath: on a local master, the jars `make setup` cached for the installed `delta-spark`
(scripts/fetch_jars.py); under spark-submit or in `spark.extra`, the `spark.jars` or
`spark.jars.packages` a user gave. An existing session (Databricks, a notebook) is taken as it is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pyspark import SparkConf, SparkContext
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
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
JARS_CACHE = Path.home() / ".cache" / "seqrisk" / "jars"  # scripts/fetch_jars.py fills it; SEQRISK_DELTA_JARS names another folder


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
    local = bool(conf.master and conf.master.startswith("local"))
    settings.update(delta_settings({**_submitted_conf(), **settings}, cached_delta_jars() if local else []))
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


def delta_settings(given: Mapping[str, str], cached_jars: list[str]) -> dict[str, str]:
    """What a new session needs for delta-spark, on top of the settings `given` to it.

    The cached jars are added unless the user names Delta's jars or packages; Delta's SQL
    extension and catalog are set wherever the jars will be there (and not set already).
    """
    named = "delta-spark" in given.get("spark.jars", "") + given.get("spark.jars.packages", "")
    out: dict[str, str] = {}
    if cached_jars and not named:
        out["spark.jars"] = ",".join(filter(None, [given.get("spark.jars", ""), *cached_jars]))
    if not (named or cached_jars):
        return out
    extensions = [e for e in given.get("spark.sql.extensions", "").split(",") if e]
    if DELTA_EXTENSION not in extensions:
        out["spark.sql.extensions"] = ",".join([*extensions, DELTA_EXTENSION])
    out.setdefault("spark.sql.catalog.spark_catalog", given.get("spark.sql.catalog.spark_catalog", DELTA_CATALOG))
    return out


def cached_delta_jars() -> list[str]:
    """The jars `make setup` cached for the installed delta-spark (none when there are none)."""
    try:
        folder = Path(os.environ.get("SEQRISK_DELTA_JARS") or JARS_CACHE / f"delta-{version('delta-spark')}")
    except PackageNotFoundError:
        return []
    return sorted(str(jar) for jar in folder.glob("*.jar"))


def _submitted_conf() -> dict[str, str]:
    """The settings spark-submit gave this driver; none in a plain Python process (no JVM runs yet)."""
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return {}
    SparkContext._ensure_initialized()  # connects to spark-submit's JVM; starts none
    return dict(SparkConf().getAll())
