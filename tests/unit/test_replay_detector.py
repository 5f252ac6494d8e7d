"""The replay detector: a long sequence another user played too, and when it abstains."""

import numpy as np
import pandas as pd

from seqrisk.detectors.replay_detector import MAX_SHARE, MIN_EVENTS, abstains, replay_risk


def test_only_long_sequences_another_user_played_score_and_by_their_length():
    sessions = pd.DataFrame(
        {
            "users_with_sequence": [1, 2, 2, 7, None],
            "n_events": [40, MIN_EVENTS - 1, MIN_EVENTS, 12, 30],
        }
    )
    assert list(replay_risk(sessions)) == [0.0, 0.0, float(MIN_EVENTS), 12.0, 0.0]  # unknown users: played by one


def test_it_abstains_when_more_than_max_share_of_the_reference_is_long_and_shared():
    n = 10_000
    rare = np.zeros(n)
    rare[: int(n * MAX_SHARE)] = 9.0
    common = np.zeros(n)
    common[: int(n * MAX_SHARE) + 1] = 9.0
    assert not abstains(rare) and abstains(common)
