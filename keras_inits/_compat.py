"""Private APIs of Keras (and the backends) that keras_inits touches, in one place.

Each wrapper names the version it was checked on and falls back to a public
route where there is one, so a Keras that renames its internals degrades to
the fallback instead of breaking the package.
"""

from __future__ import annotations

from typing import Any

import keras

# Layers and variables (keras_inits.model)
# Checked on Keras 3.15.1 (and the floor in pyproject): ``Layer._flatten_layers``
# lists a layer's tracked sublayers; ``Layer._inbound_nodes`` holds one node per
# call of the layer in a functional graph.


def sublayers(layer: Any) -> list[Any]:
    """The layers ``layer`` tracks directly (attributes, lists, dicts), in order.

    Private: ``Layer._flatten_layers(include_self=False, recursive=False)``.
    Fallback: the ``keras.layers.Layer`` values of its attributes, one level down.
    """
    flatten = getattr(layer, "_flatten_layers", None)
    if callable(flatten):
        return list(flatten(include_self=False, recursive=False))
    found: dict[int, Any] = {}
    for value in vars(layer).values():
        items = value.values() if isinstance(value, dict) else value
        items = items if isinstance(items, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, keras.layers.Layer) and item is not layer:
                found.setdefault(id(item), item)
    return list(found.values())


def call_count(layer: Any) -> int:
    """How many times ``layer`` is called in the functional graphs it belongs to.

    Private: ``len(Layer._inbound_nodes)``; Keras has no public count. Fallback: 1.
    """
    return len(getattr(layer, "_inbound_nodes", ())) or 1


def conv_lstm_cell_class() -> type | None:
    """The cell class of ``keras.layers.ConvLSTM1D/2D/3D``, or None where it moved.

    Private: ``keras.src.layers.rnn.conv_lstm.ConvLSTMCell`` (no public name).
    Fallback: None, and a ConvLSTM cell is then a layer kind the table does not know.
    """
    try:
        from keras.src.layers.rnn.conv_lstm import ConvLSTMCell
    except ImportError:  # pragma: no cover - a Keras that moved it
        return None
    return ConvLSTMCell


def keras_hub_class(module: str, name: str) -> type | None:
    """A keras-hub layer class by its private module path, or None (not there, or moved).

    Private: ``keras_hub.src.<module>.<name>``, checked on keras-hub 0.32.0.
    Read only when keras_hub is already imported (this never imports it).
    """
    import importlib
    import sys

    if "keras_hub" not in sys.modules:
        return None
    try:
        return getattr(importlib.import_module(f"keras_hub.src.{module}"), name, None)
    except ImportError:
        return None
