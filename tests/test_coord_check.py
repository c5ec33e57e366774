"""coord_check against a hand computation, its argument errors, and muP's "Done when" (issue 20).

The width sweep trains three architectures (an MLP, a CNN, a pre-LN
transformer) for three Adam steps at widths 64 to 1024: under muP every
layer's mean |coordinate| must stay within 1.5x of width 64's, while under
the standard parametrization the logits must grow past 3x, the control that
shows the check can fail.
"""

import re
import sys

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_inits._extras import MissingExtraError
from keras_inits.diagnostics import CoordCheck, coord_check, plot_coord_check

WIDTHS = [64, 128, 256, 512, 1024]
LEARNING_RATE = 1e-2  # Adam's, for all three models
STEPS = 3
CLASSES = 10


def build_mlp(width):
    """32 -> width -> width -> 10, ReLU."""
    return keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(CLASSES),
        ]
    )


def build_cnn(width):
    """8x8x3 -> two 3x3 ReLU convolutions of `width` channels -> global average -> 10."""
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(width, 3, activation="relu"),
            keras.layers.Conv2D(width, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(CLASSES),
        ]
    )


def build_transformer(width, tokens=8, features=16, blocks=2):
    """Two pre-LN blocks (4 heads of width/4) on continuous tokens, mean-pooled into 10 logits."""
    inputs = keras.Input((tokens, features))
    h = keras.layers.Dense(width)(inputs)
    for _ in range(blocks):
        a = keras.layers.LayerNormalization()(h)
        a = keras.layers.MultiHeadAttention(num_heads=4, key_dim=width // 4)(a, a)
        h = keras.layers.Add()([h, a])
        m = keras.layers.LayerNormalization()(h)
        m = keras.layers.Dense(4 * width, activation="gelu")(m)
        m = keras.layers.Dense(width)(m)
        h = keras.layers.Add()([h, m])
    h = keras.layers.LayerNormalization()(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(inputs, keras.layers.Dense(CLASSES)(h))


def data(shape, batch, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *shape)).astype("float32")
    y = rng.integers(0, CLASSES, size=(batch,)).astype("int32")
    return x, y


MODELS = {
    "mlp": (build_mlp, (32,), 8),
    "cnn": (build_cnn, (8, 8, 3), 8),
    "transformer": (build_transformer, (8, 16), 4),
}


def sweep(name, parametrization):
    build, shape, batch = MODELS[name]
    x, y = data(shape, batch)
    return coord_check(
        build,
        WIDTHS,
        x,
        y,
        steps=STEPS,
        optimizer="adam",
        learning_rate=LEARNING_RATE,
        parametrization=parametrization,
    )


@pytest.mark.slow  # trains five widths of each model
@pytest.mark.parametrize("name", list(MODELS))
def test_standard_parametrization_logits_grow_with_width(name):
    check = sweep(name, "standard")
    assert check.values.shape == (len(WIDTHS), STEPS + 1, len(check.layers))
    assert np.all(np.isfinite(check.values)), check.table()
    logits = check.ratio()[check.layers[-1]]
    assert logits > 3.0, check.table()


@pytest.mark.slow  # trains five widths of each model
@pytest.mark.parametrize("name", list(MODELS))
def test_mup_keeps_every_layer_within_1_5x_of_width_64(name):
    check = sweep(name, "mup")
    assert np.all(np.isfinite(check.values)), check.table()
    off = {layer: r for layer, r in check.ratio().items() if not 1 / 1.5 <= r <= 1.5}
    assert not off, f"{off}\n{check.table()}"


# --- the statistic, by hand -------------------------------------------------------------------

X_HAND = np.array([[1.0, 2.0], [-3.0, -1.0]], dtype="float32")
Y_HAND = np.array([[1.0], [0.0]], dtype="float32")


def build_hand(width):
    """2 -> width (ReLU, every weight 0.5) -> 1 (every weight 0.25), zero biases, named."""
    return keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(
                width,
                activation="relu",
                kernel_initializer=keras.initializers.Constant(0.5),
                name="hidden",
            ),
            keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(0.25), name="out"),
        ]
    )


