"""BlockOrthogonal and DeltaOrthogonal: every block orthogonal, in every dtype.

Orthogonality bound. Each block is computed in float32 (float64 where asked)
as Q, then rounded to the dtype: q -> q (1 + d), |d| <= u = eps / 2. For two
columns i, j (or rows, where the block is wide) the rounding moves
(Q^T Q)_ij by at most sum_k |q_ki q_kj| (2u + u^2) <= eps (1 + eps / 4), by
Cauchy-Schwarz on unit vectors: whatever n is, rounding costs about one eps
of the dtype (we measure ~0.25 eps for float16 and bfloat16). The QR itself
adds Householder's error, at most c m n u in theory (Higham, "Accuracy and
Stability of Numerical Algorithms", Thm 19.4) and ~sqrt(n) u in practice:
we allow n eps of the compute dtype (c = 1, n the longer side; ~4 eps
measured at n = 64, so 16x headroom there, more for larger n). float16's
subnormals (below 2^-14) round with absolute error 2^-25, which moves an
entry of Q^T Q by at most sqrt(n) 2^-25, inside the n * eps_float32 term. So

    ||Q^T Q - I||_max <= eps_dtype (1 + eps_dtype / 4) + n * eps_compute

A Gaussian matrix scaled to unit columns misses I by ~1 / sqrt(n) (0.125 at
n = 64), 16 times the bfloat16 bound, so the check can fail.
"""

import json
import math

import keras
import numpy as np
import pytest
from helpers import assert_error, assert_matches, backend_has_float64, to_numpy
from scipy import stats

import keras_inits as ki
from keras_inits.orthogonal import infer_blocks

EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}
DTYPES = ["float16", "bfloat16", "float32", "float64"]


def tolerance(dtype, n):
    compute = "float64" if dtype == "float64" else "float32"
    eps = EPS[dtype]
    return eps * (1 + eps / 4) + n * EPS[compute]


def orthogonality_error(block, gain=1.0):
    """max |B^T B / gain^2 - I| (columns) or |B B^T / gain^2 - I| (rows), in float64."""
    block = np.asarray(block, np.float64) / gain
    rows, cols = block.shape
    gram = block.T @ block if rows >= cols else block @ block.T
    return np.abs(gram - np.eye(min(rows, cols))).max()


def column_blocks(kernel, blocks):
    flat = np.reshape(kernel, (-1, kernel.shape[-1]))
    return np.split(flat, blocks, axis=1)


def skip_without_float64(dtype):
    if dtype == "float64" and not backend_has_float64():
        pytest.skip("this backend has no float64 without its x64 switch")


# (shape, blocks argument, blocks expected): square, tall and wide blocks, a conv kernel.
BLOCK_CASES = {
    "lstm_4_square": ((64, 256), None, 4),
    "gru_3_square": ((48, 144), None, 3),
    "tall_blocks": ((100, 120), 3, 3),
    "wide_blocks": ((20, 100), 2, 2),
    "one_square": ((96, 96), None, 1),
    "conv_tall": ((3, 3, 8, 32), None, 1),
    "conv_wide": ((2, 2, 4, 64), None, 4),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(BLOCK_CASES))
def test_every_block_is_orthogonal_within_the_dtype_bound(case, dtype):
    skip_without_float64(dtype)
    shape, blocks, expected_blocks = BLOCK_CASES[case]
    initializer = ki.BlockOrthogonal(blocks=blocks, seed=3)
    assert initializer.blocks_for(shape) == expected_blocks
    output = initializer(shape, dtype=dtype)
    assert keras.backend.standardize_dtype(output.dtype) == dtype
    assert tuple(output.shape) == shape
    kernel = to_numpy(output)
    for index, block in enumerate(column_blocks(kernel, expected_blocks)):
        n = max(block.shape)
        error = orthogonality_error(block)
        assert error <= tolerance(dtype, n), (index, error, tolerance(dtype, n))


def test_a_gaussian_matrix_fails_the_bound():
    # The bound is tight enough to tell an orthogonal block from a merely scaled one.
    block = np.random.default_rng(0).standard_normal((64, 64)) / 8.0
    assert orthogonality_error(block) > 10 * tolerance("bfloat16", 64)


def test_blocks_are_independent():
    kernel = to_numpy(ki.BlockOrthogonal(seed=1)((32, 128)))
    blocks = column_blocks(kernel, 4)
    for i in range(4):
        for j in range(i + 1, 4):
            # Independent Haar blocks: B_i^T B_j has entries ~ 1 / sqrt(32), never I.
            assert np.abs(blocks[i].T @ blocks[j]).max() > 0.1, (i, j)


