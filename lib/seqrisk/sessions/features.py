"""Session features for the second detector, and the detectors compared for it.

`feature_matrix` turns rows of the `sessions` table (pandas) into numbers: log-scaled volumes and
timings, the share of each event type in the vocabulary, the hour as a point on a circle, and how
many users replayed the same sequence. Every detector here follows scikit-learn's conventions and
`risk` returns higher-means-riskier scores.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

VOLUMES = (
    "n_events", "duration_s", "events_per_minute", "distinct_event_types", "distinct_items", "distinct_categories",
    "cart_count", "purchase_count", "purchase_value", "gap_mean_s", "gap_std_s", "gap_min_s", "gap_median_s",
    "gap_max_s", "users_with_sequence",
)
RATIOS = ("gap_cv",)
FEATURE_COLUMNS = (*VOLUMES, *RATIOS, "start_hour", "type_counts")


def with_sequence_users(sessions: DataFrame) -> DataFrame:
    """Add `users_with_sequence`: how many distinct users played this exact (type, item) sequence.

    Shuffles: a distinct count by (`sequence_hash`, `user_id`), then by `sequence_hash` with
    partial aggregation, so a hash that millions of sessions share (every one-event view of a
    popular item) is counted in pieces; the join back is by `sequence_hash` (adaptive execution
    splits a skewed partition). No task ever holds a set of users.
    """
    users = sessions.groupBy("sequence_hash").agg(F.countDistinct("user_id").cast("int").alias("users_with_sequence"))
    return sessions.join(users, on="sequence_hash", how="left")


def feature_matrix(sessions: pd.DataFrame, event_types: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """(n_sessions, n_features) floats and their names; `event_types` fixes the type-share columns."""
    columns, names = [], []
    for name in VOLUMES:
        columns.append(np.log1p(sessions[name].astype(float).fillna(0.0).clip(lower=0.0)))
        names.append(f"log1p_{name}")
    for name in RATIOS:
        columns.append(sessions[name].astype(float).fillna(0.0))
        names.append(name)
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

    def fit(self, X: np.ndarray) -> "PCAReconstruction":
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

    def fit(self, X: np.ndarray) -> "SklearnDensity":
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
