"""One training rank, whichever launcher started it: its reader, its device, its shard, the shared loop.

A launcher (Horovod, TorchDistributor, or none for one worker) starts the process group and hands
`run_rank` its `Collective` and the rank's local index (its GPU); everything else is here once.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np
import torch

from seqrisk.model.training import Collective, RankResult, TrainPlan, fixed_batches, train_loop
from seqrisk.progress import enable_progress_logging


def run_rank(plan: TrainPlan, collective: Collective, local_rank: int) -> RankResult | None:
    """Train this rank's shard of the windows; rank 0 returns the result."""
    if collective.rank == 0:
        enable_progress_logging()  # this may be a fresh worker process
    torch.manual_seed(plan.seed)
    torch.set_num_threads(plan.threads_per_worker)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)  # one GPU per process
    device = torch.device("cuda" if cuda else "cpu")
    shard = dict(cur_shard=collective.rank, shard_count=collective.size) if plan.shard else {}
    seed = plan.seed + collective.rank
    with (
        open_windows(plan, plan.train_files, seed=seed, num_epochs=None, **shard) as train_reader,
        open_windows(plan, plan.val_files, seed=plan.seed, num_epochs=None, shuffle_row_groups=False, **shard) as val_reader,
    ):
        train_batches = fixed_batches(train_reader, plan.batch_size, np.random.default_rng(seed))
        val_batches = fixed_batches(val_reader, plan.batch_size, None)
        return train_loop(plan, collective, train_batches, val_batches, device)


def open_windows(plan: TrainPlan, files: list[str], **options) -> AbstractContextManager:
    """The plan's reader over `files` (imported here: a runtime may have only one of them)."""
    if plan.reader == "arrow":
        from seqrisk.model import arrow_reader

        return arrow_reader.open_windows(files, plan.left_out, row_groups=plan.row_groups, **options)
    from seqrisk.model import petastorm_reader

    return petastorm_reader.open_windows(files, plan.left_out, **options)
