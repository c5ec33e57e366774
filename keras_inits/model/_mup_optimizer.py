"""``MupOptimizer``: any Keras optimizer with a learning-rate multiplier per weight.

Keras 3 gives one learning rate to every variable. muP needs one per weight
(``mup``'s plan says which), so ``MupOptimizer`` wraps an optimizer as
Keras's own ``LossScaleOptimizer`` does: the inner optimizer keeps its
state, its schedule and its fused update, and applies it once per group of
weights that share a multiplier, with the rate times the multiplier (and
its decoupled weight decay, w -= lr * wd * w, with it). A weight whose
multiplier is 1 takes exactly the inner optimizer's step, so a plan at the
base width trains bitwise as the plain optimizer does.

The multipliers are listed in the order of the variables the optimizer is
built on (the model's ``trainable_variables``, the order Keras saves its
optimizer state in), never matched by name or pattern: a variable's path
depends on how its model was built and changes when it is loaded. The
wrapper saves and loads with the model, and a ``LearningRateScheduler``
callback sets the inner rate, which the multipliers then scale.

This module changes no weight itself; it only reaches the inner optimizer's
step through ``_compat``-documented private methods.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import keras

from keras_inits import _compat
from keras_inits._validation import check_choice

__all__ = ["MupOptimizer", "Rule", "check_inner", "optimizer_rule"]

Rule = Literal["adam", "sgd"]


def _adam_like() -> tuple[type, ...]:
    """The built-in optimizers whose step is entrywise normalized (muP's "Adam" rule)."""
    names = ("Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "Lion", "Nadam", "RMSprop")
    return tuple(getattr(keras.optimizers, n) for n in names if hasattr(keras.optimizers, n))


def optimizer_rule(optimizer: Any) -> Rule | None:
    """muP's rule for a built-in optimizer: "sgd", "adam", or None (not derived for it).

    SGD (with or without momentum) takes the SGD rule; Adam and the others
    whose step does not scale with the gradient's size (AdamW, Adamax, Nadam,
    RMSprop, Adagrad, Adadelta, Lion) take the Adam rule (Yang et al. 2022,
    Section 3 and Table 3). Ftrl, Lamb, Adafactor, Muon and optimizers of
    your own: None (``plan.optimizer`` then needs ``rule=``).
    """
    if isinstance(optimizer, keras.optimizers.SGD):
        return "sgd"
    if isinstance(optimizer, _adam_like()):
        return "adam"
    return None


def check_inner(optimizer: Any) -> None:
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(
            "`optimizer` must be a keras.optimizers.Optimizer instance (Adam(1e-3), SGD(...)). "
            f"Received: optimizer={optimizer!r}"
        )
    wrappers = tuple(
        cls
        for cls in (
            keras.optimizers.LossScaleOptimizer,
            getattr(keras.optimizers, "MultiOptimizer", None),
            MupOptimizer,
        )
        if cls is not None
    )
    if isinstance(optimizer, wrappers):
        raise TypeError(
            "`optimizer` must be a plain optimizer, not a wrapper: pass the optimizer it "
            "wraps (a mixed-precision model wraps the MupOptimizer in a LossScaleOptimizer "
            f"itself). Received: optimizer={type(optimizer).__name__}"
        )
    if optimizer.built:
        raise ValueError(
            "`optimizer` must be fresh (not built): its state belongs to the variables it "
            f"was built on. Received: optimizer={optimizer.name!r} (built)"
        )


def _check_multipliers(multipliers: Any) -> list[float]:
    if isinstance(multipliers, (str, bytes, Mapping)) or not isinstance(multipliers, Sequence):
        raise TypeError(
            "`multipliers` must be a sequence of learning-rate multipliers, one per variable "
            "in the order the optimizer is built on. "
            f"Received: multipliers={type(multipliers).__name__}"
        )
    checked = []
    for index, value in enumerate(multipliers):
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or number <= 0:
            raise ValueError(
                "`multipliers` must hold positive finite numbers. "
                f"Received: multipliers[{index}]={value!r}"
            )
        checked.append(float(number))
    return checked


def _check_shapes(shapes: Any, count: int) -> list[tuple[int, ...]] | None:
    if shapes is None:
        return None
    shapes = [tuple(int(d) for d in shape) for shape in shapes]
    if len(shapes) != count:
        raise ValueError(
            f"`shapes` must give one shape per multiplier ({count}). "
            f"Received: shapes=<{len(shapes)} shapes>"
        )
    return shapes


@keras.saving.register_keras_serializable(package="keras_inits")
class MupOptimizer(keras.optimizers.Optimizer):
    """Any Keras optimizer, with a learning-rate multiplier per weight (muP's).

    Made by ``plan.optimizer(optimizer)`` from ``keras_inits.mup``'s plan
    (build one by hand only to apply multipliers of your own). The inner
    optimizer's step runs once per group of weights sharing a multiplier c,
    with the rate c * lr (and its weight decay w -= c * lr * wd * w), so
    schedules, gradient clipping, EMA, gradient accumulation and the fused
    PyTorch step all work as they do without it. ``learning_rate`` and
    ``iterations`` are the inner optimizer's: a ``LearningRateScheduler``
    or ``ReduceLROnPlateau`` callback sets the base rate and the ratios hold.

    Args:
        inner_optimizer: A fresh (unbuilt) Keras optimizer.
        multipliers: One learning-rate multiplier (> 0) per variable, in the
            order of the variables the optimizer is built on: the model's
            ``trainable_variables``, as ``fit`` and ``load_model`` build it
            (the order Keras's own optimizer state is saved in). Paths are
            not used: a variable's path depends on how its model was built,
            and changes when the model is loaded.
        shapes: The variables' shapes, in the same order, or None: checked
            when the optimizer is built, so a model whose trainable
            variables changed since the plan is refused, not misread.
        rule: Which of muP's rules the multipliers follow, "adam" or "sgd"
            (recorded in the config; the multipliers are what is applied).
        name: The optimizer's name.

    Raises:
        TypeError: If ``inner_optimizer`` is not a plain Keras optimizer or
            ``multipliers`` is not a mapping of paths to numbers.
        ValueError: If a multiplier is not positive and finite, the inner
            optimizer is already built, or (on build) a variable has no
            multiplier.

    Example:
        >>> import keras
        >>> layer = keras.layers.Dense(2, kernel_initializer="zeros")
        >>> layer.build((None, 4))
        >>> opt = MupOptimizer(keras.optimizers.SGD(0.1), [0.5, 1.0], rule="sgd")
        >>> opt.apply([keras.ops.ones((4, 2)), keras.ops.ones((2,))], [layer.kernel, layer.bias])
        >>> round(float(layer.kernel[0, 0]), 6), round(float(layer.bias[0]), 6)  # 0.5 * 0.1, 0.1
        (-0.05, -0.1)
    """

    def __init__(
        self,
        inner_optimizer: Any,
        multipliers: Sequence[float],
        shapes: Sequence[Sequence[int]] | None = None,
        rule: Rule = "adam",
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise TypeError(
                "MupOptimizer takes no optimizer arguments of its own: set them on "
                f"`inner_optimizer`. Received: kwargs={sorted(kwargs)}"
            )
        check_inner(inner_optimizer)
        checked = _check_multipliers(multipliers)
        checked_shapes = _check_shapes(shapes, len(checked))
        rule = check_choice("rule", rule, get_args(Rule))
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self.multipliers = checked
        self.shapes = checked_shapes
        self.rule = rule

    def build(self, var_list: Sequence[Any]) -> None:
        if not var_list:
            # Keras's legacy .h5 loader builds a functional model's optimizer on
            # model._trainable_variables, which is empty: as the inner one does.
            self.inner_optimizer.build([])
            super().build([])
            return
        shapes = [tuple(int(d) for d in v.shape) for v in var_list]
        if len(shapes) != len(self.multipliers) or (
            self.shapes is not None and shapes != self.shapes
        ):
            made = self.shapes if self.shapes is not None else len(self.multipliers)
            raise ValueError(
                f"MupOptimizer was made for {len(self.multipliers)} trainable variables and "
                f"is built on {len(shapes)} (`var_list`), or on other shapes: the model's "
                "trainable variables changed since its plan (a layer added, frozen or "
                "unfrozen). Make the optimizer again from a plan of the model as it is trained "
                f"(plan.optimizer(...)). Received: shapes={shapes}, made_for={made}"
            )
        self.inner_optimizer.build(var_list)
        _compat.scale_optimizer_rates(self.inner_optimizer, self._multiplier)
        super().build(var_list)

    def _multiplier(self, variable: Any) -> float:
        return self.multipliers[_compat.optimizer_index(self.inner_optimizer, variable)]

    @property
    def variables(self) -> list[Any]:
        return self._variables + self.inner_optimizer.variables

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence[Any] | None = None) -> None:
        if not self.built:  # type: ignore[has-type]  # set by Keras's Optimizer
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)  # type: ignore[arg-type]
            self.built = True
        self.inner_optimizer.apply(grads, trainable_variables)

    def stateless_apply(
        self, optimizer_variables: Sequence[Any], grads: Sequence[Any], trainable_variables: Any
    ) -> tuple[list[Any], list[Any]]:
        own = len(self._variables)
        new_trainable, new_inner = self.inner_optimizer.stateless_apply(
            list(optimizer_variables[own:]), grads, trainable_variables
        )
        # A LossScaleOptimizer passes variables, not values: return values.
        mine = [v.value if isinstance(v, keras.Variable) else v for v in optimizer_variables[:own]]
        return new_trainable, mine + list(new_inner)

    @property
    def learning_rate(self) -> Any:
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate: Any) -> None:
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self) -> Any:
        return self.inner_optimizer.iterations

    def scale_loss(self, loss: Any) -> Any:
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list: Sequence[Any]) -> None:
        self.inner_optimizer.finalize_variable_values(var_list)

    def exclude_from_weight_decay(self, var_list: Any = None, var_names: Any = None) -> None:
        self.inner_optimizer.exclude_from_weight_decay(var_list=var_list, var_names=var_names)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "multipliers": list(self.multipliers),
            "shapes": None if self.shapes is None else [list(s) for s in self.shapes],
            "rule": self.rule,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> MupOptimizer:
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(
            config.pop("inner_optimizer"), custom_objects=custom_objects
        )
        return cls(inner, **config)
