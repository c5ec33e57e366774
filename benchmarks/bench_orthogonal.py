"""BlockOrthogonal vs keras.initializers.Orthogonal: time ratios measured in one run.

Two comparisons, on the backend KERAS_BACKEND names:

- one block, an (n, n) kernel: ``BlockOrthogonal(blocks=1)`` against Keras's
  ``Orthogonal`` (the same QR; ours adds the float32 round trip and a
  transpose, so the ratio should be ~1);
- the LSTM case, an (n, 4n) recurrent kernel: ``BlockOrthogonal()`` (4
  independent n x n blocks, one batched QR) against one ``Orthogonal`` of
  (n, 4n) (the QR of a 4n x n matrix). Householder QR of an m x n matrix
  costs ~2 m n^2 - 2 n^3 / 3 flops, forming Q as much again: 4 blocks cost
  4 * (4/3) n^3 = 5.3 n^3, one tall matrix 8 n^3 - 2/3 n^3 = 7.3 n^3, so
  ours should take ~0.73 of the time.

The two sides run alternately (``_harness.time_pair``) so that drift in the
machine's load hits both; times are medians of ``--repeats`` and the ratio
is the median of the per-pair ratios, ours / Keras's: below 1 means ours is
faster. With ``--breakdown``
it also times the parts of our draw (normal draw, batched QR) against
Keras's single QR, to show what dominates.

``--threads`` (default 1) caps every backend's thread pools before the
backend is imported: on a shared machine, spinning worker threads of an
oversubscribed pool make multi-threaded timings swing by 10x from one call
to the next. Pass 0 to leave the backends' defaults.

Run: KERAS_BACKEND=jax python benchmarks/bench_orthogonal.py [--sizes 512 1024 2048]
"""

from __future__ import annotations

import argparse
import os
import platform
from typing import Any

from _harness import PairTiming, time_pair

# Imported in main(), after --threads has set the environment the backends read.
keras: Any = None
ki: Any = None


def limit_threads(threads: int) -> None:
    """Caps BLAS/LAPACK, XLA, TensorFlow and PyTorch pools; before any backend import."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(threads)
    if threads == 1:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()


def row(case: str, n: int, shape: tuple[int, ...], timing: PairTiming) -> str:
    return (
        f"| {keras.backend.backend()} | {case} | {n} | {shape} | {timing.a_ms:.1f} | "
        f"{timing.b_ms:.1f} | {timing.ratio:.2f} |"
    )


def breakdown(n: int, repeats: int) -> list[str]:
    """The batched QR of 4 (n, n) blocks vs the QR of one (4n, n) matrix, and the draw."""
    blocks = keras.random.normal((4, n, n), seed=1)
    tall = keras.random.normal((4 * n, n), seed=1)
    qr = time_pair(lambda: keras.ops.qr(blocks)[0], lambda: keras.ops.qr(tall)[0], repeats=repeats)
    draw = time_pair(
        lambda: keras.random.normal((4, n, n), seed=2),
        lambda: ki.BlockOrthogonal(seed=3)((n, 4 * n)),
        repeats=repeats,
    )
    backend = keras.backend.backend()
    return [
        f"| {backend} | QR only: 4 x ({n}, {n}) batched vs one ({4 * n}, {n}) | "
        f"{qr.a_ms:.1f} | {qr.b_ms:.1f} | {qr.ratio:.2f} |",
        f"| {backend} | normal draw (4, {n}, {n}) vs whole BlockOrthogonal | "
        f"{draw.a_ms:.1f} | {draw.b_ms:.1f} | {draw.ratio:.2f} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cases", nargs="+", choices=("one", "lstm"), default=["one", "lstm"])
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="0: the backends' defaults")
    args = parser.parse_args()
    global keras, ki
    if args.threads:
        limit_threads(args.threads)
    import keras

    import keras_inits as ki

    if args.threads and keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(args.threads)

    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"threads {args.threads or 'default'}, median of {args.repeats}, sides alternated"
    )
    print("| backend | case | n | shape | ours (ms) | Keras (ms) | ours / Keras |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in args.sizes if "one" in args.cases else ():
        square = (n, n)
        timing = time_pair(
            lambda s=square: ki.BlockOrthogonal(blocks=1, seed=1)(s),
            lambda s=square: keras.initializers.Orthogonal(seed=1)(s),
            repeats=args.repeats,
        )
        print(row("one block", n, square, timing), flush=True)
    for n in args.sizes if "lstm" in args.cases else ():
        gates = (n, 4 * n)
        timing = time_pair(
            lambda s=gates: ki.BlockOrthogonal(seed=1)(s),
            lambda s=gates: keras.initializers.Orthogonal(seed=1)(s),
            repeats=args.repeats,
        )
        print(row("LSTM: 4 blocks vs one", n, gates, timing), flush=True)
    if args.breakdown:
        print()
        print("| backend | part | ours (ms) | reference (ms) | ratio |")
        print("| --- | --- | --- | --- | --- |")
        for n in args.sizes:
            for line in breakdown(n, args.repeats):
                print(line, flush=True)


if __name__ == "__main__":
    main()
