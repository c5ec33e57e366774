"""Identifiers -> initializers: ``resolve()`` and the naming rules it reports with.

This module sits below every family module: ``structural`` (ICNR's nested
initializer) resolves through it, and ``_registry``, which imports every
family to register its classes, builds ``get()`` and ``names()`` on it. It
imports no family module, so no import circle can run through it. Our names
for "did you mean" are read from Keras's table of registered objects (the
"keras_inits>ClassName" entries ``_registry`` adds on import), not from the
class list.

Every error here follows the house grammar: the argument in backticks, what
is allowed, then ``Received: name=<repr>``; no Keras "Could not interpret"
message passes through.
"""

from __future__ import annotations

import re
from typing import Any

import keras
import numpy as np

from keras_inits._validation import check_config_keys, did_you_mean

__all__ = [
    "PACKAGE",
    "bare_names",
    "keras_names",
    "our_names",
    "registered_name",
    "resolve",
    "snake_case",
    "string_name",
]

PACKAGE = "keras_inits"

# Public Keras namespaces whose names a bare custom-object name could shadow:
# Keras looks custom objects up before its own tables, for every kind of object.
_KERAS_NAMESPACES = (
    keras.initializers,
    keras.layers,
    keras.activations,
    keras.losses,
    keras.metrics,
    keras.optimizers,
    keras.regularizers,
    keras.constraints,
)

# What ``keras.initializers.get`` takes, for the error that lists it.
_ALLOWED = (
    "a string name, a config dict, an initializer class or instance, a callable "
    "(shape, dtype=None), a tensor or None"
)


def snake_case(name: str) -> str:
    """ "SigmoidNormal" -> "sigmoid_normal"; an acronym stays one word ("ICNR" -> "icnr").

    Example:
        >>> snake_case("KaimingUniform"), snake_case("ICNR"), snake_case("ICNRBlock")
        ('kaiming_uniform', 'icnr', 'icnr_block')
    """
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def registered_name(cls: type) -> str:
    """The name saved configs record, "keras_inits>ClassName"."""
    return f"{PACKAGE}>{cls.__name__}"


def _keras_owns(name: str) -> bool:
    return any(hasattr(namespace, name) for namespace in _KERAS_NAMESPACES)


def bare_names(cls: type) -> tuple[str, ...]:
    """The class name and its snake_case alias, less those Keras itself resolves."""
    return tuple(n for n in (cls.__name__, snake_case(cls.__name__)) if not _keras_owns(n))


def string_name(cls: type) -> str:
    """The name ``names()`` lists for ``cls``.

    Its snake_case alias, or "keras_inits>ClassName" where Keras owns the
    bare names.

    Example:
        >>> from keras_inits.variance import SigmoidNormal, VarianceScaling
        >>> string_name(SigmoidNormal), string_name(VarianceScaling)
        ('sigmoid_normal', 'keras_inits>VarianceScaling')
    """
    bare = bare_names(cls)
    return bare[-1] if bare else registered_name(cls)


def our_names() -> tuple[str, ...]:
    """The string names of the initializers registered as "keras_inits>ClassName", sorted.

    Only initializers: the package also registers a layer (``ResidualScale``),
    which is no initializer's name.
    """
    prefix = f"{PACKAGE}>"
    found = keras.saving.get_custom_objects()
    return tuple(
        sorted(
            {
                string_name(cls)
                for key, cls in found.items()
                if key.startswith(prefix)
                and isinstance(cls, type)
                and issubclass(cls, keras.initializers.Initializer)
            }
        )
    )


# Short names Keras also resolves, though keras.initializers does not export them.
_KERAS_ALIASES = ("normal", "uniform", "one", "zero")


