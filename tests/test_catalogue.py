"""The catalogue names every string a layer accepts, ours and Keras's, with its math.

Its tables are typed data in code; these tests hold them to the registry and
to Keras, so a class registered (or a name Keras adds) without a catalogue
entry fails here.
"""

import keras
import pytest

from keras_inits import _catalogue
from keras_inits._catalogue import catalogue
from keras_inits._registry import CLASSES, keras_names, names, string_name


def test_our_table_is_the_registry():
    ours = [entry for entry in catalogue() if entry.owner == "keras_inits"]
    assert [entry.name for entry in ours] == list(names())
    by_class = {cls.__name__: cls for cls in CLASSES}
    assert sorted(entry.class_name for entry in ours) == sorted(by_class)
    for entry in ours:
        assert string_name(by_class[entry.class_name]) == entry.name


@pytest.mark.parametrize("entry", _catalogue.OURS, ids=lambda entry: entry.name)
def test_each_of_ours_has_a_formula_and_a_reference(entry):
    fan_scaled = {
        cls.__name__ for cls in CLASSES if issubclass(cls, keras.initializers.VarianceScaling)
    }
    assert len(entry.formula) > 20 and "\n" not in entry.formula, entry
    if entry.class_name in fan_scaled:  # its math names the fan it scales with
        assert "fan" in entry.formula, entry
    assert entry.reference != "-" and "\n" not in entry.reference, entry


def test_every_keras_name_is_in_the_table():
    # A name a newer Keras adds fails here until the table has its formula.
    theirs = {entry.name for entry in catalogue() if entry.owner == "keras"}
    assert set(keras_names()) <= theirs, sorted(set(keras_names()) - theirs)


@pytest.mark.parametrize("entry", _catalogue.KERAS, ids=lambda entry: entry.name)
def test_each_keras_name_resolves_to_its_class(entry):
    if entry.name not in keras_names():
        pytest.skip(f"Keras {keras.__version__} has no {entry.name!r}")
    assert entry.formula and "\n" not in entry.formula
    if entry.name == "constant":  # needs a value to be built from a name: checked by class
        assert keras.initializers.Constant.__name__ == entry.class_name
        return
    assert type(keras.initializers.get(entry.name)).__name__ == entry.class_name


def test_tables_are_sorted_by_name():
    for table in (_catalogue.OURS, _catalogue.KERAS):
        assert [entry.name for entry in table] == sorted(entry.name for entry in table)
