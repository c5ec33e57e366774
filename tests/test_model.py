"""keras_inits.model: true fans by measurement, reinitialize, lsuv, torch_defaults."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from helpers import KS_ALPHA, assert_error, std_tolerance, to_numpy
from scipy import stats

import keras_inits as ki
from keras_inits._fans import compute_fans
from keras_inits.diagnostics._stats import gradients

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
        (
            lambda: L.DepthwiseConv1D(4, strides=2, depth_multiplier=8),
            (None, 32, 16),
            "kernel",
            (4, 16),
        ),
        (
            lambda: L.DepthwiseConv2D(4, strides=2, depth_multiplier=8),
            (None, 8, 8, 16),
            "kernel",
            (16, 32),
        ),
        (
            lambda: L.SeparableConv1D(32, 4, strides=2, depth_multiplier=4),
            (None, 16, 8),
            "depthwise_kernel",
            (4, 8),
        ),
        (
            lambda: L.SeparableConv1D(32, 4, strides=2, depth_multiplier=4),
            (None, 16, 8),
            "pointwise_kernel",
            (32, 32),
        ),
        (
            lambda: L.SeparableConv2D(32, 4, depth_multiplier=2),
            (None, 8, 8, 8),
            "depthwise_kernel",
            (16, 32),
        ),
        (
            lambda: L.SeparableConv2D(32, 4, depth_multiplier=2),
            (None, 8, 8, 8),
            "pointwise_kernel",
            (16, 32),
        ),
        (lambda: L.Embedding(1000, 64), (None, 3), "embeddings", (1, 64)),
        (lambda: L.Embedding(1000, 64), (None, 3), "kernel", (1, 64)),
        (lambda: L.LSTM(32), (None, 5, 16), "kernel", (16, 32)),
        (lambda: L.LSTM(32), (None, 5, 16), "recurrent_kernel", (32, 32)),
        (lambda: L.GRU(32), (None, 5, 16), "kernel", (16, 32)),
        (lambda: L.GRU(32, reset_after=False), (None, 5, 16), "recurrent_kernel", (32, 32)),
        (lambda: L.SimpleRNN(32), (None, 5, 16), "kernel", (16, 32)),
        (lambda: L.RNN(L.LSTMCell(32)), (None, 5, 16), "kernel", (16, 32)),
        (lambda: L.Bidirectional(L.GRU(32)), (None, 5, 16), "kernel", (16, 32)),
        (
            lambda: L.TimeDistributed(L.Conv2DTranspose(16, 4, strides=2)),
            (None, 3, 8, 8, 32),
            "kernel",
            (128, 256),
        ),
    ],
)
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
        f"Layer {norm.name!r} (BatchNormalization) has no kernel-like weight, so it has no "
        "fans: its weights are of kinds ('scale', 'shift', 'statistic', 'statistic'). "
        "Received: weight='kernel'",
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
    (
        "einsum",
        lambda: L.EinsumDense("abc,cde->abde", (8, 16, 16)),
        (16, 8, 64),
        (0, 0),
        ["kernel"],
        True,
        True,
    ),
    (
        "conv1d_strided",
        lambda: L.Conv1D(64, 4, strides=2),
        (8, 64, 64),
        (0, 4),
        ["kernel"],
        False,
        True,
    ),
    (
        "conv2d_grouped",
        lambda: L.Conv2D(64, 4, strides=2, groups=4),
        (4, 16, 16, 64),
        (0, 4),
        ["kernel"],
        False,
        True,
    ),
    ("conv3d", lambda: L.Conv3D(32, 2), (4, 8, 8, 8, 32), (0, 2), ["kernel"], False, False),
    (
        "conv1d_transpose",
        lambda: L.Conv1DTranspose(16, 4, strides=2),
        (8, 32, 64),
        (4, 0),
        ["kernel"],
        True,
        True,
    ),
    (
        "conv2d_transpose",
        lambda: L.Conv2DTranspose(16, 4, strides=2),
        (4, 12, 12, 32),
        (4, 0),
        ["kernel"],
        True,
        True,
    ),
    (
        "conv3d_transpose",
        lambda: L.Conv3DTranspose(16, 2, strides=2),
        (2, 6, 6, 6, 64),
        (2, 0),
        ["kernel"],
        True,
        True,
    ),
    (
        "depthwise1d",
        lambda: L.DepthwiseConv1D(4, strides=2, depth_multiplier=8),
        (8, 32, 256),
        (0, 4),
        ["kernel"],
        True,
        True,
    ),
    (
        "depthwise2d",
        lambda: L.DepthwiseConv2D(4, strides=2, depth_multiplier=8),
        (4, 16, 16, 64),
        (0, 4),
        ["kernel"],
        True,
        True,
    ),
    (
        "separable1d",
        lambda: L.SeparableConv1D(64, 4, strides=2, depth_multiplier=8),
        (8, 32, 128),
        (0, 4),
        ["depthwise_kernel", "pointwise_kernel"],
        True,
        True,
    ),
    (
        "separable2d",
        lambda: L.SeparableConv2D(32, 4, strides=2, depth_multiplier=4),
        (4, 16, 16, 64),
        (0, 4),
        ["depthwise_kernel", "pointwise_kernel"],
        True,
        True,
    ),
]


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
        fan_in, fan_out = ki.fans(layer, name) if true_fans else compute_fans(tuple(variable.shape))
        variable.assign(
            _draw(tuple(variable.shape), fan_in if direction == "forward" else fan_out, rng)
        )
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


# reinitialize


def _values(model):
    return [np.array(to_numpy(v)) for v in model.weights]


def _port_model():
    return keras.Sequential(
        [
            keras.Input((8, 8, 32)),
            L.Conv2DTranspose(16, 4, strides=2, kernel_initializer="he_normal", name="up"),
            L.DepthwiseConv2D(
                3, depth_multiplier=4, depthwise_initializer="glorot_uniform", name="dw"
            ),
            L.Conv2D(8, 3, kernel_initializer="orthogonal", name="keras_orthogonal"),
            L.Reshape((-1, 8)),
            L.LSTM(64, kernel_initializer=ki.XavierNormal(), name="lstm"),
            L.Dense(
                10, kernel_initializer="sigmoid_normal", bias_initializer="small_normal", name="out"
            ),
        ]
    )


def test_reinitialize_draws_with_the_true_fans():
    model = _port_model()
    changes = {(c.layer, c.weight): c for c in ki.reinitialize(model, seed=0)}
    lstm_cell = model.get_layer("lstm").cell
    expected = {
        # (layer, weight): target std from the true fans
        ("up", "kernel"): math.sqrt(2.0 / (16 * 32 / 4)),  # he_normal, fan_in = K in / S
        ("dw", "kernel"): math.sqrt(2.0 / (9 + 9 * 4)),  # glorot, fans (K, K m)
        (lstm_cell.name, "kernel"): math.sqrt(2.0 / (8 + 64)),  # per-gate fan_out
        ("out", "kernel"): math.sqrt(4.0 / 64),
        ("out", "bias"): 0.1,
    }
    assert set(changes) == set(expected)  # orthogonal (Keras's) and zeros biases untouched
    truncated = stats.truncnorm(-2, 2)
    for key, std in expected.items():
        variable = next(v for v in model.weights if v.path == changes[key].path)
        values = to_numpy(variable).ravel()
        kurtosis = float(truncated.stats(moments="k")) if key[0] in ("up", "dw") else 0.0
        if key[0] == "dw":
            kurtosis = -1.2  # glorot_uniform
        # The few values of a bias: a loose bound, still far from any other fan.
        tol = std_tolerance(std, values.size, kurtosis) if values.size > 100 else 0.6 * std
        assert abs(values.std() - std) <= tol, (key, values.std(), std, tol)
        assert math.isclose(changes[key].new_std, values.std(), rel_tol=1e-5)


def test_reinitialize_is_reproducible_and_touches_nothing_else():
    model = _port_model()
    before = {v.path: a for v, a in zip(model.weights, _values(model), strict=True)}
    ki.reinitialize(model, seed=7)
    first = _values(model)
    changed = {c.path for c in ki.reinitialize(model, seed=7)}
    assert all(np.array_equal(a, b) for a, b in zip(first, _values(model), strict=True))
    ki.reinitialize(model, seed=8)
    for variable, old, new in zip(model.weights, first, _values(model), strict=True):
        assert np.array_equal(old, new) == (variable.path not in changed), variable.path
    keras_orthogonal = model.get_layer("keras_orthogonal").kernel
    assert np.array_equal(to_numpy(keras_orthogonal), before[keras_orthogonal.path])


class _Block(keras.Model):
    def __init__(self):
        super().__init__()
        self.inner = keras.Sequential([L.Dense(16, kernel_initializer="he_uniform")])
        self.head = L.Dense(4, kernel_initializer="lecun_normal")

    def call(self, x):
        return self.head(self.inner(x))


@pytest.mark.parametrize("kind", ["functional", "subclassed"])
def test_reinitialize_nested_functional_and_subclassed(kind):
    if kind == "subclassed":
        model = _Block()
        model(np.ones((2, 8), "float32"))  # a subclassed model builds on its first call
    else:
        inputs = keras.Input((8,))
        inner = keras.Sequential([keras.Input((8,)), L.Dense(16, kernel_initializer="he_uniform")])
        outputs = L.Dense(4, kernel_initializer="lecun_normal")(inner(inputs))
        model = keras.Model(inputs, outputs)
    changes = ki.reinitialize(model, seed=0)
    assert [(c.fan_in, c.fan_out) for c in changes] == [(8, 16), (16, 4)]
    assert all(c.old_std != c.new_std for c in changes)


class _Custom(keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.kernel_initializer = ki.SigmoidNormal()

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], 4), initializer=self.kernel_initializer
        )

    def call(self, x):
        return keras.ops.matmul(x, self.kernel)


def test_reinitialize_refuses_an_unknown_kind_and_changes_nothing():
    model = keras.Sequential([keras.Input((8,)), L.Dense(8), _Custom()])
    before = _values(model)
    assert_error(
        lambda: ki.reinitialize(model, seed=0),
        ValueError,
        "keras_inits does not know the kernel layout of layer",
        prefix=True,
    )
    with pytest.raises(ValueError, match="of class _Custom"):
        ki.reinitialize(model)
    assert all(np.array_equal(a, b) for a, b in zip(before, _values(model), strict=True))


def test_model_level_functions_refuse_unbuilt_and_weightless_models():
    unbuilt = keras.Sequential([L.Dense(3)])
    weightless = keras.Sequential([keras.Input((3,)), L.ReLU()])
    for function in (ki.reinitialize, ki.torch_defaults, lambda m: ki.lsuv(m, np.ones((4, 3)))):
        assert_error(
            lambda f=function: f(unbuilt), ValueError, "`model` must be built", prefix=True
        )
        assert_error(
            lambda f=function: f(weightless),
            ValueError,
            f"`model` has no weights to initialize. Received: model={weightless.name!r}",
            prefix=True,
        )
    assert_error(
        lambda: ki.reinitialize(weightless, seed="0"),
        ValueError,
        "`model` has no weights",
        prefix=True,
    )
    model = keras.Sequential([keras.Input((3,)), L.Dense(2)])
    assert_error(
        lambda: ki.reinitialize(model, seed="0"),
        TypeError,
        "`seed` must be an int, a keras.random.SeedGenerator or None. Received: seed='0'",
    )


# lsuv


def _pre_activation_stds(model, x):
    """The std of every Dense layer's x @ W + b, read from a probe model's outputs."""
    dense = [layer for layer in model.layers if isinstance(layer, L.Dense)]
    probe = keras.Model(model.inputs, [layer.output for layer in dense])
    outputs = [np.asarray(x, np.float64)] + [to_numpy(o) for o in probe([x])]
    return [
        float(np.std(inputs @ to_numpy(layer.kernel) + to_numpy(layer.bias)))
        for inputs, layer in zip(outputs, dense, strict=False)
    ]


@pytest.mark.slow
def test_lsuv_trains_a_deep_plain_relu_network_that_stalls(capsys):
    """The evidence: 20 x 32 ReLU on digits, Keras's default init vs the same then lsuv."""
    from keras_inits.diagnostics import CompareConfig, run_compare

    config = CompareConfig(
        initializers=("glorot_uniform", "lsuv"),
        activation="relu",
        depth=20,
        width=32,
        lr=0.01,
        epochs=3,
    )
    default, after = run_compare(config)
    assert default.loss_curve[-1] > 2.25, default.loss_curve  # log(10) = 2.303: stalled
    assert default.val_accuracy < 0.2
    assert after.loss_curve[-1] < 1.8, after.loss_curve
    assert after.val_accuracy > 0.4
    # Every layer's pre-activation std is within tol of the target on the LSUV batch.
    from keras_inits.diagnostics import build_mlp, load_digits

    (x_train, _), _ = load_digits(0)
    keras.utils.set_random_seed(0)
    model = build_mlp("glorot_uniform", "relu", 20, 32)
    records = ki.lsuv(model, x_train[:256], seed=0, verbose=False)
    assert len(records) == 21 and all(r.converged for r in records)
    for record, std in zip(records, _pre_activation_stds(model, x_train[:256]), strict=True):
        assert abs(std - 1.0) < 0.1, (record.layer, std)
        assert math.isclose(record.std_after, std, rel_tol=1e-4)
    assert capsys.readouterr().out == ""  # verbose=False: no progress bar


