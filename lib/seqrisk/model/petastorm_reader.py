"""The windows table's Parquet files through Petastorm's batch reader, straight from the files the Delta log lists.

No copy of the training data: each rank reads its shard of row groups (`cur_shard`/`shard_count`).
With `train --labels`, a predicate on `session_id` skips the labeled sessions' windows.
"""

from __future__ import annotations

from urllib.parse import urlparse

import fsspec
import pandas as pd
from petastorm import make_batch_reader
from petastorm.predicates import in_lambda
from pyarrow import filesystem as legacy


def open_windows(files: list[str], left_out: frozenset, **options):
    """Petastorm's batch reader of windows files (tokens and gap buckets), skipping the windows of `left_out` sessions.

    A context manager; `options` go to `make_batch_reader` (seed, num_epochs, sharding, shuffling).
    """
    fields, predicate = ["tokens", "gap_buckets"], None
    if left_out:
        fields, predicate = [*fields, "session_id"], in_lambda(["session_id"], not_left_out, left_out)
    return make_batch_reader(
        files, schema_fields=fields, predicate=predicate, workers_count=2, filesystem=_legacy_filesystem(files[0]), **options
    )


def _legacy_filesystem(uri: str) -> legacy.FileSystem | None:
    """The files' filesystem in the legacy pyarrow API, for schemes Petastorm reaches through fsspec (S3, ...).

    Petastorm 0.12 reads with pyarrow's legacy `ParquetDataset`, which pyarrow 14 picks only for a
    legacy filesystem; with fsspec's own (s3fs) it fails (uber/petastorm#758). `file://` and
    `hdfs://` need nothing: Petastorm's resolver gives legacy filesystems for them.
    """
    scheme = urlparse(uri).scheme
    if scheme in ("", "file", "hdfs"):
        return None
    filesystem, _ = fsspec.core.url_to_fs(uri)
    return legacy.S3FSWrapper(filesystem) if scheme in ("s3", "s3a") else legacy.DaskFileSystem(filesystem)


def not_left_out(session_ids: pd.Series, left_out: frozenset) -> pd.Series:
    """Petastorm predicate (per row group): the windows whose session is not left out."""
    return ~session_ids.isin(left_out)
