"""Score calibration: reference quantiles that turn any score into a tail probability and a percentile.

Fitted on the reference population at training time and stored in the model directory, so the
same percentile means the same thing after every retrain. Inside the reference range a score's
percentile is its mid-rank among the stored quantiles: the reference population itself comes out
uniform, ties included. Past the reference's largest score the tail is extended exponentially
(its scale is the mean excess of the reference's top 1 % over their threshold), so scores beyond
anything seen in training keep their order instead of all tying at 100. Tail probabilities are
also handed out as `surprisal` = -log10(p), which stays exact where 1 - p would round to 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE = "calibration.npz"
POINTS = 10_001  # quantiles kept per score: percentile resolution of 0.01
TAIL_SHARE = 0.01  # the reference's top share whose mean excess sets the extended tail's scale


def to_percentile(surprisal: np.ndarray) -> np.ndarray:
    """The percentile (0 to 100) of a surprisal: 2 is 99, 3 is 99.9."""
    return 100.0 * (1.0 - np.power(10.0, -np.asarray(surprisal, dtype=np.float64)))


@dataclass(frozen=True)
class Calibration:
    quantiles: dict[str, np.ndarray]  # score name -> sorted reference quantiles

    @classmethod
    def fit(cls, scores: dict[str, np.ndarray], points: int = POINTS) -> "Calibration":
        grid = np.linspace(0.0, 1.0, points)
        return cls({name: np.quantile(np.asarray(values, dtype=np.float64), grid, method="inverted_cdf") for name, values in scores.items()})

    def surprisal(self, name: str, values: np.ndarray) -> np.ndarray:
        """-log10 of the reference's tail probability of each value (0 at the bottom, grows without bound)."""
        q = self.quantiles[name]
        values = np.asarray(values, dtype=np.float64)
        below = np.searchsorted(q, values, side="left")
        not_above = np.searchsorted(q, values, side="right")
        tail = 1.0 - (below + not_above) / (2.0 * len(q))
        inside = -np.log10(np.maximum(tail, 0.5 / len(q)))
        beyond = values > q[-1]
        extended = -np.log10(0.5 / len(q)) + (values - q[-1]) / (self._tail_scale(q) * np.log(10.0))
        return np.where(beyond, extended, inside)

    def percentile(self, name: str, values: np.ndarray) -> np.ndarray:
        """0 to 100: the share of the reference below each value (mid-rank; under 100 past the reference)."""
        return to_percentile(self.surprisal(name, values))

    @staticmethod
    def _tail_scale(q: np.ndarray) -> float:
        top = q[int(np.floor((1.0 - TAIL_SHARE) * (len(q) - 1))) :]
        scale = float(np.mean(top - top[0]))
        floor = 1e-9 * max(1.0, float(np.abs(q).max()))  # a flat top: any larger value is far in the tail
        return max(scale, floor)

    def save(self, directory: Path) -> None:
        np.savez(directory / FILE, **self.quantiles)

    @classmethod
    def load(cls, directory: Path) -> "Calibration":
        with np.load(directory / FILE, allow_pickle=False) as stored:
            return cls({name: stored[name] for name in stored.files})
