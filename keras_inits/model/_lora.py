"""``lora(model, rank)``: Keras's LoRA, with adapters that start from the weight itself.

Keras's ``enable_lora(rank)`` adds (alpha / rank) * A @ B to a kernel, with
one fixed init (A ~ he_uniform, B = 0), because an initializer sees only a
shape. ``lora`` enables it on a model's layers and initializes A and B (and,
for PiSSA and OLoRA, the frozen base kernel) from the weight, as Hugging
Face PEFT does; ``lora_delta`` turns a trained adapter back into the plain
update of the original weight.

The linear algebra runs in NumPy, in float64, on the host: the same SVD and
QR on every backend (``keras.ops.svd`` differs in sign conventions and, on
JAX without x64, in precision), so PiSSA and OLoRA give the same adapter
on every backend. The draws (the zero-start methods' A, the randomized
SVD's test matrix) come from the package's one random stream
(``_sampling``): an int seed repeats them in every process, as every
initializer here does (each backend has its own stream). This module never draws with a backend's
own RNG and never changes a model it has refused.
"""

from __future__ import annotations

import dataclasses
import math
import re
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args

import keras
import numpy as np

from keras_inits import _sampling
from keras_inits._validation import check_choice, check_finite, check_seed
from keras_inits.model._layouts import WeightLayout
from keras_inits.model._walk import (
    Assignment,
    assign_all,
    check_model,
    in_shape,
    seeds,
    shape_of,
    to_numpy,
    walk,
)

__all__ = ["LoRARecord", "lora", "lora_delta"]

Method = Literal["gaussian", "keras", "olora", "orthogonal", "peft", "pissa"]
METHODS: tuple[str, ...] = tuple(sorted(get_args(Method)))

# The methods that move part of the weight into the adapter (A @ B != 0) and
# leave the residual in the frozen base kernel.
_FROM_WEIGHT = ("olora", "pissa")

# The initial A and B of each adapter ``lora`` made, for ``lora_delta``:
# layer -> (A0, B0, scale), held only as long as the layer lives.
_INITIAL: weakref.WeakKeyDictionary[Any, tuple[np.ndarray, np.ndarray, float]] = (
    weakref.WeakKeyDictionary()
)


@dataclasses.dataclass(frozen=True)
class LoRARecord:
    """What ``lora`` did to one layer.

    Attributes:
        layer: The layer's name.
        path: The path of the adapted (base) variable, e.g. "dense/kernel".
        method: The init method.
        rank: The adapter's rank r.
        alpha: Keras's ``lora_alpha``; the adapter adds (alpha / r) * A @ B.
        shape: The (rows, columns) of the matricized weight: every axis but
            the last, then the last (as Keras's LoRA reshapes it).
        energy: The share of the weight's energy the adapter holds,
            ||(alpha / r) A B||_F^2 / ||W||_F^2 (0 where A @ B = 0; for PiSSA
            the top-r singular values' share).
        residual_norm: ||W - (alpha / r) A B||_F, the frozen base kernel's norm
            after (||W||_F where A @ B = 0).
    """

    layer: str
    path: str
    method: str
    rank: int
    alpha: float
    shape: tuple[int, int]
    energy: float
    residual_norm: float


@dataclasses.dataclass(frozen=True)
class _Target:
    layer: Any
    entry: WeightLayout
    variable: Any
    rows: int
    cols: int


def _lora_layers(model: Any) -> list[_Target]:
    """Every layer under ``model`` whose layout has a weight Keras's LoRA adapts."""
    found = []
    for leaf in walk(model):
        for entry, variable in leaf.placed():
            if entry.lora:
                shape = shape_of(variable)
                found.append(_Target(leaf.layer, entry, variable, math.prod(shape[:-1]), shape[-1]))
    return found


def _all_names(model: Any) -> tuple[str, ...]:
    return tuple(sorted({leaf.layer.name for leaf in walk(model)}))


