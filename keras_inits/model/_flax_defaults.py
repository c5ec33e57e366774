"""``flax_defaults(model)``: Flax's default initializers (nnx, or linen), weights and biases."""

from __future__ import annotations

from typing import Any, Literal, get_args

import keras
import numpy as np

from keras_inits import _sampling
from keras_inits._validation import check_choice, check_seed
from keras_inits.model._layouts import FlaxRule
from keras_inits.model._reinitialize import WeightChange, redraw_by_rule
from keras_inits.model._walk import check_model, in_shape

__all__ = ["flax_defaults"]

FlaxApi = Literal["nnx", "linen"]


def _numpy_dtype(dtype: str) -> str:
    return dtype if dtype in ("float16", "float32", "float64") else "float32"


def _orthogonal(shape: tuple[int, ...], blocks: int, dtype: str, seed: Any) -> Any:
    """``blocks`` Haar-orthogonal blocks side by side along the last axis (Flax's per gate)."""
    rows, width = int(np.prod(shape[:-1])), shape[-1] // blocks
    q = _sampling.orthogonal(blocks, rows, width, 1.0, dtype, seed)
    if blocks > 1:  # (blocks, rows, width) -> (rows, blocks, width)
        q = keras.ops.transpose(q, (1, 0, 2))
    return keras.ops.reshape(q, shape)


def _flax_draw(rule: FlaxRule, shape: tuple[int, ...], dtype: str, seed: Any, blocks: int) -> Any:
    if rule.kind == "constant":
        return np.full(shape, rule.value, dtype=_numpy_dtype(dtype))
    if 0 in shape or (rule.kind != "orthogonal" and rule.stddev == 0.0):
        return np.zeros(shape, dtype=_numpy_dtype(dtype))
    if rule.kind == "orthogonal":
        return _orthogonal(shape, blocks, dtype, seed)
    if rule.kind == "embed_normal":
        return in_shape(lambda s: _sampling.normal(s, rule.stddev, dtype, seed), shape)
    return in_shape(lambda s: _sampling.truncated_normal(s, rule.stddev, dtype, seed), shape)


def flax_defaults(
    model: keras.Model,
    seed: Any = None,
    *,
    api: FlaxApi = "nnx",
    optimized_lstm: bool = False,
) -> list[WeightChange]:
    """Re-initializes weights and biases, in place, as Flax's layers initialize theirs.

    For each layer whose Flax module is clear (docs/model-level.md has the table):

        Dense ~ nnx.Linear, Conv* ~ nnx.Conv, Conv*Transpose ~ nnx.ConvTranspose,
        DepthwiseConv* ~ nnx.Conv(feature_group_count=in), EinsumDense and
        MultiHeadAttention's projections ~ nnx.LinearGeneral:
            W ~ lecun_normal: normal truncated at +-2 sigma, std after the cut
                sqrt(1 / fan_in), fan_in Flax's (in / groups * K for a
                convolution, in * K for a transposed one, the contracted
                size for LinearGeneral);   b = 0
        SeparableConv*: its two convolutions, each as above
        Embedding ~ nnx.Embed:    W ~ N(0, 1 / features), untruncated
        LSTM ~ LSTMCell, GRU ~ GRUCell, SimpleRNN ~ SimpleCell:
            kernel lecun_normal (fan_in = input size); bias 0 (no forget-gate 1);
            recurrent kernel orthogonal: LSTM one block per gate (nnx and linen
            LSTMCell; ``optimized_lstm=True``: nnx.OptimizedLSTMCell, whole);
            GRU whole in nnx, one per gate in linen; SimpleRNN one block
        BatchNormalization: scale 1, bias 0, mean 0, var 1
        LayerNormalization, GroupNormalization: scale 1, bias 0
        RMSNormalization ~ nnx.RMSNorm: scale 1;   PReLU ~ nnx.PReLU: 0.01

    Each rule draws i.i.d. entries or orthogonal blocks along the output
    axis, so Keras's layouts and Flax's agree wherever the fan agrees. The
    rules live in the table of layer kinds (``WeightLayout.flax``). Weights
    with no Flax counterpart (ConvLSTM, Attention's scores, custom layers)
    are left unchanged and reported with rule "unchanged".

    Args:
        model: A built model or layer, on any backend.
        seed: An int (reproducible), None or a ``keras.random.SeedGenerator``.
        api: "nnx" (default) or "linen": where the two differ (GRUCell's
            recurrent kernel, OptimizedLSTMCell's), which one to follow.
        optimized_lstm: Follow ``OptimizedLSTMCell`` rather than ``LSTMCell``
            for LSTM layers (a bool).

    Returns:
        One ``WeightChange`` per weight, in the model's layer order.

    Raises:
        TypeError: If ``model`` is not a Keras layer, ``seed`` has a bad type
            or ``optimized_lstm`` is not a bool.
        ValueError: If the model is not built or has no weights, or ``api``
            is unknown. Nothing is changed then.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
        >>> [(c.weight, c.rule) for c in flax_defaults(model, seed=0)]
        [('kernel', 'lecun_normal: truncated normal, std sqrt(1/64)'), ('bias', 'constant 0')]

    Reference:
        Flax 0.12 ``nnx.Linear``, ``nnx.Conv``, ``nnx.Embed``, ``nnx.LSTMCell``,
        ``nnx.OptimizedLSTMCell``, ``nnx.GRUCell``, ``linen.GRUCell``;
        LeCun et al., 1998, "Efficient BackProp" (lecun_normal)
    """
    check_model(model)
    seed = check_seed(seed)
    api = check_choice("api", api, get_args(FlaxApi))
    if not isinstance(optimized_lstm, bool):
        raise TypeError(
            f"`optimized_lstm` must be a bool. Received: optimized_lstm={optimized_lstm!r}"
        )

    def optimized(layer: Any) -> bool:
        return optimized_lstm and isinstance(layer, keras.layers.LSTMCell)

    def draw(layer: Any, rule: FlaxRule, shape: tuple[int, ...], dtype: str, seed_of: Any) -> Any:
        return _flax_draw(rule, shape, dtype, seed_of(0), rule.blocks_for(api, optimized(layer)))

    return redraw_by_rule(
        model,
        seed,
        lambda entry: entry.flax,
        draw,
        lambda layer, rule: rule.rule(api, optimized(layer)),
    )
