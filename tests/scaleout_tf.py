"""tf.distribute.MirroredStrategy over two logical CPU devices, in a fresh process.

``test_scaleout.py`` runs this script (logical devices must be configured
before TensorFlow initializes, hence the subprocess). It prints one JSON
object:

- ``replica_mismatches``: variables whose two replicas differ, in a model
  that names every registered initializer by string, built under the scope;
- ``scope_mismatches``: seeded classes whose values differ inside and outside
  the scope, or between eager and ``tf.function`` calls;
- ``fit_loss``: the losses of a short fit under the scope (digits);
- ``reload_max_diff``: the largest prediction difference after saving the
  model and loading it back under the scope.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

os.environ["KERAS_BACKEND"] = "tensorflow"
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from keras_inits._base import DeterministicInitializer  # noqa: E402
from keras_inits._registry import CLASSES, registered_name  # noqa: E402

SEED = 5
SHAPES = {"Bilinear": (4, 4, 8, 8), "DeltaOrthogonal": (3, 3, 8, 16)}


def fresh(cls):
    return cls() if issubclass(cls, DeterministicInitializer) else cls(seed=SEED)


def build_model():
    """Dense layers named by every class's string name, a Bilinear upsampling."""
    inputs = keras.Input((64,))
    x = inputs
    for i, cls in enumerate(c for c in CLASSES if c.__name__ != "Bilinear"):
        initializer = registered_name(cls)
        x = keras.layers.Dense(64, kernel_initializer=initializer, name=f"dense_{i}")(x)
        x = keras.layers.Activation("tanh")(x)
    image = keras.layers.Reshape((8, 8, 1))(x)
    image = keras.layers.Conv2D(2, 1, name="to_channels")(image)
    image = keras.layers.Conv2DTranspose(
        2, 4, strides=2, padding="same", kernel_initializer="bilinear", name="upsample"
    )(image)
    outputs = keras.layers.Dense(10, activation="softmax", name="head")(
        keras.layers.Flatten()(image)
    )
    return keras.Model(inputs, outputs)


def main() -> None:
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    report = {"replicas": strategy.num_replicas_in_sync}

    report["scope_mismatches"] = []
    for cls in CLASSES:
        shape = SHAPES.get(cls.__name__, (64, 32))
        outside = keras.ops.convert_to_numpy(fresh(cls)(shape))
        with strategy.scope():
            inside = keras.ops.convert_to_numpy(fresh(cls)(shape))
        traced = tf.function(lambda cls=cls, shape=shape: fresh(cls)(shape))()
        if not np.array_equal(outside, inside):
            report["scope_mismatches"].append(f"{cls.__name__} inside the scope")
        if not np.array_equal(outside, traced.numpy()):
            report["scope_mismatches"].append(f"{cls.__name__} under tf.function")

    with strategy.scope():
        model = build_model()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    replicas = {v.path: getattr(v.value, "values", ()) for v in model.weights}
    report["unmirrored"] = [path for path, values in replicas.items() if len(values) != 2]
    report["replica_mismatches"] = [
        path
        for path, values in replicas.items()
        if not all(np.array_equal(r.numpy(), values[0].numpy()) for r in values[1:])
    ]
    report["variables"] = len(model.weights)

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")[:512]
    y = digits.target[:512]
    history = model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    report["fit_loss"] = [float(v) for v in history.history["loss"]]

    before = model.predict(x[:32], verbose=0)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        with strategy.scope():
            loaded = keras.models.load_model(path)
    after = loaded.predict(x[:32], verbose=0)
    report["reload_max_diff"] = float(np.abs(before - after).max())
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
