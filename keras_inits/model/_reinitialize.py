"""``reinitialize(model)``: re-draws fan-scaled weights with their layers' true fans."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_inits import _sampling
from keras_inits._base import BaseInitializer, RandomInitializer
from keras_inits._fans import compute_fans, fan_for_mode
from keras_inits._validation import check_seed
from keras_inits.model._layouts import WeightLayout
from keras_inits.model._walk import (
    Assignment,
    assign_all,
    check_model,
    in_shape,
    seeds,
    shape_of,
    std,
    to_numpy,
    unknown_kind,
    walk,
    weight_name,
)

__all__ = ["WeightChange", "redraw_by_rule", "reinitialize"]


@dataclasses.dataclass(frozen=True)
class WeightChange:
    """What ``reinitialize`` or ``torch_defaults`` did to one weight.

    Attributes:
        layer: The name of the layer (or RNN cell) that holds the weight.
        weight: Its attribute name: "kernel", "recurrent_kernel", "bias", ...
        path: The variable's path in the model (unique).
        rule: What was drawn, in words, e.g. "U(-1/sqrt(fan_in), 1/sqrt(fan_in))";
            a tied weight says so ("tied: ...").
        fan_in: The fan_in the rule used (None where it uses none).
        fan_out: The fan_out the rule used (None where it uses none).
        old_std: Std of the weight's entries before.
        new_std: Std of the weight's entries after.
    """

    layer: str
    weight: str
    path: str
    rule: str
    fan_in: float | None
    fan_out: float | None
    old_std: float
    new_std: float


# draw(layer, rule, shape, dtype, seed_of) -> values; seed_of(k): the weight's k-th seed.
RuleDraw = Callable[[Any, Any, tuple[int, ...], str, Callable[[int], Any]], Any]


def redraw_by_rule(
    model: Any,
    seed: Any,
    rule_of: Callable[[WeightLayout], Any],
    draw: RuleDraw,
    describe: Callable[[Any, Any], str],
    seeds_per_weight: int = 1,
) -> list[WeightChange]:
    """Re-draws every weight the table gives a rule (``torch_defaults``, ``flax_defaults``).

    ``rule_of(entry)`` is a weight's rule in the table, or None (the weight is
    left as it is and reported "unchanged", as is a weight the table cannot
    place); ``draw`` makes its new values, ``describe(layer, rule)`` says the
    rule in words. Weight i takes the seeds ``seeds_per_weight * i + k``. The
    model and seed are validated by the caller; everything is drawn before
    anything is assigned.
    """
    plan: list[tuple[Any, str, Any, Any, str]] = []
    for leaf in walk(model):
        for entry, variable in leaf.placed():
            tie = "tied (lookup and output projection): " if entry.tied else ""
            plan.append((leaf.layer, entry.attribute, variable, rule_of(entry), tie))
        plan.extend((leaf.layer, weight_name(v), v, None, "") for v in leaf.unplaced())
    next_seed = seeds(seed)
    assignments = []
    for index, (layer, _, variable, rule, _) in enumerate(plan):
        before = to_numpy(variable)
        if rule is None:
            assignments.append(Assignment(variable, None, before))
            continue
        dtype = keras.backend.standardize_dtype(variable.dtype)

        def seed_of(k: int, index: int = index) -> Any:
            return next_seed(seeds_per_weight * index + k)

        values = draw(layer, rule, shape_of(variable), dtype, seed_of)
        assignments.append(Assignment(variable, values, before))
    assign_all([a for a in assignments if a.values is not None])
    return [
        WeightChange(
            layer=layer.name,
            weight=name,
            path=variable.path,
            rule="unchanged" if rule is None else tie + describe(layer, rule),
            fan_in=None if rule is None else rule.fan_in,
            fan_out=None,
            old_std=std(assignment.before),
            new_std=std(variable),
        )
        for (layer, name, variable, rule, tie), assignment in zip(plan, assignments, strict=True)
    ]


def _redrawable(initializer: Any) -> bool:
    return isinstance(initializer, (BaseInitializer, keras.initializers.VarianceScaling))


def _redraw(
    initializer: Any, shape: tuple[int, ...], dtype: str, fan_in: float, fan_out: float, seed: Any
) -> tuple[Any, str]:
    """New values for a weight from ``initializer``, with the fans given."""
    if isinstance(initializer, keras.initializers.VarianceScaling):
        fan = fan_for_mode(initializer.mode, fan_in, fan_out)  # type: ignore[arg-type]
        stddev = math.sqrt(initializer.scale / fan)
        distribution = initializer.distribution
        rule = (
            f"{type(initializer).__name__}: {distribution} with std sqrt({initializer.scale:g} "
            f"/ {initializer.mode})"
        )
        values = in_shape(lambda s: _sampling.scaled(distribution, s, stddev, dtype, seed), shape)
        return values, rule
    config = initializer.get_config()
    if isinstance(initializer, RandomInitializer) or "seed" in config:
        fresh = type(initializer).from_config({**config, "seed": seed})
        return fresh(shape, dtype), f"{type(initializer).__name__}, a fresh draw"
    return initializer(shape, dtype), f"{type(initializer).__name__} (deterministic)"


@dataclasses.dataclass(frozen=True)
class _Planned:
    leaf: Any
    entry: WeightLayout
    variable: Any
    initializer: Any
    fan_in: float
    fan_out: float
    tie: str  # "" or the words the report adds for a tied weight


def _plan_fans(entry: WeightLayout, variable: Any) -> tuple[float, float, str]:
    """The fans a weight is drawn with, and what the report says about a tie."""
    if entry.kind not in ("kernel", "embedding") or entry.fan_in is None:
        fan_in, fan_out = compute_fans(shape_of(variable))  # a bias has no connections
        return fan_in, fan_out, ""
    if entry.tied == "output_projection":
        # One table, two roles: a lookup wants fans (1, dim), the output
        # projection h @ table^T wants fan_in = dim; no one std serves both.
        # Keep the scale the layer's own initializer gives it (its shape fans,
        # (vocab, dim)), the balance the architecture was tuned with, so the
        # logits keep their scale.
        fan_in, fan_out = compute_fans(shape_of(variable))
        return fan_in, fan_out, "tied (lookup and output projection): shape fans kept; "
    return entry.fan_in, entry.fan_out, ""  # type: ignore[return-value]


def reinitialize(
    model: keras.Model, seed: Any = None, include_all: bool = False
) -> list[WeightChange]:
    """Re-draws, in place, every fan-scaled weight with its layer's true fans.

    A weight is re-drawn when its initializer is one of this package's or a
    Keras ``VarianceScaling`` (glorot_*, he_*, lecun_* and the rest):

        Var(W) = scale / n,  n = fan_in, fan_out or (fan_in + fan_out) / 2,

    with the same scale, mode and distribution, but with n from ``fans``
    (the true fans of the layer kind) rather than the kernel's shape. So a
    Conv2DTranspose with ``he_normal`` gets Var = 2 / (K in / S) instead of
    2 / (K out), an LSTM kernel with ``glorot_uniform`` per-gate fans, a
    DepthwiseConv2D Var = 2 / K. This package's initializers that use no fan
    (orthogonal, structural, small) are drawn afresh. A bias with such an
    initializer keeps its shape rule (a bias has no connections). A tied
    embedding (``ReversibleEmbedding(tie_weights=True)``: the table is also
    the output projection) keeps its shape fans (vocab, dim), so the logits
    keep their scale; its report's rule says "tied". Every other weight is
    left as it is, unless ``include_all=True``.

    Build time: a functional or Sequential model is built when it is made,
    so call ``reinitialize`` right after; a subclassed model needs
    ``model.build(input_shape)`` (or a call on a batch) first::

        model = keras.Sequential([keras.Input((28, 28, 1)), ...])
        ki.reinitialize(model, seed=0)

    Args:
        model: A built model or layer (Sequential, functional, subclassed,
            nested), on any backend.
        seed: An int (reproducible: draw i uses a sub-seed hashed from
            (seed, i)), None (fresh values; ``keras.utils.set_random_seed``
            makes it reproducible) or a ``keras.random.SeedGenerator``.
        include_all: Also re-draw the kernels and biases whose initializer
            is neither ours nor fan-scaled (Keras's ``orthogonal``,
            ``random_normal``, ``zeros``, ...) from that initializer's config,
            with a fresh seed where it takes one.

    Returns:
        One ``WeightChange`` per re-drawn weight, in the model's layer order.

    Raises:
        TypeError: If ``model`` is not a Keras layer or ``seed`` is not an
            int, SeedGenerator or None.
        ValueError: If the model is not built or has no weights, or a layer
            holds a weight the table of layer kinds cannot place (a custom
            layer: ``register_layout`` describes it; the error names the
            layer, its class and the weight). Nothing is changed then.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((8, 8, 32)),
        ...     keras.layers.Conv2DTranspose(8, 4, strides=2, kernel_initializer="he_normal")])
        >>> [(c.weight, c.fan_in) for c in reinitialize(model, seed=0)]
        [('kernel', 128)]

    Reference:
        He et al., 2015, "Delving Deep into Rectifiers",
        https://arxiv.org/abs/1502.01852
    """
    check_model(model)
    seed = check_seed(seed)
    if not isinstance(include_all, bool):
        raise TypeError(f"`include_all` must be a bool. Received: include_all={include_all!r}")

    def wanted(initializer: Any) -> bool:
        if include_all:
            return isinstance(initializer, keras.initializers.Initializer)
        return _redrawable(initializer)

    plan: list[_Planned] = []
    for leaf in walk(model):
        unplaced = leaf.unplaced()
        if unplaced:
            raise unknown_kind(leaf.layer, unplaced)
        for entry, variable in leaf.placed():
            if entry.kind not in ("kernel", "embedding", "bias") or entry.initializer is None:
                continue  # normalization scales and statistics keep their values
            initializer = getattr(leaf.layer, entry.initializer, None)
            if wanted(initializer):
                fan_in, fan_out, tie = _plan_fans(entry, variable)
                plan.append(_Planned(leaf, entry, variable, initializer, fan_in, fan_out, tie))
    next_seed = seeds(seed)
    assignments, rules = [], []
    for index, item in enumerate(plan):
        dtype = keras.backend.standardize_dtype(item.variable.dtype)
        values, rule = _redraw(
            item.initializer,
            shape_of(item.variable),
            dtype,
            item.fan_in,
            item.fan_out,
            next_seed(index),
        )
        if item.entry.kind == "bias" and getattr(item.leaf.layer, "unit_forget_bias", False):
            # As the LSTM cell builds it: the forget gate's quarter is ones.
            units = item.leaf.layer.units
            values = np.array(to_numpy(values), copy=True)
            values[units : 2 * units] = 1
            rule += ", forget gate 1 (unit_forget_bias)"
        rules.append(item.tie + rule)
        assignments.append(Assignment(item.variable, values, to_numpy(item.variable)))
    assign_all(assignments)
    return [
        WeightChange(
            layer=item.leaf.layer.name,
            weight=item.entry.attribute,
            path=item.variable.path,
            rule=rule,
            fan_in=item.fan_in,
            fan_out=item.fan_out,
            old_std=std(assignment.before),
            new_std=std(assignment.variable),
        )
        for item, assignment, rule in zip(plan, assignments, rules, strict=True)
    ]
