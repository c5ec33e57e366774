"""Portable files: ``portable(model)`` saves a file that loads without keras_inits."""

import json
import math
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from helpers import std_tolerance, to_numpy
from scipy import stats

import keras_inits as ki
from keras_inits._registry import CLASSES, string_name

# One instance per class with a Keras equivalent, with arguments off the defaults.
EQUIVALENT = {
    ki.VarianceScaling: lambda: ki.VarianceScaling(2.0, "fan_avg", "truncated_normal", seed=1),
    ki.SigmoidNormal: lambda: ki.SigmoidNormal(seed=2),
    ki.SigmoidUniform: lambda: ki.SigmoidUniform(seed=3),
    ki.XavierNormal: lambda: ki.XavierNormal(gain=2.0, seed=4),
    ki.XavierUniform: lambda: ki.XavierUniform(gain=0.5, seed=5),
    ki.KaimingNormal: lambda: ki.KaimingNormal(a=0.1, mode="fan_out", seed=6),
    ki.KaimingUniform: lambda: ki.KaimingUniform(a=math.sqrt(5), seed=7),
    ki.SmallNormal: lambda: ki.SmallNormal(stddev=0.05, seed=8),
    ki.SmallUniform: lambda: ki.SmallUniform(limit=0.2, seed=9),
    ki.BoundedNormal: lambda: ki.BoundedNormal(stddev=0.05, seed=11),
    ki.ActivationScaled: lambda: ki.ActivationScaled("relu", distribution="uniform", seed=10),
}
NO_EQUIVALENT = [cls for cls in CLASSES if cls not in EQUIVALENT]
SHAPE = (256, 512)  # fan_in 256, fan_out 512: 131072 values


def test_every_class_is_sorted_into_equivalent_or_not():
    assert {c.__name__ for c in NO_EQUIVALENT} == {
        "ConvIdentity",
        "ICNR",
        "Bilinear",
        "HadamardIdentity",
        "BlockOrthogonal",
        "DeltaOrthogonal",
        "Sparse",
    }


@pytest.mark.parametrize("cls", EQUIVALENT, ids=lambda cls: cls.__name__)
def test_the_keras_equivalent_draws_the_same_distribution(cls):
    ours = EQUIVALENT[cls]()
    equivalent = ki.keras_equivalent(ours)
    assert type(equivalent).__module__.startswith("keras.")
    mine, keras_values = to_numpy(ours(SHAPE)), to_numpy(equivalent(SHAPE))
    assert stats.ks_2samp(mine.ravel(), keras_values.ravel()).pvalue > 1e-4
    sigma = keras_values.std()
    kurtosis = float(stats.kurtosis(keras_values.ravel()))
    tolerance = math.sqrt(2) * std_tolerance(sigma, keras_values.size, kurtosis)
    assert abs(mine.std() - sigma) <= tolerance, (mine.std(), sigma, tolerance)
    bounded = isinstance(ours, ki.SmallUniform) or getattr(ours, "distribution", "") in (
        "uniform",
        "truncated_normal",
    )
    if bounded:  # the same bound in both: 131072 draws come within 1% of it
        assert abs(np.abs(mine).max() - np.abs(keras_values).max()) <= 0.01 * np.abs(mine).max()


@pytest.mark.parametrize("cls", NO_EQUIVALENT, ids=lambda cls: cls.__name__)
def test_a_class_without_an_equivalent_has_none(cls):
    assert ki.keras_equivalent(cls()) is None


@pytest.mark.parametrize("cls", EQUIVALENT, ids=lambda cls: cls.__name__)
def test_a_name_or_config_dict_has_the_same_equivalent_as_the_instance(cls):
    instance = EQUIVALENT[cls]()
    expected = keras.initializers.serialize(ki.keras_equivalent(instance))
    by_config = ki.keras_equivalent(keras.initializers.serialize(instance))
    assert keras.initializers.serialize(by_config) == expected
    by_name = ki.keras_equivalent(string_name(cls))
    assert keras.initializers.serialize(by_name) == keras.initializers.serialize(
        ki.keras_equivalent(cls())
    )


def test_keras_equivalent_by_name():
    equivalent = ki.keras_equivalent("sigmoid_normal")
    assert isinstance(equivalent, keras.initializers.VarianceScaling)
    assert (equivalent.scale, equivalent.mode, equivalent.distribution) == (
        4.0,
        "fan_in",
        "untruncated_normal",
    )
    assert ki.keras_equivalent("block_orthogonal") is None
    assert ki.keras_equivalent("glorot_normal") is None  # Keras's own: nothing to replace


def test_keras_equivalent_of_an_unknown_name_is_an_error_in_our_words():
    with pytest.raises(ValueError) as info:
        ki.keras_equivalent("sigmoid_normall")
    assert str(info.value) == (
        "Unknown initializer. Did you mean 'sigmoid_normal'? keras_inits.names() lists ours, "
        "keras.initializers Keras's. Received: initializer='sigmoid_normall'"
    )


