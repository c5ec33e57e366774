"""TensorFlow: raw stateless ops, the same Philox stream keras.random draws.

Imported only on TensorFlow. Each kind and dtype is one graph
(``tf.function``, traced once for any shape; no XLA, so nothing compiles per
shape): no ``+ mean`` pass as in Keras's normal, and the graph runtime hands
each intermediate's buffer on to the next op, where eager ops could not (the
Python reference keeps it alive).

TensorFlow's Erfinv kernel is scalar code: on a large draw it alone costs
about twice the uniform draw. XLA fuses the inverse CDF, scale and clip into
one vectorised pass, but compiles for every shape. So from ``FUSED_FROM``
values on, the truncated normal's (and Sparse's normal's) transform runs
through XLA, over TensorFlow's own uniform draw (XLA's Philox is a different
stream, and slower on a CPU), in one of two layouts with the same values:

- "chunked" (on a CPU): one XLA program of the fixed shape [``CHUNK``],
  compiled once per process and dtype, applied a chunk at a time in place
  (the output is the only buffer of its size).
- "whole" (on a GPU or TPU): one XLA program over the whole draw, compiled
  per size; a thousand small sequential steps would leave the device idle.

In float32 the transform's erfinv is Giles's central polynomial alone, the
only branch the truncation uses. Sparse's mask is Floyd's algorithm on a bit
mask (an XLA program compiled per shape from ``FUSED_FROM`` values on).
Shapes are int32 here: a draw of more than 2^31 - 1 values is refused
(``MAX_VALUES``) before any work.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from keras_inits import _compat
from keras_inits._sampling._common import (
    ERF_SQRT2,
    INDEX_LIMIT,
    Kind,
    Layout,
    layout_for,
    seed_pair,
)
from keras_inits._sampling._portable import place, process_count, sylvester_block

__all__ = [
    "MAX_VALUES",
    "NAME",
    "draw",
    "fused",
    "place",
    "process_count",
    "sparse_normal",
    "subsets",
    "sylvester_block",
    "zero_where",
]

NAME = "TensorFlow"
MAX_VALUES: int | None = INDEX_LIMIT
CHUNK = 1 << 20
FUSED_FROM = 1 << 22
# The step of TensorFlow's uniform [0, 1) draw: 23 or 52 random mantissa bits.
UNIT_STEP = {"float32": 2.0**-23, "float64": 2.0**-52}


@functools.cache
def _platform() -> str:
    """Where TensorFlow places ops by default: "tpu", "gpu" or "cpu"."""
    for kind in ("TPU", "GPU"):
        if tf.config.list_logical_devices(kind):
            return kind.lower()
    return "cpu"


def layout() -> Layout:
    """The layout of a fused transform (see the module docstring)."""
    return layout_for(_platform())


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


def _central_erfinv(x: Any) -> Any:
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


def inverse_cdf(unit: Any, scale: Any, central: bool = False) -> Any:
    """U[0, 1) -> sqrt(2) sigma erfinv(v), v ~ U(-erf(sqrt 2), erf(sqrt 2)), clipped at 2 sigma.

    ``central``: erfinv by its central polynomial alone (float32, under XLA),
    else TensorFlow's ``Erfinv`` (XLA's erfinv when compiled).
    """
    v = unit * (2.0 * ERF_SQRT2) - ERF_SQRT2
    values = _central_erfinv(v) if central else tf.math.erfinv(v)
    values = values * (math.sqrt(2.0) * scale)
    bound = 2.0 * scale
    # One kernel; tf.clip_by_value is two (minimum, then maximum).
    return tf.raw_ops.ClipByValue(t=values, clip_value_min=-bound, clip_value_max=bound)


def _normal_cdf(unit: Any, scale: Any) -> Any:
    """U[0, 1) on the grid k eps -> the normal N(0, scale^2) by its inverse CDF.

    v = 2u - 1 + eps is the grid's midpoint image, symmetric in (-1, 1) and
    never 0 or +-1, so sqrt(2) erfinv(v) is finite, and never exactly 0.
    """
    eps = UNIT_STEP[unit.dtype.name]
    return tf.math.erfinv(unit * 2.0 - (1.0 - eps)) * (math.sqrt(2.0) * scale)


def _unpack(words: Any, size: Any) -> Any:
    """Bit b of uint32 word w as entry 32 w + b of a flat bool tensor, [:size]."""
    bits = tf.bitwise.right_shift(words[:, None], tf.cast(tf.range(32), tf.uint32))
    return tf.not_equal(tf.reshape(tf.bitwise.bitwise_and(bits, 1), [-1])[:size], 0)


def _transform(kind: str, unit: Any, scale: Any, *words: Any) -> Any:
    """The fused transform of flat uniform values (and, for "sparse_normal", their mask words)."""
    if kind == "truncated_normal":
        return inverse_cdf(unit, scale, central=unit.dtype == tf.float32)
    zero = _unpack(words[0], tf.size(unit))
    return tf.where(zero, tf.zeros([], unit.dtype), _normal_cdf(unit, scale))


@functools.cache
def fused_chunk(kind: str, dtype: str, length: int | None = CHUNK) -> Callable[..., Any]:
    """The XLA transform of [``length``] uniform values, compiled once (None: per length).

    "truncated_normal": the inverse CDF, scale and clip. "sparse_normal": the
    normal inverse CDF, 0 where the value's bit in ``words`` (32 values a
    uint32 word, bit b of word w the value 32 w + b) is set.
    """
    signature = [tf.TensorSpec([length], dtype), tf.TensorSpec([], dtype)]
    if kind == "sparse_normal":
        signature.append(tf.TensorSpec([None if length is None else length // 32], tf.uint32))

    @tf.function(input_signature=signature, autograph=False, jit_compile=True)
    def chunk(unit: Any, scale: Any, *words: Any) -> Any:
        return _transform(kind, unit, scale, *words)

    return chunk


def _in_chunks(kind: str, unit: Any, size: Any, scale: Any, *words: Any) -> Any:
    """The fused chunk applied in place to (chunks, CHUNK) uniform values: flat, [:size].

    ``unit`` holds whole chunks, drawn as one shape: Philox fills it in counter
    order, so its first ``size`` values are those of a draw of ``size``.
    ``words``, for "sparse_normal", is the flat mask of CHUNK / 32 words a chunk.
    """
    fused = fused_chunk(kind, unit.dtype.name)
    by_chunk = [tf.reshape(w, [-1, CHUNK // 32]) for w in words]

    def body(i: Any, unit: Any) -> Any:
        row = fused(unit[i], scale, *(w[i] for w in by_chunk))[None]
        return i + 1, tf.raw_ops.InplaceUpdate(x=unit, i=tf.reshape(i, [1]), v=row)

    chunks = tf.shape(unit)[0]
    _, unit = tf.while_loop(
        lambda i, _: i < chunks, body, (tf.constant(0), unit), parallel_iterations=1
    )
    return tf.reshape(unit, [-1])[:size]


def _fused_values(
    kind: str, layout: Layout, pair: Any, size: Any, scale: Any, dtype: str, *words: Any
) -> Any:
    """``size`` flat values of the fused transform, in ``layout``; the same either way."""
    if layout == "chunked":
        return _in_chunks(kind, _unit_chunks(pair, size, dtype), size, scale, *words)
    unit = tf.raw_ops.StatelessRandomUniformV2(shape=tf.reshape(size, [1]), **_key(pair, dtype))
    return fused_chunk(kind, dtype, None)(unit, scale, *words)


@functools.cache
def _program(kind: str, dtype: str) -> Callable[..., Any]:
    signature = [
        tf.TensorSpec([2], tf.int32),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([], dtype),
    ]

    @tf.function(input_signature=signature, autograph=False)
    def program(pair: Any, shape: Any, scale: Any) -> Any:
        if kind == "normal":
            key = _key(pair, dtype)
            return tf.raw_ops.StatelessRandomNormalV2(shape=shape, **key) * scale
        if kind in ("chunked_truncated_normal", "whole_truncated_normal"):
            size = tf.reduce_prod(shape)
            layout: Layout = "chunked" if kind.startswith("chunked") else "whole"
            values = _fused_values("truncated_normal", layout, pair, size, scale, dtype)
            return tf.reshape(values, shape)
        values = tf.raw_ops.StatelessRandomUniformV2(shape=shape, **_key(pair, dtype))
        if kind == "uniform":
            return values * (2.0 * scale) - scale
        return inverse_cdf(values, scale)

    return program


def _key(pair: Any, dtype: str) -> dict[str, Any]:
    """The arguments of the V2 stateless draws for an int32 seed pair (Keras's stream)."""
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=pair)
    return {
        "key": key,
        "counter": counter,
        "alg": tf.raw_ops.StatelessRandomGetAlg(),
        "dtype": dtype,
    }


