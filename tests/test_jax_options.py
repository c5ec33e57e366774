"""The options a JAX user reaches for, each with the law of its JAX counterpart.

BoundedNormal (``truncated_normal(stddev, lower, upper)``), ``batch_axis``
and ``mode="fan_geo_avg"`` of VarianceScaling, ``column_axis`` of
BlockOrthogonal and DeltaOrthogonal. On every backend each draw is held to
its analytic law (mean and std within 5 standard errors, KS at 1e-4); on the
JAX backend each is also held, by a two-sample KS test at 1e-4, to the draw
of ``jax.nn.initializers``' own function with the same arguments.

The marginal law of an orthogonal kernel's entries: a column of a Haar
(n, c) matrix with orthonormal columns is uniform on the unit sphere of R^n,
and one coordinate x of such a vector has (x + 1) / 2 ~ Beta((n - 1) / 2,
(n - 1) / 2). The entries of one matrix are not independent (each column has
norm 1), but with n in the hundreds their dependence is of order 1 / n, far
inside what a KS test at 1e-4 on 10^5 values can see.
"""

import math

import keras
import numpy as np
import pytest
from helpers import KS_ALPHA, assert_error, assert_matches, to_numpy
from scipy import stats

import keras_inits as ki
from keras_inits._portable import keras_equivalent

ON_JAX = keras.backend.backend() == "jax"


def jax_draw(initializer, shape, seed=0):
    """``jax.nn.initializers``' own draw (float32), as float64 NumPy."""
    import jax

    return np.asarray(initializer(jax.random.key(seed), shape), dtype=np.float64)


def assert_same_law(ours, theirs):
    """Two-sample KS at 1e-4: our draw and JAX's come from one law."""
    p_value = stats.ks_2samp(np.ravel(ours), np.ravel(theirs)).pvalue
    assert p_value > KS_ALPHA, f"two-sample KS rejects: p={p_value:.2e}"


def haar_entry(n):
    """The law of one coordinate of a uniform unit vector of R^n."""
    a = (n - 1) / 2.0
    return stats.beta(a, a, loc=-1.0, scale=2.0)


# BoundedNormal: JAX's truncated_normal(stddev, lower, upper).

BOUNDED = [(0.02, -2.0, 2.0), (1.0, -1.0, 3.0), (0.5, 0.5, 2.5)]


@pytest.mark.parametrize("stddev, lower, upper", BOUNDED)
def test_bounded_normal_law(stddev, lower, upper):
    shape = (400, 300)
    values = to_numpy(ki.BoundedNormal(stddev, lower, upper, seed=1)(shape))
    assert values.min() >= lower * stddev and values.max() <= upper * stddev
    assert_matches(values, stats.truncnorm(lower, upper, scale=stddev))
    if ON_JAX:
        import jax

        theirs = jax.nn.initializers.truncated_normal(stddev, lower=lower, upper=upper)
        assert_same_law(values, jax_draw(theirs, shape))


def test_bounded_normal_std_is_before_the_cut():
    # JAX's stddev is the untruncated normal's: +-2 leaves 0.8796 of it (no correction).
    values = to_numpy(ki.BoundedNormal(0.02, seed=2)((400, 300)))
    n = values.size
    assert abs(values.std() - 0.02 * 0.87962566103423978) <= 5 * 0.02 * 0.88 / math.sqrt(2 * n)
    assert abs(values.std() - 0.02) > 0.002  # tells the two conventions apart


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_bounded_normal_stays_within_bounds(dtype):
    init = ki.BoundedNormal(1.0, -0.5, 1.5, seed=3)
    values = init((200, 200), dtype=dtype)
    assert keras.backend.standardize_dtype(values.dtype) == dtype
    values = to_numpy(values)
    assert values.min() >= -0.5 and values.max() <= 1.5
    assert values.min() < -0.45 and values.max() > 1.45  # it reaches both ends


def test_bounded_normal_errors():
    assert_error(
        lambda: ki.BoundedNormal(0.1, lower=1.0, upper=1.0),
        ValueError,
        "`upper` must be greater than `lower` (1.0). Received: upper=1.0",
    )
    assert_error(
        lambda: ki.BoundedNormal(0.1, lower=9.0, upper=10.0),
        ValueError,
        "`lower` and `upper` must bound an interval a normal reaches in float64",
        prefix=True,
    )
    assert_error(lambda: ki.BoundedNormal(True), TypeError, "`stddev`", prefix=True)
    assert_error(lambda: ki.BoundedNormal(0.1, lower=-math.inf), ValueError, "`lower`", prefix=True)
    assert ki.get("bounded_normal").get_config()["upper"] == 2.0


