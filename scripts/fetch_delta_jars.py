"""Fetch Delta's jars for the installed delta-spark package into a cache, once, and verify them.

Spark's own dependency resolver (Ivy, what `--packages` uses) downloads `io.delta:delta-spark_2.12`
and `io.delta:delta-storage` at the version of the installed `delta-spark` Python package; the two
jars are copied to `CACHE/delta-<version>/` and checked against the SHA-256 sums pinned in
`scripts/delta-jars.sha256`. Prints that folder. `seqrisk.spark` finds the jars there.

usage: python scripts/fetch_delta_jars.py [CACHE]   (default: ~/.cache/seqrisk/jars)
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

SUMS = Path(__file__).with_name("delta-jars.sha256")
SCALA = "2.12"  # PySpark 3.5's Scala


def main() -> int:
    cache = Path(sys.argv[1] if len(sys.argv) > 1 else Path.home() / ".cache" / "seqrisk" / "jars")
    delta = version("delta-spark")
    target = cache / f"delta-{delta}"
    names = [f"delta-spark_{SCALA}-{delta}.jar", f"delta-storage-{delta}.jar"]
    pinned = dict(reversed(line.split()) for line in SUMS.read_text().splitlines() if line.strip() and not line.startswith("#"))
    missing = [n for n in names if n not in pinned]
    if missing:
        print(f"fetch_delta_jars: no pinned SHA-256 for {missing} in {SUMS}; add them after checking the jars", file=sys.stderr)
        return 1
    if all(_sha256(target / n) == pinned[n] for n in names):  # cached and intact
        print(target)
        return 0
    print(f"fetching Delta {delta}'s jars through Spark's resolver (once; cached in {target})", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="seqrisk-ivy-") as ivy:
        _resolve(f"io.delta:delta-spark_{SCALA}:{delta}", ivy)
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            found = Path(ivy, "jars", f"io.delta_{name}")
            if _sha256(found) != pinned[name]:
                print(f"fetch_delta_jars: {name} does not match its pinned SHA-256; not cached", file=sys.stderr)
                return 1
            shutil.copyfile(found, target / name)
    print(target)
    return 0


def _resolve(package: str, ivy: str) -> None:
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]")
        .config("spark.jars.packages", package)
        .config("spark.jars.ivy", ivy)
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.stop()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


if __name__ == "__main__":
    sys.exit(main())