class _Reordered(keras.Model):
    """Attributes in one order, data flow in the other."""

    def __init__(self):
        super().__init__()
        self.second = L.Dense(8, activation="tanh")
        self.first = L.Conv1D(16, 3, activation="relu")
        self.flatten = L.Flatten()

    def call(self, x):
        return self.second(self.flatten(self.first(x)))


def test_lsuv_follows_the_data_in_a_subclassed_model():
    model = _Reordered()
    x = np.random.default_rng(0).normal(size=(32, 10, 4)).astype("float32")
    model(x)
    records = ki.lsuv(model, x, target_std=2.0, seed=0, verbose=False)
    assert [r.layer for r in records] == [model.first.name, model.second.name]
    assert all(abs(r.std_after / 2.0 - 1.0) < 0.1 and r.converged for r in records)


def test_lsuv_every_kernel_kind_and_leaves_biases_and_norms_alone(capsys):
    inputs = keras.Input((4, 4, 3))
    h = L.Conv2D(8, 3, padding="same", activation="relu", bias_initializer="ones")(inputs)
    h = L.BatchNormalization(gamma_initializer="ones", beta_initializer="ones")(h)
    h = L.Conv2DTranspose(8, 2, strides=2, activation="relu")(h)
    h = L.DepthwiseConv2D(3, depth_multiplier=2, activation="relu")(h)
    h = L.SeparableConv2D(8, 3, activation="relu")(h)
    h = L.Reshape((-1, 8))(h)
    h = L.EinsumDense("abc,cd->abd", (None, 8), activation="relu")(h)
    h = L.Bidirectional(L.LSTM(8, return_sequences=True))(h)
    outputs = L.TimeDistributed(L.Dense(4))(h)  # (one RNN: JAX compiles a scan per pass)
    model = keras.Model(inputs, outputs)
    untouched = {
        v.path: np.array(to_numpy(v))
        for v in model.weights
        if "kernel" not in v.path.rsplit("/", 1)[-1]  # biases, gamma, beta, moving stats
    }
    x = np.random.default_rng(1).normal(size=(16, 4, 4, 3)).astype("float32")
    records = ki.lsuv(model, x, orthogonal=False)  # 13 QRs would compile 13 programs on JAX
    assert len(records) == 8 and all(r.converged for r in records), records
    assert [r.weight for r in records].count("pointwise_kernel") == 1
    for v in model.weights:
        if v.path in untouched:
            assert np.array_equal(to_numpy(v), untouched[v.path]), v.path
    assert "8/8" in capsys.readouterr().out  # the progress bar


