"""muP's coordinate check in one minute: widen an MLP, take three Adam steps, watch the logits.

The same 32 -> n -> n -> 10 ReLU MLP at n = 64 ... 1024, three Adam steps
(learning rate 0.01) on one batch. Under the standard parametrization each
Adam step moves every weight by about the learning rate, so a layer's
update adds up over its n inputs and the logits grow in proportion to the
width; a learning rate tuned at width 64 diverges at 1024. Under muP
(``keras_inits.mup``) every layer's mean |output| stays put as n grows,
which is what lets a learning rate tuned small transfer to large (Yang et
al., 2022, Tensor Programs V, figure 5, https://arxiv.org/abs/2203.03466).

Run: KERAS_BACKEND=jax python examples/coord_check.py   (or tensorflow, torch)
"""

from __future__ import annotations

import keras
import numpy as np

from keras_inits.diagnostics import coord_check, plot_coord_check


def build(width: int) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(width, activation="relu", name="hidden_1"),
            keras.layers.Dense(width, activation="relu", name="hidden_2"),
            keras.layers.Dense(10, name="logits"),
        ]
    )


def main(
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024),
    plot: str | None = "docs/img/coord_check.png",
) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 32)).astype("float32")
    y = rng.integers(0, 10, size=8).astype("int32")  # integer targets: cross-entropy on logits
    checks = [
        coord_check(build, widths, x, y, steps=3, learning_rate=1e-2, parametrization=p)
        for p in ("standard", "mup")
    ]
    print(f"backend {keras.backend.backend()}, 3 Adam steps at lr 0.01")
    for check in checks:
        print(check.table(), end="\n\n")
    if plot:
        print("wrote", plot_coord_check(checks, plot, title="32 -> n -> n -> 10 ReLU MLP"))


if __name__ == "__main__":
    main()
