"""Initialization that knows the model: true fans, reinitialize, LSUV, PyTorch's defaults.

An initializer sees only a kernel's shape, so it cannot know that a
``Conv2DTranspose`` kernel ``(kh, kw, out, in)`` has its channels the other
way round, that a ``DepthwiseConv2D`` output sees only ``kh * kw`` inputs,
that a grouped or strided convolution connects each input to fewer outputs
than its shape says, or that an LSTM kernel ``(in, 4 * units)`` is four gates.
This module is the one place that knows each Keras layer kind's kernel
layout (``_layer_weights``), and the functions here act on whole models:

- ``fans(layer, weight)``: the true (fan_in, fan_out) of one weight.
- ``reinitialize(model)``: re-draws fan-scaled weights with their true fans.
- ``lsuv(model, x)``: Mishkin & Matas's layer-sequential unit-variance init.
- ``torch_defaults(model)``: PyTorch 2.x's ``reset_parameters``, weights and biases.

Each changes the model in place and returns a report; none builds a new
model. Each validates and computes everything before it assigns anything
(``lsuv``, which must measure as it goes, restores every weight it touched
when it fails), so no model is ever left half re-initialized by an error.

The fan convention: a fan counts the connections a unit really has, averaged
over positions away from the borders. fan_in is the number of weights (times
inputs) summed into one output; fan_out is the number of outputs one input
feeds. A stride s along an axis with kernel size k gives each input k / s
outputs on average (a transposed convolution: each output k / s inputs), so
fans can be fractional. Drawn with Var(W) = 1 / fan_in, a layer keeps the
variance of unit-variance inputs; drawn with Var(W) = 1 / fan_out, it keeps
the variance of the gradient flowing back (He et al., 2015).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np

from keras_inits import _sampling
from keras_inits._base import BaseInitializer, RandomInitializer, derive_seed, fresh_seed
from keras_inits._fans import compute_fans, fan_for_mode
from keras_inits._validation import check_positive, check_positive_int, check_seed
from keras_inits.orthogonal import BlockOrthogonal

__all__ = ["LSUVRecord", "WeightChange", "fans", "lsuv", "reinitialize", "torch_defaults"]

_GATES = {"LSTMCell": 4, "GRUCell": 3, "SimpleRNNCell": 1}


@dataclasses.dataclass(frozen=True)
class _Weight:
    """One kernel-like weight of a layer kind: where it lives and its true fans."""

    name: str  # the layer attribute holding the variable
    initializer: str  # the layer attribute holding its initializer
    fan_in: float
    fan_out: float
    gates: int = 1  # equal column blocks (an RNN's gates)


@dataclasses.dataclass(frozen=True)
class WeightChange:
    """What ``reinitialize`` or ``torch_defaults`` did to one weight.

    Attributes:
        layer: The name of the layer (or RNN cell) that holds the weight.
        weight: Its attribute name: "kernel", "recurrent_kernel", "bias", ...
        path: The variable's path in the model (unique).
        rule: What was drawn, in words, e.g. "U(-1/sqrt(fan_in), 1/sqrt(fan_in))".
        fan_in: The fan_in the rule used (None where it uses none).
        fan_out: The fan_out the rule used (None where it uses none).
        old_std: Std of the weight's entries before.
        new_std: Std of the weight's entries after.
    """

    layer: str
    weight: str
    path: str
    rule: str
    fan_in: float | None
    fan_out: float | None
    old_std: float
    new_std: float


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


# The one table of layer kinds and their kernel layouts.


def _count(value: float) -> float:
    """An int where the count is whole, else the float (a stride's average)."""
    return int(value) if float(value).is_integer() else float(value)


def _shape(variable: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in variable.shape)


def _layer_weights(layer: Any) -> list[_Weight] | None:
    """The kernel-like weights of a built ``layer`` with their true fans; None: unknown kind.

    Layouts (Keras's), with K = prod(kernel_size), S = prod(strides):

        Dense                 kernel (in, out)                 fan_in = in,        fan_out = out
        EinsumDense           kernel, its axes named by the equation: contracted axes
                              (in the input, not the output) multiply to fan_in,
                              output-only axes to fan_out, shared axes to neither
        Conv1D/2D/3D          kernel (k, in / g, out)          K in / g,           K out / (g S)
        Conv*Transpose        kernel (k, out, in)              K in / S,           K out
        DepthwiseConv1D/2D    kernel (k, in, m)                K,                  K m / S
        SeparableConv1D/2D    depthwise_kernel (k, in, m)      K,                  K m / S
                              pointwise_kernel (1, in m, out)  in m,               out
        Embedding             embeddings (vocab, dim)          1,                  dim
        LSTM/GRU/SimpleRNN    kernel (in, G u)                 in,                 u  (per gate)
          cells (G = 4, 3, 1) recurrent_kernel (u, G u)        u,                  u  (per gate)
    """
    L = keras.layers
    if not layer.built:
        return []
    if isinstance(layer, (L.SeparableConv1D, L.SeparableConv2D)):
        *_, channels, multiplier = _shape(layer.depthwise_kernel)
        k, s = math.prod(layer.kernel_size), math.prod(layer.strides)
        return [
            _Weight("depthwise_kernel", "depthwise_initializer", k, _count(k * multiplier / s)),
            _Weight(
                "pointwise_kernel", "pointwise_initializer", channels * multiplier, layer.filters
            ),
        ]
    if isinstance(layer, (L.DepthwiseConv1D, L.DepthwiseConv2D)):
        multiplier = _shape(layer.kernel)[-1]
        k, s = math.prod(layer.kernel_size), math.prod(layer.strides)
        return [_Weight("kernel", "depthwise_initializer", k, _count(k * multiplier / s))]
    if isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)):
        *_, filters, channels = _shape(layer.kernel)
        k, s = math.prod(layer.kernel_size), math.prod(layer.strides)
        return [_Weight("kernel", "kernel_initializer", _count(k * channels / s), k * filters)]
    if isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D)):
        *_, group_channels, filters = _shape(layer.kernel)
        k, s, groups = math.prod(layer.kernel_size), math.prod(layer.strides), layer.groups
        fan_out = _count(k * filters / (groups * s))
        return [_Weight("kernel", "kernel_initializer", k * group_channels, fan_out)]
    if isinstance(layer, L.Dense):
        fan_in, fan_out = _shape(layer.kernel)
        return [_Weight("kernel", "kernel_initializer", fan_in, fan_out)]
    if isinstance(layer, L.EinsumDense):
        return [_Weight("kernel", "kernel_initializer", *einsum_fans(layer))]
    if isinstance(layer, L.Embedding):
        return [_Weight("embeddings", "embeddings_initializer", 1, _shape(layer.embeddings)[-1])]
    gates = _GATES.get(type(layer).__name__)
    if gates is not None and isinstance(layer, (L.LSTMCell, L.GRUCell, L.SimpleRNNCell)):
        fan_in, width = _shape(layer.kernel)
        units = width // gates
        return [
            _Weight("kernel", "kernel_initializer", fan_in, units, gates),
            _Weight("recurrent_kernel", "recurrent_initializer", units, units, gates),
        ]
    return None


