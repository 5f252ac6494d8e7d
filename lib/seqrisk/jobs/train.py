"""The train job: the sequence model on the `windows` table, then the detectors and the calibration,
published as a new versioned model directory under `model.dir` (any URI), and, with MLflow on
(`mlflow.tracking_uri`), logged as a run and registered (`seqrisk.registry.tracking`).

`train.workers` ranks run the training loop on Spark barrier tasks, started by Horovod or by
TorchDistributor and fed by Petastorm or the Arrow reader (`seqrisk.model.launch`; one rank in the
driver for a single worker or `--dry-run`); rank 0 hands its weights back, and the driver fits the
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
from seqrisk.detectors.combination import LabelReport
from seqrisk.errors import SeqriskError
from seqrisk.jobs.reference import fit_reference, labeled_session_ids
from seqrisk.jobs.report import line, report
from seqrisk.jobs.start import Job, start_job
from seqrisk.model import launch, model_dir
from seqrisk.model.sequence_model import ModelConfig, SequenceModel
from seqrisk.model.training import RankResult, TrainPlan
from seqrisk.model.training_data import chronological_split, local_threads, row_groups_by_file, window_length
from seqrisk.registry import model_store, tracking
from seqrisk.scoring.risk_model import scorer_input
from seqrisk.sessions import vocabulary_store
from seqrisk.sessions.vocabulary import Vocabulary

log = logging.getLogger("seqrisk")


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
    launcher: str = ""
    reader: str = ""

    def report(self) -> str:
        history = self.result["history"]
        last = history[-1]
        return report(
            f"train {self.run_id}: model {self.version}",
            line("model directory", self.model_dir),
            line("workers", f"{self.result['workers']} ({self.result['device']})"),
            line("launcher", f"{self.launcher}, {self.reader} reader"),
            line("epochs", f"{len(history)}{self._epochs_note()}"),
            line("best val loss", f"{self.result['best_val_loss']:.4f} (epoch {self.result['best_epoch']})"),
            line("last train loss", f"{last['train_loss']:.4f}"),
            line("throughput", f"{last['windows_per_s']:,.0f} windows/s"),
            line("reference sample", f"{self.reference_sessions:,} sessions (second detector, calibration)"),
            *(line("labels", text) for text in (self.labels.lines() if self.labels else [])),
            *([line("MLflow run", self.mlflow_run_id)] if self.mlflow_run_id else []),
            *([line("registered", f"{self.registered.uri} (alias {self.registered_alias})")] if self.registered else []),
        )

    def _epochs_note(self) -> str:
        """Why training stopped, and whether more epochs could still have lowered the validation loss."""
        if self.result["stopped_early"]:
            return " (stopped early)"
        if self.result["best_epoch"] == len(self.result["history"]) - 1 and len(self.result["history"]) > 1:
            return " (validation loss still falling: more epochs help only where the training dates are known normal, README)"
        return ""


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
    launcher = launch.resolve(config.train.launcher, "horovod", "torch_distributor") if workers > 1 else "none"
    reader = launch.resolve(config.train.reader, "petastorm", "arrow")
    plan = _plan(job, config, vocabulary, train_dates, val_dates, workers, dry_run, left_out, reader)
    dry = " (dry run)" if dry_run else ""
    log.info(
        "train: %d train and %d validation files, %d worker(s), launcher %s, %s reader%s",
        len(plan.train_files),
        len(plan.val_files),
        workers,
        launcher,
        reader,
        dry,
    )
    use_gpu = job.spark.conf.get("spark.task.resource.gpu.amount", None) is not None  # a GPU cluster schedules GPUs per task
    ranked, weights = _trained(launch.launch(plan, workers, launcher, use_gpu))
    model, files = _sequence_model(plan, vocabulary, ranked, weights)
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
            "trained_with": {"launcher": launcher, "reader": reader},
            "score": config.score.model_dump(mode="json", exclude={"model"}),  # the pyfunc scores with these
        },
    )
    uri = model_store.publish(job.spark, config.model.dir, directory)
    log.info("train: model %s published at %s", version, uri)
    result = ranked.result.to_json()
    summary = TrainSummary(job.run_id, uri, version, len(plan.train_files), len(plan.val_files), reference_sessions, result, label_report)
    summary.launcher, summary.reader = launcher, reader
    return summary, directory


def _sequence_model(plan: TrainPlan, vocabulary: Vocabulary, ranked: RankResult, weights: bytes) -> tuple[SequenceModel, dict[str, bytes]]:
    """The trained sequence model, loaded for the detectors' fitting, and its files of the model directory."""
    model = SequenceModel(plan.model)
    model.load_state_dict(model_dir.weights_from_bytes(weights))
    model.eval()
    files = {
        model_dir.WEIGHTS: weights,
        model_dir.HISTORY: json.dumps(ranked.result.to_json(), indent=1).encode(),
        model_dir.PROBE: model_dir.probe_bytes(model, ranked.probe_tokens, ranked.probe_gaps),
        model_dir.VOCABULARY: vocabulary.to_json().encode(),
    }
    return model, files


def _plan(
    job: Job,
    config: Config,
    vocabulary: Vocabulary,
    train_dates: list[str],
    val_dates: list[str],
    workers: int,
    dry_run: bool,
    left_out: frozenset,
    reader: str,
) -> TrainPlan:
    """What every rank is given: the windows files of each split, the model's shape, the settings (smaller for a dry run)."""
    windows_path = job.lake.path("windows")
    train_files = job.lake.tables.files(windows_path, {"session_date": train_dates})
    val_files = job.lake.tables.files(windows_path, {"session_date": val_dates})
    row_groups = row_groups_by_file(train_files + val_files)  # every footer, once, on the driver
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
        shard=min(sum(row_groups[f] for f in train_files), sum(row_groups[f] for f in val_files)) >= workers,
        threads_per_worker=local_threads(workers),
        left_out=left_out,
        reader=reader,
        row_groups=row_groups,
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
