"""Every job on a real Spark standalone cluster (a Master and two one-core Workers, separate JVMs),
submitted with `spark-submit` from working folders that must stay empty, with the lake and the
models as `file://` URIs elsewhere. Faults: one worker is killed (-9) in the middle of `sessionize`
and of `score`, and their tables must equal a `local[*]` run's of the same input; the driver is
killed between the Parquet write and the commit, and no table may change.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable
from helpers import read_with_deltalake, read_with_spark
from standalone import REPO, StandaloneCluster, Submitted, wait_for

from seqrisk.config import load_config
from seqrisk.faults import KILL_AT
from seqrisk.jobs.sessionize import run_sessionize
from seqrisk.lake.backends import open_tables
from seqrisk.registry import model_store
from seqrisk.scoring.session_risk import score_sessions

SETTINGS = [
    "spark.shuffle_partitions=4",
    "tables.delta=delta-rs",  # no Delta jars offline: the delta-rs commits on the driver
    "generate.users=200",
    "generate.days=4",
    "windows.length=16",
    "windows.stride=8",
    "windows.row_group_mb=1",
    "train.workers=2",
    "train.epochs=1",
    "train.steps_per_epoch=4",
    "train.val_steps=2",
    "train.batch_size=32",
    "model.d_model=32",
    "model.n_heads=2",
]
LAKE_FILES = ("*.parquet", "_delta_log", "vocabulary.json", "manifest.json", "weights.pt", "metrics.json", "*.csv")
IGNORED = ("run_id", "scored_at")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = StandaloneCluster(tmp_path_factory.mktemp("cluster")).start(workers=2)
    yield started
    started.stop()


class Flow:
    """The whole pipeline, run once on the cluster: where things are and what the jobs printed."""

    def __init__(self, cluster: StandaloneCluster, root: Path):
        self.cluster, self.root = cluster, root
        self.data = root / "data"
        self.lake, self.models = self.data / "lake", self.data / "models"
        self.outputs: dict[str, str] = {}

    def args(self, lake: Path | None = None, *more: str) -> list[str]:
        sets = [*SETTINGS, f"tables.root=file://{lake or self.lake}", f"model.dir=file://{self.models}", *more]
        return ["--conf", str(REPO / "conf" / "cluster.yaml"), *[a for s in sets for a in ("--set", s)]]

    def run(self) -> Flow:
        """generate, ingest, sessionize, train, score, evaluate; a worker dies during sessionize and score."""
        driver = self.root / "driver"
        raw = f"file://{self.data}/raw"
        for job, extra, kill_after in (
            ("generate", ["--out", raw], None),
            ("ingest", ["--input", f"{raw}/events", "--mapping", "generated"], None),
            ("sessionize", [], "sessionize: finding sessions"),
            ("train", [], None),
            ("score", [], "score: scoring sessions"),
            ("evaluate", ["--labels", f"{raw}/labels.csv", "--report", f"file://{self.data}/report"], None),
        ):
            submitted = self.cluster.submit(job, driver, *self.args(), *extra)
            if kill_after:
                kill_a_worker_while_a_job_runs(self.cluster, submitted, kill_after)
            assert submitted.wait() == 0, f"{job} failed:\n{submitted.output()[-6000:]}"
            self.outputs[job] = submitted.output()
        return self

    def model_uri(self) -> str:
        (version,) = [p.name for p in self.models.iterdir() if p.name.startswith("m")]
        return f"file://{self.models / version}"

    def copy_lake(self, target: Path, *tables: str) -> Path:
        for table in tables:
            shutil.copytree(self.lake / table, target / table)
        return target


@pytest.fixture(scope="module")
def flow(cluster, tmp_path_factory):
    return Flow(cluster, tmp_path_factory.mktemp("flow")).run()


def _files_of_the_lake(folder: Path) -> list[Path]:
    return [p for pattern in LAKE_FILES for p in folder.rglob(pattern)]


def _same_table(a: Path, b: Path, ignore=IGNORED) -> None:
    assert _rows(a, ignore) == _rows(b, ignore), f"{a} differs from {b}"


def _rows(path: Path, ignore=()) -> list[tuple]:
    """The table's current rows (through delta-rs), sorted, without the `ignore`d columns."""
    return read_with_deltalake(path, [c for c in _columns(path) if c not in ignore])