def _unit_chunks(pair: Any, size: Any, dtype: str) -> Any:
    """U[0, 1) as (ceil(size / CHUNK), CHUNK); the first ``size`` are a draw of ``size``."""
    chunks = (size + CHUNK - 1) // CHUNK
    shape = tf.stack([chunks, CHUNK])
    return tf.raw_ops.StatelessRandomUniformV2(shape=shape, **_key(pair, dtype))


def _seed_pair(seed: Any) -> Any:
    """The seed's two words as the int32 pair TensorFlow's stateless ops take."""
    return _compat.keras_tensorflow_seed(tf, seed_pair(seed))


def draw(kind: Kind, shape: tuple[int, ...], scale: float, dtype: str, seed: Any) -> Any:
    """``kind``'s values from one graph (the truncated normal's large draws fused by XLA)."""
    pair = _seed_pair(seed)
    program: str = kind
    size = math.prod(shape)
    if kind == "truncated_normal" and size >= FUSED_FROM:
        program = f"{layout()}_truncated_normal"
    return _program(program, dtype)(
        pair, tf.constant(shape, tf.int32, shape=[len(shape)]), tf.constant(scale, dtype)
    )


def zero_where(mask: Any, values: Any) -> Any:
    """``values`` with 0 where ``mask`` is True (a scalar 0, broadcast inside the kernel)."""
    return tf.where(mask, tf.zeros([], values.dtype), values)


