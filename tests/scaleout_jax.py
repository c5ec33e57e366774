"""One stream and sharded draws on 8 virtual CPU devices (JAX), in a fresh process.

``test_scaleout.py`` runs this script with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (the flag must be set
before JAX starts, hence the subprocess). It prints one JSON object:

- ``mismatches``: every (class, path) whose values differ from the eager
  draw of the same seed: jax.jit, jax.jit with an output sharding on three
  meshes (2, 8 and 8 devices), the ``layout`` argument (a JAX sharding and a
  Keras TensorLayout), and a Keras ModelParallel build by string name
  against a one-device build after the same ``keras.utils.set_random_seed``.
- ``shardings``: every returned value whose sharding is not the one asked for.
- ``memory``: per-device temporary bytes from ``compiled.memory_analysis()``
  of a compiled sharded call, ours and the Keras built-in named beside it,
  in the same process.
- ``program_bytes``: the lowered program of a 2048 x 4096 identity-like kernel.
"""

from __future__ import annotations

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
import jax
import keras
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from keras_inits._base import DeterministicInitializer
from keras_inits._registry import CLASSES, registered_name

SEED = 11
# A kernel of at least 1 MiB (drawn sharded at birth through `layout`) and a small one.
KERNELS = {"Bilinear": (4, 4, 128, 128), "DeltaOrthogonal": (3, 3, 64, 128)}
DEFAULT_KERNEL = (256, 1024)
SMALL = {"Bilinear": (4, 4, 8, 8), "DeltaOrthogonal": (3, 3, 8, 16)}
DEFAULT_SMALL = (64, 32)
# Keras's closest built-in for the memory comparison (HeNormal unless named).
CLOSEST = {"BlockOrthogonal": "Orthogonal", "DeltaOrthogonal": "Orthogonal"}
MEMORY_KERNELS = {"Bilinear": (4, 4, 1024, 1024), "DeltaOrthogonal": (3, 3, 1024, 2048)}
MEMORY_KERNEL = (2048, 4096)

devices = np.array(jax.devices())
MESHES = {
    "1x2": Mesh(devices[:2].reshape(1, 2), ("data", "model")),
    "2x4": Mesh(devices.reshape(2, 4), ("data", "model")),
    "8x1": Mesh(devices.reshape(8, 1), ("data", "model")),
}


def spec(shape, mesh_name):
    """Shard the last axis over `model` and, on 2x4, the first over `data`."""
    first = "data" if mesh_name == "2x4" and shape[0] % 2 == 0 else None
    return P(first, *(None for _ in shape[1:-1]), "model")


def fresh(cls):
    return cls() if issubclass(cls, DeterministicInitializer) else cls(seed=SEED)


# Every sampler kind, a mask-and-values draw, a nested draw and a deterministic
# kernel go through every mesh; the other classes through one mesh per path.
EVERY_MESH = {
    "VarianceScaling",
    "SigmoidNormal",
    "SigmoidUniform",
    "ICNR",
    "Sparse",
    "HadamardIdentity",
}


def call_paths(cls, shape, small):
    """name -> (value, the sharding asked for, or None)."""
    values = {"eager": (fresh(cls)(shape), None)}
    every = cls.__name__ in EVERY_MESH
    if not small:
        jitted = jax.jit(fresh(cls).__call__, static_argnames=("shape", "dtype"))
        values["jit"] = (jitted(shape=shape, dtype="float32"), None)
    for name, mesh in MESHES.items():
        sharding = NamedSharding(mesh, spec(shape, name))
        if not small and (every or name == "2x4"):
            sharded = jax.jit(
                fresh(cls).__call__, out_shardings=sharding, static_argnames=("shape", "dtype")
            )
            values[f"jit_sharded_{name}"] = (sharded(shape=shape, dtype="float32"), sharding)
        if every or name == ("2x4" if small else "1x2"):
            values[f"layout_{name}"] = (fresh(cls)(shape, layout=sharding), sharding)
    if small:
        mesh = keras.distribution.DeviceMesh((2, 4), ("data", "model"), devices=list(devices))
        tensor_layout = keras.distribution.TensorLayout(spec(shape, "2x4"), mesh)
        values["keras_tensor_layout"] = (
            fresh(cls)(shape, layout=tensor_layout),
            tensor_layout.backend_layout,
        )
    return values


