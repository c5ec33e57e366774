"""Deterministic kernels built fast: no draw, the same values on every call.

``structural``'s initializers build their kernels from iotas and
comparisons with ``keras.ops``; the helpers here run such a build the way
each backend does it best (through the backend's module in
``keras_inits._sampling``), and never change the values it gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keras_inits._sampling import backend_module

__all__ = ["fused", "sylvester_block"]


def fused(build: Callable[..., Any], shape: tuple[int, ...], *static: Any) -> Any:
    """``build(shape, *static)``, a kernel built from iotas (no draw), as one XLA program.

    ``static`` must be hashable (dtype, Python numbers, strings). The ops run
    as one compiled program per (build, shape, static), so XLA fuses the iotas
    and comparisons into the output: one output-sized buffer, where op by op
    each intermediate was one. On JAX always (inside an outer trace it
    inlines, so a sharded call still builds only its shard); on TensorFlow
    for large kernels, where the compile (about 0.1 s a shape) buys more than
    it costs. Elsewhere ``build`` runs op by op; XLA selects the same
    constants, so the values are the same either way.
    """
    values = backend_module().fused(build, shape, static)
    return build(shape, *static) if values is None else values


def sylvester_block(rows: int, cols: int, value: float, dtype: str) -> Any:
    """``value`` * H[:rows, :cols] for Sylvester's Hadamard matrix H, built in place, or None.

    torch only (elsewhere None: build it from iotas under ``fused``): the
    output is filled by doubling, the one output tensor, copies within it.
    """
    return backend_module().sylvester_block(rows, cols, value, dtype)
