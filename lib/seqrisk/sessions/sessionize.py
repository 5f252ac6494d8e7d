"""Events into sessions, their vocabulary and windows (the sessionize job's work; DESIGN.md, "Tables").

Sessions follow a source `session_id` when the event has one; otherwise a user's events split on an
inactivity gap. Either way a session longer than `max_events` or `max_duration_minutes` is cut into
pieces. Events are ordered by (`event_time`, `event_id`), so ties break the same way every run.

Shuffles, by name: (1) events by `user_id` to find gaps and session starts, with one window over
each user's history; users with more than `skewed_user_events` events (bots) instead go by
(`user_id`, `event_date`), so the largest unit one task sorts is one user's day, and their sessions
that cross midnight are stitched through a small per-user-day table; (2) events by `session_id` to
build each session's ordered arrays and features. Windows are cut from sessions without a shuffle.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from seqrisk.lake import contracts
from seqrisk.sessions.features import SESSION_ARRAYS, SESSION_FEATURES, with_session_features
from seqrisk.sessions.settings import SessionizeConfig, VocabularyConfig
from seqrisk.sessions.vocabulary import NONE, OTHER_CATEGORY, Vocabulary
from seqrisk.sessions.windows import TOKEN_INPUTS, WINDOW_COLUMNS, windows_mapper

log = logging.getLogger("seqrisk")

SESSION_ID_HEX_CHARS = 24
WINDOW_KEEP = ("session_id", "user_id", "session_start", "session_date")

PIECE = "~"  # a capped session's pieces are "<session id>~<duration piece>.<count piece>" (the first keeps the id)


@dataclass(frozen=True)
class SessionRules:
    gap_s: float
    max_events: int
    max_duration_s: float
    cart_events: tuple[str, ...]
    purchase_events: tuple[str, ...]
    skewed_user_events: int = 1_000_000  # users above this go through the per-day path

    @classmethod
    def from_config(cls, settings: SessionizeConfig) -> SessionRules:
        return cls(
            gap_s=settings.gap_minutes * 60,
            max_events=settings.max_events,
            max_duration_s=settings.max_duration_minutes * 60,
            cart_events=tuple(settings.cart_events),
            purchase_events=tuple(settings.purchase_events),
            skewed_user_events=settings.skewed_user_events,
        )


# -- the job ------------------------------------------------------------------------------------


def learn_vocabulary(events: DataFrame, settings: VocabularyConfig, gap_buckets_s: Sequence[float]) -> Vocabulary:
    """Token counts over `events` (small aggregates brought to the driver: one row per token or bucket)."""
    top: list[str] = []
    edges: list[float] = []
    token = F.col("event_type")
    if settings.composite == "category":
        ranked = events.filter(F.col("category").isNotNull()).groupBy("category").count()
        top = [r["category"] for r in ranked.orderBy(F.desc("count"), "category").limit(settings.top_categories).collect()]
        bucket = (
            F.when(F.col("category").isNull(), F.lit(NONE))
            .when(F.col("category").isin(top), F.col("category"))
            .otherwise(F.lit(OTHER_CATEGORY))
        )
        token = F.concat_ws("|", "event_type", bucket)
    elif settings.composite == "price":
        has_price = F.col("price").isNotNull() & ~F.isnan("price")  # Spark orders NaN above every number
        found = (
            events.filter(has_price)
            .select(F.percentile_approx("price", list(settings.price_quantiles), 10_000).alias("q"))
            .collect()[0]["q"]
        )
        edges = sorted(set(found or []))
        at_or_above = reduce(operator.add, [F.when(F.col("price") >= F.lit(edge), 1).otherwise(0) for edge in edges], F.lit(0))
        bucket = F.when(has_price, F.concat(F.lit("p"), at_or_above.cast("string"))).otherwise(F.lit(NONE))
        token = F.concat_ws("|", "event_type", bucket)
    counts = {r["token"]: r["count"] for r in events.groupBy(token.alias("token")).count().collect()}
    return Vocabulary.learn(
        counts,
        min_count=settings.min_count,
        max_size=settings.max_size,
        composite=settings.composite,
        top_categories=top,
        price_edges=edges,
        gap_buckets_s=gap_buckets_s,
    )


# -- events to sessions (plain DataFrame transforms) --------------------------------------------


def assign_sessions(events: DataFrame, rules: SessionRules) -> DataFrame:
    """Each event with the `session_id` of its (possibly split) session."""
    given = events.filter(F.col("session_id").isNotNull())
    inferred = events.filter(F.col("session_id").isNull())
    columns = [*events.columns, "source_session_id"]
    heavy = skewed_users(inferred, rules.skewed_user_events)
    light_users = inferred.filter(~F.col("user_id").isin(heavy)) if heavy else inferred
    parts = [_given_sessions(given, rules), _gap_sessions_per_user(light_users, rules)]
    if heavy:
        parts.append(_gap_sessions_per_day(inferred.filter(F.col("user_id").isin(heavy)), rules))
    result = parts[0].select(*columns)
    for part in parts[1:]:
        result = result.unionByName(part.select(*columns))
    return result


def skewed_users(events: DataFrame, threshold: int) -> list[str]:
    """Users with more than `threshold` events (a few bots at most: at most events / threshold)."""
    counts = events.groupBy("user_id").count().filter(F.col("count") > threshold)
    return [row["user_id"] for row in counts.select("user_id").collect()]


def _seconds(column: str) -> Column:
    return F.call_function("unix_micros", F.col(column)) / 1_000_000


def _given_sessions(events: DataFrame, rules: SessionRules) -> DataFrame:
    """Sessions the source named: split only by the caps."""
    key = ["user_id", "session_id"]
    ordered = Window.partitionBy(*key).orderBy("event_time", "event_id")
    whole = Window.partitionBy(*key).rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    with_pos = (
        events.withColumn("ts", _seconds("event_time"))
        .withColumn("index", F.row_number().over(ordered) - 1)
        .withColumn("start_ts", F.min("ts").over(whole))
    )
    piece = _piece(F.col("index"), F.col("ts") - F.col("start_ts"), rules)
    return with_pos.withColumn("source_session_id", F.col("session_id")).withColumn(
        "session_id",
        F.when(piece == "0.0", F.col("session_id")).otherwise(F.concat_ws(PIECE, F.col("session_id"), piece)),
    )


def source_session_of(session_id: Column) -> Column:
    """The source's session a stored session belongs to: itself, or the one a capped piece was cut from."""
    return F.regexp_replace(session_id, PIECE + r"\d+\.\d+$", "")


