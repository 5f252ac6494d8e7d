"""`validate`: each raw record becomes an event or gets the first reason it must be rejected."""
from datetime import datetime, timezone

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from seqrisk.config import ColumnMap, Mapping, TimeRange
from seqrisk.events import REASONS, Limits, events_of, parse_time, quarantine_of, validate

UTC = timezone.utc
LIMITS = Limits(min_time=datetime(2000, 1, 1, tzinfo=UTC), max_time=datetime(2030, 1, 1, tzinfo=UTC), max_price=1000.0)
MAPPING = Mapping(
    format="csv",
    columns=ColumnMap(user_id="u", event_time="t", event_type="e", item_id="i", price="p"),
    time_format="iso",
    attributes=["brand"],
)
RAW_SCHEMA = "_record string, _source_file string, _malformed string, _source struct<u:string,t:string,e:string,i:string,p:string,brand:string>"


def raw(spark, *records):
    """Raw rows as a reader hands them over: (u, t, e, i, p, brand), optionally malformed."""
    rows = []
    for n, record in enumerate(records):
        malformed = record[6] if len(record) > 6 else None
        rows.append((f"line {n:02d}", "f.csv", malformed, tuple(record[:6])))
    return spark.createDataFrame(rows, RAW_SCHEMA)


def reasons(spark, *records, mapping=MAPPING):
    out = validate(raw(spark, *records), mapping, LIMITS).orderBy("record")
    return [(r.reason, r.detail) for r in out.collect()]


def test_good_records_become_events_with_every_field_parsed(spark):
    df = raw(spark, (" u1 ", "2024-05-01 10:00:00 UTC", "view", "i9", "12.50", "acme"), ("u2", "2024-05-02T00:00:01Z", "buy", "", "", ""))
    events = events_of(validate(df, MAPPING, LIMITS), "run-1").drop("event_id", "source_file")
    expected = spark.createDataFrame(
        [
            Row(user_id="u1", event_time=datetime(2024, 5, 1, 10), event_type="view", session_id=None, item_id="i9", category=None, price=12.5, attributes={"brand": "acme"}, run_id="run-1", event_date=datetime(2024, 5, 1).date()),
            Row(user_id="u2", event_time=datetime(2024, 5, 2, 0, 0, 1), event_type="buy", session_id=None, item_id=None, category=None, price=None, attributes={}, run_id="run-1", event_date=datetime(2024, 5, 2).date()),
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
    ]
    assert {r for r, _ in got} == set(REASONS)


def test_a_mapping_time_range_narrows_the_plausible_range(spark):
    mapping = MAPPING.model_copy(update={"time_range": TimeRange(start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2024, 2, 1, tzinfo=UTC))})
    got = reasons(spark, ("u", "2023-12-31T23:59:59Z", "v", "i", "1", "b"), ("u", "2024-01-15", "v", "i", "1", "b"), ("u", "2024-02-01", "v", "i", "1", "b"), mapping=mapping)
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


def test_exact_duplicates_share_an_event_id_and_different_events_do_not(spark):
    df = raw(spark, ("u", "2024-05-01", "view", "i", "1", "b"), ("u", "2024-05-01", "view", "i", "1", "b"), ("u", "2024-05-01 00:00:00.000001", "view", "i", "1", "b"))
    ids = [r.event_id for r in validate(df, MAPPING, LIMITS).orderBy("record").collect()]
    assert ids[0] == ids[1] != ids[2]
    assert len(ids[0]) == 32


def test_a_given_event_id_is_kept(spark):
    mapping = MAPPING.model_copy(update={"columns": MAPPING.columns.model_copy(update={"event_id": "i"})})
    df = raw(spark, ("u", "2024-05-01", "view", "evt-7", "1", "b"))
    assert validate(df, mapping, LIMITS).first().event_id == "evt-7"


def test_quarantine_rows_keep_the_record_verbatim_with_a_stable_id(spark):
    df = validate(raw(spark, ("", "2024-05-01", "view", "i", "1", "b")), MAPPING, LIMITS)
    at = datetime(2024, 6, 1, tzinfo=UTC)
    first = quarantine_of(df, "run-1", at).first()
    again = quarantine_of(df, "run-2", at).first()
    assert (first.record, first.reason, first.source_file, first.run_id) == ("line 00", "missing_user_id", "f.csv", "run-1")
    assert first.record_id == again.record_id
