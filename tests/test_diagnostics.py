"""layer_stats against a hand computation; plot_stats and the compare API."""

import dataclasses
import sys
import warnings

import keras
import numpy as np
import pytest
from helpers import to_numpy

import keras_inits
from keras_inits._extras import MissingExtraError
from keras_inits.diagnostics import (
    CompareConfig,
    LayerStats,
    RunResult,
    build_mlp,
    format_results,
    format_stats,
    layer_stats,
    load_digits,
    plot_stats,
    run_compare,
)

X = np.array(
    [[0.5, -1.0, 2.0], [10.0, 0.0, -10.0], [-3.0, 4.0, 1.0], [0.0, 0.0, 0.0]], dtype="float32"
)
Y = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [-1.0, 2.0]], dtype="float32")
K1 = np.array([[0.5, -1.0], [1.0, 0.25], [-0.5, 2.0]], dtype="float32")
B1 = np.array([0.1, -0.2], dtype="float32")
K2 = np.array([[1.0, -1.0], [2.0, 0.5]], dtype="float32")
B2 = np.array([0.3, 0.0], dtype="float32")


def two_layer_model(activation="sigmoid"):
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(2, activation=activation, name="first"),
            keras.layers.Dense(2, name="second"),
        ]
    )
    model.set_weights([K1, B1, K2, B2])
    return model


NUMPY_ACTIVATIONS = {
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
}
NUMPY_DERIVATIVES = {
    "sigmoid": lambda h: h * (1.0 - h),
    "tanh": lambda h: 1.0 - h**2,
    "relu": lambda h: (h > 0).astype(np.float64),
}


def hand_computed(activation):
    """Forward and backward pass of the two-layer model with MSE, in float64 NumPy."""
    x = X.astype(np.float64)
    h = NUMPY_ACTIVATIONS[activation](x @ K1 + B1)
    out = h @ K2 + B2
    d_out = 2.0 * (out - Y) / out.size  # d mean((out - y)^2) / d out
    d_k2 = h.T @ d_out
    d_k1 = x.T @ ((d_out @ K2.T) * NUMPY_DERIVATIVES[activation](h))
    return h, out, d_k1, d_k2


def signal_std(values):
    return np.sqrt(values.var(axis=0).mean())


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_layer_stats_match_a_hand_computation(activation):
    h, out, d_k1, d_k2 = hand_computed(activation)
    first, second = layer_stats(two_layer_model(activation), X, Y, loss="mse")

    saturated = {
        "sigmoid": (h < 0.02) | (h > 0.98),
        "tanh": np.abs(h) > 0.98,
        "relu": h == 0.0,
    }[activation]
    expected_first = LayerStats(
        name="first",
        kernel_shape=(3, 2),
        fan_in=3,
        fan_out=2,
        weight_std=float(np.std(K1)),
        activation=activation,
        output_mean=float(h.mean()),
        output_std=float(h.std()),
        signal_std=float(signal_std(h)),
        saturation=float(saturated.mean()),
        grad_norm=float(np.linalg.norm(d_k1)),
    )
    expected_second = dataclasses.replace(
        expected_first,
        name="second",
        kernel_shape=(2, 2),
        fan_in=2,
        weight_std=float(np.std(K2)),
        activation=None,
        output_mean=float(out.mean()),
        output_std=float(out.std()),
        signal_std=float(signal_std(out)),
        saturation=None,
        grad_norm=float(np.linalg.norm(d_k2)),
    )
    for got, want in ((first, expected_first), (second, expected_second)):
        for field in dataclasses.fields(LayerStats):
            a, b = getattr(got, field.name), getattr(want, field.name)
            if isinstance(b, float):
                assert a == pytest.approx(b, rel=1e-5, abs=1e-7), (got.name, field.name)
            else:
                assert a == b, (got.name, field.name)


def test_saturation_counts_are_the_ones_chosen_by_hand():
    # z = x @ K1 + B1 is (-1.65, 3.05), (10.1, -30.2), (2.1, 5.8) and (0.1, -0.2) for
    # the four rows: sigmoid(10.1), sigmoid(-30.2) and sigmoid(5.8) are saturated.
    (first, _) = layer_stats(two_layer_model("sigmoid"), X)
    assert first.saturation == pytest.approx(3 / 8)
    assert first.grad_norm is None


def test_layer_stats_leaves_the_model_unchanged():
    model = two_layer_model()
    before = [w.copy() for w in model.get_weights()]
    layer_stats(model, X, Y, loss="mse")
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_frozen_kernel_has_no_gradient_norm():
    model = two_layer_model()
    model.layers[0].trainable = False
    first, second = layer_stats(model, X, Y, loss="mse")
    assert first.grad_norm is None
    assert second.grad_norm == pytest.approx(float(np.linalg.norm(hand_computed("sigmoid")[3])))