def einsum_fans(layer: Any) -> tuple[int, int]:
    """EinsumDense: contracted kernel axes give fan_in, output-only axes fan_out."""
    inputs, output = layer.equation.replace("...", "").split("->")
    source, kernel = inputs.split(",")
    shape = _shape(layer.kernel)
    fan_in = fan_out = 1
    for letter, size in zip(kernel, shape, strict=True):
        if letter in source and letter in output:
            continue  # an axis shared by input, kernel and output: a batch of maps
        if letter not in output:
            fan_in *= size  # summed over: every output sees this many terms
        if letter not in source:
            fan_out *= size  # each input feeds this many outputs
    return fan_in, fan_out


def _children(layer: Any) -> list[Any]:
    """The layers ``layer`` holds, through public attributes where Keras has them."""
    L = keras.layers
    if isinstance(layer, L.Bidirectional):
        return [layer.forward_layer, layer.backward_layer]
    if isinstance(layer, L.TimeDistributed):
        return [layer.layer]
    if isinstance(layer, L.RNN):
        return [layer.cell]
    if isinstance(layer, L.StackedRNNCells):
        return list(layer.cells)
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    # Any other container (MultiHeadAttention, a custom layer): its tracked sublayers.
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _walk(
    layer: Any, parent: Any = None, seen: set[int] | None = None
) -> Iterator[tuple[Any, Any]]:
    """Every leaf layer under ``layer`` once, in order, with the layer that holds it."""
    seen = set() if seen is None else seen
    if id(layer) in seen:
        return
    seen.add(id(layer))
    if _layer_weights(layer) is not None:
        yield layer, parent
        return
    children = _children(layer)
    if not children:
        yield layer, parent
    for child in children:
        yield from _walk(child, layer, seen)


