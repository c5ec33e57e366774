"""What the public draws and every backend module share: constants, seeds, layouts.

A leaf module: it imports Keras and ``keras_inits._compat`` only, never a
backend, and never another module of ``keras_inits._sampling``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal, get_args

import keras

from keras_inits import _compat

# The standard normal's mass within 2 std, as erf: Phi(2) - Phi(-2) = erf(sqrt(2)).
ERF_SQRT2 = 0.9544997361036416
# Indices of 32-bit signed integers reach 2^31 - 1: a draw of more values than
# that must not index its values with them.
INDEX_LIMIT = 2**31 - 1

Kind = Literal["uniform", "normal", "truncated_normal"]
# How a backend lays out a large eager draw. "chunked": a loop over fixed-size
# chunks, whose temporaries stay in a CPU's cache. "whole": one fused draw of
# the whole kernel, what a GPU or TPU does at memory bandwidth. The values
# are the same either way: only the order of the work differs.
Layout = Literal["chunked", "whole"]
_forced: Layout | None = None


def layout_for(platform: str) -> Layout:
    """The layout on ``platform``: "chunked" on a CPU ("cpu"), "whole" on a GPU or TPU.

    ``forced_layout`` overrides the choice (tests force each layout on a CPU
    to prove the values do not depend on it).
    """
    if _forced is not None:
        return _forced
    return "chunked" if platform == "cpu" else "whole"


@contextlib.contextmanager
def forced_layout(layout: Layout) -> Iterator[None]:
    """Within the block, every draw uses ``layout`` whatever the device."""
    global _forced
    if layout not in get_args(Layout):
        allowed = tuple(sorted(get_args(Layout)))
        raise ValueError(f"`layout` must be one of {allowed}. Received: layout={layout!r}")
    previous, _forced = _forced, layout
    try:
        yield
    finally:
        _forced = previous


def is_fast_seed(seed: Any) -> bool:
    """An int or a ``SeedGenerator``: a seed the backends' own paths can fold."""
    if isinstance(seed, keras.random.SeedGenerator):
        return True
    return isinstance(seed, int) and not isinstance(seed, bool)


def seed_pair(seed: Any) -> Any:
    """The two seed words Keras's own draws use: (seed, 0), or the generator's next."""
    if isinstance(seed, keras.random.SeedGenerator):
        return seed.next()
    return _compat.keras_int_seed_pair(seed)