def test_compiled_loss_is_the_default():
    model = two_layer_model()
    model.compile(loss="mse")
    assert layer_stats(model, X, Y)[1].grad_norm == pytest.approx(
        float(np.linalg.norm(hand_computed("sigmoid")[3])), rel=1e-5
    )


def test_targets_without_a_loss_are_refused():
    with pytest.raises(ValueError, match=r"`loss` is needed .* Received: loss=None"):
        layer_stats(two_layer_model(), X, Y)


def test_a_model_without_kernels_is_refused():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Activation("relu")])
    with pytest.raises(ValueError, match="no layer with a kernel"):
        layer_stats(model, X)


def test_a_subclassed_model_is_refused_with_the_reason():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Subclassed()
    model(X)
    with pytest.raises(ValueError, match="functional or Sequential"):
        layer_stats(model, X)


def test_to_dict_and_table():
    records = layer_stats(two_layer_model(), X, Y, loss="mse")
    record = records[0].to_dict()
    assert record["kernel_shape"] == [3, 2]
    assert set(record) == {field.name for field in dataclasses.fields(LayerStats)}
    diverged = dataclasses.replace(records[0], output_std=float("nan")).to_dict()
    assert diverged["output_std"] is None
    table = format_stats(records).splitlines()
    assert len(table) == 3
    assert table[1].split()[:5] == ["first", "3x2", "3", "2", f"{np.std(K1):.4g}"]
    assert table[2].split()[5] == "-"  # the linear layer has no activation


def test_plot_stats_writes_a_png(tmp_path):
    records = layer_stats(two_layer_model(), X, Y, loss="mse")
    path = plot_stats({"a": records, "b": records}, tmp_path / "sub" / "plot.png", {"a": [2, 1]})
    with open(path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"


def every_kernel_kind_model():
    """Two inputs and every kind of layer that owns a kernel, in one functional model."""
    keras.utils.set_random_seed(0)
    values = keras.Input((6, 4), name="values")
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    x = keras.layers.Add()([values, keras.layers.Embedding(20, 4, name="emb")(tokens)])
    x = keras.layers.LSTM(5, return_sequences=True, name="lstm")(x)
    x = keras.layers.Bidirectional(
        keras.layers.GRU(3, return_sequences=True, name="gru"), name="bigru"
    )(x)
    x = keras.layers.SimpleRNN(4, return_sequences=True, name="rnn")(x)
    x = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, name="mha")(x, x)
    x = keras.layers.SeparableConv1D(4, 3, activation="relu", name="sep")(x)
    x = keras.layers.EinsumDense("abc,cd->abd", (4, 2), name="ein")(x)
    x = keras.layers.Dense(3, name="out")(keras.layers.Flatten()(x))
    return keras.Model([values, tokens], x)


def every_kernel_kind_data():
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(8, 6, 4)).astype("float32"), rng.integers(0, 20, (8, 6), dtype="int32")]
    return x, rng.integers(0, 3, size=(8,))


def no_skip_warnings(make):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = make()
    skips = [str(w.message) for w in caught if "layer_stats skipped" in str(w.message)]
    assert not skips, skips
    return result


def test_every_kernel_of_every_layer_kind_is_reported():
    model = every_kernel_kind_model()
    x, y = every_kernel_kind_data()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    records = no_skip_warnings(lambda: layer_stats(model, x, y, loss=loss))
    cells = {"lstm": "lstm/lstm_cell", "rnn": "rnn/simple_rnn_cell"}
    gru = ["bigru/forward_gru/gru_cell", "bigru/backward_gru/gru_cell"]
    assert [r.name for r in records] == [
        "emb",
        *[f"{cells['lstm']}/{k}" for k in ("kernel", "recurrent_kernel")],
        *[f"{cell}/{k}" for cell in gru for k in ("kernel", "recurrent_kernel")],
        *[f"{cells['rnn']}/{k}" for k in ("kernel", "recurrent_kernel")],
        *[f"mha/{part}/kernel" for part in ("query", "key", "value", "attention_output")],
        "sep/depthwise_kernel",
        "sep/pointwise_kernel",
        "ein",
        "out",
    ]
    by_name = {r.name: r for r in records}
    # EinsumDense fans come from its equation: query (4, heads 2, key_dim 3) is 4 -> 6.
    assert (by_name["mha/query/kernel"].fan_in, by_name["mha/query/kernel"].fan_out) == (4, 6)
    assert by_name["mha/attention_output/kernel"].kernel_shape == (2, 3, 4)
    assert (by_name["mha/attention_output/kernel"].fan_in, by_name["ein"].fan_out) == (6, 2)
    assert by_name["lstm/lstm_cell/recurrent_kernel"].kernel_shape == (5, 20)
    assert by_name["emb"].kernel_shape == (20, 4)
    weights = {w.path: to_numpy(w) for w in model.weights}
    for record in records:
        path = (
            record.name
            if "/" in record.name
            else f"{record.name}/" + ("embeddings" if record.name == "emb" else "kernel")
        )
        assert record.weight_std == pytest.approx(float(np.std(weights[path])), rel=1e-6)
        assert record.grad_norm is not None and record.grad_norm > 0, record.name
    # Records of one layer report that layer's output.
    assert by_name["sep/depthwise_kernel"].output_std == by_name["sep/pointwise_kernel"].output_std
    assert by_name["sep/pointwise_kernel"].activation == "relu"
    assert by_name["lstm/lstm_cell/kernel"].activation is None  # an LSTM's output is no tanh(xW)
    # The same inputs by name give the same numbers (without y: no gradient norms).
    by_dict = layer_stats(model, {"values": x[0], "tokens": x[1]})
    assert [r.output_std for r in by_dict] == [r.output_std for r in records]
    assert all(r.grad_norm is None for r in by_dict)


