"""He et al. 2015 in one minute: a deep plain ReLU network trains with He, stalls with Xavier.

Thirty hidden ReLU layers of 64 units, no batch normalization, no skip
connections. A ReLU zeroes half of its input's second moment, so with
Xavier's 1 / fan (here fan_in = fan_out) the signal halves in variance at
every layer: after 30 layers it is 2^-15 of what went in, the gradient of
the first layers vanishes with it, and the loss never leaves log(10). He's
2 / fan_in makes up the factor 2 and the same network trains (He et al.,
2015, figure 3, https://arxiv.org/abs/1502.01852).

Run: KERAS_BACKEND=jax python examples/relu_depth.py   (or tensorflow, torch)
"""

from __future__ import annotations

import keras

from keras_inits.diagnostics import CompareConfig, format_results, plot_results, run_compare


def main(epochs: int = 10, plot: str | None = "out/relu_depth.png") -> None:
    config = CompareConfig(
        # Keras's truncated Glorot and PyTorch's xavier_normal_, then Keras's and PyTorch's He.
        initializers=("glorot_normal", "xavier_normal", "he_normal", "kaiming_normal"),
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