# VarianceScaling(batch_axis=...): JAX's batch_axis.


@pytest.mark.parametrize(
    "distribution, theirs", [("untruncated_normal", "normal"), ("uniform", "uniform")]
)
def test_batch_axis_law(distribution, theirs):
    # 16 conv kernels (9 taps) stacked: fan_in = 9 * 32, not 16 * 9 * 32. (JAX compiles
    # its draw for a rank-5 shape ~5 times slower than for this rank-4 one.)
    shape = (16, 9, 32, 64)
    init = ki.VarianceScaling(2.0, "fan_in", distribution, seed=4, batch_axis=0)
    assert init.stddev(shape) == pytest.approx(math.sqrt(2.0 / (9 * 32)))
    values = to_numpy(init(shape))
    std = math.sqrt(2.0 / (9 * 32))
    law = (
        stats.norm(scale=std)
        if theirs == "normal"
        else stats.uniform(-std * 3**0.5, 2 * std * 3**0.5)
    )
    assert_matches(values, law)
    if ON_JAX:
        import jax

        reference = jax.nn.initializers.variance_scaling(2.0, "fan_in", theirs, batch_axis=0)
        assert_same_law(values, jax_draw(reference, shape))


def test_batch_axis_truncated_matches_jax_and_config():
    shape = (8, 5, 100, 60)
    init = ki.VarianceScaling(1.0, "fan_avg", "truncated_normal", seed=5, batch_axis=(0,))
    std = math.sqrt(1.0 / ((5 * 100 + 5 * 60) / 2))
    sigma = std / 0.87962566103423978
    values = to_numpy(init(shape))
    assert_matches(values, stats.truncnorm(-2, 2, scale=sigma))
    if ON_JAX:
        import jax

        reference = jax.nn.initializers.variance_scaling(
            1.0, "fan_avg", "truncated_normal", batch_axis=0
        )
        assert_same_law(values, jax_draw(reference, shape))
    config = init.get_config()
    assert config["batch_axis"] == [0]
    again = ki.VarianceScaling.from_config(config)
    assert again.stddev(shape) == init.stddev(shape)
    assert keras_equivalent(init) is None  # Keras's VarianceScaling has no batch axis
    assert "batch_axis" not in ki.VarianceScaling().get_config()  # Keras's class reads it


def test_batch_axis_errors():
    assert_error(
        lambda: ki.VarianceScaling(batch_axis=-1)((3, 16, 32)),
        ValueError,
        "`batch_axis` must name axes before the last two (in, out) of a kernel of rank >= 2; "
        "this kernel has rank 3. Received: batch_axis=[-1]",
    )
    assert_error(
        lambda: ki.VarianceScaling(batch_axis=[4])((3, 16, 32)),
        ValueError,
        "`batch_axis` must hold axes in [-3, 3) for a kernel of rank 3. Received: batch_axis=[4]",
    )
    assert_error(
        lambda: ki.VarianceScaling(batch_axis="0"),
        TypeError,
        "`batch_axis` must be a list of ints or None. Received: batch_axis='0'",
    )
    # Explicit fan axes leave every unnamed axis out already: batch_axis is not used.
    init = ki.VarianceScaling(input_axes=[1], output_axes=[2], batch_axis=0)
    assert init.stddev((7, 16, 32)) == pytest.approx(1 / 4)


# mode="fan_geo_avg": JAX's sqrt(fan_in * fan_out).


@pytest.mark.parametrize(
    "distribution, theirs", [("untruncated_normal", "normal"), ("uniform", "uniform")]
)
def test_fan_geo_avg_law(distribution, theirs):
    shape = (100, 1600)  # geometric mean 400; the arithmetic one would be 850
    init = ki.VarianceScaling(1.0, "fan_geo_avg", distribution, seed=6)
    assert init.stddev(shape) == pytest.approx(1 / 20)
    values = to_numpy(init(shape))
    law = (
        stats.norm(scale=0.05)
        if theirs == "normal"
        else stats.uniform(-0.05 * 3**0.5, 0.1 * 3**0.5)
    )
    assert_matches(values, law)
    if ON_JAX:
        import jax

        reference = jax.nn.initializers.variance_scaling(1.0, "fan_geo_avg", theirs)
        assert_same_law(values, jax_draw(reference, shape))
    assert keras_equivalent(init) is None  # Keras has no such mode
    again = keras.initializers.deserialize(keras.initializers.serialize(init))
    assert type(again) is ki.VarianceScaling and again.mode == "fan_geo_avg"


