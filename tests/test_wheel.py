"""The wheel is the product: installed alone, it imports, saves and loads.

The wheel is installed with ``pip --target`` into an empty folder, and a new
interpreter runs from a folder outside the source tree with only that folder
on its path, so a module, a data file (``py.typed``) or an entry point that
the wheel lacks fails here. ``make test`` builds the wheel once (``make
dist``) and names its folder in ``KERAS_INITS_DIST``; without it, the test
builds one itself.
"""

import glob
import os
import subprocess
import sys

import keras
import pytest

pytestmark = pytest.mark.slow  # a subprocess, an example or a benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIST_ENV = "KERAS_INITS_DIST"

FROM_THE_WHEEL = """
import importlib.metadata as metadata
import os
import sys

import keras
import numpy as np
import keras_inits as ki

target = sys.argv[1]
assert os.path.dirname(os.path.dirname(os.path.abspath(ki.__file__))) == target, ki.__file__
package = os.path.dirname(ki.__file__)
assert os.path.exists(os.path.join(package, "py.typed")), "py.typed is missing"
assert metadata.version("keras-inits") == ki.__version__, metadata.version("keras-inits")
scripts = {e.name: e.value for e in metadata.entry_points(group="console_scripts")}
assert scripts.get("keras-inits") == "keras_inits_cli:main", scripts
import keras_inits.cli, keras_inits.diagnostics  # every subpackage ships
import keras_inits_cli  # the console script's launcher, a top-level module

launcher = os.path.abspath(keras_inits_cli.__file__)
assert os.path.dirname(launcher) == target, launcher

model = keras.Sequential([keras.Input((16,))] + [
    keras.layers.Dense(16, kernel_initializer=name) for name in ki.names()
    if name not in ("icnr", "conv_identity", "bilinear", "delta_orthogonal")
])
x = np.ones((2, 16), "float32")
model.save("model.keras")
loaded = keras.saving.load_model("model.keras")
np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
print("ok", ki.__version__, len(model.layers))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    folder = os.environ.get(DIST_ENV)
    if not folder:
        folder = str(tmp_path_factory.mktemp("dist"))
        completed = subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--outdir", folder, ROOT],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
    wheels = glob.glob(os.path.join(folder, "keras_inits-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_installed_wheel_imports_saves_and_loads(wheel, tmp_path):
    target = str(tmp_path / "site")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    completed = subprocess.run(
        [*pip, "--target", target, wheel],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(PYTHONPATH=target, KERAS_BACKEND=keras.backend.backend())
    completed = subprocess.run(
        [sys.executable, "-c", FROM_THE_WHEEL, target],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split()[0] == "ok", completed.stdout
