"""The fan-scaled family: Var(W) = scale / fan, and the classic schemes on it.

Every class here is a ``keras.initializers.VarianceScaling``, because Keras
hands the true fan axes only to those: EinsumDense (and so
MultiHeadAttention) re-creates a VarianceScaling initializer from its config
with ``input_axes``/``output_axes`` set. Each class therefore takes those two
arguments and round-trips them through its config.

Fans follow the Keras kernel layout ``(*receptive_field, in, out)``:
fan_in = in * prod(receptive_field), fan_out = out * prod(receptive_field),
or the products of ``input_axes`` / ``output_axes`` when given.

``gain`` multiplies the standard deviation, ``scale`` the variance:
``scale = gain**2``. This module never computes a fan or draws a number
itself: ``_fans`` and ``_sampling`` do.
"""

import math
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias, get_args

import keras

from keras_inits import _sampling
from keras_inits._base import RandomInitializer, Seed
from keras_inits._fans import Mode, compute_fans, fan_for_mode
from keras_inits._gain import Nonlinearity, activation_name, calculate_gain, gain_for
from keras_inits._validation import (
    check_axes,
    check_batch_axis,
    check_choice,
    check_positive,
    check_squarable,
)

__all__ = [
    "ActivationScaled",
    "check_distribution",
    "Distribution",
    "KaimingNormal",
    "KaimingUniform",
    "SigmoidNormal",
    "SigmoidUniform",
    "VarianceScaling",
    "XavierNormal",
    "XavierUniform",
]

Distribution = Literal["truncated_normal", "untruncated_normal", "uniform"]
KaimingMode = Literal["fan_in", "fan_out"]
Axes: TypeAlias = "Sequence[int] | None"


def check_distribution(distribution: Any) -> Distribution:
    """``distribution`` as Keras's VarianceScaling reads it, in its canonical spelling.

    Keras lower-cases the name and takes "normal" for "truncated_normal"; so
    does this, so that every spelling the parent class accepts means the same
    here.

    Example:
        >>> check_distribution("Normal"), check_distribution("UNIFORM")
        ('truncated_normal', 'uniform')
    """
    if isinstance(distribution, str):
        distribution = distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"
    return check_choice("distribution", distribution, get_args(Distribution))


