"""String names: ours resolve in every form, Keras's keep meaning Keras's."""

import keras
import numpy as np
import pytest
from helpers import assert_error, to_numpy

import keras_inits as ki
from keras_inits._registry import CLASSES, registered_name, snake_case

# Keras's own initializer names, from its public namespace (each class under
# its CamelCase and snake_case names), plus the short aliases Keras also
# resolves ("normal", "uniform", "one", "zero") with the classes they resolve to.
KERAS_TABLE = {
    name: obj
    for name, obj in vars(keras.initializers).items()
    if isinstance(obj, type) and issubclass(obj, keras.initializers.Initializer)
}
for alias in ("normal", "uniform", "one", "zero"):
    if alias not in KERAS_TABLE:
        try:
            KERAS_TABLE[alias] = type(keras.initializers.get(alias))
        except ValueError:
            pass  # a Keras without this alias


def test_names_lists_one_name_per_class_sorted():
    names = ki.names()
    assert names == tuple(sorted(names))
    assert len(names) == len(CLASSES)
    assert {"sigmoid_normal", "sigmoid_uniform", "xavier_normal", "kaiming_uniform"} <= set(names)
    assert "keras_inits>VarianceScaling" in names
    assert "VarianceScaling" not in names and "variance_scaling" not in names


@pytest.mark.parametrize("name", ki.names())
def test_every_listed_name_resolves_to_our_class(name):
    initializer = keras.initializers.get(name)
    assert type(initializer) in CLASSES
    assert type(ki.get(name)) is type(initializer)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_three_spellings_resolve_unless_keras_owns_the_bare_name(cls):
    assert type(keras.initializers.get(registered_name(cls))) is cls
    for bare in (cls.__name__, snake_case(cls.__name__)):
        resolved = type(keras.initializers.get(bare))
        if bare in KERAS_TABLE:
            assert resolved is KERAS_TABLE[bare]
        else:
            assert resolved is cls


@pytest.mark.parametrize("name", sorted(KERAS_TABLE))
def test_no_keras_initializer_name_is_shadowed(name):
    keras_class = KERAS_TABLE[name]
    assert keras_class.__module__.startswith("keras."), keras_class  # not ours
    # Constant is the one built-in without a default argument.
    config = {"value": 1.0} if keras_class is keras.initializers.Constant else {}
    identifier = {"class_name": name, "config": config}
    assert type(keras.initializers.get(identifier)) is keras_class
    assert type(ki.get(identifier)) is keras_class
    assert keras.saving.get_registered_object(name) in (None, keras_class)


def test_no_bare_name_shadows_any_keras_namespace():
    custom = keras.saving.get_custom_objects()
    ours = [name for name, obj in custom.items() if obj in CLASSES and ">" not in name]
    assert ours, "no bare names registered"
    for namespace in (
        keras.layers,
        keras.losses,
        keras.metrics,
        keras.activations,
        keras.optimizers,
        keras.regularizers,
        keras.constraints,
        keras.initializers,
    ):
        for name in ours:
            assert not hasattr(namespace, name), f"{name} shadows {namespace.__name__}.{name}"


def test_get_passes_everything_else_through():
    instance = ki.SmallNormal(seed=1)
    assert ki.get(instance) is instance
    assert ki.get(None) is None
    assert type(ki.get(ki.XavierUniform)) is ki.XavierUniform
    config = keras.initializers.serialize(ki.KaimingNormal(a=0.2, seed=3))
    rebuilt = ki.get(config)
    assert type(rebuilt) is ki.KaimingNormal and rebuilt.get_config() == config["config"]


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError) as info:
        ki.get("sigmoid_normall")
    assert str(info.value) == (
        "Unknown initializer. Did you mean 'sigmoid_normal'? keras_inits.names() lists "
        "ours, keras.initializers Keras's. Received: identifier='sigmoid_normall'"
    )


def test_unknown_name_without_a_close_match_still_says_what_it_got():
    with pytest.raises(ValueError, match=r"^Unknown initializer\. keras_inits.*identifier='zzz'$"):
        ki.get("zzz")


def test_keras_names_get_suggested_too():
    with pytest.raises(ValueError, match="Did you mean 'glorot_normal'"):
        ki.get("glorot_normall")


def test_suggestions_come_from_initializer_names_only():
    for typo, suggestion in (("unifrom", "'uniform'"), ("glorot_normall", "'glorot_normal'")):
        with pytest.raises(ValueError, match=f"Did you mean {suggestion}"):
            ki.get(typo)
    for helper in ("gett", "serialise"):  # keras.initializers' helpers are no initializers
        with pytest.raises(ValueError) as info:
            ki.get(helper)
        assert "Did you mean" not in str(info.value)


