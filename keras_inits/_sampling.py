"""Exact draws from the distributions every initializer here uses.

Each sampler takes a standard deviation (or a bound), a float dtype and a
seed that ``keras.random`` accepts (an int or a ``SeedGenerator``, which
advances once per draw, as Keras's own draws advance it). No NumPy round
trip: Keras can trace a call under ``jax.jit`` with an output sharding.

The portable path uses only ``keras.random`` and ``keras.ops``. TensorFlow,
JAX and torch get a faster, leaner path of the same distribution, and this
is the one module that looks at ``keras.backend.backend()`` (see
BENCHMARKS.md for the figures):

- TensorFlow: the raw stateless ops in one ``tf.function`` per kind and
  dtype (traced once, for any shape; no XLA, so nothing compiles per
  shape): no ``+ mean`` pass as in Keras's normal, and the graph reuses
  each intermediate's buffer, so the output is the only tensor of its size.
  From ``_TF_FUSED_FROM`` values on, the truncated normal's inverse CDF runs
  through one XLA program of a fixed chunk shape (compiled once per process
  and dtype), over the same uniform draw: the same stream, with XLA's erfinv
  (in float32 only its central polynomial, the only one the truncation uses).
  Sparse's mask loop is an XLA program compiled per shape from that size on.
- JAX: one jitted program per draw, scale and clip fused into it. Value i
  (row-major) is the threefry hash of counter i, the bits ``jax.random.bits``
  draws: outside a trace the output is filled ``_JAX_CHUNK`` values at a
  time (the threefry temporaries stay small); inside an outer trace it is
  drawn whole in the kernel's N-D shape, so an output sharding passes back
  through the draw and each device computes only its shard. Both give the
  same values.
- torch: in-place draws (``uniform_``, ``erfinv_``, ``mul_``, ``clamp_``)
  into the one output tensor; nothing else output-sized is allocated.

One stream per backend: an int seed gives the same values eagerly and
traced (``jax.jit``, sharded or not; ``tf.function``), not across backends.

float16 and bfloat16 are drawn in float32 and cast: drawing in 16 bits would
bias the tails and the inverse CDF. This module must never return a value
outside the distribution's support: a truncated normal has no value beyond
its bound, on every backend, and a draw the dtype cannot hold (inf, or all
zeros) is refused with an error naming ``dtype``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Literal

import keras

__all__ = [
    "TRUNCATED_STD",
    "check_fits",
    "column_subsets",
    "fused",
    "normal",
    "orthogonal",
    "scaled",
    "sparse_normal",
    "sylvester_block",
    "truncated_normal",
    "uniform",
    "zero_where",
]

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
# JAX draws outside a trace fill the output 2**16 values at a time: the
# threefry temporaries of one chunk (~1 MiB) stay in cache, where drawing all
# at once holds ~3 output-sized temporaries.
_JAX_CHUNK = 1 << 16

Kind = Literal["uniform", "normal", "truncated_normal"]


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


def check_fits(largest: float, dtype: str) -> None:
    """Refuses a fixed kernel whose largest magnitude ``dtype`` cannot hold (it would be inf)."""
    if largest > _RANGE[dtype][0]:
        raise ValueError(
            f"`dtype` cannot hold this kernel: its values reach {largest:.6g}, beyond "
            f"its largest value {_RANGE[dtype][0]:.6g}. Received: dtype={dtype!r}"
        )


def fused(build: Callable[..., Any], shape: tuple[int, ...], *static: Any) -> Any:
    """``build(shape, *static)``, a kernel built from iotas (no draw), as one XLA program.

    ``static`` must be hashable (dtype, Python numbers, strings). The ops run
    as one compiled program per (build, shape, static), so XLA fuses the iotas
    and comparisons into the output: one output-sized buffer, where op by op
    each intermediate was one. On JAX always (inside an outer trace it
    inlines, so a sharded call still builds only its shard); on TensorFlow
    from _TF_FUSED_FROM values on, where the compile (about 0.1 s a shape)
    buys more than it costs. Elsewhere ``build`` runs op by op; XLA selects
    the same constants, so the values are the same either way.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_fused(build, 1 + len(static))(shape, *static)
    if backend == "tensorflow" and math.prod(shape) >= _TF_FUSED_FROM:
        return _tensorflow_fused(build, shape, *static)()
    return build(shape, *static)


@functools.cache
def _jax_fused(build: Callable[..., Any], count: int) -> Callable[..., Any]:
    import jax

    return jax.jit(build, static_argnums=tuple(range(count)))


