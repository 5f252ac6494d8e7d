# seqrisk: `make demo` runs the pipeline on the embedded data; `make test` runs the tests.
# Both install what they need first (`make setup`, idempotent: seconds once done).

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
WHEELS ?= $(HOME)/.cache/seqrisk/wheels
JARS ?= $(HOME)/.cache/seqrisk/jars
HOROVOD_VERSION := $(shell sed -n 's/^HOROVOD_VERSION = "\(.*\)"/\1/p' setup.py)
STAMP := $(VENV)/.setup-done
DEMO_DIR ?= demo
DEMO_SET ?=

.PHONY: setup demo lint test bench clean

setup: $(STAMP)

$(STAMP): setup.py pyproject.toml constraints.txt scripts/build_horovod.sh scripts/check_prereqs.sh scripts/fetch_jars.py scripts/jars.sha256
	@scripts/check_prereqs.sh $(PYTHON)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip==24.3.1" setuptools wheel
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[runtime,s3,dev]'
	@wheel=$$(scripts/build_horovod.sh $(PY) $(HOROVOD_VERSION) $(WHEELS)) && \
	  $(PY) -m pip install --quiet --disable-pip-version-check "$$wheel"
	@$(PY) scripts/fetch_jars.py $(JARS) 2>$(VENV)/jars.log || { cat $(VENV)/jars.log; exit 1; }
	$(PY) -c "import horovod.torch, pyspark, deltalake, petastorm, mlflow; print('setup: ok')"
	@touch $@

demo: setup
	@scripts/demo.sh $(PY) $(DEMO_DIR) $(DEMO_SET)

lint: setup
	$(VENV)/bin/ruff format --check lib tests bench jobs
	$(VENV)/bin/ruff check lib tests bench jobs
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest tests

clean:
	rm -rf $(VENV) lake $(DEMO_DIR) .pytest_cache