def _select(model: Any, candidates: list[_Target], layers: Any) -> list[_Target]:
    if layers is None:
        if not candidates:
            raise ValueError(
                "`model` has no layer Keras's LoRA supports (Dense, EinsumDense, Conv1D-3D, "
                f"Embedding). Received: model={model.name!r}"
            )
        return candidates
    if isinstance(layers, str):
        try:
            pattern = re.compile(layers)
        except re.error as error:
            raise ValueError(
                f"`layers` must be a regular expression or a list of layer names ({error}). "
                f"Received: layers={layers!r}"
            ) from None
        chosen = [t for t in candidates if pattern.fullmatch(t.layer.name)]
        if not chosen:
            names = tuple(t.layer.name for t in candidates)
            raise ValueError(
                "`layers` matches no layer that Keras's LoRA supports (a pattern must match "
                f"a whole layer name; these support it: {names}). Received: layers={layers!r}"
            )
        return chosen
    if not isinstance(layers, (list, tuple)) or not all(isinstance(n, str) for n in layers):
        raise TypeError(
            "`layers` must be None, a regular expression (str) or a list of layer names. "
            f"Received: layers={layers!r}"
        )
    if not layers:
        raise ValueError(f"`layers` must name at least one layer. Received: layers={layers!r}")
    by_name = {t.layer.name: t for t in candidates}
    every = set(_all_names(model))
    chosen = []
    for name in layers:
        if name in by_name:
            chosen.append(by_name[name])
        elif name in every:
            kind = next(leaf.layer for leaf in walk(model) if leaf.layer.name == name)
            raise ValueError(
                f"Layer {name!r} ({type(kind).__name__}) does not support Keras's LoRA "
                "(Dense, EinsumDense, Conv1D-3D and Embedding do). "
                f"Received: layers={list(layers)!r}"
            )
        else:
            raise ValueError(
                f"`layers` names a layer the model does not have: {name!r}. "
                f"Received: layers={list(layers)!r}"
            )
    return list({id(t.layer): t for t in chosen}.values())


def _check_target(target: _Target, rank: int, method: str) -> None:
    layer = target.layer
    where = f"Layer {layer.name!r} ({type(layer).__name__})"
    if getattr(layer, "lora_enabled", False):
        raise ValueError(
            f"{where} already has LoRA enabled (Keras allows it once per layer), so `lora` "
            f"cannot initialize its adapter. Received: layer={layer.name!r}"
        )
    mode = getattr(layer, "quantization_mode", None)
    if mode is not None:
        raise ValueError(
            f"{where} is quantized ({mode!r}); keras_inits.lora adapts float kernels only "
            "(call it before `model.quantize(...)`, or use the layer's own "
            f"`enable_lora(rank)`). Received: layer={layer.name!r}"
        )
    constraint = "embeddings_constraint" if target.entry.attribute == "embeddings" else None
    constraint = constraint or "kernel_constraint"
    if getattr(layer, constraint, None):
        raise ValueError(
            f"{where} has a `{constraint}`, which Keras's LoRA does not allow. "
            f"Received: layer={layer.name!r}"
        )
    dtype = keras.backend.standardize_dtype(target.variable.dtype)
    if dtype not in ("bfloat16", "float16", "float32", "float64"):
        raise ValueError(
            f"{where} has a {dtype} `{target.entry.attribute}`; LoRA adapts float weights. "
            f"Received: layer={layer.name!r}"
        )
    limit = min(target.rows, target.cols)
    if rank > limit:
        raise ValueError(
            f"`rank` must be <= min(rows, columns) = {limit} for layer {layer.name!r}, whose "
            f"{target.entry.attribute} is matricized as ({target.rows}, {target.cols}). "
            f"Received: rank={rank}"
        )
    if method == "orthogonal" and rank % 2:
        raise ValueError(
            "`rank` must be even for method='orthogonal' (A and B take alternate rows of one "
            f"orthogonal matrix). Received: rank={rank}"
        )


def _check_rank(rank: Any) -> int:
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)):
        raise TypeError(f"`rank` must be an int >= 1. Received: rank={rank!r}")
    if rank < 1:
        raise ValueError(f"`rank` must be an int >= 1. Received: rank={rank!r}")
    return int(rank)


