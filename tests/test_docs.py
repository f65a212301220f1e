"""The documentation runs: every Python block in the README, and every example script."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "errors.md")]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def _blocks(path: pathlib.Path) -> list:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_links_between_documents_resolve() -> None:
    """Every relative link of the README and the documents names a file that exists."""
    broken = [(path.name, target) for path in DOCS + [ROOT / "docs" / "errors.md"]
              for target in re.findall(r"\]\(([^)\s#:]+)(?:#[^)]*)?\)", path.read_text())
              if not (path.parent / target).exists()]
    assert not broken, f"links to missing files: {broken}"


def test_readme_has_python_blocks() -> None:
    assert _blocks(ROOT / "README.md"), "the README shows no Python example"


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_document_code_runs(path: pathlib.Path) -> None:
    """The Python blocks of a document run in order, in one namespace, as a reader would."""
    namespace: dict = {"__name__": "docs"}
    for code in _blocks(path):
        exec(compile(code, str(path.name), "exec"), namespace)


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
    import wengert._forward
    for module in (wengert._api, wengert._custom, wengert._forward):
        result = doctest.testmod(module, extraglobs={"wengert": wengert})
        assert result.attempted > 0 and result.failed == 0, module.__name__
