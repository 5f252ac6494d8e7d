"""Vacuum after killed runs leaves only committed files, and never the files of a run in progress."""

from pathlib import Path

import pytest
from deltalake import DeltaTable
from helpers import make_config

from seqrisk.jobs.ingest import run_ingest
from seqrisk.jobs.vacuum import run_vacuum
from seqrisk.lake.delta_rs import DeltaRsTables


def test_vacuum_removes_a_table_folder_whose_first_commit_never_came(spark, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    source = tmp_path / "in.csv"
    source.write_text("2024-05-01T10:00:00Z,u1,view,i1,c1,1.5,mobile,DE\nnot,a,record\n")
    monkeypatch.setattr(DeltaRsTables, "_commit", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt("killed")))
    with pytest.raises(KeyboardInterrupt):  # the files are in the new tables' folders, no table was created
        run_ingest(make_config(lake), input_path=str(source), mapping_name="generated", spark=spark)
    monkeypatch.undo()
    left = {t: list((lake / t).rglob("*.parquet")) for t in ("events", "quarantine", "ingest_runs")}
    assert all(left.values()) and not any((lake / t / "_delta_log").exists() for t in left)

    assert run_vacuum(make_config(lake), spark=spark).files_removed == {}  # young: maybe a run in progress
    removed = run_vacuum(make_config(lake), retain_hours=0, spark=spark).files_removed
    assert removed == {t: len(files) for t, files in left.items()}
    assert not any((lake / t).exists() for t in left)

    summary = run_ingest(make_config(lake), input_path=str(source), mapping_name="generated", spark=spark)
    assert (summary.written, summary.quarantined_total) == (1, 1)
    assert {Path(u.removeprefix("file://")) for u in DeltaTable(str(lake / "events")).file_uris()} == set(
        (lake / "events").rglob("*.parquet")
    )
