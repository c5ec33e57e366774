"""Every private API of Keras, JAX, TensorFlow and torch that keras_inits touches.

Each entry says what it is, the versions it was checked on, and the public
fallback used where the private name is missing (None where there is none).
Checked on: Keras 3.15.1 (and the floor, 3.14), JAX and jaxlib 0.10.2,
TensorFlow 2.21, torch 2.13. When a version moves, re-check the entries here
and nowhere else.

This module must never import a backend: a function that needs one takes the
already-imported module as an argument (the caller is a backend module).
"""

from __future__ import annotations

from typing import Any

import keras

# Sampling, seeds and sharding


def keras_int_seed_pair(seed: int) -> tuple[int, int]:
    """The two uint32 seed words Keras draws from an int seed: (seed mod 2^32, 0).

    Copied from ``keras.src.random.seed_generator.draw_seed`` (checked on
    Keras 3.14 and 3.15.1: ``[seed, 0]``, the seed's low 32 bits). Copied so
    that our draws follow Keras's stream without building Keras's seed tensor;
    no public API gives the words.
    """
    return (seed & 0xFFFFFFFF, 0)


def keras_torch_seed(first: int, second: int) -> int:
    """The seed Keras gives a torch ``Generator`` for the words (first, second).

    Copied from ``keras.src.backend.torch.random.torch_seed_generator``
    (checked on Keras 3.14 and 3.15.1: ``int(first + second) & 0xFFFFFFFF``).
    """
    return (first + second) & 0xFFFFFFFF


def keras_tensorflow_seed(tf: Any, pair: Any) -> Any:
    """The int32 pair TensorFlow's stateless ops get from Keras's seed words.

    Copied from ``keras.src.backend.tensorflow.random._cast_seed`` (checked
    on Keras 3.14 and 3.15.1): the words modulo int32.max - 1, as int32.
    """
    pair = tf.cast(pair, tf.int64) if tf.is_tensor(pair) else tf.constant(pair, tf.int64)
    return tf.cast(tf.math.floormod(pair, tf.int32.max - 1), tf.int32)


def keras_global_seed_set() -> bool:
    """Whether ``keras.utils.set_random_seed`` recorded a seed (True where we cannot tell).

    Private: ``keras.src.utils.rng_utils.get_random_seed`` (checked on Keras
    3.14 and 3.15.1). No public getter exists; without it we answer True,
    which only loses a warning (see ``_sharding``).
    """
    try:
        from keras.src.utils.rng_utils import get_random_seed
    except ImportError:
        return True
    return get_random_seed() is not None


def jax_at_top_level(jax: Any) -> bool:
    """Whether no JAX transformation (jit, vmap, grad, ...) is being traced now.

    Private: ``jax._src.core.trace_state_clean`` (checked on JAX 0.4.35 to
    0.10.2). Public fallback: whether a fresh ``jnp.ones(())`` is a tracer
    (slower: it dispatches an op).
    """
    check = getattr(getattr(getattr(jax, "_src", None), "core", None), "trace_state_clean", None)
    if check is not None:
        return bool(check())
    return not jax_is_tracer(jax, jax.numpy.ones(()))


def jax_is_tracer(jax: Any, value: Any) -> bool:
    """Whether ``value`` is a JAX tracer (an abstract value inside a trace).

    ``jax.core.Tracer`` is public but in the ``jax.core`` namespace JAX is
    emptying (checked on JAX 0.10.2, where it is still exported). Fallback:
    a value without the shards a concrete ``jax.Array`` has counts as traced.
    """
    tracer = getattr(getattr(jax, "core", None), "Tracer", None)
    if tracer is not None:
        return isinstance(value, tracer)
    return not hasattr(value, "addressable_shards")


def jax_threefry2x32() -> Any:
    """JAX's threefry-2x32 hash primitive (binds key words and counter words).

    ``jax.extend.random.threefry2x32_p``: ``jax.extend`` is JAX's API for
    library authors, with weaker stability promises than ``jax`` (checked on
    JAX 0.4.35 to 0.10.2). No other public API gives the hash of a chosen counter.
    """
    from jax.extend.random import threefry2x32_p  # the caller (JAX's module) has JAX loaded

    return threefry2x32_p


