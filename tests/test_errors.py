"""Every entry of the error catalogue (docs/errors.md) is reachable: its snippet raises the
error it documents, with the documented start of the message."""

from __future__ import annotations

import builtins
import pathlib
import re
import warnings

import numpy as onp
import pytest

import wengert
import wengert.numpy as np

CATALOGUE = (pathlib.Path(__file__).parent.parent / "docs" / "errors.md").read_text()
SNIPPETS = re.findall(r"```python\n# raises (\w+): (.*?)\n(.*?)```", CATALOGUE, flags=re.S)


def test_every_code_block_documents_an_error() -> None:
    blocks = re.findall(r"```python\n", CATALOGUE)
    assert len(blocks) == len(SNIPPETS) > 30


@pytest.mark.parametrize("name, start, code", SNIPPETS, ids=[s[1][:60] for s in SNIPPETS])
def test_catalogued_error_is_raised(name: str, start: str, code: str) -> None:
    kind = getattr(wengert, name, None) or getattr(builtins, name)
    with pytest.raises(kind) as raised, warnings.catch_warnings(), onp.errstate(all="ignore"):
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # the snippets that build a numpy.matrix
        exec(compile(code, "docs/errors.md", "exec"), {"onp": onp, "np": np, "wengert": wengert})
    assert start in str(raised.value).splitlines()[0], str(raised.value)
