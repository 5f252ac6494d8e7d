"""A corpus of bad input, generated here: every job runs through it without a traceback, and every
file reconciles (records in = events written + duplicates + quarantined)."""

import random
from pathlib import Path

import pytest
from helpers import config_with, read_with_deltalake

from seqrisk.jobs.ingest import run_ingest
from seqrisk.jobs.score import run_score
from seqrisk.jobs.sessionize import run_sessionize
from seqrisk.jobs.train import run_train

MAPPING = """
ingest:
  mappings:
    corpus:
      format: csv
      columns: {user_id: user, event_time: at, event_type: kind, item_id: item, price: amount}
"""
HEADER = "user,at,kind,item,amount\n"
MILLION = 1_000_000


def corpus(folder: Path) -> dict[str, int]:
    """The files, and how many records each holds (None: whatever its bytes make of lines)."""
    rng = random.Random(7)
    good = [f"u{u},2024-05-01T{10 + u % 8:02d}:{m:02d}:00Z,view,i{m},1.5\n" for u in range(40) for m in range(0, 60, 7)]
    files = {
        "truncated.csv": HEADER + "".join(line[: rng.randrange(3, len(line))] + "\n" for line in good[:50]),
        "wrong_types.csv": HEADER + "u1,yesterday,view,i1,1\nu1,2024-05-01T10:00:00Z,view,i1,abc\nu1,1714557600,view,i1,NaN\n",
        "missing_and_extra_columns.csv": HEADER + "u1,2024-05-01T10:00:00Z,view\nu1,2024-05-01T10:00:00Z,view,i1,1,x,y\n,,,,\n",
        "ten_mb_field.csv": HEADER + "u1,2024-05-01T10:00:00Z,view," + "i" * 10_000_000 + ",1\n",
        "epoch_zero_and_year_9999.csv": HEADER + "u1,1970-01-01T00:00:00Z,view,i1,1\nu1,9999-12-31T23:59:59Z,view,i1,1\n",
        "empty.csv": "",
        "header_only.csv": HEADER,
        "good.csv": HEADER + "".join(good),
        "one_user_a_million_events.csv": HEADER
        + "".join(
            f"bot,2024-05-02T10:{(i // 1000) // 60 % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}Z,view,i{i % 97},\n"
            for i in range(MILLION)
        ),
        "a_hundred_thousand_event_types.csv": HEADER
        + "".join(f"t{i % 500},2024-05-02T11:{i % 60:02d}:00Z,kind{i},i1,\n" for i in range(100_000)),
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    (folder / "binary_garbage.csv").write_bytes(HEADER.encode() + bytes(rng.randrange(256) for _ in range(200_000)))
    return {name: max(0, text.count("\n") - 1) for name, text in files.items()} | {"binary_garbage.csv": None}


@pytest.fixture
def config(tmp_path):
    return config_with(MAPPING, tmp_path, tmp_path / "lake")(f"model.dir={tmp_path / 'models'}", "windows.length=16", "windows.stride=8")


def test_every_job_runs_through_the_bad_input_corpus_and_every_file_reconciles(spark, config, tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    expected = corpus(folder)

    ingested = run_ingest(config, input_path=str(folder), mapping_name="corpus", spark=spark)
    runs = read_with_deltalake(tmp_path / "lake" / "ingest_runs", ["source_file", "records", "events_written", "duplicates", "quarantined"])
    by_file = {Path(f).name: (records, written, duplicates, quarantined) for f, records, written, duplicates, quarantined in runs}
    assert set(by_file) == set(expected) - {"empty.csv", "header_only.csv"}  # files without records have no row
    for name, (records, written, duplicates, quarantined) in by_file.items():
        assert records == written + duplicates + quarantined, name
        if expected[name] is not None:
            assert records == expected[name], name
    assert by_file["one_user_a_million_events.csv"][1] == MILLION
    assert by_file["ten_mb_field.csv"][3] == 1 and by_file["epoch_zero_and_year_9999.csv"][3] == 2
    assert by_file["binary_garbage.csv"][1] == 0  # nothing of it becomes an event
    reasons = dict(read_with_deltalake(tmp_path / "lake" / "quarantine", ["detail", "reason"]))
    assert "field_too_long" in reasons.values() and "malformed_record" in reasons.values()
    assert ingested.records == sum(r[0] for r in by_file.values())

    sessionized = run_sessionize(config, spark=spark)
    assert sessionized.sessions > 0
    trained = run_train(config, dry_run=True, spark=spark)
    assert len(trained.result["history"]) == 1
    scored = run_score(config, spark=spark)
    assert scored.sessions == sessionized.sessions