@functools.cache
def _tensorflow_fused(build: Callable[..., Any], *static: Any) -> Callable[..., Any]:
    import tensorflow as tf

    # A partial, not a lambda: TensorFlow counts traces per code object and
    # would warn of "retracing" once five shapes had each been traced once.
    return tf.function(functools.partial(build, *static), autograph=False, jit_compile=True)


def sylvester_block(rows: int, cols: int, value: float, dtype: str) -> Any:
    """``value`` * H[:rows, :cols] for Sylvester's Hadamard matrix H, built in place, or None.

    torch only (elsewhere None: build it from iotas under ``fused``). H's
    top-left 2s x 2s block is [[B, B], [B, -B]] for its s x s block B, so the
    output is filled by doubling: the one output tensor, copies within it.
    """
    if keras.backend.backend() != "torch":
        return None
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


def _draw_dtype(dtype: str) -> str:
    return "float32" if dtype in _LOW_PRECISION else dtype


def _finish(values: Any, dtype: str) -> Any:
    return values if _draw_dtype(dtype) == dtype else keras.ops.cast(values, dtype)


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
    erfinv, so no value ever lies beyond 2 * stddev / TRUNCATED_STD.
    """
    _check_range(stddev, 2.0 / TRUNCATED_STD, dtype)
    sigma = stddev / TRUNCATED_STD  # std of the underlying untruncated normal
    return _finish(_draw("truncated_normal", shape, sigma, _draw_dtype(dtype), seed), dtype)


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
    """Dispatches to the backend's fast path, or the portable one.

    ``scale`` is the uniform's limit, the normal's std, or the std ``sigma``
    of the normal that the truncated normal cuts at +-2 sigma.
    """
    fast = _FAST.get(keras.backend.backend())
    if fast is not None and _is_fast_seed(seed):
        values = fast(kind, shape, scale, dtype, seed)
        if values is not None:
            return values
    return _PORTABLE[kind](shape, scale, dtype, seed)


def _is_fast_seed(seed: Any) -> bool:
    if isinstance(seed, keras.random.SeedGenerator):
        return True
    return isinstance(seed, int) and not isinstance(seed, bool)


def _seed_pair(seed: Any) -> Any:
    """The two seed words Keras's own draws use: (seed, 0), or the generator's next."""
    if isinstance(seed, keras.random.SeedGenerator):
        return seed.next()
    return (seed & 0xFFFFFFFF, 0)


# The portable path: keras.random and keras.ops only.


def _portable_uniform(shape: tuple[int, ...], limit: float, dtype: str, seed: Any) -> Any:
    return keras.random.uniform(shape, minval=-limit, maxval=limit, dtype=dtype, seed=seed)


def _portable_normal(shape: tuple[int, ...], stddev: float, dtype: str, seed: Any) -> Any:
    return keras.random.normal(shape, mean=0.0, stddev=stddev, dtype=dtype, seed=seed)


def _portable_truncated_normal(shape: tuple[int, ...], sigma: float, dtype: str, seed: Any) -> Any:
    bound = 2.0 * sigma
    v = keras.random.uniform(shape, minval=-_ERF_SQRT2, maxval=_ERF_SQRT2, dtype=dtype, seed=seed)
    values = keras.ops.erfinv(v)
    del v  # at most two output-sized tensors alive at once
    values = keras.ops.multiply(values, math.sqrt(2.0) * sigma)
    return keras.ops.clip(values, -bound, bound)


_PORTABLE: dict[str, Callable[..., Any]] = {
    "uniform": _portable_uniform,
    "normal": _portable_normal,
    "truncated_normal": _portable_truncated_normal,
}


# TensorFlow: raw stateless ops, the same Philox stream keras.random draws, in
# one graph per (kind, dtype): any shape, no retracing, and the graph runtime
# hands each intermediate's buffer on to the next op, where eager ops could
# not (the Python reference keeps it alive).


# TensorFlow's Erfinv kernel is scalar code: on a large draw it alone costs
# about twice the uniform draw. XLA fuses the inverse CDF, scale and clip
# into one vectorised pass (about 3x faster), but compiles for every shape;
# so from _TF_FUSED_FROM values on, the transform runs through one XLA
# program of the fixed shape [_TF_CHUNK], compiled once per process and
# dtype, over the uniform draw a chunk at a time (in place: the output is
# the only buffer of its size). The uniform draw stays TensorFlow's own
# kernel (XLA's Philox is a different stream, and slower on CPU).
_TF_CHUNK = 1 << 20
_TF_FUSED_FROM = 1 << 22
# The step of TensorFlow's uniform [0, 1) draw: 23 or 52 random mantissa bits.
_UNIT_STEP = {"float32": 2.0**-23, "float64": 2.0**-52}


# M. Giles, "Approximating the erfinv function", GPU Computing Gems Jade
# Edition (2011): single precision, the branch w = -log(1 - x^2) < 5,
# p(w - 2.5) x. XLA's float32 erfinv is this polynomial (and a second one for
# w >= 5, |x| > 0.9966, evaluated and selected for every value).
_GILES_CENTRAL = (
    2.81022636e-08,
    3.43273939e-07,
    -3.5233877e-06,
    -4.39150654e-06,
    0.00021858087,
    -0.00125372503,
    -0.00417768164,
    0.246640727,
    1.50140941,
)


def _central_erfinv(tf: Any, x: Any) -> Any:
    """float32 erfinv(x) for |x| <= erf(sqrt 2): Giles's central branch only.

    The truncated normal's erfinv never leaves it (w <= 2.42 < 5), so the
    tail polynomial, its square root and the select XLA's erfinv spends on
    every value are dropped. Over all 2^23 uniform values TensorFlow's draw
    can give, the clipped result is within 5.9 float32 ulps of SciPy's
    float64 erfinv (XLA's erfinv: 6.6) and within 3 ulps of XLA's (tested).
    """
    w = -tf.math.log((1.0 - x) * (1.0 + x)) - 2.5
    p = tf.constant(_GILES_CENTRAL[0], x.dtype)
    for c in _GILES_CENTRAL[1:]:
        p = c + p * w
    return p * x


def _tensorflow_inverse_cdf(tf: Any, unit: Any, scale: Any, central: bool = False) -> Any:
    """U[0, 1) -> sqrt(2) sigma erfinv(v), v ~ U(-erf(sqrt 2), erf(sqrt 2)), clipped at 2 sigma.

    ``central``: erfinv by its central polynomial alone (float32, under XLA),
    else TensorFlow's ``Erfinv`` (XLA's erfinv when compiled).
    """
    v = unit * (2.0 * _ERF_SQRT2) - _ERF_SQRT2
    values = _central_erfinv(tf, v) if central else tf.math.erfinv(v)
    values = values * (math.sqrt(2.0) * scale)
    bound = 2.0 * scale
    # One kernel; tf.clip_by_value is two (minimum, then maximum).
    return tf.raw_ops.ClipByValue(t=values, clip_value_min=-bound, clip_value_max=bound)


@functools.cache
def _tensorflow_fused_chunk(kind: str, dtype: str) -> Callable[..., Any]:
    """The XLA transform of one chunk of [_TF_CHUNK] uniform values, compiled once.

    "truncated_normal": the inverse CDF, scale and clip. "sparse_normal": the
    normal inverse CDF, 0 where the chunk's bit in ``words`` (32 values a
    uint32 word, bit b of word w the value 32 w + b) is set.
    """
    import tensorflow as tf

    signature = [tf.TensorSpec([_TF_CHUNK], dtype), tf.TensorSpec([], dtype)]
    if kind == "sparse_normal":
        signature.append(tf.TensorSpec([_TF_CHUNK // 32], tf.uint32))

    @tf.function(input_signature=signature, autograph=False, jit_compile=True)
    def chunk(unit: Any, scale: Any, *words: Any) -> Any:
        if kind == "truncated_normal":
            return _tensorflow_inverse_cdf(tf, unit, scale, central=dtype == "float32")
        zero = _tensorflow_unpack(tf, words[0], _TF_CHUNK)
        return tf.where(zero, tf.zeros([], unit.dtype), _tensorflow_normal_cdf(tf, unit, scale))

    return chunk


def _tensorflow_in_chunks(kind: str, unit: Any, size: Any, scale: Any, *words: Any) -> Any:
    """The fused chunk applied in place to (chunks, _TF_CHUNK) uniform values: flat, [:size].

    ``unit`` holds whole chunks, drawn as one shape: Philox fills it in counter
    order, so its first ``size`` values are those of a draw of ``size``.
    ``words``, for "sparse_normal", is the flat mask of _TF_CHUNK / 32 words a chunk.
    """
    import tensorflow as tf

    fused = _tensorflow_fused_chunk(kind, unit.dtype.name)
    by_chunk = [tf.reshape(w, [-1, _TF_CHUNK // 32]) for w in words]

    def body(i: Any, unit: Any) -> Any:
        row = fused(unit[i], scale, *(w[i] for w in by_chunk))[None]
        return i + 1, tf.raw_ops.InplaceUpdate(x=unit, i=tf.reshape(i, [1]), v=row)

    chunks = tf.shape(unit)[0]
    _, unit = tf.while_loop(
        lambda i, _: i < chunks, body, (tf.constant(0), unit), parallel_iterations=1
    )
    return tf.reshape(unit, [-1])[:size]


def _tensorflow_normal_cdf(tf: Any, unit: Any, scale: Any) -> Any:
    """U[0, 1) on the grid k eps -> the normal N(0, scale^2) by its inverse CDF.

    v = 2u - 1 + eps is the grid's midpoint image, symmetric in (-1, 1) and
    never 0 or +-1, so sqrt(2) erfinv(v) is finite, and never exactly 0.
    """
    eps = _UNIT_STEP[unit.dtype.name]
    return tf.math.erfinv(unit * 2.0 - (1.0 - eps)) * (math.sqrt(2.0) * scale)


def _tensorflow_unpack(tf: Any, words: Any, size: Any) -> Any:
    """Bit b of uint32 word w as entry 32 w + b of a flat bool tensor, [:size]."""
    bits = tf.bitwise.right_shift(words[:, None], tf.cast(tf.range(32), tf.uint32))
    return tf.not_equal(tf.reshape(tf.bitwise.bitwise_and(bits, 1), [-1])[:size], 0)


@functools.cache
def _tensorflow_program(kind: str, dtype: str) -> Callable[..., Any]:
    import tensorflow as tf

    signature = [
        tf.TensorSpec([2], tf.int32),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([], dtype),
    ]

    @tf.function(input_signature=signature, autograph=False)
    def program(pair: Any, shape: Any, scale: Any) -> Any:
        if kind == "normal":
            key = _tensorflow_key(pair, dtype)
            return tf.raw_ops.StatelessRandomNormalV2(shape=shape, **key) * scale
        if kind == "fused_truncated_normal":
            size = tf.reduce_prod(shape)
            unit = _tensorflow_unit_chunks(pair, size, dtype)
            values = _tensorflow_in_chunks("truncated_normal", unit, size, scale)
            return tf.reshape(values, shape)
        values = tf.raw_ops.StatelessRandomUniformV2(shape=shape, **_tensorflow_key(pair, dtype))
        if kind == "uniform":
            return values * (2.0 * scale) - scale
        return _tensorflow_inverse_cdf(tf, values, scale)

    return program


def _tensorflow_key(pair: Any, dtype: str) -> dict[str, Any]:
    """The arguments of the V2 stateless draws for an int32 seed pair (Keras's stream)."""
    import tensorflow as tf

    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=pair)
    return {
        "key": key,
        "counter": counter,
        "alg": tf.raw_ops.StatelessRandomGetAlg(),
        "dtype": dtype,
    }


