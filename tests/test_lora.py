"""keras_inits.lora and lora_delta: Keras's LoRA with adapters initialized from the weight."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from helpers import assert_error, assert_matches, std_tolerance, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from test_properties import ANY_VALUE, PROPERTY, assert_our_error

import keras_inits as ki
from keras_inits.model import layout

L = keras.layers
METHODS = ("keras", "peft", "gaussian", "orthogonal", "pissa", "olora")
RELATIVE = 1e-5  # the bound on the output change in float32


def _dense():
    return keras.Sequential([keras.Input((24,)), L.Dense(12, name="adapted")]), (5, 24), "float"


def _einsum():
    # A 3-D kernel (16, 4, 8): Keras's LoRA makes A (16, 4, r) and B (r, 8).
    layer = L.EinsumDense("abc,cde->abde", (None, 4, 8), bias_axes="de", name="adapted")
    return keras.Sequential([keras.Input((6, 16)), layer]), (3, 6, 16), "float"


def _conv():
    layer = L.Conv2D(8, 3, name="adapted")
    return keras.Sequential([keras.Input((7, 7, 3)), layer]), (2, 7, 7, 3), "float"


def _embedding():
    layer = L.Embedding(30, 12, name="adapted")
    return keras.Sequential([keras.Input((5,), dtype="int32"), layer]), (4, 5), "int"


KINDS = {"dense": _dense, "einsum": _einsum, "conv2d": _conv, "embedding": _embedding}


def _batch(shape, kind, seed=1):
    rng = np.random.default_rng(seed)
    if kind == "int":
        return rng.integers(0, 30, shape).astype("int32")
    return rng.standard_normal(shape).astype("float32")


def _base(layer):
    """The frozen base variable Keras's LoRA adds the adapter to."""
    return layer._embeddings if isinstance(layer, L.Embedding) else layer._kernel


def _adapter(layer):
    if isinstance(layer, L.Embedding):
        return to_numpy(layer.lora_embeddings_a), to_numpy(layer.lora_embeddings_b)
    return to_numpy(layer.lora_kernel_a), to_numpy(layer.lora_kernel_b)


def _weights(model):
    return [to_numpy(w) for w in model.weights]


def _untouched(model, before):
    assert not any(getattr(layer, "lora_enabled", False) for layer in model.layers)
    after = _weights(model)
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)


# The outputs are unchanged right after, for every method, on every kind


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_outputs_unchanged_and_base_frozen(kind, method):
    model, shape, dtype = KINDS[kind]()
    x = _batch(shape, dtype)
    before = to_numpy(model(x))
    kernel_before = to_numpy(_base(model.layers[0]))
    report = ki.lora(model, rank=2, method=method, seed=0)
    after = to_numpy(model(x))
    assert np.max(np.abs(after - before)) <= RELATIVE * np.max(np.abs(before))
    layer = model.layers[0]
    assert layer.lora_enabled and layer.lora_rank == 2
    assert not _base(layer).trainable
    a, b = _adapter(layer)
    assert a.shape == (*kernel_before.shape[:-1], 2) and b.shape == (2, kernel_before.shape[-1])
    trainable = {id(v) for v in layer.trainable_weights}
    assert id(_base(layer)) not in trainable
    changed = not np.array_equal(to_numpy(_base(layer)), kernel_before)
    # Only PiSSA and OLoRA move part of the weight into the adapter.
    assert changed == (method in ("pissa", "olora"))
    assert np.any(a != 0) or np.any(b != 0)
    assert [r.layer for r in report] == ["adapted"]
    assert report[0].method == method and report[0].rank == 2


