"""flax_defaults: each layer kind of its table against Flax's own draw.

For every Keras layer kind that has a Flax rule in the table of layer kinds,
the Flax module of the same shape is built (nnx, or linen where the two
differ) and its parameters drawn; our re-initialized weight and Flax's are
held to one law by a two-sample KS test at 1e-4 (random draws) or compared
exactly (constants). Orthogonal kernels are also checked block by block:
per gate (LSTMCell) or whole (nnx.GRUCell, nnx.OptimizedLSTMCell), which the
entries' law alone tells apart too (a unit vector of R^64 has entries of
std 1/8, one of R^256 of std 1/16).

Flax is in the `test` extra; it draws with JAX, which runs beside any Keras
backend, so this file runs on all three.
"""

import keras
import numpy as np
import pytest
from helpers import KS_ALPHA, assert_error, to_numpy
from scipy import stats

import keras_inits as ki
from keras_inits.model._layouts import _LAYOUTS, FlaxRule, layout

nnx = pytest.importorskip("flax.nnx")
linen = pytest.importorskip("flax.linen")
jax = pytest.importorskip("jax")


def rngs(seed=0):
    return nnx.Rngs(seed)


def flax_value(param):
    return np.asarray(param[...] if hasattr(param, "__getitem__") else param.value, np.float64)


def same_law(ours, theirs):
    ours, theirs = np.ravel(ours), np.ravel(theirs)
    assert ours.size >= 9000 and theirs.size >= 9000, (ours.size, theirs.size)
    p_value = stats.ks_2samp(ours, theirs).pvalue
    assert p_value > KS_ALPHA, f"two-sample KS rejects: p={p_value:.2e}"


def build(layer, input_shape):
    model = keras.Sequential([keras.Input(input_shape), layer])
    ki.flax_defaults(model, seed=11)
    return layer


def weight(layer, name):
    return to_numpy(getattr(layer, name))


# Random kernels: (case, Keras layer, input shape, attribute, Flax's draw).
def _linear():
    return flax_value(nnx.Linear(256, 128, rngs=rngs()).kernel)


def _conv_groups():
    conv = nnx.Conv(32, 64, kernel_size=(3, 3), feature_group_count=2, rngs=rngs())
    return flax_value(conv.kernel)  # (3, 3, 16, 64): fan_in 144


def _conv_transpose():
    return flax_value(nnx.ConvTranspose(64, 48, kernel_size=(3, 3), rngs=rngs()).kernel)


def _depthwise():
    conv = nnx.Conv(512, 1024, kernel_size=(3, 3), feature_group_count=512, rngs=rngs())
    return flax_value(conv.kernel)  # (3, 3, 1, 1024): fan_in 9


def _embed():
    return flax_value(nnx.Embed(1000, 64, rngs=rngs()).embedding)


def _attention(name):
    def draw():
        mha = nnx.MultiHeadAttention(
            num_heads=4,
            in_features=96,
            qkv_features=128,
            out_features=96,
            decode=False,
            rngs=rngs(),
        )
        return flax_value(getattr(mha, name).kernel)

    return draw


def _linear_general():
    dense = nnx.LinearGeneral((48, 4), (8, 16), axis=(-2, -1), rngs=rngs())
    return flax_value(dense.kernel)  # flattened (192, 128): fan_in 192


RANDOM = [
    ("Dense", lambda: keras.layers.Dense(128), (256,), "kernel", _linear),
    (
        "Conv2D(groups=2)",
        lambda: keras.layers.Conv2D(64, 3, groups=2),
        (9, 9, 32),
        "kernel",
        _conv_groups,
    ),
    (
        "Conv2DTranspose(strides=2)",
        lambda: keras.layers.Conv2DTranspose(48, 3, strides=2),
        (5, 5, 64),
        "kernel",
        _conv_transpose,
    ),
    (
        "DepthwiseConv2D",
        lambda: keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
        (5, 5, 512),
        "kernel",
        _depthwise,
    ),
    ("Embedding", lambda: keras.layers.Embedding(1000, 64), (7,), "embeddings", _embed),
    (
        "EinsumDense",
        lambda: keras.layers.EinsumDense("abcd,cdef->abef", (3, 8, 16)),
        (3, 48, 4),
        "kernel",
        _linear_general,
    ),
]


