"""Which launcher trains and which reader feeds it (`train.launcher`, `train.reader`), and starting it.

`auto` picks what the runtime has: Horovod where it is importable (Databricks Runtime 15.4 LTS ML, a
laptop after `make setup`), TorchDistributor elsewhere; Petastorm where it is importable, the Arrow
reader elsewhere (Petastorm does not run with pyarrow 15 or newer). One worker trains in this
process with no launcher at all.
"""

from __future__ import annotations

from importlib.util import find_spec

from seqrisk.errors import SeqriskError
from seqrisk.model.rank import run_rank
from seqrisk.model.training import RankResult, SingleProcess, TrainPlan

NEEDS = {"horovod": "horovod", "torch_distributor": "pyspark", "petastorm": "petastorm", "arrow": "pyarrow"}


def resolve(choice: str, preferred: str, other: str) -> str:
    """`choice`, or for `auto` the preferred one when its package is importable; refuses one that is not."""
    picked = choice if choice != "auto" else (preferred if available(preferred) else other)
    if not available(picked):
        raise SeqriskError(f"train: {picked} needs the `{NEEDS[picked]}` package, which is not installed here; choose the other or auto")
    return picked


def launch(plan: TrainPlan, workers: int, launcher: str, use_gpu: bool) -> RankResult | None:
    """Train with `workers` ranks; rank 0's result."""
    if workers == 1:
        return run_rank(plan, SingleProcess(), 0)
    if launcher == "horovod":
        from seqrisk.model.horovod_launcher import run_horovod

        return run_horovod(plan, workers)
    from seqrisk.model.torch_distributor_launcher import run_torch_distributor

    return run_torch_distributor(plan, workers, use_gpu)


def available(name: str) -> bool:
    """Whether this environment can run the launcher or reader `name`."""
    if name == "petastorm":  # importable is not enough: it needs pyarrow's legacy dataset API (pyarrow < 15)
        return find_spec("petastorm") is not None and _pyarrow_major() < 15
    if name == "torch_distributor":
        return find_spec("pyspark.ml.torch") is not None and find_spec("torch") is not None
    return find_spec(NEEDS[name]) is not None


def _pyarrow_major() -> int:
    import pyarrow

    return int(pyarrow.__version__.split(".")[0])
