"""MkDocs hooks: the pages' facts that live in code are read from code, not copied.

- ``<!-- catalogue: keras_inits -->`` and ``<!-- catalogue: keras -->`` in a
  page become the tables of ``keras_inits/_catalogue.py`` (the one list that
  ``keras-inits list`` prints and the tests hold to the registry).
- ``<!-- cli-help -->`` becomes the ``--help`` text of ``keras-inits`` and of
  each of its commands, as argparse prints it.
- Figures kept elsewhere in the repository (``examples/compare.png``) are
  served from the site under their own path, not copied into docs/.
- The nav's ``Gallery: []`` section is filled with ``gallery/index.md`` and
  every other ``gallery/*.md`` that exists (the ``keras-inits reproduce``
  pages), the papers in the order the gallery tells them; with no gallery
  page the section is dropped, so the strict build never points at a page
  that is not there.

This file is not part of the package and is excluded from the site.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import sys
from types import ModuleType
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GALLERY_ORDER = (
    "glorot2010",
    "saxe2014",
    "xiao2018",
    "he2015",
    "mishkin2016",
    "zhao2022",
    "zhang2019",
    "yang2022",
    "meng2024",
    "sigmoid",
)
HELP_COLUMNS = "88"
# Repository files outside docs/ that pages show, as (path in the repository, path on the site).
OUTSIDE_FILES = (("examples/compare.png", "assets/compare.png"),)


def on_config(config: Any) -> Any:
    """Fills (or drops) the nav's ``Gallery`` section from the files in docs/gallery."""
    nav = config.get("nav")
    if not nav:
        return config
    gallery = os.path.join(config["docs_dir"], "gallery")
    pages = _gallery_pages(gallery)
    filled = []
    for item in nav:
        if isinstance(item, dict) and list(item) == ["Gallery"] and item["Gallery"] == []:
            if pages:
                filled.append({"Gallery": pages})
        else:
            filled.append(item)
    config["nav"] = filled
    return config


def on_files(files: Any, config: Any) -> Any:
    """Adds the figures of ``OUTSIDE_FILES`` to the site, read from where they live."""
    from mkdocs.structure.files import File

    for source, site_path in OUTSIDE_FILES:
        files.append(File.generated(config, site_path, abs_src_path=os.path.join(ROOT, source)))
    return files


def _gallery_pages(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        return []
    names = sorted(n[:-3] for n in os.listdir(folder) if n.endswith(".md") and n != "index.md")
    known = [n for n in GALLERY_ORDER if n in names]
    ordered = known + [n for n in names if n not in known]
    pages = [f"gallery/{n}.md" for n in ordered]
    if os.path.isfile(os.path.join(folder, "index.md")):
        pages.insert(0, "gallery/index.md")
    return pages


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replaces the catalogue and CLI markers with text generated from the code."""
    markdown = re.sub(
        r"<!-- catalogue: (keras_inits|keras) -->",
        lambda match: _catalogue_table(match.group(1)),
        markdown,
    )
    if "<!-- cli-help -->" in markdown:
        markdown = markdown.replace("<!-- cli-help -->", _cli_help())
    return markdown


def _load_catalogue() -> ModuleType:
    """keras_inits/_catalogue.py on its own, as the ``keras-inits list`` launcher loads it."""
    name = "_keras_inits_docs_catalogue"
    if name in sys.modules:
        return sys.modules[name]
    path = os.path.join(ROOT, "keras_inits", "_catalogue.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses looks its module up by name
    spec.loader.exec_module(module)
    return module


def _cell(text: str) -> str:
    """Plain text as a table cell: ``|`` would end the cell, ``*`` start emphasis."""
    return text.replace("|", "\\|").replace("*", "\\*")


def _reference(text: str) -> str:
    """A reference with its URL as a link: "Author 2010, https://..." -> "[Author 2010](https://...)"."""
    parts = []
    for piece in text.split("; "):
        match = re.fullmatch(r"(.*?),? (https?://\S+)", piece)
        parts.append(f"[{_cell(match.group(1))}]({match.group(2)})" if match else _cell(piece))
    return "; ".join(parts)


def _catalogue_table(owner: str) -> str:
    entries = [e for e in _load_catalogue().catalogue() if e.owner == owner]
    if owner == "keras_inits":
        rows = ["| string name | class | distribution | reference |", "| --- | --- | --- | --- |"]
        for e in entries:
            cls = f"[`{e.class_name}`][keras_inits.{e.class_name}]"
            formula, reference = _cell(e.formula), _reference(e.reference)
            rows.append(f"| `{e.name}` | {cls} | {formula} | {reference} |")
    else:
        rows = [
            "| Keras name | Keras class | distribution | reference |",
            "| --- | --- | --- | --- |",
        ]
        for e in entries:
            ref = "" if e.reference == "-" else _reference(e.reference)
            rows.append(
                f"| `{e.name}` | `keras.initializers.{e.class_name}` | {_cell(e.formula)} | {ref} |"
            )
    return "\n".join(rows)


def _cli_help() -> str:
    """``keras-inits --help`` and ``keras-inits COMMAND --help``, in code blocks."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)  # the checkout's CLI, whatever else is installed
    from keras_inits import cli

    parser = cli._parser()
    sections = [_help_block(parser, "keras-inits --help")]
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, command in commands.choices.items():
        sections.append(
            f"### `keras-inits {name}`\n\n" + _help_block(command, f"keras-inits {name} --help")
        )
    return "\n\n".join(sections)


def _help_block(parser: Any, command: str) -> str:
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS  # argparse wraps to the terminal; the page is fixed
    try:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            parser.print_help()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return f"```text\n$ {command}\n{out.getvalue().rstrip()}\n```"
