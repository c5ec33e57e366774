"""residual_branches and residual: the branches read from the graph, each scheme's numbers."""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pytest
from helpers import assert_error, import_keras_hub, std_tolerance, to_numpy
from scipy import stats

import keras_inits as ki
from keras_inits._compat import train_on_batch
from keras_inits.model import BlockBranch, register_block

L = keras.layers

# The std of N(0, 1) cut to (-3, 3): trunc_normal_(std=s, a=-3 s, b=3 s) has std 0.98659 s.
TRUNCATED_3 = float(stats.truncnorm(-3, 3).std())


def _mlp(depth, width=32, *, norm=False, mode="plus", kernel_initializer="glorot_uniform"):
    """x_{i+1} = x_i + W2 relu(W1 x_i) (+ a BatchNormalization), summed three ways."""
    x = keras.Input((width,))
    h = x
    for _ in range(depth):
        inner = L.Dense(width, activation="relu", kernel_initializer=kernel_initializer)(h)
        branch = L.Dense(width, kernel_initializer=kernel_initializer)(inner)
        if norm:
            branch = L.BatchNormalization()(branch)
        if mode == "plus":
            h = h + branch
        elif mode == "ops":
            h = keras.ops.add(branch, h)
        else:
            h = L.Add()([h, branch])
    return keras.Model(x, h)


def _cnn(depth, channels=8, *, norm=False):
    """A residual CNN: x + conv(relu(conv(x))) (+ BN), on 8x8 maps."""
    x = keras.Input((8, 8, channels))
    h = x
    for _ in range(depth):
        branch = L.Conv2D(channels, 3, padding="same", activation="relu")(h)
        branch = L.Conv2D(channels, 3, padding="same")(branch)
        if norm:
            branch = L.BatchNormalization()(branch)
        h = L.Add()([h, branch])
    return keras.Model(x, h)


def _values(model):
    return [to_numpy(v) for v in model.weights]


def _same(before, model):
    return all(np.array_equal(a, b) for a, b in zip(before, _values(model), strict=True))


# residual_branches


@pytest.mark.parametrize("mode", ["plus", "ops", "layer"])
def test_branches_are_read_from_each_kind_of_sum(mode):
    model = _mlp(3, mode=mode)
    branches = ki.residual_branches(model)
    dense = [layer for layer in model.layers if isinstance(layer, L.Dense)]
    assert [b.index for b in branches] == [0, 1, 2]
    assert {b.count for b in branches} == {3}
    assert {b.shortcut for b in branches} == {"identity"}
    # The end is the second Dense of each block (built first: the outer call's layer).
    ends = [layer.kernel.path for layer in dense if layer.activation is keras.activations.linear]
    assert [b.ends for b in branches] == [(path,) for path in ends]
    assert all(len(b.kernels) == 2 and b.kernels[-1] == b.ends[0] for b in branches)
    assert branches[0].skip == model.layers[0].name  # the input
    assert [b.skip for b in branches[1:]] == [b.merge for b in branches[:-1]]


def test_branches_norm_projection_and_pooling_shortcuts():
    x = keras.Input((8, 8, 4))
    # ResNet's projection block: the 1x1 convolution is the shortcut.
    shortcut = L.BatchNormalization()(L.Conv2D(8, 1, name="proj")(x))
    branch = L.Conv2D(8, 3, padding="same", activation="relu", name="a")(x)
    branch = L.BatchNormalization(name="bn_b")(L.Conv2D(8, 3, padding="same", name="b")(branch))
    h = L.Add(name="sum1")([shortcut, branch])
    # A strided block whose shortcut is a pooling (ResNetV2).
    pooled = L.MaxPooling2D(1, strides=2)(h)
    branch = L.Conv2D(8, 3, strides=2, padding="same", name="c")(h)
    h = L.Add(name="sum2")([pooled, branch])
    model = keras.Model(x, h)
    first, second = ki.residual_branches(model)
    assert (first.shortcut, first.merge, first.ends) == ("projection", "sum1", ("b/kernel",))
    assert first.kernels == ("a/kernel", "b/kernel")
    assert first.norm == "bn_b/gamma"
    assert (second.shortcut, second.ends, second.norm) == ("pooling", ("c/kernel",), None)


