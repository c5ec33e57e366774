"""deferred() and materialize(): build without drawing, then load or draw each weight once.

Every test runs on the backend of its session (tensorflow, jax, torch); the
sharded one runs once, from the JAX session, in a process with 8 virtual
CPU devices.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from helpers import assert_error, assert_matches, import_keras_hub, to_numpy
from scipy import stats

import keras_inits as ki
from keras_inits.model import MaterializeReport

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BACKEND = keras.backend.backend()
X = np.random.default_rng(0).normal(size=(5, 8)).astype("float32")
DEFERRED = "Variable 'body/kernel' is deferred: it was built inside `keras_inits.deferred()`"


class Counting(keras.initializers.Initializer):
    """GlorotUniform(seed=1) that counts the draws it makes outside shape inference."""

    calls = 0

    def __call__(self, shape, dtype=None):
        type(self).calls += 1
        return keras.initializers.GlorotUniform(seed=1)(shape, dtype)


def build(head_units=4, head_name="head", body_units=16, initializer="glorot_uniform"):
    inputs = keras.Input((8,))
    x = keras.layers.Dense(
        body_units, activation="tanh", kernel_initializer=initializer, name="body"
    )(inputs)
    x = keras.layers.LayerNormalization(name="norm")(x)
    outputs = keras.layers.Dense(head_units, name=head_name)(x)
    return keras.Model(inputs, outputs, name="net")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A normally built model, its predictions and its weights as .weights.h5 and .keras."""
    folder = tmp_path_factory.mktemp("saved")
    keras.utils.set_random_seed(7)
    model = build()
    model.save_weights(str(folder / "net.weights.h5"))
    model.save(str(folder / "net.keras"))
    return {
        "h5": str(folder / "net.weights.h5"),
        "keras": str(folder / "net.keras"),
        "mapping": {v.path: v.numpy() for v in model.weights},
        "y": to_numpy(model(X)),
        "weights": [to_numpy(v) for v in model.weights],
    }


def deferred_build(**kwargs):
    with ki.deferred():
        return build(**kwargs)


def values(model):
    return [to_numpy(v) for v in model.weights]


def still_deferred(model):
    """Every weight of ``model`` still raises the deferred error when read."""
    for variable in model.weights:
        with pytest.raises(ValueError, match="is deferred"):
            variable.numpy()
    return True


# ----- the deferred build -----------------------------------------------------------


def test_no_initializer_runs_inside_and_the_variables_have_shapes_and_dtypes():
    Counting.calls = 0
    with ki.deferred():
        model = build(initializer=Counting())
    assert Counting.calls == 0  # shape inference used zeros, not the initializer
    kernel = model.get_layer("body").kernel
    assert tuple(kernel.shape) == (8, 16) and kernel.dtype == "float32"
    assert model.count_params() == 8 * 16 + 16 + 2 * 16 + 16 * 4 + 4
    report = ki.materialize(model)
    assert Counting.calls == 1  # drawn once, by materialize
    assert "body/kernel" in report.drawn


@pytest.mark.parametrize(
    "use",
    [
        lambda m: m(X),
        lambda m: m.predict(X, verbose=0),
        lambda m: m.get_weights(),
        lambda m: m.get_layer("body").kernel.value,
        lambda m: m.get_layer("body").kernel.numpy(),
        lambda m: keras.ops.convert_to_numpy(m.get_layer("body").kernel + 1.0),
    ],
    ids=["call", "predict", "get_weights", "value", "numpy", "op"],
)
def test_use_before_materialize_raises_and_says_what_to_do(use):
    model = deferred_build()
    with pytest.raises(ValueError, match="is deferred") as caught:
        use(model)
    text = str(caught.value)
    assert DEFERRED in text and "Call `keras_inits.materialize(model)` first" in text
    assert still_deferred(model)  # no draw happened behind the error


def test_save_before_materialize_raises(tmp_path):
    model = deferred_build()
    with pytest.raises(ValueError, match="is deferred"):
        model.save_weights(str(tmp_path / "x.weights.h5"))


def test_a_later_stateless_scope_never_draws_deferred_variables():
    """Keras initializes pending variables when a top-level StatelessScope closes; not ours."""
    model = deferred_build()
    with keras.StatelessScope():
        pass
    assert still_deferred(model)


