"""What training needs to know of the windows table before it starts: the split, the window length, row groups."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from pyspark.sql import functions as F

from seqrisk.errors import SeqriskError
from seqrisk.lake.tables import DeltaTables
from seqrisk.model.arrow_reader import parquet_file


def chronological_split(tables: DeltaTables, windows_path: str, val_fraction: float) -> tuple[list[str], list[str]]:
    """The earlier session dates for training, the latest ones for validation (ISO strings)."""
    dates = sorted(r["session_date"].isoformat() for r in tables.read(windows_path).select("session_date").distinct().collect())
    if len(dates) < 2:
        raise SeqriskError(f"{windows_path} holds {len(dates)} session date(s); a chronological validation split needs at least 2")
    cut = min(len(dates) - 1, max(1, round(len(dates) * (1 - val_fraction))))
    return dates[:cut], dates[cut:]


def window_length(tables: DeltaTables, windows_path: str) -> int:
    """The length the windows were cut with (read from the table, not from today's config)."""
    first = tables.read(windows_path).select(F.size("tokens").alias("n")).first()
    if first is None:
        raise SeqriskError(f"{windows_path} is empty; sessionize some events first")
    return int(first["n"])


def row_groups_by_file(files: list[str]) -> dict[str, int]:
    """Each file's row groups (footers only, 16 at a time: object stores answer slowly, not narrowly)."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(zip(files, pool.map(_row_groups, files), strict=True))


def _row_groups(uri: str) -> int:
    with parquet_file(uri) as parquet:
        return parquet.num_row_groups


def local_threads(workers: int) -> int:
    """Torch threads per worker so that the workers share this machine's cores."""
    return max(1, (os.cpu_count() or 1) // workers)
