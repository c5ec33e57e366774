"""The keras-inits command: end to end in a fresh process, and its usage errors."""

import json
import os
import subprocess
import sys

import keras
import pytest

from keras_inits import cli
from keras_inits.diagnostics import LayerStats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["compare", "--depth", "2", "--width", "16", "--epochs", "1", "--batch-size", "128"]


def run_command(args, backend, tmp_path):
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "keras_inits", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )


def test_compare_end_to_end(tmp_path):
    backend = keras.backend.backend()
    args = [*TINY, "--init", "sigmoid_normal", "--init", "glorot_normal"]
    args += ["--json", "out/result.json", "--plot", "out/result.png"]
    completed = run_command(args, backend, tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "100%" not in completed.stdout  # the progress bar goes to stderr
    assert "2/2 epochs" in completed.stderr
    for name in ("sigmoid_normal", "glorot_normal", "After training:", "hidden_2"):
        assert name in completed.stdout, name

    with open(tmp_path / "out" / "result.json", encoding="utf-8") as file:
        document = json.load(file)
    assert set(document) == {"config", "results"}
    config = document["config"]
    assert config["backend"] == backend
    assert config["initializers"] == ["sigmoid_normal", "glorot_normal"]
    assert (config["depth"], config["width"], config["epochs"]) == (2, 16, 1)
    assert [r["initializer"] for r in document["results"]] == ["sigmoid_normal", "glorot_normal"]
    fields = {field for field in LayerStats.__dataclass_fields__}
    for result in document["results"]:
        assert set(result) == {
            "initializer",
            "train_accuracy",
            "val_accuracy",
            "final_loss",
            "loss_curve",
            "layers",
        }
        assert len(result["loss_curve"]) == 1
        assert [layer["name"] for layer in result["layers"]] == ["hidden_1", "hidden_2", "output"]
        for layer in result["layers"]:
            assert set(layer) == fields
            assert layer["grad_norm"] > 0
    with open(tmp_path / "out" / "result.png", "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"


def test_backend_flag_picks_the_backend(tmp_path):
    current = keras.backend.backend()
    other = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}[current]
    args = [*TINY, "--depth", "1", "--init", "sigmoid_normal", "--backend", other]
    completed = run_command([*args, "--json", "r.json"], current, tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"backend {other}:" in completed.stdout
    with open(tmp_path / "r.json", encoding="utf-8") as file:
        assert json.load(file)["config"]["backend"] == other


def usage_error(capsys, args):
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    assert info.value.code == 2
    return capsys.readouterr().err


def test_unknown_initializer_exits_2_with_did_you_mean(capsys):
    error = usage_error(capsys, ["compare", "--init", "sigmoid_normall"])
    assert "argument --init: Unknown initializer. Did you mean 'sigmoid_normal'?" in error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--depth", "0"], "argument --depth: `depth` must be an int >= 1. Received: depth=0"),
        (["--lr", "-0.1"], "argument --lr: `lr` must be a finite number > 0. Received: lr=-0.1"),
        (["--epochs", "0"], "argument --epochs: `epochs` must be an int >= 1. Received: epochs=0"),
        (["--width", "two"], "argument --width: `width` must be an int. Received: 'two'"),
        (["--lr", "nan"], "argument --lr: `lr` must be a finite number > 0. Received: lr=nan"),
        (
            ["--momentum", "-0.5"],
            "argument --momentum: `momentum` must be a finite number >= 0. Received: momentum=-0.5",
        ),
        (
            ["--seed", "-1"],
            "argument --seed: `seed` must be an int in [0, 2**32). Received: seed=-1",
        ),
        (["--backend", "numpy"], "argument --backend: invalid choice: 'numpy'"),
    ],
)
def test_bad_arguments_are_refused_by_the_parser(capsys, args, message):
    assert message in usage_error(capsys, ["compare", *args])


def test_unknown_activation_is_a_usage_error(capsys):
    assert "sigmoidd" in usage_error(capsys, ["compare", "--activation", "sigmoidd"])


def test_missing_scikit_learn_exits_1_naming_the_extra(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert cli.main(["compare", "--depth", "1", "--epochs", "1"]) == 1
    assert "pip install 'keras-inits[compare]'" in capsys.readouterr().err


def test_missing_matplotlib_is_reported_before_training(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setattr(cli, "_compare", lambda *_: pytest.fail("trained without matplotlib"))
    assert cli.main(["compare", "--plot", "x.png"]) == 1
    assert "pip install 'keras-inits[plot]'" in capsys.readouterr().err


def test_list_shows_ours_and_keras_names_with_formulas(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {line.split()[0]: line for line in lines if line.startswith("  ") and line.split()}
    assert "N(0, 4 / fan_in)" in by_name["sigmoid_normal"]
    assert "sqrt(2 / (fan_in + fan_out))" in by_name["glorot_normal"]
    assert "keras_inits>VarianceScaling" in by_name
    assert lines.index("Keras built-ins:") > lines.index("keras_inits:")
