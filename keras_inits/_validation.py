"""The one place where argument errors are built.

Every message has one shape: the argument in backticks, what is allowed (a
sorted tuple, never a set), then ``Received: name=<repr>``. ``ValueError`` is
for a bad value, ``TypeError`` for a bad type. This module never imports a
backend and never silently replaces a value it was given.
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeVar, overload

import keras

__all__ = [
    "check_axes",
    "check_choice",
    "check_config_keys",
    "check_dtype",
    "check_finite",
    "check_fraction",
    "check_kernel_rank",
    "check_non_negative",
    "check_positive",
    "check_positive_int",
    "check_registration",
    "check_seed",
    "check_seed_range",
    "check_shape",
    "check_squarable",
    "did_you_mean",
    "shape_error",
]


_Choice = TypeVar("_Choice", bound=str)

FLOAT_DTYPES = ("bfloat16", "float16", "float32", "float64")
# The complex dtypes the fan-scaled family, SmallNormal and BlockOrthogonal draw.
COMPLEX_DTYPES = ("complex128", "complex64")


def _received(name: str, value: Any) -> str:
    return f"Received: {name}={value!r}"


def _check_real(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a real number, not bool. {_received(name, value)}")
    if not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a real number, not {type(value).__name__}. {_received(name, value)}"
        )
    return float(value)


def check_finite(name: str, value: Any) -> float:
    """Returns ``value`` as a float; rejects bools, non-numbers, NaN and inf."""
    number = _check_real(name, value)
    if not math.isfinite(number):
        raise ValueError(f"`{name}` must be a finite number. {_received(name, value)}")
    return number


# The largest float whose square is still finite: sqrt(1.797e308) = 1.34e154.
SQUARABLE_LIMIT = math.sqrt(sys.float_info.max)


def check_squarable(name: str, value: Any) -> float:
    """Returns ``value`` as a float; it must be finite and so must its square.

    For arguments that enter a variance squared (a slope, a gain): past
    1.34e154 the square overflows, which Python reports as a bare
    OverflowError (``**``) or a silent inf (``*``).

    Example:
        >>> check_squarable("a", -3)
        -3.0
    """
    number = check_finite(name, value)
    if not abs(number) < SQUARABLE_LIMIT:
        raise ValueError(
            f"`{name}` must be a finite number whose square is finite too "
            f"(|{name}| < {SQUARABLE_LIMIT:.4g}). {_received(name, value)}"
        )
    return number


def check_positive(name: str, value: Any) -> float:
    """Returns ``value`` as a float; it must be a finite real number > 0."""
    number = _check_real(name, value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"`{name}` must be a finite number > 0. {_received(name, value)}")
    return number


def check_non_negative(name: str, value: Any) -> float:
    """Returns ``value`` as a float; it must be a finite real number >= 0."""
    number = _check_real(name, value)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"`{name}` must be a finite number >= 0. {_received(name, value)}")
    return number


def check_fraction(name: str, value: Any) -> float:
    """Returns ``value`` as a float; it must be a real number in [0, 1)."""
    number = _check_real(name, value)
    if not 0.0 <= number < 1.0:  # also refuses NaN
        raise ValueError(f"`{name}` must be a number in [0, 1). {_received(name, value)}")
    return number


@overload
def check_positive_int(name: str, value: Any, *, allow_none: Literal[False] = False) -> int: ...
@overload
def check_positive_int(name: str, value: Any, *, allow_none: bool) -> int | None: ...
def check_positive_int(name: str, value: Any, *, allow_none: bool = False) -> int | None:
    """Returns ``value`` as an int >= 1 (or None, where ``allow_none``); bool is refused."""
    allowed = "an int >= 1 or None" if allow_none else "an int >= 1"
    if value is None and allow_none:
        return None
    number = _check_integral(name, value, allowed)
    if number < 1:
        raise ValueError(f"`{name}` must be {allowed}. {_received(name, value)}")
    return number


# The one seed range of the package, for the API and the CLI alike: the ints
# every consumer of a seed takes (NumPy's generators, keras.utils.set_random_seed,
# Keras's own initializers on JAX, which hold a seed as a uint32).
SEED_LIMIT = 2**32
_SEED_RANGE_TEXT = "an int in [0, 2**32)"


def check_seed_range(name: str, value: Any) -> int:
    """Returns ``value`` if it is an int (not bool) in [0, 2**32), the package's seed range.

    Example:
        >>> check_seed_range("seed", 2**32 - 1)
        4294967295
    """
    number = _check_integral(name, value, _SEED_RANGE_TEXT)
    if not 0 <= number < SEED_LIMIT:
        raise ValueError(f"`{name}` must be {_SEED_RANGE_TEXT}. {_received(name, value)}")
    return number


def _check_integral(name: str, value: Any, allowed: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be {allowed}, not {type(value).__name__}. {_received(name, value)}"
        )
    return int(value)


def check_choice(name: str, value: Any, allowed: Sequence[_Choice]) -> _Choice:
    """Returns ``value`` if it is one of ``allowed`` (usually a Literal's args)."""
    options = tuple(sorted(allowed))
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a string, one of {options}. {_received(name, value)}")
    if value not in options:
        raise ValueError(f"`{name}` must be one of {options}. {_received(name, value)}")
    return value  # type: ignore[return-value]  # it is one of `allowed`, checked above


def check_seed(value: Any) -> Any:
    """Accepts an int (not bool) in [0, 2**32), a ``keras.random.SeedGenerator`` or None.

    The int range is ``check_seed_range``'s, the one the CLI's ``--seed`` takes.
    """
    if value is None or isinstance(value, keras.random.SeedGenerator):
        return value
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(
            "`seed` must be an int, a keras.random.SeedGenerator or None. "
            f"{_received('seed', value)}"
        )
    if not 0 <= int(value) < SEED_LIMIT:
        raise ValueError(
            f"`seed` must be {_SEED_RANGE_TEXT}, a keras.random.SeedGenerator or None. "
            f"{_received('seed', value)}"
        )
    return int(value)


def check_axes(input_axes: Any, output_axes: Any) -> tuple[list[int] | None, list[int] | None]:
    """Normalises each of ``input_axes``/``output_axes`` to a list of ints, or None.

    Every value Keras's ``VarianceScaling`` takes is taken, with its meaning:
    the fans use the axes only when both lists are given (EinsumDense fills
    in both), an empty list has fan 1, and an axis listed twice counts twice.
    Only what Keras would fail on later, a non-int axis, is refused here.
    """
    return _axis_list("input_axes", input_axes), _axis_list("output_axes", output_axes)


def check_column_axis(column_axis: Any) -> int:
    """JAX's ``column_axis``: an int (its range waits for the shape)."""
    if isinstance(column_axis, bool) or not isinstance(column_axis, numbers.Integral):
        raise TypeError(f"`column_axis` must be an int. {_received('column_axis', column_axis)}")
    return int(column_axis)


def check_batch_axis(batch_axis: Any) -> list[int]:
    """JAX's ``batch_axis``: an int, a list of ints or None (no batch axis), as a list.

    Example:
        >>> check_batch_axis(0), check_batch_axis((0, 1)), check_batch_axis(None)
        ([0], [0, 1], [])
    """
    if batch_axis is None:
        return []
    if isinstance(batch_axis, numbers.Integral) and not isinstance(batch_axis, bool):
        return [int(batch_axis)]
    result = _axis_list("batch_axis", batch_axis)
    return [] if result is None else result


def _axis_list(name: str, axes: Any) -> list[int] | None:
    if axes is None:
        return None
    if isinstance(axes, (str, bytes)) or not isinstance(axes, Iterable):
        raise TypeError(f"`{name}` must be a list of ints or None. {_received(name, axes)}")
    result = []
    for axis in axes:
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"`{name}` must be a list of ints or None. {_received(name, axes)}")
        result.append(int(axis))
    return result


