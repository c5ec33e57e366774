"""Structured kernels do what their docstrings promise, through real Keras layers."""

import json
import math

import keras
import numpy as np
import pytest
from helpers import assert_error, std_tolerance, to_numpy
from scipy import linalg

import keras_inits as ki
from keras_inits._base import derive_seed

RNG = np.random.default_rng(0)


def random_input(*shape):
    return RNG.normal(size=(2, *shape)).astype("float32")


def run(layer, x):
    return to_numpy(layer(keras.ops.convert_to_tensor(x)))


# ---------------------------------------------------------------- ConvIdentity

CONV_LAYERS = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
SPATIAL = {1: (9,), 2: (7, 6), 3: (6, 5, 6)}


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("channels_in, channels_out", [(4, 4), (3, 5), (5, 3)])
def test_conv_identity_same_padding_passes_the_input(rank, k, channels_in, channels_out):
    layer = CONV_LAYERS[rank](
        channels_out, k, padding="same", kernel_initializer="conv_identity", use_bias=False
    )
    x = random_input(*SPATIAL[rank], channels_in)
    y = run(layer, x)
    both = min(channels_in, channels_out)
    np.testing.assert_allclose(y[..., :both], x[..., :both], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(y[..., both:], 0.0)


@pytest.mark.parametrize("k", [2, 4])
def test_torch_dirac_centre_is_not_the_identity_for_even_k(k):
    # The test above could fail: PyTorch's centre k // 2 shifts the output by one.
    kernel = np.zeros((k, k, 3, 3), "float32")
    kernel[k // 2, k // 2] = np.eye(3)
    x = random_input(7, 7, 3)
    y = to_numpy(keras.ops.conv(x, kernel, padding="same"))
    assert not np.allclose(y, x, atol=1e-3)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("multiplier", [1, 3])
def test_conv_identity_depthwise(k, multiplier):
    layer = keras.layers.DepthwiseConv2D(
        k,
        depth_multiplier=multiplier,
        padding="same",
        depthwise_initializer=ki.ConvIdentity(layout="depthwise"),
        use_bias=False,
    )
    x = random_input(7, 6, 4)
    y = run(layer, x)
    # DepthwiseConv2D's output channel i * multiplier + m comes from input channel i.
    np.testing.assert_allclose(y[..., ::multiplier], x, rtol=0, atol=1e-6)
    rest = np.delete(y, np.arange(0, y.shape[-1], multiplier), axis=-1)
    np.testing.assert_array_equal(rest, 0.0)


def test_conv_identity_gain_and_dense():
    kernel = to_numpy(ki.ConvIdentity(gain=2.5)((3, 5)))
    np.testing.assert_array_equal(kernel, 2.5 * np.eye(3, 5))
    kernel = to_numpy(ki.ConvIdentity(gain=0.5)((3, 4, 2, 2)))
    assert kernel[1, 1].tolist() == [[0.5, 0.0], [0.0, 0.5]] and kernel.sum() == 1.0


# ------------------------------------------------------------------------ ICNR


def nearest_upsample(x, scale):
    return np.repeat(np.repeat(x, scale, axis=1), scale, axis=2)


@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize("k", [1, 3, 4])
def test_icnr_then_depth_to_space_is_nearest_upsampling(scale, k):
    channels_in, channels = 4, 3
    initializer = ki.ICNR(scale=scale, seed=7)
    kernel = to_numpy(initializer((k, k, channels_in, channels * scale**2))).astype("float32")
    sub_kernel = kernel[..., :channels]
    x = random_input(5, 6, channels_in)
    y = to_numpy(keras.ops.depth_to_space(keras.ops.conv(x, kernel, padding="same"), scale))
    expected = nearest_upsample(to_numpy(keras.ops.conv(x, sub_kernel, padding="same")), scale)
    assert y.shape == (2, 5 * scale, 6 * scale, channels)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    # The sub-kernel is the nested initializer's draw for call 0 of seed 7.
    nested = ki.KaimingNormal(seed=derive_seed(7, 0))((k, k, channels_in, channels))
    np.testing.assert_array_equal(sub_kernel, to_numpy(nested))


def test_icnr_in_a_layer_by_string():
    layer = keras.layers.Conv2D(12, 3, padding="same", kernel_initializer="icnr")
    x = random_input(5, 5, 2)
    y = to_numpy(keras.ops.depth_to_space(layer(x), 2))
    top_left = y[:, ::2, ::2]
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(y[:, i::2, j::2], top_left, rtol=1e-6, atol=1e-6)


def test_icnr_sub_kernel_has_the_nested_statistics():
    # Sub-kernel (3, 3, 64, 256): fan_in 576, 147456 values; Kaiming (relu) std sqrt(2 / 576).
    kernel = to_numpy(
        ki.ICNR(initializer=ki.KaimingNormal(nonlinearity="relu"), seed=1)((3, 3, 64, 1024))
    )
    sub = kernel[..., :256]
    expected = math.sqrt(2 / 576)
    assert abs(sub.std() - expected) <= std_tolerance(expected, sub.size)


def test_icnr_seed_policy():
    shape = (3, 3, 4, 8)
    a, b = ki.ICNR(seed=3, initializer="he_uniform"), ki.ICNR(seed=3, initializer="he_uniform")
    first = to_numpy(a(shape))
    np.testing.assert_array_equal(first, to_numpy(b(shape)))
    assert not np.array_equal(first, to_numpy(a(shape)))  # Keras's built-in, our call policy
    unseeded = ki.ICNR(initializer="glorot_normal")
    assert not np.array_equal(to_numpy(unseeded(shape)), to_numpy(unseeded(shape)))
    # A nested initializer with its own seed keeps its own sequence.
    own = ki.ICNR(initializer=ki.SmallNormal(seed=5))
    reference = ki.SmallNormal(seed=5)
    for _ in range(2):
        got = to_numpy(own(shape))[..., :2]
        np.testing.assert_array_equal(got, to_numpy(reference((3, 3, 4, 2))))


def test_icnr_config_nests_the_initializer():
    initializer = ki.ICNR(scale=3, initializer={"class_name": "he_normal", "config": {}}, seed=2)
    config = initializer.get_config()
    assert config["scale"] == 3 and config["seed"] == 2
    assert config["initializer"]["class_name"] == "HeNormal"
    rebuilt = ki.ICNR.from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    np.testing.assert_array_equal(
        to_numpy(initializer((1, 1, 2, 9))), to_numpy(rebuilt((1, 1, 2, 9)))
    )


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: ki.ICNR(seed=1, initializer=ki.KaimingNormal(seed=2)),
            ValueError,
            "`seed` has no effect: the nested initializer KaimingNormal has its own seed. "
            "Give the seed to one of the two. Received: seed=1, initializer=KaimingNormal(",
        ),
        (
            lambda: ki.ICNR(seed=1, initializer="zeros"),
            ValueError,
            "`seed` has no effect: the nested initializer Zeros takes no seed.",
        ),
        (lambda: ki.ICNR(scale=0), ValueError, "`scale` must be an int >= 1. Received: scale=0"),
        (
            lambda: ki.ICNR(scale=True),
            TypeError,
            "`scale` must be an int >= 1, not bool. Received: scale=True",
        ),
        (
            lambda: ki.ICNR(scale=2.0),
            TypeError,
            "`scale` must be an int >= 1, not float. Received: scale=2.0",
        ),
        (
            lambda: ki.ICNR(initializer="kaiming_normall"),
            ValueError,
            "Unknown initializer. Did you mean 'kaiming_normal'?",
        ),
        (  # the error names ICNR's own argument, not get()'s
            lambda: ki.ICNR(initializer="nope"),
            ValueError,
            "Unknown initializer. keras_inits.names() lists ours, keras.initializers "
            "Keras's. Received: initializer='nope'",
        ),
        (  # a known class with a bad argument: that class's own error
            lambda: ki.ICNR(initializer={"class_name": "XavierNormal", "config": {"gain": 0}}),
            ValueError,
            "`gain` must be a finite number > 0. Received: gain=0",
        ),
        (
            lambda: ki.ICNR(initializer=np.ones),
            TypeError,
            "`initializer` must name or be a keras.initializers.Initializer. Received: ",
        ),
    ],
    ids=[
        "two_seeds",
        "seed_without_use",
        "scale_0",
        "scale_bool",
        "scale_float",
        "name",
        "unknown",
        "bad_config",
        "fn",
    ],
)
def test_icnr_bad_arguments(make, error, message):
    assert_error(make, error, message, prefix=True)


