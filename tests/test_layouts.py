"""keras_inits.model._layouts: the one table of layer kinds, read by every model-level function."""

from __future__ import annotations

import math
import re
import warnings

import keras
import numpy as np
import pytest
from helpers import assert_error, import_keras_hub, to_numpy

import keras_inits as ki
from keras_inits import _sampling
from keras_inits._base import derive_seed
from keras_inits.diagnostics import layer_stats
from keras_inits.model import Axis, LayerLayout, WeightLayout, layout

L = keras.layers


# layer_stats and fans read the same table: every kind, the same fans.

KINDS = [
    ("dense", (16,), lambda: L.Dense(8)),
    ("einsum", (5, 16), lambda: L.EinsumDense("abc,cde->abde", (None, 2, 8))),
    ("conv1d", (12, 4), lambda: L.Conv1D(8, 4, strides=2)),
    ("conv2d_grouped", (8, 8, 8), lambda: L.Conv2D(8, 3, strides=2, groups=4)),
    ("conv3d", (4, 4, 4, 2), lambda: L.Conv3D(4, 2)),
    ("conv1d_transpose", (6, 8), lambda: L.Conv1DTranspose(4, 4, strides=2)),
    ("conv2d_transpose", (8, 8, 32), lambda: L.Conv2DTranspose(8, 4, strides=2)),
    ("conv3d_transpose", (3, 3, 3, 4), lambda: L.Conv3DTranspose(2, 2, strides=2)),
    ("depthwise1d", (12, 4), lambda: L.DepthwiseConv1D(3, depth_multiplier=2)),
    ("depthwise2d", (8, 8, 8), lambda: L.DepthwiseConv2D(3)),
    ("separable1d", (12, 4), lambda: L.SeparableConv1D(8, 3, depth_multiplier=2)),
    ("separable2d", (8, 8, 4), lambda: L.SeparableConv2D(8, 3, strides=2)),
    ("lstm", (5, 6), lambda: L.LSTM(8)),
    ("gru", (5, 6), lambda: L.GRU(8)),
    ("simple_rnn", (5, 6), lambda: L.SimpleRNN(8)),
    ("bidirectional", (5, 6), lambda: L.Bidirectional(L.LSTM(4))),
    ("conv_lstm1d", (3, 8, 2), lambda: L.ConvLSTM1D(4, 3)),
    ("attention", (5, 16), None),
]


def _one_layer_model(input_shape, make):
    inputs = keras.Input(input_shape)
    if make is None:  # MultiHeadAttention takes the query and the value
        outputs = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(inputs, inputs)
    else:
        outputs = make()(inputs)
    return keras.Model(inputs, outputs)


def _stats(model, x):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = layer_stats(model, x)
    skips = [str(w.message) for w in caught if "layer_stats skipped" in str(w.message)]
    assert not skips, skips  # nothing skipped
    return records


@pytest.mark.parametrize(("input_shape", "make"), [k[1:] for k in KINDS], ids=[k[0] for k in KINDS])
def test_layer_stats_reports_the_fans_that_fans_gives(input_shape, make):
    model = _one_layer_model(input_shape, make)
    x = np.random.default_rng(0).normal(size=(2, *input_shape)).astype("float32")
    records = _stats(model, x)
    assert records
    by_path = {v.path: v for v in model.weights}
    for record in records:
        path = record.name if record.name in by_path else None
        if path is None:  # one kernel: the record is named after the layer
            (path,) = [p for p in by_path if p.startswith(record.name + "/") and "bias" not in p]
        assert (record.fan_in, record.fan_out) == ki.fans(model, by_path[path]), path


def test_layer_stats_true_fans_where_the_shape_fans_were_wrong():
    cases = [
        ((8, 8, 32), L.Conv2DTranspose(8, 4, strides=2), (128, 128)),  # the shape says (128, 512)
        ((8, 8, 8), L.DepthwiseConv2D(3), (9, 9)),  # the shape says (72, 9)
    ]
    for input_shape, layer, expected in cases:
        model = keras.Sequential([keras.Input(input_shape), layer])
        x = np.zeros((2, *input_shape), "float32")
        (record,) = _stats(model, x)
        assert (record.fan_in, record.fan_out) == expected == ki.fans(layer)


def test_embedding_record_of_a_lookup_model():
    model = keras.Sequential([keras.Input((3,), dtype="int32"), L.Embedding(10, 6)])
    (record,) = _stats(model, np.zeros((2, 3), "int32"))
    assert (record.fan_in, record.fan_out) == (1, 6)


# The table follows the class hierarchy and is open.


class _MyLSTMCell(L.LSTMCell):
    pass


