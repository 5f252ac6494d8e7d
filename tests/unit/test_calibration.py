"""Calibration: reference quantiles turn scores into percentiles; the reference comes out uniform."""
import numpy as np

from seqrisk.calibration import Calibration


def test_the_reference_population_maps_to_uniform_percentiles_ties_included(tmp_path):
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.gamma(2.0, size=9000), np.zeros(1000)])  # a tenth tied at zero
    calibration = Calibration.fit({"s": scores})
    calibration.save(tmp_path)
    pct = Calibration.load(tmp_path).percentile("s", scores)
    assert np.allclose(pct[scores == 0], 5.0, atol=0.05)  # the tied tenth sits at its mid-rank
    deciles = np.histogram(pct[scores > 0], bins=9, range=(10, 100))[0] / len(scores)
    assert np.abs(deciles - 0.1).max() < 0.01


def test_percentiles_are_monotone_and_bounded():
    calibration = Calibration.fit({"s": np.arange(100.0)})
    pct = calibration.percentile("s", np.array([-5.0, 0.0, 50.0, 99.0, 1e9]))
    assert (np.diff(pct) >= 0).all() and pct[0] == 0.0 and pct[-1] == 100.0
