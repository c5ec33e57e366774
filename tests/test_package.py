"""The package's import promises: public API only, no heavy or foreign imports."""

import subprocess
import sys
import types

import keras

import keras_inits as ki

CHECK_IMPORTS = """
import sys
import keras
before = set(sys.modules)
import keras_inits
added = {name.split(".")[0] for name in set(sys.modules) - before}
print(" ".join(sorted(added)))
"""


def test_import_adds_no_backend_plotting_or_data_package():
    completed = subprocess.run(
        [sys.executable, "-c", CHECK_IMPORTS], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    added = set(completed.stdout.split())
    assert "keras_inits" in added
    forbidden = {"tensorflow", "jax", "torch", "matplotlib", "sklearn", "scipy", "pandas"}
    assert not added & forbidden, added & forbidden


def test_all_lists_the_public_api():
    for name in ki.__all__:
        assert hasattr(ki, name), name
    public = {name for name in vars(ki) if not name.startswith("_")}
    # Submodules (one per family) are importable, but the API is what __all__ names.
    extra = public - set(ki.__all__)
    assert all(isinstance(getattr(ki, name), types.ModuleType) for name in extra), extra


def test_every_class_is_a_keras_initializer_and_documented():
    for name in ki.__all__:
        obj = getattr(ki, name)
        if isinstance(obj, type):
            assert issubclass(obj, keras.initializers.Initializer), name
            doc = obj.__doc__ or ""
            for section in ("Args:", "Example:", "Reference:"):
                assert section in doc, (name, section)
            assert "fan_in" in doc or "fans" in doc, name
