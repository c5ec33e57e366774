"""calculate_gain reproduces PyTorch's table and refuses what it would ignore."""

import math

import pytest

import keras_inits as ki

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


@pytest.mark.parametrize(
    "param, error", [(True, TypeError), ("0.1", TypeError), (math.nan, ValueError)]
)
def test_bad_param(param, error):
    with pytest.raises(error, match=r"Received: param="):
        ki.calculate_gain("leaky_relu", param)
