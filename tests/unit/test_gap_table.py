"""The gap table: each gap's surprise given its event alone, counted on reference sessions."""

import numpy as np
import pytest

from seqrisk.detectors.gap_table import PRIOR_WEIGHT, GapTable

VOCAB, BUCKETS, START = 6, 5, 4  # token ids 0..5; gap buckets 0..4, 4 the session start


def session(tokens, gaps):
    """A session's token ids and gap buckets (the first event's gap is the session start)."""
    return np.array(tokens), np.array([START, *gaps])


def fitted(sessions) -> GapTable:
    return GapTable.fit([t for t, _ in sessions], [g for _, g in sessions], VOCAB, BUCKETS)


def surprise(table: GapTable, sessions):
    return table.surprise([t for t, _ in sessions], [g for _, g in sessions])


def test_a_gap_unusual_for_its_event_is_surprising_where_the_same_gap_is_usual_for_another():
    # token 4 always comes 1 bucket after the event before, token 5 always 3 buckets after
    table = fitted([session([4, 4, 4, 5, 5], [1, 1, 3, 3])] * 50)
    usual, fast_fives = surprise(table, [session([5, 5, 5], [3, 3]), session([5, 5, 5], [1, 1])]).mean
    fast_fours = surprise(table, [session([4, 4, 4], [1, 1])]).mean[0]
    assert usual < 0.1 and fast_fours < 0.1
    assert fast_fives > 3.0  # 1 bucket is as usual as any gap, but never for token 5


def test_the_first_event_is_no_gap_and_a_one_event_session_has_none():
    table = fitted([session([4, 5], [1])] * 10)
    empty = (np.array([], dtype=int), np.array([], dtype=int))
    found = surprise(table, [session([5], []), session([4, 5], [1]), empty])
    np.testing.assert_array_equal(found.gaps, [0, 1, 0])
    assert found.mean[0] == 0.0 and found.mean[2] == 0.0
    assert found.mean[1] == pytest.approx(-table.log_p[5, 1])


def test_a_token_seen_rarely_leans_on_all_tokens_gaps():
    common = [session([4, 4, 4], [1, 1])] * 100
    table = fitted([*common, session([4, 5], [3])])  # token 5 seen once, after 3 buckets
    p = np.exp(table.log_p)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p[5, 3] == pytest.approx((1 + PRIOR_WEIGHT * p[0, 3]) / (1 + PRIOR_WEIGHT))  # one gap is no certainty
    assert p[5, 3] < 0.2
    assert p[5, 1] > p[5, 2]  # the overall distribution favours bucket 1
    np.testing.assert_allclose(p[0], p[1])  # tokens never counted: the overall distribution alone
    assert p[0].argmax() == 1


def test_many_quick_repeats_of_one_token_are_surprising_where_a_few_are_not():
    # token 5: a quick gap (bucket 1) one time in five; token 4: always quick
    normal = [session([5, 5, 5, 5, 5, 5], [1, 3, 3, 3, 3])] * 40 + [session([4, 4, 4], [1, 1])] * 40
    table = fitted(normal)
    one_quick, fifteen_quick, quick_fours = surprise(
        table, [session([5, 5, 5, 5, 5, 5], [1, 3, 3, 3, 3]), session([5] * 16, [1] * 15), session([4] * 16, [1] * 15)]
    ).quick
    assert one_quick < 1.0  # about what a normal session holds
    assert fifteen_quick > 20.0  # under p = 0.2, fifteen of fifteen: about 0.2 ** 15
    assert quick_fours < 1.5  # always quick: about as likely as the pseudo-counts let it be (p 0.94 each)