def _variable(layer: Any, name: str) -> Any:
    value = getattr(layer, name, None)
    if not isinstance(value, keras.Variable):
        raise ValueError(
            f"`{name}` of layer {layer.name!r} ({type(layer).__name__}) is not a plain "
            "variable (a LoRA-enabled or quantized layer?), so it cannot be re-initialized. "
            f"Received: {name}={type(value).__name__}"
        )
    return value


def _unknown_kind(layer: Any) -> ValueError:
    return ValueError(
        f"keras_inits does not know the kernel layout of layer {layer.name!r} of class "
        f"{type(layer).__name__}, so it cannot tell its true fans (it never guesses). Known "
        "kinds: Dense, EinsumDense, Conv1D/2D/3D, Conv1D/2D/3DTranspose, DepthwiseConv1D/2D, "
        "SeparableConv1D/2D, Embedding, LSTM/GRU/SimpleRNN (and their cells), inside "
        f"Bidirectional, TimeDistributed and models. Received: layer={type(layer).__name__}"
    )


def _check_model(model: Any, name: str = "model") -> None:
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            f"`{name}` must be a Keras model or layer. Received: {name}={type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            f"`{name}` must be built: give it a `keras.Input`, call it on a batch, or call "
            f"`{name}.build(input_shape)` first. Received: {name}={model.name!r} (not built)"
        )
    if not model.weights:
        raise ValueError(
            f"`{name}` has no weights to initialize. Received: {name}={model.name!r} "
            f"of type {type(model).__name__}"
        )


# fans


def fans(layer: keras.layers.Layer, weight: Any = "kernel") -> tuple[float, float]:
    """The true (fan_in, fan_out) of one weight of a built layer.

    A fan counts the connections a unit really has, averaged over positions
    away from the borders (see the module docstring); Keras's initializers see
    only the shape ``(*receptive_field, in, out)`` and get several layer kinds
    wrong. With K = prod(kernel_size), S = prod(strides), g = groups:

        Dense                  kernel (in, out)          fan_in = in,    fan_out = out
        EinsumDense            contracted kernel axes -> fan_in, output-only axes -> fan_out
        Conv1D/2D/3D           kernel (k, in/g, out)     K in / g,       K out / (g S)
        Conv*Transpose         kernel (k, out, in)       K in / S,       K out
        DepthwiseConv1D/2D     kernel (k, in, m)         K,              K m / S
        SeparableConv1D/2D     depthwise_kernel          K,              K m / S
                               pointwise_kernel          in m,           out
        Embedding              embeddings (vocab, dim)   1,              dim
        LSTM/GRU/SimpleRNN     kernel (in, G u)          in,             u   (per gate)
                               recurrent_kernel (u, G u) u,              u   (per gate)

    Var(W) = 1 / fan_in then keeps the variance of unit-variance inputs, and
    Var(W) = 1 / fan_out the variance of the gradient flowing back. A fan is an
    int where the count is whole and a float where a stride makes it an
    average (kernel 3, stride 2: 1.5 connections per axis).

    Args:
        layer: A built layer, or a wrapper or model that holds it:
            Bidirectional (its forward layer; the backward one is the same),
            TimeDistributed, an RNN layer (its cell), or a model.
        weight: The weight's attribute name ("kernel", "recurrent_kernel",
            "depthwise_kernel", "pointwise_kernel", "embeddings"), the
            ``keras.Variable`` itself, or, for a model, a variable path
            (``variable.path``, or its unique ending such as "dense_1/kernel").

    Returns:
        (fan_in, fan_out).

    Raises:
        TypeError: If ``layer`` is not a Keras layer or ``weight`` neither a
            string nor a variable.
        ValueError: If the layer kind is unknown (the error names its class),
            the layer is not built, or it has no such weight.

    Example:
        >>> layer = keras.layers.Conv2DTranspose(8, 4, strides=2)
        >>> layer.build((None, 16, 16, 32))
        >>> fans(layer)          # the shape (4, 4, 8, 32) says (128, 512)
        (128, 128)
        >>> lstm = keras.layers.LSTM(32)
        >>> lstm.build((None, 10, 16))
        >>> fans(lstm, "recurrent_kernel")
        (32, 32)

    Reference:
        He et al., 2015, "Delving Deep into Rectifiers" (forward and backward
        variance), https://arxiv.org/abs/1502.01852
    """
    _check_model(layer, "layer")
    _, entry = _find_weight(layer, weight)
    return entry.fan_in, entry.fan_out


