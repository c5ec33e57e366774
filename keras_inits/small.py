"""Fixed-scale "small random" schemes: the norm before 2010, kept to show why not.

Their scale ignores the layer's fan: N(0, 0.1^2) or U(-0.1, 0.1) whatever the
width. In a wide layer the pre-activation std is 0.1 * sqrt(fan_in) times the
input's (too large past ~100 inputs), in a narrow one it shrinks; either way
the signal and its gradient drift exponentially with depth. Compare them
with the fan-scaled family in ``keras_inits.variance``.
"""

from typing import Any

from keras_inits import _sampling
from keras_inits._base import RandomInitializer, Seed
from keras_inits._validation import check_positive

__all__ = ["SmallNormal", "SmallUniform"]


class SmallNormal(RandomInitializer):
    """W ~ N(0, stddev^2), untruncated, independent of the fans (default 0.1).

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

    def _draw(self, shape: tuple[int, ...], dtype: str, seed: Any) -> Any:
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
