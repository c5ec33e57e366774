"""The package's import promises: public API only, no heavy or foreign imports."""

import inspect
import os
import pydoc
import re
import subprocess
import sys
import tomllib
import types

import keras
import pytest

import keras_inits as ki

CHECK_IMPORTS = """
import sys
import keras
before = set(sys.modules)
import keras_inits
added = {name.split(".")[0] for name in set(sys.modules) - before}
print(" ".join(sorted(added)))
"""


@pytest.mark.slow
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
    submodules = {
        name
        for name in public
        if isinstance(getattr(ki, name), types.ModuleType)
        and getattr(ki, name).__name__ == f"keras_inits.{name}"
    }
    assert public - set(ki.__all__) == submodules


@pytest.mark.parametrize("name", [n for n in ki.__all__ if isinstance(getattr(ki, n), type)])
def test_every_class_is_a_keras_initializer_and_documented(name):
    obj = getattr(ki, name)
    assert issubclass(obj, keras.initializers.Initializer), name
    doc = obj.__doc__ or ""
    takes_arguments = bool(inspect.signature(obj).parameters)
    for section in ("Args:", "Example:", "Reference:"):
        if section == "Args:" and not takes_arguments:
            assert section not in doc, (name, "Args: for a class without arguments")
            continue
        assert section in doc, (name, section)
    assert "fan_in" in doc or "fans" in doc, name


def test_the_version_is_written_in_one_place():
    # pyproject.toml reads it from keras_inits.__version__; the wheel test checks
    # that the installed metadata agrees.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as file:
        pyproject = tomllib.load(file)
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "keras_inits.__version__"
    }
    assert re.fullmatch(r"\d+\.\d+\.\d+", ki.__version__)


PUBLIC_CALLABLES = [name for name in ki.__all__ if callable(getattr(ki, name))]
# The Literal aliases of the package: help() must show their values, not these names.
ALIASES = ("Mode", "KaimingMode", "Distribution", "Nonlinearity", "Layout", "Seed", "Axes")


@pytest.mark.parametrize("name", PUBLIC_CALLABLES)
def test_signature_shows_allowed_values_not_alias_names(name):
    signature = str(inspect.signature(getattr(ki, name)))
    for alias in ALIASES:
        assert not re.search(rf"'{alias}'|\b{alias}\b", signature), (name, signature)


def test_help_shows_the_literal_values():
    text = pydoc.render_doc(ki.KaimingNormal, renderer=pydoc.plaintext)
    assert "mode: Literal['fan_in', 'fan_out'] = 'fan_in'" in text
    assert "seed: 'int | keras.random.SeedGenerator | None' = None" in text
    text = pydoc.render_doc(ki.calculate_gain, renderer=pydoc.plaintext)
    assert "nonlinearity: Literal['linear', 'conv1d'," in text


@pytest.mark.parametrize("name", PUBLIC_CALLABLES)
def test_docstring_documents_only_real_arguments(name):
    # An "Args:" entry must name a parameter (no "None: ..." placeholder).
    obj = getattr(ki, name)
    doc = inspect.getdoc(obj) or ""
    _, _, args = doc.partition("\nArgs:\n")
    if not args:
        return
    section = args.split("\n\n")[0]
    documented = re.findall(r"^    (\w+):", section, flags=re.M)
    assert documented, (name, section)
    assert set(documented) <= set(inspect.signature(obj).parameters), (name, documented)
