"""Gains: the factor by which a nonlinearity's weights' std is multiplied.

``gain`` multiplies the standard deviation; Keras's ``scale`` multiplies the
variance; so ``scale = gain**2`` everywhere in this package. Kaiming's
std = gain / sqrt(fan) is ``VarianceScaling(scale=gain**2)``.

Two sources of gains live here, and only here: ``calculate_gain``, PyTorch's
fixed table, and ``gain_for``, the gain that keeps the signal's second moment
through any elementwise activation, computed by quadrature.

The sigmoid initializer of this package, Var(W) = 4 / fan_in, is gain 2. It
is neither PyTorch's gain 1 for sigmoid (``calculate_gain("sigmoid")``) nor
the "4 times the Glorot bound" rule, which is 16 times Glorot's variance.
This module never imports a backend: ``gain_for`` evaluates activations with
``keras.ops`` on whichever backend Keras runs.
"""

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any, Literal, get_args

import keras
import numpy as np

from keras_inits._validation import check_choice, check_squarable, did_you_mean

__all__ = ["Nonlinearity", "activation_name", "calculate_gain", "gain_for"]

Nonlinearity = Literal[
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
]

# PyTorch's table (torch.nn.init.calculate_gain). tanh's 5/3 and selu's 3/4
# are PyTorch's empirical choices; relu's sqrt(2) restores the half of the
# second moment that relu zeroes (He et al., 2015).
_FIXED_GAINS = {
    "linear": 1.0,
    "conv1d": 1.0,
    "conv2d": 1.0,
    "conv3d": 1.0,
    "conv_transpose1d": 1.0,
    "conv_transpose2d": 1.0,
    "conv_transpose3d": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "selu": 3.0 / 4.0,
}
_DEFAULT_SLOPE = 0.01  # leaky_relu's negative slope when none is given


def calculate_gain(nonlinearity: Nonlinearity, param: float | None = None) -> float:
    """Returns PyTorch's recommended gain for a nonlinearity.

    gain(linear, conv*, sigmoid) = 1, gain(tanh) = 5/3, gain(relu) = sqrt(2),
    gain(leaky_relu) = sqrt(2 / (1 + slope^2)) with slope = param (default
    0.01), gain(selu) = 3/4. Use it as ``std = gain / sqrt(fan)``, that is
    Keras's ``scale = gain**2``.

    Args:
        nonlinearity: One of the names above.
        param: The negative slope of ``leaky_relu``; must be None for every
            other nonlinearity (it would be ignored there).

    Raises:
        ValueError: If ``nonlinearity`` is unknown, ``param`` or its square is
            not finite, or ``param`` is given for a nonlinearity without a
            parameter.
        TypeError: If ``param`` is not a real number (bool included).

    Example:
        >>> round(calculate_gain("relu") ** 2, 6)
        2.0
        >>> round(calculate_gain("leaky_relu", 0.2), 6)
        1.38675

    Reference:
        PyTorch ``torch.nn.init.calculate_gain``;
        He et al., 2015, https://arxiv.org/abs/1502.01852
    """
    check_choice("nonlinearity", nonlinearity, get_args(Nonlinearity))
    if nonlinearity == "leaky_relu":
        slope = _DEFAULT_SLOPE if param is None else check_squarable("param", param)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if param is not None:
        raise ValueError(
            "`param` is the negative slope of 'leaky_relu' and must be None for "
            f"nonlinearity={nonlinearity!r}. Received: param={param!r}"
        )
    return _FIXED_GAINS[nonlinearity]


# E[f(z)^2] = integral of f(z)^2 phi(z) dz, phi the N(0, 1) density, by
# composite Gauss-Legendre quadrature: _NODES nodes on each panel of width
# _PANEL over [-_REACH, _REACH]. Gauss-Hermite over the whole line converges
# only algebraically when f has a kink (relu at 0); here every panel edge is a
# multiple of 1/2, which is where Keras's piecewise activations break (relu,
# elu, selu, leaky_relu at 0, hard_shrink and soft_shrink at +-0.5, hard_tanh
# and sparse_sigmoid at +-1, hard_sigmoid and hard_silu at +-3, relu6 at 0 and
# 6), so each panel integrates a smooth function and the rule is exact to
# rounding for them. N(0, 1) puts mass 2e-58 beyond |z| = 16, and even
# exp(z)^2 phi(z) = e^2 phi(z - 2) has negligible mass there.
_PANEL = 0.5
_REACH = 16.0
_NODES = 20


