"""Reading raw event files (CSV, JSON lines, Parquet) by a mapping: each record verbatim, with its file and fields."""

from __future__ import annotations

import csv
import logging
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from seqrisk.errors import SeqriskError
from seqrisk.ingest.settings import SourceMapping
from seqrisk.ingest.validation import FILE_TIME, MALFORMED, RECORD, SOURCE, SOURCE_FILE
from seqrisk.lake import uri_files

log = logging.getLogger("seqrisk")


HEADER_BYTES = 1 << 20  # a CSV header longer than this is not a header
_FILE_URI = "_file_uri"  # a line's file as Spark's `_metadata.file_path` spells it


def list_input_files(spark: SparkSession, pattern: str, success_marker: str = "auto") -> list[str]:
    """The files a path, folder (recursively) or glob names, through Hadoop's filesystem API.

    Below a folder, names starting with `_` or `.` (Spark's and Hadoop's markers, their
    `_temporary/` work folders) are skipped. A folder an upstream job is still writing is
    refused: one holding `_temporary/`, and (`success_marker`: `auto`) one of `part-*` files
    without its `_SUCCESS`; `required` asks every folder for `_SUCCESS`, `ignored` never.
    """
    statuses = uri_files.glob(spark, pattern)
    files = []
    for uri, is_folder in statuses:
        if not is_folder:
            if not uri.rpartition("/")[2].startswith(("_", ".")):
                files.append(uri)
            continue
        root = uri.rstrip("/")
        folders: dict[str, list[str]] = {}
        for found in uri_files.list_files(spark, uri):
            folder, _, name = found.rpartition("/")
            folders.setdefault(folder, []).append(name)
        below = {folder: folder[len(root) :].split("/") for folder in folders}  # the folder's parts under the input folder
        working = [f for f, parts in below.items() if "_temporary" in parts]
        if working:
            raise SeqriskError(
                f"--input {pattern}: {working[0]} is in a job's _temporary work folder: its output is still being written; ingest it once the job has finished"
            )
        for folder, names in sorted(folders.items()):
            if any(part.startswith(("_", ".")) for part in below[folder]):
                continue
            visible = [n for n in names if not n.startswith(("_", "."))]
            unfinished = (
                "_SUCCESS" not in names
                and visible
                and (success_marker == "required" or (success_marker == "auto" and any(n.startswith("part-") for n in visible)))
            )
            if unfinished:
                raise SeqriskError(
                    f"--input {pattern}: {folder} has no _SUCCESS marker, so the job writing it may not have "
                    "finished; ingest it once it has (or set ingest.success_marker=ignored for a source that writes none)"
                )
            files.extend(f"{folder}/{n}" for n in visible)
    visible_files = sorted(files)
    if not visible_files:
        what = "matches nothing" if not statuses else "holds no files"
        raise SeqriskError(f"--input {pattern}: {what}; give a file, a folder or a glob of raw event files")
    return visible_files


def read_raw(spark: SparkSession, files: list[str], mapping: SourceMapping) -> DataFrame:
    """Records as `validate` takes them: verbatim text, source file and its time, malformed flag, source columns."""
    if mapping.format == "parquet":
        return _read_parquet(spark, files, mapping)
    lines = _read_lines(spark, files, mapping.encoding)
    if mapping.format == "json":
        return _split_json(lines, mapping)
    return _split_csv(spark, lines, files, mapping)


def _read_lines(spark: SparkSession, files: list[str], encoding: str) -> DataFrame:
    """One row per line. UTF-8 through Spark's text source (compressed files too: `.gz`, `.bz2`, ...); any
    other encoding decoded a whole file at a time."""
    if encoding == "utf-8":
        frame = spark.read.text(files)
        return frame.select(
            F.col("value").alias(RECORD),
            F.input_file_name().alias(SOURCE_FILE),
            F.col("_metadata.file_modification_time").alias(FILE_TIME),
            F.col("_metadata.file_path").alias(_FILE_URI),
        )
    compressed = [f for f in files if uri_files.is_compressed(spark, f)]
    if compressed:
        raise SeqriskError(
            f"{compressed[0]}{' and more' if len(compressed) > 1 else ''}: compressed files are read as UTF-8 only, "
            f"and the mapping's encoding is {encoding}; decompress them first, or convert them to UTF-8"
        )
    whole = spark.read.format("binaryFile").load(files)
    lines = F.split(F.decode("content", encoding), "\r?\n")
    exploded = whole.select(
        F.input_file_name().alias(SOURCE_FILE),
        F.col("_metadata.file_modification_time").alias(FILE_TIME),
        F.col("_metadata.file_path").alias(_FILE_URI),
        F.posexplode(lines).alias("n", RECORD),
        F.size(lines).alias("count"),
    )
    last_empty = (F.col("n") == F.col("count") - 1) & (F.col(RECORD) == "")  # the end of the last line
    return exploded.filter(~last_empty).select(RECORD, SOURCE_FILE, FILE_TIME, _FILE_URI)


