"""The seed policy, input checks and config handling shared by every class."""

import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import backend_has_float64, std_tolerance, to_numpy
from scipy import stats

import keras_inits as ki
from keras_inits._base import derive_seed

SHAPE = (32, 16)


def draw(initializer, shape=SHAPE):
    return to_numpy(initializer(shape))


def test_derive_seed_is_a_hash_not_a_sum():
    assert derive_seed(0, 1) != derive_seed(1, 0)
    assert derive_seed(7, 0) == derive_seed(7, 0)
    subseeds = {derive_seed(seed, k) for seed in range(50) for k in range(50)}
    assert len(subseeds) == 2500
    assert all(1 <= s < 2**31 for s in subseeds)


def test_int_seed_reproduces_the_sequence_of_calls():
    first, second = ki.SigmoidNormal(seed=42), ki.SigmoidNormal(seed=42)
    a0, a1 = draw(first), draw(first)
    b0, b1 = draw(second), draw(second)
    np.testing.assert_array_equal(a0, b0)
    np.testing.assert_array_equal(a1, b1)
    assert not np.array_equal(a0, a1)


def test_call_k_of_a_seed_differs_from_call_k_minus_1_of_the_next_seed():
    shared = ki.SigmoidNormal(seed=3)
    draw(shared)
    second_call = draw(shared)
    next_seed_first_call = draw(ki.SigmoidNormal(seed=4))
    assert not np.array_equal(second_call, next_seed_first_call)


def test_seeded_instance_shared_by_two_layers_gives_different_kernels():
    initializer = ki.SigmoidNormal(seed=11)
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(16, kernel_initializer=initializer),
            keras.layers.Dense(16, kernel_initializer=initializer),
        ]
    )
    first, second = (to_numpy(layer.kernel) for layer in model.layers)
    assert not np.array_equal(first, second)


def test_unseeded_calls_differ():
    initializer = ki.SigmoidNormal()
    assert not np.array_equal(draw(initializer), draw(initializer))


def test_unseeded_build_is_reproducible_under_set_random_seed():
    def build():
        keras.utils.set_random_seed(1234)
        initializer = ki.XavierUniform()
        return [draw(initializer), draw(ki.SmallNormal()), draw(initializer)]

    first, second = build(), build()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[2])


def test_seed_generator_keeps_keras_stream_semantics():
    def stream(seed):
        initializer = ki.KaimingUniform(seed=keras.random.SeedGenerator(seed))
        return draw(initializer), draw(initializer)

    a0, a1 = stream(5)
    b0, b1 = stream(5)
    np.testing.assert_array_equal(a0, b0)
    np.testing.assert_array_equal(a1, b1)
    assert not np.array_equal(a0, a1)


@pytest.mark.parametrize("shape", [(0,), (0, 5), (3, 3, 0, 4), (2, 0, 0)])
def test_zero_size_shape_returns_an_empty_tensor(shape):
    output = ki.SigmoidNormal(seed=0)(shape, dtype="float32")
    assert tuple(output.shape) == shape
    assert keras.backend.standardize_dtype(output.dtype) == "float32"


def test_scalar_shape_is_one_value():
    output = ki.SmallUniform(seed=0)(())
    assert tuple(output.shape) == ()
    assert abs(float(to_numpy(output))) <= 0.1


@pytest.mark.parametrize("shape", [(-1, 4), (3, -2)])
def test_negative_dimension_is_refused(shape):
    with pytest.raises(ValueError) as info:
        ki.SigmoidNormal()(shape)
    assert str(info.value) == (
        f"`shape` must be a tuple of non-negative ints. Received: shape={shape!r}"
    )


@pytest.mark.parametrize("shape", [(2.5, 3), ("a", 3), (True, 3), None])
def test_non_integer_shape_is_refused(shape):
    with pytest.raises(TypeError, match="`shape`"):
        ki.SigmoidNormal()(shape)


