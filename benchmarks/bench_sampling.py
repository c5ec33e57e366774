"""Speed, memory and exactness of keras_inits's draws on the current backend.

Run one backend per process (``make bench`` runs each installed one):

    KERAS_BACKEND=jax python benchmarks/bench_sampling.py

For every initializer in ``keras_inits._registry.CLASSES`` (so a new one is
benchmarked the moment it is registered) on a 4096 x 4096 float32 kernel:
median milliseconds, millions of elements per second, the ratio to the Keras
built-in with the same distribution and to ``keras.random.uniform`` of the
same shape (both measured in the same rounds, sides alternated), and the
peak memory during a call as a multiple of the output (fresh process per
measurement, see ``_harness.peak_memory``). Then: values beyond the bound in
10^8 truncated draws, the cost of ``import keras_inits`` after ``import
keras``, and building a 200-layer MLP with our initializers named by string
against the same model with Keras's built-ins. The last table checks each
figure against the targets of issues 4 and 13 and says by how much a miss misses.
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
from keras_inits._base import RandomInitializer  # noqa: E402
from keras_inits._registry import CLASSES  # noqa: E402
from keras_inits._sampling import TRUNCATED_STD  # noqa: E402

SHAPE = (4096, 4096)
BACKEND = keras.backend.backend()

# Targets from issue 4: (limit, what it bounds).
TRUNCATED_VS_KERAS = {"tensorflow": 1.0, "jax": 1.0, "torch": 0.3}
OTHER_VS_KERAS = 1.05
TRUNCATED_VS_UNIFORM = 1.5
PEAK_MULTIPLE = 2.0
IMPORT_MS = 50.0
MLP_RATIO = 1.05


@dataclass
class Results:
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def keras_equivalent(init: Any) -> tuple[str, dict[str, Any]] | None:
    """(distribution, config of the Keras built-in that draws the same), or None."""
    if isinstance(init, keras_inits.VarianceScaling):
        distribution = "normal" if init.distribution == "untruncated_normal" else init.distribution
        builtin = keras.initializers.VarianceScaling(
            scale=init.scale, mode=init.mode, distribution=init.distribution, seed=0
        )
    elif isinstance(init, keras_inits.SmallNormal):
        distribution = "normal"
        builtin = keras.initializers.RandomNormal(stddev=init.stddev, seed=0)
    elif isinstance(init, keras_inits.SmallUniform):
        distribution = "uniform"
        builtin = keras.initializers.RandomUniform(-init.limit, init.limit, seed=0)
    else:
        return None
    return distribution, keras.saving.serialize_keras_object(builtin)


def measure_memory(setup: str, call: str, small_call: str) -> float:
    out_bytes = math.prod(SHAPE) * 4
    return peak_memory(setup, call, warmup_call=small_call, backend=BACKEND) / out_bytes


MEMORY_SETUP = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import keras, keras_inits
from keras_inits._registry import CLASSES
"""


def bench_initializers(results: Results, repeats: int, with_memory: bool) -> None:
    elements = math.prod(SHAPE)
    keras_memory: dict[str, float] = {}

    def uniform() -> Any:
        return keras.random.uniform(SHAPE, seed=1)

    for cls in CLASSES:
        name = cls.__name__
        try:
            init = cls(seed=0) if issubclass(cls, RandomInitializer) else cls()
            start = time.perf_counter()
            block(init(SHAPE))
            first_call = time.perf_counter() - start
        except Exception as error:  # any failure is reported, not raised
            results.notes.append(f"{name}: skipped, cannot draw {SHAPE}: {error!r:.200}")
            continue
        equivalent = keras_equivalent(init)
        fns: list[Callable[[], Any]] = [lambda init=init: init(SHAPE), uniform]
        if equivalent is not None:
            builtin = keras.initializers.get(equivalent[1])
            fns.append(lambda builtin=builtin: builtin(SHAPE))
        # A class that takes seconds a call (a 4096 x 4096 QR, a per-column sort) gets
        # 3 rounds, its first call having warmed it up; the rest get the full count.
        slow = first_call > 1.0
        timing = time_alternated(fns, repeats=3 if slow else repeats, warmup=0 if slow else 2)
        ms = timing.ms[0]
        # Ratios of ours to the others: invert "other / ours" per round.
        vs_uniform = 1 / timing.ratios[1]
        vs_keras = 1 / timing.ratios[2] if equivalent is not None else math.nan
        peak = keras_peak = math.nan
        if with_memory:
            seed = "seed=0" if issubclass(cls, RandomInitializer) else ""
            setup = MEMORY_SETUP + f"init = {{c.__name__: c for c in CLASSES}}[{name!r}]({seed})\n"
            try:
                peak = measure_memory(setup, f"init({SHAPE})", f"init({warmup_shape(SHAPE)})")
            except RuntimeError as error:  # reported, never fatal to the rest of the run
                results.notes.append(f"{name}: peak memory not measured: {error!s:.200}")
            if equivalent is not None:
                key = json.dumps(equivalent[1], sort_keys=True)
                if key not in keras_memory:
                    setup = MEMORY_SETUP + f"builtin = keras.initializers.get({equivalent[1]!r})\n"
                    keras_memory[key] = measure_memory(
                        setup, f"builtin({SHAPE})", f"builtin({warmup_shape(SHAPE)})"
                    )
                keras_peak = keras_memory[key]
        distribution = equivalent[0] if equivalent else "-"
        keras_name = equivalent[1]["class_name"] if equivalent else "-"
        results.rows.append(
            [
                name,
                distribution,
                f"{ms:.0f}",
                f"{elements / ms / 1e3:.0f}",
                f"{vs_keras:.2f} ({keras_name})" if equivalent else "- (no Keras built-in)",
                f"{vs_uniform:.2f}",
                f"{peak:.2f}",
                f"{keras_peak:.2f}",
            ]
        )
        if equivalent is not None:
            truncated = distribution == "truncated_normal"
            limit = TRUNCATED_VS_KERAS.get(BACKEND, 1.0) if truncated else OTHER_VS_KERAS
            results.checks.append(Check(f"{name}: time vs Keras {keras_name}", vs_keras, limit))
        if distribution == "truncated_normal":
            results.checks.append(
                Check(f"{name}: time vs keras.random.uniform", vs_uniform, TRUNCATED_VS_UNIFORM)
            )
        if with_memory:
            results.checks.append(Check(f"{name}: peak memory / output", peak, PEAK_MULTIPLE))
        print(f"  {name}: {ms:.0f} ms", file=sys.stderr, flush=True)


