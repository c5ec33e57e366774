"""Every argument error has one shape: `name`, what is allowed, Received: name=value."""

import math

import keras
import numpy as np
import pytest

from keras_inits import _validation as v


def test_positive_number_messages():
    with pytest.raises(ValueError) as info:
        v.check_positive("gain", -2)
    assert str(info.value) == "`gain` must be a finite number > 0. Received: gain=-2"
    with pytest.raises(TypeError) as info:
        v.check_positive("gain", True)
    assert str(info.value) == "`gain` must be a real number, not bool. Received: gain=True"
    with pytest.raises(ValueError, match=r"Received: stddev=inf"):
        v.check_positive("stddev", math.inf)
    with pytest.raises(TypeError, match=r"not NoneType\. Received: limit=None"):
        v.check_positive("limit", None)


def test_positive_number_accepts_ints_and_numpy_scalars():
    import numpy as np

    assert v.check_positive("scale", 2) == 2.0
    assert v.check_positive("scale", np.float32(0.5)) == 0.5


def test_choice_lists_options_sorted():
    with pytest.raises(ValueError) as info:
        v.check_choice("mode", "fan_sum", ("fan_out", "fan_in", "fan_avg"))
    assert str(info.value) == (
        "`mode` must be one of ('fan_avg', 'fan_in', 'fan_out'). Received: mode='fan_sum'"
    )


def test_seed():
    assert v.check_seed(3) == 3
    assert v.check_seed(None) is None
    generator = keras.random.SeedGenerator(1)
    assert v.check_seed(generator) is generator
    with pytest.raises(TypeError) as info:
        v.check_seed("3")
    assert str(info.value) == (
        "`seed` must be an int, a keras.random.SeedGenerator or None. Received: seed='3'"
    )


@pytest.mark.parametrize("seed", [-1, -(2**40), 2**32, 2**64])
def test_seed_outside_the_one_range_is_refused(seed):
    with pytest.raises(ValueError) as info:
        v.check_seed(seed)
    assert str(info.value) == (
        "`seed` must be an int in [0, 2**32), a keras.random.SeedGenerator or None. "
        f"Received: seed={seed}"
    )
    with pytest.raises(ValueError) as info:
        v.check_seed_range("seed", seed)
    assert str(info.value) == f"`seed` must be an int in [0, 2**32). Received: seed={seed}"


def test_seed_range_ends_are_taken_by_both_checks():
    for seed in (0, v.SEED_LIMIT - 1, np.int64(7)):
        assert v.check_seed(seed) == v.check_seed_range("seed", seed) == int(seed)
    with pytest.raises(TypeError, match=r"not bool\. Received: seed=True"):
        v.check_seed_range("seed", True)
    with pytest.raises(TypeError, match=r"Received: seed=True$"):
        v.check_seed(True)


def test_axes():
    assert v.check_axes((0,), (1, 2)) == ([0], [1, 2])
    assert v.check_axes(None, None) == (None, None)
    # Keras's VarianceScaling takes these too: one list alone, empty and repeated axes.
    assert v.check_axes(None, (1,)) == (None, [1])
    assert v.check_axes([], [1, 1]) == ([], [1, 1])
    with pytest.raises(TypeError, match="Received: output_axes='1'"):
        v.check_axes([0], "1")


def test_shape():
    assert v.check_shape([2, 3]) == (2, 3)
    assert v.check_shape(5) == (5,)
    with pytest.raises(ValueError, match=r"Received: shape=\(2, -1\)"):
        v.check_shape((2, -1))


def test_dtype():
    assert v.check_dtype("float16") == "float16"
    assert v.check_dtype(None) == keras.config.floatx()
    with pytest.raises(ValueError) as info:
        v.check_dtype("int8")
    assert str(info.value) == (
        "`dtype` must be a floating-point dtype, one of "
        "('bfloat16', 'float16', 'float32', 'float64'). Received: dtype='int8'"
    )