def test_one_block_is_haar_distributed():
    # Every entry of a Haar-random 3 x 3 orthogonal matrix is U(-1, 1), the
    # first coordinate of a uniform point on the 2-sphere (Archimedes). Without
    # the sign correction a diagonal entry takes the sign QR's convention gives
    # it (always negative with LAPACK's Householder), which this test rejects.
    count = 100_000
    kernel = to_numpy(ki.BlockOrthogonal(blocks=count, seed=5)((3, 3 * count)))
    blocks = kernel.reshape(3, count, 3).transpose(1, 0, 2)  # (count, 3, 3)
    index = np.arange(count) % 3  # one diagonal entry per block: independent samples
    assert_matches(blocks[np.arange(count), index, index], stats.uniform(-1.0, 2.0))


@pytest.mark.parametrize("shape", [(384, 320), (320, 384)], ids=["tall", "wide"])
def test_one_block_matches_keras_orthogonal(shape):
    # Same flattening, same orientation, same distribution as Keras's Orthogonal.
    ours = to_numpy(ki.BlockOrthogonal(blocks=1, seed=2)(shape))
    theirs = to_numpy(keras.initializers.Orthogonal(seed=2)(shape))
    assert orthogonality_error(ours) <= tolerance("float32", max(shape))
    assert orthogonality_error(theirs) <= tolerance("float32", max(shape))
    p_value = stats.ks_2samp(ours.ravel(), theirs.ravel()).pvalue
    assert p_value > 1e-4, p_value


@pytest.mark.parametrize("shape", [(8, 4), (3, 3, 4, 8), (5, 2, 7)])
def test_one_block_has_keras_orthogonal_orientation(shape):
    flat = (math.prod(shape[:-1]), shape[-1])
    ours = to_numpy(ki.BlockOrthogonal(blocks=1, seed=0)(shape)).reshape(flat)
    theirs = to_numpy(keras.initializers.Orthogonal(seed=0)(shape)).reshape(flat)
    for kernel in (ours, theirs):
        assert orthogonality_error(kernel) <= tolerance("float32", max(flat))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gain", [0.5, 1.7])
def test_gain_scales_every_block(gain, dtype):
    skip_without_float64(dtype)
    unit = to_numpy(ki.BlockOrthogonal(seed=4)((32, 96), dtype=dtype))
    scaled = to_numpy(ki.BlockOrthogonal(gain=gain, seed=4)((32, 96), dtype=dtype))
    for block in column_blocks(scaled, 3):
        # Rounding gain * q costs the same relative eps as rounding q.
        assert orthogonality_error(block, gain) <= tolerance(dtype, 32)
    # The same draw, scaled: gain is applied in the compute dtype before the cast,
    # so the two differ by two roundings (plus float16's subnormal spacing).
    atol = 2.0**-24 if dtype == "float16" else 0.0
    np.testing.assert_allclose(scaled, gain * unit, rtol=2 * EPS[dtype], atol=atol)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((32, 128), 4),
        ((32, 96), 3),
        ((32, 32), 1),
        ((32, 48), 1),  # 48 is not a multiple of 32
        ((32, 16), 1),  # fewer columns than rows
        ((3, 3, 16, 32), 1),
        ((2, 2, 4, 64), 4),
        ((0, 4), 1),
        ((4, 0), 1),
    ],
)
def test_infer_blocks(shape, expected):
    assert infer_blocks(shape) == expected


@pytest.mark.parametrize(
    ("layer_class", "gates"), [(keras.layers.LSTM, 4), (keras.layers.GRU, 3)], ids=["LSTM", "GRU"]
)
def test_recurrent_kernel_gets_one_orthogonal_block_per_gate(layer_class, gates):
    units = 32
    layer = layer_class(units, recurrent_initializer="block_orthogonal")
    layer(keras.ops.ones((2, 5, 7)))
    kernel = to_numpy(layer.cell.recurrent_kernel)
    assert kernel.shape == (units, gates * units)
    for gate, block in enumerate(column_blocks(kernel, gates)):
        assert orthogonality_error(block) <= tolerance("float32", units), gate
    # Keras's Orthogonal makes the whole matrix orthogonal instead: no gate's block is.
    theirs = layer_class(units, recurrent_initializer=keras.initializers.Orthogonal(seed=0))
    theirs(keras.ops.ones((2, 5, 7)))
    their_kernel = to_numpy(theirs.cell.recurrent_kernel)
    assert orthogonality_error(their_kernel) <= tolerance("float32", gates * units)
    for gate, block in enumerate(column_blocks(their_kernel, gates)):
        assert orthogonality_error(block) > 0.1, gate


