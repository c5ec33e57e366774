"""keras_inits: weight initializers for Keras 3, on TensorFlow, JAX and PyTorch.

Importing the package registers every initializer with Keras, so that a
layer can name it by string (``kernel_initializer="sigmoid_normal"``) and a
saved model that uses one loads again. Import it before ``load_model``, or
save ``portable(model)``, which loads with plain Keras.
"""

from keras_inits._gain import calculate_gain, gain_for
from keras_inits._portable import keras_equivalent, portable
from keras_inits._registry import get, names
from keras_inits.model import (
    deferred,
    fans,
    flax_defaults,
    lora,
    lora_delta,
    lsuv,
    materialize,
    mup,
    register_layout,
    reinitialize,
    residual,
    residual_branches,
    torch_defaults,
)
from keras_inits.orthogonal import BlockOrthogonal, DeltaOrthogonal
from keras_inits.small import BoundedNormal, SmallNormal, SmallUniform
from keras_inits.sparse import Sparse
from keras_inits.structural import ICNR, Bilinear, ConvIdentity, HadamardIdentity
from keras_inits.variance import (
    ActivationScaled,
    KaimingNormal,
    KaimingUniform,
    SigmoidNormal,
    SigmoidUniform,
    VarianceScaling,
    XavierNormal,
    XavierUniform,
)

__version__ = "0.1.0"

__all__ = [
    "ActivationScaled",
    "Bilinear",
    "BoundedNormal",
    "ConvIdentity",
    "HadamardIdentity",
    "ICNR",
    "BlockOrthogonal",
    "DeltaOrthogonal",
    "KaimingNormal",
    "KaimingUniform",
    "SigmoidNormal",
    "SigmoidUniform",
    "SmallNormal",
    "SmallUniform",
    "Sparse",
    "VarianceScaling",
    "XavierNormal",
    "XavierUniform",
    "__version__",
    "calculate_gain",
    "deferred",
    "fans",
    "flax_defaults",
    "gain_for",
    "get",
    "keras_equivalent",
    "lora",
    "lora_delta",
    "lsuv",
    "materialize",
    "mup",
    "names",
    "portable",
    "register_layout",
    "reinitialize",
    "residual",
    "residual_branches",
    "torch_defaults",
]
