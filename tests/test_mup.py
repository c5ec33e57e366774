"""mup(model, base, delta) and MupOptimizer: the rules of Table 3, the identity at the
base width, the per-weight rates of every built-in optimizer, save/load/resume, errors.

The coordinate check (muP keeps every layer's activations O(1) as width grows)
is in tests/test_coord_check.py.
"""

import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from helpers import (
    assert_error,
    backend_has_float64,
    dtype_policy,
    import_keras_hub,
    std_tolerance,
    to_numpy,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from test_properties import ANY_VALUE, PROPERTY, assert_our_error

import keras_inits as ki
from keras_inits.model import MupOptimizer

L = keras.layers


def _mlp(width, name=None, init="he_normal", inputs=8, outputs=3):
    return keras.Sequential(
        [
            keras.Input((inputs,)),
            L.Dense(width, activation="relu", kernel_initializer=init, name="hidden"),
            L.Dense(width, activation="relu", kernel_initializer=init, name="hidden_1"),
            L.Dense(outputs, kernel_initializer=init, name="readout"),
        ],
        name=name,
    )


def _cnn(width):
    return keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            L.Conv2D(width, 3, padding="same", activation="relu"),
            L.BatchNormalization(),
            L.DepthwiseConv2D(3, padding="same"),
            L.Conv2D(width, 3, padding="same", activation="relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(10),
        ]
    )


def _transformer(width, heads=4):
    inputs = keras.Input((5, 12))
    h = L.Dense(width)(inputs)
    a = L.LayerNormalization()(h)
    a = L.MultiHeadAttention(heads, width // heads)(a, a)
    h = L.Add()([h, a])
    f = L.Dense(2 * width, activation="gelu")(L.LayerNormalization()(h))
    h = L.Add()([h, L.Dense(width)(f)])
    return keras.Model(inputs, L.Dense(4)(L.GlobalAveragePooling1D()(h)))


def _values(model):
    return [to_numpy(v).copy() for v in model.weights]


def _data(inputs=8, outputs=3, n=16, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(n, inputs)).astype("float32"),
        rng.normal(size=(n, outputs)).astype("float32"),
    )


def _records(plan, layer):
    return {w.weight: w for w in plan if w.layer == layer}


# The rules of Table 3, relative to the base


def test_an_mlp_gets_table_3s_roles_and_rates():
    plan = ki.mup(_mlp(256), base=_mlp(64))
    hidden, inner, readout = (_records(plan, n) for n in ("hidden", "hidden_1", "readout"))
    m = 4.0
    assert (hidden["kernel"].role, hidden["bias"].role) == ("input", "vector")
    assert (inner["kernel"].role, inner["bias"].role) == ("hidden", "vector")
    assert (readout["kernel"].role, readout["bias"].role) == ("output", "finite")
    rates = {
        (w.layer, w.weight): (w.width_in, w.width_out, w.lr_adam, w.lr_sgd) for w in plan.weights
    }
    assert rates == {
        ("hidden", "kernel"): (1.0, m, 1.0, m),
        ("hidden", "bias"): (1.0, m, 1.0, m),
        ("hidden_1", "kernel"): (m, m, 1 / m, 1.0),
        ("hidden_1", "bias"): (1.0, m, 1.0, m),
        ("readout", "kernel"): (m, 1.0, 1 / m, 1 / m),
        ("readout", "bias"): (1.0, 1.0, 1.0, 1.0),
    }


def test_init_scales_are_the_base_initializers_times_mups_width_law():
    # he_normal draws std sqrt(2 / fan_in): at the base width 64 that is the
    # tuned scale. muP keeps an input weight's std (fan_in 8 fixed), scales a
    # hidden one by (64 / n)^(1/2) (he_normal already does: factor 1) and an
    # output one by 64 / n.
    base, n = 64, 1024
    model = _mlp(n)
    plan = ki.mup(model, base=_mlp(base))
    hidden, inner, readout = (
        _records(plan, k)["kernel"] for k in ("hidden", "hidden_1", "readout")
    )
    assert (hidden.init, inner.init) == (1.0, 1.0)  # fan_in-scaled init: untouched
    assert readout.init == pytest.approx(math.sqrt(n / base) * base / n, rel=1e-12)
    expected = math.sqrt(2 / base) * base / n  # he_normal at the base, times 1/m
    size = n * 3
    assert abs(readout.new_std - expected) <= std_tolerance(expected, size)


