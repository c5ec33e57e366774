"""The fan-scaled family draws the distribution its docstring states."""

import inspect
import math

import keras
import numpy as np
import pytest
from helpers import assert_error, assert_matches, std_tolerance, to_numpy
from scipy import stats

import keras_inits as ki
from keras_inits._sampling import TRUNCATED_STD

# Keras 3.15 gave VarianceScaling fan axes, and EinsumDense hands them over;
# before it, EinsumDense kernels get the Keras-layout fans, ours as Keras's own.
KERAS_HAS_FAN_AXES = (
    "input_axes" in inspect.signature(keras.initializers.VarianceScaling).parameters
)
needs_fan_axes = pytest.mark.skipif(
    not KERAS_HAS_FAN_AXES, reason=f"Keras {keras.__version__} has no fan axes (3.15+)"
)

DENSE = (256, 512)  # fan_in 256, fan_out 512: 131072 values
CONV = (3, 3, 96, 128)  # fan_in 864, fan_out 1152: 110592 values


def fans(shape):
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def normal(std):
    return stats.norm(0.0, std)


def uniform(bound):
    return stats.uniform(-bound, 2 * bound)


def truncated(std):
    sigma = std / TRUNCATED_STD
    return stats.truncnorm(-2.0, 2.0, scale=sigma)


LEAKY_GAIN = math.sqrt(2.0 / (1.0 + 0.01**2))

# (initializer, expected distribution as a function of (fan_in, fan_out))
CASES = {
    "sigmoid_normal": (ki.SigmoidNormal(seed=1), lambda fi, fo: normal(math.sqrt(4 / fi))),
    "sigmoid_uniform": (ki.SigmoidUniform(seed=2), lambda fi, fo: uniform(math.sqrt(12 / fi))),
    "xavier_normal": (
        ki.XavierNormal(gain=5 / 3, seed=3),
        lambda fi, fo: normal(5 / 3 * math.sqrt(2 / (fi + fo))),
    ),
    "xavier_uniform": (
        ki.XavierUniform(seed=4),
        lambda fi, fo: uniform(math.sqrt(6 / (fi + fo))),
    ),
    "kaiming_normal": (ki.KaimingNormal(seed=5), lambda fi, fo: normal(LEAKY_GAIN / math.sqrt(fi))),
    "kaiming_normal_relu_fan_out": (
        ki.KaimingNormal(mode="fan_out", nonlinearity="relu", seed=6),
        lambda fi, fo: normal(math.sqrt(2 / fo)),
    ),
    "kaiming_uniform_torch_default": (
        ki.KaimingUniform(a=math.sqrt(5), seed=7),
        lambda fi, fo: uniform(1 / math.sqrt(fi)),
    ),
    "kaiming_uniform_tanh_fan_out": (
        ki.KaimingUniform(mode="fan_out", nonlinearity="tanh", seed=8),
        lambda fi, fo: uniform(5 / 3 * math.sqrt(3 / fo)),
    ),
    "variance_scaling_truncated": (
        ki.VarianceScaling(scale=2.0, mode="fan_avg", seed=9),
        lambda fi, fo: truncated(math.sqrt(2.0 / ((fi + fo) / 2))),
    ),
    "variance_scaling_untruncated": (
        ki.VarianceScaling(scale=0.5, distribution="untruncated_normal", seed=10),
        lambda fi, fo: normal(math.sqrt(0.5 / fi)),
    ),
    "variance_scaling_uniform": (
        ki.VarianceScaling(scale=3.0, mode="fan_out", distribution="uniform", seed=11),
        lambda fi, fo: uniform(math.sqrt(9.0 / fo)),
    ),
    "activation_scaled_relu": (
        ki.ActivationScaled("relu", seed=12),
        lambda fi, fo: normal(math.sqrt(2.0 / fi)),
    ),
    "activation_scaled_leaky_relu_fan_out_uniform": (
        ki.ActivationScaled("leaky_relu", mode="fan_out", distribution="uniform", seed=13),
        lambda fi, fo: uniform(math.sqrt(3.0 * 2.0 / (1.0 + 0.2**2) / fo)),
    ),
}


