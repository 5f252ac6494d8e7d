"""The sessionize job on Delta tables: full and incremental runs agree, reruns change nothing."""

import shutil
from datetime import date

import pytest
from deltalake import DeltaTable
from helpers import REPO, make_config, read_with_deltalake

from seqrisk.cli import main
from seqrisk.errors import SeqriskError
from seqrisk.jobs.generate import run_generate
from seqrisk.jobs.ingest import run_ingest
from seqrisk.jobs.sessionize import run_sessionize
from seqrisk.jobs.train import run_train
from seqrisk.lake.backends import open_tables
from seqrisk.sessions.vocabulary import END, Vocabulary
from seqrisk.sessions.vocabulary_store import SHA_KEY

SMALL = ["generate.users=150", "generate.days=4", "generate.anomaly_rate=0.2"]
SESSION_COLUMNS = [
    "session_id",
    "user_id",
    "session_start",
    "n_events",
    "event_types",
    "gaps_s",
    "type_counts",
    "gap_cv",
    "purchase_value",
    "sequence_hash",
    "session_date",
]
WINDOW_COLUMNS = ["window_id", "session_id", "window_index", "start_pos", "n_valid", "tokens", "gap_buckets", "session_date"]


@pytest.fixture(scope="module")
def events_lake(spark, tmp_path_factory):
    """A lake holding four days of generated events (made once for this module)."""
    root = tmp_path_factory.mktemp("events")
    lake = root / "lake"
    run_generate(make_config(lake, *SMALL), out=str(root / "raw"), spark=spark)
    run_ingest(make_config(lake), input_path=str(root / "raw" / "events"), mapping_name="generated", spark=spark)
    return lake


