"""Every job on a real Spark standalone cluster (a Master and two one-core Workers, separate JVMs),
submitted with `spark-submit` from working folders that must stay empty, on native Delta (Delta's
jars given with `--jars`), with the lake and the models on an S3 endpoint on loopback (`s3a://`):
the driver and the workers share no disk with the lake. Faults: one worker is killed (-9) in the
middle of `sessionize` and of `score`, and their tables must equal a `local[*]` run's of the same
input; the driver is killed between the Parquet write and the commit, and no table may change.
"""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable
from helpers import read_with_deltalake, read_with_spark
from object_store import ObjectStore, s3a_jars
from standalone import REPO, StandaloneCluster, Submitted, wait_for

from seqrisk.config import load_config
from seqrisk.jobs.sessionize import run_sessionize
from seqrisk.lake.backends import open_tables
from seqrisk.registry import model_store
from seqrisk.scoring.session_risk import score_sessions
from seqrisk.spark import cached_delta_jars

SETTINGS = [
    "spark.shuffle_partitions=4",
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
TABLES = ("events", "quarantine", "sessions", "windows", "session_risk", "user_risk")
LAKE_FILES = ("*.parquet", "_delta_log", "vocabulary.json", "manifest.json", "weights.pt", "metrics.json", "*.csv")
IGNORED = ("run_id", "scored_at")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    started = ObjectStore(tmp_path_factory.mktemp("s3")).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, store):
    s3a = ":".join(s3a_jars())  # installed on every machine of the cluster, as S3-backed clusters have them
    defaults = {**store.spark_conf(), "spark.driver.extraClassPath": s3a, "spark.executor.extraClassPath": s3a}
    jars = cached_delta_jars()  # what a user adds to a cluster without Delta
    started = StandaloneCluster(tmp_path_factory.mktemp("cluster"), defaults=defaults, jars=jars, job_env=store.env()).start(workers=2)
    yield started
    started.stop()


class Flow:
    """The whole pipeline, run once on the cluster: where things are in the store and what the jobs printed."""

    def __init__(self, cluster: StandaloneCluster, store: ObjectStore, root: Path):
        self.cluster, self.store, self.root = cluster, store, root
        self.outputs: dict[str, str] = {}

    def args(self, lake: str = "lake", *more: str) -> list[str]:
        sets = [*SETTINGS, f"tables.root={self.store.uri(lake)}", f"model.dir={self.store.uri('models')}", *more]
        return ["--conf", str(REPO / "conf" / "cluster.yaml"), *[a for s in sets for a in ("--set", s)]]

    def run(self) -> Flow:
        """generate, ingest, sessionize, train, score, evaluate; a worker dies during sessionize and score."""
        raw = self.store.uri("raw")
        for job, extra, kill_after in (
            ("generate", ["--out", raw], None),
            ("ingest", ["--input", f"{raw}/events", "--mapping", "generated"], None),
            ("sessionize", [], "sessionize: finding sessions"),
            ("train", [], None),
            ("score", [], "score: scoring sessions"),
            ("evaluate", ["--labels", f"{raw}/labels.csv", "--report", self.store.uri("report")], None),
        ):
            submitted = self.cluster.submit(job, self.root / "driver", *self.args(), *extra)
            if kill_after:
                kill_a_worker_while_a_job_runs(self.cluster, submitted, kill_after)
            assert submitted.wait() == 0, f"{job} failed:\n{submitted.output()[-6000:]}"
            self.outputs[job] = submitted.output()
        return self

    def model_key(self) -> str:
        (version,) = {key.split("/")[1] for key in self.store.keys("models/") if key.split("/")[1].startswith("m")}
        return f"models/{version}"


@pytest.fixture(scope="module")
def flow(cluster, store, tmp_path_factory):
    return Flow(cluster, store, tmp_path_factory.mktemp("flow")).run()


def _files_of_the_lake(folder: Path) -> list[Path]:
    return [p for pattern in LAKE_FILES for p in folder.rglob(pattern)]


def _same_table(a: Path, b: Path, ignore=IGNORED) -> None:
    assert _rows(a, ignore) == _rows(b, ignore), f"{a} differs from {b}"


def _rows(path: Path, ignore=()) -> list[tuple]:
    """The table's current rows (through delta-rs), sorted, without the `ignore`d columns."""
    return read_with_deltalake(path, [c for c in _columns(path) if c not in ignore])


def test_every_job_runs_on_the_cluster_on_native_delta_and_writes_only_into_the_store(cluster, store, flow):
    assert list((flow.root / "driver").iterdir()) == []  # the driver's working folder
    for name in cluster.workers:
        assert _files_of_the_lake(cluster.worker_folder(name)) == [], name
    assert store.keys("lake/vocabulary.json")
    for table in TABLES:  # each written by delta-spark on the cluster
        first = json.loads(store.read(f"lake/{table}/_delta_log/00000000000000000000.json").splitlines()[0])
        assert first["commitInfo"]["engineInfo"].startswith("Apache-Spark/"), (table, first["commitInfo"])
    assert "workers             2 (cpu)" in flow.outputs["train"]  # two Horovod ranks on the cluster's executors
    manifest = json.loads(store.read(f"{flow.model_key()}/manifest.json"))
    assert {"weights.pt", "history.json", "probe.npz", "vocabulary.json"} <= set(manifest["files"])
    assert f"model directory     {store.uri(flow.model_key())}" in flow.outputs["score"]
    metrics = json.loads(store.read("report/metrics.json"))
    assert metrics["sessions"] > 0 and 0.5 < metrics["seqrisk"]["roc_auc"] <= 1.0
    for job in ("sessionize", "score"):  # the worker killed during the job cost it an executor
        assert "Lost executor" in flow.outputs[job], job