# PiSSA: the adapter holds the spectrum's head, the residual its tail


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_pissa_residual_is_the_spectrum_tail(kind):
    model, _, _ = KINDS[kind]()
    rank = 3
    weight = to_numpy(_base(model.layers[0]))
    matrix = weight.reshape(-1, weight.shape[-1])
    singular = np.linalg.svd(matrix, compute_uv=False)
    report = ki.lora(model, rank=rank, method="pissa", alpha=6.0)
    residual = to_numpy(_base(model.layers[0])).reshape(matrix.shape)
    head, total = float(np.sum(singular[:rank] ** 2)), float(np.sum(singular**2))
    assert math.isclose(float(np.sum((matrix - residual) ** 2)), head, rel_tol=1e-3)
    assert math.isclose(float(np.sum(residual**2)), total - head, rel_tol=1e-3)
    # The residual's singular values are the tail (its top one is sigma_{r+1}).
    tail = np.linalg.svd(residual, compute_uv=False)
    assert math.isclose(float(tail[0]), float(singular[rank]), rel_tol=1e-3)
    assert math.isclose(report[0].energy, head / total, rel_tol=1e-6)
    assert math.isclose(report[0].residual_norm, math.sqrt(total - head), rel_tol=1e-6)
    # With alpha = 6 and r = 3 the scale is 2: A @ B is half of U_r S_r V_r^T.
    a, b = _adapter(model.layers[0])
    np.testing.assert_allclose(2.0 * a.reshape(-1, rank) @ b, matrix - residual, atol=1e-5)


def test_randomized_pissa_finds_the_head_and_is_seeded():
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((64, 32)))
    v, _ = np.linalg.qr(rng.standard_normal((32, 32)))
    spectrum = 0.7 ** np.arange(32)  # a decaying spectrum, as trained weights have

    def model():
        layer = L.Dense(32, use_bias=False)
        net = keras.Sequential([keras.Input((64,)), layer])
        layer.kernel.assign((u * spectrum) @ v.T)
        return net

    exact, first, second, other = model(), model(), model(), model()
    exact_report = ki.lora(exact, rank=4, method="pissa")
    report = ki.lora(first, rank=4, method="pissa", niter=4, seed=7)
    ki.lora(second, rank=4, method="pissa", niter=4, seed=7)
    ki.lora(other, rank=4, method="pissa", niter=4, seed=8)
    # The randomized head never holds more than the exact one, and close to it here
    # (a range finder's error shrinks as (sigma_5 / sigma_4)^(2 niter + 1) = 0.7^9).
    assert report[0].energy <= exact_report[0].energy * (1 + 1e-9)
    assert math.isclose(report[0].energy, exact_report[0].energy, rel_tol=1e-2)
    np.testing.assert_array_equal(_adapter(first.layers[0])[0], _adapter(second.layers[0])[0])
    # Another seed, another test matrix: the same subspace, other rounding.
    assert not np.array_equal(_adapter(first.layers[0])[0], _adapter(other.layers[0])[0])


# The methods' own distributions


def _wide_dense(method, rows=2048, rank=64):
    model = keras.Sequential([keras.Input((rows,)), L.Dense(rank)])
    ki.lora(model, rank=rank, method=method, seed=3)
    return _adapter(model.layers[0])


@pytest.mark.parametrize(
    ("method", "dist"),
    [
        ("keras", stats.uniform(-math.sqrt(6 / 2048), 2 * math.sqrt(6 / 2048))),  # he_uniform
        ("peft", stats.uniform(-1 / math.sqrt(2048), 2 / math.sqrt(2048))),  # kaiming(a=sqrt(5))
        ("gaussian", stats.norm(0, 1 / 64)),  # PEFT's std 1 / r
    ],
)
def test_zero_start_methods_draw_a_and_zero_b(method, dist):
    a, b = _wide_dense(method)
    assert_matches(a, dist)
    assert not np.any(b)


def test_peft_embedding_starts_a_at_zero_and_b_standard_normal():
    model = keras.Sequential([keras.Input((3,), dtype="int32"), L.Embedding(200, 128)])
    ki.lora(model, rank=16, method="peft", seed=0)
    a, b = _adapter(model.layers[0])
    assert not np.any(a)
    assert abs(float(np.std(b)) - 1.0) <= std_tolerance(1.0, b.size)
    assert abs(float(np.mean(b))) <= 5.0 / math.sqrt(b.size)


