"""Models that use our initializers save and load in every format.

Each format is loaded in a fresh Python process, as a user would load the
file: predictions must be identical and every initializer the same class
with an equal config.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import saving_roundtrip
from helpers import to_numpy

import keras_inits as ki

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def original():
    keras.utils.set_random_seed(0)
    model = saving_roundtrip.build_model()
    return model, np.asarray(model.predict(saving_roundtrip.inputs(), verbose=0))


@pytest.fixture(scope="module")
def reloaded(original, tmp_path_factory):
    model, _ = original
    directory = str(tmp_path_factory.mktemp("saved"))
    saving_roundtrip.save_all(model, directory)
    completed = subprocess.run(
        [sys.executable, os.path.join(HERE, "saving_roundtrip.py"), directory],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": keras.backend.backend()},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


FILE_FORMATS = ["keras", "keras_safe_mode", "h5", "json"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_predictions_identical_after_loading(original, reloaded, fmt):
    _, expected = original
    np.testing.assert_array_equal(np.asarray(reloaded[fmt]["predictions"], "float32"), expected)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_initializer_configs_identical_after_loading(original, reloaded, fmt):
    model, _ = original
    expected = saving_roundtrip.initializer_configs(model)
    ours = [
        v
        for layer in expected.values()
        for v in layer.values()
        if str(v.get("registered_name", "")).startswith("keras_inits>")
    ]
    assert len(ours) >= 10, "the model should use our initializers throughout"
    assert reloaded[fmt]["configs"] == expected


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="SavedModel is TensorFlow's")
def test_savedmodel_export_serves_identical_predictions(original, reloaded):
    _, expected = original
    np.testing.assert_allclose(
        np.asarray(reloaded["savedmodel"]["predictions"], "float32"), expected, rtol=0, atol=1e-6
    )


@pytest.mark.slow
def test_loading_without_import_fails_loudly(reloaded):
    # Why the README says "import keras_inits before load_model".
    message = reloaded["without_import"]
    assert message != "loaded"
    assert "Could not interpret initializer identifier" in message
    assert "'registered_name': 'keras_inits>" in message


@pytest.mark.slow
def test_unseeded_build_is_reproducible_across_processes(original, reloaded):
    # Most initializers in the model are unseeded; set_random_seed(0) fixes them all.
    _, expected = original
    np.testing.assert_array_equal(
        np.asarray(reloaded["rebuilt"]["predictions"], "float32"), expected
    )


@pytest.mark.slow
def test_seeded_draw_is_the_same_in_every_process(reloaded):
    here = to_numpy(ki.SigmoidNormal(seed=3)((4, 4)))
    np.testing.assert_array_equal(np.asarray(reloaded["seeded_draw"], dtype=here.dtype), here)


def test_clone_model_keeps_initializers_and_predictions(original):
    model, expected = original
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(
        np.asarray(clone.predict(saving_roundtrip.inputs(), verbose=0)), expected
    )
    assert saving_roundtrip.initializer_configs(clone) == saving_roundtrip.initializer_configs(
        model
    )
