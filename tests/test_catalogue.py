"""The catalogue names every string a layer accepts, ours and Keras's, with its math."""

import keras

from keras_inits._catalogue import catalogue
from keras_inits._registry import CLASSES, names


def test_every_name_of_ours_with_its_formula_and_reference():
    ours = [entry for entry in catalogue() if entry.owner == "keras_inits"]
    assert [entry.name for entry in ours] == list(names())
    assert {entry.class_name for entry in ours} == {cls.__name__ for cls in CLASSES}
    fan_scaled = {
        cls.__name__ for cls in CLASSES if issubclass(cls, keras.initializers.VarianceScaling)
    }
    for entry in ours:
        assert len(entry.formula) > 20 and "\n" not in entry.formula, entry
        if entry.class_name in fan_scaled:  # its math names the fan it scales with
            assert "fan" in entry.formula, entry
        assert entry.reference != "-" and "\n" not in entry.reference, entry


def test_every_keras_initializer_name_resolves_to_its_class():
    # constant needs a value to be built from a name, so it is checked by class.
    theirs = [entry for entry in catalogue() if entry.owner == "keras"]
    assert {"zeros", "ones", "glorot_normal", "he_normal", "orthogonal", "identity"} <= {
        entry.name for entry in theirs
    }
    for entry in theirs:
        assert not entry.formula.startswith("see "), f"no formula for Keras's {entry.name}"
        if entry.name == "constant":
            assert entry.class_name == "Constant"
            continue
        assert type(keras.initializers.get(entry.name)).__name__ == entry.class_name
