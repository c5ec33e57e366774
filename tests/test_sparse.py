"""Sparse: exact zeros per column, a reproducible mask, N(0, stddev^2) elsewhere."""

import itertools
import json
import math

import keras
import numpy as np
import pytest
from helpers import (
    KS_ALPHA,
    SIGMAS,
    assert_error,
    assert_matches,
    backend_has_float64,
    to_numpy,
)
from scipy import stats

import keras_inits as ki
from keras_inits import _sampling


def zero_counts(kernel):
    flat = np.reshape(kernel, (-1, kernel.shape[-1]))
    return (flat == 0).sum(axis=0)


@pytest.mark.parametrize(
    ("shape", "sparsity", "zeros"),
    [
        ((100, 64), 0.9, 90),
        ((3, 3, 16, 32), 0.9, 130),  # round(129.6)
        ((1000, 10), 0.5, 500),
        ((5, 7), 0.5, 2),  # round(2.5) = 2: Python's round, halves to even
        ((7, 9), 0.5, 4),  # round(3.5) = 4
        ((50, 20), 0.0, 0),
        ((2, 5, 300), 0.3, 3),
    ],
)
@pytest.mark.parametrize("dtype", ["bfloat16", "float32", "float64"])
def test_exactly_the_stated_zeros_in_every_column(shape, sparsity, zeros, dtype):
    if dtype == "float64" and not backend_has_float64():
        pytest.skip("this backend has no float64 without its x64 switch")
    initializer = ki.Sparse(sparsity=sparsity, seed=1)
    assert initializer.zeros_per_column(shape) == zeros == round(sparsity * math.prod(shape[:-1]))
    output = initializer(shape, dtype=dtype)
    assert keras.backend.standardize_dtype(output.dtype) == dtype
    assert tuple(output.shape) == shape
    assert set(zero_counts(to_numpy(output)).tolist()) == {zeros}


def test_float16_zeros_at_least_the_mask():
    # float16 may round a draw below 6e-8 to 0 as well (about 5 in 10^6 values
    # at stddev 0.01); the mask's zeros are always there, and only those here.
    counts = zero_counts(to_numpy(ki.Sparse(seed=2)((200, 500), dtype="float16")))
    assert counts.min() == 180 and counts.max() <= 181


def test_same_seed_same_mask_and_values_other_seed_other_mask():
    shape = (64, 128)
    first = to_numpy(ki.Sparse(seed=7)(shape))
    np.testing.assert_array_equal(first, to_numpy(ki.Sparse(seed=7)(shape)))
    other = to_numpy(ki.Sparse(seed=8)(shape))
    assert not np.array_equal(first == 0, other == 0), "another seed, the same mask"
    again = ki.Sparse(seed=7)
    again(shape)
    assert not np.array_equal(first == 0, to_numpy(again(shape)) == 0), "calls repeat a mask"


def test_seed_generator_streams_masks():
    def stream(seed):
        initializer = ki.Sparse(seed=keras.random.SeedGenerator(seed))
        return to_numpy(initializer((40, 30))), to_numpy(initializer((40, 30)))

    (a0, a1), (b0, b1) = stream(3), stream(3)
    np.testing.assert_array_equal(a0, b0)
    np.testing.assert_array_equal(a1, b1)
    assert not np.array_equal(a0 == 0, a1 == 0)


def test_mask_does_not_depend_on_dtype():
    shape = (60, 80)
    single = to_numpy(ki.Sparse(seed=4)(shape, dtype="float32"))
    half = to_numpy(ki.Sparse(seed=4)(shape, dtype="bfloat16"))
    np.testing.assert_array_equal(single == 0, half == 0)
    # bfloat16 keeps 8 bits of the float32 draw: relative error <= 2^-8.
    np.testing.assert_allclose(half, single, rtol=2.0**-8, atol=0)


