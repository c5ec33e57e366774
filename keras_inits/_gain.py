"""Gains: the factor by which a nonlinearity's weights' std is multiplied.

``gain`` multiplies the standard deviation; Keras's ``scale`` multiplies the
variance; so ``scale = gain**2`` everywhere in this package. Kaiming's
std = gain / sqrt(fan) is ``VarianceScaling(scale=gain**2)``.

The sigmoid initializer of this package, Var(W) = 4 / fan_in, is gain 2. It
is neither PyTorch's gain 1 for sigmoid (``calculate_gain("sigmoid")``) nor
the "4 times the Glorot bound" rule, which is 16 times Glorot's variance.
This module is pure Python: it never imports a backend.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

from keras_inits._validation import check_choice, check_finite

__all__ = ["Nonlinearity", "calculate_gain"]

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
        ValueError: If ``nonlinearity`` is unknown, ``param`` is not finite or
            is given for a nonlinearity without a parameter.
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
        slope = _DEFAULT_SLOPE if param is None else check_finite("param", param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if param is not None:
        raise ValueError(
            "`param` is the negative slope of 'leaky_relu' and must be None for "
            f"nonlinearity={nonlinearity!r}. Received: param={param!r}"
        )
    return _FIXED_GAINS[nonlinearity]
