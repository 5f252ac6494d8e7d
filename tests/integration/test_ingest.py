"""The ingest job on files: every format, every quarantine reason, reruns, interruptions, real data."""

import gzip
import json
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from helpers import REPO, config_with, make_config, read_with_deltalake

from seqrisk import faults
from seqrisk.cli import main
from seqrisk.errors import SeqriskError
from seqrisk.jobs.ingest import run_ingest
from seqrisk.lake.delta_rs import DeltaRsTables

MAPPINGS = """
ingest:
  mappings:
    clicks_csv:
      format: csv
      header: true
      delimiter: ";"
      columns: {user_id: user, event_time: at, event_type: kind, item_id: item, price: amount}
      time_format: iso
      attributes: [device]
    clicks_bare:
      format: csv
      header: false
      names: [user, at, kind]
      columns: {user_id: user, event_time: at, event_type: kind}
      time_format: epoch_ms
    clicks_json:
      format: json
      columns: {event_id: id, user_id: user, event_time: at, event_type: kind, session_id: sid}
      time_format: epoch_s
      attributes: [meta]
"""


@pytest.fixture
def config(tmp_path, lake):
    return config_with(MAPPINGS, tmp_path, lake)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def table_rows(lake: Path, table: str, columns):
    return read_with_deltalake(lake / table, columns)


CSV = """user;at;kind;item;amount;device
u1;2024-05-01 10:00:00 UTC;view;i1;9.99;ios
u1;2024-05-01 10:00:05 UTC;cart;i1;9.99;ios
u1;2024-05-01 10:00:05 UTC;cart;i1;9.99;ios
u2;2024-05-02T08:00:00Z;view;i2;;
;2024-05-02T08:00:00Z;view;i2;1;web
u3;2024-05-02T08:00:00Z;;i2;1;web
u3;;view;i2;1;web
u3;not a time;view;i2;1;web
u3;1999-01-01T00:00:00Z;view;i2;1;web
u3;2024-05-02T08:00:00Z;view;i2;-3;web
u3;2024-05-02T08:00:00Z;view;i2
"""


def test_csv_ingest_writes_events_keeps_repeats_and_quarantines_each_reason(spark, config, lake, tmp_path):
    source = write(tmp_path / "in" / "clicks.csv", CSV)
    summary = run_ingest(config(), input_path=str(source), mapping_name="clicks_csv", spark=spark)

    assert (summary.records, summary.written, summary.duplicates) == (11, 4, 0)  # the two identical carts are two events
    assert summary.quarantined == {
        "missing_user_id": 1,
        "missing_event_type": 1,
        "missing_event_time": 1,
        "bad_event_time": 1,
        "event_time_out_of_range": 1,
        "bad_price": 1,
        "malformed_record": 1,
    }
    assert summary.records == summary.written + summary.duplicates + summary.quarantined_total

    events = table_rows(lake, "events", ["user_id", "event_time", "event_type", "item_id", "price", "attributes", "event_date"])
    import datetime as dt

    assert events == [
        ("u1", dt.datetime(2024, 5, 1, 10, 0, 0), "view", "i1", 9.99, (("device", "ios"),), dt.date(2024, 5, 1)),
        ("u1", dt.datetime(2024, 5, 1, 10, 0, 5), "cart", "i1", 9.99, (("device", "ios"),), dt.date(2024, 5, 1)),
        ("u1", dt.datetime(2024, 5, 1, 10, 0, 5), "cart", "i1", 9.99, (("device", "ios"),), dt.date(2024, 5, 1)),
        ("u2", dt.datetime(2024, 5, 2, 8, 0, 0), "view", "i2", None, (), dt.date(2024, 5, 2)),
    ]
    quarantine = table_rows(lake, "quarantine", ["reason", "record"])
    assert ("malformed_record", "u3;2024-05-02T08:00:00Z;view;i2") in quarantine
    assert ("bad_price", "u3;2024-05-02T08:00:00Z;view;i2;-3;web") in quarantine
    assert {run for (run,) in table_rows(lake, "events", ["run_id"])} == {summary.run_id}


