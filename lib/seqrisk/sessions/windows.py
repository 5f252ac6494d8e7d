"""Fixed-length, padded windows cut from sessions: `encoded_windows` is the one windowing function.

Both callers encode a batch first with `vocabulary.encode_sessions`, then cut each session with
it: the windows table (`windows_frame`, in `mapInPandas`) and the scorer inside its UDF, with the
model's vocabulary, so training and scoring cut sessions identically. A session's tokens
end with the end-of-session token, so the model learns where sessions stop (a block whose last
replica never reported, a checkout without its payment: docs/detectors.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial

import numpy as np
import pandas as pd

from seqrisk.sessions.vocabulary import END, PAD, Vocabulary, encode_sessions

WINDOW_COLUMNS = ("window_index", "start_pos", "n_valid", "tokens", "gap_buckets")


def window_starts(n_events: int, length: int, stride: int) -> list[int]:
    """Start positions: every `stride` events, the last window ending at the session's last event.

    A session no longer than `length` gives one window at 0 (padded on the right).
    """
    if n_events <= length:
        return [0]
    starts = list(range(0, n_events - length + 1, stride))
    if starts[-1] + length < n_events:
        starts.append(n_events - length)
    return starts


def cut(tokens: np.ndarray, gap_buckets: np.ndarray, length: int, stride: int) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """(start, n_valid, tokens, gap_buckets) per window, each array `length` long, PAD-filled."""
    out = []
    for start in window_starts(len(tokens), length, stride):
        piece_tokens = np.full(length, PAD, dtype=np.int32)
        piece_gaps = np.full(length, PAD, dtype=np.int32)
        valid = min(length, len(tokens) - start)
        piece_tokens[:valid] = tokens[start : start + valid]
        piece_gaps[:valid] = gap_buckets[start : start + valid]
        out.append((start, valid, piece_tokens, piece_gaps))
    return out


TOKEN_INPUTS = ("event_types", "categories", "prices", "gaps_s")  # the session columns a window is made of


def encoded_windows(tokens: np.ndarray, gap_buckets: np.ndarray, length: int, stride: int) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """One session's windows from its token and gap bucket ids (`vocabulary.encode_sessions`).

    The tokens are the events' and then END (its gap bucket is PAD: END is never an input that
    predicts anything, only a target).
    """
    return cut(np.append(tokens, np.int32(END)), np.append(gap_buckets, np.int32(PAD)), length, stride)


def windows_frame(sessions: pd.DataFrame, vocabulary: Vocabulary, length: int, stride: int, keep: Sequence[str]) -> pd.DataFrame:
    """Rows of windows for a pandas batch of sessions; `keep` columns are copied from the session."""
    rows: dict[str, list] = {c: [] for c in (*keep, *WINDOW_COLUMNS)}
    encoded = encode_sessions(sessions, vocabulary)
    for session, session_tokens, session_gaps in zip(sessions.itertuples(index=False), encoded.tokens, encoded.gaps):
        for index, (start, valid, tokens, gaps) in enumerate(encoded_windows(session_tokens, session_gaps, length, stride)):
            for column in keep:
                rows[column].append(getattr(session, column))
            rows["window_index"].append(index)
            rows["start_pos"].append(start)
            rows["n_valid"].append(valid)
            rows["tokens"].append(tokens.tolist())
            rows["gap_buckets"].append(gaps.tolist())
    return pd.DataFrame(rows)


def windows_batches(
    batches: Iterator[pd.DataFrame], vocabulary: Vocabulary, length: int, stride: int, keep: Sequence[str]
) -> Iterator[pd.DataFrame]:
    """`mapInPandas` body: sessions in, windows out."""
    for batch in batches:
        yield windows_frame(batch, vocabulary, length, stride, keep)


def windows_mapper(vocabulary: Vocabulary, length: int, stride: int, keep: Sequence[str]):
    return partial(windows_batches, vocabulary=vocabulary, length=length, stride=stride, keep=tuple(keep))
