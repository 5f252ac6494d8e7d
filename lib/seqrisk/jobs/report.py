"""One format for every job's summary: a title line, then aligned `label  value` lines."""

from __future__ import annotations

LABEL_WIDTH = 20


def line(label: str, value: object) -> str:
    """`  label               value`: numbers right-aligned in 12 characters with thousands separators."""
    text = f"{value:>12,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    return f"  {label:<{LABEL_WIDTH}}{text}"


def report(title: str, *lines: str) -> str:
    return "\n".join([title, *lines])
