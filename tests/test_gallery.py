"""keras-inits reproduce: every experiment at its quick size, its files, and the usage errors."""

import itertools
import json
import math

import keras
import numpy as np
import pytest

from keras_inits import cli
from keras_inits.diagnostics._gallery import (
    DOCUMENT_KEYS,
    EXPERIMENTS,
    check_experiment,
    plot_experiment,
    run_experiment,
)
from tests.helpers import assert_error

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _finite(values):
    return all(value is not None and math.isfinite(value) for value in values)


def _last_hidden(result):
    return [r for r in result["layers"] if r["name"].startswith("hidden_")][-1]


def _check_glorot2010(document):
    depth = document["config"]["depth"]
    for result in document["results"].values():
        # One record before training and one per `every` steps, each with every hidden layer.
        assert result["epochs_at"][0] == 0.0 and len(result["epochs_at"]) >= 2
        for row in result["activation_mean"] + result["activation_std"]:
            assert len(row) == depth
        for row in result["activation_mean"]:
            assert all(0.0 < mean < 1.0 for mean in row)  # sigmoid outputs


def _check_saxe2014(document):
    summary = document["summary"]
    best, zero = summary["least_squares_loss"], summary["zero_output_loss"]
    assert best < summary["loss_threshold"] < zero
    for result in document["results"].values():
        assert sorted({run["depth"] for run in result["runs"]}) == document["config"]["depths"]
        for run in result["runs"]:
            # No linear map (the product of the layers) beats least squares.
            assert _finite(run["loss_curve"])
            assert min(run["loss_curve"]) >= best * (1 - 1e-4)


def _check_xiao2018(document):
    depth = document["config"]["depth"]
    for result in document["results"]:
        convs = [r for r in result["layers"] if r["name"].startswith("conv_")]
        assert len(convs) == depth
        assert _finite(result["loss_curve"])
    # delta_orthogonal: an orthogonal (n, n) matrix Q at the centre tap, 0 at the other 8,
    # so E[w^2] = n / (9 n^2) = 1 / (9 n); the entries' mean is sum(Q) / (9 n^2) with
    # |sum(Q)| <= n, so std^2 >= (1 - 1 / (9 n)) / (9 n).
    n = document["config"]["width"]
    std = document["results"][0]["layers"][1]["weight_std"]
    rms = (1 / (9 * n)) ** 0.5
    assert (1 - 1 / (9 * n)) ** 0.5 * rms * (1 - 1e-5) <= std <= rms * (1 + 1e-5)


def _signal_ratio(document, strong, weak):
    results = {r["initializer"]: r for r in document["results"]}
    return _last_hidden(results[strong])["signal_std"] / _last_hidden(results[weak])["signal_std"]


def _check_compare(document):
    depth = document["config"]["depth"]
    for result in document["results"]:
        assert len(result["layers"]) == depth + 1  # the hidden layers and the output
        assert _finite(result["loss_curve"])


def _check_he2015(document):
    _check_compare(document)
    # Xavier halves a ReLU signal's second moment per layer, He keeps it: 2^(depth/2).
    assert _signal_ratio(document, "he_normal", "glorot_normal") > 4


def _check_mishkin2016(document):
    _check_compare(document)
    # LSUV sets each pre-activation variance to 1; Glorot halves it per ReLU layer.
    assert _signal_ratio(document, "lsuv", "glorot_uniform") > 3


def _check_sigmoid(document):
    _check_compare(document)
    assert _signal_ratio(document, "sigmoid_normal", "glorot_normal") > 2


def _check_zhao2022(document):
    summary = document["summary"]
    spreads = {
        label: s["initial_weights_max_difference_across_seeds"] for label, s in summary.items()
    }
    zero = next(label for label in spreads if label.startswith("ZerO"))
    assert spreads.pop(zero) == 0.0  # deterministic: the seed changes only the batch order
    assert all(spread > 0.0 for spread in spreads.values())
    for result in document["results"].values():
        assert len(result["runs"]) == document["config"]["seeds"]


def _check_zhang2019(document):
    ratios = document["results"]["variance_ratio"]
    default = next(v for label, v in ratios.items() if label.startswith("Keras default"))
    # The default's ratio grows with depth; fixup's branches start at zero: exactly 1.
    assert all(b is None or a is None or b > a for a, b in itertools.pairwise(default))
    assert all(abs(v - 1.0) < 1e-5 for v in ratios["fixup"])
    assert set(document["results"]["training"]) == set(ratios)


