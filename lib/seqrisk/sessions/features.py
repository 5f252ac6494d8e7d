"""Session features: computed in Spark when sessions are built, and the feature detector's matrix of them.

`with_session_features` adds the `sessions` table's numeric features to the ordered arrays of each
session (volumes, rates, timing statistics, a sequence hash). `feature_matrix` turns rows of the `sessions` table (pandas) into numbers: log-scaled volumes and
timings, the share of each event type in the vocabulary, the hour as a point on a circle, and how
many users replayed the same sequence. Every detector here follows scikit-learn's conventions and
`risk` returns higher-means-riskier scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

VOLUMES = (
    "n_events",
    "duration_s",
    "events_per_minute",
    "distinct_event_types",
    "distinct_items",
    "distinct_categories",
    "cart_count",
    "purchase_count",
    "purchase_value",
    "gap_mean_s",
    "gap_std_s",
    "gap_min_s",
    "gap_median_s",
    "gap_max_s",
    "users_with_sequence",
)
RATIOS = ("gap_cv",)
# The gap CV of a session with fewer than two gaps is undefined; the feature detector reads it as a
# Poisson process's (1: neither regular nor bursty). Read as 0 it made the shortest sessions (45 % of a
# real clickstream) look as regular as a metronome, so a script's exactly regular clicks stood out from
# nothing (docs/detectors.md, "Scripted replays").
UNDEFINED_RATIO = 1.0
FEATURE_COLUMNS = (*VOLUMES, *RATIOS, "start_hour", "type_counts")


SESSION_ARRAYS = ("event_types", "gaps_s", "event_times", "item_ids", "categories", "prices")
SESSION_FEATURES = (
    "duration_s",
    "events_per_minute",
    "type_counts",
    "distinct_event_types",
    "distinct_items",
    "distinct_categories",
    "cart_count",
    "purchase_count",
    "purchase_value",
    "gap_mean_s",
    "gap_std_s",
    "gap_cv",
    "gap_min_s",
    "gap_median_s",
    "gap_max_s",
    "start_hour",
    "start_weekday",
    "sequence_hash",
)


def with_session_features(sessions: DataFrame, cart_events: Sequence[str], purchase_events: Sequence[str]) -> DataFrame:
    """The `sessions` table's features from the ordered arrays (Spark), in stages so each intermediate is computed once."""
    types = F.col("event_types")
    staged = sessions.select(
        "*",
        F.filter("gaps_s", lambda g: g.isNotNull()).alias("_gaps"),
        F.array_sort(F.array_distinct(types)).alias("_types"),
        F.filter(F.arrays_zip(types.alias("t"), F.col("prices").alias("p")), lambda s: s["t"].isin(list(purchase_events))).alias(
            "_purchases"
        ),
        ((F.call_function("unix_micros", F.col("session_end")) - F.call_function("unix_micros", F.col("session_start"))) / 1e6).alias(
            "duration_s"
        ),
    )
    staged = staged.select(
        "*",
        F.size("_gaps").alias("_n_gaps"),
        F.array_sort("_gaps").alias("_sorted_gaps"),
        F.aggregate("_gaps", F.lit(0.0), lambda acc, g: acc + g).alias("_gap_sum"),
    )
    staged = staged.select("*", F.when(F.col("_n_gaps") > 0, F.col("_gap_sum") / F.col("_n_gaps")).alias("gap_mean_s"))
    squares = F.aggregate("_gaps", F.lit(0.0), lambda acc, g: acc + (g - F.col("gap_mean_s")) * (g - F.col("gap_mean_s")))
    staged = staged.select("*", F.when(F.col("_n_gaps") > 1, F.sqrt(squares / (F.col("_n_gaps") - 1))).alias("gap_std_s"))
    n_gaps, sorted_gaps = F.col("_n_gaps"), F.col("_sorted_gaps")
    middle = (
        F.element_at(sorted_gaps, F.floor((n_gaps + 1) / 2).cast("int")) + F.element_at(sorted_gaps, F.ceil((n_gaps + 1) / 2).cast("int"))
    ) / 2
    return staged.select(
        "*",
        (F.col("n_events") * 60.0 / F.greatest("duration_s", F.lit(1.0))).alias("events_per_minute"),
        F.map_from_arrays("_types", F.transform("_types", lambda t: F.size(F.filter(types, lambda x: x == t)))).alias("type_counts"),
        F.size("_types").alias("distinct_event_types"),
        F.size(F.array_distinct(F.filter("item_ids", lambda x: x.isNotNull()))).alias("distinct_items"),
        F.size(F.array_distinct(F.filter("categories", lambda x: x.isNotNull()))).alias("distinct_categories"),
        F.size(F.filter(types, lambda t: t.isin(list(cart_events)))).alias("cart_count"),
        F.size("_purchases").alias("purchase_count"),
        F.aggregate("_purchases", F.lit(0.0), lambda acc, s: acc + F.coalesce(s["p"], F.lit(0.0))).alias("purchase_value"),
        F.when(n_gaps > 1, F.col("gap_std_s") / F.col("gap_mean_s")).alias("gap_cv"),
        F.element_at(sorted_gaps, 1).alias("gap_min_s"),
        F.when(n_gaps > 0, middle).alias("gap_median_s"),
        F.element_at(sorted_gaps, -1).alias("gap_max_s"),
        F.hour("session_start").alias("start_hour"),
        F.dayofweek("session_start").alias("start_weekday"),
        F.sha2(F.to_json(F.arrays_zip(types, F.col("item_ids"))), 256).substr(1, 32).alias("sequence_hash"),
    )


