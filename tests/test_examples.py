"""The example scripts run, on this backend, with one epoch instead of their full training."""

import importlib.util
import os

import pytest

pytestmark = pytest.mark.slow  # a subprocess, an example or a benchmark

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "initializers"),
    [
        ("sigmoid_depth", ["small_uniform", "glorot_normal", "sigmoid_normal"]),
        ("relu_depth", ["glorot_normal", "he_normal", "kaiming_normal"]),
        ("lsuv_depth", ["glorot_uniform", "lsuv"]),
    ],
)
def test_story_example_runs(name, initializers, capsys, tmp_path):
    plot = tmp_path / f"{name}.png"
    load(name).main(epochs=1, plot=str(plot))
    out = capsys.readouterr().out
    for initializer in initializers:
        assert f"\n{initializer} " in out, initializer
    assert plot.stat().st_size > 10_000
