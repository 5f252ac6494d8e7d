"""Score calibration: reference quantiles that turn any score into a percentile (0 to 100).

Fitted on the reference population at training time and stored in the model directory, so the
same percentile means the same thing after every retrain. A score's percentile is its mid-rank
among the stored quantiles: the reference population itself comes out uniform, ties included.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE = "calibration.npz"
POINTS = 10_001  # quantiles kept per score: percentile resolution of 0.01


@dataclass(frozen=True)
class Calibration:
    quantiles: dict[str, np.ndarray]  # score name -> sorted reference quantiles

    @classmethod
    def fit(cls, scores: dict[str, np.ndarray], points: int = POINTS) -> "Calibration":
        grid = np.linspace(0.0, 1.0, points)
        return cls({name: np.quantile(np.asarray(values, dtype=np.float64), grid, method="inverted_cdf") for name, values in scores.items()})

    def percentile(self, name: str, values: np.ndarray) -> np.ndarray:
        q = self.quantiles[name]
        values = np.asarray(values, dtype=np.float64)
        below = np.searchsorted(q, values, side="left")
        not_above = np.searchsorted(q, values, side="right")
        return 100.0 * (below + not_above) / (2.0 * len(q))

    def save(self, directory: Path) -> None:
        np.savez(directory / FILE, **self.quantiles)

    @classmethod
    def load(cls, directory: Path) -> "Calibration":
        with np.load(directory / FILE, allow_pickle=False) as stored:
            return cls({name: stored[name] for name in stored.files})
