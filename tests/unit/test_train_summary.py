"""The training summary says why training stopped, and when the validation loss was still falling."""

import pytest

from seqrisk.jobs.train import TrainSummary

EPOCH = {"train_loss": 1.0, "windows_per_s": 100.0}


def summary(epochs: int, best_epoch: int, stopped_early: bool) -> str:
    result = {
        "history": [EPOCH] * epochs,
        "best_epoch": best_epoch,
        "best_val_loss": 1.0,
        "stopped_early": stopped_early,
        "workers": 2,
        "device": "cpu",
    }
    return TrainSummary("r", "dir", "m1", 1, 1, 10, result).report()


@pytest.mark.parametrize(
    "epochs, best_epoch, stopped_early, note",
    [
        (6, 5, False, "6 (validation loss still falling: more epochs help only where the training dates are known normal, README)"),
        (6, 3, True, "6 (stopped early)"),
        (6, 4, False, "6"),  # the budget ran out after a worse last epoch: nothing to suggest
        (1, 0, False, "1"),  # one epoch says nothing of a trend
    ],
)
def test_the_epochs_line_says_why_training_stopped(epochs, best_epoch, stopped_early, note):
    (epochs_line,) = [text for text in summary(epochs, best_epoch, stopped_early).splitlines() if text.lstrip().startswith("epochs ")]
    assert epochs_line.split(None, 1)[1] == note