def test_a_subclassed_lstm_cell_works_everywhere():
    inputs = keras.Input((5, 6))
    rnn = L.RNN(_MyLSTMCell(8, kernel_initializer="he_normal"), name="rnn")
    model = keras.Model(inputs, rnn(inputs))
    assert ki.fans(rnn, "recurrent_kernel") == (8, 8)
    assert ki.fans(rnn, "kernel") == (6, 8)  # per gate, not 4 x 8
    changes = {c.weight: c for c in ki.reinitialize(model, seed=0)}
    assert (changes["kernel"].fan_in, changes["kernel"].fan_out) == (6, 8)
    assert "kernel" in changes and "bias" not in changes  # zeros: kept
    records = _stats(model, np.ones((2, 5, 6), "float32"))
    assert [(r.fan_in, r.fan_out) for r in records] == [(6, 8), (8, 8)]
    assert layout(rnn.cell).weight("kernel").gates == 4


class _Scaled(keras.layers.Layer):
    """y = activation(x @ w), a weight named ``w``: no layer kind Keras knows."""

    def __init__(self, units, w_initializer="he_normal", activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.w_initializer = keras.initializers.get(w_initializer)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units), initializer=self.w_initializer, name="w"
        )

    def call(self, x):
        return self.activation(keras.ops.matmul(x, self.w))


class _RegisteredScaled(_Scaled):
    pass


def _scaled_layout(layer):
    fan_in, fan_out = tuple(layer.w.shape)
    axes = (Axis("input", fan_in, "in"), Axis("output", fan_out, "out"))
    kernel = WeightLayout(
        attribute="w",
        initializer="w_initializer",
        kind="kernel",
        axes=axes,
        fan_in=fan_in,
        fan_out=fan_out,
    )
    return LayerLayout(weights=(kernel,), pre_activation="w")


ki.register_layout(_RegisteredScaled, _scaled_layout)


def test_a_registered_layer_works_in_fans_reinitialize_lsuv_and_layer_stats():
    inputs = keras.Input((64,))
    layer = _RegisteredScaled(256, activation="relu", name="scaled")
    model = keras.Model(inputs, layer(inputs))
    assert ki.fans(layer, "w") == ki.fans(layer) == (64, 256)
    (change,) = ki.reinitialize(model, seed=0)
    assert (change.layer, change.weight, change.fan_in) == ("scaled", "w", 64)
    values = to_numpy(layer.w)
    # he_normal: a truncated normal of std sqrt(2 / 64); 16384 values, SE of the std < 1%.
    assert abs(values.std() / math.sqrt(2.0 / 64) - 1.0) < 0.05
    (record,) = _stats(model, np.ones((2, 64), "float32"))
    assert (record.fan_in, record.fan_out) == (64, 256)
    x = np.random.default_rng(0).normal(size=(64, 64)).astype("float32")
    (lsuv_record,) = ki.lsuv(model, x, seed=0, verbose=False)
    assert lsuv_record.weight == "w" and lsuv_record.converged
    # The roles answer what LoRA and muP ask.
    (weight,) = layout(layer).weights
    assert (weight.in_axes, weight.out_axes, weight.width_axes) == ((0,), (1,), (0, 1))


def test_register_layout_refuses_what_it_cannot_use():
    assert_error(
        lambda: ki.register_layout(int, _scaled_layout),
        TypeError,
        "`layer_class` must be a subclass of keras.layers.Layer. Received: layer_class=<class "
        "'int'>",
    )
    assert_error(
        lambda: ki.register_layout(_Scaled, "dense"),
        TypeError,
        "`function` must be a callable from a built layer to a LayerLayout. "
        "Received: function='dense'",
    )
    assert_error(
        lambda: Axis("width", 3, "in"),
        ValueError,
        "`role` must be one of ('channels', 'features', 'heads', 'input', 'output', "
        "'receptive_field', 'shared', 'vocabulary'). Received: role='width'",
    )


# Item 8: a weight the table cannot place is refused by name, never skipped.


class _AddWeightOnly(keras.layers.Layer):
    """A kernel made by add_weight with a string initializer and no *_initializer attribute."""

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], 4), initializer="sigmoid_normal", name="kernel"
        )

    def call(self, x):
        return keras.ops.matmul(x, self.kernel)


def _custom_model(layer_class):
    return keras.Sequential([keras.Input((8,)), L.Dense(8), layer_class(name="custom")])


def test_reinitialize_refuses_an_unknown_layer_by_name_and_changes_nothing():
    # Keras keeps no initializer on a variable once it holds values, so
    # the weight's own initializer cannot be read back: refused by name.
    first, second = _custom_model(_AddWeightOnly), _custom_model(_AddWeightOnly)
    before = [to_numpy(v).copy() for v in first.weights]
    message = (
        "keras_inits does not know the kernel layout of layer 'custom' of class "
        "_AddWeightOnly holding ('kernel',), so it cannot tell its true fans or which "
        "initializer drew its weights (it never guesses): describe it with "
        "keras_inits.register_layout(_AddWeightOnly, ...)."
    )
    for model in (first, second):
        assert_error(lambda m=model: ki.reinitialize(m, seed=0), ValueError, message, prefix=True)
    assert all(np.array_equal(a, to_numpy(v)) for a, v in zip(before, first.weights, strict=True))


