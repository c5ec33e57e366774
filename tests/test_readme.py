"""The README's code runs and its catalogue matches the registry."""

import os
import re

import pytest

import keras_inits as ki
from keras_inits._registry import CLASSES, string_name

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def readme() -> str:
    with open(README, encoding="utf-8") as file:
        return file.read()


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", readme(), flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_python_block_runs(index):
    exec(compile(python_blocks()[index], f"README.md block {index}", "exec"), {})


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_catalogue_lists_every_name_and_class(cls):
    text = readme()
    assert f"| `{string_name(cls)}` |" in text, string_name(cls)
    assert f"`{cls.__name__}`" in text, cls.__name__


def test_error_examples_are_the_real_messages():
    blocks = re.findall(r"```text\n(.*?)```", readme(), flags=re.DOTALL)
    block = next(b for b in blocks if b.startswith("ValueError"))
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
