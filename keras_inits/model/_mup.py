"""``mup(model, base)``: the maximal update parametrization, calibrated to a base width.

Under the standard parametrization (every library's default) the best
learning rate moves as a network widens, so each width must be tuned again.
muP (Yang et al. 2022, "Tensor Programs V", Table 3) gives each weight an
init scale and a learning rate that depend on width so that what was tuned
on a narrow model holds on a wide one. For SGD and Adam-like optimizers it
is realized entirely by init scales and per-weight learning rates (the
paper's Lemma J.1): no layer of the model changes, so the model saves,
loads and exports as plain Keras, and the rates live in ``MupOptimizer``.

Which axes are widths is read from shapes, as microsoft/mup's
``set_base_shapes(model, base, delta)`` does: an axis whose size differs
between ``base`` and ``delta`` (or ``model``, without a delta) is a width;
the layer table's axis roles say which fan it counts in. Calibrated to the
base: the user's own initializers set the scale at the base width, muP
scales it with width, and at the base width every multiplier is 1 and no
weight is written.

This module never draws a random number: it scales what each layer's own
initializer drew (reading, but never redrawing, the initializer's scale).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import Any, Literal, get_args

import keras
import numpy as np

from keras_inits import _compat
from keras_inits._fans import compute_fans, fan_for_mode
from keras_inits._validation import check_choice
from keras_inits.model._layouts import WIDTH_ROLES, WeightLayout
from keras_inits.model._mup_optimizer import (
    MupOptimizer,
    Rule,
    check_inner,
    optimizer_rule,
)
from keras_inits.model._walk import (
    Assignment,
    Leaf,
    assign_all,
    check_model,
    format_rows,
    scaled_by,
    shape_of,
    std,
    to_numpy,
    unknown_kind,
    walk,
)

__all__ = ["MupPlan", "MupWeight", "mup"]

Role = Literal["input", "hidden", "output", "vector", "finite"]
Law = Literal["fans", "fixed", "measured", "none"]

# muP relative to the base width (Yang et al. 2022, Table 3), for a weight
# whose fan_in grows by m_in and whose other width axes by m_out:
#
#     role                               init std x    Adam lr x    SGD lr x
#     input  (fan_in fixed, outputs grow)    1             1          m_out
#     vector (a bias, a norm's scale)        1             1          m_out
#     hidden (both grow)                 m_in^(-1/2)     1/m_in         1
#     output (fan_in grows, outputs fixed)  1/m_in        1/m_in      1/m_in
#     finite (nothing grows)                 1             1            1
#
# Table 3 states Var(W) ~ 1/fan_in for input and hidden weights and
# 1/fan_in^2 for output weights; relative to the base those are the stds
# above. An attention's query projection takes a further c = sqrt(d_base/d)
# (d the head dimension): its logits q.k / sqrt(d) become q.k sqrt(d_base) / d,
# muP's 1/d calibrated to the base. Put into the weight rather than the graph
# (Lemma J.1), c multiplies its init and Adam rate, and c^2 its SGD rate.

_UNKNOWN_ATTENTION = (
    "keras_inits.mup cannot find the query projection of layer {name!r} ({cls}) in `model`, an "
    "attention layer the table of layer kinds does not know, so it cannot give its logits "
    "muP's 1/d scaling (it never guesses). Describe it with keras_inits.register_layout("
    "{cls}, lambda layer: LayerLayout(children=tuple(sublayers), query=<the query "
    "EinsumDense or Dense, head dimension last>)) or use keras.layers.MultiHeadAttention. "
    "Received: layer={cls}"
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MupWeight:
    """What ``mup`` did to one weight, and the rates it gets.

    Attributes:
        layer: The name of the layer holding it (in ``model``).
        weight: Its attribute: "kernel", "bias", "gamma", ...
        path: The variable's path (the optimizer's key).
        role: "input", "hidden", "output", "vector" or "finite" (see ``mup``).
        shape: Its shape in ``model``.
        base_shape: Its shape in ``base``.
        width_in: How much its fan_in grew from the base (1: a fixed fan_in).
        width_out: How much its other width axes grew (1: none).
        attention: c = sqrt(d_base / d) for an attention's query projection, else 1.
        init: The factor its values were multiplied by (1: not written).
        law: How its initializer's own scale at each shape was read: "fans"
            (a variance-scaling initializer: from the fans), "fixed" (a
            constant or a fixed-scale draw), "measured" (the root mean square
            of the initializer's draw at both shapes) or "none" (its shape
            did not change, or it has no initializer attribute).
        old_std: Std of its entries before.
        new_std: Std of its entries after.
        lr_adam: Its learning-rate multiplier for Adam-like optimizers.
        lr_sgd: Its learning-rate multiplier for SGD. Keras's weight decay is
            decoupled (w -= lr * wd * w), so the decay follows the rate.
        trainable: Whether the optimizer trains it.
    """

    layer: str
    weight: str
    path: str
    role: Role
    shape: tuple[int, ...]
    base_shape: tuple[int, ...]
    width_in: float
    width_out: float
    attention: float
    init: float
    law: Law
    old_std: float
    new_std: float
    lr_adam: float
    lr_sgd: float
    trainable: bool

    def lr(self, rule: Rule) -> float:
        """Its learning-rate multiplier under ``rule`` ("adam" or "sgd")."""
        return self.lr_adam if rule == "adam" else self.lr_sgd


@dataclasses.dataclass(frozen=True)
class MupPlan:
    """``mup``'s plan: one ``MupWeight`` per weight, and the optimizer that applies it.

    Attributes:
        weights: One record per weight, in the model's layer order.
        model: The model it was made for (its trainable variables, as they are
            when ``optimizer`` is called, set the optimizer's order).
    """

    weights: tuple[MupWeight, ...]
    model: Any = dataclasses.field(default=None, repr=False, compare=False)
    variables: tuple[Any, ...] = dataclasses.field(default=(), repr=False, compare=False)

    def __iter__(self) -> Iterator[MupWeight]:
        return iter(self.weights)

    def __len__(self) -> int:
        return len(self.weights)

    def multipliers(self, rule: Rule = "adam") -> dict[str, float]:
        """Variable path -> learning-rate multiplier, for the trainable weights."""
        rule = check_choice("rule", rule, get_args(Rule))
        return {w.path: w.lr(rule) for w in self.weights if w.trainable}

    def optimizer(self, optimizer: Any, rule: Rule | None = None) -> MupOptimizer:
        """``optimizer`` with this plan's learning rate per weight: compile the model with it.

        Args:
            optimizer: A fresh Keras optimizer (its rate and schedule are the
                base width's, as tuned there).
            rule: "adam" or "sgd"; None takes it from the optimizer: "sgd"
                for SGD, "adam" for Adam, AdamW, Adamax, Nadam, RMSprop,
                Adagrad, Adadelta and Lion. Other optimizers (Ftrl, Lamb,
                Adafactor, Muon, your own) need it given.

        Returns:
            A ``MupOptimizer`` wrapping ``optimizer``.

        Raises:
            TypeError: If ``optimizer`` is not a plain Keras optimizer.
            ValueError: If it is built already, ``rule`` is not one of
                ("adam", "sgd"), or it is None for an optimizer muP's rules
                are not derived for.
        """
        check_inner(optimizer)
        if rule is None:
            rule = optimizer_rule(optimizer)
            if rule is None:
                raise ValueError(
                    f"muP's learning rates are derived for SGD and for Adam-like optimizers, "
                    f"not for {type(optimizer).__name__}: pass `rule` ('adam' or 'sgd') to "
                    "apply one of them anyway. Received: optimizer="
                    f"{type(optimizer).__name__}, rule=None"
                )
        rule = check_choice("rule", rule, get_args(Rule))
        by_id = {id(v): w.lr(rule) for v, w in zip(self.variables, self.weights, strict=True)}
        trainable = list(self.model.trainable_variables)
        unknown = [str(v.path) for v in trainable if id(v) not in by_id]
        if unknown:
            raise ValueError(
                "`model` has trainable variables its muP plan does not know (layers added "
                f"after keras_inits.mup?): plan it again. Received: variables={unknown[:5]}"
            )
        return MupOptimizer(
            optimizer,
            [by_id[id(v)] for v in trainable],
            shapes=[tuple(int(d) for d in v.shape) for v in trainable],
            rule=rule,
        )

    def table(self) -> str:
        """The plan as a plain-text table, one line per weight, and the weight-decay rule."""
        header = ("path", "role", "shape", "width in/out", "init x", "law", "lr x adam", "lr x sgd")
        rows = [header] + [
            (
                w.path,
                w.role + (" (query)" if w.attention != 1 else ""),
                "x".join(str(d) for d in w.shape),
                f"{w.width_in:g}/{w.width_out:g}",
                f"{w.init:.4g}",
                w.law,
                f"{w.lr_adam:.4g}",
                f"{w.lr_sgd:.4g}",
            )
            for w in self.weights
        ]
        return format_rows(rows) + (
            "\nweight decay: Keras's is decoupled (w -= lr * wd * w), so each weight's decay "
            "takes its lr multiplier"
        )


def _leaves(model: Any, name: str) -> list[Leaf]:
    """The model's layers, each refused by name if the table cannot place its weights."""
    leaves = list(walk(model))
    for leaf in leaves:
        unplaced = leaf.unplaced()
        if unplaced:
            raise unknown_kind(leaf.layer, unplaced)
        if _attention_without_query(leaf):
            cls = type(leaf.layer).__name__
            raise ValueError(_UNKNOWN_ATTENTION.format(name=leaf.layer.name, cls=cls))
    return leaves


def _attention_without_query(leaf: Leaf) -> bool:
    """An attention layer whose query projection the table does not name."""
    layer = leaf.layer
    if isinstance(layer, (keras.layers.Attention, keras.layers.AdditiveAttention)):
        return True  # dot-product scores with no projection to carry muP's 1/d
    if leaf.layout is not None and leaf.layout.query is not None:
        return False
    return "attention" in type(layer).__name__.lower() and not isinstance(layer, keras.Model)


def _weights(leaf: Leaf) -> list[tuple[WeightLayout, Any]]:
    # Running statistics are state, not weights: no init scale, no learning rate.
    return [(e, v) for e, v in leaf.placed() if e.kind != "statistic"]


def _structure_error(what: str, index: int, ours: str, theirs: str, name: str) -> ValueError:
    return ValueError(
        f"`{name}` must be the same architecture as `model` at another width, but its "
        f"{what} differs at layer {index}: {theirs} in `{name}`, {ours} in `model`. "
        f"Received: {name}={theirs}"
    )


def _match(model_leaves: list[Leaf], other: list[Leaf], name: str) -> None:
    """Refuses ``other`` unless it has model's layers, classes and weights, in order."""
    if len(other) != len(model_leaves):
        raise ValueError(
            f"`{name}` must be the same architecture as `model` at another width, but it has "
            f"{len(other)} layers where `model` has {len(model_leaves)}. "
            f"Received: {name}={len(other)} layers"
        )
    for index, (mine, theirs) in enumerate(zip(model_leaves, other, strict=True)):
        if type(mine.layer) is not type(theirs.layer):
            raise _structure_error(
                "layer class",
                index,
                f"{type(mine.layer).__name__} {mine.layer.name!r}",
                f"{type(theirs.layer).__name__} {theirs.layer.name!r}",
                name,
            )
        ours = [(e.attribute, len(e.axes)) for e, _ in _weights(mine)]
        others = [(e.attribute, len(e.axes)) for e, _ in _weights(theirs)]
        if ours != others:
            raise _structure_error(
                f"weights (layer {mine.layer.name!r})", index, str(ours), str(others), name
            )


def _scale_at(initializer: Any, shape: tuple[int, ...], dtype: str) -> tuple[float, Law]:
    """A number proportional to the std ``initializer`` draws at ``shape``, and how it was read."""
    from keras_inits import small, variance

    if initializer is None:
        return 1.0, "none"
    if isinstance(initializer, variance.VarianceScaling):
        return initializer.stddev(shape), "fans"
    if isinstance(initializer, keras.initializers.VarianceScaling):
        axes = (getattr(initializer, "input_axes", None), getattr(initializer, "output_axes", None))
        fan_in, fan_out = compute_fans(shape, *axes)
        return math.sqrt(
            initializer.scale / fan_for_mode(initializer.mode, fan_in, fan_out)
        ), "fans"
    fixed = (
        keras.initializers.RandomNormal,
        keras.initializers.TruncatedNormal,
        keras.initializers.RandomUniform,
        keras.initializers.Constant,
        keras.initializers.Zeros,
        keras.initializers.Ones,
        small.SmallNormal,
        small.SmallUniform,
        small.BoundedNormal,
    )
    if isinstance(initializer, fixed):
        return 1.0, "fixed"
    if not callable(initializer) or math.prod(shape) == 0:
        return 1.0, "none"
    values = to_numpy(initializer(shape, dtype="float32")).astype(np.float64)
    return float(np.sqrt(np.mean(np.abs(values) ** 2))), "measured"


def _role(in_grows: bool, out_grows: bool, entry: WeightLayout) -> Role:
    if in_grows and out_grows:
        return "hidden"
    if in_grows:
        return "output"
    if out_grows:
        return "input" if entry.kind in ("kernel", "embedding") else "vector"
    return "finite"


def _rates(role: Role, m_in: float, m_out: float) -> tuple[float, float, float]:
    """(init std x, Adam lr x, SGD lr x) for ``role`` (the table above)."""
    if role == "hidden":
        return m_in**-0.5, 1.0 / m_in, 1.0
    if role == "output":
        return 1.0 / m_in, 1.0 / m_in, 1.0 / m_in
    if role in ("input", "vector"):
        return 1.0, 1.0, m_out
    return 1.0, 1.0, 1.0


def _widths(
    entry: WeightLayout,
    path: str,
    shapes: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]],
    has_delta: bool,
) -> tuple[list[bool], float, float]:
    """Which axes are widths, and how much fan_in and the other width axes grew."""
    mine, base, delta = shapes
    grows = [b != d for b, d in zip(base, delta, strict=True)]
    m_in = m_out = 1.0
    for axis, (size, base_size, width) in enumerate(zip(mine, base, grows, strict=True)):
        role = entry.axes[axis].role
        if not width and size != base_size:
            raise ValueError(
                f"`model` differs from `base` in axis {axis} ({role}) of {path!r} "
                f"({size} against {base_size}), an axis `delta` does not change, so it is no "
                f"width: the models must differ only in their widths. Received: "
                f"shapes={{'model': {mine}, 'base': {base}, 'delta': {delta}}}"
            )
        if width and role not in WIDTH_ROLES:
            other = "`delta`" if has_delta else "`model`"
            raise ValueError(
                f"{other} differs from `base` in axis {axis} of {path!r}, a {role} axis, "
                f"which is not a width (widths are {WIDTH_ROLES} axes; a kernel size, "
                "vocabulary or sequence length must be the same): the models must differ "
                f"only in their widths. Received: "
                f"shapes={{'base': {base}, {other.strip('`')!r}: {delta}}}"
            )
        if width:
            if size == 0 or base_size == 0:
                raise ValueError(
                    f"A width axis of {path!r} in `model` or `base` is empty. Received: "
                    f"shapes={{'model': {mine}, 'base': {base}}}"
                )
            if entry.axes[axis].side == "in":
                m_in *= size / base_size
            else:
                m_out *= size / base_size
    return grows, m_in, m_out


