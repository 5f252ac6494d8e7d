"""Reading raw event files (CSV, JSON lines, Parquet) by a mapping, and the events' table layout (the ingest job's work)."""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from seqrisk.config import Mapping
from seqrisk.errors import SeqriskError
from seqrisk.events import INGEST_RUNS_SCHEMA, MALFORMED, RECORD, SOURCE, SOURCE_FILE

log = logging.getLogger("seqrisk")


def new_events(tables, events_path: str, events: DataFrame) -> DataFrame:
    """Events with duplicates dropped: one row per `event_id`, and none already in the table.

    Shuffle: by `event_id` (dedupe and anti-join share it). Of the copies of one id, the one
    with the earliest content (then source file) is kept, so the choice does not depend on
    partitioning or on the order files are listed in. Columns beyond the events schema (the
    `source_file`) come along.
    """
    order = F.struct(
        "event_time", "user_id", "event_type", "session_id", "item_id", "category", "price",
        F.to_json("attributes"), "source_file",
    )
    unique = (
        events.groupBy("event_id")
        .agg(F.min_by(F.struct(*events.columns), order).alias("event"))
        .select("event.*")
    )
    if not tables.exists(events_path):
        return unique
    dates = [row["event_date"].isoformat() for row in events.select("event_date").distinct().collect()]
    known = tables.read(events_path, where={"event_date": dates}).select("event_id")
    return unique.join(known, on="event_id", how="left_anti")


@dataclass
class FileTally:
    """One source file's records: how many, how many good, how many quarantined for each reason."""

    records: int = 0
    good: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)


def tally_files(validated: DataFrame) -> dict[str, FileTally]:
    """Per source file, `validate`'s outcome counted (a row per file and reason reaches the driver)."""
    tallies: dict[str, FileTally] = {}
    for row in validated.groupBy("source_file", "reason").count().collect():
        tally = tallies.setdefault(row["source_file"], FileTally())
        tally.records += row["count"]
        if row["reason"] is None:
            tally.good += row["count"]
        else:
            tally.quarantined[row["reason"]] = row["count"]
    return tallies


def ingest_runs(
    spark: SparkSession,
    tallies: dict[str, FileTally],
    written: Optional[dict[str, int]],
    *,
    run_id: str,
    mapping: str,
    at: datetime,
    refused: Optional[str] = None,
) -> DataFrame:
    """The run's rows of `ingest_runs`: one per source file; `written` is None for a refused run."""
    rows = []
    for source_file, tally in sorted(tallies.items()):
        events_written = 0 if written is None else written.get(source_file, 0)
        rows.append(
            (
                run_id, source_file, mapping, tally.records, events_written,
                0 if written is None else tally.good - events_written,
                tally.good if written is None else 0,
                sum(tally.quarantined.values()), tally.quarantined,
                "ok" if refused is None else f"refused: {refused}", at,
            )
        )
    return spark.createDataFrame(rows, INGEST_RUNS_SCHEMA)


def layout_for_write(events: DataFrame) -> DataFrame:
    """Files per date, with each user's events together and in time order (what sessionize reads).

    Shuffle: by (`event_date`, `user_id`).
    """
    return events.repartition("event_date", "user_id").sortWithinPartitions("event_date", "user_id", "event_time")


# -- reading raw files --------------------------------------------------------------------------


def list_input_files(spark: SparkSession, pattern: str) -> list[str]:
    """The files a path, folder (recursively) or glob names, through Hadoop's filesystem API.

    Names starting with `_` or `.` (Spark's and Hadoop's markers) are skipped.
    """
    jvm = spark._jvm  # type: ignore[attr-defined]
    path = jvm.org.apache.hadoop.fs.Path(pattern)
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    statuses = fs.globStatus(path) or []
    files = []
    for status in statuses:
        if status.isDirectory():
            listing = fs.listFiles(status.getPath(), True)
            while listing.hasNext():
                files.append(listing.next().getPath())
        else:
            files.append(status.getPath())
    visible = sorted(str(p) for p in files if not p.getName().startswith(("_", ".")))
    if not visible:
        what = "matches nothing" if not statuses else "holds no files"
        raise SeqriskError(f"--input {pattern}: {what}; give a file, a folder or a glob of raw event files")
    return visible


