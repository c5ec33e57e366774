"""Exact draws from the distributions every initializer here uses.

Each sampler takes a standard deviation (or a bound), a float dtype and a
seed that ``keras.random`` accepts (an int or a ``SeedGenerator``), and uses
only ``keras.random`` and ``keras.ops``: no NumPy round trip, so Keras can
trace a call under ``jax.jit`` with an output sharding.

float16 and bfloat16 are drawn in float32 and cast: drawing in 16 bits would
bias the tails and the inverse CDF. This module must never return a value
outside the distribution's support: a truncated normal has no value beyond
its bound, on every backend, and a draw the dtype cannot hold (inf, or all
zeros) is refused with an error naming ``dtype``.
"""

from __future__ import annotations

import math
from typing import Any

import keras

__all__ = ["TRUNCATED_STD", "normal", "orthogonal", "truncated_normal", "uniform"]

# Std of a standard normal truncated to [-2, 2]:
# sqrt(1 - 4 * phi(2) / (Phi(2) - Phi(-2))) = 0.87962566103423978.
TRUNCATED_STD = 0.87962566103423978
# The standard normal's mass within 2 std, as erf: Phi(2) - Phi(-2) = erf(sqrt(2)).
_ERF_SQRT2 = 0.9544997361036416
_LOW_PRECISION = ("float16", "bfloat16")
# (largest finite value, smallest positive subnormal) of each float dtype.
_RANGE = {
    "float16": (65504.0, 2.0**-24),
    "bfloat16": (3.3895313892515355e38, 2.0**-133),
    "float32": (3.4028234663852886e38, 2.0**-149),
    "float64": (1.7976931348623157e308, 5e-324),
}
# A standard normal exceeds 8.5 in absolute value with probability 1.9e-17.
_NORMAL_REACH = 8.5


def _check_range(stddev: float, reach: float, dtype: str) -> None:
    """Refuses a draw that ``dtype`` cannot hold: inf values, or nothing but zeros.

    ``reach`` is the largest |value| the draw can produce (or, for an
    untruncated normal, will in practice), in units of ``stddev``.
    """
    largest, smallest = _RANGE[dtype]
    if stddev * reach > largest:
        raise ValueError(
            f"`dtype` cannot hold draws with std {stddev:.6g}: values reach "
            f"{stddev * reach:.6g}, beyond its largest value {largest:.6g}. "
            f"Received: dtype={dtype!r}"
        )
    if stddev < smallest:
        raise ValueError(
            f"`dtype` cannot hold draws with std {stddev:.6g}: nearly every value would "
            f"round to 0 (its smallest positive value is {smallest:.6g}). "
            f"Received: dtype={dtype!r}"
        )


def _draw_dtype(dtype: str) -> str:
    return "float32" if dtype in _LOW_PRECISION else dtype


def _finish(values: Any, dtype: str) -> Any:
    return values if _draw_dtype(dtype) == dtype else keras.ops.cast(values, dtype)


def uniform(shape: tuple[int, ...], limit: float, dtype: str, seed: Any) -> Any:
    """U(-limit, limit): mean 0, std limit / sqrt(3)."""
    _check_range(limit / math.sqrt(3.0), math.sqrt(3.0), dtype)
    values = keras.random.uniform(
        shape, minval=-limit, maxval=limit, dtype=_draw_dtype(dtype), seed=seed
    )
    return _finish(values, dtype)


def normal(shape: tuple[int, ...], stddev: float, dtype: str, seed: Any) -> Any:
    """N(0, stddev^2), untruncated."""
    _check_range(stddev, _NORMAL_REACH, dtype)
    values = keras.random.normal(
        shape, mean=0.0, stddev=stddev, dtype=_draw_dtype(dtype), seed=seed
    )
    return _finish(values, dtype)


def truncated_normal(shape: tuple[int, ...], stddev: float, dtype: str, seed: Any) -> Any:
    """A normal truncated at 2 of its own std, rescaled to have std ``stddev``.

    Inverse CDF: with v ~ U(-erf(sqrt 2), erf(sqrt 2)), sqrt(2) * erfinv(v) is
    a standard normal truncated to [-2, 2]. One uniform draw per value, no
    rejection loop, and a final clip guards the bound against rounding in
    erfinv, so no value ever lies beyond 2 * stddev / TRUNCATED_STD.
    """
    _check_range(stddev, 2.0 / TRUNCATED_STD, dtype)
    draw_dtype = _draw_dtype(dtype)
    sigma = stddev / TRUNCATED_STD  # std of the underlying untruncated normal
    bound = 2.0 * sigma
    v = keras.random.uniform(
        shape, minval=-_ERF_SQRT2, maxval=_ERF_SQRT2, dtype=draw_dtype, seed=seed
    )
    values = keras.ops.erfinv(v) * (math.sqrt(2.0) * sigma)
    values = keras.ops.clip(values, -bound, bound)
    return _finish(values, dtype)


def orthogonal(batch: int, rows: int, cols: int, gain: float, dtype: str, seed: Any) -> Any:
    """``batch`` independent Haar-random (rows, cols) matrices times ``gain``.

    Orthonormal columns (Q^T Q = I) where rows >= cols, orthonormal rows
    (Q Q^T = I) where rows < cols. Q comes from the reduced QR of a standard
    normal (max, min) matrix, one batched QR for all ``batch``; column j is
    multiplied by the sign of R[j, j], which makes Q exactly Haar
    distributed (without it, Q depends on the QR routine's sign convention).
    float16 and bfloat16 are computed in float32 and cast, as every draw here.
    Returns a tensor of shape (batch, rows, cols).
    """
    tall, narrow = max(rows, cols), min(rows, cols)
    # Entries of a unit vector of length `tall` have std 1 / sqrt(tall), reach 1.
    _check_range(gain / math.sqrt(tall), math.sqrt(tall), dtype)
    draw_dtype = _draw_dtype(dtype)
    gaussian = keras.random.normal((batch, tall, narrow), dtype=draw_dtype, seed=seed)
    q, r = keras.ops.qr(gaussian, mode="reduced")
    diagonal = keras.ops.diagonal(r, axis1=-2, axis2=-1)  # (batch, narrow)
    # gain joins after the cast, so float64 keeps it to full precision.
    signs = keras.ops.cast(keras.ops.where(diagonal < 0, -1.0, 1.0), draw_dtype) * gain
    q = q * keras.ops.expand_dims(signs, axis=-2)
    if rows < cols:
        q = keras.ops.transpose(q, (0, 2, 1))
    return _finish(q, dtype)
