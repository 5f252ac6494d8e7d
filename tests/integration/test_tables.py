"""Both table backends: real Delta tables that Spark, deltalake and DuckDB read alike."""

import datetime as dt

import pytest
from deltalake import DeltaTable
from helpers import BACKENDS, open_backend, read_with_deltalake, read_with_duckdb, read_with_spark
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from seqrisk import faults
from seqrisk.errors import SeqriskError
from seqrisk.lake.tables import TableWrite

COLUMNS = ["id", "ts", "attrs", "steps", "price", "kind", "day"]
SCHEMA = "id string, ts timestamp, attrs map<string,string>, steps array<int>, price double, kind string"


@pytest.fixture(params=BACKENDS)
def tables(spark, request):
    return open_backend(spark, request.param, max_records_per_file=1000)


def frame(spark, rows):
    return spark.createDataFrame(rows, SCHEMA).withColumn("day", F.to_date("ts"))


def sample(spark):
    return frame(
        spark,
        [
            ("a", dt.datetime(2024, 5, 1, 10, 0, 0, 123456), {"k": "v"}, [1, 2], 9.5, "view"),
            ("b", dt.datetime(2024, 5, 1, 23, 59, 59), {}, [], None, "add to cart"),  # a space in a partition
            ("c", dt.datetime(2024, 5, 2, 0, 0, 1), {"x": None}, None, 0.0, "a/b:c%"),  # path-hostile value
        ],
    )


def expected(df):
    return read_with_spark(df, COLUMNS)


def test_append_reads_back_identically_with_spark_deltalake_and_duckdb(spark, tables, lake):
    path = str(lake / "t")
    df = sample(spark)
    (result,) = tables.publish(TableWrite(path, df, "append", partition_by=("day", "kind")), run_id="r1")
    assert (result.rows_added, result.version) == (3, 0)

    want = expected(df)
    assert read_with_spark(tables.read(path), COLUMNS) == want
    assert read_with_deltalake(lake / "t", COLUMNS) == want
    assert read_with_duckdb(lake / "t", COLUMNS) == want
    assert tables.read(path).schema == df.schema


def test_second_append_adds_rows_in_a_new_version(spark, tables, lake):
    path = str(lake / "t")
    tables.publish(TableWrite(path, sample(spark), "append", partition_by=("day",)), run_id="r1")
    more = frame(spark, [("d", dt.datetime(2024, 5, 3), {}, [3], 1.0, "buy")])
    (result,) = tables.publish(TableWrite(path, more, "append", partition_by=("day",)), run_id="r2")
    assert (result.rows_added, result.version) == (1, 1)
    assertDataFrameEqual(tables.read(path), sample(spark).unionByName(more))
    assert tables.commit_metadata(path)["run_id"] == "r2"


def test_overwrite_replaces_the_whole_table(spark, tables, lake):
    path = str(lake / "t")
    tables.publish(TableWrite(path, sample(spark), "append", partition_by=("day",)), run_id="r1")
    fresh = frame(spark, [("z", dt.datetime(2024, 6, 1), {}, [], 2.0, "view")])
    tables.publish(TableWrite(path, fresh, "overwrite", partition_by=("day",)), run_id="r2")
    want = expected(fresh)
    assert read_with_spark(tables.read(path), COLUMNS) == want
    assert read_with_deltalake(lake / "t", COLUMNS) == want
    assert read_with_duckdb(lake / "t", COLUMNS) == want


def test_partition_overwrite_replaces_only_the_named_partitions(spark, tables, lake):
    path = str(lake / "t")
    tables.publish(TableWrite(path, sample(spark), "append", partition_by=("day",)), run_id="r1")
    day1 = frame(spark, [("n", dt.datetime(2024, 5, 1, 8), {}, [7], 3.0, "view")])
    replace = {"day": ["2024-05-01", "2024-05-09"]}  # a date with no rows yet is fine
    tables.publish(TableWrite(path, day1, "overwrite", partition_by=("day",), replace=replace), run_id="r2")

    want = expected(day1.unionByName(sample(spark).filter("day = '2024-05-02'")))
    assert read_with_spark(tables.read(path), COLUMNS) == want
    assert read_with_deltalake(lake / "t", COLUMNS) == want
    assert read_with_duckdb(lake / "t", COLUMNS) == want
    assert [r.id for r in tables.read(path, where={"day": ["2024-05-01"]}).collect()] == ["n"]