def build_model():
    inputs = keras.Input((6, 4))
    x = keras.layers.Conv1D(8, 3, kernel_initializer="sigmoid_normal", name="conv")(inputs)
    x = keras.layers.MultiHeadAttention(
        2, 4, kernel_initializer=ki.KaimingNormal(nonlinearity="relu", seed=3), name="attention"
    )(x, x)
    x = keras.layers.Bidirectional(
        keras.layers.SimpleRNN(4, kernel_initializer="xavier_uniform", return_sequences=True),
        name="birnn",
    )(x)
    x = keras.layers.EinsumDense("abc,cd->abd", (4, 8), kernel_initializer="small_uniform")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(
        3, kernel_initializer=ki.ActivationScaled("gelu", seed=1), name="head"
    )(x)
    return keras.Model(inputs, outputs)


# Run where `import keras_inits` fails: a module of that name that refuses to load
# sits first on the path.
BLOCKER = 'raise ImportError("keras_inits is not installed here")\n'
LOAD_WITHOUT_PLUGIN = """
import json, sys
import numpy as np
try:
    import keras_inits
except ImportError:
    blocked = True
else:
    blocked = False
import keras
model_path, inputs_path, normal_path = sys.argv[1:]
model = keras.saving.load_model(model_path)
predictions = model.predict(np.load(inputs_path), verbose=0)
try:
    keras.saving.load_model(normal_path)
    normal = "loaded"
except Exception as error:
    normal = f"{type(error).__name__}: {error}"
print(json.dumps({"blocked": blocked, "predictions": np.asarray(predictions).tolist(),
                  "normal": normal}))
"""


@pytest.fixture(scope="module")
def loaded_without_plugin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("portable")
    keras.utils.set_random_seed(1)
    model = build_model()
    x = np.random.default_rng(0).random((5, 6, 4), dtype=np.float32)
    expected = np.asarray(model.predict(x, verbose=0))
    ki.portable(model).save(folder / "portable.keras")
    model.save(folder / "normal.keras")
    np.save(folder / "x.npy", x)
    (folder / "blocker").mkdir()
    (folder / "blocker" / "keras_inits.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": str(folder / "blocker")}
    env["KERAS_BACKEND"] = keras.backend.backend()
    completed = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_PLUGIN]
        + [str(folder / name) for name in ("portable.keras", "x.npy", "normal.keras")],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return folder, expected, json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_portable_file_loads_without_keras_inits_with_identical_predictions(
    loaded_without_plugin,
):
    folder, expected, result = loaded_without_plugin
    assert result["blocked"], "keras_inits was importable in the loading process"
    np.testing.assert_array_equal(np.asarray(result["predictions"], expected.dtype), expected)
    with zipfile.ZipFile(folder / "portable.keras") as archive:
        config = archive.read("config.json").decode()
    assert "keras_inits" not in config
    assert '"class_name": "VarianceScaling"' in config


@pytest.mark.slow
def test_a_normal_file_loaded_without_the_plugin_names_the_package(loaded_without_plugin):
    # What a user without keras_inits sees: the config names our package.
    _, _, result = loaded_without_plugin
    assert result["normal"] != "loaded"
    assert "'registered_name': 'keras_inits>" in result["normal"]
    assert "'module': 'keras_inits." in result["normal"]


def _model_without_equivalents():
    inputs = keras.Input((5, 4))
    x = keras.layers.LSTM(8, recurrent_initializer="block_orthogonal", name="lstm")(inputs)
    outputs = keras.layers.Dense(3, kernel_initializer=ki.Sparse(0.5), name="sparse_head")(x)
    return keras.Model(inputs, outputs, name="gated")


def test_no_equivalent_is_an_error_naming_each_layer():
    with pytest.raises(ValueError) as info:
        ki.portable(_model_without_equivalents())
    assert str(info.value) == (
        "`model` uses initializers that Keras has no built-in equivalent for, in "
        "layer 'lstm' (recurrent_initializer: BlockOrthogonal), "
        "layer 'sparse_head' (kernel_initializer: Sparse). Pass `fallback`, a Keras "
        "initializer (such as 'orthogonal' or 'glorot_uniform'), to record in their place; "
        "the weights are saved as they are. Received: model='gated', fallback=None"
    )


def test_an_explicit_fallback_is_recorded_and_the_weights_kept():
    model = _model_without_equivalents()
    copy = ki.portable(model, fallback="orthogonal")
    text = json.dumps(copy.get_config())
    assert "keras_inits" not in text
    assert text.count('"class_name": "Orthogonal"') == 2
    for theirs, ours in zip(copy.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(theirs, ours)
    # Same weights; torch's LSTM may round the two models' sums differently in the last bit.
    x = np.ones((2, 5, 4), "float32")
    np.testing.assert_allclose(
        copy.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-8
    )


@pytest.mark.parametrize("fallback", ["sigmoid_normal", "nope", 3])
def test_a_fallback_that_is_not_a_keras_builtin_is_refused(fallback):
    with pytest.raises(ValueError) as info:
        ki.portable(_model_without_equivalents(), fallback=fallback)
    assert str(info.value) == (
        "`fallback` must be a Keras built-in initializer, a name such as 'orthogonal' "
        f"or an instance, so that the file loads without keras_inits. "
        f"Received: fallback={fallback!r}"
    )


def test_portable_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match=r"^`model` must be a keras.Model. Received: model=3$"):
        ki.portable(3)
