"""``torch_defaults(model)``: PyTorch 2.x's ``reset_parameters``, weights and biases."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_inits import _sampling
from keras_inits._validation import check_seed
from keras_inits.model._layouts import TorchRule
from keras_inits.model._reinitialize import WeightChange, redraw_by_rule
from keras_inits.model._walk import check_model, in_shape

__all__ = ["torch_defaults"]


def _numpy_dtype(dtype: str) -> str:
    return dtype if dtype in ("float16", "float32", "float64") else "float32"


def _torch_draw(rule: TorchRule, shape: tuple[int, ...], dtype: str, pair: tuple[Any, Any]) -> Any:
    if rule.kind == "constant":
        return np.full(shape, rule.value, dtype=_numpy_dtype(dtype))
    if rule.kind == "normal":
        return in_shape(lambda s: _sampling.normal(s, 1.0, dtype, pair[0]), shape)
    if rule.bound == 0.0:
        return np.zeros(shape, dtype=_numpy_dtype(dtype))
    values = in_shape(lambda s: _sampling.uniform(s, rule.bound, dtype, pair[0]), shape)
    if rule.kind == "uniform_sum":
        other = in_shape(lambda s: _sampling.uniform(s, rule.bound, dtype, pair[1]), shape)
        if isinstance(values, np.ndarray):
            return values + other
        values = keras.ops.add(values, other)
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
        RMSNormalization ~ nn.RMSNorm: scale 1;  PReLU ~ nn.PReLU: 0.25

    Layouts differ (PyTorch's Linear weight is (out, in), Keras's kernel
    (in, out)), but each rule draws i.i.d. entries, so only the fan matters.
    The rules live in the table of layer kinds (``WeightLayout.torch``).
    Weights with no PyTorch counterpart (EinsumDense, attention, custom
    layers) are left unchanged and reported with rule "unchanged".

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
        >>> import keras
        >>> model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
        >>> [(c.weight, c.rule) for c in torch_defaults(model, seed=0)]
        [('kernel', 'U(-1/sqrt(64), 1/sqrt(64))'), ('bias', 'U(-1/sqrt(64), 1/sqrt(64))')]

    Reference:
        PyTorch 2.x ``nn.Linear.reset_parameters``, ``nn.modules.conv._ConvNd``,
        ``nn.RNNBase.reset_parameters``, ``nn.Embedding.reset_parameters``;
        He et al., 2015, https://arxiv.org/abs/1502.01852 (kaiming_uniform_)
    """
    check_model(model)
    seed = check_seed(seed)

    def draw(layer: Any, rule: TorchRule, shape: tuple[int, ...], dtype: str, seed_of: Any) -> Any:
        return _torch_draw(rule, shape, dtype, (seed_of(0), seed_of(1)))

    return redraw_by_rule(
        model, seed, lambda entry: entry.torch, draw, lambda _, rule: rule.rule, seeds_per_weight=2
    )
