# Two commands on a fresh machine: `make demo` and `make test` (each sets up .venv first).
# `make bench` sets up its own .venv-bench (the peers pin older scikit-learn/numpy/scipy).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch is pinned first: an unpinned `torch` would pull a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.installed
BENCH_VENV ?= .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.installed
# One thread for every library in every benchmark (recorded in the results).
BENCH_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

.PHONY: setup demo test bench bench-scale clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[test,sentence]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/comorbid demo

test: setup
	$(PY) -m pytest -q -n 2

# The peers (mlrl-boomer 0.12.3, the last release for Python 3.11) pin scikit-learn<1.8,
# numpy<2.4 and scipy<1.17, so the benchmarks get a virtual environment of their own and
# `make test` keeps the newest versions.
$(BENCH_STAMP): pyproject.toml Makefile
	test -x $(BENCH_PY) || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install --quiet --upgrade pip
	$(BENCH_PY) -m pip install --quiet "$(TORCH_PIN)"
	$(BENCH_PY) -m pip install --quiet -e ".[bench]"
	touch $(BENCH_STAMP)

# Every table of benchmarks/results and the README's CMC table: 44 min wall (43:59.7, CPU 39 min) measured on the
# 2-core machine while other jobs shared it (benchmarks/README.md, "Time budget").
bench: $(BENCH_STAMP)
	$(BENCH_ENV) $(BENCH_PY) -m benchmarks.compare
	$(BENCH_ENV) $(BENCH_PY) -m benchmarks.bench_decoders
	$(BENCH_ENV) $(BENCH_PY) benchmarks/bench_losses.py --batch-size 256 --labels 50 1000 10000 --repeats 3 --threads 1

# Training time, prediction speed, peak memory and accuracy at M x N = {1,000, 5,000} codes x
# {20,000, 50,000} synthetic notes (benchmarks/README.md, "Scale"); subsets with
# `$(BENCH_PY) -m benchmarks.bench_scale --sizes 1000x20000 --methods 'sklearn*'`.
bench-scale: $(BENCH_STAMP)
	$(BENCH_ENV) NUMBA_NUM_THREADS=1 $(BENCH_PY) -m benchmarks.bench_scale

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .hypothesis build src/*.egg-info
