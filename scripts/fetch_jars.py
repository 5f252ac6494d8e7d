"""Fetch the JVM jars seqrisk runs with into a cache, once, and verify them against pinned SHA-256 sums.

Two sets, each resolved by Spark's own dependency resolver (Ivy, what `--packages` uses) with its
whole dependency closure, at the versions of the installed packages:
- `delta`, into `delta-<v>/`: `io.delta:delta-spark_<PySpark's Scala>` at the installed
  `delta-spark` Python package's version (delta-spark and delta-storage). `seqrisk.spark` gives
  them to local sessions; a cluster gets them with `spark-submit --jars` or `--packages`.
- `s3`, into `hadoop-aws-<v>/`: `org.apache.hadoop:hadoop-aws` at the Hadoop version PySpark
  bundles, with the AWS SDK bundle it was built against: the `s3a://` filesystem, for a lake on S3
  (the standalone-cluster test's lake is on an S3 endpoint on loopback).

The jars cached are those `scripts/jars.sha256` lists (`<sha256>  <set>/<jar>`), each checked
against its sum; nothing unverified is cached. The rest of the closure is left out: PySpark bundles
it (antlr4-runtime) or it is optional (wildfly-openssl, for s3a's OpenSSL mode). Prints the cache folder.

usage: python scripts/fetch_jars.py [CACHE [SET ...]]   (default: ~/.cache/seqrisk/jars delta s3)
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import pyspark

SUMS = Path(__file__).with_name("jars.sha256")
JARS = Path(pyspark.__file__).parent / "jars"


def jar_sets(names: list[str]) -> dict[str, str]:
    """Cache folder -> Maven coordinates of the named sets, at the versions of the installed packages."""
    delta = version("delta-spark")
    scala = ".".join(_bundled("scala-library").split(".")[:2])  # 2.12 for PySpark 3.5, 2.13 for 4
    hadoop = _bundled("hadoop-client-api")
    known = {
        "delta": (f"delta-{delta}", f"io.delta:delta-spark_{scala}:{delta}"),
        "s3": (f"hadoop-aws-{hadoop}", f"org.apache.hadoop:hadoop-aws:{hadoop}"),
    }
    return dict(known[name] for name in names)


def _bundled(artifact: str) -> str:
    """The version of a jar PySpark bundles."""
    (jar,) = JARS.glob(f"{artifact}-[0-9]*.jar")
    return jar.stem.removeprefix(f"{artifact}-")


def main() -> int:
    cache = Path(sys.argv[1] if len(sys.argv) > 1 else Path.home() / ".cache" / "seqrisk" / "jars")
    sets = jar_sets(sys.argv[2:] or ["delta", "s3"])
    pinned = _pinned()
    unpinned = [folder for folder in sets if not any(name.startswith(f"{folder}/") for name in pinned)]
    if unpinned:
        print(f"fetch_jars: no pinned SHA-256 for {unpinned} in {SUMS}; add them after checking the jars", file=sys.stderr)
        return 1
    wanted = {name: sha for name, sha in pinned.items() if name.split("/")[0] in sets}
    if any(_sha256(cache / name) != sha for name, sha in wanted.items()):  # not cached, or not intact
        print(f"fetching {', '.join(sets.values())} through Spark's resolver (once; cached in {cache})", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="seqrisk-ivy-") as ivy:
            _resolve(list(sets.values()), ivy)
            resolved = {found.name.split("_", 1)[1]: found for found in Path(ivy, "jars").glob("*.jar")}  # Ivy: org_artifact-version.jar
            problems = [f"{name}: {p}" for name, sha in wanted.items() if (p := _problem(resolved.get(name.split("/")[1]), sha))]
            if problems:
                print("fetch_jars: nothing cached:\n  " + "\n  ".join(problems), file=sys.stderr)
                return 1
            for name in wanted:
                (cache / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(resolved[name.split("/")[1]], cache / name)
    print(cache)
    return 0


def _pinned() -> dict[str, str]:
    """`<set>/<jar>` -> its pinned SHA-256."""
    lines = [line.split() for line in SUMS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {name: sha for sha, name in lines}


def _problem(found: Path | None, sha: str) -> str:
    if found is None:
        return "pinned but not resolved"
    return "" if _sha256(found) == sha else "does not match its pinned SHA-256"


def _resolve(packages: list[str], ivy: str) -> None:
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]")
        .config("spark.jars.packages", ",".join(packages))
        .config("spark.jars.ivy", ivy)
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.stop()


def _sha256(path: Path) -> str:
    if not path.is_file():
        return ""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


if __name__ == "__main__":
    sys.exit(main())