# Keras 3.15.1's Orthogonal on 16-bit dtypes runs QR in that dtype. Observed:
#   jax:        float16 and bfloat16 raise NotImplementedError (no half QR)
#   torch:      float16 and bfloat16 raise NotImplementedError ("geqrf_cpu")
#   tensorflow: bfloat16 raises InvalidArgumentError (Qr has no bfloat16 kernel);
#               float16 returns a matrix from a half-precision QR, error ~3-4 eps
#               at n = 64, where ours (QR in float32, then cast) stays below 1 eps.
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_works_where_keras_orthogonal_fails(dtype):
    n = 64
    ours = to_numpy(ki.BlockOrthogonal(seed=0)((n, n), dtype=dtype))
    our_error = orthogonality_error(ours)
    assert our_error <= tolerance(dtype, n)
    try:
        theirs = keras.initializers.Orthogonal(seed=0)((n, n), dtype=dtype)
    except Exception as error:  # the exception type is the backend's
        print(f"Keras's Orthogonal, {dtype}: raises {type(error).__name__}")
        return
    their_error = orthogonality_error(to_numpy(theirs))
    print(f"Keras's Orthogonal, {dtype}: error {their_error / EPS[dtype]:.2f} eps")
    assert their_error > our_error


BLOCK_ERRORS = [
    (
        lambda: ki.BlockOrthogonal(blocks=0),
        ValueError,
        "`blocks` must be an int >= 1 or None. Received: blocks=0",
    ),
    (
        lambda: ki.BlockOrthogonal(blocks=True),
        TypeError,
        "`blocks` must be an int >= 1 or None, not bool. Received: blocks=True",
    ),
    (
        lambda: ki.BlockOrthogonal(blocks=2.0),
        TypeError,
        "`blocks` must be an int >= 1 or None, not float. Received: blocks=2.0",
    ),
    (
        lambda: ki.BlockOrthogonal(gain=0.0),
        ValueError,
        "`gain` must be a finite number > 0. Received: gain=0.0",
    ),
    (
        lambda: ki.BlockOrthogonal(gain=True),
        TypeError,
        "`gain` must be a real number, not bool. Received: gain=True",
    ),
    (
        lambda: ki.BlockOrthogonal(seed="1"),
        TypeError,
        "`seed` must be an int, a keras.random.SeedGenerator or None. Received: seed='1'",
    ),
    (
        lambda: ki.BlockOrthogonal()((5,)),
        ValueError,
        "`shape` must have rank >= 2, laid out (*receptive_field, in, out) for BlockOrthogonal. "
        "Received: shape=(5,)",
    ),
    (
        lambda: ki.BlockOrthogonal()(()),
        ValueError,
        "`shape` must have rank >= 2, laid out (*receptive_field, in, out) for BlockOrthogonal. "
        "Received: shape=()",
    ),
    (
        lambda: ki.BlockOrthogonal(blocks=3)((4, 10)),
        ValueError,
        "`blocks` must divide the last axis of `shape` (10 % 3 != 0). "
        "Received: blocks=3, shape=(4, 10)",
    ),
    # Checked before the empty-shape shortcut: an empty kernel it cannot serve is refused too.
    (
        lambda: ki.BlockOrthogonal(blocks=3)((0, 4)),
        ValueError,
        "`blocks` must divide the last axis of `shape` (4 % 3 != 0). "
        "Received: blocks=3, shape=(0, 4)",
    ),
    (
        lambda: ki.DeltaOrthogonal(gain=-1),
        ValueError,
        "`gain` must be a finite number > 0. Received: gain=-1",
    ),
    (
        lambda: ki.DeltaOrthogonal()((3,)),
        ValueError,
        "`shape` must have rank >= 2, laid out (*receptive_field, in, out) for DeltaOrthogonal. "
        "Received: shape=(3,)",
    ),
    (
        lambda: ki.DeltaOrthogonal()((3, 3, 8, 4)),
        ValueError,
        "`shape` must have out >= in for a delta-orthogonal kernel (*kernel_size, in, out): "
        "an (in, out) matrix keeps every norm only if out >= in (4 < 8). "
        "Received: shape=(3, 3, 8, 4)",
    ),
]


@pytest.mark.parametrize("index", range(len(BLOCK_ERRORS)))
def test_bad_arguments_give_the_exact_message(index):
    make, error_type, message = BLOCK_ERRORS[index]
    assert_error(make, error_type, message)


def test_config_round_trip_keeps_blocks_and_gain():
    initializer = ki.BlockOrthogonal(blocks=4, gain=1.5, seed=7)
    assert initializer.get_config() == {"seed": 7, "blocks": 4, "gain": 1.5, "column_axis": -1}
    # Through JSON, as a saved file holds it (an in-memory copy continues the stream).
    saved = json.loads(json.dumps(keras.initializers.serialize(initializer)))
    rebuilt = keras.initializers.deserialize(saved)
    np.testing.assert_array_equal(to_numpy(rebuilt((8, 32))), to_numpy(initializer((8, 32))))
    assert ki.DeltaOrthogonal(gain=2.0, seed=1).get_config() == {
        "seed": 1,
        "gain": 2.0,
        "column_axis": -1,
    }