def test_glorot_input_weights_keep_the_base_scale():
    # glorot_uniform's std sqrt(2 / (fan_in + fan_out)) shrinks as the input
    # layer widens; muP wants the base's std kept: factor sqrt((8 + n) / (8 + 64)).
    model = _mlp(512, init="glorot_uniform")
    before = to_numpy(model.get_layer("hidden").kernel)
    plan = ki.mup(model, base=_mlp(64, init="glorot_uniform"))
    record = _records(plan, "hidden")["kernel"]
    factor = math.sqrt((8 + 512) / (8 + 64))
    assert record.law == "fans"
    assert record.init == pytest.approx(factor, rel=1e-12)
    np.testing.assert_allclose(
        to_numpy(model.get_layer("hidden").kernel), before * factor, rtol=1e-6, atol=0
    )


def test_fixed_scale_initializers_shrink_hidden_weights_by_the_square_root():
    init = keras.initializers.RandomNormal(stddev=0.02)  # GPT-2's: the same at every width
    plan = ki.mup(_mlp(400, init=init), base=_mlp(100, init=init))
    inner, readout = (_records(plan, k)["kernel"] for k in ("hidden_1", "readout"))
    assert inner.law == "fixed" and inner.init == pytest.approx(0.5, rel=1e-12)
    assert readout.init == pytest.approx(0.25, rel=1e-12)


def test_an_unknown_initializer_is_measured_at_both_shapes():
    init = keras.initializers.Orthogonal(seed=1)  # rows orthonormal: RMS 1 / sqrt(max dim)
    plan = ki.mup(_mlp(256, init=init), base=_mlp(64, init=init))
    inner = _records(plan, "hidden_1")["kernel"]
    assert inner.law == "measured"
    # Orthogonal: RMS sqrt(1 / 256) against sqrt(1 / 64), exactly; muP: x (64/256)^(1/2)
    assert inner.init == pytest.approx(1.0, rel=1e-4)


def test_a_cnn_classifies_convolutions_depthwise_kernels_and_norms():
    plan = ki.mup(_cnn(64), base=_cnn(16))
    roles = [(w.weight, w.role, w.lr_adam, w.lr_sgd) for w in plan]
    m = 4.0
    assert roles == [
        ("kernel", "input", 1.0, m),  # 3x3x3 -> width
        ("bias", "vector", 1.0, m),
        ("gamma", "vector", 1.0, m),
        ("beta", "vector", 1.0, m),
        ("kernel", "input", 1.0, m),  # depthwise: fan_in 9 fixed, a kernel per channel
        ("bias", "vector", 1.0, m),
        ("kernel", "hidden", 1 / m, 1.0),
        ("bias", "vector", 1.0, m),
        ("kernel", "output", 1 / m, 1 / m),
        ("bias", "finite", 1.0, 1.0),
    ]


def test_attention_queries_take_mups_one_over_d():
    # Keras scales logits by 1/sqrt(d); muP wants sqrt(d_base) / d: the query
    # projection takes c = sqrt(d_base / d) on its init and Adam rate, c^2 on SGD's.
    plan = ki.mup(_transformer(256), base=_transformer(64))
    query = [w for w in plan if "/query/" in w.path]
    key = [w for w in plan if "/key/" in w.path]
    c = math.sqrt(16 / 64)
    assert [w.attention for w in query] == [c, c] and [w.attention for w in key] == [1.0, 1.0]
    kernel, bias = query
    assert (kernel.role, kernel.lr_adam, kernel.lr_sgd) == ("hidden", c / 4, c * c)
    assert (bias.role, bias.lr_adam, bias.lr_sgd) == ("vector", c, 4 * c * c)
    assert kernel.init == pytest.approx(c * next(w for w in key if w.weight == "kernel").init)


