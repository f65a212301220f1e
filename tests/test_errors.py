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


@pytest.mark.parametrize("index", [1, -1, (1,), onp.int64(1)])
def test_a_traced_number_written_into_a_plain_array_names_the_fix_in_the_cause(index) -> None:
    """NumPy raises its own ValueError at an integer index; wengert's message is its cause."""
    def f(x):
        h = onp.zeros(3)
        h[index] = x[0] * 2.0
        return np.sum(h)
    with pytest.raises(ValueError, match="setting an array element with a sequence") as raised:
        wengert.grad(f)(onp.ones(3))
    assert isinstance(raised.value.__cause__, wengert.ConversionError)
    assert "writing a traced value into a plain array would drop its gradient" in str(raised.value.__cause__)
