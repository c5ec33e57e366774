"""Sharded draws on 8 virtual CPU devices (JAX): per-device memory and time, ours and Keras's.

    python benchmarks/bench_sharded.py

Sets ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` before JAX
starts, then for each initializer compiles ``jax.jit(init.__call__,
out_shardings=NamedSharding(mesh, P(None, "model")))`` on a (1, 8) mesh, the
way Keras jit-compiles a large variable, and reports the per-device
temporary memory from ``compiled.memory_analysis()`` beside the Keras
built-in with the same distribution, compiled in the same run. At
2048 x 4096 it also times the call (median of ``--repeats``, sides
alternated), except BlockOrthogonal's, whose QR every device runs whole;
at 8192 x 8192 it compiles only. Other backends: prints that it
is JAX-only and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # this checkout's keras_inits
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from _harness import time_alternated  # noqa: E402

import keras_inits as ki  # noqa: E402

# (ours, Keras's built-in with the same distribution or closest structure)
PAIRS = [
    ("VarianceScaling", lambda: ki.VarianceScaling(seed=1), keras.initializers.HeNormal),
    ("SigmoidNormal", lambda: ki.SigmoidNormal(seed=1), keras.initializers.HeNormal),
    ("SigmoidUniform", lambda: ki.SigmoidUniform(seed=1), keras.initializers.HeUniform),
    ("SmallNormal", lambda: ki.SmallNormal(seed=1), keras.initializers.RandomNormal),
    ("ICNR", lambda: ki.ICNR(seed=1), keras.initializers.HeNormal),
    ("Sparse", lambda: ki.Sparse(seed=1), keras.initializers.HeNormal),
    ("ConvIdentity", ki.ConvIdentity, keras.initializers.HeNormal),
    ("HadamardIdentity", ki.HadamardIdentity, keras.initializers.HeNormal),
    ("BlockOrthogonal", lambda: ki.BlockOrthogonal(seed=1), keras.initializers.Orthogonal),
]
MIB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (median)")
    parser.add_argument("--no-large", action="store_true", help="skip 8192 x 8192")
    parser.add_argument("--no-qr", action="store_true", help="skip BlockOrthogonal")
    args = parser.parse_args()
    if keras.backend.backend() != "jax":
        print(f"bench_sharded.py is JAX-only; skipped on {keras.backend.backend()}.")
        return
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()).reshape(1, 8), ("data", "model"))
    sharding = NamedSharding(mesh, P(None, "model"))

    def compiled(initializer, shape):
        jitted = jax.jit(
            initializer.__call__, out_shardings=sharding, static_argnames=("shape", "dtype")
        )
        return jitted.lower(shape=shape, dtype="float32").compile()

    shapes = [(2048, 4096)] + ([] if args.no_large else [(8192, 8192)])
    print(f"JAX {jax.__version__}, Keras {keras.__version__}, {jax.device_count()} CPU devices")
    print("mesh (1, 8), P(None, 'model'): each device holds 1/8 of the columns\n")
    print(
        "| initializer | shape | ours temp MiB/device | Keras built-in | Keras temp MiB/device "
        "| ratio | ours ms | Keras ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, ours, theirs in PAIRS:
        if args.no_qr and name == "BlockOrthogonal":
            continue
        for shape in shapes:
            mine, keras_one = compiled(ours(), shape), compiled(theirs(seed=1), shape)
            ours_mib = mine.memory_analysis().temp_size_in_bytes / MIB
            keras_mib = keras_one.memory_analysis().temp_size_in_bytes / MIB
            ratio = ours_mib / keras_mib if keras_mib else float("nan")
            times = ("-", "-")
            # Every device runs the whole QR: on 8 virtual devices of a 2-core
            # machine a call takes about a minute (50 s against Keras's 104 s at
            # 2048 x 4096), a figure of the machine, not of the sharding.
            if shape == (2048, 4096) and name != "BlockOrthogonal":
                timing = time_alternated([mine, keras_one], repeats=args.repeats)
                times = (f"{timing.ms[0]:.0f}", f"{timing.ms[1]:.0f}")
            print(
                f"| {name} | {shape[0]} x {shape[1]} | {ours_mib:.1f} | {theirs.__name__} | "
                f"{keras_mib:.1f} | {ratio:.2f} | {times[0]} | {times[1]} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
