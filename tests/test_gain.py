"""calculate_gain reproduces PyTorch's table; gain_for computes any activation's gain."""

import functools
import itertools
import math

import keras
import numpy as np
import pytest
from scipy import integrate, special, stats

import keras_inits as ki
from keras_inits import _gain

TABLE = {
    "linear": 1.0,
    "conv1d": 1.0,
    "conv2d": 1.0,
    "conv3d": 1.0,
    "conv_transpose1d": 1.0,
    "conv_transpose2d": 1.0,
    "conv_transpose3d": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "selu": 0.75,
    "leaky_relu": math.sqrt(2.0 / (1.0 + 0.01**2)),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_table(name):
    assert ki.calculate_gain(name) == pytest.approx(TABLE[name], rel=1e-15)


@pytest.mark.parametrize("slope", [0.0, 0.2, -0.5, math.sqrt(5)])
def test_leaky_relu_slope(slope):
    assert ki.calculate_gain("leaky_relu", slope) == pytest.approx(
        math.sqrt(2.0 / (1.0 + slope**2)), rel=1e-15
    )


def test_sigmoid_initializer_is_gain_two():
    # Var = 4 / fan_in is gain 2: neither PyTorch's sigmoid gain (1) nor 4x the Glorot bound.
    assert ki.SigmoidNormal().scale == 2.0**2
    assert ki.calculate_gain("sigmoid") == 1.0


def test_unknown_nonlinearity():
    with pytest.raises(ValueError) as info:
        ki.calculate_gain("gelu")
    assert str(info.value).startswith("`nonlinearity` must be one of ('conv1d', 'conv2d',")
    assert str(info.value).endswith("Received: nonlinearity='gelu'")


def test_param_for_a_nonlinearity_without_one_is_refused():
    with pytest.raises(
        ValueError, match=r"must be None for nonlinearity='relu'\. Received: param=0\.1"
    ):
        ki.calculate_gain("relu", 0.1)


def test_a_slope_whose_square_overflows_is_a_value_error_naming_param():
    with pytest.raises(ValueError) as info:  # was a bare OverflowError
        ki.calculate_gain("leaky_relu", 1e200)
    assert str(info.value) == (
        "`param` must be a finite number whose square is finite too (|param| < 1.341e+154). "
        "Received: param=1e+200"
    )
    assert ki.calculate_gain("leaky_relu", -1e150) == pytest.approx(math.sqrt(2) * 1e-150)


@pytest.mark.parametrize(
    "param, error", [(True, TypeError), ("0.1", TypeError), (math.nan, ValueError)]
)
def test_bad_param(param, error):
    with pytest.raises(error, match=r"Received: param="):
        ki.calculate_gain("leaky_relu", param)


# ----------------------------------------------------------------- gain_for


def quad_gain(function, points=()):
    """1 / sqrt(E[f(z)^2]) by adaptive quadrature, split at the kinks in ``points``."""
    edges = [-np.inf, *sorted(points), np.inf]
    moment = sum(
        integrate.quad(
            lambda z: function(z) ** 2 * stats.norm.pdf(z), a, b, epsabs=1e-14, epsrel=1e-13
        )[0]
        for a, b in itertools.pairwise(edges)
    )
    return 1.0 / math.sqrt(moment)


def np_sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow for large |z|


CLOSED_FORMS = {
    "relu": math.sqrt(2.0),
    "linear": 1.0,
    "selu": 1.0,  # its fixed point: E[selu(z)^2] = 1 for z ~ N(0, 1)
    "leaky_relu": math.sqrt(2.0 / (1.0 + 0.2**2)),  # Keras's default slope 0.2
    "relu6": math.sqrt(2.0),  # relu and relu6 differ only beyond 6 sigma, by < 1e-8
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_gain_for_closed_forms(name):
    assert ki.gain_for(name) == pytest.approx(CLOSED_FORMS[name], abs=1e-6)


@pytest.mark.parametrize("slope", [0.01, 0.3, 1.0])
def test_gain_for_leaky_relu_any_slope(slope):
    function = functools.partial(keras.activations.leaky_relu, negative_slope=slope)
    assert ki.gain_for(function) == pytest.approx(math.sqrt(2.0 / (1.0 + slope**2)), abs=1e-6)


@pytest.mark.parametrize(
    "function, expected",
    [(np.abs, 1.0), (keras.ops.abs, 1.0), (lambda x: 2.0 * np.maximum(x, 0.0), 1 / math.sqrt(2))],
    ids=["np_abs", "ops_abs", "numpy_lambda"],
)
def test_gain_for_callables_with_kinks(function, expected):
    assert ki.gain_for(function) == pytest.approx(expected, abs=1e-6)


REFERENCES = {
    "tanh": (np.tanh, ()),
    "sigmoid": (np_sigmoid, ()),
    "gelu": (lambda z: 0.5 * z * (1.0 + special.erf(z / math.sqrt(2.0))), ()),
    "silu": (lambda z: z * np_sigmoid(z), ()),
    "elu": (lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))), (0.0,)),
    "softplus": (lambda z: np.logaddexp(0.0, z), ()),
    "hard_sigmoid": (lambda z: np.clip(z / 6.0 + 0.5, 0.0, 1.0), (-3.0, 3.0)),
    "hard_tanh": (lambda z: np.clip(z, -1.0, 1.0), (-1.0, 1.0)),
    "hard_shrink": (lambda z: np.where(np.abs(z) > 0.5, z, 0.0), (-0.5, 0.5)),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_gain_for_matches_adaptive_quadrature(name):
    function, kinks = REFERENCES[name]
    assert ki.gain_for(name) == pytest.approx(quad_gain(function, kinks), abs=1e-6)


