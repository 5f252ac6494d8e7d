"""What the tests share besides fixtures: the small configs and lakes, and readers of Delta tables
through the three readers a user has (Spark, the deltalake package, DuckDB)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


# A small lake's windows and a small model trained on one worker in seconds (integration tests).
SMALL_WINDOWS = ("windows.length=16", "windows.stride=8", "windows.row_group_mb=1")
SMALL_TRAIN = (
    "train.workers=1",
    "train.epochs=2",
    "train.steps_per_epoch=15",
    "train.val_steps=2",
    "train.batch_size=64",
    "model.d_model=32",
    "model.n_heads=2",
)
LOCAL_SPARK = ("spark.master=local[2]", "spark.shuffle_partitions=2", "mlflow.tracking_uri=null")  # MLflow: only where a test asks for it


BACKENDS = ("native", "delta-rs")  # the table I/O tests run on both


def open_backend(spark, backend: str, max_records_per_file: int = 5_000_000):
    """The table I/O of one backend (`tables.delta`)."""
    from seqrisk.lake.backends import open_tables

    return open_tables(spark, delta=backend, max_records_per_file=max_records_per_file)


def make_config(root: Path, *overrides: str):
    from seqrisk.config import load_config

    return load_config(REPO / "conf" / "local.yaml", [*LOCAL_SPARK, f"tables.root={root}", *overrides])


def config_with(env_yaml: str, folder: Path, lake: Path):
    """A config factory (`factory(*overrides)`) for an environment file of `env_yaml` (test mappings,
    say), written under `folder/conf/` beside a copy of base.yaml, with the lake at `lake`."""
    from seqrisk.config import load_config

    env = folder / "conf" / "test.yaml"
    env.parent.mkdir()
    (env.parent / "base.yaml").write_text((REPO / "conf" / "base.yaml").read_text())
    env.write_text(env_yaml)
    return lambda *overrides: load_config(env, [*LOCAL_SPARK, f"tables.root={lake}", *overrides])


def synthetic_lake(spark, root: Path, generate: tuple = (), lake: tuple = ()) -> Path:
    """Generate synthetic raw events under root/raw, then ingest and sessionize them into root/lake."""
    from seqrisk.jobs.generate import run_generate
    from seqrisk.jobs.ingest import run_ingest
    from seqrisk.jobs.sessionize import run_sessionize

    path = root / "lake"
    run_generate(make_config(path, *generate), out=str(root / "raw"), spark=spark)
    run_ingest(make_config(path), input_path=str(root / "raw" / "events"), mapping_name="generated", spark=spark)
    run_sessionize(make_config(path, *lake), spark=spark)
    return path


def normalize(value):
    """One Python form for a value, whichever reader produced it."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dict):
        return tuple(sorted((k, normalize(v)) for k, v in value.items()))
    if isinstance(value, list) and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        return tuple(sorted((k, normalize(v)) for k, v in value))  # arrow maps arrive as pairs
    if isinstance(value, list):
        return tuple(normalize(v) for v in value)
    return value


def rows(records) -> list[tuple]:
    return sorted((tuple(normalize(v) for v in r) for r in records), key=repr)


def read_with_spark(df, columns) -> list[tuple]:
    return rows(df.select(*columns).collect())


def read_with_deltalake(path: Path, columns) -> list[tuple]:
    from deltalake import DeltaTable, QueryBuilder

    select = ", ".join(f'"{c}"' for c in columns)
    table = QueryBuilder().register("t", DeltaTable(str(path))).execute(f"select {select} from t").read_all()
    return rows(zip(*[table.column(c).to_pylist() for c in columns]))


def read_with_duckdb(path: Path, columns) -> list[tuple]:
    import duckdb
    import duckdb_extension_delta

    extension = next(Path(duckdb_extension_delta.__file__).parent.glob("extensions/*/delta.duckdb_extension"))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"LOAD '{extension}'")
    select = ", ".join(f'"{c}"' for c in columns)
    return rows(con.sql(f"select {select} from delta_scan('{path}')").fetchall())
