"""The vacuum job: delete the lake's files that no live commit needs.

For every table under `tables.root`: the files earlier commits removed and, with delta-rs, files
no commit ever listed (a run killed between its Parquet write and its commit), once they are older
than `tables.vacuum_retain_hours` (or `--retain-hours`); with delta-rs also the staging folders of
killed runs and a table folder whose first commit never came. The retention is what protects a run
still in progress: its files are younger. Time travel to versions older than the retention stops
working, as with Delta's own VACUUM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from seqrisk.config import Config
from seqrisk.jobs.report import line, report
from seqrisk.jobs.start import start_job
from seqrisk.lake.settings import TableNames

log = logging.getLogger("seqrisk")


@dataclass
class VacuumSummary:
    run_id: str
    retain_hours: int
    files_removed: dict[str, int] = field(default_factory=dict)
    staging_runs_removed: int = 0

    def report(self) -> str:
        return report(
            f"vacuum {self.run_id}: files older than {self.retain_hours} h that no live commit needs",
            *(line(name, count) for name, count in self.files_removed.items()),
            line("staging folders", self.staging_runs_removed),
        )


def run_vacuum(config: Config, *, retain_hours: int | None = None, spark: SparkSession | None = None) -> VacuumSummary:
    job = start_job("vacuum", config, spark)
    hours = config.tables.vacuum_retain_hours if retain_hours is None else retain_hours
    summary = VacuumSummary(job.run_id, hours)
    for name in TableNames.model_fields:
        if name == "vocabulary":
            continue
        if job.lake.exists(name):
            summary.files_removed[name] = job.lake.tables.vacuum(job.lake.path(name), hours)
        else:  # a folder whose first commit never came, if any
            summary.files_removed[name] = job.lake.tables.vacuum_uncommitted(job.lake.path(name), hours)
            if not summary.files_removed[name]:
                del summary.files_removed[name]
                continue
        log.info("vacuum: %s: %d file(s) removed", name, summary.files_removed[name])
    summary.staging_runs_removed = job.lake.tables.vacuum_staging(job.lake.root, hours)
    return summary
