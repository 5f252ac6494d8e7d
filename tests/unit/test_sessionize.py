"""Sessions from hand-written events whose sessions, features and windows are known exactly."""

from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from seqrisk.lake.contracts import EVENTS as EVENTS_SCHEMA
from seqrisk.sessions.sessionize import SessionRules, assign_sessions, build_sessions, learn_vocabulary
from seqrisk.sessions.settings import SessionizeConfig, VocabularyConfig

RULES = SessionRules(gap_s=1800, max_events=500, max_duration_s=4 * 3600, cart_events=("cart",), purchase_events=("buy",))


@pytest.fixture(params=["per_user", "per_day"])
def rules(request):
    """Every case runs twice: users in one window over their history, and as skewed users, day by day."""
    return replace(RULES, skewed_user_events=0 if request.param == "per_day" else 10**9)


T0 = datetime(2024, 5, 1, 10, 0, 0)


def events(spark, *rows):
    """rows: (user, seconds after T0, type[, session_id[, event_id[, price[, item]]]])"""
    out = []
    for n, row in enumerate(rows):
        user, offset, kind = row[:3]
        sid = row[3] if len(row) > 3 else None
        eid = row[4] if len(row) > 4 else f"e{n:03d}"
        price = row[5] if len(row) > 5 else None
        item = row[6] if len(row) > 6 else f"i{n}"
        t = T0 + timedelta(seconds=offset)
        out.append((eid, user, t, kind, sid, item, "c1", price, {}, "r", t.date()))
    return spark.createDataFrame(out, EVENTS_SCHEMA)


SESSION_SHAPE = "user_id string, session_start timestamp, n_events int, event_types array<string>"


def sessions_of(df, rules):
    """The built sessions' users, starts, sizes and event types (a DataFrame)."""
    return build_sessions(assign_sessions(df, rules), rules, "run-1").select("user_id", "session_start", "n_events", "event_types")


def expected_sessions(spark, *rows):
    return spark.createDataFrame([(u, start, n, list(types)) for u, start, n, types in rows], SESSION_SHAPE)


def sizes(df, rules) -> list[int]:
    return [r.n_events for r in sessions_of(df, rules).orderBy("session_start").collect()]


def test_a_gap_of_exactly_the_limit_continues_the_session_and_one_second_more_ends_it(spark, rules):
    df = events(spark, ("u", 0, "view"), ("u", 1800, "view"), ("u", 3601, "buy"))
    assertDataFrameEqual(
        sessions_of(df, rules),
        expected_sessions(spark, ("u", T0, 2, ("view", "view")), ("u", T0 + timedelta(seconds=3601), 1, ("buy",))),
    )


def test_ties_in_time_break_by_event_id(spark, rules):
    df = events(spark, ("u", 0, "second", None, "e2"), ("u", 0, "first", None, "e1"), ("u", 5, "third", None, "e3"))
    assertDataFrameEqual(sessions_of(df, rules), expected_sessions(spark, ("u", T0, 3, ("first", "second", "third"))))


def test_users_are_sessionized_independently(spark, rules):
    df = events(spark, ("a", 0, "view"), ("b", 60, "view"), ("a", 120, "cart"))
    assertDataFrameEqual(
        sessions_of(df, rules),
        expected_sessions(spark, ("a", T0, 2, ("view", "cart")), ("b", T0 + timedelta(seconds=60), 1, ("view",))),
    )


def test_a_given_session_id_is_followed_whatever_the_gaps(spark, rules):
    df = events(spark, ("u", 0, "view", "s1"), ("u", 7200, "view", "s1"), ("u", 7260, "view", "s2"))
    built = build_sessions(assign_sessions(df, rules), rules, "run-1")
    expected = spark.createDataFrame([("s1", "s1", 2), ("s2", "s2", 1)], "session_id string, source_session_id string, n_events int")
    assertDataFrameEqual(built.select("session_id", "source_session_id", "n_events"), expected)


def test_a_session_crossing_midnight_stays_whole_and_is_dated_by_its_start(spark, rules):
    late = 14 * 3600 - 600  # 23:50
    df = events(spark, ("u", late, "view"), ("u", late + 1200, "cart"), ("u", late + 1500, "buy"))
    built = build_sessions(assign_sessions(df, rules), rules, "run-1").collect()
    assert [(r.n_events, r.session_date) for r in built] == [(3, date(2024, 5, 1))]


def test_long_sessions_are_cut_by_event_count_even_across_midnight(spark, rules):
    rules = replace(rules, max_events=10, max_duration_s=24 * 3600)
    start = 12 * 3600  # 22:00, an event every 10 minutes for four hours: the count carries over midnight
    df = events(spark, *[("u", start + 600 * k, "view") for k in range(25)])
    assert sizes(df, rules) == [10, 10, 5]


def test_long_sessions_are_cut_by_duration(spark, rules):
    rules = replace(rules, max_duration_s=3600)
    df = events(spark, *[("u", 1200 * k, "view") for k in range(8)])  # every 20 minutes for 2h20
    assert sizes(df, rules) == [3, 3, 2]


def test_given_sessions_are_cut_by_the_caps_too(spark, rules):
    rules = replace(rules, max_events=2, max_duration_s=3600)
    df = events(spark, *[("u", 10 * k, "view", "big") for k in range(5)])
    built = build_sessions(assign_sessions(df, rules), rules, "run-1")
    expected = spark.createDataFrame(
        [("big", "big", 2), ("big~0.1", "big", 2), ("big~0.2", "big", 1)], "session_id string, source_session_id string, n_events int"
    )
    assertDataFrameEqual(built.select("session_id", "source_session_id", "n_events"), expected)