def test_orthogonal_product_is_zero_and_factors_are_not():
    a, b = _wide_dense("orthogonal", rows=256, rank=16)
    product = a @ b
    scale = np.linalg.norm(a) * np.linalg.norm(b)
    assert np.max(np.abs(product)) <= 1e-6 * scale
    for factor in (a, b):  # rank r / 2 each, up to float32 rounding
        assert np.linalg.matrix_rank(factor, tol=1e-4 * np.linalg.norm(factor, 2)) == 8


def test_olora_b_has_orthonormal_rows_and_a_is_r_transposed():
    model, _, _ = _dense()
    ki.lora(model, rank=4, method="olora")
    a, b = _adapter(model.layers[0])
    np.testing.assert_allclose(b @ b.T, np.eye(4), atol=1e-5)
    assert np.all(np.tril(a.T, k=-1) == 0) and np.all(np.diag(a.T) != 0)  # R_r: upper triangular


# The layer table says how LoRA matricizes each kernel


def test_layer_table_gives_keras_lora_axes():
    query = L.EinsumDense("abc,cde->abde", (None, 4, 8))
    query.build((None, 6, 16))
    entry = layout(query).weight("kernel")
    assert entry.lora_axes == ((0, 1), (2,))
    assert entry.in_axes == (0,)  # the table's fan roles differ from LoRA's split here
    transpose = L.Conv2DTranspose(4, 3)
    transpose.build((None, 8, 8, 2))
    assert layout(transpose).weight("kernel").lora_axes is None


# Choosing layers


def _two_dense():
    return keras.Sequential(
        [
            keras.Input((16,)),
            L.Dense(8, name="first"),
            L.LayerNormalization(name="norm"),
            L.Dense(2, name="second"),
        ]
    )


def test_layers_by_pattern_and_by_name():
    model = _two_dense()
    assert [r.layer for r in ki.lora(model, rank=2, layers="f.*")] == ["first"]
    assert not model.get_layer("second").lora_enabled
    model = _two_dense()
    assert [r.layer for r in ki.lora(model, rank=1, layers=["second"])] == ["second"]


# Errors: each names the argument and the value, and leaves the model untouched


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"rank": 0}, ValueError, "`rank` must be an int >= 1. Received: rank=0"),
        ({"rank": True}, TypeError, "`rank` must be an int >= 1. Received: rank=True"),
        (
            {"rank": 3},
            ValueError,
            "`rank` must be <= min(rows, columns) = 2 for layer 'second', whose kernel is "
            "matricized as (8, 2). Received: rank=3",
        ),
        (
            {"rank": 2, "method": "lora"},
            ValueError,
            "`method` must be one of ('gaussian', 'keras', 'olora', 'orthogonal', 'peft', "
            "'pissa'). Received: method='lora'",
        ),
        (
            {"rank": 1, "method": "orthogonal"},
            ValueError,
            "`rank` must be even for method='orthogonal' (A and B take alternate rows of one "
            "orthogonal matrix). Received: rank=1",
        ),
        (
            {"rank": 2, "method": "olora", "niter": 2},
            ValueError,
            "`niter` (the randomized SVD's power iterations) applies to method='pissa' only. "
            "Received: niter=2 with method='olora'",
        ),
        (
            {"rank": 2, "niter": -1},
            ValueError,
            "`niter` must be an int >= 0 or None. Received: niter=-1",
        ),
        (
            {"rank": 2, "alpha": 0},
            ValueError,
            "`alpha` must be a nonzero finite number or None. Received: alpha=0",
        ),
        (
            {"rank": 2, "layers": ["norm"]},
            ValueError,
            "Layer 'norm' (LayerNormalization) does not support Keras's LoRA (Dense, "
            "EinsumDense, Conv1D-3D and Embedding do). Received: layers=['norm']",
        ),
        (
            {"rank": 2, "layers": ["missing"]},
            ValueError,
            "`layers` names a layer the model does not have: 'missing'. "
            "Received: layers=['missing']",
        ),
        (
            {"rank": 2, "layers": "nothing.*"},
            ValueError,
            "`layers` matches no layer that Keras's LoRA supports (a pattern must match a "
            "whole layer name; these support it: ('first', 'second')). "
            "Received: layers='nothing.*'",
        ),
        (
            {"rank": 2, "layers": 3},
            TypeError,
            "`layers` must be None, a regular expression (str) or a list of layer names. "
            "Received: layers=3",
        ),
        (
            {"rank": 2, "seed": -1},
            ValueError,
            "`seed` must be an int in [0, 2**32), a keras.random.SeedGenerator or None. "
            "Received: seed=-1",
        ),
    ],
)
def test_bad_arguments_fail_clearly_and_change_nothing(kwargs, error, message):
    model = _two_dense()
    before = _weights(model)
    assert_error(lambda: ki.lora(model, **kwargs), error, message)
    _untouched(model, before)


