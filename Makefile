# Two commands do everything on a fresh clone (see README, Quick start):
#   make bench   set up .venv, then run the benchmark suite on the default devices
#   make test    set up .venv, then run the tests
# Extra pytest arguments: make bench ARGS="--grid smoke --device cpu"
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgecheck-installed

.PHONY: bench test setup clean

$(STAMP): pyproject.toml ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c ci/constraints.txt -e '.[build,test,report]'
	$(PY) -m pip check
	touch $(STAMP)

setup: $(STAMP)

bench: $(STAMP)
	$(PY) -m pytest benchmarks $(ARGS)

test: $(STAMP)
	$(PY) -m pytest tests $(ARGS)

clean:
	rm -rf $(VENV) .edgecheck