def bench_exactness(results: Results, draws: int) -> None:
    """Counts values beyond the bound in ``draws`` truncated draws, ours and Keras's."""
    chunk_shape = (4096, 1024)  # fan_in 4096; 4 Mi values per call bounds the memory
    calls = -(-draws // math.prod(chunk_shape))
    ours = keras_inits.VarianceScaling(seed=0)  # each call draws with a new sub-seed
    theirs = keras.initializers.VarianceScaling(seed=keras.random.SeedGenerator(0))
    bound = 2 * ours.stddev(chunk_shape) / TRUNCATED_STD
    counts = {}
    for label, init in (("keras_inits", ours), ("Keras built-in", theirs)):
        beyond = 0
        for _ in range(calls):
            values = init(chunk_shape)
            beyond += int(keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.abs(values) > bound)))
            del values
        counts[label] = beyond
    total = calls * math.prod(chunk_shape)
    results.extra["exactness"] = {"draws": total, **counts}
    results.checks.append(
        Check(
            f"values beyond the bound in {total:.3g} truncated draws", counts["keras_inits"], 0, ""
        )
    )
    results.notes.append(
        f"Keras's built-in truncated normal on {BACKEND}: {counts['Keras built-in']} of "
        f"{total:.3g} draws beyond the bound."
    )


def bench_tensorflow_stages(results: Results, repeats: int) -> None:
    """TensorFlow only: what the truncated normal's stages cost, alternated in one run.

    The uniform draw alone, TensorFlow's ``Erfinv`` kernel alone, and the
    fused XLA transform (erfinv, scale, clip over the same values, in chunks)
    alone, with XLA's whole erfinv and with the central polynomial that ours
    uses, against ``keras.random.uniform``: the floor of each method.
    """
    import tensorflow as tf

    from keras_inits._sampling import _tensorflow
    from keras_inits._sampling._common import ERF_SQRT2

    size = math.prod(SHAPE)
    unit = tf.random.stateless_uniform([size], seed=[1, 2])
    chunk = _tensorflow.CHUNK
    fused = _tensorflow.fused_chunk("truncated_normal", "float32")
    scale = tf.constant(1.0)

    @tf.function(jit_compile=True, autograph=False)
    def xla_erfinv(piece: Any) -> Any:  # XLA's erfinv: both polynomials, then a select
        return _tensorflow.inverse_cdf(piece, scale)

    ours = keras_inits.VarianceScaling(seed=0)
    inside = unit * (2 * ERF_SQRT2) - ERF_SQRT2  # erfinv's real input
    pieces = [unit[i : i + chunk] for i in range(0, size - chunk + 1, chunk)]
    stages: dict[str, Callable[[], Any]] = {
        "keras.random.uniform": lambda: keras.random.uniform(SHAPE, seed=1),
        "StatelessRandomUniformV2 alone": lambda: tf.random.stateless_uniform([size], seed=[1, 2]),
        "Erfinv kernel alone": lambda: tf.math.erfinv(inside),
        f"XLA erfinv+scale+clip, {len(pieces)} chunks of {chunk}": lambda: [
            xla_erfinv(piece) for piece in pieces
        ],
        f"XLA central erfinv+scale+clip (ours), {len(pieces)} chunks": lambda: [
            fused(piece, scale) for piece in pieces
        ],
        "ours (VarianceScaling)": lambda: ours(SHAPE),
    }
    if not pieces:
        for key in [key for key in stages if key.startswith("XLA")]:
            del stages[key]
    timing = time_alternated(list(stages.values()), repeats=repeats)
    rows = [
        [name, f"{ms:.1f}", f"{ratio:.2f}"]
        for name, ms, ratio in zip(stages, timing.ms, timing.ratios, strict=True)
    ]
    results.extra["tensorflow stages"] = rows
    results.notes.append(
        "TensorFlow truncated normal, stages at "
        f"{SHAPE[0]} x {SHAPE[1]} (ms, and / keras.random.uniform):\n\n"
        + markdown(["stage", "ms", "/ uniform"], rows)
        + "\n"
    )


