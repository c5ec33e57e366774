"""The comparison behind ``keras-inits compare``: one MLP, trained once per initializer.

Each run builds the same MLP (``depth`` hidden layers of ``width`` units and
``activation``, then a 10-way linear output layer), with every hidden kernel
drawn from one initializer; records ``layer_stats`` at initialization; then
trains it with SGD with momentum on scikit-learn's bundled 8x8 digits. The
runs share everything but the hidden initializer: the data split, the
output layer's weights and the batch order all come from ``seed``.

This module needs scikit-learn (``keras-inits[compare]``) only when it loads
the data, and never imports matplotlib.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from keras_inits._extras import import_optional
from keras_inits._gain import activation_name
from keras_inits._registry import get, resolve
from keras_inits._validation import (
    check_non_negative,
    check_positive,
    check_positive_int,
    check_seed_range,
)
from keras_inits.diagnostics._stats import LayerStats, finite_or_none, format_table, layer_stats

__all__ = [
    "DEFAULT_INITIALIZERS",
    "CompareConfig",
    "RunResult",
    "build_mlp",
    "check_fills",
    "format_results",
    "hidden_kernel_shapes",
    "load_digits",
    "run_compare",
]

# The sigmoid story: two pre-2010 fixed-scale schemes, the two Keras defaults
# people reach for, and the sigmoid initializer.
DEFAULT_INITIALIZERS = (
    "small_uniform",
    "small_normal",
    "glorot_normal",
    "he_normal",
    "sigmoid_normal",
)
_VAL_FRACTION = 0.2
_DIGITS_FEATURES = 64  # 8 x 8 pixels: the first hidden kernel is (64, width)
# ``--init lsuv``: Keras's default glorot_uniform, then ``keras_inits.lsuv`` on
# the first LSUV_BATCH training samples (Mishkin & Matas 2016).
LSUV = "lsuv"
LSUV_BATCH = 256

EpochCallback = Callable[[int, str, int, float], None]


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """What ``run_compare`` builds and trains; the defaults tell the sigmoid story.

    Attributes:
        initializers: Names, config dicts or instances that ``keras_inits.get``
            resolves, ours or Keras's; each gives one run. Instances are kept as
            their config dicts, so that every hidden layer draws from a fresh
            copy and the results serialize. "lsuv" builds with Keras's default
            glorot_uniform and runs ``keras_inits.lsuv`` on 256 training samples.
        activation: The hidden layers' activation, any name Keras knows.
        depth: Number of hidden layers, >= 1.
        width: Units per hidden layer, >= 1.
        lr: SGD learning rate, > 0.
        momentum: SGD momentum, >= 0 (0.9 by default).
        epochs: Training epochs, >= 1.
        batch_size: Minibatch size, >= 1.
        seed: Fixes the data split, the output layer, unseeded initializers
            (through ``keras.utils.set_random_seed``) and the batch order; an
            int in [0, 2**32).
    """

    initializers: tuple[Any, ...] = DEFAULT_INITIALIZERS
    activation: str = "sigmoid"
    depth: int = 5
    width: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    epochs: int = 20
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.initializers:
            raise ValueError(
                "`initializers` must name at least one initializer. "
                f"Received: initializers={self.initializers!r}"
            )
        # Names and config dicts: JSON-ready, and each hidden layer gets its own instance.
        identifiers = tuple(
            _identifier(item, f"initializers[{index}]")
            for index, item in enumerate(self.initializers)
        )
        object.__setattr__(self, "initializers", identifiers)
        if not isinstance(self.activation, str):  # stored in the JSON, so a name
            raise TypeError(
                "`activation` must be an activation name, a string. "
                f"Received: activation={self.activation!r}"
            )
        activation_name(self.activation)  # an unknown name: "did you mean", naming `activation`
        check_positive_int("depth", self.depth)
        check_positive_int("width", self.width)
        check_positive("lr", self.lr)
        check_non_negative("momentum", self.momentum)
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_seed_range("seed", self.seed)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "initializers": list(self.initializers)}


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One initializer's run: its layer stats at initialization and how training went.

    Attributes:
        initializer: The name (or config) the run was given.
        train_accuracy: Accuracy on the training split after the last epoch.
        val_accuracy: Accuracy on the held-out 20%.
        final_loss: Training loss on the whole training split after the last
            epoch (NaN if training diverged).
        loss_curve: The mean training loss of each epoch, as Keras reports it.
        layers: ``layer_stats`` of the untrained model on the training split.
    """

    initializer: Any
    train_accuracy: float
    val_accuracy: float
    final_loss: float
    loss_curve: list[float]
    layers: list[LayerStats]

    @property
    def label(self) -> str:
        """A short name for tables and plot legends."""
        if isinstance(self.initializer, str):
            return self.initializer
        return str(self.initializer.get("class_name", self.initializer))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; non-finite numbers (a diverged run) become None."""
        return {
            "initializer": self.initializer,
            "train_accuracy": finite_or_none(self.train_accuracy),
            "val_accuracy": finite_or_none(self.val_accuracy),
            "final_loss": finite_or_none(self.final_loss),
            "loss_curve": [finite_or_none(value) for value in self.loss_curve],
            "layers": [record.to_dict() for record in self.layers],
        }


def load_digits(seed: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's bundled 8x8 digits, split 80/20 by ``seed``, standardized.

    Each of the 64 pixels is standardized with the training split's mean and
    std (a pixel that is constant there is only centred). No download.

    Raises:
        MissingExtraError: If scikit-learn is not installed (the message
            names ``keras-inits[compare]``).
    """
    datasets = import_optional("sklearn.datasets", "compare", "Loading the digits data")
    images, labels = datasets.load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(images))
    split = round(len(images) * (1 - _VAL_FRACTION))
    train, val = order[:split], order[split:]
    mean = images[train].mean(axis=0)
    std = images[train].std(axis=0)
    std[std == 0] = 1.0
    images = ((images - mean) / std).astype("float32")
    labels = labels.astype("int32")
    return (images[train], labels[train]), (images[val], labels[val])