def test_a_trace_of_over_a_thousand_events_stays_one_session_at_the_default_caps(spark):
    """A system-call trace (one given id, calls 1 ms apart) is scored whole, not as pieces (docs/decisions.md, "Caps")."""
    defaults = SessionRules.from_config(SessionizeConfig())
    df = events(spark, *[("u", k / 1000, "call", "trace") for k in range(1200)])
    built = build_sessions(assign_sessions(df, defaults), defaults, "run-1").collect()
    assert [(r.session_id, r.n_events) for r in built] == [("trace", 1200)]


def test_session_features_are_exact(spark, rules):
    df = events(
        spark,
        ("u", 0, "view"),
        ("u", 10, "cart", None, "e1", 5.0),
        ("u", 40, "buy", None, "e2", 5.0),
        ("u", 100, "buy", None, "e3", 2.5),
    )
    row = build_sessions(assign_sessions(df, rules), rules, "run-1").drop("session_id").collect()[0]
    assert (row.n_events, row.duration_s, row.events_per_minute) == (4, 100.0, 2.4)
    assert row.gaps_s == [None, 10.0, 30.0, 60.0]
    assert row.type_counts == {"buy": 2, "cart": 1, "view": 1}
    assert (row.cart_count, row.purchase_count, row.purchase_value) == (1, 2, 7.5)
    assert (row.gap_mean_s, row.gap_min_s, row.gap_median_s, row.gap_max_s) == (pytest.approx(100 / 3), 10.0, 30.0, 60.0)
    assert row.gap_std_s == pytest.approx(25.166114784235834)
    assert row.gap_cv == pytest.approx(25.166114784235834 / (100 / 3))
    assert (row.distinct_event_types, row.distinct_items, row.start_hour, row.session_date) == (3, 4, 10, date(2024, 5, 1))


def test_identical_sequences_of_different_users_share_a_sequence_hash(spark, rules):
    df = events(
        spark,
        ("a", 0, "view", None, "a1", None, "x"),
        ("a", 5, "cart", None, "a2", None, "y"),
        ("b", 100, "view", None, "b1", None, "x"),
        ("b", 109, "cart", None, "b2", None, "y"),  # same steps, other rhythm
        ("c", 0, "view", None, "c1", None, "x"),
        ("c", 5, "cart", None, "c2", None, "z"),  # another item
    )
    hashes = {r.user_id: r.sequence_hash for r in build_sessions(assign_sessions(df, rules), rules, "run-1").collect()}
    assert hashes["a"] == hashes["b"] != hashes["c"]


def test_sessions_table_rows_compare_whole(spark, rules):
    df = events(spark, ("u", 0, "view"), ("u", 30, "buy", None, "e1", 9.0))
    built = build_sessions(assign_sessions(df, rules), rules, "run-1").select(
        "user_id",
        "session_start",
        "session_end",
        "n_events",
        "event_types",
        "gaps_s",
        "item_ids",
        "categories",
        "prices",
        "run_id",
        "session_date",
    )
    expected = spark.createDataFrame(
        [
            Row(
                user_id="u",
                session_start=T0,
                session_end=T0 + timedelta(seconds=30),
                n_events=2,
                event_types=["view", "buy"],
                gaps_s=[None, 30.0],
                item_ids=["i0", "i1"],
                categories=["c1", "c1"],
                prices=[None, 9.0],
                run_id="run-1",
                session_date=date(2024, 5, 1),
            )
        ],
        built.schema,
    )
    assertDataFrameEqual(built, expected)


def test_the_spark_composite_token_rules_agree_with_the_vocabulary_the_scorer_encodes_with(spark):
    steps = [
        ("view", "c1", 5.0),
        ("view", "c1", 5.0),
        ("buy", "c1", 0.5),
        ("view", "c2", 40.0),
        ("cart", "c2", 40.0),
        ("view", "c3", 900.0),
        ("view", None, 12.0),
        ("login", None, None),
    ]
    rows = [
        (f"e{n}", "u1", T0 + timedelta(seconds=n), kind, None, f"i{n}", cat, price, {}, "r", T0.date())
        for n, (kind, cat, price) in enumerate(steps)
    ]
    frame = spark.createDataFrame(rows, EVENTS_SCHEMA)
    settings = VocabularyConfig(min_count=1, max_size=100, composite="category", top_categories=2)
    by_category = learn_vocabulary(frame, settings, (1, 10))
    assert by_category.top_categories == ("c1", "c2")
    assert by_category.counts == dict(Counter(by_category.token_text(kind, cat, price) for kind, cat, price in steps))
    assert "view|other" in by_category.counts and "login|none" in by_category.counts

    by_price = learn_vocabulary(frame, settings.model_copy(update={"composite": "price", "price_quantiles": [0.2, 0.8]}), (1, 10))
    assert by_price.price_edges == (5.0, 40.0)  # the 20 % and 80 % points of the seven prices
    assert by_price.counts == dict(Counter(by_price.token_text(kind, cat, price) for kind, cat, price in steps))
    assert {"buy|p0", "view|p1", "view|p2", "login|none"} <= set(by_price.counts)
