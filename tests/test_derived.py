"""NumPy functions built from primitives (wengert/numpy/_derived.py).

For each case: the value equals NumPy's, computed through ``wengert.numpy`` and through plain
``numpy`` on traced values (dispatch), and the derivatives match central finite differences
in reverse and forward mode to second order. A function without a case fails the coverage
test.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as onp
import pytest

import wengert
import wengert.numpy as wnp
from wengert.numpy import _derived

R = onp.random.default_rng(3)


def real(*shape: int) -> Any:
    return R.normal(size=shape)


def pos(*shape: int) -> Any:
    return R.uniform(0.5, 2.0, shape)


class Case(NamedTuple):
    key: Any
    f: Callable  # f(module, *args): module is numpy or wengert.numpy
    args: tuple
    id: str


CASES: list[Case] = []


def case(key: Any, f: Callable, *args: Any, id: str = "") -> None:
    CASES.append(Case(key, f, args, f"{key.__name__}-{id or len([c for c in CASES if c.key is key])}"))


with_nan = real(3, 4)
with_nan[0, 1] = with_nan[2, 2] = onp.nan
N = onp.isnan(with_nan)


def nan_in(x: Any, m: Any) -> Any:
    """x with NaN at fixed places (a constant mask, so finite differences stay finite)."""
    return m.where(N, onp.nan, x)


# ----------------------------------------------------------------------------- elementwise
case(onp.sinc, lambda m, x: m.sinc(x), onp.array([-1.3, -0.2, 0.0, 1e-5, 0.7, 2.5]))
case(onp.angle, lambda m, z: m.angle(z), real(4) + 1j * real(4))
case(onp.angle, lambda m, z: m.angle(z, deg=True), real(3) + 1j * real(3), id="deg")
case(onp.nan_to_num, lambda m, x: m.nan_to_num(nan_in(x, m), nan=2.0), real(3, 4))
case(onp.real_if_close, lambda m, z: m.real_if_close(z * 1.0 + 0j), real(3))
case(onp.frexp, lambda m, x: m.frexp(x)[0], real(5) * 10)
case(onp.vecdot, lambda m, x, y: m.vecdot(x, y), real(3, 4), real(4))
case(onp.vecdot, lambda m, x, y: m.vecdot(x, y, axis=0), real(3, 2) + 1j * real(3, 2), real(3, 2), id="complex")
case(onp.matvec, lambda m, a, v: m.matvec(a, v), real(2, 3, 4), real(4))
case(onp.vecmat, lambda m, v, a: m.vecmat(v, a), real(3), real(2, 3, 4))

# ----------------------------------------------------------------------------- reductions
for key, kw in [(onp.nansum, {}), (onp.nanprod, {"axis": 1}), (onp.nanmean, {"axis": 0}),
                (onp.nanmax, {"axis": 1}), (onp.nanmin, {}), (onp.nanvar, {"axis": 1, "ddof": 1}),
                (onp.nanstd, {"axis": 0}), (onp.nancumsum, {"axis": 1}), (onp.nancumprod, {"axis": 0})]:
    case(key, lambda m, x, key=key, kw=kw: getattr(m, key.__name__)(nan_in(x, m), **kw), real(3, 4))
case(onp.cumprod, lambda m, x: m.cumprod(x), real(5))
case(onp.cumprod, lambda m, x: m.cumprod(x, axis=1), real(3, 4) * (R.random((3, 4)) > 0.3), id="zeros")
case(onp.cumprod, lambda m, x: m.cumprod(x, axis=0), real(4, 2), id="axis0")
case(onp.cumulative_sum, lambda m, x: m.cumulative_sum(x, axis=1, include_initial=True), real(2, 3))
case(onp.cumulative_prod, lambda m, x: m.cumulative_prod(x), real(4))
case(onp.average, lambda m, x: m.average(x, axis=1), real(3, 4))
case(onp.average, lambda m, x, w: m.average(x, axis=1, weights=w), real(3, 4), pos(4), id="weights")
case(onp.average, lambda m, x, w: m.average(x, weights=w), real(3, 4), pos(3, 4), id="full-weights")
case(onp.ptp, lambda m, x: m.ptp(x, axis=0), real(3, 4))
case(onp.quantile, lambda m, x: m.quantile(x, 0.3), real(7))
case(onp.quantile, lambda m, x, q: m.quantile(x, q, axis=1, keepdims=True), real(3, 5), onp.array([0.2, 0.65]),
     id="traced-q")
case(onp.quantile, lambda m, x: m.quantile(x, [0.1, 0.9], axis=(0, 2)), real(3, 2, 4), id="two-axes")
case(onp.percentile, lambda m, x: m.percentile(x, 40.0, axis=0), real(5, 3))
case(onp.median, lambda m, x: m.median(x), real(6))
case(onp.median, lambda m, x: m.median(x, axis=1), real(3, 5), id="axis")

# ----------------------------------------------------------------------------- differences, integrals
case(onp.diff, lambda m, x: m.diff(x), real(5))
case(onp.diff, lambda m, x: m.diff(x, n=2, axis=0), real(4, 3), id="n2")
case(onp.diff, lambda m, x, p: m.diff(x, prepend=p, append=0.5), real(4), 1.3, id="ends")
case(onp.ediff1d, lambda m, x: m.ediff1d(x, to_begin=[1.0], to_end=2.0), real(2, 3))
case(onp.gradient, lambda m, f: m.gradient(f), real(6))
case(onp.gradient, lambda m, f: m.gradient(f, 0.5, edge_order=2), real(6), id="edge2")
case(onp.gradient, lambda m, f: m.gradient(f, axis=1), real(3, 5), id="axis")
case(onp.gradient, lambda m, f, x: m.gradient(f, x), real(5), onp.cumsum(pos(5)), id="coordinates")
case(onp.gradient, lambda m, f, x: m.gradient(f, x, edge_order=2), real(5), onp.cumsum(pos(5)), id="coords-edge2")
case(onp.gradient, lambda m, f: m.stack(m.gradient(f)), real(3, 4), id="2d")
case(onp.trapezoid, lambda m, y: m.trapezoid(y), real(6))
case(onp.trapezoid, lambda m, y, x: m.trapezoid(y, x), real(5), onp.cumsum(pos(5)), id="x")
case(onp.trapezoid, lambda m, y: m.trapezoid(y, dx=0.3, axis=0), real(4, 3), id="axis")
xp_ = onp.cumsum(pos(6))
case(onp.interp, lambda m, x, xp, fp: m.interp(x, xp, fp), onp.array([xp_[0] - 0.3, xp_[1] + 0.1, xp_[3] + 0.2,
     xp_[-1] + 1.0]), xp_, real(6))

# ----------------------------------------------------------------------------- sorting, selection
case(onp.sort, lambda m, x: m.sort(x), real(6))
case(onp.sort, lambda m, x: m.sort(x, axis=0), real(4, 3), id="axis0")
case(onp.sort, lambda m, x: m.sort(x, axis=None), real(3, 2), id="flat")
case(onp.partition, lambda m, x: m.partition(x, 2)[:3], real(7))
case(onp.take, lambda m, x: m.take(x, [0, 2, 2, -1]), real(3, 4))
case(onp.take, lambda m, x: m.take(x, [1, 5], axis=1, mode="wrap"), real(3, 4), id="wrap")
case(onp.take_along_axis, lambda m, x: m.take_along_axis(x, onp.array([[0, 2], [1, 1], [3, 0]]), axis=1), real(3, 4))
case(onp.compress, lambda m, x: m.compress([True, False, True], x, axis=0), real(3, 2))
case(onp.extract, lambda m, x: m.extract(onp.array([[1, 0], [0, 1]]), x), real(2, 2))
case(onp.select, lambda m, x, y: m.select([onp.array([True, False, False]), onp.array([True, True, False])],
                                          [x, y], default=-1.0), real(3), real(3))
case(onp.choose, lambda m, a, b: m.choose(onp.array([0, 1, 1, 0]), [a, b]), real(4), real(4))
case(onp.unique, lambda m, x: m.unique(m.concatenate([x, x[:2]])), real(5))

# ----------------------------------------------------------------------------- rearranging
case(onp.roll, lambda m, x: m.roll(x, 2), real(5))
case(onp.roll, lambda m, x: m.roll(x, (1, -1), axis=(0, 1)), real(3, 4), id="axes")
case(onp.rot90, lambda m, x: m.rot90(x), real(2, 3))
case(onp.rot90, lambda m, x: m.rot90(x, k=3, axes=(1, 2)), real(2, 3, 4), id="k3")
case(onp.rot90, lambda m, x: m.rot90(x, k=2), real(2, 3), id="k2")
case(onp.flipud, lambda m, x: m.flipud(x), real(3, 2))
case(onp.fliplr, lambda m, x: m.fliplr(x), real(3, 2))
case(onp.tile, lambda m, x: m.tile(x, (2, 3)), real(2, 2))
case(onp.repeat, lambda m, x: m.repeat(x, [1, 3, 2], axis=0), real(3, 2))
case(onp.pad, lambda m, x: m.pad(x, ((1, 2), (0, 1)), constant_values=0.5), real(2, 3))
for mode in ("edge", "reflect", "symmetric", "wrap"):
    case(onp.pad, lambda m, x, mode=mode: m.pad(x, (2, 3), mode=mode), real(4), id=mode)
case(onp.resize, lambda m, x: m.resize(x, (3, 3)), real(2, 2))
case(onp.append, lambda m, x, y: m.append(x, y, axis=0), real(2, 3), real(1, 3))
case(onp.insert, lambda m, x, v: m.insert(x, [1, 3], v), real(4), real(2))
case(onp.insert, lambda m, x, v: m.insert(x, 1, v, axis=1), real(3, 2), real(3), id="column")
case(onp.delete, lambda m, x: m.delete(x, [0, 2], axis=1), real(2, 4))
case(onp.rollaxis, lambda m, x: m.rollaxis(x, 2), real(2, 3, 4))
case(onp.matrix_transpose, lambda m, x: m.matrix_transpose(x), real(2, 3, 4))
case(onp.unstack, lambda m, x: m.unstack(x, axis=1)[1], real(2, 3))
case(onp.broadcast_arrays, lambda m, x, y: m.broadcast_arrays(x, y)[0] * m.broadcast_arrays(x, y)[1], real(3, 1),
     real(4))
case(onp.meshgrid, lambda m, x, y: m.meshgrid(x, y)[0] * m.meshgrid(x, y)[1] ** 2, real(3), real(2))
case(onp.meshgrid, lambda m, x, y: m.meshgrid(x, y, indexing="ij", sparse=True)[1] * 2.0, real(3), real(2), id="ij")
for key in (onp.atleast_1d, onp.atleast_2d, onp.atleast_3d):
    case(key, lambda m, x, key=key: getattr(m, key.__name__)(x) * 2.0, real(3))
    case(key, lambda m, x, key=key: getattr(m, key.__name__)(x) * 2.0, 1.5, id="scalar")
for key in (onp.hstack, onp.vstack, onp.dstack, onp.column_stack):
    case(key, lambda m, x, y, key=key: getattr(m, key.__name__)([x, y]), real(2, 3), real(2, 3))
    case(key, lambda m, x, y, key=key: getattr(m, key.__name__)((x, y)), real(3), real(3), id="1d")
for key in (onp.hsplit, onp.vsplit, onp.dsplit):
    case(key, lambda m, x, key=key: getattr(m, key.__name__)(x, 2)[1] * 3.0, real(2, 4, 2))
case(onp.block, lambda m, a, b, c, d: m.block([[a, b], [c, d]]), real(2, 2), real(2, 1), real(1, 1), real(1, 2))

# ----------------------------------------------------------------------------- matrices
case(onp.diag, lambda m, v: m.diag(v, k=1), real(3))
case(onp.diag, lambda m, a: m.diag(a, k=-1), real(3, 4), id="extract")
case(onp.diagflat, lambda m, v: m.diagflat(v), real(2, 2))
case(onp.diagonal, lambda m, a: m.diagonal(a, offset=1, axis1=1, axis2=2), real(2, 3, 4))
case(onp.trace, lambda m, a: m.trace(a), real(3, 3))
case(onp.trace, lambda m, a: m.trace(a, offset=-1, axis1=1, axis2=0), real(3, 4), id="offset")
case(onp.triu, lambda m, a: m.triu(a, k=1), real(3, 4))
case(onp.tril, lambda m, a: m.tril(a), real(2, 3, 3))
case(onp.kron, lambda m, a, b: m.kron(a, b), real(2, 3), real(2, 2))
case(onp.kron, lambda m, a, b: m.kron(a, b), real(3), real(2, 2), id="mixed")
case(onp.cross, lambda m, a, b: m.cross(a, b), real(4, 3), real(3))
case(onp.cross, lambda m, a, b: m.cross(a, b), real(2), real(2), id="2d")  # deprecated in NumPy 2, still supported
case(onp.cross, lambda m, a, b: m.cross(a, b, axisa=0, axisb=0, axisc=0), real(3, 2), real(3, 2), id="axes")
case(onp.vdot, lambda m, a, b: m.vdot(a, b), real(2, 3) + 1j * real(2, 3), real(6))

# ----------------------------------------------------------------------------- constructing
case(onp.linspace, lambda m, a, b: m.linspace(a, b, 5), 0.3, 2.1)
case(onp.linspace, lambda m, a, b: m.linspace(a, b, 4, endpoint=False, axis=1), real(2), real(2), id="arrays")
case(onp.linspace, lambda m, a, b: m.linspace(a, b, 3, retstep=True)[1], 0.5, 1.7, id="retstep")
case(onp.logspace, lambda m, a, b: m.logspace(a, b, 4, base=2.0), 0.1, 1.3)
case(onp.geomspace, lambda m, a, b: m.geomspace(a, b, 5), 0.5, 3.0)

# ----------------------------------------------------------------------------- polynomials, signals
case(onp.polyval, lambda m, p, x: m.polyval(p, x), real(4), real(3))
case(onp.polyder, lambda m, p: m.polyder(p, 2), real(5))
case(onp.polyint, lambda m, p: m.polyint(p, 2, k=[1.0, 2.0]), real(3))
case(onp.polyadd, lambda m, a, b: m.polyadd(a, b), real(3), real(5))
case(onp.polysub, lambda m, a, b: m.polysub(a, b), real(4), real(2))
case(onp.polymul, lambda m, a, b: m.polymul(a, b), real(3), real(4))
for mode in ("full", "same", "valid"):
    case(onp.convolve, lambda m, a, v, mode=mode: m.convolve(a, v, mode), real(6), real(3), id=mode)
    case(onp.convolve, lambda m, a, v, mode=mode: m.convolve(a, v, mode), real(3), real(5), id=mode + "-short-first")
    case(onp.correlate, lambda m, a, v, mode=mode: m.correlate(a, v, mode), real(6), real(4), id=mode)
    case(onp.correlate, lambda m, a, v, mode=mode: m.correlate(a, v, mode), real(3), real(5) + 1j * real(5),
         id=mode + "-complex")

# ----------------------------------------------------------------------------- statistics
case(onp.cov, lambda m, x: m.cov(x), real(3, 6))
case(onp.cov, lambda m, x, y: m.cov(x, y, rowvar=False, bias=True), real(6, 2), real(6, 1), id="y")
case(onp.cov, lambda m, x, w: m.cov(x, aweights=w), real(2, 5), pos(5), id="aweights")
case(onp.cov, lambda m, x: m.cov(x, fweights=[1, 2, 1, 3, 1]), real(2, 5), id="fweights")
case(onp.corrcoef, lambda m, x: m.corrcoef(x), real(3, 6))
case(onp.bincount, lambda m, w: m.bincount(onp.array([0, 2, 2, 4, 0]), weights=w), real(5))


# ============================================================================= tests
pytestmark = pytest.mark.filterwarnings("ignore:Arrays of 2-dimensional vectors are deprecated")


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_value_matches_numpy(c: Case) -> None:
    expected = c.f(onp, *c.args)
    for module in (wnp, onp):  # wengert.numpy, and plain NumPy dispatching on traced values
        out, _ = wengert.vjp(lambda *xs: c.f(module, *xs), *c.args)
        onp.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_derivatives_match_finite_differences(c: Case) -> None:
    wengert.gradcheck(lambda *xs: c.f(wnp, *xs), *c.args, order=2)


def test_every_derived_function_has_a_case() -> None:
    covered = {c.key for c in CASES}
    missing = [f.__name__ for f in _derived.DERIVED if f not in covered]
    assert not missing, f"derived functions without a case: {missing}"


def test_untraced_calls_are_numpy_itself() -> None:
    x = real(4, 3)
    onp.testing.assert_array_equal(wnp.sort(x, axis=0), onp.sort(x, axis=0))
    onp.testing.assert_array_equal(wnp.pad(x, 1, mode="reflect"), onp.pad(x, 1, mode="reflect"))


@pytest.mark.parametrize("bad, match", [
    (lambda x: wnp.quantile(x, 0.5, method="nearest"), "quantile: only method='linear'"),
    (lambda x: wnp.pad(x, 1, mode="linear_ramp"), "pad: mode 'linear_ramp'"),
    (lambda x: wnp.interp(x, onp.arange(3.0), onp.arange(3.0), period=2.0), "interp: period="),
    (lambda x: wnp.nansum(x, out=onp.empty(())), "nansum: out= cannot be used"),
])
def test_unsupported_options_are_refused(bad: Callable, match: str) -> None:
    with pytest.raises((NotImplementedError, TypeError), match=match):
        wengert.grad(lambda x: wnp.sum(bad(x)))(real(3))
