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
from collections.abc import Callable
from typing import Any

import keras

__all__ = ["laid_out"]

# Below 1 MiB a kernel is drawn eagerly and placed on the devices whole.
_SHARD_AT_BIRTH_BYTES = 1 << 20


def laid_out(
    make: Callable[[], Any], layout: Any, shape: tuple[int, ...], dtype: str, seed: Any
) -> Any:
    """``make()`` with the sharding ``layout`` (JAX), or ``make()`` unchanged (elsewhere)."""
    if layout is None or keras.backend.backend() != "jax":
        return make()
    import jax

    sharding = _auto(getattr(layout, "backend_layout", layout))  # TensorLayout, or JAX's own
    stateful = isinstance(seed, keras.random.SeedGenerator)
    nbytes = math.prod(shape) * _itemsize(dtype)
    if stateful or nbytes < _SHARD_AT_BIRTH_BYTES:
        return jax.device_put(make(), sharding)
    # Under Keras's explicit-axes context XLA would draw the whole value on every
    # device and slice it; in an auto-axes mesh it partitions the draw itself.
    with jax.set_mesh(sharding.mesh):
        return jax.jit(make, out_shardings=sharding)()


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
