#!/usr/bin/env bash
# Run seqrisk's tests under the Databricks Runtime 15.4 LTS ML versions that differ from the laptop
# pins (not part of `make test`: it downloads packages and takes about 7 minutes on 2 cores).
#   1. numpy 1.23.5, pandas 1.5.3, pyarrow 14.0.1, scikit-learn 1.3.0, scipy 1.11.1, matplotlib 3.7.2
#      in a virtualenv layered over .venv (PySpark, torch, Horovod, MLflow 3 from there): the unit
#      tests, training (Horovod), scoring, evaluation and the MLflow round trip.
#   2. MLflow 2.13.1 (the runtime's) ahead of .venv's MLflow 3 on PYTHONPATH: the MLflow round trip.
# usage: scripts/check_runtime_compat.sh [WORK_DIR]   (after `make setup`)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
repo=$(pwd)
site=$(.venv/bin/python -c "import site; print(site.getsitepackages()[0])")
quiet=(--quiet --disable-pip-version-check)

python3.11 -m venv "$work/runtime"
"$work/runtime/bin/pip" install "${quiet[@]}" numpy==1.23.5 pandas==1.5.3 pyarrow==14.0.1 scikit-learn==1.3.0 scipy==1.11.1 matplotlib==3.7.2
layered=$("$work/runtime/bin/python" -c "import site; print(site.getsitepackages()[0])")
printf '%s\n%s\n' "$repo/lib" "$site" > "$layered/zz_seqrisk_venv.pth"   # after the runtime's own packages
"$work/runtime/bin/python" -c "import numpy, pandas; print('runtime versions: numpy', numpy.__version__, 'pandas', pandas.__version__)"
"$work/runtime/bin/python" -m pytest -p no:cacheprovider tests/unit tests/integration/test_score.py tests/integration/test_train.py tests/integration/test_mlflow.py

# pip then reports conflicts with .venv's own packages (MLflow 3's): expected, the folder is separate.
.venv/bin/pip install "${quiet[@]}" --target "$work/mlflow2" mlflow-skinny==2.13.1 setuptools==68.0.0 sqlalchemy==2.0.30 alembic==1.13.1
PYTHONPATH="$work/mlflow2" .venv/bin/python -c "import mlflow; print('MLflow', mlflow.__version__)"
PYTHONPATH="$work/mlflow2" .venv/bin/python -m pytest tests/integration/test_mlflow.py
