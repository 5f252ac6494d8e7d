"""Which Delta backend a session uses: native delta-spark wherever Delta works, else delta-rs."""
from __future__ import annotations

from typing import Literal

from pyspark.sql import SparkSession

from seqrisk.errors import SeqriskError
from seqrisk.lake import uri_files
from seqrisk.lake.delta_rs import DeltaRsTables
from seqrisk.lake.native_delta import NativeDeltaTables
from seqrisk.lake.tables import DeltaTables

DeltaChoice = Literal["auto", "native", "delta-rs"]


def open_tables(spark: SparkSession, *, delta: DeltaChoice, max_records_per_file: int) -> DeltaTables:
    """Pick the backend: ``auto`` means native delta-spark when its classes load, else delta-rs."""
    native = has_native_delta(spark)
    if delta == "native" and not native:
        raise SeqriskError(
            "tables.delta=native, but delta-spark's jars are not on Spark's classpath; add them "
            "(spark.jars.packages=io.delta:delta-spark_2.12:3.3.2) or set tables.delta=delta-rs"
        )
    if delta == "native" or (delta == "auto" and native):
        return NativeDeltaTables(spark, max_records_per_file)
    return DeltaRsTables(spark, max_records_per_file)


def has_native_delta(spark: SparkSession) -> bool:
    """True when delta-spark's classes are on the session's classpath (Databricks, a cluster)."""
    gateway = uri_files.jvm(spark)
    try:
        gateway.java.lang.Class.forName(
            "org.apache.spark.sql.delta.sources.DeltaDataSource", True, gateway.Thread.currentThread().getContextClassLoader()
        )
        return True
    except Exception:  # py4j raises a generic Py4JJavaError for ClassNotFoundException
        return False
