"""Pictures of ``layer_stats``: how the signal and its gradient change with depth.

matplotlib is optional (``keras-inits[plot]``) and imported only when a
plot is drawn; the figure is rendered off-screen (Agg), so this works on a
machine without a display and never touches pyplot's global state.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from keras_inits._extras import import_optional
from keras_inits.diagnostics._compare import RunResult
from keras_inits.diagnostics._stats import LayerStats

__all__ = ["check_plot_path", "plot_results", "plot_stats", "save_figure"]


def save_figure(figure: Any, path: str | os.PathLike[str]) -> str:
    """Writes ``figure`` to ``path`` (its folder made if need be); returns the path."""
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def check_plot_path(path: str | os.PathLike[str], name: str = "path") -> str:
    """Returns the image format of ``path``'s extension if matplotlib can write it here.

    The allowed extensions are matplotlib's own list; the format is tried on
    a blank figure in memory, so one that needs something missing (LaTeX for
    "pgf", a Pillow plugin) is refused here, not after the work to plot.

    Raises:
        ValueError: Naming ``name``, for an extension matplotlib does not
            write or cannot write on this machine.
        MissingExtraError: If matplotlib is not installed.

    Example:
        >>> check_plot_path("out/stats.SVG")
        'svg'
    """
    backend_bases = import_optional("matplotlib.backend_bases", "plot", "Plotting")
    figure_module = import_optional("matplotlib.figure", "plot", "Plotting")
    formats = tuple(sorted(backend_bases.FigureCanvasBase.get_supported_filetypes()))
    extension = os.path.splitext(os.fspath(path))[1][1:].lower()
    if extension not in formats:
        raise ValueError(
            f"`{name}` must end in an image format matplotlib writes, one of {formats}. "
            f"Received: {name}={os.fspath(path)!r}"
        )
    try:
        figure_module.Figure(figsize=(1, 1)).savefig(io.BytesIO(), format=extension)
    except Exception as error:
        raise ValueError(
            f"`{name}` asks for {extension!r}, which matplotlib cannot write on this machine "
            f"({type(error).__name__}: {error}). Received: {name}={os.fspath(path)!r}"
        ) from error
    return extension


def plot_results(
    results: Sequence[RunResult], path: str | os.PathLike[str], title: str | None = None
) -> str:
    """``plot_stats`` of ``run_compare``'s results, with their loss curves: one PNG.

    Raises:
        MissingExtraError: If matplotlib is not installed.
    """
    return plot_stats(
        {result.label: result.layers for result in results},
        path,
        loss_curves={result.label: result.loss_curve for result in results},
        title=title,
    )


def plot_stats(
    stats: Mapping[str, Sequence[LayerStats]],
    path: str | os.PathLike[str],
    loss_curves: Mapping[str, Sequence[float]] | None = None,
    title: str | None = None,
) -> str:
    """Writes a PNG of activation std, saturation and gradient norm by depth.

    One line per initializer (the keys of ``stats``) in each panel: the std
    of each layer's output across the inputs (``LayerStats.signal_std``, log
    scale), the fraction of saturated outputs, and the norm
    of the loss's gradient with respect to each kernel (log scale). Given
    ``loss_curves``, a fourth panel shows the training loss by epoch.

    Args:
        stats: Initializer name -> its ``layer_stats`` records.
        path: Where to write the PNG; missing parent folders are created.
        loss_curves: Initializer name -> training loss per epoch, optional.
        title: A title for the whole figure.

    Returns:
        The path written, as a string.

    Raises:
        MissingExtraError: If matplotlib is not installed (the message names
            ``keras-inits[plot]``).
        ValueError: If ``stats`` is empty, or ``path`` ends in an image format
            matplotlib cannot write (see ``check_plot_path``).
    """
    if not stats:
        raise ValueError(f"`stats` must hold at least one initializer. Received: stats={stats!r}")
    check_plot_path(path)  # an unknown image format fails before the drawing
    figure_module = import_optional("matplotlib.figure", "plot", "Plotting")
    import_optional("matplotlib.backends.backend_agg", "plot", "Plotting")

    if loss_curves:
        figure = figure_module.Figure(figsize=(10, 7.5), layout="constrained")
        axes = figure.subplots(2, 2).ravel()
    else:
        figure = figure_module.Figure(figsize=(13, 3.8), layout="constrained")
        axes = figure.subplots(1, 3)
    signals, grads, losses = [], [], []
    for label, records in stats.items():
        depth = list(range(1, len(records) + 1))
        signals += [r.signal_std for r in records]
        axes[0].plot(depth, [r.signal_std for r in records], marker="o", label=label)
        saturation = [float("nan") if r.saturation is None else r.saturation for r in records]
        axes[1].plot(depth, saturation, marker="o", label=label)
        grad = [float("nan") if not r.grad_norm else r.grad_norm for r in records]
        grads += grad
        axes[2].plot(depth, grad, marker="o", label=label)
    depth = list(range(1, max(len(records) for records in stats.values()) + 1))
    for axis in axes[:3]:
        axis.set_xticks(depth)
    _label(axes[0], "activation std by depth", "layer", "std of output across inputs")
    _log_scale(axes[0], signals, "no signal: every output is constant")
    _label(axes[1], "saturated outputs by depth", "layer", "fraction saturated")
    axes[1].set_ylim(-0.03, 1.03)
    _label(axes[2], "gradient norm by depth", "layer", "|d loss / d kernel|")
    _log_scale(axes[2], grads, "no gradient norms:\nlayer_stats was given no y")
    if loss_curves:
        for label, curve in loss_curves.items():
            losses += list(curve)
            axes[3].plot(range(1, len(curve) + 1), curve, label=label)
        _label(axes[3], "training loss", "epoch", "loss")
        _log_scale(axes[3], losses, "no finite loss")
    axes[0].legend(fontsize="small")
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)


def _log_scale(axis, values: Sequence[float], empty: str) -> None:  # type: ignore[no-untyped-def]
    """A log y axis where some value is finite and > 0; else a note saying why there is none."""
    if any(math.isfinite(value) and value > 0 for value in values):
        axis.set_yscale("log")
    else:  # log scale of nothing positive is an error in matplotlib
        axis.text(0.5, 0.5, empty, ha="center", va="center", transform=axis.transAxes)


def _label(axis, title: str, xlabel: str, ylabel: str) -> None:  # type: ignore[no-untyped-def]
    axis.set_title(title)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