def keras_names() -> tuple[str, ...]:
    """The snake_case names Keras's own initializers resolve by, sorted.

    Every lower-case class alias of ``keras.initializers`` (``glorot_normal``,
    ...; not its helpers ``get`` or ``serialize``) and the short aliases Keras
    also accepts (``normal``, ``uniform``, ``one``, ``zero``).

    Example:
        >>> {"glorot_normal", "uniform"} <= set(keras_names()), "get" in keras_names()
        (True, False)
    """
    found = {
        name
        for name, value in vars(keras.initializers).items()
        if name[:1].islower()
        and isinstance(value, type)
        and issubclass(value, keras.initializers.Initializer)
    }
    for alias in _KERAS_ALIASES:
        try:
            keras.initializers.get(alias)
        except (ValueError, TypeError):
            continue  # a Keras that no longer has the alias
        found.add(alias)
    return tuple(sorted(found))


def _interpretable(identifier: Any) -> bool:
    """Whether ``keras.initializers.get`` takes ``identifier``'s type (not whether it resolves)."""
    return (
        identifier is None
        or isinstance(identifier, (str, dict, np.ndarray, np.generic))
        or keras.ops.is_tensor(identifier)
        or callable(identifier)
    )


def resolve(identifier: Any, argument: str = "identifier") -> Any:
    """``keras_inits.get(identifier)``, with errors that name ``argument`` (the caller's name).

    Raises:
        TypeError: If ``identifier`` is of a type no initializer is named by
            (an int, a float, a bool, a list, ...).
        ValueError: If a string or dict names no known initializer, or the
            class a dict names refuses its config.

    Example:
        >>> resolve(3, "initializer")
        Traceback (most recent call last):
        ...
        TypeError: `initializer` must be a string name, a config dict, an initializer class or instance, a callable (shape, dtype=None), a tensor or None, not int. Received: initializer=3
    """  # noqa: E501
    if not _interpretable(identifier):
        raise TypeError(
            f"`{argument}` must be {_ALLOWED}, not {type(identifier).__name__}. "
            f"Received: {argument}={identifier!r}"
        )
    try:
        found = keras.initializers.get(identifier)
    except Exception as error:  # Keras's own words never reach the user
        if not isinstance(identifier, (str, dict)):
            raise ValueError(
                f"`{argument}` could not be made an initializer ({type(error).__name__}: "
                f"{error}). Received: {argument}={identifier!r}"
            ) from error
        failure = error
    else:
        if not isinstance(found, keras.Operation):
            return found
        # Keras resolves any registered object by name, a layer (ResidualScale) included.
        raise ValueError(
            f"`{argument}` names a {type(found).__name__}, a layer, not an initializer. "
            f"keras_inits.names() lists ours, keras.initializers Keras's. "
            f"Received: {argument}={identifier!r}"
        )
    if isinstance(identifier, dict):
        _raise_config_error(identifier)  # outside the except: no Keras error as context
    name = identifier if isinstance(identifier, str) else identifier.get("class_name")
    hint = did_you_mean(str(name), [*our_names(), *keras_names()])
    raise ValueError(
        f"Unknown initializer.{hint} keras_inits.names() lists ours, "
        f"keras.initializers Keras's. Received: {argument}={identifier!r}"
    ) from failure


def _raise_config_error(identifier: dict[str, Any]) -> None:
    """Raises the error the class a config dict names gives for its config, if it names one.

    Keras reports a class that refuses its config as an unknown identifier (or
    wraps it in a long TypeError); rebuilding it here surfaces the class's own
    message, which names the bad argument (a key the class does not take
    included). Returns if the class is unknown.
    """
    cls = _initializer_class(identifier.get("class_name"))
    config = identifier.get("config", {})
    if cls is None or not isinstance(config, dict):
        return
    check_config_keys(cls, config)  # Python's "unexpected keyword" would not name it
    cls.from_config(config)  # raises the real error; if not, the caller's stands


def _initializer_class(class_name: Any) -> type[keras.initializers.Initializer] | None:
    if not isinstance(class_name, str):
        return None
    found = keras.saving.get_registered_object(class_name)
    if found is None:
        found = getattr(keras.initializers, class_name, None)
    if isinstance(found, type) and issubclass(found, keras.initializers.Initializer):
        return found
    return None