def test_an_error_inside_the_scope_leaves_what_was_built_deferred():
    live = keras.Variable(np.zeros(3, "float32"))
    with pytest.raises(RuntimeError, match="stop"), ki.deferred():
        model = build()
        live.assign(np.ones(3, "float32"))
        raise RuntimeError("stop")
    assert still_deferred(model)
    np.testing.assert_array_equal(to_numpy(live), np.zeros(3))  # the failed block's assign: dropped


def test_an_assignment_to_a_live_variable_inside_the_scope_is_applied_when_it_closes():
    live = keras.Variable(np.zeros(3, "float32"))
    with ki.deferred():
        live.assign(np.ones(3, "float32"))
    np.testing.assert_array_equal(to_numpy(live), np.ones(3))


# ----- materialize: loading, bitwise -----------------------------------------------


@pytest.mark.parametrize("kind", ["h5", "keras", "mapping"])
def test_materialize_from_a_checkpoint_predicts_bitwise_as_the_saved_model(saved, kind):
    model = deferred_build()
    report = ki.materialize(model, saved[kind])
    assert report == MaterializeReport(
        loaded=tuple(v.path for v in model.weights), drawn=(), unmatched=()
    )
    for value, expected in zip(values(model), saved["weights"], strict=True):
        np.testing.assert_array_equal(value, expected)
    np.testing.assert_array_equal(to_numpy(model(X)), saved["y"])
    # A second materialize finds nothing deferred: it loads as load_weights would.
    again = ki.materialize(model, saved[kind])
    assert again.drawn == () and len(again.loaded) == len(model.weights)


def test_plain_load_weights_after_the_scope_loads_on_every_backend(saved):
    """Keras alone: TensorFlow fails, torch writes into a throwaway placeholder."""
    model = deferred_build()
    model.load_weights(saved["h5"])
    np.testing.assert_array_equal(to_numpy(model(X)), saved["y"])
    assert ki.materialize(model).drawn == ()  # nothing left deferred


def test_materialize_takes_a_pathlib_path(saved):
    import pathlib

    model = deferred_build()
    ki.materialize(model, pathlib.Path(saved["h5"]))
    np.testing.assert_array_equal(to_numpy(model(X)), saved["y"])


def test_the_model_trains_after_materialize(saved):
    model = deferred_build()
    ki.materialize(model, saved["h5"])
    model.compile(optimizer="sgd", loss="mse")
    before = to_numpy(model.get_layer("body").kernel)
    model.fit(X, np.zeros((5, 4), "float32"), epochs=1, verbose=0)
    assert not np.array_equal(to_numpy(model.get_layer("body").kernel), before)


# ----- materialize: drawing ------------------------------------------------------


def test_partial_load_then_the_head_is_drawn_with_its_initializers_statistics(saved):
    """Backbone from the checkpoint, a new 512 x 256 head drawn N(0, 2 / 512)."""
    head = keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")
    with ki.deferred():
        inputs = keras.Input((8,))
        x = keras.layers.Dense(16, activation="tanh", name="body")(inputs)
        x = keras.layers.LayerNormalization(name="norm")(x)
        x = keras.layers.Dense(512, name="wide")(x)
        outputs = keras.layers.Dense(256, kernel_initializer=head, name="new_head")(x)
        model = keras.Model(inputs, outputs)
    backbone = {k: v for k, v in saved["mapping"].items() if k.startswith(("body", "norm"))}
    report = ki.materialize(model, backbone, seed=3)
    assert report.loaded == ("body/kernel", "body/bias", "norm/gamma", "norm/beta")
    assert report.drawn == ("wide/kernel", "wide/bias", "new_head/kernel", "new_head/bias")
    np.testing.assert_array_equal(to_numpy(model.get_layer("body").kernel), saved["weights"][0])
    kernel = to_numpy(model.get_layer("new_head").kernel)
    assert_matches(kernel, stats.norm(scale=np.sqrt(2.0 / 512)))
    np.testing.assert_array_equal(to_numpy(model.get_layer("new_head").bias), np.zeros(256))


def test_an_int_seed_gives_reproducible_draws_and_another_seed_other_values():
    first, second, other = deferred_build(), deferred_build(), deferred_build()
    ki.materialize(first, seed=11)
    ki.materialize(second, seed=11)
    ki.materialize(other, seed=12)
    for a, b in zip(values(first), values(second), strict=True):
        np.testing.assert_array_equal(a, b)
    kernel = first.get_layer("body").kernel
    assert not np.array_equal(to_numpy(kernel), to_numpy(other.get_layer("body").kernel))


