"""Exact draws from the distributions every initializer here uses.

Each sampler takes a standard deviation (or a bound), a float dtype and a
seed that ``keras.random`` accepts (an int or a ``SeedGenerator``, which
advances once per draw, as Keras's own draws advance it). No NumPy round
trip: Keras can trace a call under ``jax.jit`` with an output sharding.

This module holds the public draws and the one dispatch on the backend
(``backend_module``), as Keras's ``keras/src/backend/<name>/random.py`` do:
one module per backend behind it, each importing its framework once, and
imported only when its backend is the active one:

- ``_tensorflow``: raw stateless ops in one graph per kind and dtype, the
  truncated normal's inverse CDF fused by XLA for large draws.
- ``_jax``: one jitted program per draw over a counter-based stream (a
  chunk, a shard and the whole kernel agree value for value).
- ``_torch``: in-place draws into the one output tensor.
- ``_portable``: ``keras.random`` and ``keras.ops`` only; every backend falls
  back on it where its own path declines (a seed it cannot fold, a symbolic
  build), and a backend without a module uses it whole.

On a CPU the large eager draws of JAX and TensorFlow run in chunks (their
temporaries stay in cache); on a GPU or TPU they are drawn whole, in one
fused program (``_common.layout_for``). Both layouts give the same values.

One stream per backend: an int seed gives the same values eagerly and
traced (``jax.jit``, sharded or not; ``tf.function``), not across backends.

float16 and bfloat16 are drawn in float32 and cast: drawing in 16 bits would
bias the tails and the inverse CDF. This module must never return a value
outside the distribution's support: a truncated normal has no value beyond
its bound (in half precision, strictly inside it after the cast), on every
backend, and a draw the dtype cannot hold (inf, or all zeros) is refused
with an error naming ``dtype``.
"""

from __future__ import annotations

import importlib
import math
from types import ModuleType
from typing import Any

import keras

from keras_inits._sampling import _portable
from keras_inits._sampling._common import (
    Kind,
    Layout,
    forced_layout,
    is_fast_seed,
    layout_for,
)

__all__ = [
    "LOW_PRECISION",
    "TRUNCATED_STD",
    "Layout",
    "available_dtype",
    "backend_module",
    "below",
    "bounded_normal",
    "check_fits",
    "column_subsets",
    "complex_scaled",
    "forced_layout",
    "layout_for",
    "normal",
    "orthogonal",
    "scaled",
    "sparse_normal",
    "truncated_normal",
    "uniform",
    "zero_where",
]

# Std of a standard normal truncated to [-2, 2]:
# sqrt(1 - 4 * phi(2) / (Phi(2) - Phi(-2))) = 0.87962566103423978.
TRUNCATED_STD = 0.87962566103423978
# Half precision: drawn (and scaled, model._walk.scaled_by) in float32, then cast once.
LOW_PRECISION = ("float16", "bfloat16")
# (largest finite value, smallest positive subnormal) of each float dtype.
_RANGE = {
    "float16": (65504.0, 2.0**-24),
    "bfloat16": (3.3895313892515355e38, 2.0**-133),
    "float32": (3.4028234663852886e38, 2.0**-149),
    "float64": (1.7976931348623157e308, 5e-324),
}
# A complex dtype -> the float dtype of its real and imaginary parts.
_PARTS = {"complex64": "float32", "complex128": "float64"}
# E|z|^2 of a complex normal with E|z|^2 = 1 whose modulus is cut at 2: |z|^2 is
# Exp(1) cut at 4, so E|z|^2 = (1 - 5 e^-4) / (1 - e^-4) = 0.92536628...
_COMPLEX_TRUNCATED_VAR = (1.0 - 5.0 * math.exp(-4.0)) / (1.0 - math.exp(-4.0))
# Explicit mantissa bits of the half-precision dtypes.
_MANTISSA = {"float16": 10, "bfloat16": 7}
# A standard normal exceeds 8.5 in absolute value with probability 1.9e-17.
_NORMAL_REACH = 8.5

# Keras's backend name -> the module behind the dispatch.
_MODULES = {"tensorflow": "_tensorflow", "jax": "_jax", "torch": "_torch"}
_loaded: dict[str, ModuleType] = {}