def hand_sgd(width, learning_rate, steps):
    """The same network in NumPy: mean |h|, mean |p| and the MSE loss, step by step."""
    w1, b1 = np.full((2, width), 0.5), np.zeros(width)
    w2, b2 = np.full((width, 1), 0.25), np.zeros(1)
    x, y = X_HAND.astype(np.float64), Y_HAND.astype(np.float64)
    records, losses = [], []
    for step in range(steps + 1):
        z = x @ w1 + b1
        h = np.maximum(z, 0.0)
        p = h @ w2 + b2
        records.append([np.mean(np.abs(h)), np.mean(np.abs(p))])
        if step == steps:
            break
        losses.append(np.mean((p - y) ** 2))
        dp = 2.0 * (p - y) / p.size  # Keras's MSE: the mean over the batch
        dh = (dp @ w2.T) * (z > 0)
        grads = (x.T @ dh, dh.sum(0), h.T @ dp, dp.sum(0))
        w1, b1, w2, b2 = (
            v - learning_rate * g for v, g in zip((w1, b1, w2, b2), grads, strict=True)
        )
    return np.array(records), np.array(losses)


def test_mean_abs_coordinate_matches_a_hand_computation():
    # At init, by hand: h = relu(0.5 * (x1 + x2)) = (1.5, 0) per unit, so mean |h| = 0.75;
    # p = 0.25 * 1.5 * width for the first row and 0 for the second: mean |p| = 0.1875 width.
    check = coord_check(
        build_hand,
        [4, 2],
        X_HAND,
        Y_HAND,
        steps=2,
        optimizer="sgd",
        learning_rate=0.05,
        parametrization="standard",
    )
    assert check.widths == (2, 4)  # sorted
    assert check.layers == ("hidden", "out")
    np.testing.assert_allclose(check.values[:, 0, 0], [0.75, 0.75], rtol=1e-6)
    np.testing.assert_allclose(check.values[:, 0, 1], [0.375, 0.75], rtol=1e-6)
    for row, width in enumerate(check.widths):
        records, losses = hand_sgd(width, 0.05, 2)
        np.testing.assert_allclose(check.values[row], records, rtol=1e-5)
        np.testing.assert_allclose(check.losses[row], losses, rtol=1e-5)  # MSE: float targets
    assert check.values[1, 2, 1] != check.values[1, 0, 1]  # the steps did change the output


def test_integer_targets_default_to_sparse_crossentropy_on_logits():
    def build(width):
        return keras.Sequential(
            [
                keras.Input((2,)),
                keras.layers.Dense(width, activation="relu"),
                keras.layers.Dense(3, kernel_initializer="zeros"),  # logits 0: loss log(3)
            ]
        )

    y = np.array([0, 2], dtype="int32")
    check = coord_check(build, [2, 4], X_HAND, y, steps=1, parametrization="standard")
    np.testing.assert_allclose(check.losses[:, 0], [np.log(3.0)] * 2, rtol=1e-6)
    assert check.layers == ("0:Dense", "1:Dense")  # Keras numbers unnamed layers per model


@pytest.mark.slow  # trains six models
def test_the_same_seed_gives_the_same_record():
    x, y = data((32,), 4)
    first, second = (
        coord_check(build_mlp, [8, 16], x, y, steps=1, parametrization="standard", seed=7)
        for _ in range(2)
    )
    np.testing.assert_array_equal(first.values, second.values)
    other = coord_check(build_mlp, [8, 16], x, y, steps=1, parametrization="standard", seed=8)
    assert not np.array_equal(first.values, other.values)
    with pytest.raises(ValueError, match="read-only"):
        first.values[0, 0, 0] = 1.0


# --- CoordCheck ---------------------------------------------------------------------------------


def record(values, parametrization="mup"):
    values = np.asarray(values, dtype=np.float64)
    return CoordCheck(
        parametrization=parametrization,
        widths=tuple(2 ** (6 + i) for i in range(values.shape[0])),
        steps=values.shape[1] - 1,
        layers=tuple(f"layer{i}" for i in range(values.shape[2])),
        values=values,
        losses=np.zeros((values.shape[0], values.shape[1] - 1)),
    )