def test_lsuv_is_reproducible_and_reports_non_convergence():
    def make():
        return keras.Sequential([keras.Input((16,)), L.Dense(32), L.Dense(8)])

    x = np.random.default_rng(0).normal(size=(64, 16))
    first, second = make(), make()
    ki.lsuv(first, x, seed=3, verbose=False)
    ki.lsuv(second, x, seed=3, verbose=False)
    assert all(np.array_equal(a, b) for a, b in zip(_values(first), _values(second), strict=True))
    # Orthonormal pre-initialization, then a scale: W^T W = c^2 I (16 x 32: W W^T).
    kernel = to_numpy(first.layers[0].kernel)
    gram = kernel @ kernel.T
    assert np.allclose(gram, gram[0, 0] * np.eye(16), atol=1e-5 * gram[0, 0] * 16)
    records = ki.lsuv(make(), x, tol=1e-12, max_iter=2, seed=3, verbose=False)
    assert [(r.iterations, r.converged) for r in records] == [(2, False), (2, False)]


def test_lsuv_errors_name_the_layer_and_restore_every_weight():
    model = keras.Sequential(
        [keras.Input((4,)), L.Dense(8, activation="relu", name="first"), L.Dense(3, name="dead")]
    )
    before = _values(model)
    # All-negative pre-activations: relu outputs 0, so "dead" sees a constant input.
    model.get_layer("first").bias.assign(np.full((8,), -100.0, "float32"))
    before = _values(model)
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    assert_error(
        lambda: ki.lsuv(model, x, orthogonal=True, verbose=False),
        ValueError,
        "`lsuv` cannot rescale layer 'dead' (Dense): the variance of its pre-activation "
        "output on `x` is 0.0",
        prefix=True,
    )
    assert all(np.array_equal(a, b) for a, b in zip(before, _values(model), strict=True))
    fresh = keras.Sequential([keras.Input((4,)), L.Dense(8, name="first")])
    inf = np.full((4, 4), np.inf, "float32")
    with pytest.raises(ValueError, match=r"^`lsuv` cannot rescale layer 'first' \(Dense\)"):
        ki.lsuv(fresh, inf, verbose=False)
    assert_error(
        lambda: ki.lsuv(fresh, "digits"),
        TypeError,
        "`x` must be a batch of numbers: a NumPy array, a tensor, or a list or dict of them "
        "for a model with several inputs. Received: x='digits'",
    )
    assert_error(
        lambda: ki.lsuv(fresh, np.ones((1, 4))),
        ValueError,
        "`x` must be a batch of at least 2 samples (a variance needs them). "
        "Received: x with shape (1, 4)",
    )
    assert_error(
        lambda: ki.lsuv(fresh, np.ones((8, 5)), verbose=False),
        ValueError,
        f"`x` does not fit the model: {fresh.name!r} expects input of shape (None, 4) (None: "
        "any size), and running it on `x` failed with ValueError: Input 0 with name 'None' of "
        "layer 'first' is incompatible with the layer: expected axis -1 of input shape to have "
        "value 4, but received input with shape (8, 5) Received: x with shape (8, 5)",
    )
    subclassed = _Reordered()
    subclassed(np.ones((2, 10, 4), "float32"))
    with pytest.raises(ValueError, match=r"expects input of shape \(2, 10, 4\) \(None: any"):
        ki.lsuv(subclassed, np.ones((8, 5)), verbose=False)
    assert_error(
        lambda: ki.lsuv(fresh, np.ones((8, 4)), tol=0),
        ValueError,
        "`tol` must be a finite number > 0. Received: tol=0",
    )
    norm_only = keras.Sequential([keras.Input((4,)), L.BatchNormalization()])
    assert_error(
        lambda: ki.lsuv(norm_only, np.ones((8, 4))),
        ValueError,
        "`model` has no layer that LSUV rescales",
        prefix=True,
    )


