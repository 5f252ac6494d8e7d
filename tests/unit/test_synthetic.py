"""The generator's promises, checked on its direct output (no Spark)."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from helpers import REPO

from seqrisk.config import load_config
from seqrisk.synthetic.generator import ANOMALY_TYPES, SESSION_GAP_S, AnomalyKnobs, generate_frames
from seqrisk.synthetic.parallel import generator_params

PARAMS = replace(generator_params(load_config(REPO / "conf" / "local.yaml").generate), users=1500, days=10, anomaly_rate=0.2)


@pytest.fixture(scope="module")
def frames():
    out = generate_frames(range(PARAMS.users), PARAMS)
    events = out[out.kind == "event"].copy()
    fields = events.line.str.split(",", expand=True)
    events["time"] = pd.to_datetime(fields[0], utc=True)
    events["user_id"] = fields[1]
    return events, out[out.kind == "label"]


def test_every_labeled_span_exists_in_the_events_and_has_no_normal_events_near_it(frames):
    events, labels = frames
    assert len(labels) > 50
    for label in labels.itertuples():
        start, end = pd.Timestamp(label.start), pd.Timestamp(label.end)
        own = events[events.user_id == label.user_id]
        inside = own[(own.time >= start) & (own.time <= end)]
        assert (inside.anomaly_type == label.anomaly_type).all(), label
        assert inside.time.min() == start and inside.time.max() == end, label
        margin = pd.Timedelta(seconds=SESSION_GAP_S - 60)
        near = own[(own.time >= start - margin) & (own.time <= end + margin)]
        assert near.anomaly_type.notna().all(), f"a normal event within {margin} of {label}"


def test_the_anomaly_mix_follows_rate_and_weights(frames):
    events, labels = frames
    anomalous_users = labels.user_id.nunique()
    expected = PARAMS.users * PARAMS.anomaly_rate
    assert abs(anomalous_users - expected) < 4 * np.sqrt(expected)  # binomial, four sigma
    per_type = labels.groupby("anomaly_type").user_id.nunique()
    assert set(per_type.index) == set(ANOMALY_TYPES)
    assert per_type.min() > 0.4 * anomalous_users / len(ANOMALY_TYPES)


def test_a_zero_weight_removes_a_type_and_a_zero_rate_removes_all():
    knobs = dict(PARAMS.anomalies, card_testing=AnomalyKnobs(weight=0.0, subtlety=0.3))
    out = generate_frames(range(600), replace(PARAMS, anomalies=knobs))
    assert "card_testing" not in set(out.anomaly_type.dropna())
    none = generate_frames(range(600), replace(PARAMS, anomaly_rate=0.0))
    assert (none.kind == "event").all() and none.anomaly_type.isna().all()


def test_subtlety_makes_scraping_slower_and_less_regular():
    def scraper_gaps(subtlety):
        knobs = {k: AnomalyKnobs(weight=1.0 if k == "scraping_bot" else 0.0, subtlety=subtlety) for k in ANOMALY_TYPES}
        out = generate_frames(range(400), replace(PARAMS, anomaly_rate=0.5, anomalies=knobs))
        bot = out[out.anomaly_type == "scraping_bot"]
        fields = bot.line.str.split(",", expand=True)
        frame = pd.DataFrame({"user": fields[1], "t": pd.to_datetime(fields[0])}).sort_values(["user", "t"])
        gaps = frame.groupby("user").t.diff().dt.total_seconds().dropna()
        gaps = gaps[gaps < 600]  # within a span
        return gaps.median(), gaps.std() / gaps.mean()

    blatant, subtle = scraper_gaps(0.0), scraper_gaps(0.9)
    assert blatant[0] < 1.5 < subtle[0]
    assert blatant[1] < subtle[1]


def test_same_seed_same_users_whatever_the_batching_and_another_seed_differs():
    whole = generate_frames(range(200), PARAMS)
    split = pd.concat([generate_frames(range(0, 77), PARAMS), generate_frames(range(77, 200), PARAMS)])
    assert sorted(whole.line.dropna()) == sorted(split.line.dropna())
    other = generate_frames(range(200), replace(PARAMS, seed=PARAMS.seed + 1))
    assert sorted(other.line.dropna()) != sorted(whole.line.dropna())


def test_normal_behavior_has_a_funnel_with_drop_offs(frames):
    events, _ = frames
    normal = events[events.anomaly_type.isna()]
    types = normal.line.str.split(",").str[2].value_counts()
    assert types["view"] > types["add_to_cart"] > types["checkout"] > types["purchase"] > 0
    assert types["search"] > types["purchase"]
