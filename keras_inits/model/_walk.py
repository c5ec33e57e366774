"""Shared by the model-level functions: walking a model's layers, and plan -> draw -> assign.

``walk(model)`` visits every layer under a model once, in order, with its
layout from ``_layouts`` and the weights it owns itself; ``Leaf.placed``
pairs each weight with its ``WeightLayout`` and ``Leaf.unplaced`` lists the
weights no layout accounts for (each caller refuses or reports them, never
skips them in silence). ``assign_all`` writes every new value or, on an
error, none. This module never draws a random number itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import numpy as np

from keras_inits import _compat
from keras_inits._base import derive_seed, fresh_seed
from keras_inits._sampling import LOW_PRECISION
from keras_inits.model._layouts import LayerLayout, WeightLayout, known_kinds, layout


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One layer under a model: its layout (None: an unknown kind) and its own weights."""

    layer: Any
    parent: Any
    layout: LayerLayout | None
    own: tuple[Any, ...]  # the variables the layer holds itself, not through sublayers

    def placed(self) -> list[tuple[WeightLayout, Any]]:
        """Each weight of the layout the layer has made, with its variable."""
        if self.layout is None:
            return []
        pairs = []
        for weight in self.layout.weights:
            value = getattr(self.layer, weight.attribute, None)
            if value is None:
                continue
            if not isinstance(value, keras.Variable):
                # A LoRA-enabled or quantized layer computes `kernel` from
                # several variables; the base one still bears the name.
                named = [v for v in self.own if weight_name(v) == weight.attribute]
                value = named[0] if len(named) == 1 else variable(self.layer, weight.attribute)
            pairs.append((weight, value))
        return pairs

    def unplaced(self) -> list[Any]:
        """The layer's own weights that its layout does not account for (all, if unknown)."""
        placed = {id(v) for _, v in self.placed()}
        return [v for v in self.own if id(v) not in placed]


def _own(layer: Any, children: Sequence[Any]) -> tuple[Any, ...]:
    inner = {id(v) for child in children for v in child.weights}
    return tuple(v for v in layer.weights if id(v) not in inner)


def walk(model: Any) -> Iterator[Leaf]:
    """Every layer under ``model`` (itself included) once, in order, parents first."""
    seen: set[int] = set()

    def visit(layer: Any, parent: Any) -> Iterator[Leaf]:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        found = layout(layer)
        tracked = _compat.sublayers(layer)
        children = list(found.children) if found is not None and found.children else tracked
        yield Leaf(layer, parent, found, _own(layer, [*tracked, *children]))
        for child in children:
            yield from visit(child, layer)

    yield from visit(model, None)


def variable(layer: Any, name: str) -> Any:
    """The plain ``keras.Variable`` at ``layer.<name>``, or an error saying why not."""
    value = getattr(layer, name, None)
    if not isinstance(value, keras.Variable):
        raise ValueError(
            f"`{name}` of layer {layer.name!r} ({type(layer).__name__}) is not a plain "
            "variable (a LoRA-enabled or quantized layer?), so it cannot be re-initialized. "
            f"Received: {name}={type(value).__name__}"
        )
    return value


def format_rows(rows: Sequence[Sequence[str]]) -> str:
    """Rows of cells (the first a header) as a plain-text table with aligned columns."""
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def weight_name(variable: Any) -> str:
    return str(variable.path).rsplit("/", 1)[-1]


def unknown_kind(layer: Any, weights: Sequence[Any] = ()) -> ValueError:
    """The error for a layer whose weights the table cannot place."""
    names = tuple(weight_name(v) for v in weights)
    if layout(layer) is not None:
        return ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) holds weights {names} that the "
            "table of layer kinds does not describe for its class (LoRA or quantization "
            "weights, or a subclass's own), so keras_inits cannot tell how to draw them (it "
            "never guesses): describe the class with "
            f"keras_inits.register_layout({type(layer).__name__}, ...). "
            f"Received: layer={type(layer).__name__}"
        )
    holding = f" holding {names}" if names else ""
    kinds = ", ".join(k for k in known_kinds() if not k.startswith("_"))
    return ValueError(
        f"keras_inits does not know the kernel layout of layer {layer.name!r} of class "
        f"{type(layer).__name__}{holding}, so it cannot tell its true fans or which "
        "initializer drew its weights (it never guesses): describe it with "
        f"keras_inits.register_layout({type(layer).__name__}, ...). Known kinds: {kinds}. "
        f"Received: layer={type(layer).__name__}"
    )


