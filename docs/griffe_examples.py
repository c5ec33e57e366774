"""A griffe extension: the house style's ``Example:`` is read as an examples section.

The docstrings follow the house style (``Example:`` then doctests, then
``Reference:``). Griffe's Google parser knows only the plural ``Examples:``
as a section of code examples and reads ``Example:`` as an admonition whose
body is Markdown, so a doctest's ``[...]`` output would be taken for a
cross-reference. This extension renames the section heading in the text
griffe parses; the source is unchanged. Not part of the package.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", flags=re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Reads ``Example:`` as ``Examples:`` in every docstring griffe loads."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