def _find_weight(layer: Any, weight: Any) -> tuple[Any, _Weight]:
    if isinstance(weight, keras.Variable):
        for leaf, _ in _walk(layer):
            for entry in _layer_weights(leaf) or []:
                if getattr(leaf, entry.name, None) is weight:
                    return leaf, entry
        raise ValueError(
            "`weight` must be a kernel-like variable of `layer` (kernel, recurrent_kernel, "
            "depthwise_kernel, pointwise_kernel or embeddings of a known layer kind). "
            f"Received: weight={weight.path!r}"
        )
    if not isinstance(weight, str):
        raise TypeError(
            "`weight` must be an attribute name, a variable path or a keras.Variable. "
            f"Received: weight={weight!r}"
        )
    L = keras.layers
    if isinstance(layer, L.Bidirectional):
        return _find_weight(layer.forward_layer, weight)
    if isinstance(layer, L.TimeDistributed):
        return _find_weight(layer.layer, weight)
    if isinstance(layer, L.RNN) and not isinstance(layer.cell, L.StackedRNNCells):
        return _find_weight(layer.cell, weight)
    entries = _layer_weights(layer)
    if entries is None and _children(layer):  # a model or container: match a path
        matches = [v for v in layer.weights if v.path == weight or v.path.endswith("/" + weight)]
        if len(matches) != 1:
            paths = tuple(v.path for v in layer.weights)
            raise ValueError(
                f"`weight` must name exactly one variable of {layer.name!r} by its path "
                f"(it matches {len(matches)}); its paths are {paths}. Received: weight={weight!r}"
            )
        return _find_weight(layer, matches[0])
    if entries is None:
        raise _unknown_kind(layer)
    for entry in entries:
        if entry.name == weight or (weight == "kernel" and len(entries) == 1):
            return layer, entry  # "kernel", the default, names an Embedding's table too
    names = tuple(sorted(entry.name for entry in entries))
    raise ValueError(
        f"`weight` must be one of {names} for {type(layer).__name__}. Received: weight={weight!r}"
    )


# reinitialize


def _redrawable(initializer: Any) -> bool:
    return isinstance(initializer, (BaseInitializer, keras.initializers.VarianceScaling))


def _seeds(seed: Any) -> Callable[[int], Any]:
    """The seed of draw i: hashed from an int, fresh from ``random`` for None."""
    if seed is None:
        return lambda _: fresh_seed()
    if isinstance(seed, keras.random.SeedGenerator):
        return lambda _: seed
    return lambda index: derive_seed(seed, index)


def _std(value: Any) -> float:
    array = keras.ops.convert_to_numpy(keras.ops.cast(value, "float32"))
    return float(np.std(np.asarray(array, dtype=np.float64)))


def _redraw(
    initializer: Any, shape: tuple[int, ...], dtype: str, fan_in: float, fan_out: float, seed: Any
) -> tuple[Any, str]:
    """New values for a weight from ``initializer``, with the fans given."""
    if isinstance(initializer, keras.initializers.VarianceScaling):
        fan = fan_for_mode(initializer.mode, fan_in, fan_out)  # type: ignore[arg-type]
        stddev = math.sqrt(initializer.scale / fan)
        distribution = initializer.distribution
        rule = (
            f"{type(initializer).__name__}: {distribution} with std sqrt({initializer.scale:g} "
            f"/ {initializer.mode})"
        )
        return _sampling.scaled(distribution, shape, stddev, dtype, seed), rule
    config = initializer.get_config()
    if isinstance(initializer, RandomInitializer) or "seed" in config:
        fresh = type(initializer).from_config({**config, "seed": seed})
        return fresh(shape, dtype), f"{type(initializer).__name__}, a fresh draw"
    return initializer(shape, dtype), f"{type(initializer).__name__} (deterministic)"


