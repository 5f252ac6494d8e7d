"""The train job: the sequence model on the `windows` table, then the detectors and the calibration,
published as a new versioned model directory under `model.dir` (any URI), and, with MLflow on
(`mlflow.tracking_uri`), logged as a run and registered (`seqrisk.registry.tracking`).

`train.workers` Horovod ranks run the training loop (`seqrisk.model.horovod_launcher`) on Spark barrier
tasks (one in the driver for a single worker or `--dry-run`); rank 0 hands its weights back, and the driver fits the
feature and count detectors, the combination and the calibration, assembles the directory and
publishes it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from seqrisk.config import Config
from seqrisk.detectors.combination import Combination, LabelReport
from seqrisk.detectors.fitting import fit_calibration, fit_detectors, learn_from_labels
from seqrisk.errors import SeqriskError
from seqrisk.evaluation.labels import label_sessions, open_labels
from seqrisk.jobs.report import line, report
from seqrisk.jobs.start import Job, start_job
from seqrisk.model import model_dir
from seqrisk.model.horovod_launcher import run_horovod
from seqrisk.model.sequence_model import ModelConfig, SequenceModel
from seqrisk.model.training import RankResult, TrainPlan
from seqrisk.model.training_data import chronological_split, local_threads, row_groups, window_length
from seqrisk.registry import model_store, tracking
from seqrisk.scoring.risk_model import raw_scores, scorer_input
from seqrisk.sessions import vocabulary_store
from seqrisk.sessions.vocabulary import Vocabulary

log = logging.getLogger("seqrisk")
MAX_CASES = 10_000  # labeled sessions `train --labels` reads (to the driver); more are left out
MAX_LEFT_OUT = 100_000  # labeled sessions whose windows `train --labels` keeps from the sequence model


# -- the job (driver side) ----------------------------------------------------------------------


@dataclass
class TrainSummary:
    run_id: str
    model_dir: str
    version: str
    windows_train_files: int
    windows_val_files: int
    reference_sessions: int
    result: dict
    labels: LabelReport | None = None
    mlflow_run_id: str | None = None
    registered: tracking.RegisteredVersion | None = None
    registered_alias: str = ""

    def report(self) -> str:
        history = self.result["history"]
        last = history[-1]
        return report(
            f"train {self.run_id}: model {self.version}",
            line("model directory", self.model_dir),
            line("workers", f"{self.result['workers']} ({self.result['device']})"),
            line("epochs", f"{len(history)}" + (" (stopped early)" if self.result["stopped_early"] else "")),
            line("best val loss", f"{self.result['best_val_loss']:.4f} (epoch {self.result['best_epoch']})"),
            line("last train loss", f"{last['train_loss']:.4f}"),
            line("throughput", f"{last['windows_per_s']:,.0f} windows/s"),
            line("reference sample", f"{self.reference_sessions:,} sessions (second detector, calibration)"),
            *(line("labels", text) for text in (self.labels.lines() if self.labels else [])),
            *([line("MLflow run", self.mlflow_run_id)] if self.mlflow_run_id else []),
            *([line("registered", f"{self.registered.uri} (alias {self.registered_alias})")] if self.registered else []),
        )


def run_train(config: Config, *, dry_run: bool = False, labels: str | None = None, spark: SparkSession | None = None) -> TrainSummary:
    """Train on the `windows` table and publish a new versioned model directory.

    With `labels` (a labels file or table), the labeled sessions are kept out of the sequence
    model's training and validation windows and out of the reference sample, and those of the
    training dates weight the detectors and set the `high` cut-off (combination.py).
    """
    job = start_job("train", config, spark)
    with tracking.training_run(config.mlflow, job.run_id) as run:
        summary, directory = _train(job, config, dry_run, labels, run.run_id if run else None)
        if run is not None:
            summary.mlflow_run_id = run.run_id
            run.log_training(_params(config, dry_run, labels), summary.result["history"], _tags(job, summary))
            summary.registered = run.log_model(directory, _example_sessions(job))
            summary.registered_alias = config.mlflow.candidate_alias
    return summary


def _train(
    job: Job, config: Config, dry_run: bool, labels: str | None, mlflow_run_id: str | None
) -> tuple[TrainSummary, model_dir.ModelDir]:
    """Train and publish; the summary and the published directory's files."""
    windows_path = job.lake.path("windows")
    if not job.lake.exists("windows"):
        raise SeqriskError(f"no windows table at {windows_path}; run `seqrisk sessionize` first")
    vocabulary = vocabulary_store.windows_vocabulary(job.lake)
    train_dates, val_dates = chronological_split(job.lake.tables, windows_path, config.train.val_fraction)
    left_out = labeled_session_ids(job, labels) if labels is not None else frozenset()
    workers = 1 if dry_run else config.train.workers
    plan = _plan(job, config, vocabulary, train_dates, val_dates, workers, dry_run, left_out)
    log.info(
        "train: %d train and %d validation files, %d worker(s)%s",
        len(plan.train_files),
        len(plan.val_files),
        workers,
        " (dry run)" if dry_run else "",
    )
    ranked, weights = _trained(run_horovod(plan, workers))
    model = SequenceModel(plan.model)
    model.load_state_dict(model_dir.weights_from_bytes(weights))
    model.eval()
    files = {
        model_dir.WEIGHTS: weights,
        model_dir.HISTORY: json.dumps(ranked.result.to_json(), indent=1).encode(),
        model_dir.PROBE: model_dir.probe_bytes(model, ranked.probe_tokens, ranked.probe_gaps),
        model_dir.VOCABULARY: vocabulary.to_json().encode(),
    }
    sample_size = min(config.train.reference_sessions, 2000) if dry_run else config.train.reference_sessions
    log.info("train: fitting the feature and count detectors and the calibration on up to %d reference sessions", sample_size)
    reference_sessions, label_report, detector_files = fit_reference(job, config, model, vocabulary, train_dates, sample_size, labels)
    version = model_dir.new_version(job.started_at)
    directory = model_dir.ModelDir.assemble(
        version,
        plan.model,
        {**files, **detector_files},
        {
            "run_id": job.run_id,
            "dry_run": dry_run,
            "train": config.train.model_dump(),
            "windows": config.windows.model_dump(),
            "trained_on": windows_path,
            "reference_sessions": reference_sessions,
            "labels": labels,
            "mlflow_run_id": mlflow_run_id,
        },
    )
    uri = model_store.publish(job.spark, config.model.dir, directory)
    log.info("train: model %s published at %s", version, uri)
    result = ranked.result.to_json()
    summary = TrainSummary(job.run_id, uri, version, len(plan.train_files), len(plan.val_files), reference_sessions, result, label_report)
    return summary, directory


