"""``residual(model, scheme)``: depth-aware initialization of a model's residual branches.

A residual stack x_{i+1} = x_i + f_i(x_i) adds the variance of every
branch: with each f_i keeping its input's scale, Var(x_L) grows like
(1 + c)^L with depth L. The schemes here shrink (or zero) the weights that
end each branch, found by ``residual_branches``, by a factor depending on
the number of branches L, or fix their std absolutely, as the reference
code of each paper does. This module validates, plans and draws every new
value before it assigns any: an error leaves the model as it was.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal, get_args

import keras
import numpy as np

from keras_inits import _sampling
from keras_inits._validation import check_choice, check_positive, check_positive_int, check_seed
from keras_inits.model._branches import Found, find
from keras_inits.model._layouts import WeightLayout, layout
from keras_inits.model._reinitialize import _plan_fans, _redraw
from keras_inits.model._residual_scale import ResidualScale
from keras_inits.model._walk import (
    Assignment,
    assign_all,
    scaled_by,
    seeds,
    shape_of,
    to_numpy,
    walk,
)
from keras_inits.model._walk import std as std_of

__all__ = ["ResidualChange", "Scheme", "residual"]

Scheme = Literal[
    "deepnorm",
    "fixup",
    "gpt2",
    "megatron",
    "mitchell",
    "rezero",
    "skipinit",
    "t_fixup",
    "zero_gamma",
]
Stack = Literal["decoder", "encoder"]

# T-Fixup's encoder factor, 0.67 N^(-1/4), beside the decoder's (9N)^(-1/4),
# as Huang et al.'s Section 3.3 states them. Checked against: Papers with
# Code's restatement of Section 3.3 (paperswithcode.com/method/t-fixup; the
# same formulas, the same weights). The paper writes the embeddings'
# N(0, d^(-1/2)); read here as std d^(-1/2), fairseq's Embedding init, on
# which the reference code (layer6ai-labs/T-Fixup) builds. That code itself
# could not be read from here: the tests' golden values are the formulas'.
_T_FIXUP_ENCODER = 0.67

# trunc_normal_(std=s, a=-3 s, b=3 s), as Megatron and OLMo draw: its std is
# s * sqrt(1 - 2 * 3 * phi(3) / (2 * Phi(3) - 1)) = 0.98659 s.
_CUTOFF = 3.0

# The attention projections DeepNet leaves at their own init (its beta
# scales only the value and output projections and the MLP): Keras's and
# keras-hub's attention layers name their query and key projections so.
_QUERY_KEY = ("_query_dense", "_key_dense", "query_dense", "key_dense")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResidualChange:
    """What ``residual`` did to one weight.

    Attributes:
        layer: The name of the layer that holds the weight.
        weight: Its attribute name ("kernel", "gamma", ...).
        path: The variable's path in the model (unique).
        branch: The index of the residual branch it belongs to (-1: a weight
            outside every branch, "t_fixup"'s input embeddings).
        rule: What was drawn, in words: the layer's own initializer times a
            factor, an absolute truncated normal, or zeros.
        factor: The factor on the layer's own init (1 where the std is absolute).
        target_std: The std the scheme fixes (absolute schemes), else None.
        old_std: Std of the weight's entries before.
        new_std: Std of the weight's entries after.
    """

    layer: str
    weight: str
    path: str
    branch: int
    rule: str
    factor: float
    target_std: float | None
    old_std: float
    new_std: float


@dataclasses.dataclass
class _Plan:
    layer: Any
    variable: Any
    branch: int
    how: Literal["relative", "absolute", "zero", "xavier", "normal"]
    factor: float = 1.0
    target: float | None = None
    rule: str = ""


def _attribute(layer: Any, variable: Any) -> str:
    found = layout(layer)
    for entry in found.weights if found is not None else ():
        if getattr(layer, entry.attribute, None) is variable:
            return entry.attribute
    return str(variable.path).rsplit("/", 1)[-1]


def _blocks(found: list[Found]) -> int:
    return len({item.block for item in found})


def _plan(
    model: Any,
    scheme: Scheme,
    found: list[Found],
    std_: float,
    stack: Stack | None,
    blocks: int | None,
) -> list[_Plan]:
    if scheme == "t_fixup":
        return _plan_t_fixup(model, found, stack, blocks)
    count = len(found)
    plans: list[_Plan] = []
    for index, item in enumerate(found):
        if scheme in ("rezero", "skipinit"):
            plans.append(_plan_alpha(scheme, index, item))
            continue
        if scheme != "deepnorm" and item.post_norm:
            raise ValueError(
                f"`scheme` {scheme!r} is for pre-norm and norm-free branches, but the sum "
                f"{item.merge!r} (branch {index}) feeds a normalization (post-LN), whose "
                "output keeps its scale whatever the branch: use scheme='deepnorm' there. "
                f"Received: scheme={scheme!r}"
            )
        if scheme == "gpt2":
            factor = 1.0 / math.sqrt(count)
            rule = f"own init x 1/sqrt(L), L = {count} branches"
            plans += [_Plan(lay, v, index, "relative", factor, None, rule) for lay, v in item.ends]
        elif scheme == "megatron":
            target = std_ / math.sqrt(count)
            rule = f"N(0, ({std_:g}/sqrt(L))^2) cut at 3 std, L = {count} branches"
            plans += [_Plan(lay, v, index, "absolute", 1.0, target, rule) for lay, v in item.ends]
        elif scheme == "mitchell":
            for lay, var in item.ends:
                d = _fan_in(lay, var)
                target = 1.0 / math.sqrt(2.0 * d * (item.block + 1))
                rule = f"N(0, 1/(2 d (l+1))) cut at 3 std, d = {d:g}, l = {item.block}"
                plans.append(_Plan(lay, var, index, "absolute", 1.0, target, rule))
        elif scheme == "deepnorm":
            # DeepNet: N transformer blocks of two branches each, so 8N = 4L.
            factor = (4.0 * count) ** -0.25
            alpha = count**0.25
            rule = (
                f"own init x (8N)^(-1/4), 2N = L = {count} branches "
                f"(the skip's alpha = (2N)^(1/4) = {alpha:.4g} is your graph's)"
            )
            for lay, var in item.kernels:
                if not _query_or_key(lay, item.layers):
                    plans.append(_Plan(lay, var, index, "relative", factor, None, rule))
        elif scheme == "fixup":
            m = len(item.kernels)
            end_ids = {id(v) for _, v in item.ends}
            for lay, var in item.kernels:
                if id(var) in end_ids:
                    rule = "zeros (the branch's last layer)"
                    plans.append(_Plan(lay, var, index, "zero", 0.0, None, rule))
                else:
                    factor = count ** (-1.0 / (2 * m - 2))
                    rule = f"own init x L^(-1/(2m-2)), L = {count}, m = {m}"
                    plans.append(_Plan(lay, var, index, "relative", factor, None, rule))
        else:  # zero_gamma
            if item.norm is None:
                raise ValueError(
                    f"`scheme` 'zero_gamma' zeroes the scale of the normalization that ends "
                    f"each branch, but branch {index} (summed at {item.merge!r}, ending at "
                    f"{', '.join(str(v.path) for _, v in item.ends)}) has no normalization "
                    "after its last kernel: use 'fixup' or 'gpt2' there. "
                    f"Received: scheme={scheme!r}"
                )
            lay, var = item.norm
            rule = "zeros (the branch's last norm scale)"
            plans.append(_Plan(lay, var, index, "zero", 0.0, None, rule))
    return plans


def _plan_alpha(scheme: Scheme, index: int, item: Found) -> _Plan:
    """SkipInit's and ReZero's alpha = 0: the branch's ResidualScale, after its last kernel."""
    if item.norm is None or not isinstance(item.norm[0], ResidualScale):
        where = f"summed at {item.merge!r}" if item.merge else "given by `branches=`"
        ends = ", ".join(str(v.path) for _, v in item.ends)
        raise ValueError(
            f"`scheme` {scheme!r} sets the scalar alpha of x + alpha * f(x) to 0, but branch "
            f"{index} ({where}, ending at {ends}) has no keras_inits.model.ResidualScale after "
            "its last kernel: add one at the end of each branch, "
            "x + ResidualScale()(f(x)), before the sum. "
            f"Received: scheme={scheme!r}"
        )
    layer, variable = item.norm
    paper = "SkipInit" if scheme == "skipinit" else "ReZero"
    return _Plan(layer, variable, index, "zero", 0.0, None, f"zeros ({paper}'s alpha)")


def _plan_t_fixup(
    model: Any, found: list[Found], stack: Stack | None, blocks: int | None
) -> list[_Plan]:
    if stack is None:
        raise ValueError(
            "`scheme` 't_fixup' scales an encoder's blocks by 0.67 N^(-1/4) and a "
            "decoder's by (9N)^(-1/4), and a graph cannot say which it is: pass "
            "stack='encoder' or stack='decoder'. Received: stack=None"
        )
    if blocks is None:
        given = [item.merge or "`branches=`" for item in found if item.shortcut != "block"]
        if given:
            raise ValueError(
                "`scheme` 't_fixup' needs N, the number of transformer blocks, but the "
                f"branches summed at {given[0]!r} were read from the graph (or given), where "
                "each branch is its own block, so it cannot tell how many branches make one "
                "block: pass blocks=N. Received: blocks=None"
            )
        blocks = _blocks(found)
    factor = (9.0 * blocks) ** -0.25 if stack == "decoder" else _T_FIXUP_ENCODER * blocks**-0.25
    formula = "(9N)^(-1/4)" if stack == "decoder" else "0.67 N^(-1/4)"
    plans: list[_Plan] = []
    for index, item in enumerate(found):
        if item.post_norm:
            raise ValueError(
                f"`scheme` 't_fixup' is for blocks without normalization, but the sum "
                f"{item.merge!r} (branch {index}) feeds one (post-LN): remove the "
                "LayerNorms (T-Fixup's) or use scheme='deepnorm' there. "
                "Received: scheme='t_fixup'"
            )
        for lay, var in item.kernels:
            if _query_or_key(lay, item.layers):
                rule = "Xavier uniform (query/key: unscaled)"
                plans.append(_Plan(lay, var, index, "xavier", 1.0, None, rule))
            else:
                rule = f"Xavier uniform x {formula}, {stack}, N = {blocks} blocks"
                plans.append(_Plan(lay, var, index, "xavier", factor, None, rule))
    # The input embeddings: N(0, d^(-1/2)) x (9N)^(-1/4), the encoder's and the decoder's.
    embedding_factor = (9.0 * blocks) ** -0.25
    in_branches = {id(plan.variable) for plan in plans}
    for leaf in walk(model):
        if not isinstance(leaf.layer, keras.layers.Embedding):
            continue
        for entry, var in leaf.placed():
            if entry.kind == "embedding" and id(var) not in in_branches:
                d = shape_of(var)[-1]
                target = d**-0.5 * embedding_factor
                rule = f"N(0, (d^(-1/2) (9N)^(-1/4))^2), d = {d}, N = {blocks} (input embedding)"
                plans.append(_Plan(leaf.layer, var, -1, "normal", embedding_factor, target, rule))
    return plans


def _query_or_key(layer: Any, owners: list[Any]) -> bool:
    return any(layer is getattr(owner, name, None) for owner in owners for name in _QUERY_KEY)


def _fan_in(layer: Any, variable: Any) -> float:
    found = layout(layer)
    for entry in found.weights if found is not None else ():
        if getattr(layer, entry.attribute, None) is variable and entry.fan_in is not None:
            return float(entry.fan_in)
    return float(math.prod(shape_of(variable)[:-1]))


def _truncated(shape: tuple[int, ...], target: float, dtype: str, seed: Any) -> Any:
    """N(0, target^2) truncated to +-3 target (PyTorch's trunc_normal_ with a, b = -+3 std)."""
    edge = math.erf(_CUTOFF / math.sqrt(2.0))
    u = _sampling.uniform(shape, edge, "float32", seed)
    values = keras.ops.multiply(keras.ops.erfinv(u), math.sqrt(2.0) * target)
    values = keras.ops.clip(values, -_CUTOFF * target, _CUTOFF * target)
    return keras.ops.cast(values, dtype)


def _entry(layer: Any, variable: Any) -> WeightLayout:
    found = layout(layer)
    for entry in found.weights if found is not None else ():
        if getattr(layer, entry.attribute, None) is variable:
            return entry
    raise ValueError(  # the detector found it through the table, so this cannot happen
        f"Weight {variable.path!r} of layer {layer.name!r} is not in the table of layer kinds. "
        f"Received: layer={type(layer).__name__}"
    )


def _initializer(layer: Any, variable: Any) -> tuple[Any, Any]:
    found = layout(layer)
    for entry in found.weights if found is not None else ():
        if getattr(layer, entry.attribute, None) is variable:
            initializer = getattr(layer, entry.initializer, None) if entry.initializer else None
            if isinstance(initializer, keras.initializers.Initializer):
                return initializer, entry
            break
    raise ValueError(
        f"Weight {variable.path!r} of layer {layer.name!r} ({type(layer).__name__}) keeps no "
        "initializer, so it cannot be re-drawn with its own init and scaled. "
        f"Received: layer={type(layer).__name__}"
    )


def residual(
    model: keras.Model,
    scheme: Scheme,
    seed: Any = None,
    *,
    branches: Any = None,
    std: float = 0.02,
    stack: Stack | None = None,
    blocks: int | None = None,
) -> list[ResidualChange]:
    """Re-draws, in place, the weights that end each residual branch, scaled for depth.

    The branches come from ``residual_branches(model, branches)``; L is
    their number (a transformer block has two: attention and MLP, so L = 2N
    for N blocks), l a branch's block index. "Own init" re-draws a weight
    with its layer's own initializer and its true fans (as ``reinitialize``
    does) and multiplies it by the factor:

    - "gpt2": each branch's last kernel = own init x 1/sqrt(L) (GPT-2,
      nanoGPT's c_proj: 0.02 / sqrt(2 n_layer)).
    - "megatron": each branch's last kernel ~ N(0, (std / sqrt(L))^2) cut at
      3 std, absolute (Megatron-LM; OLMo's full_megatron output projections).
    - "mitchell": each branch's last kernel ~ N(0, 1 / (2 d (l + 1))) cut at
      3 std, d its fan_in, absolute (OLMo's mitchell).
    - "deepnorm": every kernel of each branch but an attention's query and
      key = own init x (8N)^(-1/4) = (4L)^(-1/4) (DeepNet's beta). DeepNorm
      also multiplies the skip by alpha = (2N)^(1/4) inside LN(alpha x + f(x)):
      that is the forward pass, which this cannot add; the report states it.
    - "fixup": each branch's last kernel = 0, its other m - 1 kernels = own
      init x L^(-1/(2m-2)) (Fixup). Fixup's scalar biases and multipliers
      are layers of your graph; this does not add them.
    - "zero_gamma": the scale of the normalization after each branch's last
      kernel = 0 (Goyal et al.'s zero gamma); an error where a branch has none.
    - "t_fixup": every kernel of each branch re-drawn Xavier uniform (with
      its true fans); all but an attention's query and key then x
      (9N)^(-1/4) for ``stack="decoder"`` or x 0.67 N^(-1/4) for
      ``stack="encoder"``, N the number of blocks (``blocks=``, or the
      block adapters' count); every ``Embedding`` table outside the
      branches ~ N(0, (d^(-1/2) (9N)^(-1/4))^2), d its width (T-Fixup,
      Section 3.3). T-Fixup also removes every LayerNorm: that is your
      graph's; a post-LN sum is refused. Kernels outside the branches (an
      LM head) keep their values (``reinitialize(model, "glorot_uniform")``
      first gives them T-Fixup's Xavier).
    - "skipinit", "rezero": the scalar alpha of x + alpha f(x) = 0 (De &
      Smith's SkipInit, Bachlechner et al.'s ReZero): alpha is a
      ``ResidualScale`` layer you put at the end of each branch, before the
      sum; an error naming the branch where one has none. Both papers start
      at 0; a small start (SkipInit allows one) is the layer's
      ``initializer``, which this does not override: this sets 0. A sum
      that feeds a normalization is allowed here (alpha = 0 still makes the
      block LN(x)).

    A sum that feeds a normalization (post-LN) takes only "deepnorm",
    "rezero" and "skipinit"; the others are refused there. A normalization
    after a branch's last kernel (ResNet v1's BatchNormalization) undoes
    that kernel's scale once it normalizes: there "zero_gamma" is the scheme
    that sets the branch's scale.
    Everything is planned and drawn before anything is assigned: on any error
    the model is unchanged.

    Args:
        model: A built model or layer (Sequential, functional, nested, or
            of keras-hub blocks).
        scheme: One of "deepnorm", "fixup", "gpt2", "megatron", "mitchell",
            "rezero", "skipinit", "t_fixup", "zero_gamma".
        seed: An int (reproducible), None or a ``keras.random.SeedGenerator``.
        branches: ``residual_branches``'s override: the branches, when the
            graph cannot tell them.
        std: The base std of "megatron" (Megatron's and OLMo's init_std, 0.02).
        stack: For "t_fixup" (and required there): "encoder" or "decoder",
            which of T-Fixup's two factors the blocks take.
        blocks: For "t_fixup": N, the number of transformer blocks. Required
            where the branches come from the graph or ``branches=`` (each
            branch its own block there); else the block adapters' count.

    Returns:
        One ``ResidualChange`` per weight changed, in branch order.

    Raises:
        TypeError: If ``model`` is not a Keras layer, ``seed``, ``branches``
            or ``blocks`` is of a wrong type.
        ValueError: If ``scheme`` is unknown, the model has no residual
            branch, the detector cannot read a layer, a branch lacks what the
            scheme needs (a normalization for "zero_gamma", a
            ``ResidualScale`` for "rezero" and "skipinit"), a post-LN sum
            meets a scheme that refuses it, "t_fixup" lacks ``stack`` or
            ``blocks``, or ``stack`` or ``blocks`` is given to another
            scheme. Nothing is changed then.

    Example:
        >>> import keras
        >>> x = keras.Input((64,))
        >>> h = x
        >>> for _ in range(8):
        ...     h = h + keras.layers.Dense(64)(keras.layers.Dense(64, activation="relu")(h))
        >>> model = keras.Model(x, h)
        >>> report = residual(model, "gpt2", seed=0)
        >>> len(report), round(report[0].factor, 4)
        (8, 0.3536)

    Reference:
        Radford et al., 2019, "Language Models are Unsupervised Multitask Learners";
        Shoeybi et al., 2019, "Megatron-LM", https://arxiv.org/abs/1909.08053;
        Groeneveld et al., 2024, "OLMo", https://arxiv.org/abs/2402.00838;
        Wang et al., 2022, "DeepNet", https://arxiv.org/abs/2203.00555;
        Zhang, Dauphin & Ma, 2019, "Fixup Initialization", https://arxiv.org/abs/1901.09321;
        Goyal et al., 2017, "Accurate, Large Minibatch SGD", https://arxiv.org/abs/1706.02677;
        Huang, Perez, Ba & Volkovs, 2020, "Improving Transformer Optimization Through Better
        Initialization" (T-Fixup), ICML, https://proceedings.mlr.press/v119/huang20f.html;
        De & Smith, 2020, "Batch Normalization Biases Residual Blocks Towards the Identity
        Function in Deep Networks" (SkipInit), https://arxiv.org/abs/2002.10444;
        Bachlechner et al., 2020, "ReZero is All You Need", https://arxiv.org/abs/2003.04887
    """
    scheme = check_choice("scheme", scheme, get_args(Scheme))
    seed = check_seed(seed)
    std_ = check_positive("std", std)
    if stack is not None:
        stack = check_choice("stack", stack, get_args(Stack))
    blocks = check_positive_int("blocks", blocks, allow_none=True)
    for name, value in (("stack", stack), ("blocks", blocks)):
        if value is not None and scheme != "t_fixup":
            raise ValueError(
                f"`{name}` is an argument of scheme 't_fixup' only; scheme {scheme!r} takes "
                f"none. Received: {name}={value!r}, scheme={scheme!r}"
            )
    found = find(model, branches)
    if not found:
        raise ValueError(
            f"`model` has no residual branch for scheme {scheme!r} to scale (no sum with a "
            "weighted input in its graph, and no known block): pass `branches=`. "
            f"Received: model={model.name!r}"
        )
    plans = _plan(model, scheme, found, std_, stack, blocks)
    next_seed = seeds(seed)
    assignments = []
    for index, plan in enumerate(plans):
        variable = plan.variable
        dtype = keras.backend.standardize_dtype(variable.dtype)
        shape = shape_of(variable)
        if plan.how == "zero":
            values: Any = np.zeros(shape, dtype="float32")
            values = keras.ops.cast(values, dtype)
        elif plan.how == "absolute":
            values = _truncated(shape, plan.target, dtype, next_seed(index))  # type: ignore[arg-type]
        elif plan.how == "normal":
            values = _sampling.normal(shape, plan.target, dtype, next_seed(index))  # type: ignore[arg-type]
        elif plan.how == "xavier":
            fan_in, fan_out, _ = _plan_fans(_entry(plan.layer, variable), variable)
            drawn, _ = _redraw(
                keras.initializers.GlorotUniform(), shape, dtype, fan_in, fan_out, next_seed(index)
            )
            values = scaled_by(drawn, plan.factor, dtype)
            plan.rule = f"{plan.rule}; fans {fan_in:g}, {fan_out:g}"
        else:
            initializer, entry = _initializer(plan.layer, variable)
            fan_in, fan_out, _ = _plan_fans(entry, variable)
            drawn, own = _redraw(initializer, shape, dtype, fan_in, fan_out, next_seed(index))
            values = scaled_by(drawn, plan.factor, dtype)
            plan.rule = f"{plan.rule}; own init: {own}"
        assignments.append(Assignment(variable, values, to_numpy(variable)))
    assign_all(assignments)
    return [
        ResidualChange(
            layer=plan.layer.name,
            weight=_attribute(plan.layer, plan.variable),
            path=str(plan.variable.path),
            branch=plan.branch,
            rule=plan.rule,
            factor=plan.factor,
            target_std=plan.target,
            old_std=std_of(assignment.before),
            new_std=std_of(assignment.variable),
        )
        for plan, assignment in zip(plans, assignments, strict=True)
    ]
