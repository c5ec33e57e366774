"""The compare API on every architecture: CNN, RNN, the user's model and data, model-level runs."""

import textwrap

import keras
import numpy as np
import pytest
from helpers import assert_error

from keras_inits.diagnostics._compare import (
    CompareConfig,
    CompareError,
    build_cnn,
    build_mlp,
    build_rnn,
    check_fills,
    check_model,
    hidden_kernel_shapes,
    load_data,
    load_function,
    recurrent_kernel_shapes,
    run_compare,
    split_model_level,
)


def kernel_shapes(model):
    """Each hidden kernel's shape by its layer's name, a recurrent kernel's as "hidden_1 r"."""
    shapes = {}
    for variable in model.weights:
        layers = [part for part in variable.path.split("/") if part.startswith("hidden_")]
        if layers and variable.name.endswith("kernel"):
            suffix = " r" if variable.name == "recurrent_kernel" else ""
            shapes[layers[0] + suffix] = tuple(variable.shape)
    return shapes


@pytest.mark.parametrize(("arch", "cell"), [("mlp", None), ("cnn", None), ("rnn", "lstm"),
                                            ("rnn", "gru"), ("rnn", "simple")])  # fmt: skip
def test_kernel_shapes_are_those_the_network_builds(arch, cell):
    config = CompareConfig(arch=arch, cell=cell, depth=3, width=6)
    if arch == "cnn":
        model = build_cnn("glorot_uniform", "tanh", depth=3, width=6)
    elif arch == "rnn":
        model = build_rnn("glorot_uniform", "orthogonal", cell, "tanh", depth=3, width=6)
    else:
        model = build_mlp("glorot_uniform", "tanh", depth=3, width=6)
    built = kernel_shapes(model)
    assert len(built) == (6 if arch == "rnn" else 3)
    shapes = hidden_kernel_shapes(config)
    assert shapes == {name: built[name] for name in shapes}
    assert {shape for name, shape in built.items() if not name.endswith(" r")} == set(
        shapes.values()
    )
    if arch == "rnn":
        assert recurrent_kernel_shapes(config) == {"hidden_1": built["hidden_1 r"]}
        assert {shape for name, shape in built.items() if name.endswith(" r")} == {
            built["hidden_1 r"]
        }
    else:
        assert recurrent_kernel_shapes(config) == {}


@pytest.mark.parametrize("name", ["conv_identity", "delta_orthogonal", "icnr"])
def test_convolution_initializers_fill_the_cnn_but_not_the_mlp(name):
    cnn = CompareConfig(initializers=(name,), arch="cnn", depth=2, width=8)
    check_model(cnn)  # no error
    shapes = hidden_kernel_shapes(cnn)
    assert all(len(shape) == 4 for shape in shapes.values())
    check_fills(name, shapes, "init", kind="Conv2D kernel")


def test_block_orthogonal_fills_the_recurrent_kernels():
    config = CompareConfig(arch="rnn", width=8, recurrent_init="block_orthogonal")
    check_model(config)
    assert_error(
        lambda: check_model(CompareConfig(arch="rnn", width=8, recurrent_init="bilinear")),
        CompareError,
        "`recurrent_init` must fill every hidden LSTM recurrent kernel; it cannot fill "
        "hidden_1's, shape (8, 32) (ValueError: `shape` must be 4-D, (kh, kw, filters, "
        "in_channels) for Bilinear. Received: shape=(8, 32)). Received: recurrent_init='bilinear'",
    )
    assert_error(
        lambda: check_model(CompareConfig(initializers=("bilinear",), arch="cnn", width=8)),
        CompareError,
        "`initializers[0]` must fill every hidden Conv2D kernel; it cannot fill hidden_1's, "
        "shape (3, 3, 1, 8) (ValueError:",
        prefix=True,
    )


