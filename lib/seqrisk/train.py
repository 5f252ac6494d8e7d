"""Training the sequence model: one function every Horovod rank runs, fed by Petastorm.

`train_worker` is what `horovod.spark.run` starts on each Spark barrier task (and what a single
process runs without Spark). Each rank reads its shard of the `windows` table's Parquet files with
Petastorm's batch reader, straight from the files the Delta log lists: no copy of the data.
Lines that only make sense with several workers are marked `# hvd`. Rank 0 alone logs, and returns
its best weights through the Horovod run's result: the driver assembles the model directory and
publishes it to `model.dir` (any URI), so no executor writes to a shared disk.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator, Optional

import numpy as np
import torch

from seqrisk import model_dir
from seqrisk.combination import Combination, LabelReport, choose_weights, cutoff, with_labels
from seqrisk.errors import SeqriskError
from seqrisk.model import ModelConfig, SequenceModel, next_event_loss, warmup_cosine

log = logging.getLogger("seqrisk")
MAX_CASES = 10_000  # labeled sessions `train --labels` reads (to the driver); more are left out


@dataclass(frozen=True)
class TrainPlan:
    """Everything a rank needs, as plain values (it is pickled to the executors)."""

    train_files: list[str]
    val_files: list[str]
    model: ModelConfig
    batch_size: int = 256
    learning_rate: float = 1e-3  # per worker; scaled by the number of workers
    epochs: int = 8
    steps_per_epoch: int = 100
    val_steps: int = 20
    patience: int = 2  # epochs without a better validation loss before stopping
    seed: int = 7
    mixed_precision: bool = True  # bf16 autocast on CUDA; ignored on CPU
    shard: bool = True  # False when there are fewer row groups than workers: every rank reads all
    threads_per_worker: int = 1


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    windows_per_s: float
    seconds: float


@dataclass
class TrainResult:
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = float("inf")
    workers: int = 1
    device: str = "cpu"
    stopped_early: bool = False

    def to_json(self) -> dict:
        return {**asdict(self), "history": [asdict(h) for h in self.history]}


@dataclass
class RankResult:
    """What rank 0 hands back to the driver: the history, the best weights, windows for the probe."""

    result: TrainResult
    weights: bytes
    probe_tokens: np.ndarray
    probe_gaps: np.ndarray


def train_worker(plan: TrainPlan) -> Optional[RankResult]:
    """Train on this rank's shard; rank 0 returns the result with the best weights, the others None."""
    import horovod.torch as hvd
    from petastorm import make_batch_reader

    hvd.init()  # hvd
    rank, size = hvd.rank(), hvd.size()
    if rank == 0:
        from seqrisk.job import enable_progress_logging

        enable_progress_logging()  # this may be a fresh worker process
    torch.manual_seed(plan.seed)
    torch.set_num_threads(plan.threads_per_worker)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(hvd.local_rank())  # hvd: one GPU per process
    device = torch.device("cuda" if cuda else "cpu")
    amp = cuda and plan.mixed_precision

    model = SequenceModel(plan.model).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=plan.learning_rate * size, weight_decay=0.01)  # hvd: lr x workers
    optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters())  # hvd
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)  # hvd: every rank starts from rank 0's weights
    hvd.broadcast_optimizer_state(optimizer, root_rank=0)  # hvd
    total_steps = plan.epochs * plan.steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, total_steps, max(1, total_steps // 20)))

    shard = dict(cur_shard=rank, shard_count=size) if plan.shard else {}
    readers = dict(schema_fields=["tokens", "gap_buckets"], num_epochs=None, workers_count=2, **shard)
    result = TrainResult(workers=size, device=str(device))
    best_state, bad_epochs = None, 0
    with make_batch_reader(plan.train_files, seed=plan.seed + rank, **readers) as train_reader, make_batch_reader(
        plan.val_files, seed=plan.seed, shuffle_row_groups=False, **readers
    ) as val_reader:
        train_batches = fixed_batches(train_reader, plan.batch_size, np.random.default_rng(plan.seed + rank))
        val_batches = fixed_batches(val_reader, plan.batch_size, None)
        for epoch in range(plan.epochs):
            started = time.perf_counter()
            model.train()
            losses = []
            for _ in range(plan.steps_per_epoch):
                tokens, gaps = (torch.from_numpy(a).to(device) for a in next(train_batches))
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    loss = next_event_loss(model(tokens, gaps).float(), tokens)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                losses.append(loss.item())
            seconds = time.perf_counter() - started
            train_loss = hvd.allreduce(torch.tensor(float(np.mean(losses))), name="train_loss").item()  # hvd
            val_loss = hvd.allreduce(torch.tensor(_evaluate(model, val_batches, plan, device, amp)), name="val_loss").item()  # hvd
            record = EpochRecord(epoch, train_loss, val_loss, plan.steps_per_epoch * plan.batch_size * size / seconds, seconds)
            result.history.append(record)
            if rank == 0:
                log.info(
                    "train: epoch %d  loss %.4f  val %.4f  %.0f windows/s (%d workers)",
                    epoch, train_loss, val_loss, record.windows_per_s, size,
                )
            if val_loss < result.best_val_loss - 1e-4:
                result.best_epoch, result.best_val_loss, bad_epochs = epoch, val_loss, 0
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1
                if bad_epochs >= plan.patience:  # every rank sees the same averaged val loss: all stop together
                    result.stopped_early = True
                    break
        probe_tokens, probe_gaps = next(val_batches)
    if rank != 0:
        return None
    return RankResult(result, model_dir.weights_to_bytes(best_state), probe_tokens[:model_dir.PROBE_WINDOWS], probe_gaps[:model_dir.PROBE_WINDOWS])


@torch.no_grad()
def _evaluate(model: SequenceModel, batches: Iterator, plan: TrainPlan, device, amp: bool) -> float:
    model.eval()
    losses = []
    for _ in range(plan.val_steps):
        tokens, gaps = (torch.from_numpy(a).to(device) for a in next(batches))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            losses.append(next_event_loss(model(tokens, gaps).float(), tokens).item())
    return float(np.mean(losses))


def fixed_batches(reader, batch_size: int, rng: Optional[np.random.Generator]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Petastorm yields one row group at a time; hand out (tokens, gaps) batches of one fixed size.

    With `rng`, rows are shuffled within a buffer of a few row groups.
    """
    tokens_buffer: list[np.ndarray] = []
    gaps_buffer: list[np.ndarray] = []
    held = 0
    for chunk in reader:
        tokens_buffer.append(np.stack(chunk.tokens).astype(np.int64))
        gaps_buffer.append(np.stack(chunk.gap_buckets).astype(np.int64))
        held += len(chunk.tokens)
        if held < 4 * batch_size:
            continue
        tokens, gaps = np.concatenate(tokens_buffer), np.concatenate(gaps_buffer)
        if rng is not None:
            order = rng.permutation(len(tokens))
            tokens, gaps = tokens[order], gaps[order]
        usable = (len(tokens) // batch_size) * batch_size
        for start in range(0, usable, batch_size):
            yield tokens[start : start + batch_size], gaps[start : start + batch_size]
        tokens_buffer, gaps_buffer = [tokens[usable:]], [gaps[usable:]]
        held = len(tokens) - usable


def local_threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


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
    labels: Optional[LabelReport] = None

    def report(self) -> str:
        history = self.result["history"]
        last = history[-1]
        return "\n".join(
            [
                f"train {self.run_id}: model {self.version}",
                f"  model directory     {self.model_dir}",
                f"  workers             {self.result['workers']} ({self.result['device']})",
                f"  epochs              {len(history)}" + (" (stopped early)" if self.result["stopped_early"] else ""),
                f"  best val loss       {self.result['best_val_loss']:.4f} (epoch {self.result['best_epoch']})",
                f"  last train loss     {last['train_loss']:.4f}",
                f"  throughput          {last['windows_per_s']:,.0f} windows/s",
                f"  reference sample    {self.reference_sessions:,} sessions (second detector, calibration)",
                *(f"  labels              {line}" for line in (self.labels.lines() if self.labels else [])),
            ]
        )


def run_train(config, *, dry_run: bool = False, labels: Optional[str] = None, spark=None) -> TrainSummary:
    """Train on the `windows` table and publish a new versioned model directory.

    With `labels` (a labels file or table), the labeled sessions of the training dates are kept out
    of the reference sample and weight the detectors and set the `high` cut-off (combination.py).
    """
    import horovod.spark

    from seqrisk import model_store, vocabulary_store
    from seqrisk.job import start_job

    job = start_job("train", config, spark)
    windows_path = job.lake.path("windows")
    if not job.lake.exists("windows"):
        raise SeqriskError(f"no windows table at {windows_path}; run `seqrisk sessionize` first")
    vocabulary = vocabulary_store.windows_vocabulary(job.lake)
    train_dates, val_dates = chronological_split(job.lake.tables, windows_path, config.train.val_fraction)
    train_files = job.lake.tables.files(windows_path, {"session_date": train_dates})
    val_files = job.lake.tables.files(windows_path, {"session_date": val_dates})
    settings = config.train
    workers = 1 if dry_run else settings.workers
    plan = TrainPlan(
        train_files=train_files,
        val_files=val_files,
        model=ModelConfig(
            vocab_size=vocabulary.size,
            gap_buckets=vocabulary.gap_bucket_count,
            max_len=window_length(job.lake.tables, windows_path),
            arch=config.model.arch,
            d_model=config.model.d_model,
            n_layers=config.model.n_layers,
            n_heads=config.model.n_heads,
            dropout=config.model.dropout,
        ),
        batch_size=min(settings.batch_size, 64) if dry_run else settings.batch_size,
        learning_rate=settings.learning_rate,
        epochs=1 if dry_run else settings.epochs,
        steps_per_epoch=3 if dry_run else settings.steps_per_epoch,
        val_steps=1 if dry_run else settings.val_steps,
        patience=settings.patience,
        seed=settings.seed,
        mixed_precision=settings.mixed_precision,
        shard=min(_row_groups(train_files), _row_groups(val_files)) >= workers,
        threads_per_worker=local_threads(workers),
    )
    log.info(
        "train: %d train and %d validation files, %d worker(s)%s", len(train_files), len(val_files), workers, " (dry run)" if dry_run else ""
    )
    if workers == 1:
        ranked = train_worker(plan)
    else:
        results = horovod.spark.run(train_worker, args=(plan,), num_proc=workers, use_gloo=True, verbose=0)  # hvd
        ranked = next((r for r in results if r is not None), None)  # rank 0's
    if ranked is None:
        raise SeqriskError("training produced no result; see the worker logs above")
    model = SequenceModel(plan.model)
    model.load_state_dict(model_dir.weights_from_bytes(ranked.weights))
    model.eval()
    files = {
        model_dir.WEIGHTS: ranked.weights,
        model_dir.HISTORY: json.dumps(ranked.result.to_json(), indent=1).encode(),
        model_dir.PROBE: model_dir.probe_bytes(model, ranked.probe_tokens, ranked.probe_gaps),
        model_dir.VOCABULARY: vocabulary.to_json().encode(),
    }
    sample_size = min(settings.reference_sessions, 2000) if dry_run else settings.reference_sessions
    log.info("train: fitting the feature and count detectors and the calibration on up to %d reference sessions", sample_size)
    reference_sessions, label_report, detector_files = fit_reference(job, config, model, vocabulary, train_dates, sample_size, labels)
    version = model_dir.new_version(job.started_at)
    directory = model_dir.ModelDir.assemble(
        version,
        plan.model,
        {**files, **detector_files},
        {"run_id": job.run_id, "dry_run": dry_run, "train": settings.model_dump(), "windows": config.windows.model_dump(), "trained_on": windows_path,
         "reference_sessions": reference_sessions, "labels": labels},
    )
    uri = model_store.publish(job.spark, config.model.dir, directory)
    log.info("train: model %s published at %s", version, uri)
    result = ranked.result.to_json()
    return TrainSummary(job.run_id, uri, version, len(train_files), len(val_files), reference_sessions, result, label_report)


def chronological_split(tables, windows_path: str, val_fraction: float) -> tuple[list[str], list[str]]:
    """The earlier session dates for training, the latest ones for validation (ISO strings)."""
    dates = sorted(r["session_date"].isoformat() for r in tables.read(windows_path).select("session_date").distinct().collect())
    if len(dates) < 2:
        raise SeqriskError(f"{windows_path} holds {len(dates)} session date(s); a chronological validation split needs at least 2")
    cut = min(len(dates) - 1, max(1, round(len(dates) * (1 - val_fraction))))
    return dates[:cut], dates[cut:]


def fit_reference(
    job, config, model: SequenceModel, vocabulary, dates: list[str], sample_size: int, labels: Optional[str] = None
) -> tuple[int, Optional[LabelReport], dict[str, bytes]]:
    """Fit the feature and count detectors, the combination and the calibration on a sample of the training dates' sessions.

    The calibration must hold for sessions the detectors were not fitted on, so it is cross-fitted:
    each half of the sample is scored by detectors fitted on the other half, and those scores set
    the reference quantiles; the stored detectors are then fitted on the whole sample. With
    `labels`, the labeled sessions (at most MAX_CASES) are left out of the sample and set the
    combination. Returns the sessions sampled, what the labels did, and the model directory's
    files of the detectors, the calibration and the combination. Shuffles: by sequence
    hash (users per sequence); with labels, a join with the (broadcast) labels.
    """
    from pyspark.sql import functions as F

    from seqrisk.labels import label_sessions, open_labels
    from seqrisk.scoring import fit_calibration, raw_scores, scorer_input

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
    reference = sessions.sample(fraction=fraction, seed=config.train.seed).limit(sample_size).toPandas()
    detector, counts, reference_raw = fit_detectors(reference, model, vocabulary, config.train, config.windows.stride, config.score)
    combination, report = Combination(), None
    if cases is not None:
        enough = len(cases) >= config.train.label_min_cases
        cases_raw = raw_scores(cases, model, vocabulary, detector, counts, config.windows.stride, config.score).by_detector() if enough else {}
        combination, report = learn_from_labels(reference_raw, cases_raw, list(cases["session_id"]), config.train, config.score.levels)
    files = {
        model_dir.FEATURE_DETECTOR: detector.to_bytes(),
        model_dir.COUNT_DETECTOR: counts.to_bytes(),
        model_dir.CALIBRATION: fit_calibration(reference_raw, combination).to_bytes(),
        model_dir.COMBINATION: combination.to_bytes(),
    }
    return len(reference), report, files


def learn_from_labels(reference_raw: dict, cases_raw: dict, session_ids: list[str], settings, levels) -> tuple[Combination, LabelReport]:
    """(Combination, LabelReport): the detectors' weights and the `high` cut-off from the labeled cases' scores."""
    from seqrisk.calibration import Calibration
    from seqrisk.scoring import fit_calibration, surprisals

    default = Combination()
    if len(session_ids) < settings.label_min_cases:
        report = LabelReport(len(session_ids), False, default.weights, 0, 0, levels.high)
        return with_labels(default, report, session_ids), report
    parts = Calibration.fit(reference_raw)
    reference, cases = surprisals(parts, reference_raw), surprisals(parts, cases_raw)
    weights, caught, caught_default = choose_weights(reference, cases)
    combination = Combination(weights)
    calibration = fit_calibration(reference_raw, combination)
    case_pct = calibration.percentile("combined", combination.score(cases))
    reference_pct = calibration.percentile("combined", combination.score(reference))
    high = cutoff(case_pct, settings.label_recall, levels.medium, levels.high)
    report = LabelReport(
        len(session_ids), True, weights, caught_default, caught, levels.high, high, float(np.mean(case_pct >= high)), float(np.mean(reference_pct >= high))
    )
    log.info("train: labels: %s", "; ".join(report.lines()))
    return with_labels(combination, report, session_ids), report


def fit_detectors(reference, model: SequenceModel, vocabulary, settings, stride: int, score_settings):
    """(feature detector, count detector, reference scores) from a pandas sample of reference sessions.

    The reference scores (by detector) are cross-fitted: each half scored by detectors fitted on the other.
    """
    from seqrisk.count_detector import CountDetector, token_counts
    from seqrisk.detector import FeatureDetector
    from seqrisk.features import feature_matrix
    from seqrisk.sequence_evidence import event_types_of, session_evidence

    event_types = event_types_of(vocabulary)
    X, names = feature_matrix(reference, event_types)
    C = token_counts(reference, vocabulary, settings.count_columns)
    halves = np.array_split(np.random.default_rng(settings.seed).permutation(len(reference)), 2)
    feature_risk, count_risk = np.zeros(len(reference)), np.zeros(len(reference))
    for scored, fitted in ((halves[0], halves[1]), (halves[1], halves[0])):
        feature_risk[scored] = FeatureDetector.fit(X[fitted], names, event_types, settings.seed, settings.detector_trees).risk(X[scored])
        count_risk[scored] = CountDetector.fit(C[fitted], settings.count_floor).risk(C[scored])
    evidence = session_evidence(
        reference, model, vocabulary, length=model.config.max_len, stride=stride,
        batch_windows=score_settings.batch_windows, top_k=score_settings.top_events,
    )
    detector = FeatureDetector.fit(X, names, event_types, settings.seed, settings.detector_trees)
    reference_raw = {"sequence": evidence.score, "feature": feature_risk, "count": count_risk}
    return detector, CountDetector.fit(C, settings.count_floor), reference_raw


def window_length(tables, windows_path: str) -> int:
    """The length the windows were cut with (read from the table, not from today's config)."""
    from pyspark.sql import functions as F

    first = tables.read(windows_path).select(F.size("tokens").alias("n")).first()
    if first is None:
        raise SeqriskError(f"{windows_path} is empty; sessionize some events first")
    return int(first["n"])


def _row_groups(files: list[str]) -> int:
    """Row groups over all `files` (footers only), on any filesystem pyarrow reaches."""
    import pyarrow.parquet as pq
    from pyarrow import fs

    total = 0
    for uri in files:
        filesystem, path = fs.FileSystem.from_uri(uri)
        with filesystem.open_input_file(path) as handle:
            total += pq.ParquetFile(handle).num_row_groups
    return total
