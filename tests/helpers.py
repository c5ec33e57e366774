"""Statistics helpers: tolerances derived from sampling error, never by eye."""

from __future__ import annotations

import contextlib
import math

import keras
import numpy as np
from scipy import stats

SIGMAS = 5.0  # every statistic must land within 5 standard errors
KS_ALPHA = 1e-4


def to_numpy(x) -> np.ndarray:
    """A float64 NumPy copy (bfloat16 has no NumPy dtype of its own)."""
    if keras.backend.standardize_dtype(x.dtype) == "bfloat16":
        x = keras.ops.cast(x, "float32")
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def assert_matches(values, dist: stats.rv_continuous, *, ks: bool = True) -> None:
    """Mean and std within 5 standard errors of ``dist``'s; KS test at 1e-4.

    The standard error of the sample std s of n values with std sigma and
    excess kurtosis k is sigma * sqrt((k + 2) / n) / 2, of the mean sigma / sqrt(n).
    """
    values = np.ravel(values)
    n = values.size
    assert n >= 100_000, f"too few samples for a 5-SE test: {n}"
    assert np.all(np.isfinite(values)), "non-finite values drawn"
    mean, var, _, kurtosis = (float(m) for m in dist.stats(moments="mvsk"))
    sigma = math.sqrt(var)
    mean_tol = SIGMAS * sigma / math.sqrt(n)
    std_tol = SIGMAS * sigma * math.sqrt((kurtosis + 2.0) / n) / 2.0
    assert abs(values.mean() - mean) <= mean_tol, (values.mean(), mean, mean_tol)
    assert abs(values.std() - sigma) <= std_tol, (values.std(), sigma, std_tol)
    if ks:
        p_value = stats.kstest(values, dist.cdf).pvalue
        assert p_value > KS_ALPHA, f"KS test rejects {dist.dist.name}: p={p_value:.2e}"


def std_tolerance(sigma: float, n: int, kurtosis: float = 0.0) -> float:
    """5 standard errors of the sample std (see ``assert_matches``)."""
    return SIGMAS * sigma * math.sqrt((kurtosis + 2.0) / n) / 2.0


def backend_has_float64() -> bool:
    """JAX gives float32 for float64 unless jax_enable_x64 is set."""
    return keras.backend.standardize_dtype(keras.ops.zeros((1,), "float64").dtype) == "float64"


@contextlib.contextmanager
def dtype_policy(name: str):
    """Layers built inside create their weights in ``name`` (Keras's global dtype policy).

    ``keras.config.set_floatx`` alone does not do it once a policy has been
    read or set (every later layer takes that policy's dtype).
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def assert_error(make, error_type: type[Exception], message: str, *, prefix: bool = False) -> None:
    """``make()`` raises ``error_type`` whose message is ``message`` (or starts with it)."""
    try:
        make()
    except error_type as error:
        text = str(error)
        assert text.startswith(message) if prefix else text == message, text
    else:
        raise AssertionError(f"no {error_type.__name__} raised; expected: {message}")


def import_keras_hub():
    """keras_hub, or a skip on a Keras older than keras-hub 0.32 supports.

    keras-hub 0.32 needs keras>=3.15, so `make test-compat` (the Keras floor)
    installs without it; with a newer Keras it must be there (the `hub` extra),
    and a missing one fails rather than skips.
    """
    import pytest

    if tuple(int(p) for p in keras.__version__.split(".")[:2]) < (3, 15):
        pytest.skip(f"keras-hub 0.32 needs keras>=3.15; this is keras {keras.__version__}")
    import keras_hub

    return keras_hub
