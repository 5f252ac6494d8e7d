"""The Arrow reader: every window once per epoch, disjoint shards, labeled sessions left out, endless epochs."""

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqrisk.model.arrow_reader import open_windows


@pytest.fixture
def files(tmp_path):
    """Two files of 35 and 25 windows of length 4, row groups of 10; window i is (i, i, i, i), its session s<i // 3>."""
    uris, start = {}, 0
    for name, rows in (("a", 35), ("b", 25)):
        ids = np.arange(start, start + rows)
        table = pa.table(
            {
                "session_id": [f"s{i // 3}" for i in ids],
                "tokens": [[int(i)] * 4 for i in ids],
                "gap_buckets": [[1] * 4 for _ in ids],
            }
        )
        pq.write_table(table, tmp_path / f"{name}.parquet", row_group_size=10)
        uris[f"file://{tmp_path / name}.parquet"] = 4 if rows == 35 else 3
        start += rows
    return uris


def _ids(files, **options) -> list[int]:
    with open_windows(list(files), frozenset(options.pop("left_out", ())), row_groups=files, seed=1, **options) as chunks:
        out = []
        for chunk in chunks:
            assert chunk.tokens.dtype == np.int64 and chunk.tokens.shape == chunk.gap_buckets.shape == (len(chunk.tokens), 4)
            out += [int(t) for t in chunk.tokens[:, 0]]
        return out


def test_an_epoch_reads_every_window_once_in_a_shuffled_row_group_order(files):
    shuffled, ordered = _ids(files), _ids(files, shuffle_row_groups=False)
    assert sorted(shuffled) == ordered == list(range(60))
    assert shuffled != ordered


def test_shards_are_disjoint_and_together_hold_every_window(files):
    shards = [_ids(files, cur_shard=k, shard_count=3) for k in range(3)]
    assert sorted(itertools.chain(*shards)) == list(range(60))
    assert all(shards)


def test_the_windows_of_left_out_sessions_are_skipped(files):
    left_out = {"s0", "s5", "s19"}
    assert sorted(_ids(files, left_out=left_out)) == [i for i in range(60) if f"s{i // 3}" not in left_out]


def test_without_an_epoch_count_it_repeats(files):
    with open_windows(list(files), frozenset(), row_groups=files, seed=1, num_epochs=None) as chunks:
        rows = sum(len(chunk.tokens) for chunk in itertools.islice(chunks, 20))  # 7 row groups an epoch
    assert rows > 60


def test_a_shard_without_row_groups_is_an_error(files):
    with (
        pytest.raises(ValueError, match="no row groups"),
        open_windows(list(files), frozenset(), row_groups=files, seed=1, cur_shard=7, shard_count=8),
    ):
        pass
