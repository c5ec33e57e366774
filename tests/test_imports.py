"""No import circle in the package: every module imports alone, first.

Two checks. The static one reads every module's imports (those inside
functions too, where a circle hides as a "lazy" import) and asserts that
the graph of modules is acyclic: ``structural`` importing ``_registry``
inside ``ICNR.__init__`` while ``_registry`` imported ``structural`` was
such a circle. The dynamic one imports each module first, in a fresh
process, with the package's ``__init__`` bypassed (it would otherwise
import everything in its own order first, so the module would never really
come first): a circle at import time fails there as a partially initialized
module. Modules are discovered with ``pkgutil.walk_packages``, so a new
module or subpackage is covered the moment it exists.
"""

from __future__ import annotations

import ast
import os
import pkgutil
import subprocess
import sys

import keras
import pytest

import keras_inits

PACKAGE_DIR = os.path.dirname(os.path.abspath(keras_inits.__file__))
ROOT = os.path.dirname(PACKAGE_DIR)
MODULES = sorted(info.name for info in pkgutil.walk_packages(keras_inits.__path__, "keras_inits."))
BACKENDS = ("jax", "tensorflow", "torch")


def module_path(name: str) -> str:
    relative = os.path.join(*name.split("."))
    package_init = os.path.join(ROOT, relative, "__init__.py")
    return package_init if os.path.exists(package_init) else os.path.join(ROOT, relative + ".py")


def imports_of(name: str, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in its source."""
    with open(module_path(name), encoding="utf-8") as file:
        tree = ast.parse(file.read())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from keras_inits import _sampling` imports the submodule, not the package's names
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & known
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {module for module in found if module in known and module != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that starts and ends at the same module, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for neighbour in sorted(graph[node]):
            cycle = visit(neighbour)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


def test_modules_are_discovered():
    # The walk must see subpackages' modules too, not just the top level.
    assert {"keras_inits._registry", "keras_inits.structural", "keras_inits.cli"} <= set(MODULES)
    assert any(name.startswith("keras_inits.diagnostics.") for name in MODULES)


def test_the_import_graph_has_no_circle():
    known = {"keras_inits", *MODULES}
    graph = {name: imports_of(name, known) for name in known}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_find_cycle_finds_a_lazy_circle():
    # The check above could not fail if find_cycle saw nothing: the old circle.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_backend_modules_import_a_framework_at_their_top():
    # The root conftest.py leaves _sampling/_<framework>.py out of the doctest
    # collection where <framework> is missing: every other module must import without it.
    found = set()
    for name in MODULES:
        with open(module_path(name), encoding="utf-8") as file:
            tree = ast.parse(file.read())
        for node in tree.body:  # the module's top level, not its functions
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found |= {(name, n.split(".")[0]) for n in names if n.split(".")[0] in BACKENDS}
    assert found == {(f"keras_inits._sampling._{b}", b) for b in BACKENDS}


# Runs in a fresh interpreter: Keras and its backend are imported once (they are
# not ours, and importing them takes seconds), then each module is imported
# first in a forked child, with the package's __init__ replaced by an empty
# package so that nothing of ours is loaded before it.
CHILD = r"""
import importlib, json, os, sys, traceback, types
import keras

root, names = sys.argv[1], json.loads(sys.argv[2])
results = {}
for name in names:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        status = 0
        try:
            package = types.ModuleType("keras_inits")
            package.__path__ = [os.path.join(root, "keras_inits")]
            sys.modules["keras_inits"] = package
            importlib.import_module(name)
            message = ""
        except BaseException as error:
            status = 1
            missing = getattr(error, "name", None) if isinstance(error, ImportError) else None
            message = json.dumps([type(error).__name__, str(error), missing,
                                  traceback.format_exc()[-2000:]])
        os.write(write, message.encode())
        os._exit(status)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    results[name] = [os.waitstatus_to_exitcode(status), b"".join(chunks).decode()]
print(json.dumps(results))
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="the check forks one child per module")
def test_every_module_imports_alone_first():
    import json

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, ROOT, json.dumps(MODULES)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout.splitlines()[-1])
    assert sorted(results) == MODULES
    failures = {}
    for name, (code, message) in results.items():
        if code == 0:
            continue
        kind, text, missing, trace = json.loads(message)
        # A module of one backend (keras_inits/_sampling/_torch.py, say) may import
        # its framework at the top: where that framework is not installed and is
        # not the active backend, it cannot import, and no user reaches it.
        other_framework = missing in BACKENDS and missing != keras.backend.backend()
        if kind == "ModuleNotFoundError" and other_framework:
            continue
        failures[name] = f"{kind}: {text}\n{trace}"
    assert not failures, "\n\n".join(f"{name}: {why}" for name, why in failures.items())