def test_attention_weights_end_at_the_base_std_times_mups_law():
    # Whatever fans Keras drew them with (3.15 hands EinsumDense's axes to a
    # VarianceScaling copy the layer does not keep; 3.14 does not), each hidden
    # projection ends at the base's std x (64 / 256)^(1/2), the query x c more.
    base, model = _transformer(64), _transformer(256)
    stds = {}
    for m in (base, model):
        attention = next(layer for layer in m.layers if isinstance(layer, L.MultiHeadAttention))
        stds[m is model] = {
            name: float(np.std(to_numpy(getattr(attention, f"_{name}_dense").kernel)))
            for name in ("query", "key", "value", "output")
        }
    ki.mup(model, base=base)
    attention = next(layer for layer in model.layers if isinstance(layer, L.MultiHeadAttention))
    for name, extra in (("query", 0.5), ("key", 1.0), ("value", 1.0), ("output", 1.0)):
        kernel = getattr(attention, f"_{name}_dense").kernel
        got = float(np.std(to_numpy(kernel)))
        want = stds[False][name] * 0.5 * extra
        size, base_size = math.prod(kernel.shape), 64 * 64
        tolerance = std_tolerance(want, size) + std_tolerance(want, base_size)
        assert abs(got - want) <= tolerance, (name, got, want)


# The identity at the base width


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adamw"])
def test_at_the_base_width_nothing_changes_and_training_is_bitwise_the_plain_one(optimizer):
    def make():
        return {
            "adam": keras.optimizers.Adam(1e-2),
            "sgd": keras.optimizers.SGD(1e-2, momentum=0.9),
            "adamw": keras.optimizers.AdamW(1e-2, weight_decay=0.1),
        }[optimizer]

    x, y = _data()
    keras.utils.set_random_seed(3)
    model = _mlp(64)
    keras.utils.set_random_seed(3)
    plain = _mlp(64)
    before = _values(model)
    plan = ki.mup(model, base=_mlp(64), delta=_mlp(128))
    assert all(np.array_equal(a, b) for a, b in zip(before, _values(model), strict=True))
    assert {(w.init, w.lr_adam, w.lr_sgd) for w in plan} == {(1.0, 1.0, 1.0)}
    assert [w.role for w in plan][:3] == ["input", "vector", "hidden"]  # delta says what grows
    model.compile(plan.optimizer(make()), keras.losses.MeanSquaredError())
    plain.compile(make(), keras.losses.MeanSquaredError())
    for _ in range(2):
        model.train_on_batch(x, y)
        plain.train_on_batch(x, y)
    for a, b in zip(_values(model), _values(plain), strict=True):
        assert np.array_equal(a, b)


# MupOptimizer: the rate of each weight, for every built-in optimizer


def _optimizers():
    made = {
        "SGD": lambda lr: keras.optimizers.SGD(lr, momentum=0.9),
        "Adam": lambda lr: keras.optimizers.Adam(lr),
        "AdamW": lambda lr: keras.optimizers.AdamW(lr, weight_decay=0.05),
        "Adamax": lambda lr: keras.optimizers.Adamax(lr),
        "Nadam": lambda lr: keras.optimizers.Nadam(lr),
        "RMSprop": lambda lr: keras.optimizers.RMSprop(lr, momentum=0.5),
        "Adagrad": lambda lr: keras.optimizers.Adagrad(lr),
        "Adadelta": lambda lr: keras.optimizers.Adadelta(lr),
        "Lion": lambda lr: keras.optimizers.Lion(lr),
        "Ftrl": lambda lr: keras.optimizers.Ftrl(lr),
        "Lamb": lambda lr: keras.optimizers.Lamb(lr),
        "Adafactor": lambda lr: keras.optimizers.Adafactor(lr),
    }
    if hasattr(keras.optimizers, "Muon"):
        made["Muon"] = lambda lr: keras.optimizers.Muon(lr)
    return made


OPTIMIZERS = _optimizers()


def _two_layers(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((6,)), L.Dense(5, name="a"), L.Dense(4, name="b")])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_weight_steps_as_the_plain_optimizer_at_its_own_rate(name):
    # Multipliers 0.5 (layer a) and 2 (layer b): three steps of MupOptimizer
    # equal three steps of two plain optimizers, at 0.5 lr and 2 lr.
    lr, make = 1e-2, OPTIMIZERS[name]
    rng = np.random.default_rng(1)
    grads = [
        [rng.normal(size=tuple(v.shape)).astype("float32") for v in _two_layers().weights]
        for _ in range(3)
    ]
    model, reference = _two_layers(), _two_layers()
    wrapped = MupOptimizer(make(lr), [0.5, 0.5, 2.0, 2.0], rule="adam")
    low, high = make(0.5 * lr), make(2.0 * lr)
    for step in grads:
        wrapped.apply([keras.ops.convert_to_tensor(g) for g in step], model.trainable_variables)
        ref = reference.trainable_variables
        low.apply([keras.ops.convert_to_tensor(g) for g in step[:2]], ref[:2])
        high.apply([keras.ops.convert_to_tensor(g) for g in step[2:]], ref[2:])
    for got, want in zip(_values(model), _values(reference), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)
    assert int(to_numpy(wrapped.iterations)) == 3