def test_seed_none_draws_what_a_normal_build_draws():
    """Keras fixes an unseeded initializer's seed when the layer is made: same values."""
    keras.utils.set_random_seed(5)
    normal = build()
    keras.utils.set_random_seed(5)
    model = deferred_build()
    report = ki.materialize(model)
    assert report.drawn == tuple(v.path for v in model.weights)
    for a, b in zip(values(model), values(normal), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_sublayer_is_materialized_alone_and_the_rest_stays_deferred(saved):
    model = deferred_build()
    body = model.get_layer("body")
    report = ki.materialize(body, {"body/kernel": saved["mapping"]["body/kernel"]}, seed=0)
    assert report.loaded == ("body/kernel",) and report.drawn == ("body/bias",)
    with pytest.raises(ValueError, match="'norm/gamma' is deferred"):
        model(X)
    report = ki.materialize(model, seed=0)
    assert report.drawn == ("norm/gamma", "norm/beta", "head/kernel", "head/bias")


def test_a_backbone_from_its_own_checkpoint_then_the_head_drawn(tmp_path):
    def backbone():
        inputs = keras.Input((8,))
        x = keras.layers.Dense(16, activation="tanh", name="body")(inputs)
        return keras.Model(inputs, keras.layers.LayerNormalization(name="norm")(x), name="bone")

    def classifier():
        inputs = keras.Input((8,))
        outputs = keras.layers.Dense(3, name="new_head")(backbone()(inputs))
        return keras.Model(inputs, outputs, name="classifier")

    trained = backbone()
    trained.save_weights(str(tmp_path / "bone.weights.h5"))
    with ki.deferred():
        model = classifier()
    bone = model.get_layer("bone")
    report = ki.materialize(bone, str(tmp_path / "bone.weights.h5"))
    assert report.loaded == ("body/kernel", "body/bias", "norm/gamma", "norm/beta")
    np.testing.assert_array_equal(to_numpy(bone(X)), to_numpy(trained(X)))
    with pytest.raises(ValueError, match="'new_head/kernel' is deferred"):
        model(X)
    assert ki.materialize(model, seed=0).drawn == ("new_head/kernel", "new_head/bias")
    assert to_numpy(model(X)).shape == (5, 3)


# ----- bad input: clear errors, nothing half loaded -------------------------------------


def test_nested_scopes_are_refused():
    with ki.deferred():
        assert_error(
            lambda: ki.deferred().__enter__(),
            ValueError,
            "`keras_inits.deferred()` cannot open inside another `deferred()` scope or a "
            "`keras.StatelessScope`: variables created there are deferred already. "
            "Received: an open stateless scope",
        )


def test_materialize_inside_the_scope_is_refused():
    with ki.deferred():
        model = build()
        assert_error(
            lambda: ki.materialize(model),
            ValueError,
            "`keras_inits.materialize` must be called after the `deferred()` scope closes. "
            "Received: a call inside a stateless scope",
        )


def build_deeper():
    """``build()`` with one more Dense layer: Keras names file entries by class and order."""
    inputs = keras.Input((8,))
    x = keras.layers.Dense(16, activation="tanh", name="body")(inputs)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.Dense(4, name="head")(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="extra")(x), name="deeper")


def test_a_checkpoint_of_a_larger_model_loads_nothing(tmp_path):
    build_deeper().save_weights(str(tmp_path / "deeper.weights.h5"))
    model = deferred_build()
    with pytest.raises(ValueError) as caught:
        ki.materialize(model, str(tmp_path / "deeper.weights.h5"))
    text = str(caught.value)
    assert text.startswith("`weights` must match the variables of 'net': 2 checkpoint entries")
    assert "('layers/dense_2/vars/0', 'layers/dense_2/vars/1')" in text
    assert "Nothing was loaded" in text
    assert still_deferred(model)
    # allow_unmatched loads what fits and reports the rest.
    report = ki.materialize(model, str(tmp_path / "deeper.weights.h5"), allow_unmatched=True)
    assert report.unmatched == ("layers/dense_2/vars/0", "layers/dense_2/vars/1")
    assert len(report.loaded) == 6


def test_a_checkpoint_of_a_smaller_model_loads_nothing(tmp_path):
    build().save_weights(str(tmp_path / "net.weights.h5"))
    with ki.deferred():
        model = build_deeper()
    with pytest.raises(ValueError) as caught:
        ki.materialize(model, str(tmp_path / "net.weights.h5"))
    text = str(caught.value)
    assert text.startswith("`weights` must be a checkpoint of this architecture ('deeper')")
    assert "expected 2 variables, but received 0 variables" in text
    assert still_deferred(model)


