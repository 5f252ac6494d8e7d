"""The sequence score: the largest step for short sessions, the mean surprise instead for long ones, the gaps' for
timed ones (the model's and the gap table's), the gap table's quick repeats for all."""

import numpy as np

from seqrisk.detectors.gap_table import GapSurprise, GapTable
from seqrisk.detectors.sequence_evidence import SequenceEvidence
from seqrisk.detectors.sequence_score import FORESEEN, LONG_STEPS, MIN_LONG_REFERENCE, TIMED_STEPS, SequenceScore


def evidence(largest, mean, steps, timing=None) -> SequenceEvidence:
    """Sessions whose steps all have a gap but the end: `timing` their gaps' mean surprise (0: none given)."""
    n, steps = len(largest), np.asarray(steps)
    timing = np.zeros(n) if timing is None else np.asarray(timing, dtype=float)
    return SequenceEvidence(
        np.asarray(largest, dtype=float),
        np.asarray(mean, dtype=float),
        steps,
        timing,
        steps - 1,
        np.zeros(n, dtype=int),
        [[] for _ in range(n)],
    )


TABLE = GapTable(np.log(np.full((5, 4), 0.25)))  # the gap table itself is tested in test_gap_table.py


def untabled(sessions: SequenceEvidence, mean=None, quick=None) -> GapSurprise:
    """The sessions' gaps under the gap table: `mean` their mean surprise and `quick` their quick repeats' (0: none
    given), as many gaps as the model's."""

    def as_array(values) -> np.ndarray:
        return np.zeros(len(sessions.score)) if values is None else np.asarray(values, dtype=float)

    return GapSurprise(as_array(mean), sessions.timed, as_array(quick))


def fit(ref: SequenceEvidence, free_mean=None, quick=None) -> SequenceScore:
    return SequenceScore.fit(ref, untabled(ref, free_mean, quick), TABLE)


def ranked(score: SequenceScore, sessions: SequenceEvidence, free_mean=None, quick=None) -> np.ndarray:
    return score.risk(sessions, untabled(sessions, free_mean, quick))


def reference(n_long: int, n_short: int = 2_000, seed: int = 0, gap_surprise: float = 1.0) -> SequenceEvidence:
    rng = np.random.default_rng(seed)
    n = n_long + n_short
    steps = np.concatenate([rng.integers(LONG_STEPS, 500, n_long), rng.integers(2, LONG_STEPS, n_short)])
    return evidence(rng.gamma(4.0, 1.5, n), rng.normal(1.0, 0.1, n), steps, rng.normal(gap_surprise, 0.1 * gap_surprise, n))


def test_a_long_session_unlikely_throughout_outranks_the_reference():
    ref = reference(n_long=2_000)
    score = fit(ref)
    assert score.ranks_mean
    ordinary_largest = float(np.median(ref.score))
    cases = evidence([ordinary_largest] * 2, [1.6, 1.6], [300, LONG_STEPS - 1])
    risk, on_reference = ranked(score, cases), ranked(score, ref)
    assert risk[0] > np.quantile(on_reference, 0.999)  # far beyond the reference's mean surprise
    assert risk[1] < np.quantile(on_reference, 0.9)  # the same mean in a short session: the largest step alone speaks
    assert risk[1] == score.statistics.surprisal("largest", np.array([ordinary_largest]))[0]


def test_one_very_unlikely_step_marks_a_short_session_and_a_long_one_is_judged_by_its_mean():
    score = fit(reference(n_long=2_000))
    risk = ranked(score, evidence([40.0, 40.0], [1.0, 1.0], [5, 300]))
    assert risk[0] > 4.0  # beyond 1 in 10,000 of the reference
    assert risk[1] == score.statistics.surprisal("mean", np.array([1.0]))[0] < 1.0  # an ordinary mean: one step does not mark it


def test_too_few_long_reference_sessions_leave_the_largest_step_alone():
    ref = reference(n_long=MIN_LONG_REFERENCE - 1)
    score = fit(ref)
    assert not score.ranks_mean
    cases = evidence([3.0], [5.0], [300])  # an extreme mean, nothing to rank it against
    assert ranked(score, cases)[0] == score.statistics.surprisal("largest", np.array([3.0]))[0]