def _attention_factors(leaves: list[Leaf], base: list[Leaf]) -> dict[int, float]:
    """id(query layer) in ``model`` -> c = sqrt(d_base / d), d its head dimension."""
    factors: dict[int, float] = {}
    for mine, theirs in zip(leaves, base, strict=True):
        if mine.layout is None or mine.layout.query is None:
            continue
        query, base_query = mine.layout.query, theirs.layout.query  # type: ignore[union-attr]
        d, d_base = shape_of(query.kernel)[-1], shape_of(base_query.kernel)[-1]
        if d != d_base:
            factors[id(query)] = math.sqrt(d_base / d)
    return factors


def mup(model: keras.Model, base: keras.Model, delta: keras.Model | None = None) -> MupPlan:
    """Scales, in place, a wide model's weights for muP, and plans its learning rates.

    ``base`` is the same architecture at the width where you tune (built,
    initialized as you like it); ``model`` is the wide one. An axis whose
    size differs between the two (or between ``base`` and ``delta``) is a
    width; the layer table says whether it counts in fan_in. Each weight is
    then one of (Yang et al. 2022, Table 3), relative to the base, with m_in
    the growth of its fan_in and m_out of its other width axes:

        input  (fan_in fixed, e.g. the first layer, embeddings): std x 1,
               Adam lr x 1, SGD lr x m_out
        vector (biases, norm scales):       as input
        hidden (fan_in and fan_out grow):   std x m_in^(-1/2), Adam lr x 1/m_in, SGD lr x 1
        output (fan_in grows, e.g. logits): std x 1/m_in, Adam lr x 1/m_in, SGD lr x 1/m_in
        finite (nothing grows):             unchanged

    where "std x" is relative to what the layer's own initializer gives at
    the base shape: a weight drawn with a fan_in-scaled initializer (he_*,
    lecun_*, ours) is already muP's hidden weight and is left as it is. An
    attention's query projection (``MultiHeadAttention``,
    ``GroupQueryAttention``) also takes c = sqrt(d_base / d), d the head
    dimension, on its init and Adam rate (c^2 on SGD's), which turns the
    logits' 1/sqrt(d) into muP's 1/d, calibrated to the base. Weights are
    multiplied, not redrawn (the draw keeps its distribution and seed); at
    the base width every factor is 1 and nothing is written. Call it right
    after building, before training or loading weights; compile with
    ``plan.optimizer(...)``.

    Args:
        model: The built wide model (functional, Sequential, subclassed,
            nested; any backend).
        base: The same architecture built at the base width.
        delta: The same architecture at a third width, when ``model`` alone
            cannot tell which axes are widths: at the base width itself, or
            where a width does not change between ``base`` and ``model``
            (microsoft/mup's ``delta``). Only its shapes are read.

    Returns:
        A ``MupPlan``: one ``MupWeight`` per weight (role, multipliers, init
        std before and after, rates) and ``plan.optimizer(optimizer)``.

    Raises:
        TypeError: If ``model``, ``base`` or ``delta`` is not a Keras layer.
        ValueError: If one is not built, ``base`` or ``delta`` is not the same
            architecture (other layers, other weights, another kernel size,
            vocabulary or sequence length), no axis is a width, the table
            cannot place a layer's weights, an attention layer's query
            projection is unknown, or a tied embedding grows (its output use
            needs a multiplier no init can carry). Nothing is changed then.

    Example:
        >>> import keras
        >>> def build(width):
        ...     return keras.Sequential([keras.Input((8,)), keras.layers.Dense(width),
        ...                              keras.layers.Dense(width), keras.layers.Dense(3)])
        >>> plan = mup(build(256), base=build(64))
        >>> [(w.role, w.lr_adam) for w in plan if w.weight == "kernel"]
        [('input', 1.0), ('hidden', 0.25), ('output', 0.25)]

    Reference:
        Yang et al., 2022, "Tensor Programs V: Tuning Large Neural Networks
        via Zero-Shot Hyperparameter Transfer", https://arxiv.org/abs/2203.03466
    """
    check_model(model)
    check_model(base, "base")
    if delta is not None:
        check_model(delta, "delta")
    leaves = _leaves(model, "model")
    base_leaves = _leaves(base, "base")
    _match(leaves, base_leaves, "base")
    delta_leaves = base_leaves
    if delta is not None:
        delta_leaves = _leaves(delta, "delta")
        _match(leaves, delta_leaves, "delta")
    factors = _attention_factors(leaves, base_leaves)

    records: list[MupWeight] = []
    assignments: list[Assignment] = []
    any_width = False
    for leaf, base_leaf, delta_leaf in zip(leaves, base_leaves, delta_leaves, strict=True):
        pairs = zip(_weights(leaf), _weights(base_leaf), _weights(delta_leaf), strict=True)
        c = factors.get(id(leaf.layer), 1.0)
        for (entry, variable), (_, base_variable), (_, delta_variable) in pairs:
            path = str(variable.path)
            shape, base_shape = shape_of(variable), shape_of(base_variable)
            other = shape_of(delta_variable) if delta is not None else shape
            grows, m_in, m_out = _widths(entry, path, (shape, base_shape, other), delta is not None)
            any_width = any_width or any(grows)
            in_grows = any(g for g, a in zip(grows, entry.axes, strict=True) if a.side == "in")
            out_grows = any(g for g, a in zip(grows, entry.axes, strict=True) if a.side != "in")
            if entry.tied and (in_grows or out_grows) and _projects(leaf.layer):
                raise ValueError(
                    f"`model`'s layer {leaf.layer.name!r} ties its embedding table to the output "
                    "projection (it is called with reverse=True, or its calls cannot be "
                    "read), whose muP rate and scale (an output weight's) differ from the "
                    "lookup's (an input weight's); no init can carry both. Untie it "
                    f"(tie_weights=False). Received: layer={type(leaf.layer).__name__}"
                )
            role = _role(in_grows, out_grows, entry)
            init, lr_adam, lr_sgd = _rates(role, m_in, m_out)
            init, lr_adam, lr_sgd = init * c, lr_adam * c, lr_sgd * c * c
            initializer = getattr(leaf.layer, entry.initializer) if entry.initializer else None
            initializer = _compat.drawn_initializer(leaf.layer, initializer)
            dtype = keras.backend.standardize_dtype(variable.dtype)
            law: Law = "none"
            if shape != base_shape:
                at_base, law = _scale_at(initializer, base_shape, dtype)
                here, _ = _scale_at(initializer, shape, dtype)
                if at_base > 0 and here > 0:
                    init *= at_base / here
            before = to_numpy(variable)
            if init != 1.0:
                values = scaled_by(variable.value, init, dtype)
                assignments.append(Assignment(variable, values, before))
            records.append(
                MupWeight(
                    layer=leaf.layer.name,
                    weight=entry.attribute,
                    path=path,
                    role=role,
                    shape=shape,
                    base_shape=base_shape,
                    width_in=m_in,
                    width_out=m_out,
                    attention=c,
                    init=init,
                    law=law,
                    old_std=std(before),
                    new_std=float("nan"),
                    lr_adam=lr_adam,
                    lr_sgd=lr_sgd,
                    trainable=bool(variable.trainable),
                )
            )
    if not any_width:
        raise ValueError(
            "`model` has no width that differs from `base`'s"
            + (" in `delta`" if delta is not None else "")
            + ": muP needs to know which axes grow. Build `base` at the width you tune and "
            "`model` wider, or pass `delta` (the architecture at a third width) when "
            f"`model` is at the base width. Received: model={model.name!r}, base={base.name!r}"
        )
    _check_unique(records)
    assign_all(assignments)
    variables = tuple(_variables(leaves))
    return MupPlan(
        tuple(
            dataclasses.replace(r, new_std=std(v)) for r, v in zip(records, variables, strict=True)
        ),
        model=model,
        variables=variables,
    )


def _projects(layer: Any) -> bool:
    """Whether a tied table is (or may be) used as the output projection.

    A keras-hub backbone ties its ``ReversibleEmbedding`` but only looks up
    with it; its task model (``GPT2CausalLM``) calls it with reverse=True.
    A layer called outside a functional graph cannot be read: it may.
    """
    calls = _compat.call_keywords(layer)
    return calls is None or any(call.get("reverse", False) for call in calls)


def _variables(leaves: Sequence[Leaf]) -> list[Any]:
    return [v for leaf in leaves for _, v in _weights(leaf)]


def _check_unique(records: Sequence[MupWeight]) -> None:
    seen: set[str] = set()
    for record in records:
        if record.path in seen:
            raise ValueError(
                f"Two weights of `model` share the path {record.path!r}, the key of their "
                "learning rates: give the layers (or nested models) distinct names. "
                f"Received: path={record.path!r}"
            )
        seen.add(record.path)
