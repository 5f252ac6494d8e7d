"""The `seqrisk` command: one subcommand per job, the same arguments as `spark-submit jobs/<job>.py`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date

from seqrisk.config import Config, load_config
from seqrisk.errors import SeqriskError


def main(argv: Sequence[str] | None = None) -> int:
    """Run one job; 0 when it succeeded.

    A failure raises SystemExit (2 for a reported error, as argparse does for bad arguments), so
    the process exits non-zero also where a launcher calls this function and ignores its return
    value (a Databricks wheel task).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.conf, args.set)
        return args.run(config, args)
    except SeqriskError as err:
        print(f"seqrisk {args.job}: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqrisk", description="Find risky behavior in event sequences.")
    jobs = parser.add_subparsers(dest="job", required=True, metavar="JOB")

    generate = _job(jobs, "generate", "synthetic raw events and labels, generated in parallel", _generate)
    generate.add_argument("--out", metavar="DIR", help="output folder (default: generate.out)")

    ingest = _job(jobs, "ingest", "raw event files into the events and quarantine tables", _ingest)
    ingest.add_argument("--input", required=True, metavar="PATH_OR_GLOB", help="a file, a folder or a glob")
    ingest.add_argument("--mapping", required=True, metavar="NAME", help="a mapping under ingest.mappings")
    sessionize = _job(jobs, "sessionize", "events into the sessions and windows tables and the vocabulary", _sessionize)
    _date_range(sessionize, "to recompute")
    train = _job(jobs, "train", "train the sequence model on the windows table (Horovod, Petastorm)", _train)
    train.add_argument("--dry-run", action="store_true", help="a few steps on one worker, to try a config")
    train.add_argument("--labels", help="labels (CSV or Delta table) of known cases: they weight the detectors and set the high cut-off")
    score = _job(jobs, "score", "score sessions with a model into the session_risk and user_risk tables", _score)
    _date_range(score, "to score")
    evaluate = _job(jobs, "evaluate", "risk tables against labels: metrics.json, report.md and plots", _evaluate)
    evaluate.add_argument("--labels", required=True, metavar="PATH", help="a labels CSV file or a Delta table")
    evaluate.add_argument("--report", metavar="DIR", help="report directory (default: evaluate.report)")
    evaluate.add_argument(
        "--model", metavar="REF", help="score the sessions with this model (a folder or models:/NAME@ALIAS) instead of reading session_risk"
    )
    _date_range(evaluate, "to evaluate")
    promote = _job(jobs, "promote", "move a registered model's alias to the candidate when its evaluation is not worse (MLflow)", _promote)
    promote.add_argument("--alias", default="champion", help="the alias to move (default: champion)")
    promote.add_argument("--labels", metavar="PATH", help="labels both models are evaluated on (a CSV file or a Delta table)")
    promote.add_argument(
        "--candidate", metavar="REF", help="models:/NAME@ALIAS or models:/NAME/VERSION (default: the mlflow.candidate_alias version)"
    )
    promote.add_argument("--force", action="store_true", help="move the alias without evaluating")
    _date_range(promote, "both models are evaluated on")
    vacuum = _job(jobs, "vacuum", "delete the lake's files that no live commit needs (killed runs' leftovers, old versions)", _vacuum)
    vacuum.add_argument("--retain-hours", type=int, metavar="H", help="keep files younger than this (default: tables.vacuum_retain_hours)")
    pipeline = _job(
        jobs, "pipeline", "every job in order: generate (or --input), ingest, sessionize, train, [promote,] score, evaluate", _pipeline
    )
    pipeline.add_argument("--input", metavar="PATH_OR_GLOB", help="raw events to ingest instead of generating them")
    pipeline.add_argument("--mapping", metavar="NAME", help="the mapping for --input")
    pipeline.add_argument("--labels", metavar="PATH", help="labels to evaluate against (default with generated data: its labels)")
    return parser


def _date_range(parser: argparse.ArgumentParser, what: str) -> None:
    """`--from` and `--to`: the first and last session date `what` (both or neither; the job checks)."""
    parser.add_argument("--from", dest="date_from", type=_date, metavar="YYYY-MM-DD", help=f"first session date {what}")
    parser.add_argument("--to", dest="date_to", type=_date, metavar="YYYY-MM-DD", help=f"last session date {what}")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-05-01") from None


def _job(jobs, name: str, help_text: str, run: Callable[[Config, argparse.Namespace], int]) -> argparse.ArgumentParser:
    parser = jobs.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--conf", required=True, metavar="FILE", help="environment file, layered on base.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    parser.set_defaults(run=run)
    return parser


# Each subcommand imports its job shell when it runs, so `seqrisk --help` and a bad argument answer
# without loading Spark, torch and MLflow.


def _generate(config: Config, args: argparse.Namespace) -> int:
    from seqrisk.jobs.generate import run_generate

    print(run_generate(config, out=args.out).report())
    return 0


def _sessionize(config: Config, args: argparse.Namespace) -> int:
    from seqrisk.jobs.sessionize import run_sessionize

    print(run_sessionize(config, date_from=args.date_from, date_to=args.date_to).report())
    return 0


def _train(config: Config, args: argparse.Namespace) -> int:
    from seqrisk.jobs.train import run_train

    print(run_train(config, dry_run=args.dry_run, labels=args.labels).report())
    return 0


def _score(config: Config, args: argparse.Namespace) -> int:
    from seqrisk.jobs.score import run_score

    print(run_score(config, date_from=args.date_from, date_to=args.date_to).report())
    return 0


def _evaluate(config: Config, args: argparse.Namespace) -> int:
    from seqrisk.jobs.evaluate import run_evaluate

    print(
        run_evaluate(
            config, labels=args.labels, report_dir=args.report, model_ref=args.model, date_from=args.date_from, date_to=args.date_to
        ).report()
    )
    return 0


def _promote(config: Config, args: argparse.Namespace) -> int:
    from seqrisk.jobs.promote import run_promote

    summary = run_promote(
        config,
        alias=args.alias,
        labels=args.labels,
        candidate=args.candidate,
        force=args.force,
        date_from=args.date_from,
        date_to=args.date_to,
    )
    print(summary.report())
    return 0


def _pipeline(config: Config, args: argparse.Namespace) -> int:
    from seqrisk.jobs.pipeline import run_pipeline

    print(run_pipeline(config, input_path=args.input, mapping=args.mapping, labels=args.labels).report())
    return 0


def _vacuum(config: Config, args: argparse.Namespace) -> int:
    from seqrisk.jobs.vacuum import run_vacuum

    print(run_vacuum(config, retain_hours=args.retain_hours).report())
    return 0


def _ingest(config: Config, args: argparse.Namespace) -> int:
    from seqrisk.jobs.ingest import run_ingest

    summary = run_ingest(config, input_path=args.input, mapping_name=args.mapping)
    print(summary.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
