# Two commands do everything on a fresh clone (see README, Quick start):
#   make bench   set up .venv, then run the benchmark suite on the default devices
#   make test    set up .venv, then run the tests
# Extra pytest arguments: make bench ARGS="--grid smoke --device cpu"
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BENCH_STAMP := $(VENV)/.edgecheck-bench
STAMP := $(VENV)/.edgecheck-installed

.PHONY: bench test lint setup clean

# What `make bench` runs: the suite, its builds and its report. The test, farm and cluster extras (linters,
# Hypothesis, labgrid, Dask: 9 s more of a fresh install here) come with the first `make test` or `make setup`.
$(BENCH_STAMP): pyproject.toml ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c ci/constraints.txt -e '.[build,report]'
	$(PY) -m pip check
	touch $(BENCH_STAMP)

$(STAMP): $(BENCH_STAMP)
	$(PY) -m pip install --quiet -c ci/constraints.txt -e '.[build,test,report,farm,cluster]'
	$(PY) -m pip check
	touch $(STAMP)

setup: $(STAMP)

# labgrid's, Hypothesis' and xdist's pytest plugins are never used by the suite (installed by `make test`'s
# extras): loading them cost about 0.7 s of CPU at every start (README, Speed)
bench: $(BENCH_STAMP)
	$(PY) -m pytest -p no:labgrid -p no:hypothesispytest -p no:xdist benchmarks $(ARGS)

# The quick loop leaves out the tests marked integration (they train networks again, build a wheel and virtual
# environments, run a whole labgrid farm); .ci/run runs them all: make test MARKS=
MARKS ?= not integration
test: $(STAMP) lint
	$(PY) -m pytest tests -n 2 --dist loadfile -p no:labgrid -m "$(MARKS)" $(ARGS)

# ruff (style and bugs) and import-linter (imports run one way between the stages; no TensorFlow
# or matplotlib in the measuring core), both configured in pyproject.toml
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# The shared build cache (features and models, reused by every clone) is kept: it is said where.
clean:
	rm -rf $(VENV) .edgecheck
	@echo "kept the shared build cache $${EDGECHECK_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/edgecheck} (rm -rf it to rebuild every model)"
