"""seqrisk: risky-behavior detection in event sequences, as PySpark jobs.

Install profiles (docs/decisions.md, "Install profiles"):
- `pip install seqrisk` (a wheel library on a Databricks Runtime ML cluster) requires only what the
  runtime does not provide, as ranges the 15.4 LTS ML runtime satisfies: it never replaces the
  runtime's PySpark, torch, numpy, pandas or pyarrow, on which the runtime's Horovod build depends.
- `pip install seqrisk[runtime]` adds what a Runtime ML provides (PySpark, torch, Petastorm,
  delta-spark, MLflow), for a laptop or a plain Spark cluster; Horovod is built separately
  (scripts/build_horovod.sh, the version below).
- `pip install seqrisk[runtime-spark4]` is the current-runtime stack instead: PySpark 4 and
  delta-spark 4, trained with TorchDistributor and the Arrow reader (no Horovod, no Petastorm).
- `pip install seqrisk[s3]` adds s3fs, through which Petastorm and the training reader read a lake on S3.
- `constraints.txt` pins every package exactly for a laptop and CI; `make setup` installs with it.
"""
from setuptools import find_packages, setup

# Horovod is not listed here: it is built from source with a C++17 fix by
# scripts/build_horovod.sh (see docs/decisions.md); its version is pinned there by this constant.
HOROVOD_VERSION = "0.28.1"

# Ranges: the lower bounds are Databricks Runtime 15.4 LTS ML's own versions, the upper ones admit 16.4 and
# 17.3 LTS ML's (tests/packaging/databricks-*-lts-ml.txt).
REQUIRES = [
    "numpy>=1.23.5,<3",  # 17.3 LTS ML has numpy 2.1
    "pandas>=1.5.3,<2.3",
    "pyarrow>=14.0.1",  # Petastorm needs < 15 (the legacy dataset API): the `runtime` extra's pins keep it; the Arrow reader runs on any
    "deltalake>=1.1,<2",  # Delta tables without Delta's jars (laptop, CI)
    "scikit-learn>=1.3,<1.7",  # 17.3 LTS ML has 1.6.1
    "skops>=0.11,<0.12",  # safe persistence of the IsolationForest (no pickle); 0.12+ needs numpy 1.25
    "matplotlib>=3.7,<4",  # evaluation plots
    "pydantic>=2.5,<3",  # the runtime's pydantic 1.10 is the one package a wheel install replaces
    "PyYAML>=6.0,<7",
]

# What a Databricks Runtime ML provides (with Horovod); on a laptop or a plain cluster, this extra.
RUNTIME = [
    "pyspark>=3.5.0,<3.6",
    "torch>=2.3,<3",
    "petastorm==0.12.1",
    "pyarrow>=14.0.1,<15",  # Petastorm needs the legacy Parquet dataset API that pyarrow 15 removed
    "delta-spark>=3.2,<3.4",
    "mlflow>=2.13,<4",
]

# Lakes on S3 (`s3a://`, `s3://`): Petastorm and the training reader reach the files through fsspec's S3.
S3 = ["s3fs>=2023.1"]

# The current-runtime stack (Spark 4.0, as Databricks 17.3 LTS ML): TorchDistributor and the Arrow reader.
RUNTIME_SPARK4 = [
    "pyspark>=4.0.1,<4.1",
    "torch>=2.3,<3",
    "delta-spark>=4.0.1,<4.1",
    "mlflow>=2.13,<4",
]

DEV = [
    "pytest>=8,<9",
    "pytest-xdist>=3.6,<4",  # `make test` runs the suite in two processes
    "ruff>=0.15",  # format and lint (pyproject.toml)
    "mypy>=1.10",  # types of lib/ (pyproject.toml)
    "duckdb>=1.1,<2",
    "duckdb-extension-delta>=1.1,<2",
    "moto[s3]>=5,<6",  # an S3 endpoint on loopback for the standalone-cluster test (its server runs on Flask)
    "flask>=3,<4",
    "flask-cors>=4,<7",
]

setup(
    name="seqrisk",
    version="0.1.0",
    description="Find risky behavior in event sequences at scale with PySpark, Delta, Horovod and PyTorch",
    python_requires=">=3.11,<3.13",  # 15.4 LTS: 3.11; 16.4 and 17.3 LTS: 3.12
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    include_package_data=True,
    package_data={"seqrisk": ["base.yaml"]},
    install_requires=REQUIRES,
    extras_require={"runtime": RUNTIME, "runtime-spark4": RUNTIME_SPARK4, "s3": S3, "dev": DEV},
    entry_points={"console_scripts": ["seqrisk=seqrisk.cli:main"]},
)
