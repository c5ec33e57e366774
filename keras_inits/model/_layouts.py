"""The one table of layer kinds: which weights a layer has and what each axis means.

An initializer sees only a kernel's shape, so it cannot know that a
``Conv2DTranspose`` kernel ``(kh, kw, out, in)`` has its channels the other
way round, that a ``DepthwiseConv2D`` output sees only ``kh * kw`` inputs,
that a grouped or strided convolution connects each input to fewer outputs
than its shape says, that an LSTM kernel ``(in, 4 * units)`` is four gates,
or that an embedding table is also the output projection of a tied LM head.
This module is the one place that knows. For a built layer, ``layout(layer)``
gives a ``LayerLayout``: its weights (``WeightLayout``: the attribute, the
initializer attribute, what the weight is, the role of each of its axes, its
true fans, PyTorch's and Flax's default rules, whether it is tied) and the
layers it holds. ``fans``, ``reinitialize``, ``lsuv``, ``torch_defaults``,
``flax_defaults`` and
``diagnostics.layer_stats`` all read it; ``register_layout`` opens it to
user layers. It follows the class hierarchy: a subclass of ``LSTMCell`` has
the LSTM cell's layout unless it registers its own.

The fan convention: a fan counts the connections a unit really has, averaged
over positions away from the borders. fan_in is the number of weights (times
inputs) summed into one output; fan_out is the number of outputs one input
feeds. A stride s along an axis with kernel size k gives each input k / s
outputs on average (a transposed convolution: each output k / s inputs), so
fans can be fractional. Drawn with Var(W) = 1 / fan_in, a layer keeps the
variance of unit-variance inputs; drawn with Var(W) = 1 / fan_out, it keeps
the variance of the gradient flowing back (He et al., 2015).

This module reads layers; it never changes a weight.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args

import keras

from keras_inits import _compat
from keras_inits._validation import check_registration

__all__ = [
    "Axis",
    "FlaxRule",
    "LayerLayout",
    "TorchRule",
    "WeightLayout",
    "layout",
    "register_layout",
]

AxisRole = Literal[
    "receptive_field",  # a kernel tap (convolution): counts in both fans
    "input",  # contracted with the layer's input: counts in fan_in
    "output",  # indexes the layer's output units: counts in fan_out
    "heads",  # attention heads (an input or an output axis, by `side`)
    "channels",  # a depthwise channel: one map per channel, neither fan
    "vocabulary",  # an embedding table's rows: one looked up per token
    "features",  # a per-feature vector (bias, scale, shift, statistic)
    "shared",  # in the input, the weight and the output alike (a batch of maps)
]
Side = Literal["in", "out", "both", "neither"]
WeightKind = Literal["kernel", "embedding", "bias", "scale", "shift", "statistic", "other"]
TorchKind = Literal["uniform", "uniform_sum", "normal", "constant"]
FlaxKind = Literal["lecun_normal", "embed_normal", "orthogonal", "constant"]
Tie = Literal["output_projection"]

# Roles whose size grows with a model's width (muP's "infinite" dimensions);
# the receptive field, the vocabulary and shared axes do not.
WIDTH_ROLES: tuple[AxisRole, ...] = ("input", "output", "heads", "channels", "features")


@dataclasses.dataclass(frozen=True)
class Axis:
    """One axis of a weight: what it indexes, its size, and which fan it counts in.

    Attributes:
        role: What the axis indexes: one of "receptive_field", "input",
            "output", "heads", "channels", "vocabulary", "features", "shared".
        size: Its length.
        side: Which fan it multiplies: "in" (fan_in), "out" (fan_out), "both"
            (a receptive field) or "neither" (a shared axis, a bias's).
    """

    role: AxisRole
    size: int
    side: Side

    def __post_init__(self) -> None:
        if self.role not in get_args(AxisRole):
            raise ValueError(
                f"`role` must be one of {tuple(sorted(get_args(AxisRole)))}. "
                f"Received: role={self.role!r}"
            )
        if self.side not in get_args(Side):
            raise ValueError(
                f"`side` must be one of {tuple(sorted(get_args(Side)))}. "
                f"Received: side={self.side!r}"
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class TorchRule:
    """PyTorch 2.x's ``reset_parameters`` for one weight.

    Attributes:
        kind: "uniform" (U(-bound, bound), bound = 1 / sqrt(fan_in)),
            "uniform_sum" (the sum of two such draws: PyTorch's b_ih + b_hh),
            "normal" (N(0, 1)) or "constant" (``value``).
        fan_in: PyTorch's fan_in (weight.size(1) * prod(kernel_size) on its
            own layout), for the uniform kinds.
        value: The constant, for "constant".
    """

    kind: TorchKind
    fan_in: float | None = None
    value: float = 0.0

    @property
    def bound(self) -> float:
        """The uniform's bound, 1 / sqrt(fan_in) (0 for an empty weight)."""
        fan = self.fan_in or 0
        return 1.0 / math.sqrt(fan) if fan > 0 else 0.0

    @property
    def rule(self) -> str:
        """The rule in words, as the reports print it."""
        if self.kind == "uniform":
            return f"U(-1/sqrt({self.fan_in}), 1/sqrt({self.fan_in}))"
        if self.kind == "uniform_sum":
            return f"U(-1/sqrt({self.fan_in}), 1/sqrt({self.fan_in})) + the same (b_ih + b_hh)"
        if self.kind == "normal":
            return "N(0, 1)"
        return f"constant {self.value:g}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class FlaxRule:
    """Flax's default initializer for one weight (nnx, and linen where it differs).

    Attributes:
        kind: "lecun_normal" (a normal truncated at +-2 sigma whose std after
            the cut is sqrt(1 / fan_in): ``jax.nn.initializers.lecun_normal``),
            "embed_normal" (N(0, 1 / fan_in), untruncated: ``Embed``'s
            ``variance_scaling(1, "fan_in", "normal", out_axis=0)``, whose
            fan_in is the feature count), "orthogonal" (Haar-orthogonal
            blocks along the last axis) or "constant" (``value``).
        fan_in: Flax's fan_in on its own kernel layout, for the normal kinds.
        value: The constant, for "constant".
        blocks: For "orthogonal": how many independent orthogonal blocks the
            last axis holds in nnx (4: one per gate, as ``nnx.LSTMCell``; 1:
            the whole kernel, as ``nnx.GRUCell``).
        linen_blocks: The same in linen where it differs (``linen.GRUCell``
            draws one per gate), else None.
        optimized_blocks: For an LSTM's recurrent kernel, the blocks of
            ``nnx.OptimizedLSTMCell`` (1: whole), else None.
    """

    kind: FlaxKind
    fan_in: float | None = None
    value: float = 0.0
    blocks: int = 1
    linen_blocks: int | None = None
    optimized_blocks: int | None = None

    def blocks_for(self, api: str, optimized_lstm: bool = False) -> int:
        """The orthogonal blocks for Flax's ``api`` ("nnx" or "linen")."""
        if api == "linen":
            return self.blocks if self.linen_blocks is None else self.linen_blocks
        if optimized_lstm and self.optimized_blocks is not None:
            return self.optimized_blocks
        return self.blocks

    @property
    def stddev(self) -> float:
        """sqrt(1 / fan_in) for the normal kinds (0 for an empty weight)."""
        fan = self.fan_in or 0
        return 1.0 / math.sqrt(fan) if fan > 0 else 0.0

    def rule(self, api: str = "nnx", optimized_lstm: bool = False) -> str:
        """The rule in words, as the reports print it."""
        if self.kind == "lecun_normal":
            return f"lecun_normal: truncated normal, std sqrt(1/{self.fan_in})"
        if self.kind == "embed_normal":
            return f"N(0, 1/{self.fan_in}) (Embed)"
        if self.kind == "orthogonal":
            blocks = self.blocks_for(api, optimized_lstm)
            return "orthogonal" + (f", one per gate ({blocks} blocks)" if blocks > 1 else "")
        return f"constant {self.value:g}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class WeightLayout:
    """One weight of a layer kind: where it lives, what each axis means, its true fans.

    Attributes:
        attribute: The layer attribute holding the variable ("kernel").
        initializer: The layer attribute holding its initializer
            ("kernel_initializer"), or None where the layer keeps none.
        kind: What the weight is: "kernel" (a fan-scaled weight), "embedding"
            (a lookup table), "bias", "scale" or "shift" (a normalization's
            gamma and beta), "statistic" (moving mean and variance) or "other".
        axes: One ``Axis`` per dimension of the weight, in its own layout.
        fan_in: The true fan_in (None for a weight with no connections).
        fan_out: The true fan_out (None likewise).
        gates: Equal column blocks of the output axis (an RNN's gates); the
            fans are per gate.
        torch: PyTorch's default for it (``torch_defaults``), or None where
            no PyTorch module matches.
        flax: Flax's default for it (``flax_defaults``), or None where no
            Flax module matches.
        tied: "output_projection" for a table that is also the (transposed)
            output projection of a tied LM head, else None.
        lora: Whether Keras's ``enable_lora`` adapts this weight (its
            ``lora_<attribute>_a`` and ``_b`` are added to it); ``lora_axes``
            says how it is matricized.
    """

    attribute: str
    initializer: str | None
    kind: WeightKind
    axes: tuple[Axis, ...]
    fan_in: float | None = None
    fan_out: float | None = None
    gates: int = 1
    torch: TorchRule | None = None
    tied: Tie | None = None
    lora: bool = False
    flax: FlaxRule | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(axis.size for axis in self.axes)

    @property
    def in_axes(self) -> tuple[int, ...]:
        """The axes that make a matrix's rows: receptive field, input, a table's rows."""
        return tuple(
            i
            for i, axis in enumerate(self.axes)
            if axis.side in ("in", "both") or axis.role == "vocabulary"
        )

    @property
    def out_axes(self) -> tuple[int, ...]:
        """The axes that make a matrix's columns: the outputs."""
        return tuple(i for i, axis in enumerate(self.axes) if axis.side == "out")

    @property
    def lora_axes(self) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """How Keras's LoRA matricizes the weight: (A's axes, B's axes); None: it adapts none.

        ``enable_lora(rank)`` adds (alpha / rank) * A @ B, A of shape
        (*shape[:-1], rank) and B of shape (rank, shape[-1]): the rows are every
        axis but the last, whatever their roles. That is ``in_axes`` and
        ``out_axes`` for Dense, Conv* and Embedding, but not for an EinsumDense
        with several output axes: a query kernel (dim, heads, key_dim) is
        adapted as a (dim * heads, key_dim) matrix.
        """
        if not self.lora:
            return None
        last = len(self.axes) - 1
        return tuple(range(last)), (last,)

    @property
    def width_axes(self) -> tuple[int, ...]:
        """The axes whose size grows with the model's width (muP), by role."""
        return tuple(i for i, axis in enumerate(self.axes) if axis.role in WIDTH_ROLES)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LayerLayout:
    """A built layer's layout: its own weights and the layers it holds.

    Attributes:
        weights: The layer's own weights (not its sublayers'), as
            ``WeightLayout`` records. A weight the layer has not made
            (``use_bias=False``) is left out.
        children: The layers it holds (a wrapper's, a model's), whose own
            layouts are looked up in turn.
        pre_activation: The weight that scales the layer's pre-activation
            output (``lsuv`` rescales it), or None where the layer has none
            (a lookup, a normalization).
        recurrent: Whether the pre-activation is an RNN's input part of the
            gates, x_t @ kernel, seen through the RNN layer that holds the cell.
        wraps: Whether the layer wraps its first child (Bidirectional,
            TimeDistributed, an RNN layer): ``fans(wrapper, "kernel")`` then
            means the child's weight.
        output: The child whose weight makes the layer's output last (an
            attention's output projection), or None; ``residual`` reads it to
            find the weight that ends a residual branch.
        query: The child that projects an attention's queries (its kernel's
            last axis is the head dimension d whose 1 / sqrt(d) scales the
            logits), or None; ``mup`` reads it to give the logits muP's 1 / d.
    """

    weights: tuple[WeightLayout, ...] = ()
    children: tuple[Any, ...] = ()
    pre_activation: str | None = None
    recurrent: bool = False
    wraps: bool = False
    output: Any = None
    query: Any = None

    def weight(self, attribute: str) -> WeightLayout | None:
        return next((w for w in self.weights if w.attribute == attribute), None)

    @property
    def kernels(self) -> tuple[WeightLayout, ...]:
        """The fan-scaled weights and tables: what ``fans`` and ``layer_stats`` report."""
        return tuple(w for w in self.weights if w.kind in ("kernel", "embedding"))


LayoutFunction = Callable[[Any], LayerLayout]
_LAYOUTS: dict[type, LayoutFunction] = {}


def register_layout(layer_class: type, function: LayoutFunction) -> None:
    """Teaches every model-level function the layout of a layer class of your own.

    ``function(layer)`` gets a built layer of ``layer_class`` (or of a
    subclass that registers nothing itself) and returns its ``LayerLayout``:
    one ``WeightLayout`` per weight the layer itself makes, with the role
    of each axis and the true fans, and the sublayers it holds. ``fans``,
    ``reinitialize``, ``lsuv``, ``torch_defaults`` and
    ``diagnostics.layer_stats`` then read it as they read Keras's own kinds.
    Registering a class again replaces its layout.

    Args:
        layer_class: A subclass of ``keras.layers.Layer``.
        function: A callable from a built layer to a ``LayerLayout``.

    Raises:
        TypeError: If ``layer_class`` is not a Layer subclass or ``function``
            is not callable.

    Example:
        >>> import keras
        >>> class Scaled(keras.layers.Layer):  # y = x @ w, w of shape (in, units)
        ...     def __init__(self, units, w_initializer="he_normal", **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.units = units
        ...         self.w_initializer = keras.initializers.get(w_initializer)
        ...     def build(self, input_shape):
        ...         self.w = self.add_weight(shape=(input_shape[-1], self.units),
        ...                                  initializer=self.w_initializer, name="w")
        ...     def call(self, x):
        ...         return keras.ops.matmul(x, self.w)
        >>> def scaled_layout(layer):
        ...     fan_in, fan_out = tuple(layer.w.shape)
        ...     axes = (Axis("input", fan_in, "in"), Axis("output", fan_out, "out"))
        ...     kernel = WeightLayout(attribute="w", initializer="w_initializer",
        ...                           kind="kernel", axes=axes, fan_in=fan_in, fan_out=fan_out)
        ...     return LayerLayout(weights=(kernel,), pre_activation="w")
        >>> import keras_inits as ki
        >>> ki.register_layout(Scaled, scaled_layout)
        >>> layer = Scaled(8)
        >>> layer.build((None, 16))
        >>> ki.fans(layer, "w")
        (16, 8)
    """
    check_registration(layer_class, function, "a LayerLayout")
    _LAYOUTS[layer_class] = function


def layout(layer: Any) -> LayerLayout | None:
    """The layout of a built ``layer``, by the nearest class in its MRO; None: unknown kind.

    An unbuilt layer has no weights yet: its layout is empty.
    """
    _register_keras_hub_kinds()
    for cls in type(layer).__mro__:
        function = _LAYOUTS.get(cls)
        if function is not None:
            if not getattr(layer, "built", True):
                return LayerLayout()
            return function(layer)
    return None


def known_kinds() -> tuple[str, ...]:
    """The names of the registered layer classes, sorted."""
    return tuple(sorted({cls.__name__ for cls in _LAYOUTS}))


# Helpers for the layouts below.


def _count(value: float) -> float:
    """An int where the count is whole, else the float (a stride's average)."""
    return int(value) if float(value).is_integer() else float(value)


def _shape(variable: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in variable.shape)


def _vector(
    layer: Any,
    attribute: str,
    initializer: str | None,
    kind: WeightKind,
    torch: TorchRule | None = None,
    flax: FlaxRule | None = None,
) -> tuple[WeightLayout, ...]:
    """A per-feature weight (bias, gamma, beta, a statistic), if the layer made it."""
    variable = getattr(layer, attribute, None)
    if variable is None:
        return ()
    axes = tuple(Axis("features", size, "neither") for size in _shape(variable))
    return (
        WeightLayout(
            attribute=attribute,
            initializer=initializer,
            kind=kind,
            axes=axes,
            torch=torch,
            flax=flax,
        ),
    )


def _field(kernel_size: Sequence[int]) -> tuple[Axis, ...]:
    return tuple(Axis("receptive_field", int(k), "both") for k in kernel_size)


def _uniform(fan_in: float) -> TorchRule:
    """kaiming_uniform_(a=sqrt(5)) for a weight and its bias alike: U(+-1/sqrt(fan_in))."""
    return TorchRule(kind="uniform", fan_in=fan_in)


def _constant(value: float) -> TorchRule:
    return TorchRule(kind="constant", value=value)


def _lecun(fan_in: float) -> FlaxRule:
    """Flax's default kernel init: lecun_normal with Flax's own fan_in."""
    return FlaxRule(kind="lecun_normal", fan_in=fan_in)


def _flax_constant(value: float) -> FlaxRule:
    return FlaxRule(kind="constant", value=value)


_FLAX_ZEROS = _flax_constant(0.0)  # Flax's default bias init (and a norm's shift)
_FLAX_ONES = _flax_constant(1.0)


# Keras's layer kinds. Layouts, with K = prod(kernel_size), S = prod(strides),
# g = groups, m = depth_multiplier, G = gates (true fans in, out):
#
#     Dense                 kernel (in, out)                 in,          out
#     EinsumDense           kernel, axes named by the equation: contracted axes
#                           -> fan_in, output-only axes -> fan_out, shared: neither
#     Conv1D/2D/3D          kernel (k, in / g, out)          K in / g,    K out / (g S)
#     Conv*Transpose        kernel (k, out, in)              K in / S,    K out
#     DepthwiseConv1D/2D    kernel (k, in, m)                K,           K m / S
#     SeparableConv1D/2D    depthwise_kernel (k, in, m)      K,           K m / S
#                           pointwise_kernel (1, in m, out)  in m,        out
#     Embedding             embeddings (vocab, dim)          1,           dim
#     LSTM/GRU/SimpleRNN    kernel (in, G u)                 in,          u  (per gate)
#       cells (G = 4, 3, 1) recurrent_kernel (u, G u)        u,           u  (per gate)
#     ConvLSTM1D/2D/3D      kernel (k, in, 4 f)              K in,        K f / S (per gate)
#       cells               recurrent_kernel (k, f, 4 f)     K f,         K f (per gate)


def _dense(layer: Any) -> LayerLayout:
    fan_in, fan_out = _shape(layer.kernel)
    kernel = WeightLayout(
        attribute="kernel",
        initializer="kernel_initializer",
        kind="kernel",
        axes=(Axis("input", fan_in, "in"), Axis("output", fan_out, "out")),
        fan_in=fan_in,
        fan_out=fan_out,
        torch=_uniform(fan_in),
        lora=_has_lora(layer),
        flax=_lecun(fan_in),  # nnx.Linear
    )
    bias = _vector(layer, "bias", "bias_initializer", "bias", _uniform(fan_in), _FLAX_ZEROS)
    return LayerLayout(weights=(kernel, *bias), pre_activation="kernel")


def _has_lora(layer: Any) -> bool:
    # Keras's Dense, EinsumDense, Conv1D-3D and Embedding have `enable_lora`
    # (since Keras 3.0); a subclass that removes it adapts nothing.
    return callable(getattr(layer, "enable_lora", None))


def einsum_axes(equation: str, shape: Sequence[int]) -> tuple[Axis, ...]:
    """An EinsumDense kernel's axes from its equation: contracted, output-only or shared."""
    inputs, output = equation.replace("...", "").split("->")
    source, kernel = inputs.split(",")
    axes = []
    for letter, size in zip(kernel, shape, strict=True):
        if letter in source and letter in output:
            axes.append(Axis("shared", int(size), "neither"))  # a batch of maps
        elif letter not in output:
            axes.append(Axis("input", int(size), "in"))  # summed over
        elif letter not in source:
            axes.append(Axis("output", int(size), "out"))  # each input feeds these
        else:  # pragma: no cover - a letter in neither input nor output is not valid einsum
            axes.append(Axis("shared", int(size), "neither"))
    return tuple(axes)


def _fans_of(axes: Sequence[Axis]) -> tuple[int, int]:
    fan_in = math.prod(a.size for a in axes if a.side in ("in", "both"))
    fan_out = math.prod(a.size for a in axes if a.side in ("out", "both"))
    return fan_in, fan_out


def _einsum_dense(layer: Any) -> LayerLayout:
    axes = einsum_axes(layer.equation, _shape(layer.kernel))
    fan_in, fan_out = _fans_of(axes)
    kernel = WeightLayout(
        attribute="kernel",
        initializer="kernel_initializer",
        kind="kernel",
        axes=axes,
        fan_in=fan_in,
        fan_out=fan_out,
        lora=_has_lora(layer),
        # nnx.LinearGeneral (and attention's projections) draw the kernel flattened
        # to (prod(in features), prod(out features)): fan_in is the contracted size.
        flax=_lecun(fan_in),
    )
    bias = _vector(layer, "bias", "bias_initializer", "bias", flax=_FLAX_ZEROS)
    return LayerLayout(weights=(kernel, *bias), pre_activation="kernel")


def _conv(layer: Any) -> LayerLayout:
    *field, group_channels, filters = _shape(layer.kernel)
    k, s, groups = math.prod(field), math.prod(layer.strides), layer.groups
    torch = _uniform(group_channels * k)  # Conv weight (out, in / g, *k): fan_in = in / g * K
    axes = (*_field(field), Axis("input", group_channels, "in"), Axis("output", filters, "out"))
    kernel = WeightLayout(
        attribute="kernel",
        initializer="kernel_initializer",
        kind="kernel",
        axes=axes,
        fan_in=k * group_channels,
        fan_out=_count(k * filters / (groups * s)),
        torch=torch,
        lora=_has_lora(layer),
        flax=_lecun(k * group_channels),  # nnx.Conv kernel (*k, in / g, out)
    )
    bias = _vector(layer, "bias", "bias_initializer", "bias", torch, _FLAX_ZEROS)
    return LayerLayout(weights=(kernel, *bias), pre_activation="kernel")


def _conv_transpose(layer: Any) -> LayerLayout:
    *field, filters, channels = _shape(layer.kernel)
    k, s = math.prod(field), math.prod(layer.strides)
    # ConvTranspose weight (in, out, *k): PyTorch's fan_in is out * K (its quirk, kept).
    torch = _uniform(filters * k)
    axes = (*_field(field), Axis("output", filters, "out"), Axis("input", channels, "in"))
    kernel = WeightLayout(
        attribute="kernel",
        initializer="kernel_initializer",
        kind="kernel",
        axes=axes,
        fan_in=_count(k * channels / s),
        fan_out=k * filters,
        torch=torch,
        flax=_lecun(k * channels),  # nnx.ConvTranspose kernel (*k, in, out): fan_in K in
    )
    bias = _vector(layer, "bias", "bias_initializer", "bias", torch, _FLAX_ZEROS)
    return LayerLayout(weights=(kernel, *bias), pre_activation="kernel")


def _depthwise_weight(layer: Any, attribute: str, torch: TorchRule) -> WeightLayout:
    *field, channels, multiplier = _shape(getattr(layer, attribute))
    k, s = math.prod(field), math.prod(layer.strides)
    axes = (
        *_field(field),
        Axis("channels", channels, "neither"),
        Axis("output", multiplier, "out"),
    )
    return WeightLayout(
        attribute=attribute,
        initializer="depthwise_initializer",
        kind="kernel",
        axes=axes,
        fan_in=k,
        fan_out=_count(k * multiplier / s),
        torch=torch,
        flax=_lecun(k),  # nnx.Conv(feature_group_count=in): kernel (*k, 1, in m)
    )


def _depthwise(layer: Any) -> LayerLayout:
    # Conv(in, in * m, groups=in): weight (in * m, 1, *k), fan_in = K.
    torch = _uniform(math.prod(layer.kernel_size))
    kernel = _depthwise_weight(layer, "kernel", torch)
    bias = _vector(layer, "bias", "bias_initializer", "bias", torch, _FLAX_ZEROS)
    return LayerLayout(weights=(kernel, *bias), pre_activation="kernel")


def _separable(layer: Any) -> LayerLayout:
    # The usual port: Conv(groups=in, bias=False), then a 1x1 Conv with the bias.
    depthwise = _depthwise_weight(layer, "depthwise_kernel", _uniform(math.prod(layer.kernel_size)))
    *ones, inner, filters = _shape(layer.pointwise_kernel)
    torch = _uniform(inner)
    axes = (*_field(ones), Axis("input", inner, "in"), Axis("output", filters, "out"))
    pointwise = WeightLayout(
        attribute="pointwise_kernel",
        initializer="pointwise_initializer",
        kind="kernel",
        axes=axes,
        fan_in=inner,
        fan_out=filters,
        torch=torch,
        flax=_lecun(inner),
    )
    bias = _vector(layer, "bias", "bias_initializer", "bias", torch, _FLAX_ZEROS)
    return LayerLayout(weights=(depthwise, pointwise, *bias), pre_activation="pointwise_kernel")


def _embedding(layer: Any) -> LayerLayout:
    vocabulary, dim = _shape(layer.embeddings)
    tied: Tie | None = None
    if isinstance(layer, _REVERSIBLE_EMBEDDINGS) and getattr(layer, "tie_weights", False):
        tied = "output_projection"  # logits = h @ embeddings^T
    table = WeightLayout(
        attribute="embeddings",
        initializer="embeddings_initializer",
        kind="embedding",
        axes=(Axis("vocabulary", vocabulary, "neither"), Axis("output", dim, "out")),
        fan_in=1,
        fan_out=dim,
        torch=TorchRule(kind="normal"),
        tied=tied,
        lora=_has_lora(layer),
        flax=FlaxRule(kind="embed_normal", fan_in=dim),  # nnx.Embed: N(0, 1 / features)
    )
    weights = [table]
    reverse = getattr(layer, "reverse_embeddings", None)
    if isinstance(reverse, keras.Variable):  # an untied head (dim, vocab): a projection
        axes = (Axis("input", dim, "in"), Axis("output", vocabulary, "out"))
        weights.append(
            WeightLayout(
                attribute="reverse_embeddings",
                initializer="embeddings_initializer",
                kind="kernel",
                axes=axes,
                fan_in=dim,
                fan_out=vocabulary,
                torch=_uniform(dim),  # an nn.Linear(dim, vocab) head
                flax=_lecun(dim),  # an nnx.Linear(dim, vocab) head
            )
        )
    return LayerLayout(weights=tuple(weights))


_GATES: dict[type, int] = {}  # filled below: LSTMCell 4, GRUCell 3, SimpleRNNCell 1


def _flax_recurrent(gates: int) -> FlaxRule:
    """Flax's recurrent kernel: orthogonal, per gate or whole as each cell draws it.

    LSTM: LSTMCell one per gate (nnx and linen); nnx.OptimizedLSTMCell whole,
    linen's per gate. GRU: nnx.GRUCell whole (one (u, 3u) Linear), linen's
    per gate. SimpleRNN: SimpleCell, one (u, u) block.
    """
    if gates == 4:
        return FlaxRule(kind="orthogonal", blocks=4, optimized_blocks=1)
    return FlaxRule(kind="orthogonal", blocks=1, linen_blocks=gates)


def _rnn_cell(layer: Any) -> LayerLayout:
    gates = next(g for cls, g in _GATES.items() if isinstance(layer, cls))
    fan_in, width = _shape(layer.kernel)
    units = width // gates
    torch = _uniform(units)  # every parameter U(+-1/sqrt(hidden))
    kernel = WeightLayout(
        attribute="kernel",
        initializer="kernel_initializer",
        kind="kernel",
        axes=(Axis("input", fan_in, "in"), Axis("output", width, "out")),
        fan_in=fan_in,
        fan_out=units,
        gates=gates,
        torch=torch,
        flax=_lecun(fan_in),  # per gate or whole, fan_in is the input size
    )
    recurrent = WeightLayout(
        attribute="recurrent_kernel",
        initializer="recurrent_initializer",
        kind="kernel",
        axes=(Axis("input", units, "in"), Axis("output", width, "out")),
        fan_in=units,
        fan_out=units,
        gates=gates,
        torch=torch,
        flax=_flax_recurrent(gates),
    )
    weights = [kernel, recurrent]
    bias = getattr(layer, "bias", None)
    if isinstance(bias, keras.Variable):
        # Keras has one bias where PyTorch has b_ih and b_hh (added); a GRU with
        # reset_after keeps both, as rows.
        kind: TorchKind = "uniform" if len(_shape(bias)) == 2 else "uniform_sum"
        weights.extend(
            _vector(
                layer,
                "bias",
                "bias_initializer",
                "bias",
                TorchRule(kind=kind, fan_in=units),
                _FLAX_ZEROS,  # Flax's cells: zeros (no forget-gate 1)
            )
        )
    return LayerLayout(weights=tuple(weights), pre_activation="kernel", recurrent=True)


def _conv_lstm_cell(layer: Any) -> LayerLayout:
    *field, channels, width = _shape(layer.kernel)
    filters = width // 4
    k, s = math.prod(field), math.prod(layer.strides)
    axes = (*_field(field), Axis("input", channels, "in"), Axis("output", width, "out"))
    kernel = WeightLayout(
        attribute="kernel",
        initializer="kernel_initializer",
        kind="kernel",
        axes=axes,
        fan_in=k * channels,
        fan_out=_count(k * filters / s),
        gates=4,
    )
    recurrent_axes = (*_field(field), Axis("input", filters, "in"), Axis("output", width, "out"))
    recurrent = WeightLayout(
        attribute="recurrent_kernel",
        initializer="recurrent_initializer",
        kind="kernel",
        axes=recurrent_axes,
        fan_in=k * filters,
        fan_out=k * filters,
        gates=4,
    )
    bias = _vector(layer, "bias", "bias_initializer", "bias")
    return LayerLayout(weights=(kernel, recurrent, *bias))


def _batch_norm(layer: Any) -> LayerLayout:
    # reset_parameters: weight 1, bias 0; reset_running_stats: mean 0, var 1.
    return LayerLayout(
        weights=(
            *_vector(layer, "gamma", "gamma_initializer", "scale", _constant(1.0), _FLAX_ONES),
            *_vector(layer, "beta", "beta_initializer", "shift", _constant(0.0), _FLAX_ZEROS),
            *_vector(
                layer,
                "moving_mean",
                "moving_mean_initializer",
                "statistic",
                _constant(0.0),
                _FLAX_ZEROS,
            ),
            *_vector(
                layer,
                "moving_variance",
                "moving_variance_initializer",
                "statistic",
                _constant(1.0),
                _FLAX_ONES,
            ),
        )
    )


def _norm(layer: Any) -> LayerLayout:
    return LayerLayout(
        weights=(
            *_vector(layer, "gamma", "gamma_initializer", "scale", _constant(1.0), _FLAX_ONES),
            *_vector(layer, "beta", "beta_initializer", "shift", _constant(0.0), _FLAX_ZEROS),
        )
    )


def _rms_norm(layer: Any) -> LayerLayout:
    # nn.RMSNorm: weight 1. Keras keeps no initializer attribute (it uses "ones").
    return LayerLayout(weights=_vector(layer, "scale", None, "scale", _constant(1.0), _FLAX_ONES))


def _prelu(layer: Any) -> LayerLayout:
    # nn.PReLU: 0.25; nnx.PReLU and linen.PReLU: 0.01 (Keras's default is zeros).
    return LayerLayout(
        weights=_vector(
            layer, "alpha", "alpha_initializer", "other", _constant(0.25), _flax_constant(0.01)
        )
    )


def _attention_scores(layer: Any) -> LayerLayout:
    # Attention and AdditiveAttention: learned scalars or vectors with no initializer attribute.
    return LayerLayout(
        weights=(
            *_vector(layer, "scale", None, "other"),
            *_vector(layer, "concat_score_weight", None, "other"),
        )
    )


def _layer_scale(layer: Any) -> LayerLayout:
    # ConvNeXt's LayerScale: y = gamma * x, gamma a per-channel scale (1e-6 by default).
    return LayerLayout(weights=_vector(layer, "gamma", None, "scale"))


def _residual_scale(layer: Any) -> LayerLayout:
    # keras_inits.model.ResidualScale: y = alpha * x, one scalar (SkipInit's, ReZero's alpha).
    # A scale of the branch (residual_branches finds it as it finds a norm's gamma); no
    # PyTorch or Flax module matches it.
    return LayerLayout(weights=_vector(layer, "alpha", "initializer", "scale"))


def _preprocessing_statistics(layer: Any) -> LayerLayout:
    # Normalization's adapted mean, variance and count: data, not initialization.
    return LayerLayout(
        weights=tuple(
            w
            for name in ("mean", "variance", "count")
            if isinstance(getattr(layer, name, None), keras.Variable)
            for w in _vector(layer, name, None, "statistic")
        )
    )


def _spectral_norm(layer: Any) -> LayerLayout:
    # The power iteration's vector: state, not a weight to initialize.
    return LayerLayout(
        weights=_vector(layer, "vector_u", None, "statistic"), children=(layer.layer,)
    )


def _children_only(*attributes: str, wraps: bool = False) -> LayoutFunction:
    def function(layer: Any) -> LayerLayout:
        children: list[Any] = []
        for attribute in attributes:
            value = getattr(layer, attribute, None)
            children.extend(value if isinstance(value, (list, tuple)) else [value])
        return LayerLayout(children=tuple(c for c in children if c is not None), wraps=wraps)

    return function


def _attention(layer: Any) -> LayerLayout:
    # MultiHeadAttention and GroupQueryAttention: their EinsumDense projections
    # (query, key, value (dim, heads, key_dim), output (heads, key_dim, dim)).
    return LayerLayout(
        children=tuple(_compat.sublayers(layer)),
        output=getattr(layer, "_output_dense", None),
        query=_compat.attention_query(layer),
    )


def _model(layer: Any) -> LayerLayout:
    return LayerLayout(children=tuple(layer.layers))


_REVERSIBLE_EMBEDDINGS: tuple[type, ...] = tuple(
    cls for cls in (getattr(keras.layers, "ReversibleEmbedding", None),) if cls is not None
)


def _residual_scale_class() -> type:
    from keras_inits.model._residual_scale import ResidualScale

    return ResidualScale


def _register_keras_kinds() -> None:
    L = keras.layers
    _GATES.update({L.LSTMCell: 4, L.GRUCell: 3, L.SimpleRNNCell: 1})
    table: list[tuple[tuple[Any, ...], LayoutFunction]] = [
        ((L.Dense,), _dense),
        ((L.EinsumDense,), _einsum_dense),
        ((L.Conv1D, L.Conv2D, L.Conv3D), _conv),
        ((L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose), _conv_transpose),
        ((L.DepthwiseConv1D, L.DepthwiseConv2D), _depthwise),
        ((L.SeparableConv1D, L.SeparableConv2D), _separable),
        ((L.Embedding,), _embedding),
        ((L.LSTMCell, L.GRUCell, L.SimpleRNNCell), _rnn_cell),
        ((_compat.conv_lstm_cell_class(),), _conv_lstm_cell),
        ((L.BatchNormalization,), _batch_norm),
        ((L.LayerNormalization, L.GroupNormalization), _norm),
        ((getattr(L, "RMSNormalization", None),), _rms_norm),
        ((L.PReLU,), _prelu),
        ((L.Attention, L.AdditiveAttention), _attention_scores),
        ((L.Normalization,), _preprocessing_statistics),
        ((_compat.convnext_layer_scale_class(),), _layer_scale),
        ((L.SpectralNormalization,), _spectral_norm),
        ((_residual_scale_class(),), _residual_scale),
        ((L.MultiHeadAttention, getattr(L, "GroupQueryAttention", None)), _attention),
        ((L.Bidirectional,), _children_only("forward_layer", "backward_layer", wraps=True)),
        ((L.TimeDistributed,), _children_only("layer", wraps=True)),
        ((L.RNN,), _children_only("cell", wraps=True)),
        ((L.StackedRNNCells,), _children_only("cells")),
        ((keras.Model,), _model),
    ]
    for classes, function in table:
        for cls in classes:
            if cls is not None:
                _LAYOUTS[cls] = function


_register_keras_kinds()


_KERAS_HUB_DONE: list[bool] = []


def _keras_hub_rms_norm(layer: Any) -> LayerLayout:
    # Gemma's RMS norm multiplies by (1 + scale), scale initialized to zeros
    # (Hugging Face's Gemma port likewise): no initializer attribute.
    return LayerLayout(weights=_vector(layer, "scale", None, "scale", _constant(0.0)))


def _keras_hub_position_embedding(layer: Any) -> LayerLayout:
    # PositionEmbedding: a learned table (sequence_length, dim), one row per position.
    positions, dim = _shape(layer.position_embeddings)
    table = WeightLayout(
        attribute="position_embeddings",
        initializer="initializer",
        kind="embedding",
        axes=(Axis("vocabulary", positions, "neither"), Axis("output", dim, "out")),
        fan_in=1,
        fan_out=dim,
    )
    return LayerLayout(weights=(table,))


def _keras_hub_llama_norm(layer: Any) -> LayerLayout:
    # LlamaLayerNorm: an RMS norm, x * scale with scale ones (Hugging Face's LlamaRMSNorm too).
    return LayerLayout(weights=_vector(layer, "scale", None, "scale", _constant(1.0)))


def _keras_hub_attention(query: str, output: str, scaled: Callable[[Any], bool]) -> LayoutFunction:
    """keras-hub's own attention layers: EinsumDense projections, as MultiHeadAttention.

    ``query`` is named only where the logits are scaled by 1 / sqrt(the query
    kernel's last axis, the head dimension): ``scaled(layer)``.
    """

    def function(layer: Any) -> LayerLayout:
        return LayerLayout(
            children=tuple(_compat.sublayers(layer)),
            output=getattr(layer, output, None),
            query=getattr(layer, query, None) if scaled(layer) else None,
        )

    return function


def _register_keras_hub_kinds() -> None:
    """keras-hub's own layer kinds, once keras_hub is imported (this never imports it).

    Its ``ReversibleEmbedding`` subclasses Keras's, so the table already knows it.
    """
    import sys

    if _KERAS_HUB_DONE or "keras_hub" not in sys.modules:
        return
    _KERAS_HUB_DONE.append(True)
    kinds = [
        ("models.gemma.rms_normalization", "RMSNormalization", _keras_hub_rms_norm),
        ("models.gemma3.gemma3_layers", "RMSNormalization", _keras_hub_rms_norm),
        ("layers.modeling.position_embedding", "PositionEmbedding", _keras_hub_position_embedding),
        ("models.llama.llama_layernorm", "LlamaLayerNorm", _keras_hub_llama_norm),
        # Llama's logits: q.k / sqrt(head_dim). Gemma's: / sqrt(head_dim) only with
        # query_head_dim_normalize (the default), else / sqrt(hidden_dim / heads).
        (
            "models.llama.llama_attention",
            "LlamaAttention",
            _keras_hub_attention("_query_dense", "_output_dense", lambda layer: True),
        ),
        (
            "models.gemma.gemma_attention",
            "CachedGemmaAttention",
            _keras_hub_attention(
                "query_dense",
                "output_dense",
                lambda layer: bool(getattr(layer, "query_head_dim_normalize", False)),
            ),
        ),
    ]
    for module, name, function in kinds:
        cls = _compat.keras_hub_class(module, name)
        if cls is not None and cls not in _LAYOUTS:
            _LAYOUTS[cls] = function
