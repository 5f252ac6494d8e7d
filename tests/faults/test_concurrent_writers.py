"""Two runs writing one table at once: optimistic concurrency leaves nothing doubled and nothing lost, on either backend."""

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from deltalake import DeltaTable
from helpers import BACKENDS, make_config, open_backend
from pyspark.sql import functions as F

from seqrisk import faults
from seqrisk.jobs.ingest import run_ingest
from seqrisk.lake.tables import ConcurrentWriteError, TableWrite


def lines(users: range) -> str:
    """Raw events in the `generated` mapping's layout: three per user."""
    return "".join(
        f"2024-05-01T10:0{step}:00Z,u{user},{kind},i{user},c1,1.5,mobile,DE\n"
        for user in users
        for step, kind in enumerate(("view", "cart", "purchase"))
    )


def once_per_thread(barrier: threading.Barrier):
    done = threading.local()

    def meet() -> None:
        if not getattr(done, "waited", False):  # a retry after a conflict does not wait again
            done.waited = True
            barrier.wait()

    return meet


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_overlapping_ingests_committing_at_once_keep_every_event_id_once(spark, tmp_path, backend):
    lake = tmp_path / "lake"
    (tmp_path / "a.csv").write_text(lines(range(0, 40)))
    (tmp_path / "b.csv").write_text(lines(range(20, 60)))  # users 20..39 in both
    (tmp_path / "earlier.csv").write_text(lines(range(100, 110)) + "not,a,record\n")
    config = make_config(lake, f"tables.delta={backend}")
    run_ingest(config, input_path=str(tmp_path / "earlier.csv"), mapping_name="generated", spark=spark)  # both tables exist

    barrier = threading.Barrier(2, timeout=300)
    with faults.hold("before_commit", once_per_thread(barrier)), ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(run_ingest, config, input_path=str(tmp_path / name), mapping_name="generated", spark=spark)
            for name in ("a.csv", "b.csv")
        ]
        summaries = [f.result() for f in futures]

    ids = [row["event_id"] for row in spark.read.parquet(*_files(lake / "events")).select("event_id").collect()]
    assert len(ids) == len(set(ids)) == 70 * 3
    assert sorted(s.written for s in summaries) == [60, 120]  # the loser re-read the table: only its new events
    for s in summaries:
        assert s.records == s.written + s.duplicates + s.quarantined_total == 120
    if backend == "delta-rs":  # it deletes a refused write's files; delta-spark leaves them to VACUUM
        assert _files(lake / "events") == {str(p) for p in (lake / "events").rglob("*.parquet")}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["append", "overwrite"])
def test_a_write_against_a_table_another_run_changed_since_the_read_is_refused(spark, tmp_path, mode, backend):
    path = str(tmp_path / "risk")
    frame = spark.range(10).withColumn("score", F.col("id") * 0.1)
    open_backend(spark, backend).publish(TableWrite(path, frame, "overwrite"), run_id="first")

    slow = open_backend(spark, backend)
    derived = slow.read(path).withColumn("score", F.col("score") * 2)  # read at version 0
    open_backend(spark, backend).publish(TableWrite(path, frame.limit(3), "append"), run_id="second")

    with pytest.raises(ConcurrentWriteError, match="version 0 when read and is at version 1"):
        slow.publish(TableWrite(path, derived, mode), run_id="slow")
    assert DeltaTable(path).version() == 1 and open_backend(spark, backend).commit_metadata(path)["run_id"] == "second"
    assert {str(p) for p in Path(path).rglob("*.parquet")} == _files(Path(path))  # the refused files are gone

    retried = open_backend(spark, backend)
    again = retried.read(path).withColumn("score", F.col("score") * 2)
    retried.publish(TableWrite(path, again, mode), run_id="slow")
    assert DeltaTable(path).version() == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_runs_creating_one_table_the_second_is_refused(spark, tmp_path, backend):
    path = str(tmp_path / "new")
    first, second = open_backend(spark, backend), open_backend(spark, backend)
    assert not first.exists(path) and not second.exists(path)
    first.publish(TableWrite(path, spark.range(3), "append"), run_id="first")
    with pytest.raises(ConcurrentWriteError, match="did not exist when read"):
        second.publish(TableWrite(path, spark.range(5), "append"), run_id="second")
    assert DeltaTable(path).version() == 0 and len(_files(Path(path))) >= 1


def _files(table: Path, version=None) -> set[str]:
    """The files of the table's current (or a given) version: an overwrite's old files stay on disk until a vacuum."""
    return {uri.removeprefix("file://") for uri in DeltaTable(str(table), version=version).file_uris()}