def _check_meng2024(document):
    summary = document["summary"]
    methods = [m for m in summary if m != "pretrained"]
    assert methods == ["keras", "peft", "gaussian", "pissa", "olora"]
    # lora leaves the outputs unchanged: every method starts from the pretrained loss.
    starts = [summary[m]["initial_loss"] for m in methods]
    assert max(starts) - min(starts) <= 1e-4 * max(starts)
    for method in methods:
        energy = summary[method]["adapter_energy_mean"]
        assert (energy > 0) == (method in ("pissa", "olora"))
        for run in document["results"][method]["runs"]:
            assert run["steps"][0] == 0 and _finite(run["train_loss"])


def _check_yang2022(document):
    config, summary = document["config"], document["summary"]
    lrs = [2.0**e for e in config["log2_lrs"]]
    base = str(config["base_width"])
    for parametrization in ("standard", "mup"):
        by_width = document["results"][parametrization]
        assert list(by_width) == [str(w) for w in config["widths"]]
        for runs in by_width.values():
            assert len(runs) == config["seeds"] and all(len(run) == len(lrs) for run in runs)
        best = summary[parametrization]["best_lr"]
        assert all(lr in lrs for lr in best.values())
        first, last = best[base], best[str(config["widths"][-1])]
        shift = summary[parametrization]["best_lr_shift_decades"]
        assert abs(shift - math.log10(last / first)) < 1e-3
        # The base width's best rate, used at the base width, gives its best loss.
        at_tuned = summary[parametrization]["loss_at_base_best_lr"][base]
        assert at_tuned == summary[parametrization]["best_loss"][base]
    # At the base width every multiplier is 1: muP trains exactly as the plain optimizer.
    standard, mup = document["results"]["standard"][base], document["results"]["mup"][base]
    for plain, planned in zip(standard[0], mup[0], strict=True):
        assert plain == pytest.approx(planned, rel=1e-6)
    assert set(summary["claim"]) == {
        "standard_shift_at_least_one_decade",
        "mup_shift_within_half_a_decade",
        "mup_wider_is_better_at_every_lr",
    }


CHECKS = {
    "glorot2010": _check_glorot2010,
    "saxe2014": _check_saxe2014,
    "xiao2018": _check_xiao2018,
    "he2015": _check_he2015,
    "mishkin2016": _check_mishkin2016,
    "zhao2022": _check_zhao2022,
    "zhang2019": _check_zhang2019,
    "meng2024": _check_meng2024,
    "yang2022": _check_yang2022,
    "sigmoid": _check_sigmoid,
}


def test_every_experiment_is_checked():
    assert set(CHECKS) == set(EXPERIMENTS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_quick_run_writes_figure_and_numbers(name, tmp_path):
    document = run_experiment(name, tmp_path / "gallery", quick=True, seed=1)
    assert tuple(document) == DOCUMENT_KEYS
    assert document["experiment"] == name
    assert (document["size"], document["seed"]) == ("quick", 1)
    assert document["backend"] == keras.backend.backend()
    assert document["command"] == f"keras-inits reproduce {name} --quick --seed 1"
    assert "https://" in document["reference"]
    with open(tmp_path / "gallery" / f"{name}.json", encoding="utf-8") as file:
        assert json.load(file) == json.loads(json.dumps(document))
    with open(tmp_path / "gallery" / f"{name}.png", "rb") as file:
        assert file.read(8) == PNG_SIGNATURE
    # The figure can be drawn again from the JSON alone.
    with open(tmp_path / "gallery" / f"{name}.json", encoding="utf-8") as file:
        again = plot_experiment(json.load(file), tmp_path / "again.png")
    with open(again, "rb") as file:
        assert file.read(8) == PNG_SIGNATURE
    CHECKS[name](document)


@pytest.mark.parametrize("wrapped", [False, True], ids=["adam", "mup_optimizer"])
def test_a_reset_optimizer_trains_as_a_fresh_one(wrapped):
    # yang2022 reuses one compiled model for every rate of a width: weights set back,
    # optimizer zeroed. That must train as a new model and optimizer would.
    from keras_inits._compat import train_on_batch
    from keras_inits.diagnostics._gallery import _classifier_loss, _lora_mlp, _reset_optimizer
    from keras_inits.model._mup_optimizer import MupOptimizer

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 64)).astype("float32")
    y = rng.integers(0, 10, 32).astype("int32")

    def compiled():
        keras.utils.set_random_seed(0)
        model = _lora_mlp(8)
        optimizer = keras.optimizers.Adam(1e-2)
        if wrapped:
            optimizer = MupOptimizer(optimizer, [1.0, 1.0, 0.5, 0.5, 0.25, 1.0])
        model.compile(optimizer=optimizer, loss=_classifier_loss())
        return model

    def train(model):
        # The step's own loss on every Keras (3.14's train_on_batch reports a running mean).
        return [float(train_on_batch(model, x, y)["loss"]) for _ in range(3)]

    fresh = train(compiled())
    reused = compiled()
    start = reused.get_weights()
    reused.optimizer.learning_rate = 0.1
    dirty = train(reused)
    reused.set_weights(start)
    _reset_optimizer(reused.optimizer, 1e-2)
    assert int(reused.optimizer.iterations) == 0
    assert train(reused) == pytest.approx(fresh, rel=1e-6)
    assert dirty != pytest.approx(fresh, rel=1e-6)  # the rate was changed, and reset