@pytest.mark.parametrize(
    "shape, message",
    [
        (
            (3, 3, 8, 6),
            "`shape` must have a last axis (out) divisible by scale**2 = 4 (scale=2) for ICNR. "
            "Received: shape=(3, 3, 8, 6)",
        ),
        (
            (8,),
            "`shape` must have rank >= 2, laid out (*receptive_field, in, out) for ICNR. "
            "Received: shape=(8,)",
        ),
    ],
)
def test_icnr_bad_shapes(shape, message):
    with pytest.raises(ValueError) as info:
        ki.ICNR(seed=0)(shape)
    assert str(info.value) == message


# -------------------------------------------------------------------- Bilinear


def test_conv2d_transpose_kernel_is_filters_then_inputs():
    layer = keras.layers.Conv2DTranspose(5, 3)
    layer.build((None, 6, 6, 2))
    assert tuple(layer.kernel.shape) == (3, 3, 5, 2)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_bilinear_transpose_matches_resize_away_from_the_border(factor):
    channels, height, width = 3, 6, 7
    layer = keras.layers.Conv2DTranspose(
        channels,
        2 * factor - factor % 2,
        strides=factor,
        padding="same",
        kernel_initializer="bilinear",
        use_bias=False,
    )
    x = random_input(height, width, channels)
    y = run(layer, x)
    expected = to_numpy(
        keras.ops.image.resize(
            x, (height * factor, width * factor), interpolation="bilinear", antialias=False
        )
    )
    assert y.shape == expected.shape
    inner = (slice(None), slice(factor, -factor), slice(factor, -factor))
    np.testing.assert_allclose(y[inner], expected[inner], rtol=0, atol=1e-5)
    # At the border resize clamps and the transposed convolution sees zeros:
    # the comparison above is not vacuous.
    assert not np.allclose(y[:, 0], expected[:, 0], atol=1e-3)


