"""The samplers draw exactly the distribution they name."""

import math

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
    # (64 values of sigma 1: none near the bound, where the cast is corrected.)
    seed = 21
    low = _sampling.truncated_normal((64,), 1.0, dtype, seed=seed)
    high = _sampling.truncated_normal((64,), 1.0, "float32", seed=seed)
    assert keras.backend.standardize_dtype(low.dtype) == dtype
    np.testing.assert_array_equal(to_numpy(low), to_numpy(keras.ops.cast(high, dtype)))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("sampler", ["normal", "truncated_normal", "uniform"])
@pytest.mark.parametrize("shape", [(), (1,), (3, 2)])
def test_half_precision_keeps_its_dtype_on_every_shape(sampler, dtype, shape):
    # A 0-d half tensor clipped with float limits came back float32 on torch
    # (Keras's clip promotes it); a property test found it on CI.
    values = getattr(_sampling, sampler)(shape, 1.0, dtype, seed=5)
    assert (tuple(values.shape), keras.backend.standardize_dtype(values.dtype)) == (shape, dtype)


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


# The backend fast paths (TensorFlow, JAX, torch) and the portable path.

BACKEND = keras.backend.backend()
SAMPLERS = {
    "uniform": (_sampling.uniform, lambda s: stats.uniform(-s, 2 * s)),
    "normal": (_sampling.normal, lambda s: stats.norm(0, s)),
    "truncated_normal": (
        _sampling.truncated_normal,
        lambda s: stats.truncnorm(-2, 2, scale=s / TRUNCATED_STD),
    ),
}


def test_this_backend_has_a_module_of_its_own():
    module = _sampling.backend_module()
    assert module.__name__ == f"keras_inits._sampling._{BACKEND}"
    assert _sampling.backend_module() is module  # imported once


@pytest.mark.parametrize("kind", sorted(SAMPLERS))
def test_portable_path_draws_the_same_distribution(kind):
    # The path other backends (and seed=None) take, called directly.
    scale = 0.4 / TRUNCATED_STD if kind == "truncated_normal" else 0.4
    values = to_numpy(_sampling._portable.draw(kind, SHAPE, scale, "float32", 5))
    assert_matches(values, SAMPLERS[kind][1](0.4))


@pytest.mark.parametrize("kind", sorted(SAMPLERS))
def test_seed_generator_draws_the_distribution_and_advances_once(kind):
    sampler, dist = SAMPLERS[kind]
    generator = keras.random.SeedGenerator(3)
    values = to_numpy(sampler(SHAPE, 0.2, "float32", seed=generator))
    assert_matches(values, dist(0.2))
    # One draw advances the generator as one keras.random draw does.
    reference = keras.random.SeedGenerator(3)
    keras.random.uniform((2,), seed=reference)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(generator.state), keras.ops.convert_to_numpy(reference.state)
    )
    again = to_numpy(sampler(SHAPE, 0.2, "float32", seed=keras.random.SeedGenerator(3)))
    np.testing.assert_array_equal(values, again)
    assert not np.array_equal(values, to_numpy(sampler(SHAPE, 0.2, "float32", seed=generator)))


@pytest.mark.parametrize("kind", sorted(SAMPLERS))
def test_different_int_seeds_differ(kind):
    sampler = SAMPLERS[kind][0]
    a = to_numpy(sampler((50,), 1.0, "float32", seed=11))
    b = to_numpy(sampler((50,), 1.0, "float32", seed=12))
    assert not np.array_equal(a, b)


def test_seeds_beyond_32_bits_are_accepted():
    # Keras's seeds are two 32-bit words; a larger int wraps as keras.random's own do.
    values = to_numpy(_sampling.normal((8,), 1.0, "float32", seed=2**40 + 7))
    assert np.all(np.isfinite(values))


# 3 chunks and a ragged tail on JAX, where outside a trace on a CPU the draw is chunked.
JAX_CHUNK = 1 << 16  # keras_inits._sampling._jax._CHUNK (checked where JAX runs)
LONG = (3 * JAX_CHUNK + 1234,)


