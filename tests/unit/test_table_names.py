"""Tables by path under tables.root or by catalog name (Unity Catalog), and the clear refusal of
catalog names where only the delta-rs path exists (no Delta jars: a laptop, CI)."""

from __future__ import annotations

import pytest
from helpers import make_config

from seqrisk.config import ConfigError
from seqrisk.errors import SeqriskError
from seqrisk.lake import uri_files
from seqrisk.lake.lake import Lake
from seqrisk.lake.settings import TableNames
from seqrisk.lake.tables import is_table_name


def test_tables_are_paths_under_the_root_or_names_in_the_catalog(spark, tmp_path):
    by_path = Lake.open(spark, make_config(tmp_path / "lake").tables)
    assert by_path.path("events") == uri_files.join(str(tmp_path / "lake"), "events")

    named = Lake("/Volumes/main/risk/files", TableNames(), by_path.tables, schema="main.risk")
    assert named.path("events") == "main.risk.events" and named.path("session_risk") == "main.risk.session_risk"
    assert named.path("vocabulary") == "/Volumes/main/risk/files/vocabulary.json"  # files stay under the root

    one_named = Lake("/Volumes/main/risk/files", TableNames(user_risk="gold.risk.user_risk"), by_path.tables)
    assert one_named.path("user_risk") == "gold.risk.user_risk" and one_named.path("events") == "/Volumes/main/risk/files/events"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("main.risk.events", True),
        ("`my-catalog`.risk.events", True),
        ("/Volumes/main/risk/lake/events", False),
        ("dbfs:/a.b.c", False),
        ("./lake/events", False),
        ("risk.events", False),
    ],
)
def test_what_counts_as_a_catalog_name(text, expected):
    assert is_table_name(text) is expected


def test_catalog_names_on_the_delta_rs_path_stop_before_any_work(spark, tmp_path):
    from seqrisk.jobs.ingest import run_ingest

    raw = tmp_path / "raw.csv"
    raw.write_text("user_id,event_time,event_type\nu1,2024-05-01 10:00:00,view\n")
    config = make_config(tmp_path / "lake", "tables.catalog=main", "tables.schema=risk", "tables.delta=delta-rs")
    with pytest.raises(SeqriskError, match=r"events: main\.risk\.events.*delta-spark.*tables\.catalog"):
        run_ingest(config, input_path=str(raw), mapping_name="generated", spark=spark)
    assert not (tmp_path / "lake").exists()
    with pytest.raises(ConfigError, match="catalog and tables.schema together"):
        make_config(tmp_path / "lake", "tables.catalog=main")