def test_ratio_is_the_factor_farthest_from_one():
    # Per layer, values at widths 64, 128, 256 after the one step: grows 3x; shrinks to 0.5
    # though it grew 1.2x first; stays 0; leaves 0; not finite.
    after = [[2.0, 4.0, 0.0, 0.0, 1.0], [4.0, 4.8, 0.0, 1.0, np.inf], [6.0, 2.0, 0.0, 0.0, 1.0]]
    check = record([[[1.0] * 5, row] for row in after])
    ratios = check.ratio()
    assert list(ratios) == ["layer0", "layer1", "layer2", "layer3", "layer4"]
    assert ratios["layer0"] == pytest.approx(3.0, rel=1e-12)
    assert ratios["layer1"] == pytest.approx(0.5, rel=1e-12)
    assert ratios["layer2"] == 1.0
    assert ratios["layer3"] == np.inf
    assert np.isnan(ratios["layer4"])
    assert check.ratio(0) == dict.fromkeys(ratios, 1.0)  # at init all five are 1 at every width
    assert check.ratio(-2) == check.ratio(0)


def test_table_has_a_row_per_layer_and_a_column_per_width():
    check = record([[[1.0, 2.0], [1.0, 2.0]], [[1.0, 2.0], [1.5, 8.0]]])
    lines = check.table().splitlines()
    assert lines[0] == "mean |coord| after step 1 (mup)"
    assert lines[1].split() == ["layer", "64", "128", "ratio"]
    assert lines[2].split() == ["layer0", "1", "1.5", "1.5"]
    assert lines[3].split() == ["layer1", "2", "8", "4"]
    assert check.table(0).splitlines()[0] == "mean |coord| at init (mup)"


@pytest.mark.parametrize(
    ("step", "error", "message"),
    [
        (
            2,
            ValueError,
            "`step` must be an int in [-2, 1] (step 0 is at init, then 1 training "
            "steps). Received: step=2",
        ),
        (
            -3,
            ValueError,
            "`step` must be an int in [-2, 1] (step 0 is at init, then 1 training "
            "steps). Received: step=-3",
        ),
        (True, TypeError, "`step` must be an int in [-2, 1], not bool. Received: step=True"),
        (0.0, TypeError, "`step` must be an int in [-2, 1], not float. Received: step=0.0"),
    ],
)
def test_ratio_and_table_refuse_a_step_that_is_not_recorded(step, error, message):
    check = record([[[1.0], [1.0]], [[1.0], [2.0]]])
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        check.ratio(step)
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        check.table(step)


# --- argument errors, all before any model is built ---------------------------------------------


class Recorder:
    """build_mlp, counting its calls: an argument error must come before the first."""

    def __init__(self):
        self.calls = []

    def __call__(self, width):
        self.calls.append(width)
        return build_mlp(width)


X4, Y4 = data((32,), 4)