def test_rerun_on_the_same_input_changes_no_table(spark, config, lake, tmp_path):
    source = write(tmp_path / "in" / "clicks.csv", CSV)
    run_ingest(config(), input_path=str(source), mapping_name="clicks_csv", spark=spark)
    versions = DeltaTable(str(lake / "events")).version(), DeltaTable(str(lake / "quarantine")).version()

    again = run_ingest(config(), input_path=str(source), mapping_name="clicks_csv", spark=spark)
    assert (again.written, again.duplicates, again.already_quarantined) == (0, 4, 7)
    assert (DeltaTable(str(lake / "events")).version(), DeltaTable(str(lake / "quarantine")).version()) == versions


def test_ingest_runs_reconciles_every_file_of_every_run(spark, config, lake, tmp_path):
    folder = tmp_path / "in"
    write(folder / "a.csv", CSV)
    write(
        folder / "b.csv", CSV.splitlines()[0] + "\nu1;2024-05-01 10:00:00 UTC;view;i1;9.99;ios\nu9;2024-05-01 11:00:00 UTC;buy;i7;5;web\n"
    )
    first = run_ingest(config(), input_path=str(folder), mapping_name="clicks_csv", spark=spark)
    again = run_ingest(config(), input_path=str(folder), mapping_name="clicks_csv", spark=spark)

    columns = ["run_id", "source_file", "records", "events_written", "duplicates", "refused", "quarantined", "status"]
    runs = table_rows(lake, "ingest_runs", columns)
    by_file = {(run, Path(f).name): rest for run, f, *rest in runs}
    assert by_file == {
        (first.run_id, "a.csv"): [11, 4, 0, 0, 7, "ok"],  # b.csv's copy of a.csv's first event: kept here, dropped there
        (first.run_id, "b.csv"): [2, 1, 1, 0, 0, "ok"],
        (again.run_id, "a.csv"): [11, 0, 4, 0, 7, "ok"],
        (again.run_id, "b.csv"): [2, 0, 2, 0, 0, "ok"],
    }
    reasons = table_rows(lake, "ingest_runs", ["run_id", "source_file", "quarantined_by_reason"])
    assert dict(next(r for run, f, r in reasons if run == first.run_id and f.endswith("a.csv")))["bad_price"] == 1
    for run in (first, again):
        mine = [r for r in runs if r[0] == run.run_id]
        assert sum(r[2] for r in mine) == run.records and sum(r[3] for r in mine) == run.written


def test_a_run_quarantining_more_than_the_limit_keeps_its_quarantine_writes_no_event_and_fails(spark, config, lake, tmp_path):
    source = write(tmp_path / "in" / "clicks.csv", CSV)  # 7 of 11 records are bad
    with pytest.raises(SeqriskError, match=r"7 of 11 records \(63.64%\) were quarantined, above ingest.max_quarantine_share \(50.00%\)"):
        run_ingest(config("ingest.max_quarantine_share=0.5"), input_path=str(source), mapping_name="clicks_csv", spark=spark)
    assert not (lake / "events").exists()
    assert len(table_rows(lake, "quarantine", ["record_id"])) == 7
    [(records, refused, quarantined, status)] = table_rows(lake, "ingest_runs", ["records", "refused", "quarantined", "status"])
    assert (records, refused, quarantined) == (11, 4, 7) and status.startswith("refused: quarantined share 63.64%")

    summary = run_ingest(config("ingest.max_quarantine_share=0.7"), input_path=str(source), mapping_name="clicks_csv", spark=spark)
    assert (summary.written, summary.already_quarantined) == (4, 7)


