"""The portable path: ``keras.random`` and ``keras.ops`` only, on any backend.

What every backend falls back on where its own module has no faster path
(a seed it cannot fold, a symbolic build), and the whole path of a backend
without a module of its own. Each function here has the same signature as
the backend modules' (``_tensorflow``, ``_jax``, ``_torch``); none imports a
backend, and none builds a NumPy constant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras

from keras_inits._sampling._common import ERF_SQRT2, Kind

# Past this many values a draw is refused (None: no limit of our own).
MAX_VALUES: int | None = None


def draw(kind: Kind, shape: tuple[int, ...], scale: float, dtype: str, seed: Any) -> Any:
    """``kind``'s values (see ``keras_inits._sampling._draw`` for ``scale``)."""
    if kind == "uniform":
        return keras.random.uniform(shape, minval=-scale, maxval=scale, dtype=dtype, seed=seed)
    if kind == "normal":
        return keras.random.normal(shape, mean=0.0, stddev=scale, dtype=dtype, seed=seed)
    bound = 2.0 * scale
    v = keras.random.uniform(shape, minval=-ERF_SQRT2, maxval=ERF_SQRT2, dtype=dtype, seed=seed)
    values = keras.ops.erfinv(v)
    del v  # at most two output-sized tensors alive at once
    values = keras.ops.multiply(values, math.sqrt(2.0) * scale)
    return keras.ops.clip(values, -bound, bound)


def subsets(rows: int, cols: int, picks: int, seed: Any) -> Any:
    """``picks`` True entries per column: the rank of uniform noise in its column (a sort)."""
    noise = keras.random.uniform((rows, cols), dtype="float32", seed=seed)
    rank = keras.ops.argsort(keras.ops.argsort(noise, axis=0), axis=0)
    return keras.ops.less(rank, picks)


def zero_where(mask: Any, values: Any) -> Any:
    """``values`` with 0 where ``mask`` is True."""
    return keras.ops.where(mask, keras.ops.zeros((), dtype=values.dtype), values)


def sparse_normal(
    rows: int, cols: int, zeros: int, stddev: float, dtype: str, mask_seed: Any, value_seed: Any
) -> Any:
    """None: the mask and the values are drawn apart (``column_subsets``, ``normal``)."""
    return None


def fused(build: Callable[..., Any], shape: tuple[int, ...], static: tuple[Any, ...]) -> Any:
    """None: the kernel is built op by op."""
    return None


def sylvester_block(rows: int, cols: int, value: float, dtype: str) -> Any:
    """None: the Hadamard block is built from iotas (``keras_inits._kernels``)."""
    return None


def process_count() -> int:
    """How many processes share the devices (one, where Keras passes no layout)."""
    return 1


def place(make: Callable[[], Any], layout: Any, eager: bool) -> Any:
    """``make()``: this backend's layouts are ignored (Keras never passes one)."""
    return make()