class VarianceScaling(RandomInitializer, keras.initializers.VarianceScaling):
    """Draws with Var(W) = scale / n, n the fan that ``mode`` names.

        n = fan_in, fan_out, (fan_in + fan_out) / 2 or sqrt(fan_in * fan_out)
        for mode "fan_in", "fan_out", "fan_avg", "fan_geo_avg" (never below 1).
        truncated_normal:    N(0, s^2) cut at +-2 s, s = sqrt(scale / n) / 0.8796...,
                             so that the std after the cut is sqrt(scale / n).
                             Exact: no value ever lies beyond 2 s.
        untruncated_normal:  N(0, scale / n).
        uniform:             U(-sqrt(3 scale / n), +sqrt(3 scale / n)).
        complex64/complex128: JAX's circular laws with E|z|^2 = scale / n, the
                             variance split equally between the parts (see
                             ``_sampling.complex_scaled`` and docs/jax-flax.md).

    Fans are those of the Keras kernel layout ``(*receptive_field, in, out)``
    unless ``input_axes`` and ``output_axes`` are both given; ``batch_axis``
    takes axes of that layout out of both fans, as JAX's ``batch_axis`` does
    (a stack of independent kernels). Keras owns the
    bare names "VarianceScaling" and "variance_scaling"; this class is
    reachable by string as "keras_inits>VarianceScaling" only.

    It stands in for ``keras.initializers.VarianceScaling``: every argument
    value that class takes means the same here ("Normal" is
    "truncated_normal", a seed may be a serialized SeedGenerator, one axes
    list alone is ignored), except a ``scale`` that is a bool, NaN or
    infinite, which Keras lets through to non-finite kernels.

    Args:
        scale: Variance multiplier, a finite number > 0 (``gain**2``).
        mode: One of "fan_in", "fan_out", "fan_avg", "fan_geo_avg" (JAX's
            geometric mean; Keras's own class has no such mode).
        distribution: One of "truncated_normal", "untruncated_normal",
            "uniform", in any case; "normal" means "truncated_normal" (as in
            Keras; JAX's "normal" is untruncated).
        seed: An int (reproducible), None (fresh values every call), a
            ``keras.random.SeedGenerator`` or its serialized config; see
            docs/seeds.md.
        input_axes: Axes of the kernel that count as inputs, or None for the
            Keras layout. Used when ``output_axes`` is given too.
        output_axes: Axes of the kernel that count as outputs, or None.
        batch_axis: An int or a list of ints: axes before the last two that
            count in neither fan (JAX's ``batch_axis``), or None. Ignored where
            ``input_axes`` and ``output_axes`` are both given: those leave
            every unnamed axis out of the fans already.

    Raises:
        ValueError: For a non-positive or non-finite ``scale``, or an unknown
            ``mode`` or ``distribution``; when called, for a batch axis out of
            range or among the last two axes.
        TypeError: For a ``scale`` that is not a real number (bool included),
            a ``seed`` that is not an int, SeedGenerator or None, or axes
            that are not lists of ints.

    Example:
        >>> init = VarianceScaling(scale=2.0, mode="fan_in", seed=0)
        >>> tuple(init((256, 128)).shape)
        (256, 128)

    Reference:
        He et al., 2015, "Delving Deep into Rectifiers",
        https://arxiv.org/abs/1502.01852
    """

    def __init__(
        self,
        scale: float = 1.0,
        mode: Mode = "fan_in",
        distribution: Distribution = "truncated_normal",
        seed: Seed = None,
        input_axes: Axes = None,
        output_axes: Axes = None,
        batch_axis: int | Sequence[int] | None = None,
    ) -> None:
        self.scale = check_positive("scale", scale)
        self.mode = check_choice("mode", mode, get_args(Mode))
        self.distribution = check_distribution(distribution)
        self.input_axes, self.output_axes = check_axes(input_axes, output_axes)
        self.batch_axis = check_batch_axis(batch_axis)
        super().__init__(seed=seed)

    def _fans(self, shape: tuple[int, ...]) -> tuple[int, int]:
        return compute_fans(shape, self.input_axes, self.output_axes, self.batch_axis)

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        if self.batch_axis:
            self._fans(shape)  # a batch axis out of range or on (in, out) is an error

    def stddev(self, shape: Sequence[int]) -> float:
        """The target standard deviation, sqrt(scale / n), for a kernel shape.

        Example:
            >>> VarianceScaling(scale=4.0).stddev((100, 10))
            0.2
        """
        fan_in, fan_out = self._fans(tuple(shape))
        return math.sqrt(self.scale / fan_for_mode(self.mode, fan_in, fan_out))

    COMPLEX = True

    def _draw(self, shape: tuple[int, ...], dtype: str, seed: Any) -> Any:
        if dtype.startswith("complex"):
            return _sampling.complex_scaled(
                self.distribution, shape, self.stddev(shape), dtype, seed
            )
        return _sampling.scaled(self.distribution, shape, self.stddev(shape), dtype, seed)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._scheme_config(), **self._axes_config()}

    def _scheme_config(self) -> dict[str, Any]:
        """The arguments that pick the scheme; subclasses replace this."""
        config: dict[str, Any] = {
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
        }
        if self.batch_axis:  # only when set: Keras's own class reads every other config of ours
            config["batch_axis"] = self.batch_axis
        return config

    def _axes_config(self) -> dict[str, Any]:
        return {"input_axes": self.input_axes, "output_axes": self.output_axes}


