"""Deferred build and materialize against a normal build and load_weights, one backend.

    KERAS_BACKEND=jax python benchmarks/bench_deferred.py

A language-model-shaped stack of Keras layers (an Embedding, then blocks of
LayerNormalization, Dense(width -> 4 width), Dense(4 width -> width); 110M
parameters at the defaults) is saved once as a ``.weights.h5`` checkpoint.
Two pairs are timed, each in its own alternated rounds (benchmarks/_harness.py),
so each ratio is the median of per-round ratios:

- normal build (every initializer runs) against the deferred build
  (``with keras_inits.deferred(): build()``, none runs);
- normal build + ``load_weights`` (what a checkpoint load costs today) against
  the deferred build + ``materialize(weights=)`` (each weight set once, from the file).

Each side's result is waited for (JAX dispatches asynchronously). The
targets: deferred build <= 0.1x the normal build; deferred build +
materialize <= 0.5x normal build + load_weights.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # this checkout's keras_inits
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from _harness import Check, machine, markdown, time_alternated  # noqa: E402

import keras_inits as ki  # noqa: E402


def build(vocabulary: int, width: int, blocks: int) -> keras.Model:
    inputs = keras.Input((16,), dtype="int32")
    x = keras.layers.Embedding(vocabulary, width, name="embed")(inputs)
    for i in range(blocks):
        x = keras.layers.LayerNormalization(name=f"norm_{i}")(x)
        x = keras.layers.Dense(4 * width, activation="gelu", name=f"up_{i}")(x)
        x = keras.layers.Dense(width, name=f"down_{i}")(x)
    return keras.Model(inputs, x, name="stack")


def values(model: keras.Model) -> list:
    """Every weight's value, so the timer waits for it (JAX is asynchronous)."""
    return [variable.value for variable in model.weights]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocabulary", type=int, default=32000)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (median)")
    parser.add_argument("--warmup", type=int, default=1, help="rounds dropped first")
    args = parser.parse_args()
    backend = keras.backend.backend()
    shape = (args.vocabulary, args.width, args.blocks)

    reference = build(*shape)
    parameters = reference.count_params()
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = os.path.join(folder, "stack.weights.h5")
        reference.save_weights(checkpoint)
        del reference

        def normal_build():
            return values(build(*shape))

        def deferred_build():
            with ki.deferred():
                build(*shape)

        def normal_build_and_load():
            model = build(*shape)
            model.load_weights(checkpoint)
            return values(model)

        def deferred_build_and_materialize():
            with ki.deferred():
                model = build(*shape)
            ki.materialize(model, checkpoint)
            return values(model)

        # Two pairs, each alternated in its own rounds, so each ratio is a per-round median.
        builds = time_alternated(
            [normal_build, deferred_build], repeats=args.repeats, warmup=args.warmup
        )
        loads = time_alternated(
            [normal_build_and_load, deferred_build_and_materialize],
            repeats=args.repeats,
            warmup=args.warmup,
        )
    normal, deferred = builds.ms
    load, materialize = loads.ms
    build_ratio, load_ratio = builds.ratios[1], loads.ratios[1]
    print(f"{machine(backend)}; KERAS_BACKEND={backend}")
    print(
        f"{parameters / 1e6:.1f}M parameters (vocabulary {args.vocabulary}, width "
        f"{args.width}, {args.blocks} blocks), float32; median of {args.repeats} rounds\n"
    )
    rows = [
        ["normal build", f"{normal:.0f}", "1.00"],
        ["deferred build", f"{deferred:.0f}", f"{build_ratio:.3f}"],
        ["normal build + load_weights", f"{load:.0f}", "1.00"],
        ["deferred build + materialize(weights=)", f"{materialize:.0f}", f"{load_ratio:.3f}"],
    ]
    print(markdown(["side", "ms", "x the normal side above"], rows))
    print()
    checks = [
        Check("deferred build / normal build", build_ratio, 0.1),
        Check("(deferred build + materialize) / (normal build + load_weights)", load_ratio, 0.5),
    ]
    print(markdown(["target", "measured", "limit", "verdict"], [c.row() for c in checks]))


if __name__ == "__main__":
    main()
