"""The documentation runs: every Python block in the README, and every example script."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_readme_has_python_blocks() -> None:
    assert BLOCKS, "the README shows no Python example"


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(code: str) -> None:
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path: pathlib.Path) -> None:
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


def test_docstring_examples() -> None:
    import doctest

    import wengert
    import wengert._api
    import wengert._custom
    for module in (wengert._api, wengert._custom):
        result = doctest.testmod(module, extraglobs={"wengert": wengert})
        assert result.attempted > 0 and result.failed == 0, module.__name__
