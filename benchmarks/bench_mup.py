"""muP's optimizer step: ``plan.optimizer(opt)`` against the plain ``opt``, measured in one run.

``MupOptimizer`` runs the inner optimizer's update once per group of
weights that share a learning-rate multiplier (on torch, Keras's fused
``torch._foreach`` step once per group). This measures what that costs,
on the backend KERAS_BACKEND names, for SGD (momentum 0.9), Adam and AdamW:

- ``train_on_batch``: one compiled training step (forward, backward and
  the optimizer) of an MLP in -> w -> w -> w -> 10 (ReLU; 512 -> 2048 x 3
  by default, 9.5M weights), after warm-up;
- ``optimizer.apply(grads, variables)``: the bare optimizer step, eager
  (as ``fit`` runs it on torch; on JAX and TensorFlow ``fit`` compiles it
  into the step above, so this eager figure is the per-op dispatch cost).

The plan is ``keras_inits.mup(model, base)`` with a base of widths w/8,
w/4, w/2: each hidden layer's fan_in grows by a different factor, so every
weight kind gets its own multiplier (Adam: 1, 1/8, 1/4, 1/2, four groups;
SGD: 8, 4, 2, 1, 1/2, five), the worst case of a plan for this depth. The
plain and the muP model are built alike and start from the same (muP's)
weights, so only the optimizer differs; the sides run alternately, round
after round (``_harness.time_pair``), warm-up rounds dropped; times are
medians and each ratio is the median of the per-round ratios, muP over
plain. The target (issue 20): at most 1.1x. Last, a control: two plain
Adam models timed against each other the same way; its ratio is this run's
noise floor (1.0x on a quiet machine).

Run: KERAS_BACKEND=jax python benchmarks/bench_mup.py [--width 2048] [--repeats 15]
"""

from __future__ import annotations

import argparse
from typing import Any

from _harness import Check, machine, markdown, time_pair
from bench_orthogonal import limit_threads

# Imported in main(), after --threads has set the environment the backends read.
keras: Any = None
ki: Any = None

TARGET = 1.1
# The control rows: plain against plain, so "muP ms" is a second plain model there.
CONTROL = "Adam, control: plain vs plain"


def _mlp(inputs: int, widths: tuple[int, ...]) -> Any:
    layers: list[Any] = [keras.Input((inputs,))]
    for index, width in enumerate(widths, start=1):
        layers.append(keras.layers.Dense(width, "relu", name=f"dense_{index}"))
    layers.append(keras.layers.Dense(10, name="output"))
    return keras.Sequential(layers)


def _optimizers() -> dict[str, Any]:
    return {
        "SGD (momentum 0.9)": lambda: keras.optimizers.SGD(1e-3, momentum=0.9),
        "Adam": lambda: keras.optimizers.Adam(1e-4),
        "AdamW": lambda: keras.optimizers.AdamW(1e-4, weight_decay=0.01),
    }