def _plan(
    job: Job,
    config: Config,
    vocabulary: Vocabulary,
    train_dates: list[str],
    val_dates: list[str],
    workers: int,
    dry_run: bool,
    left_out: frozenset,
) -> TrainPlan:
    """What every rank is given: the windows files of each split, the model's shape, the settings (smaller for a dry run)."""
    windows_path = job.lake.path("windows")
    train_files = job.lake.tables.files(windows_path, {"session_date": train_dates})
    val_files = job.lake.tables.files(windows_path, {"session_date": val_dates})
    settings, shape = config.train, config.model
    return TrainPlan(
        train_files=train_files,
        val_files=val_files,
        model=ModelConfig(
            vocab_size=vocabulary.size,
            gap_buckets=vocabulary.gap_bucket_count,
            max_len=window_length(job.lake.tables, windows_path),
            arch=shape.arch,
            d_model=shape.d_model,
            n_layers=shape.n_layers,
            n_heads=shape.n_heads,
            dropout=shape.dropout,
        ),
        batch_size=min(settings.batch_size, 64) if dry_run else settings.batch_size,
        learning_rate=settings.learning_rate,
        epochs=1 if dry_run else settings.epochs,
        steps_per_epoch=3 if dry_run else settings.steps_per_epoch,
        val_steps=1 if dry_run else settings.val_steps,
        patience=settings.patience,
        seed=settings.seed,
        mixed_precision=settings.mixed_precision,
        shard=min(row_groups(train_files), row_groups(val_files)) >= workers,
        threads_per_worker=local_threads(workers),
        left_out=left_out,
    )


