"""Table contracts: a writer's frame that departs from one is refused, naming every difference."""

import pytest
from pyspark.sql.types import ArrayType, IntegerType, LongType, StringType, StructField, StructType

from seqrisk.errors import SeqriskError
from seqrisk.lake import contracts


def test_differences_name_missing_extra_and_mistyped_columns_and_ignore_nullability():
    contract = StructType([StructField("a", StringType()), StructField("b", ArrayType(IntegerType()))])
    same = StructType([StructField("b", ArrayType(IntegerType(), False), False), StructField("a", StringType(), False)])
    assert contracts.differences(same, contract) == []
    other = StructType([StructField("b", ArrayType(LongType())), StructField("c", StringType())])
    assert contracts.differences(other, contract) == [
        "a is missing",
        "c is not in the contract",
        "b is array<bigint>, the contract says array<int>",
    ]


def test_conform_orders_the_columns_as_the_contract_and_refuses_a_departure(spark):
    row = {f.name: None for f in contracts.WINDOWS.fields}
    frame = spark.createDataFrame([row], contracts.WINDOWS).select(*reversed(contracts.WINDOWS.fieldNames()))
    assert contracts.conform(frame, "windows").columns == contracts.WINDOWS.fieldNames()
    with pytest.raises(SeqriskError, match="the windows rows do not match the table contract: tokens is missing"):
        contracts.conform(frame.drop("tokens"), "windows")
