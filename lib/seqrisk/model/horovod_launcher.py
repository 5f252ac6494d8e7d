"""Horovod's wiring around the training loop: `horovod.spark.run` on Spark barrier tasks, fed by Petastorm.

`train_worker` is what each rank runs (and what one process runs without Spark). Every line that
only makes sense with several workers is marked `# hvd`. Rank 0 alone logs (in the loop) and
returns its best weights through the run's result, so no executor writes to a shared disk.
"""

from __future__ import annotations

import numpy as np
import torch

from seqrisk.model.petastorm_reader import open_windows
from seqrisk.model.sequence_model import SequenceModel
from seqrisk.model.training import RankResult, TrainPlan, fixed_batches, train_loop
from seqrisk.progress import enable_progress_logging


class HorovodCollective:
    """The loop's `Collective` on Horovod: averages by allreduce, Horovod's distributed optimizer."""

    def __init__(self, hvd):
        self.hvd = hvd
        self.rank, self.size = hvd.rank(), hvd.size()

    def average(self, value: float, name: str) -> float:
        return self.hvd.allreduce(torch.tensor(value), name=name).item()  # hvd

    def distributed(self, optimizer: torch.optim.Optimizer, model: SequenceModel) -> torch.optim.Optimizer:
        return self.hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters())  # hvd

    def start_together(self, model: SequenceModel, optimizer: torch.optim.Optimizer) -> None:
        self.hvd.broadcast_parameters(model.state_dict(), root_rank=0)  # hvd: every rank starts from rank 0's weights
        self.hvd.broadcast_optimizer_state(optimizer, root_rank=0)  # hvd


def run_horovod(plan: TrainPlan, workers: int) -> RankResult | None:
    """Train with `workers` Horovod ranks on Spark barrier tasks (gloo), or in this process for one; rank 0's result."""
    if workers == 1:
        return train_worker(plan)
    import horovod.spark  # starts nothing until called; imported here so the driver needs Horovod only with workers > 1

    results = horovod.spark.run(train_worker, args=(plan,), num_proc=workers, use_gloo=True, verbose=0)  # hvd
    return next((r for r in results if r is not None), None)  # rank 0's


def train_worker(plan: TrainPlan) -> RankResult | None:
    """One rank: its shard of the windows through Petastorm, the shared loop; rank 0 returns the result."""
    import horovod.torch as hvd  # on the executor: the rank's own process

    hvd.init()  # hvd
    collective = HorovodCollective(hvd)
    if collective.rank == 0:
        enable_progress_logging()  # this may be a fresh worker process
    torch.manual_seed(plan.seed)
    torch.set_num_threads(plan.threads_per_worker)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(hvd.local_rank())  # hvd: one GPU per process
    device = torch.device("cuda" if cuda else "cpu")
    shard = dict(cur_shard=collective.rank, shard_count=collective.size) if plan.shard else {}  # hvd
    seed = plan.seed + collective.rank
    with (
        open_windows(plan.train_files, plan.left_out, seed=seed, num_epochs=None, **shard) as train_reader,
        open_windows(plan.val_files, plan.left_out, seed=plan.seed, num_epochs=None, shuffle_row_groups=False, **shard) as val_reader,
    ):
        train_batches = fixed_batches(train_reader, plan.batch_size, np.random.default_rng(seed))
        val_batches = fixed_batches(val_reader, plan.batch_size, None)
        return train_loop(plan, collective, train_batches, val_batches, device)