def backend_module() -> ModuleType:
    """The active backend's sampling module (imported on first use), or the portable one.

    Every module has the same functions: ``draw``, ``subsets``,
    ``zero_where``, ``sparse_normal``, ``fused``, ``sylvester_block``,
    ``place`` and ``process_count``, and ``MAX_VALUES``.
    """
    name = keras.backend.backend()
    module = _loaded.get(name)
    if module is None:
        module = importlib.import_module(f"{__name__}.{_MODULES.get(name, '_portable')}")
        _loaded[name] = module
    return module


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


def _check_size(shape: tuple[int, ...]) -> None:
    """Refuses, before any work, a draw larger than the backend's module can index."""
    module = backend_module()
    limit = module.MAX_VALUES
    size = math.prod(shape)
    if limit is not None and size > limit:
        raise ValueError(
            f"`shape` must hold at most {limit} values on {module.NAME} (2^31 - 1: its "
            f"draws index values with int32); this one holds {size}. Received: shape={shape!r}"
        )


def check_fits(largest: float, dtype: str) -> None:
    """Refuses a fixed kernel whose largest magnitude ``dtype`` cannot hold (it would be inf)."""
    if largest > _RANGE[dtype][0]:
        raise ValueError(
            f"`dtype` cannot hold this kernel: its values reach {largest:.6g}, beyond "
            f"its largest value {_RANGE[dtype][0]:.6g}. Received: dtype={dtype!r}"
        )


def available_dtype(dtype: str) -> str:
    """The dtype the backend gives when asked for ``dtype`` (a standard float name).

    Every name but float64 is given as asked. JAX without ``jax_enable_x64``
    gives float32 for float64 (with JAX's warning), as it does for Keras's own
    initializers; drawing in the dtype the backend really gives keeps every
    later step (the bit tricks of a uniform, the inverse CDF of a normal) in
    the precision it was written for, rather than computing float32 values
    with float64 constants (which gave constant kernels and infs). The backend
    is asked through ``keras.ops``, so this module imports none.

    Example:
        >>> available_dtype("float32")
        'float32'
    """
    if dtype == "complex128":
        # complex128 is two float64 parts: without them (JAX without x64) the
        # backend would give complex64, which is refused rather than given.
        if available_dtype("float64") != "float64":
            raise ValueError(
                f"`dtype` complex128 needs float64, which the {keras.backend.backend()} "
                "backend does not give here (JAX gives it only with jax_enable_x64; "
                "it would give complex64). Use complex64, or enable x64. "
                f"Received: dtype={dtype!r}"
            )
        return dtype
    if dtype != "float64":
        return dtype
    given: str = keras.backend.standardize_dtype(keras.ops.zeros((), dtype=dtype).dtype)
    return given


def _draw_dtype(dtype: str) -> str:
    """The dtype a draw for ``dtype`` is computed in.

    float32 for half precision; otherwise what the backend gives
    (``available_dtype``: float32 for float64 on JAX without x64).
    """
    return "float32" if dtype in LOW_PRECISION else available_dtype(dtype)


def below(bound: float, dtype: str) -> float:
    """The largest value of the half-precision ``dtype`` strictly below ``bound`` > 0."""
    bits, smallest = _MANTISSA[dtype], _RANGE[dtype][1]
    if bound > _RANGE[dtype][0]:
        return _RANGE[dtype][0]
    mantissa, exponent = math.frexp(bound)  # bound = mantissa 2^exponent, 0.5 <= mantissa < 1
    step = max(2.0 ** (exponent - 1 - bits), smallest)  # the spacing in [2^(e-1), 2^e)
    if mantissa == 0.5:  # a power of 2: below it the spacing halves
        return bound - max(step / 2.0, smallest)
    return (math.ceil(bound / step) - 1) * step


