"""Structured kernels: identities, sub-pixel (ICNR), bilinear upsampling and ZerO.

Each class here builds a kernel with a known effect on the signal (a
convolution that passes its input through, an upsampling that equals
nearest-neighbour or bilinear interpolation) rather than one with a target
variance. ConvIdentity, Bilinear and HadamardIdentity are deterministic:
they take no seed and return the same kernel on every call. ICNR draws its
sub-kernel from another initializer, with the package's seed policy.

Kernels follow the Keras layout ``(*receptive_field, in, out)`` unless a
class says otherwise (DepthwiseConv2D: ``(kh, kw, channels, multiplier)``;
Conv2DTranspose: ``(kh, kw, filters, in_channels)``). The centre tap of a
spatial axis of size k is index (k - 1) // 2: Keras's ``padding="same"`` pads
k - 1 in all, (k - 1) // 2 before and the rest after, so only that tap lines
an output up with the input at the same position, for odd and even k, on
every backend. (PyTorch's ``dirac_`` uses k // 2, which is off by one for
even k.) A shape a class cannot fill is a ValueError naming the shape; this
module never guesses a layout it was not given.
"""

from typing import Any, Literal, get_args

import keras
import numpy as np

from keras_inits._base import DeterministicInitializer, RandomInitializer, Seed
from keras_inits._fans import centre_tap
from keras_inits._kernels import fused, sylvester_block
from keras_inits._resolve import resolve
from keras_inits._sampling import check_fits
from keras_inits._validation import (
    check_choice,
    check_kernel_rank,
    check_positive,
    check_positive_int,
    shape_error,
)

__all__ = ["ICNR", "Bilinear", "ConvIdentity", "HadamardIdentity", "Layout"]

Layout = Literal["conv", "depthwise"]
_LAYOUTS = {
    "conv": "(*receptive_field, in, out)",
    "depthwise": "(*receptive_field, channels, multiplier)",
}


def _at_centre_tap(shape: tuple[int, ...], matrix: Any) -> Any:
    """A kernel of ``shape``: the (in, out) tensor ``matrix`` at the centre tap, 0 elsewhere."""
    spatial = shape[:-2]
    if not spatial:
        return matrix
    matrix = keras.ops.reshape(matrix, (*(1 for _ in spatial), *shape[-2:]))
    padding = [(c, k - 1 - c) for c, k in zip(centre_tap(spatial), spatial, strict=True)]
    return keras.ops.pad(matrix, [*padding, (0, 0), (0, 0)])


def _constant(value: float, dtype: str) -> Any:
    """A scalar of ``dtype`` rounded once from the Python float (as NumPy's float64 cast)."""
    return keras.ops.convert_to_tensor(value, dtype=dtype)


def _conv_identity(shape: tuple[int, ...], dtype: str, gain: float, layout: str) -> Any:
    channels, outputs = shape[-2:]
    if layout == "depthwise":
        first = keras.ops.equal(keras.ops.arange(outputs), 0)
        column = keras.ops.where(first, _constant(gain, dtype), _constant(0.0, dtype))
        matrix = keras.ops.broadcast_to(column, (channels, outputs))
    else:
        matrix = keras.ops.eye(channels, outputs, dtype=dtype)
        if gain != 1.0:  # a second output-sized tensor, only when needed
            matrix = matrix * _constant(gain, dtype)
    return _at_centre_tap(shape, matrix)