def test_the_stored_score_scores_the_same():
    ref = reference(n_long=500)
    free_mean = np.random.default_rng(1).normal(1.0, 0.1, len(ref.score))
    score = fit(ref, free_mean)
    again = SequenceScore.from_bytes(score.to_bytes())
    assert again.ranks_mean and again.ranks_timing and again.ranks_free_timing
    np.testing.assert_array_equal(again.gap_table.log_p, TABLE.log_p)
    np.testing.assert_array_equal(ranked(again, ref, free_mean), ranked(score, ref, free_mean))


def test_a_session_whose_every_gap_is_unlikely_outranks_the_reference():
    ref = reference(n_long=500)
    score = fit(ref)
    assert score.ranks_timing
    ordinary_largest = float(np.median(ref.score))
    cases = evidence([ordinary_largest] * 2, [1.0, 1.0], [TIMED_STEPS + 1, TIMED_STEPS], [1.6, 1.6])
    risk, on_reference = ranked(score, cases), ranked(score, ref)
    assert risk[0] > np.quantile(on_reference, 0.999)  # a rhythm no reference session has, over enough steps
    assert risk[1] == score.statistics.surprisal("largest", np.array([ordinary_largest]))[0]  # too few gaps to judge


def test_gaps_the_model_foresees_are_not_ranked():
    ref = reference(n_long=500, gap_surprise=FORESEEN / 10)  # machine traces: events a tick apart
    score = fit(ref)
    assert not score.ranks_timing and score.ranks_mean
    foreseen, untimed = evidence([3.0], [1.0], [300], [FORESEEN]), evidence([3.0], [1.0], [300])  # ten times the reference's
    assert ranked(score, foreseen)[0] == ranked(score, untimed)[0]


def test_gaps_unusual_for_their_events_outrank_the_reference_where_the_model_foresees_them():
    ref = reference(n_long=500)
    free_mean = np.random.default_rng(1).normal(1.0, 0.1, len(ref.score))
    score = fit(ref, free_mean)
    assert score.ranks_timing and score.ranks_free_timing
    ordinary = [float(np.median(ref.score))] * 2
    cases = evidence(ordinary, [1.0, 1.0], [TIMED_STEPS + 1, TIMED_STEPS], [1.0, 1.0])  # the model's gaps' surprise ordinary
    risk, on_reference = ranked(score, cases, [1.6, 1.6]), ranked(score, ref, free_mean)
    assert risk[0] > np.quantile(on_reference, 0.999)  # a script the model learned within the session: the table did not
    assert risk[1] == score.statistics.surprisal("largest", np.array([ordinary[1]]))[0]  # too few gaps to judge
    without_table = ranked(score, cases, [1.0, 1.0])[0]
    assert without_table < np.quantile(on_reference, 0.9)


def test_quick_repeats_are_ranked_with_the_tables_mean_for_sessions_of_any_length():
    ref = reference(n_long=500)
    rng = np.random.default_rng(2)
    free_mean, quick = rng.normal(1.0, 0.1, len(ref.score)), rng.exponential(1.0, len(ref.score))
    score = fit(ref, free_mean, quick)
    assert "quick" in score.statistics.quantiles
    ordinary = [float(np.median(ref.score))] * 2
    cases = evidence(ordinary, [1.0, 1.0], [TIMED_STEPS + 1, 4], [1.0, 1.0])  # the second too short for any mean
    risk, on_reference = ranked(score, cases, [1.0, 1.0], [30.0, 30.0]), ranked(score, ref, free_mean, quick)
    assert (risk > np.quantile(on_reference, 0.999)).all()  # fifteen clickouts 5 s apart: a binomial tail far out
    without = fit(ref, np.full(len(ref.score), FORESEEN / 10), quick)  # a table sure of every gap: machine traces
    assert not without.ranks_free_timing and "quick" not in without.statistics.quantiles