def test_bilinear_kernel_values():
    kernel = to_numpy(ki.Bilinear()((5, 4, 2, 2)))
    np.testing.assert_allclose(
        kernel[:, 0, 0, 0] / kernel[2, 0, 0, 0], [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3]
    )
    np.testing.assert_allclose(kernel[2, :, 1, 1], [0.25, 0.75, 0.75, 0.25])
    np.testing.assert_array_equal(kernel[:, :, 0, 1], 0.0)
    np.testing.assert_array_equal(kernel[:, :, 1, 0], 0.0)


@pytest.mark.parametrize(
    "shape, requirement",
    [
        ((3, 3, 2, 2), "have kernel sizes 2f - f % 2 (1, 4, 5, 8, 9, ...) for upsampling factor f"),
        ((4, 6, 2, 2), "have kernel sizes 2f - f % 2 (1, 4, 5, 8, 9, ...) for upsampling factor f"),
        ((4, 4, 3, 2), "have filters == in_channels (bilinear upsampling is per channel)"),
        ((4, 2, 2), "be 4-D, (kh, kw, filters, in_channels)"),
    ],
)
def test_bilinear_refuses_shapes_it_cannot_fill(shape, requirement):
    with pytest.raises(ValueError) as info:
        ki.Bilinear()(shape)
    assert str(info.value) == f"`shape` must {requirement} for Bilinear. Received: shape={shape}"


# ------------------------------------------------------------ HadamardIdentity


@pytest.mark.parametrize("shape", [(8, 8), (8, 5), (1, 1)])
def test_hadamard_identity_is_a_partial_identity_when_out_le_in(shape):
    np.testing.assert_array_equal(to_numpy(ki.HadamardIdentity()(shape)), np.eye(*shape))


@pytest.mark.parametrize("n_in, n_out", [(1, 2), (3, 5), (5, 8), (16, 64), (20, 100)])
def test_hadamard_identity_follows_zero_when_out_gt_in(n_in, n_out):
    kernel = to_numpy(ki.HadamardIdentity()((n_in, n_out)))
    m = math.ceil(math.log2(n_out))
    c = 2.0 ** (-(m - 1) / 2)
    eps = np.finfo("float32").eps
    np.testing.assert_allclose(kernel, c * linalg.hadamard(2**m)[:n_in, :n_out], rtol=eps)
    np.testing.assert_allclose(np.abs(kernel), c, rtol=eps)