@pytest.mark.parametrize("shape", [DENSE, CONV], ids=["dense", "conv"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_distribution_matches_formula(case, shape):
    initializer, expected = CASES[case]
    fan_in, fan_out = fans(shape)
    values = to_numpy(initializer(shape, dtype="float32"))
    assert_matches(values, expected(fan_in, fan_out))


def test_tolerance_tells_fan_in_from_fan_out():
    # The std test must be able to fail: the sigmoid draw is rejected against
    # the same formula with fan_out in place of fan_in.
    values = to_numpy(ki.SigmoidNormal(seed=0)(DENSE))
    fan_in, fan_out = fans(DENSE)
    right, wrong = math.sqrt(4 / fan_in), math.sqrt(4 / fan_out)
    tolerance = std_tolerance(right, values.size)
    assert abs(values.std() - right) <= tolerance
    assert abs(values.std() - wrong) > 10 * tolerance


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("case", ["sigmoid_normal", "xavier_uniform", "variance_scaling_truncated"])
def test_low_precision_keeps_the_statistics(case, dtype):
    initializer, expected = CASES[case]
    output = initializer(DENSE, dtype=dtype)
    assert keras.backend.standardize_dtype(output.dtype) == dtype
    # No KS test: rounding to 8 or 11 bits makes the sample discrete.
    assert_matches(to_numpy(output), expected(*fans(DENSE)), ks=False)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_truncated_normal_never_exceeds_its_bound(dtype):
    initializer = ki.VarianceScaling(scale=1.0, seed=123)
    shape = (1000, 1000)
    bound = 2.0 * initializer.stddev(shape) / TRUNCATED_STD
    values = to_numpy(initializer(shape, dtype=dtype))
    cast_bound = float(to_numpy(keras.ops.cast(bound, dtype)))
    assert np.abs(values).max() <= cast_bound
    # ...and it reaches close to the bound: the tails are really there.
    assert np.abs(values).max() > 0.99 * bound


def test_uniform_never_exceeds_its_bound():
    initializer = ki.SigmoidUniform(seed=5)
    values = to_numpy(initializer((1000, 1000)))
    bound = math.sqrt(12 / 1000)
    assert np.abs(values).max() <= np.float32(bound)
    assert np.abs(values).max() > 0.999 * bound


def test_einsum_axes_set_the_fan():
    # A (64, 4, 32) kernel with inputs on axis 0 has fan_in 64, not 64 * 4.
    initializer = ki.SigmoidNormal(seed=0, input_axes=[0], output_axes=[1, 2])
    values = to_numpy(initializer((64, 40, 50)))
    assert_matches(values, normal(math.sqrt(4 / 64)))


def test_stddev_method_matches_the_docstring():
    assert ki.SigmoidNormal().stddev((100, 7)) == pytest.approx(0.2)
    assert ki.XavierNormal(gain=2.0).stddev((30, 70)) == pytest.approx(2 * math.sqrt(2 / 100))
    assert ki.KaimingNormal(nonlinearity="relu").stddev((3, 3, 8, 1)) == pytest.approx(
        math.sqrt(2 / 72)
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ki.VarianceScaling(scale=0.0), "`scale` must be a finite number > 0"),
        (lambda: ki.VarianceScaling(scale=float("nan")), "Received: scale=nan"),
        (lambda: ki.VarianceScaling(mode="fan_sum"), "Received: mode='fan_sum'"),
        (lambda: ki.VarianceScaling(distribution="gamma"), "Received: distribution='gamma'"),
        (lambda: ki.XavierNormal(gain=-1.0), "Received: gain=-1.0"),
        (lambda: ki.KaimingNormal(mode="fan_avg"), "('fan_in', 'fan_out')"),
        (lambda: ki.KaimingNormal(nonlinearity="gelu"), "Received: nonlinearity='gelu'"),
        (lambda: ki.KaimingNormal(a=0.1, nonlinearity="relu"), "Received: a=0.1"),
        (lambda: ki.KaimingNormal(a=float("inf")), "`a` must be a finite number"),
    ],
)
def test_bad_values_are_refused_at_construction(make, message):
    with pytest.raises(ValueError, match=None) as info:
        make()
    assert message in str(info.value)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: ki.KaimingNormal(a=1e200),
            "`a` must be a finite number whose square is finite too (|a| < 1.341e+154). "
            "Received: a=1e+200",
        ),
        (
            lambda: ki.KaimingUniform(a=-1e160, mode="fan_out"),
            "`a` must be a finite number whose square is finite too (|a| < 1.341e+154). "
            "Received: a=-1e+160",
        ),
        (
            lambda: ki.XavierNormal(gain=1e200),
            "`gain` must square to a finite number > 0 (gain**2 is the variance scale). "
            "Received: gain=1e+200",
        ),
    ],
)
def test_squares_that_overflow_are_value_errors_naming_the_argument(make, message):
    assert_error(make, ValueError, message)  # never a bare OverflowError


def test_an_activation_whose_gain_squares_past_float_range_is_named():
    @keras.saving.register_keras_serializable(package="test_variance_overflow")
    def tiny(z):
        return 1e-160 * z  # E[f(z)^2] = 1e-320, so gain**2 = 1e320 overflows

    assert_error(
        lambda: ki.ActivationScaled(tiny),
        ValueError,
        "`activation` must have a gain whose square is finite; its second moment E[f(z)^2] "
        "is so small that gain**2 = inf. Received: activation='test_variance_overflow>tiny'",
    )


