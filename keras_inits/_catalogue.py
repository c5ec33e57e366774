"""One catalogue of every initializer name a layer accepts: ours and Keras's.

Our entries are read from the classes themselves (the first line of the
docstring states the distribution, its ``Reference:`` section the source),
so a newly registered class appears here with no second place to edit.
Keras's built-ins keep their Keras meaning; their formulas are in the table
below, and a name that a newer Keras adds still appears, pointing at Keras's
documentation. This module never imports a backend.
"""

from __future__ import annotations

import dataclasses
import inspect

import keras

from keras_inits._registry import CLASSES, keras_names, string_name

__all__ = ["Entry", "catalogue"]


@dataclasses.dataclass(frozen=True)
class Entry:
    """One string name: whose it is, the class it resolves to, its math and source."""

    name: str
    owner: str  # "keras_inits" or "keras"
    class_name: str
    formula: str
    reference: str


# Keras's own initializers, by their snake_case name: (formula, reference).
_KERAS = {
    "constant": ("every weight = value", "-"),
    "zeros": ("every weight = 0: symmetry is never broken", "-"),
    "ones": ("every weight = 1: symmetry is never broken", "-"),
    "random_normal": ("N(mean, stddev^2), default N(0, 0.05^2)", "-"),
    "random_uniform": ("U(minval, maxval), default U(-0.05, 0.05)", "-"),
    "truncated_normal": ("N(mean, stddev^2) cut at 2 stddev, default stddev 0.05", "-"),
    "variance_scaling": (
        "Var = scale / fan (mode), truncated normal by default",
        "He et al. 2015",
    ),
    "glorot_normal": (
        "truncated normal, std sqrt(2 / (fan_in + fan_out))",
        "Glorot & Bengio 2010",
    ),
    "glorot_uniform": (
        "U(+-sqrt(6 / (fan_in + fan_out))), Keras's default",
        "Glorot & Bengio 2010",
    ),
    "he_normal": ("truncated normal, std sqrt(2 / fan_in)", "He et al. 2015"),
    "he_uniform": ("U(+-sqrt(6 / fan_in))", "He et al. 2015"),
    "lecun_normal": ("truncated normal, std sqrt(1 / fan_in)", "LeCun et al. 1998"),
    "lecun_uniform": ("U(+-sqrt(3 / fan_in))", "LeCun et al. 1998"),
    "orthogonal": (
        "a random orthogonal matrix (QR of a normal one), times gain",
        "Saxe et al. 2014",
    ),
    "identity": ("the identity matrix times gain (2-D kernels only)", "-"),
    "stft": ("short-time Fourier transform filters (for STFT layers)", "-"),
    "normal": ("alias of random_normal", "-"),
    "uniform": ("alias of random_uniform", "-"),
    "one": ("alias of ones", "-"),
    "zero": ("alias of zeros", "-"),
}


def catalogue() -> list[Entry]:
    """Every initializer name, ours first (as ``names()`` gives them), then Keras's.

    Example:
        >>> entries = {entry.name: entry for entry in catalogue()}
        >>> entries["sigmoid_normal"].formula
        'The sigmoid initializer: W ~ N(0, 4 / fan_in), untruncated.'
        >>> entries["glorot_normal"].owner
        'keras'
    """
    ours = [
        Entry(string_name(cls), "keras_inits", cls.__name__, _summary(cls), _reference(cls))
        for cls in sorted(CLASSES, key=string_name)
    ]
    theirs = []
    for name in keras_names():
        # The class a name resolves to; "constant" cannot be built without a value.
        cls = getattr(keras.initializers, name, None) or type(keras.initializers.get(name))
        formula, reference = _KERAS.get(name, (f"see keras.initializers.{cls.__name__}", "-"))
        theirs.append(Entry(name, "keras", cls.__name__, formula, reference))
    return ours + theirs


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return " ".join(doc.split("\n\n")[0].split()).replace("``", "")


def _reference(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    _, found, rest = doc.partition("Reference:")
    if not found:
        return "-"
    first = rest.strip().split("\n\n")[0]
    return " ".join(first.split()).replace("``", "")