# DeltaOrthogonal ---------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    [(1, 8, 8), (2, 8, 16), (5, 4, 4), (3, 3, 8, 8), (4, 4, 6, 12), (3, 4, 2, 5), (2, 3, 3, 4, 4)],
)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_delta_orthogonal_centre_tap_and_zeros_elsewhere(shape, dtype):
    kernel = to_numpy(ki.DeltaOrthogonal(seed=2)(shape, dtype=dtype))
    *spatial, fan_in, fan_out = shape
    centre = tuple((k - 1) // 2 for k in spatial)
    tap = kernel[centre]
    assert orthogonality_error(tap) <= tolerance(dtype, fan_out)
    assert np.abs(tap @ tap.T - np.eye(fan_in)).max() <= tolerance(dtype, fan_out)  # rows
    rest = kernel.copy()
    rest[centre] = 0.0
    assert not rest.any(), "nonzero weights off the centre tap"


def test_delta_orthogonal_without_spatial_axes_is_orthogonal():
    kernel = to_numpy(ki.DeltaOrthogonal(seed=0)((16, 48)))
    assert np.abs(kernel @ kernel.T - np.eye(16)).max() <= tolerance("float32", 48)


@pytest.mark.parametrize("kernel_size", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_same_conv2d_keeps_every_pixels_channel_norm(kernel_size, gain):
    # Stride 1, padding="same": the output pixel is gain * x Q of the same input
    # pixel (the centre tap is the one "same" padding aligns, even kernels
    # included), so ||y|| = gain ||x|| everywhere; the delta kernel reads no
    # neighbour, so border pixels are exact too.
    layer = keras.layers.Conv2D(
        24,
        kernel_size,
        padding="same",
        use_bias=False,
        kernel_initializer=ki.DeltaOrthogonal(gain=gain, seed=1),
    )
    x = np.random.default_rng(0).standard_normal((2, 11, 10, 8)).astype("float32")
    y = to_numpy(layer(x))
    centre = (kernel_size - 1) // 2
    q = to_numpy(layer.kernel)[centre, centre]
    np.testing.assert_allclose(y, x @ q, rtol=0, atol=1e-5)  # not shifted by a pixel
    np.testing.assert_allclose(
        np.linalg.norm(y, axis=-1), gain * np.linalg.norm(x, axis=-1), rtol=1e-5
    )


@pytest.mark.parametrize(
    ("conv", "kernel_size", "spatial"),
    [(keras.layers.Conv1D, 4, (12,)), (keras.layers.Conv3D, 2, (5, 6, 4))],
    ids=["Conv1D", "Conv3D"],
)
def test_same_conv1d_and_conv3d_read_the_centre_pixel(conv, kernel_size, spatial):
    layer = conv(
        6, kernel_size, padding="same", use_bias=False, kernel_initializer="delta_orthogonal"
    )
    x = np.random.default_rng(1).standard_normal((2, *spatial, 4)).astype("float32")
    y = to_numpy(layer(x))
    centre = ((kernel_size - 1) // 2,) * len(spatial)
    np.testing.assert_allclose(y, x @ to_numpy(layer.kernel)[centre], rtol=0, atol=1e-5)


def test_deep_delta_orthogonal_stack_keeps_the_norm():
    # Dynamical isometry at depth: 30 "same" convolutions, widening 8 -> 32.
    widths = [8, 16, 16, 32] + [32] * 26
    model = keras.Sequential(
        [keras.Input((9, 9, 8))]
        + [
            keras.layers.Conv2D(
                w, 3, padding="same", use_bias=False, kernel_initializer="delta_orthogonal"
            )
            for w in widths
        ]
    )
    x = np.random.default_rng(2).standard_normal((1, 9, 9, 8)).astype("float32")
    y = to_numpy(model(x))
    np.testing.assert_allclose(
        np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1), rtol=len(widths) * 1e-6
    )


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="jax.jit tracing is JAX's")
@pytest.mark.parametrize("seed", [None, 17])
@pytest.mark.parametrize(
    ("initializer", "shape"),
    [(ki.BlockOrthogonal, (32, 128)), (ki.DeltaOrthogonal, (3, 3, 16, 32))],
    ids=["BlockOrthogonal", "DeltaOrthogonal"],
)
def test_call_traces_under_jax_jit(initializer, shape, seed):
    import jax

    jitted = jax.jit(initializer(seed=seed).__call__, static_argnames=("shape", "dtype"))
    values = np.asarray(jitted(shape=shape, dtype="bfloat16"), np.float64)
    assert values.shape == shape
    blocks = column_blocks(values, 4) if initializer is ki.BlockOrthogonal else [values[1, 1]]
    for block in blocks:
        assert orthogonality_error(block) <= tolerance("bfloat16", max(block.shape))