@pytest.mark.parametrize(
    "case, make, input_shape, attribute, theirs", RANDOM, ids=[c[0] for c in RANDOM]
)
def test_random_kernels_match_flax(case, make, input_shape, attribute, theirs):
    layer = build(make(), input_shape)
    same_law(weight(layer, attribute), theirs())


def test_separable_conv_matches_two_flax_convs():
    layer = build(keras.layers.SeparableConv2D(64, 3, depth_multiplier=2), (5, 5, 512))
    same_law(weight(layer, "depthwise_kernel"), _depthwise())
    pointwise = nnx.Conv(1024, 64, kernel_size=(1, 1), rngs=rngs()).kernel  # fan_in 1024
    same_law(weight(layer, "pointwise_kernel"), flax_value(pointwise))
    assert not np.any(weight(layer, "bias"))


def test_multi_head_attention_matches_flax():
    mha = keras.layers.MultiHeadAttention(num_heads=4, key_dim=32)
    x = keras.Input((5, 96))
    model = keras.Model(x, mha(x, x))
    ki.flax_defaults(model, seed=12)
    for ours, theirs in [
        (mha.query_dense, "query"),
        (mha.key_dense, "key"),
        (mha.value_dense, "value"),
        (mha.output_dense, "out"),
    ]:
        kernel = to_numpy(ours.kernel)
        flax_kernel = _attention(theirs)()
        assert kernel.shape == flax_kernel.shape
        same_law(kernel, flax_kernel)
        assert not np.any(to_numpy(ours.bias))


def _gate_blocks(kernel, blocks):
    return np.split(kernel.reshape(-1, kernel.shape[-1]), blocks, axis=-1)


def _assert_blocks_orthogonal(kernel, blocks):
    for block in _gate_blocks(kernel, blocks):
        rows, cols = block.shape
        product = block.T @ block if rows >= cols else block @ block.T
        np.testing.assert_allclose(product, np.eye(min(rows, cols)), atol=1e-5)


@pytest.mark.parametrize(
    "api, optimized, blocks",
    [("nnx", False, 4), ("nnx", True, 1), ("linen", False, 4), ("linen", True, 4)],
)
def test_lstm_matches_flax_cells(api, optimized, blocks):
    lstm = keras.layers.LSTM(64)
    model = keras.Sequential([keras.Input((5, 160)), lstm])
    report = ki.flax_defaults(model, seed=13, api=api, optimized_lstm=optimized)
    cell = lstm.cell
    recurrent = weight(cell, "recurrent_kernel")
    _assert_blocks_orthogonal(recurrent, blocks)
    if api == "nnx" and not optimized:
        flax_cell = nnx.LSTMCell(160, 64, rngs=rngs())
        theirs = np.concatenate(
            [flax_value(getattr(flax_cell, g).kernel) for g in ("hi", "hf", "hg", "ho")], axis=1
        )
        kernel = np.concatenate(
            [flax_value(getattr(flax_cell, g).kernel) for g in ("ii", "if_", "ig", "io")], axis=1
        )
    elif api == "nnx":
        flax_cell = nnx.OptimizedLSTMCell(160, 64, rngs=rngs())
        theirs, kernel = flax_value(flax_cell.dense_h.kernel), flax_value(flax_cell.dense_i.kernel)
    else:
        module = linen.OptimizedLSTMCell(64) if optimized else linen.LSTMCell(64)
        carry = module.initialize_carry(jax.random.key(1), (1, 160))
        params = module.init(jax.random.key(0), carry, np.zeros((1, 160), np.float32))["params"]
        theirs = np.concatenate(
            [np.asarray(params[g]["kernel"]) for g in ("hi", "hf", "hg", "ho")], axis=1
        )
        kernel = np.concatenate(
            [np.asarray(params[g]["kernel"]) for g in ("ii", "if", "ig", "io")], axis=1
        )
    _assert_blocks_orthogonal(theirs, blocks)
    same_law(recurrent, theirs)
    same_law(weight(cell, "kernel"), kernel)
    assert not np.any(weight(cell, "bias"))  # Flax: zeros, no forget-gate 1
    rules = {change.weight: change.rule for change in report}
    assert rules["recurrent_kernel"] == (
        "orthogonal, one per gate (4 blocks)" if blocks == 4 else "orthogonal"
    )