def check_model(model: Any, name: str = "model") -> None:
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            f"`{name}` must be a Keras model or layer. Received: {name}={type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            f"`{name}` must be built: give it a `keras.Input`, call it on a batch, or call "
            f"`{name}.build(input_shape)` first. Received: {name}={model.name!r} (not built)"
        )
    if not model.weights:
        raise ValueError(
            f"`{name}` has no weights to initialize. Received: {name}={model.name!r} "
            f"of type {type(model).__name__}"
        )


def shape_of(variable: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in variable.shape)


def seeds(seed: Any) -> Callable[[int], Any]:
    """The seed of draw i: hashed from an int, fresh from ``random`` for None."""
    if seed is None:
        return lambda _: fresh_seed()
    if isinstance(seed, keras.random.SeedGenerator):
        return lambda _: seed
    return lambda index: derive_seed(seed, index)


def to_numpy(value: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value))


def scaled_by(values: Any, factor: float, dtype: str) -> Any:
    """``values`` times the Python number ``factor``, rounded once to ``dtype``.

    float16 and bfloat16 are multiplied in float32 and cast (the factor in
    half precision would round first); other dtypes take the factor at their
    own precision (``keras.ops.cast`` of a Python float goes through float32
    on TensorFlow, which rounded float64 weights to float32's precision).
    """
    if dtype in LOW_PRECISION:
        product = keras.ops.multiply(keras.ops.cast(values, "float32"), factor)
        return keras.ops.cast(product, dtype)
    return keras.ops.multiply(values, keras.ops.convert_to_tensor(factor, dtype=dtype))


def std(value: Any) -> float:
    """The std of a weight's entries, read in float32 (as the reports always have)."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return float(np.std(value.astype(np.float32).astype(np.float64)))
    array = keras.ops.convert_to_numpy(keras.ops.cast(value, "float32"))
    return float(np.std(np.asarray(array, dtype=np.float64)))


def in_shape(sample: Callable[[tuple[int, ...]], Any], shape: tuple[int, ...]) -> Any:
    """``sample(shape)``, with the same values, without one JAX compile per shape.

    Each of keras_inits's JAX draws is a program compiled per output shape,
    so a model's first re-initialization compiled one per distinct kernel
    shape (MobileNetV2: about as long as building the model). Value i of a
    draw is the hash of counter i whatever the shape, so a flat draw of a
    larger size holds the same values first: draw one of a few sizes (2^10,
    2^16, then the power of two at or above), keep the first prod(shape).
    A draw of 2^16 values costs far less than a compile. Above 2^22 values
    the draw outweighs its compile and a rounded size would double its
    memory: drawn as is. Other backends compile nothing per shape: drawn as is.
    """
    size = math.prod(shape)
    if keras.backend.backend() != "jax" or size == 0 or size > _LARGEST_ROUNDED:
        return sample(shape)
    return to_numpy(sample((_bucket(size),)))[:size].reshape(shape)


_LARGEST_ROUNDED = 1 << 22


def _bucket(size: int) -> int:
    for small in (1 << 10, 1 << 16):
        if size <= small:
            return small
    return 1 << (size - 1).bit_length()  # the power of two >= size


@dataclasses.dataclass(frozen=True)
class Assignment:
    """One planned write: the variable, its new values, and its values before (NumPy)."""

    variable: Any
    values: Any
    before: np.ndarray


def assign_all(assignments: Sequence[Assignment]) -> None:
    """Writes every assignment or, if one fails, puts back each one already written."""
    done: list[Assignment] = []
    try:
        for item in assignments:
            item.variable.assign(item.values)
            done.append(item)
    except BaseException:
        for item in reversed(done):
            item.variable.assign(item.before)
        raise