# torch_defaults: against PyTorch itself, a two-sample KS test per weight.

REPEATS = 8  # draws per side, pooled, so that even a bias has >= 256 values


def _torch_case(kind):
    """(Keras layer, input shape, torch module factory, {keras weight: torch params -> array})."""
    nn = pytest.importorskip("torch").nn

    def t(p):
        return p.detach().numpy().astype(np.float64)

    cases = {
        "linear": (
            L.Dense(32),
            (None, 48),
            lambda: nn.Linear(48, 32),
            {"kernel": lambda m: t(m.weight).T, "bias": lambda m: t(m.bias)},
        ),
        "conv1d": (
            L.Conv1D(32, 3),
            (None, 10, 16),
            lambda: nn.Conv1d(16, 32, 3),
            {"kernel": lambda m: t(m.weight).transpose(2, 1, 0), "bias": lambda m: t(m.bias)},
        ),
        "conv2d_grouped": (
            L.Conv2D(32, 3, groups=4),
            (None, 8, 8, 16),
            lambda: nn.Conv2d(16, 32, 3, groups=4),
            {"kernel": lambda m: t(m.weight).transpose(2, 3, 1, 0), "bias": lambda m: t(m.bias)},
        ),
        "conv3d": (
            L.Conv3D(32, 2),
            (None, 4, 4, 4, 8),
            lambda: nn.Conv3d(8, 32, 2),
            {"kernel": lambda m: t(m.weight).transpose(2, 3, 4, 1, 0), "bias": lambda m: t(m.bias)},
        ),
        "conv1d_transpose": (
            L.Conv1DTranspose(8, 4, strides=2),
            (None, 6, 32),
            lambda: nn.ConvTranspose1d(32, 8, 4, stride=2),
            {"kernel": lambda m: t(m.weight).transpose(2, 1, 0), "bias": lambda m: t(m.bias)},
        ),
        "conv2d_transpose": (
            L.Conv2DTranspose(8, 3, strides=2),
            (None, 6, 6, 32),
            lambda: nn.ConvTranspose2d(32, 8, 3, stride=2),
            {"kernel": lambda m: t(m.weight).transpose(2, 3, 1, 0), "bias": lambda m: t(m.bias)},
        ),
        "depthwise2d": (
            L.DepthwiseConv2D(3, depth_multiplier=2),
            (None, 8, 8, 32),
            lambda: nn.Conv2d(32, 64, 3, groups=32),
            {
                "kernel": lambda m: t(m.weight).reshape(32, 2, 3, 3).transpose(2, 3, 0, 1),
                "bias": lambda m: t(m.bias),
            },
        ),
        "separable2d": (
            L.SeparableConv2D(16, 3, depth_multiplier=2),
            (None, 8, 8, 16),
            lambda: nn.Sequential(
                nn.Conv2d(16, 32, 3, groups=16, bias=False), nn.Conv2d(32, 16, 1)
            ),
            {
                "depthwise_kernel": lambda m: (
                    t(m[0].weight).reshape(16, 2, 3, 3).transpose(2, 3, 0, 1)
                ),
                "pointwise_kernel": lambda m: t(m[1].weight).transpose(2, 3, 1, 0),
                "bias": lambda m: t(m[1].bias),
            },
        ),
        "embedding": (
            L.Embedding(100, 16),
            (None, 3),
            lambda: nn.Embedding(100, 16),
            {"embeddings": lambda m: t(m.weight)},
        ),
        "lstm": (
            L.LSTM(32),
            (None, 5, 16),
            lambda: nn.LSTM(16, 32),
            {
                "kernel": lambda m: t(m.weight_ih_l0).T,
                "recurrent_kernel": lambda m: t(m.weight_hh_l0).T,
                "bias": lambda m: t(m.bias_ih_l0) + t(m.bias_hh_l0),
            },
        ),
        "gru": (
            L.GRU(32),
            (None, 5, 16),
            lambda: nn.GRU(16, 32),
            {
                "kernel": lambda m: t(m.weight_ih_l0).T,
                "recurrent_kernel": lambda m: t(m.weight_hh_l0).T,
                "bias": lambda m: np.stack([t(m.bias_ih_l0), t(m.bias_hh_l0)]),
            },
        ),
        "simple_rnn": (
            L.SimpleRNN(32),
            (None, 5, 16),
            lambda: nn.RNN(16, 32),
            {
                "kernel": lambda m: t(m.weight_ih_l0).T,
                "recurrent_kernel": lambda m: t(m.weight_hh_l0).T,
                "bias": lambda m: t(m.bias_ih_l0) + t(m.bias_hh_l0),
            },
        ),
    }
    return cases[kind]


