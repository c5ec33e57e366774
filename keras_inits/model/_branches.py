"""``residual_branches(model)``: the residual branches of a model, read from its graph.

A residual block computes x + f(x). In a functional model the sum is an
operation of the graph (``layers.Add``, ``x + y`` or ``ops.add``); the skip
input is the one that is an ancestor of the other, and the branch f ends at
the last weighted layer on the other path. Where the sum sits inside one
layer's ``call`` (keras-hub's transformer blocks) the graph cannot show it:
a block adapter (``register_block``) names that layer's branches instead.
Where the graph does not say which input is the skip (two weighted paths
of the same kind, a gate, a sum of several weighted paths) the detector
refuses with an error naming the layer, and ``branches=`` says it instead:
it never guesses.

This module reads models; it never changes a weight.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import keras

from keras_inits import _compat
from keras_inits._validation import check_registration
from keras_inits.model._layouts import layout
from keras_inits.model._walk import check_model, format_rows, unknown_kind, walk

__all__ = ["BlockBranch", "ResidualBranch", "register_block", "residual_branches"]

Shortcut = Literal["identity", "pooling", "projection", "block", "given"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class BlockBranch:
    """One residual branch inside a block layer, as a block adapter names it.

    Attributes:
        end: The layer whose kernel ends the branch (its output projection).
        layers: Every layer of the branch that holds a kernel, in order, the
            end last (``fixup`` scales the others).
        norm: The normalization after the end, whose scale ``zero_gamma``
            zeroes, or None where the branch has none.
        post_norm: Whether the block normalizes the sum (post-LN: LN(x + f(x))).
    """

    end: Any
    layers: tuple[Any, ...] = ()
    norm: Any = None
    post_norm: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResidualBranch:
    """One residual branch x + f(x) of a model, as ``residual_branches`` found it.

    Attributes:
        index: Its place among the model's branches, from 0, in graph order.
        block: The block it belongs to, from 0 (a transformer block's
            attention and MLP branches share one; each branch read from the
            graph is its own block).
        count: The number of residual branches in the model (L).
        merge: The name of the sum (the ``Add`` layer or ``x + y`` operation),
            or of the block layer that holds it.
        skip: The name of the layer that makes the skip input ("" where a
            block or ``branches=`` gave the branch).
        shortcut: "identity" (the skip is the branch's input), "pooling"
            (a weightless path such as a strided pooling), "projection" (a
            path with one weighted layer, ResNet's 1x1 convolution), "block"
            (named by a block adapter) or "given" (``branches=``).
        layers: The names of the branch's layers, in order.
        ends: The paths of the weights that end the branch.
        kernels: The paths of every kernel of the branch, the ends included.
        norm: The path of the normalization scale after the ends (``zero_gamma``
            zeroes it), or None.
        post_norm: Whether the sum feeds a normalization (post-LN).
    """

    index: int
    block: int
    count: int
    merge: str
    skip: str
    shortcut: Shortcut
    layers: tuple[str, ...]
    ends: tuple[str, ...]
    kernels: tuple[str, ...]
    norm: str | None
    post_norm: bool


@dataclasses.dataclass
class Found:
    """A branch with its variables (``residual`` reads these; the record names them)."""

    merge: str
    skip: str
    shortcut: Shortcut
    layers: list[Any]
    ends: list[tuple[Any, Any]]  # (layer, variable)
    kernels: list[tuple[Any, Any]]  # (layer, variable), the ends included
    norm: tuple[Any, Any] | None
    post_norm: bool
    block: int = 0


BlockFunction = Callable[[Any], Sequence[BlockBranch]]
_BLOCKS: dict[type, BlockFunction] = {}


def register_block(layer_class: type, function: BlockFunction) -> None:
    """Teaches ``residual_branches`` and ``residual`` the branches inside a block layer.

    A layer that computes x + f(x) in its own ``call`` hides the sum from the
    graph. ``function(layer)`` gets a built layer of ``layer_class`` (or a
    subclass registering nothing itself) and returns one ``BlockBranch`` per
    residual branch, in order: the layer whose kernel ends it (the output
    projection), the kernel layers of the branch, the normalization after it.
    keras-hub's GPT-2, BERT, Llama and Gemma blocks are registered already.

    Args:
        layer_class: A subclass of ``keras.layers.Layer``.
        function: A callable from a built layer to a sequence of ``BlockBranch``.

    Raises:
        TypeError: If ``layer_class`` is not a Layer subclass or ``function``
            is not callable.

    Example:
        >>> import keras
        >>> class Block(keras.layers.Layer):  # x + w2(relu(w1(x)))
        ...     def __init__(self, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.w1, self.w2 = keras.layers.Dense(8), keras.layers.Dense(8)
        ...     def call(self, x):
        ...         return x + self.w2(keras.ops.relu(self.w1(x)))
        >>> register_block(Block, lambda b: [BlockBranch(end=b.w2, layers=(b.w1, b.w2))])
        >>> x = keras.Input((8,))
        >>> model = keras.Model(x, Block()(Block()(x)))
        >>> [(b.index, b.block, b.shortcut, len(b.kernels)) for b in residual_branches(model)]
        [(0, 0, 'block', 2), (1, 1, 'block', 2)]
    """
    check_registration(layer_class, function, "a sequence of BlockBranch")
    _BLOCKS[layer_class] = function


def _block_function(layer: Any) -> BlockFunction | None:
    _register_keras_hub_blocks()
    for cls in type(layer).__mro__:
        if cls in _BLOCKS:
            return _BLOCKS[cls]
    return None


# What a layer is, for the detector.


def _kernels(layer: Any) -> list[tuple[Any, Any]]:
    """Every fan-scaled kernel under ``layer`` (itself included), as (layer, variable)."""
    found = []
    for leaf in walk(layer):
        for entry, variable in leaf.placed():
            if entry.kind == "kernel":
                found.append((leaf.layer, variable))
    return found


def _end_weights(layer: Any) -> list[tuple[Any, Any]]:
    """The weight(s) that make ``layer``'s output last: its pre-activation kernel."""
    found = layout(layer)
    if found is not None and found.output is not None:
        return _end_weights(found.output)
    if found is not None and found.pre_activation is not None:
        return [(layer, getattr(layer, found.pre_activation))]
    raise ValueError(
        f"Layer {layer.name!r} ({type(layer).__name__}) ends a residual branch, but the table "
        "of layer kinds names no weight that makes its output, so keras_inits cannot tell "
        "which weight to scale (it never guesses): pass `branches=` or describe it with "
        f"keras_inits.register_layout. Received: layer={type(layer).__name__}"
    )


def _scale_of(layer: Any) -> Any:
    """The normalization scale variable of a scale-only layer (a norm), or None."""
    found = layout(layer)
    if found is None:
        return None
    for entry in found.weights:
        if entry.kind == "scale":
            if entry.torch is not None and entry.torch.kind == "constant" and not entry.torch.value:
                # A scale whose identity value is 0 multiplies by (1 + scale) (Gemma's
                # RMS norm): zeroing it keeps the branch, so it is no gamma to zero.
                return None
            return getattr(layer, entry.attribute, None)
    return None


Kind = Literal["kernel", "norm", "plain", "model", "block", "unknown", "opaque"]


def _kind(op: Any) -> Kind:
    if _block_function(op) is not None:
        return "block"
    if _is_graph(op):
        return "model"
    if isinstance(op, keras.Model) and not isinstance(op, keras.Sequential):
        # A subclassed model's call is Python the graph does not show.
        return "unknown" if _kernels(op) else "plain"
    found = layout(op)
    if found is None:
        if not getattr(op, "weights", None):
            return "plain"
        # A layer of unknown class holding layers with kernels may hide sums in
        # its call: the detector will not read past it. One holding only weights
        # of its own is opaque: fine off a branch, refused where it ends one.
        if any(_kernels(child) for child in _compat.sublayers(op)):
            return "unknown"
        return "opaque"
    if any(entry.kind == "kernel" for entry in found.weights) or found.children:
        return "kernel" if _kernels(op) else "plain"
    if any(entry.kind == "scale" for entry in found.weights):
        return "norm"
    return "plain"


def _is_graph(op: Any) -> bool:
    if not isinstance(op, keras.Model):
        return False
    try:
        outputs = op.outputs
    except (AttributeError, ValueError):
        return False
    return bool(outputs) and all(_compat.producer_node(t) is not None for t in outputs)


def _unreadable(op: Any, why: str) -> ValueError:
    return ValueError(
        f"The residual detector cannot read layer {op.name!r} ({type(op).__name__}): {why}. "
        "It never guesses: describe the block with keras_inits.model.register_block"
        f"({type(op).__name__}, ...) or pass `branches=`. Received: layer={type(op).__name__}"
    )


# The graph of a functional model.


class _Graph:
    """The nodes of a functional graph reachable from its outputs, in topological order."""

    def __init__(self, model: Any) -> None:
        self.nodes: list[Any] = []
        self.index: dict[int, int] = {}
        self.consumers: dict[int, list[int]] = {}
        stack: list[tuple[Any, bool]] = [
            (_compat.producer_node(t), False) for t in reversed(model.outputs)
        ]
        while stack:
            node, expanded = stack.pop()
            if node is None or id(node) in self.index:
                continue
            if expanded:
                self.index[id(node)] = len(self.nodes)
                self.nodes.append(node)
                continue
            stack.append((node, True))
            for tensor in reversed(node.input_tensors):
                parent = _compat.producer_node(tensor)
                if parent is not None and id(parent) not in self.index:
                    stack.append((parent, False))
        self.ancestors: list[frozenset[int]] = []
        for i in range(len(self.nodes)):
            above = {i}
            for parent in self.parents(i):
                above |= self.ancestors[parent]
                self.consumers.setdefault(parent, []).append(i)
            self.ancestors.append(frozenset(above))

    def parents(self, i: int) -> list[int]:
        found = []
        for tensor in self.nodes[i].input_tensors:
            node = _compat.producer_node(tensor)
            if node is not None and id(node) in self.index:
                found.append(self.index[id(node)])
        return found

    def op(self, i: int) -> Any:
        return self.nodes[i].operation


_ADDS: tuple[type, ...] = ()


def _is_add(op: Any) -> bool:
    global _ADDS
    if not _ADDS:
        _ADDS = _compat.add_operation_classes()
    return isinstance(op, _ADDS)


def _path_kernels(graph: _Graph, path: Iterable[int]) -> int:
    weighted = ("kernel", "model", "block", "unknown", "opaque")
    return sum(1 for i in path if _kind(graph.op(i)) in weighted)


def _tail(graph: _Graph, start: int, path: frozenset[int], merge: Any) -> tuple[list, Any]:
    """Walks back from ``start`` through weightless ops to the kernels that end the branch."""
    ends: list[tuple[Any, Any]] = []
    norm: Any = None
    stack, seen = [start], set()
    while stack:
        i = stack.pop()
        if i in seen or i not in path:
            continue
        seen.add(i)
        op = graph.op(i)
        kind = _kind(op)
        if kind in ("unknown", "opaque"):
            raise _unreadable(op, f"it ends the branch summed at {merge.name!r}")
        if kind == "block":
            raise _unreadable(op, f"it is a block inside the branch summed at {merge.name!r}")
        if kind == "kernel":
            ends.extend(_end_weights(op))
            continue
        if kind == "model":
            if not _is_graph(op):
                raise _unreadable(op, f"it ends the branch summed at {merge.name!r}")
            inner = _Graph(op)
            last = [inner.index[id(_compat.producer_node(t))] for t in op.outputs]
            for j in last:
                found, inner_norm = _tail(inner, j, frozenset(range(len(inner.nodes))), merge)
                ends.extend(found)
                norm = norm if norm is not None else inner_norm
            continue
        if kind == "norm" and not ends and norm is None:
            norm = (op, _scale_of(op))
        parents = graph.parents(i)
        if len([p for p in parents if p in path]) > 1:
            raise _unreadable(
                op,
                f"it combines several inputs after the last weights of the branch summed at "
                f"{merge.name!r} (a gate or a parallel block)",
            )
        stack.extend(parents)
    return ends, norm


def _branch(graph: _Graph, merge_index: int, skip: int, branch: int, shortcut: Shortcut) -> Found:
    merge = graph.op(merge_index)
    path = graph.ancestors[branch] - graph.ancestors[skip]
    ends, norm = _tail(graph, branch, path, merge)
    if not ends:
        raise _unreadable(merge, "the branch it sums holds no kernel to scale")
    layers, kernels = [], []
    for i in sorted(path):
        op = graph.op(i)
        if _kind(op) == "unknown":
            raise _unreadable(op, f"it sits in the branch summed at {merge.name!r}")
        if _kind(op) in ("block",):
            raise _unreadable(op, f"it is a block inside the branch summed at {merge.name!r}")
        layers.append(op)
        kernels.extend(_kernels(op))
    post_norm = False
    after = graph.consumers.get(merge_index, [])
    if after and all(_kind(graph.op(j)) == "norm" for j in after):
        post_norm = True
    end_ids = {id(v) for _, v in ends}
    kernels = [k for k in kernels if id(k[1]) not in end_ids] + list(ends)
    return Found(
        merge=merge.name,
        skip=graph.op(skip).name,
        shortcut=shortcut,
        layers=layers,
        ends=ends,
        kernels=kernels,
        norm=None if norm is None or norm[1] is None else norm,
        post_norm=post_norm,
    )


def _merge(graph: _Graph, i: int) -> list[Found]:
    """The branches summed at node i (none where it sums no weighted path)."""
    merge = graph.op(i)
    inputs = graph.parents(i)
    if len(inputs) < 2:
        return []
    for skip in inputs:
        others = [j for j in inputs if j != skip]
        if all(skip in graph.ancestors[j] for j in others):
            return [
                _branch(graph, i, skip, j, "identity")
                for j in others
                if _path_kernels(graph, graph.ancestors[j] - graph.ancestors[skip])
            ]
    if len(inputs) > 2:
        own = [
            _path_kernels(
                graph,
                graph.ancestors[j]
                - frozenset().union(*(graph.ancestors[k] for k in inputs if k != j)),
            )
            for j in inputs
        ]
        if not any(own):
            return []  # a sum of weightless paths (embeddings): no branch to scale
        raise _unreadable(merge, f"it sums {len(inputs)} inputs, none an ancestor of the others")
    a, b = inputs
    weighted = {
        j: _path_kernels(graph, sorted(graph.ancestors[j] - graph.ancestors[k]))
        for j, k in ((a, b), (b, a))
    }
    if weighted[a] == 0 and weighted[b] == 0:
        return []  # a sum of two weightless paths: no branch to scale
    for skip, branch in ((a, b), (b, a)):
        if weighted[skip] == 0:
            return [_branch(graph, i, skip, branch, "pooling")]
    for skip, branch in ((a, b), (b, a)):
        if weighted[skip] == 1 and weighted[branch] > 1:
            return [_branch(graph, i, skip, branch, "projection")]
    raise _unreadable(
        merge,
        f"neither input is the other's ancestor and both paths hold weighted layers "
        f"({weighted[a]} and {weighted[b]}), so it cannot tell the skip from the branch",
    )


def _from_block(op: Any, function: BlockFunction) -> list[Found]:
    found = []
    for item in function(op):
        if not isinstance(item, BlockBranch):
            raise TypeError(
                f"A block adapter for {type(op).__name__} must return BlockBranch records. "
                f"Received: {type(item).__name__}"
            )
        ends = _end_weights(item.end)
        end_ids = {id(v) for _, v in ends}
        layers = list(item.layers) or [item.end]
        kernels = [k for layer in layers for k in _kernels(layer) if id(k[1]) not in end_ids]
        norm = None if item.norm is None else (item.norm, _scale_of(item.norm))
        found.append(
            Found(
                merge=op.name,
                skip="",
                shortcut="block",
                layers=layers,
                ends=ends,
                kernels=kernels + ends,
                norm=None if norm is None or norm[1] is None else norm,
                post_norm=item.post_norm,
            )
        )
    return found


def _read(model: Any, found: list[Found], next_block: list[int]) -> None:
    """Appends the branches under ``model``: its graph, its blocks, its nested models."""

    def add(branches: list[Found], shared: bool) -> None:
        for item in branches:
            item.block = next_block[0]
            if not shared:
                next_block[0] += 1
            found.append(item)
        if shared and branches:
            next_block[0] += 1

    function = _block_function(model)
    if function is not None:
        add(_from_block(model, function), shared=True)
        return
    if _is_graph(model):
        graph = _Graph(model)
        for i, node in enumerate(graph.nodes):
            op = node.operation
            if op is model:
                continue
            if _is_add(op):
                add(_merge(graph, i), shared=False)
                continue
            kind = _kind(op)
            if kind in ("block", "model"):
                _read(op, found, next_block)
            elif kind == "unknown":
                raise _unreadable(op, "a layer of a class it does not know, holding weights")
        return
    if isinstance(model, keras.Sequential):
        for layer in model.layers:
            _read(layer, found, next_block)
        return
    if model is not None and _kind(model) == "unknown":
        raise _unreadable(model, "its call is Python the detector cannot see")
    if isinstance(model, keras.Model) and _kernels(model):
        raise _unreadable(model, "a subclassed model's call is Python the detector cannot see")


def _by_name(model: Any, item: Any) -> Any:
    if isinstance(item, keras.layers.Layer):
        return item
    if isinstance(item, str):
        matches = [leaf.layer for leaf in walk(model) if leaf.layer.name == item]
        if len(matches) == 1:
            return matches[0]
        why = "no layer" if not matches else f"{len(matches)} layers"
        raise ValueError(
            f"`branches` names a layer {item!r}, but the model has {why} of that name. "
            f"Received: branches=[..., {item!r}, ...]"
        )
    raise TypeError(
        "`branches` must be a list of branches, each a layer, a layer name, or a sequence of "
        f"them (the branch's kernel layers, the end last). Received: {type(item).__name__}"
    )


def _given(model: Any, branches: Any) -> list[Found]:
    if isinstance(branches, (str, keras.layers.Layer)) or not isinstance(branches, (list, tuple)):
        raise TypeError(
            "`branches` must be a list of branches, each a layer, a layer name, or a sequence "
            f"of them (the end last). Received: branches={branches!r}"
        )
    found = []
    for block, item in enumerate(branches):
        items = list(item) if isinstance(item, (list, tuple)) else [item]
        if not items:
            raise ValueError(
                f"`branches` holds an empty branch at position {block}. "
                f"Received: branches[{block}]=[]"
            )
        layers = [_by_name(model, x) for x in items]
        norm = None
        if len(layers) > 1 and _kind(layers[-1]) == "norm" and _scale_of(layers[-1]) is not None:
            # A scale after the end (a norm's gamma, a ResidualScale) is the branch's norm.
            norm = (layers[-1], _scale_of(layers[-1]))
        ends = _end_weights(layers[-2] if norm is not None else layers[-1])
        end_ids = {id(v) for _, v in ends}
        kernels = [k for layer in layers for k in _kernels(layer) if id(k[1]) not in end_ids]
        found.append(
            Found(
                merge="",
                skip="",
                shortcut="given",
                layers=layers,
                ends=ends,
                kernels=kernels + ends,
                norm=norm,
                post_norm=False,
                block=block,
            )
        )
    return found


def find(model: Any, branches: Any = None) -> list[Found]:
    """The branches of ``model`` with their variables (``branches=`` overrides the graph)."""
    check_model(model)
    if branches is not None:
        return _given(model, branches)
    found: list[Found] = []
    _read(model, found, [0])
    for leaf in walk(model):
        unplaced = leaf.unplaced()
        if unplaced and any(leaf.layer is layer for item in found for layer in item.layers):
            raise unknown_kind(leaf.layer, unplaced)
    return found


def record(item: Found, index: int, count: int) -> ResidualBranch:
    return ResidualBranch(
        index=index,
        block=item.block,
        count=count,
        merge=item.merge,
        skip=item.skip,
        shortcut=item.shortcut,
        layers=tuple(layer.name for layer in item.layers),
        ends=tuple(str(v.path) for _, v in item.ends),
        kernels=tuple(str(v.path) for _, v in item.kernels),
        norm=None if item.norm is None else str(item.norm[1].path),
        post_norm=item.post_norm,
    )


def table(records: Sequence[ResidualBranch]) -> str:
    """The records as a plain-text table, one line per branch."""
    header = ("#", "block", "merge", "skip", "shortcut", "kernels", "ends", "norm")
    rows = [header] + [
        (
            str(r.index),
            str(r.block),
            r.merge + (" (post-norm)" if r.post_norm else ""),
            r.skip or "-",
            r.shortcut,
            str(len(r.kernels)),
            ", ".join(r.ends),
            r.norm or "-",
        )
        for r in records
    ]
    return format_rows(rows)


def residual_branches(
    model: keras.Model, branches: Any = None, print_table: bool = False
) -> list[ResidualBranch]:
    """The residual branches x + f(x) of a model, read from its graph; changes nothing.

    In a functional model (Sequential, nested models too) each sum
    (``layers.Add``, ``x + y``, ``ops.add``) with a weighted input is a
    residual branch. Its skip input is the one that is an ancestor of the
    other ("identity"); where neither is, a weightless path (a strided
    pooling) is the skip ("pooling"), or else a path with exactly one
    weighted layer against one with more (ResNet's 1x1 projection,
    "projection"). The branch ends at the last weighted layer before the sum
    (an attention's output projection); a normalization between it and the
    sum is the branch's ``norm``; a sum that feeds a normalization is
    ``post_norm`` (post-LN). A layer that sums inside its own ``call`` is
    read through its block adapter (``register_block``; keras-hub's GPT-2,
    BERT, Llama and Gemma blocks are known).

    The detector refuses, naming the layer, rather than guess: a sum whose
    inputs it cannot tell apart, a gate or parallel block after a branch's
    last weights, a layer of unknown class holding weights or layers with
    kernels, a subclassed model. ``branches=`` then names the branches.

    Args:
        model: A built model or layer.
        branches: None (read the graph) or a list of branches, each a layer
            or a layer name (the layer whose kernel ends it) or a sequence
            of them (the branch's kernel layers, the end last, then
            optionally the normalization or ``ResidualScale`` after it).
        print_table: Print the records as a table too.

    Returns:
        One ``ResidualBranch`` per branch, in graph order.

    Raises:
        TypeError: If ``model`` is not a Keras layer or ``branches`` is not
            a list of layers, names or sequences of them.
        ValueError: If the model is not built, a ``branches`` name matches
            no layer or several, or the detector cannot read a layer (the
            error names it).

    Example:
        >>> import keras
        >>> x = keras.Input((16,))
        >>> h = x
        >>> for _ in range(3):
        ...     h = h + keras.layers.Dense(16)(keras.layers.Dense(16, activation="relu")(h))
        >>> [(b.index, b.shortcut, len(b.kernels)) for b in residual_branches(keras.Model(x, h))]
        [(0, 'identity', 2), (1, 'identity', 2), (2, 'identity', 2)]
    """
    if not isinstance(print_table, bool):
        raise TypeError(f"`print_table` must be a bool. Received: print_table={print_table!r}")
    found = find(model, branches)
    records = [record(item, i, len(found)) for i, item in enumerate(found)]
    if print_table:
        print(table(records))
    return records


# keras-hub's blocks (registered once keras_hub is imported; this never imports it).

_KERAS_HUB_BLOCKS_DONE: list[bool] = []


def _transformer_layer(layer: Any) -> list[BlockBranch]:
    # keras_hub.layers.TransformerEncoder / TransformerDecoder (GPT-2, BERT, ...):
    # x + attention(x) (and a cross-attention), then x + W2 act(W1 x).
    post = not getattr(layer, "normalize_first", False)
    attention = layer._self_attention_layer
    branches = [
        BlockBranch(
            end=attention._output_dense,
            layers=(attention,),
            norm=layer._self_attention_layer_norm if post else None,
            post_norm=post,
        )
    ]
    cross = getattr(layer, "_cross_attention_layer", None)
    if cross is not None:
        branches.append(
            BlockBranch(
                end=cross._output_dense,
                layers=(cross,),
                norm=layer._cross_attention_layer_norm if post else None,
                post_norm=post,
            )
        )
    branches.append(
        BlockBranch(
            end=layer._feedforward_output_dense,
            layers=(layer._feedforward_intermediate_dense, layer._feedforward_output_dense),
            norm=layer._feedforward_layer_norm if post else None,
            post_norm=post,
        )
    )
    return branches


def _llama_block(layer: Any) -> list[BlockBranch]:
    # LlamaTransformerDecoder (llama_decoder.py): pre-norm, x + attn(norm(x)), then
    # x + W_out(silu(W_gate h) * W_in h).
    return [
        BlockBranch(
            end=layer._self_attention_layer._output_dense, layers=(layer._self_attention_layer,)
        ),
        BlockBranch(
            end=layer._feedforward_output_dense,
            layers=(
                layer._feedforward_gate_dense,
                layer._feedforward_intermediate_dense,
                layer._feedforward_output_dense,
            ),
        ),
    ]


def _gemma_block(layer: Any) -> list[BlockBranch]:
    # GemmaDecoderBlock: pre-norm (post-norms in Gemma 2 sit inside the branch, before the sum).
    return [
        BlockBranch(
            end=layer.attention.output_dense,
            layers=(layer.attention,),
            norm=getattr(layer, "post_attention_norm", None),
        ),
        BlockBranch(
            end=layer.ffw_linear,
            layers=(layer.gating_ffw, layer.gating_ffw_2, layer.ffw_linear),
            norm=getattr(layer, "post_ffw_norm", None),
        ),
    ]


def _register_keras_hub_blocks() -> None:
    import sys

    if _KERAS_HUB_BLOCKS_DONE or "keras_hub" not in sys.modules:
        return
    _KERAS_HUB_BLOCKS_DONE.append(True)
    blocks = [
        ("layers.modeling.transformer_encoder", "TransformerEncoder", _transformer_layer),
        ("layers.modeling.transformer_decoder", "TransformerDecoder", _transformer_layer),
        ("models.llama.llama_decoder", "LlamaTransformerDecoder", _llama_block),
        ("models.gemma.gemma_decoder_block", "GemmaDecoderBlock", _gemma_block),
    ]
    for module, name, function in blocks:
        cls = _compat.keras_hub_class(module, name)
        if cls is not None and cls not in _BLOCKS:
            _BLOCKS[cls] = function