def read_raw(spark: SparkSession, files: list[str], mapping: Mapping) -> DataFrame:
    """Records as `validate` takes them: verbatim text, source file, malformed flag, source columns."""
    if mapping.format == "parquet":
        return _read_parquet(spark, files, mapping)
    lines = spark.read.text(files).select(
        F.col("value").alias(RECORD), F.input_file_name().alias(SOURCE_FILE)
    )
    if mapping.format == "json":
        return _split_json(lines, mapping)
    return _split_csv(spark, lines, files, mapping)


def _split_csv(spark: SparkSession, lines: DataFrame, files: list[str], mapping: Mapping) -> DataFrame:
    names = mapping.names
    if mapping.header:
        header = _first_line(spark, files)
        if header is None:
            return _no_records(spark, mapping)
        names = next(csv.reader([header.lstrip("\ufeff")], delimiter=mapping.delimiter))
        lines = lines.filter(F.col(RECORD) != header)
    _require_columns(mapping, names, "the CSV header" if mapping.header else "mapping `names`")
    schema = StructType([StructField(n, StringType()) for n in names] + [StructField("_corrupt", StringType())])
    parsed = F.from_csv(
        RECORD,
        schema.simpleString(),
        {"sep": mapping.delimiter, "mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"},
    ).alias("p")
    expected = f"expected {len(names)} fields separated by {mapping.delimiter!r}"
    return _raw_frame(lines.select("*", parsed), mapping, expected)


def _split_json(lines: DataFrame, mapping: Mapping) -> DataFrame:
    schema = StructType(
        [StructField(n, StringType()) for n in mapping.source_columns()] + [StructField("_corrupt", StringType())]
    )
    parsed = F.from_json(
        RECORD, schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"}
    ).alias("p")
    return _raw_frame(lines.select("*", parsed), mapping, "not a JSON object")


def _raw_frame(split: DataFrame, mapping: Mapping, malformed_detail: str) -> DataFrame:
    malformed = (
        F.when(F.trim(F.col(RECORD)) == "", F.lit("blank line"))
        .when(F.col("p._corrupt").isNotNull(), F.lit(malformed_detail))
    )
    source = F.struct(*[F.col("p")[n].alias(n) for n in mapping.source_columns()])
    return split.select(RECORD, SOURCE_FILE, malformed.alias(MALFORMED), source.alias(SOURCE))


def _read_parquet(spark: SparkSession, files: list[str], mapping: Mapping) -> DataFrame:
    frame = spark.read.parquet(*files)
    _require_columns(mapping, frame.columns, "the Parquet files")
    as_text = {
        f.name: (F.to_json(f.name) if f.dataType.typeName() in ("struct", "array", "map") else F.col(f.name).cast("string"))
        for f in frame.schema.fields
    }
    source = F.struct(*[as_text[n].alias(n) for n in mapping.source_columns()])
    return frame.select(
        F.to_json(F.struct(*frame.columns)).alias(RECORD),
        F.input_file_name().alias(SOURCE_FILE),
        F.lit(None).cast("string").alias(MALFORMED),
        source.alias(SOURCE),
    )


def _first_line(spark: SparkSession, files: list[str]) -> Optional[str]:
    for path in files:
        first = spark.read.text(path).limit(1).collect()
        if first:
            return first[0]["value"]
    return None


def _no_records(spark: SparkSession, mapping: Mapping) -> DataFrame:
    source = StructType([StructField(n, StringType()) for n in mapping.source_columns()])
    schema = StructType(
        [StructField(RECORD, StringType()), StructField(SOURCE_FILE, StringType()), StructField(MALFORMED, StringType()), StructField(SOURCE, source)]
    )
    return spark.createDataFrame([], schema)


def _require_columns(mapping: Mapping, available: list[str], where: str) -> None:
    missing = [c for c in mapping.source_columns() if c not in available]
    if missing:
        raise SeqriskError(
            f"the mapping reads column(s) {missing} that {where} lack; available: {list(available)}"
        )