def _cell(layer):
    return layer.cell if isinstance(layer, L.RNN) else layer


@pytest.mark.parametrize(
    "kind",
    [
        "linear",
        "conv1d",
        "conv2d_grouped",
        "conv3d",
        "conv1d_transpose",
        "conv2d_transpose",
        "depthwise2d",
        "separable2d",
        "embedding",
        "lstm",
        "gru",
        "simple_rnn",
    ],
)
def test_torch_defaults_match_pytorch(kind):
    torch = pytest.importorskip("torch")
    layer, input_shape, module, readers = _torch_case(kind)
    layer.build(input_shape)
    ours = {name: [] for name in readers}
    theirs = {name: [] for name in readers}
    torch.manual_seed(0)
    for repeat in range(REPEATS):
        ki.torch_defaults(layer, seed=repeat)
        reference = module()
        for name, read in readers.items():
            keras_values = to_numpy(getattr(_cell(layer), name))
            torch_values = read(reference)
            assert keras_values.shape == torch_values.shape, name  # the layout transpose
            ours[name].append(keras_values.ravel())
            theirs[name].append(torch_values.ravel())
    for name in readers:
        p_value = stats.ks_2samp(np.concatenate(ours[name]), np.concatenate(theirs[name])).pvalue
        assert p_value > KS_ALPHA, (name, p_value)


