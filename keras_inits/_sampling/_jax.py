"""JAX: one stream defined by a counter per value (imported only on JAX).

Value number i of the row-major order gets the threefry-2x32 hash of the
64-bit counter i under the seed's key (the two output words xor-ed, or
joined for 64-bit dtypes), exactly the bits ``jax.random.bits`` gives with
threefry_partitionable (the default since JAX 0.5): a pure function of
(key, i). So a chunk, a shard and the whole kernel agree value for value,
and the same float transform turns the bits into the distribution on every
path. Each draw is one jitted program, scale and clip fused into it.

Two layouts of one draw, the same values:

- "whole": the kernel in its N-D shape in one fused draw (an iota of
  counters the SPMD partitioner can split, so an output sharding passes back
  through the draw and each device computes only its shard). Always inside an
  outer trace; outside one on a GPU or TPU, and past 2^31 values anywhere.
- "chunked": outside a trace on a CPU, the output is filled ``_CHUNK``
  values at a time in a ``fori_loop``, so the threefry temporaries of one
  chunk (about 1 MiB) stay in cache, where drawing all at once holds about
  three output-sized temporaries. Its slice offsets are int32, so a draw of
  more than 2^31 - 1 values is drawn whole instead.

This module also places a value with Keras's ``layout`` (see ``_sharding``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from keras_inits import _compat
from keras_inits._sampling._common import ERF_SQRT2, INDEX_LIMIT, Kind, layout_for, seed_pair
from keras_inits._sampling._portable import sparse_normal, sylvester_block

__all__ = [
    "MAX_VALUES",
    "chunked",
    "draw",
    "fused",
    "place",
    "process_count",
    "sparse_normal",
    "subsets",
    "sylvester_block",
    "zero_where",
]

MAX_VALUES: int | None = None
_CHUNK = 1 << 16
_threefry2x32 = _compat.jax_threefry2x32()


def chunked(size: int, tracing: bool) -> bool:
    """Whether a draw of ``size`` values fills its output in chunks (else: whole).

    Chunks only outside a trace, on a CPU (``layout_for`` the default
    device's platform), for more than one chunk and at most 2^31 - 1 values.
    """
    if tracing or size <= _CHUNK or size > INDEX_LIMIT:
        return False
    return layout_for(jax.default_backend()) == "chunked"


def _bits_to_values(kind: str, bits: Any, scale: Any, dtype: str) -> Any:
    """jax.random's map from raw bits to uniform, normal and truncated normal values."""
    finfo = jnp.finfo(dtype)
    nbits = finfo.bits
    one = np.array(1.0, dtype).view(f"uint{nbits}")
    mantissa = jax.lax.shift_right_logical(bits, np.array(nbits - finfo.nmant, bits.dtype))
    unit = jax.lax.bitcast_convert_type(mantissa | one, dtype) - np.array(1.0, dtype)  # [0, 1)

    def between(low: Any, high: Any) -> Any:
        return jax.lax.max(low, unit * (high - low) + low)

    if kind == "uniform":
        return between(-scale, scale)
    if kind == "normal":
        low = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
        unit_normal = np.array(math.sqrt(2.0), dtype) * jax.lax.erf_inv(
            between(low, np.array(1.0, dtype))
        )
        return unit_normal * scale
    erf = np.array(ERF_SQRT2, dtype)
    values = jax.lax.erf_inv(between(-erf, erf)) * (math.sqrt(2.0) * scale)
    return jnp.clip(values, -2.0 * scale, 2.0 * scale)


def _bits_at(key: Any, high: Any, low: Any, dtype: str) -> Any:
    """The stream's raw bits at the 64-bit counters (high, low), two uint32 arrays."""
    first, second = _threefry2x32.bind(key[0], key[1], high, low)
    if jnp.finfo(dtype).bits == 64:
        wide = jnp.uint64
        joined = jax.lax.shift_left(first.astype(wide), jnp.asarray(32, wide))
        return joined | second.astype(wide)
    return first ^ second


def _whole(kind: str, key: Any, scale: Any, shape: tuple[int, ...], dtype: str) -> Any:
    # The counters as jax.random lays them out for an N-D shape (an iota the
    # SPMD partitioner can split), so a sharded caller draws only its shard.
    with jax.threefry_partitionable(True):
        width = jnp.uint64 if jnp.finfo(dtype).bits == 64 else jnp.uint32
        bits = jax.random.bits(key, shape, width)
    return _bits_to_values(kind, bits, scale, dtype)


@functools.partial(jax.jit, static_argnames=("kind", "shape", "dtype", "chunk"))
def _program(
    key: Any, scale: Any, *, kind: str, shape: tuple[int, ...], dtype: str, chunk: bool
) -> Any:
    size = math.prod(shape)
    scale = jnp.asarray(scale, dtype)
    if not chunk or size <= _CHUNK:
        return _whole(kind, key, scale, shape, dtype)
    # The same values, _CHUNK at a time (see the module docstring).
    offsets = jax.lax.iota(jnp.uint32, _CHUNK)

    def piece(high: Any, start_low: Any, carry: bool) -> Any:
        low = start_low + offsets
        if carry:  # the low word may wrap: carry into the high word
            high = high + (low < start_low).astype(jnp.uint32)
        bits = _bits_at(key, jnp.broadcast_to(high, low.shape), low, dtype)
        return _bits_to_values(kind, bits, scale, dtype)

    def fill(i: Any, out: Any) -> Any:
        # Chunk i starts at counter i * 2^16: high word i >> 16, low word
        # i << 16, whose low 16 bits are 0, so adding offsets never wraps.
        index = i.astype(jnp.uint32)
        values = piece(index >> 16, index << 16, carry=False)
        return jax.lax.dynamic_update_slice(out, values, (i * _CHUNK,))

    full = size // _CHUNK
    out = jax.lax.fori_loop(0, full, fill, jnp.empty((size,), dtype))
    if size % _CHUNK:  # the tail: the last _CHUNK counters, overlapping
        start = size - _CHUNK
        tail = piece(jnp.uint32(start >> 32), jnp.uint32(start & 0xFFFFFFFF), carry=True)
        out = jax.lax.dynamic_update_slice(out, tail, (start,))
    return out.reshape(shape)


def draw(kind: Kind, shape: tuple[int, ...], scale: float, dtype: str, seed: Any) -> Any:
    """``kind``'s values: chunked or whole (see ``chunked``), the same either way."""
    key: Any
    if isinstance(seed, keras.random.SeedGenerator):
        key = jnp.asarray(seed.next(), dtype=jnp.uint32)
        # Inside a trace the generator's state, and so the key, is a tracer.
        tracing = _compat.jax_is_tracer(jax, key)
    else:
        # A NumPy key: the jitted program takes it as it is, where building a
        # jax.Array first (jnp.asarray) was most of a small draw's Python cost.
        key = np.asarray(seed_pair(seed), dtype=np.uint32)
        tracing = not _compat.jax_at_top_level(jax)
    chunk = chunked(math.prod(shape), tracing)
    return _program(key, scale, kind=kind, shape=shape, dtype=dtype, chunk=chunk)


@functools.partial(jax.jit, static_argnames=("rows", "cols", "picks"))
def _subsets_program(key: Any, *, rows: int, cols: int, picks: int) -> Any:
    with jax.threefry_partitionable(True):
        bits = jax.random.bits(key, (picks, cols), jnp.uint32)
    column = jnp.arange(cols)

    def step(s: Any, mask: Any) -> Any:  # Floyd: t uniform in [0, j]; t, or j if taken
        j = rows - picks + s
        t = (bits[s] % (j + 1).astype(jnp.uint32)).astype(jnp.int32)
        row = jnp.where(mask[t, column], j, t)
        return mask.at[row, column].set(True)

    return jax.lax.fori_loop(0, picks, step, jnp.zeros((rows, cols), bool))


def subsets(rows: int, cols: int, picks: int, seed: Any) -> Any:
    """``picks`` rows of each column by Floyd's algorithm, all columns in one loop."""
    key = jnp.asarray(seed_pair(seed), dtype=jnp.uint32)
    return _subsets_program(key, rows=rows, cols=cols, picks=picks)


# The values' buffer is donated: the output takes its place.
_zero_where = jax.jit(lambda values, mask: jnp.where(mask, 0, values), donate_argnums=0)


def zero_where(mask: Any, values: Any) -> Any:
    """``values`` with 0 where ``mask`` is True, in the values' donated buffer."""
    if _compat.jax_is_tracer(jax, values):
        return jnp.where(mask, jnp.zeros((), values.dtype), values)
    return _zero_where(values, mask)


@functools.cache
def _fused(build: Callable[..., Any], count: int) -> Callable[..., Any]:
    return jax.jit(build, static_argnums=tuple(range(count)))


def fused(build: Callable[..., Any], shape: tuple[int, ...], static: tuple[Any, ...]) -> Any:
    """``build(shape, *static)`` as one jitted program (inlined inside an outer trace)."""
    return _fused(build, 1 + len(static))(shape, *static)


def process_count() -> int:
    """How many JAX processes share the devices."""
    return int(jax.process_count())


def place(make: Callable[[], Any], layout: Any, eager: bool) -> Any:
    """``make()`` with the sharding ``layout``: drawn sharded, or (``eager``) drawn, then placed."""
    sharding = _auto(getattr(layout, "backend_layout", layout))  # TensorLayout, or JAX's own
    if eager:
        return jax.device_put(make(), sharding)
    # Under Keras's explicit-axes context XLA would draw the whole value on every
    # device and slice it; in an auto-axes mesh it partitions the draw itself.
    with jax.set_mesh(sharding.mesh):
        return jax.jit(make, out_shardings=sharding)()


def _auto(sharding: Any) -> Any:
    """The same sharding on a concrete mesh whose axes are all Auto (XLA shards the draw)."""
    mesh = sharding.mesh
    if isinstance(mesh, jax.sharding.AbstractMesh):
        mesh = jax.sharding.get_mesh()  # the concrete mesh Keras set around the call
    auto = (jax.sharding.AxisType.Auto,) * len(mesh.axis_names)
    if tuple(mesh.axis_types) != auto:
        mesh = jax.sharding.Mesh(mesh.devices, mesh.axis_names, axis_types=auto)
    return jax.sharding.NamedSharding(mesh, sharding.spec)
