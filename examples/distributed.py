"""ModelParallel on 8 virtual CPU devices: keras_inits by string name, seeded, sharded at birth.

    python examples/distributed.py

Builds the same model twice after ``keras.utils.set_random_seed(0)``: once on
one device, once under ``keras.distribution.ModelParallel`` on a (2, 4) mesh
of 8 virtual CPU devices (XLA_FLAGS, set below before JAX starts). Keras hands
each initializer the variable's sharding through its ``layout`` argument;
keras_inits draws each kernel sharded from the start (each device computes
only its shard) from the same random stream, so the kernels are identical to
the one-device build. Prints each kernel's sharding and shard shape, and
exits with an error if any kernel differs. JAX only.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()

import keras
import numpy as np

import keras_inits

# Which kernel is split along which mesh axis (None: that axis is not split).
LAYOUTS = {
    "up/kernel": (None, "model"),
    "gates/kernel": (None, "model"),
    "down/kernel": ("model", None),
}


def build() -> keras.Model:
    """By string name (seed=None, reproducible through set_random_seed) and an int seed."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((256,))
    x = keras.layers.Dense(1024, kernel_initializer="kaiming_normal", name="up")(inputs)
    x = keras.layers.Dense(
        1024, kernel_initializer=keras_inits.BlockOrthogonal(blocks=4, seed=1), name="gates"
    )(x)
    x = keras.layers.Dense(256, kernel_initializer="hadamard_identity", name="down")(x)
    return keras.Model(inputs, x)


def kernels(model: keras.Model) -> dict[str, object]:
    return {v.path: v.value for v in model.weights if v.path.endswith("kernel")}


def main() -> None:
    if keras.backend.backend() != "jax":
        sys.exit(
            "This example shards with keras.distribution on JAX: run it with KERAS_BACKEND=jax."
        )
    import jax

    one_device = {name: np.asarray(value) for name, value in kernels(build()).items()}

    mesh = keras.distribution.DeviceMesh((2, 4), ("data", "model"), devices=jax.devices())
    layout_map = keras.distribution.LayoutMap(mesh)
    for path, axes in LAYOUTS.items():
        layout_map[path] = axes
    keras.distribution.set_distribution(keras.distribution.ModelParallel(layout_map=layout_map))
    sharded = kernels(build())
    keras.distribution.set_distribution(None)

    print(f"{jax.device_count()} devices, mesh {mesh.shape} {mesh.axis_names}")
    differ = []
    for name, value in sharded.items():
        shard = value.addressable_shards[0].data.shape
        same = np.array_equal(np.asarray(value), one_device[name])
        print(
            f"{name:14s} {value.shape!s:12s} spec {value.sharding.spec!s:22s} "
            f"shard {shard!s:12s} identical to the one-device build: {same}"
        )
        if not same:
            differ.append(name)
    if differ:
        sys.exit(f"kernels differ from the one-device build: {differ}")


if __name__ == "__main__":
    main()