def test_branches_in_nested_and_sequential_models_and_post_norm():
    def block(width, name):
        x = keras.Input((width,))
        return keras.Model(x, x + L.Dense(width)(L.Dense(width, activation="relu")(x)), name=name)

    sequential = keras.Sequential([keras.Input((8,)), block(8, "b0"), L.ReLU(), block(8, "b1")])
    branches = ki.residual_branches(sequential)
    assert [b.count for b in branches] == [2, 2]
    blocks = [layer for layer in sequential.layers if isinstance(layer, keras.Model)]
    assert [b.ends for b in branches] == [(block.layers[2].kernel.path,) for block in blocks]
    x = keras.Input((8,))
    h = L.LayerNormalization(name="post")(x + L.Dense(8, name="out")(x))  # post-LN
    outer = keras.Model(x, block(8, "inner")(h))
    found = ki.residual_branches(outer)
    assert [b.post_norm for b in found] == [True, False]
    assert found[0].ends == ("out/kernel",)


def test_branch_ends_at_an_attentions_output_projection():
    x = keras.Input((4, 16))
    attention = L.MultiHeadAttention(2, 8, name="mha")
    h = x + attention(x, x)
    model = keras.Model(x, h)
    (branch,) = ki.residual_branches(model)
    assert branch.ends == (attention._output_dense.kernel.path,)
    assert len(branch.kernels) == 4  # query, key, value, output


def test_branches_table_is_a_dry_run(capsys):
    model = _mlp(2)
    before = _values(model)
    records = ki.residual_branches(model, print_table=True)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == [
        "#",
        "block",
        "merge",
        "skip",
        "shortcut",
        "kernels",
        "ends",
        "norm",
    ]
    assert len(printed) == 1 + len(records)
    assert records[1].ends[0] in printed[2]
    assert _same(before, model)


def test_branches_refuse_what_they_cannot_read():
    x = keras.Input((8,))
    two = L.Dense(8)(L.Dense(8)(x)) + L.Dense(8)(L.Dense(8)(x))  # two weighted paths
    model = keras.Model(x, two)
    add = next(op for op in model.operations if "add" in op.name)
    message = (
        f"The residual detector cannot read layer {add.name!r} (Add): neither input is the "
        "other's ancestor and both paths hold weighted layers (2 and 2), so it cannot tell "
        "the skip from the branch. It never guesses"
    )
    assert_error(lambda: ki.residual_branches(model), ValueError, message, prefix=True)
    gate = L.Multiply(name="gate")([L.Dense(8)(x), L.Dense(8, activation="sigmoid")(x)])
    gated = keras.Model(x, x + gate)
    assert_error(
        lambda: ki.residual_branches(gated),
        ValueError,
        "The residual detector cannot read layer 'gate' (Multiply): it combines several inputs "
        "after the last weights of the branch summed at",
        prefix=True,
    )

    class Hidden(keras.layers.Layer):  # sums inside its own call
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = L.Dense(8)
            self.outer = L.Dense(8)

        def call(self, x):
            return x + self.outer(self.inner(x))

    hidden = keras.Model(x, Hidden(name="hidden")(x))
    assert_error(
        lambda: ki.residual_branches(hidden),
        ValueError,
        "The residual detector cannot read layer 'hidden' (Hidden): a layer of a class it does "
        "not know, holding weights. It never guesses: describe the block with "
        "keras_inits.model.register_block(Hidden, ...) or pass `branches=`. "
        "Received: layer=Hidden",
    )

    class Subclassed(keras.Model):  # a model whose call the graph does not show
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = L.Dense(8)

        def call(self, x):
            return x + self.dense(x)

    nested = keras.Model(x, Subclassed(name="sub")(x))
    for model in (nested, nested.layers[-1]):
        assert_error(
            lambda m=model: ki.residual_branches(m),
            ValueError,
            "The residual detector cannot read layer 'sub' (Subclassed)",
            prefix=True,
        )
    register_block(Hidden, lambda b: [BlockBranch(end=b.outer, layers=(b.inner, b.outer))])
    (branch,) = ki.residual_branches(hidden)
    assert (branch.shortcut, branch.merge, len(branch.kernels)) == ("block", "hidden", 2)


