"""Fixed-scale schemes, whose scale ignores the layer's fan.

``SmallNormal`` and ``SmallUniform`` are the "small random" norm before
2010, kept to show why not: N(0, 0.1^2) or U(-0.1, 0.1) whatever the width.
In a wide layer the pre-activation std is 0.1 * sqrt(fan_in) times the
input's (too large past ~100 inputs), in a narrow one it shrinks; either way
the signal and its gradient drift exponentially with depth. Compare them
with the fan-scaled family in ``keras_inits.variance``.

``BoundedNormal`` is JAX's and Flax's ``truncated_normal(stddev, lower,
upper)``, which Flax models still use at a fixed 0.02 (transformer
embeddings and heads, where a fixed std is chosen for the model's width).
"""

import math
from typing import Any

from keras_inits import _sampling
from keras_inits._base import RandomInitializer, Seed
from keras_inits._validation import check_finite, check_positive

__all__ = ["BoundedNormal", "SmallNormal", "SmallUniform"]


class SmallNormal(RandomInitializer):
    """W ~ N(0, stddev^2), untruncated, independent of the fans (default 0.1).

    complex64/complex128: JAX's complex normal, real and imaginary parts
    independent N(0, stddev^2 / 2), so E|W|^2 = stddev^2.

    Args:
        stddev: The standard deviation, a finite number > 0.
        seed: An int, None or a ``keras.random.SeedGenerator`` (see docs/seeds.md).

    Raises:
        ValueError: If ``stddev`` is not finite or not > 0.
        TypeError: If ``stddev`` is not a real number (bool included).

    Example:
        >>> tuple(SmallNormal(seed=0)((300, 200)).shape)
        (300, 200)

    Reference:
        Glorot & Bengio, 2010, section 4.2 (the heuristic it replaced),
        https://proceedings.mlr.press/v9/glorot10a.html
    """

    def __init__(self, stddev: float = 0.1, seed: Seed = None) -> None:
        self.stddev = check_positive("stddev", stddev)
        super().__init__(seed=seed)

    COMPLEX = True

    def _draw(self, shape: tuple[int, ...], dtype: str, seed: Any) -> Any:
        if dtype.startswith("complex"):  # JAX's complex normal: E|z|^2 = stddev^2
            return _sampling.complex_scaled("untruncated_normal", shape, self.stddev, dtype, seed)
        return _sampling.normal(shape, self.stddev, dtype, seed)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stddev": self.stddev}


class SmallUniform(RandomInitializer):
    """W ~ U(-limit, limit), independent of the fans (default 0.1).

        Var(W) = limit^2 / 3

    Args:
        limit: The bound, a finite number > 0.
        seed: An int, None or a ``keras.random.SeedGenerator`` (see docs/seeds.md).

    Raises:
        ValueError: If ``limit`` is not finite or not > 0.
        TypeError: If ``limit`` is not a real number (bool included).

    Example:
        >>> tuple(SmallUniform(limit=0.05, seed=0)((300, 200)).shape)
        (300, 200)

    Reference:
        Glorot & Bengio, 2010, section 4.2 (the heuristic it replaced),
        https://proceedings.mlr.press/v9/glorot10a.html
    """

    def __init__(self, limit: float = 0.1, seed: Seed = None) -> None:
        self.limit = check_positive("limit", limit)
        super().__init__(seed=seed)

    def _draw(self, shape: tuple[int, ...], dtype: str, seed: Any) -> Any:
        return _sampling.uniform(shape, self.limit, dtype, seed)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "limit": self.limit}


class BoundedNormal(RandomInitializer):
    """JAX's ``truncated_normal``: W = stddev * z, z ~ N(0, 1) truncated to [lower, upper].

    ``stddev`` is the std of the normal before the cut, as in JAX (no
    correction): with the default bounds +-2 the std of W is
    0.8796 * stddev, and every value lies in [lower * stddev, upper * stddev].
    Mean of W: stddev * (phi(lower) - phi(upper)) / (Phi(upper) - Phi(lower)).

    Independent of the fans: JAX's ``truncated_normal(0.02)``, Flax's
    ``nnx.initializers.truncated_normal(stddev=0.02)``. For a truncated
    normal whose std after the cut is fan-scaled, use ``VarianceScaling``.
    The bounds are free (asymmetric, one-sided); the draw is JAX's inverse
    CDF, so bounds far in one tail (both beyond 5, say) lose resolution in
    float32, as in JAX.

    Args:
        stddev: The std of the untruncated normal, a finite number > 0 (default 0.01, JAX's).
        lower: The lower bound in units of ``stddev``, a finite number (default -2).
        upper: The upper bound in units of ``stddev``, a finite number > ``lower``
            (default 2).
        seed: An int, None or a ``keras.random.SeedGenerator`` (see docs/seeds.md).

    Raises:
        ValueError: If ``stddev`` is not finite and > 0, a bound is not
            finite, or ``upper`` <= ``lower``.
        TypeError: If an argument is not a real number (bool included).

    Example:
        >>> import numpy as np, keras
        >>> w = keras.ops.convert_to_numpy(BoundedNormal(0.02, lower=0.0, seed=0)((300, 200)))
        >>> bool(w.min() >= 0.0 and w.max() <= 0.04)
        True

    Reference:
        JAX ``jax.nn.initializers.truncated_normal``;
        Flax ``flax.nnx.initializers.truncated_normal``
    """

    def __init__(
        self, stddev: float = 0.01, lower: float = -2.0, upper: float = 2.0, seed: Seed = None
    ) -> None:
        self.stddev = check_positive("stddev", stddev)
        self.lower = check_finite("lower", lower)
        self.upper = check_finite("upper", upper)
        if not self.upper > self.lower:
            raise ValueError(
                f"`upper` must be greater than `lower` ({self.lower!r}). Received: upper={upper!r}"
            )
        if math.erf(self.upper / math.sqrt(2.0)) <= math.erf(self.lower / math.sqrt(2.0)):
            raise ValueError(
                "`lower` and `upper` must bound an interval a normal reaches in float64 "
                f"(both lie beyond 8.3 on one side). Received: lower={lower!r}, upper={upper!r}"
            )
        super().__init__(seed=seed)

    def _draw(self, shape: tuple[int, ...], dtype: str, seed: Any) -> Any:
        return _sampling.bounded_normal(shape, self.lower, self.upper, self.stddev, dtype, seed)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "stddev": self.stddev,
            "lower": self.lower,
            "upper": self.upper,
        }
