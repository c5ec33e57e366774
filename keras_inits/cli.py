"""The ``keras-inits`` command (also ``python -m keras_inits``).

    keras-inits list       every initializer name, ours and Keras's, with its math
    keras-inits compare    train one network per initializer and show what each does
    keras-inits reproduce  one paper's experiment on the digits: a figure and its numbers

``--backend`` picks the Keras backend. Keras fixes its backend when it is
first imported, and importing this package imports Keras, so when the
backend asked for is not the one loaded, the command runs itself again in a
fresh process with ``KERAS_BACKEND`` set before Keras is imported there.
(The ``keras-inits`` script starts in ``keras_inits_cli``, which answers
``--help``, ``--version``, ``list`` and ``reproduce --list`` without
importing Keras at all; the parser lives in ``_cli_parser`` for that.)

Everything a command line can get wrong is refused before any training:
unknown names, bad numbers, ``--json``/``--plot`` destinations that cannot
be written, image formats matplotlib cannot write, ``--init`` names that
cannot fill the network's hidden kernels (``--recurrent-init``: its
recurrent kernels), and a ``--model`` or ``--data`` that cannot be imported,
returns the wrong thing or does not fit (the model is built and tried on a
few samples first). Usage errors exit with status 2
and argparse's one-line message naming the flag; a missing optional package
or a failure while running exits with status 1 and a one-line message. No
traceback reaches the user. ``--json -`` writes the JSON to standard output
and everything else (the header, the tables, the progress bar) to standard
error, so standard output is exactly one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from typing import Any, TextIO

import keras

from keras_inits._catalogue import format_catalogue
from keras_inits._cli_parser import (
    BACKENDS,
    PROG,
    build_parser,
    format_experiments,
)
from keras_inits._extras import MissingExtraError
from keras_inits.diagnostics._compare import (
    DEFAULT_INITIALIZERS,
    USER_MODEL,
    CompareConfig,
    CompareError,
    RunResult,
    check_model,
    format_results,
    load_data,
    run_compare,
)
from keras_inits.diagnostics._stats import format_stats

__all__ = ["BACKENDS", "main"]

_parser = build_parser  # the parser lives in _cli_parser, which the launcher reads without Keras


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `keras-inits list | head`: the reader left; not an error
        _silence_stdout()
        return 0
    except MissingExtraError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # the CLI boundary: a message, never a traceback
        print(f"{PROG}: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        print(format_catalogue())
        return 0
    if args.command == "reproduce":
        return _reproduce(args, argv)
    if args.backend and args.backend != keras.backend.backend():
        return _rerun_with_backend(args.backend, argv)
    parser = args.parser  # compare's own, so usage errors show its usage line
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
            arch=args.arch,
            cell=args.cell,
            recurrent_init=args.recurrent_init,
            model=args.model,
            data=args.data,
        )
    except CompareError as error:
        _flag_error(parser, error)
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    # Before minutes of training, not after: where the results go, the data,
    # and what each initializer does with the network's kernels.
    if args.json:
        _check_destination(parser, "--json", args.json)
    if args.plot:
        from keras_inits.diagnostics._plots import check_plot_path

        try:
            check_plot_path(args.plot, "plot")  # needs matplotlib: a missing one exits 1
        except ValueError as error:
            parser.error(f"argument --plot: {error}")
        _check_destination(parser, "--plot", args.plot)
    data = None
    try:
        if config.model is not None or config.data is not None:
            data = load_data(config)  # once: run_compare gets it
        check_model(config, data, init_argument="init")
    except CompareError as error:
        _flag_error(parser, error)
    return _compare(config, args, data)


def _flag_error(parser: argparse.ArgumentParser, error: CompareError) -> None:
    """A usage error naming the flag of the setting ``error`` is about."""
    parser.error(f"argument --{error.argument.replace('_', '-')}: {error}")


def _check_destination(parser: argparse.ArgumentParser, flag: str, path: str) -> None:
    """A usage error unless ``path`` is a file this process can create or overwrite.

    Tried for real rather than judged by permission bits (which say yes to
    root, and know nothing of read-only or virtual file systems): an existing
    file is opened for appending (its contents untouched), a new one is
    created, with its missing folders, and removed again.
    """
    name = flag.lstrip("-")
    if path == "-" and flag == "--json":
        return
    received = f"Received: {name}={path!r}"
    if os.path.isdir(path):
        parser.error(f"argument {flag}: `{name}` must be a file path, not a directory. {received}")
    _check_folders_creatable(parser, flag, os.path.dirname(os.path.abspath(path)), received)
    existed = os.path.exists(path)
    try:
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
        if not existed:
            os.remove(path)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        parser.error(
            f"argument {flag}: `{name}` must be a file this user can write ({reason}). {received}"
        )


def _check_folders_creatable(
    parser: argparse.ArgumentParser, flag: str, folder: str, received: str
) -> None:
    """A usage error if ``folder``'s nearest existing ancestor (or itself) is a file."""
    while not os.path.exists(folder):  # missing folders are created: find the nearest one
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        parser.error(
            f"argument {flag}: `{flag.lstrip('-')}` must be a path whose folders can be "
            f"created; {folder!r} is a file. {received}"
        )