class SigmoidNormal(VarianceScaling):
    """The sigmoid initializer: W ~ N(0, 4 / fan_in), untruncated.

        std = sqrt(4 / fan_in) = 2 / sqrt(fan_in)     (gain 2, scale 4)

    Why 4: with standard-normal pre-activations a sigmoid's output has second
    moment E[sigmoid(z)^2] = 0.293, so the next layer keeps the second moment
    of the signal with gain 1 / sqrt(0.293) = 1.85, scale 3.41
    (``gain_for("sigmoid")``), which this initializer rounds up to gain 2,
    scale 4. The slope at 0, 1/4, would call for gain 4 (scale 16) instead.
    The rule is derived here, by the variance-preserving argument of Glorot
    & Bengio (2010) applied to the sigmoid's second moment; no paper we know
    of states 4 / fan_in itself. It is the "factor 4" cousin of He's
    2 / fan_in for ReLU and LeCun's 1 / fan_in (Glorot's 2 / (fan_in +
    fan_out)) for tanh. It is not PyTorch's gain 1 for sigmoid, nor the
    "4 times the Glorot bound" rule (16 times Glorot's variance), nor LeCun
    et al. (1998), whose "Efficient BackProp" recommends std = fan_in^(-1/2)
    for a scaled tanh. fan_in is in * prod(receptive_field) for a kernel laid
    out ``(*receptive_field, in, out)``.

    Args:
        seed: An int, None or a ``keras.random.SeedGenerator`` (see docs/seeds.md).
        input_axes: Input axes of the kernel, or None for the Keras layout.
        output_axes: Output axes of the kernel, or None.

    Example:
        >>> layer = keras.layers.Dense(64, activation="sigmoid",
        ...                            kernel_initializer="sigmoid_normal")
        >>> tuple(SigmoidNormal(seed=1)((784, 64)).shape)
        (784, 64)

    Reference:
        Derived here (see ``gain_for``) by the variance argument of
        Glorot & Bengio, 2010, "Understanding the difficulty of training deep
        feedforward neural networks",
        https://proceedings.mlr.press/v9/glorot10a.html
    """

    _SCALE = 4.0
    _DISTRIBUTION: Distribution = "untruncated_normal"

    def __init__(self, seed: Seed = None, input_axes: Axes = None, output_axes: Axes = None):
        super().__init__(self._SCALE, "fan_in", self._DISTRIBUTION, seed, input_axes, output_axes)

    def _scheme_config(self) -> dict[str, Any]:
        return {}


class SigmoidUniform(SigmoidNormal):
    """The sigmoid initializer, uniform: W ~ U(-sqrt(12 / fan_in), +sqrt(12 / fan_in)).

        Var(W) = 4 / fan_in, as SigmoidNormal; the bound is sqrt(3) times the std.

    fan_in is in * prod(receptive_field) for a kernel laid out
    ``(*receptive_field, in, out)``.

    Args:
        seed: An int, None or a ``keras.random.SeedGenerator`` (see docs/seeds.md).
        input_axes: Input axes of the kernel, or None for the Keras layout.
        output_axes: Output axes of the kernel, or None.

    Example:
        >>> tuple(SigmoidUniform(seed=1)((3, 3, 8, 16)).shape)
        (3, 3, 8, 16)

    Reference:
        Derived here, as SigmoidNormal, by the variance argument of
        Glorot & Bengio, 2010, https://proceedings.mlr.press/v9/glorot10a.html
    """

    _DISTRIBUTION: Distribution = "uniform"


class XavierNormal(VarianceScaling):
    """PyTorch's ``xavier_normal_``: W ~ N(0, gain^2 * 2 / (fan_in + fan_out)).

        std = gain * sqrt(2 / (fan_in + fan_out)), untruncated
        (Keras's GlorotNormal is truncated; this one is not).

    Fans follow the kernel layout ``(*receptive_field, in, out)``.

    Args:
        gain: Std multiplier, a finite number > 0; see ``calculate_gain``.
        seed: An int, None or a ``keras.random.SeedGenerator`` (see docs/seeds.md).
        input_axes: Input axes of the kernel, or None for the Keras layout.
        output_axes: Output axes of the kernel, or None.

    Example:
        >>> init = XavierNormal(gain=calculate_gain("tanh"), seed=0)
        >>> tuple(init((128, 64)).shape)
        (128, 64)

    Reference:
        Glorot & Bengio, 2010, "Understanding the difficulty of training deep
        feedforward neural networks",
        https://proceedings.mlr.press/v9/glorot10a.html
    """

    _DISTRIBUTION: Distribution = "untruncated_normal"

    def __init__(
        self,
        gain: float = 1.0,
        seed: Seed = None,
        input_axes: Axes = None,
        output_axes: Axes = None,
    ) -> None:
        self.gain = check_positive("gain", gain)
        scale = self.gain * self.gain  # inf or 0.0 past float range, where ** would raise
        if not 0.0 < scale < math.inf:
            raise ValueError(
                "`gain` must square to a finite number > 0 (gain**2 is the variance scale). "
                f"Received: gain={gain!r}"
            )
        super().__init__(scale, "fan_avg", self._DISTRIBUTION, seed, input_axes, output_axes)

    def _scheme_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


