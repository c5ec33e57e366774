"""The ``keras-inits`` command line's parser, and the answers that need no Keras.

``--help`` (of the command and of every subcommand), ``--version``, ``list``
and ``reproduce --list`` print text that is known without Keras, so the
``keras_inits_cli`` launcher answers them from this module alone, in
hundredths of a second rather than the seconds that importing Keras and a
backend takes. For that this module imports nothing but the standard library
at its top, and the launcher loads it by path, without the package's
``__init__`` (which imports Keras). ``keras_inits.cli`` builds its parser
here too, so the two cannot disagree.

The argument types that must check a value against the package
(``--init`` names, numbers, experiment names) import what they need when
argparse calls them. The few facts the help text and the choices show
(the default initializers, the architectures, the cells, the experiments'
titles) are copied here from ``diagnostics``, which imports Keras;
tests/test_cli.py holds each copy equal to its source.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

__all__ = [
    "ARCHS",
    "BACKENDS",
    "CELLS",
    "DEFAULT_INITIALIZERS",
    "EXPERIMENT_TITLES",
    "PROG",
    "answer_without_keras",
    "build_parser",
    "format_experiments",
    "version",
]

PROG = "keras-inits"
BACKENDS = ("jax", "tensorflow", "torch")
# Copies of diagnostics._compare's DEFAULT_INITIALIZERS, ARCHS and CELLS.
DEFAULT_INITIALIZERS = (
    "small_uniform",
    "small_normal",
    "glorot_normal",
    "he_normal",
    "sigmoid_normal",
)
ARCHS = ("mlp", "cnn", "rnn")
CELLS = ("lstm", "gru", "simple")
# Each experiment of diagnostics._gallery.EXPERIMENTS: its name and title.
EXPERIMENT_TITLES = {
    "glorot2010": "Glorot & Bengio 2010: the top sigmoid layer saturates under the standard init",
    "saxe2014": (
        "Saxe et al. 2014: deep linear nets learn in depth-independent time from orthogonal init"
    ),
    "xiao2018": "Xiao et al. 2018: a deep vanilla tanh CNN trains from delta-orthogonal init",
    "he2015": "He et al. 2015: a 30-layer plain ReLU MLP trains with He init, stalls with Xavier",
    "mishkin2016": "Mishkin & Matas 2016: LSUV trains a deep thin ReLU MLP its base init cannot",
    "zhao2022": (
        "Zhao et al. 2022: deterministic ZerO init trains a residual MLP like a random init"
    ),
    "zhang2019": "Zhang et al. 2019: Fixup trains a deep residual MLP without normalization",
    "meng2024": "Meng et al. 2024: a PiSSA adapter fine-tunes faster than LoRA's default init",
    "yang2022": "Yang et al. 2022: under muP the best learning rate holds as an MLP widens",
    "sigmoid": "The seeds' rule: a 5-layer sigmoid MLP needs Var(W) = 4 / fan_in",
}

_HERE = os.path.dirname(os.path.abspath(__file__))


def _sibling(name: str) -> ModuleType:
    """This package's module ``name`` loaded by path (it must import only the standard library)."""
    module_name = f"_keras_inits{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, os.path.join(_HERE, f"{name}.py"))
    if spec is None or spec.loader is None:  # pragma: no cover - a broken install
        raise ImportError(f"keras_inits/{name}.py cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses looks its module up by name
    spec.loader.exec_module(module)
    return module


def _package_version() -> str:
    """``keras_inits.__version__``, read from ``__init__.py`` as setuptools reads it, statically."""
    with open(os.path.join(_HERE, "__init__.py"), encoding="utf-8") as file:
        tree = ast.parse(file.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__version__" for target in node.targets
        ):
            value: str = ast.literal_eval(node.value)
            return value
    return "unknown"  # pragma: no cover - __init__.py always writes it


def _keras_version() -> str:
    """The installed Keras's version, from its distribution's metadata (Keras is not imported)."""
    for distribution in ("keras", "keras-nightly"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def version() -> str:
    """What ``--version`` prints: this package's version and the installed Keras's."""
    return f"{PROG} {_package_version()} (keras {_keras_version()})"


def format_experiments() -> str:
    """The experiments as a table: name and title (``diagnostics`` prints the same)."""
    header = ("experiment", "what it shows")
    rows = [header, *sorted(EXPERIMENT_TITLES.items())]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def answer_without_keras(argv: Sequence[str]) -> int | None:
    """Answers ``argv`` if it needs no Keras and returns the exit status; else None.

    ``--help`` and ``--version`` print and exit (argparse's SystemExit), as
    do usage errors; ``list`` and ``reproduce --list`` print here. Any other
    command line returns None: ``keras_inits.cli.main`` runs it. An argument
    type that checks a value against the package imports it (and Keras).
    """
    args = build_parser().parse_args(list(argv))
    if args.command == "list":
        print(_sibling("_catalogue").format_catalogue())
        return 0
    if args.command == "reproduce" and args.list:
        if args.name:
            args.parser.error(f"argument --list: takes no NAME. Received: name={args.name!r}")
        print(format_experiments())
        return 0
    return None


# ----- argument types: each imports the package only when argparse calls it


def _initializer_name(value: str) -> str:
    from keras_inits._registry import resolve
    from keras_inits.diagnostics._compare import split_model_level

    # lsuv and reinitialize run on the built model: the base must be a name
    base, _ = split_model_level(value)
    try:
        resolve(base, "init")
    except (ValueError, TypeError) as error:  # received: the whole value, not its base
        message = str(error).replace(f"Received: init={base!r}", f"Received: init={value!r}")
        raise argparse.ArgumentTypeError(message) from None
    return value


def _recurrent_name(value: str) -> str:
    from keras_inits._registry import resolve

    try:
        resolve(value, "recurrent_init")
    except (ValueError, TypeError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def _activation(value: str) -> str:
    from keras_inits._gain import activation_name

    try:
        activation_name(value)
    except (ValueError, TypeError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def _experiment_name(value: str) -> str:
    from keras_inits.diagnostics._gallery import check_experiment

    try:
        return check_experiment(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _argument(name: str, convert: Callable[[str], Any], check: str) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text, then ``keras_inits._validation``'s ``check``."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            kind = "an int" if convert is int else "a number"
            raise argparse.ArgumentTypeError(
                f"`{name}` must be {kind}. Received: {text!r}"
            ) from None
        from keras_inits import _validation

        try:
            return getattr(_validation, check)(name, value)
        except (ValueError, TypeError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


# ----- the parser


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: ``list``, ``compare`` and ``reproduce``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Weight initializers for Keras 3, and why they matter."
    )
    parser.add_argument("--version", action="version", version=version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listing = commands.add_parser(
        "list", help="every initializer name, with its formula and reference"
    )
    listing.set_defaults(parser=listing)
    _add_compare(commands)
    _add_reproduce(commands)
    return parser


def _add_compare(commands: Any) -> None:
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
    options: list[tuple[str, str, Callable[[str], Any], str, Any, str]] = [
        ("--depth", "depth", int, "check_positive_int", None, "hidden layers (5)"),
        ("--width", "width", int, "check_positive_int", None, "units or channels per layer (128)"),
        ("--lr", "lr", float, "check_positive", 0.1, "SGD learning rate"),
        ("--momentum", "momentum", float, "check_non_negative", 0.9, "SGD momentum"),
        ("--epochs", "epochs", int, "check_positive_int", 20, "epochs"),
        ("--batch-size", "batch_size", int, "check_positive_int", 64, "batch size"),
        ("--seed", "seed", int, "check_seed_range", 0, "data split, output layer, init seed"),
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
        "--json",
        metavar="PATH",
        help=(
            "write the results as JSON, creating missing folders ('-': to stdout, text to stderr)"
        ),
    )
    compare.add_argument(
        "--plot",
        metavar="PATH",
        help="write a plot of the results (.png, .pdf, .svg, ...), creating missing folders",
    )
    compare.set_defaults(parser=compare)


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
        "--out",
        metavar="DIR",
        default="out/reproduce",
        help="folder to write into, created if missing (out/reproduce)",
    )
    reproduce.add_argument(
        "--seed",
        type=_argument("seed", int, "check_seed_range"),
        default=0,
        help="data split, weights and batch order (0)",
    )
    reproduce.add_argument("--backend", choices=BACKENDS, help="Keras backend (default: current)")
    reproduce.set_defaults(parser=reproduce)