def _silence_stdout() -> None:
    """Points stdout at /dev/null, so Python's exit flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _compare(config: CompareConfig, args: argparse.Namespace, data: Any = None) -> int:
    # With --json -, stdout carries the JSON alone; the text for people goes to stderr.
    out = sys.stderr if args.json == "-" else sys.stdout
    network, title = _describe_network(config)
    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}: {network}, "
        f"SGD lr {config.lr} momentum {config.momentum}, batch {config.batch_size}, "
        f"{config.epochs} epochs, seed {config.seed}",
        file=out,
        flush=True,
    )
    progress = _Progress(len(config.initializers) * config.epochs, sys.stderr)
    if data is None:
        results = run_compare(config, on_epoch=progress.update)
    else:
        results = run_compare(config, on_epoch=progress.update, data=data)
    progress.close()
    for result in results:
        print(f"\n{result.label}: layer stats at initialization", file=out)
        print(textwrap.indent(format_stats(result.layers), "  "), file=out)
    print("\nAfter training:", file=out)
    print(format_results(results), file=out)
    if args.json:
        _write_json(args.json, config, results)
        if args.json != "-":
            print(f"\nwrote {args.json}", file=out)
    if args.plot:
        from keras_inits.diagnostics._plots import plot_results

        plot_results(results, args.plot, title=f"{title} ({keras.backend.backend()})")
        print(f"wrote {args.plot}", file=out)
    return 0


def _describe_network(config: CompareConfig) -> tuple[str, str]:
    """The header line's words for the network, and the plot's title."""
    source = "digits" if config.data is None else str(config.data)
    if config.arch == USER_MODEL:
        name = config.model if isinstance(config.model, str) else "model"
        network = f"model {name}"
        title = f"{name} on {source}"
    elif config.arch == "cnn":
        network = (
            f"{config.depth} hidden {config.activation} 3x3 conv layers of {config.width} channels"
        )
        title = f"{config.depth} x {config.width} {config.activation} CNN on {source}"
    elif config.arch == "rnn":
        network = (
            f"{config.depth} hidden {config.cell} layers of {config.width} "
            f"({config.activation}, recurrent init {config.recurrent_init})"
        )
        title = f"{config.depth} x {config.width} {config.cell} RNN on {source}"
    else:  # mlp: the words it has always had
        network = f"{config.depth} hidden {config.activation} layers of {config.width}"
        title = f"{config.depth} x {config.width} {config.activation} MLP on {source}"
    if config.data is not None:
        network += f", data {config.data}"
    return network, title


def _write_json(path: str, config: CompareConfig, results: Sequence[RunResult]) -> None:
    document = {
        "config": {
            **config.to_dict(),
            "backend": keras.backend.backend(),
            "keras": keras.__version__,
        },
        "results": [result.to_dict() for result in results],
    }
    if path == "-":
        json.dump(document, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        json.dump(document, file, indent=2, allow_nan=False)
        file.write("\n")


def _rerun_with_backend(backend: str, argv: list[str]) -> int:
    env = {**os.environ, "KERAS_BACKEND": backend}
    return subprocess.call([sys.executable, "-m", "keras_inits", *argv], env=env)


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


def _reproduce(args: argparse.Namespace, argv: list[str]) -> int:
    from keras_inits.diagnostics._gallery import check_extras

    parser = args.parser
    if args.list:
        if args.name:
            parser.error(f"argument --list: takes no NAME. Received: name={args.name!r}")
        print(format_experiments())
        return 0
    if args.name is None:
        parser.error(
            "argument NAME: an experiment name is required (or --list to see them). "
            "Received: name=None"
        )
    _check_folder(parser, "--out", args.out)
    check_extras()  # scikit-learn or matplotlib missing: exit 1 before the work
    if args.backend and args.backend != keras.backend.backend():
        return _rerun_with_backend(args.backend, argv)
    from keras_inits.diagnostics._gallery import format_summary, run_experiment

    size = "quick" if args.quick else "full"
    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}: "
        f"reproduce {args.name} ({size} size, seed {args.seed})",
        flush=True,
    )
    document = run_experiment(args.name, args.out, quick=args.quick, seed=args.seed)
    print(format_summary(document))
    print(f"\n{document['wall_s']} s; wrote {os.path.join(args.out, args.name)}.json and .png")
    return 0


def _check_folder(parser: argparse.ArgumentParser, flag: str, path: str) -> None:
    """A usage error unless ``path`` is a folder this process can create and write in."""
    name = flag.lstrip("-")
    received = f"Received: {name}={path!r}"
    if os.path.exists(path) and not os.path.isdir(path):
        parser.error(f"argument {flag}: `{name}` must be a folder, not a file. {received}")
    _check_folders_creatable(parser, flag, os.path.abspath(path), received)
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".keras-inits-{os.getpid()}")
        with open(probe, "w", encoding="utf-8"):
            pass
        os.remove(probe)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        parser.error(
            f"argument {flag}: `{name}` must be a folder this user can write ({reason}). {received}"
        )
