"""The orthogonal family: kernels whose blocks or centre taps are orthogonal.

An orthogonal map keeps the norm of every input exactly, not just on
average as a fan-scaled draw (Var(W) = 1 / fan_in) does, so a deep linear
stack neither shrinks nor blows up the signal (Saxe et al. 2014). Keras's
own ``Orthogonal`` makes the whole flattened kernel orthogonal, which is
wrong for a gated RNN (its recurrent kernel is 4 or 3 gate matrices side by
side) and fails in float16 and bfloat16; ``BlockOrthogonal`` fixes both, and
``DeltaOrthogonal`` carries the idea to convolutions.

Every draw is one batched QR in ``_sampling.orthogonal``, computed in
float32 (float64 where asked) and cast; this module only lays the blocks
out. It never round-trips through NumPy, so a call traces under ``jax.jit``.
"""

import math
from typing import Any

import keras

from keras_inits import _sampling
from keras_inits._base import RandomInitializer, Seed
from keras_inits._fans import centre_tap
from keras_inits._validation import (
    check_column_axis,
    check_kernel_rank,
    check_positive,
    check_positive_int,
)

__all__ = ["BlockOrthogonal", "DeltaOrthogonal", "infer_blocks"]


def infer_blocks(shape: tuple[int, ...]) -> int:
    """The number of gate blocks ``BlockOrthogonal(blocks=None)`` uses for ``shape``.

    shape[-1] // prod(shape[:-1]) where that divides evenly, else 1: an
    LSTM's recurrent kernel (units, 4 * units) has 4 blocks, a GRU's 3.

    Example:
        >>> infer_blocks((32, 128)), infer_blocks((32, 96)), infer_blocks((3, 3, 16, 32))
        (4, 3, 1)
    """
    rows, cols = math.prod(shape[:-1]), shape[-1]
    if rows > 0 and cols >= rows and cols % rows == 0:
        return cols // rows
    return 1


