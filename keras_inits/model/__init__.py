"""Initialization that knows the model: true fans, reinitialize, LSUV, PyTorch's defaults.

An initializer sees only a kernel's shape; the functions here see the layer.
``_layouts`` holds the one table of layer kinds (which weights a layer has,
the role of each axis, the true fans, PyTorch's rule, tied weights), open to
your own layers through ``register_layout``; one module per model-level idea
reads it:

- ``fans(layer, weight)``: the true (fan_in, fan_out) of one weight.
- ``reinitialize(model)``: re-draws fan-scaled weights with their true fans.
- ``lsuv(model, x)``: Mishkin & Matas's layer-sequential unit-variance init.
- ``torch_defaults(model)``: PyTorch 2.x's ``reset_parameters``, weights and biases.
- ``lora(model, rank)`` and ``lora_delta(model)``: Keras's LoRA with adapters
  initialized from the weight (PiSSA, OLoRA) or as PEFT does, and the plain
  update a trained adapter amounts to.
- ``flax_defaults(model)``: Flax's default initializers (nnx or linen), weights and biases.
- ``mup(model, base)``: muP (the maximal update parametrization), calibrated to a
  base width: each weight's init scale and, through ``plan.optimizer(...)``,
  its learning rate, so what was tuned narrow transfers to wide.
- ``deferred()`` and ``materialize(model, weights)``: build without drawing, then
  load each weight once (or draw it with its own initializer).
- ``residual_branches(model)`` and ``residual(model, scheme)``: the residual
  branches read from the graph, and depth-aware init of the weights ending them;
  ``ResidualScale``, the branch scalar that SkipInit and ReZero zero.

Each changes the model in place and returns a report (records built by
keyword); none builds a new model. Each validates, plans and draws
everything before it assigns anything (``lsuv``, which must measure as it
goes, restores every weight it touched when it fails), so no model is ever
left half re-initialized by an error. A weight the table cannot place is an
error naming its layer, never skipped in silence.

The modules are private (``_reinitialize``, ...) so that a module never
shadows the function of the same name that this package exports.
"""

from keras_inits.model._branches import (
    BlockBranch,
    ResidualBranch,
    register_block,
    residual_branches,
)
from keras_inits.model._deferred import MaterializeReport, deferred, materialize
from keras_inits.model._fans import fans
from keras_inits.model._flax_defaults import flax_defaults
from keras_inits.model._layouts import (
    Axis,
    FlaxRule,
    LayerLayout,
    TorchRule,
    WeightLayout,
    layout,
    register_layout,
)
from keras_inits.model._lora import LoRARecord, lora, lora_delta
from keras_inits.model._lsuv import LSUVRecord, lsuv
from keras_inits.model._mup import MupPlan, MupWeight, mup
from keras_inits.model._mup_optimizer import MupOptimizer
from keras_inits.model._reinitialize import WeightChange, reinitialize
from keras_inits.model._residual import ResidualChange, residual
from keras_inits.model._residual_scale import ResidualScale
from keras_inits.model._torch_defaults import torch_defaults

__all__ = [
    "Axis",
    "BlockBranch",
    "FlaxRule",
    "LSUVRecord",
    "LayerLayout",
    "LoRARecord",
    "MaterializeReport",
    "MupOptimizer",
    "MupPlan",
    "MupWeight",
    "ResidualBranch",
    "ResidualChange",
    "ResidualScale",
    "TorchRule",
    "WeightChange",
    "WeightLayout",
    "deferred",
    "fans",
    "flax_defaults",
    "layout",
    "lora",
    "lora_delta",
    "lsuv",
    "materialize",
    "mup",
    "register_block",
    "register_layout",
    "reinitialize",
    "residual",
    "residual_branches",
    "torch_defaults",
]

# The public names live here: their home module is this one (help(), repr,
# pickling and the API reference all say keras_inits.model.<name>).
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