def test_a_mapping_with_other_names_loads_nothing(saved):
    model = deferred_build()
    renamed = {k.replace("head/", "classifier/"): v for k, v in saved["mapping"].items()}
    assert_error(
        lambda: ki.materialize(model, renamed),
        ValueError,
        "`weights` must match the variables of 'net': 2 checkpoint entries match none "
        "('classifier/kernel', 'classifier/bias'). Nothing was loaded; pass "
        "`allow_unmatched=True` to load the rest. Received: weights=a mapping of 6 arrays",
    )
    assert still_deferred(model)


def test_a_checkpoint_with_other_shapes_loads_nothing(tmp_path, saved):
    other = build(body_units=32)
    other.save_weights(str(tmp_path / "wide.weights.h5"))
    model = deferred_build()
    with pytest.raises(ValueError) as caught:
        ki.materialize(model, str(tmp_path / "wide.weights.h5"))
    text = str(caught.value)
    assert text.startswith("`weights` must be a checkpoint of this architecture ('net')")
    assert "shape (8, 32) for variable 'body/kernel' of shape (8, 16)" in text
    assert still_deferred(model)
    mapping = {**saved["mapping"], "head/kernel": np.zeros((3, 3), "float32")}
    assert_error(
        lambda: ki.materialize(model, mapping),
        ValueError,
        "`weights` must match the model's shapes: the mapping has shape (3, 3) for variable "
        "'head/kernel' of shape (16, 4). Nothing was loaded. "
        "Received: weights['head/kernel'].shape=(3, 3)",
    )
    assert still_deferred(model)


def test_a_mapping_entry_that_matches_nothing_loads_nothing(saved):
    model = deferred_build()
    mapping = {**saved["mapping"], "extra/kernel": np.zeros((2, 2))}
    assert_error(
        lambda: ki.materialize(model, mapping),
        ValueError,
        "`weights` must match the variables of 'net': 1 checkpoint entries match none "
        "('extra/kernel'). Nothing was loaded; pass `allow_unmatched=True` to load the rest. "
        "Received: weights=a mapping of 7 arrays",
    )
    assert still_deferred(model)


def test_a_failing_draw_undoes_every_variable_set_before_it(saved):
    class Broken(keras.initializers.Initializer):
        def __call__(self, shape, dtype=None):
            raise RuntimeError("broken initializer")

    with ki.deferred():
        inputs = keras.Input((8,))
        x = keras.layers.Dense(16, name="body")(inputs)
        outputs = keras.layers.Dense(4, kernel_initializer=Broken(), name="head")(x)
        model = keras.Model(inputs, outputs)
    with pytest.raises(RuntimeError, match="broken initializer"):
        ki.materialize(model, {"body/kernel": saved["mapping"]["body/kernel"]})
    assert still_deferred(model)


def test_a_model_that_is_not_deferred(saved):
    """Without weights: a no-op report. With weights: loaded as load_weights loads."""
    keras.utils.set_random_seed(1)
    model = build()
    before = values(model)
    assert ki.materialize(model) == MaterializeReport(loaded=(), drawn=(), unmatched=())
    for a, b in zip(values(model), before, strict=True):
        np.testing.assert_array_equal(a, b)
    report = ki.materialize(model, saved["h5"])
    assert report.drawn == () and len(report.loaded) == 6
    np.testing.assert_array_equal(to_numpy(model(X)), saved["y"])


