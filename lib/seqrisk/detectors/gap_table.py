"""The rhythm without context: how unlikely a session's time gaps are, each given its event alone.

The sequence model predicts each gap from the whole history, so within a script's session it
soon learns that the next click comes two seconds after the last and stops being surprised; the
script's rhythm is unlikely over its first steps only. A table of p(gap bucket | token), counted
on the reference sample, has no history to learn from (docs/detectors.md, "The rhythm without
context"). Two statistics of a session come from it:
- the mean surprise of its gaps: a session whose every gap is unusual for its event;
- its quick repeats: for each token it holds and each gap bucket b, how unlikely it is that k or
  more of its n events of that token came at most b after the event before, were each one quick
  with the table's p(gap <= b | token) (a binomial tail); the session's is the most unlikely. A
  clickout 5 s after the last is common, fifteen in a row are not, and the mean of fifteen gaps
  each a little unusual does not say so.
Each token's row is pulled towards all tokens' gap distribution by PRIOR_WEIGHT pseudo-counts, so
a token seen a few times does not make its few gaps certain. The first event's gap (the session
start) is not a gap and is not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

PRIOR_WEIGHT = 10.0  # pseudo-counts of all tokens' gap distribution in each token's row


@dataclass(frozen=True)
class GapSurprise:
    """Per session, under the table: its gaps' mean surprise (nats; 0 where none), how many gaps, and the surprise
    (nats) of its most unlikely count of quick repeats (0 where none)."""

    mean: np.ndarray
    gaps: np.ndarray
    quick: np.ndarray


@dataclass(frozen=True)
class GapTable:
    log_p: np.ndarray  # (tokens, gap buckets) float64: ln p(gap bucket | token)

    @classmethod
    def fit(cls, tokens: Sequence[np.ndarray], gaps: Sequence[np.ndarray], vocab_size: int, gap_buckets: int) -> GapTable:
        """Count every (token, gap bucket) of the sessions' events after their first."""
        token, gap, _ = _pairs(tokens, gaps)
        counts = np.zeros((vocab_size, gap_buckets))
        np.add.at(counts, (token, gap), 1.0)
        overall = (counts.sum(axis=0) + 1.0) / (counts.sum() + gap_buckets)  # add-one: no bucket is impossible
        return cls(np.log((counts + PRIOR_WEIGHT * overall) / (counts.sum(axis=1, keepdims=True) + PRIOR_WEIGHT)))

    def surprise(self, tokens: Sequence[np.ndarray], gaps: Sequence[np.ndarray]) -> GapSurprise:
        """Each session's mean -ln p(gap | token) over its events after the first, and its quick repeats."""
        token, gap, owner = _pairs(tokens, gaps)
        n = np.bincount(owner, minlength=len(tokens))
        total = np.bincount(owner, weights=-self.log_p[token, gap], minlength=len(tokens))
        return GapSurprise(np.divide(total, n, out=np.zeros(len(tokens)), where=n > 0), n, self._quick(token, gap, owner, len(tokens)))

    def _quick(self, token: np.ndarray, gap: np.ndarray, owner: np.ndarray, n_sessions: int) -> np.ndarray:
        """Per session, the largest -ln P(Binomial(n, p(gap <= b | token)) >= k) over its tokens and the buckets b
        below the last (every gap is at most the last: no evidence)."""
        quick = np.zeros(n_sessions)
        if not owner.size:
            return quick
        pairs, which = np.unique(owner * len(self.log_p) + token, return_inverse=True)  # (session, token)
        session, pair_token = pairs // len(self.log_p), pairs % len(self.log_p)
        events = np.bincount(which)
        at_most = np.cumsum(np.exp(self.log_p), axis=1)  # p(gap bucket <= b | token); bucket 0 is padding
        for bucket in range(1, self.log_p.shape[1] - 2):  # the real gaps' buckets but the last (the session start is after it)
            quick_ones = np.bincount(which, weights=gap <= bucket, minlength=len(pairs))
            surprise = -binom.logsf(quick_ones - 1, events, np.minimum(at_most[pair_token, bucket], 1.0))
            np.maximum.at(quick, session, surprise)
        return quick


def _pairs(tokens: Sequence[np.ndarray], gaps: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(token, gap bucket, session index) of every event after its session's first, flattened."""
    later = [len(t) - 1 if len(t) else 0 for t in tokens]
    owner = np.repeat(np.arange(len(tokens)), later)
    if not owner.size:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    token = np.concatenate([np.asarray(t[1:], dtype=np.int64) for t in tokens])
    gap = np.concatenate([np.asarray(g[1:], dtype=np.int64) for g in gaps])
    return token, gap, owner
