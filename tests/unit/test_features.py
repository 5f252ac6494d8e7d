"""Session features for the second detector, and the candidate detectors' direction."""

import numpy as np
import pandas as pd
import pytest

from seqrisk.sessions.features import UNDEFINED_RATIO, detectors, feature_matrix, item_revisits, with_sequence_users

ROW = dict(
    n_events=4,
    duration_s=60.0,
    events_per_minute=4.0,
    distinct_event_types=2,
    distinct_items=3,
    distinct_categories=1,
    cart_count=1,
    purchase_count=0,
    purchase_value=0.0,
    gap_mean_s=20.0,
    gap_std_s=5.0,
    gap_min_s=15.0,
    gap_median_s=20.0,
    gap_max_s=25.0,
    users_with_sequence=1,
    gap_cv=0.25,
    start_hour=6,
    type_counts={"view": 3, "cart": 1},
)


def test_feature_matrix_scales_volumes_shares_types_and_puts_hours_on_a_circle():
    single = {**ROW, "n_events": 1, "gap_mean_s": None, "gap_std_s": None, "gap_cv": None, "type_counts": {"buy": 1}}
    X, names = feature_matrix(pd.DataFrame([ROW, single]), ["view", "cart", "buy"])
    assert X.shape == (2, len(names)) and np.isfinite(X).all()
    row = dict(zip(names, X[0]))
    assert row["log1p_n_events"] == pytest.approx(np.log1p(4))
    assert (row["share_view"], row["share_cart"], row["share_buy"]) == (0.75, 0.25, 0.0)
    assert (row["hour_sin"], row["hour_cos"]) == pytest.approx((1.0, 0.0))  # 06:00 is a quarter turn
    # one event: no gap CV, read as a Poisson process's (1), not as a metronome's 0
    assert dict(zip(names, X[1]))["share_buy"] == 1.0 and dict(zip(names, X[1]))["gap_cv"] == UNDEFINED_RATIO == 1.0


def test_a_sequence_another_user_played_counts_its_length_and_an_unshared_one_nothing():
    shared = {**ROW, "users_with_sequence": 2}
    X, names = feature_matrix(pd.DataFrame([ROW, shared]), ["view"])
    column = names.index("log1p_shared_sequence_events")
    assert X[:, column].tolist() == [0.0, pytest.approx(np.log1p(4))]


@pytest.mark.parametrize("name", ["isolation_forest", "pca_reconstruction", "gaussian_mixture"])
def test_each_detector_ranks_an_obvious_outlier_riskiest(name):
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    outlier = normal.mean(axis=0) + 12 * normal.std(axis=0)
    X = np.vstack([normal, outlier])
    risk = detectors(seed=0)[name].fit(normal).risk(X)
    assert risk.argmax() == len(X) - 1


def test_sequence_users_count_distinct_users_replaying_a_sequence(spark):
    sessions = spark.createDataFrame(
        [("s1", "u1", "h1"), ("s2", "u2", "h1"), ("s3", "u2", "h1"), ("s4", "u3", "h2")],
        "session_id string, user_id string, sequence_hash string",
    )
    got = {r.session_id: r.users_with_sequence for r in with_sequence_users(sessions).collect()}
    assert got == {"s1": 2, "s2": 2, "s3": 2, "s4": 1}


def test_item_revisits_count_events_on_an_item_the_session_had_already_and_ignore_events_without_one(spark):
    sessions = spark.createDataFrame(
        [("s1", ["a", "b", "a", "a"]), ("s2", ["a", "b", "c"]), ("s3", [None, "a", None, "a"]), ("s4", [None, None]), ("s5", None)],
        "session_id string, item_ids array<string>",
    )
    got = {r.session_id: r.item_revisits for r in sessions.select("session_id", item_revisits()).collect()}
    assert got == {"s1": 2, "s2": 0, "s3": 1, "s4": 0, "s5": 0}


def test_the_feature_detector_gets_a_column_for_the_most_frequent_event_types_only():
    from seqrisk.detectors.sequence_evidence import event_types_of
    from seqrisk.sessions.vocabulary import Vocabulary

    counts = {f"type{i:06d}": 1 + i % 3 for i in range(100_000)} | {"view": 5000, "buy": 4000, "cart": 10}
    vocabulary = Vocabulary.learn(counts, min_count=5, max_size=50)  # 100,000 types seen, 3 of them learned
    assert event_types_of(vocabulary, 8)[:3] == ["view", "buy", "cart"] and len(event_types_of(vocabulary, 8)) == 8
    assert event_types_of(vocabulary, 2) == ["view", "buy"]