def test_branches_override():
    model = _mlp(2)
    dense = [layer for layer in model.layers if isinstance(layer, L.Dense)]
    given = ki.residual_branches(model, branches=[[dense[1], dense[0].name], dense[2]])
    assert [b.shortcut for b in given] == ["given", "given"]
    assert given[0].ends == (dense[0].kernel.path,)
    assert given[0].kernels == (dense[1].kernel.path, dense[0].kernel.path)
    assert_error(
        lambda: ki.residual_branches(model, branches=["nope"]),
        ValueError,
        "`branches` names a layer 'nope', but the model has no layer of that name. "
        "Received: branches=[..., 'nope', ...]",
    )
    assert_error(
        lambda: ki.residual_branches(model, branches="dense"),
        TypeError,
        "`branches` must be a list of branches",
        prefix=True,
    )


# residual: each scheme's numbers (golden values from the reference code)


def _end_values(model, report):
    paths = {change.path for change in report}
    return np.concatenate([to_numpy(v).ravel() for v in model.weights if v.path in paths]), paths


def _transformer_mlp(blocks, width, initializer):
    """nanoGPT's shape without attention: 2 branches per block, c_fc then c_proj."""
    x = keras.Input((width,))
    h = x
    for _ in range(2 * blocks):
        fc = L.Dense(4 * width, activation="gelu", kernel_initializer=initializer)(h)
        h = h + L.Dense(width, kernel_initializer=initializer)(fc)
    return keras.Model(x, h)


def test_gpt2_golden_value_nanogpt_c_proj():
    # nanoGPT: every Linear N(0, 0.02); c_proj N(0, 0.02 / sqrt(2 n_layer)).
    n_layer, width = 6, 64
    model = _transformer_mlp(n_layer, width, keras.initializers.RandomNormal(stddev=0.02))
    report = ki.residual(model, "gpt2", seed=0)
    golden = 0.02 / math.sqrt(2 * n_layer)
    assert len(report) == 2 * n_layer
    assert all(abs(0.02 * c.factor - golden) <= 1e-12 for c in report)
    values, _ = _end_values(model, report)
    assert abs(values.std() - golden) <= std_tolerance(golden, values.size)
    assert abs(values.std() - golden) <= 0.01 * golden * 5  # and close to the golden value


def test_megatron_and_mitchell_golden_values():
    n_layer, width = 6, 64
    model = _transformer_mlp(n_layer, width, "glorot_uniform")
    before = {v.path: to_numpy(v) for v in model.weights}
    report = ki.residual(model, "megatron", seed=0)
    golden = 0.02 / math.sqrt(2.0 * n_layer)  # OLMo full_megatron: init_std / sqrt(2 n_layers)
    assert all(c.target_std == pytest.approx(golden, rel=1e-12) for c in report)
    values, paths = _end_values(model, report)
    expected = golden * TRUNCATED_3
    assert abs(values.std() - expected) <= std_tolerance(expected, values.size, -0.0)
    assert np.max(np.abs(values)) <= 3 * golden * (1 + 1e-6)
    untouched = [v for v in model.weights if v.path not in paths]
    assert all(np.array_equal(to_numpy(v), before[v.path]) for v in untouched)
    # OLMo mitchell: 1 / sqrt(2 d (l + 1)), d the fan_in (4 width for c_proj), l the block.
    report = ki.residual(model, "mitchell", seed=1)
    for change in report:
        golden = 1.0 / math.sqrt(2 * 4 * width * (change.branch + 1))
        assert change.target_std == pytest.approx(golden, rel=1e-12)
    last = next(v for v in model.weights if v.path == report[-1].path)
    values = to_numpy(last).ravel()
    expected = report[-1].target_std * TRUNCATED_3
    assert abs(values.std() - expected) <= std_tolerance(expected, values.size)


