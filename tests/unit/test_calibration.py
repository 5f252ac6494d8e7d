"""Calibration: reference quantiles turn scores into percentiles; the reference comes out uniform."""

import numpy as np
import pytest

from seqrisk.detectors.calibration import Calibration, to_percentile


def test_the_reference_population_maps_to_uniform_percentiles_ties_included():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.gamma(2.0, size=9000), np.zeros(1000)])  # a tenth tied at zero
    calibration = Calibration.fit({"s": scores})
    pct = Calibration.from_bytes(calibration.to_bytes()).percentile("s", scores)
    assert np.allclose(pct[scores == 0], 5.0, atol=0.05)  # the tied tenth sits at its mid-rank
    deciles = np.histogram(pct[scores > 0], bins=9, range=(10, 100))[0] / len(scores)
    assert np.abs(deciles - 0.1).max() < 0.01


def test_percentiles_are_monotone_and_bounded():
    calibration = Calibration.fit({"s": np.arange(100.0)})
    pct = calibration.percentile("s", np.array([-5.0, 0.0, 50.0, 99.0, 1e9]))
    assert (np.diff(pct) >= 0).all() and pct[0] == 0.0 and pct[-1] <= 100.0


def test_scores_past_the_reference_keep_their_order_instead_of_tying_at_the_top():
    rng = np.random.default_rng(1)
    calibration = Calibration.fit({"s": rng.exponential(1.0, size=20_000)})
    top = calibration.quantiles["s"][-1]
    beyond = np.array([top + 0.5, top + 5.0, top + 50.0, top + 5000.0])
    surprisal = calibration.surprisal("s", beyond)
    assert (np.diff(surprisal) > 0).all()
    assert surprisal[0] > calibration.surprisal("s", np.array([top]))[0]  # still above the reference's largest
    assert np.isfinite(surprisal).all() and surprisal[-1] > 100  # far past 15 nines, where 1 - p rounds to 1
    # an exponential reference: the fitted tail keeps its slope (one decade per ln 10)
    assert surprisal[1] - surprisal[0] == pytest.approx(4.5 / np.log(10), rel=0.1)


@pytest.mark.parametrize(
    "draw", [lambda rng, n: rng.exponential(1.0, n), lambda rng, n: rng.gamma(3.0, size=n), lambda rng, n: rng.pareto(3.0, n)]
)
def test_the_fitted_tail_holds_on_the_reference_itself(draw):
    """Above the 98th percentile the surprisal is extrapolated; the reference's share above the 99th stays near 1 %."""
    rng = np.random.default_rng(2)
    calibration = Calibration.fit({"s": draw(rng, 50_000)})
    pct = calibration.percentile("s", draw(np.random.default_rng(3), 200_000))
    assert (pct >= 99.0).mean() == pytest.approx(0.01, rel=0.2)
    assert (pct >= 99.9).mean() == pytest.approx(0.001, rel=0.6)


def test_a_few_extreme_sessions_in_the_reference_stay_far_out():
    """Unlabeled training data holds some anomalies: extrapolated from the bulk they score far beyond their rank."""
    rng = np.random.default_rng(4)
    bulk = rng.exponential(1.0, size=19_900)
    outliers = 40.0 + rng.exponential(1.0, size=100)  # half a percent, far beyond the bulk
    calibration = Calibration.fit({"s": np.concatenate([bulk, outliers])})
    assert calibration.surprisal("s", outliers).min() > 6  # by rank they would reach about 2.3 at most
    share_above = 0.01 * 0.995 + 0.005  # the bulk's top 1 % and the outliers
    assert calibration.surprisal("s", np.quantile(bulk, [0.99]))[0] == pytest.approx(-np.log10(share_above), abs=0.1)


def test_surprisal_and_percentile_agree_inside_the_reference():
    calibration = Calibration.fit({"s": np.arange(1000.0)})
    values = np.array([0.0, 500.0, 899.0, 979.0, 999.0])
    assert np.allclose(to_percentile(calibration.surprisal("s", values)), calibration.percentile("s", values))
    assert calibration.surprisal("s", np.array([899.0]))[0] == pytest.approx(1.0, abs=0.01)  # 100.5 of 1,000 at or above (mid-rank)


def test_no_evidence_has_no_surprisal_while_the_rest_keeps_its_rank():
    """The n-gram and replay scores are 0 for most sessions: 0 means no evidence, not the point mass's mid-rank."""
    reference = np.concatenate([np.zeros(9_900), np.arange(1.0, 101.0)])  # 99 % without evidence, then 100 distinct scores
    calibration = Calibration.fit({"replay": reference, "combined": reference})  # both ranked up to the largest
    assert calibration.surprisal("replay", np.array([0.0]))[0] == 0.0
    assert calibration.surprisal("combined", np.array([0.0]))[0] > 0.25  # any other score: the point mass's mid-rank
    evidence = calibration.surprisal("replay", np.array([1.0, 50.0, 100.0]))
    assert np.allclose(evidence, calibration.surprisal("combined", np.array([1.0, 50.0, 100.0])))
    assert evidence[0] == pytest.approx(2.0, abs=0.02) and np.all(np.diff(evidence) > 0)
