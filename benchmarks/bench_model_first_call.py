"""The first model-level call on a fresh model against the model's build time.

    KERAS_BACKEND=jax python benchmarks/bench_model_first_call.py [--model MobileNetV2]
        [--first reinitialize|torch_defaults]

Prints, in one process: the build time of ``keras.applications.<model>(weights=None)``,
then the time of the first model-level call on it (``--first``), of the other
one, and of a second ``reinitialize``, each with its ratio to the build. The
first call pays for whatever it compiles (JAX compiles one program per draw
size); issue 19's bound is 0.5 x build. Run it once per ``--first``: the
second call reuses the first one's programs.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="MobileNetV2")
    parser.add_argument(
        "--first", default="reinitialize", choices=("reinitialize", "torch_defaults")
    )
    args = parser.parse_args()
    import keras

    import keras_inits as ki

    start = time.perf_counter()
    model = getattr(keras.applications, args.model)(weights=None)
    build = time.perf_counter() - start
    rows = [("build", build)]
    calls = [("reinitialize", ki.reinitialize), ("torch_defaults", ki.torch_defaults)]
    if args.first == "torch_defaults":
        calls.reverse()
    for name, function in calls:
        start = time.perf_counter()
        function(model, seed=0)
        rows.append((f"{'first' if not rows[1:] else 'then'} {name}", time.perf_counter() - start))
    start = time.perf_counter()
    ki.reinitialize(model, seed=1)
    rows.append(("second reinitialize", time.perf_counter() - start))
    print(f"{args.model} on {keras.backend.backend()}")
    for label, seconds in rows:
        print(f"{label:22s} {seconds:7.2f} s  {seconds / build:5.2f} x build")


if __name__ == "__main__":
    main()
