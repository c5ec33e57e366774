"""Diagnostics: see what a network's initial weights do to its signal, layer by layer.

``layer_stats`` gives the numbers (no plotting dependency); ``plot_stats``
draws them (needs ``keras-inits[plot]``); ``run_compare`` trains the same
network (an MLP, a CNN, an RNN or the user's own model) once per
initializer on scikit-learn's bundled digits (needs ``keras-inits[compare]``)
or the user's data, the job behind ``keras-inits compare``;
``run_experiment`` runs one of the gallery's paper experiments
(``EXPERIMENTS``), the job behind ``keras-inits reproduce``;
``coord_check`` and ``plot_coord_check`` are muP's coordinate check (each
layer's mean |output| by width over a few training steps).
"""

from keras_inits.diagnostics._compare import (
    DEFAULT_INITIALIZERS,
    CompareConfig,
    CompareError,
    RunResult,
    build_cnn,
    build_mlp,
    build_rnn,
    format_results,
    load_digits,
    run_compare,
)
from keras_inits.diagnostics._coord import CoordCheck, coord_check, plot_coord_check
from keras_inits.diagnostics._gallery import EXPERIMENTS, run_experiment
from keras_inits.diagnostics._plots import plot_results, plot_stats
from keras_inits.diagnostics._stats import LayerStats, format_stats, layer_stats

__all__ = [
    "CompareConfig",
    "CompareError",
    "CoordCheck",
    "LayerStats",
    "RunResult",
    "DEFAULT_INITIALIZERS",
    "EXPERIMENTS",
    "build_cnn",
    "build_mlp",
    "build_rnn",
    "coord_check",
    "format_results",
    "format_stats",
    "layer_stats",
    "load_digits",
    "plot_coord_check",
    "plot_results",
    "plot_stats",
    "run_compare",
    "run_experiment",
]
