"""The n-gram detector: runs of tokens counted per session on Spark, and the share of a session's runs the reference lacks."""

import numpy as np
import pandas as pd
import pytest

from seqrisk.detectors.ngram_detector import NgramDetector, run_hashes
from seqrisk.errors import SeqriskError
from seqrisk.sessions.vocabulary import Vocabulary, session_tokens

VOCABULARY = Vocabulary.learn({"open": 50, "read": 40, "write": 30, "close": 50, "seek": 20}, min_count=5, max_size=100)


def sessions(*event_lists):
    return pd.DataFrame({"event_types": list(event_lists), "categories": [None] * len(event_lists), "prices": [None] * len(event_lists)})


def ngram_hashes(tokens, length):
    return run_hashes([np.asarray(tokens)], length)[0]


def test_hashes_name_each_run_by_its_tokens_and_a_short_session_by_its_whole_run():
    tokens = np.array([4, 5, 6, 4, 5, 6, 7])
    runs = ngram_hashes(tokens, 3)
    assert len(runs) == 5 and runs.dtype == np.int64
    assert runs[0] == runs[3] and len(set(runs.tolist())) == 4  # (4 5 6) twice, the other three runs apart
    assert ngram_hashes(np.array([4, 5]), 3).tolist() == ngram_hashes(np.array([4, 5]), 2).tolist()  # one run of its own length
    assert ngram_hashes(np.array([4, 5]), 2)[0] != ngram_hashes(np.array([4, 5, 9]), 3)[0]
    assert ngram_hashes(np.array([5, 4]), 2)[0] != ngram_hashes(np.array([4, 5]), 2)[0]  # order matters
    assert len(ngram_hashes(np.array([], dtype=np.int64), 3)) == 0


def test_hashes_of_many_sessions_at_once_are_each_sessions_own():
    rng = np.random.default_rng(0)
    sessions = [rng.integers(4, 9, size) for size in (0, 1, 2, 3, 7, 3, 12, 2)]
    hashes, runs = run_hashes(sessions, 3)
    assert runs.tolist() == [0, 1, 1, 1, 5, 1, 10, 1]
    assert hashes.tolist() == np.concatenate([ngram_hashes(t, 3) for t in sessions]).tolist()


def test_fit_counts_the_sessions_holding_each_run_and_scores_the_share_unseen(spark):
    normal = ["open", "read", "read", "close"]
    frame = sessions(normal, normal, normal, ["open", "write", "close"], ["open", "seek", "read", "close"])
    detector = NgramDetector.fit(spark.createDataFrame(frame), VOCABULARY, length=3, min_sessions=2, max_stored=100)
    detector = NgramDetector.from_bytes(detector.to_bytes())
    assert (detector.length, detector.min_sessions) == (3, 2)
    assert sorted(detector.sessions.tolist()) == [3, 3]  # (open read read) and (read read close): held by 3; the rest by 1
    assert np.all(np.diff(detector.hashes) > 0)

    scored = sessions(normal, ["open", "read", "read", "read", "close"], ["open", "seek", "read", "close"], ["open", "write"])
    share, unseen = detector.risk(session_tokens(scored, VOCABULARY))
    assert unseen.tolist() == [0, 1, 2, 1]  # (read read read) is new; a short session is its one run
    assert share.tolist() == [0.0, pytest.approx(1 / 3), 1.0, 1.0]


def test_a_reference_session_is_judged_by_the_others_leave_one_out(spark):
    normal, twice, once = ["open", "read", "close"], ["open", "write", "close"], ["open", "seek", "close"]
    frame = sessions(normal, normal, normal, twice, twice, once)
    detector = NgramDetector.fit(spark.createDataFrame(frame), VOCABULARY, length=3, min_sessions=2, max_stored=100)
    tokens = list(session_tokens(sessions(normal, twice, once), VOCABULARY))
    as_new, _ = detector.risk(iter(tokens))
    left_out, _ = detector.risk(iter(tokens), in_reference=True)
    assert as_new.tolist() == [0.0, 0.0, 1.0]  # a new session: held by 3, by 2, by 1 (not stored)
    assert left_out.tolist() == [0.0, 1.0, 1.0]  # held by 2 others, by 1 other, by none


def test_only_the_most_widely_held_runs_are_kept_past_the_cap(spark):
    frame = sessions(*([["open", "read", "close"]] * 4 + [["open", "write", "close"]] * 3 + [["open", "seek", "close"]] * 2))
    detector = NgramDetector.fit(spark.createDataFrame(frame), VOCABULARY, length=3, min_sessions=2, max_stored=2)
    assert sorted(detector.sessions.tolist()) == [3, 4]
    share, _ = detector.risk(session_tokens(sessions(["open", "seek", "close"]), VOCABULARY))
    assert share.tolist() == [1.0]


def test_a_corrupt_store_is_refused():
    detector = NgramDetector(3, 2, np.array([5, 3], dtype=np.int64), np.array([2, 2], dtype=np.int64))
    with pytest.raises(SeqriskError, match="not sorted"):
        NgramDetector.from_bytes(detector.to_bytes())
