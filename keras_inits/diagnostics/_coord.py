"""The coordinate check of muP: does each layer's output keep its size as the model widens?

The test microsoft/mup calls ``get_coord_data`` / ``plot_coord_data`` (Yang
et al. 2022, Tensor Programs V, figures 5 and 13), for Keras: build the same
architecture at several widths, take a few optimizer steps on one batch, and
record the mean absolute value of every layer's output (its typical
"coordinate") at init and after each step. Under a parametrization that
transfers across widths (muP) the curves are flat in width; under the
standard one the logits and the late activations grow with width once
training starts, the blow-up that makes a learning rate tuned small fail
large.

``coord_check`` gives the numbers (no plotting dependency);
``plot_coord_check`` draws them (needs ``keras-inits[plot]``). This module
trains the models it builds and never touches a model it was not given by
``build``; it never imports matplotlib at import time.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal

import keras
import numpy as np

from keras_inits._compat import train_on_batch
from keras_inits._extras import import_optional
from keras_inits._validation import (
    check_choice,
    check_positive,
    check_positive_int,
    check_seed_range,
)
from keras_inits.diagnostics._plots import check_plot_path, save_figure
from keras_inits.diagnostics._stats import _first, _numpy

__all__ = ["CoordCheck", "Parametrization", "coord_check", "plot_coord_check"]

Parametrization = Literal["mup", "standard"]
_PARAMETRIZATIONS: tuple[Parametrization, ...] = typing.get_args(Parametrization)


@dataclasses.dataclass(frozen=True, eq=False)
class CoordCheck:
    """What ``coord_check`` measured: each layer's mean |coordinate|, by width and step.

    Attributes:
        parametrization: ``"mup"`` or ``"standard"``.
        widths: The widths checked, ascending.
        steps: The number of training steps taken at each width.
        layers: One name per layer with an output (input layers left out), in
            the model's order. A layer keeps its own name where ``build``
            gives it the same one at every width; otherwise (Keras numbers
            unnamed layers per model: ``dense_7``) it is ``"<index>:<class>"``,
            its position among the recorded layers and its class.
        values: Mean absolute value of each layer's output on the batch, a
            read-only float64 array of shape ``(len(widths), steps + 1,
            len(layers))``; step 0 is at init, step ``t`` after ``t``
            optimizer steps.
        losses: The training loss that ``train_on_batch`` reported at each
            step, shape ``(len(widths), steps)`` (the loss before that step's
            update, as Keras reports it).
    """

    parametrization: str
    widths: tuple[int, ...]
    steps: int
    layers: tuple[str, ...]
    values: np.ndarray
    losses: np.ndarray

    def ratio(self, step: int = -1) -> dict[str, float]:
        """How far each layer's mean |coordinate| moves from its value at the first width.

        For every layer, ``values[w, step] / values[0, step]`` for each width
        ``w``, and of those the one farthest from 1 (on a log scale): above 1
        the layer's coordinates grow with width, below 1 they shrink. "Within
        1.5x" reads ``1 / 1.5 <= ratio <= 1.5``.

        Args:
            step: Which record: 0 is at init, ``t`` after ``t`` steps; negative
                counts from the end (-1, the default, is after the last step).

        Returns:
            Layer name -> its ratio, in the order of ``layers``. A layer whose
            output is 0 at the first width has ratio 1.0 if it stays 0 and inf
            otherwise; NaN where a value is not finite.

        Raises:
            TypeError: If ``step`` is not an int (bool refused).
            ValueError: If ``step`` is outside ``[-(steps + 1), steps]``.
        """
        row = self.values[:, self._step(step), :]
        ratios: dict[str, float] = {}
        for index, name in enumerate(self.layers):
            first, column = float(row[0, index]), row[:, index]
            if not np.all(np.isfinite(column)):
                ratios[name] = math.nan
            elif first == 0.0:
                ratios[name] = 1.0 if not np.any(column) else math.inf
            else:
                factors = column / first
                ratios[name] = float(factors[np.argmax(np.abs(np.log(factors)))])
        return ratios

    def table(self, step: int = -1) -> str:
        """A plain-text table of mean |coordinate|: one row per layer, one column per width.

        The last column is ``ratio(step)``. ``step`` is read as ``ratio`` reads it.

        Example:
            >>> check = CoordCheck(
            ...     parametrization="standard", widths=(64, 128), steps=1,
            ...     layers=("hidden", "logits"),
            ...     values=np.array([[[1.0, 0.5], [1.0, 2.0]], [[1.0, 0.5], [1.2, 8.0]]]),
            ...     losses=np.array([[2.3], [2.3]]),
            ... )
            >>> print(check.table())
            mean |coord| after step 1 (standard)
            layer          64       128     ratio
            hidden          1       1.2       1.2
            logits          2         8         4
        """
        index = self._step(step)
        ratios = self.ratio(step)
        label = "at init" if index == 0 else f"after step {index}"
        width = max(10, *(len(name) + 2 for name in self.layers))
        lines = [
            f"mean |coord| {label} ({self.parametrization})",
            "layer".ljust(width) + "".join(f"{w:>10}" for w in self.widths) + f"{'ratio':>10}",
        ]
        for column, name in enumerate(self.layers):
            cells = "".join(f"{v:>10.4g}" for v in self.values[:, index, column])
            lines.append(name.ljust(width) + cells + f"{ratios[name]:>10.4g}")
        return "\n".join(lines)

    def _step(self, step: Any) -> int:
        records = self.steps + 1
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise TypeError(
                f"`step` must be an int in [{-records}, {self.steps}], not "
                f"{type(step).__name__}. Received: step={step!r}"
            )
        step = int(step)
        if not -records <= step <= self.steps:
            raise ValueError(
                f"`step` must be an int in [{-records}, {self.steps}] (step 0 is at init, "
                f"then {self.steps} training steps). Received: step={step!r}"
            )
        return step % records


def coord_check(
    build: Callable[[int], keras.Model],
    widths: Sequence[int],
    x: Any,
    y: Any,
    *,
    steps: int = 3,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float | None = None,
    loss: Any = None,
    parametrization: Parametrization = "mup",
    base_width: int | None = None,
    seed: int = 0,
) -> CoordCheck:
    """Trains ``build(width)`` a few steps at each width and records every layer's mean |coord|.

    For each width: ``keras.utils.set_random_seed(seed)``, ``model =
    build(width)``, under ``"mup"`` ``plan = keras_inits.mup(model,
    base=build(base_width), delta=build(...))`` and the optimizer
    ``plan.optimizer(...)``, under ``"standard"`` the model and optimizer as
    they are; then ``steps`` calls of ``model.train_on_batch(x, y)`` on the
    same batch, as microsoft/mup's ``get_coord_data`` does. Recorded for
    each layer with an output (input layers left out), at init and after
    each step::

        mean |coord| = mean over the batch and the output's units of |layer(x)|

    read on ``x`` with ``training=False``. muP is working when each layer's
    value stays put as the width grows (``CoordCheck.ratio`` near 1); under
    the standard parametrization with Adam the logits grow about in
    proportion to the width after one step.

    Args:
        build: ``width -> model``: a built functional or Sequential Keras
            model (on ``keras.Input``), the same architecture at every width.
        widths: At least 2 distinct ints >= 1; sorted ascending here. The
            ratios compare against the first (smallest) width.
        x: One batch of inputs (an array, or a list or dict of arrays for a
            model with several inputs).
        y: Its targets, with as many samples as ``x``.
        steps: Training steps per width, an int >= 1.
        optimizer: A name for ``keras.optimizers.get`` or an optimizer
            instance; each width trains a fresh copy
            (``type(o).from_config(o.get_config())``).
        learning_rate: Overrides the optimizer's learning rate, a number > 0.
        loss: Anything ``Model.compile`` takes. None: mean squared error for
            float targets, ``SparseCategoricalCrossentropy(from_logits=True)``
            for integer targets (class indices, the model's last layer
            giving logits).
        parametrization: ``"mup"`` (``keras_inits.mup`` re-scales each model
            and its optimizer) or ``"standard"`` (the models as built).
        base_width: The width muP takes as its base, where muP changes
            nothing; None is the first width. Only for ``"mup"``. The other
            shape muP needs (``delta``) is built at the smallest width in
            ``widths`` that differs from it.
        seed: The seed set before each width's model is built, an int in
            [0, 2**32).

    Returns:
        A ``CoordCheck``.

    Raises:
        TypeError: For an argument of the wrong type (``build`` not
            callable, a width or ``steps`` not an int or a bool, an
            optimizer that is neither a name nor an Optimizer), or if
            ``build`` returns something that is not a ``keras.Model``.
        ValueError: For a bad value (fewer than 2 distinct widths, a
            non-positive width, ``steps`` < 1, an unknown parametrization,
            optimizer or loss name, ``x`` and ``y`` of different batch sizes,
            ``base_width`` under ``"standard"``); or if ``build`` returns a
            subclassed model (whose layers have no symbolic outputs to read)
            or different architectures at different widths.

    Example:
        >>> def build(width):
        ...     return keras.Sequential([
        ...         keras.Input((4,)),
        ...         keras.layers.Dense(width, activation="relu", name="hidden"),
        ...         keras.layers.Dense(1, name="out"),
        ...     ])
        >>> x, y = np.ones((2, 4), "float32"), np.zeros((2, 1), "float32")
        >>> check = coord_check(build, [8, 16], x, y, steps=1, parametrization="standard")
        >>> check.layers, check.values.shape
        (('hidden', 'out'), (2, 2, 2))

    Reference:
        Yang et al., 2022, "Tensor Programs V: Tuning Large Neural Networks
        via Zero-Shot Hyperparameter Transfer", https://arxiv.org/abs/2203.03466
        (the coordinate check: section 4 and figure 5; microsoft/mup's
        ``mup/coord_check.py``).
    """
    if not callable(build):
        raise TypeError(
            f"`build` must be a callable `width -> keras.Model`. Received: build={build!r}"
        )
    widths = _check_widths(widths)
    steps = check_positive_int("steps", steps)
    parametrization = check_choice("parametrization", parametrization, _PARAMETRIZATIONS)
    if learning_rate is not None:
        learning_rate = check_positive("learning_rate", learning_rate)
    seed = check_seed_range("seed", seed)
    if parametrization == "standard" and base_width is not None:
        raise ValueError(
            "`base_width` must be None under parametrization='standard' (only muP has a "
            f"base). Received: base_width={base_width!r}"
        )
    if base_width is None:
        base_width = widths[0]
    base_width = check_positive_int("base_width", base_width)
    template = _check_optimizer(optimizer)
    _check_batches(x, y)
    loss = _resolve_loss(loss, y)

    plan_for: Callable[[keras.Model], Any] | None = None
    if parametrization == "mup":
        import keras_inits  # the package above this module; imported here, not at its import

        delta_width = next(w for w in widths if w != base_width)
        base = _build(build, base_width)
        delta = _build(build, delta_width)
        _probe(base, base_width)  # a subclassed model fails here, before any training

        def plan_for(model: keras.Model) -> Any:
            return keras_inits.mup(model, base=base, delta=delta)

    values = np.zeros((len(widths), steps + 1, 0))
    losses = np.zeros((len(widths), steps))
    names_by_width: list[list[str]] = []
    classes: list[str] = []
    for row, width in enumerate(widths):
        keras.utils.set_random_seed(seed)
        model = _build(build, width)
        layers, probe = _probe(model, width)
        these = [type(layer).__name__ for layer in layers]
        if row == 0:
            classes = these
            values = np.zeros((len(widths), steps + 1, len(layers)))
        elif these != classes:
            raise ValueError(
                "`build` must return the same architecture at every width, as "
                f"build({widths[0]}) has layers {classes}. Received: build({width})="
                f"<{type(model).__name__} with layers {these}>"
            )
        names_by_width.append([layer.name for layer in layers])
        fresh = _copy_optimizer(template, learning_rate)
        if plan_for is not None:
            fresh = plan_for(model).optimizer(fresh)
        model.compile(optimizer=fresh, loss=loss)
        values[row, 0] = _mean_abs(probe, x)
        for step in range(steps):
            losses[row, step] = _scalar(train_on_batch(model, x, y)["loss"])
            values[row, step + 1] = _mean_abs(probe, x)
        del model, probe, fresh

    names = tuple(
        column[0] if len(set(column)) == 1 else f"{index}:{classes[index]}"
        for index, column in enumerate(zip(*names_by_width, strict=True))
    )
    values.flags.writeable = False
    losses.flags.writeable = False
    return CoordCheck(
        parametrization=parametrization,
        widths=tuple(widths),
        steps=steps,
        layers=names,
        values=values,
        losses=losses,
    )


def plot_coord_check(
    check: CoordCheck | Sequence[CoordCheck],
    path: str | os.PathLike[str],
    title: str | None = None,
) -> str:
    """Writes an image of ``check``: one panel per step, mean |coord| against width.

    As microsoft/mup's ``plot_coord_data`` draws it: x is the width (log2
    scale), y the mean |coordinate| (log scale, shared by every panel), one
    line per layer. Flat lines are what muP promises; lines that climb with
    width are the standard parametrization's blow-up. Given several checks
    (the standard parametrization and muP, say), each gets a row.

    Args:
        check: What ``coord_check`` returned, or a sequence of such results.
        path: Where to write the image; its extension picks the format;
            missing parent folders are created.
        title: A title for the whole figure.

    Returns:
        The path written, as a string.

    Raises:
        TypeError: If ``check`` is not a ``CoordCheck`` or a non-empty
            sequence of them.
        MissingExtraError: If matplotlib is not installed (the message names
            ``keras-inits[plot]``).
        ValueError: If ``path`` ends in an image format matplotlib cannot
            write (see ``check_plot_path``).
    """
    checks = [check] if isinstance(check, CoordCheck) else check
    if (
        not isinstance(checks, Sequence)
        or not checks
        or not all(isinstance(c, CoordCheck) for c in checks)
    ):
        raise TypeError(
            "`check` must be a CoordCheck, as coord_check returns it, or a non-empty "
            f"sequence of them. Received: check={check!r}"
        )
    check_plot_path(path)  # an unknown image format fails before the drawing
    figure_module = import_optional("matplotlib.figure", "plot", "Plotting")
    import_optional("matplotlib.backends.backend_agg", "plot", "Plotting")

    columns = max(c.steps for c in checks) + 1
    figure = figure_module.Figure(
        figsize=(3.2 * columns + 2.4, 3.0 * len(checks)), layout="constrained"
    )
    axes = np.array(figure.subplots(len(checks), columns, sharey=True, squeeze=False))
    log = any(np.any(np.isfinite(c.values) & (c.values > 0)) for c in checks)
    for row, record in enumerate(checks):
        for step in range(columns):
            axis = axes[row, step]
            if step > record.steps:
                axis.set_visible(False)
                continue
            for index, name in enumerate(record.layers):
                axis.plot(record.widths, record.values[:, step, index], marker="o", label=name)
            axis.set_xscale("log", base=2)
            axis.set_xticks(record.widths, [str(w) for w in record.widths])
            if log:  # matplotlib refuses a log axis with nothing > 0 on it
                axis.set_yscale("log")
            when = "at init" if step == 0 else f"after step {step}"
            axis.set_title(f"{record.parametrization}: {when}", fontsize="medium")
            axis.set_xlabel("width")
            axis.grid(alpha=0.3)
        axes[row, 0].set_ylabel("mean |coord|")
        axes[row, record.steps].legend(
            loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", frameon=False
        )
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)


def _check_widths(widths: Any) -> list[int]:
    allowed = "a sequence of at least 2 distinct ints >= 1"
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(f"`widths` must be {allowed}. Received: widths={widths!r}")
    checked = [check_positive_int(f"widths[{i}]", w) for i, w in enumerate(widths)]
    if len(set(checked)) != len(checked) or len(checked) < 2:
        raise ValueError(f"`widths` must be {allowed}. Received: widths={widths!r}")
    return sorted(checked)


def _check_optimizer(optimizer: Any) -> keras.optimizers.Optimizer:
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    allowed = "an optimizer name for keras.optimizers.get (such as 'adam') or an Optimizer"
    if not isinstance(optimizer, str):
        raise TypeError(f"`optimizer` must be {allowed}. Received: optimizer={optimizer!r}")
    try:
        return keras.optimizers.get(optimizer)
    except ValueError as error:
        raise ValueError(
            f"`optimizer` must be {allowed}. Received: optimizer={optimizer!r}"
        ) from error


def _copy_optimizer(
    template: keras.optimizers.Optimizer, learning_rate: float | None
) -> keras.optimizers.Optimizer:
    config = template.get_config()
    if learning_rate is not None:
        config["learning_rate"] = learning_rate
    return type(template).from_config(config)


def _resolve_loss(loss: Any, y: Any) -> Any:
    if loss is None:
        first = _arrays(y)[0]
        dtype = keras.backend.standardize_dtype(getattr(first, "dtype", np.asarray(first).dtype))
        if "int" in dtype:
            return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        return keras.losses.MeanSquaredError()
    if isinstance(loss, str):
        try:
            keras.losses.get(loss)
        except ValueError as error:
            raise ValueError(
                f"`loss` must be a loss Keras knows by name, a Loss or a callable. "
                f"Received: loss={loss!r}"
            ) from error
    elif not callable(loss):
        raise TypeError(
            f"`loss` must be None, a loss name, a Loss or a callable. Received: loss={loss!r}"
        )
    return loss


def _arrays(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _shape(array: Any) -> tuple[int, ...]:
    shape = getattr(array, "shape", None)
    return tuple(int(d) for d in (shape if shape is not None else np.shape(array)))


def _describe(value: Any) -> str:
    """``value``'s arrays by their shapes, for an error message (an array's repr is its data)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_describe(v) for v in value) + "]"
    return f"<array of shape {_shape(value)}>"