def test_two_input_model_matches_a_hand_computation():
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    left = keras.layers.Dense(2, activation="tanh", name="left")(a)
    right = keras.layers.Dense(2, name="right")(b)
    out = keras.layers.Dense(2, name="out")(keras.layers.Concatenate()([left, right]))
    model = keras.Model([a, b], out)
    rng = np.random.default_rng(1)
    xa, xb = rng.normal(size=(4, 3)).astype("float32"), rng.normal(size=(4, 2)).astype("float32")
    kl, bl, kr, br, ko, bo = model.get_weights()
    h_left = np.tanh(xa.astype(np.float64) @ kl + bl)
    h_right = xb.astype(np.float64) @ kr + br
    prediction = np.concatenate([h_left, h_right], axis=1) @ ko + bo
    d_out = 2.0 * (prediction - Y) / prediction.size  # MSE
    d_ko = np.concatenate([h_left, h_right], axis=1).T @ d_out
    d_kr = xb.T.astype(np.float64) @ (d_out @ ko.T)[:, 2:]
    records = layer_stats(model, [xa, xb], Y, loss="mse")
    assert [r.name for r in records] == ["left", "right", "out"]
    assert records[0].output_std == pytest.approx(np.std(h_left), rel=1e-5)
    assert records[2].output_mean == pytest.approx(np.mean(prediction), rel=1e-4, abs=1e-6)
    assert records[1].grad_norm == pytest.approx(np.linalg.norm(d_kr), rel=1e-4)
    assert records[2].grad_norm == pytest.approx(np.linalg.norm(d_ko), rel=1e-4)


def test_inputs_that_do_not_match_a_multi_input_model_are_refused():
    a, b = keras.Input((3,)), keras.Input((3,))
    model = keras.Model([a, b], keras.layers.Dense(1)(keras.layers.Add()([a, b])))
    with pytest.raises(ValueError) as info:
        layer_stats(model, X)
    assert str(info.value) == (
        "`x` must hold one array per model input, a list of 2 (in model.inputs order) or a "
        "dict by input name; got ndarray. Received: x of type ndarray"
    )


def test_what_cannot_be_reported_is_skipped_with_a_warning_naming_it():
    class Scaled(keras.layers.Layer):  # a rank-2 weight of a kind the table does not know
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 2), name="w")

        def call(self, x):
            return x @ self.w

    shared = keras.layers.Dense(2, name="shared")
    a, b = keras.Input((3,)), keras.Input((3,))
    joined = keras.layers.Concatenate()([shared(a), shared(b), Scaled(name="scaled")(a)])
    model = keras.Model([a, b], keras.layers.Dense(1, name="out")(joined))
    with pytest.warns(UserWarning) as caught:
        records = layer_stats(model, [X, X])
    assert [r.name for r in records] == ["out"]
    message = str(next(w.message for w in caught if "layer_stats skipped" in str(w.message)))
    assert (
        "scaled/w (shape (3, 2)): layer 'scaled' (Scaled) is a kind the table of layer kinds "
        "does not know (keras_inits.register_layout describes it)"
    ) in message
    assert "layer 'shared': called 2 times, so no single output" in message