ARGUMENT_ERRORS = [
    (
        {"build": 3},
        TypeError,
        "`build` must be a callable `width -> keras.Model`. Received: build=3",
    ),
    (
        {"widths": 64},
        TypeError,
        "`widths` must be a sequence of at least 2 distinct ints >= 1. Received: widths=64",
    ),
    (
        {"widths": "64"},
        TypeError,
        "`widths` must be a sequence of at least 2 distinct ints >= 1. Received: widths='64'",
    ),
    (
        {"widths": [64]},
        ValueError,
        "`widths` must be a sequence of at least 2 distinct ints >= 1. Received: widths=[64]",
    ),
    (
        {"widths": [64, 64]},
        ValueError,
        "`widths` must be a sequence of at least 2 distinct ints >= 1. Received: widths=[64, 64]",
    ),
    (
        {"widths": [64, True]},
        TypeError,
        "`widths[1]` must be an int >= 1, not bool. Received: widths[1]=True",
    ),
    ({"widths": [64, 0]}, ValueError, "`widths[1]` must be an int >= 1. Received: widths[1]=0"),
    (
        {"widths": [64, 12.0]},
        TypeError,
        "`widths[1]` must be an int >= 1, not float. Received: widths[1]=12.0",
    ),
    ({"steps": True}, TypeError, "`steps` must be an int >= 1, not bool. Received: steps=True"),
    ({"steps": 0}, ValueError, "`steps` must be an int >= 1. Received: steps=0"),
    (
        {"parametrization": "ntk"},
        ValueError,
        "`parametrization` must be one of ('mup', 'standard'). Received: parametrization='ntk'",
    ),
    (
        {"parametrization": None},
        TypeError,
        "`parametrization` must be a string, one of ('mup', 'standard'). "
        "Received: parametrization=None",
    ),
    (
        {"learning_rate": 0},
        ValueError,
        "`learning_rate` must be a finite number > 0. Received: learning_rate=0",
    ),
    (
        {"learning_rate": True},
        TypeError,
        "`learning_rate` must be a real number, not bool. Received: learning_rate=True",
    ),
    ({"seed": -1}, ValueError, "`seed` must be an int in [0, 2**32). Received: seed=-1"),
    (
        {"base_width": 64, "parametrization": "standard"},
        ValueError,
        "`base_width` must be None under parametrization='standard' (only muP has a base). "
        "Received: base_width=64",
    ),
    ({"base_width": 0}, ValueError, "`base_width` must be an int >= 1. Received: base_width=0"),
    (
        {"optimizer": "adamm"},
        ValueError,
        "`optimizer` must be an optimizer name for keras.optimizers.get (such as 'adam') or an "
        "Optimizer. Received: optimizer='adamm'",
    ),
    (
        {"optimizer": 3},
        TypeError,
        "`optimizer` must be an optimizer name for keras.optimizers.get (such as 'adam') or an "
        "Optimizer. Received: optimizer=3",
    ),
    (
        {"loss": "msee"},
        ValueError,
        "`loss` must be a loss Keras knows by name, a Loss or a callable. Received: loss='msee'",
    ),
    (
        {"loss": 3},
        TypeError,
        "`loss` must be None, a loss name, a Loss or a callable. Received: loss=3",
    ),
    (
        {"y": Y4[:3]},
        ValueError,
        "`y` must hold as many samples as `x` (4). Received: y=<array of shape (3,)>",
    ),
    (
        {"x": [X4, X4[:2]]},
        ValueError,
        "`x` must hold arrays of one batch size. "
        "Received: x=[<array of shape (4, 32)>, <array of shape (2, 32)>]",
    ),
    (
        {"y": np.float32(1.0)},
        ValueError,
        "`y` must hold arrays with a batch axis. Received: y=<array of shape ()>",
    ),
]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    ARGUMENT_ERRORS,
    ids=[
        f"{error.__name__}:{'+'.join(change)}:{i}"
        for i, (change, error, _) in enumerate(ARGUMENT_ERRORS)
    ],
)
def test_arguments_are_refused_before_any_model_is_built(change, error, message):
    build = Recorder()
    arguments = {"build": build, "widths": [8, 16], "x": X4, "y": Y4, **change}
    positional = [arguments.pop(name) for name in ("build", "widths", "x", "y")]
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        coord_check(*positional, **arguments)
    assert build.calls == []


class Reached(Exception):
    """Raised by the build below: every argument passed validation."""


def reached(width):
    raise Reached(width)


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 2**33),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(-2, 5), max_size=4),
)
# The house grammar: an argument in backticks, then what it received.
GRAMMAR = re.compile(r"^`[^`]+` .*Received: \S+=", re.DOTALL)


@settings(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    widths=st.one_of(JUNK, st.lists(st.one_of(st.integers(-2, 70), JUNK), max_size=4)),
    steps=st.one_of(st.integers(-1, 4), JUNK),
    learning_rate=st.one_of(st.floats(-1, 1), JUNK),
    parametrization=st.one_of(st.sampled_from(["mup", "standard", "ntk"]), JUNK),
    base_width=st.one_of(st.integers(-1, 70), JUNK),
    seed=st.one_of(st.integers(-1, 2**32), JUNK),
    batch=st.integers(0, 5),
)
def test_any_arguments_give_our_error_or_reach_build(
    widths, steps, learning_rate, parametrization, base_width, seed, batch
):
    try:
        coord_check(
            reached,
            widths,
            X4,
            Y4[:batch],
            steps=steps,
            learning_rate=learning_rate,
            parametrization=parametrization,
            base_width=base_width,
            seed=seed,
        )
    except Reached:
        pass  # valid: the first build is the first work
    except (TypeError, ValueError) as error:
        assert GRAMMAR.match(str(error)), str(error)
    else:
        raise AssertionError("coord_check returned without building a model")