def test_a_ranged_sessionize_from_another_fresh_folder_reuses_the_saved_vocabulary(cluster, store, flow):
    saved = store.read("lake/vocabulary.json")
    day = sorted({key.split("/")[2].split("=")[1] for key in store.keys("lake/sessions/session_date=")})[1]
    output = cluster.run("sessionize", flow.root / "second-driver", *flow.args(), "--from", day, "--to", day)
    assert "(reused)" in output and store.read("lake/vocabulary.json") == saved
    assert list((flow.root / "second-driver").iterdir()) == []


def test_sessionize_with_a_worker_killed_equals_local_spark_on_the_same_events(spark, flow, tmp_path):
    lake = tmp_path / "lake"
    flow.store.download("lake/events", lake / "events")
    run_sessionize(load_config(REPO / "conf" / "cluster.yaml", [*SETTINGS, f"tables.root={lake}"]), spark=spark)
    for table in ("sessions", "windows"):
        _same_table(lake / table, flow.store.download(f"lake/{table}", tmp_path / "cluster" / table))
    assert (lake / "vocabulary.json").read_bytes() == flow.store.read("lake/vocabulary.json")


def test_score_with_a_worker_killed_equals_local_spark_with_the_same_model(spark, flow, tmp_path):
    sessions, scored = (flow.store.download(f"lake/{t}", tmp_path / t) for t in ("sessions", "session_risk"))
    model = flow.store.download(flow.model_key(), tmp_path / "model")
    tables = open_tables(spark, delta="native", max_records_per_file=1_000_000)
    settings = load_config(REPO / "conf" / "cluster.yaml", SETTINGS).score  # as the cluster's jobs had it
    local = score_sessions(tables.read(str(sessions)), model_store.fetch(spark, str(model)), settings, "local", datetime.now(UTC))
    columns = [c for c in local.columns if c not in IGNORED]
    assert read_with_spark(local, columns) == read_with_spark(tables.read(str(scored)), columns)


def test_the_driver_killed_between_the_parquet_write_and_the_commit_changes_no_table(cluster, flow, tmp_path):
    for table in ("sessions", "session_risk", "user_risk"):
        flow.store.copy(f"lake/{table}", f"killed/{table}")
    tables = ("session_risk", "user_risk")
    before = {t: _version_and_rows(flow.store.download(f"killed/{t}", tmp_path / "before" / t)) for t in tables}
    model = f"score.model={flow.store.uri(flow.model_key())}"
    args = flow.args("killed", model, "score.levels.medium=80", "score.levels.high=90")  # new levels: rows to write

    with flow.store.slow_parquet_writes():  # seconds between a write's first file and its last: the kill lands between
        killed = cluster.submit("score", tmp_path / "driver", *args)
        kill_the_driver_once_it_writes(flow.store, killed, "killed/session_risk/")
    after = {t: flow.store.download(f"killed/{t}", tmp_path / "after" / t) for t in tables}
    parquet = [k for k in flow.store.keys("killed/session_risk/") if k.endswith(".parquet")]
    assert len(parquet) > len(DeltaTable(str(after["session_risk"])).file_uris())  # written, not committed
    for table in tables:
        assert _version_and_rows(after[table]) == before[table], table

    cluster.run("score", tmp_path / "driver", *args)  # the rerun completes and commits
    rerun = flow.store.download("killed/session_risk", tmp_path / "rerun")
    changed = ("risk_level", "action")
    _same_table(rerun, flow.store.download("lake/session_risk", tmp_path / "first"), ignore=(*IGNORED, *changed))
    levels = _rows(rerun, [c for c in _columns(rerun) if c not in ("risk_pct", "risk_level")])
    assert levels and all((level == "high") == (pct >= 90) for pct, level in levels)


def _version_and_rows(path: Path) -> tuple[int, list[tuple]]:
    return DeltaTable(str(path)).version(), _rows(path)


def _columns(path: Path) -> list[str]:
    return [f.name for f in DeltaTable(str(path)).schema().fields]


def kill_a_worker_while_a_job_runs(cluster: StandaloneCluster, submitted: Submitted, started: str) -> None:
    """Once the job has logged `started` and Spark runs a job for it, kill -9 a worker; it is restarted after the job."""
    wait_for(
        lambda: started in submitted.output() or submitted.process.poll() is not None,
        f"the log line {started!r}",
        timeout=600,  # the job's start comes first: over two minutes on a loaded machine
    )
    wait_for(lambda: bool(submitted.running_jobs()) or submitted.process.poll() is not None, "a running Spark job", every=0.1)
    assert submitted.process.poll() is None, "the job ended before the fault could land:\n" + submitted.output()[-3000:]
    name = next(iter(cluster.workers))
    cluster.kill_worker(name)
    try:
        submitted.wait()
    finally:
        cluster.start_worker(name)  # the next job gets two workers again


def kill_the_driver_once_it_writes(store: ObjectStore, submitted: Submitted, table: str) -> None:
    """kill -9 the driver (spark-submit's JVM and its Python) once the first Parquet file of its write is in
    `table` while the write's Spark job still runs: Delta commits only after the whole job, so nothing is committed.
    """
    files = {k for k in store.keys(table) if k.endswith(".parquet")}
    wait_for(
        lambda: any(k.endswith(".parquet") and k not in files for k in store.keys(table)) or submitted.process.poll() is not None,
        f"a new Parquet file in {table}",
        timeout=600,  # the job's start, its reads and its scoring come first: minutes on a loaded machine
        every=0.05,
    )
    assert submitted.running_jobs(), "the write ended before the fault could land:\n" + submitted.output()[-3000:]
    os.killpg(submitted.process.pid, signal.SIGKILL)
    assert submitted.wait() == -signal.SIGKILL