@pytest.mark.parametrize("kind", sorted(SAMPLERS))
def test_long_draws_match_the_distribution_and_every_chunk_is_fresh(kind):
    sampler, dist = SAMPLERS[kind]
    values = to_numpy(sampler(LONG, 0.3, "float32", seed=8))
    assert_matches(values, dist(0.3))
    # A chunk drawn with a reused key would repeat another one value for value.
    chunk = JAX_CHUNK
    pieces = [values[i * chunk : (i + 1) * chunk] for i in range(3)] + [values[-chunk:]]
    for i in range(len(pieces)):
        for j in range(i + 1, len(pieces)):
            assert np.sum(pieces[i] == pieces[j]) <= 2, (i, j)
    assert_within_support(kind, values, 0.3)


def assert_within_support(kind, values, scale):
    if kind == "truncated_normal":
        assert np.abs(values).max() <= np.float32(2 * scale / TRUNCATED_STD)
    if kind == "uniform":
        assert np.abs(values).max() <= np.float32(scale)


def test_float64_truncated_normal_is_exact():
    from helpers import backend_has_float64

    if not backend_has_float64():
        pytest.skip("this backend gives float32 for float64")
    values = _sampling.truncated_normal(SHAPE, 0.7, "float64", seed=6)
    assert keras.backend.standardize_dtype(values.dtype) == "float64"
    values = to_numpy(values)
    assert_matches(values, stats.truncnorm(-2, 2, scale=0.7 / TRUNCATED_STD))
    assert np.abs(values).max() <= 2 * 0.7 / TRUNCATED_STD


@pytest.mark.skipif(BACKEND != "jax", reason="jax.jit tracing is JAX's")
@pytest.mark.parametrize("kind", sorted(SAMPLERS))
def test_draws_trace_under_jax_jit(kind):
    import jax

    sampler, dist = SAMPLERS[kind]
    jitted = jax.jit(lambda: sampler(LONG, 0.3, "float32", seed=8))
    values = to_numpy(jitted())
    assert values.shape == LONG
    assert_matches(values, dist(0.3))
    assert_within_support(kind, values, 0.3)
    np.testing.assert_array_equal(values, to_numpy(jitted()))


# One stream: eager draws are chunked, traced ones whole, in the kernel's N-D shape.
STREAM_SHAPES = [LONG, (300, 700), (3, 5, 64, 129)]


@pytest.mark.skipif(BACKEND != "jax", reason="jax.jit tracing is JAX's")
@pytest.mark.parametrize("kind", sorted(SAMPLERS))
def test_jax_eager_and_traced_draws_are_one_stream(kind):
    import jax
    import jax.numpy as jnp

    sampler, _ = SAMPLERS[kind]
    for shape in STREAM_SHAPES:
        eager = to_numpy(sampler(shape, 0.3, "float32", seed=8))
        traced = to_numpy(jax.jit(lambda shape=shape: sampler(shape, 0.3, "float32", seed=8))())
        np.testing.assert_array_equal(eager, traced)
        # The bits are jax.random.bits's (threefry_partitionable) at the same key:
        # value i of every shape is a function of i alone.
        flat = to_numpy(sampler((math.prod(shape),), 0.3, "float32", seed=8))
        np.testing.assert_array_equal(eager.reshape(-1), flat)
    key = jnp.asarray([8, 0], jnp.uint32)
    if kind == "normal":
        with jax.threefry_partitionable(True):
            expected = np.asarray(jax.random.normal(key, LONG))
        np.testing.assert_array_equal(to_numpy(sampler(LONG, 1.0, "float32", seed=8)), expected)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.function is TensorFlow's")
@pytest.mark.parametrize("kind", sorted(SAMPLERS))
def test_tensorflow_eager_and_tf_function_draws_are_one_stream(kind):
    import tensorflow as tf

    sampler, _ = SAMPLERS[kind]
    for shape in STREAM_SHAPES:
        eager = to_numpy(sampler(shape, 0.3, "float32", seed=8))
        traced = to_numpy(tf.function(lambda shape=shape: sampler(shape, 0.3, "float32", seed=8))())
        np.testing.assert_array_equal(eager, traced)