# Not code, recorded here so that every private name lives in this file:
# - ``_base.RandomInitializer`` sets ``self._init_seed``, the attribute Keras's
#   own RandomInitializer keeps its seed in (keras/src/initializers/
#   random_initializers.py, Keras 3.14 and 3.15.1); tools that inspect Keras
#   initializers read it.


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


def attention_query(layer: Any) -> Any:
    """The query projection of a ``MultiHeadAttention`` or ``GroupQueryAttention``, or None.

    Private: ``_query_dense``, an ``EinsumDense`` whose kernel is (dim, heads,
    head_dim) on Keras 3.14 and 3.15.1; both scale the logits by
    1 / sqrt(head_dim) (``_inverse_sqrt_key_dim`` / ``_inverse_sqrt_head_dim``).
    No public fallback: None, and ``mup`` refuses the layer by name.
    """
    query = getattr(layer, "_query_dense", None)
    return query if isinstance(query, keras.layers.Layer) else None


def drawn_initializer(layer: Any, initializer: Any) -> Any:
    """The initializer ``layer`` really drew its kernel with (what its fans were).

    Keras 3.15's ``EinsumDense.build`` draws with a copy of a
    ``VarianceScaling`` kernel initializer whose ``input_axes`` or
    ``output_axes`` is None, with the equation's axes set (private
    ``_update_kernel_initializer``: the kernel's letters that are in the
    output are output axes, the others input axes); the layer keeps the
    original. Keras 3.14's ``VarianceScaling`` has no axes: the layer drew
    with the initializer it keeps. Every other layer draws with its own.
    """
    if not isinstance(layer, keras.layers.EinsumDense) or not isinstance(
        initializer, keras.initializers.VarianceScaling
    ):
        return initializer
    if not hasattr(initializer, "input_axes"):  # Keras 3.14
        return initializer
    if initializer.input_axes is not None and initializer.output_axes is not None:
        return initializer
    sources, output = str(layer.equation).replace("...", "").split("->")
    kernel = sources.split(",")[1]
    config = initializer.get_config()
    config["input_axes"] = [i for i, letter in enumerate(kernel) if letter not in output]
    config["output_axes"] = [i for i, letter in enumerate(kernel) if letter in output]
    return type(initializer).from_config(config)


def train_on_batch(model: Any, x: Any, y: Any) -> dict[str, Any]:
    """One training step of a compiled ``model``; its logs hold that step's own loss.

    Keras 3.15 resets the metrics inside ``Model.train_on_batch``; 3.14 does
    not, and reports the mean over every batch since the last reset. Resetting
    first (public ``Model.reset_metrics``) gives the step's loss on both.
    """
    model.reset_metrics()
    return model.train_on_batch(x, y, return_dict=True)


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


def convnext_layer_scale_class() -> type | None:
    """``keras.applications``' ConvNeXt LayerScale (a per-channel gamma), or None where it moved.

    Private: ``keras.src.applications.convnext.LayerScale`` (no public name).
    Fallback: None, and the table then does not know the layer kind.
    """
    try:
        from keras.src.applications.convnext import LayerScale
    except ImportError:  # pragma: no cover - a Keras that moved it
        return None
    return LayerScale


# Functional graphs (keras_inits.model._residual)
# Checked on Keras 3.15.1 (every backend) and 3.14.0 (JAX): a symbolic tensor's
# ``_keras_history`` (operation, node_index, tensor_index) and an operation's
# ``_inbound_nodes``; Keras has no public way to walk a functional graph.


def producer_node(tensor: Any) -> Any:
    """The ``Node`` of a functional graph that made the symbolic ``tensor``, or None.

    Private: ``tensor._keras_history`` and ``operation._inbound_nodes``.
    Fallback: None (a tensor with no history: the graph cannot be read).
    """
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    nodes = getattr(history.operation, "_inbound_nodes", None)
    if not nodes or history.node_index >= len(nodes):
        return None
    return nodes[history.node_index]