def _finish(values: Any, dtype: str, bound: float | None = None) -> Any:
    """``values`` (drawn in ``_draw_dtype(dtype)``) in ``dtype``.

    ``bound``: the open bound the values must stay within. The cast to half
    precision rounds to nearest and can land on the bound or past it; the
    values it moved there go to the largest value of ``dtype`` strictly
    inside (every other value is unchanged: rounding keeps order).
    """
    if dtype not in LOW_PRECISION:
        return values
    values = keras.ops.cast(values, dtype)
    if bound is None:
        return values
    # The limits go in as tensors of ``dtype`` (each exactly representable): Keras's
    # torch clip promotes a 0-d half tensor with float limits to float32.
    inside = keras.ops.convert_to_tensor(below(bound, dtype), dtype=dtype)
    return keras.ops.clip(values, keras.ops.negative(inside), inside)


def uniform(shape: tuple[int, ...], limit: float, dtype: str, seed: Any) -> Any:
    """U(-limit, limit): mean 0, std limit / sqrt(3)."""
    _check_range(limit / math.sqrt(3.0), math.sqrt(3.0), dtype)
    return _finish(_draw("uniform", shape, limit, _draw_dtype(dtype), seed), dtype)


def normal(shape: tuple[int, ...], stddev: float, dtype: str, seed: Any) -> Any:
    """N(0, stddev^2), untruncated."""
    _check_range(stddev, _NORMAL_REACH, dtype)
    return _finish(_draw("normal", shape, stddev, _draw_dtype(dtype), seed), dtype)


def truncated_normal(shape: tuple[int, ...], stddev: float, dtype: str, seed: Any) -> Any:
    """A normal truncated at 2 of its own std, rescaled to have std ``stddev``.

    Inverse CDF: with v ~ U(-erf(sqrt 2), erf(sqrt 2)), sqrt(2) * erfinv(v) is
    a standard normal truncated to [-2, 2]. One uniform draw per value, no
    rejection loop, and a final clip guards the bound against rounding in
    erfinv, so no value ever lies beyond 2 * stddev / TRUNCATED_STD (in
    float16 and bfloat16 every value lies strictly inside it).
    """
    _check_range(stddev, 2.0 / TRUNCATED_STD, dtype)
    sigma = stddev / TRUNCATED_STD  # std of the underlying untruncated normal
    values = _draw("truncated_normal", shape, sigma, _draw_dtype(dtype), seed)
    return _finish(values, dtype, bound=2.0 * sigma)


def _inside(bound: float, dtype: str) -> float:
    """The value of the half-precision ``dtype`` nearest ``bound`` on 0's side of it."""
    if bound > 0.0:
        return below(bound, dtype)
    if bound < 0.0:
        return -below(-bound, dtype)
    return 0.0


def bounded_normal(
    shape: tuple[int, ...], lower: float, upper: float, stddev: float, dtype: str, seed: Any
) -> Any:
    """``stddev`` times a standard normal truncated to [lower, upper] (JAX's law).

    Inverse CDF, as ``jax.random.truncated_normal`` computes it: with
    v ~ U(erf(lower / sqrt 2), erf(upper / sqrt 2)), sqrt(2) * erfinv(v) is a
    standard normal truncated to [lower, upper]; a clip guards the bounds
    against rounding in erfinv, so every value lies in
    [lower * stddev, upper * stddev] (in float16 and bfloat16, after the
    cast, too). One uniform draw per value, no rejection loop.
    """
    # No |value| passes 8.5 std: erf rounds to +-1 in float64 before then (8.3).
    _check_range(stddev, min(max(abs(lower), abs(upper)), _NORMAL_REACH), dtype)
    draw_dtype = _draw_dtype(dtype)
    low, high = math.erf(lower / math.sqrt(2.0)), math.erf(upper / math.sqrt(2.0))
    u = _draw("uniform", shape, 1.0, draw_dtype, seed)  # U(-1, 1)
    v = keras.ops.add(keras.ops.multiply(u, (high - low) / 2.0), (high + low) / 2.0)
    v = keras.ops.clip(v, low, high)  # rounding must not step past +-1, where erfinv is NaN
    z = keras.ops.multiply(keras.ops.erfinv(v), math.sqrt(2.0))
    values = keras.ops.multiply(keras.ops.clip(z, lower, upper), stddev)
    if dtype not in LOW_PRECISION:
        return values
    values = keras.ops.cast(values, dtype)
    low_limit = keras.ops.convert_to_tensor(_inside(lower * stddev, dtype), dtype=dtype)
    high_limit = keras.ops.convert_to_tensor(_inside(upper * stddev, dtype), dtype=dtype)
    return keras.ops.clip(values, low_limit, high_limit)


