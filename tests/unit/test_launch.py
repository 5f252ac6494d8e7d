"""Which launcher and reader `auto` picks, and a clear error for one the runtime lacks."""

import importlib

import pytest

from seqrisk.errors import SeqriskError
from seqrisk.model import launch


@pytest.mark.parametrize(
    ("installed", "launcher", "reader"),
    [
        ({"horovod", "torch_distributor", "petastorm", "arrow"}, "horovod", "petastorm"),  # 15.4 LTS ML, `make setup`
        ({"torch_distributor", "arrow"}, "torch_distributor", "arrow"),  # 16.4 and 17.3 LTS ML, the spark4 profile
    ],
)
def test_auto_picks_what_the_runtime_has(monkeypatch, installed, launcher, reader):
    monkeypatch.setattr(launch, "available", lambda name: name in installed)
    assert launch.resolve("auto", "horovod", "torch_distributor") == launcher
    assert launch.resolve("auto", "petastorm", "arrow") == reader
    assert launch.resolve("arrow", "petastorm", "arrow") == "arrow"  # a choice is kept


def test_a_choice_the_runtime_cannot_run_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(launch, "available", lambda name: name != "horovod")
    with pytest.raises(SeqriskError, match="horovod needs the `horovod` package"):
        launch.resolve("horovod", "horovod", "torch_distributor")


def test_auto_picks_a_pair_this_environment_imports():
    launcher, reader = launch.resolve("auto", "horovod", "torch_distributor"), launch.resolve("auto", "petastorm", "arrow")
    importlib.import_module({"horovod": "horovod.spark", "torch_distributor": "pyspark.ml.torch.distributor"}[launcher])
    importlib.import_module({"petastorm": "petastorm", "arrow": "pyarrow.parquet"}[reader])
