"""Speed and memory of the structured, orthogonal and sparse initializers (issue 13).

Run one backend per process (``make bench`` runs each installed one):

    KERAS_BACKEND=torch python benchmarks/bench_structured.py

For BlockOrthogonal, DeltaOrthogonal, Sparse, ConvIdentity, HadamardIdentity,
ICNR and Bilinear, each on a float32 kernel of 16.8 M values (4096 x 4096;
Bilinear, which needs a 4-D (kh, kw, channels, channels) kernel, on
(4, 4, 1024, 1024): the 4 x 4 taps of 2x upsampling; HadamardIdentity also
on (2048, 8192), where out > in makes it a Hadamard block): median milliseconds
(and the first call's, compilation included, once),
the ratio to ``keras.random.uniform`` of the same shape measured in the same
rounds (sides alternated, see ``_harness.time_alternated``) and the peak
memory of one call as a multiple of the output (a fresh process per
measurement, see ``_harness.peak_memory``). Sparse is measured at
sparsity 0.1 (PyTorch's documented example) and at its default 0.9; on
torch, also against ``torch.nn.init.sparse_`` at the same sparsity, in the
same rounds. The peaks of Sparse, Bilinear and HadamardIdentity (out > in) are also
measured with twice each side (4x the values): a first call at a shape
includes compiling its program (JAX, and TensorFlow from 2^22 values on,
compile per shape), and the larger kernel tells that amount apart from what
grows with the kernel. A last row measures the floor of the two QR-based
classes: the peak of a normal draw of the kernel and its QR, keeping Q.
The last table checks each figure against the targets of
issue 13 and says by how much a miss misses.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # this checkout's keras_inits

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from _harness import (  # noqa: E402
    Check,
    block,
    machine,
    markdown,
    peak_memory,
    time_alternated,
    warmup_shape,
)

import keras_inits  # noqa: E402

BACKEND = keras.backend.backend()

# Targets of issue 13.
PEAK_MULTIPLE = 2.0  # every class here, where the algorithm allows it
DETERMINISTIC_PEAK = 1.1  # "about 1x": built on device, nothing but the output
SPARSE_VS_UNIFORM = 3.0
SPARSE_VS_TORCH = 1.0
DETERMINISTIC = ("ConvIdentity", "HadamardIdentity", "Bilinear")
QR_FLOOR = "qr"

# (label, class name, constructor arguments) of every row.
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("BlockOrthogonal", "BlockOrthogonal", {"seed": 0}),
    ("DeltaOrthogonal", "DeltaOrthogonal", {"seed": 0}),
    ("Sparse (sparsity 0.1)", "Sparse", {"sparsity": 0.1, "seed": 0}),
    ("Sparse (sparsity 0.9)", "Sparse", {"sparsity": 0.9, "seed": 0}),
    # Peak memory only: what of the peak is fixed (a compiler's working set) and
    # what grows with the kernel.
    ("Sparse (sparsity 0.1, 4x the values)", "Sparse", {"sparsity": 0.1, "seed": 0}),
    ("ConvIdentity", "ConvIdentity", {}),
    ("HadamardIdentity", "HadamardIdentity", {}),
    ("HadamardIdentity (out > in)", "HadamardIdentity", {}),
    ("HadamardIdentity (out > in, 4x the values)", "HadamardIdentity", {}),
    ("ICNR", "ICNR", {"seed": 0}),
    ("Bilinear", "Bilinear", {}),
    ("Bilinear (4x the values)", "Bilinear", {}),
    # Peak memory only: a normal draw and its QR, keeping Q, as any QR-based
    # orthogonal initializer must at least do: the floor of the two above.
    ("QR floor: keras.ops.qr(keras.random.normal(shape))", QR_FLOOR, {}),
]


def shape_of(label: str, size: int) -> tuple[int, ...]:
    """4096 x 4096; for Bilinear (4, 4, c, c), for out > in (2048, 8192): as many values.

    A label ending in "4x the values)" doubles the last two axes.
    """
    if label.endswith("4x the values)"):
        plain = label.replace(", 4x the values)", ")").replace(" (4x the values)", "")
        base = shape_of(plain, size)
        return (*base[:-2], *(side * 2 for side in base[-2:]))
    if label == "Bilinear":
        channels = size // 4
        return (4, 4, channels, channels)
    if label.endswith("(out > in)"):  # HadamardIdentity's Hadamard block, not its identity
        return (size // 2, size * 2)
    return (size, size)


MEMORY_SETUP = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import keras, keras_inits
"""


def measure_peak(name: str, arguments: dict[str, Any], shape: tuple[int, ...]) -> float:
    """Peak memory of one call at ``shape`` in a fresh process, after one at a quarter of it."""
    if name == QR_FLOOR:
        draw = "keras.ops.qr(keras.random.normal(shape))[0]"
        setup = MEMORY_SETUP + f"def init(shape):\n    return {draw}\n"
    else:
        setup = MEMORY_SETUP + f"init = keras_inits.{name}(**{arguments!r})\n"
    peak_bytes = peak_memory(
        setup, f"init({shape})", warmup_call=f"init({warmup_shape(shape)})", backend=BACKEND
    )
    return peak_bytes / (math.prod(shape) * 4)