def _tensorflow_unit_chunks(pair: Any, size: Any, dtype: str) -> Any:
    """U[0, 1) as (ceil(size / _TF_CHUNK), _TF_CHUNK); the first ``size`` are a draw of ``size``."""
    import tensorflow as tf

    chunks = (size + _TF_CHUNK - 1) // _TF_CHUNK
    shape = tf.stack([chunks, _TF_CHUNK])
    return tf.raw_ops.StatelessRandomUniformV2(shape=shape, **_tensorflow_key(pair, dtype))


def _tensorflow_seed_pair(seed: Any) -> Any:
    """The seed's two words as the int32 pair TensorFlow's stateless ops take."""
    import tensorflow as tf

    pair = _seed_pair(seed)
    pair = tf.cast(pair, tf.int64) if tf.is_tensor(pair) else tf.constant(pair, tf.int64)
    # What Keras does to fit a seed into the int32 the stateless ops take.
    return tf.cast(tf.math.floormod(pair, tf.int32.max - 1), tf.int32)


def _tensorflow(kind: Kind, shape: tuple[int, ...], scale: float, dtype: str, seed: Any) -> Any:
    import tensorflow as tf

    pair = _tensorflow_seed_pair(seed)
    program: str = kind
    if kind == "truncated_normal" and math.prod(shape) >= _TF_FUSED_FROM:
        program = "fused_truncated_normal"
    return _tensorflow_program(program, dtype)(
        pair, tf.constant(shape, tf.int32, shape=[len(shape)]), tf.constant(scale, dtype)
    )