def _trained(ranked: RankResult | None) -> tuple[RankResult, bytes]:
    """Rank 0's result and its best weights; a clear error when training produced none."""
    if ranked is None:
        raise SeqriskError("training produced no result; see the worker logs above")
    if ranked.weights is None:
        raise SeqriskError(
            f"training diverged: the loss was not finite (NaN or infinite) at epoch {ranked.result.diverged_epoch}, "
            "before any epoch ended with a finite validation loss; no model was published. Lower "
            "train.learning_rate, or look for windows the model cannot read (vocabulary, gap buckets)"
        )
    if ranked.result.diverged_epoch is not None:
        log.warning(
            "train: the loss diverged at epoch %d; the model of epoch %d is kept", ranked.result.diverged_epoch, ranked.result.best_epoch
        )
    return ranked, ranked.weights


def _params(config: Config, dry_run: bool, labels: str | None) -> dict:
    """The settings that shape a model, flat (`model.d_model`, `train.epochs`, ...), for MLflow."""
    sections = {"model": config.model, "train": config.train, "windows": config.windows, "vocabulary": config.vocabulary}
    flat = {f"{name}.{key}": value for name, section in sections.items() for key, value in section.model_dump(mode="json").items()}
    return {**flat, "dry_run": dry_run, "labels": labels}


def _tags(job: Job, summary: TrainSummary) -> dict:
    """Which model this run made, and the versions of the tables it read."""
    tables = job.lake.tables
    return {
        "seqrisk.run_id": job.run_id,
        "seqrisk.model_version": summary.version,
        "seqrisk.model.model_dir": summary.model_dir,
        **{f"seqrisk.table.{name}.version": tables.version(job.lake.path(name)) for name in ("windows", "sessions")},
    }


def _example_sessions(job: Job):
    """A few sessions as the scorer reads them: the registered model's input example for its signature."""
    first = job.lake.read("sessions").select(F.min("session_date")).collect()[0][0]
    return scorer_input(job.lake.read("sessions", where={"session_date": [str(first)]})).limit(5).toPandas()


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
    """Fit the feature and count detectors, the combination and the calibration on a sample of the training dates' sessions.

    The calibration must hold for sessions the detectors were not fitted on, so it is cross-fitted:
    each half of the sample is scored by detectors fitted on the other half, and those scores set
    the reference quantiles; the stored detectors are then fitted on the whole sample. With
    `labels`, the labeled sessions (at most MAX_CASES) are left out of the sample and set the
    combination. Returns the sessions sampled, what the labels did, and the model directory's
    files of the detectors, the calibration and the combination. Shuffles: by sequence
    hash (users per sequence); with labels, a join with the (broadcast) labels.
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
    fraction = min(1.0, 1.2 * sample_size / total)
    sampled = sessions.sample(fraction=fraction, seed=config.train.seed)
    reference = sampled.orderBy(F.rand(config.train.seed)).limit(sample_size).toPandas()  # a top-k: no order of the input favoured
    detector, counts, reference_raw = fit_detectors(
        reference, model, vocabulary, config.train, config.windows.stride, config.score.batch_windows, config.score.top_events
    )
    combination, label_report = Combination(), None
    if cases is not None:
        enough = len(cases) >= config.train.label_min_cases
        cases_raw = (
            raw_scores(cases, model, vocabulary, detector, counts, config.windows.stride, config.score).by_detector() if enough else {}
        )
        combination, label_report = learn_from_labels(
            reference_raw, cases_raw, list(cases["session_id"]), config.train, config.score.levels.medium, config.score.levels.high
        )
    files = {
        model_dir.FEATURE_DETECTOR: detector.to_bytes(),
        model_dir.COUNT_DETECTOR: counts.to_bytes(),
        model_dir.CALIBRATION: fit_calibration(reference_raw, combination).to_bytes(),
        model_dir.COMBINATION: combination.to_bytes(),
    }
    return len(reference), label_report, files
