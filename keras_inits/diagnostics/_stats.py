"""Per-layer numbers that show whether a network's initial weights keep its signal alive.

For every kernel (Dense, Conv, recurrent, embedding, separable, attention,
EinsumDense): the kernel's fans and std, the mean and std of
the layer's (post-activation) output on a batch, the fraction of saturated
outputs and, given targets, the norm of the loss's gradient with respect to
the kernel. Everything is computed with ``keras.ops`` and the backend's own
autodiff (TensorFlow, JAX or PyTorch), then reported as plain floats. This
module never changes the model it inspects and never imports matplotlib.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from keras_inits import _compat
from keras_inits.model._walk import walk

__all__ = [
    "SATURATION_RULES",
    "LayerStats",
    "finite_or_none",
    "format_stats",
    "gradients",
    "format_table",
    "layer_stats",
]

# When an output counts as saturated, by activation name. A sigmoid or tanh
# unit this close to its asymptote passes back almost no gradient; a relu
# output of exactly 0 passes back none at all.
SATURATION_RULES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda out: (out < 0.02) | (out > 0.98),
    "tanh": lambda out: np.abs(out) > 0.98,
    "relu": lambda out: out == 0.0,
}


@dataclasses.dataclass(frozen=True)
class LayerStats:
    """What one layer does to the signal, at the weights it has now.

    Attributes:
        name: The layer's name, or the kernel's path where the layer has several
            kernels (``"mha/query/kernel"``).
        kernel_shape: The kernel's shape, Keras layout ``(*receptive_field, in, out)``
            (an EinsumDense's own layout for its kernels).
        fan_in: The kernel's true fan_in, as ``keras_inits.fans`` gives it (the
            table of layer kinds: a transposed convolution's channels the right
            way round, a depthwise kernel's K, an EinsumDense's contracted axes).
        fan_out: Its true fan_out, likewise (per gate for an RNN's kernels).
        weight_std: Standard deviation of the kernel's entries.
        activation: The layer's activation name, or None if it has none.
        output_mean: Mean of the layer's output (after its activation) on the batch.
        output_std: Standard deviation of that output, over all its values.
        signal_std: How much the output depends on the input: the std of each
            output unit across the batch, root-mean-squared over the units.
            A signal that collapses with depth drives it to 0 even where
            ``output_std`` stays put (a sigmoid's outputs then sit at fixed
            per-unit values whatever the input).
        saturation: Fraction of outputs that are saturated (sigmoid: < 0.02 or
            > 0.98; tanh: |out| > 0.98; relu: exactly 0, so about 0.5 is normal
            and 1.0 is a dead layer); None for other activations.
        grad_norm: L2 norm of d(loss)/d(kernel) on the batch, or None when no
            targets were given or the kernel is not trainable.
    """

    name: str
    kernel_shape: tuple[int, ...]
    fan_in: float
    fan_out: float
    weight_std: float
    activation: str | None
    output_mean: float
    output_std: float
    signal_std: float
    saturation: float | None
    grad_norm: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the shape as a list, non-finite floats as None)."""
        record = dataclasses.asdict(self)
        record["kernel_shape"] = list(self.kernel_shape)
        return {key: finite_or_none(value) for key, value in record.items()}


def layer_stats(model: keras.Model, x: Any, y: Any = None, loss: Any = None) -> list[LayerStats]:
    """One ``LayerStats`` per kernel, in the model's layer order.

    A kernel is what the table of layer kinds (``keras_inits.model``,
    open to your layers through ``register_layout``) calls one: Dense, Conv,
    EinsumDense, SeparableConv's depthwise and pointwise kernels, an RNN
    cell's kernel and recurrent kernel, an Embedding's table, owned
    by a layer of the model or by any layer inside it (MultiHeadAttention's
    query, key, value and output projections, Bidirectional's two RNNs, a
    nested model). A layer with one kernel gives a record named after the
    layer; a layer with several gives one record per kernel, named by the
    kernel's path (``"lstm/lstm_cell/recurrent_kernel"``). Each record's
    output statistics are those of the top-level layer's (first) output.
    Fans are the true fans, the same as ``keras_inits.fans`` gives. What
    cannot be reported is skipped with a warning that names it and says why
    (a layer called more than once has no single output; a weight of rank
    >= 2 of a layer kind the table does not know); nothing is skipped
    silently.

    Args:
        model: A built functional or Sequential model (its layers' outputs
            must be reachable from ``model.inputs``), with one input or several.
        x: A batch of inputs: an array, or for a model with several inputs a
            list (in ``model.inputs`` order) or a dict by input name.
        y: Targets for ``x``; when given, each record has the norm of the
            loss's gradient with respect to its kernel.
        loss: The loss for those gradients: anything ``keras.losses.get``
            accepts. Defaults to the loss the model was compiled with.

    Raises:
        ValueError: If the model is not built from ``model.inputs`` (a
            subclassed model), has no kernel to report on, ``x`` does not
            match a model with several inputs, or ``y`` is given with no
            ``loss`` and an uncompiled model.

    Example:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "sigmoid")])
        >>> [record.fan_in for record in layer_stats(model, np.ones((2, 4)))]
        [4]
    """
    _check_functional(model)
    found = _find_kernels(model)
    if not found:
        raise ValueError(
            "`model` has no layer with a kernel to report on. "
            f"Received: model={model.name!r} with layers {[layer.name for layer in model.layers]}"
        )
    x = _check_inputs(model, x)
    layers = list(dict.fromkeys(item.layer for item in found))
    outputs = dict(zip(layers, _layer_outputs(model, layers, x), strict=True))
    kernels = [item.variable for item in found]
    gradients = _kernel_gradients(model, kernels, x, y, _resolve_loss(model, y, loss))
    records = []
    for item, gradient in zip(found, gradients, strict=True):
        output = outputs[item.layer]
        activation = _activation_name(item.layer)
        rule = SATURATION_RULES.get(activation or "")
        records.append(
            LayerStats(
                name=item.name,
                kernel_shape=item.shape,
                fan_in=item.fans[0],
                fan_out=item.fans[1],
                weight_std=float(np.std(_numpy(item.variable))),
                activation=activation,
                output_mean=float(np.mean(output)),
                output_std=float(np.std(output)),
                signal_std=_signal_std(output),
                saturation=None if rule is None else float(np.mean(rule(output))),
                grad_norm=None if gradient is None else float(np.linalg.norm(gradient)),
            )
        )
    return records


def format_stats(records: Sequence[LayerStats]) -> str:
    """The records as a fixed-width text table, one row per layer.

    Example:
        >>> dense = keras.layers.Dense(3, "relu", name="dense")
        >>> model = keras.Sequential([keras.Input((4,)), dense])
        >>> table = format_stats(layer_stats(model, np.ones((2, 4))))
        >>> table.splitlines()[1].split()[:4]
        ['dense', '4x3', '4', '3']
    """
    header = (
        "layer",
        "kernel",
        "fan_in",
        "fan_out",
        "weight std",
        "activation",
        "out mean",
        "out std",
        "signal std",
        "saturated",
        "grad norm",
    )
    rows = [
        (
            r.name,
            "x".join(str(d) for d in r.kernel_shape),
            str(r.fan_in),
            str(r.fan_out),
            f"{r.weight_std:.4g}",
            r.activation or "-",
            f"{r.output_mean:.4g}",
            f"{r.output_std:.4g}",
            f"{r.signal_std:.3g}",
            "-" if r.saturation is None else f"{r.saturation:.1%}",
            "-" if r.grad_norm is None else f"{r.grad_norm:.3g}",
        )
        for r in records
    ]
    return format_table(header, rows)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned text columns, two spaces apart, with a header row."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _signal_std(output: np.ndarray) -> float:
    per_unit = output.reshape(len(output), -1).var(axis=0)
    return float(np.sqrt(per_unit.mean()))


def finite_or_none(value: Any) -> Any:
    """``value``, or None for a non-finite float (JSON has no NaN or inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclasses.dataclass(frozen=True)
class _Kernel:
    layer: Any  # the top-level layer whose output the record reports
    variable: Any
    name: str
    shape: tuple[int, ...]
    fans: tuple[float, float]


def _whole(fans: tuple[float, float]) -> tuple[float, float]:
    return tuple(int(f) if f.is_integer() else f for f in fans)  # type: ignore[return-value]


def _find_kernels(model: keras.Model) -> list[_Kernel]:
    """Every kernel of ``model``, with its layer, record name and true fans; warns what it skips.

    The kernels and their fans come from the table of layer kinds
    (``keras_inits.model``), the one ``keras_inits.fans`` reads, so the two
    always agree; a weight of rank >= 2 that the table cannot place is
    skipped with a warning that names it.
    """
    found: list[_Kernel] = []
    skipped: list[str] = []
    seen: set[int] = set()
    for layer in model.layers:
        kernels = []
        for leaf in walk(layer):
            for entry, variable in leaf.placed():
                if entry.kind in ("kernel", "embedding") and id(variable) not in seen:
                    seen.add(id(variable))
                    fans = (float(entry.fan_in or 0), float(entry.fan_out or 0))
                    kernels.append((variable, _whole(fans)))
            for variable in leaf.unplaced():
                if id(variable) in seen or len(variable.shape) < 2:
                    continue
                seen.add(id(variable))
                skipped.append(
                    f"{variable.path} (shape {tuple(variable.shape)}): layer "
                    f"{leaf.layer.name!r} ({type(leaf.layer).__name__}) is a kind the table of "
                    "layer kinds does not know (keras_inits.register_layout describes it)"
                )
        if not kernels:
            continue
        # Keras keeps one node per call and has no public count of them; `output`
        # would quietly give the first call's, so a shared layer is skipped.
        calls = _compat.call_count(layer)
        if calls > 1:
            skipped.append(f"layer {layer.name!r}: called {calls} times, so no single output")
            continue
        for variable, fans in kernels:
            shape = tuple(int(d) for d in variable.shape)
            name = layer.name if len(kernels) == 1 else variable.path
            found.append(_Kernel(layer, variable, name, shape, fans))
    if skipped:
        warnings.warn(
            "layer_stats skipped: " + "; ".join(skipped), category=UserWarning, stacklevel=3
        )
    return found


def _check_functional(model: keras.Model) -> None:
    """Refuses a model whose layers' outputs cannot be read from ``model.inputs``."""
    try:
        inputs = model.inputs
    except AttributeError:
        inputs = None
    if not inputs or not hasattr(model, "outputs"):
        raise ValueError(
            "`model` must be a functional or Sequential model built on `keras.Input`, so "
            "that each layer's output can be read. Received: "
            f"model={model.name!r} of type {type(model).__name__}"
        )


def _check_inputs(model: keras.Model, x: Any) -> Any:
    """``x`` unchanged if it fits ``model.inputs``: several inputs need a list or a dict."""
    count = len(model.inputs)
    if count == 1:
        return x
    if isinstance(x, dict) or (isinstance(x, (list, tuple)) and len(x) == count):
        return x
    got = f"a {type(x).__name__} of {len(x)}" if isinstance(x, (list, tuple)) else type(x).__name__
    raise ValueError(
        f"`x` must hold one array per model input, a list of {count} (in model.inputs order) "
        f"or a dict by input name; got {got}. Received: x of type {type(x).__name__}"
    )


def _activation_name(layer: keras.layers.Layer) -> str | None:
    if isinstance(layer, keras.layers.RNN):  # its output is not activation(x W)
        return None
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    return None if name in (None, "linear") else str(name)


def _numpy(tensor: Any) -> np.ndarray:
    if keras.backend.standardize_dtype(tensor.dtype) == "bfloat16":
        tensor = keras.ops.cast(tensor, "float32")
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def _layer_outputs(model: keras.Model, layers: list[Any], x: Any) -> list[np.ndarray]:
    try:
        probe = keras.Model(model.inputs, [_first(layer.output) for layer in layers])
    except (AttributeError, ValueError, TypeError) as error:
        raise ValueError(
            "`model` must be a functional or Sequential model built on `keras.Input`, so "
            "that each layer's output can be read. Received: "
            f"model={model.name!r} of type {type(model).__name__}"
        ) from error
    if len(model.inputs) == 1 and not isinstance(x, (list, tuple, dict)):
        x = [x]  # the probe's inputs are a list, even of one
    outputs = probe(x, training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]  # Keras unwraps a list of one output
    return [_numpy(output) for output in outputs]


def _first(output: Any) -> Any:
    """A layer's main output: the first of several (an RNN with ``return_state``)."""
    return output[0] if isinstance(output, (list, tuple)) else output


def _resolve_loss(model: keras.Model, y: Any, loss: Any) -> Any:
    if y is None:
        return None
    loss = loss if loss is not None else getattr(model, "loss", None)
    if loss is None:
        raise ValueError(
            "`loss` is needed for gradient norms when `y` is given and the model is not "
            "compiled: pass a loss name or object. Received: loss=None"
        )
    return keras.losses.get(loss)


def _kernel_gradients(
    model: keras.Model, kernels: list[Any], x: Any, y: Any, loss_fn: Any
) -> list[np.ndarray | None]:
    """d(mean loss)/d(kernel) for each layer's trainable kernel, by the backend's autodiff."""
    if loss_fn is None:
        return [None] * len(kernels)
    trainable = [kernel for kernel in kernels if kernel.trainable]
    x = keras.tree.map_structure(keras.ops.convert_to_tensor, x)  # one input or several
    y = keras.tree.map_structure(keras.ops.convert_to_tensor, y)

    def mean_loss(prediction: Any) -> Any:
        return keras.ops.mean(loss_fn(y, prediction))

    variables = model.trainable_variables
    non_trainable = [v.value for v in model.non_trainable_variables]

    def loss_of(*values: Any) -> Any:
        prediction, _ = model.stateless_call(list(values), non_trainable, x, training=False)
        return mean_loss(prediction)

    grads = gradients(loss_of, [v.value for v in variables])
    by_variable = {id(v): grad for v, grad in zip(variables, grads, strict=True)}
    by_id = {
        id(kernel): _numpy(by_variable[id(kernel)])
        for kernel in trainable
        if by_variable.get(id(kernel)) is not None
    }
    return [by_id.get(id(kernel)) for kernel in kernels]


def gradients(fn: Callable[..., Any], values: Sequence[Any]) -> list[Any]:
    """d fn(*values) / d values for a scalar ``fn``, by the backend's own autodiff.

    The one place that knows each backend's autodiff (TensorFlow's tape,
    ``jax.grad``, ``torch.autograd.grad``); ``fn`` must be a function of
    ``values`` alone (a model through ``stateless_call``, say).

    Example:
        >>> x = keras.ops.convert_to_tensor(np.array([1.0, 2.0], "float32"))
        >>> [np.asarray(keras.ops.convert_to_numpy(g)).tolist()
        ...  for g in gradients(lambda v: keras.ops.sum(v * v), [x])]
        [[2.0, 4.0]]
    """
    return _BACKEND_GRADIENTS[keras.backend.backend()](fn, list(values))


def _tensorflow_gradients(fn: Callable[..., Any], values: list[Any]) -> list[Any]:
    import tensorflow as tf

    values = [tf.convert_to_tensor(value) for value in values]
    with tf.GradientTape() as tape:
        for value in values:
            tape.watch(value)
        result = fn(*values)
    grads = tape.gradient(result, values)
    # An Embedding's gradient is sparse (IndexedSlices): densify it.
    return [None if grad is None else tf.convert_to_tensor(grad) for grad in grads]


def _jax_gradients(fn: Callable[..., Any], values: list[Any]) -> list[Any]:
    import jax

    # One compile for the whole gradient, not one dispatch per op.
    return list(jax.jit(jax.grad(lambda args: fn(*args)))(values))


def _torch_gradients(fn: Callable[..., Any], values: list[Any]) -> list[Any]:
    import torch

    leaves = [value.detach().requires_grad_(True) for value in values]
    return list(torch.autograd.grad(fn(*leaves), leaves, allow_unused=True))


def _numpy_only(*_: Any) -> list[Any]:
    raise ValueError("Gradients need the tensorflow, jax or torch backend; numpy has no autodiff.")


_BACKEND_GRADIENTS: dict[str, Callable[..., list[Any]]] = {
    "tensorflow": _tensorflow_gradients,
    "jax": _jax_gradients,
    "torch": _torch_gradients,
    "numpy": _numpy_only,
}
