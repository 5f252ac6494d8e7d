"""Training the sequence model: one function every Horovod rank runs, fed by Petastorm.

`train_worker` is what `horovod.spark.run` starts on each Spark barrier task (and what a single
process runs without Spark). Each rank reads its shard of the `windows` table's Parquet files with
Petastorm's batch reader, straight from the files the Delta log lists: no copy of the data (with
`train --labels`, a predicate on `session_id` skips the labeled sessions' windows).
Lines that only make sense with several workers are marked `# hvd`. Rank 0 alone logs, and returns
its best weights through the Horovod run's result: the driver assembles the model directory and
publishes it to `model.dir` (any URI), so no executor writes to a shared disk.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator, Optional

import numpy as np
import pandas as pd
import torch

from seqrisk.model import model_dir
from seqrisk.detectors.combination import Combination, LabelReport, choose_weights, cutoff, with_labels
from seqrisk.errors import SeqriskError
from seqrisk.model.sequence_model import ModelConfig, SequenceModel, next_event_loss, warmup_cosine

log = logging.getLogger("seqrisk")


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
    left_out: frozenset = frozenset()  # session ids whose windows are not trained or validated on (labeled cases)


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
    diverged_epoch: Optional[int] = None  # the epoch whose loss was not finite (NaN, inf): training stopped there

    def to_json(self) -> dict:
        return {**asdict(self), "history": [asdict(h) for h in self.history]}


@dataclass
class RankResult:
    """What rank 0 hands back to the driver: the history, the best weights, windows for the probe."""

    result: TrainResult
    weights: Optional[bytes]  # None when no epoch ended with a finite validation loss
    probe_tokens: np.ndarray
    probe_gaps: np.ndarray


def train_worker(plan: TrainPlan) -> Optional[RankResult]:
    """Train on this rank's shard; rank 0 returns the result with the best weights, the others None."""
    import horovod.torch as hvd

    hvd.init()  # hvd
    rank, size = hvd.rank(), hvd.size()
    if rank == 0:
        from seqrisk.progress import enable_progress_logging

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
    result = TrainResult(workers=size, device=str(device))
    best_state, bad_epochs = None, 0
    with open_windows(plan.train_files, plan, seed=plan.seed + rank, num_epochs=None, **shard) as train_reader, open_windows(
        plan.val_files, plan, seed=plan.seed, num_epochs=None, shuffle_row_groups=False, **shard
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
            if not (math.isfinite(train_loss) and math.isfinite(val_loss)):  # every rank sees the same averages: all stop
                result.diverged_epoch = epoch
                if rank == 0:
                    log.warning("train: epoch %d: the loss is not finite (train %s, val %s); training stops", epoch, train_loss, val_loss)
                break
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
    weights = None if best_state is None else model_dir.weights_to_bytes(best_state)
    return RankResult(result, weights, probe_tokens[:model_dir.PROBE_WINDOWS], probe_gaps[:model_dir.PROBE_WINDOWS])


@torch.no_grad()
def _evaluate(model: SequenceModel, batches: Iterator, plan: TrainPlan, device, amp: bool) -> float:
    model.eval()
    losses = []
    for _ in range(plan.val_steps):
        tokens, gaps = (torch.from_numpy(a).to(device) for a in next(batches))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            losses.append(next_event_loss(model(tokens, gaps).float(), tokens).item())
    return float(np.mean(losses))


def open_windows(files: list[str], plan: TrainPlan, **options):
    """Petastorm's batch reader of windows files (tokens and gap buckets), skipping the windows of `plan.left_out`."""
    from petastorm import make_batch_reader
    from petastorm.predicates import in_lambda

    fields, predicate = ["tokens", "gap_buckets"], None
    if plan.left_out:
        fields, predicate = [*fields, "session_id"], in_lambda(["session_id"], not_left_out, plan.left_out)
    return make_batch_reader(files, schema_fields=fields, predicate=predicate, workers_count=2, **options)


def not_left_out(session_ids: pd.Series, left_out: frozenset) -> pd.Series:
    """Petastorm predicate (per row group): the windows whose session is not left out."""
    return ~session_ids.isin(left_out)


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


def chronological_split(tables, windows_path: str, val_fraction: float) -> tuple[list[str], list[str]]:
    """The earlier session dates for training, the latest ones for validation (ISO strings)."""
    dates = sorted(r["session_date"].isoformat() for r in tables.read(windows_path).select("session_date").distinct().collect())
    if len(dates) < 2:
        raise SeqriskError(f"{windows_path} holds {len(dates)} session date(s); a chronological validation split needs at least 2")
    cut = min(len(dates) - 1, max(1, round(len(dates) * (1 - val_fraction))))
    return dates[:cut], dates[cut:]


def learn_from_labels(reference_raw: dict, cases_raw: dict, session_ids: list[str], settings, levels) -> tuple[Combination, LabelReport]:
    """(Combination, LabelReport): the detectors' weights and the `high` cut-off from the labeled cases' scores."""
    from seqrisk.detectors.calibration import Calibration
    from seqrisk.scoring.risk_model import fit_calibration, surprisals

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
    from seqrisk.detectors.count_detector import CountDetector, token_counts
    from seqrisk.detectors.feature_detector import FeatureDetector
    from seqrisk.sessions.features import feature_matrix
    from seqrisk.detectors.sequence_evidence import event_types_of, session_evidence

    event_types = event_types_of(vocabulary, settings.feature_event_types)
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


def row_groups(files: list[str]) -> int:
    """Row groups over all `files` (footers only), on any filesystem pyarrow reaches."""
    import pyarrow.parquet as pq
    from pyarrow import fs

    total = 0
    for uri in files:
        filesystem, path = fs.FileSystem.from_uri(uri)
        with filesystem.open_input_file(path) as handle:
            total += pq.ParquetFile(handle).num_row_groups
    return total
