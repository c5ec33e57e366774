"""Names <-> classes: the Keras registration, ``get()`` and ``names()``.

Each class is registered with Keras as "keras_inits>ClassName" (what saved
configs record) and, so that a layer can name it, under its bare class name
and its snake_case alias. A plugin must never change what a built-in name
means: a bare name that Keras itself resolves ("VarianceScaling",
"glorot_normal", ...) is never registered, and such a class stays reachable
as "keras_inits>ClassName" only. Registration happens once, on import.
"""

from __future__ import annotations

import re
from typing import Any

import keras

from keras_inits._validation import did_you_mean
from keras_inits.orthogonal import BlockOrthogonal, DeltaOrthogonal
from keras_inits.small import SmallNormal, SmallUniform
from keras_inits.sparse import Sparse
from keras_inits.structural import ICNR, Bilinear, ConvIdentity, HadamardIdentity
from keras_inits.variance import (
    ActivationScaled,
    KaimingNormal,
    KaimingUniform,
    SigmoidNormal,
    SigmoidUniform,
    VarianceScaling,
    XavierNormal,
    XavierUniform,
)

__all__ = [
    "CLASSES",
    "PACKAGE",
    "get",
    "keras_names",
    "names",
    "registered_name",
    "resolve",
    "snake_case",
    "string_name",
]

PACKAGE = "keras_inits"
CLASSES: tuple[type, ...] = (
    VarianceScaling,
    SigmoidNormal,
    SigmoidUniform,
    XavierNormal,
    XavierUniform,
    KaimingNormal,
    KaimingUniform,
    SmallNormal,
    SmallUniform,
    ActivationScaled,
    ConvIdentity,
    ICNR,
    Bilinear,
    HadamardIdentity,
    BlockOrthogonal,
    DeltaOrthogonal,
    Sparse,
)
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


def _bare_names(cls: type) -> tuple[str, ...]:
    return tuple(n for n in (cls.__name__, snake_case(cls.__name__)) if not _keras_owns(n))


def _register() -> None:
    """Registers every class with Keras; runs once, when this module is imported."""
    custom_objects = keras.saving.get_custom_objects()
    for cls in CLASSES:
        keras.saving.register_keras_serializable(package=PACKAGE)(cls)
        for name in _bare_names(cls):
            custom_objects[name] = cls


def string_name(cls: type) -> str:
    """The name ``names()`` lists for ``cls``.

    Its snake_case alias, or "keras_inits>ClassName" where Keras owns the
    bare names.

    Example:
        >>> string_name(SigmoidNormal), string_name(VarianceScaling)
        ('sigmoid_normal', 'keras_inits>VarianceScaling')
    """
    bare = _bare_names(cls)
    return bare[-1] if bare else registered_name(cls)


def names() -> tuple[str, ...]:
    """The string names of this package's initializers, sorted.

    The snake_case alias of each class, or "keras_inits>ClassName" where Keras
    owns the bare names. Each also resolves as "ClassName" and
    "keras_inits>ClassName".

    Example:
        >>> "sigmoid_normal" in names()
        True
        >>> "keras_inits>VarianceScaling" in names()
        True
    """
    return tuple(sorted(string_name(cls) for cls in CLASSES))


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


def get(identifier: Any) -> Any:
    """Resolves an initializer like ``keras.initializers.get``, with better errors.

    Accepts everything ``keras.initializers.get`` accepts: None, a string name
    (ours or Keras's), a config dict, a class, an instance, a callable or a
    tensor. An unknown name raises a ValueError that suggests the closest
    valid names; a config dict of a known class with a bad argument raises
    that class's own error (naming the argument).

    Raises:
        ValueError: If a string or dict names no known initializer, or the
            class a dict names refuses its config.
        TypeError: If the class a dict names refuses its config's types.

    Example:
        >>> type(get("sigmoid_normal")).__name__
        'SigmoidNormal'
        >>> type(get("glorot_normal")).__module__.startswith("keras")
        True
    """
    return resolve(identifier)


def resolve(identifier: Any, argument: str = "identifier") -> Any:
    """``get(identifier)``, with errors that name ``argument`` (the caller's own name for it)."""
    try:
        return keras.initializers.get(identifier)
    except (ValueError, TypeError) as error:
        if not isinstance(identifier, (str, dict)):
            raise
        failure = error
    if isinstance(identifier, dict):
        _raise_config_error(identifier)  # outside the except: no Keras error as context
    name = identifier if isinstance(identifier, str) else identifier.get("class_name")
    hint = did_you_mean(str(name), [*names(), *keras_names()])
    raise ValueError(
        f"Unknown initializer.{hint} keras_inits.names() lists ours, "
        f"keras.initializers Keras's. Received: {argument}={identifier!r}"
    ) from failure


def _raise_config_error(identifier: dict[str, Any]) -> None:
    """Raises the error the class a config dict names gives for its config, if it names one.

    Keras reports a class that refuses its config as an unknown identifier (or
    wraps it in a long TypeError); rebuilding it here surfaces the class's own
    message, which names the bad argument. Returns if the class is unknown.
    """
    cls = _initializer_class(identifier.get("class_name"))
    config = identifier.get("config", {})
    if cls is None or not isinstance(config, dict):
        return
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


_register()