# JAX: one stream, defined by the counter of each value. Value number i of
# the row-major order gets the threefry-2x32 hash of the 64-bit counter i under
# the seed's key (the two output words xor-ed, or joined for 64-bit dtypes),
# exactly the bits ``jax.random.bits`` gives with threefry_partitionable (the
# default since JAX 0.5): a pure function of (key, i). So a chunk, a shard and
# the whole kernel agree value for value, and the same float transform turns
# the bits into the distribution on every path.


def _jax_bits_to_values(kind: str, bits: Any, scale: Any, dtype: str) -> Any:
    """jax.random's map from raw bits to uniform, normal and truncated normal values."""
    import jax
    import jax.numpy as jnp
    import numpy as np

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
    erf = np.array(_ERF_SQRT2, dtype)
    values = jax.lax.erf_inv(between(-erf, erf)) * (math.sqrt(2.0) * scale)
    return jnp.clip(values, -2.0 * scale, 2.0 * scale)


def _jax_bits_at(key: Any, high: Any, low: Any, dtype: str) -> Any:
    """The stream's raw bits at the 64-bit counters (high, low), two uint32 arrays."""
    import jax
    import jax.numpy as jnp
    from jax.extend.random import threefry2x32_p

    first, second = threefry2x32_p.bind(key[0], key[1], high, low)
    if jnp.finfo(dtype).bits == 64:
        wide = jnp.uint64
        joined = jax.lax.shift_left(first.astype(wide), jnp.asarray(32, wide))
        return joined | second.astype(wide)
    return first ^ second