def test_fan_geo_avg_in_activation_scaled_and_errors():
    assert ki.ActivationScaled("linear", mode="fan_geo_avg").stddev((25, 400)) == pytest.approx(0.1)
    assert_error(
        lambda: ki.VarianceScaling(mode="fan_geo"),
        ValueError,
        "`mode` must be one of ('fan_avg', 'fan_geo_avg', 'fan_in', 'fan_out'). "
        "Received: mode='fan_geo'",
    )


# column_axis of BlockOrthogonal and DeltaOrthogonal: JAX's orthogonal and delta_orthogonal.


def test_block_orthogonal_column_axis_law():
    shape = (2, 300, 200)  # columns on axis 1: a (400, 300) matrix, orthonormal columns
    values = to_numpy(ki.BlockOrthogonal(blocks=1, column_axis=1, seed=7)(shape))
    matrix = np.moveaxis(values, 1, -1).reshape(400, 300)
    np.testing.assert_allclose(matrix.T @ matrix, np.eye(300), atol=400 * 2.0**-23)
    assert_matches(values, haar_entry(400))
    if ON_JAX:
        import jax

        theirs = jax_draw(jax.nn.initializers.orthogonal(column_axis=1), shape)
        theirs_matrix = np.moveaxis(theirs, 1, -1).reshape(400, 300)
        np.testing.assert_allclose(theirs_matrix.T @ theirs_matrix, np.eye(300), atol=1e-4)
        assert_same_law(values, theirs)


def test_block_orthogonal_column_axis_blocks_and_config():
    # Four gates along axis 0 of a (4 * 32, 32) kernel: each (32, 32) block orthogonal.
    init = ki.BlockOrthogonal(column_axis=0, seed=8)
    values = to_numpy(init((128, 32)))
    assert init.blocks_for((128, 32)) == 4
    for block in np.split(values, 4, axis=0):
        np.testing.assert_allclose(block @ block.T, np.eye(32), atol=64 * 2.0**-23)
    assert ki.BlockOrthogonal.from_config(init.get_config()).column_axis == 0
    assert_error(
        lambda: ki.BlockOrthogonal(column_axis=2)((16, 16)),
        ValueError,
        "`column_axis` must be an axis of `shape`, in [-2, 2). "
        "Received: column_axis=2, shape=(16, 16)",
    )
    assert_error(
        lambda: ki.BlockOrthogonal(column_axis=True),
        TypeError,
        "`column_axis` must be an int. Received: column_axis=True",
    )


def test_delta_orthogonal_column_axis_law():
    shape = (3, 300, 400)
    values = to_numpy(ki.DeltaOrthogonal(column_axis=-2, seed=9)(shape))
    centre = values[1]
    np.testing.assert_allclose(centre @ centre.T, np.eye(300), atol=400 * 2.0**-23)
    assert not np.any(values[[0, 2]])
    assert_matches(centre, haar_entry(400))  # each row: a uniform unit vector of R^400
    if ON_JAX:
        import jax

        theirs = jax_draw(jax.nn.initializers.delta_orthogonal(column_axis=-2), shape)
        assert_same_law(centre, theirs[1])
    assert_error(
        lambda: ki.DeltaOrthogonal(column_axis=0),
        ValueError,
        "`column_axis` must be one of (-2, -1): an axis of the centre (in, out) matrix. "
        "Received: column_axis=0",
    )


# Complex dtypes: VarianceScaling and BlockOrthogonal draw them (tests/test_complex.py);
# BoundedNormal's real bounds have no complex meaning, so it refuses them clearly.


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_dtype_is_refused_by_bounded_normal(dtype):
    assert_error(
        lambda: ki.BoundedNormal()((4, 4), dtype=dtype),
        ValueError,
        "`dtype` must be a floating-point dtype, one of ",
        prefix=True,
    )