@pytest.mark.parametrize("dtype", ["int32", "bool", "uint8", "complex64", "nope"])
def test_non_float_dtype_is_refused(dtype):
    # Sparse draws no complex dtype (SigmoidNormal does: tests/test_complex.py).
    with pytest.raises(ValueError) as info:
        ki.Sparse(sparsity=0.5)((2, 2), dtype=dtype)
    message = str(info.value)
    assert "`dtype` must be a floating-point dtype" in message
    assert f"Received: dtype={dtype!r}" in message


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_requested_dtype_comes_back(dtype):
    # JAX without x64 has no float64: float32 comes back, as for Keras's own initializers.
    given = dtype if dtype != "float64" or backend_has_float64() else "float32"
    output = ki.XavierNormal(seed=0)(SHAPE, dtype=dtype)
    assert keras.backend.standardize_dtype(output.dtype) == given


def test_available_dtype_is_what_the_backend_gives():
    from keras_inits._base import available_dtype

    for dtype in ("float16", "bfloat16", "float32"):
        assert available_dtype(dtype) == dtype
    given = keras.backend.standardize_dtype(keras.ops.ones((2,), "float64").dtype)
    assert available_dtype("float64") == given
    assert given == "float64" or keras.backend.backend() == "jax"


def test_default_dtype_is_floatx():
    output = ki.SigmoidNormal(seed=0)(SHAPE)
    assert keras.backend.standardize_dtype(output.dtype) == keras.config.floatx()


def test_from_config_names_an_unknown_key():
    config = {**ki.SigmoidNormal(seed=1).get_config(), "scale": 4.0}
    with pytest.raises(ValueError, match=r"does not take: \('scale',\)"):
        ki.SigmoidNormal.from_config(config)


def test_seed_generator_round_trips_through_config():
    initializer = ki.SmallNormal(seed=keras.random.SeedGenerator(9, name="init_seed"))
    config = initializer.get_config()
    rebuilt = ki.SmallNormal.from_config(config)
    assert isinstance(rebuilt.seed, keras.random.SeedGenerator)
    assert rebuilt.get_config() == config
    np.testing.assert_array_equal(draw(initializer), draw(rebuilt))


def test_repr_shows_the_config():
    assert repr(ki.SmallUniform(limit=0.05, seed=2)) == "SmallUniform(seed=2, limit=0.05)"


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="jax.jit tracing is JAX's")
@pytest.mark.parametrize("seed", [None, 17])
def test_call_traces_under_jax_jit(seed):
    import jax

    initializer = ki.VarianceScaling(scale=2.0, seed=seed)
    jitted = jax.jit(initializer.__call__, static_argnames=("shape", "dtype"))
    values = np.asarray(jitted(shape=(256, 64), dtype="float32"))
    assert values.shape == (256, 64)
    assert np.all(np.isfinite(values))
    assert np.abs(values).max() <= 2 * initializer.stddev((256, 64)) / 0.87962566103423978 + 1e-6


def kernels(layer):
    """The kernels a layer owns, in build order, read through its public weights."""
    return [to_numpy(w) for w in layer.weights if w.name == "kernel"]


# Layers that re-create their initializer from its config, one copy per
# sub-layer; each builder returns the kernels the copies drew, all one shape.
COPYING_LAYERS = """
import keras


def multi_head_attention(initializer):
    layer = keras.layers.MultiHeadAttention(2, 8, kernel_initializer=initializer)
    x = keras.ops.ones((1, 3, 8))
    layer(x, x)
    return [w for w in layer.weights if w.name == "kernel"][:3]  # query, key, value


def bidirectional(initializer):
    rnn = keras.layers.SimpleRNN(6, kernel_initializer=initializer)
    layer = keras.layers.Bidirectional(rnn)
    layer(keras.ops.ones((1, 4, 6)))
    return [layer.forward_layer.cell.kernel, layer.backward_layer.cell.kernel]


def shared_einsum_dense(initializer):
    kernels = []
    for _ in range(2):
        layer = keras.layers.EinsumDense("ab,bcd->acd", (2, 8), kernel_initializer=initializer)
        layer.build((None, 8))
        kernels.append(layer.kernel)
    return kernels


BUILDERS = {
    "multi_head_attention": multi_head_attention,
    "bidirectional": bidirectional,
    "shared_einsum_dense": shared_einsum_dense,
}
"""
COPIES = {}
exec(COPYING_LAYERS, COPIES)


