"""Every notebook's code runs, top to bottom, on a tiny local lake (widgets set as on Databricks).

The notebooks run in order, as a user would: 02 trains and scores what 03 investigates.
"""

from pathlib import Path

import pytest
from helpers import REPO, synthetic_lake

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.py"))


class FakeWidgets:
    def __init__(self, values):
        self.values, self.created = values, []

    def text(self, name, default):
        self.created.append(name)

    def get(self, name):
        return self.values[name]


class FakeDbutils:
    def __init__(self, values):
        self.widgets = FakeWidgets(values)


@pytest.fixture(scope="module")
def widgets(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("notebooks")
    lake = synthetic_lake(spark, root, ("generate.users=80", "generate.days=3"), ("windows.length=16", "windows.stride=8"))
    conf = root / "conf" / "local.yaml"  # conf/local.yaml as a user has it, with MLflow off: no run lands in the project's store
    conf.parent.mkdir()
    (conf.parent / "base.yaml").write_text((REPO / "conf" / "base.yaml").read_text())
    conf.write_text((REPO / "conf" / "local.yaml").read_text().replace("tracking_uri: sqlite:///mlflow/mlflow.db", "tracking_uri: null"))
    return {
        "conf": str(conf),
        "tables_root": str(lake),
        "model_dir": str(root / "models"),
        "labels": str(root / "raw" / "labels.csv"),
        "report": str(root / "report"),
        "dry_run": "true",
        "user_id": "",
    }


def _cells(path: Path) -> list[str]:
    source = path.read_text()
    assert source.startswith("# Databricks notebook source\n"), path
    return [cell for cell in source.split("# COMMAND ----------") if cell.strip()]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, widgets, capsys):
    dbutils = FakeDbutils(widgets)
    namespace = {"dbutils": dbutils, "__name__": "__notebook__"}
    for cell in _cells(path):
        exec(compile(cell, str(path), "exec"), namespace)
    assert dbutils.widgets.created, "the notebook declares its widgets"
    assert capsys.readouterr().out.strip()
