"""The table contracts (DESIGN.md, "Tables"): each table's columns and types, stated once.

Writers conform their frames to these schemas before publishing (`conform`: a column missing, extra
or of another type is an error naming it, before any file is written), and the tests compare the
tables they read back against them. Nullability is not part of a contract: Delta readers differ on it.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql.types import (
    ArrayType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from seqrisk.errors import SeqriskError


def _fields(*columns: tuple[str, DataType]) -> StructType:
    return StructType([StructField(name, kind, True) for name, kind in columns])


_TEXT, _INT, _LONG, _REAL, _TIME, _DATE = StringType(), IntegerType(), LongType(), DoubleType(), TimestampType(), DateType()

EVENTS = StructType(
    [
        StructField("event_id", StringType(), False),
        StructField("user_id", StringType(), False),
        StructField("event_time", TimestampType(), False),
        StructField("event_type", StringType(), False),
        StructField("session_id", StringType(), True),
        StructField("item_id", StringType(), True),
        StructField("category", StringType(), True),
        StructField("price", DoubleType(), True),
        StructField("attributes", MapType(StringType(), StringType(), True), False),
        StructField("run_id", StringType(), False),
        StructField("event_date", DateType(), False),
    ]
)

QUARANTINE = StructType(
    [
        StructField("record_id", StringType(), False),  # hash of source file and record: reruns add nothing
        StructField("record", StringType(), True),  # the input record, verbatim
        StructField("reason", StringType(), False),
        StructField("detail", StringType(), True),
        StructField("source_file", StringType(), True),
        StructField("run_id", StringType(), False),
        StructField("quarantined_at", TimestampType(), False),
    ]
)

INGEST_RUNS = StructType(  # one row per ingest run and source file
    [
        StructField("run_id", StringType(), False),
        StructField("source_file", StringType(), False),
        StructField("mapping", StringType(), False),
        StructField("records", LongType(), False),  # = events_written + duplicates + refused + quarantined
        StructField("events_written", LongType(), False),
        StructField("duplicates", LongType(), False),
        StructField("refused", LongType(), False),  # good records not written because the run was refused
        StructField("quarantined", LongType(), False),
        StructField("quarantined_by_reason", MapType(StringType(), LongType(), False), False),
        StructField("status", StringType(), False),  # "ok", or "refused: <why>"
        StructField("ingested_at", TimestampType(), False),
    ]
)


SESSIONS = _fields(
    ("session_id", _TEXT),
    ("user_id", _TEXT),
    ("source_session_id", _TEXT),
    ("session_start", _TIME),
    ("session_end", _TIME),
    ("n_events", _INT),
    ("event_types", ArrayType(_TEXT)),
    ("gaps_s", ArrayType(_REAL)),
    ("event_times", ArrayType(_TIME)),
    ("item_ids", ArrayType(_TEXT)),
    ("categories", ArrayType(_TEXT)),
    ("prices", ArrayType(_REAL)),
    ("duration_s", _REAL),
    ("events_per_minute", _REAL),
    ("type_counts", MapType(_TEXT, _INT)),
    ("distinct_event_types", _INT),
    ("distinct_items", _INT),
    ("distinct_categories", _INT),
    ("cart_count", _INT),
    ("purchase_count", _INT),
    ("purchase_value", _REAL),
    ("gap_mean_s", _REAL),
    ("gap_std_s", _REAL),
    ("gap_cv", _REAL),
    ("gap_min_s", _REAL),
    ("gap_median_s", _REAL),
    ("gap_max_s", _REAL),
    ("start_hour", _INT),
    ("start_weekday", _INT),
    ("sequence_hash", _TEXT),
    ("run_id", _TEXT),
    ("session_date", _DATE),
)

WINDOWS = _fields(
    ("window_id", _TEXT),
    ("session_id", _TEXT),
    ("user_id", _TEXT),
    ("session_start", _TIME),
    ("window_index", _INT),
    ("start_pos", _INT),
    ("n_valid", _INT),
    ("tokens", ArrayType(_INT)),
    ("gap_buckets", ArrayType(_INT)),
    ("run_id", _TEXT),
    ("session_date", _DATE),
)

TOP_EVENT = _fields(("position", _INT), ("event", _TEXT), ("expected", ArrayType(_TEXT)), ("surprise", _REAL))
SESSION_RISK = _fields(
    ("session_id", _TEXT),
    ("user_id", _TEXT),
    ("session_date", _DATE),
    ("session_start", _TIME),
    ("session_end", _TIME),
    ("n_events", _INT),
    ("score", _REAL),
    ("risk_pct", _REAL),
    ("risk_level", _TEXT),
    ("reasons", ArrayType(_TEXT)),
    ("top_events", ArrayType(TOP_EVENT)),
    ("action", _TEXT),
    ("sequence_pct", _REAL),
    ("feature_pct", _REAL),
    ("count_pct", _REAL),
    ("ngram_pct", _REAL),
    ("replay_pct", _REAL),
    ("model_version", _TEXT),
    ("scored_at", _TIME),
    ("run_id", _TEXT),
)

USER_RISK = _fields(
    ("user_id", _TEXT),
    ("as_of_date", _DATE),
    ("n_sessions", _INT),
    ("high_risk_sessions", _LONG),
    ("medium_risk_sessions", _LONG),
    ("max_score", _REAL),
    ("max_risk_pct", _REAL),
    ("typical_risk_pct", _REAL),
    ("top_reasons", ArrayType(_TEXT)),
    ("action", _TEXT),
    ("first_session_start", _TIME),
    ("last_session_start", _TIME),
    ("model_version", _TEXT),
    ("scored_at", _TIME),
    ("run_id", _TEXT),
)

TABLES = {
    "events": EVENTS,
    "quarantine": QUARANTINE,
    "ingest_runs": INGEST_RUNS,
    "sessions": SESSIONS,
    "windows": WINDOWS,
    "session_risk": SESSION_RISK,
    "user_risk": USER_RISK,
}


def columns(table: str, names: tuple[str, ...] | list[str]) -> StructType:
    """Part of a table's contract, in the order of `names` (what a step inside a writer produces)."""
    contract = TABLES[table]
    return StructType([contract[name] for name in names])


def differences(actual: StructType, contract: StructType) -> list[str]:
    """How `actual` departs from `contract`: missing, extra, and mistyped columns (empty when it conforms)."""
    found = {f.name: f.dataType for f in actual.fields}
    wanted = {f.name: f.dataType for f in contract.fields}
    problems = [f"{name} is missing" for name in wanted if name not in found]
    problems += [f"{name} is not in the contract" for name in found if name not in wanted]
    problems += [
        f"{name} is {found[name].simpleString()}, the contract says {kind.simpleString()}"
        for name, kind in wanted.items()
        if name in found and found[name].simpleString() != kind.simpleString()
    ]
    return problems


def conform(df: DataFrame, table: str) -> DataFrame:
    """`df` with the columns of `table`'s contract, in its order; an error naming every difference."""
    contract = TABLES[table]
    problems = differences(df.schema, contract)
    if problems:
        raise SeqriskError(f"the {table} rows do not match the table contract: " + "; ".join(problems))
    return df.select(*contract.fieldNames())
