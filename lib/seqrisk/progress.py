"""Progress of long Spark work as log lines: each running stage's finished tasks and the time left.

Spark's console bar is off in batch runs (it redraws one line, which logs cannot keep), so a job
over billions of events would otherwise be silent for an hour. One daemon thread per Spark context
asks the status tracker every `spark.progress_seconds` and logs under the current job's name.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

from pyspark import SparkContext
from pyspark.sql import SparkSession

log = logging.getLogger("seqrisk")


def enable_progress_logging() -> None:
    """Show seqrisk's progress lines on stderr (also in a notebook or a Horovod worker), once."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s seqrisk %(levelname)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


_lock = threading.Lock()
_current: StageProgress | None = None


def follow_stages(spark: SparkSession, job_name: str, every_s: float) -> StageProgress | None:
    """Log `spark`'s running stages as `job_name` every `every_s` seconds (0: not at all)."""
    global _current
    with _lock:
        context = spark.sparkContext
        if _current is not None and (_current.context is not context or every_s <= 0):
            _current.stop()
            _current = None
        if every_s <= 0:
            return None
        if _current is None:
            _current = StageProgress(context, every_s)
            _current.start()
        _current.job_name, _current.every_s = job_name, every_s
        return _current


class StageProgress:
    """Polls the status tracker on a daemon thread; `report()` is one poll."""

    def __init__(self, context: SparkContext, every_s: float, job_name: str = "spark"):
        self.context, self.every_s, self.job_name = context, every_s, job_name
        self._first_seen: dict[int, tuple[float, int]] = {}  # stage -> (when, tasks done then)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="seqrisk-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self.every_s):
            try:
                self.report()
            except Exception:  # the context went away: progress is never worth a failure
                return

    def report(self) -> list[str]:
        """Log one line per running stage and return them."""
        tracker, now = self.context.statusTracker(), time.monotonic()
        active = sorted(tracker.getActiveStageIds())
        lines = []
        for stage_id in active:
            info = tracker.getStageInfo(stage_id)
            if info is None:  # finished between the two calls
                continue
            since, done_then = self._first_seen.setdefault(stage_id, (now, info.numCompletedTasks))
            lines.append(
                stage_line(
                    stage_id,
                    info.numCompletedTasks,
                    info.numTasks,
                    info.numActiveTasks,
                    now - since,
                    info.numCompletedTasks - done_then,
                )
            )
        self._first_seen = {s: seen for s, seen in self._first_seen.items() if s in active}
        for line in lines:
            log.info("%s: %s", self.job_name, line)
        return lines


def stage_line(stage_id: int, done: int, total: int, running: int, watched_s: float, done_while_watched: int) -> str:
    """`Spark stage 7: 19/122 tasks done, 2 running, about 1 h 5 min left` (from the rate seen so far)."""
    line = f"Spark stage {stage_id}: {done}/{total} tasks done, {running} running"
    if done_while_watched > 0 and done < total:
        line += f", {_time_left((total - done) * watched_s / done_while_watched)}"
    return line


def _time_left(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute left"
    if minutes < 60:
        return f"about {minutes} min left"
    return f"about {minutes // 60} h {minutes % 60} min left"
