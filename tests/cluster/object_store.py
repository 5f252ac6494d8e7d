"""An S3 endpoint on loopback for the cluster tests' lake: moto's server in a process of its own (s3_server.py).

The jobs reach it as they would reach S3 from a cluster: Spark through Hadoop's `s3a://`
filesystem (the hadoop-aws jars `make setup` cached, on the driver's and executors' classpath, as a
cluster has them installed), Petastorm and the training reader through s3fs, all with the standard
AWS settings (`AWS_ENDPOINT_URL` and the credentials in the environment). The tests read what the
jobs wrote by downloading it: nothing of the lake is ever on the driver's or the workers' disks.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import s3_server
from standalone import REPO, free_port, wait_for

from seqrisk.spark import JARS_CACHE

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "seqrisk-test", "AWS_SECRET_ACCESS_KEY": "seqrisk-test", "AWS_REGION": "us-east-1"}


def s3a_jars() -> list[str]:
    """hadoop-aws at PySpark's Hadoop version and its AWS SDK bundle, where scripts/fetch_jars.py cached them."""
    spec = importlib.util.spec_from_file_location("fetch_jars", REPO / "scripts" / "fetch_jars.py")
    fetch_jars = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetch_jars)
    (name,) = fetch_jars.jar_sets(["s3"])  # the set's folder, named by the versions it was fetched for
    folder = JARS_CACHE / name
    jars = sorted(str(jar) for jar in folder.glob("*.jar"))
    assert len(jars) == 2, f"no s3a jars in {folder}: run `make setup`"
    return jars


@dataclass
class ObjectStore:
    folder: Path
    bucket: str = "lake"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ObjectStore:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "moto.log", "ab")  # noqa: SIM115 (the server keeps it open)
        command = [sys.executable, s3_server.__file__, str(self.port), str(self.folder)]
        self.process = subprocess.Popen(command, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._reachable, f"the S3 endpoint at {self.endpoint}", timeout=60)
        self._client().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    @contextmanager
    def slow_parquet_writes(self) -> Iterator[None]:
        """Each Parquet object takes `s3_server.SLOW_PUT_S` to store, inside the block."""
        switch = self.folder / s3_server.SWITCH
        switch.touch()
        try:
            yield
        finally:
            switch.unlink()

    def env(self) -> dict[str, str]:
        """What a job's driver and executors have in their environment to reach the store."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def spark_conf(self) -> dict[str, str]:
        """spark-submit settings: s3a at the endpoint, and the environment for the executors' Python (s3fs)."""
        return {
            "spark.hadoop.fs.s3a.endpoint": self.endpoint,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
            **{f"spark.executorEnv.{key}": value for key, value in self.env().items()},
        }

    def uri(self, key: str) -> str:
        return f"s3a://{self.bucket}/{key}"

    def keys(self, prefix: str) -> list[str]:
        pages = self._client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def read(self, key: str) -> bytes:
        return self._client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def download(self, prefix: str, target: Path) -> Path:
        """Every object under `prefix/` into `target` (a Delta table's files and log, a model directory)."""
        client = self._client()
        for key in self.keys(f"{prefix}/"):
            local = target / key.removeprefix(f"{prefix}/")
            local.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(self.bucket, key, str(local))
        return target

    def copy(self, prefix: str, to: str) -> None:
        client = self._client()
        for key in self.keys(f"{prefix}/"):
            client.copy_object(
                Bucket=self.bucket, Key=f"{to}/{key.removeprefix(f'{prefix}/')}", CopySource={"Bucket": self.bucket, "Key": key}
            )

    def _client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=CREDENTIALS["AWS_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def _reachable(self) -> bool:
        try:
            self._client().list_buckets()
            return True
        except Exception:  # noqa: BLE001 (not up yet)
            return False
