"""Complex dtypes: the fan-scaled family, SmallNormal and BlockOrthogonal.

complex64 and complex128 draw with JAX's laws (circularly symmetric, the
variance split equally between the parts). Each law is tested against its
analytic form on every backend, and on the JAX backend against
``jax.nn.initializers``' own complex draw (two-sample KS at 1e-4). complex128
needs float64: where the backend has none (JAX without x64) it is refused.
"""

import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import KS_ALPHA, SIGMAS, assert_error, backend_has_float64
from scipy import stats

import keras_inits as ki
from keras_inits._sampling import _COMPLEX_TRUNCATED_VAR

ON_JAX = keras.backend.backend() == "jax"
SHAPE = (400, 256)  # 102,400 values; fan_in = 400
SCALE = 2.0
STD = math.sqrt(SCALE / SHAPE[0])  # E|z|^2 = STD^2
DTYPES = ["complex64", "complex128"]
EPS = {"complex64": float(np.finfo(np.float32).eps), "complex128": float(np.finfo(np.float64).eps)}
# Our distribution name -> JAX's.
JAX_NAMES = {
    "truncated_normal": "truncated_normal",
    "untruncated_normal": "normal",
    "uniform": "uniform",
}
# JAX's complex truncated normal divides by sqrt(1 - 5 e^-4), not by the std
# after the cut: its draw times this factor has our law.
JAX_TRUNCATED_FIX = 0.95311164380491208 / math.sqrt(_COMPLEX_TRUNCATED_VAR)
X64_ERROR = (
    "`dtype` complex128 needs float64, which the jax backend does not give here (JAX "
    "gives it only with jax_enable_x64; it would give complex64). Use complex64, or "
    "enable x64. Received: dtype='complex128'"
)


def draw(init, shape, dtype):
    """``init(shape, dtype)`` as complex128 NumPy, after checking the dtype came back."""
    values = init(shape, dtype=dtype)
    assert keras.backend.standardize_dtype(values.dtype) == dtype
    return np.asarray(keras.ops.convert_to_numpy(values), dtype=np.complex128)


def available(dtype):
    """False (after checking the refusal) where the backend has no ``dtype``."""
    if dtype == "complex128" and not backend_has_float64():
        assert_error(lambda: ki.VarianceScaling()((2, 2), dtype=dtype), ValueError, X64_ERROR)
        return False
    return True


def ks(values, cdf):
    p_value = stats.kstest(np.ravel(values), cdf).pvalue
    assert p_value > KS_ALPHA, f"KS test rejects: p={p_value:.2e}"


def ks2(ours, theirs):
    p_value = stats.ks_2samp(np.ravel(ours), np.ravel(theirs)).pvalue
    assert p_value > KS_ALPHA, f"two-sample KS rejects: p={p_value:.2e}"


def assert_circular(z, std):
    """Each part has variance std^2 / 2 (5 SE), the parts are uncorrelated, E[z^2] = 0."""
    z = np.ravel(z)
    n = z.size
    assert np.all(np.isfinite(z))
    for part in (z.real, z.imag):
        var = np.mean(part**2)
        se = math.sqrt(np.var(part**2) / n)
        assert abs(var - std**2 / 2) <= SIGMAS * se, (var, std**2 / 2, se)
        assert abs(part.mean()) <= SIGMAS * std / math.sqrt(2 * n)
    # The pseudo-variance E[z^2] = E[re^2 - im^2] + 2i E[re im] is 0 for a circular law.
    pseudo = np.mean(z**2)
    assert abs(pseudo) <= SIGMAS * math.sqrt(np.mean(np.abs(z) ** 4) / n), pseudo
    # The phase is uniform on (-pi, pi] whatever the modulus.
    ks(np.angle(z), stats.uniform(-math.pi, 2 * math.pi).cdf)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
