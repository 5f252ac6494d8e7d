"""The training loop runs without any launcher (one process, in-memory batches)."""

import itertools

import numpy as np
import torch

from seqrisk.model.sequence_model import ModelConfig
from seqrisk.model.training import SingleProcess, TrainPlan, train_loop

MODEL = ModelConfig(vocab_size=10, gap_buckets=4, max_len=8, arch="gru", d_model=16, n_layers=1, n_heads=2, dropout=0.0)


def _plan(**changes) -> TrainPlan:
    settings = dict(
        train_files=[],
        val_files=[],
        model=MODEL,
        batch_size=16,
        learning_rate=3e-3,
        epochs=3,
        steps_per_epoch=20,
        val_steps=2,
        patience=5,
        seed=0,
        mixed_precision=False,
    )
    return TrainPlan(**{**settings, **changes})


def _cycle_batches(seed: int):
    """A repeated pattern (4 5 6 7 4 5 6 7), which a next-event model learns quickly."""
    rng = np.random.default_rng(seed)
    while True:
        start = rng.integers(0, 4, size=16)
        tokens = 4 + (start[:, None] + np.arange(8)[None, :]) % 4
        yield tokens.astype(np.int64), np.ones_like(tokens)


def test_the_loop_trains_in_one_process_and_its_validation_loss_falls():
    torch.manual_seed(0)
    result = train_loop(_plan(), SingleProcess(), _cycle_batches(1), _cycle_batches(2), torch.device("cpu"))
    history = result.result.history
    assert [h.epoch for h in history] == [0, 1, 2]
    assert history[-1].val_loss < history[0].val_loss
    assert result.weights is not None and result.result.best_epoch == 2
    assert result.probe_tokens.shape == (16, 8)
    rates = [h.learning_rate for h in history]  # logged with the losses: warm-up, then cosine decay
    assert rates[0] > rates[1] > rates[2] > 0


def test_the_loop_stops_at_a_loss_that_is_not_finite_and_keeps_no_weights():
    nan_batches = itertools.repeat((np.full((16, 8), 4, dtype=np.int64), np.ones((16, 8), dtype=np.int64)))

    class Diverging(SingleProcess):
        def average(self, value: float, name: str) -> float:
            return float("nan") if name == "val_loss" else value

    result = train_loop(_plan(epochs=2), Diverging(), nan_batches, nan_batches, torch.device("cpu"))
    assert result.result.diverged_epoch == 0 and result.result.history == [] and result.weights is None


def test_every_epoch_is_validated_on_the_same_windows():
    drawn = []

    def val_batches():
        for batch in _cycle_batches(2):
            drawn.append(batch)
            yield batch

    result = train_loop(_plan(epochs=3, val_steps=2), SingleProcess(), _cycle_batches(1), val_batches(), torch.device("cpu"))
    assert len(result.result.history) == 3 and len(drawn) == 2
    assert np.array_equal(result.probe_tokens, drawn[0][0])


def test_a_torch_distributed_group_of_one_trains_exactly_as_one_process():
    import socket

    import torch.distributed as dist

    from seqrisk.model.torch_distributor_launcher import TorchCollective

    torch.manual_seed(0)
    alone = train_loop(_plan(epochs=2), SingleProcess(), _cycle_batches(1), _cycle_batches(2), torch.device("cpu"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        grouped = train_loop(
            _plan(epochs=2), TorchCollective(torch.device("cpu")), _cycle_batches(1), _cycle_batches(2), torch.device("cpu")
        )
    finally:
        dist.destroy_process_group()
    assert [h.val_loss for h in grouped.result.history] == [h.val_loss for h in alone.result.history]
    assert grouped.weights == alone.weights
