# The README's two commands: `make demo` and `make test`. Each sets up its own
# .venv first (once; again whenever pyproject.toml or this file changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BACKENDS := tensorflow jax torch
# CPU builds of the three backends. torch is pinned so pip takes the CPU
# wheel rather than a multi-GB CUDA build; override on a machine with a GPU.
BACKEND_PACKAGES ?= tensorflow-cpu jax "torch==2.13.0"
PYTEST_ARGS ?=
# pytest-xdist workers per backend: CI has 2 cores.
PYTEST_WORKERS ?= 2
# The oldest Keras the package supports (pyproject's floor), tested on JAX by
# `make test-compat` in its own venv.
KERAS_FLOOR := $(shell sed -n 's/.*"keras>=\([0-9.]*\)".*/\1/p' pyproject.toml)
COMPAT_VENV := .venv-compat
COMPAT_STAMP := $(COMPAT_VENV)/.installed
# Quieten TensorFlow's C++ start-up logging.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-fast test-compat dist docs bench lint clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,examples,docs]" $(BACKEND_PACKAGES)
	touch $(STAMP)

# The main job: why initialization matters, shown on a deep sigmoid MLP (keras-inits compare).
demo: $(STAMP)
	KERAS_BACKEND=$${KERAS_BACKEND:-tensorflow} $(BIN)/keras-inits compare \
		--plot out/compare.png --json out/compare.json

# One pytest run per backend (on $(PYTEST_WORKERS) cores); every backend runs, and the
# target fails if any failed. $(1): extra pytest arguments.
define run_suite
	@failed=""; \
	for backend in $(BACKENDS); do \
		echo "=== KERAS_BACKEND=$$backend ==="; \
		KERAS_BACKEND=$$backend KERAS_INITS_DIST=$(CURDIR)/dist \
			$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(1) $(PYTEST_ARGS) \
			|| failed="$$failed $$backend"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED on:$$failed"; exit 1; fi; \
	echo "All backends passed: $(BACKENDS)"
endef

# Everything; the wheel test installs the wheel `make dist` built.
test: dist
	$(call run_suite,)

# The fast tier while iterating: every test not marked `slow` (subprocesses, examples,
# training, the wheel, benchmark smoke), on all three backends, in a few minutes.
# `make test` and .ci/run still run everything.
test-fast: $(STAMP)
	$(call run_suite,-m "not slow")

# The other end of the range: the whole suite on the oldest supported Keras, on
# JAX (the smallest install), in its own venv.
$(COMPAT_STAMP): pyproject.toml Makefile
	rm -rf $(COMPAT_VENV)
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install --quiet -e ".[test,docs]" "keras==$(KERAS_FLOOR)" jax
	touch $(COMPAT_STAMP)

test-compat: $(COMPAT_STAMP) dist
	@echo "=== keras $(KERAS_FLOOR), KERAS_BACKEND=jax ==="
	KERAS_BACKEND=jax KERAS_INITS_DIST=$(CURDIR)/dist \
		$(COMPAT_VENV)/bin/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# The sdist and the wheel, checked as PyPI would check them.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

# The documentation site (mkdocs.yml, docs/) into site/; --strict: any warning (a broken
# link or reference, a docstring griffe cannot read) fails. Its CLI page imports the
# package, so Keras: JAX unless KERAS_BACKEND says otherwise (the fastest to import).
docs: $(STAMP)
	KERAS_BACKEND=$${KERAS_BACKEND:-jax} NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# One process per benchmark and installed backend; prints the tables BENCHMARKS.md
# records. Slow (minutes), and never run by pytest.
bench: $(STAMP)
	@for backend in $(BACKENDS); do \
		if $(BIN)/python -c "import $$backend" 2>/dev/null; then \
			echo "=== KERAS_BACKEND=$$backend ==="; \
			KERAS_BACKEND=$$backend $(BIN)/python benchmarks/bench_sampling.py || exit 1; \
			KERAS_BACKEND=$$backend $(BIN)/python benchmarks/bench_orthogonal.py || exit 1; \
			KERAS_BACKEND=$$backend $(BIN)/python benchmarks/bench_sharded.py || exit 1; \
			KERAS_BACKEND=$$backend $(BIN)/python benchmarks/bench_structured.py || exit 1; \
			KERAS_BACKEND=$$backend $(BIN)/python benchmarks/bench_deferred.py || exit 1; \
		else \
			echo "=== $$backend is not installed: skipped ==="; \
		fi; \
	done

lint: $(STAMP)
	$(BIN)/ruff check conftest.py keras_inits keras_inits_cli.py tests examples benchmarks docs/*.py
	$(BIN)/ruff format --check conftest.py keras_inits keras_inits_cli.py tests examples benchmarks docs/*.py
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(COMPAT_VENV) out build dist site *.egg-info
