"""The generate job on Spark: deterministic output that ingests through the `generated` preset."""

from pathlib import Path

from helpers import make_config, read_with_deltalake

from seqrisk.jobs.generate import run_generate
from seqrisk.jobs.ingest import run_ingest

SMALL = ["generate.users=400", "generate.days=7", "generate.anomaly_rate=0.15"]


def lines(folder: Path) -> list[str]:
    return sorted(line for f in folder.glob("part-*") for line in f.read_text().splitlines())


def test_same_seed_gives_the_same_output_on_any_number_of_tasks(spark, lake, tmp_path):
    a = run_generate(make_config(lake, *SMALL, "generate.partitions=2"), out=str(tmp_path / "a"), spark=spark)
    b = run_generate(make_config(lake, *SMALL, "generate.partitions=5"), out=str(tmp_path / "b"), spark=spark)
    assert len(list((tmp_path / "b" / "events").glob("part-*"))) == 5
    assert lines(tmp_path / "a" / "events") == lines(tmp_path / "b" / "events")
    assert (tmp_path / "a" / "labels.csv").read_text() == (tmp_path / "b" / "labels.csv").read_text()
    assert (a.events, a.spans_by_type) == (b.events, b.spans_by_type)
    assert a.events == len(lines(tmp_path / "a" / "events"))


def test_output_ingests_with_nothing_quarantined_and_labels_name_real_users(spark, lake, tmp_path):
    out = tmp_path / "gen"
    generated = run_generate(make_config(lake, *SMALL), out=str(out), spark=spark)
    header, *labels = (out / "labels.csv").read_text().splitlines()
    assert header == "user_id,anomaly_type,start,end"
    assert len(labels) == sum(generated.spans_by_type.values()) > 0

    ingested = run_ingest(make_config(lake), input_path=str(out / "events"), mapping_name="generated", spark=spark)
    assert (ingested.records, ingested.written, ingested.quarantined_total) == (generated.events, generated.events, 0)
    users = {u for (u,) in read_with_deltalake(lake / "events", ["user_id"])}
    assert {label.split(",")[0] for label in labels} <= users
    assert len(users) > 350  # nearly every user is active in a week


def test_planted_malformed_records_are_all_quarantined(spark, lake, tmp_path):
    out = tmp_path / "gen"
    generated = run_generate(make_config(lake, *SMALL, "generate.malformed_rate=0.02"), out=str(out), spark=spark)
    assert generated.malformed > 0
    ingested = run_ingest(make_config(lake), input_path=str(out / "events"), mapping_name="generated", spark=spark)
    assert ingested.quarantined_total == generated.malformed
    assert ingested.written == generated.events
    assert set(ingested.quarantined) <= {"malformed_record", "bad_event_time", "missing_user_id", "bad_price", "event_time_out_of_range"}
    assert len(ingested.quarantined) >= 4
