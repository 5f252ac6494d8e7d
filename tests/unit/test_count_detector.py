"""The count detector: token counts per session, and distance from the normal sessions' counts."""

import numpy as np
import pandas as pd

from seqrisk.detectors.count_detector import CountDetector, count_matrix, token_counts
from seqrisk.sessions.vocabulary import RARE, UNK, Vocabulary, session_tokens

VOCABULARY = Vocabulary.learn({"open": 50, "read": 40, "write": 30, "close": 50, "seek": 2}, min_count=5, max_size=100)


def sessions(*event_lists):
    return pd.DataFrame({"event_types": list(event_lists), "categories": [None] * len(event_lists), "prices": [None] * len(event_lists)})


def encoded(*event_lists):
    return list(session_tokens(sessions(*event_lists), VOCABULARY))


def counts(*event_lists, revisits=None):
    """The count detector's matrix of the sessions (no item revisits unless given)."""
    return count_matrix(encoded(*event_lists), revisits or [0] * len(event_lists), VOCABULARY, 100)


def test_counts_follow_the_vocabulary_with_rare_unseen_and_capped_tokens_in_their_columns():
    ids_of_sessions = encoded(["open", "read", "read", "close"], ["open", "seek", "teleport"])
    counts = token_counts(ids_of_sessions, VOCABULARY, max_columns=100)
    ids = {t: i for i, t in enumerate(VOCABULARY.tokens)}
    assert counts.shape == (2, VOCABULARY.size)
    assert counts[0, ids["read"]] == 2 and counts[0, ids["open"]] == 1 and counts[0].sum() == 4
    assert counts[1, RARE] == 1 and counts[1, UNK] == 1  # seek is rarer than min_count; teleport never seen
    capped = token_counts(ids_of_sessions, VOCABULARY, max_columns=5)  # <pad>, <unk>, <rare>, <end>, the most frequent token
    assert capped.shape == (2, 5) and capped[0].sum() == 4 and capped[0, RARE] == 3  # the rest fold into <rare>


def normal_workload(rng, n):
    """Sessions that open a file, read or write it k times, and close it: counts tied together."""
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 6))
        out.append(["open"] + ["read" if rng.random() < 0.7 else "write" for _ in range(k)] + ["close"])
    return out


def test_a_missing_step_and_an_unseen_event_score_far_above_normal_sessions():
    rng = np.random.default_rng(0)
    detector = CountDetector.fit(counts(*normal_workload(rng, 400)), floor=1e-3)
    detector = CountDetector.from_bytes(detector.to_bytes())
    normal = detector.risk(counts(*normal_workload(rng, 200)))
    odd = detector.risk(
        counts(
            ["open", "read", "read"],  # never closed: one step short
            ["open", "read", "close", "close"],  # closed twice
            ["open", "read", "teleport", "close"],  # an event no normal session holds
        )
    )
    assert odd.min() > 10 * np.quantile(normal, 0.99)


def test_a_longer_but_proportionate_session_is_not_an_outlier():
    rng = np.random.default_rng(1)
    detector = CountDetector.fit(counts(*normal_workload(rng, 400)), floor=1e-3)
    normal = detector.risk(counts(*normal_workload(rng, 200)))
    longer = detector.risk(counts(["open"] + ["read"] * 5 + ["close"]))
    assert longer[0] <= np.quantile(normal, 0.99)


def test_two_steps_each_normal_but_never_together_stand_out_and_are_counted_once_per_pair():
    rng = np.random.default_rng(2)
    # normal sessions either read or write, never both; the counts alone are linear in both
    workload = [["open"] + [kind] * int(rng.integers(1, 6)) + ["close"] for kind in rng.choice(["read", "write"], 400)]
    detector = CountDetector.fit(counts(*workload), floor=1e-3)
    detector = CountDetector.from_bytes(detector.to_bytes())
    normal = counts(*workload[:200])
    mixed = counts(["open", "read", "write", "close"], ["open", "read", "read", "write", "write", "close"])
    assert detector.unseen_pairs(normal).max() == 0
    assert list(detector.unseen_pairs(mixed)) == [1, 1]  # read with write, however often each occurs
    assert detector.risk(mixed).min() > 10 * np.quantile(detector.risk(normal), 0.99)


def test_many_events_each_on_a_new_item_stand_out_where_normal_sessions_revisit_items():
    rng = np.random.default_rng(3)
    # normal sessions read n times from n // 3 + 1 files: the longer the session, the more revisits
    lengths = rng.integers(1, 40, size=400)
    workload, revisits = [["open"] + ["read"] * int(n) + ["close"] for n in lengths], [int(n - (n // 3 + 1)) for n in lengths]
    detector = CountDetector.fit(counts(*workload, revisits=revisits), floor=1e-3)
    detector = CountDetector.from_bytes(detector.to_bytes())
    assert detector.token_columns == VOCABULARY.size
    normal = detector.risk(counts(*workload[:200], revisits=revisits[:200]))
    long_normal, scraper = detector.risk(counts(*[["open"] + ["read"] * 36 + ["close"]] * 2, revisits=[36 - 13, 0]))
    assert long_normal <= np.quantile(normal, 0.99)
    assert scraper > 10 * np.quantile(normal, 0.99)  # the same events, every one on an item it had not had