def test_the_largest_squarable_slope_still_works():
    init = ki.KaimingNormal(a=1e150)  # gain**2 = 2 / (1 + 1e300) = 2e-300, still > 0
    assert init.scale == pytest.approx(2e-300)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ki.XavierUniform(gain=True), "`gain` must be a real number, not bool"),
        (lambda: ki.VarianceScaling(scale="2"), "Received: scale='2'"),
        (lambda: ki.SigmoidNormal(seed=1.5), "Received: seed=1.5"),
        (lambda: ki.SigmoidNormal(seed=True), "Received: seed=True"),
        (lambda: ki.VarianceScaling(mode=None), "Received: mode=None"),
        (lambda: ki.SigmoidNormal(input_axes=[0.5], output_axes=[1]), "input_axes"),
    ],
)
def test_bad_types_are_refused_at_construction(make, message):
    with pytest.raises(TypeError) as info:
        make()
    assert message in str(info.value)


def test_axes_out_of_range_are_refused_at_call():
    initializer = ki.SigmoidNormal(input_axes=[0], output_axes=[3])
    with pytest.raises(ValueError, match=r"`output_axes` must hold axes in \[-2, 2\)"):
        initializer((4, 5))


@needs_fan_axes
def test_einsum_dense_hands_its_axes_to_the_initializer():
    # Kernel (256, 8, 64) with inputs on axis 0: fan_in is 256. The plain Keras
    # layout would take 256 * 8 = 2048 and draw a std sqrt(8) times too small.
    layer = keras.layers.EinsumDense("ab,bcd->acd", (8, 64), kernel_initializer="sigmoid_normal")
    layer(keras.ops.ones((1, 256)))
    assert tuple(layer.kernel.shape) == (256, 8, 64)
    assert_matches(to_numpy(layer.kernel), normal(math.sqrt(4 / 256)))


@pytest.mark.parametrize(
    "initializer, expected",
    [
        (ki.XavierNormal(gain=3.0), normal(3.0 * math.sqrt(2 / (256 + 512)))),
        (ki.KaimingNormal(mode="fan_out", nonlinearity="tanh"), normal(5 / 3 / math.sqrt(512))),
        (ki.SmallUniform(limit=0.3), uniform(0.3)),
        (ki.ActivationScaled("relu", mode="fan_out"), normal(math.sqrt(2 / 512))),
    ],
    ids=["xavier_gain_3", "kaiming_tanh_fan_out", "small_uniform", "activation_scaled_relu"],
)
@needs_fan_axes
def test_einsum_dense_keeps_the_config_when_it_clones(initializer, expected):
    # EinsumDense rebuilds a VarianceScaling from its config to add the axes:
    # gain, mode and nonlinearity must survive that, or the std would be off.
    layer = keras.layers.EinsumDense("ab,bcd->acd", (8, 64), kernel_initializer=initializer)
    layer(keras.ops.ones((1, 256)))
    assert_matches(to_numpy(layer.kernel), expected)


# ----------------------------------------------------------- ActivationScaled


@pytest.mark.parametrize(
    "activation, stored",
    [("gelu", "gelu"), ("swish", "swish"), (keras.activations.silu, "silu")],
)
def test_activation_scaled_stores_the_activation_by_name(activation, stored):
    initializer = ki.ActivationScaled(activation, seed=1)
    config = initializer.get_config()
    assert config["activation"] == stored
    assert initializer.scale == ki.gain_for(stored) ** 2
    assert ki.ActivationScaled.from_config(config).get_config() == config


def test_activation_scaled_stores_a_registered_function_by_its_registered_name():
    @keras.saving.register_keras_serializable(package="test_variance")
    def halved_relu(x):
        return 0.5 * keras.ops.relu(x)

    initializer = ki.ActivationScaled(halved_relu)
    assert initializer.get_config()["activation"] == "test_variance>halved_relu"
    assert initializer.scale == pytest.approx(8.0, rel=1e-6)  # (2 sqrt(2))^2


def test_activation_scaled_refuses_an_unstorable_callable_at_construction():
    with pytest.raises(ValueError, match=r"^`activation` must be storable in a config"):
        ki.ActivationScaled(lambda x: x)


@pytest.mark.parametrize("cls", [ki.XavierNormal, ki.XavierUniform])
@pytest.mark.parametrize("gain", [1e200, 1e-200])
def test_xavier_gain_whose_square_is_not_a_finite_positive_scale_is_named(cls, gain):
    with pytest.raises(ValueError) as info:
        cls(gain=gain)
    assert str(info.value) == (
        "`gain` must square to a finite number > 0 (gain**2 is the variance scale). "
        f"Received: gain={gain!r}"
    )


# ------------------------------------------- standing in for Keras's VarianceScaling

