"""Reason codes from feature deviations, and the risk-action policy."""

import numpy as np
import pytest
from helpers import REPO

from seqrisk.config import load_config
from seqrisk.detectors.reasons import REASONS, feature_reasons
from seqrisk.errors import SeqriskError
from seqrisk.scoring.risk_model import action_for


def test_feature_reasons_take_the_strongest_deviations_and_twice_as_much_when_not_flagged():
    names = ["log1p_gap_min_s", "gap_cv", "log1p_n_events", "share_view", "hour_sin"]
    deviations = np.array([[-9.0, -5.0, 4.0, 0.1, 8.0], [-9.0, 0.0, 0.0, 0.0, 0.0], [0.5, 0.2, 0.1, -3.5, 0.0], [0.0, 5.0, 0.0, 0.0, 0.0]])
    found = feature_reasons(deviations, names, np.array([True, False, True, False]), z=3.0)
    assert found == [["bot_like_timing", "velocity_burst"], ["bot_like_timing"], ["unusual_event_mix"], []]
    assert all(r in REASONS for rs in found for r in rs)


def test_the_default_policy_acts_on_level_and_reasons():
    settings = load_config(REPO / "conf" / "base.yaml", ["tables.root=x"]).score
    assert action_for("high", ["bot_like_timing"], settings) == "block"
    assert action_for("high", ["rare_transition"], settings) == "step_up_auth"
    assert action_for("high", [], settings) == "review"
    assert action_for("medium", ["duplicate_sequence"], settings) == "review"
    assert action_for("low", ["unseen_event"], settings) == "allow"


def test_a_policy_must_end_with_a_catch_all_and_name_known_reasons():
    with pytest.raises(SeqriskError, match="last policy rule must have no conditions"):
        load_config(REPO / "conf" / "base.yaml", ["tables.root=x", "score.policy=[{level: high, action: block}]"])
    with pytest.raises(SeqriskError, match="unknown reason codes"):
        load_config(
            REPO / "conf" / "base.yaml", ["tables.root=x", "score.policy=[{any_reason: [teleport], action: block}, {action: allow}]"]
        )
