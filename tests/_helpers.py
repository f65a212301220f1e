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


def random_like(x: Any, rng: Any, batch: tuple = ()) -> Any:
    """Random values shaped like ``x`` (behind ``batch``), complex if ``x`` is."""
    import wengert

    x = onp.asarray(wengert.stop_gradient(x))
    r = rng.normal(size=batch + x.shape)
    return r + 1j * rng.normal(size=r.shape) if x.dtype.kind == "c" else r


def check_transpose(f: Callable, args: tuple, finite: bool = False, tol: float = 1e-10) -> None:
    """<u, J v> from forward mode equals <J^T u, v> from reverse mode (real parts, which is
    what the complex convention makes the two transposes of each other for), for a batch of
    two tangents pushed at once; and the batch agrees with pushing them one by one. With
    ``finite``, every derivative found must be finite (finite differences cannot tell a NaN
    or an infinity apart, so the other checks would not catch one)."""
    import pytest

    import wengert
    from wengert._tree import flatten, unflatten

    rng = onp.random.default_rng(7)
    out, pull = wengert.vjp(f, *args)
    outs, structure = flatten(out)
    us = [random_like(o, rng) for o in outs]
    vs = [random_like(x, rng, (2,)) for x in args]
    _, jv = wengert.jvp(f, args, tuple(vs), batched=True)
    jvs = flatten(jv)[0]
    jtu = pull(unflatten(structure, us))
    if finite:
        assert all(onp.all(onp.isfinite(found)) for found in (*jvs, *jtu))
    for b in range(2):
        lhs = sum(onp.real(onp.sum(u * onp.asarray(t)[b])) for u, t in zip(us, jvs))
        rhs = sum(onp.real(onp.sum(onp.asarray(g) * v[b])) for g, v in zip(jtu, vs))
        assert lhs == pytest.approx(rhs, rel=1e-9, abs=tol)
        _, single = wengert.jvp(f, args, tuple(v[b] for v in vs))
        for t, s in zip(jvs, flatten(single)[0]):
            onp.testing.assert_allclose(onp.asarray(t)[b], s, rtol=tol, atol=tol)


def written(m: Any, name: str, a: Any, *args: Any) -> Any:
    """NumPy's in-place function ``name`` applied to a copy of ``a`` (``m`` is numpy), or
    wengert's functional form of it (otherwise)."""
    import wengert.numpy as wnp

    if m is onp:
        out = onp.array(a, copy=True)
        getattr(onp, name)(out, *args)
        return out
    return getattr(wnp, name)(a, *args, inplace=False)