def test_config_defaults_follow_the_architecture():
    mlp = CompareConfig()
    assert (mlp.arch, mlp.activation, mlp.depth, mlp.width, mlp.cell) == (
        "mlp", "sigmoid", 5, 128, None)  # fmt: skip
    rnn = CompareConfig(arch="rnn")
    assert (rnn.activation, rnn.cell, rnn.recurrent_init) == ("tanh", "lstm", "orthogonal")
    assert CompareConfig(model="math:sqrt").arch == "model"
    assert CompareConfig(model=np.sqrt).to_dict()["model"] == "numpy:sqrt"
    assert split_model_level("reinitialize") == ("glorot_uniform", "reinitialize")
    assert split_model_level("he_normal") == ("he_normal", None)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"arch": "transformer"}, ValueError,
         "`arch` must be one of ('cnn', 'mlp', 'rnn'). Received: arch='transformer'"),
        ({"arch": "rnn", "cell": "lstmm"}, ValueError,
         "`cell` must be one of ('gru', 'lstm', 'simple'). Received: cell='lstmm'"),
        ({"cell": "gru"}, CompareError,
         "`cell` applies only to arch='rnn'. Received: cell='gru' with arch='mlp'"),
        ({"arch": "cnn", "recurrent_init": "orthogonal"}, CompareError,
         "`recurrent_init` applies only to arch='rnn'. "
         "Received: recurrent_init='orthogonal' with arch='cnn'"),
        ({"arch": "rnn", "recurrent_init": "lsuv"}, CompareError,
         "`recurrent_init` must be an initializer, not a model-level step ('lsuv', "
         "'reinitialize'). Received: recurrent_init='lsuv'"),
        ({"model": "math:sqrt", "arch": "cnn"}, CompareError,
         "`arch` must be left unset when `model` is given: the model is yours. "
         "Received: arch='cnn'"),
        ({"model": "math:sqrt", "width": 8}, CompareError,
         "`width` must be left unset when `model` is given: it applies to the built-in "
         "architectures ('mlp', 'cnn', 'rnn'). Received: width=8"),
        ({"model": 3}, CompareError,
         "`model` must be 'MODULE:FUNCTION' (a module name or a .py file path, a colon, a "
         "function name) or a callable. Received: model=3"),
        ({"data": "math"}, CompareError,
         "`data` must be 'MODULE:FUNCTION' (a module name or a .py file path, a colon, a "
         "function name). Received: data='math'"),
        ({"model": "no_such_module_12a:f"}, CompareError,
         "`model` names a module that cannot be found: no module named 'no_such_module_12a' "
         "in the current directory or on sys.path. Received: model='no_such_module_12a:f'"),
        ({"model": "math:pi"}, CompareError,
         "`model` must name a function; 'pi' in 'math' is not callable (type float). "
         "Received: model='math:pi'"),
        ({"initializers": ("nope+reinitialize",)}, ValueError,
         "Unknown initializer. keras_inits.names() lists ours, keras.initializers Keras's. "
         "Received: initializers[0]='nope'"),
    ],
)  # fmt: skip
def test_config_refuses_what_does_not_apply(kwargs, error, message):
    assert_error(lambda: CompareConfig(**kwargs), error, message)


USER_MODULE = """
import keras
import numpy as np

SIZE = 3

def model(initializer):
    return keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(6, "tanh", kernel_initializer=initializer, name="first"),
        keras.layers.Dense(10, "softmax", name="scores"),
    ])

def images(initializer):
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(10, kernel_initializer=initializer)])

def one_output(initializer):
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(1)])

def not_a_model(initializer):
    return "a model"

def raises(initializer):
    raise RuntimeError("no GPU here")

def subclassed(initializer):
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(10, kernel_initializer=initializer)
        def call(self, x):
            return self.dense(x)
    return Net()

def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 64)).astype("float32"), rng.integers(0, 10, 40)

def split():
    (x, y) = data()
    return (x[:30], y[:30]), (x[30:], y[30:])

def not_pairs():
    return [1, 2, 3]

def uneven():
    return np.zeros((5, 64)), np.zeros(4, "int32")

def fails():
    raise OSError("disk gone")

def floats():
    return np.zeros((10, 64), "float32"), np.zeros(10, "float32")
"""


@pytest.fixture(scope="module")
def user_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "user_12a.py"
    path.write_text(textwrap.dedent(USER_MODULE))
    return str(path)


@pytest.mark.slow
def test_user_model_and_data_train_and_report_every_kernel(user_file):
    config = CompareConfig(
        initializers=("he_normal", "lsuv"),
        model=f"{user_file}:model",
        data=f"{user_file}:split",
        epochs=1,
        batch_size=16,
    )
    results = run_compare(config)
    assert [r.label for r in results] == ["he_normal", "lsuv"]
    for result in results:
        assert [r.name for r in result.layers] == ["first", "scores"]
        assert [r.kernel_shape for r in result.layers] == [(64, 6), (6, 10)]
        assert all(r.grad_norm > 0 for r in result.layers)
        assert len(result.loss_curve) == 1 and 0.0 <= result.val_accuracy <= 1.0
    # he_normal: std sqrt(2 / 64) (384 draws: 5 standard errors is 18%). lsuv scales the
    # first kernel to Var(x W) = 1 on x ~ N(0, 1) with 64 features: std 1 / 8.
    assert results[0].layers[0].weight_std == pytest.approx(np.sqrt(2 / 64), rel=0.18)
    assert results[1].layers[0].weight_std == pytest.approx(1 / 8, rel=0.15)


def test_user_data_is_split_by_seed(user_file):
    config = CompareConfig(data=f"{user_file}:data", depth=1, width=4)
    (x_train, y_train), (x_val, _) = load_data(config)
    assert (len(x_train), len(x_val)) == (32, 8)
    assert y_train.dtype == np.int32 and x_train.dtype == np.float32
    cnn = CompareConfig(arch="cnn", data=f"{user_file}:data")
    assert_error(
        lambda: load_data(cnn),
        CompareError,
        "`data` must give x as numbers of shape (n, h, w) or (n, h, w, c) for arch='cnn'; "
        f"got float32 of shape (32, 64). Received: data='{user_file}:data'",
    )


