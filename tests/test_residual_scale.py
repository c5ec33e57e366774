"""ResidualScale and the schemes that zero it: SkipInit's and ReZero's alpha."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import assert_error, to_numpy

import keras_inits as ki
from keras_inits.model import ResidualScale, layout

L = keras.layers


def _rezero_mlp(depth, width=16, *, scaled=True, initializer="ones"):
    """x_{i+1} = x_i + alpha_i W2 relu(W1 x_i), alpha a ResidualScale (or none)."""
    x = keras.Input((width,))
    h = x
    for _ in range(depth):
        branch = L.Dense(width)(L.Dense(width, activation="relu")(h))
        if scaled:
            branch = ResidualScale(initializer=initializer)(branch)
        h = h + branch
    return keras.Model(x, h)


def _values(model):
    return [to_numpy(v) for v in model.weights]


def test_the_layer_multiplies_by_one_scalar_starting_at_zero():
    layer = ResidualScale()
    x = np.arange(6, dtype="float32").reshape(2, 3)
    assert not to_numpy(layer(x)).any()
    assert tuple(layer.alpha.shape) == ()
    layer.alpha.assign(0.5)
    np.testing.assert_allclose(to_numpy(layer(x)), 0.5 * x)
    small = ResidualScale(initializer=keras.initializers.Constant(0.1))
    np.testing.assert_allclose(to_numpy(small(x)), 0.1 * x, rtol=1e-6)


def test_the_table_knows_its_weight():
    layer = ResidualScale()
    layer.build((None, 3))
    found = layout(layer)
    assert found is not None
    assert [(w.attribute, w.initializer, w.kind) for w in found.weights] == [
        ("alpha", "initializer", "scale")
    ]
    assert found.weights[0].axes == () and found.pre_activation is None


def test_branches_find_it_as_the_branch_scale():
    model = _rezero_mlp(3)
    scales = [layer for layer in model.layers if isinstance(layer, ResidualScale)]
    branches = ki.residual_branches(model)
    assert [b.norm for b in branches] == [layer.alpha.path for layer in scales]
    assert all(len(b.kernels) == 2 for b in branches)


@pytest.mark.parametrize("scheme", ["rezero", "skipinit"])
def test_rezero_and_skipinit_zero_every_alpha_only(scheme):
    model = _rezero_mlp(4)
    scales = [layer for layer in model.layers if isinstance(layer, ResidualScale)]
    kernels = {v.path: to_numpy(v) for v in model.weights if "alpha" not in v.path}
    assert all(float(to_numpy(layer.alpha)) == 1.0 for layer in scales)
    report = ki.residual(model, scheme, seed=0)
    assert [c.path for c in report] == [layer.alpha.path for layer in scales]
    assert [c.branch for c in report] == [0, 1, 2, 3]
    assert all(float(to_numpy(layer.alpha)) == 0.0 for layer in scales)
    assert all(
        np.array_equal(to_numpy(v), kernels[v.path]) for v in model.weights if v.path in kernels
    )
    x = np.random.default_rng(0).normal(size=(5, 16)).astype("float32")
    np.testing.assert_array_equal(to_numpy(model(x)), x)  # every block is the identity


@pytest.mark.parametrize("scheme", ["rezero", "skipinit"])
def test_a_branch_without_the_layer_is_refused_and_nothing_changes(scheme):
    x = keras.Input((8,))
    h = x + ResidualScale(initializer="ones")(L.Dense(8)(x))
    h = h + L.Dense(8)(h)  # no ResidualScale
    model = keras.Model(x, h)
    before = _values(model)
    branch = ki.residual_branches(model)[1]
    assert_error(
        lambda: ki.residual(model, scheme),
        ValueError,
        f"`scheme` {scheme!r} sets the scalar alpha of x + alpha * f(x) to 0, but branch 1 "
        f"(summed at {branch.merge!r}, ending at {branch.ends[0]}) has no "
        "keras_inits.model.ResidualScale after its last kernel: add one at the end of each "
        f"branch, x + ResidualScale()(f(x)), before the sum. Received: scheme={scheme!r}",
    )
    assert all(np.array_equal(a, to_numpy(v)) for a, v in zip(before, model.weights, strict=True))


def test_a_post_ln_sum_is_allowed():
    x = keras.Input((8,))
    model = keras.Model(x, L.LayerNormalization()(x + ResidualScale("ones")(L.Dense(8)(x))))
    report = ki.residual(model, "rezero")
    assert len(report) == 1 and float(to_numpy(model.layers[-2].alpha)) == 0.0


def test_a_model_with_it_saves_and_loads(tmp_path):
    model = _rezero_mlp(2, initializer=keras.initializers.Constant(0.25))
    path = tmp_path / "rezero.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    scales = [layer for layer in loaded.layers if isinstance(layer, ResidualScale)]
    assert len(scales) == 2
    assert all(float(to_numpy(layer.alpha)) == 0.25 for layer in scales)
    assert isinstance(scales[0].initializer, keras.initializers.Constant)
    x = np.ones((2, 16), "float32")
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(model(x)), rtol=1e-6)


@pytest.mark.slow
def test_a_fresh_process_loads_it(tmp_path):
    model = _rezero_mlp(2)
    ki.residual(model, "rezero")
    path = tmp_path / "rezero.keras"
    model.save(path)
    code = (
        "import keras, keras_inits\n"
        f"m = keras.models.load_model({str(path)!r})\n"
        "print(sorted(type(l).__name__ for l in m.layers if 'alpha' in str(l.weights)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['ResidualScale', 'ResidualScale']"


def test_branches_given_may_close_with_the_scale():
    model = _rezero_mlp(2)
    dense = [layer for layer in model.layers if isinstance(layer, L.Dense)]
    scales = [layer for layer in model.layers if isinstance(layer, ResidualScale)]
    given = [[dense[0], dense[1], scales[0]], [dense[2], dense[3]]]
    records = ki.residual_branches(model, branches=given)
    assert records[0].norm == scales[0].alpha.path and records[0].ends == (dense[1].kernel.path,)
    assert records[1].norm is None
    before = _values(model)
    assert_error(
        lambda: ki.residual(model, "rezero", branches=given),
        ValueError,
        "`scheme` 'rezero' sets the scalar alpha of x + alpha * f(x) to 0, but branch 1 "
        f"(given by `branches=`, ending at {dense[3].kernel.path}) has no",
        prefix=True,
    )
    assert all(np.array_equal(a, to_numpy(v)) for a, v in zip(before, model.weights, strict=True))
    given[1].append(scales[1])
    report = ki.residual(model, "skipinit", branches=given)
    assert [c.path for c in report] == [layer.alpha.path for layer in scales]
    assert all(float(to_numpy(layer.alpha)) == 0.0 for layer in scales)