@pytest.mark.parametrize("n_in, n_out", [(3, 4), (5, 8), (16, 64)])
def test_hadamard_rows_are_orthogonal_with_norm_sqrt_2_for_power_of_two_out(n_in, n_out):
    kernel = to_numpy(ki.HadamardIdentity()((n_in, n_out)))
    tolerance = 8 * n_out * np.finfo("float32").eps
    np.testing.assert_allclose(kernel @ kernel.T, 2.0 * np.eye(n_in), rtol=0, atol=tolerance)


@pytest.mark.parametrize("k", [3, 4])
def test_hadamard_identity_conv_uses_the_centre_tap(k):
    kernel = to_numpy(ki.HadamardIdentity()((k, k, 3, 6)))
    centre = (k - 1) // 2
    matrix = to_numpy(ki.HadamardIdentity()((3, 6)))
    np.testing.assert_array_equal(kernel[centre, centre], matrix)
    kernel[centre, centre] = 0.0
    np.testing.assert_array_equal(kernel, 0.0)


def test_hadamard_identity_dense_passes_the_first_features():
    layer = keras.layers.Dense(3, kernel_initializer="hadamard_identity", use_bias=False)
    x = RNG.normal(size=(4, 5)).astype("float32")
    np.testing.assert_allclose(run(layer, x), x[:, :3], rtol=0, atol=1e-6)


# ------------------------------------------------------- shared by all four


@pytest.mark.parametrize("cls", [ki.ConvIdentity, ki.HadamardIdentity], ids=lambda c: c.__name__)
def test_rank_below_two_is_refused(cls):
    with pytest.raises(ValueError) as info:
        cls()((5,))
    assert str(info.value) == (
        f"`shape` must have rank >= 2, laid out (*receptive_field, in, out) for {cls.__name__}. "
        "Received: shape=(5,)"
    )


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: ki.ConvIdentity(layout="pointwise"),
            ValueError,
            "`layout` must be one of ('conv', 'depthwise'). Received: layout='pointwise'",
        ),
        (
            lambda: ki.ConvIdentity(gain=True),
            TypeError,
            "`gain` must be a real number, not bool. Received: gain=True",
        ),
        (
            lambda: ki.ConvIdentity(gain=0.0),
            ValueError,
            "`gain` must be a finite number > 0. Received: gain=0.0",
        ),
        (  # 1e308 would cast to inf in float32
            lambda: ki.ConvIdentity(gain=1e308)((3, 3), dtype="float32"),
            ValueError,
            "`dtype` cannot hold this kernel: its values reach 1e+308, beyond its largest "
            "value 3.40282e+38. Received: dtype='float32'",
        ),
        (
            lambda: ki.ConvIdentity(gain=7e4)((3, 3), dtype="float16"),
            ValueError,
            "`dtype` cannot hold this kernel: its values reach 70000, beyond its largest "
            "value 65504. Received: dtype='float16'",
        ),
    ],
)
def test_conv_identity_bad_arguments(make, error, message):
    assert_error(make, error, message)


# The float64 NumPy construction of keras_inits 0.1 (its `_values`), kept here
# as the reference: the kernels are now built with keras.ops iotas on device,
# and must equal this construction cast to the dtype, value for value.