@pytest.mark.parametrize("api, blocks", [("nnx", 1), ("linen", 3)])
def test_gru_matches_flax_cells(api, blocks):
    gru = keras.layers.GRU(64)
    model = keras.Sequential([keras.Input((5, 160)), gru])
    ki.flax_defaults(model, seed=14, api=api)
    recurrent = weight(gru.cell, "recurrent_kernel")
    _assert_blocks_orthogonal(recurrent, blocks)
    if api == "nnx":
        flax_cell = nnx.GRUCell(160, 64, rngs=rngs())
        theirs, kernel = flax_value(flax_cell.dense_h.kernel), flax_value(flax_cell.dense_i.kernel)
    else:
        module = linen.GRUCell(64)
        carry = module.initialize_carry(jax.random.key(1), (1, 160))
        params = module.init(jax.random.key(0), carry, np.zeros((1, 160), np.float32))["params"]
        theirs = np.concatenate(
            [np.asarray(params[g]["kernel"]) for g in ("hr", "hz", "hn")], axis=1
        )
        kernel = np.concatenate(
            [np.asarray(params[g]["kernel"]) for g in ("ir", "iz", "in")], axis=1
        )
    _assert_blocks_orthogonal(theirs, blocks)
    same_law(recurrent, theirs)
    same_law(weight(gru.cell, "kernel"), kernel)
    assert not np.any(weight(gru.cell, "bias"))


def test_simple_rnn_matches_flax_simple_cell():
    rnn = keras.layers.SimpleRNN(128)
    build(rnn, (5, 96))
    flax_cell = nnx.SimpleCell(96, 128, rngs=rngs())
    recurrent = weight(rnn.cell, "recurrent_kernel")
    _assert_blocks_orthogonal(recurrent, 1)
    same_law(recurrent, flax_value(flax_cell.dense_h.kernel))
    same_law(weight(rnn.cell, "kernel"), flax_value(flax_cell.dense_i.kernel))


# Constants: exactly Flax's.


def _flax_constants():
    batch = nnx.BatchNorm(32, rngs=rngs())
    layer = nnx.LayerNorm(32, rngs=rngs())
    group = nnx.GroupNorm(32, num_groups=4, rngs=rngs())
    rms = nnx.RMSNorm(32, rngs=rngs())
    return {
        "BatchNormalization": {
            "gamma": flax_value(batch.scale),
            "beta": flax_value(batch.bias),
            "moving_mean": flax_value(batch.mean),
            "moving_variance": flax_value(batch.var),
        },
        "LayerNormalization": {"gamma": flax_value(layer.scale), "beta": flax_value(layer.bias)},
        "GroupNormalization": {"gamma": flax_value(group.scale), "beta": flax_value(group.bias)},
        "RMSNormalization": {"scale": flax_value(rms.scale)},
        "PReLU": {"alpha": np.full(32, flax_value(nnx.PReLU().negative_slope))},
        "Dense": {"bias": flax_value(nnx.Linear(8, 32, rngs=rngs()).bias)},
    }


CONSTANT_LAYERS = {
    "BatchNormalization": lambda: keras.layers.BatchNormalization(),
    "LayerNormalization": lambda: keras.layers.LayerNormalization(),
    "GroupNormalization": lambda: keras.layers.GroupNormalization(groups=4),
    "RMSNormalization": lambda: keras.layers.RMSNormalization(),
    "PReLU": lambda: keras.layers.PReLU(),
    "Dense": lambda: keras.layers.Dense(32),
}


