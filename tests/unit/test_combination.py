"""The combination of the detectors' surprisals, and what labels change about it."""

import numpy as np

from seqrisk.detectors.combination import DETECTORS, WEIGHTS, Combination, choose_weights, corroborated, cutoff, sign_test
from seqrisk.detectors.fitting import learn_from_labels, unlabeled_combination
from seqrisk.model.settings import TrainConfig
from seqrisk.scoring.settings import RiskLevels


def _population(rng, n):
    """Raw scores of the five detectors; `sequence` has a heavy tail of its own (normal sessions score high on it)."""
    return {
        "sequence": rng.pareto(1.5, n),
        "feature": rng.normal(0, 1, n),
        "count": rng.gamma(2.0, size=n),
        "ngram": rng.beta(0.2, 5.0, n),
        "replay": np.where(rng.random(n) < 0.005, rng.integers(5, 20, n), 0).astype(float),
    }


def test_the_default_is_the_largest_surprisal_plus_half_the_second_and_a_quarter_of_the_third_and_survives_a_round_trip():
    surprisals = {
        "sequence": np.array([1.0, 5.0]),
        "feature": np.array([3.0, 0.0]),
        "count": np.array([2.0, 2.0]),
        "ngram": np.array([0.5, 2.5]),
        "replay": np.array([0.0, 0.0]),
    }
    assert Combination.from_bytes(None) == Combination()  # a model directory without combination.json
    assert list(Combination().score(surprisals)) == [3 + 2 / 2 + 1 / 4, 5 + 2.5 / 2 + 2 / 4]
    assert list(corroborated([np.array([1.0]), np.array([3.0])])) == [3.5]  # fewer scores than shares
    weighted = Combination(
        {"sequence": 0.0, "feature": 1.0, "count": 0.5, "ngram": 0.0, "replay": 1.0}, high_pct=98.5, labeled_sessions=["a"]
    )
    assert Combination.from_bytes(weighted.to_bytes()) == weighted
    assert list(weighted.score(surprisals)) == [3.5, 1.0]


def test_labels_drop_a_detector_whose_tail_hides_the_cases():
    rng = np.random.default_rng(0)
    reference = {name: rng.exponential(1.0 / np.log(10), 20_000) for name in DETECTORS}  # surprisal-like: 1 % above 2
    reference["sequence"] = reference["sequence"] * 3  # a noisy detector: many normal sessions far out
    cases = {"sequence": rng.exponential(0.5, 20), "feature": 2.2 + rng.exponential(0.3, 20), "count": rng.exponential(0.4, 20)}
    cases["ngram"], cases["replay"] = rng.exponential(0.4, 20), np.zeros(20)
    weights, caught, caught_default = choose_weights(reference, cases, Combination().weights)
    assert weights["sequence"] < 1.0 and weights["feature"] == 1.0
    assert caught > caught_default


def test_a_few_more_cases_caught_are_not_enough_to_replace_the_default():
    rng = np.random.default_rng(5)
    reference = {name: rng.exponential(1.0 / np.log(10), 20_000) for name in DETECTORS}
    reference["sequence"] = reference["sequence"] * 3
    cases = {"sequence": rng.exponential(0.5, 4), "feature": 2.2 + rng.exponential(0.3, 4), "count": rng.exponential(0.4, 4)}
    cases["ngram"], cases["replay"] = rng.exponential(0.4, 4), np.zeros(4)
    weights, caught, caught_default = choose_weights(reference, cases, Combination().weights)  # 4 cases: no sign test passes
    assert weights == Combination().weights and caught == caught_default
    tried = len(WEIGHTS) ** len(DETECTORS) - 1  # 242 weightings: 13 straight wins are needed
    assert sign_test(3, 0) == 0.125 and sign_test(0, 0) == 1.0 and sign_test(12, 0) * tried > 0.05 > sign_test(13, 0) * tried


def test_the_cutoff_is_lowered_to_keep_the_asked_share_of_cases_never_raised():
    pct = np.linspace(96.0, 99.99, 101)
    assert np.mean(pct >= cutoff(pct, 0.9, 95.0, 99.0)) >= 0.9 > np.mean(pct > cutoff(pct, 0.9, 95.0, 99.0))
    assert cutoff(np.full(10, 99.999), 0.9, 95.0, 99.0) == 99.0  # never above the configured `high`
    assert cutoff(np.full(10, 50.0), 0.9, 95.0, 99.0) == 95.0  # never below `medium`


def test_learning_from_labels_reports_what_they_bought_and_too_few_change_nothing():
    rng = np.random.default_rng(1)
    reference = _population(rng, 20_000)
    cases = {"sequence": rng.pareto(3.0, 30), "feature": 2.5 + rng.normal(0, 0.05, 30), "count": rng.gamma(1.0, size=30)}
    cases["ngram"], cases["replay"] = rng.beta(0.2, 5.0, 30), np.zeros(30)
    ids = [f"s{i}" for i in range(30)]
    settings, levels = TrainConfig(), RiskLevels()
    combination, report = learn_from_labels(Combination(), reference, cases, ids, settings, levels.medium, levels.high)
    assert report.used and report.cases == 30 and report.caught > report.caught_default and combination.weights != Combination().weights
    assert levels.medium <= combination.high_pct <= levels.high and report.high_recall >= settings.label_recall
    assert combination.labeled_sessions == sorted(ids) and combination.labels["caught"] == report.caught
    assert any("labeled sessions in the training dates" in line for line in report.lines())

    few, report = learn_from_labels(Combination(), reference, {}, ids[:2], settings, levels.medium, levels.high)
    assert not report.used and few.weights == Combination().weights and few.high_pct is None
    assert few.labeled_sessions == ["s0", "s1"] and "too few" in report.lines()[0]


def test_the_replay_detector_abstains_where_long_shared_sequences_are_common_and_labels_keep_that():
    rng = np.random.default_rng(2)
    reference = _population(rng, 20_000)  # 0.5 % long shared sequences: a clickstream's share
    assert unlabeled_combination(reference) == Combination()
    reference["replay"] = np.where(rng.random(20_000) < 0.09, 40.0, 0.0)  # a tenth: identical machine traces
    machine = unlabeled_combination(reference)
    assert machine.weights == {**Combination().weights, "replay": 0.0}
    few, report = learn_from_labels(machine, reference, {}, ["s0"], TrainConfig(), RiskLevels().medium, RiskLevels().high)
    assert few.weights["replay"] == 0.0 and report.weights["replay"] == 0.0