def build_mlp(
    initializer: Any,
    activation: str,
    depth: int,
    width: int,
    inputs: int = 64,
    classes: int = 10,
    seed: int = 0,
) -> keras.Model:
    """``depth`` hidden Dense layers drawn from ``initializer``, then a linear output.

    The output layer is Keras's default GlorotUniform with a fixed ``seed``,
    so that runs that differ in the hidden initializer share it. Each hidden
    layer gets its own copy of the initializer, as a string name in a layer
    would give it.

    Example:
        >>> model = build_mlp("sigmoid_normal", "sigmoid", depth=3, width=16)
        >>> [layer.name for layer in model.layers]
        ['hidden_1', 'hidden_2', 'hidden_3', 'output']
    """
    layers: list[Any] = [keras.Input((inputs,))]
    for index in range(1, depth + 1):
        layers.append(
            keras.layers.Dense(
                width,
                activation=activation,
                kernel_initializer=get(initializer),
                name=f"hidden_{index}",
            )
        )
    output_init = keras.initializers.GlorotUniform(seed=seed)
    layers.append(keras.layers.Dense(classes, kernel_initializer=output_init, name="output"))
    return keras.Sequential(layers, name="mlp")


def hidden_kernel_shapes(
    config: CompareConfig, inputs: int = _DIGITS_FEATURES
) -> dict[str, tuple[int, int]]:
    """The distinct kernel shapes of ``build_mlp``'s hidden layers, by the first layer named.

    Example:
        >>> hidden_kernel_shapes(CompareConfig(depth=3, width=16))
        {'hidden_1': (64, 16), 'hidden_2': (16, 16)}
    """
    shapes = {"hidden_1": (inputs, config.width)}
    if config.depth > 1 and config.width != inputs:
        shapes["hidden_2"] = (config.width, config.width)
    return shapes


def check_fills(identifier: Any, shapes: dict[str, tuple[int, int]], argument: str) -> None:
    """Draws each kernel of ``shapes`` once from ``identifier``: a bad fit fails before training.

    An initializer that cannot fill a Dense kernel (``bilinear`` needs 4-D,
    ``delta_orthogonal`` out >= in, ``icnr`` out divisible by scale^2) would
    otherwise fail only when its run builds the model, after the runs before
    it have trained.

    Raises:
        ValueError: Naming ``argument``, the layer and the initializer's own reason.
    """
    if identifier == LSUV:  # not an initializer: the model is built with Keras's default
        return
    for layer, shape in shapes.items():
        try:
            resolve(identifier, argument)(shape)
        except Exception as error:
            raise ValueError(
                f"`{argument}` must fill every hidden Dense kernel; it cannot fill {layer}'s, "
                f"shape {shape} ({type(error).__name__}: {error}). "
                f"Received: {argument}={identifier!r}"
            ) from error


