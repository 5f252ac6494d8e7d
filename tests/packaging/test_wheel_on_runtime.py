"""A wheel built from the tree installs on simulated Databricks Runtime 15.4, 16.4 and 17.3 LTS ML (a
virtualenv holding each runtime's packages at its versions) without replacing any of them, and its
requirements resolve for the runtime's Python.

The runtime's packages are metadata-only stand-ins (a name and a version: what pip's resolver
reads), so the test needs no GPU build of torch and no 300 MB PySpark download. The packages
seqrisk itself brings (deltalake, skops, ...) come from the package index, as on a cluster. This
machine's Python is 3.11; for the runtimes on Python 3.12, pip resolves the wheel's requirements for
3.12's binary wheels (a dry run) besides installing it here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import REPO

RUNTIME_LISTS = sorted(Path(__file__).parent.glob("databricks-*-lts-ml.txt"))


@dataclass(frozen=True)
class Runtime:
    python: str
    packages: dict[str, str]  # normalized name: version
    replaced_on_purpose: frozenset[str]


def read_runtime(path: Path) -> Runtime:
    """A runtime list: `# python: X.Y`, then `name==version` lines, some marked `# replaced on purpose`."""
    text = path.read_text()
    (python,) = re.findall(r"^# python: (\S+)$", text, re.M)
    packages, replaced = {}, set()
    for line in text.splitlines():
        pin, _, comment = line.partition("#")
        if pin.strip():
            name, version = pin.strip().split("==")
            packages[_normalized(name)] = version
            if comment.strip().startswith("replaced on purpose"):
                replaced.add(_normalized(name))
    return Runtime(python, packages, frozenset(replaced))


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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", *QUIET, "--no-deps", "--no-build-isolation", "--wheel-dir", dist, REPO)
    (built,) = dist.glob("seqrisk-*.whl")
    return built


QUIET = ("--quiet", "--disable-pip-version-check")


@pytest.mark.parametrize("runtime_list", RUNTIME_LISTS, ids=lambda p: p.stem)
def test_wheel_installs_on_the_runtime_without_replacing_its_packages(runtime_list, wheel, tmp_path):
    runtime = read_runtime(runtime_list)
    stand_ins = tmp_path / "runtime-wheels"
    stand_ins.mkdir()
    for name, version in runtime.packages.items():
        stand_in_wheel(stand_ins, name, version)
    pins = [f"{n}=={v}" for n, v in runtime.packages.items()]
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", *QUIET, "--no-index", "--find-links", stand_ins, *pins)
    before = installed(python)
    assert {n: before.get(n) for n in runtime.packages} == runtime.packages

    _run(python, "-m", "pip", "install", *QUIET, wheel)
    after = installed(python)
    changed = {n: (v, after.get(n)) for n, v in runtime.packages.items() if after.get(n) != v}
    assert set(changed) == runtime.replaced_on_purpose, f"the wheel replaced runtime packages: {changed}"
    assert "delta-spark" not in after and "torch" in after  # the `runtime` extras stay out
    _run(python, "-m", "pip", "check")
    entry = _run(python, "-c", "from importlib.metadata import entry_points; print(entry_points(group='console_scripts')['seqrisk'].value)")
    assert entry.strip() == "seqrisk.cli:main"

    kept = {n: v for n, v in runtime.packages.items() if n not in runtime.replaced_on_purpose}
    report = tmp_path / "resolution.json"
    # this environment's pip (24): the venv's pip 23.2 skips the wheel's Requires-Python in such a dry run
    _run(sys.executable, "-m", "pip", "install", *QUIET, "--dry-run", "--report", report, "--target", tmp_path / "unused",
         "--python-version", runtime.python, "--only-binary=:all:", "--platform", "manylinux2014_x86_64",
         "--find-links", stand_ins, wheel, *(f"{n}=={v}" for n, v in kept.items()))  # fmt: skip
    resolved = {_normalized(i["metadata"]["name"]): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
    assert resolved["seqrisk"] and {n: resolved.get(n) for n in kept} == kept
