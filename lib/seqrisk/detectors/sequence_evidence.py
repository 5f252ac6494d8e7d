"""What the sequence model says about whole sessions: per-event surprise, gathered from windows.

Each session's events, encoded once with the model's own vocabulary by the caller
(`vocabulary.encode_sessions`; the other detectors read the same ids), are cut into windows as the
windows table's are (`windows.encoded_windows`), the windows are scored in large tensor batches, and
every event takes its surprise from the first window that holds it (where it has the most context
before it). The session's end is a step of its own (position `n_events`): stopping where the model
expects more is a surprise like any event. Three statistics of a session's steps come back: the
surprise of its most surprising step (one very unlikely step, a credential change, an unseen event,
a missing last step, marks a session however ordinary the rest), the mean surprise of its steps
(an unlikely order throughout), and the mean surprise of its steps' gaps, each given its event (an
unlikely rhythm throughout: a script's steady clicks; `sequence_score.py` ranks all three). The
`top_k` most surprising steps (their events' surprise) are kept as evidence for analysts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from seqrisk.model.sequence_model import SequenceModel, surprises
from seqrisk.sessions.vocabulary import END, SPECIAL, UNK, EncodedSessions, Vocabulary
from seqrisk.sessions.windows import encoded_windows


@dataclass(frozen=True)
class SequenceEvidence:
    """Per session (aligned with the input rows)."""

    score: np.ndarray  # float64: surprise of the most surprising step (the end included)
    mean: np.ndarray  # float64: mean surprise of the steps the model predicted (0 where none)
    steps: np.ndarray  # int: the steps the model predicted
    timing: np.ndarray  # float64: mean surprise of those steps' gaps, each given its event (0 where none)
    timed: np.ndarray  # int: the predicted steps with a gap (all but the end)
    unseen: np.ndarray  # int: events the model's vocabulary has never seen
    top_events: list[list[dict]]  # the most surprising positions, most surprising first (`n_events`: the end)


@dataclass(frozen=True)
class SessionSteps:
    """One session's steps as the model saw them (the end is the last step); NaN and 0 where unpredicted."""

    row: int  # the session's row in the input
    nll: np.ndarray  # float: surprise of each step
    gap_nll: np.ndarray  # float: surprise of each step's gap given its event (0 at the end, which has no gap)
    rank: np.ndarray  # int: 1 + the tokens the model found strictly more likely than the observed one
    expected: np.ndarray  # int (steps, k): the tokens the model expected most
    tokens: np.ndarray  # int: the observed tokens


def session_steps(
    encoded: EncodedSessions,
    model: SequenceModel,
    *,
    length: int,
    stride: int,
    batch_windows: int = 4096,
    expected_k: int = 3,
    device: str = "cpu",
) -> Iterator[SessionSteps]:
    """Every session's steps with their surprise (sessions with windows only), from the earliest window holding each."""
    cut = _cut(encoded, length, stride)
    out = _window_surprises(cut, model, length, batch_windows, expected_k, device)
    by_session: dict[int, list[int]] = {}
    for window, owner in enumerate(cut.owners):
        by_session.setdefault(owner, []).append(window)
    for row, windows in by_session.items():
        n_steps = len(encoded.tokens[row]) + 1  # the end is a step too
        steps = SessionSteps(
            row,
            np.full(n_steps, np.nan),
            np.full(n_steps, np.nan),
            np.zeros(n_steps, dtype=np.int64),
            np.zeros((n_steps, expected_k), dtype=np.int64),
            np.zeros(n_steps, dtype=np.int64),
        )
        for window in reversed(windows):  # the earliest window holding an event writes last: most context
            start, n_valid = cut.starts[window], cut.valid[window]
            steps.tokens[start : start + n_valid] = cut.tokens[window, :n_valid]
            predicted = np.arange(1, n_valid)  # step 0 of a window has nothing before it
            steps.nll[start + predicted] = out["nll"][window, predicted]
            steps.gap_nll[start + predicted] = out["gap_nll"][window, predicted]
            steps.rank[start + predicted] = out["rank"][window, predicted]
            steps.expected[start + predicted] = out["expected"][window, predicted]
        yield steps


def session_evidence(
    sessions: pd.DataFrame,
    encoded: EncodedSessions,
    model: SequenceModel,
    vocabulary: Vocabulary,
    *,
    length: int,
    stride: int,
    batch_windows: int = 4096,
    top_k: int = 3,
    expected_k: int = 3,
    device: str = "cpu",
) -> SequenceEvidence:
    """Score `sessions` (columns event_types, categories, prices; `encoded`: their token and gap bucket ids) with `model`."""
    n_sessions = len(sessions)
    score, mean, timing = np.zeros(n_sessions), np.zeros(n_sessions), np.zeros(n_sessions)
    steps_predicted, timed = np.zeros(n_sessions, dtype=np.int64), np.zeros(n_sessions, dtype=np.int64)
    unseen = np.zeros(n_sessions, dtype=np.int64)
    top_events: list[list[dict]] = [[] for _ in range(n_sessions)]
    steps = session_steps(encoded, model, length=length, stride=stride, batch_windows=batch_windows, expected_k=expected_k, device=device)
    for step in steps:
        row, event_nll = step.row, step.nll
        unseen[row] = int((step.tokens == UNK).sum())
        scored = np.flatnonzero(~np.isnan(event_nll))
        if not len(scored):
            continue
        order = scored[np.argsort(-event_nll[scored], kind="stable")][:top_k]
        score[row] = float(event_nll[order[0]])
        mean[row], steps_predicted[row] = float(event_nll[scored].mean()), len(scored)
        gap_nll = step.gap_nll[scored[scored < len(event_nll) - 1]]  # the end has no gap
        if len(gap_nll):
            timing[row], timed[row] = float(gap_nll.mean()), len(gap_nll)
        top_events[row] = [
            {
                "position": int(p),
                "event": _observed(sessions, vocabulary, row, p),
                "expected": [vocabulary.describe(vocabulary.tokens[t]) for t in step.expected[p]],
                "surprise": round(float(event_nll[p]), 4),
            }
            for p in order
        ]
    return SequenceEvidence(score, mean, steps_predicted, timing, timed, unseen, top_events)


