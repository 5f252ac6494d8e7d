"""Progress lines for long Spark work."""

from __future__ import annotations

import logging
import re
import time

from seqrisk.progress import StageProgress, follow_stages, stage_line


def test_stage_line_estimates_time_left_from_the_rate_seen():
    assert stage_line(7, 19, 122, 2, 600.0, 10) == "Spark stage 7: 19/122 tasks done, 2 running, about 1 h 43 min left"
    assert stage_line(7, 20, 40, 2, 60.0, 4) == "Spark stage 7: 20/40 tasks done, 2 running, about 5 min left"
    assert stage_line(7, 39, 40, 1, 10.0, 20) == "Spark stage 7: 39/40 tasks done, 1 running, under a minute left"
    # Nothing finished while watched, or nothing left: no estimate.
    assert stage_line(3, 0, 4, 2, 30.0, 0) == "Spark stage 3: 0/4 tasks done, 2 running"
    assert stage_line(3, 4, 4, 0, 30.0, 4) == "Spark stage 3: 4/4 tasks done, 0 running"


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_a_running_stage_is_logged_under_the_job_name(spark):
    captured, logger = _Lines(), logging.getLogger("seqrisk")
    level = logger.level
    logger.addHandler(captured)
    logger.setLevel(logging.INFO)
    progress = StageProgress(spark.sparkContext, every_s=0.1, job_name="sessionize")
    progress.start()
    try:
        spark.sparkContext.parallelize(range(6), 6).map(lambda x: time.sleep(0.5) or x).count()
    finally:
        progress.stop()
        logger.removeHandler(captured)
        logger.setLevel(level)
    stage_lines = [line for line in captured.lines if re.fullmatch(r"sessionize: Spark stage \d+: \d/6 tasks done, \d running.*", line)]
    assert stage_lines, captured.lines
    assert any("left" in line for line in stage_lines), stage_lines  # tasks finished while it watched


def test_one_reporter_per_context_and_zero_turns_it_off(spark):
    first = follow_stages(spark, "ingest", 30.0)
    again = follow_stages(spark, "sessionize", 30.0)
    assert again is first and first.job_name == "sessionize"
    assert follow_stages(spark, "score", 0) is None
    assert follow_stages(spark, "score", 30.0) is not first