def test_every_row_is_equally_likely_to_be_zero():
    # Each column's zeros are a uniformly random subset of size z, so row i is
    # zero in a column with probability z / r, independently across columns:
    # its zero count over n columns is Binomial(n, z / r). A mask that favours
    # some rows (the first z, say) lands far outside 5 standard errors.
    rows, cols, sparsity = 20, 20_000, 0.7
    kernel = to_numpy(ki.Sparse(sparsity=sparsity, seed=5)((rows, cols)))
    p = round(sparsity * rows) / rows
    per_row = (kernel == 0).sum(axis=1)
    tolerance = SIGMAS * math.sqrt(cols * p * (1 - p))
    assert np.abs(per_row - cols * p).max() <= tolerance, per_row


@pytest.mark.parametrize("stddev", [0.01, 0.3])
def test_nonzeros_are_normal_with_the_stated_std(stddev):
    # 10% of 1000 x 1000 kept: 10^5 values. The values' seed is not the mask's:
    # were they shared (one JAX key for both), the kept values would be the
    # large ones and this test would fail.
    kernel = to_numpy(ki.Sparse(sparsity=0.9, stddev=stddev, seed=6)((1000, 1000)))
    nonzeros = kernel[kernel != 0]
    assert nonzeros.size == 100_000
    assert_matches(nonzeros, stats.norm(0.0, stddev))


def test_variance_of_the_whole_kernel():
    shape, sparsity, stddev = (400, 500), 0.75, 0.05
    kernel = to_numpy(ki.Sparse(sparsity=sparsity, stddev=stddev, seed=9)(shape))
    # W = B Z with B ~ Bernoulli(1 - s) exactly 100 of 400 per column: Var = (1 - s) stddev^2.
    variance = (1 - sparsity) * stddev**2
    kurtosis = 3 / (1 - sparsity) - 3  # excess kurtosis of a zero-inflated normal
    n = kernel.size
    tolerance = SIGMAS * math.sqrt(variance) * math.sqrt((kurtosis + 2) / n) / 2
    assert abs(kernel.std() - math.sqrt(variance)) <= tolerance


def test_config_round_trip():
    initializer = ki.Sparse(sparsity=0.8, stddev=0.02, seed=3)
    assert initializer.get_config() == {"seed": 3, "sparsity": 0.8, "stddev": 0.02}
    # Through JSON, as a saved file holds it (an in-memory copy continues the stream).
    saved = json.loads(json.dumps(keras.initializers.serialize(initializer)))
    rebuilt = keras.initializers.deserialize(saved)
    np.testing.assert_array_equal(to_numpy(rebuilt((30, 20))), to_numpy(initializer((30, 20))))


def test_by_string_in_a_dense_layer():
    layer = keras.layers.Dense(32, kernel_initializer="sparse")
    layer(keras.ops.ones((2, 50)))
    assert set(zero_counts(to_numpy(layer.kernel)).tolist()) == {45}


ERRORS = [
    (
        lambda: ki.Sparse(sparsity=1.0),
        ValueError,
        "`sparsity` must be a number in [0, 1). Received: sparsity=1.0",
    ),
    (
        lambda: ki.Sparse(sparsity=-0.1),
        ValueError,
        "`sparsity` must be a number in [0, 1). Received: sparsity=-0.1",
    ),
    (
        lambda: ki.Sparse(sparsity=float("nan")),
        ValueError,
        "`sparsity` must be a number in [0, 1). Received: sparsity=nan",
    ),
    (
        lambda: ki.Sparse(sparsity=True),
        TypeError,
        "`sparsity` must be a real number, not bool. Received: sparsity=True",
    ),
    (
        lambda: ki.Sparse(sparsity="0.5"),
        TypeError,
        "`sparsity` must be a real number, not str. Received: sparsity='0.5'",
    ),
    (
        lambda: ki.Sparse(stddev=0),
        ValueError,
        "`stddev` must be a finite number > 0. Received: stddev=0",
    ),
    (
        lambda: ki.Sparse(stddev=math.inf),
        ValueError,
        "`stddev` must be a finite number > 0. Received: stddev=inf",
    ),
    (
        lambda: ki.Sparse(stddev=None),
        TypeError,
        "`stddev` must be a real number, not NoneType. Received: stddev=None",
    ),
    (
        lambda: ki.Sparse(seed=1.5),
        TypeError,
        "`seed` must be an int, a keras.random.SeedGenerator or None. Received: seed=1.5",
    ),
    (
        lambda: ki.Sparse()((10,)),
        ValueError,
        "`shape` must have rank >= 2, laid out (*receptive_field, in, out) for Sparse. "
        "Received: shape=(10,)",
    ),
    (
        lambda: ki.Sparse()((4, 8)),
        ValueError,
        "`sparsity` must leave a nonzero weight in each column: round(0.9 * 4) = 4 of the "
        "4 rows of `shape` would be 0. Received: sparsity=0.9, shape=(4, 8)",
    ),
    (
        lambda: ki.Sparse(sparsity=0.6)((1, 1, 1, 3)),
        ValueError,
        "`sparsity` must leave a nonzero weight in each column: round(0.6 * 1) = 1 of the "
        "1 rows of `shape` would be 0. Received: sparsity=0.6, shape=(1, 1, 1, 3)",
    ),
]


