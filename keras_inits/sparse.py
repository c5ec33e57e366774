"""Sparse initialization: a fixed number of nonzero weights per unit (Martens 2010).

Each output unit gets the same number of random inputs at a fixed scale,
whatever the layer's width, so no unit starts saturated in a wide layer and
the units differ from the start. It was designed for Hessian-free
optimization and is a classic baseline for deep and recurrent nets.

Reproducible from its seed, mask included (PyTorch's ``sparse_`` picks the
zeros with a generator its ``generator`` argument does not reach). The zeros
of each column are drawn directly, with no sort (``_sampling.column_subsets``:
Floyd's algorithm, or uniformly random rows until the column holds exactly as
many distinct ones as it needs), so the cost is one to two normal draws of the
kernel (``_sampling.sparse_normal``). The mask and the values take separate
seeds (``split_seed``). This module never round-trips
through NumPy, so a call traces under ``jax.jit``.
"""

import math
from typing import Any

import keras

from keras_inits import _sampling
from keras_inits._base import RandomInitializer, Seed, split_seed
from keras_inits._validation import check_fraction, check_kernel_rank, check_positive

__all__ = ["Sparse"]


class Sparse(RandomInitializer):
    """In every column, exactly round(sparsity * r) zeros; the rest N(0, stddev^2).

        The kernel, flattened to (r, n) with r = prod(shape[:-1]) (fan_in for a
        Dense or conv kernel (*receptive_field, in, out)) and n = shape[-1]:
            z = round(sparsity * r) entries of each column are 0, which ones
                uniformly at random, independently per column;
            the other r - z entries are N(0, stddev^2), untruncated.
        Var(W) = (1 - z / r) * stddev^2.

    ``round`` is Python's (halves go to the even neighbour): sparsity=0.5 on
    r = 5 gives z = 2. A shape where z = r (a column with no weight at all,
    e.g. r <= 4 at the default 0.9) is refused rather than built dead. The
    mask does not depend on ``dtype``: float16 and float32 draws from the
    same seed zero the same entries. (In float16 a nonzero value below
    6e-8, i.e. |N(0, 1)| < 6e-6 at stddev 0.01, rounds to 0 as well: about
    5 in 10^6 entries. torch's float32 normal sampler also returns an exact
    0.0 about once in 10^7 values; the mask is exact, such a value reads as
    one more zero.)

    Args:
        sparsity: The fraction of each column that is zero, in [0, 1).
        stddev: The std of the nonzero weights, a finite number > 0.
        seed: An int, None or a ``keras.random.SeedGenerator`` (see docs/seeds.md).

    Raises:
        ValueError: For a ``sparsity`` outside [0, 1) or a ``stddev`` that is
            not finite and > 0; when called, for a ``shape`` of rank < 2 or
            one whose columns would be all zero.
        TypeError: For a ``sparsity`` or ``stddev`` that is not a real number
            (bool included).

    Example:
        >>> import numpy as np
        >>> kernel = keras.ops.convert_to_numpy(Sparse(sparsity=0.9, seed=0)((100, 64)))
        >>> sorted(set((kernel == 0).sum(axis=0).tolist()))  # zeros per column
        [90]

    Reference:
        Martens, 2010, "Deep learning via Hessian-free optimization", ICML,
        https://www.cs.toronto.edu/~jmartens/docs/Deep_HessianFree.pdf
    """

    def __init__(self, sparsity: float = 0.9, stddev: float = 0.01, seed: Seed = None) -> None:
        self.sparsity = check_fraction("sparsity", sparsity)
        self.stddev = check_positive("stddev", stddev)
        super().__init__(seed=seed)

    def zeros_per_column(self, shape: tuple[int, ...]) -> int:
        """z = round(sparsity * prod(shape[:-1])).

        Example:
            >>> Sparse(sparsity=0.9).zeros_per_column((3, 3, 16, 32))
            130
        """
        return round(self.sparsity * math.prod(shape[:-1]))

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        check_kernel_rank(type(self).__name__, shape)
        rows, zeros = math.prod(shape[:-1]), self.zeros_per_column(shape)
        if rows and zeros == rows:
            raise ValueError(
                f"`sparsity` must leave a nonzero weight in each column: round({self.sparsity!r}"
                f" * {rows}) = {zeros} of the {rows} rows of `shape` would be 0. "
                f"Received: sparsity={self.sparsity!r}, shape={shape!r}"
            )

    def _draw(self, shape: tuple[int, ...], dtype: str, seed: Any) -> Any:
        rows, cols = math.prod(shape[:-1]), shape[-1]
        zeros = self.zeros_per_column(shape)
        seeds = split_seed(seed, 2)  # the mask's, the values'
        values = _sampling.sparse_normal(rows, cols, zeros, self.stddev, dtype, seeds)
        return keras.ops.reshape(values, shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "sparsity": self.sparsity, "stddev": self.stddev}
