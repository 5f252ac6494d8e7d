"""A real Spark standalone cluster on this machine, from the installed PySpark, for the cluster tests.

One Master and two Workers, each a JVM of its own started by `bin/spark-class`, each Worker with
its own folder (work dir, scratch space, log) and one core. Jobs run through `spark-submit`
against it, each from a working folder the caller names, with the settings, jars and environment
the cluster's users give every job (`defaults`, `jars`, `job_env`: spark-defaults.conf and the like).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(every)


def get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except OSError:
        return None


@dataclass
class Submitted:
    """A running spark-submit: its process, the folder it runs in, its combined output."""

    process: subprocess.Popen
    cwd: Path
    log: Path
    ui_port: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = 600.0) -> int:
        return self.process.wait(timeout)

    def running_jobs(self) -> list:
        apps = get_json(f"http://127.0.0.1:{self.ui_port}/api/v1/applications") or []
        if not apps:
            return []
        return get_json(f"http://127.0.0.1:{self.ui_port}/api/v1/applications/{apps[0]['id']}/jobs?status=running") or []


@dataclass
class StandaloneCluster:
    folder: Path
    port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    defaults: dict[str, str] = field(default_factory=dict)  # --conf of every spark-submit
    jars: list[str] = field(default_factory=list)  # --jars of every spark-submit
    job_env: dict[str, str] = field(default_factory=dict)  # the environment of every spark-submit
    master: subprocess.Popen | None = None
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SPARK_HOME": str(SPARK_HOME),
            "PYSPARK_PYTHON": sys.executable,  # executors run the driver's interpreter (the project's virtualenv)
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "SPARK_NO_DAEMONIZE": "1",
            "TZ": "UTC",
        }

    def _spark_class(self, name: str, cwd: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
        cwd.mkdir(parents=True, exist_ok=True)
        log = open(cwd / f"{name}.log", "ab")  # noqa: SIM115 (the child process keeps it open; it outlives this call)
        command = [str(SPARK_HOME / "bin" / "spark-class"), *args]
        return subprocess.Popen(command, cwd=cwd, env=env or self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, workers: int = 2) -> StandaloneCluster:
        self.master = self._spark_class(
            "master",
            self.folder / "master",
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--webui-port",
            str(self.ui_port),
        )
        for i in range(workers):
            self.start_worker(f"worker{i}")
        return self

    def worker_folder(self, name: str) -> Path:
        return self.folder / name

    def start_worker(self, name: str) -> None:
        folder = self.worker_folder(name)
        env = {**self.env(), "SPARK_LOCAL_DIRS": str(folder / "scratch")}
        self.workers[name] = self._spark_class(
            name,
            folder,
            "org.apache.spark.deploy.worker.Worker",
            "--host",
            "127.0.0.1",
            "--cores",
            "1",
            "--memory",
            "3g",
            "--work-dir",
            str(folder / "work"),
            "--webui-port",
            "0",
            self.url,
            env=env,
        )
        self.wait_for_workers()

    def alive_workers(self) -> int:
        state = get_json(f"http://127.0.0.1:{self.ui_port}/json/")
        return int(state["aliveworkers"]) if state else 0

    def wait_for_workers(self) -> None:
        expected = sum(1 for p in self.workers.values() if p.poll() is None)
        wait_for(lambda: self.alive_workers() == expected, f"{expected} alive worker(s) at {self.url}")

    def kill_worker(self, name: str) -> None:
        """kill -9 the Worker JVM; its executor notices and exits (it watches its worker)."""
        process = self.workers.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()
        wait_for(lambda: self.alive_workers() == len(self.workers), "the master to mark the killed worker dead", timeout=180)

    def submit(self, job: str, cwd: Path, *args: str, env: dict[str, str] | None = None) -> Submitted:
        """`spark-submit jobs/<job>.py ARGS` against the cluster, from `cwd`; returns at once."""
        cwd.mkdir(parents=True, exist_ok=True)
        ui_port = free_port()
        log = cwd.parent / f"{cwd.name}-{job}.log"  # beside the working folder, which must stay empty
        spark_conf = {"spark.ui.port": str(ui_port), "spark.executor.memory": "1g", "spark.cores.max": "2", **self.defaults}
        command = [str(SPARK_HOME / "bin" / "spark-submit"), "--master", self.url]
        for key, value in spark_conf.items():
            command += ["--conf", f"{key}={value}"]
        if self.jars:
            command += ["--jars", ",".join(self.jars)]
        command += [str(REPO / "jobs" / f"{job}.py"), *args]
        job_env = {**self.env(), **self.job_env, **(env or {})}
        with open(log, "wb") as out:
            process = subprocess.Popen(command, cwd=cwd, env=job_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return Submitted(process, cwd, log, ui_port)

    def run(self, job: str, cwd: Path, *args: str, timeout: float = 600.0) -> str:
        """Submit and wait; the job's output, or an AssertionError with it when the job failed."""
        submitted = self.submit(job, cwd, *args)
        code = submitted.wait(timeout)
        output = submitted.output()
        assert code == 0, f"{job} exited {code}:\n{output[-6000:]}"
        return output

    def stop(self) -> None:
        for process in [*self.workers.values(), self.master]:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers.values(), self.master]:
            if process is not None:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