def reinitialize(
    model: keras.Model, seed: Any = None, include_all: bool = False
) -> list[WeightChange]:
    """Re-draws, in place, every fan-scaled weight with its layer's true fans.

    A weight is re-drawn when its initializer is one of this package's or a
    Keras ``VarianceScaling`` (glorot_*, he_*, lecun_* and the rest):

        Var(W) = scale / n,  n = fan_in, fan_out or (fan_in + fan_out) / 2,

    with the same scale, mode and distribution, but with n from ``fans``
    (the true fans of the layer kind) rather than the kernel's shape. So a
    Conv2DTranspose with ``he_normal`` gets Var = 2 / (K in / S) instead of
    2 / (K out), an LSTM kernel with ``glorot_uniform`` per-gate fans, a
    DepthwiseConv2D Var = 2 / K. This package's initializers that use no fan
    (orthogonal, structural, small) are drawn afresh. A bias with such an
    initializer keeps its shape rule (a bias has no connections). Every
    other weight is left as it is, unless ``include_all=True``.

    Build time: a functional or Sequential model is built when it is made,
    so call ``reinitialize`` right after; a subclassed model needs
    ``model.build(input_shape)`` (or a call on a batch) first::

        model = keras.Sequential([keras.Input((28, 28, 1)), ...])
        ki.reinitialize(model, seed=0)

    Args:
        model: A built model or layer (Sequential, functional, subclassed,
            nested), on any backend.
        seed: An int (reproducible: draw i uses a sub-seed hashed from
            (seed, i)), None (fresh values; ``keras.utils.set_random_seed``
            makes it reproducible) or a ``keras.random.SeedGenerator``.
        include_all: Also re-draw the kernels and biases whose initializer
            is neither ours nor fan-scaled (Keras's ``orthogonal``,
            ``random_normal``, ``zeros``, ...) from that initializer's config,
            with a fresh seed where it takes one.

    Returns:
        One ``WeightChange`` per re-drawn weight, in the model's layer order.

    Raises:
        TypeError: If ``model`` is not a Keras layer or ``seed`` is not an
            int, SeedGenerator or None.
        ValueError: If the model is not built or has no weights, or a layer
            of a kind this module does not know has a weight it would re-draw
            (the error names the class). Nothing is changed then.

    Example:
        >>> model = keras.Sequential([keras.Input((8, 8, 32)),
        ...     keras.layers.Conv2DTranspose(8, 4, strides=2, kernel_initializer="he_normal")])
        >>> [(c.weight, c.fan_in) for c in reinitialize(model, seed=0)]
        [('kernel', 128)]

    Reference:
        He et al., 2015, "Delving Deep into Rectifiers",
        https://arxiv.org/abs/1502.01852
    """
    _check_model(model)
    seed = check_seed(seed)
    if not isinstance(include_all, bool):
        raise TypeError(f"`include_all` must be a bool. Received: include_all={include_all!r}")

    def wanted(initializer: Any) -> bool:
        if include_all:
            return isinstance(initializer, keras.initializers.Initializer)
        return _redrawable(initializer)

    plan: list[tuple[Any, str, Any, Any, float, float]] = []
    for leaf, _ in _walk(model):
        entries = _layer_weights(leaf)
        if entries is None:
            initializers = [
                value
                for key, value in sorted(vars(leaf).items())
                if key.endswith("_initializer") and _redrawable(value)
            ]
            if initializers and leaf.weights:
                raise _unknown_kind(leaf)
            continue
        for entry in entries:
            initializer = getattr(leaf, entry.initializer, None)
            if wanted(initializer):
                variable = _variable(leaf, entry.name)
                plan.append((leaf, entry.name, variable, initializer, entry.fan_in, entry.fan_out))
        bias = getattr(leaf, "bias", None)
        if isinstance(bias, keras.Variable) and wanted(getattr(leaf, "bias_initializer", None)):
            bias_fans = compute_fans(_shape(bias))  # a bias has no connections: its shape rule
            plan.append((leaf, "bias", bias, leaf.bias_initializer, *bias_fans))
    next_seed = _seeds(seed)
    drawn = []
    for index, (leaf, name, variable, initializer, fan_in, fan_out) in enumerate(plan):
        dtype = keras.backend.standardize_dtype(variable.dtype)
        values, rule = _redraw(
            initializer, _shape(variable), dtype, fan_in, fan_out, next_seed(index)
        )
        if name == "bias" and getattr(leaf, "unit_forget_bias", False):
            # As the LSTM cell builds it: the forget gate's quarter is ones.
            units = leaf.units
            ones = keras.ops.ones((units,), dtype=dtype)
            values = keras.ops.concatenate([values[:units], ones, values[2 * units :]])
            rule += ", forget gate 1 (unit_forget_bias)"
        drawn.append((values, rule))
    changes = []
    for (leaf, name, variable, _, fan_in, fan_out), (values, rule) in zip(plan, drawn, strict=True):
        old_std = _std(variable)
        variable.assign(values)
        changes.append(
            WeightChange(
                leaf.name, name, variable.path, rule, fan_in, fan_out, old_std, _std(variable)
            )
        )
    return changes


