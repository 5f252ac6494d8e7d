"""Training throughput of the sequence model fed from in-memory tensors (the baseline for Horovod + Petastorm).

usage: python bench/bench_train_inmemory.py --lake demo/lake [--steps 30] [--threads 1 2]
Loads the lake's windows table into memory with deltalake, then times plain training steps
(same model and batch size as `seqrisk train` with conf/local.yaml) and prints windows per second.
Compare with the windows/s that `seqrisk train` logs per epoch on the same lake.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from deltalake import DeltaTable, QueryBuilder

from seqrisk.config import load_config
from seqrisk.model import ModelConfig, SequenceModel, next_event_loss
from seqrisk.vocabulary import Vocabulary

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    config = load_config(REPO / "conf" / "local.yaml", [f"tables.root={args.lake}"])
    vocabulary = Vocabulary.load(config.table_path("vocabulary"))
    table = QueryBuilder().register("w", DeltaTable(config.table_path("windows"))).execute("select tokens, gap_buckets from w").read_all()
    tokens = np.array(table.column("tokens").to_pylist(), dtype=np.int64)
    gaps = np.array(table.column("gap_buckets").to_pylist(), dtype=np.int64)
    m = config.model
    model_config = ModelConfig(vocabulary.size, vocabulary.gap_bucket_count, tokens.shape[1], m.arch, m.d_model, m.n_layers, m.n_heads, m.dropout)
    batch = config.train.batch_size
    print(f"{len(tokens):,} windows of {tokens.shape[1]}, batch {batch}, {model_config.arch} d_model {m.d_model}")
    rng = np.random.default_rng(0)
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
            loss = next_event_loss(model(x, g), x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"threads {threads}: {args.steps * batch / (time.perf_counter() - started):,.0f} windows/s")


if __name__ == "__main__":
    main()
