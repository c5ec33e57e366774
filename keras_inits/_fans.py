"""Fan computation: how many inputs and outputs one weight connects.

Keras kernels are laid out ``(*receptive_field, in, out)``: a Dense kernel is
``(in, out)``, a Conv2D kernel ``(kh, kw, in, out)``. Then

    fan_in  = in  * prod(receptive_field)
    fan_out = out * prod(receptive_field)

A 1-D shape (a bias) has fan_in = fan_out = its length and a scalar has 1.
Layers whose kernels do not follow that layout (EinsumDense, and so
MultiHeadAttention) pass ``input_axes`` and ``output_axes``; the fans are then
the products of those axes' sizes. This module does arithmetic on Python ints
only; it never touches a tensor.
"""

import math
from collections.abc import Sequence
from typing import Literal

__all__ = ["Mode", "centre_tap", "compute_fans", "fan_for_mode"]

Mode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]


def compute_fans(
    shape: Sequence[int],
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
    batch_axis: Sequence[int] = (),
) -> tuple[int, int]:
    """Returns ``(fan_in, fan_out)`` for a kernel of ``shape``.

    Args:
        shape: The kernel's shape, non-negative ints.
        input_axes: Axes whose sizes multiply to fan_in, or None for the Keras
            layout. Used only when ``output_axes`` is given too, as in Keras.
        output_axes: Axes whose sizes multiply to fan_out, or None.
        batch_axis: Axes of the Keras layout that count in neither fan (JAX's
            ``batch_axis``: a stack of independent kernels). Ignored where
            ``input_axes`` and ``output_axes`` are given, which leave every
            unnamed axis out already.

    Raises:
        ValueError: If an axis is out of range for ``shape``, or a batch axis
            is the input or output axis (the last two) or ``shape`` has rank < 2.

    Example:
        >>> compute_fans((3, 3, 16, 32))
        (144, 288)
        >>> compute_fans((64, 4, 32), input_axes=[0], output_axes=[1, 2])
        (64, 128)
        >>> compute_fans((8, 3, 3, 16, 32), batch_axis=[0])  # 8 conv kernels stacked
        (144, 288)
    """
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        # As Keras computes them: an axis listed twice, or in both lists, counts each time.
        ins = _normalize_axes("input_axes", input_axes, len(shape))
        outs = _normalize_axes("output_axes", output_axes, len(shape))
        return math.prod(shape[a] for a in ins), math.prod(shape[a] for a in outs)
    if batch_axis:
        _check_batch_axis(batch_axis, len(shape))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    batch = set(_normalize_axes("batch_axis", batch_axis, len(shape)))
    receptive_field = math.prod(d for a, d in enumerate(shape[:-2]) if a not in batch)
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def fan_for_mode(mode: Mode, fan_in: int, fan_out: int) -> float:
    """The fan that ``mode`` names, never below 1 (an empty kernel has no fan).

    Example:
        >>> fan_for_mode("fan_avg", 100, 300), fan_for_mode("fan_geo_avg", 100, 400)
        (200.0, 200.0)
    """
    if mode == "fan_in":
        fan = float(fan_in)
    elif mode == "fan_out":
        fan = float(fan_out)
    elif mode == "fan_geo_avg":  # JAX's: sqrt(fan_in * fan_out)
        fan = math.sqrt(fan_in) * math.sqrt(fan_out)
    else:
        fan = (fan_in + fan_out) / 2.0
    return max(1.0, fan)


def centre_tap(kernel_size: Sequence[int]) -> tuple[int, ...]:
    """The tap that Keras's ``padding="same"`` lines up with the output pixel.

    "same" pads k - 1 in all along an axis of size k, (k - 1) // 2 before and
    the rest after, so the tap at index (k - 1) // 2 is the one that reads the
    input at the output's own position, for odd and even k alike (PyTorch's
    ``dirac_`` uses k // 2, one off for even k).

    Example:
        >>> centre_tap((3, 4)), centre_tap(())
        ((1, 1), ())
    """
    return tuple((k - 1) // 2 for k in kernel_size)


def _normalize_axes(name: str, axes: Sequence[int], rank: int) -> list[int]:
    result = []
    for axis in axes:
        if not -rank <= axis < rank:
            raise ValueError(
                f"`{name}` must hold axes in [{-rank}, {rank}) for a kernel of rank "
                f"{rank}. Received: {name}={list(axes)!r}"
            )
        result.append(axis % rank)
    return result


def _check_batch_axis(batch_axis: Sequence[int], rank: int) -> None:
    """A batch axis must be one of the receptive-field axes of a kernel of rank >= 2."""
    if rank < 2 or any(
        a % rank >= rank - 2 for a in _normalize_axes("batch_axis", batch_axis, rank)
    ):
        raise ValueError(
            f"`batch_axis` must name axes before the last two (in, out) of a kernel of rank "
            f">= 2; this kernel has rank {rank}. Received: batch_axis={list(batch_axis)!r}"
        )
