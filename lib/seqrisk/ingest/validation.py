"""The events schema, the quarantine schema, and record validation (DESIGN.md, "Tables").

`validate` is a plain DataFrame-to-DataFrame function: it takes raw records (already split into
source columns by the reader, all as strings) and returns, for every record, either the parsed
event or the reason it was rejected. It reads no files, so it is tested with hand-made rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from seqrisk.ingest.settings import SourceMapping
from seqrisk.lake.contracts import EVENTS

# Raw records, as every reader hands them to `validate`.
RECORD = "_record"  # the record verbatim (a CSV or JSON line; a Parquet row as JSON)
SOURCE_FILE = "_source_file"
MALFORMED = "_malformed"  # why the reader could not split the record into columns, else null
SOURCE = "_source"  # a struct of the mapping's source columns, as strings
FILE_TIME = "_file_time"  # the source file's modification time: the plausible range's upper end follows it

# Reason codes, in the order they are checked: a record gets the first that applies.
QUARANTINE_REASONS = {
    "malformed_record": "the line could not be split into the mapping's columns (wrong field count, bad JSON, blank line, text not in the mapping's encoding)",
    "field_too_long": "a mapped column's value is longer than ingest.max_field_chars",
    "missing_user_id": "the user id is absent or blank",
    "missing_event_type": "the event type is absent or blank",
    "missing_event_time": "the event time is absent or blank",
    "bad_event_time": "the event time does not parse with the mapping's time_format",
    "event_time_out_of_range": "the event time is outside the plausible range (config ingest.*, mapping time_range)",
    "bad_price": "the price is not a number, is negative or NaN, or exceeds ingest.max_price",
}

ISO_FORMAT = "yyyy-MM-dd'T'HH:mm:ss'Z'"
EVENT_ID_HEX_CHARS = 32  # 128 bits: collisions stay negligible at billions of events


@dataclass(frozen=True)
class Limits:
    """Plausibility bounds applied to every record.

    The latest plausible event time is the record's file modification time plus `max_future`:
    a bound of the input, so a rerun on another day gives every record the same verdict.
    """

    min_time: datetime
    max_future: timedelta
    max_price: float
    max_field_chars: int = 4096


def validate(raw: DataFrame, mapping: SourceMapping, limits: Limits, id_namespace: str) -> DataFrame:
    """Parse each raw record into event fields and the first reason it must be rejected, if any.

    Returns one row per input record with the event columns (without `run_id`), plus
    `reason` and `detail` (null for good records) and the raw record and source file.
    The event id is the given id within `id_namespace`, or else a hash of the content and of
    the record's occurrence among identical ones in its file (see `_with_event_id`).
    """
    columns = mapping.columns
    reason, detail = _first_failure(_checks(mapping, limits))
    given_id = _field(columns.event_id)
    placeholders = [p.lower() for p in mapping.placeholder_ids]
    parsed = raw.select(
        F.when(~F.lower(given_id).isin(placeholders), F.concat(F.lit(id_namespace + ":"), given_id)).alias("given_event_id"),
        _field(columns.user_id).alias("user_id"),
        parse_time(_field(columns.event_time), mapping.time_format).alias("event_time"),
        _field(columns.event_type).alias("event_type"),
        _field(columns.session_id).alias("session_id"),
        _field(columns.item_id).alias("item_id"),
        _field(columns.category).alias("category"),
        _field(columns.price).cast("double").alias("price"),
        _attributes(mapping.attributes).alias("attributes"),
        reason.alias("reason"),
        detail.alias("detail"),
        F.col(RECORD).alias("record"),
        F.col(SOURCE_FILE).alias("source_file"),
    )
    return _with_event_id(parsed).withColumn("event_date", F.to_date("event_time"))


def _field(name: str | None) -> Column:
    """A mapped source column as text, blank as null; null where the mapping maps nothing."""
    return _blank_to_null(F.col(SOURCE)[name]) if name else F.lit(None).cast("string")


def _checks(mapping: SourceMapping, limits: Limits) -> list[tuple[Column, str, Column]]:
    """(failed, reason code, detail) of every check a record must pass, in the order they are reported."""
    columns, src = mapping.columns, F.col(SOURCE)
    time_text, price_text = _field(columns.event_time), _field(columns.price)
    event_time, price = parse_time(time_text, mapping.time_format), price_text.cast("double")
    low = limits.min_time
    high = (F.col(FILE_TIME).cast("double") + limits.max_future.total_seconds()).cast("timestamp")
    if mapping.time_range is not None:
        low, high = max(low, mapping.time_range.start), F.least(high, F.lit(mapping.time_range.end))
    longest = F.greatest(*[F.length(src[c]) for c in mapping.source_columns()], F.lit(0))
    too_long = F.coalesce(
        *[F.when(F.length(src[c]) > limits.max_field_chars, F.lit(c)) for c in mapping.source_columns()], F.lit(None).cast("string")
    )
    bad_price = price_text.isNotNull() & (price.isNull() | F.isnan(price) | (price < 0) | (price > F.lit(limits.max_price)))
    too_long_detail = F.concat(
        F.lit("column "),
        F.to_json(F.array(too_long)),
        F.lit(" holds "),
        longest.cast("string"),
        F.lit(f" characters, over ingest.max_field_chars ({limits.max_field_chars})"),
    )
    out_of_range_detail = F.concat(
        F.lit("event time "),
        F.date_format(event_time, ISO_FORMAT),
        F.lit(f" is outside [{_iso(low)}, "),
        F.date_format(high, ISO_FORMAT),
        F.lit(")"),
    )
    return [
        (F.col(MALFORMED).isNotNull(), "malformed_record", F.col(MALFORMED)),
        (longest > limits.max_field_chars, "field_too_long", too_long_detail),
        (_field(columns.user_id).isNull(), "missing_user_id", F.lit(f"column {columns.user_id!r} is empty")),
        (_field(columns.event_type).isNull(), "missing_event_type", F.lit(f"column {columns.event_type!r} is empty")),
        (time_text.isNull(), "missing_event_time", F.lit(f"column {columns.event_time!r} is empty")),
        (
            event_time.isNull(),
            "bad_event_time",
            F.concat(F.lit("cannot parse "), F.to_json(F.array(time_text)), F.lit(f" as {mapping.time_format}")),
        ),
        ((event_time < F.lit(low)) | (event_time >= high), "event_time_out_of_range", out_of_range_detail),
        (bad_price, "bad_price", F.concat(F.lit("price "), F.to_json(F.array(price_text)), F.lit(" is not a valid amount"))),
    ]


def _first_failure(checks: list[tuple[Column, str, Column]]) -> tuple[Column, Column]:
    """The reason code and detail of the first check a record fails; null for a good record."""
    reason = F.lit(None).cast("string")
    detail = F.lit(None).cast("string")
    for condition, code, message in reversed(checks):
        reason = F.when(condition, F.lit(code)).otherwise(reason)
        detail = F.when(condition, message).otherwise(detail)
    return reason, detail


def _attributes(names: list[str]) -> Column:
    """The source columns the mapping keeps as attributes, as a string map without nulls."""
    pairs = (
        F.create_map(*[part for name in names for part in (F.lit(name), _field(name))])
        if names
        else F.create_map().cast("map<string,string>")
    )
    return F.map_filter(pairs, lambda _, value: value.isNotNull())


def events_of(validated: DataFrame, run_id: str) -> DataFrame:
    """The good records of `validate`'s output, as rows of the events table with their `source_file`."""
    return validated.filter(F.col("reason").isNull()).withColumn("run_id", F.lit(run_id)).select(*EVENTS.fieldNames(), "source_file")


