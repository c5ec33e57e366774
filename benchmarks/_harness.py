"""Timing and memory helpers shared by the benchmark scripts.

Timing compares callables in one process with the sides alternated (a b,
b a, ...), so that a slow patch of a noisy machine hits all of them; a
ratio is the median of the per-round ratios. Results are waited for
(``block``) before the clock stops: JAX dispatches asynchronously.

Peak memory is measured in a fresh child process per measurement, from the
kernel's own count of resident memory: the child resets its high-water mark
(``/proc/self/clear_refs``, Linux >= 4.0), calls once, and reports VmHWM
minus the RSS before the call. That sees every allocation, whatever
allocator made it (TensorFlow's, XLA's, torch's, NumPy's), which
``tracemalloc`` does not. This module never imports a backend itself.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Check",
    "PairTiming",
    "Timing",
    "block",
    "machine",
    "markdown",
    "peak_memory",
    "time_alternated",
    "time_one",
    "time_pair",
]


def block(value: Any) -> Any:
    """Waits until ``value`` (a tensor, or a tuple/list of them) is computed.

    JAX arrays wait for themselves; a torch tensor on CUDA waits for its
    device (``torch.cuda.synchronize``: CUDA kernels run asynchronously); a
    TensorFlow tensor on a GPU or TPU waits for every device
    (``tf.test.experimental.sync_devices``). CPU tensors of torch and
    TensorFlow are computed when the op returns. The backend modules are
    taken from ``sys.modules``: a value of a backend means it is imported.
    """
    if isinstance(value, (tuple, list)):
        for item in value:
            block(item)
    elif hasattr(value, "block_until_ready"):  # JAX
        value.block_until_ready()
    elif getattr(value, "is_cuda", False):  # torch on CUDA
        sys.modules["torch"].cuda.synchronize(value.device)
    elif type(value).__module__.startswith("tensorflow") and _on_accelerator(value):
        sys.modules["tensorflow"].test.experimental.sync_devices()
    return value


def _on_accelerator(value: Any) -> bool:
    """Whether a TensorFlow tensor lives on a GPU or TPU (its device string names one)."""
    device = str(getattr(value, "device", "") or "")
    return ":GPU:" in device or ":TPU:" in device


@dataclass(frozen=True)
class Timing:
    """Median milliseconds of each callable, and the median per-round ratio to the first."""

    ms: tuple[float, ...]
    ratios: tuple[float, ...]  # ratios[0] == 1.0
    repeats: int


@dataclass(frozen=True)
class PairTiming:
    """Medians over the repeats, in milliseconds, and the median of a/b per pair."""

    a_ms: float
    b_ms: float
    ratio: float
    repeats: int


def _once(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    result = block(fn())
    elapsed = time.perf_counter() - start
    del result
    return elapsed * 1e3


def time_alternated(
    fns: Sequence[Callable[[], Any]], *, repeats: int = 9, warmup: int = 2
) -> Timing:
    """Times the callables in rounds, each once per round; warm-up rounds are dropped.

    The order rotates from round to round (a b c, b c a, c a b, ...), so no
    callable always runs first or right after another's garbage is freed.
    Each ratio is the median over the rounds of that round's time over the
    first callable's time in the same round, so a slow patch of a noisy
    machine cancels out.
    """
    count = len(fns)
    times: list[list[float]] = [[] for _ in fns]
    for round_ in range(warmup + repeats):
        this_round = [0.0] * count
        for k in range(count):
            index = (round_ + k) % count
            this_round[index] = _once(fns[index])
        if round_ >= warmup:
            for index in range(count):
                times[index].append(this_round[index])
    ms = tuple(statistics.median(t) for t in times)
    ratios = tuple(
        statistics.median(t / r for t, r in zip(times[i], times[0], strict=True))
        for i in range(count)
    )
    return Timing(ms, ratios, repeats)


def time_pair(
    a: Callable[[], Any], b: Callable[[], Any], *, repeats: int = 9, warmup: int = 2
) -> PairTiming:
    """Times ``a`` and ``b`` alternately; ``ratio`` is the median of a/b per pair."""
    timing = time_alternated([b, a], repeats=repeats, warmup=warmup)
    return PairTiming(timing.ms[1], timing.ms[0], timing.ratios[1], repeats)


def time_one(fn: Callable[[], Any], *, repeats: int = 9, warmup: int = 2) -> float:
    """Median milliseconds of ``fn`` over ``repeats`` calls after ``warmup``."""
    times = [_once(fn) for _ in range(warmup + repeats)]
    return statistics.median(times[warmup:])


_CHILD = """
import gc, json, os

