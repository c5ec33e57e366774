"""The ``keras-inits`` console script: a launcher that answers without Keras where it can.

Importing anything under ``keras_inits`` runs the package's ``__init__``,
which imports Keras, and Keras imports its backend: seconds for TensorFlow
or PyTorch. ``--help`` (of the command and of each subcommand),
``--version``, ``list`` and ``reproduce --list`` need neither, so this
module lives outside the package: it loads the parser
(``keras_inits/_cli_parser.py``, which imports nothing but the standard
library at its top) on its own, by path, and lets it answer those. Every
other command line goes to ``keras_inits.cli.main``. Never import Keras or
``keras_inits`` at the top of this module.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _load("_cli_parser")
    if parser is not None:
        try:
            status = parser.answer_without_keras(argv)  # --help, --version: SystemExit
        except BrokenPipeError:  # `keras-inits list | head`: the reader left
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except Exception:  # the full command reports it, in its own words
            status = None
        if status is not None:
            return int(status)
    from keras_inits.cli import main as run

    return run(argv)


def _load(name: str) -> ModuleType | None:
    """keras_inits/NAME.py as a module of its own, without the package's ``__init__``."""
    package = importlib.util.find_spec("keras_inits")  # finds it; does not import it
    if package is None or not package.submodule_search_locations:
        return None  # let the full command report the broken install
    path = os.path.join(next(iter(package.submodule_search_locations)), f"{name}.py")
    module_name = f"_keras_inits{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses looks its module up by name
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.exit(main())