def test_variance_scaling_complex_law(distribution, dtype):
    if not available(dtype):
        return
    init = ki.VarianceScaling(SCALE, "fan_in", distribution, seed=3)
    z = draw(init, SHAPE, dtype)
    assert_circular(z, STD)
    square = np.abs(z) ** 2
    if distribution == "untruncated_normal":  # the parts are N(0, STD^2 / 2)
        ks(z.real, stats.norm(scale=STD / math.sqrt(2)).cdf)
        ks(z.imag, stats.norm(scale=STD / math.sqrt(2)).cdf)
    elif distribution == "uniform":  # uniform on the disk of radius sqrt(2) STD
        ks(square, stats.uniform(0.0, 2 * STD**2).cdf)
    else:  # |z|^2 C / STD^2 is Exp(1) cut at 4, so |z| <= 2 STD / sqrt(C)
        ks(square * _COMPLEX_TRUNCATED_VAR / STD**2, stats.truncexpon(4.0).cdf)
        bound = 2 * STD / math.sqrt(_COMPLEX_TRUNCATED_VAR)
        assert np.abs(z).max() <= bound * (1 + 4 * EPS[dtype])
        assert np.abs(z).max() > 0.99 * bound  # the cut is where it should be, not inside
    if ON_JAX:
        import jax

        theirs = jax.nn.initializers.variance_scaling(
            SCALE, "fan_in", JAX_NAMES[distribution], dtype=dtype
        )(jax.random.key(0), SHAPE)
        theirs = np.asarray(theirs, dtype=np.complex128)
        if distribution == "truncated_normal":
            theirs = theirs * JAX_TRUNCATED_FIX
        ks2(z.real, theirs.real)
        ks2(z.imag, theirs.imag)
        ks2(np.abs(z), np.abs(theirs))


def test_complex_schemes_use_their_fans():
    # Kaiming (fan_in, scale 2), Xavier (fan_avg, scale 1), fan_out: E|z|^2 = scale / fan.
    shape = (400, 256)
    cases = [
        (ki.KaimingNormal(seed=1), 2.0 / 400),
        (ki.KaimingUniform(seed=1), 2.0 / 400),
        (ki.XavierNormal(seed=1), 1.0 / 328),
        (ki.VarianceScaling(1.0, "fan_out", "untruncated_normal", seed=1), 1.0 / 256),
    ]
    for init, variance in cases:
        z = draw(init, shape, "complex64")
        assert_circular(z, math.sqrt(variance))


def test_small_normal_complex_matches_jax_normal():
    init = ki.SmallNormal(stddev=0.1, seed=5)
    z = draw(init, SHAPE, "complex64")
    assert_circular(z, 0.1)
    ks(z.real, stats.norm(scale=0.1 / math.sqrt(2)).cdf)
    if ON_JAX:
        import jax

        theirs = jax.nn.initializers.normal(0.1, dtype="complex64")(jax.random.key(0), SHAPE)
        theirs = np.asarray(theirs, dtype=np.complex128)
        ks2(z.real, theirs.real)
        ks2(np.abs(z), np.abs(theirs))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(64, 24), (24, 64), (3, 3, 8, 40)])
def test_block_orthogonal_complex_is_unitary(shape, dtype):
    if not available(dtype):
        return
    gain = 1.5
    q = draw(ki.BlockOrthogonal(gain=gain, seed=2), shape, dtype).reshape(-1, shape[-1])
    rows, cols = q.shape
    product = q.conj().T @ q if rows >= cols else q @ q.conj().T
    # QR and the phase product each round by a few eps per entry, summed over `rows`.
    tolerance = 10 * max(rows, cols) * EPS[dtype] * gain**2
    assert np.abs(product - gain**2 * np.eye(min(rows, cols))).max() <= tolerance
    assert np.abs(q.imag).max() > 0.1  # truly complex, not a real matrix cast


def test_block_orthogonal_complex_is_haar():
    # 64 independent (64, 32) blocks: each entry of a Haar-unitary column of
    # C^64 has |q|^2 ~ Beta(1, 63) and a uniform phase.
    blocks, rows, width = 64, 64, 32
    q = draw(ki.BlockOrthogonal(blocks=blocks, seed=4), (rows, blocks * width), "complex64")
    ks(np.abs(q) ** 2, stats.beta(1, rows - 1).cdf)
    # The phase fix matters on the diagonal of each block: without it a QR routine
    # (real diag(R)) leaves q[j, j]'s phase concentrated on a sign.
    diagonal = np.stack([np.diagonal(q[:, b * width : (b + 1) * width]) for b in range(blocks)])
    ks(np.angle(diagonal), stats.uniform(-math.pi, 2 * math.pi).cdf)
    ks(np.angle(q), stats.uniform(-math.pi, 2 * math.pi).cdf)
    if ON_JAX:
        import jax

        init = jax.nn.initializers.orthogonal(dtype="complex64")
        keys = jax.random.split(jax.random.key(0), blocks)
        theirs = np.asarray(jax.vmap(lambda k: init(k, (rows, width)))(keys))
        ks2(np.abs(q) ** 2, np.abs(theirs) ** 2)
        ks2(q.real, theirs.real)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ki.VarianceScaling(distribution="uniform", seed=7),
        lambda: ki.VarianceScaling(seed=7),
        lambda: ki.SmallNormal(seed=7),
        lambda: ki.BlockOrthogonal(seed=7),
    ],
)
def test_complex_seed_reproducibility(make):
    shape = SHAPE  # the shape the law tests use: on JAX, their compiled ops serve here too
    first = draw(make(), shape, "complex64")
    assert np.array_equal(first, draw(make(), shape, "complex64"))
    init = make()
    a, b = draw(init, shape, "complex64"), draw(init, shape, "complex64")
    assert not np.array_equal(a, b)  # each call of one instance draws anew


