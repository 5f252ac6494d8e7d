"""`validate`: each raw record becomes an event or gets the first reason it must be rejected."""

from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from seqrisk.ingest.settings import ColumnMap, SourceMapping, TimeRange
from seqrisk.ingest.validation import QUARANTINE_REASONS, Limits, events_of, parse_time, quarantine_of, validate

UTC = UTC
LIMITS = Limits(min_time=datetime(2000, 1, 1, tzinfo=UTC), max_future=timedelta(hours=24), max_price=1000.0, max_field_chars=30)
WRITTEN = datetime(2029, 12, 31)  # every raw row's file time: the latest plausible event time is a day later
MAPPING = SourceMapping(
    format="csv",
    columns=ColumnMap(user_id="u", event_time="t", event_type="e", item_id="i", price="p"),
    time_format="iso",
    attributes=["brand"],
)
RAW_SCHEMA = "_record string, _source_file string, _file_time timestamp, _malformed string, _source struct<u:string,t:string,e:string,i:string,p:string,brand:string>"


def raw(spark, *records):
    """Raw rows as a reader hands them over: (u, t, e, i, p, brand), optionally malformed."""
    rows = []
    for n, record in enumerate(records):
        malformed = record[6] if len(record) > 6 else None
        rows.append((f"line {n:02d}", "f.csv", WRITTEN, malformed, tuple(record[:6])))
    return spark.createDataFrame(rows, RAW_SCHEMA)


def reasons(spark, *records, mapping=MAPPING):
    out = validate(raw(spark, *records), mapping, LIMITS, "src").orderBy("record")
    return [(r.reason, r.detail) for r in out.collect()]


def test_good_records_become_events_with_every_field_parsed(spark):
    df = raw(spark, (" u1 ", "2024-05-01 10:00:00 UTC", "view", "i9", "12.50", "acme"), ("u2", "2024-05-02T00:00:01Z", "buy", "", "", ""))
    events = events_of(validate(df, MAPPING, LIMITS, "src"), "run-1").drop("event_id", "source_file")
    expected = spark.createDataFrame(
        [
            Row(
                user_id="u1",
                event_time=datetime(2024, 5, 1, 10),
                event_type="view",
                session_id=None,
                item_id="i9",
                category=None,
                price=12.5,
                attributes={"brand": "acme"},
                run_id="run-1",
                event_date=datetime(2024, 5, 1).date(),
            ),
            Row(
                user_id="u2",
                event_time=datetime(2024, 5, 2, 0, 0, 1),
                event_type="buy",
                session_id=None,
                item_id=None,
                category=None,
                price=None,
                attributes={},
                run_id="run-1",
                event_date=datetime(2024, 5, 2).date(),
            ),
        ],
        events.schema,
    )
    assertDataFrameEqual(events, expected)


def test_every_reason_is_produced_by_its_own_case_and_checked_in_order(spark):
    got = reasons(
        spark,
        ("u", "2024-05-01", "view", "i", "1", "b", "expected 6 fields"),  # line 0
        ("", "2024-05-01", "view", "i", "1", "b"),  # 1
        ("u", "2024-05-01", "  ", "i", "1", "b"),  # 2
        ("u", None, "view", "i", "1", "b"),  # 3
        ("u", "yesterday", "view", "i", "1", "b"),  # 4
        ("u", "1999-12-31 23:59:59", "view", "i", "1", "b"),  # 5
        ("u", "2024-05-01", "view", "i", "abc", "b"),  # 6
        ("u", "2024-05-01", "view", "i", "-1", "b"),  # 7
        ("u", "2024-05-01", "view", "i", "NaN", "b"),  # 8
        ("u", "2024-05-01", "view", "i", "1000.01", "b"),  # 9
        ("", None, "", "i", "x", "b", "blank line"),  # 10: malformed wins over everything else
        ("", "2024-05-01", "view", "i", "1", "b" * 31),  # 11: too long wins over missing fields
    )
    assert got == [
        ("malformed_record", "expected 6 fields"),
        ("missing_user_id", "column 'u' is empty"),
        ("missing_event_type", "column 'e' is empty"),
        ("missing_event_time", "column 't' is empty"),
        ("bad_event_time", 'cannot parse ["yesterday"] as iso'),
        ("event_time_out_of_range", "event time 1999-12-31T23:59:59Z is outside [2000-01-01T00:00:00Z, 2030-01-01T00:00:00Z)"),
        ("bad_price", 'price ["abc"] is not a valid amount'),
        ("bad_price", 'price ["-1"] is not a valid amount'),
        ("bad_price", 'price ["NaN"] is not a valid amount'),
        ("bad_price", 'price ["1000.01"] is not a valid amount'),
        ("malformed_record", "blank line"),
        ("field_too_long", 'column ["brand"] holds 31 characters, over ingest.max_field_chars (30)'),
    ]
    assert {r for r, _ in got} == set(QUARANTINE_REASONS)