def with_sequence_users(sessions: DataFrame) -> DataFrame:
    """Add `users_with_sequence`: how many distinct users played this exact (type, item) sequence.

    Shuffles: a distinct count by (`sequence_hash`, `user_id`), then by `sequence_hash` with
    partial aggregation, so a hash that millions of sessions share (every one-event view of a
    popular item) is counted in pieces; the join back is by `sequence_hash` (adaptive execution
    splits a skewed partition). No task ever holds a set of users.
    """
    users = sessions.groupBy("sequence_hash").agg(F.countDistinct("user_id").cast("int").alias("users_with_sequence"))
    return sessions.join(users, on="sequence_hash", how="left")


def item_revisits() -> Column:
    """A session's events on an item it had already (events with an item minus its distinct items), computed in Spark.

    Derived when the scorer reads sessions (`scoring.scorer_input`), so tables written before it need no rewrite.
    """
    items = F.filter("item_ids", lambda item: item.isNotNull())
    return F.coalesce(F.size(items) - F.size(F.array_distinct(items)), F.lit(0)).cast("int").alias("item_revisits")


def shared_sequence_events(sessions: pd.DataFrame) -> np.ndarray:
    """Per session, its length when another user played the same (type, item) sequence, else 0.

    Users share short sequences by chance (one view of a popular item), long ones almost never: of a
    real clickstream's normal sessions, 7 in 14,098 have 5 events or more and share them with
    another user; its scripted replays all do (docs/detectors.md, "Scripted replays"). How many
    users share it says less than how long it is.
    """
    shared = sessions["users_with_sequence"].astype(float).fillna(1.0).to_numpy() >= 2
    return np.where(shared, sessions["n_events"].astype(float).to_numpy(), 0.0)


def feature_matrix(sessions: pd.DataFrame, event_types: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """(n_sessions, n_features) floats and their names; `event_types` fixes the type-share columns."""
    columns, names = [], []
    for name in VOLUMES:
        columns.append(np.log1p(sessions[name].astype(float).fillna(0.0).clip(lower=0.0)))
        names.append(f"log1p_{name}")
    for name in RATIOS:
        columns.append(sessions[name].astype(float).fillna(UNDEFINED_RATIO))
        names.append(name)
    columns.append(np.log1p(shared_sequence_events(sessions)))
    names.append("log1p_shared_sequence_events")
    angle = 2 * np.pi * sessions["start_hour"].astype(float) / 24
    columns += [np.sin(angle), np.cos(angle)]
    names += ["hour_sin", "hour_cos"]
    n_events = sessions["n_events"].astype(float).clip(lower=1.0)
    counts = sessions["type_counts"].map(lambda m: dict(m) if m is not None else {})
    for kind in event_types:
        columns.append(counts.map(lambda m, k=kind: m.get(k, 0)).astype(float) / n_events)
        names.append(f"share_{kind}")
    return np.column_stack([np.asarray(c, dtype=float) for c in columns]), names


class PCAReconstruction:
    """Risk = squared error of reconstructing a session from the principal components of normal ones."""

    def __init__(self, variance: float = 0.9):
        self.variance = variance

    def fit(self, X: np.ndarray) -> PCAReconstruction:
        self.scaler_ = StandardScaler().fit(X)
        self.pca_ = PCA(n_components=self.variance, svd_solver="full").fit(self.scaler_.transform(X))
        return self

    def risk(self, X: np.ndarray) -> np.ndarray:
        Z = self.scaler_.transform(X)
        return ((Z - self.pca_.inverse_transform(self.pca_.transform(Z))) ** 2).sum(axis=1)


class SklearnDensity:
    """Risk = minus the log-density (or normality score) that a fitted scikit-learn model gives."""

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X: np.ndarray) -> SklearnDensity:
        self.pipeline_ = make_pipeline(StandardScaler(), self.estimator).fit(X)
        return self

    def risk(self, X: np.ndarray) -> np.ndarray:
        return -self.pipeline_.score_samples(X)


def detectors(seed: int) -> dict[str, object]:
    """The candidates for the second detector, by name."""
    return {
        "isolation_forest": SklearnDensity(IsolationForest(n_estimators=200, random_state=seed)),
        "pca_reconstruction": PCAReconstruction(0.9),
        "gaussian_mixture": SklearnDensity(GaussianMixture(n_components=8, covariance_type="full", random_state=seed)),
    }
