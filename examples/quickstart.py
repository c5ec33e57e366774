"""Quick start: name keras_inits initializers by string, train, save, reload.

A small Conv2D + Dense classifier on scikit-learn's bundled 8x8 digits
(no download), with sigmoid layers initialized by "sigmoid_normal" and the
convolution by PyTorch's default ("keras_inits>KaimingUniform" with
a=sqrt(5)). It trains a few epochs, saves a .keras file, loads it back and
checks that the reloaded model predicts exactly what the original did.

Run: KERAS_BACKEND=jax python examples/quickstart.py   (or tensorflow, torch)
"""

from __future__ import annotations

import math
import os
import tempfile

import keras
import numpy as np

import keras_inits  # registers the names with Keras; import before load_model


def load_digits(seed: int = 0):
    """Standardized digits as (N, 8, 8, 1) images, split 80/20."""
    from sklearn.datasets import load_digits as sklearn_digits

    images, labels = sklearn_digits(return_X_y=True)
    images = (images / 16.0).reshape(-1, 8, 8, 1).astype("float32")
    order = np.random.default_rng(seed).permutation(len(images))
    split = int(0.8 * len(images))
    train, val = order[:split], order[split:]
    mean, std = images[train].mean(), images[train].std()
    images = (images - mean) / std
    return (images[train], labels[train]), (images[val], labels[val])


def build_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(
                16,
                3,
                activation="relu",
                kernel_initializer=keras_inits.KaimingUniform(a=math.sqrt(5), seed=0),
            ),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="sigmoid", kernel_initializer="sigmoid_normal"),
            keras.layers.Dense(64, activation="sigmoid", kernel_initializer="sigmoid_normal"),
            keras.layers.Dense(10, kernel_initializer="xavier_uniform"),
        ]
    )


def main() -> None:
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_val, y_val) = load_digits()
    model = build_model()
    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"keras_inits {keras_inits.__version__}"
    )
    for layer in model.layers:
        init = getattr(layer, "kernel_initializer", None)
        if init is not None:
            std = float(np.std(keras.ops.convert_to_numpy(layer.kernel)))
            print(f"  {layer.name:<10} {type(init).__name__:<14} kernel std {std:.4f}")

    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=5, batch_size=64, verbose=2)
    _, accuracy = model.evaluate(x_val, y_val, verbose=0)
    print(f"validation accuracy after 5 epochs: {accuracy:.3f}")

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "digits.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
    before = model.predict(x_val, verbose=0)
    after = reloaded.predict(x_val, verbose=0)
    same_configs = all(
        a.get_config().get("kernel_initializer") == b.get_config().get("kernel_initializer")
        for a, b in zip(model.layers, reloaded.layers, strict=True)
    )
    identical = np.array_equal(before, after)
    print(
        f"saved and reloaded {os.path.basename(path)}: predictions identical: {identical}, "
        f"initializer configs identical: {same_configs}"
    )
    if not (identical and same_configs):
        raise SystemExit("reloaded model differs from the original")


if __name__ == "__main__":
    main()
