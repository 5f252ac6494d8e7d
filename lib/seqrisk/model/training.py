"""The training loop of the sequence model: written once, run by any launcher or none.

`train_loop` trains on batches of (tokens, gap buckets) with early stopping, validation on the
same windows every epoch, and a stop on a non-finite loss. What it needs from a distributed
launcher is a `Collective`: this process's rank and the world size, averaging a number over ranks,
wrapping the optimizer, and starting every rank from rank 0's weights. `SingleProcess` is the
collective of one process (a test, `--dry-run`, `train.workers: 1`);
`horovod_launcher.HorovodCollective` is Horovod's and `torch_distributor_launcher.TorchCollective`
is `torch.distributed`'s. Rank 0's best weights come
back in the `RankResult`; no rank writes a file.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
import torch

from seqrisk.model import model_dir
from seqrisk.model.sequence_model import ModelConfig, SequenceModel, next_event_loss, warmup_cosine

log = logging.getLogger("seqrisk")
Batches = Iterator[tuple[np.ndarray, np.ndarray]]  # (tokens, gap buckets), each (B, T) int64


@dataclass(frozen=True)
class TrainPlan:
    """Everything a rank needs, as plain values (it is pickled to the executors); defaults live in config."""

    train_files: list[str]
    val_files: list[str]
    model: ModelConfig
    batch_size: int
    learning_rate: float  # per worker; scaled by the number of workers
    epochs: int
    steps_per_epoch: int
    val_steps: int  # batches drawn once: every epoch is validated on the same windows
    patience: int  # epochs without a better validation loss before stopping
    seed: int
    mixed_precision: bool  # bf16 autocast on CUDA; ignored on CPU
    shard: bool = True  # False when there are fewer row groups than workers: every rank reads all
    threads_per_worker: int = 1
    left_out: frozenset = frozenset()  # session ids whose windows are not trained or validated on (labeled cases)
    reader: str = "petastorm"  # or "arrow" (model/arrow_reader.py)
    row_groups: dict[str, int] = field(default_factory=dict)  # row groups per file, for the Arrow reader's shards


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    windows_per_s: float
    seconds: float
    learning_rate: float  # at the epoch's last step, per worker times the workers


@dataclass
class TrainResult:
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = float("inf")
    workers: int = 1
    device: str = "cpu"
    stopped_early: bool = False
    diverged_epoch: int | None = None  # the epoch whose loss was not finite (NaN, inf): training stopped there

    def to_json(self) -> dict:
        return {**asdict(self), "history": [asdict(h) for h in self.history]}


@dataclass
class RankResult:
    """What rank 0 hands back to the driver: the history, the best weights, windows for the probe."""

    result: TrainResult
    weights: bytes | None  # None when no epoch ended with a finite validation loss
    probe_tokens: np.ndarray
    probe_gaps: np.ndarray


class Collective(Protocol):
    """What the loop needs from a launcher (Horovod, TorchDistributor, none)."""

    rank: int
    size: int

    def average(self, value: float, name: str) -> float: ...

    def distributed(self, optimizer: torch.optim.Optimizer, model: SequenceModel) -> torch.optim.Optimizer: ...

    def start_together(self, model: SequenceModel, optimizer: torch.optim.Optimizer) -> None: ...


class SingleProcess:
    """The collective of one process: nothing to average, wrap or broadcast."""

    rank, size = 0, 1

    def average(self, value: float, name: str) -> float:
        return value

    def distributed(self, optimizer: torch.optim.Optimizer, model: SequenceModel) -> torch.optim.Optimizer:
        return optimizer

    def start_together(self, model: SequenceModel, optimizer: torch.optim.Optimizer) -> None:
        return None


def train_loop(
    plan: TrainPlan, collective: Collective, train_batches: Batches, val_batches: Batches, device: torch.device
) -> RankResult | None:
    """Train `plan.model`; rank 0 returns the result with the best weights, the other ranks None."""
    rank, size = collective.rank, collective.size
    amp = device.type == "cuda" and plan.mixed_precision
    model = SequenceModel(plan.model).to(device)
    optimizer: torch.optim.Optimizer = torch.optim.AdamW(
        model.parameters(), lr=plan.learning_rate * size, weight_decay=0.01
    )  # lr x workers
    optimizer = collective.distributed(optimizer, model)
    collective.start_together(model, optimizer)
    total_steps = plan.epochs * plan.steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, total_steps, max(1, total_steps // 20)))
    val_set = [next(val_batches) for _ in range(plan.val_steps)]
    result = TrainResult(workers=size, device=str(device))
    best_state, bad_epochs = None, 0
    for epoch in range(plan.epochs):
        started = time.perf_counter()
        losses = _train_epoch(model, optimizer, scheduler, train_batches, plan, device, amp)
        seconds = time.perf_counter() - started
        train_loss = collective.average(float(np.mean(losses)), "train_loss")
        val_loss = collective.average(_validate(model, val_set, device, amp), "val_loss")
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):  # every rank sees the same averages: all stop
            result.diverged_epoch = epoch
            if rank == 0:
                log.warning("train: epoch %d: the loss is not finite (train %s, val %s); training stops", epoch, train_loss, val_loss)
            break
        throughput = plan.steps_per_epoch * plan.batch_size * size / seconds
        record = EpochRecord(epoch, train_loss, val_loss, throughput, seconds, float(scheduler.get_last_lr()[0]))
        result.history.append(record)
        if rank == 0:
            log.info(
                "train: epoch %d  loss %.4f  val %.4f  %.0f windows/s (%d workers)", epoch, train_loss, val_loss, record.windows_per_s, size
            )
        if val_loss < result.best_val_loss - 1e-4:
            result.best_epoch, result.best_val_loss, bad_epochs = epoch, val_loss, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
            if bad_epochs >= plan.patience:  # every rank sees the same averaged val loss: all stop together
                result.stopped_early = True
                break
    probe_tokens, probe_gaps = val_set[0]
    if rank != 0:
        return None
    weights = None if best_state is None else model_dir.weights_to_bytes(best_state)
    return RankResult(result, weights, probe_tokens[: model_dir.PROBE_WINDOWS], probe_gaps[: model_dir.PROBE_WINDOWS])


def _train_epoch(
    model: SequenceModel, optimizer, scheduler, batches: Batches, plan: TrainPlan, device: torch.device, amp: bool
) -> list[float]:
    model.train()
    losses = []
    for _ in range(plan.steps_per_epoch):
        tokens, gaps = (torch.from_numpy(a).to(device) for a in next(batches))  # (B, T) each
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = next_event_loss(model(tokens, gaps), tokens, gaps)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def _validate(model: SequenceModel, val_set: list[tuple[np.ndarray, np.ndarray]], device: torch.device, amp: bool) -> float:
    model.eval()
    losses = []
    for batch in val_set:
        tokens, gaps = (torch.from_numpy(a).to(device) for a in batch)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            losses.append(next_event_loss(model(tokens, gaps), tokens, gaps).item())
    return float(np.mean(losses))


def fixed_batches(chunks, batch_size: int, rng: np.random.Generator | None) -> Batches:
    """Readers yield one row group at a time (with `tokens` and `gap_buckets`); hand out batches of one fixed size.

    With `rng`, rows are shuffled within a buffer of a few row groups.
    """
    tokens_buffer: list[np.ndarray] = []
    gaps_buffer: list[np.ndarray] = []
    held = 0
    for chunk in chunks:
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
