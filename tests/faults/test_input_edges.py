"""Input at the edges: ids from two sources, headers that differ per file, encodings, unfinished folders, reruns."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable
from helpers import config_with, read_with_deltalake

from seqrisk.errors import SeqriskError
from seqrisk.jobs.ingest import run_ingest

MAPPINGS = """
ingest:
  mappings:
    shop_a:
      format: json
      columns: {event_id: id, user_id: user, event_time: at, event_type: kind}
    shop_b:
      format: json
      columns: {event_id: id, user_id: user, event_time: at, event_type: kind}
    clicks:
      format: csv
      delimiter: ";"
      columns: {user_id: user, event_time: at, event_type: kind, item_id: item}
    clicks_latin1:
      format: csv
      delimiter: ";"
      encoding: latin-1
      columns: {user_id: user, event_time: at, event_type: kind, item_id: item}
"""


@pytest.fixture
def config(tmp_path, lake):
    return config_with(MAPPINGS, tmp_path, lake)


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def test_two_sources_with_the_same_raw_id_keep_both_events(spark, config, lake, tmp_path):
    line = '{"id": "1", "user": "u", "at": "2024-05-01T10:00:00Z", "kind": "view"}\n'
    a = run_ingest(config(), input_path=str(write(tmp_path / "a.jsonl", line)), mapping_name="shop_a", spark=spark)
    b = run_ingest(config(), input_path=str(write(tmp_path / "b.jsonl", line)), mapping_name="shop_b", spark=spark)
    assert (a.written, b.written, b.duplicates) == (1, 1, 0)
    assert read_with_deltalake(lake / "events", ["event_id"]) == [("shop_a:1",), ("shop_b:1",)]


def test_a_later_file_with_reordered_columns_is_read_by_its_own_header(spark, config, lake, tmp_path):
    write(tmp_path / "in" / "1.csv", "user;at;kind;item\nu1;2024-05-01T10:00:00Z;view;i1\n")
    write(tmp_path / "in" / "2.csv", "item;kind;user;at\ni2;cart;u2;2024-05-01T11:00:00Z\n")
    summary = run_ingest(config(), input_path=str(tmp_path / "in"), mapping_name="clicks", spark=spark)
    assert (summary.records, summary.written) == (2, 2)
    assert read_with_deltalake(lake / "events", ["user_id", "event_type", "item_id"]) == [("u1", "view", "i1"), ("u2", "cart", "i2")]

    write(tmp_path / "in" / "3.csv", "user;when;kind;item\nu3;2024-05-01T12:00:00Z;view;i3\n")
    with pytest.raises(SeqriskError, match=r"column\(s\) \['at'\] that the CSV header of .*3\.csv lack"):
        run_ingest(config(), input_path=str(tmp_path / "in"), mapping_name="clicks", spark=spark)


def test_latin1_text_is_quarantined_as_utf8_and_decoded_as_declared(spark, config, lake, tmp_path):
    source = write(
        tmp_path / "latin1.csv",
        "user;at;kind;item\nu1;2024-05-01T10:00:00Z;view;café\r\nu2;2024-05-01T10:00:00Z;view;tea\n".encode("latin-1"),
    )
    undeclared = run_ingest(config(), input_path=str(source), mapping_name="clicks", spark=spark)
    assert (undeclared.written, undeclared.quarantined) == (1, {"malformed_record": 1})
    [(detail,)] = read_with_deltalake(lake / "quarantine", ["detail"])
    assert detail == "text that is not utf-8: declare the files' `encoding` in the mapping"

    declared = run_ingest(config(), input_path=str(source), mapping_name="clicks_latin1", spark=spark)
    assert (declared.records, declared.written, declared.quarantined_total) == (2, 1, 0)  # u2's line is the same event
    assert ("u1", "café") in read_with_deltalake(lake / "events", ["user_id", "item_id"])


def test_folders_still_being_written_are_refused(spark, config, lake, tmp_path):
    out = tmp_path / "upstream"
    write(out / "part-00000.csv", "user;at;kind;item\nu1;2024-05-01T10:00:00Z;view;i1\n")
    write(out / "_temporary" / "0" / "part-00001.csv", "user;at;kind;item\n")
    with pytest.raises(SeqriskError, match="_temporary work folder"):
        run_ingest(config(), input_path=str(out), mapping_name="clicks", spark=spark)
    (out / "_temporary" / "0" / "part-00001.csv").unlink()
    for folder in ((out / "_temporary" / "0"), (out / "_temporary")):
        folder.rmdir()
    with pytest.raises(SeqriskError, match="no _SUCCESS marker"):
        run_ingest(config(), input_path=str(out), mapping_name="clicks", spark=spark)
    assert not (lake / "events").exists()
    write(out / "_SUCCESS", "")
    assert run_ingest(config(), input_path=str(out), mapping_name="clicks", spark=spark).written == 1


def test_a_run_repeated_a_day_later_changes_nothing(spark, config, lake, tmp_path, monkeypatch):
    written_at = datetime(2024, 5, 2, tzinfo=UTC)
    source = write(tmp_path / "late.csv", "user;at;kind;item\nu1;2024-05-02T23:00:00Z;view;i1\nu1;2024-05-03T06:00:00Z;view;i2\n")
    os.utime(source, (written_at.timestamp(), written_at.timestamp()))  # the second event is 30 h after its file
    first = run_ingest(config(), input_path=str(source), mapping_name="clicks", spark=spark)
    assert (first.written, first.quarantined) == (1, {"event_time_out_of_range": 1})
    versions = {t: DeltaTable(str(lake / t)).version() for t in ("events", "quarantine")}

    import seqrisk.jobs.start as start

    class Tomorrow(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + timedelta(days=1)

    monkeypatch.setattr(start, "datetime", Tomorrow)
    again = run_ingest(config(), input_path=str(source), mapping_name="clicks", spark=spark)
    assert (again.written, again.duplicates, again.already_quarantined) == (0, 1, 1)
    assert {t: DeltaTable(str(lake / t)).version() for t in versions} == versions