SEED_CONFIG = "a serialized SeedGenerator"  # built in the test: it makes a backend variable
# Argument values keras.initializers.VarianceScaling takes; ours must take each
# with the same meaning. Kernel (64, 32, 64): 131072 values, several fans apart.
PARITY = {
    "defaults": {},
    "normal_is_truncated": {"distribution": "normal"},
    "Normal_fan_out": {"distribution": "Normal", "mode": "fan_out"},
    "UNIFORM_fan_avg": {"distribution": "UNIFORM", "mode": "fan_avg"},
    "Untruncated_int_scale": {"distribution": "Untruncated_Normal", "scale": 2},
    "numpy_scale": {"scale": np.float32(0.5), "distribution": "uniform"},
    "input_axes_alone": {"input_axes": [0]},
    "output_axes_alone": {"output_axes": (1, 2), "mode": "fan_out"},
    "both_axes_tuples": {"input_axes": (0,), "output_axes": (1, 2), "mode": "fan_avg"},
    "empty_and_repeated_axes": {"input_axes": [], "output_axes": [0, 0], "mode": "fan_out"},
    "shared_axis": {"input_axes": [0, 1], "output_axes": [1], "mode": "fan_avg"},
    "seed_config": {"seed": SEED_CONFIG, "distribution": "uniform"},
    "int_seed": {"seed": 11, "scale": 3.0},
}
PARITY_SHAPE = (64, 32, 64)


def _parity_pair(kwargs):
    if not KERAS_HAS_FAN_AXES and {"input_axes", "output_axes"} & set(kwargs):
        pytest.skip(f"Keras {keras.__version__}'s VarianceScaling takes no fan axes")

    def build(cls):
        arguments = dict(kwargs)
        if arguments.get("seed") == SEED_CONFIG:
            generator = keras.random.SeedGenerator(5)
            arguments["seed"] = keras.saving.serialize_keras_object(generator)
        return cls(**arguments)

    return build(ki.VarianceScaling), build(keras.initializers.VarianceScaling)


def _axes(value):
    return None if value is None else list(value)


@pytest.mark.parametrize("kwargs", PARITY.values(), ids=PARITY.keys())
def test_variance_scaling_reads_every_keras_argument_as_keras_does(kwargs):
    ours, theirs = _parity_pair(kwargs)
    assert (ours.scale, ours.mode, ours.distribution) == (
        theirs.scale,
        theirs.mode,
        theirs.distribution,
    )
    assert (ours.input_axes, ours.output_axes) == (
        _axes(getattr(theirs, "input_axes", None)),
        _axes(getattr(theirs, "output_axes", None)),
    )
    # Each class rebuilds from the other's config with the same meaning.
    config, keras_config = ours.get_config(), theirs.get_config()
    if not KERAS_HAS_FAN_AXES:  # a Keras without fan axes takes no such keys
        config = {k: v for k, v in config.items() if k not in ("input_axes", "output_axes")}
    again = keras.initializers.VarianceScaling.from_config(config)
    assert (again.scale, again.mode, again.distribution) == (
        ours.scale,
        ours.mode,
        ours.distribution,
    )
    ours_again = ki.VarianceScaling.from_config(keras_config)
    assert {k: v for k, v in ours_again.get_config().items() if k in config and k != "seed"} == {
        k: v for k, v in config.items() if k != "seed"
    }


@pytest.mark.parametrize("kwargs", PARITY.values(), ids=PARITY.keys())
def test_variance_scaling_draws_keras_distribution_for_the_same_arguments(kwargs):
    ours, theirs = _parity_pair(kwargs)
    mine, keras_values = to_numpy(ours(PARITY_SHAPE)), to_numpy(theirs(PARITY_SHAPE))
    # Same law: a two-sample KS test, and the stds within 5 standard errors of
    # their difference (std error per sample from its own kurtosis).
    assert stats.ks_2samp(mine.ravel(), keras_values.ravel()).pvalue > 1e-4
    sigma = keras_values.std()
    kurtosis = float(stats.kurtosis(keras_values.ravel()))
    tolerance = math.sqrt(2) * std_tolerance(sigma, keras_values.size, kurtosis)
    assert abs(mine.std() - sigma) <= tolerance, (mine.std(), sigma, tolerance)


@pytest.mark.parametrize("scale", [float("nan"), float("inf")])
def test_variance_scaling_refuses_only_scales_keras_turns_into_non_finite_kernels(scale):
    # The one documented exception: Keras lets these through and draws NaN/inf.
    values = to_numpy(keras.initializers.VarianceScaling(scale=scale, seed=1)((4, 4)))
    assert not np.all(np.isfinite(values))
    with pytest.raises(ValueError, match=r"^`scale` must be a finite number > 0"):
        ki.VarianceScaling(scale=scale)