def test_lsuv_refuses_an_unknown_layer_whose_weight_is_named_w():
    model = keras.Sequential([keras.Input((8,)), L.Dense(8), _Scaled(4, name="custom")])
    x = np.random.default_rng(0).normal(size=(16, 8)).astype("float32")
    assert_error(
        lambda: ki.lsuv(model, x, verbose=False),
        ValueError,
        "keras_inits does not know the kernel layout of layer 'custom' of class _Scaled "
        "holding ('w',)",
        prefix=True,
    )


def test_unknown_weights_are_reported_by_torch_defaults_and_layer_stats():
    model = _custom_model(_AddWeightOnly)
    changes = {c.path: c.rule for c in ki.torch_defaults(model, seed=0)}
    assert changes[model.layers[1].kernel.path] == "unchanged"
    with pytest.warns(
        UserWarning,
        match=r"layer_stats skipped: \S*custom/kernel \(shape \(8, 4\)\): layer 'custom'",
    ):
        records = layer_stats(model, np.ones((2, 8), "float32"))
    assert [r.name for r in records] == [model.layers[0].name]


# Item 9: a tied embedding keeps the logits' scale.


def _tied_model(vocabulary=2000, dim=64):
    """Tokens -> table lookup * sqrt(dim) -> RMS norm -> logits = h @ table^T (Gemma's head)."""
    initializer = keras.initializers.VarianceScaling(1.0, "fan_in", "untruncated_normal", seed=1)
    embedding = L.ReversibleEmbedding(
        vocabulary, dim, tie_weights=True, embeddings_initializer=initializer, name="embed"
    )
    tokens = keras.Input((16,), dtype="int32")
    h = embedding(tokens) * math.sqrt(dim)
    h = L.RMSNormalization()(h)
    return keras.Model(tokens, embedding(h, reverse=True)), embedding


@pytest.mark.skipif(
    not hasattr(L, "ReversibleEmbedding"), reason="this Keras has no ReversibleEmbedding"
)
def test_a_tied_embedding_keeps_the_logits_scale_and_says_so():
    model, embedding = _tied_model()
    tokens = np.random.default_rng(0).integers(0, 2000, size=(8, 16)).astype("int32")
    before = float(np.std(to_numpy(model(tokens))))
    assert layout(embedding).weight("embeddings").tied == "output_projection"
    (change,) = [c for c in ki.reinitialize(model, seed=0) if c.weight == "embeddings"]
    assert change.rule.startswith("tied (lookup and output projection): shape fans kept; ")
    assert (change.fan_in, change.fan_out) == (2000, 64)
    after = float(np.std(to_numpy(model(tokens))))
    # The same distribution (std 1 / sqrt(2000)) drawn afresh: the logits' std,
    # sqrt(64 / 2000) ~ 0.18, moves only by sampling error (the untied rule,
    # fans (1, 64), would make it sqrt(64) ~ 8: 45 times larger).
    assert abs(after / before - 1.0) < 0.2, (before, after)
    assert abs(change.new_std / change.old_std - 1.0) < 0.05
    assert ki.fans(embedding) == (1, 64)  # as a lookup; the report says what was drawn
    torch_change = next(c for c in ki.torch_defaults(model, seed=0) if c.weight == "embeddings")
    assert torch_change.rule == "tied (lookup and output projection): N(0, 1)"


@pytest.mark.skipif(
    not hasattr(L, "ReversibleEmbedding"), reason="this Keras has no ReversibleEmbedding"
)
def test_an_untied_reversible_embedding_has_a_projection_head():
    layer = L.ReversibleEmbedding(100, 8, tie_weights=False)
    layer.build((None, 3))
    assert ki.fans(layer, "reverse_embeddings") == (8, 100)
    assert layout(layer).weight("embeddings").tied is None


def test_a_tied_gemma_backbone_keeps_its_logits_scale():
    keras_hub = import_keras_hub()
    backbone = keras_hub.models.GemmaBackbone(
        vocabulary_size=32000,
        num_layers=1,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=64,
        intermediate_dim=128,
        head_dim=32,
    )
    inputs = {
        "token_ids": np.random.default_rng(0).integers(0, 32000, size=(2, 8)).astype("int32"),
        "padding_mask": np.ones((2, 8), "int32"),
    }

    def logits_std():
        hidden = backbone(inputs)
        return float(np.std(to_numpy(backbone.token_embedding(hidden, reverse=True))))

    before = logits_std()
    changes = ki.reinitialize(backbone, seed=0)
    assert any(c.rule.startswith("tied") for c in changes)
    assert abs(logits_std() / before - 1.0) < 0.5


