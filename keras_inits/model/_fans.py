"""``fans(layer, weight)``: the true (fan_in, fan_out) of one weight, read from the table."""

from __future__ import annotations

from typing import Any

import keras

from keras_inits.model._layouts import WeightLayout, layout
from keras_inits.model._walk import check_model, unknown_kind, walk

__all__ = ["fans"]


def fans(layer: keras.layers.Layer, weight: Any = "kernel") -> tuple[float, float]:
    """The true (fan_in, fan_out) of one weight of a built layer.

    A fan counts the connections a unit really has, averaged over positions
    away from the borders (see ``keras_inits.model``); Keras's initializers
    see only the shape ``(*receptive_field, in, out)`` and get several layer
    kinds wrong. With K = prod(kernel_size), S = prod(strides), g = groups:

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
    average (kernel 3, stride 2: 1.5 connections per axis). The table is
    ``keras_inits.model``'s, open to layers of your own (``register_layout``);
    a subclass of a known layer has its parent's layout.

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
        >>> import keras
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
    check_model(layer, "layer")
    entry = find_weight(layer, weight)
    return entry.fan_in, entry.fan_out  # type: ignore[return-value]


def find_weight(layer: Any, weight: Any) -> WeightLayout:
    """The ``WeightLayout`` of a kernel-like ``weight`` (a name, a path or a variable)."""
    if isinstance(weight, keras.Variable):
        for leaf in walk(layer):
            for entry, variable in leaf.placed():
                if variable is weight and entry.kind in ("kernel", "embedding"):
                    return entry
            if any(v is weight for v in leaf.unplaced()):
                raise unknown_kind(leaf.layer, [weight])
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
    found = layout(layer)
    if found is not None and found.wraps:
        return find_weight(found.children[0], weight)  # Bidirectional: the forward layer
    if found is not None and found.kernels:
        entries = found.kernels
        for entry in entries:
            if entry.attribute == weight or (weight == "kernel" and len(entries) == 1):
                return entry  # "kernel", the default, names an Embedding's table too
        names = tuple(sorted(entry.attribute for entry in entries))
        raise ValueError(
            f"`weight` must be one of {names} for {type(layer).__name__}. "
            f"Received: weight={weight!r}"
        )
    leaves = list(walk(layer))
    if found is None and leaves[0].own:
        raise unknown_kind(layer, leaves[0].own)
    if found is not None and not any(leaf is not leaves[0] and leaf.own for leaf in leaves):
        kinds = tuple(entry.kind for entry in found.weights)
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) has no kernel-like weight, so it "
            f"has no fans: its weights are of kinds {kinds}. Received: weight={weight!r}"
        )
    # A model or container: `weight` names one variable by its path.
    matches = [v for v in layer.weights if v.path == weight or v.path.endswith("/" + weight)]
    if len(matches) != 1:
        paths = tuple(v.path for v in layer.weights)
        raise ValueError(
            f"`weight` must name exactly one variable of {layer.name!r} by its path "
            f"(it matches {len(matches)}); its paths are {paths}. Received: weight={weight!r}"
        )
    return find_weight(layer, matches[0])