class BlockOrthogonal(RandomInitializer):
    """Independent orthogonal matrices side by side, one per gate block, times gain.

        The kernel, flattened to (r, n) with r = prod(shape[:-1]), n = shape[-1]
        (for a Dense or conv kernel (*receptive_field, in, out), r = fan_in),
        splits into b equal column blocks of width c = n / b:
            W = gain * [Q_1 | Q_2 | ... | Q_b]
        each Q_i drawn independently from the Haar measure, with
            Q_i^T Q_i = I_c   where r >= c   (orthonormal columns)
            Q_i Q_i^T = I_r   where r <  c   (orthonormal rows)
        b = blocks, or with blocks=None: n // r where r divides n, else 1.
        complex64/complex128: each Q_i Haar unitary (Q_i^H Q_i = I_c, or
        Q_i Q_i^H = I_r), as JAX's orthogonal draws it.

    ``column_axis`` (JAX's argument) names the axis that holds the columns
    (and the blocks): the kernel is drawn as above with that axis moved last,
    then the axis is moved back (``jax.nn.initializers.orthogonal`` does the
    same). With ``column_axis=0`` an (n, r) kernel W is the transpose of an
    (r, n) draw: the slices W[:, j] play the part of the rows above.

    So an LSTM recurrent kernel (units, 4 * units) gets one orthogonal
    (units, units) matrix per gate (input, forget, cell, output) and a GRU's
    (units, 3 * units) one per gate (update, reset, candidate), where
    Keras's ``Orthogonal`` makes the whole (units, 4 * units) matrix
    orthogonal and no gate's block is. With one block this is Keras's
    ``Orthogonal`` (the same flattening and the same distribution), but the
    QR is computed in float32 and cast, so float16 and bfloat16 work on
    every backend. Note that a Dense kernel (r, b * r) is also inferred as b
    square blocks (W W^T = b * gain^2 * I); pass ``blocks=1`` for a single
    block with orthonormal rows.

    Args:
        blocks: The number of equal column blocks, an int >= 1, or None to
            infer it from the shape as above.
        gain: Multiplies every block, a finite number > 0.
        seed: An int, None or a ``keras.random.SeedGenerator`` (see docs/seeds.md).
        column_axis: The axis holding the columns, an int (default -1, the
            last); JAX's ``orthogonal(column_axis=...)``.

    Raises:
        ValueError: For ``blocks`` < 1 or a ``gain`` that is not finite and
            > 0; when called, for a ``shape`` of rank < 2, a ``column_axis``
            out of its range, or a column axis ``blocks`` does not divide.
        TypeError: For a ``blocks`` that is not an int or None, or a ``gain``
            that is not a real number (bool included).

    Example:
        >>> import numpy as np
        >>> lstm = keras.layers.LSTM(64, recurrent_initializer="block_orthogonal")
        >>> _ = lstm(keras.ops.ones((1, 5, 8)))
        >>> kernel = keras.ops.convert_to_numpy(lstm.cell.recurrent_kernel)
        >>> kernel.shape
        (64, 256)
        >>> [bool(np.allclose(q.T @ q, np.eye(64), atol=1e-5)) for q in np.split(kernel, 4, 1)]
        [True, True, True, True]
        >>> half = BlockOrthogonal(seed=0)((128, 128), dtype="bfloat16")
        >>> keras.backend.standardize_dtype(half.dtype)
        'bfloat16'

    Reference:
        Saxe et al., 2014, "Exact solutions to the nonlinear dynamics of
        learning in deep linear neural networks", https://arxiv.org/abs/1312.6120;
        Mezzadri, 2007, "How to generate random matrices from the classical
        compact groups" (the sign correction), https://arxiv.org/abs/math-ph/0609050
    """

    COMPLEX = True

    def __init__(
        self,
        blocks: int | None = None,
        gain: float = 1.0,
        seed: Seed = None,
        column_axis: int = -1,
    ) -> None:
        self.blocks = check_positive_int("blocks", blocks, allow_none=True)
        self.gain = check_positive("gain", gain)
        self.column_axis = check_column_axis(column_axis)
        super().__init__(seed=seed)

    def _columns_last(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """``shape`` with the column axis moved last (the layout the draw fills)."""
        axis = self.column_axis % len(shape)
        return (*shape[:axis], *shape[axis + 1 :], shape[axis])

    def blocks_for(self, shape: tuple[int, ...]) -> int:
        """The number of blocks a kernel of ``shape`` splits into.

        Example:
            >>> BlockOrthogonal().blocks_for((16, 48))
            3
            >>> BlockOrthogonal(blocks=2).blocks_for((16, 48))
            2
        """
        if self.blocks is not None:
            return self.blocks
        return infer_blocks(self._columns_last(shape)) if len(shape) >= 2 else 1

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        check_kernel_rank(type(self).__name__, shape)
        if not -len(shape) <= self.column_axis < len(shape):
            raise ValueError(
                f"`column_axis` must be an axis of `shape`, in [{-len(shape)}, {len(shape)}). "
                f"Received: column_axis={self.column_axis!r}, shape={shape!r}"
            )
        shape = self._columns_last(shape)
        if self.blocks is not None and shape[-1] % self.blocks:
            raise ValueError(
                f"`blocks` must divide the last axis of `shape` ({shape[-1]} % {self.blocks} "
                f"!= 0). Received: blocks={self.blocks!r}, shape={shape!r}"
            )

    def _draw(self, shape: tuple[int, ...], dtype: str, seed: Any) -> Any:
        blocks = self.blocks_for(shape)
        moved = self._columns_last(shape)
        rows, width = math.prod(moved[:-1]), moved[-1] // blocks
        q = _sampling.orthogonal(blocks, rows, width, self.gain, dtype, seed)
        if blocks > 1:  # (blocks, rows, width) -> (rows, blocks, width), a copy
            q = keras.ops.transpose(q, (1, 0, 2))
        q = keras.ops.reshape(q, moved)
        if self.column_axis % len(shape) != len(shape) - 1:
            q = keras.ops.moveaxis(q, -1, self.column_axis)
        return q

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "blocks": self.blocks,
            "gain": self.gain,
            "column_axis": self.column_axis,
        }


