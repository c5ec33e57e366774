"""Checks every registered initializer gets, driven by the registry.

A class added to ``keras_inits._registry.CLASSES`` is covered here the
moment it is registered: config round trips, string names in every Keras
layer that takes an initializer, dtypes, seed semantics and empty shapes.
A class that cannot fill every kernel declares in SERVES what it is tested
on, which layers it serves and which it must refuse with a clear error; a
deterministic class (a DeterministicInitializer) is held to "same values
every call, no seed" instead of the random seed semantics.
"""

import dataclasses
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import backend_has_float64, std_tolerance, to_numpy
from scipy import stats

from keras_inits._base import DeterministicInitializer
from keras_inits._registry import CLASSES, registered_name, snake_case

ids = [cls.__name__ for cls in CLASSES]
classes = pytest.mark.parametrize("cls", CLASSES, ids=ids)
random_classes = [cls for cls in CLASSES if not issubclass(cls, DeterministicInitializer)]
deterministic_classes = [cls for cls in CLASSES if issubclass(cls, DeterministicInitializer)]


# ----- What each class can fill ------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Serves:
    """The kernel a class is tested on, the empty kernels it must accept, its layers."""

    kernel: tuple[int, ...] = (64, 32)
    empty: tuple[tuple[int, ...], ...] = ((0, 3), (3, 3, 0, 8))
    layers: tuple[str, ...] | None = None  # None: every layer in LAYERS
    # Layer -> the error (a regex) with which the class must refuse that layer's
    # kernels: the layer must raise it, never build garbage.
    refuses: dict[str, str] = dataclasses.field(default_factory=dict)


# Layers whose every kernel is laid out (*receptive_field, in, out). Transposed
# convolutions swap in and out; EinsumDense and MultiHeadAttention kernels have
# other layouts; a depthwise kernel is (*k, channels, multiplier).
IN_OUT_LAYERS = ("Conv1D", "Conv2D", "Conv3D", "Dense", "Embedding", "GRU", "LSTM", "SimpleRNN")
# A class not listed fills any kernel and serves every layer, with the defaults.
SERVES = {
    # The identity needs to know the layout; by string name it assumes (*k, in, out).
    "ConvIdentity": Serves(layers=IN_OUT_LAYERS),
    "HadamardIdentity": Serves(layers=IN_OUT_LAYERS),
    # The last axis must divide by scale**2 = 4: EinsumDense's (8, 4, 6), MHA's
    # output kernel and the transposed convolutions' in_channels (3 or 2) do not.
    "ICNR": Serves(
        empty=((0, 4), (3, 3, 0, 8)),
        layers=(*IN_OUT_LAYERS, "DepthwiseConv2D", "SeparableConv2D"),
    ),
    # Only Conv2DTranspose(C, 2f - f % 2, strides=f, padding="same") on C channels.
    "Bilinear": Serves(
        kernel=(4, 4, 8, 8), empty=((4, 4, 0, 0),), layers=("Conv2DTransposeUpsample",)
    ),
    # Needs out >= in: an (in, out) matrix with out < in cannot keep every norm. The
    # transposed convs, Dense(4) on 8 inputs, SeparableConv2D's pointwise (1, 1, 12, 4)
    # and Embedding (50, 8) have out < in.
    "DeltaOrthogonal": Serves(
        kernel=(3, 3, 32, 64),
        refuses=dict.fromkeys(
            (
                "Dense",
                "Conv1DTranspose",
                "Conv2DTranspose",
                "Conv3DTranspose",
                "SeparableConv2D",
                "Embedding",
            ),
            r"must have out >= in .* Received: shape=\(",
        ),
    ),
    # The RNNs' kernels have 3 or 4 rows: round(0.9 * rows) = rows zeros would leave
    # every column empty.
    "Sparse": Serves(
        refuses=dict.fromkeys(
            ("SimpleRNN", "LSTM", "GRU"), r"leave a nonzero weight .* Received: .*shape=\("
        )
    ),
}


def serves(cls) -> Serves:
    return SERVES.get(cls.__name__, Serves())


def make(cls, seed=None):
    """An instance with ``seed`` where the class takes one."""
    return cls() if issubclass(cls, DeterministicInitializer) else cls(seed=seed)


def string_name(cls):
    """The bare alias where we own it, else "keras_inits>ClassName"."""
    alias = snake_case(cls.__name__)
    return alias if keras.saving.get_registered_object(alias) is cls else registered_name(cls)


