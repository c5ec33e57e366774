"""Every model-level function on a model built in float16, bfloat16 or float64.

Each must keep every weight's dtype, give finite values, and draw what it
draws in float32 at the same scale: the same values rounded where the draw
is one stream (half precision is drawn in float32 and cast; JAX without x64
holds float64 variables in float32), a draw of the same law otherwise. A
Keras float64 variable on JAX without x64 reports float64 and holds float32:
re-drawing it by its reported dtype gave constant kernels (every value the
same) before the draws asked the backend which dtype it really gives.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from helpers import backend_has_float64, dtype_policy, std_tolerance, to_numpy

import keras_inits as ki

BATCH = np.random.default_rng(0).standard_normal((64, 16)).astype("float32")


def _model(width=32):
    """16 -> stem -> (+ relu MLP branch) -> LayerNorm -> 10: a post-LN residual block."""
    x = keras.Input((16,))
    h = keras.layers.Dense(width, name="stem")(x)
    branch = keras.layers.Dense(width, activation="relu", name="up")(h)
    branch = keras.layers.Dense(width, name="down")(branch)
    h = keras.layers.LayerNormalization(name="norm")(keras.layers.Add()([h, branch]))
    return keras.Model(x, keras.layers.Dense(10, name="head")(h))


FUNCTIONS = {
    "reinitialize": lambda m: ki.reinitialize(m, seed=0, include_all=True),
    "torch_defaults": lambda m: ki.torch_defaults(m, seed=0),
    "flax_defaults": lambda m: ki.flax_defaults(m, seed=0),
    "residual": lambda m: ki.residual(m, "deepnorm", seed=0),
    "lsuv": lambda m: ki.lsuv(m, BATCH, seed=0, verbose=False),
    "lora_pissa": lambda m: ki.lora(m, 4, "pissa", seed=0),
    "lora_olora": lambda m: ki.lora(m, 4, "olora", seed=0),
    "lora_peft": lambda m: ki.lora(m, 4, "peft", seed=0),
    "mup": lambda m: ki.mup(m, base=_model(8)),
}
# Compared by their law only: deepnorm re-draws a weight with the weight's own
# (Keras's) initializer, whose half-precision draws are a stream of their own;
# PiSSA's singular vectors move with the kernel's rounding by eps over the gap
# between singular values, which no fixed tolerance bounds.
LAW_ONLY = {"lora_pissa", "residual"}
# Adapters computed from the weight itself (Keras's LoRA keeps them in float32).
FROM_WEIGHT = {"lora_olora"}
# The spacing of each dtype at 1 (a rounding moves a value by at most half of it).
EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}


def _run(name, dtype):
    """The weights (by path) and their dtypes after FUNCTIONS[name], on a model in ``dtype``.

    Every model starts from the float32 model's weights, so only the dtype differs.
    """
    keras.utils.set_random_seed(1)
    start = [to_numpy(v) for v in _model().weights]
    with dtype_policy(dtype):
        model = _model()
        for variable, value in zip(model.weights, start, strict=True):
            variable.assign(keras.ops.cast(value, variable.dtype))
        FUNCTIONS[name](model)
    return {v.path: (to_numpy(v), keras.backend.standardize_dtype(v.dtype)) for v in model.weights}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_model_in_another_float_dtype_gets_the_float32_scale(name, dtype):
    reference = _run(name, "float32")
    result = _run(name, dtype)
    assert result.keys() == reference.keys()
    with dtype_policy(dtype):
        twin = _model()  # what Keras itself gives each weight
    built = {v.path: keras.backend.standardize_dtype(v.dtype) for v in twin.weights}
    assert set(built.values()) == {dtype}  # the policy did reach the weights
    same_stream = dtype != "float64" or not backend_has_float64()
    same_stream = same_stream and name not in LAW_ONLY
    for path, (values, given) in result.items():
        expected, _ = reference[path]
        assert given == built.get(path, given), (path, given)  # adapters: Keras's own dtype
        assert np.isfinite(values).all(), path
        # The model's weights (and so every value computed from them) carry the
        # dtype's rounding; float64 is compared at float32's, the reference's.
        eps = EPS[dtype] if dtype != "float64" else EPS["float32"]
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
        if name in FROM_WEIGHT:
            # A QR or SVD of the rounded kernel: each output sums n rounded inputs.
            eps *= math.sqrt(max(values.shape[0], 1))
        if same_stream:
            # Up to three roundings (the start's cast, a factor's, the result's), each
            # at most half a spacing: within 2 eps of the largest value.
            np.testing.assert_allclose(values, expected, rtol=0, atol=2 * eps * scale + 1e-30)
        reference_std, std = float(np.std(expected)), float(np.std(values))
        assert (std > 0) == (reference_std > 0), (path, std, reference_std)
        if values.size >= 100 and reference_std > 0:
            # Independent draws of one law: two sample stds, each within its error.
            tolerance = math.sqrt(2.0) * std_tolerance(reference_std, values.size)
            assert abs(std - reference_std) <= tolerance + eps * scale, (path, std, reference_std)


def test_lsuv_takes_a_bfloat16_batch():
    # A bfloat16 tensor gives NumPy an ml_dtypes array (dtype kind "V"), still numbers.
    batch = keras.ops.convert_to_numpy(keras.ops.cast(BATCH, "bfloat16"))
    assert batch.dtype.kind == "V"
    keras.utils.set_random_seed(1)
    model = _model()
    records = ki.lsuv(model, batch, seed=0, verbose=False)
    assert records and all(np.isfinite(to_numpy(v)).all() for v in model.weights)
