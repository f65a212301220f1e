# Every target sets itself up: it creates .venv if needed and installs what it uses.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: test demo bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.core: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[test]"
	touch $@

$(VENV)/.bench: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[bench]"
	touch $@

test: $(VENV)/.test
	$(PY) -m pytest

demo: $(VENV)/.core
	$(PY) examples/quickstart.py

bench: $(VENV)/.bench
	$(PY) benchmarks/run.py
	$(PY) benchmarks/checkpointing.py
	$(PY) benchmarks/patterns.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
