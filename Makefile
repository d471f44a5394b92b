# Two commands on a fresh machine with Python 3.11:  make book   make test
# Each creates .venv from the pinned requirements.txt when it is missing or stale.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONHASHSEED := 0
# A fixed thread count keeps torch reductions (and so printed digits) identical run to run.
export OMP_NUM_THREADS := 2

NOTEBOOKS := $(shell find book -name '*.ipynb' -not -path '*/_build/*' -not -path '*/student/*' -not -path '*/.ipynb_checkpoints/*' | sort)

.PHONY: book test unit nbval book-check execute student clean help
help:
	@echo "make book     build the HTML book into _build/html (stored outputs, no execution)"
	@echo "make test     unit tests + nbval (strict) over every notebook + book build with warnings as errors"
	@echo "make execute  re-run every notebook in place and store its outputs (NB=book/x.ipynb for one)"
	@echo "make student  copies of the chapters with exercise solutions removed, in book/student/"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

book: $(STAMP)
	$(BIN)/jupyter-book build . --builder html --all
	@echo "Open _build/html/index.html"

# Warnings are errors (-W), references are checked (-n), all problems are reported at once
# (--keep-going), and every page is rebuilt (--all) so that no warning hides in a stale page.
book-check: $(STAMP)
	$(BIN)/jupyter-book build . --builder html --all -W -n --keep-going

UNIT_ARGS  := tests companion --doctest-modules
NBVAL_ARGS := --nbval $(NOTEBOOKS) --nbval-sanitize-with tests/nbval_sanitize.cfg

unit: $(STAMP)
	$(BIN)/python -m pytest $(UNIT_ARGS) -q

nbval: $(STAMP)
	$(BIN)/python -m pytest $(NBVAL_ARGS) -q

# One pytest run for both halves; the book is built first so that pytest's summary
# line closes the output.
test: $(STAMP) book-check
	$(BIN)/python -m pytest $(UNIT_ARGS) $(NBVAL_ARGS) -q

execute: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py $(or $(NB),$(NOTEBOOKS))

student: $(STAMP)
	$(BIN)/python tools/make_student.py $(NOTEBOOKS)

clean:
	rm -rf _build book/student
