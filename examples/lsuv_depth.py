"""Mishkin & Matas 2016 in one minute: LSUV trains a deep plain ReLU network that stalls.

Thirty hidden ReLU layers of 64 units, no batch normalization, no skip
connections, built with Keras's default glorot_uniform. Glorot's 2 /
(fan_in + fan_out) = 1 / fan here halves the signal's second moment at every
ReLU, so after 30 layers almost nothing is left and the loss stays at log(10).
``keras_inits.lsuv`` then pre-initializes every kernel orthonormally and
rescales it, layer by layer, until its pre-activation output has unit
variance on one batch of 256 digits: the same network trains (Mishkin &
Matas, 2016, "All you need is a good init", https://arxiv.org/abs/1511.06422).

The command line does the same: keras-inits compare --activation relu
--depth 30 --width 64 --lr 0.01 --init glorot_uniform --init lsuv

Run: KERAS_BACKEND=jax python examples/lsuv_depth.py   (or tensorflow, torch)
"""

from __future__ import annotations

import keras

from keras_inits.diagnostics import CompareConfig, format_results, plot_results, run_compare


def main(epochs: int = 10, plot: str | None = "out/lsuv_depth.png") -> None:
    config = CompareConfig(
        initializers=("glorot_uniform", "lsuv"),  # Keras's default, then the same and lsuv
        activation="relu",
        depth=30,
        width=64,
        lr=0.01,
        epochs=epochs,
    )
    results = run_compare(config)
    print(f"backend {keras.backend.backend()}, {epochs} epochs")
    print(format_results(results))
    if plot:
        print("wrote", plot_results(results, plot, title="30 x 64 ReLU MLP on digits"))


if __name__ == "__main__":
    main()