@functools.cache
def _jax_program() -> Callable[..., Any]:
    import jax
    import jax.numpy as jnp

    def whole(kind: str, key: Any, scale: Any, shape: tuple[int, ...], dtype: str) -> Any:
        # The counters as jax.random lays them out for an N-D shape (an iota the
        # SPMD partitioner can split), so a sharded caller draws only its shard.
        with jax.threefry_partitionable(True):
            width = jnp.uint64 if jnp.finfo(dtype).bits == 64 else jnp.uint32
            bits = jax.random.bits(key, shape, width)
        return _jax_bits_to_values(kind, bits, scale, dtype)

    @functools.partial(jax.jit, static_argnames=("kind", "shape", "dtype", "chunk"))
    def program(
        key: Any, scale: Any, *, kind: str, shape: tuple[int, ...], dtype: str, chunk: bool
    ) -> Any:
        size = math.prod(shape)
        scale = jnp.asarray(scale, dtype)
        if not chunk or size <= _JAX_CHUNK:
            return whole(kind, key, scale, shape, dtype)
        # Outside a trace: the same values, _JAX_CHUNK at a time, so the threefry
        # temporaries of one chunk stay in cache (drawn whole, they are 3x the output).
        offsets = jax.lax.iota(jnp.uint32, _JAX_CHUNK)

        def piece(high: Any, start_low: Any, carry: bool) -> Any:
            low = start_low + offsets
            if carry:  # the low word may wrap: carry into the high word
                high = high + (low < start_low).astype(jnp.uint32)
            bits = _jax_bits_at(key, jnp.broadcast_to(high, low.shape), low, dtype)
            return _jax_bits_to_values(kind, bits, scale, dtype)

        def fill(i: Any, out: Any) -> Any:
            # Chunk i starts at counter i * 2^16: high word i >> 16, low word
            # i << 16, whose low 16 bits are 0, so adding offsets never wraps.
            index = i.astype(jnp.uint32)
            values = piece(index >> 16, index << 16, carry=False)
            return jax.lax.dynamic_update_slice(out, values, (i * _JAX_CHUNK,))

        full = size // _JAX_CHUNK
        out = jax.lax.fori_loop(0, full, fill, jnp.empty((size,), dtype))
        if size % _JAX_CHUNK:  # the tail: the last _JAX_CHUNK counters, overlapping
            start = size - _JAX_CHUNK
            tail = piece(jnp.uint32(start >> 32), jnp.uint32(start & 0xFFFFFFFF), carry=True)
            out = jax.lax.dynamic_update_slice(out, tail, (start,))
        return out.reshape(shape)

    return program


