"""pytest's set-up for the whole checkout (``tests/conftest.py`` holds the suite's own).

``--doctest-modules`` imports every module of the package. Each backend's
sampling module imports its framework on its first line, as Keras's
``backend/<name>/`` modules do, so one whose framework is not installed (the
Keras-floor venv has JAX only) is left out of collection. No other module
imports a framework at its top (``tests/test_imports.py`` checks it), so
every other one is still collected.
"""

import importlib.util

collect_ignore = [
    f"keras_inits/_sampling/_{framework}.py"
    for framework in ("jax", "tensorflow", "torch")
    if importlib.util.find_spec(framework) is None
]
