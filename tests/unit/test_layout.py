"""The package's layout rules (docs/decisions.md, "Layout"): imports run one way, and modules stay small."""

import ast
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "lib" / "seqrisk"
FOUNDATION = {"errors", "faults", "progress", "settings"}
# Who may import whom: each unit (a subpackage, or a top-level module) and the units it may import.
# The foundation may be imported by everyone; `config` may import every package's `settings` module.
ALLOWED = {
    "errors": set(),
    "faults": set(),
    "progress": set(),
    "settings": set(),
    "lake": set(),
    "ingest": {"lake"},
    "synthetic": {"lake"},
    "sessions": {"lake"},
    "model": {"lake", "sessions"},
    "detectors": {"sessions", "model"},
    "scoring": {"lake", "sessions", "model", "detectors"},
    "evaluation": {"lake", "detectors"},
    "registry": {"lake", "model", "scoring"},
    "jobs": {"lake", "ingest", "synthetic", "sessions", "model", "detectors", "scoring", "evaluation", "registry", "config", "spark"},
    "config": set(),
    "spark": {"config"},
    "cli": {"config", "jobs"},
    "notebook": {"config"},
}
JVM_AND_DELTA = ("delta", "deltalake", "py4j")  # only `seqrisk.lake` reaches Delta and the JVM
# Modules or functions over the limits, each with its reason in docs/decisions.md ("Layout").
LONGER = {"synthetic/generator.py"}


def _modules() -> list[tuple[str, Path, ast.Module]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found.append((parts[0], path, ast.parse(path.read_text())))
    return found


def _imports(tree: ast.Module) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            names += [f"{base}.{a.name}" for a in node.names] if base == "seqrisk" else [base]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def test_every_unit_of_the_package_has_a_rule():
    assert {unit for unit, _, _ in _modules()} - {"__init__"} == set(ALLOWED)


def test_imports_run_one_way_as_the_documented_rule_says():
    wrong = []
    for unit, path, tree in _modules():
        for name in _imports(tree):
            parts = name.split(".")
            if parts[0] != "seqrisk" or len(parts) < 2 or parts[1] in FOUNDATION or parts[1] == unit:
                continue
            if unit == "config" and len(parts) == 3 and parts[2] == "settings":
                continue
            if parts[1] not in ALLOWED.get(unit, set()):
                wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert wrong == []


def test_only_the_lake_reaches_delta_and_the_jvm():
    wrong = []
    for unit, path, tree in _modules():
        if unit == "lake":
            continue
        reaches = [n for n in _imports(tree) if n.split(".")[0] in JVM_AND_DELTA]
        if reaches or "._jvm" in path.read_text():
            wrong.append(f"{path.relative_to(PACKAGE)}: {reaches or '_jvm'}")
    assert wrong == []


def test_no_module_over_300_lines_and_no_function_over_60_unless_documented():
    decisions = (REPO / "docs" / "decisions.md").read_text()
    too_long = []
    for _, path, tree in _modules():
        name = path.relative_to(PACKAGE).as_posix()
        if name in LONGER:
            assert f"`{name}`" in decisions, f"{name} is allowed to be longer, but docs/decisions.md does not say why"
            continue
        if len(path.read_text().splitlines()) > 300:
            too_long.append(name)
        too_long += [
            f"{name}:{node.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60
        ]
    assert too_long == []