def test_events_already_in_the_table_are_duplicates_and_new_ones_are_added(spark, config, lake, tmp_path):
    run_ingest(config(), input_path=str(write(tmp_path / "a.csv", CSV)), mapping_name="clicks_csv", spark=spark)
    later = CSV.splitlines()[0] + "\nu1;2024-05-01 10:00:00 UTC;view;i1;9.99;ios\nu9;2024-05-01 11:00:00 UTC;buy;i7;5;web\n"
    summary = run_ingest(config(), input_path=str(write(tmp_path / "b.csv", later)), mapping_name="clicks_csv", spark=spark)
    assert (summary.records, summary.written, summary.duplicates) == (2, 1, 1)
    assert len(table_rows(lake, "events", ["event_id"])) == 5


def test_headerless_csv_from_a_glob_and_from_a_folder(spark, config, lake, tmp_path):
    write(tmp_path / "in" / "day1.csv", "a,1714557600000,view\nb,1714557601000,view\n")
    write(tmp_path / "in" / "day2.csv", "a,1714644000000,buy\n")
    write(tmp_path / "in" / "_SUCCESS", "")
    summary = run_ingest(config(), input_path=str(tmp_path / "in" / "day*.csv"), mapping_name="clicks_bare", spark=spark)
    assert (summary.files, summary.records, summary.written) == (2, 3, 3)

    folder = run_ingest(config(), input_path=str(tmp_path / "in"), mapping_name="clicks_bare", spark=spark)
    assert (folder.files, folder.records, folder.written, folder.duplicates) == (2, 3, 0, 3)


def test_gzip_compressed_csv_ingests_as_the_plain_file_does(spark, config, lake, tmp_path):
    plain = write(tmp_path / "plain" / "a.csv", CSV)
    packed = tmp_path / "packed" / "a.csv.gz"
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(CSV.encode()))
    summary = run_ingest(config(), input_path=str(packed), mapping_name="clicks_csv", spark=spark)
    assert (summary.records, summary.written) == (11, 4)
    again = run_ingest(config(), input_path=str(plain), mapping_name="clicks_csv", spark=spark)
    assert (again.records, again.written, again.duplicates) == (11, 0, 4)  # the same events, so nothing new


def test_a_compressed_file_in_another_encoding_is_a_clear_error(spark, config, lake, tmp_path):
    packed = tmp_path / "a.csv.gz"
    packed.write_bytes(gzip.compress(CSV.encode("latin-1")))
    with pytest.raises(SeqriskError, match="compressed files are read as UTF-8 only"):
        run_ingest(config("ingest.mappings.clicks_csv.encoding=latin-1"), input_path=str(packed), mapping_name="clicks_csv", spark=spark)


def test_json_lines_keep_given_ids_and_quarantine_bad_json(spark, config, lake, tmp_path):
    lines = [
        json.dumps({"id": "e1", "user": 7, "at": 1714557600, "kind": "login", "sid": "s1", "meta": {"ip": "1.2.3.4"}}),
        json.dumps({"id": "e1", "user": 7, "at": 1714557600, "kind": "login", "sid": "s1", "meta": {"ip": "1.2.3.4"}}),
        json.dumps({"id": "e2", "user": 7, "at": 1714557660.5, "kind": "logout", "sid": "s1"}),
        '{"id": "e3", "user": 8',
        "[1, 2]",
    ]
    source = write(tmp_path / "events.jsonl", "\n".join(lines) + "\n")
    summary = run_ingest(config(), input_path=str(source), mapping_name="clicks_json", spark=spark)
    assert (summary.records, summary.written, summary.duplicates, summary.quarantined) == (5, 2, 1, {"malformed_record": 2})
    import datetime as dt

    assert table_rows(lake, "events", ["event_id", "user_id", "event_time", "session_id", "attributes"]) == [
        ("clicks_json:e1", "7", dt.datetime(2024, 5, 1, 10, 0), "s1", (("meta", '{"ip":"1.2.3.4"}'),)),
        ("clicks_json:e2", "7", dt.datetime(2024, 5, 1, 10, 1, 0, 500000), "s1", ()),
    ]