def test_a_model_already_with_lora_is_refused_untouched():
    model = _two_dense()
    model.get_layer("second").enable_lora(1)
    before = _weights(model)
    assert_error(
        lambda: ki.lora(model, rank=1),
        ValueError,
        "Layer 'second' (Dense) already has LoRA enabled (Keras allows it once per layer), so "
        "`lora` cannot initialize its adapter. Received: layer='second'",
    )
    assert not model.get_layer("first").lora_enabled
    assert [to_numpy(w).shape for w in model.weights] == [w.shape for w in before]


def test_a_quantized_layer_is_refused_naming_it():
    model = _two_dense()
    model.get_layer("second").quantize("int8")
    before = _weights(model)
    assert_error(
        lambda: ki.lora(model, rank=1),
        ValueError,
        "Layer 'second' (Dense) is quantized ('int8'); keras_inits.lora adapts float kernels "
        "only (call it before `model.quantize(...)`, or use the layer's own "
        "`enable_lora(rank)`). Received: layer='second'",
    )
    _untouched(model, before)


def test_a_model_without_lora_layers_is_refused():
    model = keras.Sequential([keras.Input((4,)), L.LayerNormalization()])
    assert_error(
        lambda: ki.lora(model, rank=1),
        ValueError,
        "`model` has no layer Keras's LoRA supports (Dense, EinsumDense, Conv1D-3D, "
        f"Embedding). Received: model={model.name!r}",
    )


# lora_delta: the plain update a trained adapter amounts to


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pissa", "olora", "peft"])
def test_lora_delta_reproduces_the_trained_model(method):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((10,))
    hidden = L.Dense(16, activation="tanh", name="hidden")(inputs)
    outputs = L.Dense(3, name="out")(hidden)
    model = keras.Model(inputs, outputs)
    original = model.get_weights()
    ki.lora(model, rank=2, method=method, alpha=4.0, seed=0)
    frozen = to_numpy(model.get_layer("hidden")._kernel)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 10)), rng.standard_normal((64, 3))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    np.testing.assert_array_equal(to_numpy(model.get_layer("hidden")._kernel), frozen)
    deltas = ki.lora_delta(model)
    paths = [model.get_layer(name)._kernel.path for name in ("hidden", "out")]
    assert list(deltas) == paths
    assert all(np.max(np.abs(d)) > 1e-3 for d in deltas.values())  # it trained

    fresh_in = keras.Input((10,))
    fresh = keras.Model(fresh_in, L.Dense(3)(L.Dense(16, activation="tanh")(fresh_in)))
    fresh.set_weights(original)
    for layer, name in zip(fresh.layers[1:], ("hidden", "out"), strict=True):
        path = model.get_layer(name)._kernel.path
        layer.kernel.assign(to_numpy(layer.kernel) + deltas[path])
        layer.bias.assign(to_numpy(model.get_layer(name).bias))  # Keras's LoRA trains biases
    expected = to_numpy(model(x))
    merged = to_numpy(fresh(x))
    assert np.max(np.abs(merged - expected)) <= 1e-5 * np.max(np.abs(expected))