@pytest.mark.slow
def test_cli_runs_one_experiment(tmp_path, capsys):
    assert cli.main(["reproduce", "saxe2014", "--quick", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert f"backend {keras.backend.backend()}: reproduce saxe2014 (quick size, seed 0)" in out
    assert "loss_threshold" in out
    assert (tmp_path / "o" / "saxe2014.json").is_file()
    assert (tmp_path / "o" / "saxe2014.png").is_file()


def test_cli_list(capsys):
    assert cli.main(["reproduce", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["experiment", "what", "it", "shows"]
    assert [line.split()[0] for line in lines[1:]] == sorted(EXPERIMENTS)


def _usage_error(argv, capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(argv)
    assert raised.value.code == 2
    return capsys.readouterr().err.splitlines()[-1]


def test_cli_usage_errors(tmp_path, capsys):
    names = str(tuple(sorted(EXPERIMENTS)))
    prefix = "keras-inits reproduce: error: "
    assert _usage_error(["reproduce", "glorot"], capsys) == (
        f"{prefix}argument NAME: `name` must be one of {names}. Did you mean 'glorot2010'? "
        "Received: name='glorot'"
    )
    assert _usage_error(["reproduce"], capsys) == (
        f"{prefix}argument NAME: an experiment name is required (or --list to see them). "
        "Received: name=None"
    )
    assert _usage_error(["reproduce", "--list", "sigmoid"], capsys) == (
        f"{prefix}argument --list: takes no NAME. Received: name='sigmoid'"
    )
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    assert _usage_error(["reproduce", "sigmoid", "--out", str(a_file)], capsys) == (
        f"{prefix}argument --out: `out` must be a folder, not a file. Received: out='{a_file}'"
    )
    below_file = str(a_file / "sub")
    assert _usage_error(["reproduce", "sigmoid", "--out", below_file], capsys) == (
        f"{prefix}argument --out: `out` must be a path whose folders can be created; "
        f"{str(a_file)!r} is a file. Received: out={below_file!r}"
    )
    assert not (tmp_path / "sigmoid.json").exists()


def test_api_errors():
    names = tuple(sorted(EXPERIMENTS))
    assert_error(
        lambda: check_experiment("saxe"),
        ValueError,
        f"`name` must be one of {names}. Did you mean 'saxe2014'? Received: name='saxe'",
    )
    assert_error(
        lambda: plot_experiment({"experiment": "saxe"}, "x.png"),
        ValueError,
        f"`name` must be one of {names}. Did you mean 'saxe2014'? Received: name='saxe'",
    )
    assert_error(
        lambda: run_experiment(2014, quick=True),
        TypeError,
        "`name` must be an experiment name, a string. Received: name=2014",
    )
    assert_error(
        lambda: run_experiment("saxe2014", quick=True, seed=-1),
        ValueError,
        "`seed` must be an int in [0, 2**32). Received: seed=-1",
    )
