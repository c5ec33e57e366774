"""``ResidualScale``: the one scalar that SkipInit and ReZero put on a residual branch.

SkipInit (De & Smith, 2020) and ReZero (Bachlechner et al., 2020) compute
x + alpha * f(x) with a learned scalar alpha that starts at 0, so every
block is the identity at initialization. A Keras graph has no such scalar
unless the user adds one: this is that layer, y = alpha * x, put at the end
of each branch before the sum. ``residual(model, "rezero")`` and
``"skipinit"`` find it (as the branch's scale after its last kernel) and set
it to 0. The one table of layer kinds (``_layouts``) knows its weight.

This module defines a layer; it never changes a model.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_inits._resolve import PACKAGE

__all__ = ["ResidualScale"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResidualScale(keras.layers.Layer):
    """Multiplies its input by one learned scalar: y = alpha * x (SkipInit's and ReZero's alpha).

    Put it at the end of each residual branch, before the sum:
    x + ResidualScale()(f(x)). alpha starts at ``initializer`` (zeros: every
    block is the identity at initialization, as both papers start).
    ``residual(model, "rezero")`` or ``"skipinit"`` later sets every
    branch's alpha to 0 again, after any other re-initialization.

    Args:
        initializer: The initializer of alpha (a name, an instance, or a
            callable), zeros by default. A small value, as SkipInit allows,
            is ``keras.initializers.Constant(0.1)``.
        **kwargs: The usual layer arguments (``name``, ``dtype``, ...).

    Example:
        >>> import keras
        >>> layer = ResidualScale()
        >>> y = layer(keras.ops.ones((2, 3)))
        >>> tuple(layer.alpha.shape), float(keras.ops.sum(y))
        ((), 0.0)

    Reference:
        De & Smith, 2020, "Batch Normalization Biases Residual Blocks Towards
        the Identity Function in Deep Networks", https://arxiv.org/abs/2002.10444;
        Bachlechner et al., 2020, "ReZero is All You Need",
        https://arxiv.org/abs/2003.04887
    """

    def __init__(self, initializer: Any = "zeros", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer)
        self.alpha: Any = None

    def build(self, input_shape: Any) -> None:
        self.alpha = self.add_weight(name="alpha", shape=(), initializer=self.initializer)

    def call(self, inputs: Any) -> Any:
        return keras.ops.multiply(keras.ops.cast(self.alpha, inputs.dtype), inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config["initializer"] = keras.initializers.serialize(self.initializer)
        return config
