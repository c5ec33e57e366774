"""``lsuv(model, x)``: Mishkin & Matas's layer-sequential unit-variance initialization."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_inits._validation import check_positive, check_positive_int, check_seed
from keras_inits.model._layouts import WeightLayout
from keras_inits.model._walk import check_model, scaled_by, seeds, shape_of, unknown_kind, walk
from keras_inits.model._walk import variable as plain_variable
from keras_inits.orthogonal import BlockOrthogonal

__all__ = ["LSUVRecord", "lsuv"]


@dataclasses.dataclass(frozen=True)
class LSUVRecord:
    """What ``lsuv`` did to one layer.

    Attributes:
        layer: The layer's name.
        weight: The kernel it rescaled ("kernel", or "pointwise_kernel" of a
            separable convolution).
        path: The kernel variable's path.
        std_before: Std of the layer's pre-activation output on ``x`` before
            its first rescaling (after the orthonormal pre-initialization and
            the rescaling of every layer before it).
        std_after: That std after the last rescaling (measured).
        iterations: How many times the kernel was rescaled.
        converged: Whether |Var / target_std^2 - 1| < tol was reached.
    """

    layer: str
    weight: str
    path: str
    std_before: float
    std_after: float
    iterations: int
    converged: bool


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the layer it watches has run."""


@dataclasses.dataclass
class _Unit:
    """One layer LSUV rescales: where to watch its pre-activation and what to scale."""

    layer: Any  # the leaf layer (or RNN cell) holding the kernels
    hook: Any  # the layer whose activation (or, for an RNN, call) is watched
    scaled: str  # the kernel rescaled
    kernels: list[WeightLayout]  # every kernel it holds (all pre-initialized)
    recurrent: bool

    def install(self, record: Callable[[Any], None]) -> Callable[[], None]:
        """Watches the pre-activation output; returns the function that undoes it."""
        if self.recurrent:
            original = self.hook.call

            def call(*args: Any, **kwargs: Any) -> Any:
                sequences = args[0] if args else kwargs.get("sequences", kwargs.get("inputs"))
                kernel = keras.ops.convert_to_tensor(self.layer.kernel)
                record(keras.ops.matmul(sequences, kernel))  # the input part of every gate
                return original(*args, **kwargs)

            self.hook.call = call
            return lambda: delattr(self.hook, "call")
        activation = self.hook.activation

        def watch(z: Any) -> Any:
            record(z)
            return activation(z)

        self.hook.activation = watch
        return lambda: setattr(self.hook, "activation", activation)


def _lsuv_units(model: Any) -> list[_Unit]:
    units = []
    for leaf in walk(model):
        unplaced = [v for v in leaf.unplaced() if len(v.shape) >= 2]
        if unplaced:
            raise unknown_kind(leaf.layer, unplaced)  # a kernel it cannot place, never skipped
        found = leaf.layout
        kinds = {entry.kind for entry, _ in leaf.placed()}
        if found is not None and found.pre_activation is None and kinds & {"kernel"}:
            if "embedding" not in kinds:  # a lookup (and a tied or untied head): left alone
                raise ValueError(
                    f"`lsuv` cannot rescale layer {leaf.layer.name!r} "
                    f"({type(leaf.layer).__name__}): the table of layer kinds names no "
                    "pre-activation output for it to watch (`LayerLayout.pre_activation`). "
                    f"Received: model={model.name!r}"
                )
        if found is None or found.pre_activation is None:
            continue  # no kernel: a lookup, a normalization, pooling, a container, ...
        kernels = [entry for entry, _ in leaf.placed() if entry.kind == "kernel"]
        if found.recurrent:
            parent = leaf.parent
            if not isinstance(parent, keras.layers.RNN) or parent.cell is not leaf.layer:
                raise ValueError(
                    f"`lsuv` rescales an RNN cell only inside an RNN layer that reads the "
                    f"sequence itself; cell {leaf.layer.name!r} ({type(leaf.layer).__name__}) "
                    f"sits in {type(parent).__name__}. Received: model={model.name!r}"
                )
            units.append(_Unit(leaf.layer, parent, found.pre_activation, kernels, recurrent=True))
            continue
        if not callable(getattr(leaf.layer, "activation", None)):
            raise ValueError(
                f"`lsuv` needs layer {leaf.layer.name!r} ({type(leaf.layer).__name__}) to have "
                "an activation to watch its pre-activation output. Received: "
                f"activation={getattr(leaf.layer, 'activation', None)!r}"
            )
        units.append(_Unit(leaf.layer, leaf.layer, found.pre_activation, kernels, recurrent=False))
    if not units:
        raise ValueError(
            "`model` has no layer that LSUV rescales (Dense, EinsumDense, convolutions, "
            f"LSTM/GRU/SimpleRNN). Received: model={model.name!r}"
        )
    return units


