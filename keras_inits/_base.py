"""The seed policy and config handling that every initializer here shares.

Seeds, decided once, here:

- ``seed=int``: reproducible. Call k of an instance draws with the sub-seed
  ``derive_seed(seed, k)``, a hash of (seed, k): a fresh instance with the
  same seed repeats the same sequence in every process, and one instance
  shared by two layers gives them different kernels. (``seed + k`` would
  collide with the next seed's stream; a hash does not.)
- ``seed=None``: each call draws a fresh seed from Python's ``random``
  module, so no two calls give the same values, and
  ``keras.utils.set_random_seed(s)`` (which seeds ``random``) makes a whole
  model build reproducible. The seed is a Python int, so the call still
  traces under ``jax.jit``.
- ``seed=keras.random.SeedGenerator``: Keras's stream semantics; each call
  advances the generator.

A subclass implements ``_draw(shape, dtype, seed)`` and lists its own
arguments in ``get_config``; everything else (validation of shape, dtype
and seed, empty shapes, config round trips) is here. Nothing in this module
imports a particular backend.
"""

from __future__ import annotations

import hashlib
import inspect
import random as python_random
from typing import Any, TypeAlias

import keras

from keras_inits._validation import check_dtype, check_seed, check_shape

__all__ = ["RandomInitializer", "Seed", "derive_seed"]

Seed: TypeAlias = "int | keras.random.SeedGenerator | None"

_SEED_RANGE = 2**31 - 1  # sub-seeds in [1, 2**31 - 1]: valid on every backend


def derive_seed(seed: int, call_index: int) -> int:
    """The sub-seed of call ``call_index`` of an instance seeded with ``seed``.

    A BLAKE2b hash of both numbers, so (seed, k + 1) and (seed + 1, k) are as
    unrelated as any two seeds, and the result is the same in every process.

    Example:
        >>> derive_seed(0, 1) == derive_seed(1, 0)
        False
        >>> derive_seed(42, 3) == derive_seed(42, 3)
        True
    """
    digest = hashlib.blake2b(f"{seed}:{call_index}".encode(), digest_size=8).digest()
    return 1 + int.from_bytes(digest, "little") % _SEED_RANGE


class RandomInitializer(keras.initializers.Initializer):
    """Base class: the seed policy, input checks and config round trip.

    Subclasses call ``super().__init__(seed=seed)`` after validating their own
    arguments, implement ``_draw`` and extend ``get_config``.
    """

    def __init__(self, seed: Seed = None) -> None:
        self.seed = check_seed(seed)
        self._init_seed = self.seed  # the name Keras's own initializers use
        self._calls = 0

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        """Returns a tensor of ``shape`` and float ``dtype`` (default floatx).

        Raises:
            ValueError: If ``shape`` has a negative dimension or ``dtype`` is not
                a floating-point dtype.
        """
        shape = check_shape(shape)
        dtype = check_dtype(dtype)
        seed = self._next_seed()
        if 0 in shape:
            return keras.ops.zeros(shape, dtype=dtype)
        return self._draw(shape, dtype, seed)

    def _draw(self, shape: tuple[int, ...], dtype: str, seed: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement `_draw`.")

    def _next_seed(self) -> Any:
        if self.seed is None:
            return python_random.randint(1, _SEED_RANGE)
        if isinstance(self.seed, keras.random.SeedGenerator):
            return self.seed
        call_index = self._calls
        self._calls += 1
        return derive_seed(self.seed, call_index)

    def get_config(self) -> dict[str, Any]:
        return {"seed": keras.saving.serialize_keras_object(self.seed)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RandomInitializer:
        """Rebuilds an instance; an unknown key is an error, never ignored."""
        config = dict(config)
        allowed = _init_arguments(cls)
        unknown = sorted(set(config) - set(allowed))
        if unknown:
            raise ValueError(
                f"`config` has key(s) that {cls.__name__} does not take: {tuple(unknown)}. "
                f"Allowed keys: {allowed}. Received: config={config!r}"
            )
        if isinstance(config.get("seed"), dict):  # a serialized SeedGenerator
            config["seed"] = keras.saving.deserialize_keras_object(config["seed"])
        return cls(**config)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


# inspect.signature costs ~90 us, paid by every layer that names us by string.
_INIT_ARGUMENTS: dict[type, tuple[str, ...]] = {}


def _init_arguments(cls: type) -> tuple[str, ...]:
    if cls not in _INIT_ARGUMENTS:
        _INIT_ARGUMENTS[cls] = tuple(sorted(inspect.signature(cls).parameters))
    return _INIT_ARGUMENTS[cls]
