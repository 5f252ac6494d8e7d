"""Fault points: named places where a test may kill the job's process, as `kill -9` would, or pause it.

A job whose environment sets `SEQRISK_KILL_AT=<point>` sends itself SIGKILL when it reaches that
point; unset, a point does nothing. This is how the fault tests land a kill exactly where a
guarantee must hold, instead of racing a timer. A test that runs jobs in threads of its own
process may instead `hold(point, action)` to run `action` there (a barrier, say). Points:

- `staged`: Spark has written a job's Parquet files into `_staging/<run_id>/`, none is moved yet
  (delta-rs backend).
- `before_commit`: delta-rs: every table of a write has its Parquet files in place, none is
  committed yet; native: right before a table's write (delta-spark writes and commits in one call),
  so before the first table's nothing is written yet.
- `between_commits`: the first table of a write is committed, the next ones are not.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

KILL_AT = "SEQRISK_KILL_AT"
_held: dict[str, Callable[[], None]] = {}


def point(name: str) -> None:
    if os.environ.get(KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    action = _held.get(name)
    if action is not None:
        action()


@contextmanager
def hold(name: str, action: Callable[[], None]) -> Iterator[None]:
    """Run `action` whenever any thread of this process reaches point `name`, inside the block."""
    _held[name] = action
    try:
        yield
    finally:
        _held.pop(name, None)