def _split_csv(spark: SparkSession, lines: DataFrame, files: list[str], mapping: SourceMapping) -> DataFrame:
    """Each file split by its own header (files with different headers are read apart), or by `names`."""
    if not mapping.header:
        _require_columns(mapping, mapping.names or [], "mapping `names`")
        return _parse_csv(lines, mapping, mapping.names or [])
    by_header: dict[str, list[str]] = {}
    for path in files:
        header = _first_line(spark, path, mapping.encoding)
        if header is not None:
            by_header.setdefault(header, []).append(path)
    if not by_header:
        return _no_records(spark, mapping)
    parts = []
    for header, group in by_header.items():
        names = next(csv.reader([header.lstrip("\ufeff")], delimiter=mapping.delimiter))
        _require_columns(mapping, names, f"the CSV header of {', '.join(group[:3])}{' and more' if len(group) > 3 else ''}")
        uris = [str(uri_files.jvm(spark).org.apache.hadoop.fs.Path(path).toUri().toString()) for path in group]
        mine = lines.filter(F.col(_FILE_URI).isin(uris) & (F.col(RECORD) != header))
        parts.append(_parse_csv(mine, mapping, names))
    return reduce(DataFrame.unionByName, parts)


def _parse_csv(lines: DataFrame, mapping: SourceMapping, names: list[str]) -> DataFrame:
    schema = StructType([StructField(n, StringType()) for n in names] + [StructField("_corrupt", StringType())])
    parsed = F.from_csv(
        RECORD,
        schema.simpleString(),
        {"sep": mapping.delimiter, "mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"},
    ).alias("p")
    expected = f"expected {len(names)} fields separated by {mapping.delimiter!r}"
    return _raw_frame(lines.select("*", parsed), mapping, expected)


def _split_json(lines: DataFrame, mapping: SourceMapping) -> DataFrame:
    schema = StructType([StructField(n, StringType()) for n in mapping.source_columns()] + [StructField("_corrupt", StringType())])
    parsed = F.from_json(RECORD, schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"}).alias("p")
    return _raw_frame(lines.select("*", parsed), mapping, "not a JSON object")


def _raw_frame(split: DataFrame, mapping: SourceMapping, malformed_detail: str) -> DataFrame:
    malformed = (
        F.when(F.trim(F.col(RECORD)) == "", F.lit("blank line"))
        .when(_not_decoded(mapping.encoding), F.lit(f"text that is not {mapping.encoding}: declare the files' `encoding` in the mapping"))
        .when(F.col("p._corrupt").isNotNull(), F.lit(malformed_detail))
    )
    source = F.struct(*[F.col("p")[n].alias(n) for n in mapping.source_columns()])
    return split.select(RECORD, SOURCE_FILE, FILE_TIME, malformed.alias(MALFORMED), source.alias(SOURCE))


def _not_decoded(encoding: str) -> Column:
    """True for a line that is not valid text: bytes that are not UTF-8, or a character another encoding could not decode."""
    if encoding == "utf-8":  # Spark's text source keeps invalid bytes as they are; a round trip through Java replaces them
        return F.encode(RECORD, "UTF-8") != F.col(RECORD).cast("binary")
    return F.col(RECORD).contains("\ufffd")


def _read_parquet(spark: SparkSession, files: list[str], mapping: SourceMapping) -> DataFrame:
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
        F.col("_metadata.file_modification_time").alias(FILE_TIME),
        F.lit(None).cast("string").alias(MALFORMED),
        source.alias(SOURCE),
    )


def _first_line(spark: SparkSession, path: str, encoding: str) -> str | None:
    """A file's first line (its CSV header), read from its first bytes; None for an empty file."""
    head = uri_files.read_head(spark, path, HEADER_BYTES).decode(encoding, errors="replace")
    return head.splitlines()[0] if head else None


def _no_records(spark: SparkSession, mapping: SourceMapping) -> DataFrame:
    source = StructType([StructField(n, StringType()) for n in mapping.source_columns()])
    schema = StructType(
        [
            StructField(RECORD, StringType()),
            StructField(SOURCE_FILE, StringType()),
            StructField(FILE_TIME, TimestampType()),
            StructField(MALFORMED, StringType()),
            StructField(SOURCE, source),
        ]
    )
    return spark.createDataFrame([], schema)


def _require_columns(mapping: SourceMapping, available: list[str], where: str) -> None:
    missing = [c for c in mapping.source_columns() if c not in available]
    if missing:
        raise SeqriskError(f"the mapping reads column(s) {missing} that {where} lack; available: {list(available)}")