def test_parquet_records_are_quarantined_as_json_verbatim(spark, config, lake, tmp_path):
    table = pa.table({"user": ["a", None], "at": [1714557600, 1714557600], "kind": ["view", "view"]})
    (tmp_path / "pq").mkdir()
    pq.write_table(table, tmp_path / "pq" / "part.parquet")
    cfg = config(
        "ingest.mappings.pq.format=parquet",
        "ingest.mappings.pq.columns={user_id: user, event_time: at, event_type: kind}",
        "ingest.mappings.pq.time_format=epoch_s",
    )
    summary = run_ingest(cfg, input_path=str(tmp_path / "pq"), mapping_name="pq", spark=spark)
    assert (summary.records, summary.written, summary.quarantined) == (2, 1, {"missing_user_id": 1})
    assert table_rows(lake, "quarantine", ["record"]) == [('{"at":1714557600,"kind":"view"}',)]


def test_a_run_killed_before_its_commit_leaves_the_tables_as_they_were(spark, config, lake, tmp_path, monkeypatch):
    first = write(tmp_path / "a.csv", CSV)
    run_ingest(config(), input_path=str(first), mapping_name="clicks_csv", spark=spark)
    before = table_rows(lake, "events", ["event_id"]), table_rows(lake, "quarantine", ["record_id"])

    def killed(point: str) -> None:
        if point == "before_commit":
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(faults, "point", killed)
    second = write(tmp_path / "b.csv", CSV.replace("u1", "u7").replace("u2", "u6"))
    with pytest.raises(KeyboardInterrupt):
        run_ingest(config(), input_path=str(second), mapping_name="clicks_csv", spark=spark)
    assert (table_rows(lake, "events", ["event_id"]), table_rows(lake, "quarantine", ["record_id"])) == before

    monkeypatch.undo()
    resumed = run_ingest(config(), input_path=str(second), mapping_name="clicks_csv", spark=spark)
    assert resumed.written == 4


def test_vacuum_removes_what_a_killed_delta_rs_run_left_once_old_enough_and_nothing_committed(spark, config, lake, tmp_path, monkeypatch):
    from seqrisk.jobs.vacuum import run_vacuum

    config = partial(config, "tables.delta=delta-rs")  # its staging and its uncommitted files are delta-rs's own
    first = run_ingest(config(), input_path=str(write(tmp_path / "a.csv", CSV)), mapping_name="clicks_csv", spark=spark)
    monkeypatch.setattr(DeltaRsTables, "_commit", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt("killed")))
    with pytest.raises(KeyboardInterrupt):  # the files are in the table folder, the commit never came
        run_ingest(config(), input_path=str(write(tmp_path / "b.csv", CSV.replace("u1", "u7"))), mapping_name="clicks_csv", spark=spark)
    monkeypatch.undo()
    leftover = lake / "_staging" / "ingest-killed" / "events"  # as a run killed while Spark wrote leaves it
    write(leftover / "part-0.parquet", "x")
    rows = table_rows(lake, "events", ["event_id"])
    orphans = {t: _on_disk(lake / t) - _committed(lake / t) for t in ("events", "quarantine", "ingest_runs")}
    assert orphans["events"]

    fresh = run_vacuum(config(), spark=spark)  # minutes old: as a run still in progress, kept
    assert fresh.files_removed == dict.fromkeys(orphans, 0) and fresh.staging_runs_removed == 0
    assert {t: _on_disk(lake / t) - _committed(lake / t) for t in orphans} == orphans and leftover.is_dir()

    old = run_vacuum(config(), retain_hours=0, spark=spark)
    assert old.files_removed == {t: len(files) for t, files in orphans.items()} and old.staging_runs_removed == 1
    for table in orphans:
        assert _on_disk(lake / table) == _committed(lake / table), table
    assert not (lake / "_staging").exists()
    assert table_rows(lake, "events", ["event_id"]) == rows
    tables = DeltaRsTables(spark)
    assert tables.commit_metadata(str(lake / "events"))["run_id"] == first.run_id  # past the vacuum's own commits