@pytest.mark.parametrize("index", range(len(ERRORS)))
def test_bad_arguments_give_the_exact_message(index):
    make, error_type, message = ERRORS[index]
    assert_error(make, error_type, message)


def test_empty_kernel_is_empty_and_checked():
    assert tuple(ki.Sparse(seed=0)((0, 5)).shape) == (0, 5)
    with pytest.raises(ValueError, match="rank >= 2"):
        ki.Sparse()((0,))


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="jax.jit tracing is JAX's")
@pytest.mark.parametrize("seed", [None, 17])
def test_call_traces_under_jax_jit(seed):
    import jax

    jitted = jax.jit(ki.Sparse(seed=seed).__call__, static_argnames=("shape", "dtype"))
    values = np.asarray(jitted(shape=(100, 64), dtype="float32"))
    assert set(zero_counts(values).tolist()) == {90}


# ----- the mask without a sort (_sampling.column_subsets) ------------------------


def as_array(mask):
    return keras.ops.convert_to_numpy(mask)


@pytest.mark.parametrize(
    ("rows", "cols", "count"),
    [(1, 7, 0), (1, 7, 1), (5, 3, 2), (5, 3, 3), (64, 100, 6), (64, 100, 58), (300, 40, 150)],
)
def test_column_subsets_hold_exactly_count_per_column(rows, cols, count):
    mask = as_array(_sampling.column_subsets(rows, cols, count, 3))
    assert mask.shape == (rows, cols) and mask.dtype == bool
    assert set(mask.sum(axis=0).tolist()) == {count}


@pytest.mark.parametrize("count", [2, 3])  # 2 rows picked directly; 3 = the complement of 2
def test_every_subset_of_a_column_is_equally_likely(count):
    # 5 rows, `count` of them: C(5, count) = 10 subsets, each with chance 1/10 in
    # every column, independently. 20000 columns, a chi-square test at KS_ALPHA: a
    # method that favoured some rows, or pairs of rows, fails it.
    rows, cols = 5, 20_000
    mask = as_array(_sampling.column_subsets(rows, cols, count, 12))
    assert set(mask.sum(axis=0).tolist()) == {count}
    codes = (mask * (1 << np.arange(rows))[:, None]).sum(axis=0)
    subsets = [sum(1 << i for i in c) for c in itertools.combinations(range(rows), count)]
    observed = np.array([(codes == s).sum() for s in subsets])
    assert observed.sum() == cols
    assert stats.chisquare(observed).pvalue > KS_ALPHA, observed


def test_column_subsets_are_a_function_of_the_seed():
    first = as_array(_sampling.column_subsets(200, 300, 20, 5))
    np.testing.assert_array_equal(first, as_array(_sampling.column_subsets(200, 300, 20, 5)))
    assert not np.array_equal(first, as_array(_sampling.column_subsets(200, 300, 20, 6)))


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="torch picks in rounds")
def test_rounds_survive_running_out_of_slot_ids(monkeypatch):
    # With int8 ids (126 a span), round 2 of 120 picks runs out and renumbers the
    # table; the mask must still hold exactly 120 rows a column, and not change
    # with the id width (the ids decide nothing but which duplicate counts).
    from keras_inits._sampling import _torch

    expected = as_array(_sampling.column_subsets(300, 50, 120, 8))
    monkeypatch.setattr(_torch, "_id_dtype", lambda picks: "int8")
    np.testing.assert_array_equal(as_array(_sampling.column_subsets(300, 50, 120, 8)), expected)


