"""The seed policy and config handling that every initializer here shares.

Seeds, decided once, here:

- ``seed=int``: reproducible. Call k of an instance draws with the sub-seed
  ``derive_seed(seed, k)``, a hash of (seed, k): a fresh instance with the
  same seed repeats the same sequence in every process, and one instance
  shared by two layers gives them different kernels. (``seed + k`` would
  collide with the next seed's stream; a hash does not.) Copies that Keras
  re-creates from the instance's config continue its stream
  (``StreamSeed``), so they too draw different kernels.
- ``seed=None``: each call draws a fresh seed from Python's ``random``
  module, so no two calls give the same values, and
  ``keras.utils.set_random_seed(s)`` (which seeds ``random``) makes a whole
  model build reproducible. The seed is a Python int, so the call still
  traces under ``jax.jit``.
- ``seed=keras.random.SeedGenerator``: Keras's stream semantics; each call
  advances the generator.

Deterministic initializers (identity-like kernels) take no seed at all and
give the same values on every call.

A draw made of several random parts (a mask and its values, say) takes one
seed per part from ``split_seed``, never the same seed twice: two
``keras.random`` calls given one int seed can be correlated (on JAX a
normal and a uniform draw then share their random bits).

Every subclass implements ``_draw(shape, dtype, seed)`` (a deterministic
one ignores ``seed``); each lists its own arguments in ``get_config`` and
may refuse a shape it cannot fill in ``_check_shape``. Everything else
(validation of shape, dtype and seed, empty shapes, config round trips) is
here. Nothing in this module imports a particular backend.
"""

from __future__ import annotations

import hashlib
import random as python_random
from typing import Any, TypeAlias

import keras

from keras_inits._sampling import available_dtype
from keras_inits._sharding import laid_out
from keras_inits._validation import check_config_keys, check_dtype, check_seed, check_shape

__all__ = [
    "BaseInitializer",
    "DeterministicInitializer",
    "RandomInitializer",
    "Seed",
    "StreamSeed",
    "available_dtype",
    "derive_seed",
    "fresh_seed",
    "split_seed",
]

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


def fresh_seed() -> int:
    """A new sub-seed from Python's ``random``, so ``keras.utils.set_random_seed`` repeats it."""
    return python_random.randint(1, _SEED_RANGE)


def split_seed(seed: Any, count: int) -> tuple[Any, ...]:
    """``count`` independent seeds for the parts of one draw, from that call's seed.

    An int gives ``count`` hashed sub-seeds; a ``SeedGenerator`` is returned
    ``count`` times, since each ``keras.random`` call advances it.

    Example:
        >>> first, second = split_seed(123, 2)
        >>> first != second and split_seed(123, 2) == (first, second)
        True
    """
    if isinstance(seed, keras.random.SeedGenerator):
        return (seed,) * count
    return tuple(derive_seed(seed, part) for part in range(count))


