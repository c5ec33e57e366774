"""The ``keras-inits`` command (also ``python -m keras_inits``).

    keras-inits list       every initializer name, ours and Keras's, with its math
    keras-inits compare    train one network per initializer and show what each does
    keras-inits reproduce  one paper's experiment on the digits: a figure and its numbers

``--backend`` picks the Keras backend. Keras fixes its backend when it is
first imported, and importing this package imports Keras, so when the
backend asked for is not the one loaded, the command runs itself again in a
fresh process with ``KERAS_BACKEND`` set before Keras is imported there.
(The ``keras-inits`` script starts in ``keras_inits_cli``, which answers
``list`` without importing Keras at all.)

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
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import keras

from keras_inits._catalogue import format_catalogue
from keras_inits._extras import MissingExtraError
from keras_inits._gain import activation_name
from keras_inits._registry import resolve
from keras_inits._validation import (
    check_non_negative,
    check_positive,
    check_positive_int,
    check_seed_range,
)
from keras_inits.diagnostics._compare import (
    ARCHS,
    CELLS,
    DEFAULT_INITIALIZERS,
    USER_MODEL,
    CompareConfig,
    CompareError,
    RunResult,
    check_model,
    format_results,
    load_data,
    run_compare,
    split_model_level,
)
from keras_inits.diagnostics._stats import format_stats

__all__ = ["main"]

BACKENDS = ("jax", "tensorflow", "torch")
PROG = "keras-inits"


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
    args = _parser().parse_args(argv)
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Weight initializers for Keras 3, and why they matter."
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="every initializer name, with its formula and reference")
    compare = commands.add_parser(
        "compare",
        help="train one network per initializer on the digits data and compare",
        description=(
            "Builds the same network (an MLP, a CNN, an RNN or your own --model) once "
            "per initializer, reports its layer stats at initialization, trains it "
            "with SGD with momentum on scikit-learn's bundled digits (or your --data) "
            "and reports the loss curve and accuracies."
        ),
    )
    compare.add_argument(
        "--init",
        action="append",
        metavar="NAME",
        type=_initializer_name,
        help=(
            "an initializer name; 'lsuv' (Keras's default, then keras_inits.lsuv); "
            "'reinitialize' or NAME+reinitialize (Keras's default or NAME, then "
            "keras_inits.reinitialize: true fans); repeatable "
            f"(default: {' '.join(DEFAULT_INITIALIZERS)})"
        ),
    )
    compare.add_argument(
        "--arch",
        choices=ARCHS,
        help="the network: mlp (Dense), cnn (3x3 Conv2D), rnn (recurrent) (default: mlp)",
    )
    compare.add_argument(
        "--cell", choices=CELLS, help="the rnn's recurrent layer: LSTM, GRU, SimpleRNN (lstm)"
    )
    compare.add_argument(
        "--recurrent-init",
        metavar="NAME",
        type=_recurrent_name,
        help="the rnn's recurrent kernels' initializer (orthogonal)",
    )
    compare.add_argument(
        "--model",
        metavar="MODULE:FUNCTION",
        help=(
            "your model: FUNCTION(initializer) returns a keras.Model; MODULE is a module "
            "name (the current directory first) or a path to a .py file"
        ),
    )
    compare.add_argument(
        "--data",
        metavar="MODULE:FUNCTION",
        help="your data: FUNCTION() returns (x, y) or ((x_train, y_train), (x_val, y_val))",
    )
    compare.add_argument(
        "--activation",
        type=_activation,
        help="hidden activation (sigmoid; tanh for rnn)",
    )
    options: list[tuple[str, str, Callable[[str], Any], Callable[..., Any], Any, str]] = [
        ("--depth", "depth", int, check_positive_int, None, "hidden layers (5)"),
        ("--width", "width", int, check_positive_int, None, "units or channels per layer (128)"),
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
            help=meaning if default is None else f"{meaning} ({default})",
        )
    compare.add_argument("--backend", choices=BACKENDS, help="Keras backend (default: current)")
    compare.add_argument(
        "--json", metavar="PATH", help="write the results as JSON ('-': to stdout, text to stderr)"
    )
    compare.add_argument(
        "--plot", metavar="PATH", help="write a plot of the results (.png, .pdf, .svg, ...)"
    )
    compare.set_defaults(parser=compare)
    _add_reproduce(commands)
    return parser


def _version() -> str:
    from keras_inits import __version__

    return f"{PROG} {__version__} (keras {keras.__version__})"


def _initializer_name(value: str) -> str:
    # lsuv and reinitialize run on the built model: the base must be a name
    base, _ = split_model_level(value)
    try:
        resolve(base, "init")
    except (ValueError, TypeError) as error:  # received: the whole value, not its base
        message = str(error).replace(f"Received: init={base!r}", f"Received: init={value!r}")
        raise argparse.ArgumentTypeError(message) from None
    return value


def _recurrent_name(value: str) -> str:
    try:
        resolve(value, "recurrent_init")
    except (ValueError, TypeError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def _activation(value: str) -> str:
    try:
        activation_name(value)
    except (ValueError, TypeError) as error:
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


def _add_reproduce(commands: Any) -> None:
    reproduce = commands.add_parser(
        "reproduce",
        help="run one paper's experiment on the digits data: a figure and a JSON",
        description=(
            "Runs one documented experiment that checks a paper's claim on scikit-learn's "
            "bundled digits, and writes OUT/NAME.png (the figure) and OUT/NAME.json (the "
            "numbers). --list shows the experiments; docs/gallery/ reports the full runs."
        ),
    )
    reproduce.add_argument(
        "name", nargs="?", metavar="NAME", type=_experiment_name, help="the experiment to run"
    )
    reproduce.add_argument("--list", action="store_true", help="list the experiments and exit")
    reproduce.add_argument(
        "--quick", action="store_true", help="the small size (seconds), not the full one (minutes)"
    )
    reproduce.add_argument(
        "--out", metavar="DIR", default="out/reproduce", help="folder to write into (out/reproduce)"
    )
    reproduce.add_argument(
        "--seed",
        type=_argument("seed", int, check_seed_range),
        default=0,
        help="data split, weights and batch order (0)",
    )
    reproduce.add_argument("--backend", choices=BACKENDS, help="Keras backend (default: current)")
    reproduce.set_defaults(parser=reproduce)


def _experiment_name(value: str) -> str:
    from keras_inits.diagnostics._gallery import check_experiment

    try:
        return check_experiment(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _reproduce(args: argparse.Namespace, argv: list[str]) -> int:
    from keras_inits.diagnostics._gallery import check_extras, format_experiments

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
