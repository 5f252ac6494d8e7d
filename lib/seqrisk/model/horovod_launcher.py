"""Horovod's wiring around the training loop: `horovod.spark.run` on Spark barrier tasks (gloo).

What Databricks Runtime 15.4 LTS ML ships. Every line that only makes sense with several workers is
marked `# hvd`. Rank 0 alone logs (in the loop) and returns its best weights through the run's
result, so no executor writes to a shared disk.
"""

from __future__ import annotations

import torch

from seqrisk.model.rank import run_rank
from seqrisk.model.sequence_model import SequenceModel
from seqrisk.model.training import RankResult, TrainPlan


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
    """Train with `workers` Horovod ranks on Spark barrier tasks; rank 0's result."""
    import horovod.spark  # imported here: only this launcher needs Horovod

    results = horovod.spark.run(train_worker, args=(plan,), num_proc=workers, use_gloo=True, verbose=0)  # hvd
    return next((r for r in results if r is not None), None)  # rank 0's


def train_worker(plan: TrainPlan) -> RankResult | None:
    """One Horovod rank (on the executor, in the rank's own process)."""
    import horovod.torch as hvd

    hvd.init()  # hvd
    return run_rank(plan, HorovodCollective(hvd), hvd.local_rank())
