"""Fixtures: one shared local Spark session for the whole suite, a lake folder, the real data slices.

Everything else the tests share is in helpers.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")  # before any pyspark.pandas import
os.environ["TZ"] = "UTC"  # Spark hands timestamps to Python as local, naive datetimes
time.tzset()

from helpers import SHARED_DATA, make_config  # noqa: E402  (after the time zone is set)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from seqrisk.spark import get_spark

    settings = make_config(Path("/tmp/unused")).spark
    warehouse = str(tmp_path_factory.mktemp("warehouse"))  # tables named in the catalog live here, not in the working folder
    session = get_spark(settings.model_copy(update={"extra": {**settings.extra, "spark.sql.warehouse.dir": warehouse}}))
    yield session
    session.stop()


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data slices not found at {SHARED_DATA} (they live beside the repository)")
    return SHARED_DATA


TIERS = ("unit", "integration", "faults", "cluster", "packaging")  # one marker per folder (pytest.ini)


def pytest_collection_modifyitems(items) -> None:
    """Mark each test with its tier, its folder under tests/: `pytest -m "not cluster"` runs the quicker tiers."""
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