class XavierUniform(XavierNormal):
    """PyTorch's ``xavier_uniform_``: W ~ U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)).

        Var(W) = gain^2 * 2 / (fan_in + fan_out)

    Fans follow the kernel layout ``(*receptive_field, in, out)``.

    Args:
        gain: Std multiplier, a finite number > 0; see ``calculate_gain``.
        seed: An int, None or a ``keras.random.SeedGenerator`` (see docs/seeds.md).
        input_axes: Input axes of the kernel, or None for the Keras layout.
        output_axes: Output axes of the kernel, or None.

    Example:
        >>> tuple(XavierUniform(seed=0)((128, 64)).shape)
        (128, 64)

    Reference:
        Glorot & Bengio, 2010, https://proceedings.mlr.press/v9/glorot10a.html
    """

    _DISTRIBUTION: Distribution = "uniform"


class KaimingNormal(VarianceScaling):
    """PyTorch's ``kaiming_normal_``: W ~ N(0, gain^2 / fan), untruncated.

        std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a),
        fan = fan_in or fan_out as ``mode`` says.

    With the defaults (leaky_relu, a=0) gain = sqrt(2): He's 2 / fan_in.
    Fans follow the kernel layout ``(*receptive_field, in, out)``.

    Args:
        a: The negative slope of leaky_relu, a finite number with a finite
            square (|a| < 1.34e154); must be 0 for every other nonlinearity.
        mode: "fan_in" (keeps the forward signal) or "fan_out" (keeps the
            backward gradient).
        nonlinearity: A name from ``calculate_gain``'s table.
        seed: An int, None or a ``keras.random.SeedGenerator`` (see docs/seeds.md).
        input_axes: Input axes of the kernel, or None for the Keras layout.
        output_axes: Output axes of the kernel, or None.

    Raises:
        ValueError: For an ``a`` whose value or square is not finite, a non-zero ``a`` with a
            nonlinearity other than leaky_relu, or an unknown ``mode`` or
            ``nonlinearity``.

    Example:
        >>> init = KaimingNormal(nonlinearity="relu", seed=0)
        >>> round(init.stddev((50, 10)), 6)
        0.2

    Reference:
        He et al., 2015, "Delving Deep into Rectifiers",
        https://arxiv.org/abs/1502.01852
    """

    _DISTRIBUTION: Distribution = "untruncated_normal"

    def __init__(
        self,
        a: float = 0.0,
        mode: KaimingMode = "fan_in",
        nonlinearity: Nonlinearity = "leaky_relu",
        seed: Seed = None,
        input_axes: Axes = None,
        output_axes: Axes = None,
    ) -> None:
        self.a = check_squarable("a", a)
        check_choice("mode", mode, get_args(KaimingMode))
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, get_args(Nonlinearity))
        if nonlinearity != "leaky_relu" and self.a != 0.0:
            raise ValueError(
                "`a` is the negative slope of 'leaky_relu' and must be 0 for "
                f"nonlinearity={nonlinearity!r}. Received: a={a!r}"
            )
        slope = self.a if nonlinearity == "leaky_relu" else None
        gain = calculate_gain(nonlinearity, slope)
        super().__init__(gain**2, mode, self._DISTRIBUTION, seed, input_axes, output_axes)

    def _scheme_config(self) -> dict[str, Any]:
        return {"a": self.a, "mode": self.mode, "nonlinearity": self.nonlinearity}