# Past FUSED_FROM values TensorFlow's truncated normal runs its inverse CDF
# through one XLA program of a fixed chunk size: 4 whole chunks and a ragged tail.
FUSED = (2048, 2049)


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "tensorflow", reason="the fused chunks are TensorFlow's")
def test_tensorflow_fused_truncated_normal_is_exact_and_one_stream(monkeypatch):
    import tensorflow as tf

    from keras_inits._sampling import _tensorflow

    assert math.prod(FUSED) >= _tensorflow.FUSED_FROM
    assert math.prod(FUSED) % _tensorflow.CHUNK
    sampler, dist = SAMPLERS["truncated_normal"]
    fused = to_numpy(sampler(FUSED, 0.3, "float32", seed=8))
    assert_matches(fused, dist(0.3))
    assert_within_support("truncated_normal", fused, 0.3)
    traced = to_numpy(tf.function(lambda: sampler(FUSED, 0.3, "float32", seed=8))())
    np.testing.assert_array_equal(fused, traced)
    # The same uniform draw as the unfused graph: only erfinv's rounding differs
    # (XLA's approximation against TensorFlow's kernel), by a few float32 ulps.
    monkeypatch.setattr(_tensorflow, "FUSED_FROM", math.prod(FUSED) + 1)
    graph = to_numpy(sampler(FUSED, 0.3, "float32", seed=8))
    np.testing.assert_allclose(fused, graph, rtol=0, atol=8 * np.finfo(np.float32).eps * 0.7)


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "tensorflow", reason="the fused chunks are TensorFlow's")
def test_tensorflow_fused_inverse_cdf_is_exact_on_every_uniform_value():
    """All 2^23 float32 values TensorFlow's uniform draw can give, through the fused chunk."""
    import tensorflow as tf
    from scipy import special

    from keras_inits._sampling import _tensorflow
    from keras_inits._sampling._common import ERF_SQRT2

    step = _tensorflow.UNIT_STEP["float32"]
    unit = tf.range(round(1 / step), dtype=tf.float32) * step  # exact: k 2^-23
    chunks = tf.reshape(unit, [-1, _tensorflow.CHUNK])
    scale = tf.constant(1.0)
    fused = _tensorflow.fused_chunk("truncated_normal", "float32")
    ours = np.concatenate([fused(chunk, scale).numpy() for chunk in chunks])

    @tf.function(jit_compile=True, autograph=False)
    def xla_erfinv(chunk):  # XLA's own erfinv, both of its branches
        return _tensorflow.inverse_cdf(chunk, scale)

    xla = np.concatenate([xla_erfinv(chunk).numpy() for chunk in chunks])
    v = unit.numpy().astype(np.float64) * (2 * ERF_SQRT2) - ERF_SQRT2
    truth = np.clip(math.sqrt(2) * special.erfinv(v), -2.0, 2.0)
    ulp = np.spacing(np.abs(truth).astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(ours) <= 2.0)
    error = np.max(np.abs(ours - truth) / ulp)
    # No less exact than XLA's erfinv, and a few ulps from it.
    assert error <= 6
    assert error <= np.max(np.abs(xla - truth) / ulp)
    assert np.max(np.abs(ours.astype(np.float64) - xla) / ulp) <= 3
    # Not a looser copy of XLA's: the two differ somewhere (the 1 - x^2 rounding).
    assert np.any(ours != xla)


@pytest.mark.skipif(BACKEND != "jax", reason="jax.jit tracing is JAX's")
def test_seed_generator_draw_traces_under_jax_jit_statelessly():
    import jax

    generator = keras.random.SeedGenerator(4)

    def draw(state):
        with keras.StatelessScope(state_mapping=[(generator.state, state)]) as scope:
            values = _sampling.truncated_normal((300, 400), 1.0, "float32", seed=generator)
        return values, scope.get_current_value(generator.state)

    values, state = jax.jit(draw)(generator.state.value)
    assert_matches(to_numpy(values), stats.truncnorm(-2, 2, scale=1 / TRUNCATED_STD))
    assert not np.array_equal(np.asarray(state), np.asarray(generator.state.value))


@pytest.mark.skipif(BACKEND != "torch", reason="the meta device is torch's")
def test_torch_meta_device_falls_back_to_the_portable_path():
    with keras.device("meta"):
        values = _sampling.truncated_normal((30, 20), 1.0, "float32", seed=1)
    assert values.device.type == "meta"
    assert tuple(values.shape) == (30, 20)


