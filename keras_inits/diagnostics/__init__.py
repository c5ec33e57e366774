"""Diagnostics: see what a network's initial weights do to its signal, layer by layer.

``layer_stats`` gives the numbers (no plotting dependency); ``plot_stats``
draws them (needs ``keras-inits[plot]``); ``run_compare`` trains the same
MLP once per initializer on scikit-learn's bundled digits (needs
``keras-inits[compare]``), the job behind ``keras-inits compare``;
``run_experiment`` runs one of the gallery's paper experiments
(``EXPERIMENTS``), the job behind ``keras-inits reproduce``.
"""

from keras_inits.diagnostics._compare import (
    DEFAULT_INITIALIZERS,
    CompareConfig,
    RunResult,
    build_mlp,
    format_results,
    load_digits,
    run_compare,
)
from keras_inits.diagnostics._gallery import EXPERIMENTS, run_experiment
from keras_inits.diagnostics._plots import plot_results, plot_stats
from keras_inits.diagnostics._stats import LayerStats, format_stats, layer_stats

__all__ = [
    "CompareConfig",
    "LayerStats",
    "RunResult",
    "DEFAULT_INITIALIZERS",
    "EXPERIMENTS",
    "build_mlp",
    "format_results",
    "format_stats",
    "layer_stats",
    "load_digits",
    "plot_results",
    "plot_stats",
    "run_compare",
    "run_experiment",
]
