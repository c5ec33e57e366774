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
# Quieten TensorFlow's C++ start-up logging.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,examples]" $(BACKEND_PACKAGES)
	touch $(STAMP)

# The main job: why initialization matters, shown on a deep sigmoid MLP (keras-inits compare).
demo: $(STAMP)
	KERAS_BACKEND=$${KERAS_BACKEND:-tensorflow} $(BIN)/keras-inits compare \
		--plot out/compare.png --json out/compare.json

# One pytest process per backend; every backend runs, and the target fails if any failed.
test: $(STAMP)
	@failed=""; \
	for backend in $(BACKENDS); do \
		echo "=== KERAS_BACKEND=$$backend ==="; \
		KERAS_BACKEND=$$backend $(BIN)/python -m pytest $(PYTEST_ARGS) || failed="$$failed $$backend"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED on:$$failed"; exit 1; fi; \
	echo "All backends passed: $(BACKENDS)"

# One process per benchmark and installed backend; prints the tables BENCHMARKS.md
# records. Slow (minutes), and never run by pytest.
bench: $(STAMP)
	@for backend in $(BACKENDS); do \
		if $(BIN)/python -c "import $$backend" 2>/dev/null; then \
			echo "=== KERAS_BACKEND=$$backend ==="; \
			KERAS_BACKEND=$$backend $(BIN)/python benchmarks/bench_sampling.py || exit 1; \
			KERAS_BACKEND=$$backend $(BIN)/python benchmarks/bench_orthogonal.py || exit 1; \
			KERAS_BACKEND=$$backend $(BIN)/python benchmarks/bench_sharded.py || exit 1; \
		else \
			echo "=== $$backend is not installed: skipped ==="; \
		fi; \
	done

lint: $(STAMP)
	$(BIN)/ruff check keras_inits tests examples benchmarks
	$(BIN)/ruff format --check keras_inits tests examples benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) out build *.egg-info
