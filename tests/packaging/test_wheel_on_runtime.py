"""A wheel built from the tree installs on a simulated Databricks Runtime 15.4 LTS ML (a virtualenv
holding the runtime's packages at its versions) without replacing any of them.

The runtime's packages are metadata-only stand-ins (a name and a version: what pip's resolver
reads), so the test needs no GPU build of torch and no 300 MB PySpark download. The packages
seqrisk itself brings (deltalake, skops, ...) come from the package index, as on a cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from helpers import REPO

RUNTIME = Path(__file__).with_name("databricks-15.4-lts-ml.txt")
REPLACED_ON_PURPOSE = {"pydantic"}


def runtime_packages() -> dict[str, str]:
    """The runtime's packages by normalized name, from the list beside this test."""
    pins = [line.split("==") for line in RUNTIME.read_text().splitlines() if line and not line.startswith("#")]
    return {_normalized(name): version for name, version in pins}


def stand_in_wheel(folder: Path, name: str, version: str) -> Path:
    """A wheel that installs nothing but the distribution's metadata."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{dist}-py3-none-any.whl"
    files = {
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: seqrisk-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}.dist-info/RECORD"] = "".join(f"{n},,\n" for n in [*files, f"{dist}.dist-info/RECORD"])
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def installed(python: Path) -> dict[str, str]:
    listing = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"], check=True, capture_output=True, text=True).stdout
    return {_normalized(p["name"]): p["version"] for p in json.loads(listing)}


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-")


def _run(*command) -> str:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_wheel_installs_on_the_runtime_without_replacing_its_packages(tmp_path):
    runtime = runtime_packages()
    stand_ins = tmp_path / "runtime-wheels"
    stand_ins.mkdir()
    for name, version in runtime.items():
        stand_in_wheel(stand_ins, name, version)
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    quiet = ("--quiet", "--disable-pip-version-check")
    _run(python, "-m", "pip", "install", *quiet, "--no-index", "--find-links", stand_ins, *(f"{n}=={v}" for n, v in runtime.items()))
    before = installed(python)
    assert {n: before.get(n) for n in runtime} == runtime

    _run(sys.executable, "-m", "pip", "wheel", *quiet, "--no-deps", "--no-build-isolation", "--wheel-dir", tmp_path / "dist", REPO)
    (wheel,) = (tmp_path / "dist").glob("seqrisk-*.whl")
    _run(python, "-m", "pip", "install", *quiet, wheel)

    after = installed(python)
    changed = {n: (v, after.get(n)) for n, v in runtime.items() if after.get(n) != v}
    assert set(changed) == REPLACED_ON_PURPOSE, f"the wheel replaced runtime packages: {changed}"
    assert "delta-spark" not in after and "torch" in after  # the `runtime` extra stays out
    _run(python, "-m", "pip", "check")
    entry = _run(python, "-c", "from importlib.metadata import entry_points; print(entry_points(group='console_scripts')['seqrisk'].value)")
    assert entry.strip() == "seqrisk.cli:main"