def _check_alpha(alpha: Any, rank: int) -> float:
    if alpha is None:
        return float(rank)
    value = check_finite("alpha", alpha)
    if value == 0:
        raise ValueError(
            f"`alpha` must be a nonzero finite number or None. Received: alpha={alpha!r}"
        )
    return value


def _check_niter(niter: Any, method: str) -> int | None:
    if niter is None:
        return None
    if method != "pissa":
        raise ValueError(
            "`niter` (the randomized SVD's power iterations) applies to method='pissa' only. "
            f"Received: niter={niter!r} with method={method!r}"
        )
    if isinstance(niter, bool) or not isinstance(niter, (int, np.integer)):
        raise TypeError(f"`niter` must be an int >= 0 or None. Received: niter={niter!r}")
    if niter < 0:
        raise ValueError(f"`niter` must be an int >= 0 or None. Received: niter={niter!r}")
    return int(niter)


Draw = Callable[[tuple[int, ...]], np.ndarray]  # a standard normal of that shape, float64


def _orthonormal_columns(x: np.ndarray) -> np.ndarray:
    q, _ = np.linalg.qr(x)
    return np.asarray(q)


def _randomized_svd(
    matrix: np.ndarray, rank: int, niter: int, normal: Draw
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top-``rank`` SVD of ``matrix`` by Halko, Martinsson & Tropp's range finder.

    As ``torch.svd_lowrank(q=rank, niter)``, which PEFT's ``pissa_niter_k`` uses:
    Y = M G (G a Gaussian (cols, rank)), ``niter`` power iterations
    (re-orthonormalized each half step), then the SVD of the small Q^T M.
    """
    q = _orthonormal_columns(matrix @ normal((matrix.shape[1], rank)))
    for _ in range(niter):
        q = _orthonormal_columns(matrix.T @ q)
        q = _orthonormal_columns(matrix @ q)
    u, s, vt = np.linalg.svd(q.T @ matrix, full_matrices=False)
    return q @ u, s, vt


def _factors(
    method: str,
    matrix: np.ndarray,
    rank: int,
    scale: float,
    embedding: bool,
    niter: int | None,
    normal: Draw,
    uniform: Callable[[tuple[int, ...], float], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """A (rows, r) and B (r, cols), in float64, for one matricized weight."""
    rows, cols = matrix.shape
    zeros_b = np.zeros((rank, cols))
    if method == "keras":  # he_uniform on A: fan_in = rows
        return uniform((rows, rank), math.sqrt(6.0 / rows)), zeros_b
    if method == "peft":
        if embedding:  # PEFT's lora_embedding_A = 0, lora_embedding_B ~ N(0, 1)
            return np.zeros((rows, rank)), normal((rank, cols))
        # kaiming_uniform_(a=sqrt(5)) on A: bound = sqrt(6 / ((1 + 5) fan_in)) = 1 / sqrt(rows)
        return uniform((rows, rank), 1.0 / math.sqrt(rows)), zeros_b
    if method == "gaussian":  # PEFT's: std 1 / r
        return normal((rows, rank)) / rank, zeros_b
    if method == "orthogonal":
        # PEFT's: alternate rows of one orthogonal (r, r) Q, so A @ B = G1 Q_odd Q_even^T G2 = 0.
        q = _orthonormal_columns(normal((rank, rank)))
        a = normal((rows, rank // 2)) @ q[0::2] / 10.0
        b = q[1::2].T @ normal((rank // 2, cols)) / 10.0
        return a, b
    if method == "pissa":
        if niter is None:
            u, s, vt = np.linalg.svd(matrix, full_matrices=False)
        else:
            u, s, vt = _randomized_svd(matrix, rank, niter, normal)
        root = np.sqrt(s[:rank] / scale)  # scale * A @ B = U_r S_r V_r^T
        return u[:, :rank] * root, root[:, None] * vt[:rank]
    # olora, as PEFT: the QR of the (cols, rows) matrix PyTorch would hold; A = R_r^T, B = Q_r^T.
    q, r = np.linalg.qr(matrix.T)
    return r[:rank].T.copy(), q[:, :rank].T.copy()


def _check_representable(
    target: _Target,
    matrix: np.ndarray,
    residual: np.ndarray | None,
    a32: np.ndarray,
    b32: np.ndarray,
    scale: float,
    alpha: Any,
) -> None:
    """Refuses an ``alpha`` whose float32 adapter cannot give the weight back.

    Keras holds A and B in float32. PiSSA scales them by sqrt(r / alpha), so an
    extreme alpha overflows or underflows them; OLoRA's residual W - s A B
    cancels ever more digits as s grows. Either way the layer's output would
    change, which ``lora`` promises it does not.
    """
    finite = bool(np.all(np.isfinite(a32)) and np.all(np.isfinite(b32)))
    error = 0.0
    if finite and residual is not None:  # the zero-start methods leave the kernel as it is
        with np.errstate(all="ignore"):  # as Keras computes it: s * (A @ B) in float32
            rebuilt = residual.astype(np.float32) + np.float32(scale) * (a32 @ b32)
        difference = rebuilt.astype(np.float64) - matrix
        if np.all(np.isfinite(difference)):
            error = float(np.linalg.norm(difference)) / max(float(np.linalg.norm(matrix)), 1e-30)
        else:
            error = math.inf
    if not (finite and error <= 1e-4):
        raise ValueError(
            f"`alpha` gives layer {target.layer.name!r} an adapter that float32 (the dtype of "
            "Keras's LoRA weights) cannot hold without changing the layer's output (A and B "
            "overflow, underflow or cancel); choose alpha nearer the rank. "
            f"Received: alpha={alpha!r}"
        )


def lora(
    model: keras.Model,
    rank: int,
    method: Method = "pissa",
    alpha: float | None = None,
    layers: str | Sequence[str] | None = None,
    seed: Any = None,
    niter: int | None = None,
) -> list[LoRARecord]:
    """Enables Keras's LoRA on a model's layers and initializes each adapter by ``method``.

    Keras's LoRA computes each adapted weight as

        W' = W_base + (alpha / r) * A @ B,   A: (*shape[:-1], r),  B: (r, shape[-1]),

    with W_base frozen: every axis of the weight but the last makes A's rows
    (a Conv2D kernel (kh, kw, in, out) is a (kh * kw * in, out) matrix, an
    EinsumDense kernel (d, h, k) a (d * h, k) one; ``WeightLayout.lora_axes``).
    With M the matricized weight, s = alpha / r and M = U S V^T its SVD:

        "keras"       A ~ U(-sqrt(6 / rows), sqrt(6 / rows)) (Keras's he_uniform), B = 0
        "peft"        A ~ U(-1 / sqrt(rows), 1 / sqrt(rows)) (PEFT's default,
                      kaiming_uniform with a = sqrt(5)), B = 0; an Embedding as
                      PEFT does it: A = 0, B ~ N(0, 1)
        "gaussian"    A ~ N(0, (1 / r)^2) (PEFT's std 1 / r), B = 0
        "orthogonal"  A = G1 Q_odd / 10, B = Q_even^T G2 / 10, Q an orthogonal (r, r),
                      so A @ B = 0 (PEFT's; r must be even)
        "pissa"       A = U_r sqrt(S_r / s), B = sqrt(S_r / s) V_r^T, W_base = M - U_r S_r V_r^T
                      (exact SVD; with ``niter``, the randomized SVD with that many
                      power iterations, PEFT's ``pissa_niter_k``)
        "olora"       M^T = Q R: A = R_r^T, B = Q_r^T, W_base = M - s A B

    In every case the model's outputs are unchanged right after (up to float
    rounding). The SVD and QR run in float64 NumPy on the host, the same on
    every backend.

    Quantization: a quantized layer is refused; call ``lora`` first and
    ``model.quantize(...)`` after, and Keras quantizes the frozen base (for
    PiSSA the residual, PiSSA's QPiSSA) while the adapter stays float32.

    Save and load: Keras saves an adapted layer with the adapter merged into
    its kernel, and a reloaded layer has LoRA enabled with A = B = 0, so the
    reloaded model predicts the same; ``lora_delta`` needs the layers ``lora``
    initialized in this process.

    Args:
        model: A built model or layer, on any backend.
        rank: The adapter's rank r, 1 <= r <= min(rows, columns) of each
            chosen weight.
        method: One of "gaussian", "keras", "olora", "orthogonal", "peft", "pissa".
        alpha: Keras's ``lora_alpha``; None gives alpha = r (scale 1).
        layers: None (every layer Keras's LoRA supports: Dense, EinsumDense,
            Conv1D-3D, Embedding), a regular expression matched against whole
            layer names (those that support LoRA), or a list of layer names
            (each must support it).
        seed: An int (the same draws in every process), None or a
            ``keras.random.SeedGenerator``; the methods that draw use it.
        niter: For method="pissa": None (exact SVD) or the randomized SVD's
            number of power iterations (>= 0).

    Returns:
        One ``LoRARecord`` per adapted layer, in the model's layer order.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If ``rank`` is out of range for a chosen layer, ``method``
            is unknown, ``layers`` names a layer that does not support LoRA or
            matches none, or a chosen layer already has LoRA, is quantized or
            has a kernel constraint. Nothing is changed then.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, name="head")])
        >>> report = lora(model, rank=2, method="pissa", seed=0)
        >>> [(r.layer, r.rank, r.shape) for r in report]
        [('head', 2, (16, 8))]
        >>> model.layers[0].lora_enabled
        True

    Reference:
        Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models",
        https://arxiv.org/abs/2106.09685;
        Meng et al., 2024, "PiSSA: Principal Singular Values and Singular
        Vectors Adaptation of Large Language Models", https://arxiv.org/abs/2404.02948;
        Büyükakyüz, 2024, "OLoRA: Orthonormal Low-Rank Adaptation of Large
        Language Models", https://arxiv.org/abs/2406.01775
    """
    check_model(model)
    rank = _check_rank(rank)
    method = check_choice("method", method, get_args(Method))
    scale_alpha = _check_alpha(alpha, rank)
    niter = _check_niter(niter, method)
    seed = check_seed(seed)
    targets = _select(model, _lora_layers(model), layers)
    for target in targets:
        _check_target(target, rank, method)
    scale = scale_alpha / rank

    next_seed = seeds(seed)
    counter = [0]

    def draw(kind: str, shape: tuple[int, ...], bound: float = 1.0) -> np.ndarray:
        index = counter[0]
        counter[0] += 1
        if kind == "uniform":
            values = in_shape(
                lambda s: _sampling.uniform(s, bound, "float32", next_seed(index)), shape
            )
        else:
            values = in_shape(
                lambda s: _sampling.normal(s, 1.0, "float32", next_seed(index)), shape
            )
        return to_numpy(values).astype(np.float64)

    planned = []
    for target in targets:
        shape = shape_of(target.variable)
        matrix = to_numpy(target.variable).astype(np.float64).reshape(target.rows, target.cols)
        if not np.all(np.isfinite(matrix)):
            raise ValueError(
                f"Layer {target.layer.name!r} ({type(target.layer).__name__}) has non-finite "
                f"values in its {target.entry.attribute}, so no adapter can start from it. "
                f"Received: layer={target.layer.name!r}"
            )
        a, b = _factors(
            method,
            matrix,
            rank,
            scale,
            target.entry.kind == "embedding",
            niter,
            lambda s: draw("normal", s),
            lambda s, bound: draw("uniform", s, bound),
        )
        with np.errstate(over="ignore"):  # an overflow is refused just below
            a32, b32 = a.astype(np.float32), b.astype(np.float32)
        delta = scale * (a @ b)
        residual = matrix - delta if method in _FROM_WEIGHT else None
        _check_representable(target, matrix, residual, a32, b32, scale, alpha)
        total = float(np.sum(matrix**2))
        energy = float(np.sum(delta**2)) / total if total > 0 else 0.0
        norm = float(np.linalg.norm(matrix - delta))
        a32 = a32.reshape((*shape[:-1], rank))
        planned.append((target, shape, a32, b32, residual, energy, norm))

    # Everything is checked and drawn: now change the model.
    assignments = []
    for target, shape, a32, b32, residual, _, _ in planned:
        layer = target.layer
        layer.enable_lora(rank, lora_alpha=alpha, a_initializer="zeros", b_initializer="zeros")
        name = target.entry.attribute
        a_var, b_var = getattr(layer, f"lora_{name}_a"), getattr(layer, f"lora_{name}_b")
        assignments.append(Assignment(a_var, a32, to_numpy(a_var)))
        assignments.append(Assignment(b_var, b32, to_numpy(b_var)))
        if residual is not None:
            dtype = keras.backend.standardize_dtype(target.variable.dtype)
            host = np.float64 if dtype == "float64" else np.float32
            values = keras.ops.cast(residual.reshape(shape).astype(host), dtype)
            assignments.append(Assignment(target.variable, values, to_numpy(target.variable)))
        _INITIAL[layer] = (a32.reshape(-1, rank), b32, scale)
    assign_all(assignments)
    return [
        LoRARecord(
            layer=target.layer.name,
            path=target.variable.path,
            method=method,
            rank=rank,
            alpha=scale_alpha,
            shape=(target.rows, target.cols),
            energy=energy,
            residual_norm=norm,
        )
        for target, _, _, _, _, energy, norm in planned
    ]


def lora_delta(model: keras.Model) -> dict[str, np.ndarray]:
    """The plain update each trained adapter amounts to against the original weight.

    ``lora`` splits a weight W into a frozen base and an adapter,
    W = W_base + s A0 B0 (s = alpha / r; A0 B0 = 0 for the methods that
    start at zero). After training, the layer computes W_base + s A B, so
    its update of the original weight is

        Delta W = s (A B - A0 B0),

    a plain LoRA delta of rank <= 2r (PEFT's PiSSA/OLoRA conversion):
    adding it to the original kernel gives the trained layer, so it can be
    merged, shared or applied to an unadapted copy of the model. (Keras's
    LoRA freezes the kernel only: a bias trains as usual and is not part of
    the delta.)

    Args:
        model: A model ``lora`` adapted in this process (the initial A0, B0
            are held by the layer objects, not saved).

    Returns:
        A dict from the adapted variable's path ("dense/kernel") to Delta W as a
        float32 NumPy array of the weight's shape, in the model's layer order.

    Raises:
        TypeError: If ``model`` is not a Keras model or layer.
        ValueError: If the model has no LoRA-enabled layer, or one whose
            adapter ``lora`` did not make in this process (a reloaded model,
            or one from ``enable_lora``): its A0 B0 is unknown.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8)])
        >>> _ = lora(model, rank=2, seed=0)
        >>> [delta.shape for delta in lora_delta(model).values()]
        [(16, 8)]
    """
    check_model(model)
    deltas: dict[str, np.ndarray] = {}
    for target in _lora_layers(model):
        layer = target.layer
        if not getattr(layer, "lora_enabled", False):
            continue
        if layer not in _INITIAL:
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) has a LoRA adapter that "
                "keras_inits.lora did not make in this process (a reloaded model, or one "
                "from enable_lora), so its initial A and B are unknown. "
                f"Received: layer={layer.name!r}"
            )
        a0, b0, scale = _INITIAL[layer]
        name = target.entry.attribute
        a = to_numpy(getattr(layer, f"lora_{name}_a")).astype(np.float64).reshape(a0.shape)
        b = to_numpy(getattr(layer, f"lora_{name}_b")).astype(np.float64)
        delta = scale * (a @ b - a0.astype(np.float64) @ b0.astype(np.float64))
        deltas[target.variable.path] = delta.reshape(shape_of(target.variable)).astype(np.float32)
    if not deltas:
        raise ValueError(
            "`model` has no LoRA-enabled layer (keras_inits.lora adapts one). "
            f"Received: model={model.name!r}"
        )
    return deltas
