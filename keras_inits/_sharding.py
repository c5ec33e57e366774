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

The backend's module in ``keras_inits._sampling`` does the placing
(``place``); this module decides what to ask of it.

This module never changes the values a seed gives; it only decides where
they are computed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_inits import _compat
from keras_inits._sampling import backend_module

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
    if layout is None:
        return make()
    module = backend_module()
    if unseeded and module.process_count() > 1:
        _warn_if_processes_may_disagree()
    stateful = isinstance(seed, keras.random.SeedGenerator)
    nbytes = math.prod(shape) * _itemsize(dtype)
    return module.place(make, layout, eager=stateful or nbytes < _SHARD_AT_BIRTH_BYTES)


def _warn_if_processes_may_disagree() -> None:
    """Warns (once) when seed=None draws may differ from process to process.

    Each process draws a ``seed=None`` instance's seeds from its own Python
    ``random``. ``keras.distribution.initialize`` and
    ``keras.utils.set_random_seed`` seed it the same everywhere; a bare
    ``jax.distributed.initialize`` does not, and each process would then
    compute its shards of one variable from a different seed, silently.
    Keras records its global seed; when there is none, this warns.
    """
    if not _compat.keras_global_seed_set():
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
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
