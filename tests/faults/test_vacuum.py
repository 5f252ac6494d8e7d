"""Vacuum after killed runs leaves only committed files, and never the files of a run in progress."""

from pathlib import Path

import pytest
from deltalake import DeltaTable
from helpers import make_config

from seqrisk.jobs.ingest import run_ingest
from seqrisk.jobs.vacuum import run_vacuum
from seqrisk.lake.delta_rs import DeltaRsTables
from seqrisk.lake.native_delta import LISTING_PARALLELISM


def test_vacuum_removes_a_delta_rs_table_folder_whose_first_commit_never_came(spark, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    delta_rs = "tables.delta=delta-rs"
    source = tmp_path / "in.csv"
    source.write_text("2024-05-01T10:00:00Z,u1,view,i1,c1,1.5,mobile,DE\nnot,a,record\n")
    monkeypatch.setattr(DeltaRsTables, "_commit", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt("killed")))
    with pytest.raises(KeyboardInterrupt):  # the files are in the new tables' folders, no table was created
        run_ingest(make_config(lake, delta_rs), input_path=str(source), mapping_name="generated", spark=spark)
    monkeypatch.undo()
    left = {t: list((lake / t).rglob("*.parquet")) for t in ("events", "quarantine", "ingest_runs")}
    assert all(left.values()) and not any((lake / t / "_delta_log").exists() for t in left)

    assert run_vacuum(make_config(lake, delta_rs), spark=spark).files_removed == {}  # young: maybe a run in progress
    removed = run_vacuum(make_config(lake, delta_rs), retain_hours=0, spark=spark).files_removed
    assert removed == {t: len(files) for t, files in left.items()}
    assert not any((lake / t).exists() for t in left)

    summary = run_ingest(make_config(lake, delta_rs), input_path=str(source), mapping_name="generated", spark=spark)
    assert (summary.written, summary.quarantined_total) == (1, 1)
    assert {Path(u.removeprefix("file://")) for u in DeltaTable(str(lake / "events")).file_uris()} == set(
        (lake / "events").rglob("*.parquet")
    )


def test_native_vacuum_below_delta_spark_s_retention_removes_the_files_no_live_commit_needs(spark, tmp_path):
    lake = tmp_path / "lake"
    (tmp_path / "a.csv").write_text("2024-05-01T10:00:00Z,u1,view,i1,c1,1.5,mobile,DE\n")
    native = ("tables.delta=native",)
    run_ingest(make_config(lake, *native), input_path=str(tmp_path / "a.csv"), mapping_name="generated", spark=spark)
    (tmp_path / "b.csv").write_text("2024-05-01T11:00:00Z,u2,view,i2,c1,2.5,mobile,DE\n")
    run_ingest(make_config(lake, *native), input_path=str(tmp_path / "b.csv"), mapping_name="generated", spark=spark)
    stray = lake / "events" / "event_date=2024-05-01" / "part-stray.parquet"  # a killed writer's file: no commit names it
    stray.write_bytes(b"x")
    live = {Path(u.removeprefix("file://")) for u in DeltaTable(str(lake / "events")).file_uris()}

    listing = spark.conf.get(LISTING_PARALLELISM)
    assert run_vacuum(make_config(lake, *native), spark=spark).files_removed["events"] == 0  # young files are kept
    assert run_vacuum(make_config(lake, *native), retain_hours=0, spark=spark).files_removed["events"] == 1
    assert spark.conf.get(LISTING_PARALLELISM) == listing  # the vacuum's own listing parallelism is not left behind
    assert set((lake / "events").rglob("*.parquet")) == live
