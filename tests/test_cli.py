"""The keras-inits command: end to end in a fresh process, and its usage errors."""

import dataclasses
import importlib.util
import json
import os
import re
import subprocess
import sys

import keras
import pytest

import keras_inits
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
    fields = {field.name for field in dataclasses.fields(LayerStats)}
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


def installed_backends():
    return [name for name in cli.BACKENDS if importlib.util.find_spec(name) is not None]


def test_backend_flag_picks_the_backend(tmp_path):
    current = keras.backend.backend()
    others = [name for name in installed_backends() if name != current]
    if not others:
        pytest.skip(f"only {current} is installed: no other backend to switch to")
    other = others[0]
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


def test_unknown_activation_is_a_usage_error_naming_the_flag(capsys):
    assert (
        "keras-inits compare: error: argument --activation: Unknown activation. "
        "Did you mean 'sigmoid'? keras.activations lists Keras's; a custom one needs "
        "keras.saving.register_keras_serializable. Received: activation='sigmoidd'"
    ) in usage_error(capsys, ["compare", "--activation", "sigmoidd"])


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if the command gets as far as training."""
    monkeypatch.setattr(cli, "run_compare", lambda *_, **__: pytest.fail("trained"))


def test_json_into_a_directory_is_refused_before_training(capsys, tmp_path, no_training):
    error = usage_error(capsys, ["compare", "--json", str(tmp_path)])
    assert error.splitlines()[-1] == (
        "keras-inits compare: error: argument --json: `json` must be a file path, not a "
        f"directory. Received: json={str(tmp_path)!r}"
    )
    assert "Traceback" not in error


def test_json_under_a_file_is_refused_before_training(capsys, tmp_path, no_training):
    (tmp_path / "taken").write_text("")
    path = str(tmp_path / "taken" / "out.json")
    error = usage_error(capsys, ["compare", "--json", path])
    assert error.splitlines()[-1] == (
        "keras-inits compare: error: argument --json: `json` must be a path whose folders "
        f"can be created; {str(tmp_path / 'taken')!r} is a file. Received: json={path!r}"
    )


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write a read-only folder"
)
def test_plot_in_a_read_only_folder_is_refused_before_training(capsys, tmp_path, no_training):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        error = usage_error(capsys, ["compare", "--plot", str(folder / "out.png")])
    finally:
        folder.chmod(0o700)
    assert "argument --plot: `plot` must be a file this user can write (Permission denied)" in error
    assert not (folder / "out.png").exists()


def test_plot_format_matplotlib_cannot_write_is_refused_before_training(
    capsys, no_training, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)
    error = usage_error(capsys, ["compare", "--plot", "out.bmpx"])
    assert error.splitlines()[-1].startswith(
        "keras-inits compare: error: argument --plot: `plot` must end in an image format "
        "matplotlib writes, one of ('avif', 'eps', "
    )
    assert error.endswith("Received: plot='out.bmpx'\n")
    assert not os.path.exists("out.bmpx")


@pytest.mark.parametrize(
    ("args", "name", "layer", "reason"),
    [
        (["--init", "bilinear"], "bilinear", "hidden_1's, shape (64, 128)", "`shape` must be 4-D"),
        (
            ["--init", "glorot_normal", "--init", "delta_orthogonal", "--width", "16"],
            "delta_orthogonal",
            "hidden_1's, shape (64, 16)",
            "`shape` must have out >= in",
        ),
        (
            ["--init", "icnr", "--width", "66", "--depth", "2"],
            "icnr",
            "hidden_1's, shape (64, 66)",
            "`shape` must have a last axis (out) divisible by scale**2 = 4",
        ),
    ],
)
def test_initializer_that_cannot_fill_a_dense_kernel_is_refused_before_training(
    capsys, no_training, args, name, layer, reason
):
    error = usage_error(capsys, ["compare", *args]).splitlines()[-1]
    prefix = (
        "keras-inits compare: error: argument --init: `init` must fill every hidden Dense "
        f"kernel; it cannot fill {layer} (ValueError: {reason}"
    )
    assert error.startswith(prefix), error
    assert error.endswith(f"Received: init={name!r}"), error


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == (
        f"keras-inits {keras_inits.__version__} (keras {keras.__version__})\n"
    )


def test_json_dash_writes_only_json_to_stdout(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    args = ["compare", "--depth", "1", "--width", "8", "--epochs", "1", "--batch-size", "256"]
    assert cli.main([*args, "--init", "sigmoid_normal", "--json", "-"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # stdout is exactly one JSON document
    assert document["config"]["initializers"] == ["sigmoid_normal"]
    assert len(document["results"][0]["loss_curve"]) == 1
    assert "After training:" in captured.err and "hidden_1" in captured.err
    assert not os.path.exists("-")


def test_a_failure_while_running_is_one_line_exit_1(capsys, monkeypatch):
    def broken(*_, **__):
        raise RuntimeError("the backend ran out of memory")

    monkeypatch.setattr(cli, "run_compare", broken)
    assert cli.main(["compare", "--depth", "1", "--init", "he_normal"]) == 1
    error = capsys.readouterr().err
    assert error.endswith("keras-inits: error: RuntimeError: the backend ran out of memory\n")
    assert "Traceback" not in error


def test_missing_scikit_learn_exits_1_naming_the_extra(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert cli.main(["compare", "--depth", "1", "--epochs", "1"]) == 1
    assert "pip install 'keras-inits[compare]'" in capsys.readouterr().err


def test_missing_matplotlib_is_reported_before_training(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setattr(cli, "_compare", lambda *_: pytest.fail("trained without matplotlib"))
    assert cli.main(["compare", "--plot", "x.png"]) == 1
    assert "pip install 'keras-inits[plot]'" in capsys.readouterr().err


def test_list_imports_no_keras_and_needs_no_docstrings():
    # -OO strips docstrings: the catalogue must not come from them. The launcher
    # must answer `list` without importing Keras (and so a backend) at all.
    code = (
        "import sys, keras_inits_cli\n"
        "status = keras_inits_cli.main(['list'])\n"
        "assert status == 0, status\n"
        "assert 'keras' not in sys.modules and 'keras_inits' not in sys.modules, 'imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    completed = subprocess.run(
        [sys.executable, "-OO", "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    by_name = {line.split()[0]: line for line in lines if line.startswith("  ") and line.split()}
    assert "N(0, 4 / fan_in)" in by_name["sigmoid_normal"]
    assert "sqrt(2 / (fan_in + fan_out))" in by_name["glorot_normal"]
    from keras_inits._catalogue import format_catalogue

    assert completed.stdout == format_catalogue() + "\n"  # the same as the full command's


def test_list_shows_ours_and_keras_names_with_formulas(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {line.split()[0]: line for line in lines if line.startswith("  ") and line.split()}
    assert "N(0, 4 / fan_in)" in by_name["sigmoid_normal"]
    assert "sqrt(2 / (fan_in + fan_out))" in by_name["glorot_normal"]
    assert "keras_inits>VarianceScaling" in by_name
    assert lines.index("Keras built-ins:") > lines.index("keras_inits:")


def test_readme_cli_errors_are_the_real_messages(capsys, monkeypatch, tmp_path, no_training):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as file:
        blocks = re.findall(r"```text\n(.*?)```", file.read(), flags=re.DOTALL)
    block = next(b for b in blocks if b.startswith("keras-inits compare: error:"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    produced = [
        usage_error(capsys, ["compare", *args]).splitlines()[-1]
        for args in (["--init", "bilinear"], ["--json", "out"])
    ]
    assert block.strip().splitlines() == produced