@pytest.mark.parametrize(
    "identifier, error, message",
    [
        (
            {"class_name": "XavierNormal", "config": {"gain": -1}},
            ValueError,
            "`gain` must be a finite number > 0. Received: gain=-1",
        ),
        (
            {"class_name": "keras_inits>KaimingNormal", "config": {"a": 1e200}},
            ValueError,
            "`a` must be a finite number whose square is finite too (|a| < 1.341e+154). "
            "Received: a=1e+200",
        ),
        (  # Keras would wrap this one in its own long TypeError
            {"class_name": "sigmoid_normal", "config": {"seed": "x"}},
            TypeError,
            "`seed` must be an int, a keras.random.SeedGenerator or None. Received: seed='x'",
        ),
        (
            {"class_name": "SigmoidNormal", "config": {"scale": 2.0}},
            ValueError,
            "`config` has key(s) that SigmoidNormal does not take: ('scale',). Allowed keys: "
            "('input_axes', 'output_axes', 'seed'). Received: config={'scale': 2.0}",
        ),
    ],
    ids=["bare_name", "registered_name", "snake_case_type", "unknown_key"],
)
def test_a_known_class_with_a_bad_argument_raises_its_own_error(identifier, error, message):
    assert_error(lambda: ki.get(identifier), error, message)


def test_a_keras_class_with_an_unknown_key_names_the_key():
    # Python's "unexpected keyword argument 'gain'" named no argument (hypothesis found it).
    identifier = {"class_name": "VarianceScaling", "config": {"gain": 0.0}}
    allowed = tuple(sorted(keras.initializers.VarianceScaling().get_config()))
    assert_error(
        lambda: ki.get(identifier),
        ValueError,
        f"`config` has key(s) that VarianceScaling does not take: ('gain',). Allowed keys: "
        f"{allowed}. Received: config={{'gain': 0.0}}",
    )


def test_a_keras_class_with_a_bad_argument_raises_keras_error_not_unknown():
    with pytest.raises(ValueError) as info:
        ki.get({"class_name": "GlorotNormal", "config": {"seed": "x"}})
    assert "Unknown initializer" not in str(info.value) and "seed" in str(info.value)


def test_an_unknown_class_in_a_dict_is_still_unknown():
    assert_error(
        lambda: ki.get({"class_name": "Xavier_Normal", "config": {}}),
        ValueError,
        "Unknown initializer. Did you mean 'xavier_normal'?",
        prefix=True,
    )


ALLOWED_IDENTIFIERS = (
    "a string name, a config dict, an initializer class or instance, a callable "
    "(shape, dtype=None), a tensor or None"
)


@pytest.mark.parametrize(
    "identifier", [3, [1], 3.5, True, False, (1, 2), {1, 2}, b"sigmoid_normal", 1j, object]
)
def test_a_type_no_initializer_is_named_by_is_refused_in_our_words(identifier):
    if identifier is object:  # a class is called, as Keras does: object() is no initializer
        identifier = object()
    assert_error(
        lambda: ki.get(identifier),
        TypeError,
        f"`identifier` must be {ALLOWED_IDENTIFIERS}, not {type(identifier).__name__}. "
        f"Received: identifier={identifier!r}",
    )


@pytest.mark.parametrize("initializer", [3, [1], 3.5, True])
def test_a_nested_initializer_of_the_wrong_type_is_refused_in_our_words(initializer):
    assert_error(
        lambda: ki.ICNR(initializer=initializer),
        TypeError,
        f"`initializer` must be {ALLOWED_IDENTIFIERS}, not {type(initializer).__name__}. "
        f"Received: initializer={initializer!r}",
    )


def test_a_nested_initializer_name_or_config_is_refused_in_our_words():
    assert_error(
        lambda: ki.ICNR(initializer="kaiming_normall"),
        ValueError,
        "Unknown initializer. Did you mean 'kaiming_normal'? keras_inits.names() lists ours, "
        "keras.initializers Keras's. Received: initializer='kaiming_normall'",
    )
    assert_error(
        lambda: ki.ICNR(initializer={"class_name": "XavierNormal", "config": {"gain": 0}}),
        ValueError,
        "`gain` must be a finite number > 0. Received: gain=0",
    )


def test_get_and_keras_agree_on_what_resolves():
    # Everything Keras takes, get takes and returns the same kind of thing.
    tensor = keras.ops.ones((2, 2))
    assert to_numpy(ki.get(tensor)((2, 2), "float32")).tolist() == [[1, 1], [1, 1]]
    assert ki.get(np.float32(0.5)) is not None
    function = lambda shape, dtype=None: keras.ops.zeros(shape, dtype)  # noqa: E731
    assert ki.get(function) is function


def test_resolve_names_come_from_keras_table_of_registered_objects():
    # _resolve reads our names from Keras's registry, not from the class list.
    from keras_inits._resolve import our_names

    assert our_names() == ki.names()


@pytest.mark.parametrize(
    "identifier",
    ["keras_inits>ResidualScale", {"class_name": "keras_inits>ResidualScale", "config": {}}],
)
def test_a_registered_layer_is_no_initializer(identifier):
    # The package registers one layer (ResidualScale); Keras's get() would hand it back.
    message = (
        "`identifier` names a ResidualScale, a layer, not an initializer. keras_inits.names() "
        f"lists ours, keras.initializers Keras's. Received: identifier={identifier!r}"
    )
    assert_error(lambda: ki.get(identifier), ValueError, message)
    assert "residual_scale" not in ki.names()
