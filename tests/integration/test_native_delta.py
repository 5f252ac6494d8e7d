"""Native Delta beside delta-rs: one lake, written by either backend and extended by the other; catalog names."""

import os
from pathlib import Path

import pytest
from helpers import make_config

from seqrisk.jobs.ingest import run_ingest
from seqrisk.jobs.sessionize import run_sessionize
from seqrisk.lake.lake import Lake
from seqrisk.sessions import vocabulary_store


def lines(users: range, day: int) -> str:
    """Raw events in the `generated` mapping's layout: two per user."""
    return "".join(
        f"2024-05-0{day}T10:0{step}:00Z,u{user},{kind},i{user},c1,1.5,mobile,DE\n"
        for user in users
        for step, kind in enumerate(("view", "cart"))
    )


@pytest.mark.parametrize("first, second", [("delta-rs", "native"), ("native", "delta-rs")])
def test_a_lake_written_by_one_backend_is_read_and_extended_by_the_other(spark, tmp_path, first, second):
    lake = tmp_path / "lake"
    (tmp_path / "a.csv").write_text(lines(range(0, 30), 1))
    (tmp_path / "b.csv").write_text(lines(range(30, 50), 2))
    ingested = run_ingest(
        make_config(lake, f"tables.delta={first}"), input_path=str(tmp_path / "a.csv"), mapping_name="generated", spark=spark
    )
    run_sessionize(make_config(lake, f"tables.delta={first}"), spark=spark)

    config = make_config(lake, f"tables.delta={second}")
    handle = Lake.open(spark, config.tables)
    assert handle.tables.backend == second
    assert handle.tables.commit_metadata(handle.path("events"))["run_id"] == ingested.run_id  # the other backend's commit
    vocabulary = vocabulary_store.windows_vocabulary(handle)  # the windows' vocabulary check reads the other's metadata
    assert vocabulary.sha256 == handle.tables.commit_metadata(handle.path("windows"))[vocabulary_store.SHA_KEY]

    extended = run_ingest(config, input_path=str(tmp_path / "b.csv"), mapping_name="generated", spark=spark)
    assert extended.written == 40
    again = run_ingest(
        make_config(lake, f"tables.delta={first}"), input_path=str(tmp_path / "b.csv"), mapping_name="generated", spark=spark
    )
    assert again.written == 0 and again.duplicates == 40  # each sees the other's events
    assert Lake.open(spark, make_config(lake, f"tables.delta={first}").tables).read("events").count() == 100
    run_sessionize(config, date_from=None, date_to=None, spark=spark)
    assert Lake.open(spark, config.tables).read("sessions").count() == 50


def test_tables_named_in_the_catalog_are_created_read_and_extended_with_their_schema(spark, tmp_path):
    lake = tmp_path / "lake"
    (tmp_path / "a.csv").write_text(lines(range(0, 10), 1))
    (tmp_path / "b.csv").write_text(lines(range(5, 15), 1))
    config = make_config(lake, "tables.delta=native", "tables.catalog=spark_catalog", f"tables.schema=seqrisk_{os.getpid()}")
    before = set(Path.cwd().iterdir())
    first = run_ingest(config, input_path=str(tmp_path / "a.csv"), mapping_name="generated", spark=spark)
    second = run_ingest(config, input_path=str(tmp_path / "b.csv"), mapping_name="generated", spark=spark)

    handle = Lake.open(spark, config.tables)
    events = handle.path("events")
    assert events == f"spark_catalog.seqrisk_{os.getpid()}.events" and spark.catalog.tableExists(events)
    assert (first.written, second.written, second.duplicates) == (20, 10, 10)
    assert handle.read("events").count() == 30
    assert handle.tables.commit_metadata(events)["run_id"] == second.run_id
    assert set(Path.cwd().iterdir()) == before  # nothing of the catalog in the working folder