def copy_of(events_lake, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(events_lake / "events", lake / "events")
    return lake


def test_a_sequence_of_incremental_runs_equals_a_full_run(spark, events_lake, tmp_path):
    full = events_lake.parent / "full"
    shutil.rmtree(full, ignore_errors=True)
    shutil.copytree(events_lake / "events", full / "events")
    summary = run_sessionize(make_config(full), spark=spark)
    assert summary.sessions > 300 and summary.vocabulary_learned and "at the event cap" not in summary.report()

    parts = copy_of(events_lake, tmp_path)
    first = run_sessionize(make_config(parts), date_from=date(2024, 5, 1), date_to=date(2024, 5, 2), spark=spark)
    second = run_sessionize(make_config(parts), date_from=date(2024, 5, 3), date_to=date(2024, 5, 4), spark=spark)
    assert first.vocabulary_learned and not second.vocabulary_learned
    assert first.sessions + second.sessions == summary.sessions

    for table, columns in (("sessions", SESSION_COLUMNS), ("windows", WINDOW_COLUMNS)):
        assert read_with_deltalake(parts / table, columns) == read_with_deltalake(full / table, columns), table
    assert Vocabulary.from_json((parts / "vocabulary.json").read_text()) == Vocabulary.from_json((full / "vocabulary.json").read_text())


def test_rerunning_changes_no_table(spark, events_lake, tmp_path):
    lake = copy_of(events_lake, tmp_path)
    run_sessionize(make_config(lake), spark=spark)
    versions = DeltaTable(str(lake / "sessions")).version(), DeltaTable(str(lake / "windows")).version()
    again = run_sessionize(make_config(lake), spark=spark)
    ranged = run_sessionize(make_config(lake), date_from=date(2024, 5, 2), date_to=date(2024, 5, 3), spark=spark)
    assert again.unchanged and ranged.unchanged
    assert (DeltaTable(str(lake / "sessions")).version(), DeltaTable(str(lake / "windows")).version()) == versions


def test_windows_cover_every_event_of_every_session(spark, events_lake, tmp_path):
    lake = copy_of(events_lake, tmp_path)
    run_sessionize(make_config(lake, "windows.length=8", "windows.stride=4"), spark=spark)
    sessions = dict(read_with_deltalake(lake / "sessions", ["session_id", "n_events"]))
    covered = {}
    for session_id, start, valid, tokens in read_with_deltalake(lake / "windows", ["session_id", "start_pos", "n_valid", "tokens"]):
        assert len(tokens) == 8 and all(t == 0 for t in tokens[valid:]) and all(t != 0 for t in tokens[:valid])
        assert (END in tokens[:valid]) == (start + valid == sessions[session_id] + 1)  # the end token, last
        covered.setdefault(session_id, set()).update(range(start, start + valid))
    assert {s: len(c) for s, c in covered.items()} == {s: n + 1 for s, n in sessions.items()}  # the events and the end
    assert all(c == set(range(sessions[s] + 1)) for s, c in covered.items())


def test_the_summary_counts_the_sessions_that_reached_the_event_cap(spark, events_lake, tmp_path):
    lake = copy_of(events_lake, tmp_path)
    summary = run_sessionize(make_config(lake, "sessionize.max_events=10"), spark=spark)
    lengths = [n for (n,) in read_with_deltalake(lake / "sessions", ["n_events"])]
    assert max(lengths) == 10 and summary.at_event_cap == sum(n == 10 for n in lengths) > 0
    assert f"{summary.at_event_cap:,} sessions of 10 events" in summary.report()


def test_half_a_date_range_is_refused(spark, events_lake, tmp_path):
    with pytest.raises(SeqriskError, match="both --from and --to"):
        run_sessionize(make_config(tmp_path), date_from=date(2024, 5, 1), spark=spark)


@pytest.mark.parametrize("name, mapping", [("taobao_userbehavior_815users.csv", "taobao"), ("trivago_sessions_100k.parquet", "trivago")])
def test_real_slices_sessionize(spark, shared_data, lake, name, mapping):
    ingested = run_ingest(make_config(lake), input_path=str(shared_data / name), mapping_name=mapping, spark=spark)
    summary = run_sessionize(make_config(lake), spark=spark)
    assert summary.events == ingested.written
    rows = read_with_deltalake(lake / "sessions", ["source_session_id", "n_events"])
    assert sum(n for _, n in rows) == ingested.written
    if mapping == "trivago":  # sessions follow the source's ids, split only past the caps
        assert {s for s, _ in rows if s} and all(s is not None for s, _ in rows)


def test_the_windows_record_their_vocabulary_and_a_ranged_run_refuses_another(spark, events_lake, tmp_path):
    lake = copy_of(events_lake, tmp_path)
    config = make_config(lake)
    run_sessionize(config, spark=spark)
    saved = Vocabulary.from_json((lake / "vocabulary.json").read_text())
    tables = open_tables(spark, delta="delta-rs", max_records_per_file=1000)
    assert tables.commit_metadata(str(lake / "windows"))[SHA_KEY] == saved.sha256

    other = Vocabulary.learn({"view": 9}, min_count=1, max_size=10)  # as if a later full run had learned another
    (lake / "vocabulary.json").write_text(other.to_json())
    with pytest.raises(SeqriskError, match=f"sha256 {other.sha256[:12]}.*not the one the windows.*cut with .sha256 {saved.sha256[:12]}"):
        run_sessionize(config, date_from=date(2024, 5, 2), date_to=date(2024, 5, 2), spark=spark)
    with pytest.raises(SeqriskError, match="not the one the windows"):
        run_train(config, spark=spark)  # before any training work
    (lake / "vocabulary.json").write_text('{"format": 1}')  # written by an older seqrisk
    with pytest.raises(SeqriskError, match="format 1 is not 2"):
        run_sessionize(config, date_from=date(2024, 5, 2), date_to=date(2024, 5, 2), spark=spark)
    (lake / "vocabulary.json").unlink()  # lost, e.g. with a driver's folder
    with pytest.raises(SeqriskError, match="no vocabulary at .* over every date"):
        run_sessionize(config, date_from=date(2024, 5, 2), date_to=date(2024, 5, 2), spark=spark)

    rerun = run_sessionize(config, spark=spark)  # what the error says to do
    assert rerun.vocabulary_learned and Vocabulary.from_json((lake / "vocabulary.json").read_text()) == saved


def test_a_file_uri_root_through_the_cli_keeps_the_vocabulary_in_the_lake(spark, events_lake, tmp_path, monkeypatch):
    lake = copy_of(events_lake, tmp_path)
    driver_folder = tmp_path / "driver"
    driver_folder.mkdir()
    monkeypatch.chdir(driver_folder)  # a driver's working folder, thrown away on a cluster
    args = ["--conf", str(REPO / "conf" / "local.yaml"), "--set", "spark.master=local[2]", "--set", f"tables.root={lake.as_uri()}"]
    assert main(["sessionize", *args]) == 0
    assert main(["sessionize", *args, "--from", "2024-05-02", "--to", "2024-05-03"]) == 0  # reuses the saved vocabulary
    assert (lake / "vocabulary.json").is_file() and list(driver_folder.iterdir()) == []