# lsuv


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the layer it watches has run."""


@dataclasses.dataclass
class _Unit:
    """One layer LSUV rescales: where to watch its pre-activation and what to scale."""

    layer: Any  # the leaf layer (or RNN cell) holding the kernels
    hook: Any  # the layer whose activation (or, for an RNN, call) is watched
    scaled: str  # the kernel rescaled
    kernels: list[_Weight]  # every kernel it holds (all pre-initialized)
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
    L = keras.layers
    units = []
    for leaf, parent in _walk(model):
        entries = _layer_weights(leaf)
        if entries is None:
            if isinstance(getattr(leaf, "kernel", None), keras.Variable):
                raise _unknown_kind(leaf)
            continue  # no kernel: normalization, pooling, activations, ...
        if isinstance(leaf, L.Embedding):
            continue  # a lookup table, not a layer with a pre-activation
        if isinstance(leaf, (L.LSTMCell, L.GRUCell, L.SimpleRNNCell)):
            if not isinstance(parent, L.RNN) or parent.cell is not leaf:
                raise ValueError(
                    f"`lsuv` rescales an RNN cell only inside an RNN layer that reads the "
                    f"sequence itself; cell {leaf.name!r} ({type(leaf).__name__}) sits in "
                    f"{type(parent).__name__}. Received: model={model.name!r}"
                )
            units.append(_Unit(leaf, parent, "kernel", entries, recurrent=True))
            continue
        scaled = "pointwise_kernel" if len(entries) == 2 else entries[0].name
        if not callable(getattr(leaf, "activation", None)):
            raise ValueError(
                f"`lsuv` needs layer {leaf.name!r} ({type(leaf).__name__}) to have an "
                f"activation to watch its pre-activation output. Received: "
                f"activation={getattr(leaf, 'activation', None)!r}"
            )
        units.append(_Unit(leaf, leaf, scaled, entries, recurrent=False))
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
            dims = _shape(item)
        else:
            try:
                array = np.asarray(item)
            except (TypeError, ValueError):
                array = np.asarray(None)
            if array.dtype.kind not in "biuf":
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
        raise ValueError(
            f"`x` does not fit the model: running {model.name!r} on it failed with "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} "
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
    _check_model(model)
    target_std = check_positive("target_std", target_std)
    tol = check_positive("tol", tol)
    max_iter = check_positive_int("max_iter", max_iter)
    if not isinstance(orthogonal, bool):
        raise TypeError(f"`orthogonal` must be a bool. Received: orthogonal={orthogonal!r}")
    seed = check_seed(seed)
    x = _check_batch(x)
    units = _lsuv_units(model)
    variables = [_variable(unit.layer, entry.name) for unit in units for entry in unit.kernels]
    saved = [np.array(keras.ops.convert_to_numpy(v), copy=True) for v in variables]
    try:
        if orthogonal:
            next_seed = _seeds(seed)
            index = 0
            for unit in units:
                for entry in unit.kernels:
                    variable = _variable(unit.layer, entry.name)
                    dtype = keras.backend.standardize_dtype(variable.dtype)
                    init = BlockOrthogonal(blocks=entry.gates, seed=next_seed(index))
                    variable.assign(init(_shape(variable), dtype))
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
    kernel = _variable(unit.layer, unit.scaled)
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
        kernel.assign(keras.ops.multiply(kernel, keras.ops.cast(factor, kernel.dtype)))
        iterations += 1
    return LSUVRecord(
        unit.hook.name, unit.scaled, kernel.path, stds[0], stds[-1], iterations, converged
    )


# torch_defaults


@dataclasses.dataclass(frozen=True)
class _Torch:
    """One weight's PyTorch default: U(-bound, bound), its sum with another, N(0, 1), a constant."""

    name: str
    kind: str  # "uniform", "uniform_sum", "normal", "constant"
    value: float  # the bound, or the constant
    fan_in: float | None = None

    @property
    def rule(self) -> str:
        if self.kind == "uniform":
            return f"U(-1/sqrt({self.fan_in}), 1/sqrt({self.fan_in}))"
        if self.kind == "uniform_sum":
            return f"U(-1/sqrt({self.fan_in}), 1/sqrt({self.fan_in})) + the same (b_ih + b_hh)"
        if self.kind == "normal":
            return "N(0, 1)"
        return f"constant {self.value:g}"