class ConvIdentity(DeterministicInitializer):
    """The identity at the centre tap: a stride-1 "same" convolution passes its input through.

        layout="conv", kernel (*k, in, out):
            W[c, i, j] = gain if i == j, else 0      (c the centre tap, (k - 1) // 2 per axis)
        layout="depthwise", kernel (*k, channels, multiplier):
            W[c, i, 0] = gain, W[c, i, m] = 0 for m >= 1

    With ``padding="same"``, stride 1 and no dilation, a Conv1D, Conv2D or
    Conv3D so initialized returns gain times its first min(in, out) input
    channels (the rest of its outputs are 0), for odd and even kernel sizes. A
    DepthwiseConv2D has output channel i * multiplier + m; with
    ``layout="depthwise"`` output channel i * multiplier is gain times input
    channel i and the others are 0, so with ``depth_multiplier=1`` the layer
    returns its input. The kernel shape alone cannot tell a depthwise kernel
    from a Conv2D kernel, hence ``layout``. A 2-D (in, out) kernel gets Keras's
    ``Identity``. Deterministic: there are no fans to scale by and no seed.

    Args:
        gain: The value on the diagonal, a finite number > 0.
        layout: "conv" for kernels laid out ``(*receptive_field, in, out)``,
            "depthwise" for DepthwiseConv1D/2D kernels
            ``(*receptive_field, channels, multiplier)``.

    Raises:
        ValueError: If ``gain`` is not finite or not > 0, ``layout`` is
            unknown, or (when called) the kernel has rank < 2.
        TypeError: If ``gain`` is not a real number (bool included).

    Example:
        >>> kernel = keras.ops.convert_to_numpy(ConvIdentity()((4, 4, 3, 5)))
        >>> kernel.shape, float(kernel.sum()), float(kernel[1, 1, 2, 2])
        ((4, 4, 3, 5), 3.0, 1.0)

    Reference:
        Zagoruyko & Komodakis, 2017, "DiracNets: Training Very Deep Neural
        Networks Without Skip-Connections", https://arxiv.org/abs/1706.00388
        (PyTorch's ``dirac_``, centre k // 2); Keras ``Identity`` (2-D only)
    """

    def __init__(self, gain: float = 1.0, layout: Layout = "conv") -> None:
        self.gain = check_positive("gain", gain)
        self.layout = check_choice("layout", layout, get_args(Layout))

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        check_kernel_rank(type(self).__name__, shape, _LAYOUTS[self.layout])

    def _draw(self, shape: tuple[int, ...], dtype: str, seed: Any) -> Any:
        # Built with iota and comparisons, not a NumPy constant: a traced call
        # holds no kernel-sized constant, and a sharded one builds only its shard.
        check_fits(self.gain, dtype)  # a huge gain would otherwise cast to inf, silently
        return fused(_conv_identity, shape, dtype, self.gain, self.layout)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gain": self.gain, "layout": self.layout}


def _hadamard_parity(rows: int, columns: int, order: int) -> Any:
    """Whether entry (i, j) of Sylvester's H_order is -1, for the top-left (rows, columns) block.

    H_0 = [1], H_m = [[H_(m-1), H_(m-1)], [H_(m-1), -H_(m-1)]], so
    H_m[i, j] = (-1)^(number of bits set in both i and j): the parity of
    i AND j, from iotas, so no (rows, columns) constant is ever built.
    The parity is built one bit at a time as a bool (rows, columns) XOR of
    (i_b AND j_b), the outer AND of two bit columns: each temporary is a bool,
    a quarter of a float32 output, where an int32 AND of the indices was 1x.
    """
    row_index = keras.ops.arange(rows, dtype="int32")
    column_index = keras.ops.arange(columns, dtype="int32")

    def bit_of(index: Any, bit: int) -> Any:
        return keras.ops.equal(keras.ops.bitwise_and(keras.ops.right_shift(index, bit), 1), 1)

    parity = None
    for bit in range(order):
        both = keras.ops.logical_and(
            keras.ops.expand_dims(bit_of(row_index, bit), 1),
            keras.ops.expand_dims(bit_of(column_index, bit), 0),
        )
        parity = both if parity is None else keras.ops.logical_xor(parity, both)
        del both
    return parity