@functools.cache
def _quadrature() -> tuple[np.ndarray, np.ndarray]:
    """Nodes z and weights w with sum(w * g(z)) = E[g(z)], z ~ N(0, 1)."""
    nodes, weights = np.polynomial.legendre.leggauss(_NODES)
    left = np.arange(-_REACH, _REACH, _PANEL)
    z = (left[:, None] + (nodes + 1.0) * (_PANEL / 2.0)).ravel()
    density = np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)
    return z, np.tile(weights, left.size) * (_PANEL / 2.0) * density


def _keras_activation_names() -> list[str]:
    return sorted(
        name
        for name in dir(keras.activations)
        if not name.startswith("_") and name not in ("deserialize", "get", "serialize")
    )


def _lookup(name: str) -> Callable[..., Any] | None:
    """The function a stored activation name means: a Keras activation or a registered one."""
    if name in _keras_activation_names():
        return keras.activations.get(name)
    registered = keras.saving.get_registered_object(name)
    return registered if callable(registered) else None


def _resolve(activation: Any) -> tuple[Callable[..., Any], str | None]:
    """(function, its storable name or None) for a name or a callable."""
    if isinstance(activation, str):
        found = _lookup(activation)
        if found is None:
            hint = did_you_mean(activation, _keras_activation_names())
            raise ValueError(
                f"Unknown activation.{hint} keras.activations lists Keras's; a custom one "
                "needs keras.saving.register_keras_serializable. "
                f"Received: activation={activation!r}"
            )
        return found, activation
    if not callable(activation):
        raise TypeError(
            "`activation` must be a Keras activation name or a callable. "
            f"Received: activation={activation!r}"
        )
    name = getattr(activation, "__name__", None)  # a functools.partial has none
    if name is None:
        return activation, None
    for candidate in (name, keras.saving.get_registered_name(activation)):
        if isinstance(candidate, str) and _lookup(candidate) is activation:
            return activation, candidate  # type: ignore[return-value]  # `is` narrowed it
    return activation, None


def activation_name(activation: Any) -> str:
    """The name under which a config can store ``activation``.

    A name is returned as given (once it resolves); a Keras activation
    function gives its Keras name, a function registered with
    ``keras.saving.register_keras_serializable`` its registered name
    ("package>name").

    Raises:
        ValueError: For an unknown name, or a callable that has no name Keras
            can load back (a lambda, an unregistered function).
        TypeError: If ``activation`` is neither a string nor a callable.

    Example:
        >>> activation_name(keras.activations.silu), activation_name("swish")
        ('silu', 'swish')
    """
    function, name = _resolve(activation)
    if name is None:
        raise ValueError(
            "`activation` must be storable in a config: a keras.activations name or "
            "function, or a function registered with "
            "keras.saving.register_keras_serializable. An unregistered callable "
            f"cannot be saved and loaded. Received: activation={function!r}"
        )
    return name


def _evaluate(
    function: Callable[..., Any], z: np.ndarray, label: Any, quiet: bool = False
) -> np.ndarray:
    """``function(z)`` as float64 NumPy: called on NumPy float64 first, else on a tensor."""
    with warnings.catch_warnings():
        if quiet:  # a repeat call: its warnings were shown by the first
            warnings.simplefilter("ignore")
        # JAX without x64 computes in float32 and says so; float32 is accurate enough here.
        warnings.filterwarnings("ignore", message="Explicitly requested dtype float64")
        try:
            result = function(z)
        except Exception:  # not NumPy-capable (a torch function, say): try a tensor
            try:
                result = function(keras.ops.convert_to_tensor(z))
            except Exception as error:
                raise ValueError(
                    "`activation` must take one float tensor and return one of the same "
                    f"shape; calling it failed with {type(error).__name__}: {error}. "
                    f"Received: activation={label!r}"
                ) from error
        if not isinstance(result, np.ndarray):
            result = keras.ops.convert_to_numpy(result)
    values = np.asarray(result, dtype=np.float64)
    if values.shape != z.shape:
        raise ValueError(
            f"`activation` must act elementwise: given shape {z.shape} it returned shape "
            f"{values.shape}. Received: activation={label!r}"
        )
    return values


