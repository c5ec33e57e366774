"""The keras-inits command: end to end in a fresh process, and its usage errors."""

import dataclasses
import importlib.util
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


# Every command line whose answer is known without Keras: the launcher gives it
# without importing Keras, a backend or the package (which imports Keras).
LIGHT_COMMANDS = [
    ["--help"],
    ["-h"],
    ["--version"],
    ["list"],
    ["list", "--help"],
    ["compare", "--help"],
    ["reproduce", "--help"],
    ["reproduce", "--list"],
]


@pytest.mark.slow
def test_help_version_and_lists_import_no_keras():
    # One fresh interpreter runs them all; after each, nothing of Keras, a backend
    # or the package is loaded. Each one's output is the full command's (below).
    code = (
        "import contextlib, io, json, sys, keras_inits_cli\n"
        "outputs = []\n"
        f"for argv in {LIGHT_COMMANDS!r}:\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n"
        "            status = keras_inits_cli.main(argv)\n"
        "        except SystemExit as exit:\n"
        "            status = exit.code\n"
        "    loaded = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "        ('keras', 'keras_inits', 'jax', 'tensorflow', 'torch', 'numpy'))\n"
        "    outputs.append([argv, status, loaded, out.getvalue()])\n"
        "json.dump(outputs, sys.stdout)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    outputs = json.loads(completed.stdout)
    assert [argv for argv, *_ in outputs] == LIGHT_COMMANDS
    for argv, status, loaded, text in outputs:
        assert (status, loaded) == (0, []), (argv, status, loaded)
        assert text == full_command_output(argv), argv


def full_command_output(argv):
    """What ``keras_inits.cli.main`` (the package, Keras loaded) prints for ``argv``."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            assert cli.main(argv) == 0
        except SystemExit as exit:
            assert exit.code == 0
    return out.getvalue()


def test_version_reads_the_keras_version_without_importing_keras():
    from keras_inits import _cli_parser

    assert _cli_parser.version() == (
        f"keras-inits {keras_inits.__version__} (keras {keras.__version__})"
    )


def test_parser_copies_of_diagnostics_facts_are_equal():
    # _cli_parser holds copies (it must not import diagnostics, which imports Keras).
    from keras_inits import _cli_parser
    from keras_inits.diagnostics import _compare, _gallery

    assert _cli_parser.DEFAULT_INITIALIZERS == _compare.DEFAULT_INITIALIZERS
    assert _cli_parser.ARCHS == _compare.ARCHS
    assert _cli_parser.CELLS == _compare.CELLS
    titles = {name: experiment.title for name, experiment in _gallery.EXPERIMENTS.items()}
    assert _cli_parser.EXPERIMENT_TITLES == titles
    assert _cli_parser.format_experiments() == _gallery.format_experiments()


@pytest.mark.parametrize("seed", [-5, -1, 0, 1, 2**31, 2**32 - 1, 2**32, 2**40])
def test_the_api_and_the_cli_take_one_seed_range(capsys, seed):
    in_range = 0 <= seed < 2**32
    try:
        keras_inits.SigmoidNormal(seed=seed)
    except ValueError as error:
        assert not in_range, error
        assert str(error) == (
            "`seed` must be an int in [0, 2**32), a keras.random.SeedGenerator or None. "
            f"Received: seed={seed}"
        )
    else:
        assert in_range
    if in_range:
        args = cli.build_parser().parse_args(["compare", "--seed", str(seed)])
        assert args.seed == seed
    else:
        assert usage_error(capsys, ["compare", "--seed", str(seed)]).splitlines()[-1] == (
            "keras-inits compare: error: argument --seed: `seed` must be an int in "
            f"[0, 2**32). Received: seed={seed}"
        )


def test_help_says_json_and_plot_create_missing_folders(capsys):
    text = full_command_output(["compare", "--help"])
    assert "JSON, creating missing folders" in " ".join(text.split())
    assert "(.png, .pdf, .svg, ...), creating missing folders" in " ".join(text.split())


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
    block = next(b for b in blocks if "error: argument --json:" in b)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    produced = [
        usage_error(capsys, ["compare", *args]).splitlines()[-1]
        for args in (["--init", "bilinear"], ["--json", "out"])
    ]
    assert block.strip().splitlines() == produced


def compare_json(capsys, monkeypatch, tmp_path, args):
    """Runs ``compare`` in this process with ``--json -``; returns the JSON and the text."""
    monkeypatch.chdir(tmp_path)
    assert cli.main([*TINY, *args, "--json", "-"]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


@pytest.mark.slow
def test_compare_cnn_end_to_end(capsys, monkeypatch, tmp_path):
    args = ["--arch", "cnn", "--width", "4", "--init", "delta_orthogonal"]
    document, text = compare_json(capsys, monkeypatch, tmp_path, [*args, "--plot", "cnn.png"])
    assert "2 hidden sigmoid 3x3 conv layers of 4 channels" in text
    config = document["config"]
    assert (config["arch"], config["cell"], config["recurrent_init"]) == ("cnn", None, None)
    assert [r["initializer"] for r in document["results"]] == ["delta_orthogonal"]
    for result in document["results"]:
        layers = {layer["name"]: layer for layer in result["layers"]}
        assert list(layers) == ["hidden_1", "hidden_2", "output"]
        assert layers["hidden_1"]["kernel_shape"] == [3, 3, 1, 4]
        assert layers["hidden_2"]["kernel_shape"] == [3, 3, 4, 4]
        assert (layers["hidden_2"]["fan_in"], layers["hidden_2"]["fan_out"]) == (36, 36)
        assert all(layer["grad_norm"] > 0 for layer in layers.values())
    # delta_orthogonal: the centre tap of hidden_2 is an orthogonal 4x4 matrix (squares
    # summing to 4), the other 8 taps are zero: E[w^2] = 4 / 144, and |mean| <= 4 / 144.
    delta = document["results"][0]["layers"][1]["weight_std"]
    assert np.sqrt(4 / 144 - (4 / 144) ** 2) - 1e-6 <= delta <= np.sqrt(4 / 144) + 1e-6
    with open(tmp_path / "cnn.png", "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_compare_rnn_end_to_end(capsys, monkeypatch, tmp_path):
    args = ["--arch", "rnn", "--width", "8", "--recurrent-init", "block_orthogonal"]
    args += ["--init", "reinitialize"]
    document, text = compare_json(capsys, monkeypatch, tmp_path, args)
    assert "2 hidden lstm layers of 8 (tanh, recurrent init block_orthogonal)" in text
    config = document["config"]
    assert (config["arch"], config["cell"], config["activation"]) == ("rnn", "lstm", "tanh")
    assert config["recurrent_init"] == "block_orthogonal"
    assert [r["initializer"] for r in document["results"]] == ["reinitialize"]
    for result in document["results"]:
        shapes = {layer["name"]: layer["kernel_shape"] for layer in result["layers"]}
        assert shapes == {
            "rnn/hidden_1/lstm_cell/kernel": [8, 32],
            "rnn/hidden_1/lstm_cell/recurrent_kernel": [8, 32],
            "rnn/hidden_2/lstm_cell/kernel": [8, 32],
            "rnn/hidden_2/lstm_cell/recurrent_kernel": [8, 32],
            "output": [8, 10],
        }
        assert all(layer["grad_norm"] > 0 for layer in result["layers"])
        # block_orthogonal: four orthogonal 8x8 blocks, squares summing to 32 over 256
        # entries (E[w^2] = 1/8) with |mean| <= 1/8; Keras's orthogonal on (8, 32) has
        # E[w^2] = 1/32, std <= 0.18.
        for layer in result["layers"]:
            if layer["name"].endswith("recurrent_kernel"):
                assert np.sqrt(1 / 8 - 1 / 64) - 1e-6 <= layer["weight_std"] <= np.sqrt(1 / 8)
    # reinitialize re-draws glorot_uniform with an LSTM's per-gate fans: kernel (8, 4 x 8),
    # fans (8, 8) per gate, Var = 2 / 16 (Keras's own draw: 2 / 40, see test_compare.py).
    # 256 uniform draws: the std's standard error is sqrt(0.8 / 256) / 2 = 2.8%; 5 are 14%.
    redrawn = document["results"][0]["layers"][0]["weight_std"]
    assert redrawn == pytest.approx(np.sqrt(2 / 16), rel=0.14)


USER_MODULE = """
import keras
import numpy as np

