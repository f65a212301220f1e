"""The two engines: the compiled hot paths (_speedups.c) and their Python reference (_core.py).

The suite runs on the compiled engine; this file checks that it really is the one in use,
and runs the rest of the suite again on the Python engine (WENGERT_PURE_PYTHON=1) in a
subprocess, so that the two cannot drift apart.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as onp
import pytest

import wengert
import wengert.numpy as np
from wengert import _core

PURE = os.environ.get("WENGERT_PURE_PYTHON", "") not in ("", "0")
HERE = pathlib.Path(__file__).parent


@pytest.mark.skipif(PURE, reason="this run asked for the Python engine")
def test_compiled_engine_is_in_use() -> None:
    assert _core._speedups is not None, "the C extension wengert._speedups was not built"
    assert _core.Box is _core._speedups.Box
    assert not _core.Box.__flags__ & (1 << 14), "boxes must stay outside the cycle collector"


@pytest.mark.skipif(PURE, reason="already running on the Python engine")
def test_suite_passes_on_the_python_engine() -> None:
    files = sorted(str(p) for p in HERE.glob("test_*.py") if p.name != pathlib.Path(__file__).name)
    env = {**os.environ, "WENGERT_PURE_PYTHON": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *files],
                         env=env, capture_output=True, text=True, cwd=HERE.parent)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def test_engines_agree_on_an_example() -> None:
    """Both engines in the same process cannot coexist, so compare with a fresh interpreter."""
    code = ("import numpy as onp, wengert, wengert.numpy as np\n"
            "x = onp.linspace(-1, 1, 7)\n"
            "f = lambda x: np.sum(np.tanh(x) * x ** 2 + np.maximum(x, 0.2) * 3.0 - x / 2.0)\n"
            "print(repr(wengert.grad(f)(x).tolist()))\n")
    env = {**os.environ, "WENGERT_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    x = onp.linspace(-1, 1, 7)
    here = wengert.grad(lambda x: np.sum(np.tanh(x) * x ** 2 + np.maximum(x, 0.2) * 3.0 - x / 2.0))(x)
    assert eval(out.stdout) == here.tolist()