def model_build(distributed):
    """Dense/Conv kernels by string name, seed=None, after set_random_seed(3)."""
    keras.utils.set_random_seed(3)
    if distributed:
        mesh = keras.distribution.DeviceMesh((2, 4), ("data", "model"), devices=list(devices))
        layouts = keras.distribution.LayoutMap(mesh)
        layouts[".*dense.*kernel"] = (None, "model")
        keras.distribution.set_distribution(keras.distribution.ModelParallel(layout_map=layouts))
    try:
        model = keras.Sequential([keras.Input((128,))], name="probe")
        for i, cls in enumerate(c for c in CLASSES if c.__name__ != "Bilinear"):
            name = registered_name(cls)
            model.add(keras.layers.Dense(128, kernel_initializer=name, name=f"dense_{i}"))
        return {v.path: (np.asarray(v.value), v.value.sharding) for v in model.weights}
    finally:
        keras.distribution.set_distribution(None)


def main() -> None:
    report = {"devices": len(devices), "mismatches": [], "shardings": [], "memory": {}}
    for cls in CLASSES:
        for shape, small in (
            (KERNELS.get(cls.__name__, DEFAULT_KERNEL), False),
            (SMALL.get(cls.__name__, DEFAULT_SMALL), True),
        ):
            paths = call_paths(cls, shape, small)
            reference = np.asarray(paths["eager"][0])
            for path, (value, sharding) in paths.items():
                if not np.array_equal(np.asarray(value), reference):
                    report["mismatches"].append(f"{cls.__name__} {shape} {path}")
                if sharding is not None and not value.sharding.is_equivalent_to(
                    sharding, len(shape)
                ):
                    report["shardings"].append(f"{cls.__name__} {shape} {path}: {value.sharding}")

    one_device = model_build(distributed=False)
    sharded = model_build(distributed=True)
    report["model_weights"] = len(sharded)
    for path, (value, sharding) in sharded.items():
        if not np.array_equal(value, one_device[path][0]):
            report["mismatches"].append(f"ModelParallel build {path}")
        if path.endswith("kernel") and sharding.spec != P(None, "model"):
            report["shardings"].append(f"ModelParallel build {path}: {sharding}")

    mesh = Mesh(devices.reshape(1, 8), ("data", "model"))

    def temp_bytes(initializer, shape):
        sharding = NamedSharding(mesh, P(*(None for _ in shape[:-1]), "model"))
        jitted = jax.jit(
            initializer.__call__, out_shardings=sharding, static_argnames=("shape", "dtype")
        )
        compiled = jitted.lower(shape=shape, dtype="float32").compile()
        return compiled.memory_analysis().temp_size_in_bytes

    keras_bytes = {}  # (built-in, shape) -> bytes, compiled once
    for cls in CLASSES:
        shape = MEMORY_KERNELS.get(cls.__name__, MEMORY_KERNEL)
        builtin = CLOSEST.get(cls.__name__, "HeNormal")
        if (builtin, shape) not in keras_bytes:
            keras_init = getattr(keras.initializers, builtin)(seed=SEED)
            keras_bytes[builtin, shape] = temp_bytes(keras_init, shape)
        report["memory"][cls.__name__] = {
            "shape": shape,
            "builtin": builtin,
            "ours": temp_bytes(fresh(cls), shape),
            "keras": keras_bytes[builtin, shape],
        }

    report["program_bytes"] = {
        cls.__name__: len(jax.jit(lambda c=cls: c()(MEMORY_KERNEL)).lower().as_text())
        for cls in CLASSES
        if cls.__name__ in ("ConvIdentity", "HadamardIdentity")
    }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