def scaled(distribution: str, shape: tuple[int, ...], stddev: float, dtype: str, seed: Any) -> Any:
    """A draw of std ``stddev`` from a VarianceScaling ``distribution`` (Keras's names).

    "uniform" is U(-sqrt(3) stddev, +sqrt(3) stddev), "untruncated_normal"
    N(0, stddev^2), and "truncated_normal" the normal cut at 2 s whose std after
    the cut is ``stddev``.
    """
    if distribution == "uniform":
        return uniform(shape, math.sqrt(3.0) * stddev, dtype, seed)
    if distribution == "untruncated_normal":
        return normal(shape, stddev, dtype, seed)
    return truncated_normal(shape, stddev, dtype, seed)


# Complex draws (JAX's laws for complex64 and complex128). Each is one real
# draw of shape (2, *shape) in the parts' float dtype, from the stream above,
# made complex with keras.ops (cast, times 1j): keras.ops.view_as_complex
# always gives complex64, so it would drop complex128's precision.


def _complex(real: Any, imag: Any, dtype: str) -> Any:
    """real + i imag in the complex ``dtype``.

    Python's operators, not keras.ops.add / multiply: on TensorFlow those give
    complex64 for two complex128 tensors (checked on Keras 3.15.1).
    """
    unit = keras.ops.convert_to_tensor(1j, dtype=dtype)
    return keras.ops.cast(real, dtype) + keras.ops.cast(imag, dtype) * unit


def complex_scaled(
    distribution: str, shape: tuple[int, ...], stddev: float, dtype: str, seed: Any
) -> Any:
    """A complex draw with E|z|^2 = stddev^2, circularly symmetric (JAX's laws).

    Every law here is invariant under z -> e^(i phi) z, so the real and
    imaginary parts each have variance stddev^2 / 2 and are uncorrelated.

        untruncated_normal:  real and imaginary parts independent N(0, stddev^2 / 2).
        truncated_normal:    a complex normal whose modulus is cut at 2 of its own
                             scale, |z|^2 ~ Exp cut at 4, phase uniform, rescaled
                             so that E|z|^2 = stddev^2 after the cut:
                             |z| <= 2 stddev / sqrt(0.92536628...).
        uniform:             uniform on the disk |z| <= sqrt(2) stddev.

    JAX's truncated law differs only in scale: it divides by 0.95311164 =
    sqrt(1 - 5 e^-4), which leaves E|z|^2 = 1.0186 stddev^2 after the cut
    (its std 0.93% high); this one divides by the std after the cut.
    """
    part = _PARTS[dtype]
    if distribution == "untruncated_normal":
        parts = normal((2, *shape), stddev / math.sqrt(2.0), part, seed)
        return _complex(parts[0], parts[1], dtype)
    if distribution == "uniform":
        reach, square = math.sqrt(2.0), 2.0 * stddev**2  # |z|^2 = square * U(0, 1)
    else:
        reach = 2.0 / math.sqrt(_COMPLEX_TRUNCATED_VAR)
        square = stddev**2 / _COMPLEX_TRUNCATED_VAR
    # Each part's std is stddev / sqrt 2; no part reaches beyond |z|'s bound.
    _check_range(stddev / math.sqrt(2.0), reach * math.sqrt(2.0), part)
    u = _draw("uniform", (2, *shape), 1.0, part, seed)  # U(-1, 1)
    unit = keras.ops.multiply(keras.ops.add(u[0], 1.0), 0.5)  # U(0, 1)
    if distribution == "uniform":
        modulus2 = keras.ops.multiply(unit, square)
    else:
        # Inverse CDF of Exp(1) cut at 4: -log(1 - (1 - e^-4) v), v ~ U(0, 1); the
        # minimum guards the cut against rounding in log1p.
        cut = keras.ops.negative(keras.ops.log1p(keras.ops.multiply(unit, math.expm1(-4.0))))
        modulus2 = keras.ops.multiply(keras.ops.minimum(cut, 4.0), square)
    modulus = keras.ops.sqrt(modulus2)
    phase = keras.ops.multiply(u[1], math.pi)  # U(-pi, pi)
    real = keras.ops.multiply(modulus, keras.ops.cos(phase))
    imag = keras.ops.multiply(modulus, keras.ops.sin(phase))
    return _complex(real, imag, dtype)