@pytest.mark.parametrize("make", [lambda: ki.SigmoidNormal(seed=3), lambda: ki.SigmoidNormal()])
@pytest.mark.parametrize("builder", COPIES["BUILDERS"])
def test_copies_that_keras_makes_draw_different_kernels(builder, make):
    # Keras re-creates the initializer from its config for each sub-layer; an int
    # seed's copies continue one stream (StreamSeed), an unseeded one draws afresh.
    drawn = [to_numpy(k) for k in COPIES["BUILDERS"][builder](make())]
    assert len(drawn) >= 2 and len({k.shape for k in drawn}) == 1
    for i in range(len(drawn)):
        for j in range(i + 1, len(drawn)):
            assert not np.array_equal(drawn[i], drawn[j]), (builder, i, j)


REBUILD = (
    COPYING_LAYERS
    + """
import json
import keras_inits as ki
print(json.dumps({name: [keras.ops.convert_to_numpy(k).tolist() for k in build(
    ki.XavierUniform(seed=9))] for name, build in BUILDERS.items()}))
"""
)


@pytest.mark.slow
def test_a_fresh_instance_with_the_same_seed_repeats_the_build_in_every_process():
    here = {
        name: [to_numpy(k) for k in build(ki.XavierUniform(seed=9))]
        for name, build in COPIES["BUILDERS"].items()
    }
    again = {
        name: [to_numpy(k) for k in build(ki.XavierUniform(seed=9))]
        for name, build in COPIES["BUILDERS"].items()
    }
    completed = subprocess.run(
        [sys.executable, "-c", REBUILD], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    there = json.loads(completed.stdout.strip().splitlines()[-1])
    for name, expected in here.items():
        for a, b, c in zip(expected, again[name], there[name], strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(np.asarray(c, dtype=a.dtype), a)


def test_a_copy_keeps_the_config_and_the_plain_int_seed():
    original = ki.KaimingUniform(a=0.5, seed=4)
    config = original.get_config()
    copy = ki.KaimingUniform.from_config(config)
    assert copy.get_config() == config
    assert json.loads(json.dumps(config)) == config
    assert repr(config["seed"]) == "4"
    # A copy continues the stream; a fresh instance given the number starts it anew.
    first, second = draw(original), draw(copy)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(draw(ki.KaimingUniform(a=0.5, seed=4)), first)
    np.testing.assert_array_equal(
        draw(ki.KaimingUniform.from_config(json.loads(json.dumps(config)))), first
    )


def test_unseeded_multi_head_attention_is_reproducible_under_set_random_seed():
    def build():
        keras.utils.set_random_seed(7)
        return [to_numpy(k) for k in COPIES["multi_head_attention"]("xavier_uniform")]

    (q1, k1, _), (q2, k2, _) = build(), build()
    np.testing.assert_array_equal(q1, q2)
    np.testing.assert_array_equal(k1, k2)
    assert not np.array_equal(q1, k1)


SHARDED_INIT = """
import os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
import jax, numpy as np
import keras_inits as ki
mesh = jax.sharding.Mesh(np.array(jax.devices()), ("model",))
sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "model"))
for init in (ki.SigmoidNormal(), ki.VarianceScaling(seed=3), ki.SmallUniform(seed=1)):
    # What Keras does for a large variable under keras.distribution.
    jitted = jax.jit(init.__call__, out_shardings=sharding, static_argnames=["shape", "dtype"])
    value = jitted(shape=(256, 512), dtype="float32")
    print(len(value.addressable_shards), value.sharding.spec[1], float(np.std(np.asarray(value))))
"""


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "jax", reason="output shardings are JAX's")
def test_call_traces_under_jax_jit_with_a_sharding():
    completed = subprocess.run(
        [sys.executable, "-c", SHARDED_INIT], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    truncated_kurtosis = float(stats.truncnorm(-2, 2).stats(moments="k"))
    # (std, excess kurtosis) of normal, truncated normal and uniform draws
    expected = (
        (math.sqrt(4 / 256), 0.0),
        (math.sqrt(1 / 256), truncated_kurtosis),
        (0.1 / math.sqrt(3), -1.2),
    )
    assert len(lines) == len(expected)
    for line, (sigma, kurtosis) in zip(lines, expected, strict=True):
        shards, axis, std = line.split()
        assert (shards, axis) == ("2", "model")
        assert abs(float(std) - sigma) <= std_tolerance(sigma, 256 * 512, kurtosis)
