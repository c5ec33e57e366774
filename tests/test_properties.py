"""Property-based tests: any input to a public entry point gives a right tensor or our error.

For every registered class (driven by the registry, so a new class is
covered the moment it is registered), hypothesis draws constructor
arguments (valid and invalid: NaN, inf, huge, negative, zero, wrong types,
bool), a shape (rank 0 to 5, zero-sized, negative dimensions) and a dtype
(the four float dtypes, complex64 and complex128, int32, nonsense, None), and does the same for
``get()`` and the gain functions. Every outcome must be one of two:

- a tensor of the asked shape, in the dtype the backend gives for the asked
  one (float64 is float32 on JAX without x64), with finite values, inside
  the bound of a bounded distribution; or
- a ValueError or TypeError in the house grammar: the argument in backticks
  and ``Received: name=<repr>`` (the documented exception is "Unknown
  initializer. ... Received: identifier=..." and "Unknown activation. ...",
  which put no argument first because the name is the whole input).

Hypothesis runs derandomized (the same examples on every run, so a failure
reproduces), with no deadline (the first draw of a shape compiles) and no
example database (no run depends on an earlier one; hypothesis's own
caches go to .hypothesis/, which git ignores).
"""

from __future__ import annotations

import inspect
import math
import re
import typing

import keras
import numpy as np
import pytest
from helpers import backend_has_float64, to_numpy
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import keras_inits as ki
from keras_inits._base import DeterministicInitializer
from keras_inits._gain import Nonlinearity
from keras_inits._registry import CLASSES
from keras_inits._sampling import _COMPLEX_TRUNCATED_VAR

PROPERTY = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DTYPES = (
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "int32",
    "nonsense",
    None,
)
# A message in the house grammar: an argument in backticks, then what it received.
GRAMMAR = re.compile(r"`[A-Za-z_][\w.]*`.* Received: [A-Za-z_]\w*=", re.DOTALL)
UNKNOWN = re.compile(r"^Unknown (initializer|activation)\..* Received: \w+=", re.DOTALL)


def assert_our_error(error: BaseException) -> None:
    """``error`` is a ValueError or TypeError whose message is in the house grammar."""
    assert isinstance(error, (ValueError, TypeError)), f"{type(error).__name__}: {error}"
    message = str(error)
    assert GRAMMAR.search(message) or UNKNOWN.search(message), message


def options() -> list[str]:
    """Every option string a class's Literal-typed arguments take."""
    found: set[str] = set()
    for cls in CLASSES:
        try:
            hints = typing.get_type_hints(cls.__init__)
        except Exception:  # an annotation that does not evaluate: its strings are not needed
            continue
        for hint in hints.values():
            for arg in typing.get_args(hint) or (hint,):
                found.update(value for value in typing.get_args(arg) if isinstance(value, str))
                if typing.get_origin(hint) is typing.Literal:
                    found.update(typing.get_args(hint))
    return sorted(found)


# Values for any constructor argument: the right kind and the wrong kinds.
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-4.0, max_value=4.0),
    st.integers(min_value=-3, max_value=6),
    st.sampled_from([0, 0.0, -0.0, 1e-300, 1e300, 2**31, 2**32, 2**64, -(2**40), 1e154, 1e155]),
)
STRINGS = st.one_of(
    st.sampled_from(options()),
    st.sampled_from(["relu", "gelu", "tanh", "sigmoid", "swish", "kaiming_normal", "orthogonal"]),
    st.sampled_from(["sigmoid_normall", "fan_sum", "", "nonsense", "keras_inits>Nope"]),
)
ANY_VALUE = st.one_of(
    NUMBERS,
    STRINGS,
    st.none(),
    st.booleans(),
    st.lists(st.integers(min_value=-4, max_value=4), max_size=3),
    st.just([1.5]),
    st.just({"class_name": "SigmoidNormal", "config": {}}),
    st.just(object()),
)