def test_weight_decay_follows_each_weights_rate():
    # A zero gradient leaves only AdamW's decoupled decay: w <- w (1 - c lr wd).
    model = _two_layers()
    before = _values(model)
    optimizer = MupOptimizer(keras.optimizers.AdamW(0.1, weight_decay=0.5), [0.5, 0.5, 2.0, 2.0])
    optimizer.apply([keras.ops.zeros(v.shape) for v in model.trainable_variables], model.weights)
    for got, old, c in zip(_values(model), before, [0.5, 0.5, 2.0, 2.0], strict=True):
        np.testing.assert_allclose(got, old * (1 - c * 0.1 * 0.5), rtol=1e-6)


def test_a_schedule_is_multiplied_and_a_rate_callback_keeps_the_ratios():
    x, y = _data()
    model = _mlp(32)
    plan = ki.mup(model, base=_mlp(16))
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    optimizer = plan.optimizer(keras.optimizers.SGD(schedule))
    model.compile(optimizer, keras.losses.MeanSquaredError())
    model.train_on_batch(x, y)  # step 0 at rate 0.1
    assert float(to_numpy(optimizer.learning_rate)) == pytest.approx(0.05)
    # A LearningRateScheduler sets the base rate; the multipliers still scale it.
    model = _mlp(32)
    plan = ki.mup(model, base=_mlp(16))
    model.compile(plan.optimizer(keras.optimizers.SGD(0.1)), keras.losses.MeanSquaredError())
    callback = keras.callbacks.LearningRateScheduler(lambda epoch, rate: 0.01)
    grads_model = _mlp(32)
    grads_model.set_weights(model.get_weights())
    with_grads = _gradients(grads_model, x, y)
    before = _values(model)
    model.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False, callbacks=[callback])
    assert float(to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.01)
    for record, old, new, g in zip(plan.weights, before, _values(model), with_grads, strict=True):
        np.testing.assert_allclose(new - old, -0.01 * record.lr_sgd * g, rtol=1e-3, atol=1e-7)


def _gradients(model, x, y):
    """The loss's gradients for each weight, as NumPy (on any backend)."""
    loss = keras.losses.MeanSquaredError()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss(y, model(x))
        return [g.numpy() for g in tape.gradient(value, model.trainable_variables)]
    if backend == "torch":
        value = loss(keras.ops.convert_to_tensor(y), model(x))
        value.backward()
        return [v.value.grad.detach().cpu().numpy() for v in model.trainable_variables]
    import jax

    def f(values):
        out, _ = model.stateless_call(values, [v.value for v in model.non_trainable_variables], x)
        return loss(y, out)

    return [np.asarray(g) for g in jax.grad(f)([v.value for v in model.trainable_variables])]


def test_layers_whose_names_prefix_each_other_keep_their_own_rates():
    # MultiOptimizer's pitfall: a pattern "hidden" also matches "hidden_1".
    plan = ki.mup(_mlp(128), base=_mlp(32))
    optimizer = plan.optimizer(keras.optimizers.Adam(1e-3))
    assert optimizer.multipliers == [1.0, 1.0, 0.25, 1.0, 0.25, 1.0]