def test_constants_match_flax_exactly():
    expected = _flax_constants()
    for kind, make in CONSTANT_LAYERS.items():
        if not hasattr(keras.layers, kind):
            continue
        layer = make()
        model = keras.Sequential([keras.Input((32,)), layer])
        for variable in model.weights:  # Keras's own defaults differ (PReLU 0, LSTM forget 1)
            variable.assign(keras.ops.full(variable.shape, 7.0, variable.dtype))
        ki.flax_defaults(model, seed=0)
        for name, theirs in expected[kind].items():
            np.testing.assert_array_equal(weight(layer, name), theirs, err_msg=f"{kind}.{name}")


# Every kind of the table is either tested above against Flax or has no Flax rule:
# a kind added to the table must be placed in one of the two.
TESTED = {
    "Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
    "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
    "SeparableConv2D", "Embedding", "EinsumDense", "LSTMCell", "GRUCell", "SimpleRNNCell",
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization",
    "PReLU", "MultiHeadAttention", "GroupedQueryAttention",
}  # fmt: skip
NO_FLAX_RULE = {
    "Attention", "AdditiveAttention", "Normalization", "SpectralNormalization",
    "Bidirectional", "TimeDistributed", "RNN", "StackedRNNCells", "Model", "ConvLSTMCell",
    "LayerScale",  # keras.applications' ConvNeXt: a per-channel scale Flax has no layer for
    "PositionEmbedding",  # keras-hub's learned positions: each Flax model draws its own
    "LlamaLayerNorm",  # keras-hub's Llama RMS norm: each Flax port draws its own (ones)
    "LlamaAttention", "CachedGemmaAttention",  # keras-hub's: their EinsumDense children's rules
}  # fmt: skip


def test_every_kind_of_the_table_is_tested_or_has_no_flax_rule():
    # Keras's and keras-hub's kinds; other tests register layers of their own.
    kinds = {
        cls.__name__ for cls in _LAYOUTS if cls.__module__.startswith(("keras.", "keras_hub."))
    }
    assert kinds <= TESTED | NO_FLAX_RULE, kinds - TESTED - NO_FLAX_RULE
    lstm = keras.layers.ConvLSTM2D(4, 3)
    lstm.build((None, 2, 6, 6, 3))
    assert all(w.flax is None for w in layout(lstm.cell).weights)


def test_unknown_rule_weights_are_reported_unchanged_and_errors_change_nothing():
    attention = keras.layers.Attention(use_scale=True)
    q = keras.Input((4, 8))
    dense = keras.layers.Dense(8)
    model = keras.Model(q, attention([dense(q), q]))
    before = weight(attention, "scale").copy()
    report = ki.flax_defaults(model, seed=1)
    assert {c.weight: c.rule for c in report}["scale"] == "unchanged"
    np.testing.assert_array_equal(weight(attention, "scale"), before)
    kernel = weight(dense, "kernel").copy()
    assert_error(
        lambda: ki.flax_defaults(model, api="haiku"),
        ValueError,
        "`api` must be one of ('linen', 'nnx'). Received: api='haiku'",
    )
    assert_error(
        lambda: ki.flax_defaults(model, optimized_lstm=1),
        TypeError,
        "`optimized_lstm` must be a bool. Received: optimized_lstm=1",
    )
    np.testing.assert_array_equal(weight(dense, "kernel"), kernel)


def test_seed_reproducible_and_rule_in_table():
    def kernel(seed):
        layer = build_seeded(seed)
        return weight(layer, "kernel")

    np.testing.assert_array_equal(kernel(3), kernel(3))
    assert not np.array_equal(kernel(3), kernel(4))
    dense = keras.layers.Dense(4)
    dense.build((None, 10))
    assert layout(dense).weight("kernel").flax == FlaxRule(kind="lecun_normal", fan_in=10)


def build_seeded(seed):
    layer = keras.layers.Dense(64)
    model = keras.Sequential([keras.Input((32,)), layer])
    ki.flax_defaults(model, seed=seed)
    return layer