class Subclassed(keras.Model):
    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(width)
        self.out = keras.layers.Dense(1)

    def call(self, inputs):
        return self.out(self.hidden(inputs))


@pytest.mark.parametrize("parametrization", ["standard", "mup"])
def test_a_subclassed_model_is_refused_by_name(parametrization):
    def build(width):
        model = Subclassed(width, name="sub")
        model(X4)  # built, but its layers have no symbolic outputs
        return model

    start = (
        "`build` must return a built functional or Sequential model (on keras.Input), so that "
        "each layer's output can be read; a subclassed model has no symbolic outputs ("
    )
    end = "). Received: build(8)=<Subclassed name='sub'>"
    with pytest.raises(ValueError, match=f"^{re.escape(start)}.*{re.escape(end)}$"):
        coord_check(build, [8, 16], X4, Y4, parametrization=parametrization)


def test_build_must_return_a_model_and_the_same_architecture_at_every_width():
    with pytest.raises(
        TypeError,
        match=re.escape("`build` must return a keras.Model. Received: build(8)='model'"),
    ):
        coord_check(lambda width: "model", [8, 16], X4, Y4, parametrization="standard")

    def deeper(width):
        layers = [keras.Input((32,))] + [keras.layers.Dense(width) for _ in range(width // 8)]
        return keras.Sequential([*layers, keras.layers.Dense(1)])

    message = (
        "`build` must return the same architecture at every width, as build(8) has layers "
        "['Dense', 'Dense']. Received: build(16)=<Sequential with layers ['Dense', 'Dense', "
        "'Dense']>"
    )
    y = np.zeros((4, 1), "float32")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        coord_check(deeper, [8, 16], X4, y, parametrization="standard")


# --- the plot -----------------------------------------------------------------------------------


def test_plot_coord_check_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    standard = record(np.linspace(0.1, 3.0, 2 * 4 * 3).reshape(2, 4, 3), "standard")
    mup = record(np.ones((2, 4, 3)))
    for check, name in ((mup, "one.png"), ([standard, mup], "two.png")):
        path = plot_coord_check(check, tmp_path / "sub" / name, title="coord check")
        with open(path, "rb") as file:
            assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    # The two-row figure is taller than the one-row one.
    import matplotlib.image

    assert (
        matplotlib.image.imread(tmp_path / "sub" / "two.png").shape[0]
        > 1.5 * matplotlib.image.imread(tmp_path / "sub" / "one.png").shape[0]
    )


def test_plot_coord_check_refuses_what_it_cannot_draw(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(
        TypeError,
        match=re.escape(
            "`check` must be a CoordCheck, as coord_check returns it, or a non-empty sequence "
            "of them. Received: check=[]"
        ),
    ):
        plot_coord_check([], tmp_path / "plot.png")
    with pytest.raises(ValueError, match=r"^`path` must end in an image format matplotlib"):
        plot_coord_check(record(np.ones((2, 2, 1))), tmp_path / "plot.xyz")
    assert not (tmp_path / "plot.xyz").exists()


def test_plot_coord_check_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'keras-inits\[plot\]'"):
        plot_coord_check(record(np.ones((2, 2, 1))), tmp_path / "plot.png")


@pytest.mark.slow  # runs an example
def test_the_example_prints_both_tables_and_writes_the_figure(capsys, tmp_path):
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples", "coord_check.py")
    spec = importlib.util.spec_from_file_location("coord_check_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plot = tmp_path / "coord_check.png"
    module.main(widths=(16, 32), plot=str(plot))
    out = capsys.readouterr().out
    for parametrization in ("standard", "mup"):
        assert f"mean |coord| after step 3 ({parametrization})" in out
    assert out.count("\nlogits ") == 2
    assert plot.stat().st_size > 10_000