# A valid value for each constructor argument the classes take, by name.
VALID = {
    "scale": st.floats(min_value=0.01, max_value=10.0),
    "gain": st.floats(min_value=0.01, max_value=10.0),
    "stddev": st.floats(min_value=1e-3, max_value=1.0),
    "limit": st.floats(min_value=1e-3, max_value=1.0),
    "a": st.floats(min_value=-3.0, max_value=3.0),
    "sparsity": st.floats(min_value=0.0, max_value=0.9),
    "blocks": st.one_of(st.none(), st.integers(min_value=1, max_value=3)),
    "mode": st.sampled_from(["fan_in", "fan_out"]),
    "distribution": st.sampled_from(["truncated_normal", "untruncated_normal", "uniform"]),
    "nonlinearity": st.sampled_from(typing.get_args(Nonlinearity)),
    "activation": st.sampled_from(["relu", "gelu", "tanh", "selu", "linear"]),
    "seed": st.one_of(st.none(), st.integers(min_value=0, max_value=2**32 - 1)),
    "input_axes": st.none(),
    "output_axes": st.none(),
    "layout": st.sampled_from(["conv", "depthwise"]),
    "initializer": st.sampled_from(["kaiming_normal", "glorot_uniform", "small_uniform"]),
    "lower": st.floats(min_value=-3.0, max_value=0.0),
    "upper": st.floats(min_value=0.5, max_value=3.0),
    "batch_axis": st.none(),
    "column_axis": st.sampled_from([-1, -2]),
}


@st.composite
def arguments(draw: typing.Any, cls: type) -> dict[str, typing.Any]:
    """Some of ``cls``'s constructor arguments: all valid, one bad, or anything."""
    names = list(inspect.signature(cls).parameters)
    assert set(names) <= set(VALID), f"add {sorted(set(names) - set(VALID))} to VALID"
    kind = draw(st.sampled_from(["valid", "one bad", "any"]))
    chosen = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    bad = draw(st.sampled_from(chosen)) if chosen and kind == "one bad" else None
    kwargs = {}
    for name in chosen:
        wild = kind == "any" or name == bad
        kwargs[name] = draw(ANY_VALUE if wild else VALID[name])
    event(f"arguments: {kind}")
    return kwargs


SHAPES = st.lists(st.integers(min_value=-1, max_value=5), min_size=0, max_size=5).map(tuple)


def given_dtype(dtype: str | None) -> str:
    """The dtype a call asked for ``dtype`` comes back in on this backend."""
    name = keras.config.floatx() if dtype is None else dtype
    if name == "float64" and not backend_has_float64():
        return "float32"
    return name


def bound(
    initializer: typing.Any, shape: tuple[int, ...], complex_dtype: bool = False
) -> float | None:
    """The largest |value| a bounded distribution can give on ``shape``, or None."""
    if isinstance(initializer, ki.SmallUniform):
        return initializer.limit
    if isinstance(initializer, ki.BoundedNormal):
        return initializer.stddev * max(abs(initializer.lower), abs(initializer.upper))
    if not isinstance(initializer, keras.initializers.VarianceScaling) or len(shape) < 1:
        return None
    if initializer.input_axes is not None and initializer.output_axes is not None:
        return None
    from keras_inits._fans import compute_fans, fan_for_mode

    batch = getattr(initializer, "batch_axis", [])
    fan = fan_for_mode(initializer.mode, *compute_fans(shape, batch_axis=batch))
    std = math.sqrt(initializer.scale / max(1.0, fan))
    if complex_dtype:  # |z| on the disk of radius sqrt(2) std, or cut at 2 std / sqrt(C)
        if initializer.distribution == "uniform":
            return math.sqrt(2.0) * std
        if initializer.distribution == "truncated_normal":
            return 2.0 * std / math.sqrt(_COMPLEX_TRUNCATED_VAR)
        return None
    if initializer.distribution == "uniform":
        return math.sqrt(3.0) * std
    if initializer.distribution == "truncated_normal":
        return 2.0 * std / 0.87962566103423978  # the std of N(0, 1) truncated to (-2, 2)
    return None


def check_call(initializer: typing.Any, shape: tuple[int, ...], dtype: str | None) -> None:
    try:
        output = initializer(shape, dtype=dtype)
    except Exception as error:
        assert_our_error(error)
        event("call: refused")
        return
    event("call: drew")
    assert tuple(output.shape) == shape
    assert keras.backend.standardize_dtype(output.dtype) == given_dtype(dtype)
    complex_dtype = given_dtype(dtype).startswith("complex")
    values = np.asarray(keras.ops.convert_to_numpy(output)) if complex_dtype else to_numpy(output)
    assert np.all(np.isfinite(values)), (initializer, shape, dtype)
    limit = bound(initializer, shape, complex_dtype)
    if limit is not None and values.size:
        epsilon = float(keras.ops.convert_to_numpy(keras.ops.cast(2.0**-7, "float32")))
        relative = {"float16": 2.0**-10, "bfloat16": epsilon}.get(given_dtype(dtype), 1e-6)
        assert np.abs(values).max() <= limit * (1 + relative), (np.abs(values).max(), limit)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