class DeltaOrthogonal(RandomInitializer):
    """A convolution kernel that is an orthogonal matrix at the centre tap, 0 elsewhere.

        W[c_1, ..., c_d, :, :] = gain * Q,   Q of shape (in, out), Q Q^T = I_in
        W[...] = 0 at every other tap
        c_i = (k_i - 1) // 2 for a kernel (k_1, ..., k_d, in, out)

    Q is Haar-distributed with orthonormal rows (out >= in), so at
    initialization a stride-1 convolution with ``padding="same"`` maps the
    channel vector x of each pixel to gain * x Q, with ||x Q|| = ||x||
    exactly: the norm is kept at every pixel and every depth (dynamical
    isometry), not on average as with Var(W) = 1 / fan_in, fan_in = in *
    prod(kernel_size). (k - 1) // 2 is the tap that Keras's "same" padding
    aligns with the output pixel, for odd and even kernel sizes alike
    (PyTorch's ``dirac_`` uses k // 2, which shifts even kernels by one).
    A kernel with no spatial axes, (in, out), is a plain orthogonal matrix.

    ``column_axis`` is JAX's argument: -1 (default) or -2, which of the
    centre matrix's two axes holds its columns. Q is Haar either way (JAX
    draws the transpose for -2), so it changes no law; it is here so that a
    port spells what it spelled.

    Args:
        gain: Multiplies Q, a finite number > 0.
        seed: An int, None or a ``keras.random.SeedGenerator`` (see docs/seeds.md).
        column_axis: -1 or -2, as above.

    Raises:
        ValueError: For a ``gain`` that is not finite and > 0 or a
            ``column_axis`` other than -1 and -2; when called,
            for a ``shape`` of rank < 2 or with out < in (no (in, out) matrix
            keeps every norm then).
        TypeError: For a ``gain`` that is not a real number (bool included).

    Example:
        >>> import numpy as np
        >>> kernel = keras.ops.convert_to_numpy(DeltaOrthogonal(seed=0)((3, 3, 16, 32)))
        >>> centre = kernel[1, 1]
        >>> bool(np.allclose(centre @ centre.T, np.eye(16), atol=1e-5))
        True
        >>> off_centre = np.ones((3, 3), bool)
        >>> off_centre[1, 1] = False
        >>> int(np.count_nonzero(kernel[off_centre]))
        0

    Reference:
        Xiao et al., 2018, "Dynamical Isometry and a Mean Field Theory of CNNs:
        How to Train 10,000-Layer Vanilla Convolutional Neural Networks",
        https://arxiv.org/abs/1806.05393
    """

    def __init__(self, gain: float = 1.0, seed: Seed = None, column_axis: int = -1) -> None:
        self.gain = check_positive("gain", gain)
        self.column_axis = check_column_axis(column_axis)
        if self.column_axis not in (-2, -1):
            raise ValueError(
                "`column_axis` must be one of (-2, -1): an axis of the centre (in, out) "
                f"matrix. Received: column_axis={column_axis!r}"
            )
        super().__init__(seed=seed)

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        check_kernel_rank(type(self).__name__, shape)
        if shape[-1] < shape[-2]:
            raise ValueError(
                "`shape` must have out >= in for a delta-orthogonal kernel (*kernel_size, "
                f"in, out): an (in, out) matrix keeps every norm only if out >= in "
                f"({shape[-1]} < {shape[-2]}). Received: shape={shape!r}"
            )

    def _draw(self, shape: tuple[int, ...], dtype: str, seed: Any) -> Any:
        *spatial, fan_in, fan_out = shape
        if self.column_axis == -1:
            q = _sampling.orthogonal(1, fan_in, fan_out, self.gain, dtype, seed)
        else:  # JAX's column_axis=-2: the (out, in) matrix, transposed
            q = _sampling.orthogonal(1, fan_out, fan_in, self.gain, dtype, seed)
            q = keras.ops.transpose(q, (0, 2, 1))
        q = keras.ops.reshape(q, (*(1 for _ in spatial), fan_in, fan_out))
        padding = [(c, k - 1 - c) for c, k in zip(centre_tap(spatial), spatial, strict=True)]
        return keras.ops.pad(q, [*padding, (0, 0), (0, 0)])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gain": self.gain, "column_axis": self.column_axis}