def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(key + " not in /proc/self/status")

def _block(value):
    if hasattr(value, "block_until_ready"):
        value.block_until_ready()
    return value

{setup}

def _call():
    return {call}

for _ in range({warmup}):
    _block({warmup_call})
gc.collect()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current RSS
_before = _status("VmRSS")
_out = _block(_call())
_peak = _status("VmHWM") - _before
print("PEAK_MEMORY_JSON " + json.dumps({{"peak_bytes": _peak, "before_bytes": _before}}))
"""


def warmup_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with its last two axes halved: a quarter of the values, for ``peak_memory``.

    Large enough to take the code path the measured call takes (TensorFlow's
    fused XLA programs start at 2^22 values, a quarter of 4096 x 4096), so
    what is set up once per process (XLA's compiler) is set up in the warm-up
    and not counted; small enough that no block it frees can hold the
    measured call's output.

    Example:
        >>> warmup_shape((4, 4, 1024, 1024)), warmup_shape((2048, 8192))
        ((4, 4, 512, 512), (1024, 4096))
    """
    return (*shape[:-2], *(max(1, side // 2) for side in shape[-2:]))


def peak_memory(
    setup: str,
    call: str,
    *,
    warmup_call: str | None = None,
    backend: str | None = None,
    warmup: int = 1,
    timeout: float = 600,
) -> int:
    """Bytes by which the resident set grows at its peak during one ``call``.

    Runs in a fresh Python process: ``setup`` (statements) first, then
    ``warmup_call`` (an expression; default ``call``) ``warmup`` times with
    the results freed, to load kernels and libraries, then ``call`` once under
    measurement. The result the call returns stays alive, so it counts: a
    call that allocates its output and nothing else measures about one output
    size. Warm up on a smaller shape than you measure (``warmup_shape``): an
    allocator that keeps freed memory (TensorFlow's does) would otherwise
    serve the measured call from its pool and show no growth at all. The
    child's glibc malloc gets a fixed mmap threshold, so it returns what it
    frees.

    Raises:
        RuntimeError: If the child fails or this is not Linux.
    """
    if not os.path.exists("/proc/self/clear_refs"):
        raise RuntimeError("peak_memory needs Linux's /proc/self/clear_refs")
    env = dict(os.environ)
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    # glibc's malloc raises its mmap threshold after a large free and then keeps
    # freed blocks up to 32 MiB in its heap, where the warm-up's could serve the
    # measured call; a fixed threshold maps and unmaps every block from 128 KiB.
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(128 * 1024))
    source = _CHILD.format(
        setup=textwrap.dedent(setup), call=call, warmup_call=warmup_call or call, warmup=warmup
    )
    proc = subprocess.run(
        [sys.executable, "-c", source],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("PEAK_MEMORY_JSON "):
            return int(json.loads(line.split(" ", 1)[1])["peak_bytes"])
    raise RuntimeError(f"peak_memory child failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


@dataclass
class Check:
    """One target: ``measured`` must be at most ``limit`` (a ratio, or ``unit``)."""

    name: str
    measured: float
    limit: float
    unit: str = "x"

    @property
    def passed(self) -> bool:
        return self.measured <= self.limit

    def row(self) -> list[str]:
        if self.passed:
            verdict = "PASS"
        elif self.limit == 0:
            verdict = f"MISS by {self.measured:g}"
        else:
            verdict = f"MISS by {100 * (self.measured / self.limit - 1):.1f}%"
        return [
            self.name,
            f"{self.measured:.3g}{self.unit}",
            f"<= {self.limit:g}{self.unit}",
            verdict,
        ]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine(backend: str) -> str:
    """Cores, CPU model, Python, and the versions of Keras and ``backend`` (already imported)."""
    model = platform.processor() or "?"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = re.search(r"Model name:\s*(.+)", lscpu).group(1).strip()  # type: ignore[union-attr]
    except (OSError, subprocess.CalledProcessError, AttributeError):
        pass
    versions = [f"keras {sys.modules['keras'].__version__}"]
    if backend in sys.modules:
        versions.append(f"{backend} {sys.modules[backend].__version__}")
    return f"{os.cpu_count()} cores, {model}; Python {platform.python_version()}, " + ", ".join(
        versions
    )