def call_keywords(layer: Any) -> list[dict[str, Any]] | None:
    """The keyword arguments of each call of ``layer`` in a functional graph, or None.

    Private: ``operation._inbound_nodes`` and ``Node.arguments.kwargs``.
    None where the layer was never called symbolically (a subclassed model's
    layer): its calls cannot be read.
    """
    nodes = getattr(layer, "_inbound_nodes", None)
    if not nodes:
        return None
    found = []
    for node in nodes:
        arguments = getattr(node, "arguments", None)
        found.append(dict(getattr(arguments, "kwargs", {}) or {}))
    return found


def add_operation_classes() -> tuple[type, ...]:
    """The classes of a functional graph's sums: ``layers.Add`` and ``x + y`` / ``ops.add``.

    Private: ``keras.src.ops.numpy.Add`` (the operation ``x + y`` and ``ops.add``
    record). Fallback: ``layers.Add`` alone.
    """
    try:
        from keras.src.ops.numpy import Add
    except ImportError:  # pragma: no cover - a Keras that moved it
        return (keras.layers.Add,)
    return (keras.layers.Add, Add)


# Deferred variables (keras_inits.model._deferred)
# Checked on Keras 3.15.1 (every backend) and 3.14.0 (JAX): the stateless and
# symbolic scope flags, the global list of uninitialized variables, the loader.


def in_stateless_scope() -> bool:
    from keras.src.backend.common.stateless_scope import in_stateless_scope

    return bool(in_stateless_scope())


def in_symbolic_scope() -> bool:
    from keras.src.backend.common.symbolic_scope import in_symbolic_scope

    return bool(in_symbolic_scope())


def uninitialized_variables() -> list[Any]:
    """Keras's list of variables created in a stateless scope, waiting to be drawn."""
    from keras.src.backend.common import global_state

    collection = global_state.get_global_attribute("uninitialized_variables")
    return collection if collection is not None else []


def forget_uninitialized(variables: list[Any]) -> None:
    """Takes ``variables`` off Keras's list, so no later scope draws them behind our back."""
    from keras.src.backend.common import global_state

    ours = {id(v) for v in variables}
    kept = [v for v in uninitialized_variables() if id(v) not in ours]
    global_state.set_global_attribute("uninitialized_variables", kept)


def keras_passes_layout() -> bool:
    """Whether Keras's JAX variables give an initializer that takes ``layout`` their sharding.

    Keras 3.15 does (``JaxVariable._initialize_with_initializer``, under
    ``jax.set_mesh`` with explicit axes). Keras 3.14 never passes it: it draws
    the value whole on one device and then distributes it, unless the layout
    is a ``NamedSharding`` (ours is a ``TensorLayout``) and the value times the
    device count reaches 250 MiB. Checked on Keras 3.14.0 and 3.15.1.
    """
    major, minor = (int(part) for part in keras.version().split(".")[:2])
    return (major, minor) >= (3, 15)


def h5_io_store() -> Any:
    """Keras's reader of ``.weights.h5`` entries (``materialize`` records what it reads).

    Private: ``keras.src.saving.saving_lib.H5IOStore`` (checked on 3.14.0 and 3.15.1).
    """
    from keras.src.saving.saving_lib import H5IOStore

    return H5IOStore


def load_weights_only(layer: Any, path: str) -> None:
    """Keras's loader of a ``.weights.h5`` or ``.keras`` file into ``layer``.

    Private: ``keras.src.saving.saving_lib.load_weights_only`` (checked on 3.14.0
    and 3.15.1); its public callers (``load_weights``) cannot be told to record
    rather than assign.
    """
    from keras.src.saving import saving_lib

    saving_lib.load_weights_only(layer, path)


