"""docs/jax-flax.md's mapping, row by row: JAX's initializer and our spelling draw one law.

The page's ``MAPPING`` block is run here as it is printed. For each row,
JAX's initializer (evaluated with ``jnn = jax.nn.initializers``) and ours
draw the row's kernel shape, repeated until each side holds 3 * 10^4 values;
constants must match exactly, random draws pass a two-sample KS test at
1e-4. Every public function of ``jax.nn.initializers`` must have a row.
"""

import math
import os
import re

import keras
import numpy as np
import pytest
from helpers import KS_ALPHA, to_numpy
from scipy import stats

jax = pytest.importorskip("jax")

PAGE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "jax-flax.md"
)


def mapping():
    with open(PAGE, encoding="utf-8") as file:
        text = file.read()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "MAPPING = [" in b)
    namespace: dict = {}
    exec(compile(block, "docs/jax-flax.md MAPPING", "exec"), namespace)
    return namespace["MAPPING"]


ROWS = mapping()
SAMPLES = 30_000


def draws(make, shape):
    count = max(1, min(8, math.ceil(SAMPLES / math.prod(shape))))
    return np.stack([make(index) for index in range(count)])


@pytest.mark.slow  # a sweep: every row compiles JAX's draw and ours for its shape
@pytest.mark.parametrize("row", range(len(ROWS)), ids=[r[0].split("  #")[0] for r in ROWS])
def test_row_draws_the_law_of_its_jax_spelling(row):
    spelling, shape, ours = ROWS[row]
    theirs = eval(spelling, {"jnn": jax.nn.initializers})
    jax_values = draws(lambda i: np.asarray(theirs(jax.random.key(i), shape), np.float64), shape)
    initializer = keras.initializers.get(ours)
    our_values = draws(lambda i: to_numpy(initializer(shape)), shape)
    if np.unique(jax_values).size == 1:
        np.testing.assert_array_equal(our_values, jax_values)
        return
    p_value = stats.ks_2samp(our_values.ravel(), jax_values.ravel()).pvalue
    assert p_value > KS_ALPHA, f"{spelling}: two-sample KS rejects, p={p_value:.2e}"


def test_every_jax_initializer_has_a_row():
    functions = {
        n for n in dir(jax.nn.initializers) if not n.startswith("_") and n != "Initializer"
    }
    spelled = {re.match(r"jnn\.(\w+)", spelling).group(1) for spelling, _, _ in ROWS}
    assert functions <= spelled, functions - spelled


def test_the_literal_embed_spelling_is_the_wrong_one():
    # The page's warning: Keras's input_axes/output_axes multiply only the named axes.
    import keras_inits as ki

    literal = ki.VarianceScaling(
        1.0, "fan_in", "untruncated_normal", input_axes=[0], output_axes=[0]
    )
    right = ki.VarianceScaling(1.0, "fan_out", "untruncated_normal")
    assert literal.stddev((1000, 64)) == pytest.approx(1 / math.sqrt(1000))
    assert right.stddev((1000, 64)) == pytest.approx(1 / 8)