def test_the_ks_comparison_can_fail_keras_defaults_are_not_pytorchs():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    layer = built(L.Dense(32), (None, 48))  # Keras's glorot_uniform: U(+-sqrt(6 / 80))
    reference = torch.nn.Linear(48, 32)  # U(+-1 / sqrt(48))
    sample = to_numpy(layer.kernel).ravel()
    p_value = stats.ks_2samp(sample, reference.weight.detach().numpy().ravel()).pvalue
    assert p_value <= KS_ALPHA
    ki.torch_defaults(layer, seed=0)
    sample = to_numpy(layer.kernel).ravel()
    assert stats.ks_2samp(sample, reference.weight.detach().numpy().ravel()).pvalue > KS_ALPHA


def test_torch_defaults_resets_normalization_and_reports_what_it_left():
    model = keras.Sequential(
        [
            keras.Input((4, 8)),
            L.BatchNormalization(gamma_initializer="zeros", moving_variance_initializer="zeros"),
            L.LayerNormalization(beta_initializer="ones"),
            L.EinsumDense("abc,cd->abd", (4, 3)),
        ]
    )
    changes = ki.torch_defaults(model, seed=0)
    batch_norm, layer_norm = model.layers[0], model.layers[1]
    expected = {
        batch_norm.gamma.path: 1.0,
        batch_norm.beta.path: 0.0,
        batch_norm.moving_mean.path: 0.0,
        batch_norm.moving_variance.path: 1.0,
        layer_norm.gamma.path: 1.0,
        layer_norm.beta.path: 0.0,
    }
    for variable in model.weights:
        if variable.path in expected:
            assert np.all(to_numpy(variable) == expected[variable.path]), variable.path
    rules = {c.path: c.rule for c in changes}
    assert rules[model.layers[2].kernel.path] == "unchanged"
    assert len(changes) == len(model.weights)