# Roles for the coming work (muP's width axes, LoRA's matricization).


def test_axis_roles_of_an_attention_projection_and_a_convolution():
    inputs = keras.Input((5, 16))
    attention = L.MultiHeadAttention(num_heads=2, key_dim=8)
    attention(inputs, inputs)
    query = layout(attention._query_dense).weight("kernel")
    assert [a.role for a in query.axes] == ["input", "output", "output"]
    assert (query.in_axes, query.out_axes) == ((0,), (1, 2))
    output = layout(attention._output_dense).weight("kernel")
    assert (output.in_axes, output.out_axes) == ((0, 1), (2,))
    conv = L.Conv2D(8, 3)
    conv.build((None, 8, 8, 4))
    kernel = layout(conv).weight("kernel")
    assert [a.role for a in kernel.axes] == ["receptive_field"] * 2 + ["input", "output"]
    assert (kernel.in_axes, kernel.out_axes, kernel.width_axes) == ((0, 1, 2), (3,), (2, 3))
    bias = layout(conv).weight("bias")
    assert bias.kind == "bias" and bias.torch is not None and bias.torch.fan_in == 36


# Seeded values: the flat draws that spare JAX a compile per shape are the
# draws of the shape itself, on every backend.


def test_reinitialize_draws_are_the_direct_draws_of_each_shape():
    model = keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            L.Conv2D(5, 3, kernel_initializer="he_normal"),  # 135 values
            L.Flatten(),
            L.Dense(70000 // 80, kernel_initializer="glorot_uniform"),  # 80 x 875 > 2^16
            L.Dense(3, kernel_initializer="lecun_normal"),
        ]
    )
    changes = ki.reinitialize(model, seed=11)
    stddevs = {
        0: math.sqrt(2.0 / 27),  # he_normal: truncated, fan_in 27
        1: math.sqrt(2.0 / (80 + 875)),
        2: math.sqrt(1.0 / 875),
    }
    kinds = {0: "truncated_normal", 1: "uniform", 2: "truncated_normal"}
    for index, change in enumerate(changes):
        variable = next(v for v in model.weights if v.path == change.path)
        shape = tuple(variable.shape)
        seed = derive_seed(11, index)
        direct = _sampling.scaled(kinds[index], shape, stddevs[index], "float32", seed)
        np.testing.assert_array_equal(to_numpy(variable), to_numpy(direct))


def test_a_lora_enabled_dense_is_read_and_its_extra_weights_refused_by_name():
    dense = L.Dense(8, name="dense")
    model = keras.Sequential([keras.Input((4,)), dense])
    dense.enable_lora(2)
    assert ki.fans(dense) == (4, 8)  # the base kernel, found by its name
    before = [to_numpy(v).copy() for v in model.weights]
    assert_error(
        lambda: ki.reinitialize(model, seed=0),
        ValueError,
        "Layer 'dense' (Dense) holds weights ('lora_kernel_a', 'lora_kernel_b') that the table "
        "of layer kinds does not describe for its class (LoRA or quantization weights, or a "
        "subclass's own)",
        prefix=True,
    )
    assert all(np.array_equal(a, to_numpy(v)) for a, v in zip(before, model.weights, strict=True))


def test_the_docs_name_every_keras_kind_in_the_table():
    import pathlib

    from keras_inits.model import _layouts

    page = (pathlib.Path(__file__).parents[1] / "docs" / "model-level.md").read_text()
    spelled = {  # class names that the docs spell as users write them
        "ConvLSTMCell": "`ConvLSTM1D/2D/3D`",
        "GroupedQueryAttention": "`GroupQueryAttention`",
        "Model": "models",
    }
    for cls in _layouts._LAYOUTS:
        if cls.__module__.startswith("keras."):
            name = cls.__name__
            forms = {spelled.get(name, f"`{name}`")}
            family = re.fullmatch(r"(\w*?)[123]D(\w*)", name)
            if family:  # Conv2D in `Conv1D/2D/3D`, DepthwiseConv1D in `DepthwiseConv1D/2D`
                head, tail = family.groups()
                forms |= {f"`{head}1D/2D/3D{tail}`", f"`{head}1D/2D{tail}`"}
            assert any(form in page for form in forms), name


def test_lsuv_refuses_a_known_kernel_it_cannot_watch():
    inputs = keras.Input((3, 8, 2))
    model = keras.Model(inputs, L.ConvLSTM1D(4, 3, name="conv_lstm")(inputs))
    x = np.random.default_rng(0).normal(size=(4, 3, 8, 2)).astype("float32")
    with pytest.raises(ValueError, match=r"^`lsuv` cannot rescale layer 'conv_lstm_cell"):
        ki.lsuv(model, x, verbose=False)
