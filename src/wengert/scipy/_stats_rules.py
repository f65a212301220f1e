"""Two small private primitives for the multivariate normal density: a linear solve and the
log-determinant, with their rules (see wengert/numpy/_vjps.py and _jvps.py for the
conventions). They live here so that ``wengert.scipy.stats`` depends on nothing but NumPy's
own ``linalg`` for values. Both take matrices in the last two dimensions (``b`` too: no
vectors), and stacks of them broadcast.

For ``x = solve(a, b)``: ``db = solve(a^T, g)`` and ``da = -db x^T``; forward,
``dx = solve(a, tb - ta x)``. For ``l = log|det a|``: ``da = g a^-T`` and ``dl = <a^-T, ta>``.
The rules call the primitives again, so they are differentiable to any order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import wengert.numpy as wnp

from .._core import strip
from ..numpy._jvps import _bcast, _lead
from ..numpy._wrap import differentiable


def _solve_impl(a: Any, b: Any) -> Any:
    return np.linalg.solve(a, b)


def _logdet_impl(a: Any) -> Any:
    return np.linalg.slogdet(a)[1]


def _mT(x: Any) -> Any:  # NumPy's name for the matrix transpose
    return wnp.swapaxes(x, -1, -2)


def _inverse_transpose(a: Any) -> Any:
    eye = np.eye(np.shape(strip(a))[-1], dtype=np.result_type(strip(a), float))
    return _mT(solve(a, np.broadcast_to(eye, np.shape(strip(a)))))


def _solve_a(g, x, a, b):
    return -solve(_mT(a), g) @ _mT(x)


def _solve_b(g, x, a, b):
    return solve(_mT(a), g)


def _solve_a_jvp(t, x, a, b):  # the batch dimensions go in front of any stack dimensions
    return -solve(a, _bcast(t, _lead(t, a), np.ndim(strip(x))) @ x)


def _solve_b_jvp(t, x, a, b):
    return solve(a, _bcast(t, _lead(t, b), np.ndim(strip(x))))


def _logdet_vjp(g, ans, a):
    return wnp.expand_dims(g, (-1, -2)) * _inverse_transpose(a)


def _logdet_jvp(t, ans, a):
    return wnp.sum(t * _inverse_transpose(a), axis=(-1, -2))


solve = differentiable(_solve_impl, (_solve_a, _solve_b), name="solve", register=False,
                       jvps=(_solve_a_jvp, _solve_b_jvp))
logdet = differentiable(_logdet_impl, (_logdet_vjp,), name="logdet", register=False,
                        jvps=(_logdet_jvp,))
solve.__name__, logdet.__name__ = "solve", "logdet"

# Listed for the tests, which need a case for each.
PRIMITIVES = {"solve": solve, "logdet": logdet}