def _check_batch(x: Any) -> Any:
    def check(item: Any) -> Any:
        if keras.ops.is_tensor(item):
            array = item
            dims = shape_of(item)
        else:
            try:
                array = np.asarray(item)
            except (TypeError, ValueError):
                array = np.asarray(None)
            # ml_dtypes' bfloat16 (what a bfloat16 tensor gives NumPy) is of kind "V".
            if array.dtype.kind not in "biuf" and array.dtype.name != "bfloat16":
                raise TypeError(
                    "`x` must be a batch of numbers: a NumPy array, a tensor, or a list or "
                    f"dict of them for a model with several inputs. Received: x={_summary(x)}"
                )
            dims = array.shape
        if len(dims) < 1 or dims[0] < 2:
            raise ValueError(
                "`x` must be a batch of at least 2 samples (a variance needs them). "
                f"Received: x with shape {tuple(dims)}"
            )
        return array

    if isinstance(x, dict):
        return {key: check(value) for key, value in x.items()}
    if isinstance(x, (list, tuple)) and x and not np.isscalar(x[0]) and _is_batchlike(x[0]):
        return [check(item) for item in x]
    return check(x)


def _is_batchlike(item: Any) -> bool:
    return keras.ops.is_tensor(item) or isinstance(item, np.ndarray)


def _summary(x: Any) -> str:
    shape = getattr(x, "shape", None)
    text = repr(x) if shape is None else f"{type(x).__name__} of shape {tuple(shape)}"
    return text if len(text) <= 80 else text[:77] + "..."


def _forward(model: Any, x: Any) -> None:
    try:
        model(x, training=False)
    except _Stop:
        pass


def _variance(model: Any, x: Any, unit: _Unit) -> float:
    """Var of ``unit``'s pre-activation output on ``x``, the forward pass cut short there."""
    seen: list[Any] = []

    def record(z: Any) -> None:
        seen.append(keras.ops.convert_to_numpy(keras.ops.cast(z, "float32")))
        raise _Stop("lsuv measured its layer")

    undo = unit.install(record)
    try:
        _forward(model, x)
    finally:
        undo()
    if not seen:
        raise ValueError(
            f"`lsuv` could not see layer {unit.hook.name!r} run on `x`: the model never "
            f"called it. Received: model={model.name!r}"
        )
    return float(np.var(np.asarray(seen[0], dtype=np.float64)))


