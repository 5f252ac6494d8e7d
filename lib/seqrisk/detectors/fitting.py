"""Fitting the feature and count detectors, the calibration and the combination (from labels too) at training time.

Everything here works on a pandas sample of reference sessions on the driver; the train job draws
the sample (and fits the n-gram detector on Spark: `NgramDetector.fit`) and stores what comes back
in the model directory.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from seqrisk.detectors.calibration import Calibration
from seqrisk.detectors.combination import DETECTORS, Combination, LabelReport, choose_weights, cutoff, with_labels
from seqrisk.detectors.count_detector import CountDetector, count_matrix
from seqrisk.detectors.feature_detector import FeatureDetector
from seqrisk.detectors.gap_table import GapSurprise, GapTable
from seqrisk.detectors.ngram_detector import NgramDetector
from seqrisk.detectors.replay_detector import abstains, replay_risk
from seqrisk.detectors.sequence_evidence import SequenceEvidence, event_types_of, session_evidence
from seqrisk.detectors.sequence_score import LONG_STEPS, MIN_LONG_REFERENCE, TIMED_STEPS, SequenceScore
from seqrisk.model.sequence_model import SequenceModel
from seqrisk.model.settings import TrainConfig
from seqrisk.sessions.features import feature_matrix
from seqrisk.sessions.vocabulary import Vocabulary, encode_sessions

log = logging.getLogger("seqrisk")


def fit_detectors(
    reference: pd.DataFrame,
    model: SequenceModel,
    vocabulary: Vocabulary,
    ngrams: NgramDetector,
    settings: TrainConfig,
    stride: int,
    batch_windows: int,
    top_k: int,
) -> tuple[FeatureDetector, CountDetector, SequenceScore, dict[str, np.ndarray]]:
    """(feature detector, count detector, sequence score, reference scores) from a pandas sample of reference sessions.

    The reference scores (by detector) hold for sessions the detectors were not fitted on: the
    feature and count detectors' and the gap table's are cross-fitted (each half scored by
    detectors fitted on the other), the n-gram detector's leave each session out (`ngrams` was
    fitted on sessions that include the sample). The sequence score ranks its statistics on the
    same sample the calibration ranks its scores on (the model was trained on the training dates
    either way).
    """
    event_types = event_types_of(vocabulary, settings.feature_event_types)
    X, names = feature_matrix(reference, event_types)
    encoded = encode_sessions(reference, vocabulary)  # every detector reads the same token and gap bucket ids
    C = count_matrix(encoded.tokens, reference["item_revisits"], vocabulary, settings.count_columns)
    halves = np.array_split(np.random.default_rng(settings.seed).permutation(len(reference)), 2)
    feature_risk, count_risk = np.zeros(len(reference)), np.zeros(len(reference))
    for scored, fitted in ((halves[0], halves[1]), (halves[1], halves[0])):
        feature_risk[scored] = FeatureDetector.fit(X[fitted], names, event_types, settings.seed, settings.detector_trees).risk(X[scored])
        count_risk[scored] = CountDetector.fit(C[fitted], settings.count_floor).risk(C[scored])
    free = _cross_fitted_gaps(vocabulary, *encoded, halves)
    evidence = session_evidence(
        reference, encoded, model, vocabulary, length=model.config.max_len, stride=stride, batch_windows=batch_windows, top_k=top_k
    )
    detector = FeatureDetector.fit(X, names, event_types, settings.seed, settings.detector_trees)
    sequence = SequenceScore.fit(evidence, free, _gap_table(vocabulary, *encoded))
    _log_ranked(evidence, sequence)
    ngram_risk, _ = ngrams.risk(encoded.tokens, in_reference=True)
    reference_raw = {
        "sequence": sequence.risk(evidence, free),
        "feature": feature_risk,
        "count": count_risk,
        "ngram": ngram_risk,
        "replay": replay_risk(reference),
    }
    return detector, CountDetector.fit(C, settings.count_floor), sequence, reference_raw


def _gap_table(vocabulary: Vocabulary, tokens: list[np.ndarray], gaps: list[np.ndarray]) -> GapTable:
    return GapTable.fit(tokens, gaps, vocabulary.size, vocabulary.gap_bucket_count)


def _cross_fitted_gaps(vocabulary: Vocabulary, tokens: list[np.ndarray], gaps: list[np.ndarray], halves: list[np.ndarray]) -> GapSurprise:
    """Each half's gaps under the gap table counted on the other half."""
    free = GapSurprise(np.zeros(len(tokens)), np.zeros(len(tokens), dtype=np.int64), np.zeros(len(tokens)))
    for scored, fitted in ((halves[0], halves[1]), (halves[1], halves[0])):
        table = _gap_table(vocabulary, [tokens[i] for i in fitted], [gaps[i] for i in fitted])
        part = table.surprise([tokens[i] for i in scored], [gaps[i] for i in scored])
        free.mean[scored], free.gaps[scored], free.quick[scored] = part.mean, part.gaps, part.quick
    return free


