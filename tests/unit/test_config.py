from datetime import UTC, datetime
from pathlib import Path

import pytest

from seqrisk.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
LOCAL = REPO / "conf" / "local.yaml"


def test_environment_file_layers_on_base_and_overrides_win():
    config = load_config(LOCAL, ["tables.root=/data/lake", "spark.shuffle_partitions=7"])
    assert config.spark.master == "local[*]"  # from local.yaml
    assert config.spark.app_name == "seqrisk"  # from base.yaml
    assert config.tables.root == "/data/lake"  # from --set
    assert config.spark.shuffle_partitions == 7
    assert config.ingest.mappings["taobao"].time_format == "epoch_s"  # base survives the merge


def test_override_values_are_read_as_yaml():
    config = load_config(LOCAL, ["ingest.mappings.taobao.attributes=[a, b]", "ingest.max_price=12.5"])
    assert config.ingest.mappings["taobao"].attributes == ["a", "b"]
    assert config.ingest.max_price == 12.5


def test_a_new_mapping_can_be_declared_like_a_preset(tmp_path):
    env = tmp_path / "mine.yaml"
    env.write_text(
        "tables: {root: /tmp/l}\n"
        "ingest:\n  mappings:\n    clicks:\n      format: json\n"
        "      columns: {user_id: uid, event_time: ts, event_type: kind}\n      time_format: epoch_ms\n"
    )
    config = load_config(env)
    assert config.mapping("clicks").columns.user_id == "uid"
    assert "taobao" in config.ingest.mappings  # the packaged base is still underneath


def test_unknown_key_names_the_key_and_what_is_allowed():
    with pytest.raises(ConfigError) as err:
        load_config(LOCAL, ["ingest.mappings.taobao.colums.user_id=x"])
    message = str(err.value)
    assert "ingest.mappings.taobao.colums: unknown key" in message
    assert "columns" in message and "time_format" in message


def test_bad_choice_names_the_key_the_value_and_the_choices():
    with pytest.raises(ConfigError) as err:
        load_config(LOCAL, ["tables.delta=parquet"])
    assert "tables.delta" in str(err.value)
    assert "'auto', 'native' or 'delta-rs'" in str(err.value)
    assert "'parquet'" in str(err.value)


@pytest.mark.parametrize(
    "override, key",
    [
        ("spark.shuffle_partitions=0", "spark.shuffle_partitions"),
        ("ingest.max_price=-1", "ingest.max_price"),
        ("ingest.mappings.taobao.format=xml", "ingest.mappings.taobao.format"),
        ("ingest.mappings.taobao.names=null", "ingest.mappings.taobao"),
        ("ingest.mappings.taobao.time_range.end=2017-01-01", "ingest.mappings.taobao.time_range"),
        ("nonsense=1", "nonsense"),
    ],
)
def test_bad_values_fail_at_start_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(LOCAL, [override])


def test_malformed_override_and_missing_file_are_clear():
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_config(LOCAL, ["tables.root"])
    with pytest.raises(ConfigError, match="no such file"):
        load_config(REPO / "conf" / "nope.yaml")


def test_a_time_without_a_zone_is_utc():
    config = load_config(LOCAL, ["ingest.min_event_time=2001-02-03 04:05:06"])
    assert config.ingest.min_event_time == datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)


def test_unknown_mapping_lists_the_known_ones():
    with pytest.raises(ConfigError, match="known mappings: generated, hdfs, rees46, taobao, trivago"):
        load_config(LOCAL).mapping("nope")


def test_the_lake_joins_root_and_name_for_paths_and_uris():
    from seqrisk.lake.lake import Lake

    for root, expected in (("/lake/", "/lake/ev"), ("hdfs:///lake", "hdfs:///lake/ev"), ("file:///tmp/lake/", "file:///tmp/lake/ev")):
        settings = load_config(LOCAL, [f"tables.root={root}", "tables.names.events=ev"]).tables
        assert Lake(settings.root, settings.names, tables=None).path("events") == expected


def test_logged_config_and_errors_redact_secrets():
    from seqrisk.config import load_config

    config = load_config(
        REPO / "conf" / "local.yaml",
        [
            'spark.extra={"spark.hadoop.fs.s3a.secret.key": "s3cr3t", "spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net": "azkey", "spark.executor.memory": "8g"}',
            "tables.root=s3a://AKIAXXXX:s3cr3t2@bucket/lake",
        ],
    )
    logged = config.to_yaml()
    assert "s3cr3t" not in logged and "azkey" not in logged and "AKIAXXXX" not in logged
    assert "spark.executor.memory: 8g" in logged and "s3a://***@bucket/lake" in logged
    assert config.spark.extra["spark.hadoop.fs.s3a.secret.key"] == "s3cr3t"  # redacted in what is shown, not in what is used

    with pytest.raises(ConfigError) as err:
        load_config(REPO / "conf" / "local.yaml", ['spark.extra={"fs.s3a.access.key": ["AKIA-in-a-list"]}'])
    assert "AKIA-in-a-list" not in str(err.value) and "spark.extra.fs.s3a.access.key" in str(err.value)