def model(initializer):
    return keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(5, "relu", kernel_initializer=initializer, name="mine"),
        keras.layers.Dense(10, name="logits"),
    ])

def compiled(initializer):
    built = model(initializer)
    built.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return built

def images(initializer):
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(10, kernel_initializer=initializer)])

def one_score(initializer):
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(1)])

def not_a_model(initializer):
    return [initializer]

def data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(50, 64)).astype("float32"), rng.integers(0, 10, 50)

def labels_only():
    return np.arange(10)

NUMBER = 3
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """``user_12a_cli.py`` in the current directory (``tmp_path``), importable by name."""
    (tmp_path / "user_12a_cli.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "user_12a_cli", raising=False)
    return "user_12a_cli"


@pytest.mark.slow
def test_compare_user_model_and_data_end_to_end(capsys, monkeypatch, tmp_path, user_module):
    args = ["compare", "--epochs", "1", "--model", "./user_12a_cli.py:compiled"]
    args += ["--data", f"{user_module}:data", "--init", "he_normal+reinitialize"]
    assert cli.main([*args, "--json", "user.json"]) == 0
    text = capsys.readouterr().out
    assert "model ./user_12a_cli.py:compiled, data user_12a_cli:data" in text
    # compiled without an accuracy metric: the table shows "-", the JSON null
    row = next(line for line in text.splitlines() if line.startswith("he_normal+reinitialize  "))
    assert row.split()[-2:] == ["-", "-"]
    with open(tmp_path / "user.json", encoding="utf-8") as file:
        document = json.load(file)
    config = document["config"]
    assert (config["arch"], config["depth"], config["width"]) == ("model", None, None)
    assert config["model"] == "./user_12a_cli.py:compiled"
    assert config["data"] == "user_12a_cli:data"
    [result] = document["results"]
    assert result["initializer"] == "he_normal+reinitialize"
    assert [layer["name"] for layer in result["layers"]] == ["mine", "logits"]
    assert all(layer["grad_norm"] > 0 for layer in result["layers"])
    assert result["val_accuracy"] is None and len(result["loss_curve"]) == 1
    assert result["final_loss"] > 0


FORM = "'MODULE:FUNCTION' (a module name or a .py file path, a colon, a function name)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "user_12a_cli"],
         f"argument --model: `model` must be {FORM}. Received: model='user_12a_cli'"),
        (["--model", "no_module_12a:model"],
         "argument --model: `model` names a module that cannot be found: no module named "
         "'no_module_12a' in the current directory or on sys.path. "
         "Received: model='no_module_12a:model'"),
        (["--model", "user_12a_cli:modle"],
         "argument --model: `model` names 'modle', which 'user_12a_cli' does not define. "
         "Did you mean 'model'? Received: model='user_12a_cli:modle'"),
        (["--model", "user_12a_cli:NUMBER"],
         "argument --model: `model` must name a function; 'NUMBER' in 'user_12a_cli' is not "
         "callable (type int). Received: model='user_12a_cli:NUMBER'"),
        (["--model", "user_12a_cli:not_a_model"],
         "argument --model: `model` must return a keras.Model; it returned a list of 1. "
         "Received: model='user_12a_cli:not_a_model'"),
        (["--model", "user_12a_cli:images"],
         "argument --model: `model` must take the data: its input is (None, 8, 8, 1), but x "
         "from the digits (64 pixels each) has shape (1438, 64). "
         "Received: model='user_12a_cli:images'"),
        (["--model", "user_12a_cli:one_score"],
         "argument --model: `model` must output one score per class for the integer labels "
         "0..9 (shape (None, 10)), or come compiled with its own loss; its output is "
         "(None, 1). Received: model='user_12a_cli:one_score'"),
        (["--model", "user_12a_cli:model", "--depth", "3"],
         "argument --depth: `depth` must be left unset when `model` is given: it applies to "
         "the built-in architectures ('mlp', 'cnn', 'rnn'). Received: depth=3"),
        (["--data", "user_12a_cli:labels_only"],
         "argument --data: `data` must return (x, y) or ((x_train, y_train), (x_val, y_val)); "
         "it returned an array of shape (10,). Received: data='user_12a_cli:labels_only'"),
        (["--data", "missing_12a.py:data"],
         "argument --data: `data` names a file that does not exist: "
         "'{tmp}/missing_12a.py'. Received: data='missing_12a.py:data'"),
        (["--cell", "gru"],
         "argument --cell: `cell` applies only to arch='rnn'. Received: cell='gru' with "
         "arch='mlp'"),
        (["--arch", "rnn", "--recurrent-init", "orthogonall"],
         "argument --recurrent-init: Unknown initializer. Did you mean 'orthogonal'? "
         "keras_inits.names() lists ours, keras.initializers Keras's. "
         "Received: recurrent_init='orthogonall'"),
        (["--arch", "rnn", "--width", "8", "--recurrent-init", "bilinear"],
         "argument --recurrent-init: `recurrent_init` must fill every hidden LSTM recurrent "
         "kernel; it cannot fill hidden_1's, shape (8, 32) (ValueError: `shape` must be 4-D, "
         "(kh, kw, filters, in_channels) for Bilinear. Received: shape=(8, 32)). "
         "Received: recurrent_init='bilinear'"),
        (["--arch", "cnn", "--width", "8", "--init", "bilinear"],
         "argument --init: `init` must fill every hidden Conv2D kernel; it cannot fill "
         "hidden_1's, shape (3, 3, 1, 8) (ValueError: `shape` must have filters == "
         "in_channels (bilinear upsampling is per channel) for Bilinear. Received: "
         "shape=(3, 3, 1, 8)). Received: init='bilinear'"),
        (["--init", "he_normall+reinitialize"],
         "argument --init: Unknown initializer. Did you mean 'he_normal'? keras_inits.names() "
         "lists ours, keras.initializers Keras's. Received: init='he_normall+reinitialize'"),
    ],
)  # fmt: skip
def test_compare_usage_errors_name_the_flag(capsys, tmp_path, user_module, no_training, args,
                                            message):  # fmt: skip
    error = usage_error(capsys, ["compare", *args])
    assert "Traceback" not in error
    expected = "keras-inits compare: error: " + message.replace("{tmp}", str(tmp_path))
    assert error.splitlines()[-1] == expected


def test_readme_model_error_is_the_real_message(capsys, monkeypatch, tmp_path, no_training):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as file:
        blocks = re.findall(r"```text\n(.*?)```", file.read(), flags=re.DOTALL)
    block = next(b for b in blocks if "error: argument --model:" in b)
    (tmp_path / "my_model.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "my_model", raising=False)
    error = usage_error(capsys, ["compare", "--model", "my_model:images"])
    assert block.strip() == error.splitlines()[-1]