def _linear(fan_in: float, *names: str) -> list[_Torch]:
    """kaiming_uniform_(a=sqrt(5)) for the weight and the bias alike: U(+-1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return [_Torch(name, "uniform", bound, fan_in) for name in names]


def _torch_rules(layer: Any) -> list[_Torch] | None:
    """PyTorch 2.x's ``reset_parameters`` for the module matching ``layer``; None: none does.

    PyTorch's fan_in is weight.size(1) * prod(kernel_size) for a weight laid
    out (out, in / groups, *k), and (in, out / groups, *k) for a transposed
    convolution: there it is the output channels (the quirk, kept here).
    """
    L = keras.layers
    if isinstance(layer, (L.SeparableConv1D, L.SeparableConv2D)):
        # The usual port: Conv(groups=in, bias=False), then a 1x1 Conv with the bias.
        *_, channels, multiplier = _shape(layer.depthwise_kernel)
        k = math.prod(layer.kernel_size)
        return _linear(k, "depthwise_kernel") + _linear(
            channels * multiplier, "pointwise_kernel", "bias"
        )
    if isinstance(layer, (L.DepthwiseConv1D, L.DepthwiseConv2D)):
        # Conv(in, in * m, groups=in): weight (in * m, 1, *k), fan_in = K.
        return _linear(math.prod(layer.kernel_size), "kernel", "bias")
    if isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)):
        # ConvTranspose weight (in, out, *k): fan_in = out * K (Keras: kernel[..., out, in]).
        filters = _shape(layer.kernel)[-2]
        return _linear(filters * math.prod(layer.kernel_size), "kernel", "bias")
    if isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D)):
        # Conv weight (out, in / groups, *k): fan_in = in / groups * K.
        group_channels = _shape(layer.kernel)[-2]
        return _linear(group_channels * math.prod(layer.kernel_size), "kernel", "bias")
    if isinstance(layer, L.Dense):
        return _linear(_shape(layer.kernel)[0], "kernel", "bias")
    if isinstance(layer, L.Embedding):
        return [_Torch("embeddings", "normal", 1.0)]
    if isinstance(layer, (L.LSTMCell, L.GRUCell, L.SimpleRNNCell)):
        # Every parameter U(+-1/sqrt(hidden)). Keras has one bias where PyTorch
        # has b_ih and b_hh (added); a GRU with reset_after keeps both, as rows.
        units = layer.units
        rules = _linear(units, "kernel", "recurrent_kernel")
        bias = getattr(layer, "bias", None)
        if isinstance(bias, keras.Variable):
            kind = "uniform" if len(_shape(bias)) == 2 else "uniform_sum"
            rules.append(_Torch("bias", kind, rules[0].value, units))
        return rules
    if isinstance(layer, L.BatchNormalization):
        # reset_parameters: weight 1, bias 0; reset_running_stats: mean 0, var 1.
        constants = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0}
        return [_Torch(name, "constant", value) for name, value in constants.items()]
    if isinstance(layer, (L.LayerNormalization, L.GroupNormalization)):
        return [_Torch("gamma", "constant", 1.0), _Torch("beta", "constant", 0.0)]
    return None


def _torch_draw(rule: _Torch, shape: tuple[int, ...], dtype: str, seeds: tuple[Any, Any]) -> Any:
    if rule.kind == "constant":
        return keras.ops.full(shape, rule.value, dtype=dtype)
    if rule.kind == "normal":
        return _sampling.normal(shape, 1.0, dtype, seeds[0])
    if rule.value == 0.0:
        return keras.ops.zeros(shape, dtype=dtype)
    values = _sampling.uniform(shape, rule.value, dtype, seeds[0])
    if rule.kind == "uniform_sum":
        values = keras.ops.add(values, _sampling.uniform(shape, rule.value, dtype, seeds[1]))
    return values


def torch_defaults(model: keras.Model, seed: Any = None) -> list[WeightChange]:
    """Re-initializes weights and biases, in place, as PyTorch 2.x's ``reset_parameters`` does.

    For each layer whose PyTorch module is clear (docs/model-level.md has the table):

        Dense ~ nn.Linear, Conv* ~ nn.Conv*d, DepthwiseConv* ~ nn.Conv*d(groups=in),
        Conv*Transpose ~ nn.ConvTranspose*d:
            W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))   (kaiming_uniform_(a=sqrt(5)))
            fan_in = PyTorch's: weight.size(1) * prod(kernel_size), that is
            in / groups * K for a convolution and out * K for a transposed one
        SeparableConv* ~ Conv*d(groups=in, bias=False) then a 1x1 Conv*d
        Embedding ~ nn.Embedding:            W ~ N(0, 1)
        LSTM, GRU, SimpleRNN ~ nn.LSTM, nn.GRU, nn.RNN:
            every weight U(-1/sqrt(units), 1/sqrt(units)); Keras's single bias
            is PyTorch's b_ih + b_hh (a sum of two such uniforms), a GRU with
            reset_after=True keeps the two as its bias's rows
        BatchNormalization: gamma 1, beta 0, moving mean 0, moving variance 1
        LayerNormalization, GroupNormalization: gamma 1, beta 0

    Layouts differ (PyTorch's Linear weight is (out, in), Keras's kernel
    (in, out)), but each rule draws i.i.d. entries, so only the fan matters.
    Layers with weights and no PyTorch counterpart (EinsumDense, attention,
    custom layers) are left unchanged and reported with rule "unchanged".

    Args:
        model: A built model or layer, on any backend.
        seed: An int (reproducible), None or a ``keras.random.SeedGenerator``.

    Returns:
        One ``WeightChange`` per weight, in the model's layer order.

    Raises:
        TypeError: If ``model`` is not a Keras layer or ``seed`` has a bad type.
        ValueError: If the model is not built or has no weights. Nothing is
            changed then.

    Example:
        >>> model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
        >>> [(c.weight, c.rule) for c in torch_defaults(model, seed=0)]
        [('kernel', 'U(-1/sqrt(64), 1/sqrt(64))'), ('bias', 'U(-1/sqrt(64), 1/sqrt(64))')]

    Reference:
        PyTorch 2.x ``nn.Linear.reset_parameters``, ``nn.modules.conv._ConvNd``,
        ``nn.RNNBase.reset_parameters``, ``nn.Embedding.reset_parameters``;
        He et al., 2015, https://arxiv.org/abs/1502.01852 (kaiming_uniform_)
    """
    _check_model(model)
    seed = check_seed(seed)
    plan: list[tuple[Any, Any, _Torch | None]] = []
    for leaf, _ in _walk(model):
        if not leaf.weights:
            continue
        rules = _torch_rules(leaf)
        if rules is None:
            plan.extend((leaf, variable, None) for variable in leaf.weights)
            continue
        for torch_rule in rules:
            if getattr(leaf, torch_rule.name, None) is not None:
                plan.append((leaf, _variable(leaf, torch_rule.name), torch_rule))
    next_seed = _seeds(seed)
    drawn: list[Any] = []
    for index, (_, variable, rule) in enumerate(plan):
        if rule is None:
            drawn.append(None)
            continue
        dtype = keras.backend.standardize_dtype(variable.dtype)
        seeds = (next_seed(2 * index), next_seed(2 * index + 1))
        drawn.append(_torch_draw(rule, _shape(variable), dtype, seeds))
    changes = []
    for (leaf, variable, rule), values in zip(plan, drawn, strict=True):
        old_std = _std(variable)
        if rule is not None:
            variable.assign(values)
        name = rule.name if rule is not None else variable.path.rsplit("/", 1)[-1]
        changes.append(
            WeightChange(
                leaf.name,
                name,
                variable.path,
                "unchanged" if rule is None else rule.rule,
                None if rule is None else rule.fan_in,
                None,
                old_std,
                _std(variable),
            )
        )
    return changes
