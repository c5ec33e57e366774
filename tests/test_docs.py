"""The documentation site: its code runs, its examples are real, and it builds strict.

The site (``mkdocs.yml``, ``docs/``) does not depend on the backend, so the
strict build runs under one (JAX, the fastest to import); the Markdown
checks and the nav hook run under every backend.
"""

import html
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import keras
import pytest
from helpers import import_keras_hub

import keras_inits as ki
from keras_inits._registry import CLASSES, string_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
PAGES = sorted(
    os.path.relpath(os.path.join(folder, name), DOCS)
    for folder, _, files in os.walk(DOCS)
    for name in files
    if name.endswith(".md")
)


def page(name: str) -> str:
    with open(os.path.join(DOCS, name), encoding="utf-8") as file:
        return file.read()


def blocks(language: str) -> list[tuple[str, int, str]]:
    """Each page's code blocks; the gallery's pages report experiments tested on their own."""
    found = []
    for name in (n for n in PAGES if not n.startswith("gallery" + os.sep)):
        for index, block in enumerate(re.findall(rf"```{language}\n(.*?)```", page(name), re.S)):
            found.append((name, index, block))
    return found


def load_hooks():
    spec = importlib.util.spec_from_file_location("_docs_hooks", os.path.join(DOCS, "hooks.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "name, index, code", blocks("python"), ids=[f"{n}:{i}" for n, i, _ in blocks("python")]
)
def test_python_block_runs(name, index, code):
    if "import keras_hub" in code:
        import_keras_hub()  # a named skip on the Keras floor, which keras-hub does not support
    exec(compile(code, f"docs/{name} block {index}", "exec"), {})


def test_error_examples_are_the_real_messages():
    block = next(b for b in re.findall(r"```text\n(.*?)```", page("errors.md"), re.S))
    produced = []
    for make in (
        lambda: ki.VarianceScaling(mode="fan_sum"),
        lambda: ki.XavierNormal(gain=True),
        lambda: ki.get("sigmoid_normall"),
        lambda: ki.KaimingNormal(a=1e200),
    ):
        with pytest.raises((ValueError, TypeError)) as info:
            make()
        produced.append(f"{type(info.value).__name__}: {info.value}")
    assert block.strip().splitlines() == produced


def test_gallery_nav_lists_the_pages_that_exist_in_the_papers_order(tmp_path):
    hooks = load_hooks()
    nav = [{"Home": "index.md"}, {"Gallery": []}, {"API": "api.md"}]
    config = {"nav": [dict(item) for item in nav], "docs_dir": str(tmp_path)}
    assert hooks.on_config(config)["nav"] == [nav[0], nav[2]]  # no gallery: no section
    (tmp_path / "gallery").mkdir()
    for name in ("sigmoid", "index", "he2015", "zzz_new", "glorot2010"):
        (tmp_path / "gallery" / f"{name}.md").write_text(f"# {name}\n")
    config = {"nav": [dict(item) for item in nav], "docs_dir": str(tmp_path)}
    assert hooks.on_config(config)["nav"][1] == {
        "Gallery": [
            "gallery/index.md",
            "gallery/glorot2010.md",
            "gallery/he2015.md",
            "gallery/sigmoid.md",
            "gallery/zzz_new.md",
        ]
    }


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="the site does not depend on the backend: built once, under JAX (fastest import)",
)
@pytest.mark.slow
def test_site_builds_strict(tmp_path):
    site = tmp_path / "site"
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "NO_MKDOCS_2_WARNING": "1",  # Material's banner about MkDocs 2.0
        "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]

    def built(path: str) -> str:
        return (site / path / "index.html").read_text(encoding="utf-8")

    # The catalogue's tables, generated from code: every name, its class linked to the API.
    catalogue, api = built("catalogue"), built("api/initializers")
    for cls in CLASSES:
        assert f"<code>{html.escape(string_name(cls))}</code>" in catalogue, string_name(cls)
        assert f'href="../api/initializers/#keras_inits.{cls.__name__}"' in catalogue, cls
        assert f'id="keras_inits.{cls.__name__}"' in api, cls.__name__
    assert "<code>glorot_uniform</code>" in catalogue  # Keras's table too
    # The API reference documents every public name.
    from keras_inits import diagnostics, model

    pages = ("functions", "model", "diagnostics")
    reference = api + "".join(built(f"api/{page}") for page in pages)
    for module in (ki, model, diagnostics):
        for name in set(module.__all__) - {"__version__"}:
            home = getattr(getattr(module, name), "__module__", None)  # ki.fans: keras_inits.model
            paths = {f"{module.__name__}.{name}", f"{home}.{name}"}
            assert any(f'id="{path}"' in reference for path in paths), paths
    # The command line's help, generated from the parser.
    cli = built("cli")
    for command in ("keras-inits --help", "keras-inits list --help", "keras-inits compare --help"):
        assert f"$ {command}" in cli, command
    assert "--batch-size" in cli
    # A figure kept outside docs/ is served, not copied.
    figure = pathlib.Path(ROOT, "examples", "compare.png").read_bytes()
    assert (site / "assets" / "compare.png").read_bytes() == figure
    # Every page on disk is built (the gallery's too, once it exists).
    for name in PAGES:
        path = "index.html" if name == "index.md" else name[: -len(".md")] + "/index.html"
        assert (site / path.replace("/index/index.html", "/index.html")).is_file(), name