def _first_reason(error: BaseException) -> str:
    """The first line of ``error`` that says something (Keras wraps a layer's in a header)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    useful = [line for line in lines if not line.startswith("Exception encountered when")]
    return (useful or lines or [""])[0]


def _expected(model: Any) -> str:
    """The input shape ``model`` was built for, in words (None: any size)."""
    inputs = getattr(model, "inputs", None)
    if inputs:
        shapes = [tuple(item.shape) for item in inputs]
    else:
        config = model.get_build_config() or {}
        shapes = list(config.values())
    if not shapes:
        return "an input it was not built with"
    text = " and ".join(f"shape {tuple(s) if isinstance(s, list) else s}" for s in shapes)
    return f"input of {text} (None: any size)"


def _data_order(model: Any, x: Any, units: list[_Unit]) -> list[_Unit]:
    """The units in the order the data reaches them (one forward pass, recording)."""
    order: list[int] = []
    undos = []
    for index, unit in enumerate(units):

        def record(_: Any, index: int = index) -> None:
            if index not in order:
                order.append(index)

        undos.append(unit.install(record))
    try:
        model(x, training=False)
    except Exception as error:
        shape = keras.tree.map_structure(lambda item: tuple(item.shape), x)
        reason = _first_reason(error)
        raise ValueError(
            f"`x` does not fit the model: {model.name!r} expects {_expected(model)}, and "
            f"running it on `x` failed with {type(error).__name__}: {reason} "
            f"Received: x with shape {shape}"
        ) from error
    finally:
        for undo in reversed(undos):
            undo()
    return [units[index] for index in order]


def lsuv(
    model: keras.Model,
    x: Any,
    target_std: float = 1.0,
    tol: float = 0.1,
    max_iter: int = 10,
    orthogonal: bool = True,
    seed: Any = None,
    verbose: bool = True,
) -> list[LSUVRecord]:
    """Layer-sequential unit-variance initialization (LSUV), in place.

    Mishkin & Matas's algorithm 1, on a built Keras model and a batch ``x``:

        1. (orthogonal=True) Pre-initialize every kernel orthonormally:
           W = an orthonormal matrix (Saxe et al. 2014), the kernel flattened
           to (prod(shape[:-1]), shape[-1]); an RNN's kernels get one
           orthonormal block per gate (``BlockOrthogonal``). As in the
           paper, a convolution's whole flattened kernel is orthonormal, not
           only its centre tap (``DeltaOrthogonal`` would zero the others).
        2. For each layer L with a kernel, in the order the data reaches them:
               repeat: B = L's pre-activation output on x (the forward pass
                       stops there); v = Var(B), over all its entries;
                       stop if |v / target_std^2 - 1| < tol, or after max_iter
                       rescalings;
                       W_L <- W_L * target_std / sqrt(v).

    With target_std = 1 and tol = 0.1 this is the paper's |Var(B) - 1| < 0.1.
    The pre-activation output is the layer's output before its activation
    (Dense, EinsumDense, every convolution; for a separable convolution the
    pointwise output, and its pointwise kernel is the one rescaled); for an
    LSTM, GRU or SimpleRNN it is the input part of the gates, x_t @ kernel,
    and the recurrent kernel keeps its orthonormal blocks. Biases, embeddings
    and normalization layers are left alone. Works on Sequential, functional
    and subclassed models (it watches each layer's activation while the model
    runs eagerly), nested ones included.

    Args:
        model: A built model with at least one such layer.
        x: A batch of inputs, at least 2 samples (a NumPy array or tensor, or
            a list or dict of them for several inputs).
        target_std: The std each pre-activation output should get, > 0.
        tol: The tolerance on Var / target_std^2, > 0.
        max_iter: The most rescalings per layer, an int >= 1.
        orthogonal: Whether to pre-initialize orthonormally (step 1).
        seed: Seeds the orthonormal draws: an int (reproducible), None or a
            ``keras.random.SeedGenerator``.
        verbose: Whether to show a progress bar (Keras's ``Progbar``).

    Returns:
        One ``LSUVRecord`` per rescaled layer, in data-flow order.

    Raises:
        TypeError: For ``x`` that is not a batch of numbers, or a bad
            argument type.
        ValueError: If the model is not built, has no weights or no layer to
            rescale, ``x`` has fewer than 2 samples or does not fit the
            model, a kernel layer's kind is unknown, or a layer's output
            variance is 0 or not finite (the error names the layer). On any
            error every kernel gets its values from before the call back.

    Example:
        >>> import keras
        >>> import numpy as np
        >>> model = keras.Sequential([keras.Input((16,)),
        ...     keras.layers.Dense(32, activation="relu"), keras.layers.Dense(8)])
        >>> records = lsuv(model, np.random.default_rng(0).normal(size=(64, 16)),
        ...                seed=0, verbose=False)
        >>> [(r.layer, r.converged) for r in records] == [
        ...     (model.layers[0].name, True), (model.layers[1].name, True)]
        True

    Reference:
        Mishkin & Matas, 2016, "All you need is a good init", ICLR,
        https://arxiv.org/abs/1511.06422
    """
    check_model(model)
    target_std = check_positive("target_std", target_std)
    tol = check_positive("tol", tol)
    max_iter = check_positive_int("max_iter", max_iter)
    if not isinstance(orthogonal, bool):
        raise TypeError(f"`orthogonal` must be a bool. Received: orthogonal={orthogonal!r}")
    seed = check_seed(seed)
    x = _check_batch(x)
    units = _lsuv_units(model)
    variables = [
        plain_variable(unit.layer, entry.attribute) for unit in units for entry in unit.kernels
    ]
    saved = [np.array(keras.ops.convert_to_numpy(v), copy=True) for v in variables]
    try:
        if orthogonal:
            next_seed = seeds(seed)
            index = 0
            for unit in units:
                for entry in unit.kernels:
                    variable = plain_variable(unit.layer, entry.attribute)
                    dtype = keras.backend.standardize_dtype(variable.dtype)
                    init = BlockOrthogonal(blocks=entry.gates, seed=next_seed(index))
                    variable.assign(init(shape_of(variable), dtype))
                    index += 1
        ordered = _data_order(model, x, units)
        progress = keras.utils.Progbar(len(ordered), verbose=1 if verbose else 0, unit_name="layer")
        records = []
        for step, unit in enumerate(ordered, start=1):
            records.append(_rescale(model, x, unit, target_std, tol, max_iter))
            progress.update(step, values=[("std", records[-1].std_after)])
        return records
    except BaseException:
        for variable, values in zip(variables, saved, strict=True):
            variable.assign(values)
        raise


def _rescale(
    model: Any, x: Any, unit: _Unit, target_std: float, tol: float, max_iter: int
) -> LSUVRecord:
    kernel = plain_variable(unit.layer, unit.scaled)
    target = target_std * target_std
    iterations, converged, stds = 0, False, []
    while True:
        variance = _variance(model, x, unit)
        if not (math.isfinite(variance) and variance > 0.0):
            raise ValueError(
                f"`lsuv` cannot rescale layer {unit.hook.name!r} ({type(unit.hook).__name__}): "
                f"the variance of its pre-activation output on `x` is {variance!r}, and only a "
                "finite variance > 0 can be scaled to the target (a dead or constant input, "
                f"or an overflow before it). Received: variance={variance!r}"
            )
        stds.append(math.sqrt(variance))
        if abs(variance / target - 1.0) < tol:
            converged = True
            break
        if iterations == max_iter:
            break
        factor = target_std / math.sqrt(variance)
        dtype = keras.backend.standardize_dtype(kernel.dtype)
        kernel.assign(scaled_by(kernel.value, factor, dtype))
        iterations += 1
    return LSUVRecord(
        layer=unit.hook.name,
        weight=unit.scaled,
        path=kernel.path,
        std_before=stds[0],
        std_after=stds[-1],
        iterations=iterations,
        converged=converged,
    )
