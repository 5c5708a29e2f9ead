# Two commands for a newcomer (see README.md):
#   make book   set everything up, then build the book with every notebook executed into _build/html
#   make test   set everything up, then run the library's tests and the strict executed book build
#   make data   download the datasets where missing and verify them (book and test run it first)
#   make student   the student edition (solutions removed) into _student/, its HTML in _student/_build/html
#   make colab     the Colab edition (the chapters in plain Jupyter Markdown) into colab/, after a chapter changed
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The book's matrices are small (at most 2565 x 128): extra BLAS/OpenMP threads cost more than they save,
# and on a busy machine they thrash. One thread each, unless the caller says otherwise.
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: setup data book test test-lib bench student colab clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (overparam)"
	touch $(STAMP)

# Every dataset the chapters read, downloaded where missing and verified (`python -m overparam data`). The strict
# build fails on anything a cell writes to stderr, a loader's download notice included, so the data come first.
data: $(STAMP)
	$(BIN)/python -m overparam data

# The strict build: clean _build, every notebook executed, any warning or cell error fails it.
book: $(STAMP) data
	rm -rf _build
	$(BIN)/jupyter-book build --all -W -n --keep-going .

# Library tests plus the strict executed book build (tests/test_book.py).
test: $(STAMP) data
	$(BIN)/python -m pytest -ra

# Library tests only (about a minute).
test-lib: $(STAMP)
	$(BIN)/python -m pytest -ra -m "not slow"

# Wall time of the whole book build and of each chapter's execution.
bench: $(STAMP)
	$(BIN)/python scripts/bench_book.py

# The student edition: a copy of the book with solution code replaced by NotImplementedError stubs,
# solutions hidden, notebooks not executed (see instructors.md).
student: $(STAMP)
	$(BIN)/python scripts/student_edition.py

# The Colab edition: every chapter with its MyST markup written as plain Markdown, for the Colab launch button.
# A chapter change is not finished until this has run (tests/test_colab_edition.py compares colab/ with the build's).
colab: $(STAMP)
	$(BIN)/python scripts/colab_edition.py

clean:
	rm -rf _build _student
