"""Names <-> classes: the Keras registration, ``get()`` and ``names()``.

Each class is registered with Keras as "keras_inits>ClassName" (what saved
configs record) and, so that a layer can name it, under its bare class name
and its snake_case alias. A plugin must never change what a built-in name
means: a bare name that Keras itself resolves ("VarianceScaling",
"glorot_normal", ...) is never registered, and such a class stays reachable
as "keras_inits>ClassName" only. Registration happens once, on import.
The naming rules and ``resolve`` live in ``_resolve``, below the family
modules, so that ``structural`` (ICNR's nested initializer) resolves names
without importing this module: no import circle.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_inits._resolve import (
    PACKAGE,
    bare_names,
    keras_names,
    registered_name,
    resolve,
    snake_case,
    string_name,
)
from keras_inits.orthogonal import BlockOrthogonal, DeltaOrthogonal
from keras_inits.small import BoundedNormal, SmallNormal, SmallUniform
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
    BoundedNormal,
    ActivationScaled,
    ConvIdentity,
    ICNR,
    Bilinear,
    HadamardIdentity,
    BlockOrthogonal,
    DeltaOrthogonal,
    Sparse,
)


def _register() -> None:
    """Registers every class with Keras; runs once, when this module is imported."""
    custom_objects = keras.saving.get_custom_objects()
    for cls in CLASSES:
        keras.saving.register_keras_serializable(package=PACKAGE)(cls)
        for name in bare_names(cls):
            custom_objects[name] = cls


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
        TypeError: If ``identifier`` is of a type that names no initializer
            (an int, a float, a bool, a list, ...), or the class a dict names
            refuses its config's types.

    Example:
        >>> type(get("sigmoid_normal")).__name__
        'SigmoidNormal'
        >>> type(get("glorot_normal")).__module__.startswith("keras")
        True
    """
    return resolve(identifier)


_register()