def _gap_sessions_per_user(events: DataFrame, rules: SessionRules) -> DataFrame:
    """Sessions split on inactivity, with one window over each user's whole history."""
    ordered = Window.partitionBy("user_id").orderBy("event_time", "event_id")
    so_far = ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    e = events.withColumn("ts", _seconds("event_time")).withColumn("rn", F.row_number().over(ordered))
    prev_ts = F.lag("ts").over(ordered)
    e = e.withColumn("is_start", prev_ts.isNull() | (F.col("ts") - prev_ts > rules.gap_s))
    e = e.withColumn("start_ts", F.last(F.when(F.col("is_start"), F.col("ts")), ignorenulls=True).over(so_far))
    e = e.withColumn("index", F.col("rn") - F.last(F.when(F.col("is_start"), F.col("rn")), ignorenulls=True).over(so_far))
    return _with_gap_session_id(e, rules)


def _gap_sessions_per_day(events: DataFrame, rules: SessionRules) -> DataFrame:
    """Sessions split on inactivity, computed per user-day and stitched across midnight (skewed users)."""
    user_day = ["user_id", "event_date"]
    in_day = Window.partitionBy(*user_day).orderBy("event_time", "event_id")
    day_so_far = in_day.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    by_day = Window.partitionBy("user_id").orderBy("event_date")
    days_so_far = by_day.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    days_before = by_day.rowsBetween(Window.unboundedPreceding, -1)

    e = (
        events.withColumn("ts", _seconds("event_time"))
        .withColumn("prev_ts_in_day", F.lag("ts").over(in_day))
        .withColumn("rn", F.row_number().over(in_day))
    )
    # The last event of the user's previous active day, for the first event of each day.
    day_ends = e.groupBy(*user_day).agg(F.max("ts").alias("day_last_ts"))
    day_ends = day_ends.withColumn("prev_day_last_ts", F.lag("day_last_ts").over(by_day)).drop("day_last_ts")
    e = e.join(day_ends, on=user_day, how="left")
    prev_ts = F.coalesce("prev_ts_in_day", "prev_day_last_ts")
    e = e.withColumn("is_start", prev_ts.isNull() | (F.col("ts") - prev_ts > rules.gap_s))
    e = e.withColumn("start_in_day", F.last(F.when(F.col("is_start"), F.col("ts")), ignorenulls=True).over(day_so_far))
    e = e.withColumn("start_rn_in_day", F.last(F.when(F.col("is_start"), F.col("rn")), ignorenulls=True).over(day_so_far))

    # Per user-day: the session still open at the day's end, and how many of its events the day holds.
    days = e.groupBy(*user_day).agg(
        F.count("*").alias("n"),
        F.max(F.when(F.col("is_start"), F.col("ts"))).alias("last_start_ts"),
        F.max(F.when(F.col("is_start"), F.col("rn"))).alias("last_start_rn"),
    )
    has_start = F.col("last_start_ts").isNotNull()
    days = (
        days.withColumn("tail", F.when(has_start, F.col("n") - F.col("last_start_rn") + 1).otherwise(F.col("n")))
        .withColumn("open_group", F.sum(has_start.cast("int")).over(days_so_far))
        .withColumn(
            "open_count",
            F.sum("tail").over(
                Window.partitionBy("user_id", "open_group").orderBy("event_date").rowsBetween(Window.unboundedPreceding, Window.currentRow)
            ),
        )
        .withColumn("carried_start_ts", F.last("last_start_ts", ignorenulls=True).over(days_before))
        .withColumn("carried_count", F.lag("open_count").over(by_day))
        .select(*user_day, "carried_start_ts", "carried_count")
    )
    e = e.join(days, on=user_day, how="left")
    started_today = F.col("start_in_day").isNotNull()
    start_ts = F.when(started_today, F.col("start_in_day")).otherwise(F.col("carried_start_ts"))
    index = F.when(started_today, F.col("rn") - F.col("start_rn_in_day")).otherwise(F.col("carried_count") + F.col("rn") - 1)
    return _with_gap_session_id(e.withColumn("start_ts", start_ts).withColumn("index", index), rules)


