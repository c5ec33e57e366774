"""Portable files: a copy of a model that loads with plain Keras, without keras_inits.

``portable(model)`` returns a copy of ``model`` with the same weights whose
config names, in place of each of our initializers, the Keras built-in that
draws from the same distribution (``keras_equivalent``). Saved, that copy
loads where keras_inits is not installed: on a model hub, on a colleague's
machine, in a server. The weights are saved as they are either way; the
initializers recorded in the file only decide how a model rebuilt from its
config would be initialized.

Exact equivalents, same law and same fans (``(*receptive_field, in, out)``):

    VarianceScaling, SigmoidNormal/Uniform, XavierNormal/Uniform,
    KaimingNormal/Uniform, ActivationScaled
        -> keras.initializers.VarianceScaling(scale, mode, distribution)
           with this instance's scale (gain^2), mode and distribution
           ("truncated_normal" is the same truncation at 2 std in both)
    SmallNormal(stddev)  -> keras.initializers.RandomNormal(0, stddev)
    SmallUniform(limit)  -> keras.initializers.RandomUniform(-limit, limit)
    BoundedNormal(stddev) with the default bounds +-2
                         -> keras.initializers.TruncatedNormal(0, stddev)

VarianceScaling with JAX's ``mode="fan_geo_avg"`` or a ``batch_axis``, and
BoundedNormal with other bounds, have none.

The structural, orthogonal and sparse initializers have none. For them the
caller chooses: an error that names each layer (the default), or an
explicit ``fallback`` built-in recorded in their place. This module never
changes the model it is given and never writes a file.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras

from keras_inits._registry import PACKAGE, resolve
from keras_inits.small import BoundedNormal, SmallNormal, SmallUniform
from keras_inits.variance import VarianceScaling

__all__ = ["keras_equivalent", "portable"]

# Keras 3.15 gave its VarianceScaling fan axes; an older one has no equivalent
# for an instance that sets both.
_KERAS_HAS_FAN_AXES = (
    "input_axes" in inspect.signature(keras.initializers.VarianceScaling).parameters
)


def keras_equivalent(initializer: Any) -> keras.initializers.Initializer | None:
    """The Keras built-in that draws from the same distribution, or None.

    ``initializer`` is an instance, or anything ``keras_inits.get`` resolves
    to one: a string name ("sigmoid_normal") or a config dict. An int seed or
    a SeedGenerator is passed on (the law is the same; the values drawn are
    Keras's own).

    Raises:
        ValueError: If a string or config dict names no known initializer.

    Example:
        >>> import keras_inits as ki
        >>> equivalent = keras_equivalent(ki.SigmoidNormal(seed=1))
        >>> type(equivalent).__name__, equivalent.scale, equivalent.distribution
        ('VarianceScaling', 4.0, 'untruncated_normal')
        >>> keras_equivalent(ki.BlockOrthogonal()) is None
        True
        >>> keras_equivalent("sigmoid_normal").scale
        4.0
    """
    if isinstance(initializer, (str, dict)):
        initializer = resolve(initializer, "initializer")
    seed = getattr(initializer, "seed", None)
    seed = int(seed) if isinstance(seed, int) else seed
    if isinstance(initializer, VarianceScaling):
        if initializer.mode == "fan_geo_avg" or initializer.batch_axis:
            return None  # JAX's options: Keras's VarianceScaling has neither
        axes: dict[str, Any] = {}
        if initializer.input_axes is not None and initializer.output_axes is not None:
            if not _KERAS_HAS_FAN_AXES:
                return None
            axes = {"input_axes": initializer.input_axes, "output_axes": initializer.output_axes}
        return keras.initializers.VarianceScaling(
            scale=initializer.scale,
            mode=initializer.mode,
            distribution=initializer.distribution,
            seed=seed,
            **axes,
        )
    if isinstance(initializer, SmallNormal):
        return keras.initializers.RandomNormal(mean=0.0, stddev=initializer.stddev, seed=seed)
    if isinstance(initializer, BoundedNormal):  # Keras's redraws beyond 2 std: the same law
        if (initializer.lower, initializer.upper) != (-2.0, 2.0):
            return None
        return keras.initializers.TruncatedNormal(mean=0.0, stddev=initializer.stddev, seed=seed)
    if isinstance(initializer, SmallUniform):
        limit = initializer.limit
        return keras.initializers.RandomUniform(minval=-limit, maxval=limit, seed=seed)
    return None


def portable(model: keras.Model, fallback: Any = None) -> keras.Model:
    """A copy of ``model``, same weights, whose config needs only Keras to load.

    Each of our initializers in the model's config becomes its exact Keras
    equivalent (see the module docstring). Save the copy:

        ki.portable(model).save("model.keras")   # loads without keras_inits

    The copy is rebuilt from the config and given ``model``'s weights; an
    optimizer's state is not copied.

    Args:
        model: A Keras model (functional, Sequential, or a registered subclass
            that serializes).
        fallback: None (default): an initializer with no Keras equivalent is
            an error naming its layers. Or a Keras built-in initializer (a
            name such as "orthogonal", or an instance) recorded in place of
            each such initializer.

    Raises:
        TypeError: If ``model`` is not a Keras model.
        ValueError: If an initializer has no Keras equivalent and no
            ``fallback`` is given, or ``fallback`` is not a Keras built-in.

    Example:
        >>> import keras_inits as ki
        >>> model = keras.Sequential([keras.Input((4,)),
        ...                           keras.layers.Dense(3, kernel_initializer="sigmoid_normal")])
        >>> "keras_inits" in str(ki.portable(model).get_config())
        False
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={model!r}")
    fallback_config = None if fallback is None else _builtin_config(fallback)
    missing: list[str] = []
    config = _replace(keras.saving.serialize_keras_object(model), "", "", missing, fallback_config)
    if missing and fallback_config is None:
        raise ValueError(
            "`model` uses initializers that Keras has no built-in equivalent for, in "
            f"{', '.join(missing)}. Pass `fallback`, a Keras initializer (such as "
            "'orthogonal' or 'glorot_uniform'), to record in their place; the weights are "
            f"saved as they are. Received: model={model.name!r}, fallback=None"
        )
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


def _builtin_config(fallback: Any) -> dict[str, Any]:
    try:
        initializer = keras.initializers.get(fallback)
    except (ValueError, TypeError):
        initializer = None
    if initializer is None or not type(initializer).__module__.startswith("keras."):
        raise ValueError(
            "`fallback` must be a Keras built-in initializer, a name such as 'orthogonal' "
            f"or an instance, so that the file loads without keras_inits. "
            f"Received: fallback={fallback!r}"
        )
    config: dict[str, Any] = keras.initializers.serialize(initializer)
    return config


def _replace(
    node: Any, layer: str, key: str, missing: list[str], fallback: dict[str, Any] | None
) -> Any:
    """``node`` with each of our serialized initializers replaced by Keras's."""
    if isinstance(node, list):
        return [_replace(item, layer, key, missing, fallback) for item in node]
    if not isinstance(node, dict):
        return node
    registered = node.get("registered_name")
    if isinstance(registered, str) and registered.startswith(f"{PACKAGE}>"):
        cls = keras.saving.get_registered_object(registered)
        equivalent = keras_equivalent(cls.from_config(node["config"]))
        if equivalent is not None:
            return keras.initializers.serialize(equivalent)
        missing.append(f"layer {layer!r} ({key}: {cls.__name__})")
        return fallback if fallback is not None else node
    inner = node.get("config")
    if "class_name" in node and isinstance(inner, dict) and isinstance(inner.get("name"), str):
        layer = inner["name"]
    return {
        k: _replace(v, layer, k if k != "config" else key, missing, fallback)
        for k, v in node.items()
    }
