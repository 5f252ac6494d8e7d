"""Score calibration: reference quantiles that turn any score into a tail probability and a percentile.

Fitted on the reference population at training time and stored in the model directory, so the
same percentile means the same thing after every retrain. Up to the reference's 98th percentile a
score's percentile is its mid-rank among the stored quantiles: the reference population comes out
uniform there, ties included. Above it the tail is a generalized Pareto distribution fitted to the
quantile function between the 80th and the 98th percentile (peaks over threshold), so the top of
the ranking is judged by how far a score lies beyond the reference's bulk, not by its rank among
the reference's few most extreme sessions. This matters when the reference holds the anomalies
themselves (unlabeled training data does): by rank they could only reach the reference's top
share; extrapolated from the bulk, a score far out is far out. The fitted tail also keeps scores
beyond anything seen in training in order instead of all tying at 100. Tail probabilities are
handed out as `surprisal` = -log10(p), which stays exact where 1 - p would round to 1.
The combined score (`EXACT`) is different: it is built from the detectors' extrapolated
surprisals already, and its percentile must be the reference's share at or above it (`high` at 99
means 1 % of the reference), so its ranks hold up to the reference's largest score and the fitted
tail only orders scores beyond it. So does the n-gram detector's share of unseen runs: most
reference sessions hold none, so its bulk is a point mass at zero that says nothing about the
tail (a tail fitted to it would make one unseen run in a thousand a one-in-a-billion event); and
the replay detector's, 0 for nearly every reference session. For those two (`EVIDENCE`) a score
of 0 means no evidence at all, so a score no higher than the reference's smallest has surprisal
0 (percentile 0), not the mid-rank of the reference's point mass there: a mid-rank would hand every
session a floor of about 0.3 from each of them, and the combined score would pile up on it.
The evidence for the fit range and the shape's bounds is in docs/detectors.md.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cached_property

import numpy as np

POINTS = 10_001  # quantiles kept per score: percentile resolution of 0.01
TAIL_FIT = (0.80, 0.98)  # the quantile levels the tail is fitted between; above the upper one it is extrapolated
SHAPES = np.linspace(0.0, 1.0, 21)  # tail shapes tried: exponential (0) to heavy (1); bounded tails are not
FIT_POINTS = 50  # quantile levels the tail is fitted on
EXACT = frozenset({"combined", "ngram", "replay"})  # scores ranked on the reference up to its largest (see below)
EVIDENCE = frozenset({"ngram", "replay"})  # scores whose smallest value means no evidence (see below)


def to_percentile(surprisal: np.ndarray) -> np.ndarray:
    """The percentile (0 to 100) of a surprisal: 2 is 99, 3 is 99.9."""
    return 100.0 * (1.0 - np.power(10.0, -np.asarray(surprisal, dtype=np.float64)))


@dataclass(frozen=True)
class Calibration:
    quantiles: dict[str, np.ndarray]  # score name -> sorted reference quantiles

    @classmethod
    def fit(cls, scores: dict[str, np.ndarray], points: int = POINTS) -> Calibration:
        grid = np.linspace(0.0, 1.0, points)
        return cls(
            {name: np.quantile(np.asarray(values, dtype=np.float64), grid, method="inverted_cdf") for name, values in scores.items()}
        )

    @cached_property
    def tails(self) -> dict[str, Tail]:
        return {name: Tail.fit(q, beyond_largest=name in EXACT) for name, q in self.quantiles.items()}

    def surprisal(self, name: str, values: np.ndarray) -> np.ndarray:
        """-log10 of the reference's tail probability of each value (0 at the bottom, grows without bound)."""
        q = self.quantiles[name]
        values = np.asarray(values, dtype=np.float64)
        below = np.searchsorted(q, values, side="left")
        not_above = np.searchsorted(q, values, side="right")
        tail = 1.0 - (below + not_above) / (2.0 * len(q))
        by_rank = -np.log10(np.maximum(tail, 0.5 / len(q)))
        fitted = self.tails[name]
        out = np.where(values > fitted.start, fitted.surprisal(values), by_rank)
        return np.where(values <= q[0], 0.0, out) if name in EVIDENCE else out

    def percentile(self, name: str, values: np.ndarray) -> np.ndarray:
        """0 to 100: the share of the reference below each value (mid-rank; under 100 past the reference)."""
        return to_percentile(self.surprisal(name, values))

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **self.quantiles)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Calibration:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            return cls({name: stored[name] for name in stored.files})


@dataclass(frozen=True)
class Tail:
    """A generalized Pareto tail over `threshold` (the lower fit level), used above `start`.

    `start` is the upper fit level, or the reference's largest score for EXACT scores; there the
    tail takes over from the ranks at their surprisal (`start_surprisal`).

    Fitted by least squares to the quantile function between the two levels, one scale per shape
    in SHAPES, keeping the shape that fits best; robust to a small share of extreme scores in the
    reference, which sit above the fit range.
    """

    threshold: float
    start: float
    start_surprisal: float
    shape: float
    scale: float

    @classmethod
    def fit(cls, q: np.ndarray, beyond_largest: bool = False) -> Tail:
        low, high = TAIL_FIT
        grid = np.linspace(0.0, 1.0, len(q))
        levels = np.linspace(low, high, FIT_POINTS)
        threshold = float(np.interp(low, grid, q))
        excess = np.interp(levels, grid, q) - threshold
        odds = (1.0 - low) / (1.0 - levels)
        floor = 1e-9 * max(1.0, float(np.abs(q).max()))  # a flat bulk: any larger value is far in the tail
        best = None
        for shape in SHAPES:
            basis = np.log(odds) if shape == 0.0 else (odds**shape - 1.0) / shape
            scale = max(float(basis @ excess / (basis @ basis)), floor)
            error = float(np.sum((excess - scale * basis) ** 2))
            if best is None or error < best[0]:
                best = (error, float(shape), scale)
        if beyond_largest:
            start, start_surprisal = float(q[-1]), float(-np.log10(0.5 / len(q)))
        else:
            start, start_surprisal = float(np.interp(high, grid, q)), float(-np.log10(1.0 - high))
        assert best is not None  # the shape grid is never empty
        return cls(threshold, start, start_surprisal, best[1], best[2])

    def surprisal(self, values: np.ndarray) -> np.ndarray:
        """-log10 tail probability, anchored at `start` (continuous with the ranks)."""
        return self.start_surprisal - (self._log_tail(values) - self._log_tail(np.array([self.start]))[0]) / np.log(10.0)

    def _log_tail(self, values: np.ndarray) -> np.ndarray:
        """ln P(X > value | X > threshold) under the fitted distribution."""
        excess = np.maximum(np.asarray(values, dtype=np.float64) - self.threshold, 0.0) / self.scale
        if self.shape == 0.0:
            return -excess
        return -np.log1p(self.shape * excess) / self.shape