def test_a_column_a_newer_contract_adds_joins_the_table_on_the_next_write(spark, tables, lake):
    """A table written by an earlier seqrisk takes the new column in the write's own commit; its older rows read null."""
    path = str(lake / "t")
    tables.publish(TableWrite(path, sample(spark), "append", partition_by=("day",)), run_id="r1")
    day2 = frame(spark, [("n", dt.datetime(2024, 5, 2, 8), {}, [7], 3.0, "view")]).withColumn("score", F.lit(0.5))
    (result,) = tables.publish(TableWrite(path, day2, "overwrite", partition_by=("day",), replace={"day": ["2024-05-02"]}), run_id="r2")
    assert result.version == 1
    after = open_backend(spark, tables.backend, max_records_per_file=1000).read(path)  # a new run: reads the new version
    assert {r.id: r.score for r in after.collect()} == {"a": None, "b": None, "n": 0.5}


def test_partition_overwrite_with_no_rows_deletes_those_partitions(spark, tables, lake):
    path = str(lake / "t")
    tables.publish(TableWrite(path, sample(spark), "append", partition_by=("day",)), run_id="r1")
    empty = sample(spark).limit(0)
    tables.publish(TableWrite(path, empty, "overwrite", partition_by=("day",), replace={"day": ["2024-05-02"]}), run_id="r2")
    assertDataFrameEqual(tables.read(path), sample(spark).filter("day = '2024-05-01'"))


def test_reads_see_only_committed_files(spark, tables, lake):
    path = str(lake / "t")
    tables.publish(TableWrite(path, sample(spark), "append", partition_by=("day",)), run_id="r1")
    # A stray file in the table folder (a killed writer's leftover) is not part of the table.
    sample(spark).drop("day").write.parquet(str(lake / "t" / "day=2024-05-01" / "stray"))
    assertDataFrameEqual(tables.read(path), sample(spark))
    assert len(read_with_duckdb(lake / "t", COLUMNS)) == 3


def test_a_write_that_fails_before_its_commit_leaves_every_table_unchanged(spark, tables, lake, monkeypatch):
    first, second = str(lake / "first"), str(lake / "second")
    tables.publish(TableWrite(first, sample(spark), "append", partition_by=("day",)), run_id="r1")

    def killed(point: str) -> None:
        if point == "before_commit":
            raise KeyboardInterrupt("killed before the commit")

    monkeypatch.setattr(faults, "point", killed)
    more = frame(spark, [("d", dt.datetime(2024, 5, 3), {}, [3], 1.0, "buy")])
    with pytest.raises(KeyboardInterrupt):
        tables.publish(
            TableWrite(first, more, "append", partition_by=("day",)),
            TableWrite(second, more, "append"),
            run_id="r2",
        )
    assert DeltaTable(first).version() == 0
    assertDataFrameEqual(tables.read(first), sample(spark))
    assert not DeltaTable.is_deltatable(second)


def test_appending_nothing_creates_no_version(spark, tables, lake):
    path = str(lake / "t")
    tables.publish(TableWrite(path, sample(spark), "append", partition_by=("day",)), run_id="r1")
    (result,) = tables.publish(TableWrite(path, sample(spark).limit(0), "append", partition_by=("day",)), run_id="r2")
    assert result.version is None
    assert DeltaTable(path).version() == 0


def test_an_empty_first_write_creates_an_empty_table(spark, tables, lake):
    path = str(lake / "t")
    tables.publish(TableWrite(path, sample(spark).limit(0), "append", partition_by=("day",)), run_id="r1")
    assert tables.exists(path)
    assertDataFrameEqual(tables.read(path), sample(spark).limit(0))
    assert tables.read(path).schema == sample(spark).schema


def test_bad_write_arguments_say_what_is_allowed(spark):
    df = sample(spark)
    with pytest.raises(ValueError, match="'append' or 'overwrite'"):
        TableWrite("/x", df, "upsert")
    with pytest.raises(ValueError, match="goes with mode='overwrite'"):
        TableWrite("/x", df, "append", partition_by=("day",), replace={"day": ["2024-05-01"]})
    with pytest.raises(ValueError, match="not partition columns"):
        TableWrite("/x", df, "overwrite", partition_by=("day",), replace={"kind": ["view"]})


def test_reading_a_missing_table_is_a_clear_error(tables, lake):
    with pytest.raises(SeqriskError, match="no Delta table at"):
        tables.read(str(lake / "nothing"))
