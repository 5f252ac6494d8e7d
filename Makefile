# seqrisk: `make demo` runs the pipeline on the embedded data; `make test` runs the tests.
# Both install what they need first (`make setup`, idempotent: seconds once done).
# PROFILE=spark4 does the same in .venv-spark4 on the current-runtime stack (PySpark 4, delta-spark 4,
# pyarrow 15+, TorchDistributor and the Arrow reader; no Horovod, no Petastorm).

PYTHON ?= python3.11
PROFILE ?= default
ifeq ($(PROFILE),spark4)
VENV := .venv-spark4
CONSTRAINTS := constraints-spark4.txt
EXTRAS := runtime-spark4,s3,dev
JAR_SETS := delta
CHECK := import pyspark, deltalake, mlflow, torch.distributed
TESTS := tests/unit tests/integration
else ifeq ($(PROFILE),default)
VENV := .venv
CONSTRAINTS := constraints.txt
EXTRAS := runtime,s3,dev
JAR_SETS := delta s3
CHECK := import horovod.torch, pyspark, deltalake, petastorm, mlflow
TESTS := tests
else
$(error PROFILE is default or spark4, not $(PROFILE))
endif
PY := $(VENV)/bin/python
WHEELS ?= $(HOME)/.cache/seqrisk/wheels
JARS ?= $(HOME)/.cache/seqrisk/jars
HOROVOD_VERSION := $(shell sed -n 's/^HOROVOD_VERSION = "\(.*\)"/\1/p' setup.py)
STAMP := $(VENV)/.setup-done
DEMO_DIR ?= demo
DEMO_SET ?=
# pytest-xdist processes for `make test`; each test module runs whole in one of them (its fixtures once)
TEST_WORKERS ?= 2

.PHONY: setup demo lint test bench clean

setup: $(STAMP)

$(STAMP): setup.py pyproject.toml $(CONSTRAINTS) scripts/build_horovod.sh scripts/check_prereqs.sh scripts/fetch_jars.py scripts/jars.sha256
	@scripts/check_prereqs.sh $(PYTHON)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip==24.3.1" setuptools wheel
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e '.[$(EXTRAS)]'
ifeq ($(PROFILE),default)
	@wheel=$$(scripts/build_horovod.sh $(PY) $(HOROVOD_VERSION) $(WHEELS)) && \
	  $(PY) -m pip install --quiet --disable-pip-version-check "$$wheel"
endif
	@$(PY) scripts/fetch_jars.py $(JARS) $(JAR_SETS) 2>$(VENV)/jars.log || { cat $(VENV)/jars.log; exit 1; }
	$(PY) -c "$(CHECK); print('setup: ok ($(PROFILE))')"
	@touch $@

demo: setup
	@scripts/demo.sh $(PY) $(DEMO_DIR) $(DEMO_SET)

lint: setup
	$(VENV)/bin/ruff format --check lib tests bench jobs
	$(VENV)/bin/ruff check lib tests bench jobs
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(TESTS)
ifeq ($(PROFILE),spark4)
	@scripts/demo.sh $(PY) $(VENV)/demo  # one end-to-end pipeline on this profile
endif

clean:
	rm -rf .venv .venv-spark4 lake $(DEMO_DIR) .pytest_cache
