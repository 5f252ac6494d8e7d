"""kill -9 of a job at each stage: every table is unchanged or complete, and the rerun equals an undisturbed run.

Each killed run is a real `seqrisk` process (native Delta, the default) that sends itself SIGKILL
at a fault point (`seqrisk.faults`): right before its first table's write (nothing written yet)
and between its tables' commits. The reruns and the undisturbed reference run in this process.
(The delta-rs path's own points, once Spark has staged its files, are killed in
tests/integration/test_tables.py and test_ingest.py.)
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable
from helpers import LOCAL_SPARK, REPO, read_with_deltalake

from seqrisk.faults import KILL_AT
from seqrisk.jobs.generate import run_generate
from seqrisk.jobs.ingest import run_ingest
from seqrisk.jobs.score import run_score
from seqrisk.jobs.sessionize import run_sessionize
from seqrisk.jobs.train import run_train

SETTINGS = ["generate.users=60", "generate.days=2", "generate.malformed_rate=0.02", "windows.length=16", "windows.stride=8"]
TABLES = {  # in commit order
    "ingest": ("quarantine", "events", "ingest_runs"),
    "sessionize": ("sessions", "windows"),
    "score": ("session_risk", "user_risk"),
}
AFTER = {"ingest": "ingested", "sessionize": "sessionized", "score": "scored"}  # the state each job leaves
BEFORE = {"ingest": None, "sessionize": "ingested", "score": "sessionized"}  # the state each job starts from
PER_RUN = {"run_id", "quarantined_at", "ingested_at", "scored_at", "source_file"}  # differ between runs (source_file: the copy's folder)


def overrides(root: Path) -> list[str]:
    return [*LOCAL_SPARK, f"tables.root={root / 'lake'}", f"model.dir={root / 'models'}", *SETTINGS]


def config(root: Path):
    from seqrisk.config import load_config

    return load_config(REPO / "conf" / "local.yaml", overrides(root))


def run(job: str, root: Path, raw: Path, spark):
    if job == "ingest":
        return run_ingest(config(root), input_path=str(raw / "events"), mapping_name="generated", spark=spark)
    return {"sessionize": run_sessionize, "score": run_score}[job](config(root), spark=spark)


@pytest.fixture(scope="module")
def lakes(spark, tmp_path_factory):
    """The raw input, and the undisturbed run's state after each job (a folder with lake/ and models/)."""
    base = tmp_path_factory.mktemp("kills")
    raw, reference = base / "raw", base / "reference"
    run_generate(config(reference), out=str(raw), spark=spark)
    states = {}
    for job in ("ingest", "sessionize", "score"):
        run(job, reference, raw, spark)
        if job == "sessionize":  # the model score needs, in the state score starts from
            run_train(config(reference), dry_run=True, spark=spark)
        states[AFTER[job]] = shutil.copytree(reference, base / job)
    return raw, states


@pytest.mark.parametrize("point", ["before_commit", "between_commits"])
@pytest.mark.parametrize("job", ["ingest", "sessionize", "score"])
def test_a_job_killed_at_each_stage_leaves_tables_unchanged_or_complete_and_the_rerun_completes_them(spark, lakes, tmp_path, job, point):
    raw, states = lakes
    root = tmp_path / "run"
    if BEFORE[job]:
        shutil.copytree(states[BEFORE[job]], root)
    start = {t: _rows(root / "lake" / t) for t in TABLES[job]}
    complete = {t: _rows(states[AFTER[job]] / "lake" / t) for t in TABLES[job]}

    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from seqrisk.cli import main; main()",
            job,
            "--conf",
            str(REPO / "conf" / "local.yaml"),
            *(f"--set={o}" for o in overrides(root)),
            *(["--input", str(raw / "events"), "--mapping", "generated"] if job == "ingest" else []),
        ],
        env={**os.environ, KILL_AT: point},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -9, (
        killed.returncode,
        [line for line in killed.stderr.splitlines() if "seqrisk" in line and "INFO" not in line][-20:],
    )
    after_kill = {t: _rows(root / "lake" / t) for t in TABLES[job]}
    for table in TABLES[job]:
        assert after_kill[table] in (start[table], complete[table]), f"{table} is neither unchanged nor complete"
    if point == "between_commits":  # the first table committed, the last one not
        first, last = TABLES[job][0], TABLES[job][-1]
        assert after_kill[first] == complete[first] and after_kill[last] == start[last]

    run(job, root, raw, spark)
    assert {t: _rows(root / "lake" / t) for t in TABLES[job]} == complete


def _rows(table: Path):
    """The table's rows without the columns that differ between runs; None when there is no table."""
    if not (table / "_delta_log").is_dir():
        return None
    columns = [f.name for f in DeltaTable(str(table)).schema().fields if f.name not in PER_RUN]
    return read_with_deltalake(table, columns)
