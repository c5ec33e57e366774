"""Why a deep sigmoid network needs sqrt(4 / fan_in): the story `make demo` tells.

Five hidden sigmoid layers of 128 units on scikit-learn's digits, trained
20 epochs with SGD (lr 0.1, momentum 0.9), once per initializer. The
fixed-scale "small random" schemes and Glorot shrink the signal about
fourfold per layer (a sigmoid's slope is at most 1/4), so the first layers'
gradients vanish and the loss stays at log(10); He's 2 / fan_in is not
enough either; sigmoid_normal's 4 / fan_in keeps enough signal to train.

Run: KERAS_BACKEND=jax python examples/sigmoid_depth.py   (or tensorflow, torch)
"""

from __future__ import annotations

import keras

from keras_inits.diagnostics import CompareConfig, format_results, plot_results, run_compare


def main(epochs: int = 20, plot: str | None = "out/sigmoid_depth.png") -> None:
    config = CompareConfig(
        initializers=(
            "small_uniform",
            "small_normal",
            "glorot_normal",
            "he_normal",
            "sigmoid_normal",
        ),
        activation="sigmoid",
        depth=5,
        width=128,
        lr=0.1,
        epochs=epochs,
    )
    results = run_compare(config)
    print(f"backend {keras.backend.backend()}, {epochs} epochs")
    print(format_results(results))
    if plot:
        print("wrote", plot_results(results, plot, title="5 x 128 sigmoid MLP on digits"))


if __name__ == "__main__":
    main()
