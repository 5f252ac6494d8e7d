"""The windows table's Parquet files read with pyarrow alone: the reader for runtimes Petastorm does not run on.

Petastorm needs pyarrow's legacy dataset API, which pyarrow 15 removed (Spark 4.1 runtimes need
pyarrow 15 or newer). This reader takes the same files the Delta log lists and the same options as
`petastorm_reader.open_windows`, and yields the same chunks (one row group's `tokens` and
`gap_buckets`), so the training loop's `fixed_batches` consumes either. Each rank reads its own row
groups (`cur_shard`/`shard_count`, by position in the list of every file's row groups), in a new
random order every epoch, one at a time, each file opened for its row group and closed: no copy of
the data, memory bounded by one row group and the loop's shuffle buffer. Files are reached through
fsspec, as Petastorm reaches them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Chunk:
    """One row group's windows, as Petastorm's batch reader hands them: (rows, window length) arrays."""

    tokens: np.ndarray
    gap_buckets: np.ndarray


@contextmanager
def open_windows(
    files: list[str],
    left_out: frozenset,
    *,
    row_groups: dict[str, int],
    seed: int,
    num_epochs: int | None = 1,
    shuffle_row_groups: bool = True,
    cur_shard: int | None = None,
    shard_count: int | None = None,
) -> Iterator[Iterator[Chunk]]:
    """Chunks of the windows in `files` (row groups per file in `row_groups`), without those of `left_out` sessions.

    `num_epochs=None` repeats forever; a shard holds every `shard_count`-th row group from `cur_shard`.
    """
    pieces = [(uri, index) for uri in files for index in range(row_groups[uri])]
    if shard_count:
        pieces = pieces[cur_shard::shard_count]
    if not pieces:
        raise ValueError(f"no row groups to read in {len(files)} file(s) (shard {cur_shard} of {shard_count})")
    yield _chunks(pieces, left_out, np.random.default_rng(seed) if shuffle_row_groups else None, num_epochs)


def _chunks(pieces: list[tuple[str, int]], left_out: frozenset, rng, num_epochs: int | None) -> Iterator[Chunk]:
    columns = ["tokens", "gap_buckets", *(["session_id"] if left_out else [])]
    excluded = pa.array(sorted(left_out), pa.string()) if left_out else None
    epoch = 0
    while num_epochs is None or epoch < num_epochs:
        order = rng.permutation(len(pieces)) if rng is not None else range(len(pieces))
        for k in order:
            uri, index = pieces[k]
            table = _read_row_group(uri, index, columns)
            if excluded is not None:
                table = table.filter(pc.invert(pc.is_in(table["session_id"], value_set=excluded)))
            if table.num_rows:
                yield Chunk(_matrix(table["tokens"]), _matrix(table["gap_buckets"]))
        epoch += 1


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    """A list column of equal-length lists (windows are padded to one length) as a (rows, length) int64 array."""
    lists = column.combine_chunks()
    values = lists.flatten().to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return values.reshape(len(lists), -1)


def _read_row_group(uri: str, index: int, columns: list[str]) -> pa.Table:
    with parquet_file(uri) as parquet:
        return parquet.read_row_group(index, columns=columns)


@contextmanager
def parquet_file(uri: str) -> Iterator[pq.ParquetFile]:
    """A Parquet file by URI, through fsspec as Petastorm reaches it (`s3a://` included); closed after the block."""
    filesystem, path = fsspec.core.url_to_fs(uri)
    with filesystem.open(path, "rb") as handle:
        yield pq.ParquetFile(handle)