def test_deepnorm_golden_value_torchscale():
    # torchscale (encoder, deepnorm): N layers, every fc1, fc2, v_proj, out_proj
    # divided by (8 N)^(1/4); q_proj and k_proj kept.
    blocks, width = 6, 32
    x = keras.Input((4, width))
    h = x
    layers = []
    for _ in range(blocks):
        attention = L.MultiHeadAttention(4, width // 4)
        h = L.LayerNormalization()(h + attention(h, h))
        fc1 = L.Dense(2 * width, activation="relu")
        fc2 = L.Dense(width)
        h = L.LayerNormalization()(h + fc2(fc1(h)))
        layers.append((attention, fc1, fc2))
    model = keras.Model(x, h)
    keys = {a._key_dense.kernel.path: to_numpy(a._key_dense.kernel) for a, _, _ in layers}
    report = ki.residual(model, "deepnorm", seed=0)
    golden = (8.0 * blocks) ** -0.25
    assert all(c.factor == pytest.approx(golden, rel=1e-12) for c in report)
    changed = {c.path for c in report}
    assert not changed & set(keys)
    assert all(
        np.array_equal(to_numpy(a._key_dense.kernel), keys[a._key_dense.kernel.path])
        for a, _, _ in layers
    )
    assert len(changed) == blocks * (2 + 2)  # value, output, fc1, fc2
    values = np.concatenate([to_numpy(fc2.kernel).ravel() for _, _, fc2 in layers])
    own = math.sqrt(2.0 / (3 * width))  # glorot_uniform (2 width, width)
    assert abs(values.std() - golden * own) <= std_tolerance(golden * own, values.size, -1.2)
    assert "alpha = (2N)^(1/4) = " in report[0].rule


@pytest.mark.parametrize("m", [2, 3])
def test_fixup_golden_value_zhang(m):
    # Fixup's reference ResNet (m = 2): conv1 ~ He x L^(-1/2), conv2 = 0; the
    # bottleneck (m = 3): L^(-1/4).
    depth, channels = 8, 16
    x = keras.Input((8, 8, channels))
    h = x
    for _ in range(depth):
        branch = h
        for i in range(m):
            last = i == m - 1
            branch = L.Conv2D(
                channels,
                3,
                padding="same",
                kernel_initializer="he_normal",
                activation=None if last else "relu",
            )(branch)
        h = h + branch
    model = keras.Model(x, h)
    report = ki.residual(model, "fixup", seed=0)
    golden = depth ** (-1.0 / (2 * m - 2))
    zeros = [c for c in report if c.factor == 0.0]
    scaled = [c for c in report if c.factor != 0.0]
    assert len(zeros) == depth and len(scaled) == depth * (m - 1)
    assert all(c.factor == pytest.approx(golden, rel=1e-12) for c in scaled)
    weights = {v.path: to_numpy(v) for v in model.weights}
    assert all(not weights[c.path].any() for c in zeros)
    values = np.concatenate([weights[c.path].ravel() for c in scaled])
    he = math.sqrt(2.0 / (9 * channels)) * golden  # he_normal: truncated, std sqrt(2 / fan_in)
    assert abs(values.std() - he) <= std_tolerance(he, values.size)


def test_zero_gamma_zeroes_the_last_norm_scale_only():
    model = _cnn(3, norm=True)
    norms = [layer for layer in model.layers if isinstance(layer, L.BatchNormalization)]
    for layer in norms:
        layer.beta.assign(np.full(layer.beta.shape, 0.5, "float32"))
    report = ki.residual(model, "zero_gamma")
    assert [c.path for c in report] == [layer.gamma.path for layer in norms]
    assert all(not to_numpy(layer.gamma).any() for layer in norms)
    assert all(np.all(to_numpy(layer.beta) == 0.5) for layer in norms)


def test_residual_is_reproducible_with_an_int_seed():
    one, two = _mlp(4), _mlp(4)
    two.set_weights(one.get_weights())
    ki.residual(one, "gpt2", seed=3)
    ki.residual(two, "gpt2", seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(_values(one), _values(two), strict=True))


# The property: Var(x_L) / Var(x_0) against depth


def _ratio(model, shape, seed=0):
    x = np.random.default_rng(seed).normal(size=shape).astype("float32")
    y = to_numpy(model(x, training=False))
    return float(y.var() / x.var()), x, y


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_variance_against_depth(kind):
    depths = (8, 32, 128) if kind == "mlp" else (8, 32)
    shape = (256, 32) if kind == "mlp" else (16, 8, 8, 8)
    make = _mlp if kind == "mlp" else _cnn
    default, scaled = {}, {}
    for depth in depths:
        keras.utils.set_random_seed(depth)
        # A BatchNormalization ends each branch (identity at init: moving mean 0,
        # variance 1) so that zero_gamma has a scale to zero; one model per depth.
        model = make(depth, norm=True)
        start = model.get_weights()
        default[depth] = _ratio(model, shape)[0]
        for scheme in ("gpt2", "megatron", "fixup", "zero_gamma"):
            model.set_weights(start)
            ki.residual(model, scheme, seed=depth)
            ratio, x, y = _ratio(model, shape)
            if scheme in ("fixup", "zero_gamma"):
                np.testing.assert_array_equal(y, x)  # the shortcut path exactly
            else:
                scaled[scheme, depth] = ratio
    # The default grows geometrically: each branch adds a fixed share of the variance.
    for small, large in itertools.pairwise(depths):
        assert default[large] > 1.2 ** (large - small) * default[small], default
    # Scaled by 1/sqrt(L), the growth is (1 + c / L)^L <= e^c: bounded whatever the depth.
    assert all(0.9 < r < math.e for r in scaled.values()), scaled


# Errors: named, and the model untouched


def test_residual_errors_name_the_problem_and_change_nothing():
    model = _mlp(2)
    before = _values(model)
    assert_error(
        lambda: ki.residual(model, "gtp2"),
        ValueError,
        "`scheme` must be one of ('deepnorm', 'fixup', 'gpt2', 'megatron', 'mitchell', "
        "'rezero', 'skipinit', 't_fixup', 'zero_gamma'). Received: scheme='gtp2'",
    )
    branch = ki.residual_branches(model)[0]
    assert_error(
        lambda: ki.residual(model, "zero_gamma"),
        ValueError,
        "`scheme` 'zero_gamma' zeroes the scale of the normalization that ends each branch, "
        f"but branch 0 (summed at {branch.merge!r}, ending at {branch.ends[0]}) has no "
        "normalization after its last kernel: use 'fixup' or 'gpt2' there. "
        "Received: scheme='zero_gamma'",
    )
    assert_error(lambda: ki.residual(model, "megatron", std=0), ValueError, "`std`", prefix=True)
    assert_error(lambda: ki.residual(model, "gpt2", seed=1.5), TypeError, "`seed`", prefix=True)
    assert _same(before, model)
    x = keras.Input((8,))
    post = keras.Model(x, L.LayerNormalization()(x + L.Dense(8)(x)))
    before = _values(post)
    assert_error(
        lambda: ki.residual(post, "gpt2"),
        ValueError,
        "`scheme` 'gpt2' is for pre-norm and norm-free branches",
        prefix=True,
    )
    assert _same(before, post)
    two = keras.Model(x, L.Dense(8)(L.Dense(8)(x)) + L.Dense(8)(L.Dense(8)(x)))
    before = _values(two)
    assert_error(
        lambda: ki.residual(two, "fixup"),
        ValueError,
        "The residual detector cannot read layer",
        prefix=True,
    )
    assert _same(before, two)
    plain = keras.Sequential([keras.Input((8,)), L.Dense(8)])
    assert_error(
        lambda: ki.residual(plain, "gpt2"),
        ValueError,
        "`model` has no residual branch for scheme 'gpt2' to scale",
        prefix=True,
    )


def test_residual_draws_everything_before_it_assigns(monkeypatch):
    from keras_inits.model import _residual

    model = _mlp(3)
    before = _values(model)
    calls = []
    real = _residual._redraw

    def failing(*args):
        calls.append(1)
        if len(calls) == 4:  # the fourth of deepnorm's six draws (every kernel)
            raise RuntimeError("draw failed")
        return real(*args)

    monkeypatch.setattr(_residual, "_redraw", failing)
    assert_error(lambda: ki.residual(model, "deepnorm", seed=0), RuntimeError, "draw failed")
    assert len(calls) == 4 and _same(before, model)


# The fixup training evidence: a residual MLP without normalization on the digits


@pytest.mark.slow
def test_fixup_trains_a_deep_unnormalized_residual_mlp_the_default_cannot():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")

    def run(scheme):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((64,))
        h = L.Dense(32)(inputs)
        for _ in range(32):
            h = h + L.Dense(32)(L.Dense(32, activation="relu")(h))
        model = keras.Model(inputs, L.Dense(10)(h))
        if scheme:
            ki.residual(model, scheme, seed=0)
        model.compile(
            keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        order = np.random.default_rng(0).permutation
        losses = []
        for _ in range(3):  # epochs of 64-image batches in a seeded order
            batches = order(len(x))
            for start in range(0, len(x) - 63, 64):
                batch = batches[start : start + 64]
                losses.append(float(train_on_batch(model, x[batch], y[batch])["loss"]))
                if not math.isfinite(losses[-1]):
                    return losses, 0.0
        logits = to_numpy(model(x, training=False))
        return losses, float(np.mean(np.argmax(logits, axis=-1) == y))

    # Keras's default (glorot_uniform): Var(x_32) ~ 1.5^32 Var(x_0), the loss overflows.
    default_losses, _ = run(None)
    assert not math.isfinite(default_losses[-1]) and len(default_losses) < 27, default_losses
    fixup_losses, fixup_accuracy = run("fixup")
    assert all(math.isfinite(v) for v in fixup_losses)
    assert fixup_accuracy > 0.8, fixup_accuracy


# keras.applications and keras-hub


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, count, shortcuts",
    [
        ("ResNet50", 16, {"identity", "projection"}),
        ("ResNet50V2", 16, {"identity", "pooling", "projection"}),
        ("MobileNetV2", 10, {"identity"}),
        ("ConvNeXtTiny", 18, {"identity"}),
    ],
)
def test_branch_counts_of_keras_applications(name, count, shortcuts):
    model = getattr(keras.applications, name)(weights=None, input_shape=(32, 32, 3))
    branches = ki.residual_branches(model)
    assert len(branches) == count
    assert {b.shortcut for b in branches} == shortcuts
    with_norm = sum(b.norm is not None for b in branches)
    assert with_norm == (0 if name == "ResNet50V2" else count)  # V2 is pre-activation
    if name == "ResNet50":
        before = _values(model)
        report = ki.residual(model, "zero_gamma")
        assert len(report) == 16 and all(c.new_std == 0.0 for c in report)
        changed = {c.path for c in report}
        assert sum(
            not np.array_equal(a, to_numpy(v)) for a, v in zip(before, model.weights, strict=True)
        ) == len(changed)


def _hub_backbones(keras_hub):
    return {
        "gpt2": lambda: keras_hub.models.GPT2Backbone(
            vocabulary_size=32,
            num_layers=3,
            num_heads=2,
            hidden_dim=8,
            intermediate_dim=16,
            max_sequence_length=8,
        ),
        "bert": lambda: keras_hub.models.BertBackbone(
            vocabulary_size=32,
            num_layers=2,
            num_heads=2,
            hidden_dim=8,
            intermediate_dim=16,
            max_sequence_length=8,
        ),
        "llama": lambda: keras_hub.models.LlamaBackbone(
            vocabulary_size=32,
            num_layers=2,
            num_query_heads=2,
            num_key_value_heads=1,
            hidden_dim=8,
            intermediate_dim=16,
        ),
        "gemma": lambda: keras_hub.models.GemmaBackbone(
            vocabulary_size=32,
            num_layers=2,
            num_query_heads=2,
            num_key_value_heads=1,
            hidden_dim=8,
            intermediate_dim=16,
            head_dim=4,
            use_post_ffw_norm=True,  # Gemma 2's norms after each branch, before the sum
            use_post_attention_norm=True,
        ),
    }


@pytest.mark.parametrize("name, layers", [("gpt2", 3), ("bert", 2), ("llama", 2), ("gemma", 2)])
def test_keras_hub_blocks(name, layers):
    keras_hub = import_keras_hub()
    model = _hub_backbones(keras_hub)[name]()
    branches = ki.residual_branches(model)
    assert len(branches) == 2 * layers
    assert [b.block for b in branches] == [i // 2 for i in range(2 * layers)]
    assert {b.shortcut for b in branches} == {"block"}
    assert all(b.post_norm == (name == "bert") for b in branches)
    scheme = "deepnorm" if name == "bert" else "gpt2"
    before = _values(model)
    report = ki.residual(model, scheme, seed=0)
    assert {c.branch for c in report} == set(range(2 * layers))
    changed = {c.path for c in report}
    assert sum(
        not np.array_equal(a, to_numpy(v)) for a, v in zip(before, model.weights, strict=True)
    ) == len(changed)
    if name != "bert":
        ends = {path for b in branches for path in b.ends}
        assert changed == ends
    if name == "gemma":  # its RMS norm multiplies by (1 + scale): no gamma to zero
        assert_error(
            lambda: ki.residual(model, "zero_gamma"),
            ValueError,
            "`scheme` 'zero_gamma' zeroes the scale of the normalization",
            prefix=True,
        )


# T-Fixup (Huang et al., 2020, Section 3.3)


def _transformer(blocks, width=32, vocabulary=64, *, post_norm=False):
    """Embedding, then N norm-free blocks x + attn(x), x + W2 relu(W1 x)."""
    tokens = keras.Input((4,), dtype="int32")
    embedding = L.Embedding(vocabulary, width)
    h = embedding(tokens)
    attentions, mlps = [], []
    for _ in range(blocks):
        attention = L.MultiHeadAttention(4, width // 4)
        h = h + attention(h, h)
        if post_norm:
            h = L.LayerNormalization()(h)
        fc1, fc2 = L.Dense(2 * width, activation="relu"), L.Dense(width)
        h = h + fc2(fc1(h))
        attentions.append(attention)
        mlps.append((fc1, fc2))
    return keras.Model(tokens, h), embedding, attentions, mlps


@pytest.mark.parametrize("stack, golden", [("decoder", 0.3689), ("encoder", 0.4281)])
def test_t_fixup_golden_values_huang(stack, golden):
    # N = 6 blocks: decoder (9 * 6)^(-1/4) = 0.3689, encoder 0.67 * 6^(-1/4) = 0.4281 (the
    # numbers worked by hand from Section 3.3's formulas); every kernel Xavier first, the
    # query and key kept at Xavier, the embeddings N(0, d^(-1/2)) x (9N)^(-1/4).
    blocks, width, vocabulary = 6, 32, 64
    model, embedding, attentions, mlps = _transformer(blocks, width, vocabulary)
    report = ki.residual(model, "t_fixup", seed=0, stack=stack, blocks=blocks)
    by_path = {c.path: c for c in report}
    scaled = [a._value_dense.kernel for a in attentions] + [
        a._output_dense.kernel for a in attentions
    ]
    scaled += [fc.kernel for pair in mlps for fc in pair]
    kept = [a._query_dense.kernel for a in attentions] + [a._key_dense.kernel for a in attentions]
    assert len(report) == len(scaled) + len(kept) + 1
    assert all(by_path[v.path].factor == pytest.approx(golden, rel=1e-3) for v in scaled)
    assert all(by_path[v.path].factor == 1.0 for v in kept)
    xavier = math.sqrt(2.0 / (width + width))  # value, output, query, key: fans (32, 32)
    for variables, std in ((scaled[: 2 * blocks], golden * xavier), (kept, xavier)):
        values = np.concatenate([to_numpy(v).ravel() for v in variables])
        assert abs(values.std() - std) <= std_tolerance(std, values.size, -1.2)
    mlp = np.concatenate([to_numpy(v).ravel() for v in scaled[2 * blocks :]])
    std = golden * math.sqrt(2.0 / (width + 2 * width))  # fc1 (32, 64), fc2 (64, 32)
    assert abs(mlp.std() - std) <= std_tolerance(std, mlp.size, -1.2)
    table = to_numpy(embedding.embeddings)
    std = width**-0.5 * 0.3689  # (9 N)^(-1/4) for the embeddings, both stacks
    assert by_path[embedding.embeddings.path].branch == -1
    assert abs(table.std() - std) <= std_tolerance(std, table.size)
    assert stats.kstest(table.ravel() / std, "norm").pvalue > 1e-4


def test_t_fixup_needs_stack_and_blocks_and_refuses_post_ln():
    model, *_ = _transformer(2, width=16)
    before = _values(model)
    assert_error(
        lambda: ki.residual(model, "t_fixup", blocks=2),
        ValueError,
        "`scheme` 't_fixup' scales an encoder's blocks by 0.67 N^(-1/4) and a decoder's by "
        "(9N)^(-1/4), and a graph cannot say which it is: pass stack='encoder' or "
        "stack='decoder'. Received: stack=None",
    )
    assert_error(
        lambda: ki.residual(model, "t_fixup", stack="decoder"),
        ValueError,
        "`scheme` 't_fixup' needs N, the number of transformer blocks",
        prefix=True,
    )
    assert_error(
        lambda: ki.residual(model, "t_fixup", stack="middle", blocks=2),
        ValueError,
        "`stack` must be one of ('decoder', 'encoder'). Received: stack='middle'",
    )
    assert_error(
        lambda: ki.residual(model, "t_fixup", stack="decoder", blocks=True),
        TypeError,
        "`blocks`",
        prefix=True,
    )
    assert_error(
        lambda: ki.residual(model, "gpt2", stack="decoder"),
        ValueError,
        "`stack` is an argument of scheme 't_fixup' only; scheme 'gpt2' takes none. "
        "Received: stack='decoder', scheme='gpt2'",
    )
    assert _same(before, model)
    post, *_ = _transformer(2, width=16, post_norm=True)
    before = _values(post)
    assert_error(
        lambda: ki.residual(post, "t_fixup", stack="encoder", blocks=2),
        ValueError,
        "`scheme` 't_fixup' is for blocks without normalization",
        prefix=True,
    )
    assert _same(before, post)


def test_t_fixup_counts_a_keras_hub_models_blocks():
    keras_hub = import_keras_hub()
    model = _hub_backbones(keras_hub)["gpt2"]()  # 3 blocks, the adapters say so
    report = ki.residual(model, "t_fixup", seed=0, stack="decoder")
    golden = (9.0 * 3) ** -0.25
    scaled = [c for c in report if c.branch >= 0 and c.factor != 1.0]
    assert scaled and all(c.factor == pytest.approx(golden, rel=1e-12) for c in scaled)
    assert all("N = 3 blocks" in c.rule for c in scaled)