def _pair(args: argparse.Namespace, make: Any, mup: bool = True) -> tuple[Any, Any, int]:
    """The plain and the muP model, each compiled with a fresh optimizer from ``make``.

    ``mup=False``: the second model is a plain one too (the control).
    """
    widths = (args.width,) * args.depth
    base_widths = tuple(args.width // 2 ** (args.depth - i) for i in range(args.depth))
    keras.utils.set_random_seed(0)
    plain = _mlp(args.inputs, widths)
    plain.compile(optimizer=make(), loss=_loss())
    keras.utils.set_random_seed(0)
    wide = _mlp(args.inputs, widths)
    if not mup:
        wide.compile(optimizer=make(), loss=_loss())
        return plain, wide, 1
    plan = ki.mup(wide, base=_mlp(args.inputs, base_widths))
    # Both start from muP's weights: only the optimizer differs, not the numbers it
    # meets (tiny gradients can hit slow subnormal floats on a CPU in one model only).
    plain.set_weights(wide.get_weights())
    optimizer = plan.optimizer(make())
    wide.compile(optimizer=optimizer, loss=_loss())
    return plain, wide, len(set(optimizer.multipliers))


def _loss() -> Any:
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # the MLP ends in logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=512)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--depth", type=int, default=3, help="hidden layers of --width")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-apply", action="store_true", help="skip the bare apply")
    parser.add_argument("--threads", type=int, default=0, help="0: the backends' defaults")
    args = parser.parse_args()
    global keras, ki
    if args.threads:
        limit_threads(args.threads)
    import keras
    import numpy as np

    import keras_inits as ki

    backend = keras.backend.backend()
    __import__({"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}[backend])
    print(f"backend {backend}: {machine(backend)}")
    print(
        f"MLP {args.inputs} -> {args.width} x {args.depth} -> 10, batch {args.batch}, "
        f"threads {args.threads or 'default'}, medians of {args.repeats} alternated rounds "
        f"after {args.warmup} dropped"
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, args.inputs)).astype("float32")
    y = rng.integers(0, 10, args.batch).astype("int32")
    rows: list[list[str]] = []
    checks: list[Check] = []
    for name, make in _optimizers().items():
        plain, wide, groups = _pair(args, make)
        timing = time_pair(
            lambda wide=wide: wide.train_on_batch(x, y),
            lambda plain=plain: plain.train_on_batch(x, y),
            repeats=args.repeats,
            warmup=args.warmup,
        )
        case = f"{name}, {groups} groups"
        rows.append([backend, case, "train_on_batch", *_cells(timing)])
        checks.append(Check(f"{backend}: {name} train_on_batch", timing.ratio, TARGET))
        if args.no_apply:
            continue
        grads = [keras.ops.full(v.shape, 1e-3, dtype=v.dtype) for v in plain.trainable_variables]
        timing = time_pair(
            lambda wide=wide, grads=grads: _apply(wide, grads),
            lambda plain=plain, grads=grads: _apply(plain, grads),
            repeats=args.repeats,
            warmup=args.warmup,
        )
        rows.append([backend, case, "optimizer.apply (eager)", *_cells(timing)])
        checks.append(Check(f"{backend}: {name} optimizer.apply", timing.ratio, TARGET))
    # The noise floor of this run: two plain Adam models, timed against each other alike.
    first, second, _ = _pair(args, _optimizers()["Adam"], mup=False)
    steps = {"train_on_batch": lambda model: model.train_on_batch(x, y)}
    if not args.no_apply:
        grads = [keras.ops.full(v.shape, 1e-3, dtype=v.dtype) for v in first.trainable_variables]
        steps["optimizer.apply (eager)"] = lambda model, grads=grads: _apply(model, grads)
    for step_name, step in steps.items():
        timing = time_pair(
            lambda step=step: step(second),
            lambda step=step: step(first),
            repeats=args.repeats,
            warmup=args.warmup,
        )
        rows.append([backend, CONTROL, step_name, *_cells(timing)])
    print(
        markdown(["backend", "optimizer", "step", "plain ms", "muP ms", "muP / plain"], rows),
        flush=True,
    )
    print()
    print(markdown(["target", "measured", "limit", "verdict"], [c.row() for c in checks]))


def _apply(model: Any, grads: list[Any]) -> list[Any]:
    """One bare optimizer step; returns the new values, so that the clock waits for them.

    ``apply`` returns None, and JAX dispatches asynchronously: timed alone it
    would measure the dispatch, and its work would land in the next call's time.
    """
    model.optimizer.apply(grads, model.trainable_variables)
    return [variable.value for variable in model.trainable_variables]


def _cells(timing: Any) -> list[str]:
    return [f"{timing.b_ms:.2f}", f"{timing.a_ms:.2f}", f"{timing.ratio:.3f}x"]


if __name__ == "__main__":
    main()