def test_plot_stats_works_without_targets(tmp_path):
    records = layer_stats(two_layer_model(), X)  # no y: no gradient norms to plot
    assert all(r.grad_norm is None for r in records)
    path = plot_stats({"a": records}, tmp_path / "no_y.png")
    with open(path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_stats_refuses_an_image_format_before_drawing(tmp_path):
    records = layer_stats(two_layer_model(), X)
    with pytest.raises(ValueError, match=r"^`path` must end in an image format matplotlib"):
        plot_stats({"a": records}, tmp_path / "plot.xyz")
    assert not (tmp_path / "plot.xyz").exists()


def test_plot_stats_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    records = layer_stats(two_layer_model(), X)
    with pytest.raises(MissingExtraError, match=r"pip install 'keras-inits\[plot\]'"):
        plot_stats({"a": records}, tmp_path / "plot.png")


def test_digits_without_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'keras-inits\[compare\]'"):
        load_digits(0)


def test_digits_split_is_fixed_by_seed_and_standardized():
    (x_train, y_train), (x_val, y_val) = load_digits(3)
    assert x_train.shape == (1438, 64) and x_val.shape == (359, 64)
    (again, _), _ = load_digits(3)
    np.testing.assert_array_equal(x_train, again)
    assert not np.array_equal(x_train, load_digits(4)[0][0])
    varying = x_train.std(axis=0) > 0
    np.testing.assert_allclose(x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x_train.std(axis=0)[varying], 1.0, rtol=1e-4)
    assert set(np.unique(y_train)) == set(range(10)) and y_val.dtype == np.int32


def test_build_mlp_uses_the_initializer_for_every_hidden_layer():
    keras.utils.set_random_seed(0)
    model = build_mlp("sigmoid_normal", "sigmoid", depth=3, width=300)
    hidden = model.layers[:-1]
    assert [type(layer.kernel_initializer).__name__ for layer in hidden] == ["SigmoidNormal"] * 3
    stds = [float(np.std(to_numpy(layer.kernel))) for layer in hidden]
    # 300 x 300 values each: the std is within a few percent of 2 / sqrt(fan_in).
    assert stds[0] == pytest.approx(2 / np.sqrt(64), rel=0.03)
    assert stds[1] == pytest.approx(2 / np.sqrt(300), rel=0.03)
    kernels = [to_numpy(layer.kernel) for layer in hidden[1:]]
    assert not np.array_equal(kernels[0], kernels[1]), "hidden layers share a kernel"


def test_compare_config_refuses_bad_values():
    with pytest.raises(ValueError, match="Did you mean 'sigmoid_normal'"):
        CompareConfig(initializers=("sigmoid_normall",))
    with pytest.raises(ValueError, match=r"`depth` must be an int >= 1. Received: depth=0"):
        CompareConfig(depth=0)
    with pytest.raises(ValueError, match=r"`lr` must be a finite number > 0. Received: lr=-0.1"):
        CompareConfig(lr=-0.1)
    with pytest.raises(TypeError, match=r"`epochs` must be an int >= 1, not float"):
        CompareConfig(epochs=1.5)
    with pytest.raises(ValueError) as info:
        CompareConfig(activation="sigmoidd")
    assert str(info.value) == (
        "Unknown activation. Did you mean 'sigmoid'? keras.activations lists Keras's; a custom "
        "one needs keras.saving.register_keras_serializable. Received: activation='sigmoidd'"
    )
    with pytest.raises(ValueError, match=r"Received: initializers\[1\]='nope'$"):
        CompareConfig(initializers=("glorot_normal", "nope"))


@pytest.mark.slow
def test_run_compare_is_reproducible_and_reports_every_run():
    config = CompareConfig(
        initializers=("sigmoid_normal", "small_uniform"), depth=2, width=16, epochs=2
    )
    seen = []
    results = run_compare(config, on_epoch=lambda *args: seen.append(args[:3]))
    assert seen == [(0, "sigmoid_normal", 1), (0, "sigmoid_normal", 2),
                    (1, "small_uniform", 1), (1, "small_uniform", 2)]  # fmt: skip
    assert [r.initializer for r in results] == ["sigmoid_normal", "small_uniform"]
    for result in results:
        assert len(result.loss_curve) == 2 and len(result.layers) == 3
        assert 0.0 <= result.val_accuracy <= 1.0
    again = run_compare(dataclasses.replace(config, initializers=("sigmoid_normal",)))
    assert again[0].layers == results[0].layers
    assert again[0].loss_curve == pytest.approx(results[0].loss_curve, rel=1e-4)
    lines = format_results(results).splitlines()
    assert lines[1].startswith("sigmoid_normal") and lines[2].startswith("small_uniform")


def test_compare_config_keeps_instances_as_configs():
    config = CompareConfig(initializers=(keras_inits.SigmoidNormal(seed=3), "glorot_normal"))
    first, second = config.initializers
    assert first["registered_name"] == "keras_inits>SigmoidNormal" and second == "glorot_normal"
    assert RunResult(first, 0.0, 0.0, 0.0, [0.0], []).label == "SigmoidNormal"
    with pytest.raises(ValueError, match=r"`seed` must be an int in \[0, 2\*\*32\)"):
        CompareConfig(seed=-1)
    with pytest.raises(ValueError, match="`momentum` must be a finite number >= 0"):
        CompareConfig(momentum=-0.5)