def _zero_matrix(n_in: int, n_out: int, dtype: str) -> Any:
    """ZerO's (in, out) matrix: a partial identity, or a scaled Hadamard block when out > in.

    Example:
        >>> keras.ops.convert_to_numpy(_zero_matrix(3, 2, "float32")).tolist()
        [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
        >>> (keras.ops.convert_to_numpy(_zero_matrix(2, 3, "float64")) * 2**0.5).round(6).tolist()
        [[1.0, 1.0, 1.0], [1.0, -1.0, 1.0]]
    """
    if n_out <= n_in:
        return keras.ops.eye(n_in, n_out, dtype=dtype)
    order = (n_out - 1).bit_length()  # m = ceil(log2(out))
    c = 2.0 ** (-(order - 1) / 2.0)
    block = sylvester_block(n_in, n_out, c, dtype)
    if block is not None:
        return block
    negative = _hadamard_parity(n_in, n_out, order)
    return keras.ops.where(negative, _constant(-c, dtype), _constant(c, dtype))


class HadamardIdentity(DeterministicInitializer):
    """ZerO initialization: a partial identity, or a scaled Hadamard block where out > in.

        out <= in:  W = I*(in, out)                     (W[i, j] = 1 if i == j, else 0)
        out >  in:  W = c * H_m[:in, :out],  m = ceil(log2(out)),  c = 2^(-(m - 1) / 2)

    H_m is Sylvester's 2^m x 2^m Hadamard matrix of +-1 entries
    (H_0 = [1], H_m = [[H_(m-1), H_(m-1)], [H_(m-1), -H_(m-1)]]), so every
    entry of the out > in case is +-c. c is the paper's normalization: it is
    sqrt(2) times the orthonormal 2^(-m/2), so when out is a power of two the
    rows satisfy W W^T = 2 I (each input lands in the output with squared
    norm 2). The paper writes W as (out, in); H_m is symmetric, so the Keras
    (in, out) kernel is the same top-left block. A kernel laid out
    ``(*receptive_field, in, out)`` gets this matrix at the centre tap
    (k - 1) // 2 of each spatial axis and 0 elsewhere (the paper's Algorithm 2
    uses k // 2 for odd k, the same tap; for even k, (k - 1) // 2 is the one
    ``padding="same"`` lines up). Deterministic: no fans, no seed. It takes
    no arguments: the kernel's shape decides everything.

    Raises:
        ValueError: If (when called) the kernel has rank < 2.

    Example:
        >>> kernel = keras.ops.convert_to_numpy(HadamardIdentity()((2, 4)))
        >>> kernel.shape, sorted({round(float(v), 6) for v in kernel.ravel()})
        ((2, 4), [-0.707107, 0.707107])

    Reference:
        Zhao, Schaefer & Anandkumar, 2022, "ZerO Initialization: Initializing
        Neural Networks with only Zeros and Ones", TMLR,
        https://arxiv.org/abs/2110.12661
    """

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        check_kernel_rank(type(self).__name__, shape, _LAYOUTS["conv"])

    def _draw(self, shape: tuple[int, ...], dtype: str, seed: Any) -> Any:
        return fused(_zero_kernel, shape, dtype)


def _zero_kernel(shape: tuple[int, ...], dtype: str) -> Any:
    n_in, n_out = shape[-2:]
    return _at_centre_tap(shape, _zero_matrix(n_in, n_out, dtype))


def _bilinear_weights(size: int) -> np.ndarray:
    """1-D weights of a bilinear kernel of ``size`` = 2f - f % 2 taps: 1 - |t - centre| / f."""
    factor = (size + 1) // 2
    taps = np.arange(size)
    return 1.0 - np.abs(taps - (size - 1) / 2.0) / factor


def _bilinear(shape: tuple[int, ...], dtype: str) -> Any:
    kh, kw, channels, _ = shape
    # Only the (kh, kw) taps are a constant; the channel diagonal is an iota compare.
    taps = np.multiply.outer(_bilinear_weights(kh), _bilinear_weights(kw))
    taps = keras.ops.convert_to_tensor(taps[:, :, None, None], dtype=dtype)
    return taps * keras.ops.eye(channels, dtype=dtype)