@pytest.mark.parametrize(
    ("model", "data", "argument", "message"),
    [
        ("not_a_model", None, "model",
         "`model` must return a keras.Model; it returned a str."),
        ("raises", None, "model",
         "`model`'s function raised RuntimeError when called with 'glorot_uniform': no GPU here."),
        ("subclassed", None, "model",
         "`model` must return a functional or Sequential model built on keras.Input, so that "
         "each layer's output can be read; it returned a Net without inputs."),
        ("images", None, "model",
         "`model` must take the data: its input is (None, 8, 8, 1), but x from `data` has "
         "shape (32, 64)."),
        ("one_output", None, "model",
         "`model` must output one score per class for the integer labels 0..9 (shape (None, "
         "10)), or come compiled with its own loss; its output is (None, 1)."),
        ("model", "not_pairs", "data",
         "`data` must return (x, y) or ((x_train, y_train), (x_val, y_val)); it returned a "
         "list of 3."),
        ("model", "uneven", "data",
         "`data` must give x and y with one sample per row, the same number; got x of shape "
         "(5, 64) and y of shape (4,)."),
        ("model", "fails", "data", "`data`'s function raised OSError: disk gone."),
    ],
)  # fmt: skip
def test_user_model_and_data_errors_name_the_setting(user_file, model, data, argument, message):
    config = CompareConfig(model=f"{user_file}:{model}", data=f"{user_file}:{data or 'data'}")
    spec = f"{user_file}:{data if argument == 'data' else model}"
    with pytest.raises(CompareError) as info:
        check_model(config)
    assert info.value.argument == argument
    assert str(info.value) == f"{message} Received: {argument}={spec!r}"


def test_load_function_finds_modules_and_files(user_file, tmp_path, monkeypatch):
    assert load_function(f"{user_file}:data", "data")()[0].shape == (40, 64)
    (tmp_path / "module_12a.py").write_text("def f():\n    return 7\n")
    monkeypatch.chdir(tmp_path)  # a module name is searched in the current directory first
    monkeypatch.delitem(__import__("sys").modules, "module_12a", raising=False)
    assert load_function("module_12a:f", "model")() == 7
    assert_error(
        lambda: load_function("module_12a:g", "model"),
        CompareError,
        "`model` names 'g', which 'module_12a' does not define. Received: model='module_12a:g'",
    )
    missing = tmp_path / "none.py"
    assert_error(
        lambda: load_function("none.py:f", "data"),
        CompareError,
        f"`data` names a file that does not exist: {str(missing)!r}. Received: data='none.py:f'",
    )
    (tmp_path / "broken_12a.py").write_text("raise ImportError('needs tensorflow_text')\n")
    assert_error(
        lambda: load_function("broken_12a.py:f", "model"),
        CompareError,
        "`model` names a module that fails to import: 'broken_12a.py' raised ImportError: "
        "needs tensorflow_text. Received: model='broken_12a.py:f'",
    )


def test_an_initializer_that_cannot_fill_the_users_model_is_named(user_file):
    config = CompareConfig(
        initializers=("he_normal", "bilinear"), model=f"{user_file}:model", data=f"{user_file}:data"
    )
    with pytest.raises(CompareError) as info:
        check_model(config)
    assert info.value.argument == "initializers[1]"
    assert str(info.value).startswith(
        "`initializers[1]` must fill every kernel of the `model`; building it with 'bilinear' "
        "failed (ValueError: `shape` must be 4-D"
    )
    assert str(info.value).endswith("Received: initializers[1]='bilinear'")


def test_reinitialize_and_delta_orthogonal_change_what_the_networks_draw():
    """The contrasts behind the end-to-end tests in test_cli.py, without training."""
    config = CompareConfig(initializers=("glorot_uniform", "reinitialize"), arch="rnn", width=8)
    data = ((np.zeros((4, 8, 8), "float32"), np.arange(4)),) * 2
    from keras_inits.diagnostics._compare import _build

    plain, redrawn = (
        float(np.std(keras.ops.convert_to_numpy(_build(config, name, data).layers[0].cell.kernel)))
        for name in config.initializers
    )
    # LSTM kernel (8, 32), 256 uniform draws: 5 standard errors of the std are 14%.
    assert plain == pytest.approx(np.sqrt(2 / 40), rel=0.14)  # Keras: fans of the whole shape
    assert redrawn == pytest.approx(np.sqrt(2 / 16), rel=0.14)  # per gate: (8, 8)
    kernel = keras.ops.convert_to_numpy(
        build_cnn("delta_orthogonal", "tanh", depth=2, width=4).layers[1].kernel
    )
    centre = kernel[1, 1]
    np.testing.assert_allclose(centre @ centre.T, np.eye(4), atol=1e-5)
    kernel[1, 1] = 0.0
    assert not kernel.any()  # every tap but the centre is zero