def _complex_orthogonal(
    batch: int, rows: int, cols: int, gain: float, dtype: str, seed: Any
) -> Any:
    """``orthogonal``'s complex case: Haar-random unitary columns (or rows) times ``gain``.

    Q from the reduced QR of a complex standard normal, column j times the
    phase diag(R)_j / |diag(R)_j| (1 where it is 0), as JAX's orthogonal: Q^H Q
    = I where rows >= cols, Q Q^H = I (the plain transpose, as JAX) otherwise.
    """
    tall, narrow = max(rows, cols), min(rows, cols)
    part = _PARTS[dtype]
    _check_range(gain / math.sqrt(tall), math.sqrt(tall), part)
    parts = normal((2, batch, tall, narrow), math.sqrt(0.5), part, seed)
    q, r = keras.ops.qr(_complex(parts[0], parts[1], dtype), mode="reduced")
    del parts
    diagonal = keras.ops.diagonal(r, axis1=-2, axis2=-1)  # (batch, narrow)
    del r
    # Phases in the parts' float dtype, made complex last: keras.ops's complex
    # arithmetic gives complex64 for complex128 on TensorFlow (see ``_complex``).
    size = keras.ops.abs(diagonal)
    zero = keras.ops.equal(size, 0.0)
    size = keras.ops.where(zero, 1.0, size)
    cosine = keras.ops.where(zero, 1.0, keras.ops.real(diagonal) / size) * gain
    sine = keras.ops.where(zero, 0.0, keras.ops.imag(diagonal) / size) * gain
    q = q * keras.ops.expand_dims(_complex(cosine, sine, dtype), axis=-2)
    if rows < cols:
        q = keras.ops.transpose(q, (0, 2, 1))
    return q


def orthogonal(batch: int, rows: int, cols: int, gain: float, dtype: str, seed: Any) -> Any:
    """``batch`` independent Haar-random (rows, cols) matrices times ``gain``.

    Orthonormal columns (Q^T Q = I) where rows >= cols, orthonormal rows
    (Q Q^T = I) where rows < cols. Q comes from the reduced QR of a standard
    normal (max, min) matrix, one batched QR for all ``batch``; column j is
    multiplied by the sign of R[j, j], which makes Q exactly Haar
    distributed (without it, Q depends on the QR routine's sign convention).
    float16 and bfloat16 are computed in float32 and cast, as every draw here.
    complex64 and complex128 give unitary columns (or rows), phases fixed by
    diag(R), as JAX's orthogonal. Returns a tensor of shape (batch, rows, cols).
    """
    if dtype in _PARTS:
        return _complex_orthogonal(batch, rows, cols, gain, dtype, seed)
    tall, narrow = max(rows, cols), min(rows, cols)
    # Entries of a unit vector of length `tall` have std 1 / sqrt(tall), reach 1.
    _check_range(gain / math.sqrt(tall), math.sqrt(tall), dtype)
    draw_dtype = _draw_dtype(dtype)
    gaussian = keras.random.normal((batch, tall, narrow), dtype=draw_dtype, seed=seed)
    q, r = keras.ops.qr(gaussian, mode="reduced")
    del gaussian  # the QR held its input, Q and R (3 matrices): keep only Q from here
    diagonal = keras.ops.diagonal(r, axis1=-2, axis2=-1)  # (batch, narrow)
    del r
    # gain joins after the cast, so float64 keeps it to full precision.
    signs = keras.ops.cast(keras.ops.where(diagonal < 0, -1.0, 1.0), draw_dtype) * gain
    q = q * keras.ops.expand_dims(signs, axis=-2)
    if rows < cols:
        q = keras.ops.transpose(q, (0, 2, 1))
    return _finish(q, dtype)