def test_complex_seed_generator_advances():
    shape = SHAPE  # the shape the law tests use: on JAX, their compiled ops serve here too
    generator = keras.random.SeedGenerator(7)
    c = draw(ki.VarianceScaling(seed=generator), shape, "complex64")
    d = draw(ki.VarianceScaling(seed=generator), shape, "complex64")
    assert not np.array_equal(c, d)  # a SeedGenerator advances


def test_complex128_without_float64_is_refused_or_drawn():
    init = ki.VarianceScaling(seed=0)
    if backend_has_float64():
        z = draw(init, (8, 8), "complex128")
        assert np.abs(z.imag).max() > 0
    else:  # JAX without x64: never complex64 or garbage in its place
        for init in (ki.VarianceScaling(), ki.SmallNormal(), ki.BlockOrthogonal()):
            assert_error(lambda init=init: init((4, 4), dtype="complex128"), ValueError, X64_ERROR)


def test_complex_refused_where_it_makes_no_sense():
    # Truncated normals with arbitrary real bounds, sparse masks, identity-like
    # and other structural kernels have no complex meaning: the float dtype error.
    refused = [ki.BoundedNormal(), ki.Sparse(sparsity=0.5), ki.ConvIdentity(), ki.DeltaOrthogonal()]
    for init in refused:
        for dtype in DTYPES:
            assert_error(
                lambda init=init, dtype=dtype: init((3, 4, 4), dtype=dtype),
                ValueError,
                "`dtype` must be a floating-point dtype, one of ('bfloat16', 'float16', "
                f"'float32', 'float64'). Received: dtype={dtype!r}",
            )


def test_complex_initializers_list_complex_in_their_dtype_error():
    for init in (ki.VarianceScaling(), ki.KaimingNormal(), ki.SmallNormal(), ki.BlockOrthogonal()):
        assert_error(
            lambda init=init: init((4, 4), dtype="int32"),
            ValueError,
            "`dtype` must be a floating-point or complex dtype, one of ('bfloat16', "
            "'float16', 'float32', 'float64', 'complex128', 'complex64'). "
            "Received: dtype='int32'",
        )


def test_every_registered_initializer_draws_or_refuses_complex():
    # Driven by the registry: a class either draws complex64 or refuses it clearly.
    for name in ki.names():
        init = ki.get(name)
        if getattr(init, "COMPLEX", False):
            z = init((6, 6), dtype="complex64")
            assert keras.backend.standardize_dtype(z.dtype) == "complex64"
        else:
            with pytest.raises(ValueError, match=r"`dtype` must be a floating-point dtype"):
                init((6, 6), dtype="complex64")


@pytest.mark.slow
def test_complex128_with_jax_x64_draws_the_law():
    # JAX's x64 switch is read once, at start-up: this file in a fresh process with
    # it on, where complex128 is drawn (and KS-tested against JAX) instead of refused.
    if not ON_JAX:
        pytest.skip("JAX's x64 switch changes only the JAX backend")
    env = {**os.environ, "JAX_ENABLE_X64": "1", "KERAS_BACKEND": "jax"}
    tests = os.path.dirname(os.path.abspath(__file__))
    here = os.path.join(tests, "test_complex.py")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist"]
    completed = subprocess.run(
        [*command, here, "-x", "-k", "complex128 and not x64"],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.path.dirname(tests),
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-4000:]
    assert " passed" in completed.stdout and "skipped" not in completed.stdout
