"""Fans for the Keras kernel layout and for explicit axes."""

import pytest

from keras_inits._fans import compute_fans, fan_for_mode


@pytest.mark.parametrize(
    "shape, fans",
    [
        ((), (1, 1)),
        ((7,), (7, 7)),
        ((20, 30), (20, 30)),
        ((5, 3, 4), (15, 20)),
        ((3, 3, 16, 32), (144, 288)),
        ((2, 3, 4, 5, 6), (120, 144)),
        ((0, 8), (0, 8)),
    ],
)
def test_keras_layout(shape, fans):
    assert compute_fans(shape) == fans


def test_explicit_axes_override_the_layout():
    assert compute_fans((64, 4, 32), [0], [1, 2]) == (64, 128)
    assert compute_fans((64, 4, 32), [-3], [-1]) == (64, 32)
    assert compute_fans((4, 8, 2, 16), [1, 2], [3]) == (16, 16)


def test_axes_out_of_range():
    with pytest.raises(ValueError, match=r"^`input_axes` must hold axes in \[-2, 2\)"):
        compute_fans((3, 4), [2], [0])


def test_axes_count_as_keras_counts_them():
    # An axis in both lists, or listed twice, counts each time; an empty list is 1.
    assert compute_fans((3, 4, 5), [0, 1], [-2]) == (12, 4)
    assert compute_fans((3, 4, 5), [2, 2], []) == (25, 1)
    assert compute_fans((3, 4, 5), [0], None) == (12, 15)  # one list alone: the layout


@pytest.mark.parametrize("mode, expected", [("fan_in", 10.0), ("fan_out", 30.0), ("fan_avg", 20.0)])
def test_fan_for_mode(mode, expected):
    assert fan_for_mode(mode, 10, 30) == expected


def test_empty_kernel_has_fan_one_not_zero():
    assert fan_for_mode("fan_in", 0, 5) == 1.0