class Bilinear(DeterministicInitializer):
    """Bilinear upsampling by a factor f for Conv2DTranspose(strides=f, padding="same").

        kernel (kh, kw, C, C), kh = 2 fh - fh % 2, kw = 2 fw - fw % 2:
        W[y, x, i, j] = w_h[y] * w_w[x] if i == j, else 0
        w[t] = 1 - |t - (k - 1) / 2| / f          (FCN's bilinear kernel)

    Used as ``Conv2DTranspose(filters=C, kernel_size=2 * f - f % 2, strides=f,
    padding="same")`` on C channels, the layer upsamples each channel by f
    exactly as ``keras.ops.image.resize(x, (f H, f W), "bilinear")`` does
    (half-pixel centres: output pixel o samples input coordinate
    (o + 1/2) / f - 1/2), everywhere except the outermost pixels, where resize
    clamps to the edge and the transposed convolution sees zeros. The
    transposed convolution pads f - f % 2 in all, split evenly, and that even
    split is what lines the kernel up with the half-pixel centres; it needs
    no other offset. Conv2DTranspose's kernel is laid out
    ``(kh, kw, filters, in_channels)``; it must be square in its channels
    (filters == in_channels), as the map is per channel. Kernel sizes 1, 4,
    5, 8, 9, ... (k = 0 or 1 mod 4) are the ones some factor f gives; no
    other size reproduces bilinear upsampling with "same" padding, and the
    initializer cannot see ``strides``: use f = (k + 1) // 2. Deterministic:
    no fans, no seed. It takes no arguments:
    the kernel's shape decides everything.

    Raises:
        ValueError: If (when called) the kernel is not 4-D, its two channel
            axes differ, or a spatial size is not 2f - f % 2 for any f.

    Example:
        >>> kernel = keras.ops.convert_to_numpy(Bilinear()((4, 4, 3, 3)))
        >>> kernel[:, 0, 0, 0].tolist(), float(kernel[:, :, 0, 1].sum())
        ([0.0625, 0.1875, 0.1875, 0.0625], 0.0)

    Reference:
        Long, Shelhamer & Darrell, 2015, "Fully Convolutional Networks for
        Semantic Segmentation", https://arxiv.org/abs/1411.4038
    """

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        owner = type(self).__name__
        if len(shape) != 4:
            raise shape_error(owner, "be 4-D, (kh, kw, filters, in_channels)", shape)
        if shape[2] != shape[3]:
            raise shape_error(
                owner, "have filters == in_channels (bilinear upsampling is per channel)", shape
            )
        if any(size % 4 not in (0, 1) for size in shape[:2]):
            raise shape_error(
                owner,
                "have kernel sizes 2f - f % 2 (1, 4, 5, 8, 9, ...) for upsampling factor f",
                shape,
            )

    def _draw(self, shape: tuple[int, ...], dtype: str, seed: Any) -> Any:
        return fused(_bilinear, shape, dtype)