def check_shape(shape: Any) -> tuple[int, ...]:
    """Returns ``shape`` as a tuple of non-negative Python ints."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(
            f"`shape` must be a tuple of non-negative ints. {_received('shape', shape)}"
        ) from None
    for dim in dims:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(
                f"`shape` must be a tuple of non-negative ints. {_received('shape', shape)}"
            )
        if dim < 0:
            raise ValueError(
                f"`shape` must be a tuple of non-negative ints. {_received('shape', shape)}"
            )
    return tuple(int(dim) for dim in dims)


def check_kernel_rank(
    owner: str, shape: tuple[int, ...], layout: str = "(*receptive_field, in, out)"
) -> None:
    """Refuses a ``shape`` of rank < 2 for ``owner``: a kernel is laid out ``layout``."""
    if len(shape) < 2:
        raise shape_error(owner, f"have rank >= 2, laid out {layout}", shape)


def check_dtype(dtype: Any, complex_ok: bool = False) -> str:
    """Returns the standard name of a floating-point ``dtype`` (None: floatx).

    ``complex_ok``: complex64 and complex128 are allowed too (an initializer
    that draws them says so).
    """
    if dtype is None:
        return keras.config.floatx()
    try:
        name = keras.backend.standardize_dtype(dtype)
    except (ValueError, TypeError, AttributeError):
        name = None
    if complex_ok and name in COMPLEX_DTYPES:
        return name
    if name not in FLOAT_DTYPES:
        if complex_ok:
            raise ValueError(
                "`dtype` must be a floating-point or complex dtype, one of "
                f"{FLOAT_DTYPES + COMPLEX_DTYPES}. {_received('dtype', dtype)}"
            )
        raise ValueError(
            f"`dtype` must be a floating-point dtype, one of {FLOAT_DTYPES}. "
            f"{_received('dtype', dtype)}"
        )
    return name


def shape_error(owner: str, requirement: str, shape: tuple[int, ...]) -> ValueError:
    """The error for a kernel shape an initializer cannot fill (raise it).

    Example:
        >>> str(shape_error("ConvIdentity", "have rank >= 2", (3,)))
        '`shape` must have rank >= 2 for ConvIdentity. Received: shape=(3,)'
    """
    return ValueError(f"`shape` must {requirement} for {owner}. {_received('shape', shape)}")


def did_you_mean(value: str, candidates: Sequence[str]) -> str:
    """ " Did you mean 'x'?" for the closest of ``candidates``, or "" if none is close.

    Example:
        >>> did_you_mean("sigmoid_normall", ["sigmoid_normal", "he_normal"])
        " Did you mean 'sigmoid_normal'?"
    """
    close = difflib.get_close_matches(value, candidates, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


# inspect.signature costs ~90 us, paid by every layer that names us by string.
_INIT_ARGUMENTS: dict[type, tuple[str, ...] | None] = {}


def _init_arguments(cls: type) -> tuple[str, ...] | None:
    """The keyword arguments ``cls(...)`` takes, sorted; None if it takes any (``**kwargs``)."""
    if cls not in _INIT_ARGUMENTS:
        parameters = inspect.signature(cls).parameters.values()
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        _INIT_ARGUMENTS[cls] = (
            None
            if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
            else tuple(sorted(p.name for p in parameters if p.kind in named))
        )
    return _INIT_ARGUMENTS[cls]


def check_config_keys(cls: type, config: dict[str, Any]) -> None:
    """Every key of ``config`` is an argument ``cls(...)`` takes; an unknown key is an error.

    Example:
        >>> class Scaled:
        ...     def __init__(self, scale=1.0, seed=None): ...
        >>> check_config_keys(Scaled, {"seed": 1, "gain": 2.0})
        Traceback (most recent call last):
        ...
        ValueError: `config` has key(s) that Scaled does not take: ('gain',). Allowed keys: ('scale', 'seed'). Received: config={'seed': 1, 'gain': 2.0}
    """  # noqa: E501
    allowed = _init_arguments(cls)
    unknown = sorted(str(key) for key in config if allowed is not None and key not in allowed)
    if unknown:
        raise ValueError(
            f"`config` has key(s) that {cls.__name__} does not take: {tuple(unknown)}. "
            f"Allowed keys: {allowed}. Received: config={config!r}"
        )


def check_registration(layer_class: Any, function: Any, returns: str) -> None:
    """A registry entry's two arguments: a Keras layer class and a callable from a built layer.

    ``returns`` says what the callable gives (for the message): "a LayerLayout", ...

    Raises:
        TypeError: If ``layer_class`` is not a subclass of ``keras.layers.Layer``
            or ``function`` is not callable.
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise TypeError(
            "`layer_class` must be a subclass of keras.layers.Layer. "
            f"Received: layer_class={layer_class!r}"
        )
    if not callable(function):
        raise TypeError(
            f"`function` must be a callable from a built layer to {returns}. "
            f"Received: function={function!r}"
        )
