"""Model-level initialization (a package now; its modules follow)."""

from keras_inits.model._layouts import (
    LSUVRecord,
    WeightChange,
    einsum_fans,
    fans,
    lsuv,
    reinitialize,
    torch_defaults,
)

__all__ = ["LSUVRecord", "WeightChange", "fans", "lsuv", "reinitialize", "torch_defaults"]