@dataclass
class _Windows:
    """The windows of a batch of sessions: which session each came from, where it starts, its valid steps, its arrays."""

    owners: list[int]
    starts: list[int]
    valid: list[int]
    tokens: np.ndarray  # (W, T) int64
    gaps: np.ndarray  # (W, T) int64


def _cut(encoded: EncodedSessions, length: int, stride: int) -> _Windows:
    owners, starts, valid, tokens, gaps = [], [], [], [], []
    for row, (session_tokens, session_gaps) in enumerate(zip(*encoded, strict=True)):
        for start, n_valid, piece_tokens, piece_gaps in encoded_windows(session_tokens, session_gaps, length, stride):
            owners.append(row)
            starts.append(start)
            valid.append(n_valid)
            tokens.append(piece_tokens)
            gaps.append(piece_gaps)
    if not tokens:
        empty = np.zeros((0, length), dtype=np.int64)
        return _Windows(owners, starts, valid, empty, empty)
    return _Windows(owners, starts, valid, np.stack(tokens).astype(np.int64), np.stack(gaps).astype(np.int64))


def _window_surprises(
    cut: _Windows, model: SequenceModel, length: int, batch_windows: int, expected_k: int, device: str
) -> dict[str, np.ndarray]:
    """Each window's per-step surprise, gap surprise and rank (W, T) and the `expected_k` tokens the model expected (W, T, k), in large batches."""
    n_windows = len(cut.tokens)
    out: dict[str, np.ndarray] = {
        "nll": np.zeros((n_windows, length), dtype=np.float32),
        "gap_nll": np.zeros((n_windows, length), dtype=np.float32),
        "rank": np.zeros((n_windows, length), dtype=np.int64),
        "expected": np.zeros((n_windows, length, expected_k), dtype=np.int64),
    }
    if not n_windows:
        return out
    model = model.to(device)
    for first in range(0, n_windows, batch_windows):
        part = slice(first, first + batch_windows)
        batch_tokens, batch_gaps = _padded(cut.tokens[part]), _padded(cut.gaps[part])
        batch = surprises(model, torch.from_numpy(batch_tokens).to(device), torch.from_numpy(batch_gaps).to(device), top_k=expected_k)
        rows = len(cut.tokens[part])
        for name, values in out.items():
            values[part] = batch[name][:rows].cpu().numpy()
    return out


def _observed(sessions: pd.DataFrame, vocabulary: Vocabulary, row: int, position: int) -> str:
    """The event as the model saw it (its raw name when the vocabulary has never seen it)."""
    event_types = sessions["event_types"].iat[row]
    if position == len(event_types):
        return vocabulary.describe(SPECIAL[END])
    token = vocabulary.token_text(*(sessions[c].iat[row][position] for c in ("event_types", "categories", "prices")))
    return vocabulary.describe(token) if token in vocabulary.counts else str(event_types[position])


def _padded(batch: np.ndarray, multiple: int = 8) -> np.ndarray:
    """The batch with all-padding windows appended up to a multiple of `multiple` rows.

    A one-row batch takes a different BLAS path (matrix-vector) whose rounding differs in the 7th
    digit; batches of 2 rows and more give every window the same numbers whatever shares its batch,
    so scores do not depend on how sessions fall into partitions and Arrow batches.
    """
    extra = -len(batch) % multiple
    return np.concatenate([batch, np.zeros((extra, batch.shape[1]), dtype=batch.dtype)]) if extra else batch


def event_types_of(vocabulary: Vocabulary, limit: int) -> Sequence[str]:
    """The `limit` most frequent event types a vocabulary counted (composite tokens give their event-type part).

    The feature detector gets a share column for each: a source with 100,000 event types
    gives it `limit` columns, not 100,000 (rarer types still count in the count detector).
    """

    def kind(token: str) -> str:
        return token.split("|", 1)[0] if vocabulary.composite != "none" else token

    totals: dict[str, int] = {}
    for token, count in vocabulary.counts.items():
        totals[kind(token)] = totals.get(kind(token), 0) + count
    kept = set(sorted(totals, key=lambda k: (-totals[k], k))[:limit])
    seen: dict[str, None] = {}
    for token in list(vocabulary.tokens[len(SPECIAL) :]) + sorted(vocabulary.counts):
        if kind(token) in kept:
            seen.setdefault(kind(token), None)
    return list(seen)