# ----- Layouts: chunked on a CPU, whole on a GPU or TPU, the same values ---------


def test_layout_follows_the_platform_and_can_be_forced():
    assert _sampling.layout_for("cpu") == "chunked"
    assert _sampling.layout_for("gpu") == "whole"
    assert _sampling.layout_for("tpu") == "whole"
    with _sampling.forced_layout("whole"):
        assert _sampling.layout_for("cpu") == "whole"
        with _sampling.forced_layout("chunked"):
            assert _sampling.layout_for("gpu") == "chunked"
        assert _sampling.layout_for("gpu") == "whole"
    assert _sampling.layout_for("cpu") == "chunked"


def test_forcing_an_unknown_layout_is_refused():
    with pytest.raises(ValueError) as info:
        with _sampling.forced_layout("tiled"):
            pass
    assert str(info.value) == (
        "`layout` must be one of ('chunked', 'whole'). Received: layout='tiled'"
    )


@pytest.mark.skipif(BACKEND == "torch", reason="torch draws whole, in place, on every device")
def test_this_machine_picks_the_cpu_layout():
    # The suite runs on CPUs: JAX's eager draws chunk, TensorFlow's fused ones too.
    if BACKEND == "jax":
        from keras_inits._sampling import _jax

        assert _jax._CHUNK == JAX_CHUNK
        assert _jax.chunked(math.prod(LONG), tracing=False)
        assert not _jax.chunked(math.prod(LONG), tracing=True)
        with _sampling.forced_layout("whole"):
            assert not _jax.chunked(math.prod(LONG), tracing=False)
    if BACKEND == "tensorflow":
        from keras_inits._sampling import _tensorflow

        assert _tensorflow.layout() == "chunked"
        with _sampling.forced_layout("whole"):
            assert _tensorflow.layout() == "whole"


# LONG: JAX's chunks and tail; FUSED: TensorFlow's fused chunks and tail.
@pytest.mark.parametrize("shape", [LONG, (2048, 2049)], ids=["long", "fused"])
@pytest.mark.parametrize("kind", sorted(SAMPLERS))
def test_whole_and_chunked_layouts_give_the_same_values(kind, shape):
    sampler = SAMPLERS[kind][0]
    with _sampling.forced_layout("chunked"):
        chunked = to_numpy(sampler(shape, 0.3, "float32", seed=8))
        chunked_generator = to_numpy(sampler(shape, 0.3, "float32", keras.random.SeedGenerator(2)))
    with _sampling.forced_layout("whole"):
        whole = to_numpy(sampler(shape, 0.3, "float32", seed=8))
        whole_generator = to_numpy(sampler(shape, 0.3, "float32", keras.random.SeedGenerator(2)))
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_array_equal(chunked_generator, whole_generator)
    assert not np.array_equal(chunked, chunked_generator)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_sparse_normal_whole_and_chunked_layouts_give_the_same_values(dtype):
    rows, cols, zeros = 2048, 2049, 1500  # past TensorFlow's FUSED_FROM; masks inverted
    with _sampling.forced_layout("chunked"):
        chunked = to_numpy(_sampling.sparse_normal(rows, cols, zeros, 0.5, dtype, (4, 5)))
    with _sampling.forced_layout("whole"):
        whole = to_numpy(_sampling.sparse_normal(rows, cols, zeros, 0.5, dtype, (4, 5)))
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_array_equal(np.sum(chunked == 0, axis=0), np.full(cols, zeros))


# ----- Kernels past 2^31 values, never allocated --------------------------------
# Gemma 3's vocabulary at width 16,384: 2^32 values, past int32 indices and past
# the low word of JAX's 64-bit counters. (Llama-3-405B's embedding, 128,256 x
# 16,384, holds 2,101,346,304 values: just inside 2^31 - 1.)
HUGE = (262_144, 16_384)


