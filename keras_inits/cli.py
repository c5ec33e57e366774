"""The ``keras-inits`` command (also ``python -m keras_inits``).

    keras-inits list       every initializer name, ours and Keras's, with its math
    keras-inits compare    train one MLP per initializer and show what each does

``--backend`` picks the Keras backend. Keras fixes its backend when it is
first imported, and importing this package imports Keras, so when the
backend asked for is not the one loaded, the command runs itself again in a
fresh process with ``KERAS_BACKEND`` set before Keras is imported there.
Usage errors exit with status 2 (argparse's convention), a missing optional
package with status 1 and a message naming the extra to install.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import keras

from keras_inits._catalogue import catalogue
from keras_inits._extras import MissingExtraError, import_optional
from keras_inits._registry import get
from keras_inits._validation import (
    check_non_negative,
    check_positive,
    check_positive_int,
    check_seed_range,
)
from keras_inits.diagnostics._compare import (
    DEFAULT_INITIALIZERS,
    LSUV,
    CompareConfig,
    RunResult,
    format_results,
    run_compare,
)
from keras_inits.diagnostics._stats import format_stats

__all__ = ["main"]

BACKENDS = ("jax", "tensorflow", "torch")
PROG = "keras-inits"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        print(_format_catalogue())
        return 0
    if args.backend and args.backend != keras.backend.backend():
        return _rerun_with_backend(args.backend, argv)
    try:
        config = CompareConfig(
            initializers=tuple(args.init or DEFAULT_INITIALIZERS),
            activation=args.activation,
            depth=args.depth,
            width=args.width,
            lr=args.lr,
            momentum=args.momentum,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
        )
    except ValueError as error:  # an unknown --init or --activation: a usage error
        parser.error(str(error))
    try:
        if args.plot:  # before minutes of training, not after
            import_optional("matplotlib.figure", "plot", "--plot")
        return _compare(config, args)
    except MissingExtraError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1


def _compare(config: CompareConfig, args: argparse.Namespace) -> int:
    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}: "
        f"{config.depth} hidden {config.activation} layers of {config.width}, "
        f"SGD lr {config.lr} momentum {config.momentum}, batch {config.batch_size}, "
        f"{config.epochs} epochs, seed {config.seed}",
        flush=True,
    )
    progress = _Progress(len(config.initializers) * config.epochs, sys.stderr)
    results = run_compare(config, on_epoch=progress.update)
    progress.close()
    for result in results:
        print(f"\n{result.label}: layer stats at initialization")
        print(textwrap.indent(format_stats(result.layers), "  "))
    print("\nAfter training:")
    print(format_results(results))
    if args.json:
        _write_json(args.json, config, results)
        print(f"\nwrote {args.json}")
    if args.plot:
        from keras_inits.diagnostics._plots import plot_results

        title = f"{config.depth} x {config.width} {config.activation} MLP on digits"
        plot_results(results, args.plot, title=f"{title} ({keras.backend.backend()})")
        print(f"wrote {args.plot}")
    return 0


def _write_json(path: str, config: CompareConfig, results: Sequence[RunResult]) -> None:
    document = {
        "config": {
            **config.to_dict(),
            "backend": keras.backend.backend(),
            "keras": keras.__version__,
        },
        "results": [result.to_dict() for result in results],
    }
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        json.dump(document, file, indent=2, allow_nan=False)
        file.write("\n")


def _rerun_with_backend(backend: str, argv: list[str]) -> int:
    env = {**os.environ, "KERAS_BACKEND": backend}
    return subprocess.call([sys.executable, "-m", "keras_inits", *argv], env=env)


def _format_catalogue() -> str:
    lines = []
    for owner, title in (("keras_inits", "keras_inits"), ("keras", "Keras built-ins")):
        lines.append(f"{title}:")
        for entry in (e for e in catalogue() if e.owner == owner):
            lines.append(f"  {entry.name:<30} {entry.formula}")
            if entry.reference != "-":
                lines.append(f"  {'':<30} ref: {entry.reference}")
        lines.append("")
    lines.append("Each also resolves by class name; ours as 'keras_inits>ClassName' too.")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Weight initializers for Keras 3, and why they matter."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="every initializer name, with its formula and reference")
    compare = commands.add_parser(
        "compare",
        help="train one MLP per initializer on the digits data and compare",
        description=(
            "Builds the same MLP once per initializer, reports its layer stats at "
            "initialization, trains it with SGD with momentum on scikit-learn's "
            "bundled digits and reports the loss curve and accuracies."
        ),
    )
    compare.add_argument(
        "--init",
        action="append",
        metavar="NAME",
        type=_initializer_name,
        help=(
            "an initializer name, or 'lsuv' (Keras's default, then keras_inits.lsuv), "
            f"repeatable (default: {' '.join(DEFAULT_INITIALIZERS)})"
        ),
    )
    compare.add_argument("--activation", default="sigmoid", help="hidden activation (sigmoid)")
    options: list[tuple[str, str, Callable[[str], Any], Callable[..., Any], float, str]] = [
        ("--depth", "depth", int, check_positive_int, 5, "hidden layers"),
        ("--width", "width", int, check_positive_int, 128, "units per layer"),
        ("--lr", "lr", float, check_positive, 0.1, "SGD learning rate"),
        ("--momentum", "momentum", float, check_non_negative, 0.9, "SGD momentum"),
        ("--epochs", "epochs", int, check_positive_int, 20, "epochs"),
        ("--batch-size", "batch_size", int, check_positive_int, 64, "batch size"),
        ("--seed", "seed", int, check_seed_range, 0, "data split, output layer, init seed"),
    ]
    for flag, name, convert, check, default, meaning in options:
        compare.add_argument(
            flag,
            type=_argument(name, convert, check),
            default=default,
            help=f"{meaning} ({default})",
        )
    compare.add_argument("--backend", choices=BACKENDS, help="Keras backend (default: current)")
    compare.add_argument("--json", metavar="PATH", help="write the results as JSON")
    compare.add_argument("--plot", metavar="PATH", help="write a PNG of the results")
    return parser


def _initializer_name(value: str) -> str:
    if value == LSUV:  # not an initializer: lsuv runs on the built model
        return value
    try:
        get(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def _argument(name: str, convert: Callable[[str], Any], check: Callable[..., Any]) -> Any:
    """An argparse type: ``convert`` the text, then the package's own ``check``."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            kind = "an int" if convert is int else "a number"
            raise argparse.ArgumentTypeError(
                f"`{name}` must be {kind}. Received: {text!r}"
            ) from None
        try:
            return check(name, value)
        except (ValueError, TypeError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


class _Progress:
    """A one-line progress bar over every epoch of every run, on ``stream``.

    On a terminal it redraws in place; elsewhere (a log, CI) it prints a line
    when each run ends, so logs stay short.
    """

    def __init__(self, total: int, stream: TextIO, width: int = 30) -> None:
        self._total, self._stream, self._width = total, stream, width
        self._done = 0
        self._start = time.perf_counter()
        self._tty = stream.isatty()

    def update(self, run: int, initializer: str, epoch: int, loss: float) -> None:
        self._done += 1
        filled = round(self._width * self._done / self._total)
        bar = "#" * filled + "-" * (self._width - filled)
        elapsed = time.perf_counter() - self._start
        line = (
            f"[{bar}] {self._done}/{self._total} epochs  run {run + 1} {initializer}  "
            f"epoch {epoch} loss {loss:.4f}  {elapsed:.0f}s"
        )
        if self._tty:
            self._stream.write("\r" + line[:150].ljust(150))
        elif self._done % max(1, self._total // 10) == 0 or self._done == self._total:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()