def _log_ranked(evidence: SequenceEvidence, sequence: SequenceScore) -> None:
    """Say in the train log which of the sequence score's statistics are ranked, and why not."""
    log.info(
        "train: %d reference sessions of %d predicted steps or more: %s",
        int(np.sum(evidence.steps >= LONG_STEPS)),
        LONG_STEPS,
        "their mean surprise speaks for them, not their largest step"
        if sequence.ranks_mean
        else f"fewer than {MIN_LONG_REFERENCE}, the largest step speaks alone",
    )
    log.info(
        "train: %d reference sessions of %d gaps or more: %s",
        int(np.sum(evidence.timed >= TIMED_STEPS)),
        TIMED_STEPS,
        "their gaps' mean surprise is ranked" if sequence.ranks_timing else "too few, or gaps the model always foresees: not ranked",
    )
    if not sequence.ranks_free_timing:
        log.info(
            "train: the gaps given their event alone (mean, quick repeats) are not ranked: too few sessions, or gaps always in one bucket"
        )


def unlabeled_combination(reference_raw: dict) -> Combination:
    """Every detector at weight 1, but the replay detector at 0 where it abstains on the reference."""
    weights = dict.fromkeys(DETECTORS, 1.0)
    if abstains(reference_raw["replay"]):
        weights["replay"] = 0.0
        share = float(np.mean(reference_raw["replay"] > 0))
        log.info(
            "train: %.1f %% of the reference sessions are long sequences another user played too: the replay detector abstains", 100 * share
        )
    return Combination(weights)


def learn_from_labels(
    default: Combination, reference_raw: dict, cases_raw: dict, session_ids: list[str], settings: TrainConfig, medium: float, high: float
) -> tuple[Combination, LabelReport]:
    """The detectors' weights and the `high` cut-off from the labeled cases' scores, beside the `default` (unlabeled) weights.

    `medium`, `high`: the configured levels.
    """
    if len(session_ids) < settings.label_min_cases:
        report = LabelReport(len(session_ids), False, default.weights, 0, 0, high)
        return with_labels(default, report, session_ids), report
    parts = Calibration.fit(reference_raw)
    reference, cases = surprisals(parts, reference_raw), surprisals(parts, cases_raw)
    weights, caught, caught_default = choose_weights(reference, cases, default.weights)
    combination = Combination(weights)
    calibration = fit_calibration(reference_raw, combination)
    case_pct = calibration.percentile("combined", combination.score(cases))
    reference_pct = calibration.percentile("combined", combination.score(reference))
    learned_high = cutoff(case_pct, settings.label_recall, medium, high)
    report = LabelReport(
        len(session_ids),
        True,
        weights,
        caught_default,
        caught,
        high,
        learned_high,
        float(np.mean(case_pct >= learned_high)),
        float(np.mean(reference_pct >= learned_high)),
    )
    log.info("train: labels: %s", "; ".join(report.lines()))
    return with_labels(combination, report, session_ids), report


def fit_calibration(reference: dict[str, np.ndarray], combination: Combination) -> Calibration:
    """Reference quantiles of each detector's raw score and of the combined score.

    `reference` holds each detector's scores of reference sessions it was not fitted on (see
    `fit_detectors`), so the percentiles hold for sessions scored later.
    """
    scores = {name: reference[name] for name in DETECTORS}
    parts = Calibration.fit(scores)
    joint = combination.score(surprisals(parts, scores))
    return Calibration.fit({**scores, "combined": joint})


def surprisals(calibration: Calibration, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each detector's raw scores as surprisals on the reference population."""
    return {name: calibration.surprisal(name, raw[name]) for name in DETECTORS}