def test_a_mapping_time_range_narrows_the_plausible_range(spark):
    mapping = MAPPING.model_copy(
        update={"time_range": TimeRange(start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2024, 2, 1, tzinfo=UTC))}
    )
    got = reasons(
        spark,
        ("u", "2023-12-31T23:59:59Z", "v", "i", "1", "b"),
        ("u", "2024-01-15", "v", "i", "1", "b"),
        ("u", "2024-02-01", "v", "i", "1", "b"),
        mapping=mapping,
    )
    assert [r for r, _ in got] == ["event_time_out_of_range", None, "event_time_out_of_range"]


@pytest.mark.parametrize(
    "fmt, text, expected",
    [
        ("epoch_s", "1511544070", datetime(2017, 11, 24, 17, 21, 10)),
        ("epoch_s", "1511544070.25", datetime(2017, 11, 24, 17, 21, 10, 250000)),
        ("epoch_ms", "1511544070123", datetime(2017, 11, 24, 17, 21, 10, 123000)),
        ("epoch_s", "1.5115440705E9", datetime(2017, 11, 24, 17, 21, 10, 500000)),  # a JSON float, as Spark hands it over
        ("epoch_s", "15115x", None),
        ("epoch_s", "99999999999999999999999999", None),
        ("iso", "2019-10-01 00:00:00 UTC", datetime(2019, 10, 1)),
        ("iso", "2019-10-01T02:00:00+02:00", datetime(2019, 10, 1)),
        ("iso", "2019-10-01T00:00:00.123456Z", datetime(2019, 10, 1, 0, 0, 0, 123456)),
        ("iso", "2019-13-01", None),
        ("dd/MM/yyyy HH:mm", "01/10/2019 13:45", datetime(2019, 10, 1, 13, 45)),
        ("dd/MM/yyyy HH:mm", "2019-10-01", None),
    ],
)
def test_time_formats(spark, fmt, text, expected):
    from pyspark.sql import functions as F

    got = spark.createDataFrame([(text,)], "t string").select(parse_time(F.col("t"), fmt).alias("ts")).first().ts
    assert got == expected


def test_identical_records_are_repeats_within_a_file_and_duplicates_across_files(spark):
    view = ("u", "2024-05-01", "view", "i", "1", "b")
    df = raw(spark, view, view, ("u", "2024-05-01 00:00:00.000001", "view", "i", "1", "b"))
    other_file = raw(spark, view).withColumn("_source_file", F.lit("g.csv"))
    ids = [r.event_id for r in validate(df, MAPPING, LIMITS, "src").orderBy("record").collect()]
    assert len(set(ids)) == 3 and all(len(i) == 32 for i in ids)  # two views in one second are two events
    again = validate(df, MAPPING, LIMITS, "src").orderBy("record").collect()  # the same file read again
    assert [r.event_id for r in again] == ids
    assert validate(other_file, MAPPING, LIMITS, "src").first().event_id in ids[:2]  # a copy in another file


def test_a_given_event_id_is_kept_within_its_source_namespace_and_placeholders_are_no_id(spark):
    mapping = MAPPING.model_copy(update={"columns": MAPPING.columns.model_copy(update={"event_id": "i"})})
    df = raw(
        spark,
        ("u", "2024-05-01", "view", "evt-7", "1", "b"),
        ("u", "2024-05-01", "view", "N/A", "1", "b"),
        ("u", "2024-05-01", "buy", "0", "1", "b"),
    )
    ids = [r.event_id for r in validate(df, mapping, LIMITS, "shop_a").orderBy("record").collect()]
    assert ids[0] == "shop_a:evt-7"
    assert len(ids[1]) == len(ids[2]) == 32 and ids[1] != ids[2]  # hashed from content, not merged into one "id"
    assert validate(df, mapping, LIMITS, "shop_b").orderBy("record").first().event_id == "shop_b:evt-7"


def test_the_latest_plausible_time_follows_the_file_not_the_day_the_job_runs(spark):
    df = raw(spark, ("u", "2029-12-31T23:59:59Z", "view", "i", "1", "b"), ("u", "2030-01-01T00:00:00Z", "view", "i", "1", "b"))
    older = df.withColumn("_file_time", F.lit(datetime(2029, 12, 30)).cast("timestamp"))
    assert [r.reason for r in validate(df, MAPPING, LIMITS, "src").orderBy("record").collect()] == [None, "event_time_out_of_range"]
    assert [r.reason for r in validate(older, MAPPING, LIMITS, "src").orderBy("record").collect()] == ["event_time_out_of_range"] * 2


def test_quarantine_rows_keep_the_record_verbatim_with_a_stable_id(spark):
    df = validate(raw(spark, ("", "2024-05-01", "view", "i", "1", "b")), MAPPING, LIMITS, "src")
    at = datetime(2024, 6, 1, tzinfo=UTC)
    first = quarantine_of(df, "run-1", at).first()
    again = quarantine_of(df, "run-2", at).first()
    assert (first.record, first.reason, first.source_file, first.run_id) == ("line 00", "missing_user_id", "f.csv", "run-1")
    assert first.record_id == again.record_id