def test_every_job_runs_on_the_cluster_and_writes_only_into_the_lake_and_the_model_folder(cluster, flow):
    assert list((flow.root / "driver").iterdir()) == []  # the driver's working folder
    for name in cluster.workers:
        assert _files_of_the_lake(cluster.worker_folder(name)) == [], name
    assert (flow.lake / "vocabulary.json").is_file()
    for table in ("events", "quarantine", "sessions", "windows", "session_risk", "user_risk"):
        assert DeltaTable.is_deltatable(str(flow.lake / table)), table
    assert "workers             2 (cpu)" in flow.outputs["train"]  # two Horovod ranks on the cluster's executors
    manifest = json.loads((Path(flow.model_uri().removeprefix("file://")) / "manifest.json").read_text())
    assert {"weights.pt", "history.json", "probe.npz", "vocabulary.json"} <= set(manifest["files"])
    assert f"model directory     {flow.model_uri()}" in flow.outputs["score"]
    metrics = json.loads((flow.data / "report" / "metrics.json").read_text())
    assert metrics["sessions"] > 0 and 0.5 < metrics["seqrisk"]["roc_auc"] <= 1.0
    for job in ("sessionize", "score"):  # the worker killed during the job cost it an executor
        assert "Lost executor" in flow.outputs[job], job


def test_a_ranged_sessionize_from_another_fresh_folder_reuses_the_saved_vocabulary(cluster, flow):
    saved = (flow.lake / "vocabulary.json").read_bytes()
    day = sorted(p.name.split("=")[1] for p in (flow.lake / "sessions").glob("session_date=*"))[1]
    output = cluster.run("sessionize", flow.root / "second-driver", *flow.args(), "--from", day, "--to", day)
    assert "(reused)" in output and (flow.lake / "vocabulary.json").read_bytes() == saved
    assert list((flow.root / "second-driver").iterdir()) == []


def test_sessionize_with_a_worker_killed_equals_local_spark_on_the_same_events(spark, flow, tmp_path):
    lake = flow.copy_lake(tmp_path / "lake", "events")
    run_sessionize(load_config(REPO / "conf" / "cluster.yaml", [*SETTINGS, f"tables.root={lake}"]), spark=spark)
    for table in ("sessions", "windows"):
        _same_table(lake / table, flow.lake / table)
    assert (lake / "vocabulary.json").read_bytes() == (flow.lake / "vocabulary.json").read_bytes()


def test_score_with_a_worker_killed_equals_local_spark_with_the_same_model(spark, flow):
    tables = open_tables(spark, delta="delta-rs", max_records_per_file=1_000_000)
    sessions = tables.read(f"file://{flow.lake}/sessions")
    settings = load_config(REPO / "conf" / "cluster.yaml", SETTINGS).score  # as the cluster's jobs had it
    local = score_sessions(sessions, model_store.fetch(spark, flow.model_uri()), settings, "local", datetime.now(UTC))
    columns = [c for c in local.columns if c not in IGNORED]
    assert read_with_spark(local, columns) == read_with_spark(tables.read(f"file://{flow.lake}/session_risk"), columns)


def test_the_driver_killed_between_the_parquet_write_and_the_commit_changes_no_table(cluster, flow, tmp_path):
    lake = flow.copy_lake(tmp_path / "lake", "sessions", "session_risk", "user_risk")
    before = {t: (DeltaTable(str(lake / t)).version(), _rows(lake / t)) for t in ("session_risk", "user_risk")}
    args = flow.args(lake, f"score.model={flow.model_uri()}", "score.levels.medium=80", "score.levels.high=90")  # new levels: rows to write

    killed = cluster.submit("score", tmp_path / "driver", *args, env={KILL_AT: "before_commit"})
    assert killed.wait() == 137  # spark-submit reports its Python driver's SIGKILL as 128 + 9
    assert len(list((lake / "session_risk").rglob("*.parquet"))) > len(
        DeltaTable(str(lake / "session_risk")).file_uris()
    )  # written, not committed
    for table, (version, rows) in before.items():
        assert DeltaTable(str(lake / table)).version() == version, table
        assert _rows(lake / table) == rows, table

    cluster.run("score", tmp_path / "driver", *args)  # the rerun completes and commits
    changed = ("risk_level", "action")
    _same_table(lake / "session_risk", flow.lake / "session_risk", ignore=(*IGNORED, *changed))
    levels = _rows(lake / "session_risk", [c for c in _columns(lake / "session_risk") if c not in ("risk_pct", "risk_level")])
    assert levels and all((level == "high") == (pct >= 90) for pct, level in levels)


def _columns(path: Path) -> list[str]:
    return [f.name for f in DeltaTable(str(path)).schema().fields]


def kill_a_worker_while_a_job_runs(cluster: StandaloneCluster, submitted: Submitted, started: str) -> None:
    """Once the job has logged `started` and Spark runs a job for it, kill -9 a worker; it is restarted after the job."""
    wait_for(lambda: started in submitted.output() or submitted.process.poll() is not None, f"the log line {started!r}")
    wait_for(lambda: bool(submitted.running_jobs()) or submitted.process.poll() is not None, "a running Spark job", every=0.1)
    assert submitted.process.poll() is None, "the job ended before the fault could land:\n" + submitted.output()[-3000:]
    name = next(iter(cluster.workers))
    cluster.kill_worker(name)
    try:
        submitted.wait()
    finally:
        cluster.start_worker(name)  # the next job gets two workers again