def test_lora_delta_refuses_unknown_adapters():
    model = _two_dense()
    assert_error(
        lambda: ki.lora_delta(model),
        ValueError,
        f"`model` has no LoRA-enabled layer (keras_inits.lora adapts one). "
        f"Received: model={model.name!r}",
    )
    model.get_layer("first").enable_lora(2)
    assert_error(
        lambda: ki.lora_delta(model),
        ValueError,
        "Layer 'first' (Dense) has a LoRA adapter that keras_inits.lora did not make in this "
        "process (a reloaded model, or one from enable_lora), so its initial A and B are "
        "unknown. Received: layer='first'",
    )


# Save and load: a fresh process predicts the same


@pytest.mark.slow
def test_saved_model_reloads_with_identical_predictions(tmp_path):
    model, shape, _ = _conv()
    ki.lora(model, rank=3, method="pissa", seed=0)
    x = _batch(shape, "float")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", to_numpy(model(x)))
    model.save(tmp_path / "model.keras")
    script = textwrap.dedent(
        f"""
        import keras, numpy as np
        model = keras.saving.load_model({str(tmp_path / "model.keras")!r})
        x = np.load({str(tmp_path / "x.npy")!r})
        expected = np.load({str(tmp_path / "y.npy")!r})
        got = np.asarray(keras.ops.convert_to_numpy(model(x)))
        layer = model.layers[0]
        assert layer.lora_enabled and layer.lora_rank == 3, "the adapter was not restored"
        print(float(np.max(np.abs(got - expected)) / np.max(np.abs(expected))))
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
    assert float(completed.stdout.strip().splitlines()[-1]) <= RELATIVE


# Any arguments: adapters that keep the outputs, or an error in the house grammar

ARGUMENTS = st.one_of(ANY_VALUE, st.integers(min_value=1, max_value=4))


@settings(PROPERTY, max_examples=40)
@given(
    rank=ARGUMENTS,
    method=st.one_of(st.sampled_from(METHODS), ANY_VALUE),
    alpha=st.one_of(st.none(), st.sampled_from([1e-30, 1e30, -2.0, 0.5]), ANY_VALUE),
    niter=st.one_of(st.none(), st.integers(min_value=0, max_value=3), ANY_VALUE),
    layers=st.one_of(st.none(), st.sampled_from(["first", "s.*", ["second"], "("]), ANY_VALUE),
)
def test_any_arguments_keep_the_outputs_or_fail_in_our_words(rank, method, alpha, niter, layers):
    model = _two_dense()
    x = _batch((3, 16), "float")
    before_out, before = to_numpy(model(x)), _weights(model)
    try:
        report = ki.lora(model, rank, method, alpha=alpha, layers=layers, niter=niter, seed=0)
    except Exception as error:
        assert_our_error(error)
        _untouched(model, before)
        return
    assert report
    after = to_numpy(model(x))
    assert np.max(np.abs(after - before_out)) <= 1e-4 * np.max(np.abs(before_out))


@pytest.mark.parametrize(("method", "alpha"), [("pissa", 1e-80), ("pissa", 1e80), ("olora", 1e9)])
def test_an_alpha_float32_cannot_hold_is_refused(method, alpha):
    # PiSSA's A, B ~ sqrt(sigma * r / alpha) overflow (1e-80) or underflow (1e80) float32;
    # OLoRA's residual W - s A B cancels about 9 digits at s = 5e8.
    model = _two_dense()
    before = _weights(model)
    assert_error(
        lambda: ki.lora(model, 2, method, alpha=alpha),
        ValueError,
        "`alpha` gives layer 'first' an adapter that float32 (the dtype of Keras's LoRA "
        "weights) cannot hold without changing the layer's output (A and B overflow, underflow "
        f"or cancel); choose alpha nearer the rank. Received: alpha={alpha!r}",
    )
    _untouched(model, before)


def test_a_non_finite_kernel_is_refused_naming_the_layer():
    model = _two_dense()
    kernel = to_numpy(model.get_layer("second").kernel)
    kernel[0, 0] = np.nan
    model.get_layer("second").kernel.assign(kernel)
    before = _weights(model)
    assert_error(
        lambda: ki.lora(model, 1),
        ValueError,
        "Layer 'second' (Dense) has non-finite values in its kernel, so no adapter can start "
        "from it. Received: layer='second'",
    )
    _untouched(model, before)


def test_quantizing_after_pissa_quantizes_the_residual_with_less_error():
    # Keras quantizes the frozen base kernel and keeps the adapter in float32, so after
    # PiSSA it quantizes only the residual (QPiSSA). A weight with a strong low-rank part,
    # as trained weights have, leaves a residual of smaller range: less int8 error.
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((64, 4)) @ rng.standard_normal((4, 32)) + 0.1 * (
        rng.standard_normal((64, 32))
    )
    x = rng.standard_normal((16, 64)).astype("float32")

    def model():
        net = keras.Sequential([keras.Input((64,)), L.Dense(32, use_bias=False)])
        net.layers[0].kernel.assign(weight.astype("float32"))
        return net

    exact = to_numpy(model()(x))
    plain, adapted = model(), model()
    plain.quantize("int8")
    ki.lora(adapted, rank=4, method="pissa")
    adapted.quantize("int8")
    assert adapted.layers[0].lora_enabled and adapted.layers[0].quantization_mode == "int8"
    plain_error = np.linalg.norm(to_numpy(plain(x)) - exact)
    pissa_error = np.linalg.norm(to_numpy(adapted(x)) - exact)
    assert pissa_error < 0.5 * plain_error, (pissa_error, plain_error)


@pytest.mark.parametrize("method", ["pissa", "olora"])
def test_attention_projections_are_adapted_as_keras_matricizes_them(method):
    inputs = keras.Input((5, 16))
    outputs = L.MultiHeadAttention(num_heads=2, key_dim=8, name="attention")(inputs, inputs)
    model = keras.Model(inputs, outputs)
    x = _batch((3, 5, 16), "float")
    before = to_numpy(model(x))
    report = ki.lora(model, rank=4, method=method, seed=0)
    assert [r.layer for r in report] == ["query", "key", "value", "attention_output"]
    # query (16, 2, 8): A (16, 2, r), B (r, 8); output (2, 8, 16): A (2, 8, r), B (r, 16).
    assert [r.shape for r in report] == [(32, 8), (32, 8), (32, 8), (16, 16)]
    attention = model.get_layer("attention")
    assert tuple(attention._query_dense.lora_kernel_a.shape) == (16, 2, 4)
    assert tuple(attention._output_dense.lora_kernel_b.shape) == (4, 16)
    after = to_numpy(model(x))
    assert np.max(np.abs(after - before)) <= RELATIVE * np.max(np.abs(before))


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (lambda: L.Conv1D(6, 3, name="adapted"), (2, 9, 4)),
        (lambda: L.Conv3D(4, 2, name="adapted"), (2, 4, 4, 4, 3)),
        (lambda: L.Conv2D(8, 3, groups=2, name="adapted"), (2, 6, 6, 4)),
    ],
    ids=["conv1d", "conv3d", "grouped_conv2d"],
)
@pytest.mark.parametrize("method", ["pissa", "olora", "orthogonal"])
def test_other_convolutions_keep_their_outputs(layer, shape, method):
    model = keras.Sequential([keras.Input(shape[1:]), layer()])
    x = _batch(shape, "float")
    before = to_numpy(model(x))
    kernel = tuple(model.layers[0].kernel.shape)
    report = ki.lora(model, rank=2, method=method, seed=0)
    assert report[0].shape == (math.prod(kernel[:-1]), kernel[-1])
    after = to_numpy(model(x))
    assert np.max(np.abs(after - before)) <= RELATIVE * np.max(np.abs(before))