@classes
def test_config_round_trip_is_json_and_equal(cls):
    initializer = make(cls, seed=5)
    config = initializer.get_config()
    assert json.loads(json.dumps(config)) == config
    rebuilt = cls.from_config(config)
    assert type(rebuilt) is cls and rebuilt.get_config() == config


@classes
def test_keras_serialize_deserialize(cls):
    initializer = make(cls, seed=5)
    serialized = keras.initializers.serialize(initializer)
    assert serialized["registered_name"] == registered_name(cls)
    rebuilt = keras.initializers.deserialize(json.loads(json.dumps(serialized)))
    assert type(rebuilt) is cls and rebuilt.get_config() == initializer.get_config()
    kernel = serves(cls).kernel
    np.testing.assert_array_equal(to_numpy(initializer(kernel)), to_numpy(rebuilt(kernel)))


@classes
def test_clone_keeps_class_and_config(cls):
    initializer = make(cls, seed=None)
    clone = initializer.clone()
    assert type(clone) is cls and clone.get_config() == initializer.get_config()


@classes
def test_is_a_keras_initializer(cls):
    assert isinstance(cls(), keras.initializers.Initializer)


@classes
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_dtype_and_finite_values(cls, dtype):
    # float64 where the backend has it; JAX without x64 gives float32, as for Keras's own.
    given = dtype if dtype != "float64" or backend_has_float64() else "float32"
    output = make(cls, seed=1)(serves(cls).kernel, dtype=dtype)
    assert keras.backend.standardize_dtype(output.dtype) == given
    values = to_numpy(output)
    assert np.all(np.isfinite(values))
    if issubclass(cls, DeterministicInitializer):
        assert np.unique(values).size > 1, "values are constant"
    else:
        assert np.unique(values).size > 100, "values are (nearly) constant"


# ----- float64 and half precision: the class's law in every dtype ---------------
LAW_SHAPE = (256, 512)  # fan_in 256, fan_out 512: 131072 values