def import_ms(runs: int = 5) -> float:
    """Median cumulative ``-X importtime`` of keras_inits, imported after keras.

    From bytecode, as an installed package imports: the package is copied
    and compiled into a temporary directory first, so the figure is the
    same whether or not this checkout has (or may write) ``__pycache__``
    (compiling the sources adds about 20 ms to every run).
    """
    times = []
    with tempfile.TemporaryDirectory() as tree:
        shutil.copytree(ROOT / "keras_inits", Path(tree) / "keras_inits")
        compileall.compile_dir(Path(tree) / "keras_inits", quiet=1)
        env = {**os.environ, "KERAS_BACKEND": BACKEND, "PYTHONPATH": tree}
        for _ in range(runs):
            proc = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", "import keras; import keras_inits"],
                env=env,
                cwd=tree,
                capture_output=True,
                text=True,
                check=True,
            )
            for line in proc.stderr.splitlines():
                match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| keras_inits$", line)
                if match:
                    times.append(int(match.group(1)) / 1e3)
    if not times:
        raise RuntimeError("no `keras_inits` line in -X importtime output")
    return statistics.median(times)


def bench_mlp(results: Results, repeats: int, layers: int = 200, width: int = 256) -> None:
    pairs = (("xavier_uniform", "glorot_uniform"), ("keras_inits>VarianceScaling", "lecun_normal"))
    for ours, theirs in pairs:

        def build(name: str) -> Any:
            model = keras.Sequential(
                [keras.Input((width,))]
                + [keras.layers.Dense(width, kernel_initializer=name) for _ in range(layers)]
            )
            return [layer.kernel.value for layer in model.layers]

        timing = time_alternated(
            [lambda o=ours: build(o), lambda t=theirs: build(t)], repeats=repeats, warmup=1
        )
        ratio = 1 / timing.ratios[1]
        results.extra[f"mlp {ours}"] = {"ours_ms": timing.ms[0], "keras_ms": timing.ms[1]}
        results.checks.append(
            Check(f'{layers}-layer MLP build, "{ours}" vs "{theirs}"', ratio, MLP_RATIO)
        )
        results.notes.append(
            f'MLP ({layers} x Dense({width})): "{ours}" {timing.ms[0]:.0f} ms, '
            f'"{theirs}" {timing.ms[1]:.0f} ms.'
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds (median)")
    parser.add_argument("--draws", type=float, default=1e8, help="truncated draws to check")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--size", type=int, default=4096, help="kernel side (a smoke test: 64)")
    parser.add_argument("--mlp-layers", type=int, default=200, help="layers of the built MLP")
    # The builds differ by a few percent at most, within one round's noise on a
    # shared machine: more rounds than the draws get.
    parser.add_argument("--mlp-repeats", type=int, default=15, help="timed rounds of the builds")
    args = parser.parse_args()
    global SHAPE
    SHAPE = (args.size, args.size)

    results = Results()
    load_before = os.getloadavg()[0]
    host = machine(BACKEND)
    print(f"backend {BACKEND}: {host}", file=sys.stderr, flush=True)
    bench_initializers(results, args.repeats, not args.no_memory)
    bench_exactness(results, int(args.draws))
    if BACKEND == "tensorflow":
        bench_tensorflow_stages(results, args.repeats)
    ms = import_ms()
    results.extra["import_ms"] = ms
    results.checks.append(Check("import keras_inits after import keras", ms, IMPORT_MS, " ms"))
    bench_mlp(results, args.mlp_repeats, layers=args.mlp_layers)
    load_after = os.getloadavg()[0]

    print(f"\n## {BACKEND}\n")
    print(f"Machine: {host}. Load average {load_before:.1f} before, {load_after:.1f} after.")
    print(f"{args.size} x {args.size} float32, median of {args.repeats} alternated rounds.\n")
    header = [
        "initializer",
        "distribution",
        "ms",
        "M elem/s",
        "vs Keras built-in",
        "vs keras.random.uniform",
        "peak / output",
        "Keras peak / output",
    ]
    print(markdown(header, results.rows))
    print()
    print(markdown(["target", "measured", "limit", "verdict"], [c.row() for c in results.checks]))
    print()
    for note in results.notes:
        print(f"- {note}")
    if args.json:
        payload = {
            "backend": BACKEND,
            "machine": host,
            "load": [load_before, load_after],
            "rows": results.rows,
            "checks": [c.row() for c in results.checks],
            "notes": results.notes,
            **results.extra,
        }
        args.json.write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