def _jax(kind: Kind, shape: tuple[int, ...], scale: float, dtype: str, seed: Any) -> Any:
    import jax
    import jax.numpy as jnp
    import numpy as np

    key: Any
    if isinstance(seed, keras.random.SeedGenerator):
        key = jnp.asarray(seed.next(), dtype=jnp.uint32)
        # Inside a trace the generator's state, and so the key, is a tracer.
        tracing = isinstance(key, jax.core.Tracer)
    else:
        # A NumPy key: the jitted program takes it as it is, where building a
        # jax.Array first (jnp.asarray) was most of a small draw's Python cost.
        key = np.asarray(_seed_pair(seed), dtype=np.uint32)
        tracing = not _jax_at_top_level()
    return _jax_program()(key, scale, kind=kind, shape=shape, dtype=dtype, chunk=not tracing)


def _jax_at_top_level() -> bool:
    """Whether no JAX transformation (jit, vmap, grad, ...) is being traced now.

    Only picks how the draw is laid out (chunks, or whole in the N-D shape for a
    sharding to pass through); both give the same values.
    """
    import jax

    check = getattr(jax._src.core, "trace_state_clean", None)
    if check is not None:
        return bool(check())
    return not isinstance(jax.numpy.ones(()), jax.core.Tracer)  # a JAX without it


# torch: in place, into one output tensor.


def _torch(kind: Kind, shape: tuple[int, ...], scale: float, dtype: str, seed: Any) -> Any:
    import torch

    out = keras.ops.empty(shape, dtype=dtype)  # on Keras's device
    if out.device.type == "meta":  # symbolic build: the portable path handles it
        return None
    s0, s1 = (int(word) for word in _seed_pair(seed))
    generator = torch.Generator(device=out.device)
    generator.manual_seed((s0 + s1) & 0xFFFFFFFF)  # as Keras seeds its torch draws
    if kind == "uniform":
        return out.uniform_(-scale, scale, generator=generator)
    if kind == "normal":
        return out.normal_(0.0, scale, generator=generator)
    # The inverse CDF, in place: no tensor but the output is ever allocated.
    out.uniform_(-_ERF_SQRT2, _ERF_SQRT2, generator=generator)
    out.erfinv_().mul_(math.sqrt(2.0) * scale)
    return out.clamp_(-2.0 * scale, 2.0 * scale)


_FAST: dict[str, Callable[..., Any]] = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}


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
    picks = min(count, rows - count)
    invert = picks != count
    fast = _SUBSETS.get(keras.backend.backend())
    mask = None
    if picks == 0 or cols == 0:
        mask = keras.ops.zeros((rows, cols), dtype="bool")
    elif fast is not None and _is_fast_seed(seed):
        mask = fast(rows, cols, picks, seed)
    if mask is None:
        mask = _portable_subsets(rows, cols, picks, seed)
    return keras.ops.logical_not(mask) if invert else mask


def zero_where(mask: Any, values: Any) -> Any:
    """``values`` with 0 where ``mask`` is True, in place where the backend allows.

    ``values`` must be a tensor the caller owns and will not use again (a
    fresh draw): torch fills it in place and JAX donates its buffer, so no
    second output-sized tensor is allocated.
    """
    backend = keras.backend.backend()
    if backend == "torch":
        return values.masked_fill_(mask, 0)
    if backend == "tensorflow":  # a scalar 0, broadcast inside the kernel
        import tensorflow as tf

        return tf.where(mask, tf.zeros([], values.dtype), values)
    if backend == "jax":
        import jax

        if not isinstance(values, jax.core.Tracer):
            return _jax_zero_where()(values, mask)
    return keras.ops.where(mask, keras.ops.zeros((), dtype=values.dtype), values)


def sparse_normal(
    rows: int, cols: int, zeros: int, stddev: float, dtype: str, seeds: tuple[Any, Any]
) -> Any:
    """(rows, cols) N(0, stddev^2) values with exactly ``zeros`` zeros in each column.

    Which entries are 0 is ``column_subsets(rows, cols, zeros, seeds[0])``'s
    choice (the mask seed), the values come from ``seeds[1]``. TensorFlow
    builds the mask as bits and draws the values by the normal's inverse CDF
    of its uniform draw, zeroed in the same pass (one XLA program over fixed
    chunks, in place, from _TF_FUSED_FROM values on); elsewhere this is
    ``zero_where(column_subsets(...), normal(...))``.
    """
    _check_range(stddev, _NORMAL_REACH, dtype)
    mask_seed, value_seed = seeds
    fast = _is_fast_seed(mask_seed) and _is_fast_seed(value_seed)
    if keras.backend.backend() == "tensorflow" and fast:
        draw_dtype = _draw_dtype(dtype)
        values = _tensorflow_sparse(rows, cols, zeros, stddev, draw_dtype, mask_seed, value_seed)
        return _finish(values, dtype)
    mask = column_subsets(rows, cols, zeros, mask_seed)
    return zero_where(mask, normal((rows, cols), stddev, dtype, value_seed))


