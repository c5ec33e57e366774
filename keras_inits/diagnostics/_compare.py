"""The comparison behind ``keras-inits compare``: one network, trained once per initializer.

Each run builds the same network with every hidden kernel drawn from one
initializer; records ``layer_stats`` at initialization; then trains it on
scikit-learn's bundled 8x8 digits (or the user's data). The network is one
of three built-in architectures (``arch``):

- ``"mlp"``: ``depth`` Dense layers of ``width`` units, on the 64 pixels;
- ``"cnn"``: ``depth`` 3x3 ``padding="same"`` Conv2D layers of ``width``
  channels, on the 8x8x1 images, then Flatten;
- ``"rnn"``: ``depth`` stacked LSTM, GRU or SimpleRNN layers (``cell``) of
  ``width`` units reading the 8 rows of a digit as a sequence of 8 steps;
  ``recurrent_init`` fills the recurrent kernels;

each followed by a 10-way linear output layer, trained with SGD with momentum
on the sparse cross-entropy of its logits; or the user's own model
(``model``, a function of the initializer that returns a ``keras.Model``).
The runs share everything but the hidden initializer: the data split, the
output layer's weights and the batch order all come from ``seed``.

Two model-level initializers are runs of their own: ``"lsuv"`` (Keras's
default glorot_uniform, then ``keras_inits.lsuv`` on 256 training samples)
and ``"reinitialize"`` or ``"NAME+reinitialize"`` (built with glorot_uniform
or NAME, then ``keras_inits.reinitialize``, which re-draws every fan-scaled
weight with its layer's true fans).

This module needs scikit-learn (``keras-inits[compare]``) only when it loads
the digits, and never imports matplotlib.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import math
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, Literal, get_args

import keras
import numpy as np

from keras_inits._extras import import_optional
from keras_inits._gain import activation_name
from keras_inits._registry import get, resolve
from keras_inits._validation import (
    check_choice,
    check_non_negative,
    check_positive,
    check_positive_int,
    check_seed_range,
    did_you_mean,
)
from keras_inits.diagnostics._stats import LayerStats, finite_or_none, format_table, layer_stats

__all__ = [
    "ARCHS",
    "CELLS",
    "DEFAULT_INITIALIZERS",
    "CompareConfig",
    "CompareError",
    "RunResult",
    "build_cnn",
    "build_mlp",
    "build_rnn",
    "check_fills",
    "check_model",
    "format_results",
    "hidden_kernel_shapes",
    "load_data",
    "load_digits",
    "load_function",
    "recurrent_kernel_shapes",
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
Arch = Literal["mlp", "cnn", "rnn"]
Cell = Literal["lstm", "gru", "simple"]
ARCHS: tuple[str, ...] = get_args(Arch)
CELLS: tuple[str, ...] = get_args(Cell)
USER_MODEL = "model"  # the `arch` a config with a `model` gets
_VAL_FRACTION = 0.2
# The digits as each architecture reads them: 64 pixels, an 8x8x1 image, 8 rows of 8.
_DIGITS_SHAPES: dict[str, tuple[int, ...]] = {
    "mlp": (64,),
    "cnn": (8, 8, 1),
    "rnn": (8, 8),
    USER_MODEL: (64,),
}
_DEFAULT_ACTIVATION = {"mlp": "sigmoid", "cnn": "sigmoid", "rnn": "tanh"}
_DEFAULT_DEPTH, _DEFAULT_WIDTH = 5, 128
_RNN_LAYERS = {"lstm": "LSTM", "gru": "GRU", "simple": "SimpleRNN"}
_GATES = {"lstm": 4, "gru": 3, "simple": 1}  # column blocks of an RNN cell's kernels
_KERNEL_KIND = {"mlp": "Dense kernel", "cnn": "Conv2D kernel"}  # rnn: "LSTM input kernel", ...
# ``--init lsuv``: Keras's default glorot_uniform, then ``keras_inits.lsuv`` on
# the first LSUV_BATCH training samples (Mishkin & Matas 2016).
LSUV = "lsuv"
LSUV_BATCH = 256
# ``--init reinitialize`` (glorot_uniform) or ``NAME+reinitialize``: built with
# the base, then ``keras_inits.reinitialize`` re-draws with the true fans.
REINITIALIZE = "reinitialize"
_KERAS_DEFAULT = "glorot_uniform"

EpochCallback = Callable[[int, str, int, float], None]
Data = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class CompareError(ValueError):
    """A compare setting that does not fit; ``argument`` names the setting (``model``, ...).

    The command line reads ``argument`` to name its flag (``--model``).
    """

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


def split_model_level(identifier: Any) -> tuple[Any, str | None]:
    """``(base initializer, model-level step or None)`` for a run's identifier.

    Example:
        >>> split_model_level("he_normal+reinitialize")
        ('he_normal', 'reinitialize')
        >>> split_model_level("lsuv")
        ('glorot_uniform', 'lsuv')
    """
    if identifier == LSUV:
        return _KERAS_DEFAULT, LSUV
    if identifier == REINITIALIZE:
        return _KERAS_DEFAULT, REINITIALIZE
    suffix = "+" + REINITIALIZE
    if isinstance(identifier, str) and identifier.endswith(suffix):
        return identifier[: -len(suffix)], REINITIALIZE
    return identifier, None


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """What ``run_compare`` builds and trains; the defaults tell the sigmoid story.

    Settings left at None take the architecture's default; a setting that
    does not apply to the architecture (``cell`` for an MLP, ``depth`` for
    the user's ``model``) must be left at None.

    Attributes:
        initializers: Names, config dicts or instances that ``keras_inits.get``
            resolves, ours or Keras's; each gives one run. Instances are kept as
            their config dicts, so that every hidden layer draws from a fresh
            copy and the results serialize. Two model-level runs: "lsuv"
            builds with Keras's default glorot_uniform and runs
            ``keras_inits.lsuv`` on 256 training samples; "reinitialize"
            (glorot_uniform) or "NAME+reinitialize" builds with that
            initializer and runs ``keras_inits.reinitialize`` (true fans).
        arch: "mlp" (the default), "cnn" or "rnn", see the module docstring;
            with ``model``, leave it None (it becomes "model").
        activation: The hidden layers' activation, any name Keras knows
            (default sigmoid; tanh for "rnn", the cell's output activation).
        depth: Number of hidden layers, >= 1 (default 5).
        width: Units (or channels) per hidden layer, >= 1 (default 128).
        cell: "lstm" (default), "gru" or "simple" (SimpleRNN); "rnn" only.
        recurrent_init: The recurrent kernels' initializer (default
            "orthogonal"); "rnn" only.
        model: The user's model: "MODULE:FUNCTION" (MODULE an importable
            module name, searched in the current directory first, or a path
            to a .py file) or a callable. It is called with each run's
            initializer (a name or a config dict, as a layer's
            ``kernel_initializer`` takes it) and must return a functional or
            Sequential ``keras.Model``; an uncompiled one is compiled with
            SGD(lr, momentum) and, for integer labels, sparse cross-entropy
            (from logits unless its last layer is a softmax) with accuracy,
            otherwise mean squared error. A compiled one keeps its optimizer,
            loss and metrics. It gets the digits as 64 standardized pixels.
        data: The data instead of the digits: "MODULE:FUNCTION" or a callable
            of no arguments returning ``(x, y)`` (split 80/20 by ``seed``) or
            ``((x_train, y_train), (x_val, y_val))``, arrays used as given.
            The built-in architectures need integer class labels and x of
            shape (n, features) for "mlp", (n, h, w) or (n, h, w, c) for
            "cnn", (n, steps, features) for "rnn".
        lr: SGD learning rate, > 0.
        momentum: SGD momentum, >= 0 (0.9 by default).
        epochs: Training epochs, >= 1.
        batch_size: Minibatch size, >= 1.
        seed: Fixes the data split, the output layer, unseeded initializers
            (through ``keras.utils.set_random_seed``) and the batch order; an
            int in [0, 2**32).
    """

    initializers: tuple[Any, ...] = DEFAULT_INITIALIZERS
    activation: str | None = None
    depth: int | None = None
    width: int | None = None
    lr: float = 0.1
    momentum: float = 0.9
    epochs: int = 20
    batch_size: int = 64
    seed: int = 0
    arch: str | None = None
    cell: str | None = None
    recurrent_init: Any = None
    model: Any = None
    data: Any = None

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
        if self.model is not None:
            load_function(self.model, "model")
            if self.arch not in (None, USER_MODEL):
                raise CompareError(
                    "arch",
                    "`arch` must be left unset when `model` is given: the model is yours. "
                    f"Received: arch={self.arch!r}",
                )
            object.__setattr__(self, "arch", USER_MODEL)
            for name in ("activation", "depth", "width"):
                if getattr(self, name) is not None:
                    raise CompareError(
                        name,
                        f"`{name}` must be left unset when `model` is given: it applies to the "
                        f"built-in architectures {ARCHS}. Received: {name}={getattr(self, name)!r}",
                    )
        else:
            arch = check_choice("arch", "mlp" if self.arch is None else self.arch, ARCHS)
            object.__setattr__(self, "arch", arch)
            for name, default in (
                ("activation", _DEFAULT_ACTIVATION[arch]),
                ("depth", _DEFAULT_DEPTH),
                ("width", _DEFAULT_WIDTH),
            ):
                if getattr(self, name) is None:
                    object.__setattr__(self, name, default)
            if not isinstance(self.activation, str):  # stored in the JSON, so a name
                raise TypeError(
                    "`activation` must be an activation name, a string. "
                    f"Received: activation={self.activation!r}"
                )
            activation_name(self.activation)  # an unknown name: "did you mean", naming `activation`
            check_positive_int("depth", self.depth)
            check_positive_int("width", self.width)
        if self.arch == "rnn":
            cell = check_choice("cell", "lstm" if self.cell is None else self.cell, CELLS)
            object.__setattr__(self, "cell", cell)
            recurrent = "orthogonal" if self.recurrent_init is None else self.recurrent_init
            object.__setattr__(self, "recurrent_init", _identifier(recurrent, "recurrent_init"))
            if split_model_level(self.recurrent_init)[1] is not None:
                raise CompareError(
                    "recurrent_init",
                    "`recurrent_init` must be an initializer, not a model-level step "
                    f"('lsuv', 'reinitialize'). Received: recurrent_init={self.recurrent_init!r}",
                )
        else:
            for name in ("cell", "recurrent_init"):
                if getattr(self, name) is not None:
                    raise CompareError(
                        name,
                        f"`{name}` applies only to arch='rnn'. "
                        f"Received: {name}={getattr(self, name)!r} with arch={self.arch!r}",
                    )
        if self.data is not None:
            load_function(self.data, "data")
        check_positive("lr", self.lr)
        check_non_negative("momentum", self.momentum)
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_seed_range("seed", self.seed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; a callable ``model`` or ``data`` as "module:qualname"."""
        record = dataclasses.asdict(self)
        record["initializers"] = list(self.initializers)
        for name in ("model", "data"):
            record[name] = _spec(getattr(self, name))
        return record


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One initializer's run: its layer stats at initialization and how training went.

    Attributes:
        initializer: The name (or config) the run was given.
        train_accuracy: Accuracy on the training split after the last epoch
            (NaN for a user's model compiled without an accuracy metric).
        val_accuracy: Accuracy on the held-out split (NaN likewise).
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


def load_digits(seed: int) -> Data:
    """scikit-learn's bundled 8x8 digits, split 80/20 by ``seed``, standardized.

    Each of the 64 pixels is standardized with the training split's mean and
    std (a pixel that is constant there is only centred). No download.

    Raises:
        MissingExtraError: If scikit-learn is not installed (the message
            names ``keras-inits[compare]``).
    """
    datasets = import_optional("sklearn.datasets", "compare", "Loading the digits data")
    images, labels = datasets.load_digits(return_X_y=True)
    train, val = _split(len(images), seed)
    mean = images[train].mean(axis=0)
    std = images[train].std(axis=0)
    std[std == 0] = 1.0
    images = ((images - mean) / std).astype("float32")
    labels = labels.astype("int32")
    return (images[train], labels[train]), (images[val], labels[val])


def _split(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(count)
    split = min(max(round(count * (1 - _VAL_FRACTION)), 1), count - 1)
    return order[:split], order[split:]


# The user's functions


def load_function(spec: Any, argument: str) -> Callable[..., Any]:
    """The function ``spec`` names: "MODULE:FUNCTION", or ``spec`` itself if callable.

    MODULE is a path to a .py file when it ends in ".py" or holds a path
    separator (the file runs once, with its folder on ``sys.path``);
    otherwise an importable module name, searched in the current directory
    first (as ``python -m`` would) and then on ``sys.path``.

    Raises:
        CompareError: Naming ``argument``: not "MODULE:FUNCTION", no such file
            or module, the module fails to import, no such attribute, or it
            is not callable.

    Example:
        >>> load_function("math:sqrt", "model")(4.0)
        2.0
    """
    if callable(spec):
        return spec  # type: ignore[no-any-return]
    received = f"Received: {argument}={spec!r}"
    form = "'MODULE:FUNCTION' (a module name or a .py file path, a colon, a function name)"
    if not isinstance(spec, str):
        raise CompareError(argument, f"`{argument}` must be {form} or a callable. {received}")
    module_name, _, attribute = spec.rpartition(":")
    if not module_name or not attribute.isidentifier():
        raise CompareError(argument, f"`{argument}` must be {form}. {received}")
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        module = _load_file(module_name, argument, received)
    else:
        module = _import(module_name, argument, received)
    if not hasattr(module, attribute):
        hint = did_you_mean(attribute, [name for name in vars(module) if not name.startswith("_")])
        raise CompareError(
            argument,
            f"`{argument}` names {attribute!r}, which {module_name!r} does not define.{hint} "
            f"{received}",
        )
    function = getattr(module, attribute)
    if not callable(function):
        raise CompareError(
            argument,
            f"`{argument}` must name a function; {attribute!r} in {module_name!r} is not "
            f"callable (type {type(function).__name__}). {received}",
        )
    return function  # type: ignore[no-any-return]


def _import(name: str, argument: str, received: str) -> ModuleType:
    folder = os.getcwd()
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            raise CompareError(
                argument,
                f"`{argument}` names a module that cannot be found: no module named {missing!r} "
                f"in the current directory or on sys.path. {received}",
            ) from None
        raise _import_error(name, error, argument, received) from None
    except Exception as error:
        raise _import_error(name, error, argument, received) from None
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


def _load_file(path: str, argument: str, received: str) -> ModuleType:
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise CompareError(
            argument, f"`{argument}` names a file that does not exist: {path!r}. {received}"
        )
    digest = hashlib.sha1(path.encode()).hexdigest()[:12]
    name = f"_keras_inits_user_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CompareError(argument, f"`{argument}` must name a Python file. {received}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = os.path.dirname(path)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise _import_error(os.path.basename(path), error, argument, received) from None
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    return module


def _import_error(name: str, error: Exception, argument: str, received: str) -> CompareError:
    return CompareError(
        argument,
        f"`{argument}` names a module that fails to import: {name!r} raised "
        f"{type(error).__name__}: {error}. {received}",
    )


def _spec(value: Any) -> Any:
    """A JSON-ready name for a ``model`` or ``data`` setting."""
    if value is None or isinstance(value, str):
        return value
    module = getattr(value, "__module__", None) or "?"
    return f"{module}:{getattr(value, '__qualname__', type(value).__name__)}"


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


# Data


def load_data(config: CompareConfig) -> Data:
    """The training and validation splits ``config`` trains on, shaped for its architecture.

    The digits (``load_digits``) as (n, 64) for "mlp" and a user's model,
    (n, 8, 8, 1) for "cnn", (n, 8, 8) for "rnn"; or what ``config.data``
    returns, checked.

    Raises:
        CompareError: Naming ``data``: its function fails, returns something
            other than (x, y) or ((x_train, y_train), (x_val, y_val)), x and
            y differ in length, or the arrays do not fit the architecture.
        MissingExtraError: If the digits are needed and scikit-learn is missing.
    """
    if config.data is None:
        (x_train, y_train), (x_val, y_val) = load_digits(config.seed)
        shape = _DIGITS_SHAPES[str(config.arch)]
        return (x_train.reshape(-1, *shape), y_train), (x_val.reshape(-1, *shape), y_val)
    function = load_function(config.data, "data")
    name = _spec(config.data)
    received = f"Received: data={name!r}"
    try:
        returned = function()
    except Exception as error:
        raise CompareError(
            "data", f"`data`'s function raised {type(error).__name__}: {error}. {received}"
        ) from None
    form = "(x, y) or ((x_train, y_train), (x_val, y_val))"
    if _is_pair(returned) and all(_is_pair(part) for part in returned):
        (x_train, y_train), (x_val, y_val) = (_arrays(part, received) for part in returned)
    elif _is_pair(returned):
        x, y = _arrays(returned, received)
        if len(x) < 2:
            raise CompareError(
                "data", f"`data` must give at least 2 samples to split; got {len(x)}. {received}"
            )
        train, val = _split(len(x), config.seed)
        (x_train, y_train), (x_val, y_val) = (x[train], y[train]), (x[val], y[val])
    else:
        raise CompareError(
            "data", f"`data` must return {form}; it returned {_describe(returned)}. {received}"
        )
    if len(x_train) == 0 or len(x_val) == 0:
        raise CompareError(
            "data",
            f"`data` must give a non-empty training and validation split; got {len(x_train)} "
            f"and {len(x_val)} samples. {received}",
        )
    if config.arch != USER_MODEL:
        x_train, x_val = (_fit_arch(x, config, received) for x in (x_train, x_val))
        for y in (y_train, y_val):
            if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1 or y.min() < 0:
                raise CompareError(
                    "data",
                    f"`data` must give y as integer class labels 0, 1, ... of shape (n,) for "
                    f"arch={config.arch!r}; got {y.dtype} of shape {y.shape}. {received}",
                )
        y_train, y_val = y_train.astype("int32"), y_val.astype("int32")
    return (x_train, y_train), (x_val, y_val)


def _is_pair(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2


def _arrays(pair: Any, received: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        x, y = (np.asarray(item) for item in pair)
    except (ValueError, TypeError) as error:
        raise CompareError("data", f"`data` must give arrays ({error}). {received}") from None
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise CompareError(
            "data",
            f"`data` must give x and y with one sample per row, the same number; got x of "
            f"shape {x.shape} and y of shape {y.shape}. {received}",
        )
    return x, y


def _fit_arch(x: np.ndarray, config: CompareConfig, received: str) -> np.ndarray:
    wanted = {"mlp": (2,), "cnn": (3, 4), "rnn": (3,)}[str(config.arch)]
    layout = {
        "mlp": "(n, features)",
        "cnn": "(n, h, w) or (n, h, w, c)",
        "rnn": "(n, steps, features)",
    }
    if x.ndim not in wanted or not np.issubdtype(x.dtype, np.number):
        raise CompareError(
            "data",
            f"`data` must give x as numbers of shape {layout[str(config.arch)]} for "
            f"arch={config.arch!r}; got {x.dtype} of shape {x.shape}. {received}",
        )
    if config.arch == "cnn" and x.ndim == 3:
        x = x[..., None]  # one channel
    return x.astype("float32")


# Built-in architectures


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
    return _with_output(layers, classes, seed, "mlp")


def build_cnn(
    initializer: Any,
    activation: str,
    depth: int,
    width: int,
    input_shape: tuple[int, ...] = (8, 8, 1),
    classes: int = 10,
    seed: int = 0,
) -> keras.Model:
    """``depth`` 3x3 ``padding="same"`` Conv2D layers of ``width`` channels, then a linear head.

    The head flattens the last feature map into a Dense output layer with
    Keras's default GlorotUniform at a fixed ``seed``, shared by the runs.

    Example:
        >>> model = build_cnn("delta_orthogonal", "tanh", depth=2, width=8)
        >>> [tuple(layer.kernel.shape) for layer in model.layers if hasattr(layer, "kernel")]
        [(3, 3, 1, 8), (3, 3, 8, 8), (512, 10)]
    """
    layers: list[Any] = [keras.Input(input_shape)]
    for index in range(1, depth + 1):
        layers.append(
            keras.layers.Conv2D(
                width,
                3,
                padding="same",
                activation=activation,
                kernel_initializer=get(initializer),
                name=f"hidden_{index}",
            )
        )
    layers.append(keras.layers.Flatten(name="flatten"))
    return _with_output(layers, classes, seed, "cnn")


def build_rnn(
    initializer: Any,
    recurrent_initializer: Any,
    cell: str,
    activation: str,
    depth: int,
    width: int,
    input_shape: tuple[int, ...] = (8, 8),
    classes: int = 10,
    seed: int = 0,
) -> keras.Model:
    """``depth`` stacked LSTM, GRU or SimpleRNN layers (``cell``), then a linear output.

    Every layer but the last returns its whole sequence; the output layer
    reads the last one's final state, with Keras's default GlorotUniform at
    a fixed ``seed``. ``initializer`` fills each layer's input kernel,
    ``recurrent_initializer`` its recurrent kernel; ``activation`` is the
    cell's output activation (the gates keep their sigmoid).

    Example:
        >>> model = build_rnn("glorot_uniform", "orthogonal", "gru", "tanh", depth=2, width=8)
        >>> [tuple(w.shape) for w in model.weights if w.name.endswith("kernel")]
        [(8, 24), (8, 24), (8, 24), (8, 24), (8, 10)]
    """
    kind = getattr(keras.layers, _RNN_LAYERS[check_choice("cell", cell, CELLS)])
    layers: list[Any] = [keras.Input(input_shape)]
    for index in range(1, depth + 1):
        layers.append(
            kind(
                width,
                activation=activation,
                kernel_initializer=get(initializer),
                recurrent_initializer=get(recurrent_initializer),
                return_sequences=index < depth,
                name=f"hidden_{index}",
            )
        )
    return _with_output(layers, classes, seed, "rnn")


def _with_output(layers: list[Any], classes: int, seed: int, name: str) -> keras.Model:
    """``layers`` and a linear Dense output (GlorotUniform at ``seed``, shared by the runs)."""
    output_init = keras.initializers.GlorotUniform(seed=seed)
    layers.append(keras.layers.Dense(classes, kernel_initializer=output_init, name="output"))
    return keras.Sequential(layers, name=name)


def hidden_kernel_shapes(
    config: CompareConfig, input_shape: tuple[int, ...] | None = None
) -> dict[str, tuple[int, ...]]:
    """The distinct hidden kernel shapes of ``config``'s built-in network, by the first layer.

    ``input_shape`` is one sample's shape (default: the digits as the
    architecture reads them). For "rnn" these are the input kernels
    (``recurrent_kernel_shapes`` gives the recurrent ones). A user's model
    has none here: ``check_model`` builds it instead.

    Example:
        >>> hidden_kernel_shapes(CompareConfig(depth=3, width=16))
        {'hidden_1': (64, 16), 'hidden_2': (16, 16)}
        >>> hidden_kernel_shapes(CompareConfig(arch="cnn", depth=2, width=16))
        {'hidden_1': (3, 3, 1, 16), 'hidden_2': (3, 3, 16, 16)}
        >>> hidden_kernel_shapes(CompareConfig(arch="rnn", depth=2, width=16))
        {'hidden_1': (8, 64), 'hidden_2': (16, 64)}
    """
    if config.arch == USER_MODEL:
        return {}
    shape = _DIGITS_SHAPES[str(config.arch)] if input_shape is None else tuple(input_shape)
    width, depth = int(config.width or 0), int(config.depth or 0)
    columns = width * _GATES[str(config.cell)] if config.arch == "rnn" else width
    first: tuple[int, ...] = (shape[-1], columns)
    deeper: tuple[int, ...] = (width, columns)
    if config.arch == "cnn":
        first, deeper = (3, 3, shape[-1], width), (3, 3, width, width)
    shapes = {"hidden_1": first}
    if depth > 1 and deeper != first:
        shapes["hidden_2"] = deeper
    return shapes


def recurrent_kernel_shapes(config: CompareConfig) -> dict[str, tuple[int, ...]]:
    """The recurrent kernel shape of an "rnn" config, (width, gates * width); else empty.

    Example:
        >>> recurrent_kernel_shapes(CompareConfig(arch="rnn", depth=2, width=16))
        {'hidden_1': (16, 64)}
    """
    if config.arch != "rnn":
        return {}
    width = int(config.width or 0)
    return {"hidden_1": (width, width * _GATES[str(config.cell)])}


def check_fills(
    identifier: Any,
    shapes: dict[str, tuple[int, ...]],
    argument: str,
    kind: str = "Dense kernel",
) -> None:
    """Draws each kernel of ``shapes`` once from ``identifier``: a bad fit fails before training.

    An initializer that cannot fill a kernel (``bilinear`` needs 4-D,
    ``delta_orthogonal`` out >= in, ``icnr`` out divisible by scale^2) would
    otherwise fail only when its run builds the model, after the runs before
    it have trained. A model-level run ("lsuv", "NAME+reinitialize") is
    checked on its base initializer.

    Raises:
        CompareError: Naming ``argument``, the layer and the initializer's own reason.
    """
    base, _ = split_model_level(identifier)
    for layer, shape in shapes.items():
        try:
            resolve(base, argument)(shape)
        except Exception as error:
            raise CompareError(
                argument,
                f"`{argument}` must fill every hidden {kind}; it cannot fill {layer}'s, "
                f"shape {shape} ({type(error).__name__}: {error}). "
                f"Received: {argument}={identifier!r}",
            ) from error


def _build(config: CompareConfig, identifier: Any, data: Data) -> keras.Model:
    """The network of one run, with its model-level step (lsuv, reinitialize) applied."""
    base, step = split_model_level(identifier)
    (x_train, y_train), _ = data
    classes = int(y_train.max()) + 1 if config.arch != USER_MODEL else 0
    if config.arch == USER_MODEL:
        model = load_function(config.model, "model")(base)
    elif config.arch == "cnn":
        model = build_cnn(
            base,
            str(config.activation),
            int(config.depth or 0),
            int(config.width or 0),
            input_shape=x_train.shape[1:],
            classes=classes,
            seed=config.seed,
        )
    elif config.arch == "rnn":
        model = build_rnn(
            base,
            config.recurrent_init,
            str(config.cell),
            str(config.activation),
            int(config.depth or 0),
            int(config.width or 0),
            input_shape=x_train.shape[1:],
            classes=classes,
            seed=config.seed,
        )
    else:
        model = build_mlp(
            base,
            str(config.activation),
            int(config.depth or 0),
            int(config.width or 0),
            inputs=x_train.shape[1],
            classes=classes,
            seed=config.seed,
        )
    if not isinstance(model, keras.Model):
        return model  # check_model reports it
    if step == LSUV:
        from keras_inits.model import lsuv

        lsuv(model, x_train[:LSUV_BATCH], seed=config.seed, verbose=False)
    elif step == REINITIALIZE:
        from keras_inits.model import reinitialize

        reinitialize(model, seed=config.seed)
    return model


def _loss_and_metrics(model: keras.Model, y: np.ndarray) -> tuple[Any, list[str]]:
    """What an uncompiled model is compiled with: see ``CompareConfig.model``."""
    if np.issubdtype(y.dtype, np.integer):
        last = model.layers[-1] if model.layers else None
        activation = getattr(getattr(last, "activation", None), "__name__", None)
        softmax = isinstance(last, keras.layers.Softmax) or activation == "softmax"
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax)
        return loss, ["accuracy"]
    return keras.losses.MeanSquaredError(), []


def _compiled(model: keras.Model) -> bool:
    return bool(getattr(model, "compiled", False))


def check_model(
    config: CompareConfig, data: Data | None = None, init_argument: str | None = None
) -> None:
    """Everything about ``config``'s runs that can fail before training, checked now.

    Built-in architectures: every initializer fills the hidden kernel shapes
    (``check_fills``), and for "rnn" ``recurrent_init`` fills the recurrent
    ones. A user's model: built once with Keras's default glorot_uniform, it
    must be a functional or Sequential ``keras.Model`` that takes a batch of
    the data and whose output the loss can compare with the targets (both
    tried on 8 samples); then it is built once with each initializer.

    Args:
        config: The comparison.
        data: Its data (``load_data(config)``); needed for a user's model or
            ``config.data``, loaded when not given.
        init_argument: The name errors give an initializer (default
            ``initializers[i]``; the command line passes "init").

    Raises:
        CompareError: Naming the setting that does not fit.
    """

    def argument(index: int) -> str:
        return init_argument or f"initializers[{index}]"

    if config.arch != USER_MODEL:
        input_shape = None if data is None else tuple(data[0][0].shape[1:])
        shapes = hidden_kernel_shapes(config, input_shape)
        kind = _KERNEL_KIND.get(str(config.arch), "")
        if config.arch == "rnn":
            kind = f"{_RNN_LAYERS[str(config.cell)]} input kernel"
            check_fills(
                config.recurrent_init,
                recurrent_kernel_shapes(config),
                "recurrent_init",
                kind=f"{_RNN_LAYERS[str(config.cell)]} recurrent kernel",
            )
        for index, identifier in enumerate(config.initializers):
            check_fills(identifier, shapes, argument(index), kind=kind)
        return
    data = load_data(config) if data is None else data
    name = _spec(config.model)
    received = f"Received: model={name!r}"
    model = _user_model(config, _KERAS_DEFAULT, data, "model", received)
    (x_train, y_train), _ = data
    sample_x, sample_y = x_train[:8], y_train[:8]
    expected = tuple(model.inputs[0].shape[1:]) if len(model.inputs) == 1 else None
    if expected is None:
        raise CompareError(
            "model",
            f"`model` must return a model with one input; it has {len(model.inputs)}. {received}",
        )
    if len(expected) != x_train.ndim - 1 or any(
        want is not None and want != got
        for want, got in zip(expected, x_train.shape[1:], strict=True)
    ):
        source = "the digits (64 pixels each)" if config.data is None else "`data`"
        raise CompareError(
            "model",
            f"`model` must take the data: its input is (None, {', '.join(map(str, expected))}), "
            f"but x from {source} has shape {x_train.shape}. {received}",
        )
    loss = None if _compiled(model) else _loss_and_metrics(model, y_train)[0]
    if isinstance(loss, keras.losses.SparseCategoricalCrossentropy):
        classes = int(max(y_train.max(), data[1][1].max())) + 1
        output = tuple(model.outputs[0].shape)
        if len(model.outputs) != 1 or len(output) != 2 or (output[-1] or 0) < classes:
            raise CompareError(
                "model",
                f"`model` must output one score per class for the integer labels 0..{classes - 1} "
                f"(shape (None, {classes})), or come compiled with its own loss; its output is "
                f"{_output_shapes(model)}. {received}",
            )
    try:
        layer_stats(model, sample_x, sample_y, loss=loss)
    except Exception as error:
        raise CompareError(
            "model",
            f"`model` must take the data and give outputs its loss can compare with y of "
            f"shape {y_train.shape} ({type(error).__name__}: {error}). {received}",
        ) from None
    for index, identifier in enumerate(config.initializers):
        try:
            built = _build(config, identifier, data)
        except CompareError:
            raise
        except Exception as error:
            raise CompareError(
                argument(index),
                f"`{argument(index)}` must fill every kernel of the `model`; building it with "
                f"{identifier!r} failed ({type(error).__name__}: {error}). "
                f"Received: {argument(index)}={identifier!r}",
            ) from None
        if not isinstance(built, keras.Model):
            raise CompareError(
                "model",
                f"`model` must return a keras.Model; given {identifier!r} it returned "
                f"{_describe(built)}. {received}",
            )


def _output_shapes(model: keras.Model) -> str:
    shapes = [tuple(output.shape) for output in model.outputs]
    return str(shapes[0]) if len(shapes) == 1 else str(shapes)


def _user_model(
    config: CompareConfig, identifier: Any, data: Data, argument: str, received: str
) -> keras.Model:
    try:
        model = _build(config, identifier, data)
    except CompareError:
        raise
    except Exception as error:
        raise CompareError(
            argument,
            f"`model`'s function raised {type(error).__name__} when called with "
            f"{identifier!r}: {error}. {received}",
        ) from None
    if not isinstance(model, keras.Model):
        raise CompareError(
            "model",
            f"`model` must return a keras.Model; it returned {_describe(model)}. {received}",
        )
    try:
        inputs = model.inputs
    except AttributeError:
        inputs = None
    if not inputs:
        raise CompareError(
            "model",
            "`model` must return a functional or Sequential model built on keras.Input, so "
            f"that each layer's output can be read; it returned a {type(model).__name__} "
            f"without inputs. {received}",
        )
    return model


def run_compare(
    config: CompareConfig, on_epoch: EpochCallback | None = None, data: Data | None = None
) -> list[RunResult]:
    """Builds and trains ``config``'s network once per initializer.

    Args:
        config: What to build and how to train it.
        on_epoch: Called after every epoch as ``on_epoch(run, initializer,
            epoch, loss)``, with 0-based ``run`` and 1-based ``epoch``: a hook
            for progress bars.
        data: ``load_data(config)``, if the caller has it already.

    Returns:
        One ``RunResult`` per initializer, in the order given.

    Raises:
        CompareError: Before any training, if an initializer cannot fill the
            hidden kernels or the user's model or data do not fit (see
            ``check_model`` and ``load_data``).
        MissingExtraError: If scikit-learn is needed and not installed.
    """
    if config.arch != USER_MODEL and config.data is None:
        check_model(config)  # before loading anything
    data = load_data(config) if data is None else data
    check_model(config, data)
    (x_train, y_train), (x_val, y_val) = data
    results = []
    for run, initializer in enumerate(config.initializers):
        keras.utils.set_random_seed(config.seed)
        model = _build(config, initializer, data)
        compiled = _compiled(model)
        loss, metrics = (None, []) if compiled else _loss_and_metrics(model, y_train)
        if config.arch != USER_MODEL:  # a linear output layer: logits
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        layers = layer_stats(model, x_train, y_train, loss=loss)  # None: the model's own
        if not compiled:
            model.compile(
                optimizer=keras.optimizers.SGD(config.lr, momentum=config.momentum),
                loss=loss,
                metrics=metrics,
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
        train = model.evaluate(x_train, y_train, batch_size=512, verbose=0, return_dict=True)
        val = model.evaluate(x_val, y_val, batch_size=512, verbose=0, return_dict=True)
        results.append(
            RunResult(
                initializer=initializer,
                train_accuracy=_accuracy(train),
                val_accuracy=_accuracy(val),
                final_loss=float(train["loss"]),
                loss_curve=[float(value) for value in history.history["loss"]],
                layers=layers,
            )
        )
    return results


def _accuracy(metrics: dict[str, Any]) -> float:
    """The first accuracy metric ``evaluate`` reported, or NaN if none."""
    for key, value in metrics.items():
        if "accuracy" in key:
            return float(value)
    return math.nan


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
        hidden = [record for record in result.layers if _is_hidden(record.name)]
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
                _number(result.train_accuracy),
                _number(result.val_accuracy),
            )
        )
    return format_table(header, rows)


def _is_hidden(name: str) -> bool:
    """A built-in network's hidden layer: "hidden_2", or a kernel path through it."""
    return any(part.startswith("hidden_") for part in name.split("/"))


def _number(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def _pair(first: float | None, last: float | None) -> str:
    if first is None or last is None:
        return "-"
    return f"{first:.3g} / {last:.3g}"


def _identifier(item: Any, argument: str) -> Any:
    """A name or config dict for ``item``; an unknown name fails here, before any training."""
    base, step = split_model_level(item)
    if step is not None:
        if item != base + "+" + REINITIALIZE:  # "lsuv", "reinitialize"
            return item
        resolve(base, argument)  # the base must be a known name
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