# From FUSED_FROM values on, TensorFlow runs Floyd's loop as an XLA program
# and the values through the fused chunks: 4 whole chunks and a ragged tail.
FUSED = (2049, 2048)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the XLA paths are TF's")
def test_tensorflow_compiled_and_graph_floyd_give_the_same_mask():
    import tensorflow as tf

    from keras_inits._sampling import _tensorflow

    for rows, cols, picks in [(7, 5, 3), (300, 41, 120), (1000, 33, 1)]:
        bits = tf.random.stateless_uniform(
            [picks, cols], seed=[3, 4], minval=None, maxval=None, dtype=tf.uint32
        )
        words = -(-rows * cols // 32) + 3  # padding words stay 0
        graph = _tensorflow.floyd_words(bits, rows, words, compiled=False)
        compiled = _tensorflow.floyd_words(bits, rows, words, compiled=True)
        np.testing.assert_array_equal(as_array(compiled), as_array(graph))
        mask = np.unpackbits(as_array(graph).view(np.uint8), bitorder="little")
        assert not mask[rows * cols :].any()
        assert set(mask[: rows * cols].reshape(rows, cols).sum(axis=0).tolist()) == {picks}


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the XLA paths are TF's")
@pytest.mark.parametrize("sparsity", [0.1, 0.9])
def test_tensorflow_fused_sparse_is_exact_and_one_stream(monkeypatch, sparsity):
    import tensorflow as tf

    from keras_inits._sampling import _tensorflow

    assert math.prod(FUSED) >= _tensorflow.FUSED_FROM
    assert math.prod(FUSED) % _tensorflow.CHUNK
    initializer = ki.Sparse(sparsity=sparsity, stddev=0.3, seed=13)
    fused = to_numpy(initializer(FUSED))
    zeros = initializer.zeros_per_column(FUSED)
    assert set(zero_counts(fused).tolist()) == {zeros}
    assert_matches(fused[fused != 0], stats.norm(0.0, 0.3))
    traced = tf.function(lambda: ki.Sparse(sparsity=sparsity, stddev=0.3, seed=13)(FUSED))()
    np.testing.assert_array_equal(to_numpy(traced), fused)
    # The graph path: the same mask, the same uniform draw, erfinv's rounding
    # apart: TensorFlow's kernel is within 4 float32 ulps of the exact inverse
    # CDF on this grid, XLA's within 6e-6 relative (about 100 ulps, beyond
    # |z| = 3.7, where the uniform grid itself spaces the values 3e-4 apart).
    monkeypatch.setattr(_tensorflow, "FUSED_FROM", math.prod(FUSED) + 1)
    graph = to_numpy(ki.Sparse(sparsity=sparsity, stddev=0.3, seed=13)(FUSED))
    np.testing.assert_array_equal(graph == 0, fused == 0)
    np.testing.assert_allclose(fused, graph, rtol=1e-5, atol=0)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="jax.jit tracing is JAX's")
def test_jitted_call_gives_the_eager_values():
    import jax

    shape = (3, 3, 40, 64)
    eager = to_numpy(ki.Sparse(sparsity=0.3, seed=21)(shape))
    jitted = jax.jit(ki.Sparse(sparsity=0.3, seed=21).__call__, static_argnames=("shape", "dtype"))
    np.testing.assert_array_equal(to_numpy(jitted(shape=shape, dtype="float32")), eager)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.function is TF's")
def test_traced_call_gives_the_eager_values():
    import tensorflow as tf

    shape = (3, 3, 40, 64)
    eager = to_numpy(ki.Sparse(sparsity=0.3, seed=21)(shape))
    traced = tf.function(lambda: ki.Sparse(sparsity=0.3, seed=21)(shape))()
    np.testing.assert_array_equal(to_numpy(traced), eager)