def test_compare_command_takes_lsuv_beside_initializer_names():
    from keras_inits import cli
    from keras_inits.diagnostics import CompareConfig

    args = cli._parser().parse_args(["compare", "--init", "lsuv", "--init", "he_normal"])
    assert args.init == ["lsuv", "he_normal"]
    assert CompareConfig(initializers=("lsuv",)).initializers == ("lsuv",)


def test_reinitialize_reaches_einsum_dense_inside_attention():
    inputs = keras.Input((5, 16))
    attention = L.MultiHeadAttention(num_heads=2, key_dim=8)
    model = keras.Model(inputs, attention(inputs, inputs))
    changes = {c.path.split("/")[-2]: c for c in ki.reinitialize(model, seed=0)}
    assert set(changes) == {"query", "key", "value", "attention_output"}
    # (16, 2, 8) projections: fans (16, 2 x 8); the output (2, 8, 16): (2 x 8, 16).
    assert (changes["query"].fan_in, changes["query"].fan_out) == (16, 16)
    assert (changes["attention_output"].fan_in, changes["attention_output"].fan_out) == (16, 16)


def test_reinitialize_include_all_redraws_the_other_initializers_too():
    model = _port_model()
    orthogonal = model.get_layer("keras_orthogonal").kernel
    before = np.array(to_numpy(orthogonal))
    paths = {c.path for c in ki.reinitialize(model, seed=1)}
    assert orthogonal.path not in paths
    changes = {c.path: c for c in ki.reinitialize(model, seed=1, include_all=True)}
    after = to_numpy(orthogonal)
    assert not np.array_equal(after, before)
    flat = after.reshape(-1, after.shape[-1])  # Keras's Orthogonal: orthonormal columns
    assert np.allclose(flat.T @ flat, np.eye(flat.shape[1]), atol=1e-5)
    zeros_bias = model.get_layer("up").bias
    assert changes[zeros_bias.path].rule == "Zeros (deterministic)"
    assert not np.any(to_numpy(zeros_bias))
    lstm_bias = to_numpy(model.get_layer("lstm").cell.bias)  # unit_forget_bias kept
    assert np.array_equal(lstm_bias, np.repeat([0.0, 1.0, 0.0, 0.0], 64))