@settings(PROPERTY, max_examples=14)
@given(data=st.data())
def test_any_arguments_shape_and_dtype_give_a_tensor_or_our_error(cls, data):
    kwargs = data.draw(arguments(cls), label="arguments")
    try:
        initializer = cls(**kwargs)
    except Exception as error:
        assert_our_error(error)
        event("constructor: refused")
        return
    event("constructor: built")
    if not issubclass(cls, DeterministicInitializer):
        assert initializer.get_config()["seed"] == kwargs.get("seed")
    for _ in range(2):
        shape = data.draw(SHAPES, label="shape")
        dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
        check_call(initializer, shape, dtype)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
@settings(PROPERTY, max_examples=6)
@given(shape=SHAPES, dtype=st.sampled_from(DTYPES))
def test_default_instances_fill_any_shape_or_refuse_it_in_our_words(cls, shape, dtype):
    check_call(cls(), shape, dtype)


IDENTIFIERS = st.one_of(
    st.sampled_from(ki.names()),
    st.sampled_from(["glorot_normal", "he_uniform", "orthogonal", "zeros", "Ones"]),
    st.text(max_size=12),
    st.sampled_from(ki.names()).map(lambda name: name[:-1] + "x"),
    NUMBERS,
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.tuples(st.integers()),
    st.fixed_dictionaries(
        {"class_name": st.one_of(st.sampled_from([cls.__name__ for cls in CLASSES]), st.text())},
        optional={"config": st.dictionaries(st.sampled_from(["seed", "gain", "scale"]), NUMBERS)},
    ),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@settings(PROPERTY, max_examples=60)
@given(identifier=IDENTIFIERS)
def test_get_resolves_or_refuses_in_our_words(identifier):
    try:
        initializer = ki.get(identifier)
    except Exception as error:
        assert_our_error(error)
        return
    assert initializer is None or callable(initializer)


@settings(PROPERTY, max_examples=30)
@given(initializer=IDENTIFIERS, scale=st.integers(min_value=1, max_value=2))
def test_icnr_nested_initializer_resolves_or_refuses_in_our_words(initializer, scale):
    try:
        ki.ICNR(scale=scale, initializer=initializer)
    except Exception as error:
        assert_our_error(error)


GAIN_NAMES = st.one_of(
    st.sampled_from(typing.get_args(Nonlinearity)),
    st.sampled_from(["gelu", "swish", "elu", "softplus", "mish", "silu", "exponential"]),
    st.text(max_size=10),
)


@settings(PROPERTY, max_examples=60)
@given(nonlinearity=st.one_of(GAIN_NAMES, ANY_VALUE), param=st.one_of(st.none(), ANY_VALUE))
def test_calculate_gain_gives_a_positive_gain_or_our_error(nonlinearity, param):
    try:
        gain = ki.calculate_gain(nonlinearity, param)
    except Exception as error:
        assert_our_error(error)
        return
    assert isinstance(gain, float) and math.isfinite(gain) and gain > 0, gain


@settings(PROPERTY, max_examples=40)
@given(activation=st.one_of(GAIN_NAMES, ANY_VALUE))
def test_gain_for_gives_a_positive_gain_or_our_error(activation):
    try:
        gain = ki.gain_for(activation)
    except Exception as error:
        assert_our_error(error)
        return
    assert isinstance(gain, float) and math.isfinite(gain) and gain > 0, gain


def test_the_grammar_check_can_fail():
    # assert_our_error must refuse what is not ours: Keras's words, other types.
    with pytest.raises(AssertionError):
        assert_our_error(ValueError("Could not interpret initializer identifier: 3"))
    with pytest.raises(AssertionError):
        assert_our_error(OverflowError("`a` Received: a=1"))
    assert_our_error(ValueError("`gain` must be a finite number > 0. Received: gain=nan"))
