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


# ----------------------------------------------------------------------------- rule kernels
# _kernels.c computes a few rules in one pass, without branches; each must give the bits of the
# NumPy expression it replaces (_vjps keeps that as the fallback), and hand back to it what it
# cannot take.
def _arrays(dtype: str, shape: tuple = (4, 6)) -> tuple:
    rng = onp.random.default_rng(3)
    x, y, g = (rng.normal(size=shape).astype(dtype) for _ in range(3))
    x.flat[:3] = 0.0, -0.0, 0.25  # ties with the scalars below and with y
    y.flat[2:4] = 0.25, x.flat[3]
    g.flat[:2] = -1.5, 0.0
    return g, x, y


TIE_CASES = [  # (name, dtype, make (g, x, y) from _arrays, whether the kernel takes it)
    ("relu float64", "float64", lambda g, x, y: (g, x, 0.0), True),
    ("relu float32", "float32", lambda g, x, y: (g, x, 0.0), True),
    ("scalar first", "float64", lambda g, x, y: (g, 0.25, x), True),
    ("int scalar", "float32", lambda g, x, y: (g, x, 0), True),
    ("two arrays", "float64", lambda g, x, y: (g, x, y), True),
    ("two arrays float32", "float32", lambda g, x, y: (g, y, x), True),
    ("empty", "float64", lambda g, x, y: (g[:0], x[:0], 0.0), True),
    ("0-d tie", "float64", lambda g, x, y: (onp.array(g.flat[0]), onp.array(x.flat[0]), 0.0), True),
    ("float32 beside an inexact scalar", "float32", lambda g, x, y: (g, x, 0.1), False),
    ("infinite scalar", "float64", lambda g, x, y: (g, x, onp.inf), False),
    ("broadcast row", "float64", lambda g, x, y: (g, x, y[:1]), False),
    ("transposed", "float64", lambda g, x, y: (g.T, x.T, 0.0), False),
    ("two dtypes", "float64", lambda g, x, y: (g, x.astype("float32"), 0.0), False),
    ("complex", "complex128", lambda g, x, y: (g, x.real.copy(), 0.0), False),
    ("NaN in x", "float64", lambda g, x, y: (g, onp.where(x > 1, onp.nan, x), 0.0), "fallback"),
    ("infinite g where x loses", "float64", lambda g, x, y: (onp.where(x < -1, onp.inf, g), x, 0.0), "fallback"),
    ("subnormal half", "float64", lambda g, x, y: (onp.full_like(g, 5e-324), x, 0.0), "fallback"),
]


@pytest.mark.parametrize("name, dtype, make, taken", TIE_CASES, ids=[c[0] for c in TIE_CASES])
def test_tie_kernel_gives_the_bits_of_its_numpy_expression(name, dtype, make, taken) -> None:
    from wengert.numpy import _vjps
    g, x, y = make(*_arrays(dtype))
    with onp.errstate(all="ignore"):
        expected = g * _vjps._tie(x, y)
        got = _vjps._tie_times(g, x, y)
    assert got.shape == expected.shape
    assert got.astype(expected.dtype).tobytes() == expected.tobytes(), name  # the same bits
    kernels = _vjps._kernels
    if PURE:
        assert kernels is None
        return
    assert kernels is not None, "the C extension wengert.numpy._kernels was not built"
    eligible = _vjps._kernel_takes(g) and _vjps._like(x, g) and _vjps._like(y, g)
    assert eligible == bool(taken), f"{name}: the rule's check disagrees with the table"
    if eligible:  # the kernel runs, and says whether it met a floating point exception
        with onp.errstate(all="ignore"):
            assert kernels.tie_times(onp.empty_like(g), g, x, y) is (taken is True)


def _mask(g: onp.ndarray) -> onp.ndarray:
    return onp.asarray(onp.random.default_rng(4).random(g.shape) < 0.5)


SELECT_CASES = [  # (name, dtype, make (c, g) from _arrays' g, whether the kernel takes it)
    ("float64", "float64", lambda g: (_mask(g), g), True),
    ("float32", "float32", lambda g: (_mask(g), g), True),
    ("NaN, infinity and -0 in g", "float64",
     lambda g: (_mask(g), onp.where(onp.arange(g.size).reshape(g.shape) % 3 == 0, onp.nan,
                                    onp.where(g > 1, onp.inf, g * 0.0))), True),
    ("empty", "float64", lambda g: (_mask(g)[:0], g[:0]), True),
    ("integer condition", "float64", lambda g: (_mask(g).astype(int), g), False),
    ("broadcast condition", "float64", lambda g: (_mask(g)[:1], g), False),
    ("transposed", "float64", lambda g: (_mask(g).T, g.T), False),
    ("complex", "complex128", lambda g: (_mask(g), g), False),
]


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("name, dtype, make, taken", SELECT_CASES, ids=[c[0] for c in SELECT_CASES])
def test_select_kernel_gives_the_bits_of_where(name, dtype, make, taken, keep) -> None:
    from wengert.numpy import _vjps
    c, g = make(_arrays(dtype)[0])
    expected = onp.where(c, g, 0) if keep else onp.where(c, 0, g)
    got = _vjps._select(c, g, keep)
    assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes(), name
    if not PURE:
        eligible = _vjps._kernel_takes(g) and c.dtype == bool and \
            c.shape == g.shape and c.flags.c_contiguous
        assert eligible == taken, f"{name}: the rule's check disagrees with the table"


def test_tie_kernel_leaves_numpy_errors_to_numpy() -> None:
    """Where the kernel meets a NaN, the rule falls back, so NumPy's error state still applies."""
    x = onp.array([1.0, onp.nan, -2.0])
    f = lambda x: np.sum(np.maximum(x, 0.0))
    assert onp.array_equal(wengert.grad(f)(x), [1.0, 0.0, 0.0])
    g = onp.array([onp.inf, 1.0, onp.inf])
    with onp.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        wengert.vjp(lambda x: np.maximum(x, 0.0), onp.array([1.0, 0.5, -2.0]))[1](g)


@pytest.mark.skipif(PURE, reason="this run asked for the Python engine")
@pytest.mark.parametrize("kernel, bad", [
    ("tie_times", "g a number"), ("tie_times", "both numbers"), ("tie_times", "out is g"),
    ("tie_times", "sizes differ"), ("tie_times", "int64"), ("select", "float condition"),
    ("select", "sizes differ"), ("select", "out is g"), ("select", "g a number")])
def test_kernels_refuse_what_they_cannot_take(kernel, bad) -> None:
    from wengert.numpy import _kernels
    a, b, c = onp.ones(4), onp.zeros(4), onp.ones(4, bool)
    args = {("tie_times", "g a number"): (onp.empty(4), 1.0, a, 0.0),
            ("tie_times", "both numbers"): (onp.empty(4), a, 1.0, 0.0),
            ("tie_times", "out is g"): (a, a, b, 0.0),
            ("tie_times", "sizes differ"): (onp.empty(4), a, onp.zeros(3), 0.0),
            ("tie_times", "int64"): (onp.empty(4, "int64"), onp.ones(4, "int64"), onp.zeros(4, "int64"), 0),
            ("select", "float condition"): (onp.empty(4), a, b, True),
            ("select", "sizes differ"): (onp.empty(4), onp.ones(3, bool), a, True),
            ("select", "out is g"): (a, c, a, True),
            ("select", "g a number"): (onp.empty(4), c, 1.0, True)}[kernel, bad]
    with pytest.raises((ValueError, BufferError)):
        getattr(_kernels, kernel)(*args)
