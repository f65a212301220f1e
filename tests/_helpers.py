"""Small helpers shared by the tests: central finite differences and a float comparison."""

from __future__ import annotations

from typing import Any, Callable

import numpy as onp


def fd_grad(f: Callable, x: Any, eps: float = 1e-6) -> Any:
    """Central finite-difference gradient of a real scalar function of a float or an array."""
    if isinstance(x, float):
        return (float(f(x + eps)) - float(f(x - eps))) / (2 * eps)
    x = onp.asarray(x, dtype=float)
    g = onp.zeros_like(x)
    for idx in onp.ndindex(x.shape):
        e = onp.zeros_like(x)
        e[idx] = eps
        g[idx] = (float(f(x + e)) - float(f(x - e))) / (2 * eps)
    return g


def close(a: Any, b: Any, rtol: float = 1e-7, atol: float = 1e-9) -> bool:
    """Elementwise closeness, of complex values too (their imaginary parts are compared)."""
    a, b = onp.asarray(a), onp.asarray(b)
    kind = complex if onp.iscomplexobj(a) or onp.iscomplexobj(b) else float
    return onp.allclose(a.astype(kind), b.astype(kind), rtol=rtol, atol=atol)
