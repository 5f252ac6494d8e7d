"""databricks.yml: every task of every job, in every target, calls an entry point the wheel has with
arguments that seqrisk's own CLI and config accept; the tasks run in the order the jobs need."""

from __future__ import annotations

import re
from importlib.metadata import entry_points

import pytest
import yaml
from helpers import REPO

from seqrisk.cli import build_parser
from seqrisk.config import load_config

BUNDLE = yaml.safe_load((REPO / "databricks.yml").read_text())
TARGETS = sorted(BUNDLE["targets"])
JOB_DATE = "2024-05-01"  # {{job.start_time.iso_date}}
ORDER = {"seqrisk_daily": ["ingest", "sessionize", "score"], "seqrisk_weekly_training": ["train", "evaluate", "promote"]}


def resolved(text: str, target: str) -> str:
    """A bundle string with the target's variables and the job's dynamic values filled in."""
    variables = {name: spec.get("default") for name, spec in BUNDLE["variables"].items()}
    variables.update(BUNDLE["targets"][target].get("variables", {}))

    def value(match: re.Match) -> str:
        kind, name = match["kind"], match["name"]
        if kind == "var":
            assert variables.get(name) is not None, f"variable {name} has no value in target {target}"
            return str(variables[name])
        return {"workspace.file_path": str(REPO), "bundle.target": target}[f"{kind}.{name}"]

    return re.sub(r"\$\{(?P<kind>\w+)\.(?P<name>\w+)\}", value, text).replace("{{job.start_time.iso_date}}", JOB_DATE)


def tasks():
    for job_name, job in BUNDLE["resources"]["jobs"].items():
        for task in job["tasks"]:
            yield job_name, task


def test_targets_set_catalog_schema_volume_and_model_and_the_wheel_is_built():
    assert {"dev", "prod"} <= set(TARGETS)
    for target in TARGETS:
        for name in ("catalog", "schema", "volume", "model_name", "labels"):
            assert resolved(f"${{var.{name}}}", target)
    (artifact,) = BUNDLE["artifacts"].values()
    assert artifact["type"] == "whl" and "wheel" in artifact["build"]


# What each Databricks Runtime ML generation trains with (README, "Runtimes"): Horovod and Petastorm
# ship with 15.4 LTS ML only.
TRAINING_STACK = {"15.4": ("horovod", "petastorm"), "17.3": ("torch_distributor", "arrow")}


def test_targets_cover_15_4_and_17_3_lts_ml_each_with_the_launcher_and_reader_it_has():
    seen = set()
    for target in TARGETS:
        runtimes = {resolved(f"${{var.{v}}}", target) for v in ("cpu_runtime", "gpu_runtime")}
        (version,) = {r.split(".x-")[0] for r in runtimes}
        assert all("-ml-" in r for r in runtimes), runtimes
        for _job, task in tasks():
            args = build_parser().parse_args([resolved(str(p), target) for p in task["python_wheel_task"]["parameters"]])
            if args.job == "train":
                train = load_config(args.conf, args.set).train
                assert (train.launcher, train.reader) == TRAINING_STACK[version], (target, version)
        seen.add(version)
    assert seen == set(TRAINING_STACK)


@pytest.mark.parametrize("target", TARGETS)
def test_every_task_parses_with_the_seqrisk_cli_and_its_config_loads(target):
    (console,) = [e for e in entry_points(group="console_scripts") if e.name == "seqrisk"]
    parser = build_parser()
    for _job, task in tasks():
        wheel_task = task["python_wheel_task"]
        assert (wheel_task["package_name"], wheel_task["entry_point"]) == ("seqrisk", console.name), task["task_key"]
        assert any("whl" in library for library in task["libraries"])
        arguments = [resolved(str(p), target) for p in wheel_task["parameters"]]
        args = parser.parse_args(arguments)  # argparse exits (a test failure) on anything it does not accept
        assert args.job == task["task_key"]
        config = load_config(args.conf, args.set)
        schema = f"{config.tables.catalog}.{config.tables.schema_name}"
        assert schema == resolved("${var.catalog}.${var.schema}", target)
        assert config.tables.root.startswith(f"/Volumes/{config.tables.catalog}/{config.tables.schema_name}/")
        assert config.mlflow.registered_model == f"{schema}.{resolved('${var.model_name}', target)}"
        if args.job in ("sessionize", "score"):
            assert (str(args.date_from), str(args.date_to)) == (JOB_DATE, JOB_DATE)


def test_tasks_run_in_the_order_each_job_needs():
    for job_name, order in ORDER.items():
        job = BUNDLE["resources"]["jobs"][job_name]
        assert [t["task_key"] for t in job["tasks"]] == order
        for before, task in zip(order, job["tasks"][1:]):
            assert task["depends_on"] == [{"task_key": before}]
        assert job["schedule"]["quartz_cron_expression"]
