"""Native Delta: which sessions have it (both platforms' class names, the extension), and what a new session gets."""

from seqrisk.lake.backends import DATABRICKS_DELTA, OSS_DELTA, OSS_EXTENSION, native_delta_missing
from seqrisk.spark import DELTA_CATALOG, DELTA_EXTENSION, delta_settings


def loads_only(*names: str):
    return lambda name: name in names


def test_databricks_runtime_has_delta_under_its_own_class_names_without_the_extension_setting():
    assert native_delta_missing(loads_only(DATABRICKS_DELTA), "") is None


def test_delta_spark_needs_its_classes_and_its_sql_extension():
    assert native_delta_missing(loads_only(OSS_DELTA), f"other.Extension,{OSS_EXTENSION}") is None
    assert "extension" in native_delta_missing(loads_only(OSS_DELTA), "")
    assert "classpath" in native_delta_missing(loads_only(), OSS_EXTENSION)


def test_a_new_local_session_gets_the_cached_jars_with_the_extension_and_catalog():
    settings = delta_settings({"spark.jars": "/opt/other.jar"}, ["/c/delta-spark.jar", "/c/delta-storage.jar"])
    assert settings == {
        "spark.jars": "/opt/other.jar,/c/delta-spark.jar,/c/delta-storage.jar",
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
    }


def test_a_session_given_delta_packages_keeps_them_and_its_own_extensions():
    given = {"spark.jars.packages": "io.delta:delta-spark_2.12:3.3.2", "spark.sql.extensions": "my.Extension"}
    assert delta_settings(given, ["/c/delta-spark.jar"]) == {
        "spark.sql.extensions": f"my.Extension,{DELTA_EXTENSION}",
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
    }


def test_a_session_without_delta_jars_is_left_alone():
    assert delta_settings({"spark.jars": "/opt/other.jar"}, []) == {}