def _portable_subsets(rows: int, cols: int, picks: int, seed: Any) -> Any:
    # The rank of each entry in its column under uniform noise (a full sort).
    noise = keras.random.uniform((rows, cols), dtype="float32", seed=seed)
    rank = keras.ops.argsort(keras.ops.argsort(noise, axis=0), axis=0)
    return keras.ops.less(rank, picks)


def _id_dtype(picks: int) -> str:
    """The narrowest int for a table of the slot ids of one round, 0 meaning free."""
    return "int16" if picks < 2**14 else "int32"


# TensorFlow runs Floyd's algorithm too, with the mask as bits: bit i of the
# row-major index i, 32 to a uint32 word, so the mask of a 4096 x 4096 kernel
# is 2 MiB and its random reads and writes stay in cache. From _TF_FUSED_FROM
# values on, the loop runs as an XLA program compiled once per shape (about
# 0.2 x one uniform draw of the kernel, where the graph runtime copies the
# words on every step); below, the same loop runs in the graph, for any
# shape. Both give the same words.


def _tensorflow_floyd(tf: Any, bits: Any, rows: Any, words: Any) -> Any:
    """Floyd's algorithm on every column at once, from (picks, cols) uint32 ``bits``."""
    picks, cols = tf.shape(bits)[0], tf.shape(bits)[1]
    column = tf.range(cols, dtype=tf.int64)
    rows = tf.cast(rows, tf.int64)
    one = tf.ones([cols], tf.uint32)

    def bit_of(flat: Any) -> Any:
        return tf.cast(flat % 32, tf.uint32)

    def step(s: Any, mask: Any) -> Any:  # t uniform in [0, j]; t, or j if taken
        j = rows - tf.cast(picks - s, tf.int64)
        t = tf.cast(bits[s] % tf.cast(j + 1, tf.uint32), tf.int64)
        flat = t * tf.cast(cols, tf.int64) + column
        taken = tf.bitwise.bitwise_and(
            tf.bitwise.right_shift(tf.gather(mask, flat // 32), bit_of(flat)), 1
        )
        flat = tf.where(taken != 0, j, t) * tf.cast(cols, tf.int64) + column
        # Floyd never picks a taken row, so adding its bit sets it, also where
        # two columns' bits share a word.
        mask = tf.tensor_scatter_nd_add(
            mask, (flat // 32)[:, None], tf.bitwise.left_shift(one, bit_of(flat))
        )
        return s + 1, mask

    initial = (tf.constant(0), tf.zeros(tf.reshape(words, [1]), tf.uint32))
    return tf.while_loop(lambda s, _: s < picks, step, initial, parallel_iterations=1)[1]


def _tensorflow_floyd_words(bits: Any, rows: int, words: int, compiled: bool) -> Any:
    """Floyd's loop over (picks, cols) ``bits``: XLA-compiled, or in the graph."""
    return _tensorflow_floyd_program(compiled)(bits, rows, words)


@functools.cache
def _tensorflow_floyd_program(compiled: bool) -> Any:
    import tensorflow as tf

    # Traced once for any shape. Compiled, XLA takes `words` (the mask's size)
    # as a compile-time constant and caches one program per shape and size.
    scalar = tf.TensorSpec([], tf.int32)
    return tf.function(
        lambda bits, rows, words: _tensorflow_floyd(tf, bits, rows, words),
        input_signature=[tf.TensorSpec([None, None], tf.uint32), scalar, scalar],
        autograph=False,
        jit_compile=compiled,
    )


def _tensorflow_subset_words(rows: int, cols: int, picks: int, seed: Any, words: int) -> Any:
    """``words`` uint32 words whose bits mark ``picks`` rows of each column (row-major)."""
    import tensorflow as tf

    bits = tf.random.stateless_uniform(
        [picks, cols], seed=_tensorflow_seed_pair(seed), minval=None, maxval=None, dtype=tf.uint32
    )
    return _tensorflow_floyd_words(bits, rows, words, rows * cols >= _TF_FUSED_FROM)


def _tensorflow_subsets(rows: int, cols: int, picks: int, seed: Any) -> Any:
    import tensorflow as tf

    size = rows * cols
    words = _tensorflow_subset_words(rows, cols, picks, seed, -(-size // 32))
    return tf.reshape(_tensorflow_unpack(tf, words, size), [rows, cols])


def _tensorflow_sparse(
    rows: int, cols: int, zeros: int, stddev: float, dtype: str, mask_seed: Any, value_seed: Any
) -> Any:
    import tensorflow as tf

    size = rows * cols
    fused = size >= _TF_FUSED_FROM
    # The words cover the chunks of the fused draw (its padding never read back).
    words = -(-size // _TF_CHUNK) * (_TF_CHUNK // 32) if fused else -(-size // 32)
    picks = min(zeros, rows - zeros)
    words = _tensorflow_subset_words(rows, cols, picks, mask_seed, words)
    if picks != zeros:
        words = tf.bitwise.invert(words)
    pair = _tensorflow_seed_pair(value_seed)
    shape = tf.constant([rows, cols], tf.int32)
    return _tensorflow_sparse_program(fused, dtype)(pair, words, shape, tf.constant(stddev, dtype))


@functools.cache
def _tensorflow_sparse_program(fused: bool, dtype: str) -> Callable[..., Any]:
    import tensorflow as tf

    signature = [
        tf.TensorSpec([2], tf.int32),
        tf.TensorSpec([None], tf.uint32),
        tf.TensorSpec([2], tf.int32),
        tf.TensorSpec([], dtype),
    ]

    @tf.function(input_signature=signature, autograph=False)
    def program(pair: Any, words: Any, shape: Any, scale: Any) -> Any:
        size = tf.reduce_prod(shape)
        if fused:
            unit = _tensorflow_unit_chunks(pair, size, dtype)
            values = _tensorflow_in_chunks("sparse_normal", unit, size, scale, words)
        else:
            unit = tf.raw_ops.StatelessRandomUniformV2(
                shape=tf.reshape(size, [1]), **_tensorflow_key(pair, dtype)
            )
            zero = _tensorflow_unpack(tf, words, size)
            values = tf.where(zero, tf.zeros([], dtype), _tensorflow_normal_cdf(tf, unit, scale))
        return tf.reshape(values, shape)

    return program


@functools.cache
def _jax_subsets_program() -> Callable[..., Any]:
    import jax
    import jax.numpy as jnp

    @functools.partial(jax.jit, static_argnames=("rows", "cols", "picks"))
    def program(key: Any, *, rows: int, cols: int, picks: int) -> Any:
        with jax.threefry_partitionable(True):
            bits = jax.random.bits(key, (picks, cols), jnp.uint32)
        column = jnp.arange(cols)

        def step(s: Any, mask: Any) -> Any:  # Floyd: t uniform in [0, j]; t, or j if taken
            j = rows - picks + s
            t = (bits[s] % (j + 1).astype(jnp.uint32)).astype(jnp.int32)
            row = jnp.where(mask[t, column], j, t)
            return mask.at[row, column].set(True)

        return jax.lax.fori_loop(0, picks, step, jnp.zeros((rows, cols), bool))

    return program


def _jax_subsets(rows: int, cols: int, picks: int, seed: Any) -> Any:
    import jax.numpy as jnp

    key = jnp.asarray(_seed_pair(seed), dtype=jnp.uint32)
    return _jax_subsets_program()(key, rows=rows, cols=cols, picks=picks)


@functools.cache
def _jax_zero_where() -> Callable[..., Any]:
    import jax
    import jax.numpy as jnp

    # The values' buffer is donated: the output takes its place.
    return jax.jit(lambda values, mask: jnp.where(mask, 0, values), donate_argnums=0)


def _torch_subsets(rows: int, cols: int, picks: int, seed: Any) -> Any:
    import torch

    mask = keras.ops.zeros((rows + 1, cols), dtype="bool")  # + a spare row
    if mask.device.type == "meta":  # symbolic build: the portable path handles it
        return None
    device = mask.device
    s0, s1 = (int(word) for word in _seed_pair(seed))
    generator = torch.Generator(device=device)
    generator.manual_seed((s0 + s1) & 0xFFFFFFFF)
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


_SUBSETS: dict[str, Callable[..., Any]] = {
    "tensorflow": _tensorflow_subsets,
    "jax": _jax_subsets,
    "torch": _torch_subsets,
}