class KaimingUniform(KaimingNormal):
    """PyTorch's ``kaiming_uniform_``: W ~ U(-b, b), b = gain * sqrt(3 / fan).

        Var(W) = gain^2 / fan, gain = calculate_gain(nonlinearity, a).

    Porting from PyTorch: ``KaimingUniform(a=math.sqrt(5))`` is PyTorch's
    default weight init of ``nn.Linear`` and ``nn.Conv*``,
    U(-1 / sqrt(fan_in), 1 / sqrt(fan_in)) (gain sqrt(1/3)). Fans follow the
    kernel layout ``(*receptive_field, in, out)``, which matches PyTorch's fan
    of the transposed weight.

    Args:
        a: The negative slope of leaky_relu, a finite number with a finite
            square (|a| < 1.34e154); must be 0 for every other nonlinearity.
        mode: "fan_in" or "fan_out".
        nonlinearity: A name from ``calculate_gain``'s table.
        seed: An int, None or a ``keras.random.SeedGenerator`` (see docs/seeds.md).
        input_axes: Input axes of the kernel, or None for the Keras layout.
        output_axes: Output axes of the kernel, or None.

    Example:
        >>> torch_default = KaimingUniform(a=math.sqrt(5), seed=0)
        >>> round(math.sqrt(3) * torch_default.stddev((64, 10)), 6)  # the bound
        0.125

    Reference:
        He et al., 2015, https://arxiv.org/abs/1502.01852;
        PyTorch ``torch.nn.init.kaiming_uniform_``, ``nn.Linear.reset_parameters``
    """

    _DISTRIBUTION: Distribution = "uniform"


class ActivationScaled(VarianceScaling):
    """Var(W) = gain_for(activation)^2 / fan: the second-moment gain of any activation.

        std = g / sqrt(n),  g = gain_for(activation) = 1 / sqrt(E[f(z)^2]), z ~ N(0, 1),
        n = fan_in, fan_out or (fan_in + fan_out) / 2 as ``mode`` says.

    With mode "fan_in" a layer followed by ``activation`` keeps the second
    moment of its inputs: relu gives He's 2 / fan_in, linear and selu LeCun's
    1 / fan_in, gelu 2.352 / fan_in. Fans follow the kernel layout
    ``(*receptive_field, in, out)`` or ``input_axes``/``output_axes``, which
    EinsumDense and MultiHeadAttention pass as for any VarianceScaling.

    The config stores the activation by name: a Keras activation name or
    function ("gelu", ``keras.activations.gelu``), or a function registered
    with ``keras.saving.register_keras_serializable`` (stored as
    "package>name", so import its module before loading). Any other callable
    (a lambda) cannot be saved and is refused when the initializer is made;
    for its gain alone, call ``gain_for``.

    Args:
        activation: A name or function as above (default "gelu").
        mode: One of "fan_in", "fan_out", "fan_avg".
        distribution: One of "truncated_normal", "untruncated_normal",
            "uniform", read as VarianceScaling reads it.
        seed: An int, None or a ``keras.random.SeedGenerator`` (see docs/seeds.md).
        input_axes: Input axes of the kernel, or None for the Keras layout.
        output_axes: Output axes of the kernel, or None.

    Raises:
        ValueError: For an unknown or unstorable ``activation``, one whose
            second moment is 0 or infinite or that is not elementwise, or an
            unknown ``mode`` or ``distribution``.
        TypeError: If ``activation`` is neither a string nor a callable.

    Example:
        >>> init = ActivationScaled("relu", seed=0)
        >>> round(init.stddev((50, 10)), 6), init.get_config()["activation"]
        (0.2, 'relu')

    Reference:
        He et al., 2015, https://arxiv.org/abs/1502.01852;
        Klambauer et al., 2017, https://arxiv.org/abs/1706.02515
    """

    def __init__(
        self,
        activation: Any = "gelu",
        mode: Mode = "fan_in",
        distribution: Distribution = "untruncated_normal",
        seed: Seed = None,
        input_axes: Axes = None,
        output_axes: Axes = None,
    ) -> None:
        self.activation = activation_name(activation)
        gain = gain_for(self.activation)
        scale = gain * gain  # inf past float range, where ** would raise OverflowError
        if not scale < math.inf:
            raise ValueError(
                "`activation` must have a gain whose square is finite; its second moment "
                f"E[f(z)^2] is so small that gain**2 = {scale!r}. "
                f"Received: activation={self.activation!r}"
            )
        super().__init__(scale, mode, distribution, seed, input_axes, output_axes)

    def _scheme_config(self) -> dict[str, Any]:
        return {"activation": self.activation, "mode": self.mode, "distribution": self.distribution}