def _draw(kind: Kind, shape: tuple[int, ...], scale: float, dtype: str, seed: Any) -> Any:
    """Dispatches to the backend's module, or the portable path where it declines.

    ``scale`` is the uniform's limit, the normal's std, or the std ``sigma``
    of the normal that the truncated normal cuts at +-2 sigma.
    """
    _check_size(shape)
    module = backend_module()
    if is_fast_seed(seed):
        values = module.draw(kind, shape, scale, dtype, seed)
        if values is not None:
            return values
    return _portable.draw(kind, shape, scale, dtype, seed)


# Column subsets: Sparse's mask. A (rows, cols) bool mask with exactly `count`
# True entries in each column, which ones uniformly at random and independently
# per column, without sorting anything. The smaller of the two sets is picked
# (at most rows / 2 positions a column) and the mask inverted if need be. Both
# methods give every subset of that size the same chance: Floyd's algorithm
# (Bentley and Floyd, "A sample of brilliance", CACM 30(9), 1987) by
# construction, and picking uniformly random rows until the column holds that
# many distinct ones because the rows are exchangeable. Each row is drawn as a
# 32-bit integer reduced modulo the range, as the backends' own randint does
# (a bias below rows / 2^32).


def column_subsets(rows: int, cols: int, count: int, seed: Any) -> Any:
    """A bool (rows, cols) mask: ``count`` True entries per column, uniformly placed.

    Work grows with min(count, rows - count) * cols, not with a sort of every
    column. JAX and TensorFlow run Floyd's algorithm (for j = rows - m, ...,
    rows - 1: t uniform in [0, j]; take t, or j if t is taken) on all columns
    at once in one loop (TensorFlow on a bit mask, 32 entries a word); torch
    draws rows in rounds, each round as many per column as it still lacks
    (duplicates are dropped; a column never gets more than it needs). The mask
    is a pure function of the seed on each backend.
    """
    _check_size((rows, cols))
    picks = min(count, rows - count)
    invert = picks != count
    mask = None
    if picks == 0 or cols == 0:
        mask = keras.ops.zeros((rows, cols), dtype="bool")
    elif is_fast_seed(seed):
        mask = backend_module().subsets(rows, cols, picks, seed)
    if mask is None:
        mask = _portable.subsets(rows, cols, picks, seed)
    return keras.ops.logical_not(mask) if invert else mask


def zero_where(mask: Any, values: Any) -> Any:
    """``values`` with 0 where ``mask`` is True, in place where the backend allows.

    ``values`` must be a tensor the caller owns and will not use again (a
    fresh draw): torch fills it in place and JAX donates its buffer, so no
    second output-sized tensor is allocated.
    """
    return backend_module().zero_where(mask, values)


def sparse_normal(
    rows: int, cols: int, zeros: int, stddev: float, dtype: str, seeds: tuple[Any, Any]
) -> Any:
    """(rows, cols) N(0, stddev^2) values with exactly ``zeros`` zeros in each column.

    Which entries are 0 is ``column_subsets(rows, cols, zeros, seeds[0])``'s
    choice (the mask seed), the values come from ``seeds[1]``. TensorFlow
    builds the mask as bits and draws the values by the normal's inverse CDF
    of its uniform draw, zeroed in the same pass (fused by XLA for large
    kernels); elsewhere this is ``zero_where(column_subsets(...), normal(...))``.
    """
    _check_range(stddev, _NORMAL_REACH, dtype)
    _check_size((rows, cols))
    mask_seed, value_seed = seeds
    if is_fast_seed(mask_seed) and is_fast_seed(value_seed):
        values = backend_module().sparse_normal(
            rows, cols, zeros, stddev, _draw_dtype(dtype), mask_seed, value_seed
        )
        if values is not None:
            return _finish(values, dtype)
    mask = column_subsets(rows, cols, zeros, mask_seed)
    return zero_where(mask, normal((rows, cols), stddev, dtype, value_seed))