def fused(build: Callable[..., Any], shape: tuple[int, ...], static: tuple[Any, ...]) -> Any:
    """``build(shape, *static)`` as one XLA program from FUSED_FROM values on, else None.

    Below that size the compile (about 0.1 s a shape) costs more than it buys.
    """
    if math.prod(shape) < FUSED_FROM:
        return None
    return _fused(build, shape, *static)()


@functools.cache
def _fused(build: Callable[..., Any], *static: Any) -> Callable[..., Any]:
    # A partial, not a lambda: TensorFlow counts traces per code object and
    # would warn of "retracing" once five shapes had each been traced once.
    return tf.function(functools.partial(build, *static), autograph=False, jit_compile=True)


# Floyd's algorithm with the mask as bits: bit i of the row-major index i, 32
# to a uint32 word, so the mask of a 4096 x 4096 kernel is 2 MiB and its
# random reads and writes stay in cache. From FUSED_FROM values on, the loop
# runs as an XLA program compiled once per shape (about 0.2 x one uniform
# draw of the kernel, where the graph runtime copies the words on every
# step); below, the same loop runs in the graph, for any shape. Both give the
# same words.


def _floyd(bits: Any, rows: Any, words: Any) -> Any:
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


def floyd_words(bits: Any, rows: int, words: int, compiled: bool) -> Any:
    """Floyd's loop over (picks, cols) ``bits``: XLA-compiled, or in the graph."""
    return _floyd_program(compiled)(bits, rows, words)


@functools.cache
def _floyd_program(compiled: bool) -> Any:
    # Traced once for any shape. Compiled, XLA takes `words` (the mask's size)
    # as a compile-time constant and caches one program per shape and size.
    scalar = tf.TensorSpec([], tf.int32)
    return tf.function(
        _floyd,
        input_signature=[tf.TensorSpec([None, None], tf.uint32), scalar, scalar],
        autograph=False,
        jit_compile=compiled,
    )


def _subset_words(rows: int, cols: int, picks: int, seed: Any, words: int) -> Any:
    """``words`` uint32 words whose bits mark ``picks`` rows of each column (row-major)."""
    bits = tf.random.stateless_uniform(
        [picks, cols], seed=_seed_pair(seed), minval=None, maxval=None, dtype=tf.uint32
    )
    return floyd_words(bits, rows, words, rows * cols >= FUSED_FROM)


def subsets(rows: int, cols: int, picks: int, seed: Any) -> Any:
    """``picks`` rows of each column by Floyd's algorithm, as bits, unpacked."""
    size = rows * cols
    words = _subset_words(rows, cols, picks, seed, -(-size // 32))
    return tf.reshape(_unpack(words, size), [rows, cols])


def sparse_normal(
    rows: int, cols: int, zeros: int, stddev: float, dtype: str, mask_seed: Any, value_seed: Any
) -> Any:
    """The mask as bits and the normal by its inverse CDF, zeroed in the same pass."""
    size = rows * cols
    fused = size >= FUSED_FROM
    plan: str = layout() if fused else "graph"
    # Chunked, the words cover the chunks (their padding never read back).
    words = -(-size // CHUNK) * (CHUNK // 32) if plan == "chunked" else -(-size // 32)
    picks = min(zeros, rows - zeros)
    words = _subset_words(rows, cols, picks, mask_seed, words)
    if picks != zeros:
        words = tf.bitwise.invert(words)
    pair = _seed_pair(value_seed)
    shape = tf.constant([rows, cols], tf.int32)
    return _sparse_program(plan, dtype)(pair, words, shape, tf.constant(stddev, dtype))


@functools.cache
def _sparse_program(plan: str, dtype: str) -> Callable[..., Any]:
    signature = [
        tf.TensorSpec([2], tf.int32),
        tf.TensorSpec([None], tf.uint32),
        tf.TensorSpec([2], tf.int32),
        tf.TensorSpec([], dtype),
    ]

    @tf.function(input_signature=signature, autograph=False)
    def program(pair: Any, words: Any, shape: Any, scale: Any) -> Any:
        size = tf.reduce_prod(shape)
        if plan != "graph":
            layout: Layout = "chunked" if plan == "chunked" else "whole"
            values = _fused_values("sparse_normal", layout, pair, size, scale, dtype, words)
        else:
            unit = tf.raw_ops.StatelessRandomUniformV2(
                shape=tf.reshape(size, [1]), **_key(pair, dtype)
            )
            zero = _unpack(words, size)
            values = tf.where(zero, tf.zeros([], dtype), _normal_cdf(unit, scale))
        return tf.reshape(values, shape)

    return program
