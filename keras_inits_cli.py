"""The ``keras-inits`` console script: a launcher that keeps ``keras-inits list`` fast.

Importing anything under ``keras_inits`` runs the package's ``__init__``,
which imports Keras, and Keras imports its backend: seconds for TensorFlow
or PyTorch. ``keras-inits list`` needs neither, so this module lives outside
the package: for ``list`` it loads the catalogue table
(``keras_inits/_catalogue.py``, which imports nothing but the standard
library) on its own and prints it. Every other command line goes to
``keras_inits.cli.main``. Never import Keras or ``keras_inits`` at the top
of this module.
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
    if argv == ["list"]:
        catalogue = _load_catalogue()
        if catalogue is not None:
            try:
                print(catalogue.format_catalogue())
            except BrokenPipeError:  # `keras-inits list | head`: the reader left
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    from keras_inits.cli import main as run

    return run(argv)


def _load_catalogue() -> ModuleType | None:
    """keras_inits/_catalogue.py as a module of its own, without the package's ``__init__``."""
    package = importlib.util.find_spec("keras_inits")  # finds it; does not import it
    if package is None or not package.submodule_search_locations:
        return None  # let the full command report the broken install
    path = os.path.join(next(iter(package.submodule_search_locations)), "_catalogue.py")
    name = "_keras_inits_catalogue"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses looks its module up by name
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.exit(main())
