"""PiSSA's cost: ``keras_inits.lora`` against Keras's own ``enable_lora``, measured in one run.

Two cases, on the backend KERAS_BACKEND names:

- one Dense (n, n) (n = 4096 by default): Keras's ``enable_lora(r)`` (A
  he_uniform, B = 0: two small draws) against ``lora(method="pissa")``
  with the exact SVD (LAPACK's divide and conquer on the float64 n x n
  matrix, ~O(n^3)) and with the randomized SVD (``niter`` power
  iterations: ~(2 niter + 2) n^2 r flops for the products and QRs of
  (n, r) matrices);
- every attention and MLP kernel of a small keras-hub backbone (GPT-2's
  layout, built from its constructor: no download): the same three.

Each call adapts a fresh copy (the models are built outside the clock);
the sides run alternately, round after round, so that a noisy machine
hits all of them; times are medians and each ratio is the median of the
per-round ratios, against Keras's ``enable_lora``.

Run: KERAS_BACKEND=jax python benchmarks/bench_lora.py [--size 4096] [--rank 16]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench_orthogonal import limit_threads

# Imported in main(), after --threads has set the environment the backends read.
keras: Any = None
ki: Any = None


def _dense(n: int) -> Any:
    return keras.Sequential([keras.Input((n,)), keras.layers.Dense(n, name="dense")])


def _backbone(args: argparse.Namespace) -> Any:
    import keras_hub

    return keras_hub.models.GPT2Backbone(
        vocabulary_size=args.vocabulary,
        num_layers=args.layers,
        num_heads=args.heads,
        hidden_dim=args.hidden,
        intermediate_dim=4 * args.hidden,
        max_sequence_length=128,
    )


# The attention projections and the MLP's two Dense layers of each transformer block.
KERNELS = "query|key|value|attention_output|feedforward_intermediate_dense|feedforward_output_dense"


def _keras_lora(model: Any, rank: int, pattern: str | None) -> None:
    import re

    for layer in _every_layer(model):
        if hasattr(layer, "enable_lora") and (pattern is None or re.fullmatch(pattern, layer.name)):
            layer.enable_lora(rank)


def _every_layer(model: Any) -> list[Any]:
    found, stack, seen = [], [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        found.append(layer)
        stack.extend(getattr(layer, "_layers", []))
    return found


def time_rounds(
    make: Callable[[], Any], sides: dict[str, Callable[[Any], None]], rounds: int
) -> dict[str, list[float]]:
    """Seconds per side per round; each call gets a fresh model, built off the clock."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    for index in range(rounds + 1):  # round 0 warms up (compiles, imports) and is dropped
        for name in order if index % 2 == 0 else reversed(order):
            model = make()
            start = time.perf_counter()
            sides[name](model)
            elapsed = time.perf_counter() - start
            if index:
                times[name].append(elapsed)
    return times


def report(case: str, times: dict[str, list[float]]) -> list[str]:
    base = times["keras enable_lora"]
    lines = []
    for name, values in times.items():
        ratios = [v / b for v, b in zip(values, base, strict=True)]
        ms = 1000 * statistics.median(values)
        ratio = statistics.median(ratios)
        lines.append(f"| {keras.backend.backend()} | {case} | {name} | {ms:.0f} | {ratio:.1f}x |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--niter", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256, help="the backbone's hidden size")
    parser.add_argument("--layers", type=int, default=4, help="the backbone's blocks")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocabulary", type=int, default=1000)
    parser.add_argument("--no-backbone", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="0: the backends' defaults")
    args = parser.parse_args()
    global keras, ki
    if args.threads:
        limit_threads(args.threads)
    import keras

    import keras_inits as ki

    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"threads {args.threads or 'default'}, rank {args.rank}, niter {args.niter}, "
        f"median of {args.rounds} alternated rounds"
    )
    print("| backend | case | method | ms | / Keras's enable_lora |")
    print("| --- | --- | --- | --- | --- |")
    rank, niter = args.rank, args.niter
    dense_sides = {
        "keras enable_lora": lambda m: _keras_lora(m, rank, None),
        "pissa, exact SVD": lambda m: ki.lora(m, rank, "pissa"),
        f"pissa, niter={niter}": lambda m: ki.lora(m, rank, "pissa", niter=niter, seed=0),
    }
    times = time_rounds(lambda: _dense(args.size), dense_sides, args.rounds)
    for line in report(f"Dense ({args.size}, {args.size})", times):
        print(line, flush=True)
    if args.no_backbone:
        return
    backbone_sides = {
        "keras enable_lora": lambda m: _keras_lora(m, rank, KERNELS),
        "pissa, exact SVD": lambda m: ki.lora(m, rank, "pissa", layers=KERNELS),
        f"pissa, niter={niter}": lambda m: ki.lora(
            m, rank, "pissa", layers=KERNELS, niter=niter, seed=0
        ),
    }
    probe = _backbone(args)
    count = len(ki.lora(probe, rank, "keras", layers=KERNELS))
    case = f"GPT-2 layout, {args.layers} blocks, hidden {args.hidden}: {count} kernels"
    times = time_rounds(lambda: _backbone(args), backbone_sides, args.rounds)
    for line in report(case, times):
        print(line, flush=True)


if __name__ == "__main__":
    main()