def bench(
    size: int, repeats: int, with_memory: bool, skip: tuple[str, ...] = ()
) -> tuple[list[list[str]], list[Check]]:
    rows: list[list[str]] = []
    checks: list[Check] = []
    for label, name, arguments in CASES:
        if name in skip:
            continue
        shape = shape_of(label, size)
        if label.endswith("4x the values)") or name == QR_FLOOR:  # peak memory only
            if with_memory:
                peak = measure_peak(name, arguments, shape)
                rows.append([label, " x ".join(map(str, shape)), *"-----", f"{peak:.2f}", "-"])
                if name != QR_FLOOR:
                    limit = DETERMINISTIC_PEAK if name in DETERMINISTIC else PEAK_MULTIPLE
                    checks.append(Check(f"{label}: peak memory / output", peak, limit))
                print(f"  {label}: peak {peak:.2f}x", file=sys.stderr, flush=True)
            continue
        init = getattr(keras_inits, name)(**arguments)

        def uniform(shape: tuple[int, ...] = shape) -> Any:
            return keras.random.uniform(shape, seed=1)

        start = time.perf_counter()
        block(init(shape))
        first_call = time.perf_counter() - start
        fns: list[Callable[[], Any]] = [lambda init=init, shape=shape: init(shape), uniform]
        torch_ratio = math.nan
        sparsity = getattr(init, "sparsity", None)
        if BACKEND == "torch" and sparsity is not None:
            import torch

            target = torch.empty(shape)
            fns.append(
                lambda t=target, s=sparsity: torch.nn.init.sparse_(t, s, std=0.01)  # same std
            )
        # A QR of 4096 x 4096 takes seconds: 3 rounds, its first call having warmed it up.
        slow = first_call > 1.0
        timing = time_alternated(fns, repeats=3 if slow else repeats, warmup=0 if slow else 2)
        ms = timing.ms[0]
        vs_uniform = 1 / timing.ratios[1]  # ours / uniform, per round
        if len(fns) == 3:
            torch_ratio = 1 / timing.ratios[2]
        peak = math.nan
        if with_memory:
            peak = measure_peak(name, arguments, shape)
        rounds = 3 if slow else repeats
        rows.append(
            [
                label,
                " x ".join(map(str, shape)),
                f"{ms:.0f}",
                f"{first_call * 1e3:.0f}",
                f"{vs_uniform:.2f}",
                f"{timing.ms[1]:.0f}",
                f"{torch_ratio:.2f} ({timing.ms[2]:.0f} ms)" if len(fns) == 3 else "-",
                f"{peak:.2f}",
                str(rounds),
            ]
        )
        if name == "Sparse":
            checks.append(
                Check(f"{label}: time vs keras.random.uniform", vs_uniform, SPARSE_VS_UNIFORM)
            )
            if len(fns) == 3:
                checks.append(
                    Check(f"{label}: time vs torch.nn.init.sparse_", torch_ratio, SPARSE_VS_TORCH)
                )
        if with_memory:
            limit = DETERMINISTIC_PEAK if name in DETERMINISTIC else PEAK_MULTIPLE
            checks.append(Check(f"{label}: peak memory / output", peak, limit))
        print(f"  {label}: {ms:.0f} ms, peak {peak:.2f}x", file=sys.stderr, flush=True)
    return rows, checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (median)")
    parser.add_argument("--size", type=int, default=4096, help="kernel side (a smoke test: 64)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--skip", default="", help="class names to leave out, comma-separated")
    args = parser.parse_args()

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    host = machine(BACKEND)
    print(f"backend {BACKEND}: {host}", file=sys.stderr, flush=True)
    skip = tuple(name for name in args.skip.split(",") if name)
    rows, checks = bench(args.size, args.repeats, not args.no_memory, skip)
    load_after = os.getloadavg()[0]
    print(f"\n## {BACKEND} (structured)\n")
    print(f"Machine: {host}. Load average {load_before:.1f} before, {load_after:.1f} after.")
    print(
        f"float32, 16.8 M values a kernel, median of {args.repeats} alternated rounds "
        f"(3 for a call over 1 s); {time.perf_counter() - started:.0f} s in all.\n"
    )
    header = [
        "initializer",
        "shape",
        "ms",
        "first call ms",
        "vs keras.random.uniform",
        "uniform ms",
        "vs torch.nn.init.sparse_",
        "peak / output",
        "rounds",
    ]
    print(markdown(header, rows))
    print()
    print(markdown(["target", "measured", "limit", "verdict"], [c.row() for c in checks]))


if __name__ == "__main__":
    main()
