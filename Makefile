# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-installed lint docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	# the CPU build of torch first: a plain `torch` requirement would pull several GB of CUDA
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/swci demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# the suite against `pip install .` (not editable), from a copy of the tree without the package
# sources; the editable install is put back afterwards (tests/installed.sh)
test-installed: $(STAMP)
	bash tests/installed.sh

lint: $(STAMP)
	$(BIN)/ruff check .

# the benchmarks of docs/benchmarks.md (about 20 minutes on 2 cores; Flower is a bench extra)
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/run_all.py

docs: $(STAMP)
	$(BIN)/python -m swci.reference > docs/swci-reference.md

clean:
	rm -rf $(VENV) build *.egg-info