def expected_rms(initializer, shape=LAW_SHAPE):
    """sqrt(E[W^2]) of the default instance on a (fan_in, fan_out) kernel, by its formula."""
    fan_in, fan_out = shape
    name = type(initializer).__name__
    if isinstance(initializer, keras.initializers.VarianceScaling):  # the fan-scaled family
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
        return math.sqrt(initializer.scale / fan[initializer.mode])
    if name == "SmallNormal":
        return initializer.stddev
    if name == "BoundedNormal":  # stddev times N(0, 1) cut to [lower, upper]
        cut = stats.truncnorm(initializer.lower, initializer.upper)
        return initializer.stddev * math.sqrt(cut.moment(2))
    if name == "SmallUniform":
        return initializer.limit / math.sqrt(3)
    if name == "ICNR":  # kaiming_normal on the (in, out / 4) sub-kernel, tiled: same fan_in
        return math.sqrt(2 / fan_in)
    if name == "BlockOrthogonal":  # each (in, out / b) block has min(in, out / b) unit vectors
        blocks = initializer.blocks_for(shape)
        return math.sqrt(blocks * min(fan_in, fan_out // blocks) / (fan_in * fan_out))
    if name == "DeltaOrthogonal":  # fan_in orthonormal rows of length fan_out
        return math.sqrt(fan_in / (fan_in * fan_out))
    if name == "Sparse":  # round(sparsity * fan_in) zeros per column, N(0, stddev^2) elsewhere
        nonzero = fan_in - initializer.zeros_per_column(shape)
        return initializer.stddev * math.sqrt(nonzero / fan_in)
    raise AssertionError(f"no formula for {name}: add one")


def assert_law(cls, output, dtype):
    """``output`` is in ``dtype``, finite and not constant, with the class's law."""
    assert keras.backend.standardize_dtype(output.dtype) == dtype
    values = to_numpy(output)
    assert np.all(np.isfinite(values)), "non-finite values"
    if issubclass(cls, DeterministicInitializer):  # the same kernel as in float32
        reference = to_numpy(cls()(serves(cls).kernel, dtype="float32"))
        np.testing.assert_allclose(values, reference, rtol=2**-7 if "16" in dtype else 1e-7)
        return
    assert np.unique(values).size > 1000, "values are (nearly) constant"
    expected = expected_rms(cls())
    rms = math.sqrt(np.mean(values**2))
    kurtosis = max(float(stats.kurtosis(values.ravel())), 0.0)
    tolerance = std_tolerance(expected, values.size, kurtosis)
    assert abs(rms - expected) <= tolerance, (rms, expected, tolerance)


def law_kernel(cls):
    return serves(cls).kernel if issubclass(cls, DeterministicInitializer) else LAW_SHAPE


@pytest.fixture
def floatx():
    """Sets ``keras.config.floatx`` for one test, and restores it."""
    before = keras.config.floatx()
    yield keras.config.set_floatx
    keras.config.set_floatx(before)


@classes
def test_float64_by_dtype_draws_the_class_law(cls):
    # The repro: on JAX without x64 this gave -inf or one value repeated.
    # JAX without x64 gives float32 with JAX's warning, as it does for Keras's own.
    if backend_has_float64():
        output = make(cls, seed=3)(law_kernel(cls), dtype="float64")
        assert_law(cls, output, "float64")
        return
    with pytest.warns(UserWarning, match="float64"):
        output = make(cls, seed=3)(law_kernel(cls), dtype="float64")
    assert_law(cls, output, "float32")
    single = make(cls, seed=3)(law_kernel(cls), dtype="float32")  # the very same draw
    np.testing.assert_array_equal(to_numpy(output), to_numpy(single))


@classes
@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_floatx_draws_the_class_law(cls, dtype, floatx):
    floatx(dtype)
    given = dtype if dtype != "float64" or backend_has_float64() else "float32"
    assert_law(cls, make(cls, seed=4)(law_kernel(cls)), given)


@pytest.mark.slow
def test_float64_with_jax_x64_draws_the_class_law():
    # JAX's x64 switch is read once, at start-up: a fresh process with it on.
    if keras.backend.backend() != "jax":
        pytest.skip("JAX's x64 switch changes only the JAX backend")
    env = {**os.environ, "JAX_ENABLE_X64": "1", "KERAS_BACKEND": "jax"}
    tests = os.path.dirname(os.path.abspath(__file__))
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            os.path.join(tests, "test_contract.py"),
            "-x",
            "-k",
            "float64_by_dtype",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.path.dirname(tests),
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-4000:]
    assert " passed" in completed.stdout and "skipped" not in completed.stdout


@pytest.mark.parametrize("cls", random_classes, ids=lambda cls: cls.__name__)
def test_seed_semantics(cls):
    shape = serves(cls).kernel
    a, b = cls(seed=9), cls(seed=9)
    first = to_numpy(a(shape))
    np.testing.assert_array_equal(first, to_numpy(b(shape)))
    assert not np.array_equal(first, to_numpy(a(shape))), "seeded calls repeat"
    assert not np.array_equal(first, to_numpy(cls(seed=10)(shape)))
    unseeded = cls()
    assert not np.array_equal(to_numpy(unseeded(shape)), to_numpy(unseeded(shape)))


@pytest.mark.parametrize("cls", deterministic_classes, ids=lambda cls: cls.__name__)
def test_deterministic_classes_repeat_and_take_no_seed(cls):
    shape = serves(cls).kernel
    first = to_numpy(cls()(shape))
    np.testing.assert_array_equal(first, to_numpy(cls()(shape)))
    np.testing.assert_array_equal(first, to_numpy(cls().clone()(shape)))
    assert "seed" not in cls().get_config()
    with pytest.raises(TypeError):
        cls(seed=1)
    with pytest.raises(ValueError, match=r"\('seed',\)"):
        cls.from_config({**cls().get_config(), "seed": 1})


@classes
def test_zero_size_shape(cls):
    for shape in serves(cls).empty:
        assert tuple(make(cls, seed=0)(shape).shape) == shape


@classes
def test_unknown_config_key_is_named(cls):
    with pytest.raises(ValueError, match=r"\('bogus',\)"):
        cls.from_config({**cls().get_config(), "bogus": 1})


# (layer factory taking an initializer name, input shape, initializer config keys)
LAYERS = {
    "Dense": (lambda n: keras.layers.Dense(4, kernel_initializer=n), (8,), ["kernel_initializer"]),
    "Conv1D": (
        lambda n: keras.layers.Conv1D(4, 3, kernel_initializer=n),
        (9, 3),
        ["kernel_initializer"],
    ),
    "Conv2D": (
        lambda n: keras.layers.Conv2D(4, 3, kernel_initializer=n),
        (6, 6, 3),
        ["kernel_initializer"],
    ),
    "Conv3D": (
        lambda n: keras.layers.Conv3D(4, 3, kernel_initializer=n),
        (5, 5, 5, 2),
        ["kernel_initializer"],
    ),
    "Conv1DTranspose": (
        lambda n: keras.layers.Conv1DTranspose(4, 3, kernel_initializer=n),
        (9, 3),
        ["kernel_initializer"],
    ),
    "Conv2DTranspose": (
        lambda n: keras.layers.Conv2DTranspose(4, 3, kernel_initializer=n),
        (6, 6, 3),
        ["kernel_initializer"],
    ),
    "Conv3DTranspose": (
        lambda n: keras.layers.Conv3DTranspose(4, 3, kernel_initializer=n),
        (4, 4, 4, 2),
        ["kernel_initializer"],
    ),
    "Conv2DTransposeUpsample": (
        lambda n: keras.layers.Conv2DTranspose(
            3, 4, strides=2, padding="same", kernel_initializer=n
        ),
        (6, 6, 3),
        ["kernel_initializer"],
    ),
    "DepthwiseConv2D": (
        lambda n: keras.layers.DepthwiseConv2D(3, depth_multiplier=4, depthwise_initializer=n),
        (6, 6, 3),
        ["depthwise_initializer"],
    ),
    "SeparableConv2D": (
        lambda n: keras.layers.SeparableConv2D(
            4, 3, depth_multiplier=4, depthwise_initializer=n, pointwise_initializer=n
        ),
        (6, 6, 3),
        ["depthwise_initializer", "pointwise_initializer"],
    ),
    "Embedding": (
        lambda n: keras.layers.Embedding(50, 8, embeddings_initializer=n),
        None,
        ["embeddings_initializer"],
    ),
    "SimpleRNN": (
        lambda n: keras.layers.SimpleRNN(4, kernel_initializer=n, recurrent_initializer=n),
        (5, 3),
        ["kernel_initializer", "recurrent_initializer"],
    ),
    "LSTM": (
        lambda n: keras.layers.LSTM(4, kernel_initializer=n, recurrent_initializer=n),
        (5, 3),
        ["kernel_initializer", "recurrent_initializer"],
    ),
    "GRU": (
        lambda n: keras.layers.GRU(4, kernel_initializer=n, recurrent_initializer=n),
        (5, 3),
        ["kernel_initializer", "recurrent_initializer"],
    ),
    "EinsumDense": (
        lambda n: keras.layers.EinsumDense("ab,bcd->acd", (4, 6), kernel_initializer=n),
        (8,),
        ["kernel_initializer"],
    ),
    "MultiHeadAttention": (
        lambda n: keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, kernel_initializer=n),
        (5, 6),
        ["kernel_initializer"],
    ),
}


