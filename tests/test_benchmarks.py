"""The benchmark scripts run (tiny sizes, one round); their timings are never asserted here."""

import os
import subprocess
import sys

import keras
import pytest

pytestmark = pytest.mark.slow  # a subprocess, an example or a benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(name, *args):
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", name), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_sampling_benchmark_covers_every_registered_initializer():
    completed = run_script(
        "bench_sampling.py", "--size", "64", "--repeats", "1", "--draws", "1e4",
        "--no-memory", "--mlp-layers", "3",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    from keras_inits._registry import CLASSES

    for cls in CLASSES:
        assert f"| {cls.__name__} |" in completed.stdout or f"- {cls.__name__}:" in (
            completed.stdout
        ), cls.__name__
    assert "values beyond the bound" in completed.stdout


def test_orthogonal_benchmark_runs():
    completed = run_script("bench_orthogonal.py", "--sizes", "16", "--repeats", "1", "--breakdown")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "| LSTM: 4 blocks vs one | 16 | (16, 64) |" in completed.stdout


def test_structured_benchmark_covers_its_seven_classes():
    completed = run_script("bench_structured.py", "--size", "64", "--repeats", "1", "--no-memory")
    assert completed.returncode == 0, completed.stderr[-3000:]
    for name in (
        "BlockOrthogonal",
        "DeltaOrthogonal",
        "Sparse (sparsity 0.1)",
        "ConvIdentity",
        "HadamardIdentity (out > in)",
        "ICNR",
        "Bilinear",
    ):
        assert f"| {name} |" in completed.stdout, name
    # Sparse against torch.nn.init.sparse_, on torch only, as a ratio in the same rounds.
    beside_torch = "Sparse (sparsity 0.1): time vs torch.nn.init.sparse_" in completed.stdout
    assert beside_torch == (keras.backend.backend() == "torch")


def test_deferred_benchmark_prints_both_targets():
    completed = run_script(
        "bench_deferred.py", "--vocabulary", "64", "--width", "16", "--blocks", "2",
        "--repeats", "1", "--warmup", "0",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "| deferred build + materialize(weights=) |" in completed.stdout
    assert "| deferred build / normal build |" in completed.stdout
    assert "| (deferred build + materialize) / (normal build + load_weights) |" in completed.stdout