class BaseInitializer(keras.initializers.Initializer):
    """Base class: input checks, empty shapes and the config round trip.

    ``__call__`` validates ``shape`` and ``dtype``, asks ``_check_shape`` whether
    this class can fill the shape (so an unfit shape is an error even when it
    is empty), takes the call's seed from ``_next_seed`` (None here), returns
    zeros for a zero-size shape and otherwise calls
    ``_draw(shape, dtype, seed)``. Use ``RandomInitializer`` or
    ``DeterministicInitializer``, not this class directly.
    """

    # True in a class that draws complex64 and complex128 as well (its ``_draw``
    # then receives them); every other class refuses them with the dtype error.
    COMPLEX: bool = False

    def __call__(self, shape: Any, dtype: Any = None, layout: Any = None) -> Any:
        """Returns a tensor of ``shape`` and float ``dtype`` (default floatx).

        ``layout`` is the sharding Keras passes for a distributed variable (a
        ``keras.distribution.TensorLayout`` or a JAX sharding): on JAX the value
        comes back with it, drawn sharded (see ``_sharding``); other backends
        ignore it. The values do not depend on it.

        Raises:
            ValueError: If ``shape`` has a negative dimension or is one this
                initializer cannot fill, or ``dtype`` is not a floating-point dtype.
        """
        shape = check_shape(shape)
        dtype = available_dtype(check_dtype(dtype, complex_ok=self.COMPLEX))
        self._check_shape(shape)
        seed = self._next_seed()
        if 0 in shape:
            return laid_out(lambda: keras.ops.zeros(shape, dtype=dtype), layout, shape, dtype, seed)
        unseeded = getattr(self, "seed", 0) is None
        return laid_out(
            lambda: self._draw(shape, dtype, seed), layout, shape, dtype, seed, unseeded
        )

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        """Raises ValueError for a kernel shape this class cannot fill; any by default."""

    def _next_seed(self) -> Any:
        return None

    def _draw(self, shape: tuple[int, ...], dtype: str, seed: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement `_draw`.")

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BaseInitializer:
        """Rebuilds an instance; an unknown key is an error, never ignored."""
        check_config_keys(cls, config)
        config = dict(config)
        if isinstance(config.get("seed"), dict):  # a serialized SeedGenerator
            config["seed"] = keras.saving.deserialize_keras_object(config["seed"])
        return cls(**config)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


class _Stream:
    """Where an int-seeded stream stands: the index of its next call.

    Shared, not copied, by every copy of one instance (see ``StreamSeed``).
    """

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls = 0

    def __copy__(self) -> _Stream:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Stream:
        return self


class StreamSeed(int):
    """An int seed that remembers the stream of the instance it belongs to.

    It is what ``seed`` holds and what ``get_config`` records. Keras copies an
    initializer by ``cls.from_config(instance.get_config())`` (Bidirectional,
    EinsumDense, MultiHeadAttention's projections, ``clone_model``); a copy
    made from this seed continues the original's stream rather than
    restarting it, so the copies draw different kernels. Everywhere else it
    is the plain int: it compares, hashes, prints and is written to JSON as
    one, and pickles as one, so a config saved to a file, and a fresh
    instance given the same number, start a new stream at call 0.
    """

    stream: _Stream

    def __new__(cls, value: int, stream: _Stream) -> StreamSeed:
        seed = super().__new__(cls, value)
        seed.stream = stream
        return seed

    def __repr__(self) -> str:
        return int.__repr__(self)

    def __reduce__(self) -> tuple[type, tuple[int]]:
        return (int, (int(self),))

    def __copy__(self) -> StreamSeed:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> StreamSeed:
        return self


class RandomInitializer(BaseInitializer):
    """Base class of the random initializers: the seed policy above.

    Subclasses call ``super().__init__(seed=seed)`` after validating their own
    arguments, implement ``_draw`` and extend ``get_config``. An int seed is
    kept as a ``StreamSeed``: copies that Keras makes from the config share
    the original's stream of calls.
    """

    def __init__(self, seed: Seed = None) -> None:
        stream = seed.stream if isinstance(seed, StreamSeed) else _Stream()
        if isinstance(seed, dict):  # a serialized SeedGenerator, as Keras's initializers take
            seed = keras.saving.deserialize_keras_object(seed)
        seed = check_seed(seed)
        self.seed = StreamSeed(seed, stream) if isinstance(seed, int) else seed
        self._init_seed = self.seed  # the name Keras's own initializers use
        self._stream = stream

    def _next_seed(self) -> Any:
        if self.seed is None:
            return fresh_seed()
        if isinstance(self.seed, keras.random.SeedGenerator):
            return self.seed
        call_index = self._stream.calls
        self._stream.calls += 1
        return derive_seed(int(self.seed), call_index)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": keras.saving.serialize_keras_object(self.seed)}


class DeterministicInitializer(BaseInitializer):
    """Base class of the initializers that draw nothing: no seed, same values every call.

    Subclasses implement ``_draw(shape, dtype, seed)`` with ``keras.ops``
    (iotas, comparisons), never as a NumPy constant: a traced call then holds
    no kernel-sized constant and a sharded one builds only its shard.
    """