def build(layer, input_shape):
    if isinstance(layer, keras.layers.Embedding):
        layer(keras.ops.convert_to_tensor(np.arange(10).reshape(2, 5) % 50))
    elif isinstance(layer, keras.layers.MultiHeadAttention):
        x = keras.ops.ones((2, *input_shape))
        layer(x, x)
    else:
        layer(keras.ops.ones((2, *input_shape)))


def test_serves_table_names_real_classes_and_layers():
    assert set(SERVES) <= {cls.__name__ for cls in CLASSES}
    for entry in SERVES.values():
        assert entry.layers is None or (entry.layers and set(entry.layers) <= set(LAYERS))
        assert set(entry.refuses) <= set(LAYERS) - set(entry.layers or ())


def served_by(layer_name):
    return [cls for cls in CLASSES if layer_name in (serves(cls).layers or LAYERS)]


@pytest.mark.parametrize("layer_name", sorted(LAYERS))
def test_every_layer_is_served_by_some_class(layer_name):
    assert served_by(layer_name), f"no class serves {layer_name}"


# One test per (layer, class), so that one failure does not hide the others.
@pytest.mark.parametrize(
    "layer_name, cls",
    [(layer_name, cls) for layer_name in sorted(LAYERS) for cls in served_by(layer_name)],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_string_name_works_in_the_layer(layer_name, cls):
    make_layer, input_shape, keys = LAYERS[layer_name]
    layer = make_layer(string_name(cls))
    refusal = serves(cls).refuses.get(layer_name)
    if refusal:
        with pytest.raises(ValueError, match=refusal):
            build(layer, input_shape)
        return
    build(layer, input_shape)
    config = layer.get_config()
    for key in keys:
        assert config[key]["registered_name"] == registered_name(cls), key
    kernels = [w for w in layer.weights if "bias" not in w.path and len(w.shape) >= 2]
    assert kernels, f"{layer_name} built no kernel"
    for kernel in kernels:
        values = to_numpy(kernel)
        assert np.all(np.isfinite(values)) and np.unique(values).size > 1, kernel.path
