"""The gallery behind ``keras-inits reproduce``: one experiment per paper, on the digits.

Each experiment checks one paper's claim on scikit-learn's bundled 8x8
digits (``load_digits``, no download), seeded, and writes two files into a
folder: ``NAME.json`` (the numbers) and ``NAME.png`` (the figure). Two
sizes: ``quick`` runs in seconds (the test suite runs every experiment that
way), the full size in minutes on two CPU cores; only the full size is
meant to be read as evidence. The pages under ``docs/gallery/`` report the
full runs and say, for each paper, whether its claim held here.

Training goes through ``train_on_batch`` on minibatches drawn in an order
fixed by the seed (NumPy), so a seed gives the same batches on every
backend; weights are drawn after ``keras.utils.set_random_seed(seed)``.
This module needs scikit-learn (the data) and matplotlib (the figure), both
imported only when an experiment runs; it never changes global state beyond
Keras's random seed.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from keras_inits._compat import train_on_batch
from keras_inits._extras import import_optional
from keras_inits._registry import get
from keras_inits._validation import check_seed_range, did_you_mean
from keras_inits.diagnostics._compare import (
    CompareConfig,
    RunResult,
    load_digits,
    run_compare,
)
from keras_inits.diagnostics._stats import finite_or_none, format_table, layer_stats
from keras_inits.model._lora import Method, lora
from keras_inits.model._mup import mup

__all__ = [
    "DOCUMENT_KEYS",
    "EXPERIMENTS",
    "Experiment",
    "check_experiment",
    "check_extras",
    "format_experiments",
    "plot_experiment",
    "run_experiment",
]

# The keys of every NAME.json, in this order.
DOCUMENT_KEYS = (
    "experiment",
    "title",
    "claim",
    "reference",
    "command",
    "size",
    "seed",
    "backend",
    "keras",
    "wall_s",
    "config",
    "results",
    "summary",
)

Outcome = dict[str, Any]  # {"config": ..., "results": ..., "summary": ...}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One paper's claim, and how to check it on the digits.

    Attributes:
        name: The name ``keras-inits reproduce`` takes.
        title: One line: the paper and what is shown.
        claim: The paper's claim that the experiment checks, in one paragraph.
        reference: Authors, year, title and link.
        run: ``run(quick, seed)`` trains and returns ``{"config", "results",
            "summary"}`` (JSON-ready).
        plot: ``plot(document, figure)`` draws the document on a matplotlib Figure.
    """

    name: str
    title: str
    claim: str
    reference: str
    run: Callable[[bool, int], Outcome]
    plot: Callable[[dict[str, Any], Any], None]


# ---------------------------------------------------------------- shared pieces