def run_compare(config: CompareConfig, on_epoch: EpochCallback | None = None) -> list[RunResult]:
    """Builds and trains the MLP once per initializer of ``config``.

    Args:
        config: What to build and how to train it.
        on_epoch: Called after every epoch as ``on_epoch(run, initializer,
            epoch, loss)``, with 0-based ``run`` and 1-based ``epoch``: a hook
            for progress bars.

    Returns:
        One ``RunResult`` per initializer, in the order given.

    Raises:
        ValueError: Before any training, if an initializer cannot fill the
            hidden kernels (see ``check_fills``).
        MissingExtraError: If scikit-learn is not installed.
    """
    shapes = hidden_kernel_shapes(config)
    for index, initializer in enumerate(config.initializers):
        check_fills(initializer, shapes, f"initializers[{index}]")
    (x_train, y_train), (x_val, y_val) = load_digits(config.seed)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    results = []
    for run, initializer in enumerate(config.initializers):
        keras.utils.set_random_seed(config.seed)
        model = build_mlp(
            "glorot_uniform" if initializer == LSUV else initializer,
            config.activation,
            config.depth,
            config.width,
            inputs=x_train.shape[1],
            classes=int(y_train.max()) + 1,
            seed=config.seed,
        )
        if initializer == LSUV:
            from keras_inits.model import lsuv

            lsuv(model, x_train[:LSUV_BATCH], seed=config.seed, verbose=False)
        layers = layer_stats(model, x_train, y_train, loss=loss)
        model.compile(
            optimizer=keras.optimizers.SGD(config.lr, momentum=config.momentum),
            loss=loss,
            metrics=["accuracy"],
        )
        callbacks = [] if on_epoch is None else [_EpochHook(run, initializer, on_epoch)]
        history = model.fit(
            x_train,
            y_train,
            epochs=config.epochs,
            batch_size=config.batch_size,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
        final_loss, train_accuracy = model.evaluate(x_train, y_train, batch_size=512, verbose=0)
        _, val_accuracy = model.evaluate(x_val, y_val, batch_size=512, verbose=0)
        results.append(
            RunResult(
                initializer=initializer,
                train_accuracy=float(train_accuracy),
                val_accuracy=float(val_accuracy),
                final_loss=float(final_loss),
                loss_curve=[float(value) for value in history.history["loss"]],
                layers=layers,
            )
        )
    return results


def format_results(results: Sequence[RunResult]) -> str:
    """A summary table, one row per initializer.

    At initialization: the signal std (``LayerStats.signal_std``) and the
    gradient norm of the first and the last hidden layer, and the largest
    saturated fraction of any hidden layer; after training: the loss of the
    first and last epoch and the accuracies.
    """
    header = (
        "initializer",
        "signal std first/last",
        "max saturated",
        "grad norm first/last",
        "loss epoch 1 -> last",
        "train acc",
        "val acc",
    )
    rows = []
    for result in results:
        hidden = [record for record in result.layers if record.name.startswith("hidden_")]
        hidden = hidden or list(result.layers)
        first, last = hidden[0], hidden[-1]
        saturation = [r.saturation for r in hidden if r.saturation is not None]
        rows.append(
            (
                result.label,
                f"{first.signal_std:.3g} / {last.signal_std:.3g}",
                f"{max(saturation):.1%}" if saturation else "-",
                _pair(first.grad_norm, last.grad_norm),
                f"{result.loss_curve[0]:.3f} -> {result.loss_curve[-1]:.3f}",
                f"{result.train_accuracy:.3f}",
                f"{result.val_accuracy:.3f}",
            )
        )
    return format_table(header, rows)


def _pair(first: float | None, last: float | None) -> str:
    if first is None or last is None:
        return "-"
    return f"{first:.3g} / {last:.3g}"


def _identifier(item: Any, argument: str) -> Any:
    """A name or config dict for ``item``; an unknown name fails here, before any training."""
    if item == LSUV:
        return item
    initializer = resolve(item, argument)  # raises with "did you mean" for an unknown name
    if isinstance(item, (str, dict)):
        return item
    if isinstance(initializer, keras.initializers.Initializer):
        return keras.initializers.serialize(initializer)
    raise TypeError(
        "`initializers` must hold names, config dicts or keras.initializers.Initializer "
        f"instances. Received: {argument}={item!r}"
    )


class _EpochHook(keras.callbacks.Callback):
    def __init__(self, run: int, initializer: Any, on_epoch: EpochCallback) -> None:
        super().__init__()
        self._run, self._initializer, self._on_epoch = run, initializer, on_epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        loss = float((logs or {}).get("loss", math.nan))
        self._on_epoch(self._run, str(self._initializer), epoch + 1, loss)