def _with_gap_session_id(e: DataFrame, rules: SessionRules) -> DataFrame:
    piece = _piece(F.col("index"), F.col("ts") - F.col("start_ts"), rules)
    key = F.concat_ws("|", "user_id", F.col("start_ts").cast("decimal(20,6)").cast("string"), piece)
    return e.withColumn("source_session_id", F.lit(None).cast("string")).withColumn(
        "session_id", F.concat(F.lit("s"), F.substring(F.sha2(key, 256), 1, SESSION_ID_HEX_CHARS))
    )


def _piece(index: Column, since_start_s: Column, rules: SessionRules) -> Column:
    """Which piece of a capped session an event falls in: "<duration piece>.<count piece>"."""
    by_time = F.floor(since_start_s / rules.max_duration_s).cast("int")
    by_count = F.floor(index / rules.max_events).cast("int")
    return F.concat_ws(".", by_time.cast("string"), by_count.cast("string"))


def build_sessions(events: DataFrame, rules: SessionRules, run_id: str) -> DataFrame:
    """One row per session: ids, times, ordered arrays, and features. Shuffle: by `session_id`.

    Every feature is computed from the session's time-ordered steps, so it does not depend on the
    order rows arrive in after the shuffle (floating-point sums included).
    """
    ordered = Window.partitionBy("session_id").orderBy("event_time", "event_id")
    events = events.withColumn("gap_s", _seconds("event_time") - F.lag(_seconds("event_time")).over(ordered))
    step = F.struct("event_time", "event_id", "event_type", "item_id", "category", "price", "gap_s")
    grouped = events.groupBy("session_id", "user_id").agg(
        F.first("source_session_id", ignorenulls=True).alias("source_session_id"),
        F.sort_array(F.collect_list(step)).alias("steps"),
    )
    arrays = grouped.select(
        "session_id",
        "user_id",
        "source_session_id",
        F.col("steps")[0]["event_time"].alias("session_start"),
        F.element_at("steps", -1)["event_time"].alias("session_end"),
        F.size("steps").alias("n_events"),
        F.col("steps.event_type").alias("event_types"),
        F.transform("steps", lambda s, i: F.when(i > 0, s["gap_s"])).alias("gaps_s"),
        F.col("steps.event_time").alias("event_times"),
        F.col("steps.item_id").alias("item_ids"),
        F.col("steps.category").alias("categories"),
        F.col("steps.price").alias("prices"),
    )
    return with_session_features(arrays, rules.cart_events, rules.purchase_events).select(
        "session_id",
        "user_id",
        "source_session_id",
        "session_start",
        "session_end",
        "n_events",
        *SESSION_ARRAYS,
        *SESSION_FEATURES,
        F.lit(run_id).alias("run_id"),
        F.to_date("session_start").alias("session_date"),
    )


def cut_windows(sessions: DataFrame, vocabulary: Vocabulary, length: int, stride: int, run_id: str) -> DataFrame:
    """Windows for each session, cut by `windows.cut` in Python workers (no shuffle)."""
    columns = sessions.select(*WINDOW_KEEP, *TOKEN_INPUTS)
    mapper = windows_mapper(vocabulary, length, stride, WINDOW_KEEP)
    windows = columns.mapInPandas(mapper, contracts.columns("windows", [*WINDOW_KEEP, *WINDOW_COLUMNS]))
    window_id = F.concat_ws(":", "session_id", F.col("window_index").cast("string"))
    return windows.select(
        window_id.alias("window_id"), *[c for c in windows.columns if c != "session_date"], F.lit(run_id).alias("run_id"), "session_date"
    )