def _on_disk(table: Path) -> set[str]:
    return {p.relative_to(table).as_posix() for p in table.rglob("*.parquet")}


def _committed(table: Path) -> set[str]:
    return {Path(uri.removeprefix("file://")).relative_to(table).as_posix() for uri in DeltaTable(str(table)).file_uris()}


def test_empty_input_changes_nothing(spark, config, lake, tmp_path):
    source = write(tmp_path / "empty.csv", "")
    summary = run_ingest(config(), input_path=str(source), mapping_name="clicks_csv", spark=spark)
    assert summary.records == 0
    assert not (lake / "events").exists()


def test_missing_input_and_missing_columns_are_clear_messages(spark, config, lake, tmp_path, capsys):
    with pytest.raises(SeqriskError, match="matches nothing"):
        run_ingest(config(), input_path=str(tmp_path / "nope*.csv"), mapping_name="clicks_csv", spark=spark)
    wrong = write(tmp_path / "wrong.csv", "who;when;what\na;b;c\n")
    with pytest.raises(SeqriskError, match=r"lack; available: \['who', 'when', 'what'\]"):
        run_ingest(config(), input_path=str(wrong), mapping_name="clicks_csv", spark=spark)


def test_cli_reports_a_missing_input_without_a_traceback_and_exits_non_zero(tmp_path, capsys):
    # SystemExit, not a return value: a wheel-task launcher calls main() and ignores what it returns
    with pytest.raises(SystemExit) as exit:
        main(
            [
                "ingest",
                "--conf",
                str(REPO / "conf" / "local.yaml"),
                "--set",
                f"tables.root={tmp_path}",
                "--input",
                str(tmp_path / "none.csv"),
                "--mapping",
                "taobao",
            ]
        )
    assert exit.value.code == 2
    assert "seqrisk ingest: --input" in capsys.readouterr().err


def test_cli_rejects_a_bad_config_before_any_spark_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["ingest", "--conf", str(REPO / "conf" / "local.yaml"), "--set", "tables.delta=nope", "--input", "x", "--mapping", "taobao"])
    assert exit.value.code == 2
    assert "tables.delta" in capsys.readouterr().err


# -- the real slices in ../shared/data --------------------------------------------------------


def count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


@pytest.mark.parametrize(
    "name, mapping, records_in",
    [
        ("taobao_userbehavior_815users.csv", "taobao", lambda p: count_lines(p)),
        ("rees46_2019oct_head17k.csv", "rees46", lambda p: count_lines(p) - 1),  # minus the header
        ("trivago_sessions_100k.parquet", "trivago", lambda p: pq.read_metadata(p).num_rows),
    ],
)
def test_real_slices_ingest_and_reconcile_exactly(spark, shared_data, lake, name, mapping, records_in):
    source = shared_data / name
    summary = run_ingest(make_config(lake), input_path=str(source), mapping_name=mapping, spark=spark)

    assert summary.records == records_in(source)
    assert len(table_rows(lake, "events", ["event_id"])) == summary.written
    quarantined = table_rows(lake, "quarantine", ["reason"]) if summary.quarantined_total else []
    assert len(quarantined) == summary.quarantined_total
    assert summary.records == summary.written + summary.duplicates + summary.quarantined_total
    assert summary.written > 0.99 * summary.records
    if mapping == "taobao":  # its last line is cut mid-record
        last = source.read_text().rstrip("\n").splitlines()[-1]
        assert ("malformed_record", last) in table_rows(lake, "quarantine", ["reason", "record"])