def test_a_model_built_partly_outside_the_scope(saved):
    """Layers built outside keep their values; only what was built inside is deferred."""
    body = keras.layers.Dense(16, activation="tanh", name="body")
    body.build((None, 8))
    with ki.deferred():
        inputs = keras.Input((8,))
        x = keras.layers.LayerNormalization(name="norm")(body(inputs))
        model = keras.Model(inputs, keras.layers.Dense(4, name="head")(x), name="net")
    assert body.kernel._initializer is None  # drawn when built, outside the scope
    with pytest.raises(ValueError, match="'norm/gamma' is deferred"):
        model(X)
    report = ki.materialize(model, saved["h5"])
    assert set(report.loaded) == {v.path for v in model.weights}
    np.testing.assert_array_equal(to_numpy(model(X)), saved["y"])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"model": "net"},
            TypeError,
            "`model` must be a Keras model or layer. Received: model=str",
        ),
        (
            {"weights": 3},
            TypeError,
            "`weights` must be a .keras or .weights.h5 path, a mapping of arrays by variable "
            "path, or None. Received: weights=int",
        ),
        (
            {"weights": "net.h5"},
            ValueError,
            "`weights` must be a path ending in one of ('.keras', '.weights.h5'), a mapping of "
            "arrays by variable path, or None. Received: weights='net.h5'",
        ),
        (
            {"weights": "missing.weights.h5"},
            FileNotFoundError,
            "`weights` must be an existing .keras or .weights.h5 file. "
            "Received: weights='missing.weights.h5'",
        ),
        (
            {"seed": 1.5},
            TypeError,
            "`seed` must be an int, a keras.random.SeedGenerator or None. Received: seed=1.5",
        ),
        (
            {"allow_unmatched": 1},
            TypeError,
            "`allow_unmatched` must be a bool. Received: allow_unmatched=1",
        ),
    ],
    ids=["model", "weights-type", "weights-suffix", "weights-missing", "seed", "allow_unmatched"],
)
def test_argument_errors(kwargs, error, message):
    model = deferred_build()
    arguments = {"model": model, **kwargs}
    assert_error(lambda: ki.materialize(**arguments), error, message)
    assert still_deferred(model)


