"""Writes a model in every Keras format, and loads it back in a fresh process.

``test_saving.py`` imports this module to build and save the model, then runs
it as a script (``python saving_roundtrip.py DIR``) in a new interpreter, as a
user would load the file. The script prints one JSON object: for each format,
the predictions' largest difference and the initializer configs it found.
"""

from __future__ import annotations

import json
import os
import sys

import keras
import numpy as np

FORMATS = ("keras", "keras_safe_mode", "h5", "json", "savedmodel")


def build_model():
    """A small model that uses every registered class, by string and by object."""
    import keras_inits as ki

    inputs = keras.Input((6, 4))
    x = keras.layers.Conv1D(8, 3, kernel_initializer="sigmoid_normal", name="conv")(inputs)
    x = keras.layers.MultiHeadAttention(
        num_heads=2,
        key_dim=4,
        kernel_initializer=ki.KaimingNormal(nonlinearity="relu", seed=3),
        name="attention",
    )(x, x)
    x = keras.layers.SimpleRNN(
        8,
        return_sequences=True,
        kernel_initializer="keras_inits>XavierUniform",
        recurrent_initializer=ki.SmallUniform(limit=0.05, seed=keras.random.SeedGenerator(4)),
        name="rnn",
    )(x)
    x = keras.layers.EinsumDense(
        "abc,cd->abd",
        (4, 8),
        kernel_initializer=ki.VarianceScaling(scale=2.0, mode="fan_avg", seed=5),
        name="einsum",
    )(x)
    x = keras.layers.Flatten()(x)
    for cls in (
        ki.SigmoidUniform,
        ki.XavierNormal,
        ki.KaimingUniform,
        ki.SmallNormal,
        ki.ActivationScaled,
        ki.ICNR,
    ):
        x = keras.layers.Dense(
            8, activation="sigmoid", kernel_initializer=cls(seed=7), name=cls.__name__.lower()
        )(x)
    outputs = keras.layers.Dense(3, kernel_initializer="xavier_normal", name="head")(x)
    return keras.Model(inputs, outputs)


def inputs() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(5, 6, 4)).astype("float32")


def initializer_configs(model) -> dict:
    """{layer name: {argument: serialized initializer}} for every initializer."""
    result = {}
    for layer in model.layers:
        config = layer.get_config()
        found = {
            key: value
            for key, value in config.items()
            if key.endswith("_initializer") and isinstance(value, dict)
        }
        if found:
            result[layer.name] = json.loads(json.dumps(found))
    return result


def save_all(model, directory: str) -> None:
    model.save(os.path.join(directory, "model.keras"))
    model.save(os.path.join(directory, "model.h5"))
    with open(os.path.join(directory, "model.json"), "w") as file:
        file.write(model.to_json())
    model.save_weights(os.path.join(directory, "model.weights.h5"))
    if keras.backend.backend() == "tensorflow":
        model.export(os.path.join(directory, "savedmodel"), verbose=False)


def load_all(directory: str) -> dict:
    """Runs in the fresh process; returns what each format gave back."""
    x = inputs()
    results: dict = {}

    path = os.path.join(directory, "model.keras")
    try:  # Keras cannot find our classes until keras_inits is imported.
        keras.saving.load_model(path)
        results["without_import"] = "loaded"
    except Exception as error:
        results["without_import"] = f"{type(error).__name__}: {error}"

    import keras_inits as ki

    loaded = {
        "keras": keras.saving.load_model(path),
        "keras_safe_mode": keras.saving.load_model(path, safe_mode=True),
        "h5": keras.saving.load_model(os.path.join(directory, "model.h5")),
    }
    with open(os.path.join(directory, "model.json")) as file:
        from_json = keras.models.model_from_json(file.read())
    from_json.load_weights(os.path.join(directory, "model.weights.h5"))
    loaded["json"] = from_json
    for name, model in loaded.items():
        results[name] = {
            "predictions": np.asarray(model.predict(x, verbose=0)).tolist(),
            "configs": initializer_configs(model),
        }
    if os.path.isdir(os.path.join(directory, "savedmodel")):
        import tensorflow as tf

        exported = tf.saved_model.load(os.path.join(directory, "savedmodel"))
        # Keep `exported` referenced while serving: its variables live on it.
        results["savedmodel"] = {"predictions": np.asarray(exported.serve(x)).tolist()}
    keras.utils.set_random_seed(0)  # as test_saving.py did before building
    rebuilt = build_model()
    results["rebuilt"] = {"predictions": np.asarray(rebuilt.predict(x, verbose=0)).tolist()}
    results["seeded_draw"] = keras.ops.convert_to_numpy(ki.SigmoidNormal(seed=3)((4, 4))).tolist()
    return results


if __name__ == "__main__":
    print(json.dumps(load_all(sys.argv[1])))
