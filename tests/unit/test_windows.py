"""The windowing function and the vocabulary it encodes with (no Spark)."""

import numpy as np
import pandas as pd
import pytest

from seqrisk.sessions.vocabulary import END, PAD, RARE, UNK, Vocabulary
from seqrisk.sessions.windows import cut, window_starts, windows_frame

VOCAB = Vocabulary.learn({"view": 50, "cart": 20, "buy": 5, "odd": 1}, min_count=2, max_size=100, gap_buckets_s=(1, 10, 60))


@pytest.mark.parametrize(
    "n, length, stride, starts",
    [(1, 4, 2, [0]), (4, 4, 2, [0]), (5, 4, 2, [0, 1]), (6, 4, 2, [0, 2]), (9, 4, 2, [0, 2, 4, 5]), (8, 4, 4, [0, 4])],
)
def test_window_starts_cover_every_event_and_end_at_the_last(n, length, stride, starts):
    assert window_starts(n, length, stride) == starts
    covered = {p for s in starts for p in range(s, min(s + length, n))}
    assert covered == set(range(n))


def test_short_sessions_are_padded_on_the_right():
    ((start, valid, tokens, gaps),) = cut(np.array([3, 4]), np.array([7, 2]), length=4, stride=2)
    assert (start, valid, tokens.tolist(), gaps.tolist()) == (0, 2, [3, 4, PAD, PAD], [7, 2, PAD, PAD])


def test_long_sessions_are_cut_into_overlapping_windows():
    pieces = cut(np.arange(10, 15), np.arange(20, 25), length=4, stride=2)
    assert [(s, v, t.tolist()) for s, v, t, _ in pieces] == [(0, 4, [10, 11, 12, 13]), (1, 4, [11, 12, 13, 14])]


def test_vocabulary_orders_by_count_and_reserves_pad_unknown_rare_and_end():
    assert VOCAB.tokens == ("<pad>", "<unk>", "<rare>", "<end>", "view", "cart", "buy")
    assert VOCAB.encode(["view", "buy", "odd", "never-seen"]).tolist() == [4, 6, RARE, UNK]
    assert VOCAB.describe(VOCAB.tokens[END]) == "end of session"


def test_max_size_sends_the_least_frequent_tokens_to_rare():
    small = Vocabulary.learn({"a": 9, "b": 8, "c": 7}, min_count=1, max_size=6)
    assert small.encode(["a", "b", "c"]).tolist() == [4, 5, RARE]


def test_composite_tokens_join_event_type_and_category_bucket():
    vocab = Vocabulary.learn(
        {"view|shoes": 9, "view|other": 9, "view|none": 9}, min_count=1, max_size=50, composite="category", top_categories=["shoes"]
    )
    assert vocab.encode(["view", "view", "view"], ["shoes", "hats", None]).tolist() == [
        vocab.tokens.index("view|shoes"),
        vocab.tokens.index("view|other"),
        vocab.tokens.index("view|none"),
    ]


def test_price_tokens_bucket_amounts_at_the_learned_edges():
    vocab = Vocabulary.learn(
        {"buy|p0": 9, "buy|p1": 9, "buy|p2": 9, "view|none": 9}, min_count=1, max_size=50, composite="price", price_edges=[3.0, 100.0]
    )
    ids = vocab.encode(["buy", "buy", "buy", "buy", "view", "view"], None, [0.5, 3.0, 99.99, 100.0, None, float("nan")])
    assert [vocab.tokens[i] for i in ids] == ["buy|p0", "buy|p1", "buy|p1", "buy|p2", "view|none", "view|none"]
    assert [vocab.describe(t) for t in ("buy|p0", "buy|p1", "buy|p2", "view|none")] == ["buy (< 3)", "buy (3-100)", "buy (>= 100)", "view"]


def test_gap_buckets_mark_the_session_start_and_bound_each_gap():
    # buckets: 1: <=1s, 2: <=10s, 3: <=60s, 4: >60s, 5: session start
    assert VOCAB.gap_bucket_count == 6
    assert VOCAB.encode_gaps([None, 0.5, 1.0, 9.0, 60.0, 61.0]).tolist() == [5, 1, 1, 2, 3, 4]


def test_windows_frame_encodes_then_ends_then_cuts_each_session():
    sessions = pd.DataFrame(
        {
            "session_id": ["a", "b"],
            "event_types": [["view", "cart", "never-seen"], ["view", "cart", "buy"]],
            "categories": [None, None],
            "prices": [None, None],
            "gaps_s": [[None, 3.0, 100.0], [None, 1.0, 1.0]],
        }
    )
    rows = windows_frame(sessions, VOCAB, length=5, stride=2, keep=["session_id"])
    assert rows["session_id"].tolist() == ["a", "b"]  # 3 events and the end fit one window of 5
    assert (rows["n_valid"][0], rows["tokens"][0], rows["gap_buckets"][0]) == (4, [4, 5, UNK, END, PAD], [5, 2, 4, PAD, PAD])
    rows = windows_frame(sessions.iloc[1:], VOCAB, length=3, stride=2, keep=["session_id"])
    assert rows[["window_index", "start_pos", "n_valid"]].values.tolist() == [[0, 0, 3], [1, 1, 3]]
    assert rows["tokens"][1] == [5, 6, END]  # the last window ends with the end


def test_vocabulary_survives_a_round_trip_and_rejects_other_formats():
    again = Vocabulary.from_json(VOCAB.to_json())
    assert again == VOCAB and again.encode(["cart"]).tolist() == [5]
    priced = Vocabulary.learn({"buy|p0": 9}, min_count=1, max_size=50, composite="price", price_edges=[3.0])
    assert Vocabulary.from_json(priced.to_json()) == priced
    with pytest.raises(ValueError, match="format"):
        Vocabulary.from_json('{"format": 0}')
