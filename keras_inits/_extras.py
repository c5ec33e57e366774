"""Optional dependencies: import them late, and name the extra when one is missing.

The package itself needs only Keras and NumPy. Plotting needs matplotlib
(``keras-inits[plot]``) and the ``compare`` command needs scikit-learn's
bundled digits (``keras-inits[compare]``). This module is the one place that
turns a missing optional package into an error that says what to install;
it never imports an optional package at module import.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "import_optional"]


class MissingExtraError(ImportError):
    """An optional package is missing; the message names the extra to install."""


def import_optional(module: str, extra: str, purpose: str) -> ModuleType:
    """Imports ``module``, or raises MissingExtraError naming ``extra``.

    Example:
        >>> import_optional("math", "none", "testing").sqrt(4.0)
        2.0
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = module.split(".")[0]
        raise MissingExtraError(
            f"{purpose} needs the optional package {package!r}, which is not installed. "
            f"Install it with: pip install 'keras-inits[{extra}]'"
        ) from error
