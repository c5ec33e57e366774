"""One catalogue of every initializer name a layer accepts: ours and Keras's.

Its facts live here as typed tables in code, not in docstrings, so
``python -OO`` (which strips docstrings) prints the same catalogue. Tests
hold the tables to the code: our names and classes to the registry
(``names()``, ``CLASSES``), Keras's names to ``keras.initializers``.

This module imports neither Keras nor anything else from this package, so
``keras-inits list`` can read it without importing Keras and a backend
(the ``keras_inits_cli`` launcher loads this file on its own).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

__all__ = ["Entry", "catalogue", "format_catalogue"]


@dataclasses.dataclass(frozen=True)
class Entry:
    """One string name: whose it is, the class it resolves to, its math and source."""

    name: str
    owner: Literal["keras_inits", "keras"]
    class_name: str
    formula: str
    reference: str  # "-" where there is none


def _ours(name: str, class_name: str, formula: str, reference: str) -> Entry:
    return Entry(name, "keras_inits", class_name, formula, reference)


def _keras(name: str, class_name: str, formula: str, reference: str = "-") -> Entry:
    return Entry(name, "keras", class_name, formula, reference)


_GLOROT = "Glorot & Bengio 2010, https://proceedings.mlr.press/v9/glorot10a.html"
_HE = "He et al. 2015, https://arxiv.org/abs/1502.01852"

# Ours, sorted by the name ``keras_inits.names()`` lists.
OURS: tuple[Entry, ...] = (
    _ours(
        "activation_scaled",
        "ActivationScaled",
        "Var(W) = gain_for(activation)^2 / fan (mode), gain_for = 1 / sqrt(E[f(z)^2])",
        f"{_HE}; Klambauer et al. 2017, https://arxiv.org/abs/1706.02515",
    ),
    _ours(
        "bilinear",
        "Bilinear",
        "bilinear upsampling by f for Conv2DTranspose(strides=f, kernel 2f - f % 2, 'same')",
        "Long, Shelhamer & Darrell 2015 (FCN), https://arxiv.org/abs/1411.4038",
    ),
    _ours(
        "block_orthogonal",
        "BlockOrthogonal",
        "gain * [Q_1 | ... | Q_b]: an independent orthogonal matrix per column block",
        "Saxe et al. 2014, https://arxiv.org/abs/1312.6120",
    ),
    _ours(
        "bounded_normal",
        "BoundedNormal",
        "stddev * z, z ~ N(0, 1) truncated to [lower, upper] (JAX's truncated_normal)",
        "JAX jax.nn.initializers.truncated_normal",
    ),
    _ours(
        "conv_identity",
        "ConvIdentity",
        "gain * identity at the centre tap (k - 1) // 2, 0 elsewhere: a 'same' conv passes x",
        "Zagoruyko & Komodakis 2017 (DiracNets), https://arxiv.org/abs/1706.00388",
    ),
    _ours(
        "delta_orthogonal",
        "DeltaOrthogonal",
        "gain * an orthogonal (in, out) matrix at the centre tap, 0 elsewhere; out >= in",
        "Xiao et al. 2018, https://arxiv.org/abs/1806.05393",
    ),
    _ours(
        "hadamard_identity",
        "HadamardIdentity",
        "ZerO: partial identity, or 2^(-(m-1)/2) * Hadamard block H_m[:in, :out] if out > in",
        "Zhao, Schaefer & Anandkumar 2022 (ZerO), https://arxiv.org/abs/2110.12661",
    ),
    _ours(
        "icnr",
        "ICNR",
        "a sub-kernel from `initializer`, tiled scale^2 times for depth_to_space",
        "Aitken et al. 2017, https://arxiv.org/abs/1707.02937",
    ),
    _ours(
        "kaiming_normal",
        "KaimingNormal",
        "N(0, gain^2 / fan), untruncated, gain = calculate_gain(nonlinearity, a)",
        _HE,
    ),
    _ours(
        "kaiming_uniform",
        "KaimingUniform",
        "U(-b, b), b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a)",
        _HE,
    ),
    _ours(
        "keras_inits>VarianceScaling",
        "VarianceScaling",
        "Var(W) = scale / fan (mode): exact truncated normal, normal or uniform",
        _HE,
    ),
    _ours(
        "sigmoid_normal",
        "SigmoidNormal",
        "N(0, 4 / fan_in), untruncated: gain 2, gain_for('sigmoid') = 1.85 rounded up",
        f"derived here from the sigmoid's second moment; the variance argument: {_GLOROT}",
    ),
    _ours(
        "sigmoid_uniform",
        "SigmoidUniform",
        "U(-sqrt(12 / fan_in), +sqrt(12 / fan_in)): Var(W) = 4 / fan_in",
        f"derived here, as sigmoid_normal; the variance argument: {_GLOROT}",
    ),
    _ours(
        "small_normal",
        "SmallNormal",
        "N(0, stddev^2), default stddev 0.1, whatever the fan",
        f"the pre-2010 heuristic, {_GLOROT} (section 4.2)",
    ),
    _ours(
        "small_uniform",
        "SmallUniform",
        "U(-limit, limit), default limit 0.1, whatever the fan",
        f"the pre-2010 heuristic, {_GLOROT} (section 4.2)",
    ),
    _ours(
        "sparse",
        "Sparse",
        "exactly round(sparsity * fan_in) zeros per column, the rest N(0, stddev^2)",
        "Martens 2010, https://www.cs.toronto.edu/~jmartens/docs/Deep_HessianFree.pdf",
    ),
    _ours(
        "xavier_normal",
        "XavierNormal",
        "N(0, gain^2 * 2 / (fan_in + fan_out)), untruncated",
        _GLOROT,
    ),
    _ours(
        "xavier_uniform",
        "XavierUniform",
        "U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))",
        _GLOROT,
    ),
)

# Keras's own initializers, sorted by their snake_case name; they keep their Keras meaning.
KERAS: tuple[Entry, ...] = (
    _keras("constant", "Constant", "every weight = value"),
    _keras(
        "glorot_normal",
        "GlorotNormal",
        "truncated normal, std sqrt(2 / (fan_in + fan_out))",
        "Glorot & Bengio 2010",
    ),
    _keras(
        "glorot_uniform",
        "GlorotUniform",
        "U(+-sqrt(6 / (fan_in + fan_out))), Keras's default",
        "Glorot & Bengio 2010",
    ),
    _keras("he_normal", "HeNormal", "truncated normal, std sqrt(2 / fan_in)", "He et al. 2015"),
    _keras("he_uniform", "HeUniform", "U(+-sqrt(6 / fan_in))", "He et al. 2015"),
    _keras("identity", "Identity", "the identity matrix times gain (2-D kernels only)"),
    _keras(
        "lecun_normal", "LecunNormal", "truncated normal, std sqrt(1 / fan_in)", "LeCun et al. 1998"
    ),
    _keras("lecun_uniform", "LecunUniform", "U(+-sqrt(3 / fan_in))", "LeCun et al. 1998"),
    _keras("normal", "RandomNormal", "alias of random_normal"),
    _keras("one", "Ones", "alias of ones"),
    _keras("ones", "Ones", "every weight = 1: symmetry is never broken"),
    _keras(
        "orthogonal",
        "Orthogonal",
        "a random orthogonal matrix (QR of a normal one), times gain",
        "Saxe et al. 2014",
    ),
    _keras("random_normal", "RandomNormal", "N(mean, stddev^2), default N(0, 0.05^2)"),
    _keras("random_uniform", "RandomUniform", "U(minval, maxval), default U(-0.05, 0.05)"),
    _keras("stft", "STFT", "short-time Fourier transform filters (for STFT layers)"),
    _keras(
        "truncated_normal",
        "TruncatedNormal",
        "N(mean, stddev^2) cut at 2 stddev, default stddev 0.05",
    ),
    _keras("uniform", "RandomUniform", "alias of random_uniform"),
    _keras(
        "variance_scaling",
        "VarianceScaling",
        "Var = scale / fan (mode), truncated normal by default",
        "He et al. 2015",
    ),
    _keras("zero", "Zeros", "alias of zeros"),
    _keras("zeros", "Zeros", "every weight = 0: symmetry is never broken"),
)


def catalogue() -> list[Entry]:
    """Every initializer name, ours first (as ``names()`` gives them), then Keras's.

    Example:
        >>> entries = {entry.name: entry for entry in catalogue()}
        >>> entries["sigmoid_normal"].formula.split(")")[0] + ")"
        'N(0, 4 / fan_in)'
        >>> entries["glorot_normal"].owner
        'keras'
    """
    return [*OURS, *KERAS]


def format_catalogue() -> str:
    """The catalogue as ``keras-inits list`` prints it: ours, then Keras's built-ins."""
    lines = []
    for owner, title in (("keras_inits", "keras_inits"), ("keras", "Keras built-ins")):
        lines.append(f"{title}:")
        for entry in (e for e in catalogue() if e.owner == owner):
            lines.append(f"  {entry.name:<30} {entry.formula}")
            if entry.reference != "-":
                lines.append(f"  {'':<30} ref: {entry.reference}")
        lines.append("")
    lines.append("Each also resolves by class name; ours as 'keras_inits>ClassName' too.")
    return "\n".join(lines)