def _digits(
    seed: int, size: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits split by ``seed``; the first ``size["train_samples"]`` training images if set.

    The quick sizes train on 512 images, a multiple of their batch sizes: every
    batch has one shape, so a compiling backend traces the step once.
    """
    (x_train, y_train), (x_val, y_val) = load_digits(seed)
    if size.get("train_samples"):
        x_train, y_train = x_train[: size["train_samples"]], y_train[: size["train_samples"]]
    return x_train, y_train, x_val, y_val


def _train(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    batch_size: int,
    seed: int,
    every: int | None = None,
    on_record: Callable[[int], None] | None = None,
    stop: Callable[[int], bool] | None = None,
) -> list[float]:
    """Minibatch training in a seeded order; returns each epoch's mean batch loss.

    ``on_record(step)`` is called before the first step and after every
    ``every`` steps; ``stop(epoch)`` after each epoch ends training when true.
    A non-finite loss ends training too (the curve ends with it).
    """
    rng = np.random.default_rng(seed)
    curve: list[float] = []
    step = 0
    if on_record is not None:
        on_record(0)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            logs = train_on_batch(model, x[batch], y[batch])
            losses.append(float(logs["loss"]))
            step += 1
            if on_record is not None and every and step % every == 0:
                on_record(step)
        curve.append(float(np.mean(losses)))
        if not math.isfinite(curve[-1]) or (stop is not None and stop(epoch)):
            break
    return curve


def _accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    logits = keras.ops.convert_to_numpy(model(x, training=False))  # no predict compile
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def _classifier_loss() -> keras.losses.Loss:
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _compare_outcome(config: CompareConfig, results: Sequence[RunResult]) -> Outcome:
    return {
        "config": config.to_dict(),
        "results": [result.to_dict() for result in results],
        "summary": {
            result.label: {
                "first_epoch_loss": finite_or_none(result.loss_curve[0]),
                "final_loss": finite_or_none(result.final_loss),
                "val_accuracy": result.val_accuracy,
                "first_layer_grad_norm": finite_or_none(result.layers[0].grad_norm),
            }
            for result in results
        },
    }


def _plot_compare(document: dict[str, Any], figure: Any) -> None:
    """The four panels of ``plot_stats`` (signal, saturation, gradient, loss) from JSON."""
    axes = figure.subplots(2, 2).ravel()
    for result in document["results"]:
        label = _label(result["initializer"])
        layers = result["layers"]
        depth = list(range(1, len(layers) + 1))
        axes[0].plot(depth, [_nan(r["signal_std"]) for r in layers], marker=".", label=label)
        axes[1].plot(depth, [_nan(r["saturation"]) for r in layers], marker=".", label=label)
        axes[2].plot(depth, [_nan(r["grad_norm"]) for r in layers], marker=".", label=label)
        curve = [_nan(v) for v in result["loss_curve"]]
        axes[3].plot(range(1, len(curve) + 1), curve, marker=".", label=label)
    _axes(axes[0], "signal std at init, by layer", "layer", "std across inputs", log=True)
    _axes(axes[1], "saturated outputs at init", "layer", "fraction")
    _axes(axes[2], "|d loss / d kernel| at init", "layer", "gradient norm", log=True)
    _axes(axes[3], "training loss", "epoch", "mean batch loss", log=True)
    axes[3].legend(fontsize="small")


def _label(initializer: Any) -> str:
    return initializer if isinstance(initializer, str) else str(initializer.get("class_name"))


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _axes(axis: Any, title: str, xlabel: str, ylabel: str, log: bool = False) -> None:
    axis.set_title(title, fontsize="medium")
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    if log:
        values = [y for line in axis.get_lines() for y in line.get_ydata()]
        if any(math.isfinite(v) and v > 0 for v in values):
            axis.set_yscale("log")


def _sizes(quick: bool, quick_size: dict[str, Any], full_size: dict[str, Any]) -> dict[str, Any]:
    return dict(quick_size if quick else full_size)


# ---------------------------------------------------------------- glorot2010

# Glorot & Bengio's "standard" init: U(-1/sqrt(n), 1/sqrt(n)), n = fan_in,
# i.e. variance 1 / (3 n): VarianceScaling with scale 1/3, uniform.
_STANDARD = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_in", "distribution": "uniform"},
}
_GLOROT_INITS = (
    ("standard U(+-1/sqrt(n))", _STANDARD),
    ("normalized (glorot_uniform)", "glorot_uniform"),
)


def _glorot2010(quick: bool, seed: int) -> Outcome:
    size = _sizes(
        quick,
        {
            "depth": 4,
            "width": 16,
            "epochs": 1,
            "batch_size": 64,
            "lr": 0.1,
            "records_per_epoch": 2,
            "train_samples": 512,
        },
        {
            "depth": 4,
            "width": 256,
            "epochs": 30,
            "batch_size": 10,
            "lr": 0.1,
            "records_per_epoch": 4,
        },
    )
    x, y, x_val, y_val = _digits(seed, size)
    probe_x = x_val[:300]  # fixed examples the activations are measured on
    steps_per_epoch = math.ceil(len(x) / size["batch_size"])
    every = max(1, steps_per_epoch // size["records_per_epoch"])
    results: dict[str, dict[str, Any]] = {}
    for label, initializer in _GLOROT_INITS:
        keras.utils.set_random_seed(seed)
        layers: list[Any] = [keras.Input((x.shape[1],))]
        for index in range(1, size["depth"] + 1):
            layers.append(
                keras.layers.Dense(
                    size["width"],
                    "sigmoid",
                    kernel_initializer=get(initializer),
                    name=f"hidden_{index}",
                )
            )
        layers.append(keras.layers.Dense(10, kernel_initializer=get(initializer), name="output"))
        model = keras.Sequential(layers)
        model.compile(optimizer=keras.optimizers.SGD(size["lr"]), loss=_classifier_loss())
        probe = keras.Model(model.inputs, [layer.output for layer in model.layers[:-1]])
        epochs_at: list[float] = []
        means: list[list[float]] = []
        stds: list[list[float]] = []
        saturated: list[list[float]] = []

        def record(
            step: int,
            probe: Any = probe,
            epochs_at: list[float] = epochs_at,
            means: list[list[float]] = means,
            stds: list[list[float]] = stds,
            saturated: list[list[float]] = saturated,
        ) -> None:
            outputs = [np.asarray(keras.ops.convert_to_numpy(o)) for o in probe([probe_x])]
            epochs_at.append(step / steps_per_epoch)
            means.append([float(o.mean()) for o in outputs])
            stds.append([float(o.std()) for o in outputs])
            saturated.append([float(np.mean((o < 0.02) | (o > 0.98))) for o in outputs])

        curve = _train(model, x, y, size["epochs"], size["batch_size"], seed, every, record)
        results[label] = {
            "initializer": initializer,
            "epochs_at": epochs_at,
            "activation_mean": means,  # [record][layer]
            "activation_std": stds,
            "saturated": saturated,
            "loss_curve": [finite_or_none(v) for v in curve],
            "val_accuracy": _accuracy(model, x_val, y_val),
        }
    summary: dict[str, Any] = {}
    for label, result in results.items():
        top = [row[-1] for row in result["activation_mean"]]
        lowest = int(np.argmin(top))
        summary[label] = {
            "top_layer_mean_at_init": top[0],
            "top_layer_mean_lowest": top[lowest],
            "top_layer_mean_lowest_at_epoch": result["epochs_at"][lowest],
            "top_layer_mean_final": top[-1],
            "top_layer_saturated_max": max(row[-1] for row in result["saturated"]),
            "val_accuracy": result["val_accuracy"],
        }
    return {"config": size, "results": results, "summary": summary}


def _plot_glorot2010(document: dict[str, Any], figure: Any) -> None:
    results = document["results"]
    axes = figure.subplots(1, len(results) + 1)
    for axis, (label, result) in zip(axes, results.items(), strict=False):
        at = np.asarray(result["epochs_at"])
        means = np.asarray(result["activation_mean"])
        stds = np.asarray(result["activation_std"])
        for layer in range(means.shape[1]):
            line = axis.plot(at, means[:, layer], label=f"layer {layer + 1}")[0]
            axis.fill_between(
                at,
                means[:, layer] - stds[:, layer],
                means[:, layer] + stds[:, layer],
                color=line.get_color(),
                alpha=0.15,
            )
        _axes(axis, label, "epoch", "sigmoid output: mean +- std")
        axis.set_ylim(-0.05, 1.05)
        axis.legend(fontsize="small")
    for label, result in results.items():
        curve = [_nan(v) for v in result["loss_curve"]]
        axes[-1].plot(range(1, len(curve) + 1), curve, marker=".", label=label)
    _axes(axes[-1], "training loss", "epoch", "mean batch loss", log=True)
    axes[-1].legend(fontsize="small")


# ---------------------------------------------------------------- saxe2014

_SAXE_INITS = (
    ("orthogonal", "orthogonal"),
    (
        "scaled Gaussian N(0, 1/N)",
        {
            "class_name": "VarianceScaling",
            "config": {"scale": 1.0, "mode": "fan_in", "distribution": "untruncated_normal"},
        },
    ),
)


def _saxe2014(quick: bool, seed: int) -> Outcome:
    size = _sizes(
        quick,
        {
            "depths": [1, 3],
            "width": 64,
            "max_epochs": 2,
            "batch_size": 128,
            "lr_times_depth": 0.1,
            "seeds": 1,
            "train_samples": 512,
        },
        {
            "depths": [1, 2, 4, 8, 16, 32],
            "width": 64,
            "max_epochs": 50,
            "batch_size": 32,
            "lr_times_depth": 0.1,
            "seeds": 2,
        },
    )
    x, y, _, _ = _digits(seed, size)
    targets = np.eye(10, dtype="float32")[y]
    # The best any linear map (no bias, as the networks) can do, and doing nothing.
    weights = np.linalg.lstsq(x, targets, rcond=None)[0]
    best = float(np.mean((x @ weights - targets) ** 2))
    zero = float(np.mean(targets**2))
    threshold = best + 0.25 * (zero - best)
    results: dict[str, Any] = {}
    for label, initializer in _SAXE_INITS:
        rows: list[dict[str, Any]] = []
        for depth in size["depths"]:
            for offset in range(size["seeds"]):
                run_seed = seed + offset
                keras.utils.set_random_seed(run_seed)
                layers: list[Any] = [keras.Input((x.shape[1],))]
                for _ in range(depth - 1):
                    layers.append(
                        keras.layers.Dense(
                            size["width"], use_bias=False, kernel_initializer=get(initializer)
                        )
                    )
                layers.append(
                    keras.layers.Dense(10, use_bias=False, kernel_initializer=get(initializer))
                )
                model = keras.Sequential(layers)
                lr = size["lr_times_depth"] / depth
                model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
                losses: list[float] = []

                def full_loss(epoch: int, model: Any = model, losses: Any = losses) -> bool:
                    out = np.asarray(keras.ops.convert_to_numpy(model(x)))
                    losses.append(float(np.mean((out - targets) ** 2)))
                    return losses[-1] <= threshold

                initial = np.asarray(keras.ops.convert_to_numpy(model(x)))
                initial_loss = float(np.mean((initial - targets) ** 2))
                _train(
                    model,
                    x,
                    targets,
                    size["max_epochs"],
                    size["batch_size"],
                    run_seed,
                    stop=full_loss,
                )
                reached = next((i + 1 for i, v in enumerate(losses) if v <= threshold), None)
                rows.append(
                    {
                        "depth": depth,
                        "seed": run_seed,
                        "lr": lr,
                        "initial_loss": finite_or_none(initial_loss),
                        "loss_curve": [finite_or_none(v) for v in losses],
                        "epochs_to_threshold": reached,
                    }
                )
        results[label] = {"initializer": initializer, "runs": rows}
    summary: dict[str, Any] = {
        "loss_threshold": threshold,
        "least_squares_loss": best,
        "zero_output_loss": zero,
    }
    for label, result in results.items():
        by_depth: dict[str, Any] = {}
        for depth in size["depths"]:
            epochs = [r["epochs_to_threshold"] for r in result["runs"] if r["depth"] == depth]
            done = [v for v in epochs if v is not None]
            by_depth[str(depth)] = {
                "median_epochs": float(np.median(done)) if len(done) == len(epochs) else None,
                "reached": f"{len(done)}/{len(epochs)}",
            }
        summary[label] = by_depth
    return {"config": size, "results": results, "summary": summary}


def _plot_saxe2014(document: dict[str, Any], figure: Any) -> None:
    axes = figure.subplots(1, 2)
    depths = document["config"]["depths"]
    cap = document["config"]["max_epochs"]
    for label, result in document["results"].items():
        medians, lows, highs = [], [], []
        for depth in depths:
            reached = [r["epochs_to_threshold"] for r in result["runs"] if r["depth"] == depth]
            values = [cap + 1 if v is None else v for v in reached]
            medians.append(np.median(values))
            lows.append(min(values))
            highs.append(max(values))
        line = axes[0].plot(depths, medians, marker="o", label=label)[0]
        axes[0].fill_between(depths, lows, highs, color=line.get_color(), alpha=0.2)
        deepest = next(r for r in result["runs"] if r["depth"] == depths[-1])
        curve = [_nan(v) for v in deepest["loss_curve"]]
        axes[1].plot(range(1, len(curve) + 1), curve, label=f"{label}, depth {depths[-1]}")
    axes[0].axhline(cap + 1, color="grey", linestyle=":", label=f"not reached in {cap}")
    _axes(
        axes[0],
        "epochs to reach the loss threshold",
        "depth (weight layers)",
        "epochs (median, range)",
    )
    axes[0].set_xscale("log", base=2)
    axes[0].legend(fontsize="small")
    axes[1].axhline(
        document["summary"]["loss_threshold"], color="grey", linestyle=":", label="threshold"
    )
    _axes(axes[1], "full-data loss, deepest net, first seed", "epoch", "MSE", log=True)
    axes[1].legend(fontsize="small")


# ---------------------------------------------------------------- xiao2018

_XIAO_INITS = ("delta_orthogonal", "glorot_normal", "he_normal")


def _xiao2018(quick: bool, seed: int) -> Outcome:
    size = _sizes(
        quick,
        {
            "depth": 4,
            "width": 4,
            "epochs": 1,
            "batch_size": 128,
            "lr": 0.01,
            "momentum": 0.9,
            "train_samples": 512,
            "initializers": ["delta_orthogonal", "he_normal"],
        },
        {"depth": 48, "width": 8, "epochs": 8, "batch_size": 64, "lr": 0.01, "momentum": 0.9},
    )
    x, y, x_val, y_val = _digits(seed, size)
    x, x_val = x.reshape(-1, 8, 8, 1), x_val.reshape(-1, 8, 8, 1)
    results: list[dict[str, Any]] = []
    for initializer in size.get("initializers", _XIAO_INITS):
        keras.utils.set_random_seed(seed)
        layers: list[Any] = [keras.Input((8, 8, 1))]
        for index in range(1, size["depth"] + 1):
            layers.append(
                keras.layers.Conv2D(
                    size["width"],
                    3,
                    padding="same",
                    activation="tanh",
                    kernel_initializer=get(initializer),
                    name=f"conv_{index}",
                )
            )
        layers.append(keras.layers.GlobalAveragePooling2D())
        layers.append(
            keras.layers.Dense(
                10, kernel_initializer=keras.initializers.GlorotUniform(seed), name="output"
            )
        )
        model = keras.Sequential(layers)
        stats = layer_stats(model, x[:512], y[:512], loss=_classifier_loss())
        model.compile(
            optimizer=keras.optimizers.SGD(size["lr"], momentum=size["momentum"]),
            loss=_classifier_loss(),
        )
        curve = _train(model, x, y, size["epochs"], size["batch_size"], seed)
        results.append(
            {
                "initializer": initializer,
                "loss_curve": [finite_or_none(v) for v in curve],
                "train_accuracy": _accuracy(model, x, y),
                "val_accuracy": _accuracy(model, x_val, y_val),
                "layers": [record.to_dict() for record in stats],
            }
        )
    summary = {
        r["initializer"]: {
            "first_epoch_loss": r["loss_curve"][0],
            "final_loss": r["loss_curve"][-1],
            "val_accuracy": r["val_accuracy"],
            "first_layer_grad_norm": r["layers"][0]["grad_norm"],
        }
        for r in results
    }
    return {"config": size, "results": results, "summary": summary}


# ---------------------------------------------------------------- he2015, mishkin2016, sigmoid


def _he2015(quick: bool, seed: int) -> Outcome:
    size = _sizes(
        quick, {"depth": 8, "width": 16, "epochs": 1}, {"depth": 30, "width": 64, "epochs": 10}
    )
    full = ("glorot_normal", "xavier_normal", "he_normal", "kaiming_normal")
    config = CompareConfig(
        initializers=("glorot_normal", "he_normal") if quick else full,
        activation="relu",
        lr=0.01,
        seed=seed,
        **size,
    )
    return _compare_outcome(config, run_compare(config))


def _mishkin2016(quick: bool, seed: int) -> Outcome:
    size = _sizes(
        quick, {"depth": 6, "width": 16, "epochs": 1}, {"depth": 30, "width": 32, "epochs": 10}
    )
    full = ("glorot_uniform", "orthogonal", "lsuv")
    config = CompareConfig(
        initializers=("glorot_uniform", "lsuv") if quick else full,
        activation="relu",
        lr=0.01,
        seed=seed,
        **size,
    )
    return _compare_outcome(config, run_compare(config))


def _sigmoid(quick: bool, seed: int) -> Outcome:
    size = _sizes(quick, {"width": 16, "epochs": 1}, {"width": 128, "epochs": 20})
    quick_inits = ("glorot_normal", "sigmoid_normal")
    # Full size: today's `keras-inits compare` defaults.
    if quick:
        size["initializers"] = quick_inits
    config = CompareConfig(seed=seed, **size)
    return _compare_outcome(config, run_compare(config))


# ---------------------------------------------------------------- zhao2022

# label -> (stem and branch-first kernels, branch-last kernels, output kernel); None: a
# seeded GlorotUniform output, as build_mlp's.
_ZHAO_SCHEMES: dict[str, tuple[str, str, str | None]] = {
    "ZerO (hadamard_identity, branch ends zero)": (
        "hadamard_identity",
        "zeros",
        "hadamard_identity",
    ),
    "random (he_normal)": ("he_normal", "he_normal", None),
    "random, branch ends zero (he_normal, zeros)": ("he_normal", "zeros", None),
}


def _residual_mlp(
    width: int, blocks: int, scheme: tuple[str, str, str | None], seed: int
) -> keras.Model:
    """A stem Dense, ``blocks`` blocks x + W2 relu(W1 x), then a linear output."""
    stem, last, output = scheme
    first = stem
    inputs = keras.Input((64,))
    h = keras.layers.Dense(width, "relu", kernel_initializer=get(stem), name="stem")(inputs)
    for index in range(1, blocks + 1):
        branch = keras.layers.Dense(
            width, "relu", kernel_initializer=get(first), name=f"block_{index}_a"
        )(h)
        branch = keras.layers.Dense(width, kernel_initializer=get(last), name=f"block_{index}_b")(
            branch
        )
        h = keras.layers.Add(name=f"block_{index}_add")([h, branch])
    head = keras.initializers.GlorotUniform(seed) if output is None else get(output)
    outputs = keras.layers.Dense(10, kernel_initializer=head, name="output")(h)
    return keras.Model(inputs, outputs)


def _zhao2022(quick: bool, seed: int) -> Outcome:
    size = _sizes(
        quick,
        {
            "width": 16,
            "blocks": 1,
            "epochs": 1,
            "batch_size": 128,
            "lr": 0.01,
            "momentum": 0.9,
            "seeds": 2,
            "train_samples": 512,
        },
        {
            "width": 128,
            "blocks": 8,
            "epochs": 20,
            "batch_size": 64,
            "lr": 0.01,
            "momentum": 0.9,
            "seeds": 3,
        },
    )
    x, y, x_val, y_val = _digits(seed, size)
    results: dict[str, Any] = {}
    initial: dict[str, list[list[np.ndarray]]] = {}
    for label, scheme in _ZHAO_SCHEMES.items():
        runs = []
        for offset in range(size["seeds"]):
            run_seed = seed + offset
            keras.utils.set_random_seed(run_seed)
            model = _residual_mlp(size["width"], size["blocks"], scheme, run_seed)
            initial.setdefault(label, []).append([np.array(w) for w in model.get_weights()])
            model.compile(
                optimizer=keras.optimizers.SGD(size["lr"], momentum=size["momentum"]),
                loss=_classifier_loss(),
            )
            curve = _train(model, x, y, size["epochs"], size["batch_size"], run_seed)
            runs.append(
                {
                    "seed": run_seed,
                    "loss_curve": [finite_or_none(v) for v in curve],
                    "train_accuracy": _accuracy(model, x, y),
                    "val_accuracy": _accuracy(model, x_val, y_val),
                }
            )
        results[label] = {"runs": runs}
    summary: dict[str, Any] = {}
    for label, result in results.items():
        weights = initial[label]
        spread = (
            max(
                float(np.max(np.abs(a - b))) if a.size else 0.0
                for other in weights[1:]
                for a, b in zip(weights[0], other, strict=True)
            )
            if len(weights) > 1
            else 0.0
        )
        finals = [r["loss_curve"][-1] for r in result["runs"]]
        accuracies = [r["val_accuracy"] for r in result["runs"]]
        summary[label] = {
            "initial_weights_max_difference_across_seeds": spread,
            "final_loss_mean": finite_or_none(float(np.mean([_nan(v) for v in finals]))),
            "val_accuracy_mean": float(np.mean(accuracies)),
            "val_accuracy_min": float(np.min(accuracies)),
            "val_accuracy_max": float(np.max(accuracies)),
        }
    return {"config": size, "results": results, "summary": summary}


def _plot_zhao2022(document: dict[str, Any], figure: Any) -> None:
    axes = figure.subplots(1, 2)
    labels = list(document["results"])
    for position, label in enumerate(labels):
        color = f"C{position}"
        runs = document["results"][label]["runs"]
        for index, run in enumerate(runs):
            curve = [_nan(v) for v in run["loss_curve"]]
            axes[0].plot(
                range(1, len(curve) + 1),
                curve,
                color=color,
                alpha=0.8,
                label=label if index == 0 else None,
            )
        accuracies = [run["val_accuracy"] for run in runs]
        axes[1].scatter([position] * len(accuracies), accuracies, color=color)
    _axes(axes[0], "training loss, one line per seed", "epoch", "mean batch loss", log=True)
    axes[0].legend(fontsize="small")
    axes[1].set_xticks(range(len(labels)), [label.split(" (")[0] for label in labels])
    axes[1].set_xlim(-0.5, len(labels) - 0.5)
    _axes(axes[1], "validation accuracy, one dot per seed", "", "accuracy")


# ---------------------------------------------------------------- zhang2019

# label -> the residual scheme (None: Keras's default glorot_uniform, as built).
_ZHANG_SCHEMES: dict[str, str | None] = {
    "Keras default (glorot_uniform)": None,
    "fixup": "fixup",
    "gpt2 (1/sqrt(L))": "gpt2",
}


def _plain_residual_mlp(blocks: int, seed: int) -> keras.Model:
    """64 -> ``blocks`` blocks x + W2 relu(W1 x) of width 64 -> a linear output; no norm."""
    inputs = keras.Input((64,))
    h = inputs
    for index in range(1, blocks + 1):
        branch = keras.layers.Dense(64, "relu", name=f"block_{index}_a")(h)
        branch = keras.layers.Dense(64, name=f"block_{index}_b")(branch)
        h = keras.layers.Add(name=f"block_{index}_add")([h, branch])
    head = keras.initializers.GlorotUniform(seed)
    outputs = keras.layers.Dense(10, kernel_initializer=head, name="output")(h)
    return keras.Model(inputs, outputs)


def _zhang2019(quick: bool, seed: int) -> Outcome:
    from keras_inits.model._residual import residual

    size = _sizes(
        quick,
        {
            "depths": [2, 4],
            "train_blocks": 4,
            "epochs": 1,
            "batch_size": 128,
            "lr": 0.1,
            "train_samples": 512,
        },
        {
            "depths": [8, 16, 32, 64, 128],
            "train_blocks": 64,
            "epochs": 10,
            "batch_size": 64,
            "lr": 0.05,
        },
    )
    x, y, x_val, y_val = _digits(seed, size)
    variance: dict[str, list[float | None]] = {label: [] for label in _ZHANG_SCHEMES}
    for depth in size["depths"]:
        keras.utils.set_random_seed(seed)
        model = _plain_residual_mlp(depth, seed)
        body = keras.Model(model.input, model.get_layer(f"block_{depth}_add").output)
        start = model.get_weights()
        for label, scheme in _ZHANG_SCHEMES.items():
            model.set_weights(start)
            if scheme is not None:
                residual(model, scheme, seed=seed)  # type: ignore[arg-type]
            out = keras.ops.convert_to_numpy(body(x_val, training=False))
            variance[label].append(finite_or_none(float(np.var(out) / np.var(x_val))))
    training: dict[str, Any] = {}
    for label, scheme in _ZHANG_SCHEMES.items():
        keras.utils.set_random_seed(seed)
        model = _plain_residual_mlp(size["train_blocks"], seed)
        if scheme is not None:
            residual(model, scheme, seed=seed)  # type: ignore[arg-type]
        model.compile(optimizer=keras.optimizers.SGD(size["lr"]), loss=_classifier_loss())
        curve = _train(model, x, y, size["epochs"], size["batch_size"], seed)
        training[label] = {
            "loss_curve": [finite_or_none(v) for v in curve],
            "train_accuracy": _accuracy(model, x, y),
            "val_accuracy": _accuracy(model, x_val, y_val),
        }
    summary = {
        label: {
            "variance_ratio_at_depths": dict(
                zip(map(str, size["depths"]), variance[label], strict=True)
            ),
            "final_loss": training[label]["loss_curve"][-1]
            if training[label]["loss_curve"]
            else None,
            "val_accuracy": training[label]["val_accuracy"],
        }
        for label in _ZHANG_SCHEMES
    }
    return {
        "config": size,
        "results": {"variance_ratio": variance, "training": training},
        "summary": summary,
    }


def _plot_zhang2019(document: dict[str, Any], figure: Any) -> None:
    axes = figure.subplots(1, 2)
    depths = document["config"]["depths"]
    for position, (label, ratios) in enumerate(document["results"]["variance_ratio"].items()):
        axes[0].plot(depths, [_nan(v) for v in ratios], "o-", color=f"C{position}", label=label)
    axes[0].set_xscale("log", base=2)
    _axes(axes[0], "at init: Var(x_L) / Var(x_0)", "residual blocks L", "variance ratio", log=True)
    axes[0].legend(fontsize="small")
    for position, (label, run) in enumerate(document["results"]["training"].items()):
        curve = [_nan(v) for v in run["loss_curve"]]
        axes[1].plot(range(1, len(curve) + 1), curve, color=f"C{position}", label=label)
    blocks = document["config"]["train_blocks"]
    _axes(axes[1], f"training, {blocks} blocks", "epoch", "mean batch loss", log=True)
    axes[1].legend(fontsize="small")


# ---------------------------------------------------------------- meng2024

# The LoRA inits compared: Keras's own, PEFT's default, PEFT's gaussian, PiSSA, OLoRA.
_LORA_METHODS: tuple[Method, ...] = ("keras", "peft", "gaussian", "pissa", "olora")


def _mirrored(x: np.ndarray) -> np.ndarray:
    """The shifted task: each 8x8 digit mirrored left to right (the labels kept)."""
    return np.ascontiguousarray(x.reshape(-1, 8, 8)[:, :, ::-1].reshape(-1, 64))


def _lora_mlp(width: int) -> keras.Model:
    inputs = keras.Input((64,))
    h = keras.layers.Dense(width, "relu", name="dense_1")(inputs)
    h = keras.layers.Dense(width, "relu", name="dense_2")(h)
    return keras.Model(inputs, keras.layers.Dense(10, name="output")(h))


def _mean_loss(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    logits = model(x, training=False)
    return float(keras.ops.convert_to_numpy(_classifier_loss()(y, logits)))


def _meng2024(quick: bool, seed: int) -> Outcome:
    size = _sizes(
        quick,
        {
            "width": 32,
            "pretrain_epochs": 2,
            "epochs": 1,
            "batch_size": 128,
            "rank": 2,
            "lr": 1e-3,
            "every": 2,
            "seeds": 1,
            "loss_threshold": 1.0,
            "train_samples": 512,
        },
        {
            "width": 128,
            "pretrain_epochs": 20,
            "epochs": 10,
            "batch_size": 64,
            "rank": 4,
            "lr": 1e-3,
            "every": 5,
            "seeds": 3,
            "loss_threshold": 1.0,
        },
    )
    x, y, x_val, y_val = _digits(seed, size)
    x_shift, x_val_shift = _mirrored(x), _mirrored(x_val)
    results: dict[str, Any] = {method: {"runs": []} for method in _LORA_METHODS}
    pretrained_accuracy = []
    for offset in range(size["seeds"]):
        run_seed = seed + offset
        keras.utils.set_random_seed(run_seed)
        base = _lora_mlp(size["width"])
        base.compile(optimizer=keras.optimizers.Adam(size["lr"]), loss=_classifier_loss())
        _train(base, x, y, size["pretrain_epochs"], size["batch_size"], run_seed)
        weights = base.get_weights()
        pretrained_accuracy.append(
            {
                "seed": run_seed,
                "original_val_accuracy": _accuracy(base, x_val, y_val),
                "shifted_val_accuracy": _accuracy(base, x_val_shift, y_val),
            }
        )
        for method in _LORA_METHODS:
            model = _lora_mlp(size["width"])
            model.set_weights(weights)
            report = lora(model, rank=size["rank"], method=method, seed=run_seed)
            model.compile(optimizer=keras.optimizers.Adam(size["lr"]), loss=_classifier_loss())
            steps: list[int] = []
            losses: list[float | None] = []

            def record(
                step: int,
                model: keras.Model = model,
                steps: list[int] = steps,
                losses: list[float | None] = losses,
            ) -> None:
                steps.append(step)
                losses.append(finite_or_none(_mean_loss(model, x_shift, y)))

            curve = _train(
                model,
                x_shift,
                y,
                size["epochs"],
                size["batch_size"],
                run_seed,
                every=size["every"],
                on_record=record,
            )
            results[method]["runs"].append(
                {
                    "seed": run_seed,
                    "adapter_energy": [r.energy for r in report],
                    "steps": steps,
                    "train_loss": losses,
                    "loss_curve": [finite_or_none(v) for v in curve],
                    "val_accuracy": _accuracy(model, x_val_shift, y_val),
                }
            )
    steps_per_epoch = math.ceil(len(x) / size["batch_size"])
    summary: dict[str, Any] = {"pretrained": pretrained_accuracy}
    for name, result in results.items():
        runs = result["runs"]

        def at(run: dict[str, Any], step: int) -> float:
            index = max(i for i, s in enumerate(run["steps"]) if s <= step)
            return _nan(run["train_loss"][index])

        def reached(run: dict[str, Any]) -> int | None:
            below = [
                s
                for s, v in zip(run["steps"], run["train_loss"], strict=True)
                if v is not None and v <= size["loss_threshold"]
            ]
            return below[0] if below else None

        summary[name] = {
            "initial_loss": float(np.mean([_nan(r["train_loss"][0]) for r in runs])),
            "loss_after_epoch_1": float(np.mean([at(r, steps_per_epoch) for r in runs])),
            "final_loss": float(np.mean([_nan(r["train_loss"][-1]) for r in runs])),
            "steps_to_threshold": [reached(r) for r in runs],
            "val_accuracy_mean": float(np.mean([r["val_accuracy"] for r in runs])),
            "adapter_energy_mean": float(np.mean([np.mean(r["adapter_energy"]) for r in runs])),
        }
    return {"config": size, "results": results, "summary": summary}


def _plot_meng2024(document: dict[str, Any], figure: Any) -> None:
    axes = figure.subplots(1, 2)
    for position, (method, result) in enumerate(document["results"].items()):
        color = f"C{position}"
        for index, run in enumerate(result["runs"]):
            curve = [_nan(v) for v in run["train_loss"]]
            axes[0].plot(
                run["steps"], curve, color=color, alpha=0.8, label=method if index == 0 else None
            )
        accuracies = [run["val_accuracy"] for run in result["runs"]]
        axes[1].scatter([position] * len(accuracies), accuracies, color=color)
    _axes(axes[0], "training loss on the mirrored digits, one line per seed", "step", "loss")
    axes[0].set_yscale("log")
    axes[0].legend(fontsize="small")
    methods = list(document["results"])
    axes[1].set_xticks(range(len(methods)), methods)
    axes[1].set_xlim(-0.5, len(methods) - 0.5)
    _axes(axes[1], "validation accuracy after fine-tuning, one dot per seed", "", "accuracy")


# ---------------------------------------------------------------- yang2022

_PARAMETRIZATIONS = ("standard", "mup")


def _batches(count: int, steps: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """``steps`` minibatches of indices into ``count`` examples, epoch after epoch, by ``seed``."""
    rng = np.random.default_rng(seed)
    order = np.concatenate(
        [rng.permutation(count) for _ in range(math.ceil(steps * batch_size / count))]
    )
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(steps)]


def _reset_optimizer(optimizer: Any, learning_rate: float) -> None:
    """A built optimizer back to its start (slots and step count zero), at ``learning_rate``.

    Every learning rate of a width reuses one compiled model: its weights are
    set back and its optimizer zeroed, which is what a fresh one would hold.
    """
    for variable in optimizer.variables:
        variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
    optimizer.learning_rate = learning_rate


def _yang2022(quick: bool, seed: int) -> Outcome:
    size = _sizes(
        quick,
        {
            "widths": [32, 64, 128],
            "log2_lrs": [-10, -7, -4],
            "steps": 12,
            "last_steps": 4,
            "batch_size": 64,
            "seeds": 1,
            "train_samples": 512,
        },
        {
            "widths": [64, 128, 256, 512, 1024, 2048],
            "log2_lrs": list(range(-14, -3)),
            "steps": 60,
            "last_steps": 10,
            "batch_size": 64,
            "seeds": 1,
        },
    )
    x, y, _, _ = _digits(seed, size)
    lrs = [2.0**e for e in size["log2_lrs"]]
    widths = size["widths"]
    base_width = widths[0]
    size["base_width"] = base_width
    # results[parametrization][str(width)] = [[loss per lr] per seed]; None: diverged.
    results: dict[str, dict[str, list[list[float | None]]]] = {
        p: {str(w): [] for w in widths} for p in _PARAMETRIZATIONS
    }
    for offset in range(size["seeds"]):
        run_seed = seed + offset
        batches = _batches(len(x), size["steps"], size["batch_size"], run_seed)
        for parametrization in _PARAMETRIZATIONS:
            for width in widths:
                keras.utils.set_random_seed(run_seed)
                model = _lora_mlp(width)
                optimizer: Any = keras.optimizers.Adam(lrs[0])
                if parametrization == "mup":
                    # At the base width every multiplier is 1; delta names the widths.
                    delta = _lora_mlp(2 * base_width) if width == base_width else None
                    plan = mup(model, base=_lora_mlp(base_width), delta=delta)
                    optimizer = plan.optimizer(optimizer)
                model.compile(optimizer=optimizer, loss=_classifier_loss())
                start = model.get_weights()
                losses: list[float | None] = []
                for lr in lrs:
                    model.set_weights(start)
                    if optimizer.built:
                        _reset_optimizer(optimizer, lr)
                    curve = []
                    for batch in batches:
                        curve.append(float(train_on_batch(model, x[batch], y[batch])["loss"]))
                        if not math.isfinite(curve[-1]):
                            break
                    tail = curve[-size["last_steps"] :]
                    ok = len(curve) == len(batches) and all(map(math.isfinite, tail))
                    losses.append(float(np.mean(tail)) if ok else None)
                results[parametrization][str(width)].append(losses)
    return {"config": size, "results": results, "summary": _yang_summary(results, lrs, widths)}


def _yang_summary(
    results: dict[str, dict[str, list[list[float | None]]]], lrs: list[float], widths: list[int]
) -> dict[str, Any]:
    """Per parametrization: the best rate per width, its shift in decades, wider-is-better."""
    summary: dict[str, Any] = {}
    for parametrization, by_width in results.items():
        mean = {w: _mean_over_seeds(runs) for w, runs in by_width.items()}
        best: dict[str, float | None] = {}
        for width, losses in mean.items():
            finite = [(v, lr) for v, lr in zip(losses, lrs, strict=True) if v is not None]
            best[width] = min(finite)[1] if finite else None
        logs = [math.log10(v) for v in best.values() if v is not None]
        first, last = best[str(widths[0])], best[str(widths[-1])]
        wider: list[dict[str, Any]] = []  # per rate: did each step up in width lower the loss
        for index, lr in enumerate(lrs):
            column = [mean[str(w)][index] for w in widths]
            if all(v is not None for v in column):
                steps = [b < a for a, b in itertools.pairwise(column)]  # type: ignore[operator]
                falls = [*steps, False].index(False)  # the first step up that did not help
                wider.append({"lr": lr, "steps": steps, "up_to": widths[falls]})
        tuned = best[str(widths[0])]  # the rate tuned at the base width, used at every width
        summary[parametrization] = {
            "best_lr": best,
            "loss_at_base_best_lr": {
                w: None if tuned is None else losses[lrs.index(tuned)] for w, losses in mean.items()
            },
            "best_lr_shift_decades": (
                None if first is None or last is None else round(math.log10(last / first), 3)
            ),
            "best_lr_span_decades": round(max(logs) - min(logs), 3) if logs else None,
            "best_loss": {
                w: min((v for v in losses if v is not None), default=None)
                for w, losses in mean.items()
            },
            "wider_is_better_at": [row["lr"] for row in wider if all(row["steps"])],
            "wider_is_better_fraction": (
                round(sum(all(row["steps"]) for row in wider) / len(wider), 3) if wider else None
            ),
            # The widest width up to which the loss fell with every step up, per rate.
            "wider_is_better_up_to": [{"lr": row["lr"], "width": row["up_to"]} for row in wider],
            "wider_is_better_steps": (
                round(float(np.mean([step for row in wider for step in row["steps"]])), 3)
                if wider
                else None
            ),
            "diverged_runs": sum(v is None for losses in mean.values() for v in losses),
        }
    standard, mu_p = summary["standard"], summary["mup"]
    summary["claim"] = {
        "standard_shift_at_least_one_decade": (
            standard["best_lr_span_decades"] is not None
            and standard["best_lr_span_decades"] >= 1.0 - 1e-9
        ),
        "mup_shift_within_half_a_decade": (
            mu_p["best_lr_span_decades"] is not None and mu_p["best_lr_span_decades"] <= 0.5 + 1e-9
        ),
        "mup_wider_is_better_at_every_lr": mu_p["wider_is_better_fraction"] == 1.0,
    }
    return summary


def _mean_over_seeds(runs: list[list[float | None]]) -> list[float | None]:
    """The mean loss per rate over seeds; None where any seed diverged."""
    return [
        None if any(v is None for v in column) else float(np.mean(column))  # type: ignore[arg-type]
        for column in zip(*runs, strict=True)
    ]


def _plot_yang2022(document: dict[str, Any], figure: Any) -> None:
    from matplotlib import colormaps

    axes = figure.subplots(1, 2, sharey=True)
    config = document["config"]
    lrs = [2.0**e for e in config["log2_lrs"]]
    widths = config["widths"]
    colours = colormaps["viridis"](np.linspace(0.0, 0.9, len(widths)))
    titles = {
        "standard": "standard parametrization (Keras defaults, Adam)",
        "mup": f"muP (keras_inits.mup, base width {config['base_width']})",
    }
    for axis, parametrization in zip(axes, _PARAMETRIZATIONS, strict=True):
        summary = document["summary"][parametrization]
        for colour, width in zip(colours, widths, strict=True):
            losses = _mean_over_seeds(document["results"][parametrization][str(width)])
            axis.plot(lrs, [_nan(v) for v in losses], "o-", color=colour, label=f"width {width}")
            best = summary["best_lr"][str(width)]
            if best is not None:
                axis.plot([best], [losses[lrs.index(best)]], "*", color=colour, markersize=14)
        axis.set_xscale("log", base=2)
        _axes(
            axis,
            titles[parametrization],
            "learning rate (log2)",
            f"training loss, mean of the last {config['last_steps']} of {config['steps']} steps",
            log=True,
        )
        axis.legend(fontsize="small", title="* best rate")


# ---------------------------------------------------------------- the table

GLOROT = (
    'Glorot & Bengio, 2010, "Understanding the difficulty of training deep feedforward '
    'neural networks", AISTATS, https://proceedings.mlr.press/v9/glorot10a.html'
)

EXPERIMENTS: dict[str, Experiment] = {
    experiment.name: experiment
    for experiment in (
        Experiment(
            "glorot2010",
            "Glorot & Bengio 2010: the top sigmoid layer saturates under the standard init",
            "With the standard init U(-1/sqrt(n), 1/sqrt(n)), the sigmoid activations of the "
            "top hidden layer of a deep network are quickly pushed to their lower saturation "
            "value 0, while the lower layers' means stay above 0.5; the top layer only slowly "
            "desaturates later in training (their Figure 2). The normalized init is the paper's "
            "proposal for keeping activation and gradient variances equal across layers.",
            GLOROT,
            _glorot2010,
            _plot_glorot2010,
        ),
        Experiment(
            "saxe2014",
            "Saxe et al. 2014: deep linear nets learn in depth-independent time from orthogonal init",  # noqa: E501
            "In deep linear networks, random orthogonal initial weights give learning times that "
            "stay finite (depth independent) as the depth grows, while scaled random Gaussian "
            "initializations do not: their learning time grows with depth.",
            'Saxe, McClelland & Ganguli, 2014, "Exact solutions to the nonlinear dynamics of '
            'learning in deep linear neural networks", ICLR, https://arxiv.org/abs/1312.6120',
            _saxe2014,
            _plot_saxe2014,
        ),
        Experiment(
            "xiao2018",
            "Xiao et al. 2018: a deep vanilla tanh CNN trains from delta-orthogonal init",
            "A vanilla tanh CNN (no batch normalization, no skip connections) of very great "
            "depth (they train 10,000 layers) trains when its kernels are delta-orthogonal "
            "(an orthogonal matrix at the centre tap, zero elsewhere) at the critical point, "
            "reaching dynamical isometry; Gaussian kernels train more slowly or not at all "
            "as the depth grows.",
            'Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington, 2018, "Dynamical Isometry '
            "and a Mean Field Theory of CNNs: How to Train 10,000-Layer Vanilla Convolutional "
            'Neural Networks", ICML, https://arxiv.org/abs/1806.05393',
            _xiao2018,
            _plot_compare,
        ),
        Experiment(
            "he2015",
            "He et al. 2015: a 30-layer plain ReLU MLP trains with He init, stalls with Xavier",
            "A 30-layer plain ReLU network (no batch normalization) initialized with "
            "Var(W) = 2 / fan_in converges, while the same network with Xavier's init "
            "(Var(W) = 1 / fan here) stalls completely (their Figure 3).",
            'He, Zhang, Ren & Sun, 2015, "Delving Deep into Rectifiers", ICCV, '
            "https://arxiv.org/abs/1502.01852",
            _he2015,
            _plot_compare,
        ),
        Experiment(
            "mishkin2016",
            "Mishkin & Matas 2016: LSUV trains a deep thin ReLU MLP its base init cannot",
            "Layer-sequential unit-variance init (orthonormal kernels, then each layer rescaled "
            "until its output has unit variance on a batch) lets very deep thin networks "
            "train from scratch with plain SGD, matching or beating more complex schemes.",
            'Mishkin & Matas, 2016, "All you need is a good init", ICLR, '
            "https://arxiv.org/abs/1511.06422",
            _mishkin2016,
            _plot_compare,
        ),
        Experiment(
            "zhao2022",
            "Zhao et al. 2022: deterministic ZerO init trains a residual MLP like a random init",
            "ZerO, a fully deterministic init of zeros and ones (partial identities, scaled "
            "Hadamard matrices where a layer widens), trains residual networks to the "
            "accuracy of standard random inits, and removes the init's run-to-run variance.",
            'Zhao, Schaefer & Anandkumar, 2022, "ZerO Initialization: Initializing Neural '
            'Networks with only Zeros and Ones", TMLR, https://arxiv.org/abs/2110.12661',
            _zhao2022,
            _plot_zhao2022,
        ),
        Experiment(
            "zhang2019",
            "Zhang et al. 2019: Fixup trains a deep residual MLP without normalization",
            "Without normalization, a residual network's output variance at init grows "
            "with depth under standard inits, and a deep one fails to train; Fixup (each "
            "branch's last layer zero, the others scaled by L^(-1/(2m-2))) keeps the output "
            "variance bounded, so the same network trains without normalization.",
            'Zhang, Dauphin & Ma, 2019, "Fixup Initialization: Residual Learning Without '
            'Normalization", ICLR, https://arxiv.org/abs/1901.09321',
            _zhang2019,
            _plot_zhang2019,
        ),
        Experiment(
            "meng2024",
            "Meng et al. 2024: a PiSSA adapter fine-tunes faster than LoRA's default init",
            "Initializing a LoRA adapter from the weight's principal singular vectors (A, B "
            "from the top-r SVD, the frozen base the residual), rather than A random and B = 0, "
            "leaves the model's outputs unchanged at the start but makes fine-tuning converge "
            "faster and to a lower loss (their Figure 3 and Section 5).",
            'Meng, Wang & Zhang, 2024, "PiSSA: Principal Singular Values and Singular Vectors '
            'Adaptation of Large Language Models", NeurIPS, https://arxiv.org/abs/2404.02948',
            _meng2024,
            _plot_meng2024,
        ),
        Experiment(
            "yang2022",
            "Yang et al. 2022: under muP the best learning rate holds as an MLP widens",
            "Under the standard parametrization the learning rate that trains best moves as "
            "the network widens (with Adam, to smaller rates), so each width must be tuned "
            "again; under muP (init scales and per-weight learning rates set from a base "
            "width) the best rate stays put across widths, and at any fixed rate the wider "
            "network trains better (their Figures 1 and 3: training loss against learning "
            "rate, one curve per width).",
            "Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen & Gao, 2022, "
            '"Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter '
            'Transfer", NeurIPS, https://arxiv.org/abs/2203.03466',
            _yang2022,
            _plot_yang2022,
        ),
        Experiment(
            "sigmoid",
            "The seeds' rule: a 5-layer sigmoid MLP needs Var(W) = 4 / fan_in",
            "A sigmoid's slope is at most 1/4, so fixed-scale inits and Glorot's variance shrink "
            "the signal about fourfold per layer; Var(W) = 4 / fan_in (sigmoid_normal) keeps "
            "enough signal for a 5-layer sigmoid MLP to train where the others stall "
            "(the default `keras-inits compare`).",
            "derived in this package (sigmoid_normal's docstring); the variance argument: "
            + GLOROT,
            _sigmoid,
            _plot_compare,
        ),
    )
}


def check_experiment(name: Any) -> str:
    """Returns ``name`` if it names an experiment of ``EXPERIMENTS``.

    Raises:
        TypeError: If ``name`` is not a string.
        ValueError: If it names no experiment (with the closest name, if any).

    Example:
        >>> check_experiment("saxe2014")
        'saxe2014'
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be an experiment name, a string. Received: name={name!r}")
    if name not in EXPERIMENTS:
        names = tuple(sorted(EXPERIMENTS))
        raise ValueError(
            f"`name` must be one of {names}.{did_you_mean(name, names)} Received: name={name!r}"
        )
    return name


def check_extras() -> Any:
    """Imports what an experiment needs, scikit-learn and matplotlib; returns matplotlib.figure.

    Raises:
        MissingExtraError: Naming ``keras-inits[compare]``, if either is missing.
    """
    import_optional("sklearn.datasets", "compare", "Loading the digits data")
    figure_module = import_optional("matplotlib.figure", "compare", "Plotting")
    import_optional("matplotlib.backends.backend_agg", "compare", "Plotting")
    return figure_module


def format_experiments() -> str:
    """The experiments as a table: name and title."""
    rows = [(name, experiment.title) for name, experiment in sorted(EXPERIMENTS.items())]
    return format_table(("experiment", "what it shows"), rows)


def run_experiment(
    name: str, out: str | os.PathLike[str] = "out/reproduce", quick: bool = False, seed: int = 0
) -> dict[str, Any]:
    """Runs one experiment and writes ``out/NAME.json`` and ``out/NAME.png``.

    Args:
        name: One of ``EXPERIMENTS`` (``keras-inits reproduce --list``).
        out: The folder to write into; created if missing.
        quick: The small size (seconds) rather than the full one (minutes).
        seed: Fixes the data split, the weights and the batch order; an int
            in [0, 2**32).

    Returns:
        The JSON document written, with the keys ``DOCUMENT_KEYS``.

    Raises:
        ValueError: For an unknown ``name`` or a bad ``seed``.
        MissingExtraError: If scikit-learn or matplotlib is not installed (before
            any training).

    Reference:
        Each experiment's paper: ``EXPERIMENTS[name].reference``.
    """
    experiment = EXPERIMENTS[check_experiment(name)]
    check_seed_range("seed", seed)
    check_extras()
    start = time.perf_counter()
    outcome = experiment.run(bool(quick), seed)
    wall = time.perf_counter() - start
    command = f"keras-inits reproduce {name}" + (" --quick" if quick else "")
    document = {
        "experiment": name,
        "title": experiment.title,
        "claim": experiment.claim,
        "reference": experiment.reference,
        "command": command + (f" --seed {seed}" if seed else ""),
        "size": "quick" if quick else "full",
        "seed": seed,
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "wall_s": round(wall, 1),
        **outcome,
    }
    folder = os.fspath(out)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{name}.json"), "w", encoding="utf-8") as file:
        json.dump(document, file, indent=1, allow_nan=False)
        file.write("\n")
    plot_experiment(document, os.path.join(folder, f"{name}.png"))
    return document


def plot_experiment(document: dict[str, Any], path: str | os.PathLike[str]) -> str:
    """Draws an experiment's figure from its JSON document (as ``run_experiment`` wrote it).

    Returns:
        The path written, as a string.

    Raises:
        ValueError: If the document names no known experiment.
        MissingExtraError: If matplotlib is not installed.
    """
    name = check_experiment(document.get("experiment"))
    experiment = EXPERIMENTS[name]
    figure_module = check_extras()
    figure = figure_module.Figure(figsize=(12, 7.5), layout="constrained")
    experiment.plot(document, figure)
    figure.suptitle(
        f"{experiment.title}\n"
        f"({document['size']} size, seed {document['seed']}, backend {document['backend']})",
        fontsize="medium",
    )
    figure.savefig(os.fspath(path), dpi=100)
    return os.fspath(path)


def format_summary(document: dict[str, Any]) -> str:
    """The summary of a document, one line per entry, for the terminal."""
    lines = []
    for key, value in document["summary"].items():
        lines.append(f"{key}: {json.dumps(value)}")
    return "\n".join(lines)
