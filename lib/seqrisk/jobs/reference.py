"""The train job's work on the lake around the sequence model: the labeled sessions to leave out of
its windows, and the reference sample that fits the detectors, the combination and the calibration.
"""

from __future__ import annotations

import logging

from pyspark.sql import functions as F

from seqrisk.config import Config
from seqrisk.detectors.combination import LabelReport
from seqrisk.detectors.fitting import fit_calibration, fit_detectors, learn_from_labels, unlabeled_combination
from seqrisk.detectors.ngram_detector import NgramDetector
from seqrisk.errors import SeqriskError
from seqrisk.evaluation.labels import label_sessions, open_labels
from seqrisk.jobs.start import Job
from seqrisk.model import model_dir
from seqrisk.model.sequence_model import SequenceModel
from seqrisk.scoring.risk_model import raw_scores, scorer_input

log = logging.getLogger("seqrisk")
MAX_CASES = 10_000  # labeled sessions `train --labels` reads (to the driver); more are left out
MAX_LEFT_OUT = 100_000  # labeled sessions whose windows `train --labels` keeps from the sequence model


def labeled_session_ids(job: Job, labels: str) -> frozenset:
    """The ids of the sessions the labels mark (at most MAX_LEFT_OUT), to keep from the sequence model.

    Known cases learned as ordinary sequences would teach the model that their pattern is normal,
    for them and for unlabeled cases like them. Shuffle: a join with the (broadcast) labels.
    """
    marked = label_sessions(job.lake.read("sessions"), open_labels(job.lake.tables, job.spark, labels))
    rows = marked.filter(F.col("anomaly_type").isNotNull()).select("session_id").limit(MAX_LEFT_OUT + 1).collect()
    if len(rows) > MAX_LEFT_OUT:
        log.warning(
            "train: more than %d labeled sessions; the windows of the first %d are left out of training", MAX_LEFT_OUT, MAX_LEFT_OUT
        )
    ids = frozenset(r["session_id"] for r in rows[:MAX_LEFT_OUT])
    log.info("train: the windows of %d labeled session(s) are left out of the sequence model's training", len(ids))
    return ids


def fit_reference(
    job: Job, config: Config, model: SequenceModel, vocabulary, dates: list[str], sample_size: int, labels: str | None = None
) -> tuple[int, LabelReport | None, dict[str, bytes]]:
    """Fit the detectors, the combination and the calibration on the training dates' sessions.

    The n-gram detector counts runs of tokens over all of the training dates' (unlabeled)
    sessions on Spark; the feature and count detectors are fitted on a sample of them.

    The calibration must hold for sessions the detectors were not fitted on, so it is cross-fitted:
    each half of the sample is scored by detectors fitted on the other half, and those scores set
    the reference quantiles; the stored detectors are then fitted on the whole sample. With
    `labels`, the labeled sessions (at most MAX_CASES) are left out of the sample and set the
    combination. Returns the sessions sampled, what the labels did, and the model directory's
    files of the detectors, the calibration and the combination. Shuffles: by sequence
    hash (users per sequence), by run hash (the n-gram detector); with labels, a join with the
    (broadcast) labels.
    """
    sessions = scorer_input(job.lake.read("sessions", where={"session_date": dates}))
    cases = None
    if labels is not None:
        marked = label_sessions(sessions, open_labels(job.lake.tables, job.spark, labels))
        cases = marked.filter(F.col("anomaly_type").isNotNull()).drop("anomaly_type").limit(MAX_CASES).toPandas()
        sessions = marked.filter(F.col("anomaly_type").isNull()).drop("anomaly_type")
        log.info("train: %d labeled session(s) in the training dates (%s)", len(cases), labels)
        if len(cases) == MAX_CASES:
            log.warning("train: only the first %d labeled sessions are used", MAX_CASES)
    total = sessions.count()
    if total < 4:
        raise SeqriskError(f"the training dates hold {total} unlabeled session(s); the detectors and their calibration need at least 4")
    settings = config.train
    ngrams = NgramDetector.fit(sessions, vocabulary, settings.ngram_length, settings.ngram_min_sessions, settings.ngram_max_stored)
    fraction = min(1.0, 1.2 * sample_size / total)
    sampled = sessions.sample(fraction=fraction, seed=config.train.seed)
    reference = sampled.orderBy(F.rand(config.train.seed)).limit(sample_size).toPandas()  # a top-k: no order of the input favoured
    detector, counts, sequence, reference_raw = fit_detectors(
        reference, model, vocabulary, ngrams, settings, config.windows.stride, config.score.batch_windows, config.score.top_events
    )
    combination, label_report = unlabeled_combination(reference_raw), None
    if cases is not None:
        enough = len(cases) >= config.train.label_min_cases
        cases_raw = (
            raw_scores(cases, model, vocabulary, detector, counts, ngrams, sequence, config.windows.stride, config.score).by_detector()
            if enough
            else {}
        )
        levels = config.score.levels
        combination, label_report = learn_from_labels(
            combination, reference_raw, cases_raw, list(cases["session_id"]), settings, levels.medium, levels.high
        )
    files = {
        model_dir.FEATURE_DETECTOR: detector.to_bytes(),
        model_dir.COUNT_DETECTOR: counts.to_bytes(),
        model_dir.NGRAM_DETECTOR: ngrams.to_bytes(),
        model_dir.SEQUENCE_SCORE: sequence.to_bytes(),
        model_dir.CALIBRATION: fit_calibration(reference_raw, combination).to_bytes(),
        model_dir.COMBINATION: combination.to_bytes(),
    }
    return len(reference), label_report, files
