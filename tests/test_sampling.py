"""The samplers draw exactly the distribution they name."""

import keras
import numpy as np
import pytest
from helpers import assert_matches, to_numpy
from scipy import stats

import keras_inits as ki
from keras_inits import _sampling
from keras_inits._sampling import TRUNCATED_STD

SHAPE = (400, 300)  # 120000 values


def test_truncated_std_constant():
    assert TRUNCATED_STD == pytest.approx(stats.truncnorm(-2, 2).std(), rel=1e-15)


def test_truncated_normal_is_the_truncated_normal():
    values = to_numpy(_sampling.truncated_normal(SHAPE, 0.3, "float32", seed=1))
    dist = stats.truncnorm(-2, 2, scale=0.3 / TRUNCATED_STD)
    assert_matches(values, dist)
    assert np.abs(values).max() <= np.float32(2 * 0.3 / TRUNCATED_STD)


def test_truncated_normal_has_no_value_beyond_the_bound_in_a_million():
    stddev = 1.0
    values = to_numpy(_sampling.truncated_normal((1000, 1000), stddev, "float32", seed=2))
    bound = np.float32(2 * stddev / TRUNCATED_STD)
    assert np.abs(values).max() <= bound
    # Exactness is not bought by clipping a lot: at most a rounding-error handful sit on the bound.
    assert np.sum(np.abs(values) == bound) <= 5


def test_normal_and_uniform():
    assert_matches(to_numpy(_sampling.normal(SHAPE, 0.05, "float32", seed=3)), stats.norm(0, 0.05))
    values = to_numpy(_sampling.uniform(SHAPE, 0.2, "float32", seed=4))
    assert_matches(values, stats.uniform(-0.2, 0.4))
    assert np.abs(values).max() <= np.float32(0.2)


@pytest.mark.parametrize(
    "sampler", [_sampling.normal, _sampling.uniform, _sampling.truncated_normal]
)
def test_same_int_seed_same_values(sampler):
    a = to_numpy(sampler((50,), 1.0, "float32", seed=11))
    b = to_numpy(sampler((50,), 1.0, "float32", seed=11))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_is_drawn_in_float32_then_cast(dtype):
    seed = 21
    low = _sampling.truncated_normal((64,), 1.0, dtype, seed=seed)
    high = _sampling.truncated_normal((64,), 1.0, "float32", seed=seed)
    assert keras.backend.standardize_dtype(low.dtype) == dtype
    np.testing.assert_array_equal(to_numpy(low), to_numpy(keras.ops.cast(high, dtype)))


def test_range_table_matches_the_dtypes():
    import ml_dtypes  # a Keras dependency

    for name, (largest, smallest) in _sampling._RANGE.items():
        info = ml_dtypes.finfo(getattr(ml_dtypes, name, None) or np.dtype(name))
        assert (largest, smallest) == (float(info.max), float(info.smallest_subnormal)), name


@pytest.mark.parametrize(
    "initializer, message",
    [
        (lambda: ki.SmallNormal(stddev=1e4), "values reach 85000"),
        (lambda: ki.SmallUniform(limit=7e4), "values reach 70000"),
        (lambda: ki.SmallNormal(stddev=1e-8), "nearly every value would round to 0"),
    ],
)
def test_draw_the_dtype_cannot_hold_is_refused(initializer, message):
    with pytest.raises(ValueError) as info:
        initializer()((4, 4), dtype="float16")
    assert message in str(info.value)
    assert str(info.value).startswith("`dtype` cannot hold draws with std")
    assert str(info.value).endswith("Received: dtype='float16'")
    assert np.all(np.isfinite(to_numpy(initializer()((4, 4), dtype="float32"))))


def test_variance_scaling_overflow_is_refused_for_its_shape():
    # scale 1e10 on fan_in 1: bound 2 * 1e5 / 0.88 overflows float16, not float32.
    initializer = ki.VarianceScaling(scale=1e10, seed=0)
    with pytest.raises(ValueError, match="Received: dtype='float16'"):
        initializer((1, 4), dtype="float16")
    assert np.all(np.isfinite(to_numpy(initializer((1, 4), dtype="float32"))))
