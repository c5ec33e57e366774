"""torch: draws in place into the one output tensor (imported only on torch).

``uniform_``, ``normal_``, ``erfinv_``, ``mul_`` and ``clamp_`` fill the
output where it lies, so no other output-sized tensor is allocated; torch
indexes with 64-bit integers, so there is no size limit of our own. A
symbolic build (the meta device) returns None, and the portable path runs.
The generator is seeded as Keras seeds its torch draws.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import torch

from keras_inits import _compat
from keras_inits._sampling._common import ERF_SQRT2, Kind, seed_pair
from keras_inits._sampling._portable import fused, place, process_count, sparse_normal

__all__ = [
    "MAX_VALUES",
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


def _generator(device: Any, seed: Any) -> Any:
    s0, s1 = (int(word) for word in seed_pair(seed))
    generator = torch.Generator(device=device)
    generator.manual_seed(_compat.keras_torch_seed(s0, s1))
    return generator


def draw(kind: Kind, shape: tuple[int, ...], scale: float, dtype: str, seed: Any) -> Any:
    """``kind``'s values in place, on Keras's device; None on the meta device."""
    out = keras.ops.empty(shape, dtype=dtype)  # on Keras's device
    if out.device.type == "meta":  # symbolic build: the portable path handles it
        return None
    generator = _generator(out.device, seed)
    if kind == "uniform":
        return out.uniform_(-scale, scale, generator=generator)
    if kind == "normal":
        return out.normal_(0.0, scale, generator=generator)
    # The inverse CDF, in place: no tensor but the output is ever allocated.
    out.uniform_(-ERF_SQRT2, ERF_SQRT2, generator=generator)
    out.erfinv_().mul_(math.sqrt(2.0) * scale)
    return out.clamp_(-2.0 * scale, 2.0 * scale)


def zero_where(mask: Any, values: Any) -> Any:
    """``values`` (a fresh draw the caller owns) with 0 where ``mask`` is True, in place."""
    return values.masked_fill_(mask, 0)


def _id_dtype(picks: int) -> str:
    """The narrowest int for a table of the slot ids of one round, 0 meaning free."""
    return "int16" if picks < 2**14 else "int32"


def subsets(rows: int, cols: int, picks: int, seed: Any) -> Any:
    """``picks`` rows of each column, drawn in rounds (see ``column_subsets``)."""
    mask = keras.ops.zeros((rows + 1, cols), dtype="bool")  # + a spare row
    if mask.device.type == "meta":  # symbolic build: the portable path handles it
        return None
    device = mask.device
    generator = _generator(device, seed)
    # The rounds' slot ids, by column (cols, rows + 1), so the scatter and gather
    # of one column stay in its own few KB; 0 is free, ids grow from the most
    # negative, so a scatter-min keeps a row's first draw, in this round or before.
    id_dtype = getattr(torch, _id_dtype(picks))
    table = torch.zeros((cols, rows + 1), dtype=id_dtype, device=device)
    count = torch.zeros((cols, 1), dtype=torch.int64, device=device)
    next_id = torch.iinfo(id_dtype).min + 1
    while True:
        deficit = picks - count  # rows each column still lacks
        width = int(deficit.max())
        if width == 0:
            break
        slot = torch.arange(width, device=device)
        row = torch.randint(0, rows, (cols, width), generator=generator, device=device)
        used = None if next_id == torch.iinfo(id_dtype).min + 1 else slot < deficit
        if used is not None:  # a column uses its first `deficit` draws
            row.masked_fill_(~used, rows)  # the rest go to the spare row
        if next_id + width > 0:  # out of ids: every taken row becomes the oldest
            table.masked_fill_(table != 0, torch.iinfo(id_dtype).min)
            next_id = torch.iinfo(id_dtype).min + 1
        ids = (slot + next_id).to(id_dtype).expand(cols, width)
        next_id += width
        table.scatter_reduce_(1, row, ids, "amin")
        # A row new to its column is one whose id stayed: drawn before, or twice
        # in this round, only the first draw's id is in the table.
        new = table.gather(1, row) == ids
        if used is not None:
            new &= used
        count += new.sum(1, keepdim=True)
        mask.scatter_(0, row.T, True)  # the mask in the kernel's layout (rows, cols)
    return mask[:rows]


def sylvester_block(rows: int, cols: int, value: float, dtype: str) -> Any:
    """``value`` * H[:rows, :cols] for Sylvester's Hadamard matrix H, by doubling in place.

    H's top-left 2s x 2s block is [[B, B], [B, -B]] for its s x s block B, so
    the output is filled by copies within it: the one output tensor. None on
    the meta device.
    """
    out = keras.ops.empty((rows, cols), dtype=dtype)
    if out.device.type == "meta":
        return None
    out[:1, :1] = value
    size = 1
    while size < max(rows, cols):  # out[:size, :size] (clipped to the shape) is done
        r, c = min(size, rows), min(size, cols)
        r2, c2 = min(2 * size, rows) - size, min(2 * size, cols) - size
        if c2 > 0:
            out[:r, size : size + c2].copy_(out[:r, :c2])
        if r2 > 0:
            out[size : size + r2, :c].copy_(out[:r2, :c])
        if r2 > 0 and c2 > 0:
            out[size : size + r2, size : size + c2].copy_(out[:r2, :c2]).neg_()
        size *= 2
    return out
