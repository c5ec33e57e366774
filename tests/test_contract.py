"""Checks every registered initializer gets, driven by the registry.

A class added to ``keras_inits._registry.CLASSES`` is covered here the
moment it is registered: config round trips, string names in every Keras
layer that takes an initializer, dtypes, seed semantics and empty shapes.
A class that cannot serve some shapes or layers says so in SHAPES and
CANNOT_SERVE below, and is held to a clear refusal there.
"""

import json

import keras
import numpy as np
import pytest
from helpers import backend_has_float64, to_numpy

from keras_inits._registry import CLASSES, registered_name, snake_case

ids = [cls.__name__ for cls in CLASSES]
classes = pytest.mark.parametrize("cls", CLASSES, ids=ids)

# What a class cannot serve, as data: a class that refuses a default shape or
# layer below says so here, with the reason, and is checked on what it serves.
# Default shape -> the shape the generic checks draw for that class instead.
SHAPES = {
    "DeltaOrthogonal": {(8, 4): (3, 4, 8), (16, 8): (3, 8, 16), (64, 32): (3, 3, 32, 64)},
}
# Layer in LAYERS -> the error (a regex) with which the class refuses that
# layer's kernels; the layer must raise it, never build garbage.
CANNOT_SERVE = {
    # Transposed convs, Dense(4) on 8 inputs, the pointwise (1, 1, 12, 4) of
    # SeparableConv2D and Embedding (50, 8) have out < in: no (in, out) matrix
    # keeps every norm.
    "DeltaOrthogonal": dict.fromkeys(
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
    # The RNNs' kernels have 3 or 4 rows: round(0.9 * rows) = rows zeros would
    # leave every column empty.
    "Sparse": dict.fromkeys(
        ("SimpleRNN", "LSTM", "GRU"), r"leave a nonzero weight .* Received: .*shape=\("
    ),
}


def shape_for(cls, shape):
    return SHAPES.get(cls.__name__, {}).get(shape, shape)


def string_name(cls):
    """The bare alias where we own it, else "keras_inits>ClassName"."""
    alias = snake_case(cls.__name__)
    return alias if keras.saving.get_registered_object(alias) is cls else registered_name(cls)


@classes
def test_config_round_trip_is_json_and_equal(cls):
    initializer = cls(seed=5)
    config = initializer.get_config()
    assert json.loads(json.dumps(config)) == config
    rebuilt = cls.from_config(config)
    assert type(rebuilt) is cls and rebuilt.get_config() == config


@classes
def test_keras_serialize_deserialize(cls):
    initializer = cls(seed=5)
    serialized = keras.initializers.serialize(initializer)
    assert serialized["registered_name"] == registered_name(cls)
    rebuilt = keras.initializers.deserialize(json.loads(json.dumps(serialized)))
    assert type(rebuilt) is cls and rebuilt.get_config() == initializer.get_config()
    shape = shape_for(cls, (8, 4))
    np.testing.assert_array_equal(to_numpy(initializer(shape)), to_numpy(rebuilt(shape)))


@classes
def test_clone_keeps_class_and_config(cls):
    initializer = cls(seed=None)
    clone = initializer.clone()
    assert type(clone) is cls and clone.get_config() == initializer.get_config()


@classes
def test_is_a_keras_initializer(cls):
    assert isinstance(cls(), keras.initializers.Initializer)


@classes
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_dtype_and_finite_values(cls, dtype):
    if dtype == "float64" and not backend_has_float64():
        pytest.skip("this backend has no float64 without its x64 switch")
    output = cls(seed=1)(shape_for(cls, (64, 32)), dtype=dtype)
    assert keras.backend.standardize_dtype(output.dtype) == dtype
    values = to_numpy(output)
    assert np.all(np.isfinite(values))
    assert np.unique(values).size > 100, "values are (nearly) constant"


@classes
def test_seed_semantics(cls):
    shape = shape_for(cls, (16, 8))
    a, b = cls(seed=9), cls(seed=9)
    first = to_numpy(a(shape))
    np.testing.assert_array_equal(first, to_numpy(b(shape)))
    assert not np.array_equal(first, to_numpy(a(shape))), "seeded calls repeat"
    assert not np.array_equal(first, to_numpy(cls(seed=10)(shape)))
    unseeded = cls()
    assert not np.array_equal(to_numpy(unseeded(shape)), to_numpy(unseeded(shape)))


@classes
@pytest.mark.parametrize("shape", [(0, 3), (3, 3, 0, 8)])
def test_zero_size_shape(cls, shape):
    assert tuple(cls(seed=0)(shape).shape) == shape


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


@pytest.mark.parametrize("layer_name", sorted(LAYERS))
def test_string_names_work_in_every_layer(layer_name):
    make, input_shape, keys = LAYERS[layer_name]
    for cls in CLASSES:
        layer = make(string_name(cls))
        refusal = CANNOT_SERVE.get(cls.__name__, {}).get(layer_name)
        if refusal:
            with pytest.raises(ValueError, match=refusal):
                build(layer, input_shape)
            continue
        build(layer, input_shape)
        config = layer.get_config()
        for key in keys:
            assert config[key]["registered_name"] == registered_name(cls), (key, cls)
        kernels = [w for w in layer.weights if "bias" not in w.path and len(w.shape) >= 2]
        assert kernels, f"{layer_name} built no kernel"
        for kernel in kernels:
            values = to_numpy(kernel)
            assert np.all(np.isfinite(values)) and np.unique(values).size > 1, (kernel.path, cls)