def test_sigmoid_gain_is_near_but_not_the_seeds_factor_two():
    gain = ki.gain_for("sigmoid")
    assert gain == pytest.approx(1.8462285, abs=1e-6)
    assert ki.SigmoidNormal().scale == 4.0 and gain**2 == pytest.approx(3.40856, abs=1e-4)


def test_gain_for_keras_function_equals_its_name_and_is_cached():
    assert ki.gain_for(keras.activations.gelu) == ki.gain_for("gelu")
    before = _gain._gain_for_keras_name.cache_info().hits
    ki.gain_for("gelu")
    assert _gain._gain_for_keras_name.cache_info().hits == before + 1


def test_registered_custom_activation_resolves_by_name():
    @keras.saving.register_keras_serializable(package="test_gain")
    def doubled_tanh(x):
        return 2.0 * keras.ops.tanh(x)

    assert ki.gain_for("test_gain>doubled_tanh") == pytest.approx(ki.gain_for("tanh") / 2, abs=1e-6)
    assert _gain.activation_name(doubled_tanh) == "test_gain>doubled_tanh"


@pytest.mark.parametrize(
    "activation, error, message",
    [
        (
            "gelo",
            ValueError,
            "Unknown activation. Did you mean 'gelu'? keras.activations lists Keras's; a "
            "custom one needs keras.saving.register_keras_serializable. "
            "Received: activation='gelo'",
        ),
        (
            "zzz",
            ValueError,
            "Unknown activation. keras.activations lists Keras's; a custom one needs "
            "keras.saving.register_keras_serializable. Received: activation='zzz'",
        ),
        (
            3,
            TypeError,
            "`activation` must be a Keras activation name or a callable. Received: activation=3",
        ),
        (
            "softmax",
            ValueError,
            "`activation` must act elementwise: its values on a column differ from those on a "
            "vector (it mixes its last axis). Received: activation='softmax'",
        ),
        (
            "glu",
            ValueError,
            "`activation` must act elementwise: given shape (1280,) it returned shape (640,). "
            "Received: activation='glu'",
        ),
        (
            keras.ops.zeros_like,
            ValueError,
            "`activation` must have a finite, nonzero second moment E[f(z)^2] for "
            "z ~ N(0, 1); it is 0.0. Received: activation=<function zeros_like",
        ),
        (
            lambda x: np.exp(x**3),
            ValueError,
            "`activation` must have a finite, nonzero second moment E[f(z)^2] for "
            "z ~ N(0, 1); it is inf. Received: activation=<function <lambda>",
        ),
        (
            np.log,
            ValueError,
            "`activation` must have a finite, nonzero second moment E[f(z)^2] for "
            "z ~ N(0, 1); it is nan. Received: activation=<ufunc 'log'>",
        ),
        (
            "threshold",
            ValueError,
            "`activation` must take one float tensor and return one of the same shape; "
            "calling it failed with TypeError: ",
        ),
    ],
    ids=[
        "did_you_mean",
        "no_match",
        "not_callable",
        "softmax",
        "glu",
        "zero",
        "inf",
        "nan",
        "threshold",
    ],
)
def test_gain_for_bad_activations(activation, error, message):
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(error) as info:
        ki.gain_for(activation)
    assert str(info.value).startswith(message), str(info.value)


def test_activation_name_refuses_an_unregistered_callable():
    with pytest.raises(ValueError) as info:
        _gain.activation_name(lambda x: x)
    assert str(info.value).startswith(
        "`activation` must be storable in a config: a keras.activations name or function, "
        "or a function registered with keras.saving.register_keras_serializable. An "
        "unregistered callable cannot be saved and loaded. Received: activation=<function "
    )
