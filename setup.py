"""seqrisk: risky-behavior detection in event sequences, as PySpark jobs.

This file is the one place where the runtime is pinned (DESIGN.md, "Stack"): the Databricks
Runtime 15.4 LTS ML generation, the newest that still ships Horovod and Petastorm.
"""
from setuptools import find_packages, setup

# Horovod is not listed here: it is built from source with a C++17 fix by
# scripts/build_horovod.sh (see docs/decisions.md); its version is pinned there by this constant.
HOROVOD_VERSION = "0.28.1"

RUNTIME = [
    "pyspark==3.5.7",
    "delta-spark==3.3.2",
    "deltalake==1.6.6",
    "arro3-core==0.6.5",
    "pyarrow==14.0.2",
    "numpy==1.26.4",
    "pandas==2.2.3",
    "petastorm==0.12.1",
    "torch==2.13.0",
    "scikit-learn==1.5.2",
    "skops==0.16.0",  # safe persistence of the IsolationForest (no pickle)
    "matplotlib==3.9.2",  # evaluation plots
    "pydantic==2.11.10",
    "PyYAML==6.0.2",
]

DEV = [
    "pytest==8.3.5",
    "duckdb==1.5.5",
    "duckdb-extension-delta==1.5.5",
]

setup(
    name="seqrisk",
    version="0.1.0",
    description="Find risky behavior in event sequences at scale with PySpark, Delta, Horovod and PyTorch",
    python_requires=">=3.11,<3.12",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    include_package_data=True,
    package_data={"seqrisk": ["base.yaml"]},
    install_requires=RUNTIME,
    extras_require={"dev": DEV},
    entry_points={"console_scripts": ["seqrisk=seqrisk.cli:main"]},
)