def _second_moment(function: Callable[..., Any], label: Any) -> float:
    """E[f(z)^2], z ~ N(0, 1); refuses non-elementwise functions."""
    z, weights = _quadrature()
    values = _evaluate(function, z, label)
    # An elementwise f gives the same values on a column; softmax (and anything
    # that mixes its last axis) does not.
    column = _evaluate(function, z[:, None], label, quiet=True)[:, 0]
    if not np.allclose(column, values, rtol=1e-5, atol=1e-6, equal_nan=True):
        raise ValueError(
            "`activation` must act elementwise: its values on a column differ from those "
            f"on a vector (it mixes its last axis). Received: activation={label!r}"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        moment = float(np.sum(weights * values**2))
    if not math.isfinite(moment) or moment <= 0.0:
        raise ValueError(
            f"`activation` must have a finite, nonzero second moment E[f(z)^2] for "
            f"z ~ N(0, 1); it is {moment!r}. Received: activation={label!r}"
        )
    return moment


@functools.cache
def _gain_for_keras_name(name: str) -> float:
    return 1.0 / math.sqrt(_second_moment(keras.activations.get(name), name))


def gain_for(activation: str | Callable[..., Any]) -> float:
    """The gain that keeps the second moment through ``activation``: 1 / sqrt(E[f(z)^2]).

        g = 1 / sqrt(E[f(z)^2]),  z ~ N(0, 1)

    If a layer's pre-activations are N(0, 1), the next layer's weights with
    Var(W) = g^2 / fan_in give pre-activations whose second moment is again 1.
    g = sqrt(2) for relu (it zeroes half of E[z^2] = 1), 1 for linear, 1 for
    selu (its fixed point: E[selu(z)^2] = 1 for standard-normal z) and
    sqrt(2 / (1 + a^2)) for a leaky relu of slope a (Keras's default a is
    0.2, PyTorch's 0.01). gelu gives 1.5335, silu 1.6765, tanh 1.5925 (PyTorch's
    table says 5/3, an empirical choice).

    The sigmoid gives g = 1.8462 (E[sigmoid(z)^2] = 0.29338, scale g^2 =
    3.4086): close to the gain 2 (Var = 4 / fan_in) of ``SigmoidNormal``. The
    sigmoid is not zero-mean, and its second moment is mostly its mean
    squared (0.25 of the 0.293); keeping only the fluctuation, Var(sigmoid(z)) =
    0.0434, would take gain 4.80, and the slope argument (sigmoid'(0) = 1/4,
    so the fluctuation's std shrinks by 4) gives gain 4, scale 16: the
    "4 times the Glorot bound" rule. So the seeds' factor 4 in variance is the
    second-moment gain rounded (3.41 -> 4), not the slope rule.

    E[f(z)^2] is computed by composite Gauss-Legendre quadrature on panels
    of width 1/2 over [-16, 16] whose edges hold every kink of Keras's
    piecewise activations, so relu's sqrt(2) is exact to rounding. The
    activation is called on a NumPy float64 array (pure-NumPy functions stay
    in float64), or on a backend tensor if it refuses NumPy; JAX without x64
    evaluates Keras activations in float32, accurate to about 1e-7. Gains of
    Keras activation names are cached.

    Args:
        activation: A Keras activation name ("relu", "gelu", "silu", "selu",
            "tanh", "sigmoid", "linear", "elu", ...), a name registered with
            ``keras.saving.register_keras_serializable``, a Keras activation
            function or any elementwise callable on float arrays or tensors.

    Raises:
        ValueError: For an unknown name (with the closest Keras name), a
            callable that fails on a float array, is not elementwise
            ("softmax") or has a zero or non-finite second moment.
        TypeError: If ``activation`` is neither a string nor a callable.

    Example:
        >>> round(gain_for("relu") ** 2, 6), round(gain_for("linear"), 6)
        (2.0, 1.0)
        >>> round(gain_for("sigmoid"), 4)
        1.8462

    Reference:
        He et al., 2015, https://arxiv.org/abs/1502.01852 (the second-moment
        argument); Klambauer et al., 2017, "Self-Normalizing Neural Networks",
        https://arxiv.org/abs/1706.02515 (selu's fixed point)
    """
    function, name = _resolve(activation)
    if name is not None and name in _keras_activation_names():
        return _gain_for_keras_name(name)
    return 1.0 / math.sqrt(_second_moment(function, activation))