def test_a_keras_file_that_is_not_an_archive_is_refused(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_text("not a zip")
    model = deferred_build()
    assert_error(
        lambda: ki.materialize(model, str(path)),
        ValueError,
        f"`weights` must be a valid .keras archive. Received: weights={str(path)!r}",
    )
    assert still_deferred(model)


def test_an_unbuilt_model_is_refused():
    with ki.deferred():
        model = keras.Sequential([keras.layers.Dense(3)], name="lazy")
    assert_error(
        lambda: ki.materialize(model),
        ValueError,
        "`model` must be built (inside `keras_inits.deferred()`: give it a `keras.Input` or "
        "call `model.build(input_shape)`). Received: model='lazy' (not built)",
    )


def test_tensorflow_materializes_under_the_strategy_it_was_built_under():
    if BACKEND != "tensorflow":
        pytest.skip("tf.distribute: TensorFlow only (JAX's layouts are tested below)")
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope(), ki.deferred():
        model = build()
    ki.materialize(model, seed=0)  # outside the strategy's scope
    kinds = {type(v.value).__name__ for v in model.weights}
    assert kinds == {"MirroredVariable"}


# ----- keras-hub: save_to_preset, then a deferred from_preset --------------------------


def test_keras_hub_preset_round_trip(tmp_path):
    keras_hub = import_keras_hub()

    def backbone():
        return keras_hub.models.GPT2Backbone(
            vocabulary_size=64,
            num_layers=2,
            num_heads=2,
            hidden_dim=16,
            intermediate_dim=32,
            max_sequence_length=16,
        )

    keras.utils.set_random_seed(0)
    reference = backbone()
    reference.save_to_preset(str(tmp_path))
    inputs = {
        "token_ids": np.arange(8).reshape(1, 8) % 64,
        "padding_mask": np.ones((1, 8), "int32"),
    }
    expected = to_numpy(reference(inputs))
    saved = {v.path for v in reference.weights}

    # from_preset on the local folder, inside the scope: its load_weights is kept for materialize.
    with ki.deferred():
        loaded = keras_hub.models.Backbone.from_preset(str(tmp_path))
    with pytest.raises(ValueError, match="is deferred"):
        loaded(inputs)
    report = ki.materialize(loaded)
    assert set(report.loaded) == saved
    assert all("seed_generator" in path for path in report.drawn)  # not in the file
    np.testing.assert_array_equal(to_numpy(loaded(inputs)), expected)

    # The constructor inside the scope, the preset's weights file given to materialize.
    with ki.deferred():
        built = backbone()
    report = ki.materialize(built, str(tmp_path / "model.weights.h5"))
    assert set(report.loaded) == saved
    np.testing.assert_array_equal(to_numpy(built(inputs)), expected)


# ----- JAX, 8 virtual devices: placed with its layout, never whole on one device -------

SHARDED = textwrap.dedent(
    """
    import gc, json, math, os, sys
    os.environ["KERAS_BACKEND"] = "jax"
    import jax, keras, numpy as np
    import keras_inits as ki
    module = sys.modules["keras_inits.model._deferred"]
    if sys.argv[2] == "no":  # as on Keras 3.14: no layout handed to the initializers
        sys.modules["keras_inits._compat"].keras_passes_layout = lambda: False

    def build():
        inputs = keras.Input((256,))
        x = keras.layers.Dense(1024, kernel_initializer=ki.KaimingNormal(seed=1), name="up")(inputs)
        x = keras.layers.Dense(512, kernel_initializer=ki.XavierUniform(seed=2), name="down")(x)
        return keras.Model(inputs, keras.layers.Dense(64, name="out")(x))

    devices = jax.devices()
    mesh = keras.distribution.DeviceMesh((2, 4), ("data", "model"), devices=devices)
    layouts = keras.distribution.LayoutMap(mesh)
    layouts[".*kernel"] = (None, "model")
    layouts[".*bias"] = ("model",)
    x = np.random.default_rng(0).normal(size=(8, 256)).astype("float32")
    keras.utils.set_random_seed(0)
    reference = build()  # one device, the checkpoint
    reference.save_weights(sys.argv[1])
    expected = np.asarray(reference(x))
    keras.distribution.set_distribution(keras.distribution.ModelParallel(layout_map=layouts))

    peaks = [0] * len(devices)  # bytes on each device, sampled at every placement

    def shard_bytes(array):
        # From the sharding, not from shard.data (which makes a new array of each shard).
        return math.prod(array.sharding.shard_shape(array.shape)) * array.dtype.itemsize

    def live():
        per_device = [0] * len(devices)
        for array in jax.live_arrays():
            for device in array.sharding.device_set:
                per_device[devices.index(device)] += shard_bytes(array)
        return per_device

    baseline = [0] * len(devices)

    def sample():
        for i, size in enumerate(live()):
            peaks[i] = max(peaks[i], size - baseline[i])

    def sampled(fn):
        def wrapper(*args, **kwargs):
            sample()
            result = fn(*args, **kwargs)
            sample()
            return result
        return wrapper

    jax.device_put = sampled(jax.device_put)  # catches a whole copy alive when placed
    module._set_value = sampled(module._set_value)
    module._draw = sampled(module._draw)

    report = {"shardings": [], "mismatches": []}
    for how in ("load", "draw"):
        with ki.deferred():
            model = build()
        gc.collect()
        peaks[:] = [0] * len(devices)
        baseline[:] = live()
        if how == "load":
            result = ki.materialize(model, sys.argv[1])
            report["loaded"] = len(result.loaded)
        else:
            result = ki.materialize(model)
            report["drawn"] = len(result.drawn)
        final = [0] * len(devices)
        for variable in model.weights:
            value = variable.value
            spec = tuple(variable._layout.axes)
            got = tuple(value.sharding.spec)
            if got + (None,) * (len(spec) - len(got)) != spec:
                report["shardings"].append(f"{how} {variable.path} {value.sharding.spec}")
            for device in value.sharding.device_set:
                final[devices.index(device)] += shard_bytes(value)
        report[how + "_peak"] = max(peaks)
        report[how + "_shards"] = max(final)
        references = {v.path: np.asarray(v.value) for v in reference.weights}
        for variable in model.weights:
            # Loaded: every value exact. Drawn: the seeded kernels are one stream, sharded or not.
            if how == "load" or variable.path in ("up/kernel", "down/kernel"):
                if not np.array_equal(np.asarray(variable.value), references[variable.path]):
                    report["mismatches"].append(f"{how} {variable.path}")
        if how == "load":  # a sharded matmul may sum in another order: close, not bitwise
            report["max_difference"] = float(np.max(np.abs(np.asarray(model(x)) - expected)))
        del model
    print("REPORT " + json.dumps(report))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("keras_passes_layout", ["installed", "no"])
def test_sharded_materialize_places_each_value_with_its_layout(tmp_path, keras_passes_layout):
    if BACKEND != "jax":
        pytest.skip("runs once per `make test`, from the JAX session (8 virtual JAX devices)")
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    done = subprocess.run(
        [sys.executable, "-c", SHARDED, str(tmp_path / "ref.weights.h5"), keras_passes_layout],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("REPORT "))
    report = json.loads(line.removeprefix("REPORT "))
    assert report["loaded"] == 6 and report["drawn"] == 6
    assert report["shardings"] == [] and report["mismatches"] == []
    assert report["max_difference"] < 1e-5
    for how in ("load", "draw"):
        # The most any device held at any placement, against its share of the model.
        assert report[how + "_peak"] <= 1.1 * report[how + "_shards"], report
