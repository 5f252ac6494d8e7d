"""Training throughput: Horovod + Petastorm and TorchDistributor + Arrow against the same model fed from memory.

usage: python bench/bench_train.py --lake demo/lake [--steps 30] [--threads 1 2] [--epochs 3]
In one run, on one lake's windows table, with the model and batch size of conf/local.yaml:
1. the in-memory loop: the table loaded into memory with deltalake, plain training steps, per
   thread count;
2. `seqrisk train` itself with each launcher and its reader (2 workers on local Spark barrier tasks,
   reading the table's files), into a throw-away model directory; its per-epoch windows/s after the first.
Prints windows per second for each and the ratio of each distributed path to the best in-memory one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from deltalake import DeltaTable, QueryBuilder

from seqrisk.config import load_config
from seqrisk.model.sequence_model import ModelConfig, SequenceModel, next_event_loss
from seqrisk.sessions.vocabulary import Vocabulary

REPO = Path(__file__).resolve().parents[1]
PATHS = (("horovod", "petastorm"), ("torch_distributor", "arrow"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the Horovod run (the first is warm-up)")
    args = parser.parse_args()
    config = load_config(REPO / "conf" / "local.yaml", [f"tables.root={args.lake}"])
    lake = Path(config.tables.root)  # a local lake, read without Spark
    vocabulary = Vocabulary.from_json((lake / config.tables.names.vocabulary).read_text())
    table = (
        QueryBuilder()
        .register("w", DeltaTable(str(lake / config.tables.names.windows)))
        .execute("select tokens, gap_buckets from w")
        .read_all()
    )
    tokens = np.array(table.column("tokens").to_pylist(), dtype=np.int64)
    gaps = np.array(table.column("gap_buckets").to_pylist(), dtype=np.int64)
    m = config.model
    model_config = ModelConfig(
        vocabulary.size, vocabulary.gap_bucket_count, tokens.shape[1], m.arch, m.d_model, m.n_layers, m.n_heads, m.dropout
    )
    batch = config.train.batch_size
    print(f"{len(tokens):,} windows of {tokens.shape[1]}, batch {batch}, {model_config.arch} d_model {m.d_model}")
    rng = np.random.default_rng(0)
    best = 0.0
    for threads in args.threads:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = SequenceModel(model_config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for step in range(args.steps + 3):  # three warm-up steps, untimed
            if step == 3:
                started = time.perf_counter()
            rows = rng.integers(0, len(tokens), batch)
            x, g = torch.from_numpy(tokens[rows]), torch.from_numpy(gaps[rows])
            loss = next_event_loss(model(x, g), x, g)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        rate = args.steps * batch / (time.perf_counter() - started)
        best = max(best, rate)
        print(f"in-memory loop, {threads} thread(s): {rate:,.0f} windows/s")

    for launcher, reader in PATHS:
        rates = _train_rates(args.lake, args.epochs, launcher, reader)
        rate = float(np.mean(rates))
        print(
            f"seqrisk train, 2 workers, {launcher} + {reader}: {rate:,.0f} windows/s (epochs 2..{args.epochs}: {', '.join(f'{r:,.0f}' for r in rates)})"
        )
        print(f"ratio ({launcher} + {reader} / best in-memory): {rate / best:.2f}")


def _train_rates(lake: str, epochs: int, launcher: str, reader: str) -> list[float]:
    """`seqrisk train` with two workers; windows/s of every epoch after the first."""
    from seqrisk.jobs.train import run_train

    with tempfile.TemporaryDirectory() as models:
        overrides = [
            f"tables.root={lake}",
            f"model.dir={models}",
            f"train.epochs={epochs}",
            "train.patience=99",
            "train.workers=2",
            f"train.launcher={launcher}",
            f"train.reader={reader}",
            "mlflow.tracking_uri=null",
        ]
        summary = run_train(load_config(REPO / "conf" / "local.yaml", overrides))
    return [h["windows_per_s"] for h in summary.result["history"][1:]]


if __name__ == "__main__":
    main()
