"""Keras's ``layout`` argument: a value with the variable's sharding, drawn sharded.

Keras 3.15 passes a variable's sharding to an initializer whose ``__call__``
takes ``layout`` (on JAX, under ``jax.set_mesh`` with explicit axes), at every
size. ``laid_out`` turns a draw into a value with that sharding:

- JAX, an int seed: the draw runs in one ``jax.jit`` with the layout as its
  output sharding, so each device computes only its shard (the samplers draw
  in the kernel's N-D shape, so the sharding passes back through the whole
  draw). Small values (under ``_SHARD_AT_BIRTH_BYTES``) are drawn by the
  cached eager program and placed: compiling one program per variable would
  cost more than it saves. The values are the same either way (one stream).
- JAX, a ``SeedGenerator``: its state cannot advance inside a fresh trace, so
  the value is drawn eagerly and placed.
- TensorFlow and torch: ``layout`` is ignored (their distribution engines
  never pass one); the plain value is returned.

This module never changes the values a seed gives; it only decides where
they are computed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import keras

__all__ = ["laid_out"]

# Below 1 MiB a kernel is drawn eagerly and placed on the devices whole.
_SHARD_AT_BIRTH_BYTES = 1 << 20


def laid_out(
    make: Callable[[], Any],
    layout: Any,
    shape: tuple[int, ...],
    dtype: str,
    seed: Any,
    unseeded: bool = False,
) -> Any:
    """``make()`` with the sharding ``layout`` (JAX), or ``make()`` unchanged (elsewhere).

    ``unseeded``: the seed was drawn for a ``seed=None`` instance, from Python's
    ``random``; with several JAX processes that is only safe once Keras has a
    global seed (see ``_warn_if_processes_may_disagree``).
    """
    if layout is None or keras.backend.backend() != "jax":
        return make()
    import jax

    if unseeded and jax.process_count() > 1:
        _warn_if_processes_may_disagree()

    sharding = _auto(getattr(layout, "backend_layout", layout))  # TensorLayout, or JAX's own
    stateful = isinstance(seed, keras.random.SeedGenerator)
    nbytes = math.prod(shape) * _itemsize(dtype)
    if stateful or nbytes < _SHARD_AT_BIRTH_BYTES:
        return jax.device_put(make(), sharding)
    # Under Keras's explicit-axes context XLA would draw the whole value on every
    # device and slice it; in an auto-axes mesh it partitions the draw itself.
    with jax.set_mesh(sharding.mesh):
        return jax.jit(make, out_shardings=sharding)()


def _warn_if_processes_may_disagree() -> None:
    """Warns (once) when seed=None draws may differ from process to process.

    Each process draws a ``seed=None`` instance's seeds from its own Python
    ``random``. ``keras.distribution.initialize`` and
    ``keras.utils.set_random_seed`` seed it the same everywhere; a bare
    ``jax.distributed.initialize`` does not, and each process would then
    compute its shards of one variable from a different seed, silently.
    Keras records its global seed; when there is none, this warns.
    """
    try:
        from keras.src.utils.rng_utils import get_random_seed
    except ImportError:  # a Keras without it: nothing to check against
        return
    if get_random_seed() is None:
        warnings.warn(
            "keras_inits: seed=None initializers in a multi-process JAX run with no "
            "Keras global seed: each process draws its own seeds, so the shards of one "
            "variable may come from different draws. Call keras.utils.set_random_seed(s) "
            "with the same s on every process (keras.distribution.initialize does it "
            "for you), or give the initializers int seeds.",
            RuntimeWarning,
            stacklevel=4,
        )


def _itemsize(dtype: str) -> int:
    import numpy as np

    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def _auto(sharding: Any) -> Any:
    """The same sharding on a concrete mesh whose axes are all Auto (XLA shards the draw)."""
    import jax

    mesh = sharding.mesh
    if isinstance(mesh, jax.sharding.AbstractMesh):
        mesh = jax.sharding.get_mesh()  # the concrete mesh Keras set around the call
    auto = (jax.sharding.AxisType.Auto,) * len(mesh.axis_names)
    if tuple(mesh.axis_types) != auto:
        mesh = jax.sharding.Mesh(mesh.devices, mesh.axis_names, axis_types=auto)
    return jax.sharding.NamedSharding(mesh, sharding.spec)
