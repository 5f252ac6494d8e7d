"""Fault points: named places where a test may kill the job's process, as `kill -9` would.

A job whose environment sets `SEQRISK_KILL_AT=<point>` sends itself SIGKILL when it reaches that
point; unset, a point does nothing. This is how the fault tests land a kill exactly where a
guarantee must hold, instead of racing a timer. Points:

- `before_commit`: every table of a write has its Parquet files in place, none is committed yet
  (the delta-rs backend; delta-spark commits inside its own write).
"""
from __future__ import annotations

import os
import signal

KILL_AT = "SEQRISK_KILL_AT"


def point(name: str) -> None:
    if os.environ.get(KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
