"""Every private API of Keras, JAX, TensorFlow and torch that keras_inits touches.

Each entry says what it is, the versions it was checked on, and the public
fallback used where the private name is missing (None where there is none).
Checked on: Keras 3.15.1 (and the floor, 3.14), JAX and jaxlib 0.10.2,
TensorFlow 2.21, torch 2.13. When a version moves, re-check the entries here
and nowhere else.

This module must never import a backend: a function that needs one takes the
already-imported module as an argument (the caller is a backend module).
"""

from __future__ import annotations

from typing import Any

# Sampling, seeds and sharding


def keras_int_seed_pair(seed: int) -> tuple[int, int]:
    """The two uint32 seed words Keras draws from an int seed: (seed mod 2^32, 0).

    Copied from ``keras.src.random.seed_generator.draw_seed`` (checked on
    Keras 3.14 and 3.15.1: ``[seed, 0]``, the seed's low 32 bits). Copied so
    that our draws follow Keras's stream without building Keras's seed tensor;
    no public API gives the words.
    """
    return (seed & 0xFFFFFFFF, 0)


def keras_torch_seed(first: int, second: int) -> int:
    """The seed Keras gives a torch ``Generator`` for the words (first, second).

    Copied from ``keras.src.backend.torch.random.torch_seed_generator``
    (checked on Keras 3.14 and 3.15.1: ``int(first + second) & 0xFFFFFFFF``).
    """
    return (first + second) & 0xFFFFFFFF


def keras_tensorflow_seed(tf: Any, pair: Any) -> Any:
    """The int32 pair TensorFlow's stateless ops get from Keras's seed words.

    Copied from ``keras.src.backend.tensorflow.random._cast_seed`` (checked
    on Keras 3.14 and 3.15.1): the words modulo int32.max - 1, as int32.
    """
    pair = tf.cast(pair, tf.int64) if tf.is_tensor(pair) else tf.constant(pair, tf.int64)
    return tf.cast(tf.math.floormod(pair, tf.int32.max - 1), tf.int32)


def keras_global_seed_set() -> bool:
    """Whether ``keras.utils.set_random_seed`` recorded a seed (True where we cannot tell).

    Private: ``keras.src.utils.rng_utils.get_random_seed`` (checked on Keras
    3.14 and 3.15.1). No public getter exists; without it we answer True,
    which only loses a warning (see ``_sharding``).
    """
    try:
        from keras.src.utils.rng_utils import get_random_seed
    except ImportError:
        return True
    return get_random_seed() is not None


def jax_at_top_level(jax: Any) -> bool:
    """Whether no JAX transformation (jit, vmap, grad, ...) is being traced now.

    Private: ``jax._src.core.trace_state_clean`` (checked on JAX 0.4.35 to
    0.10.2). Public fallback: whether a fresh ``jnp.ones(())`` is a tracer
    (slower: it dispatches an op).
    """
    check = getattr(getattr(getattr(jax, "_src", None), "core", None), "trace_state_clean", None)
    if check is not None:
        return bool(check())
    return not jax_is_tracer(jax, jax.numpy.ones(()))


def jax_is_tracer(jax: Any, value: Any) -> bool:
    """Whether ``value`` is a JAX tracer (an abstract value inside a trace).

    ``jax.core.Tracer`` is public but in the ``jax.core`` namespace JAX is
    emptying (checked on JAX 0.10.2, where it is still exported). Fallback:
    a value without the shards a concrete ``jax.Array`` has counts as traced.
    """
    tracer = getattr(getattr(jax, "core", None), "Tracer", None)
    if tracer is not None:
        return isinstance(value, tracer)
    return not hasattr(value, "addressable_shards")


def jax_threefry2x32() -> Any:
    """JAX's threefry-2x32 hash primitive (binds key words and counter words).

    ``jax.extend.random.threefry2x32_p``: ``jax.extend`` is JAX's API for
    library authors, with weaker stability promises than ``jax`` (checked on
    JAX 0.4.35 to 0.10.2). No other public API gives the hash of a chosen counter.
    """
    from jax.extend.random import threefry2x32_p  # the caller (JAX's module) has JAX loaded

    return threefry2x32_p


# Not code, recorded here so that every private name lives in this file:
# - ``_base.RandomInitializer`` sets ``self._init_seed``, the attribute Keras's
#   own RandomInitializer keeps its seed in (keras/src/initializers/
#   random_initializers.py, Keras 3.14 and 3.15.1); tools that inspect Keras
#   initializers read it.
