"""Same distribution as the PyTorch and Keras schemes they stand in for.

Two-sample KS tests at alpha = 1e-4 between our draws and the reference
library's on the same shape (PyTorch weights are (out, in), Keras kernels
(in, out): the fans agree).
"""

import math

import keras
import numpy as np
import pytest
from helpers import KS_ALPHA, to_numpy
from scipy import stats

import keras_inits as ki

IN, OUT = 384, 320  # 122880 values, fan_in != fan_out


def assert_same_distribution(ours, reference):
    ours, reference = np.ravel(ours), np.ravel(reference)
    assert ours.size >= 100_000 and reference.size >= 100_000
    p_value = stats.ks_2samp(ours, reference).pvalue
    assert p_value > KS_ALPHA, p_value


# (ours, torch.nn.init function name, its keyword arguments)
TORCH_CASES = {
    "linear_default": (
        ki.KaimingUniform(a=math.sqrt(5), seed=1),
        "kaiming_uniform_",
        {"a": math.sqrt(5)},
    ),
    "xavier_normal": (ki.XavierNormal(gain=1.3, seed=2), "xavier_normal_", {"gain": 1.3}),
    "xavier_uniform": (ki.XavierUniform(seed=3), "xavier_uniform_", {}),
    "kaiming_normal_fan_out": (
        ki.KaimingNormal(mode="fan_out", nonlinearity="relu", seed=4),
        "kaiming_normal_",
        {"mode": "fan_out", "nonlinearity": "relu"},
    ),
    "kaiming_uniform_leaky": (ki.KaimingUniform(a=0.2, seed=5), "kaiming_uniform_", {"a": 0.2}),
}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_matches_torch_nn_init(case):
    torch = pytest.importorskip("torch")
    ours, function, kwargs = TORCH_CASES[case]
    torch.manual_seed(0)
    weight = torch.empty(OUT, IN)
    getattr(torch.nn.init, function)(weight, **kwargs)
    assert_same_distribution(to_numpy(ours((IN, OUT))), weight.detach().numpy().T)


def test_torch_linear_default_bound():
    torch = pytest.importorskip("torch")
    linear = torch.nn.Linear(IN, OUT)
    bound = 1 / math.sqrt(IN)
    ours = to_numpy(ki.KaimingUniform(a=math.sqrt(5), seed=0)((IN, OUT)))
    assert np.abs(ours).max() <= bound
    assert_same_distribution(ours, linear.weight.detach().numpy().T)


KERAS_CASES = {
    "glorot_uniform": (ki.XavierUniform(seed=6), keras.initializers.GlorotUniform(seed=60)),
    "variance_scaling_truncated": (
        ki.VarianceScaling(scale=2.0, mode="fan_out", seed=7),
        keras.initializers.VarianceScaling(scale=2.0, mode="fan_out", seed=70),
    ),
    "variance_scaling_untruncated": (
        ki.VarianceScaling(scale=3.0, distribution="untruncated_normal", seed=8),
        keras.initializers.VarianceScaling(scale=3.0, distribution="untruncated_normal", seed=80),
    ),
}


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_matches_keras_builtin(case):
    ours, theirs = KERAS_CASES[case]
    assert_same_distribution(to_numpy(ours((IN, OUT))), to_numpy(theirs((IN, OUT))))
