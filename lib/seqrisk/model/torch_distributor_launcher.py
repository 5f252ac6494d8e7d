"""PyTorch's own distributed training around the loop: Spark's `TorchDistributor` on barrier tasks.

For runtimes without Horovod (Databricks deprecated it after 15.4 LTS ML; Spark 3.4 and later ship
TorchDistributor). Each task runs one process (torchrun) that joins a `torch.distributed` group,
gloo on CPU and NCCL on GPU (one process per GPU). Gradients are averaged in one all-reduce of
their concatenation before each optimizer step; rank 0's result comes back through the run's
output, as with Horovod, so no process writes a file.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from seqrisk.model.rank import run_rank
from seqrisk.model.sequence_model import SequenceModel
from seqrisk.model.training import RankResult, TrainPlan


class TorchCollective:
    """The loop's `Collective` on a `torch.distributed` process group."""

    def __init__(self, device: torch.device):
        self.rank, self.size, self.device = dist.get_rank(), dist.get_world_size(), device

    def average(self, value: float, name: str) -> float:
        total = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.item() / self.size

    def distributed(self, optimizer: torch.optim.Optimizer, model: SequenceModel) -> torch.optim.Optimizer:
        """The same optimizer; before each step, every gradient becomes its mean over the ranks."""
        size = self.size

        def average_gradients(*_) -> None:
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= size
            offset = 0
            for g in grads:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()

        optimizer.register_step_pre_hook(average_gradients)
        return optimizer

    def start_together(self, model: SequenceModel, optimizer: torch.optim.Optimizer) -> None:
        for tensor in model.state_dict().values():  # the optimizer has no state before its first step
            dist.broadcast(tensor, src=0)


def run_torch_distributor(plan: TrainPlan, workers: int, use_gpu: bool) -> RankResult | None:
    """Train with `workers` processes on Spark barrier tasks; rank 0's result."""
    from pyspark.ml.torch.distributor import TorchDistributor

    return TorchDistributor(num_processes=workers, local_mode=False, use_gpu=use_gpu).run(train_worker, plan)


def train_worker(plan: TrainPlan) -> RankResult | None:
    """One rank (torchrun set RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address)."""
    cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
        return run_rank(plan, TorchCollective(device), local_rank)
    finally:
        dist.destroy_process_group()
