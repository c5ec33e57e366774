"""keras_inits.model: true fans by measurement, reinitialize, lsuv, torch_defaults."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from scipy import stats

import keras_inits as ki
from keras_inits._fans import compute_fans
from keras_inits.diagnostics._stats import gradients
from helpers import KS_ALPHA, assert_error, std_tolerance, to_numpy

L = keras.layers
TOLERANCE = 0.10  # the bound on Var(output) / Var(input) - 1


def built(layer, input_shape):
    layer.build(input_shape)
    return layer


# fans: exact values per layer kind


@pytest.mark.parametrize(
    ("make", "input_shape", "weight", "expected"),
    [
        (lambda: L.Dense(32), (None, 64), "kernel", (64, 32)),
        (lambda: L.EinsumDense("abc,cde->abde", (None, 8, 16)), (None, 5, 64), "kernel", (64, 128)),
        (lambda: L.EinsumDense("abc,bcd->abd", (4, 16)), (None, 4, 8), "kernel", (8, 16)),
        (lambda: L.Conv1D(64, 4, strides=2), (None, 32, 16), "kernel", (64, 128)),
        (lambda: L.Conv2D(64, 4, strides=2, groups=4), (None, 16, 16, 64), "kernel", (256, 64)),
        (lambda: L.Conv2D(8, 3, strides=2), (None, 16, 16, 4), "kernel", (36, 18)),
        (lambda: L.Conv3D(16, 2), (None, 6, 6, 6, 8), "kernel", (64, 128)),
        (lambda: L.Conv1DTranspose(16, 4, strides=2), (None, 8, 64), "kernel", (128, 64)),
        (lambda: L.Conv2DTranspose(16, 4, strides=2), (None, 8, 8, 32), "kernel", (128, 256)),
        (lambda: L.Conv2DTranspose(8, 3, strides=2), (None, 8, 8, 32), "kernel", (72, 72)),
        (lambda: L.Conv3DTranspose(16, 2, strides=2), (None, 4, 4, 4, 32), "kernel", (32, 128)),
        (lambda: L.DepthwiseConv1D(4, strides=2, depth_multiplier=8), (None, 32, 16), "kernel", (4, 16)),
        (lambda: L.DepthwiseConv2D(4, strides=2, depth_multiplier=8), (None, 8, 8, 16), "kernel", (16, 32)),
        (lambda: L.SeparableConv1D(32, 4, strides=2, depth_multiplier=4), (None, 16, 8), "depthwise_kernel", (4, 8)),
        (lambda: L.SeparableConv1D(32, 4, strides=2, depth_multiplier=4), (None, 16, 8), "pointwise_kernel", (32, 32)),
        (lambda: L.SeparableConv2D(32, 4, depth_multiplier=2), (None, 8, 8, 8), "depthwise_kernel", (16, 32)),
        (lambda: L.SeparableConv2D(32, 4, depth_multiplier=2), (None, 8, 8, 8), "pointwise_kernel", (16, 32)),
        (lambda: L.Embedding(1000, 64), (None, 3), "embeddings", (1, 64)),
        (lambda: L.Embedding(1000, 64), (None, 3), "kernel", (1, 64)),
        (lambda: L.LSTM(32), (None, 5, 16), "kernel", (16, 32)),
        (lambda: L.LSTM(32), (None, 5, 16), "recurrent_kernel", (32, 32)),
        (lambda: L.GRU(32), (None, 5, 16), "kernel", (16, 32)),
        (lambda: L.GRU(32, reset_after=False), (None, 5, 16), "recurrent_kernel", (32, 32)),
        (lambda: L.SimpleRNN(32), (None, 5, 16), "kernel", (16, 32)),
        (lambda: L.RNN(L.LSTMCell(32)), (None, 5, 16), "kernel", (16, 32)),
        (lambda: L.Bidirectional(L.GRU(32)), (None, 5, 16), "kernel", (16, 32)),
        (lambda: L.TimeDistributed(L.Conv2DTranspose(16, 4, strides=2)), (None, 3, 8, 8, 32), "kernel", (128, 256)),
    ],
)  # fmt: skip
def test_fans_per_layer_kind(make, input_shape, weight, expected):
    assert ki.fans(built(make(), input_shape), weight) == expected


def test_fans_of_a_weight_in_a_model_by_variable_and_by_path():
    model = keras.Sequential(
        [
            keras.Input((6, 8)),
            L.Bidirectional(L.LSTM(16, return_sequences=True), name="bi"),
            L.TimeDistributed(L.Dense(4, name="head"), name="td"),
        ]
    )
    backward = model.layers[0].backward_layer.cell.recurrent_kernel
    assert ki.fans(model, backward) == (16, 16)
    assert ki.fans(model, "td/head/kernel") == (32, 4)
    inner = keras.Sequential([keras.Input((4,)), L.Dense(8, name="inner")])
    outer = keras.Sequential([keras.Input((4,)), inner, L.Dense(2, name="last")])
    assert ki.fans(outer, inner.layers[0].kernel) == (4, 8)
    assert ki.fans(outer, "last/kernel") == (8, 2)


def test_fans_errors_name_what_is_wrong():
    norm = built(L.BatchNormalization(), (None, 4))
    assert_error(
        lambda: ki.fans(norm),
        ValueError,
        "keras_inits does not know the kernel layout of layer "
        f"{norm.name!r} of class BatchNormalization",
        prefix=True,
    )
    assert_error(
        lambda: ki.fans(L.Dense(3)), ValueError, "`layer` must be built: give it", prefix=True
    )
    dense = built(L.Dense(3), (None, 4))
    assert_error(
        lambda: ki.fans(dense, "bias"),
        ValueError,
        "`weight` must be one of ('kernel',) for Dense. Received: weight='bias'",
    )
    separable = built(L.SeparableConv2D(4, 3), (None, 8, 8, 2))
    assert_error(
        lambda: ki.fans(separable),
        ValueError,
        "`weight` must be one of ('depthwise_kernel', 'pointwise_kernel') for "
        "SeparableConv2D. Received: weight='kernel'",
    )
    assert_error(
        lambda: ki.fans(dense, 3),
        TypeError,
        "`weight` must be an attribute name, a variable path or a keras.Variable. "
        "Received: weight=3",
    )
    assert_error(
        lambda: ki.fans("dense"),
        TypeError,
        "`layer` must be a Keras model or layer. Received: layer=str",
    )
    model = keras.Sequential([keras.Input((4,)), L.Dense(3), L.Dense(2)])
    assert_error(
        lambda: ki.fans(model, "kernel"),
        ValueError,
        "`weight` must name exactly one variable of",
        prefix=True,
    )


# fans: by measurement. A kernel drawn N(0, 1 / fan_in) keeps the variance of a
# unit-variance input, N(0, 1 / fan_out) that of the gradient, away from the
# borders. Sizes are chosen so that 10% is at least 3 standard errors of the
# measured ratio (the kernel's own sum of squares dominates: relative SE
# sqrt(2 / n) for n weights, n >= 4096 here); kernel sizes divide the strides,
# so every position away from the borders has the same number of taps.

MEASURED = [
    # (id, make, input shape, (forward, backward) border crop, weights, forward fails,
    # backward fails). A "valid" convolution's output has no border; its input
    # gradient does, and a transposed convolution the other way round.
    ("dense", lambda: L.Dense(128), (1024, 256), (0, 0), ["kernel"], False, False),
    ("einsum", lambda: L.EinsumDense("abc,cde->abde", (8, 16, 16)), (16, 8, 64), (0, 0), ["kernel"], True, True),
    ("conv1d_strided", lambda: L.Conv1D(64, 4, strides=2), (8, 64, 64), (0, 4), ["kernel"], False, True),
    ("conv2d_grouped", lambda: L.Conv2D(64, 4, strides=2, groups=4), (4, 16, 16, 64), (0, 4), ["kernel"], False, True),
    ("conv3d", lambda: L.Conv3D(32, 2), (4, 8, 8, 8, 32), (0, 2), ["kernel"], False, False),
    ("conv1d_transpose", lambda: L.Conv1DTranspose(16, 4, strides=2), (8, 32, 64), (4, 0), ["kernel"], True, True),
    ("conv2d_transpose", lambda: L.Conv2DTranspose(16, 4, strides=2), (4, 12, 12, 32), (4, 0), ["kernel"], True, True),
    ("conv3d_transpose", lambda: L.Conv3DTranspose(16, 2, strides=2), (2, 6, 6, 6, 64), (2, 0), ["kernel"], True, True),
    ("depthwise1d", lambda: L.DepthwiseConv1D(4, strides=2, depth_multiplier=8), (8, 32, 256), (0, 4), ["kernel"], True, True),
    ("depthwise2d", lambda: L.DepthwiseConv2D(4, strides=2, depth_multiplier=8), (4, 16, 16, 64), (0, 4), ["kernel"], True, True),
    ("separable1d", lambda: L.SeparableConv1D(64, 4, strides=2, depth_multiplier=8), (8, 32, 128), (0, 4), ["depthwise_kernel", "pointwise_kernel"], True, True),
    ("separable2d", lambda: L.SeparableConv2D(32, 4, strides=2, depth_multiplier=4), (4, 16, 16, 64), (0, 4), ["depthwise_kernel", "pointwise_kernel"], True, True),
]  # fmt: skip


def _draw(shape, fan, rng):
    return rng.normal(0.0, 1.0 / math.sqrt(fan), size=shape).astype("float32")


def _crop(values, border):
    """Drops ``border`` positions at both ends of every spatial axis."""
    if border == 0 or values.ndim < 3:
        return values
    spatial = tuple(slice(border, -border) for _ in range(values.ndim - 2))
    return values[(slice(None), *spatial, slice(None))]


def _variance_ratio(make, input_shape, borders, weights, direction, true_fans):
    layer = make()
    layer.use_bias = False  # build() then makes no bias
    layer.build(input_shape)
    rng = np.random.default_rng(1)
    for name in weights:
        variable = getattr(layer, name)
        fan_in, fan_out = (
            ki.fans(layer, name) if true_fans else compute_fans(tuple(variable.shape))
        )
        variable.assign(_draw(tuple(variable.shape), fan_in if direction == "forward" else fan_out, rng))
    x = rng.normal(size=input_shape).astype("float32")
    if direction == "forward":
        return float(np.var(_crop(to_numpy(layer(x)), borders[0])) / np.var(x))
    upstream = rng.normal(size=tuple(layer(x).shape)).astype("float32")
    g = keras.ops.convert_to_tensor(upstream)
    (grad,) = gradients(lambda v: keras.ops.sum(layer(v) * g), [keras.ops.convert_to_tensor(x)])
    return float(np.var(_crop(to_numpy(grad), borders[1])) / np.var(upstream))


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize(
    ("make", "input_shape", "borders", "weights", "forward_fails", "backward_fails"),
    [case[1:] for case in MEASURED],
    ids=[case[0] for case in MEASURED],
)
def test_true_fans_keep_the_variance_shape_fans_do_not(
    make, input_shape, borders, weights, forward_fails, backward_fails, direction
):
    ratio = _variance_ratio(make, input_shape, borders, weights, direction, true_fans=True)
    assert abs(ratio - 1.0) < TOLERANCE, ratio
    shape_ratio = _variance_ratio(make, input_shape, borders, weights, direction, true_fans=False)
    fails = forward_fails if direction == "forward" else backward_fails
    assert (abs(shape_ratio - 1.0) >= TOLERANCE) == fails, shape_ratio


def test_embedding_true_fan_in_keeps_the_variance_shape_fan_does_not():
    layer = built(L.Embedding(1000, 64), (None, 32))
    rng = np.random.default_rng(2)
    tokens = rng.integers(0, 1000, size=(64, 32))
    for fan, ok in ((ki.fans(layer)[0], True), (compute_fans((1000, 64))[0], False)):
        layer.embeddings.assign(_draw((1000, 64), fan, rng))
        ratio = float(np.var(to_numpy(layer(tokens))))
        assert (abs(ratio - 1.0) < TOLERANCE) == ok, ratio


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize(
    ("make", "weight", "gates"),
    [
        (lambda: L.LSTM(64), "kernel", 4),
        (lambda: L.LSTM(64), "recurrent_kernel", 4),
        (lambda: L.GRU(64), "kernel", 3),
        (lambda: L.SimpleRNN(64), "recurrent_kernel", 1),
    ],
    ids=["lstm_kernel", "lstm_recurrent", "gru_kernel", "simple_rnn_recurrent"],
)
def test_rnn_gate_fans_keep_each_gates_variance(make, weight, gates, direction):
    """Each gate's pre-activation part, v @ W_gate (v: the input or the state)."""
    layer = built(make(), (None, 5, 128))
    variable = getattr(layer.cell, weight)
    rows, width = tuple(variable.shape)
    units = width // gates
    rng = np.random.default_rng(3)
    ratios = {}
    for label, (fan_in, fan_out) in (
        ("true", ki.fans(layer, weight)),
        ("shape", compute_fans((rows, width))),
    ):
        variable.assign(_draw((rows, width), fan_in if direction == "forward" else fan_out, rng))
        v = keras.ops.convert_to_tensor(rng.normal(size=(256, rows)).astype("float32"))
        kernel = keras.ops.convert_to_tensor(variable)
        for gate in range(gates):
            block = kernel[:, gate * units : (gate + 1) * units]
            if direction == "forward":
                ratio = float(np.var(to_numpy(keras.ops.matmul(v, block))))
            else:
                g = keras.ops.convert_to_tensor(rng.normal(size=(256, units)).astype("float32"))
                (grad,) = gradients(lambda x, b=block, g=g: keras.ops.sum(x @ b * g), [v])
                ratio = float(np.var(to_numpy(grad)))
            ratios.setdefault(label, []).append(ratio)
    assert all(abs(r - 1.0) < TOLERANCE for r in ratios["true"]), ratios
    if direction == "backward" and gates > 1:  # a shape fan_out of gates * units
        assert all(abs(r - 1.0) >= TOLERANCE for r in ratios["shape"]), ratios