def numpy_centre_tap(shape, matrix):
    kernel = np.zeros(shape)
    kernel[tuple((k - 1) // 2 for k in shape[:-2])] = matrix
    return kernel


def numpy_conv_identity(shape, gain=1.0, layout="conv"):
    channels, outputs = shape[-2:]
    if layout == "depthwise":
        matrix = np.zeros((channels, outputs))
        matrix[:, 0] = gain
    else:
        matrix = gain * np.eye(channels, outputs)
    return numpy_centre_tap(shape, matrix)


def numpy_hadamard_identity(shape):
    n_in, n_out = shape[-2:]
    if n_out <= n_in:
        return numpy_centre_tap(shape, np.eye(n_in, n_out))
    order = (n_out - 1).bit_length()
    both = np.bitwise_and.outer(np.arange(n_in), np.arange(n_out))
    parity = np.zeros_like(both)
    for bit in range(order):
        parity ^= (both >> bit) & 1
    return numpy_centre_tap(shape, 2.0 ** (-(order - 1) / 2.0) * (1.0 - 2.0 * parity))


def numpy_bilinear(shape):
    def weights(size):
        factor = (size + 1) // 2
        return 1.0 - np.abs(np.arange(size) - (size - 1) / 2.0) / factor

    kh, kw, channels, _ = shape
    kernel = np.zeros(shape)
    for channel in range(channels):
        kernel[:, :, channel, channel] = np.multiply.outer(weights(kh), weights(kw))
    return kernel


DETERMINISTIC_CASES = [
    (ki.ConvIdentity(), numpy_conv_identity, (3, 3, 4, 4)),
    (ki.ConvIdentity(gain=0.3), lambda s: numpy_conv_identity(s, 0.3), (4, 2, 5, 3, 7)),
    (ki.ConvIdentity(gain=1.7), lambda s: numpy_conv_identity(s, 1.7), (5, 7)),
    (
        ki.ConvIdentity(gain=0.1, layout="depthwise"),
        lambda s: numpy_conv_identity(s, 0.1, "depthwise"),
        (4, 4, 5, 3),
    ),
    (ki.HadamardIdentity(), numpy_hadamard_identity, (4, 16)),
    (ki.HadamardIdentity(), numpy_hadamard_identity, (3, 20, 40)),
    (ki.HadamardIdentity(), numpy_hadamard_identity, (33, 100)),
    (ki.HadamardIdentity(), numpy_hadamard_identity, (8, 3)),
    (ki.Bilinear(), numpy_bilinear, (4, 4, 2, 2)),
    (ki.Bilinear(), numpy_bilinear, (8, 5, 3, 3)),
]
# Unit roundoff of each dtype: the largest relative error of one rounding.
ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24}


@pytest.mark.parametrize("dtype", sorted(ROUNDOFF))
def test_deterministic_kernels_equal_the_numpy_construction_in_every_float_dtype(dtype):
    check_deterministic_cases(dtype)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TF's XLA path")
@pytest.mark.parametrize("dtype", sorted(ROUNDOFF))
def test_tensorflow_compiled_kernels_equal_the_numpy_construction(monkeypatch, dtype):
    # From FUSED_FROM values on, TensorFlow builds them as one XLA program.
    from keras_inits._sampling import _tensorflow

    monkeypatch.setattr(_tensorflow, "FUSED_FROM", 1)
    check_deterministic_cases(dtype)


def check_deterministic_cases(dtype):
    for initializer, reference, shape in DETERMINISTIC_CASES:
        values = initializer(shape, dtype=dtype)
        assert keras.backend.standardize_dtype(values.dtype) == dtype
        exact = reference(shape)  # the float64 kernel
        # One rounding of the float64 kernel, exactly as 0.1's NumPy cast did.
        expected = to_numpy(keras.ops.convert_to_tensor(exact, dtype=dtype))
        np.testing.assert_array_equal(to_numpy(values), expected)
        np.testing.assert_allclose(to_numpy(values), exact, rtol=ROUNDOFF[dtype], atol=0)
        np.testing.assert_array_equal(to_numpy(initializer(shape, dtype=dtype)), to_numpy(values))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TF's XLA paths")
def test_tensorflow_compiled_paths_do_not_warn_of_retracing(monkeypatch, caplog):
    # Each new shape compiles its own program; TensorFlow warns of "retracing"
    # when one function (code object) is traced again and again, as a model
    # with many layer shapes would do: seven shapes must stay silent.
    from keras_inits._sampling import _tensorflow

    monkeypatch.setattr(_tensorflow, "FUSED_FROM", 1)
    with caplog.at_level("WARNING", logger="tensorflow"):
        for extra in range(7):
            ki.HadamardIdentity()((3 + extra, 40))
            ki.ConvIdentity()((3, 3, 4 + extra, 8))
            ki.Sparse(sparsity=0.5, seed=extra)((30 + extra, 20))
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