def _batch_size(name: str, value: Any) -> int:
    shapes = [_shape(array) for array in _arrays(value)]
    if not all(shapes):
        raise ValueError(
            f"`{name}` must hold arrays with a batch axis. Received: {name}={_describe(value)}"
        )
    if len({shape[0] for shape in shapes}) != 1:
        raise ValueError(
            f"`{name}` must hold arrays of one batch size. Received: {name}={_describe(value)}"
        )
    return shapes[0][0]


def _check_batches(x: Any, y: Any) -> None:
    x_size, y_size = _batch_size("x", x), _batch_size("y", y)
    if x_size != y_size:
        raise ValueError(
            f"`y` must hold as many samples as `x` ({x_size}). Received: y={_describe(y)}"
        )


def _build(build: Callable[[int], Any], width: int) -> keras.Model:
    model = build(width)
    if not isinstance(model, keras.Model):
        raise TypeError(f"`build` must return a keras.Model. Received: build({width})={model!r}")
    return model


def _probe(model: keras.Model, width: int) -> tuple[list[keras.layers.Layer], keras.Model]:
    """The layers whose outputs are recorded, and a model that returns those outputs.

    A model without symbolic outputs (subclassed) is refused.
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    try:
        if not layers:
            raise ValueError("no layers")
        probe = keras.Model(model.inputs, [_first(layer.output) for layer in layers])
    except (AttributeError, ValueError, TypeError) as error:
        raise ValueError(
            "`build` must return a built functional or Sequential model (on keras.Input), "
            "so that each layer's output can be read; a subclassed model has no symbolic "
            f"outputs ({type(error).__name__}: {error}). Received: build({width})="
            f"<{type(model).__name__} name={model.name!r}>"
        ) from error
    return layers, probe


def _mean_abs(probe: keras.Model, x: Any) -> list[float]:
    inputs = [x] if not isinstance(x, (list, tuple, dict)) else x
    outputs = probe(inputs, training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]  # Keras unwraps a list of one output
    return [float(np.mean(np.abs(_numpy(output)))) for output in outputs]


def _scalar(loss: Any) -> float:
    return float(np.asarray(keras.ops.convert_to_numpy(loss)))