class ICNR(RandomInitializer):
    """ICNR: a sub-pixel convolution kernel that starts as nearest-neighbour upsampling.

        kernel (*k, in, out), s = scale, C = out / s^2:
        W0 ~ initializer, shape (*k, in, C)
        W[..., (i * s + j) * C + c] = W0[..., c]       for block position (i, j)

    ``keras.ops.depth_to_space(x, s)`` (channels_last) puts input channel
    (i * s + j) * C + c at output channel c of block position (i, j), on
    every backend (TensorFlow's order, not PyTorch's pixel shuffle, which
    takes channel c * s^2 + i * s + j). The kernel above is W0 tiled s^2
    times along the output axis, so a convolution with it followed by
    ``depth_to_space(..., s)`` equals nearest-neighbour upsampling (by s) of
    the convolution with W0: no checkerboard at initialization. W0 is drawn
    with the sub-kernel's shape, so its fans are fan_in = in * prod(k) (the
    full kernel's) and fan_out = C * prod(k).

    Seeds: where the nested initializer has no seed of its own (a string
    name, or an instance or config with ``seed=None``), ICNR's ``seed`` drives
    it with the package's policy (see docs/seeds.md): call k re-creates it with the
    sub-seed of call k, so an int seed reproduces, None gives fresh values
    every call, a SeedGenerator advances. A nested initializer that has its
    own seed keeps it, and then ICNR's ``seed`` must be None: two seeds for one
    draw is an error, not a silent choice. So is a ``seed`` given with a
    nested initializer that takes none (it would have no effect).

    Args:
        scale: The upsampling factor of ``depth_to_space``, an int >= 1.
        initializer: Anything ``keras_inits.get`` resolves to an initializer
            (a name, a config dict, an instance); stored in the config with
            ``keras.initializers.serialize``.
        seed: An int, None or a ``keras.random.SeedGenerator``; see above.

    Raises:
        ValueError: For a ``scale`` < 1, an unknown ``initializer`` name, a
            ``seed`` with a nested initializer that has its own or takes none,
            or (when called) a kernel of rank < 2 or whose last axis is not
            divisible by scale^2.
        TypeError: For a non-int ``scale`` (bool included), an ``initializer``
            that is not an initializer, or a bad ``seed`` type.

    Example:
        >>> init = ICNR(scale=2, initializer="kaiming_normal", seed=0)
        >>> kernel = keras.ops.convert_to_numpy(init((3, 3, 16, 12)))
        >>> kernel.shape, bool((kernel[..., :3] == kernel[..., 9:]).all())
        ((3, 3, 16, 12), True)

    Reference:
        Aitken et al., 2017, "Checkerboard artifact free sub-pixel convolution",
        https://arxiv.org/abs/1707.02937;
        Shi et al., 2016, "Real-Time Single Image and Video Super-Resolution
        Using an Efficient Sub-Pixel Convolutional Neural Network",
        https://arxiv.org/abs/1609.05158
    """

    def __init__(
        self, scale: int = 2, initializer: Any = "kaiming_normal", seed: Seed = None
    ) -> None:
        self.scale = check_positive_int("scale", scale)
        nested = resolve(initializer, "initializer")
        if not isinstance(nested, keras.initializers.Initializer):
            raise TypeError(
                "`initializer` must name or be a keras.initializers.Initializer. "
                f"Received: initializer={initializer!r}"
            )
        self.initializer = nested
        super().__init__(seed=seed)
        nested_config = nested.get_config()
        takes_seed = "seed" in nested_config
        own_seed = takes_seed and nested_config["seed"] is not None
        if self.seed is not None and (own_seed or not takes_seed):
            why = "has its own seed" if own_seed else "takes no seed"
            raise ValueError(
                f"`seed` has no effect: the nested initializer {type(nested).__name__} {why}. "
                f"Give the seed to one of the two. Received: seed={seed!r}, "
                f"initializer={initializer!r}"
            )
        self._drives_nested_seed = takes_seed and not own_seed

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        owner = type(self).__name__
        check_kernel_rank(owner, shape, _LAYOUTS["conv"])
        blocks = self.scale**2
        if shape[-1] % blocks:
            raise shape_error(
                owner,
                f"have a last axis (out) divisible by scale**2 = {blocks} (scale={self.scale})",
                shape,
            )

    def _draw(self, shape: tuple[int, ...], dtype: str, seed: Any) -> Any:
        blocks = self.scale**2
        nested = self.initializer
        if self._drives_nested_seed:
            config = {**nested.get_config(), "seed": seed}
            nested = type(nested).from_config(config)
        sub_kernel = nested((*shape[:-1], shape[-1] // blocks), dtype=dtype)
        return keras.ops.tile(sub_kernel, (1,) * (len(shape) - 1) + (blocks,))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "scale": self.scale,
            "initializer": keras.initializers.serialize(self.initializer),
        }
