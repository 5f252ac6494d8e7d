"""The job shells: what `seqrisk <job>`, `spark-submit jobs/<job>.py` and the notebooks run.

Each `run_<job>` starts a run (`start.py`: run id, effective config, Spark session, lake), reads
its inputs through the lake, calls the transforms below this wing with DataFrames and plain
values, publishes its tables and returns a summary whose report is formatted by `report.py`.
Only this wing sees `Config`. No job imports another, except the two that orchestrate jobs:
`pipeline` (every job in order) and `promote` (evaluates the candidate and the champion with
`run_evaluate`, then moves the alias).
"""