def quarantine_of(validated: DataFrame, run_id: str, at: datetime) -> DataFrame:
    """The rejected records of `validate`'s output, as rows of the quarantine table."""
    record_id = F.substring(
        F.sha2(F.concat_ws("\n", F.coalesce("source_file", F.lit("")), F.coalesce("record", F.lit(""))), 256),
        1,
        EVENT_ID_HEX_CHARS,
    )
    return validated.filter(F.col("reason").isNotNull()).select(
        record_id.alias("record_id"),
        "record",
        "reason",
        "detail",
        "source_file",
        F.lit(run_id).alias("run_id"),
        F.lit(at).cast("timestamp").alias("quarantined_at"),
    )


def parse_time(text: Column, time_format: str) -> Column:
    """A timestamp from text: `epoch_s`, `epoch_ms`, `iso` (with `Z`, an offset or ` UTC`) or a pattern.

    Anything that does not parse gives null, never an error (the session runs with ANSI off).
    """
    if time_format in ("epoch_s", "epoch_ms"):
        number = F.when(text.rlike(r"^-?[0-9]+([.][0-9]+)?([eE][+-]?[0-9]+)?$"), text).cast("decimal(30, 6)")
        micros = number * F.lit(1_000_000 if time_format == "epoch_s" else 1_000)
        return F.call_function("timestamp_micros", micros.cast("long"))
    if time_format == "iso":
        return text.cast("timestamp")
    return F.call_function("try_to_timestamp", text, F.lit(time_format))


def _blank_to_null(column: Column) -> Column:
    trimmed = F.trim(column)
    return F.when(trimmed != "", trimmed)


def _with_event_id(parsed: DataFrame) -> DataFrame:
    """`event_id`: the given id (namespaced), or a hash of the content and its occurrence in the file.

    Identical records within one file are repeats (a user who views an item twice in one
    second): the n-th copy gets its own id. The same record in another file, or the same file
    read again, is a duplicate: its n-th copy hashes to the same id. Shuffle: by source file and
    content hash, for the occurrence number.
    """
    content = _content()
    # Compact keys for the shuffle and the sort (64-bit hashes, not the texts): a collision only
    # numbers two different contents' copies together, and their ids still differ by content.
    copies = Window.partitionBy("source_file", F.xxhash64(content)).orderBy(F.xxhash64("record"))
    occurrence = F.row_number().over(copies) - 1
    hashed = F.substring(F.sha2(F.concat(content, F.lit("#"), occurrence.cast("string")), 256), 1, EVENT_ID_HEX_CHARS)
    return parsed.withColumn("event_id", F.coalesce(F.col("given_event_id"), hashed)).drop("given_event_id")


def _content() -> Column:
    """The parsed row as JSON: what makes two events identical."""
    return F.to_json(
        F.struct(
            "user_id",
            F.call_function("unix_micros", F.col("event_time")).alias("event_time"),
            "event_type",
            "session_id",
            "item_id",
            "category",
            "price",
            "attributes",
        )
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
