"""The README's code runs (the pages under docs/ are tested in test_docs.py)."""

import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def readme() -> str:
    with open(README, encoding="utf-8") as file:
        return file.read()


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", readme(), flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_python_block_runs(index):
    exec(compile(python_blocks()[index], f"README.md block {index}", "exec"), {})