# Optimizers (keras_inits.model.MupOptimizer)
# Checked on Keras 3.14 and 3.15.1: every optimizer's ``apply`` (and the JAX
# trainer's ``stateless_apply``) ends in ``_apply_weight_decay(variables)``,
# which reads ``self.weight_decay`` and the current rate, and
# ``_backend_update_step(grads, variables, learning_rate)``: a loop of
# ``update_step(grad, variable, rate)`` (TensorFlow and JAX; TensorFlow's
# inside its distribution strategy), or on PyTorch one fused
# ``_parallel_update_step(grads, variables, rate)`` of ``torch._foreach`` ops.
# Nadam advances its ``_u_product`` once per ``_backend_update_step`` (and
# per fused step). No public API takes a rate per variable
# (``MultiOptimizer`` holds one optimizer per group of variables).


def optimizer_index(optimizer: Any, variable: Any) -> int:
    """The position of ``variable`` among those ``optimizer`` was built on.

    Private: ``BaseOptimizer._get_variable_index``, the lookup each built-in
    optimizer uses to find a variable's slots (Keras 3.14, 3.15.1).
    """
    return int(optimizer._get_variable_index(variable))


# The attributes ``_apply_weight_decay`` reads a decay rate from: every
# optimizer's ``weight_decay``, and Muon's ``adam_weight_decay`` for the
# variables it steps with AdamW (Keras 3.15.1).
_DECAY_RATES = ("weight_decay", "adam_weight_decay")


def scale_optimizer_rates(optimizer: Any, multiplier_of: Any) -> None:
    """Makes ``optimizer`` step each variable at its rate times ``multiplier_of(variable)``.

    Private, replaced on this instance. Where the optimizer steps variables
    one by one (``update_step``: TensorFlow, JAX, and PyTorch's optimizers
    without a fused step), that call gets the rate times the multiplier. A
    fused PyTorch step (``_parallel_update_step``) runs once per group of
    variables that share a multiplier, so the fused path is kept; step-wide
    state it advances (Nadam's ``_u_product``) is put back before each group
    after the first, so every group starts from the same state and it
    advances once. Decoupled weight decay (w -= lr * wd * w) runs once per
    group with the rates it reads (``_DECAY_RATES``) times the multiplier. A
    multiplier of 1 gets exactly the original call.
    """
    step = optimizer.update_step
    fused: Any = getattr(optimizer, "_parallel_update_step", None)
    decay = optimizer._apply_weight_decay

    def scaled_step(gradient: Any, variable: Any, learning_rate: Any) -> Any:
        multiplier = multiplier_of(variable)
        rate = learning_rate if multiplier == 1.0 else learning_rate * multiplier
        return step(gradient, variable, rate)

    def groups(variables: list[Any]) -> list[tuple[float, list[int]]]:
        found: dict[float, list[int]] = {}
        for position, variable in enumerate(variables):
            found.setdefault(multiplier_of(variable), []).append(position)
        return list(found.items())

    def grouped_fused_step(grads: Any, variables: Any, learning_rate: Any) -> None:
        grads, variables = list(grads), list(variables)
        state = [v for v in (getattr(optimizer, "_u_product", None),) if v is not None]
        start = [keras.ops.copy(v.value) for v in state]
        for index, (multiplier, positions) in enumerate(groups(variables)):
            if index:
                for variable, value in zip(state, start, strict=True):
                    variable.assign(value)
            rate = learning_rate if multiplier == 1.0 else learning_rate * multiplier
            fused([grads[i] for i in positions], [variables[i] for i in positions], rate)

    def grouped_decay(variables: Any) -> None:
        variables = list(variables)
        found = {name: getattr(optimizer, name, None) for name in _DECAY_RATES}
        rates: dict[str, Any] = {name: value for name, value in found.items() if value is not None}
        if not rates:
            decay(variables)  # no decay: the optimizer's own call, a no-op
            return
        try:
            for multiplier, positions in groups(variables):
                for name, value in rates.items():
                    setattr(optimizer, name, value * multiplier)
                decay([variables[i] for i in positions])
        finally:
            for name, value in rates.items():
                setattr(optimizer, name, value)

    if fused is not None:
        optimizer._parallel_update_step = grouped_fused_step
    else:
        optimizer.update_step = scaled_step
    optimizer._apply_weight_decay = grouped_decay