def test_the_optimizer_saves_loads_and_resumes_as_an_uninterrupted_run(tmp_path):
    x, y = _data()
    model = _mlp(128)
    plan = ki.mup(model, base=_mlp(32))
    model.compile(plan.optimizer(keras.optimizers.AdamW(1e-2, weight_decay=0.01)), "mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    model.save(tmp_path / "model.keras")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)  # uninterrupted
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "expected.npy", to_numpy(model(x)))
    script = textwrap.dedent(
        f"""
        import keras, numpy as np
        import keras_inits
        model = keras.saving.load_model({str(tmp_path / "model.keras")!r})
        optimizer = model.optimizer
        assert type(optimizer).__name__ == "MupOptimizer", type(optimizer)
        assert optimizer.multipliers == {plan.optimizer(keras.optimizers.Adam()).multipliers!r}
        assert type(optimizer.inner_optimizer).__name__ == "AdamW"
        assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 2
        x, y = np.load({str(tmp_path / "x.npy")!r}), np.load({str(tmp_path / "y.npy")!r})
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        got = np.asarray(keras.ops.convert_to_numpy(model(x)))
        expected = np.load({str(tmp_path / "expected.npy")!r})
        print(float(np.max(np.abs(got - expected))))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": keras.backend.backend()},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert float(completed.stdout.strip().splitlines()[-1]) <= 1e-6


def test_a_legacy_h5_file_keeps_the_optimizers_rates(tmp_path):
    model = _mlp(64)
    plan = ki.mup(model, base=_mlp(16))
    model.compile(plan.optimizer(keras.optimizers.Adam(1e-3)), keras.losses.MeanSquaredError())
    model.fit(*_data(), verbose=0)
    model.save(tmp_path / "model.h5")
    loaded = keras.saving.load_model(tmp_path / "model.h5")
    assert isinstance(loaded.optimizer, MupOptimizer)
    assert loaded.optimizer.multipliers == model.optimizer.multipliers
    for a, b in zip(_values(model), _values(loaded), strict=True):
        assert np.array_equal(a, b)


def test_a_mixed_precision_model_wraps_it_in_a_loss_scale_optimizer():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = _mlp(64)
        plan = ki.mup(model, base=_mlp(16))
        model.compile(plan.optimizer(keras.optimizers.Adam(1e-3)), "mse")
        model.fit(*_data(), verbose=0)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(model.optimizer.inner_optimizer, MupOptimizer)
        assert all(np.isfinite(v).all() for v in _values(model))
    finally:
        keras.config.set_dtype_policy(policy)


# Errors: named, and the model untouched


class _Custom(L.Layer):
    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1], 4))

    def call(self, x):
        return x @ self.w


def _raises(make_model, base, error, message, *, delta=None, prefix=True):
    model = make_model()
    before = _values(model)
    assert_error(lambda: ki.mup(model, base=base, delta=delta), error, message, prefix=prefix)
    for a, b in zip(before, _values(model), strict=True):
        assert np.array_equal(a, b)


def test_a_base_of_another_architecture_is_refused_by_name():
    deeper = keras.Sequential([keras.Input((8,)), *(L.Dense(64) for _ in range(3)), L.Dense(3)])
    _raises(lambda: _mlp(128), deeper, ValueError, "`base` must be the same architecture")
    convolutional = keras.Sequential(
        [keras.Input((8, 1)), L.Conv1D(64, 1), L.Dense(64), L.Dense(3)]
    )
    _raises(
        lambda: keras.Sequential([keras.Input((8, 1)), L.Dense(128), L.Dense(128), L.Dense(3)]),
        convolutional,
        ValueError,
        "`base` must be the same architecture as `model` at another width, but its layer class "
        "differs at layer 1",
    )


def test_with_a_delta_a_dimension_it_does_not_change_is_no_width():
    # Without a delta, any width-role axis that differs is a width (microsoft/mup's rule);
    # with one, the readout's 5 against 3 classes is refused.
    _raises(
        lambda: _mlp(128, outputs=3),
        _mlp(64, outputs=5),
        ValueError,
        "`model` differs from `base` in axis 1 (output) of",
        delta=_mlp(32, outputs=5),
    )


def test_other_finite_dims_are_refused():
    def conv(width, kernel):
        return keras.Sequential([keras.Input((6, 6, 3)), L.Conv2D(width, kernel), L.Dense(2)])

    _raises(
        lambda: conv(32, 3),
        conv(16, 5),
        ValueError,
        "`model` differs from `base` in axis 0 of",
    )


def test_a_model_at_the_base_width_needs_a_delta():
    _raises(
        lambda: _mlp(64),
        _mlp(64),
        ValueError,
        "`model` has no width that differs from `base`'s: muP needs to know which axes grow",
    )


def test_an_unbuilt_model_and_non_models_are_refused():
    unbuilt = keras.Sequential([L.Dense(4)])
    assert_error(
        lambda: ki.mup(unbuilt, base=_mlp(4)), ValueError, "`model` must be built", prefix=True
    )
    assert_error(
        lambda: ki.mup(_mlp(8), base="small"),
        TypeError,
        "`base` must be a Keras model or layer. Received: base=str",
    )


def test_layers_the_table_does_not_know_are_refused_by_name():
    def custom(width):
        return keras.Sequential([keras.Input((8,)), L.Dense(width), _Custom(name="mine")])

    _raises(lambda: custom(64), custom(16), ValueError, "keras_inits does not know the kernel")


def test_attention_without_a_known_query_is_refused_by_name():
    def dot(width):
        q = keras.Input((4, 8))
        h = L.Dense(width)(q)
        return keras.Model(q, L.Attention(name="scores")([h, h]))

    _raises(
        lambda: dot(32),
        dot(16),
        ValueError,
        "keras_inits.mup cannot find the query projection of layer 'scores' (Attention) in `model`",
    )


def test_a_tied_embedding_that_grows_is_refused():
    def lm(width):
        tokens = keras.Input((4,), dtype="int32")
        embed = L.ReversibleEmbedding(50, width, tie_weights=True, name="tied")
        return keras.Model(tokens, embed(embed(tokens), reverse=True))

    if not hasattr(L, "ReversibleEmbedding"):
        pytest.skip("keras.layers.ReversibleEmbedding arrived in Keras 3.15")
    _raises(lambda: lm(32), lm(16), ValueError, "`model`'s layer 'tied' ties its embedding table")


def test_optimizer_errors_are_named():
    plan = ki.mup(_mlp(32), base=_mlp(16))
    assert_error(
        lambda: plan.optimizer("adam"),
        TypeError,
        "`optimizer` must be a keras.optimizers.Optimizer instance (Adam(1e-3), SGD(...)). "
        "Received: optimizer='adam'",
    )
    assert_error(
        lambda: plan.optimizer(keras.optimizers.Ftrl()),
        ValueError,
        "muP's learning rates are derived for SGD and for Adam-like optimizers, not for Ftrl: "
        "pass `rule` ('adam' or 'sgd') to apply one of them anyway. "
        "Received: optimizer=Ftrl, rule=None",
    )
    assert isinstance(plan.optimizer(keras.optimizers.Ftrl(), rule="sgd"), MupOptimizer)
    assert_error(
        lambda: plan.optimizer(keras.optimizers.Adam(), rule="lars"),
        ValueError,
        "`rule` must be one of ('adam', 'sgd'). Received: rule='lars'",
    )
    wrapped = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())
    assert_error(
        lambda: plan.optimizer(wrapped),
        TypeError,
        "`optimizer` must be a plain optimizer, not a wrapper",
        prefix=True,
    )
    used = keras.optimizers.Adam()
    used.build(_mlp(4).trainable_variables)
    assert_error(
        lambda: plan.optimizer(used),
        ValueError,
        "`optimizer` must be fresh (not built)",
        prefix=True,
    )
    assert_error(
        lambda: MupOptimizer(keras.optimizers.Adam(), [1.0, -2.0]),
        ValueError,
        "`multipliers` must hold positive finite numbers. Received: multipliers[1]=-2.0",
    )
    assert_error(
        lambda: MupOptimizer(keras.optimizers.Adam(), {"a": 1.0}),
        TypeError,
        "`multipliers` must be a sequence of learning-rate multipliers",
        prefix=True,
    )


def test_a_model_whose_trainable_weights_changed_since_the_plan_is_refused():
    model = _mlp(32)
    plan = ki.mup(model, base=_mlp(16))
    optimizer = plan.optimizer(keras.optimizers.Adam())
    model.get_layer("hidden").trainable = False
    model.compile(optimizer, "mse")
    assert_error(
        lambda: model.fit(*_data(), verbose=0),
        ValueError,
        "MupOptimizer was made for 6 trainable variables and is built on 4 (`var_list`)",
        prefix=True,
    )
    # Planned again as it is trained: the frozen layer has no rate.
    assert len(plan.optimizer(keras.optimizers.Adam()).multipliers) == 4


# keras-hub's backbones, built from their constructors (nothing downloads)


def _hub_backbones():
    keras_hub = import_keras_hub()
    models = keras_hub.models
    return {
        "gpt2": lambda d: models.GPT2Backbone(
            vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=d,
            intermediate_dim=2 * d, max_sequence_length=8,
        ),
        "bert": lambda d: models.BertBackbone(
            vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=d,
            intermediate_dim=2 * d, max_sequence_length=8,
        ),
        "llama": lambda d: models.LlamaBackbone(
            vocabulary_size=50, num_layers=2, num_query_heads=2, num_key_value_heads=1,
            hidden_dim=d, intermediate_dim=2 * d,
        ),
        "gemma": lambda d: models.GemmaBackbone(
            vocabulary_size=50, num_layers=2, num_query_heads=2, num_key_value_heads=1,
            hidden_dim=d, intermediate_dim=2 * d, head_dim=d // 2,
        ),
    }  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt2", "bert", "llama", "gemma"])
def test_keras_hub_backbones_get_a_plan_with_their_queries_found(name):
    build = _hub_backbones()[name]
    model = build(64)
    plan = ki.mup(model, base=build(32))
    queries = [w for w in plan if w.attention != 1 and w.weight == "kernel"]
    assert len(queries) == 2  # one query projection per block
    assert {w.attention for w in plan if w.attention != 1} == {math.sqrt(0.5)}
    roles = {w.role for w in plan}
    assert {"input", "hidden", "vector"} <= roles
    embeddings = [w for w in plan if w.weight == "embeddings" and w.layer == "token_embedding"]
    assert [w.role for w in embeddings] == ["input"]  # tied, but the backbone only looks up


@pytest.mark.slow
def test_a_causal_lm_whose_tied_table_is_its_head_is_refused():
    keras_hub = import_keras_hub()
    build = _hub_backbones()["gpt2"]

    def lm(d):
        return keras_hub.models.GPT2CausalLM(build(d), preprocessor=None)

    _raises(
        lambda: lm(64),
        lm(32),
        ValueError,
        "`model`'s layer 'token_embedding' ties its embedding table",
    )


# dtypes: the factors applied in the weight's own dtype, one step finite


@pytest.mark.parametrize("floatx", ["float16", "bfloat16", "float64"])
def test_every_float_dtype_is_scaled_in_its_own_dtype(floatx):
    with dtype_policy(floatx):
        model = _mlp(256, init="glorot_uniform")
        before = _values(model)
        plan = ki.mup(model, base=_mlp(64, init="glorot_uniform"))
        dtype = keras.backend.standardize_dtype(model.weights[0].dtype)
        assert dtype == floatx  # the policy reached the weights (floatx alone may not)
        held = floatx if floatx != "float64" or backend_has_float64() else "float32"
        eps = {"float16": 2e-3, "bfloat16": 1e-2, "float64": 1e-12, "float32": 2e-7}[held]
        for record, old, new in zip(plan.weights, before, _values(model), strict=True):
            expected = old.astype(np.float64) * record.init
            np.testing.assert_allclose(new.astype(np.float64), expected, rtol=eps, atol=0)
        model.compile(plan.optimizer(keras.optimizers.SGD(1e-3)), "mse")
        x, y = _data()
        model.train_on_batch(x.astype("float32"), y.astype("float32"))
        assert all(np.isfinite(v.astype(np.float64)).all() for v in _values(model))


# Any arguments: a plan, or an error in the house grammar with the model untouched


def _as_model(value):
    """A small int is a width (an MLP of it); anything else is passed as it is."""
    small = isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 256
    return _mlp(value) if small else value


@settings(PROPERTY, max_examples=30)
@given(
    base=st.one_of(ANY_VALUE, st.sampled_from([16, 32, 64, 128])),
    delta=st.one_of(st.none(), ANY_VALUE, st.sampled_from([16, 48, 64])),
)
def test_any_arguments_give_a_plan_or_our_error(base, delta):
    model = _mlp(64)
    before = _values(model)
    base, delta = _as_model(base), _as_model(delta)
    try:
        plan = ki.mup(model, base=base, delta=delta)
    except Exception as error:
        assert_our_error(error)
        for a, b in zip(before, _values(model), strict=True):
            assert np.array_equal(a, b)
    else:
        assert len(plan) == 6 and all(w.lr_adam > 0 and w.lr_sgd > 0 for w in plan)
        assert all(np.isfinite(v).all() for v in _values(model))
