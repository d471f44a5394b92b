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
# One thread here (the small matrices of the chapters run fastest on one, and the second
# notebook run of `make test` needs the other core); the second run uses two threads, so
# the stored outputs are checked under both thread counts.
export OMP_NUM_THREADS := 1
# No progress bars in stored or compared outputs (companion.train reads this).
export COMPANION_PROGRESS := 0

NOTEBOOKS := $(shell find book -name '*.ipynb' -not -path '*/_build/*' -not -path '*/student/*' -not -path '*/.ipynb_checkpoints/*' | sort)

.PHONY: book test unit nbval nbval-default nbval-alt book-check execute student clean help
help:
	@echo "make book     build the HTML book into _build/html (stored outputs, no execution)"
	@echo "make test     one pytest run: book build (warnings are errors) + unit tests + doctests + nbval (strict) over"
	@echo "              every notebook twice: in place with the machine's kernels, and (concurrently) each notebook"
	@echo "              alone against an installed companion under a second kernel configuration"
	@echo "make nbval    only the two nbval runs (make nbval-default, make nbval-alt for one each)"
	@echo "make execute  re-run every notebook in place and store its outputs (NB=book/x.ipynb for one)"
	@echo "make student  nbgrader metadata from the exercise markers, and the hand-outs (solutions removed) in student/"
	@echo "make portability  every notebook alone under six kernel configurations (tools/portability.py; not part"
	@echo "              of make test; about 35 min on 2 cores): table in portability.md"

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

# The second floating-point kernel configuration: torch's portable ATen kernels instead of
# AVX-512/AVX2, MKL in its reproducible "compatible" code path, NumPy's OpenBLAS forced to
# an old x86 core, and two threads instead of one. Every stored output must survive it as
# well as the machine's defaults.
ALT_KERNELS := ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE OPENBLAS_CORETYPE=Prescott \
               OMP_NUM_THREADS=2
# Each notebook alone in an empty folder, `companion` from a non-editable install, under
# ALT_KERNELS (tools/nbval_alone.py): the Colab reader's situation on another CPU.
NBVAL_ALONE := $(BIN)/python tools/nbval_alone.py $(addprefix --set ,$(ALT_KERNELS)) $(NOTEBOOKS) --

unit: $(STAMP)
	$(BIN)/python -m pytest $(UNIT_ARGS) -q

# nbval over every notebook under both kernel configurations.
nbval: nbval-default nbval-alt

nbval-default: $(STAMP)
	$(BIN)/python -m pytest $(NBVAL_ARGS) -q

nbval-alt: $(STAMP)
	$(NBVAL_ALONE) -q

# ONE pytest run: the book build with warnings as errors (a test in
# tests/test_repository.py, so _build/html is left for publishing), unit tests, doctests
# and nbval in place with the machine's kernels, while tests/conftest.py (--nbval-alone)
# runs every notebook alone under ALT_KERNELS in the background, reported as the last
# test. --nbgrader likewise runs nbgrader's real workflow over every chapter in the
# background (tools/nbgrader_workflow.py), checked by tests/test_nbgrader.py. The pytest
# summary line closes the output and covers everything.
test: $(STAMP)
	$(BIN)/python -m pytest $(UNIT_ARGS) $(NBVAL_ARGS) --nbval-alone="$(ALT_KERNELS)" --nbgrader -q

execute: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py $(or $(NB),$(NOTEBOOKS))

# The chapters' nbgrader metadata is written from their exercise markers, then the
# committed hand-outs in student/ are rewritten (tests fail if either is stale).
CHAPTERS := $(filter book/ch%,$(NOTEBOOKS))
student: $(STAMP)
	$(BIN)/python tools/coursework.py $(CHAPTERS)
	$(BIN)/python tools/make_student.py --out student $(CHAPTERS)

clean:
	rm -rf _build

# Every notebook alone (tools/nbval_alone.py) under each kernel configuration of the matrix in
# tools/portability.py (ATen capability x OpenBLAS core x MKL_CBWR x threads), two at a time;
# the table goes to portability.md. Not part of `make test`: run it whenever re-executed
# outputs are stored.
PORTABILITY_ARGS ?= --jobs 2
portability: $(STAMP)
	$(BIN)/python tools/portability.py $(PORTABILITY_ARGS) $(NOTEBOOKS)
