"""Which Delta backend a session uses: native delta-spark wherever Delta works, else delta-rs.

Delta is found by what works on each platform: Databricks Runtime ships it built in, under its
own class names (`com.databricks.sql.transaction.tahoe...`) and configured; elsewhere delta-spark's
classes must load and the session must carry Delta's SQL extension (which `saveAsTable`,
catalog names, history and vacuum need), as `seqrisk.spark` sets it up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pyspark.sql import SparkSession

from seqrisk.errors import SeqriskError
from seqrisk.lake import uri_files
from seqrisk.lake.delta_rs import DeltaRsTables
from seqrisk.lake.native_delta import NativeDeltaTables
from seqrisk.lake.tables import DeltaTables

DeltaChoice = Literal["auto", "native", "delta-rs"]
DATABRICKS_DELTA = "com.databricks.sql.transaction.tahoe.sources.DeltaDataSource"
OSS_DELTA = "org.apache.spark.sql.delta.sources.DeltaDataSource"
OSS_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"


def open_tables(spark: SparkSession, *, delta: DeltaChoice, max_records_per_file: int) -> DeltaTables:
    """Pick the backend: ``auto`` means native delta-spark where Delta works, else delta-rs."""
    missing = native_delta_missing(_class_loads(spark), spark.conf.get("spark.sql.extensions", "") or "")
    if delta == "native" and missing:
        raise SeqriskError(
            f"tables.delta=native, but {missing}. Run `make setup` (it caches Delta's jars), or give spark-submit "
            "--packages io.delta:delta-spark_2.12:<the delta-spark version> and --conf spark.sql.extensions="
            f"{OSS_EXTENSION}; or set tables.delta=delta-rs"
        )
    if delta == "native" or (delta == "auto" and not missing):
        return NativeDeltaTables(spark, max_records_per_file)
    return DeltaRsTables(spark, max_records_per_file)


def native_delta_missing(loads: Callable[[str], bool], extensions: str) -> str | None:
    """What this session lacks for native Delta, or None when it has everything (Databricks, or delta-spark configured)."""
    if loads(DATABRICKS_DELTA):
        return None
    if not loads(OSS_DELTA):
        return "delta-spark's classes are not on Spark's classpath"
    if OSS_EXTENSION not in [e.strip() for e in extensions.split(",")]:
        return f"the session lacks Delta's SQL extension (spark.sql.extensions={OSS_EXTENSION})"
    return None


def _class_loads(spark: SparkSession) -> Callable[[str], bool]:
    gateway = uri_files.jvm(spark)
    loader = gateway.Thread.currentThread().getContextClassLoader()

    def loads(name: str) -> bool:
        try:
            gateway.java.lang.Class.forName(name, False, loader)
            return True
        except Exception:  # py4j raises a generic Py4JJavaError for ClassNotFoundException
            return False

    return loads