def test_draws_past_2_31_values_are_drawn_or_refused_before_any_work():
    assert math.prod((128_256, 16_384)) <= 2**31 - 1 < math.prod(HUGE) == 2**32
    if BACKEND == "tensorflow":
        message = (
            "`shape` must hold at most 2147483647 values on TensorFlow (2^31 - 1: its draws "
            "index values with int32); this one holds 4294967296. Received: shape=(262144, 16384)"
        )
        for draw in (
            lambda: _sampling.truncated_normal(HUGE, 0.02, "bfloat16", 0),
            lambda: _sampling.uniform(HUGE, 0.02, "float32", keras.random.SeedGenerator(1)),
            lambda: _sampling.sparse_normal(*HUGE, 10, 0.02, "float32", (1, 2)),
            lambda: _sampling.column_subsets(*HUGE, 10, 1),
        ):
            with pytest.raises(ValueError) as info:
                draw()
            assert str(info.value) == message
        return
    if BACKEND == "jax":
        import jax

        from keras_inits._sampling import _jax

        # Eager on a CPU it is drawn whole: the chunk loop's int32 offsets stop at 2^31.
        with _sampling.forced_layout("chunked"):
            assert not _jax.chunked(math.prod(HUGE), tracing=False)
            assert _jax.chunked(2**31 - 1, tracing=False)
        for kind in sorted(SAMPLERS):
            out = jax.eval_shape(lambda kind=kind: SAMPLERS[kind][0](HUGE, 0.02, "bfloat16", 0))
            assert (out.shape, str(out.dtype)) == (HUGE, "bfloat16")
        return
    # torch indexes with int64: on the meta device the draw runs shape-only.
    with keras.device("meta"):
        values = _sampling.truncated_normal(HUGE, 0.02, "bfloat16", 0)
    assert tuple(values.shape) == HUGE and values.device.type == "meta"


# ----- Half precision: truncated values strictly inside the bound after the cast ----
# The cast from float32 rounds to nearest: values within half a step of the bound
# 2 sigma land on it. At sigma = 1 the truncated normal's density there is
# phi(2) / erf(sqrt 2) = 0.0566, the step below 2 is 2^-7 (bfloat16) or 2^-10
# (float16), so a value lands on +-2 with probability 2 * 0.0566 * 2^-8 = 4.4e-4
# (bfloat16; 3 of 10,000 were seen) or 5.5e-5 (float16). Missing every one in n
# values has probability exp(-n p): n = 10^6 gives e^-55 in float16, and the
# test also checks that the uncorrected cast of the same draw does hit the bound.
@pytest.mark.parametrize("stddev", [TRUNCATED_STD, 0.3], ids=["sigma1", "std0.3"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_truncated_values_stay_strictly_inside_the_bound(dtype, stddev):
    bound = 2 * stddev / TRUNCATED_STD
    shape = (1000, 1000)
    values = to_numpy(_sampling.truncated_normal(shape, stddev, dtype, seed=3))
    assert np.abs(values).max() < bound
    cast = to_numpy(keras.ops.cast(_sampling.truncated_normal(shape, stddev, "float32", 3), dtype))
    hits = np.abs(cast) >= bound
    if stddev == TRUNCATED_STD:  # sigma 1: bound 2 is a half-precision value
        assert hits.sum() >= 10, "too few samples to see the cast land on the bound"
    # Only the values the cast moved onto (or past) the bound changed, to the next inside.
    np.testing.assert_array_equal(values[~hits], cast[~hits])
    inside = _sampling.below(bound, dtype)
    np.testing.assert_array_equal(np.abs(values[hits]), np.full(hits.sum(), inside))
    assert_matches(values, stats.truncnorm(-2, 2, scale=stddev / TRUNCATED_STD), ks=False)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_below_is_the_largest_value_strictly_below(dtype):
    import ml_dtypes  # a Keras dependency

    kind = getattr(ml_dtypes, dtype, None) or np.dtype(dtype).type
    bounds = [2.0, 1.0, 0.5, 3.0, 2.0 / 0.87962566103423978, 1e-3, 7e-6, 1e-7, 60000.0]
    bounds += list(np.random.default_rng(0).uniform(1e-4, 100.0, 200))
    for bound in bounds:
        nearest = kind(bound)
        if float(nearest) >= bound:
            nearest = np.nextafter(nearest, kind(0))
        assert _sampling.below(bound, dtype) == float(nearest), bound
