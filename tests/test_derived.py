"""NumPy functions built from primitives (wengert/numpy/_derived.py).

For each case: the value equals NumPy's, computed through ``wengert.numpy`` and through plain
``numpy`` on traced values (dispatch), and the derivatives match central finite differences
in reverse and forward mode to second order. A function without a case fails the coverage
test.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, NamedTuple

import numpy as onp
import pytest

import wengert
import wengert.numpy as wnp
from _helpers import close, fd_grad, written
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
W = onp.array([[False, True, True, True], [True, True, False, True], [True, False, True, True]])  # where= for (3, 4)


def nan_in(x: Any, m: Any) -> Any:
    """x with NaN at fixed places (a constant mask, so finite differences stay finite)."""
    return m.where(N, onp.nan, x)


# ----------------------------------------------------------------------------- elementwise
case(onp.sinc, lambda m, x: m.sinc(x), onp.array([-1.3, -0.2, 0.0, 1e-5, 0.7, 2.5]))
case(onp.sinc, lambda m, x: m.sinc(x[0]), onp.array([0.0, 0.3]), id="a-scalar-at-0")
case(onp.angle, lambda m, z: m.angle(z), real(4) + 1j * real(4))
case(onp.angle, lambda m, z: m.angle(z, deg=True), real(3) + 1j * real(3), id="deg")
case(onp.nan_to_num, lambda m, x: m.nan_to_num(nan_in(x, m), nan=2.0), real(3, 4))
case(onp.real_if_close, lambda m, z: m.real_if_close(z * 1.0 + 0j), real(3))
case(onp.real_if_close, lambda m, x: m.real_if_close(x[0]), real(2), id="a-scalar-gives-0-d")
case(onp.nan_to_num, lambda m, x: m.nan_to_num(m.reshape(x, ())), real(1), id="0-d-gives-a-scalar")
case(onp.frexp, lambda m, x: m.frexp(x)[0], real(5) * 10)
case(onp.vecdot, lambda m, x, y: m.vecdot(x, y), real(3, 4), real(4))
case(onp.vecdot, lambda m, x, y: m.vecdot(x, y, axis=0), real(3, 2) + 1j * real(3, 2), real(3, 2), id="complex")
case(onp.matvec, lambda m, a, v: m.matvec(a, v), real(2, 3, 4), real(4))
case(onp.vecmat, lambda m, v, a: m.vecmat(v, a), real(3), real(2, 3, 4))
case(onp.vecdot, lambda m, x, y: m.vecdot(x, y, axes=[(0,), (1,)]), real(3, 4), real(4, 3), id="axes")
case(onp.vecdot, lambda m, x, y: m.vecdot(x, y, axis=0, keepdims=True), real(3, 2), real(3, 1), id="axis-keepdims")
case(onp.vecdot, lambda m, x, y: m.vecdot(x, y, axes=[1, 0, (0,)], keepdims=True), real(2, 3, 4), real(3, 4),
     id="axes-keepdims")
case(onp.matvec, lambda m, a, v: m.matvec(a, v, axes=[(1, 0), 0, 0]), real(3, 4), real(3), id="axes")
case(onp.matvec, lambda m, a, v: m.matvec(a, v, axes=[(0, 2), 1, 0]), real(2, 3, 4), real(3, 4), id="axes-batch")
case(onp.vecmat, lambda m, v, a: m.vecmat(v, a, axes=[0, (0, 1), 0]), real(3, 2) + 1j * real(3, 2), real(3, 4),
     id="axes")

# ----------------------------------------------------------------------------- reductions
for key, kw in [(onp.nansum, {}), (onp.nanprod, {"axis": 1}), (onp.nanmean, {"axis": 0}),
                (onp.nanmax, {"axis": 1}), (onp.nanmin, {}), (onp.nanvar, {"axis": 1, "ddof": 1}),
                (onp.nanstd, {"axis": 0}), (onp.nancumsum, {"axis": 1}), (onp.nancumprod, {"axis": 0})]:
    case(key, lambda m, x, key=key, kw=kw: getattr(m, key.__name__)(nan_in(x, m), **kw), real(3, 4))
case(onp.nansum, lambda m, x: m.nansum(nan_in(x, m), 1, onp.complex128, None, True, 0.5, W), real(3, 4), id="options")
case(onp.nanprod, lambda m, x: m.nanprod(nan_in(x, m), axis=0, where=W, initial=2.0), real(3, 4), id="where")
case(onp.nanmax, lambda m, x: m.nanmax(nan_in(x, m), axis=1, where=W, initial=-0.5, keepdims=True), real(3, 4),
     id="where")
case(onp.nanmin, lambda m, x: m.nan_to_num(m.nanmin(m.where(W, onp.nan, x), axis=0)), real(3, 4), id="all-nan")
case(onp.nanmean, lambda m, x: m.nanmean(nan_in(x, m), axis=1, where=W), real(3, 4), id="where")
case(onp.nanmean, lambda m, x: m.nanmean(nan_in(x, m), where=W, keepdims=True), real(3, 4), id="where-all")
case(onp.nanvar, lambda m, x: m.nanvar(nan_in(x, m), axis=1, correction=1), real(3, 4), id="correction")
case(onp.nanvar, lambda m, x: m.nanvar(nan_in(x, m)), real(3, 4), id="all-a-scalar")
case(onp.nanstd, lambda m, x: m.nanstd(nan_in(x, m)), real(3, 4), id="all-a-scalar")
case(onp.nanmin, lambda m, x: m.nanmin(nan_in(x, m)), real(3, 4), id="all-a-scalar")
case(onp.nanvar, lambda m, x: m.nanvar(nan_in(x, m), axis=1, where=W, ddof=1), real(3, 4), id="where")
case(onp.nanvar, lambda m, x, c: m.nanvar(nan_in(x, m), axis=1, keepdims=True, mean=c), real(3, 4), real(3, 1),
     id="mean")
case(onp.nanvar, lambda m, z: m.nanvar(nan_in(z, m), axis=0, where=W), real(3, 4) + 1j * real(3, 4), id="complex")
case(onp.nanvar, lambda m, x: m.nan_to_num(m.nanvar(nan_in(x, m), axis=0, ddof=2), nan=-1.0), real(3, 4),
     id="no-dof")
case(onp.nanstd, lambda m, x, c: m.nanstd(nan_in(x, m), axis=1, where=W, correction=1, mean=c), real(3, 4),
     real(3, 1), id="options")
case(onp.nanstd, lambda m, x: m.nanstd(m.where(onp.array([[0, 1, 1], [0, 0, 0]], bool), onp.nan, x), axis=1),
     real(2, 3), id="one-number")  # std 0 whatever that number is
case(onp.cumprod, lambda m, x: m.cumprod(x), real(5))
case(onp.cumprod, lambda m, x: m.cumprod(x, axis=1), real(3, 4) * (R.random((3, 4)) > 0.3), id="zeros")
case(onp.cumprod, lambda m, x: m.cumprod(x, axis=0), real(4, 2), id="axis0")
case(onp.cumprod, lambda m, x: m.cumprod(x), onp.array([3e-160, 2e-160, 1.5, 4e-1]), id="underflow")
case(onp.cumulative_sum, lambda m, x: m.cumulative_sum(x, axis=1, include_initial=True), real(2, 3))
case(onp.cumulative_prod, lambda m, x: m.cumulative_prod(x), real(4))
case(onp.cumulative_prod, lambda m, x: m.cumulative_prod(x, include_initial=True), onp.array(1.7), id="0-d")
case(onp.average, lambda m, x: m.average(x, axis=1), real(3, 4))
case(onp.average, lambda m, x, w: m.average(x, axis=1, weights=w), real(3, 4), pos(4), id="weights")
case(onp.average, lambda m, x, w: m.average(x, weights=w), real(3, 4), pos(3, 4), id="full-weights")
case(onp.average, lambda m, x, w: m.stack(m.average(x, axis=0, weights=w, returned=True, keepdims=True)), real(3, 2),
     pos(3), id="returned")
case(onp.average, lambda m, x, w: m.average(x, axis=(0, 2), weights=w), real(2, 3, 4), pos(2, 4), id="axes-weights")
case(onp.average, lambda m, x, w: m.stack(m.average(x, axis=(2, 0), weights=w, returned=True, keepdims=True)),
     real(2, 3, 4), pos(4, 2), id="axes-weights-order")
case(onp.ptp, lambda m, x: m.ptp(x, axis=0), real(3, 4))
case(onp.quantile, lambda m, x: m.quantile(x, 0.3), real(7))
case(onp.quantile, lambda m, x, q: m.quantile(x, q, axis=1, keepdims=True), real(3, 5), onp.array([0.2, 0.65]),
     id="traced-q")
case(onp.quantile, lambda m, x: m.quantile(x, [0.1, 0.9], axis=(0, 2)), real(3, 2, 4), id="two-axes")
case(onp.percentile, lambda m, x: m.percentile(x, 40.0, axis=0), real(5, 3))
for method in ("lower", "higher", "nearest", "midpoint"):  # at q (n - 1) = 1.8, 3.5 and 6 (an element), axis 1
    case(onp.quantile, lambda m, x, method=method: m.quantile(x, [0.3, 7 / 12, 1.0], axis=1, method=method),
         real(3, 7), id=method)
    case(onp.nanpercentile, lambda m, x, method=method: m.nanpercentile(nan_in(x, m), 45.0, axis=0, method=method),
         real(3, 4), id=method)
case(onp.quantile, lambda m, x: m.quantile(x, 0.3, 0, None, False, "linear", True), real(4, 3), id="positional")
case(onp.median, lambda m, x: m.median(x), real(6))
case(onp.median, lambda m, x: m.median(x, axis=1), real(3, 5), id="axis")
case(onp.median, lambda m, x: m.median(x, axis=0), real(0, 3), id="empty-slices-nan")
case(onp.nanmedian, lambda m, x: m.nanmedian(x), real(0), id="empty-nan")
case(onp.nanmedian, lambda m, x: m.nanmedian(nan_in(x, m)), real(3, 4))
case(onp.nanmedian, lambda m, x: m.nanmedian(nan_in(x, m), axis=1, keepdims=True), real(3, 4), id="axis")
case(onp.nanquantile, lambda m, x, q: m.nanquantile(nan_in(x, m), q, axis=0), real(3, 4), onp.array([0.2, 0.7]))
case(onp.nanquantile, lambda m, x: m.nanquantile(nan_in(x, m), [[0.1], [0.8]], axis=(0, 1), keepdims=True),
     real(3, 4), id="two-axes")
case(onp.nanpercentile, lambda m, x: m.nanpercentile(nan_in(x, m), 35.0, axis=1), real(3, 4))
case(onp.nanpercentile, lambda m, x: m.nanpercentile(nan_in(x, m)[:, 1:3], 35.0, axis=0), real(3, 4),
     id="one-value-left")

# ----------------------------------------------------------------------------- differences, integrals
case(onp.diff, lambda m, x: m.diff(x), real(5))
case(onp.diff, lambda m, x: m.diff(x, n=2, axis=0), real(4, 3), id="n2")
case(onp.diff, lambda m, x, p: m.diff(x, prepend=p, append=0.5), real(4), 1.3, id="ends")
case(onp.ediff1d, lambda m, x: m.ediff1d(x, to_begin=[1.0], to_end=2.0), real(2, 3))
case(onp.unwrap, lambda m, p: m.unwrap(p), onp.cumsum(R.uniform(-4.0, 4.0, 8)))
case(onp.unwrap, lambda m, p, t: m.unwrap(p, period=t, axis=0), onp.cumsum(R.uniform(-2.0, 2.0, (6, 2)), 0), 3.0,
     id="traced-period")
case(onp.gradient, lambda m, f: m.gradient(f), real(6))
case(onp.gradient, lambda m, f: m.gradient(f, 0.5, edge_order=2), real(6), id="edge2")
case(onp.gradient, lambda m, f: m.gradient(f, axis=1), real(3, 5), id="axis")
case(onp.gradient, lambda m, f, x: m.gradient(f, x), real(5), onp.cumsum(pos(5)), id="coordinates")
case(onp.gradient, lambda m, f, x: m.gradient(f, x, edge_order=2), real(5), onp.cumsum(pos(5)), id="coords-edge2")
case(onp.gradient, lambda m, f: m.stack(m.gradient(f)), real(3, 4), id="2d")
case(onp.trapezoid, lambda m, y: m.trapezoid(y), real(6))
case(onp.trapezoid, lambda m, y, x: m.trapezoid(y, x), real(5), onp.cumsum(pos(5)), id="x")
case(onp.trapezoid, lambda m, y: m.trapezoid(y, dx=0.3, axis=0), real(4, 3), id="axis")
case(onp.trapezoid, lambda m, y, x: m.trapezoid(y, x), real(3), onp.cumsum(pos(2, 3), axis=1), id="2-d-x-1-d-y")
xp_ = onp.cumsum(pos(6))
case(onp.interp, lambda m, x, xp, fp: m.interp(x, xp, fp), onp.array([xp_[0] - 0.3, xp_[1] + 0.1, xp_[3] + 0.2,
     xp_[-1] + 1.0]), xp_, real(6))
case(onp.interp, lambda m, x, fp: m.interp(x[0], [0.0, 1.0], fp), real(1), real(2), id="a-scalar")
case(onp.interp, lambda m, x: m.interp(x, [0.0, 1.0, 2.0], [1.0, 3.0, 2.0]), onp.array([-0.5, 0.4, 1.3, 2.5]),
     id="lists")
case(onp.interp, lambda m, x, f: m.interp(x, [0.0, 1.0, 2.0], [f, 3.0, 2 * f], right=f), onp.array([0.4, 1.3, 2.5]),
     0.7, id="list-traced")
case(onp.interp, lambda m, x, fp: m.interp(x, [0.5], fp), onp.array([-1.0, 0.5, 2.0]), real(1), id="one-knot")
case(onp.interp, lambda m, fp: m.interp(onp.array([0.3, 1.0, 1.5, 2.0, 2.7, 3.0]), [0.0, 1.0, 1.0, 2.0, 3.0, 3.0], fp),
     real(6), id="repeated-knots")
case(onp.interp, lambda m, x, xp, fp, p: m.interp(x, xp, fp, period=p), onp.array([-7.3, -1.2, 0.4, 2.9, 5.55, 11.0]),
     onp.array([4.25, 0.55, 2.05, 5.35]), real(4), 2.3, id="period")  # the knots at 1.95, 0.55, 2.05, 0.75
case(onp.interp, lambda m, x, fp: m.interp(x, [4.25, 0.55, 2.05, 5.35], fp, period=-3.1), onp.array([-1.2, 2.9]),
     real(4), id="negative-period")
case(onp.interp, lambda m, fp: m.interp(onp.array([-1.0, 0.5, 2.0]), [0.5], fp, left=-fp[0], right=2 * fp[0]),
     real(1), id="one-knot-left-right")  # (in x a step at the knot)

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
case(onp.unique, lambda m, x: m.unique(m.concatenate([x, x[:1]]), axis=0, return_counts=True)[0], real(3, 2),
     id="axis")
case(onp.unique, lambda m, x: m.unique(m.concatenate([x[::-1], x]), sorted=False, return_inverse=True)[0], real(4),
     id="unsorted")
for key in (onp.unique_all, onp.unique_counts, onp.unique_inverse):
    case(key, lambda m, x, key=key: getattr(m, key.__name__)(m.concatenate([x, x[1:3]])).values, real(4))
case(onp.unique_values, lambda m, x: m.sort(m.unique_values(m.concatenate([x, x[1:3]]))), real(4))
case(onp.union1d, lambda m, x, y: m.union1d(x, m.concatenate([y, x[:2]])), real(4), real(3))
case(onp.intersect1d, lambda m, x, y: m.intersect1d(m.concatenate([x, y[1:]]), y), real(4), real(3))
case(onp.intersect1d, lambda m, x, y: m.intersect1d(x, m.concatenate([x[::2], y]), return_indices=True)[0],
     real(4), real(2), id="indices")
case(onp.setdiff1d, lambda m, x, y: m.setdiff1d(x, m.concatenate([y, x[:2]])), real(5), real(3))
case(onp.setdiff1d, lambda m, x, y: m.setdiff1d(x, x[1:2], assume_unique=True), real(5), real(3), id="unique")
case(onp.setxor1d, lambda m, x, y: m.setxor1d(m.concatenate([x, y[:1]]), y), real(4), real(3))
case(onp.sort_complex, lambda m, z: m.sort_complex(z), real(5) + 1j * real(5))
case(onp.sort_complex, lambda m, x: m.sort_complex(x), real(4), id="real")
case(onp.trim_zeros, lambda m, x: m.trim_zeros(x * onp.array([0.0, 0.0, 1.0, 0.0, 1.0, 0.0])), real(6))
case(onp.trim_zeros, lambda m, x: m.trim_zeros(x * onp.array([0.0, 1.0, 0.0]), trim="b"), real(3), id="back")
case(onp.trim_zeros, lambda m, x: m.trim_zeros(m.reshape(x, ())), real(1), id="0-d")
case(onp.trim_zeros, lambda m, x: m.trim_zeros(x * onp.array([[0.0, 0.0, 0.0], [0.0, 1.0, 1.0]]), axis=1), real(2, 3),
     id="axis")
case(onp.trim_zeros, lambda m, x: m.trim_zeros(x * onp.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])), real(2, 3),
     id="2d")
SAMPLE = R.uniform(0.0, 1.0, 12)
case(onp.histogram, lambda m, w: m.histogram(SAMPLE, bins=4, weights=w)[0], real(12))
case(onp.histogram, lambda m, w: m.histogram(SAMPLE, bins=[0.0, 0.3, 0.5, 1.0], density=True, weights=w)[0],
     pos(12), id="density")
case(onp.histogram2d, lambda m, w: m.histogram2d(SAMPLE, SAMPLE[::-1], bins=3, weights=w)[0], real(12))
case(onp.histogram2d, lambda m, w: m.histogram2d(SAMPLE, SAMPLE ** 2, bins=[2, 3], density=True, weights=w)[0],
     pos(12), id="density")
case(onp.histogramdd, lambda m, w: m.histogramdd(onp.stack([SAMPLE, SAMPLE[::-1], SAMPLE ** 2], 1), bins=2,
                                                   weights=w)[0], real(12))
case(onp.histogramdd, lambda m, w: m.histogramdd(SAMPLE, bins=3, range=[(0.1, 0.9)], density=True, weights=w)[0],
     pos(12), id="1d-density")
# Evenly spaced bins run from the data's minimum to its maximum (or over a traced range), so
# the edges and the densities move with those (the values sit well inside their bins).
DATA = onp.array([0.2, 1.5, 0.7, 3.1, 2.2, -0.4])
case(onp.histogram, lambda m, a: m.histogram(a, bins=3)[1], DATA, id="edges-follow-data")
case(onp.histogram, lambda m, a: m.histogram(a, bins="auto")[1], DATA, id="rule-edges-follow-data")
case(onp.histogram_bin_edges, lambda m, a: m.histogram_bin_edges(a, bins="sturges"), DATA, id="follow-data")
case(onp.histogram_bin_edges, lambda m, a: m.histogram_bin_edges(a, bins=[0.0, 1.0, 4.0]), DATA, id="given")
case(onp.histogram, lambda m, a: m.histogram(a, bins=3, density=True)[0], DATA, id="density-follows-data")
case(onp.histogram, lambda m, a, r: m.histogram(a, bins=3, range=(r[0], r[1]), density=True)[0],
     DATA, onp.array([-1.0, 3.5]), id="traced-range")
# Edges given as a traced array are the edges returned; the densities follow their widths.
case(onp.histogram, lambda m, b: _all_of(*m.histogram(DATA, bins=b, density=True)), onp.array([-1.0, 0.5, 1.0, 3.5]),
     id="traced-edges")
case(onp.histogram_bin_edges, lambda m, b: m.histogram_bin_edges(DATA, bins=b), onp.array([-1.0, 1.0, 3.5]),
     id="traced-edges")
case(onp.histogram2d, lambda m, b: _all_of(*m.histogram2d(DATA, DATA[::-1], bins=b, density=True)),
     onp.array([-1.0, 1.0, 3.5]), id="traced-edges")
case(onp.histogramdd, lambda m, b: _all_of(*(lambda h, e: (h, *e))(*m.histogramdd(
    onp.stack([DATA, DATA ** 2], 1), bins=[b, [0.0, 2.0, 10.0]], density=True))), onp.array([-1.0, 1.0, 3.5]),
    id="traced-edges")


def _all_of(counts: Any, *edges: Any, m: Any = onp) -> Any:
    return m.concatenate([m.ravel(counts), *edges])


case(onp.histogram2d, lambda m, a: _all_of(*m.histogram2d(a, a[::-1] ** 2, bins=[2, 3], density=True), m=m), DATA,
     id="edges-and-density-follow-data")
case(onp.histogramdd, lambda m, a: (lambda h: _all_of(h[0], *h[1], m=m))(
    m.histogramdd(m.stack([a, 2 * a], 1), bins=2, density=True)), DATA, id="edges-and-density-follow-data")


case(onp.put_along_axis, lambda m, a, v: written(m, "put_along_axis", a, onp.array([[0, 2], [1, 1], [3, 0]]), v, 1),
     real(3, 4), real(3, 1))
case(onp.put_along_axis, lambda m, a, v: written(m, "put_along_axis", a, onp.array([0, 5, 5]), v, None), real(3, 4),
     real(3), id="flat-repeats")
case(onp.put, lambda m, a, v: written(m, "put", a, [0, 7, 2], v), real(3, 4), real(2))
case(onp.put, lambda m, a, v: written(m, "put", a, [1, 13], v, "wrap"), real(3, 4), real(2), id="wrap")
case(onp.place, lambda m, a, v: written(m, "place", a, onp.array([True, False, True, True]), v), real(4), real(2))
case(onp.putmask, lambda m, a, v: written(m, "putmask", a, onp.array([[True, False], [True, True]]), v), real(2, 2),
     real(2))
case(onp.put, lambda m, a, v: written(m, "put", a, [2, 0], v), real(3), real(2) + 1j * real(2), id="complex-into-real")
case(onp.fill_diagonal, lambda m, a, v: written(m, "fill_diagonal", a, v), real(3, 4), 1.5)
case(onp.fill_diagonal, lambda m, a, v: written(m, "fill_diagonal", a, v, True), real(7, 3), real(2), id="wrap")

# ----------------------------------------------------------------------------- rearranging
case(onp.rot90, lambda m, x: m.rot90(x), real(2, 3))
case(onp.rot90, lambda m, x: m.rot90(x, k=3, axes=(1, 2)), real(2, 3, 4), id="k3")
case(onp.rot90, lambda m, x: m.rot90(x, k=2), real(2, 3), id="k2")
case(onp.flipud, lambda m, x: m.flipud(x), real(3, 2))
case(onp.fliplr, lambda m, x: m.fliplr(x), real(3, 2))
case(onp.tile, lambda m, x: m.tile(x, (2, 3)), real(2, 2))
case(onp.repeat, lambda m, x: m.repeat(x, [1, 3, 2], axis=0), real(3, 2))
case(onp.pad, lambda m, x: m.pad(x, ((1, 2), (0, 1)), constant_values=0.5), real(2, 3))
case(onp.pad, lambda m, x, c: m.pad(x, ((1, 2), (0, 1)), constant_values=c), real(2, 3), 0.7, id="traced-value")
case(onp.pad, lambda m, x, c: m.pad(x, ((1, 2), (2, 1)), constant_values=c), real(2, 3), real(2, 2), id="per-side")
case(onp.pad, lambda m, x, c: m.pad(x, 1, constant_values=(c, -1.5)), real(2, 3), 0.7, id="pair")
for mode in ("edge", "reflect", "symmetric", "wrap"):
    case(onp.pad, lambda m, x, mode=mode: m.pad(x, (2, 3), mode=mode), real(4), id=mode)
for mode in ("reflect", "symmetric"):
    case(onp.pad, lambda m, x, mode=mode: m.pad(x, (2, 3), mode=mode, reflect_type="odd"), real(4), id=mode + "-odd")
    case(onp.pad, lambda m, x, mode=mode: m.pad(x, (7, 9), mode=mode, reflect_type="odd"), real(3),
         id=mode + "-odd-wide")
    case(onp.pad, lambda m, x, mode=mode: m.pad(x, ((2, 1), (3, 4)), mode=mode, reflect_type="odd"), real(3, 2),
         id=mode + "-odd-2d")
    case(onp.pad, lambda m, x, mode=mode: m.pad(x, ((2, 1), (0, 2)), mode=mode, reflect_type="odd"), real(1, 3),
         id=mode + "-odd-singleton")
for mode, options in [("mean", {}), ("mean", {"stat_length": 2}), ("median", {}), ("maximum", {"stat_length": (1, 3)}),
                      ("minimum", {}), ("linear_ramp", {}), ("linear_ramp", {"end_values": (1.5, -2.0)})]:
    case(onp.pad, lambda m, x, mode=mode, o=options: m.pad(x, ((1, 2), (2, 1)), mode, **o), real(3, 4),
         id=f"{mode}-{len(options)}")
case(onp.pad, lambda m, x: m.pad(x, ((1, 0), (0, 2), (3, 1)), "mean", stat_length=1), real(2, 3, 4), id="mean-3d")
case(onp.pad, lambda m, x, e: m.pad(x, 2, "linear_ramp", end_values=e), real(3), 0.7, id="traced-end")
case(onp.resize, lambda m, x: m.resize(x, (3, 3)), real(2, 2))
case(onp.append, lambda m, x, y: m.append(x, y, axis=0), real(2, 3), real(1, 3))
case(onp.insert, lambda m, x, v: m.insert(x, [1, 3], v), real(4), real(2))
case(onp.insert, lambda m, x, v: m.insert(x, 1, v, axis=1), real(3, 2), real(3), id="column")
case(onp.delete, lambda m, x: m.delete(x, [0, 2], axis=1), real(2, 4))
SWV = onp.lib.stride_tricks.sliding_window_view
case(SWV, lambda m, x: SWV(x, 3) @ onp.array([0.2, -0.5, 1.0]), real(6))
case(SWV, lambda m, x: SWV(x, (2, 2), axis=(1, 0)), real(3, 4), id="2d")
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
case(onp.row_stack, lambda m, x, y: m.row_stack([x, y]), real(3), real(2, 3))

# ----------------------------------------------------------------------------- matrices
case(onp.diag, lambda m, v: m.diag(v, k=1), real(3))
case(onp.diag, lambda m, a: m.diag(a, k=-1), real(3, 4), id="extract")
case(onp.diagflat, lambda m, v: m.diagflat(v), real(2, 2))
case(onp.trace, lambda m, a: m.trace(a), real(3, 3))
case(onp.trace, lambda m, a: m.trace(a, offset=-1, axis1=1, axis2=0), real(3, 4), id="offset")
case(onp.triu, lambda m, a: m.triu(a, k=1), real(3, 4))
case(onp.tril, lambda m, a: m.tril(a), real(2, 3, 3))
case(onp.tril, lambda m, v: m.tril(v), real(3), id="1d")
case(onp.triu, lambda m, v: m.triu(v, 1), real(4), id="1d")
case(onp.kron, lambda m, a, b: m.kron(a, b), real(2, 3), real(2, 2))
case(onp.kron, lambda m, a, b: m.kron(a, b), real(3), real(2, 2), id="mixed")
case(onp.cross, lambda m, a, b: m.cross(a, b), real(4, 3), real(3))
case(onp.cross, lambda m, a, b: m.cross(a, b), real(2), real(2), id="2d")  # deprecated in NumPy 2, still supported
case(onp.cross, lambda m, a, b: m.cross(a, b, axisa=0, axisb=0, axisc=0), real(3, 2), real(3, 2), id="axes")
case(onp.vdot, lambda m, a, b: m.vdot(a, b), real(2, 3) + 1j * real(2, 3), real(6))

# ----------------------------------------------------------------------------- constructing
case(onp.arange, lambda m, a, s: m.arange(a, 4.0, s), 0.3, 0.7)
case(onp.arange, lambda m, b: m.arange(b), 3.5, id="stop-only")
case(onp.arange, lambda m, a, s: m.arange(a, -2.0, s, dtype=onp.float32), 0.3, -0.7, id="float32-downward")
case(onp.arange, lambda m, a: m.arange(start=a, stop=2.0, step=0.25) * 2.0, 0.1, id="keywords")
case(onp.arange, lambda m, a: m.arange(a, stop=4.0), 0.3, id="stop-as-keyword")
case(onp.kaiser, lambda m, b: m.kaiser(6, b), 2.5)
case(onp.kaiser, lambda m, b: m.kaiser(1, b) * b, 2.5, id="length-1")
case(onp.linspace, lambda m, a, b: m.linspace(a, b, 5), 0.3, 2.1)
case(onp.linspace, lambda m, a, b: m.linspace(a, b, 4, endpoint=False, axis=1), real(2), real(2), id="arrays")
case(onp.linspace, lambda m, a, b: m.linspace(a, b, 3, retstep=True)[1], 0.5, 1.7, id="retstep")
case(onp.logspace, lambda m, a, b: m.logspace(a, b, 4, base=2.0), 0.1, 1.3)
case(onp.logspace, lambda m, a, b, base: m.logspace(a, b, 3, base=base), 0.2, 1.1, pos(2), id="base-array")
case(onp.logspace, lambda m, a, b, base: m.logspace(a, b, 4, base=base, axis=1), real(2), 1.1, pos(3, 1),
     id="base-array-axis")
case(onp.geomspace, lambda m, a, b: m.geomspace(a, b, 5), 0.5, 3.0)
case(onp.geomspace, lambda m, a, b: m.geomspace(a, b, 4), -0.5, -3.0, id="negative")
case(onp.geomspace, lambda m, a, b: m.geomspace(a, b, 3, endpoint=False, axis=1), -pos(2), -pos(2),
     id="negative-arrays")
case(onp.geomspace, lambda m, a, b: m.geomspace(a, b, 5), 1.0 + 1.0j, -2.0 + 0.5j, id="complex")
case(onp.full, lambda m, v: m.full((2, 3), v), 1.5)
case(onp.full, lambda m, v: m.full((2, 3), v, dtype=onp.complex128), real(3), id="row-complex")
case(onp.asarray_chkfinite, lambda m, x: m.asarray_chkfinite(x) * 2.0, real(3))
case(onp.require, lambda m, x: m.require(x, requirements=["C", "W"]) * 2.0, real(2, 3))
case(onp.vander, lambda m, x: m.vander(x), real(4))
case(onp.vander, lambda m, x: m.vander(x, 3, increasing=True), onp.array([0.0, 1.5, -2.0]), id="increasing-zero")

# ----------------------------------------------------------------------------- polynomials, signals
case(onp.polyval, lambda m, p, x: m.polyval(p, x), real(4), real(3))
case(onp.polyder, lambda m, p: m.polyder(p, 2), real(5))
case(onp.polyint, lambda m, p: m.polyint(p, 2, k=[1.0, 2.0]), real(3))
case(onp.polyadd, lambda m, a, b: m.polyadd(a, b), real(3), real(5))
case(onp.polysub, lambda m, a, b: m.polysub(a, b), real(4), real(2))
case(onp.polyadd, lambda m, a: m.polyadd(a, 1.5), real(2), id="a-number")
case(onp.polysub, lambda m, a, b: m.polysub(a, b), real(3), onp.array(0.4), id="0-d")
case(onp.polymul, lambda m, a, b: m.polymul(a, b), real(3), real(4))
case(onp.polymul, lambda m, a, b: m.polymul(m.concatenate([onp.zeros(2), a]), b), real(3), real(2),
     id="leading-zeros")  # np.poly1d drops them: the product is shorter
case(onp.polymul, lambda m, a, b: m.polymul(a * 0.0, b), real(2), real(2), id="all-zeros")
case(onp.polydiv, lambda m, u, v: m.polydiv(u, v)[0], real(5), real(3))
case(onp.polydiv, lambda m, u, v: m.polydiv(u, v)[1], real(5), real(3), id="remainder")
case(onp.polydiv, lambda m, u, v: m.polydiv(u, v)[1], real(2), real(3), id="shorter")
case(onp.poly, lambda m, z: m.poly(z), real(4))
case(onp.poly, lambda m, z: m.poly(z), real(3) + 1j * real(3), id="complex")
case(onp.poly, lambda m, a: m.poly(a), real(3, 3), id="matrix")
case(onp.roots, lambda m, p: m.roots(p), real(4))
case(onp.roots, lambda m, p: m.roots(m.concatenate([onp.zeros(1), p, onp.zeros(2)])), real(3), id="zeros")
X6 = onp.linspace(0.0, 1.0, 7) + 0.05 * real(7)
case(onp.polyfit, lambda m, x, y: m.polyfit(x, y, 2), X6, real(7))
case(onp.polyfit, lambda m, x, y, w: m.polyfit(x, y, 1, w=w), X6, real(7, 2), pos(7), id="weights-2d")
case(onp.polyfit, lambda m, x, y: m.polyfit(x, y, 1, cov=True)[1], X6, real(7), id="cov")
case(onp.polyfit, lambda m, x, y: m.polyfit(x, y, 1, full=True)[1], X6, real(7), id="full")
for mode in ("full", "same", "valid"):
    case(onp.convolve, lambda m, a, v, mode=mode: m.convolve(a, v, mode), real(6), real(3), id=mode)
    case(onp.convolve, lambda m, a, v, mode=mode: m.convolve(a, v, mode), real(3), real(5), id=mode + "-short-first")
    case(onp.correlate, lambda m, a, v, mode=mode: m.correlate(a, v, mode), real(6), real(4), id=mode)
    case(onp.correlate, lambda m, a, v, mode=mode: m.correlate(a, v, mode), real(3), real(5) + 1j * real(5),
         id=mode + "-complex")
    case(onp.correlate, lambda m, a, v, mode=mode: m.correlate(a, v, mode), real(4), real(7),
         id=mode + "-even-short-first")  # NumPy swaps the arguments: the "same" window moves

# ----------------------------------------------------------------------------- statistics
# (functions of functions: the callables may close over traced values)
PIECES = onp.array([-1.2, 0.3, 1.5, 2.0, -0.1])
case(onp.piecewise, lambda m, x: m.piecewise(x, [x < 0, x > 1], [lambda v: v ** 2, m.sin, 0.5]), PIECES)
case(onp.piecewise, lambda m, x, c: m.piecewise(x, [x < 0], [lambda v: v * c, lambda v: c]), PIECES, 0.7, id="closure")
case(onp.piecewise, lambda m, x: m.piecewise(x, x > 0, [lambda v: v * 2.0, lambda v: v ** 3]), 0.7, id="scalar")
case(onp.apply_along_axis, lambda m, x: m.apply_along_axis(lambda v: m.outer(v, v[:2]), 1, x), real(2, 3, 2))
case(onp.apply_along_axis, lambda m, x: m.apply_along_axis(lambda v: m.sum(v ** 2), 0, x), real(3, 2), id="scalar")
case(onp.vectorize, lambda m, x: m.vectorize(lambda a, b: a * b if a > 0 else a - b)(x, 2.0), real(2, 3))
case(onp.vectorize, lambda m, x, y: m.vectorize(lambda a, b: m.sin(a) * b)(x, y[:, None]), real(3), real(2),
     id="broadcast")
case(onp.vectorize, lambda m, x: m.stack(m.vectorize(lambda a, n: (a ** n, 2 * a), otypes=[float, float],
                                                     excluded={"n"})(x, n=3)), real(4), id="two-outputs-excluded")
case(onp.apply_along_axis, lambda m, x, c: m.apply_along_axis(lambda v: v * c, -1, x), real(2, 3), real(3),
     id="closure")
case(onp.apply_over_axes, lambda m, x: m.apply_over_axes(m.sum, x ** 2, [0, 2]), real(2, 3, 2))
case(onp.apply_over_axes, lambda m, x: m.apply_over_axes(lambda a, ax: m.max(a, ax, keepdims=True), x, -1),
     real(2, 3), id="keepdims")

case(onp.cov, lambda m, x: m.cov(x), real(3, 6))
case(onp.cov, lambda m, x, y: m.cov(x, y, rowvar=False, bias=True), real(6, 2), real(6, 1), id="y")
case(onp.cov, lambda m, x, w: m.cov(x, aweights=w), real(2, 5), pos(5), id="aweights")
case(onp.cov, lambda m, x: m.cov(x, fweights=[1, 2, 1, 3, 1]), real(2, 5), id="fweights")
case(onp.corrcoef, lambda m, x: m.corrcoef(x), real(3, 6))
case(onp.corrcoef, lambda m, x, y: m.corrcoef(x, y, rowvar=False), real(6, 2), real(6), id="y-columns")
case(onp.bincount, lambda m, w: m.bincount(onp.array([0, 2, 2, 4, 0]), weights=w), real(5))


# ============================================================================= tests
pytestmark = [pytest.mark.filterwarnings("ignore:Arrays of 2-dimensional vectors are deprecated"),
              pytest.mark.filterwarnings("ignore:`row_stack` alias is deprecated"),
              pytest.mark.filterwarnings("ignore:Casting complex values to real"),
              pytest.mark.filterwarnings("ignore:All-NaN slice encountered"),
              pytest.mark.filterwarnings("ignore:Degrees of freedom <= 0 for slice"),
              pytest.mark.filterwarnings("ignore:Mean of empty slice"),  # median of empty slices, as NumPy
              pytest.mark.filterwarnings("ignore:invalid value encountered in")]


# Not reached by plain NumPy on traced values: full, require and asarray_chkfinite convert their
# argument to an array before anything could dispatch; the cases of the in-place functions use the
# functional form (inplace=False), which NumPy does not have (in place: test_in_place_functions).
NO_DISPATCH = {onp.full, onp.require, onp.asarray_chkfinite, onp.put_along_axis, onp.put, onp.place, onp.putmask,
               onp.fill_diagonal, onp.vectorize, onp.arange, onp.kaiser}


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_value_matches_numpy(c: Case) -> None:
    expected = c.f(onp, *c.args)
    # wengert.numpy, and plain NumPy dispatching on traced values
    for module in (wnp,) if c.key in NO_DISPATCH else (wnp, onp):
        out, _ = wengert.vjp(lambda *xs: c.f(module, *xs), *c.args)
        onp.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
        assert onp.result_type(wengert.stop_gradient(out)) == onp.result_type(expected)
        same_kind(out, expected)


def same_kind(out: Any, expected: Any) -> None:
    """Each result is a scalar, a 0-d array or an array of the shape NumPy gives."""
    for o, e in zip(*(x if isinstance(x, (tuple, list)) else [x] for x in (out, expected))):
        assert (type(o), onp.shape(o)) == (type(e), onp.shape(e))


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_derivatives_match_finite_differences(c: Case) -> None:
    wengert.gradcheck(lambda *xs: c.f(wnp, *xs), *c.args, order=2)


def test_every_derived_function_has_a_case() -> None:
    covered = {c.key for c in CASES}
    missing = [f.__name__ for f in _derived.DERIVED if f not in covered]
    assert not missing, f"derived functions without a case: {missing}"


@pytest.mark.parametrize("f, x", [(lambda m, x: m.cov(x), real(3, 0)), (lambda m, x: m.cov(x), real(2, 1)),
                                  (lambda m, x: m.cov(x, ddof=3), real(2, 3)),
                                  (lambda m, x: m.cov(x, aweights=[1.0, 2.0], ddof=2), real(2, 2))],
                         ids=["no-observation", "one-observation", "ddof=n", "weights"])
def test_cov_without_degrees_of_freedom_is_numpys_nan_or_inf_with_its_warning(f: Callable, x: Any) -> None:
    for call in (lambda: f(onp, x), lambda: wengert.vjp(lambda x: f(wnp, x), x)[0]):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            call()
        # NumPy's warning, shown at the caller's line
        assert [w.filename for w in seen if "Degrees of freedom <= 0" in str(w.message)] == [__file__]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onp.testing.assert_array_equal(wengert.vjp(lambda x: f(wnp, x), x)[0], f(onp, x))


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64, onp.complex64])
def test_cumprod_gives_numpys_own_values(dtype: Any) -> None:
    x = (R.uniform(0.5, 1.5, (3, 40)) + (1j if dtype is onp.complex64 else 0) * R.normal(size=(3, 40))).astype(dtype)
    for kw in ({}, {"axis": 0}, {"axis": -1}):
        onp.testing.assert_array_equal(wengert.vjp(lambda x: wnp.cumprod(x, **kw), x)[0], onp.cumprod(x, **kw))


@pytest.mark.parametrize("x", [
    onp.random.default_rng(3).normal(size=(3, 5)),
    onp.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 1.0, 2.0]]),  # two rows perfectly correlated
    onp.random.default_rng(4).normal(size=(2, 4)) + 1j * onp.random.default_rng(5).normal(size=(2, 4)),
], ids=["random", "correlated rows", "complex"])
def test_corrcoef_stays_within_numpys_bounds(x: Any) -> None:
    """NumPy clips the coefficients to [-1, 1] (rounding can pass 1, and arccos of that is NaN):
    the traced values are NumPy's, and the derivatives still match finite differences."""
    seen = {}

    def f(x):
        r = wnp.corrcoef(x)
        seen["r"] = wengert.stop_gradient(r)
        return wnp.sum(wnp.real(r) * onp.arange(r.size).reshape(r.shape))
    g = wengert.grad(f)(x.real)
    assert onp.array_equal(seen["r"], onp.corrcoef(x.real))
    assert close(g, fd_grad(f, x.real), rtol=1e-5, atol=1e-6)
    value, _ = wengert.vjp(wnp.corrcoef, x)
    assert onp.array_equal(value, onp.corrcoef(x))


_R = onp.random.default_rng(6)
COV_OPTIONS = {"plain": {}, "bias": {"bias": True}, "ddof": {"ddof": 2}, "fweights": {"fweights": _R.integers(1, 4, 7)},
               "aweights": {"aweights": _R.random(7)}, "both weights": {"fweights": [1, 2, 1, 3, 1, 1, 2],
                                                                       "aweights": _R.random(7)},
               "float32": {"dtype": onp.float32}, "float32, weights": {"dtype": onp.float32, "aweights": _R.random(7)}}


@pytest.mark.parametrize("name", COV_OPTIONS)
def test_traced_cov_and_corrcoef_are_numpys_to_the_bit(name: str) -> None:
    """NumPy's operations in NumPy's order (the weights on the right factor, a product with the
    reciprocal of the divisor)."""
    x = _R.normal(size=(3, 7))
    for f, g in ((wnp.cov, onp.cov), (wnp.corrcoef, onp.corrcoef)):
        options = {k: v for k, v in COV_OPTIONS[name].items() if g is onp.cov or k == "dtype"}
        value, _ = wengert.vjp(lambda x: f(x, **options), x)
        expected = g(x, **options)
        assert onp.array_equal(value, expected) and value.dtype == expected.dtype


def test_untraced_calls_are_numpy_itself() -> None:
    x = real(4, 3)
    onp.testing.assert_array_equal(wnp.sort(x, axis=0), onp.sort(x, axis=0))
    onp.testing.assert_array_equal(wnp.pad(x, 1, mode="reflect"), onp.pad(x, 1, mode="reflect"))


@pytest.mark.parametrize("bad, match", [
    (lambda x: wnp.quantile(x, 0.5, method="weibull"), "quantile: only methods"),
    (lambda x: wnp.pad(x, 1, mode=lambda v, w, i, k: None), "pad: a function as the mode"),
    (lambda x: wnp.vectorize(lambda v: v * 2, signature="(n)->(n)")(x), "vectorize: signature= is not supported"),
    (lambda x: onp.vectorize(lambda v: v * 2)(x), "numpy.vectorize converts .* Use wengert.numpy.vectorize"),
    (lambda x: wnp.nansum(x, out=onp.empty(())), "nansum: out= cannot be used"),
])
def test_unsupported_options_are_refused(bad: Callable, match: str) -> None:
    with pytest.raises((NotImplementedError, TypeError), match=match):
        wengert.grad(lambda x: wnp.sum(bad(x)))(real(3))


DTYPES = [
    ("nansum", lambda m, x: m.nansum(x, axis=1, dtype=onp.float32)),
    ("nanprod", lambda m, x: m.nanprod(x, dtype=onp.float32)),
    ("nanmean", lambda m, x: m.nanmean(x, axis=0, dtype=onp.float32)),
    ("nanmean-float32", lambda m, x: m.nanmean(m.astype(x, onp.float32))),
    ("nanvar", lambda m, x: m.nanvar(x, axis=1, dtype=onp.float32)),
    ("nanstd-float32", lambda m, x: m.nanstd(m.astype(x, onp.float32), axis=0, keepdims=True)),
    ("nanmax-float32", lambda m, x: m.nanmax(m.astype(x, onp.float32), axis=1)),
    ("nancumsum", lambda m, x: m.nancumsum(x, axis=1, dtype=onp.float32)),
    ("nancumprod", lambda m, x: m.nancumprod(x, dtype=onp.float32)),
    ("cumprod", lambda m, x: m.cumprod(x, axis=0, dtype=onp.float32)),
    ("cumulative_sum", lambda m, x: m.cumulative_sum(x, axis=1, dtype=onp.float32)),
    ("cumulative_prod", lambda m, x: m.cumulative_prod(x, axis=0, dtype=onp.complex64, include_initial=True)),
    ("trace", lambda m, x: m.trace(x, dtype=onp.float32)),
    ("pad-float32", lambda m, x: m.pad(m.astype(x, onp.float32), 1, constant_values=0.5)),
    ("pad-odd-float32", lambda m, x: m.pad(m.astype(x, onp.float32), 2, mode="reflect", reflect_type="odd")),
    ("roots-float32", lambda m, x: m.roots(m.astype(x[1, :3], onp.float32))),
    ("poly-float32", lambda m, x: m.poly(m.astype(x[1, :2], onp.float32))),
]


@pytest.mark.parametrize("f", [d[1] for d in DTYPES], ids=[d[0] for d in DTYPES])
def test_results_have_numpy_s_dtype(f: Callable) -> None:
    """dtype= is followed, and a float32 input stays float32, as in NumPy (float32 results:
    too coarse for the table's finite differences)."""
    x = nan_in(real(3, 4), onp)
    expected = f(onp, x)
    out = wengert.stop_gradient(wengert.vjp(lambda x: f(wnp, x), x)[0])
    assert out.dtype == expected.dtype
    onp.testing.assert_allclose(out, expected, rtol=1e-6)


# ============================================================================= ufunc methods
# ufunc.reduce / accumulate / outer on traced values (wengert.numpy.add is wrapped, and its
# methods are NumPy's own, which reach the traced values' __array_ufunc__).
WHERE = onp.array([True, False, True, True])
METHODS = [
    ("add.reduce", lambda x: onp.add.reduce(x), real(3, 4)),
    ("add.reduce-axes-keepdims", lambda x: wnp.add.reduce(x, axis=(0, 1), keepdims=True), real(3, 4)),
    ("add.reduce-where-initial", lambda x: onp.add.reduce(x, axis=1, where=WHERE, initial=0.5), real(3, 4)),
    ("add.reduce-dtype", lambda x: onp.add.reduce(x, axis=None, dtype=onp.complex128), real(3, 4)),
    ("multiply.reduce", lambda x: onp.multiply.reduce(x, axis=1), real(3, 4)),
    ("multiply.reduce-where", lambda x: onp.multiply.reduce(x * onp.array([1.0, 0.0, 1.0, 1.0]), where=WHERE,
                                                              axis=-1), real(3, 4)),
    ("maximum.reduce", lambda x: onp.maximum.reduce(x), real(3, 4)),
    ("maximum.reduce-where", lambda x: onp.maximum.reduce(x, axis=1, where=WHERE, initial=-0.5), real(3, 4)),
    ("minimum.reduce", lambda x: wnp.minimum.reduce(x, axis=None, keepdims=True), real(3, 4)),
    ("subtract.reduce", lambda x: onp.subtract.reduce(x), real(3, 4)),
    ("divide.reduce", lambda x: onp.divide.reduce(x, axis=1), pos(3, 4)),
    ("logaddexp.reduce", lambda x: onp.logaddexp.reduce(x, axis=None), real(3, 4)),
    ("logaddexp.reduce-where", lambda x: onp.logaddexp.reduce(x, axis=1, where=WHERE), real(3, 4)),
    ("hypot.reduce-initial", lambda x: onp.hypot.reduce(x, axis=0, initial=2.0, keepdims=True), real(3, 4)),
    ("fmax.reduce", lambda x: onp.fmax.reduce(x, axis=1), real(3, 4)),
    ("power.reduce", lambda x: onp.power.reduce(x, axis=0), pos(3, 4)),
    ("add.accumulate", lambda x: onp.add.accumulate(x, axis=1), real(3, 4)),
    ("add.accumulate-dtype", lambda x: wnp.add.accumulate(x, dtype=onp.complex128), real(3, 4)),
    ("multiply.accumulate", lambda x: onp.multiply.accumulate(x * onp.array([1.0, 0.0, 1.0, 1.0]), axis=1),
     real(3, 4)),
    ("maximum.accumulate", lambda x: onp.maximum.accumulate(x), real(4, 3)),
    ("minimum.accumulate", lambda x: onp.minimum.accumulate(x, axis=-1), real(3, 4)),
    ("fmax.accumulate-nan", lambda x: onp.fmax.accumulate(wnp.where(WHERE[::-1], x, onp.nan)), real(4)),
    ("fmin.accumulate", lambda x: onp.fmin.accumulate(x, axis=1), real(2, 5)),
    ("subtract.accumulate", lambda x: onp.subtract.accumulate(x, axis=1), real(3, 4)),
    ("divide.accumulate", lambda x: onp.divide.accumulate(x), pos(3, 4)),
    ("logaddexp.accumulate", lambda x: onp.logaddexp.accumulate(x, axis=-1), real(2, 4)),
    ("add.reduceat", lambda x: onp.add.reduceat(x, [0, 2, 5], axis=1), real(3, 8)),
    ("add.reduceat-repeats", lambda x: wnp.add.reduceat(x, [0, 0, 3, 2, 7], axis=-1), real(2, 8)),
    ("add.reduceat-dtype", lambda x: onp.add.reduceat(x, [1, 2], dtype=onp.complex128), real(4, 2)),
    ("multiply.reduceat", lambda x: onp.multiply.reduceat(x, [0, 3, 3, 5], axis=1), real(2, 7)),
    ("maximum.reduceat", lambda x: onp.maximum.reduceat(x, [0, 2, 1], axis=0), real(5, 3)),
    ("minimum.reduceat", lambda x: onp.minimum.reduceat(x.ravel(), [4, 0, 6]), real(2, 4)),
    ("multiply.outer", lambda x, y: onp.multiply.outer(x, y), real(3), real(2, 2)),
    ("multiply.outer-complex", lambda x, y: wnp.multiply.outer(x, y), real(3) + 1j * real(3), real(2)),
    ("add.outer", lambda x, y: onp.add.outer(x, y), real(2, 2), real(3)),
    ("subtract.outer", lambda x, y: onp.subtract.outer(x, y), real(3), real(4)),
    ("divide.outer", lambda x, y: onp.divide.outer(x, y), real(3), pos(2)),
    ("power.outer", lambda x, y: onp.power.outer(x, y), pos(3), real(2)),
    ("maximum.outer", lambda x, y: onp.maximum.outer(x, y), real(3), real(4)),
    ("arctan2.outer", lambda x, y: onp.arctan2.outer(x, y), real(2), real(3)),
    ("copysign.outer", lambda x, y: onp.copysign.outer(x, y), pos(3), real(2)),
    ("divmod.outer", lambda x: onp.divmod.outer(x, onp.array([0.7, 1.3]))[1], pos(3)),
    ("greater.outer", lambda x: onp.greater.outer(x[0], x[1]) * x[0], real(2, 3)),
    ("logical_or.reduce", lambda x: onp.logical_or.reduce(x > 0.5, axis=0) * x, real(3, 4)),
    ("fmax.reduce-all", lambda x: onp.fmax.reduce(x, axis=None), real(2, 3)),
    ("hypot.reduce-all", lambda x: onp.hypot.reduce(x, axis=None), real(4)),
]


@pytest.mark.parametrize("f, args", [(m[1], m[2:]) for m in METHODS], ids=[m[0] for m in METHODS])
def test_ufunc_method_value_matches_numpy(f: Callable, args: tuple) -> None:
    expected = f(*args)
    out, _ = wengert.vjp(f, *args)
    onp.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert onp.result_type(wengert.stop_gradient(out)) == onp.result_type(expected)
    same_kind(out, expected)


@pytest.mark.parametrize("f, args", [(m[1], m[2:]) for m in METHODS], ids=[m[0] for m in METHODS])
def test_ufunc_method_derivatives_match_finite_differences(f: Callable, args: tuple) -> None:
    wengert.gradcheck(f, *args, order=2)


@pytest.mark.parametrize("name, axis", [("subtract", 1), ("divide", 1), ("power", 1), ("arctan2", -1)])
def test_reduce_is_a_left_fold(name: str, axis: int) -> None:
    """reduce applies the ufunc from the left, one element at a time (NumPy's documented
    definition; NumPy 2.4's own power and arctan2 reductions along a contiguous axis differ)."""
    ufunc = getattr(onp, name)
    x = pos(2, 4)
    fold = ufunc(ufunc(ufunc(x[:, 0], x[:, 1]), x[:, 2]), x[:, 3])
    out, _ = wengert.vjp(lambda x: ufunc.reduce(x, axis=axis), x)
    onp.testing.assert_allclose(out, fold, rtol=1e-14)


def test_running_maximum_gradient_goes_to_the_element_holding_it() -> None:
    """Each output of maximum.accumulate is one input element; on a tie the earlier one keeps it."""
    x = onp.array([1.0, 3.0, 2.0, 3.0, 5.0, 4.0])
    g = wengert.grad(lambda x: wnp.sum(onp.maximum.accumulate(x)))(x)
    onp.testing.assert_array_equal(g, [1.0, 3.0, 0.0, 0.0, 2.0, 0.0])  # 3 holds outputs 1-3, 5 outputs 4-5
    g = wengert.grad(lambda x: wnp.sum(onp.minimum.accumulate(x, axis=1)))(onp.array([[2.0, 1.0, 1.0, 0.5]]))
    onp.testing.assert_array_equal(g, [[1.0, 2.0, 0.0, 1.0]])  # the tie at 1: the earlier element


NAN_ONE_TWO = onp.array([onp.nan, 1.0, 2.0])


@pytest.mark.parametrize("name, call, expected", [
    ("full_like", lambda m, x: m.full_like(onp.zeros(3), x[0]), [3.0, 0.0, 0.0]),
    ("nan_to_num", lambda m, x: m.nan_to_num(NAN_ONE_TWO, nan=x[0]), [1.0, 0.0, 0.0]),
])
def test_numpy_functions_that_copy_a_traced_value_in_name_themselves(name: str, call: Callable, expected: list) -> None:
    """NumPy does not dispatch on these arguments and writes them with copyto: the error names
    the function the user called, and the wengert.numpy version it points to works."""
    with pytest.raises(TypeError, match=rf"^{name}: NumPy's {name} writes a traced value .* wengert\.numpy\.{name}"):
        wengert.grad(lambda x: wnp.sum(call(onp, x)))(real(3))
    onp.testing.assert_array_equal(wengert.grad(lambda x: wnp.sum(call(wnp, x)))(real(3)), expected)


@pytest.mark.parametrize("bad, error, match", [
    (lambda x: onp.hypot.reduceat(x, [0, 2]), TypeError, r"^numpy\.hypot\.reduceat has no derivative rule"),
    (lambda x: onp.add.reduceat(x, [0, 4]), IndexError, r"index 4 out-of-bounds"),
    (lambda x: onp.add.reduceat(x, [0, 2], out=onp.empty(2)), TypeError, r"add\.reduceat: out= cannot be used"),
    (lambda x: onp.hypot.at(x, [0], 2.0), TypeError, r"^numpy\.hypot\.at has no derivative rule"),
    (lambda x: onp.multiply.at(onp.ones(4), [0], x[0]), TypeError, r"^numpy\.multiply\.at: the array written to"),
    (lambda x: onp.add.reduce(x, out=onp.empty(())), TypeError, r"add\.reduce: out= cannot be used"),
    (lambda x: onp.maximum.accumulate(x, out=onp.empty(4)), TypeError, r"maximum\.accumulate: out= cannot be used"),
    (lambda x: onp.subtract.reduce(x.reshape(2, 2), axis=None), ValueError, "not reorderable"),
    (lambda x: onp.maximum.reduce(x, where=x > 0), ValueError, "specify 'initial'"),
    (lambda x: onp.sin.reduce(x), ValueError, "only supported for binary functions"),
    (lambda x: onp.matmul.outer(x, x), TypeError, "non-trivial signature"),
])
def test_ufunc_method_misuse_raises(bad: Callable, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        wengert.grad(lambda x: wnp.sum(bad(x)))(real(4))


# ============================================================================= conventions and errors
def test_set_functions_give_repeated_values_to_first_occurrences() -> None:
    x, y = onp.array([3.0, 1.0, 3.0, 2.0]), onp.array([2.0, 5.0])
    onp.testing.assert_array_equal(wengert.grad(lambda x: wnp.sum(wnp.unique(x)))(x), [1.0, 1.0, 0.0, 1.0])
    gx, gy = wengert.grad(lambda x, y: wnp.sum(wnp.union1d(x, y)), argnum=(0, 1))(x, y)
    onp.testing.assert_array_equal(gx, [1.0, 1.0, 0.0, 1.0])
    onp.testing.assert_array_equal(gy, [0.0, 1.0])
    gx, gy = wengert.grad(lambda x, y: wnp.sum(wnp.intersect1d(x, y) * 4.0), argnum=(0, 1))(x, y)
    onp.testing.assert_array_equal(gx, [0.0, 0.0, 0.0, 2.0])  # the common value 2 splits its gradient
    onp.testing.assert_array_equal(gy, [2.0, 0.0])


def test_histogram_edges_in_a_list_holding_a_traced_one_are_read_as_an_array() -> None:
    densities = [lambda t: wnp.histogram(DATA, bins=[-1.0, t, 3.5], density=True)[0],  # wengert.numpy reads lists
                 lambda t: wnp.histogram(DATA, bins=wnp.stack([-1.0, t, 3.5]), density=True)[0]]
    for traced in (lambda f: wengert.vjp(f, 1.2)[0], lambda f: wengert.jacrev(f)(1.2)):
        onp.testing.assert_allclose(*(traced(f) for f in densities), rtol=1e-14)


def test_histogram_counts_are_linear_in_the_weights() -> None:
    sample = onp.array([0.1, 0.9, 0.5, 0.2, 1.0])
    j = wengert.jacobian(lambda w: wnp.histogram(sample, bins=2, range=(0.0, 1.0), weights=w)[0])(onp.ones(5))
    onp.testing.assert_array_equal(j, [[1, 0, 0, 1, 0], [0, 1, 1, 0, 1]])  # 1.0 is in the last bin
    counts, edges = wengert.stop_gradient(wnp.histogram(sample, bins=2, range=(0.0, 1.0)))
    assert counts.dtype.kind == "i" and edges.tolist() == [0.0, 0.5, 1.0]


def test_unwrap_and_piecewise_derivatives() -> None:
    p = onp.array([0.0, 3.0, 6.0, 2.5])  # jumps of more than pi are wrapped
    turns = (onp.unwrap(p) - p) / (2 * onp.pi)
    onp.testing.assert_allclose(turns, onp.round(turns))
    onp.testing.assert_array_equal(wengert.elementwise_grad(wnp.unwrap)(p), 1.0)
    onp.testing.assert_allclose(wengert.grad(lambda t: wnp.sum(wnp.unwrap(p, period=t)))(2 * onp.pi), turns.sum())
    x = onp.array([-2.0, 0.5, 3.0])
    g = wengert.grad(lambda x: wnp.sum(wnp.piecewise(x, [x < 0, x > 1], [lambda v: v ** 2, 7.0, lambda v: 3 * v])))(x)
    onp.testing.assert_array_equal(g, [-4.0, 3.0, 0.0])  # the last piece is "otherwise"; a constant has no slope


@pytest.mark.parametrize("name, before, after", [  # the call is f(a, *before, values, *after)
    ("put_along_axis", (onp.array([[0], [1]]),), (1,)), ("put", ([0, 3],), ()), ("place", (onp.eye(2) > 0,), ()),
    ("putmask", (onp.eye(2) > 0,), ()), ("fill_diagonal", (), ()),
])
def test_in_place_functions(name: str, before: tuple, after: tuple) -> None:
    """In place on a traced array (recorded as an assignment), as NumPy does; or functional
    with inplace=False; a traced value cannot be written into a plain array."""
    a = real(2, 2)
    plain = a.copy()
    assert getattr(wnp, name)(plain, *before, 1.5, *after) is None  # NumPy's own in-place call
    written_to = plain != a
    assert written_to.any()
    for module in (wnp, onp):
        def f(a: Any) -> Any:
            assert getattr(module, name)(a, *before, 1.5, *after) is None
            return wnp.sum(a * a)
        onp.testing.assert_allclose(wengert.grad(f)(a), onp.where(written_to, 0.0, 2 * a))  # written: no gradient
        assert not onp.array_equal(a, plain)  # the caller's array is not written to
    new = getattr(wnp, name)(a, *before, 1.5, *after, inplace=False)
    onp.testing.assert_array_equal(new, plain)
    assert not onp.array_equal(new, a)  # the functional form leaves its argument alone
    g = wengert.grad(lambda v: wnp.sum(getattr(wnp, name)(onp.zeros((2, 2)), *before, v, *after, inplace=False)))(1.5)
    assert g == written_to.sum()  # one for each place the value was written to
    with pytest.raises(TypeError, match=rf"^{name}: writing traced values into the plain array .* inplace=False"):
        wengert.grad(lambda v: getattr(wnp, name)(onp.zeros((2, 2)), *before, v, *after) or v)(1.5)


def test_copyto_refuses_a_traced_source_for_a_plain_destination() -> None:
    with pytest.raises(TypeError, match=r"^copyto: writing a traced `src` into the plain array `dst`.*numpy\.where"):
        wengert.grad(lambda x: onp.copyto(onp.zeros(3), x) or 0.0)(real(3))


@pytest.mark.parametrize("name, write", [
    ("traced-source", lambda w, x: onp.copyto(w, 2.0 * x)),
    ("plain-source", lambda w, x: onp.copyto(w, onp.arange(3.0))),
    ("where", lambda w, x: onp.copyto(w, x ** 2, where=onp.array([True, False, True]))),
    ("broadcast", lambda w, x: onp.copyto(w, x[0])),
    ("list-of-traced", lambda w, x: wnp.copyto(w, [x[2], x[0] ** 2, 1.0])),
])
def test_copyto_into_a_traced_array_writes_in_place(name: str, write: Callable) -> None:
    def f(x, copy):
        w = x * 1.0
        copy(w, x)
        return wnp.sum(w ** 2 * onp.array([1.0, 2.0, 3.0]))

    def by_setitem(w, x):  # what each case means, written with assignment
        w[...] = {"traced-source": lambda: 2.0 * x, "plain-source": lambda: onp.arange(3.0),
                  "where": lambda: wnp.where(onp.array([True, False, True]), x ** 2, w),
                  "broadcast": lambda: x[0], "list-of-traced": lambda: wnp.stack([x[2], x[0] ** 2, 1.0])}[name]()
    x = real(3)
    onp.testing.assert_allclose(f(x, write), f(x, by_setitem))
    wengert.gradcheck(lambda x: f(x, write), x)
    onp.testing.assert_allclose(wengert.grad(lambda x: f(x, write))(x), wengert.grad(lambda x: f(x, by_setitem))(x))


def test_copyto_into_a_traced_array_keeps_numpys_casting_rule() -> None:
    with pytest.raises(TypeError, match="Cannot cast"):
        wengert.grad(lambda x: onp.copyto(x * 1.0, x * 1j) or 0.0)(real(3))


def test_copyto_of_plain_arrays_is_numpys() -> None:
    dst = onp.zeros(3)
    wnp.copyto(dst, 2.0)
    onp.testing.assert_array_equal(dst, 2.0)


@pytest.mark.parametrize("bad, error, match", [
    (lambda x: wnp.nanmedian(x, out=onp.empty(())), TypeError, "nanmedian: out= cannot be used"),
    (lambda x: wnp.nanquantile(x, 0.5, method="hazen"), NotImplementedError, "nanquantile: only methods"),
    (lambda x: wnp.nanpercentile(x, 50.0, weights=onp.ones(3)), NotImplementedError, "nanpercentile: only"),
    (lambda x: wnp.trim_zeros(x, trim="x"), ValueError, "trim_zeros: unexpected character"),
    (lambda x: wnp.piecewise(x, [x > 0], [1.0, 2.0, 3.0]), ValueError, "piecewise: with 1 condition"),
    (lambda x: wnp.vander(x.reshape(1, 3)), ValueError, "vander: x must be a one-dimensional"),
    (lambda x: wnp.asarray_chkfinite(x * onp.inf), ValueError, "asarray_chkfinite: array must not contain infs"),
    (lambda x: wnp.poly(x.reshape(3, 1)), ValueError, "poly: input must be 1d"),
    (lambda x: wnp.roots(x.reshape(1, 3)), ValueError, "roots: input must be a rank-1 array"),
    (lambda x: wnp.polyfit(x, x[:2], 1), TypeError, "expected x and y to have same length"),
    (lambda x: wnp.apply_along_axis(wnp.sum, 0, x.reshape(3, 1)[:, :0]), ValueError, "apply_along_axis: cannot"),
    (lambda x: wnp.nanmean(x, 0, None, onp.empty(())), TypeError, "nanmean: out= cannot be used"),
    (lambda x: wnp.median(x, 0, onp.empty(())), TypeError, "median: out= cannot be used"),
    (lambda x: wnp.quantile(x, 0.5, interpolation="inverted_cdf"), NotImplementedError, "quantile: only methods"),
    (lambda x: wnp.percentile(x, 50.0, sorted=True), TypeError, r"percentile\(\) got an unexpected keyword argument"),
    (lambda x: wnp.nanstd(x, sorted=True), TypeError, r"nanstd\(\) got an unexpected keyword argument 'sorted'"),
    (lambda x: wnp.nanvar(x, ddof=1, correction=1), ValueError, "nanvar, nanstd: ddof and correction"),
    (lambda x: wnp.nanmean(x, dtype=int), TypeError, "nanmean: dtype must be"),
    (lambda x: wnp.nansum(x, initial=x[0]), TypeError, "nansum: initial= cannot be a traced value"),
    (lambda x: wnp.pad(x, 1, mode="edge", constant_values=2.0), ValueError, "unsupported keyword arguments for mode"),
    (lambda x: wnp.geomspace(x[0] - x[0], 2.0), ValueError, "geomspace: a geometric sequence cannot include zero"),
    (lambda x: wnp.matvec(x.reshape(1, 3), x, keepdims=True), TypeError, "matvec does not support keepdims"),
    (lambda x: wnp.average(x, weights=x[:2]), TypeError, r"average: weights of shape \(2,\) .* give the axis"),
    (lambda x: wnp.average(x.reshape(1, 3), axis=1, weights=x[:2]), ValueError, r"average: weights of shape \(2,\)"),
    (lambda x: wnp.ptp(x, 0, onp.empty(())), TypeError, "ptp: out= cannot be used"),
    (lambda x: wnp.take(x, [0], 0, onp.empty(1)), TypeError, "take: out= cannot be used"),
    (lambda x: wnp.choose([0, 1, 0], [x, x], onp.empty(3)), TypeError, "choose: out= cannot be used"),
    (lambda x: wnp.convolve(x.reshape(1, 3), x), ValueError, "^object too deep for desired array"),  # NumPy's
    (lambda x: wnp.convolve(x[:0], x), ValueError, "^a cannot be empty"),
    (lambda x: wnp.convolve(x, x[:0]), ValueError, "^v cannot be empty"),
    (lambda x: wnp.polymul(x.reshape(1, 3), x), ValueError, "^Polynomial must be 1d only"),
])
def test_misuse_of_new_functions_raises(bad: Callable, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        wengert.grad(lambda x: wnp.sum(bad(x)))(pos(3))


def test_take_and_choose_read_mode_in_numpys_position() -> None:
    x = real(3)
    g = wengert.grad(lambda x: wnp.sum(wnp.take(x, [5, 0], 0, None, "clip")))(x)
    onp.testing.assert_array_equal(g, [1.0, 0.0, 1.0])  # index 5 clipped to the last element
    g = wengert.grad(lambda x: wnp.sum(wnp.choose([3, 0, 1], [x, 2 * x], None, "wrap")))(x)
    onp.testing.assert_array_equal(g, [2.0, 1.0, 2.0])  # 3 wraps to choice 1


def test_quantile_of_a_slice_with_nan_is_nan_and_the_others_keep_their_gradient() -> None:
    x = nan_in(real(3, 4), onp)  # rows 0 and 2 hold a NaN
    out, pull = wengert.vjp(lambda x: wnp.quantile(x, 0.4, axis=1), x)
    onp.testing.assert_allclose(out, onp.quantile(x, 0.4, axis=1))
    assert onp.isnan(out[[0, 2]]).all() and onp.isfinite(out[1])
    g = pull(onp.array([0.0, 1.0, 0.0]))[0]
    assert onp.isfinite(g).all() and not g[[0, 2]].any()
    assert g[1].sum() == pytest.approx(1.0)  # interpolation weights


@pytest.mark.parametrize("x0", [0.0, 3e-4, 1e-3, 0.2, 0.35, 1.0, 3.3])
def test_sinc_derivatives_of_high_order_match_mpmath(x0: float) -> None:
    """Near 0, sin(pi x) / (pi x) and its derivatives lose digits to cancellation (and 0/0 at
    0): the rule must stay exact to every order there, against 40-digit arithmetic."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40

    def exact(k: int) -> float:
        if x0 == 0.0:  # the Taylor coefficient times k!
            return float(mpmath.taylor(lambda t: mpmath.sinc(mpmath.pi * t), 0, k)[k] * mpmath.factorial(k))
        return float(mpmath.diff(lambda t: mpmath.sin(mpmath.pi * t) / (mpmath.pi * t), mpmath.mpf(x0), k))
    for k in range(1, 9):
        assert wengert.derivative(wnp.sinc, k)(x0) == pytest.approx(exact(k), rel=1e-9, abs=1e-9 * 10.0 ** k)


_INV_PI = 1.0 / onp.pi
SINC_POINTS = [  # (name, points): each element's value and derivatives must be its own
    ("zero", [0.0]),
    ("tiny", [1e-30, -1e-300, 1e-8]),
    ("near 1/pi", [_INV_PI - 1e-9, _INV_PI, _INV_PI + 1e-9]),
    ("one", [1.0, -1.0]),
    ("negative", [-0.2, -3.7]),
    ("large", [1e8, 1e15, -1e15]),
    ("1e20 alone", [1e20]),
    ("1e20 beside 0.1", [1e20, 0.1]),
    ("mixed", [1e300, 0.0, -1e-8, 0.3, _INV_PI, 1e15, -2.5, -1e20]),
    ("float32 mixed", onp.array([1e20, 0.1, 30.0, 1e4, 0.0, -0.31], onp.float32)),
]


def _sinc_references(x: Any) -> tuple:
    """The first and second derivatives of sinc at ``x`` (float64): by central differences of
    NumPy's sinc where |x| < 10, and elsewhere by their closed forms in 420-digit arithmetic
    (enough to reduce pi x of x = 1e300 exactly)."""
    mpmath = pytest.importorskip("mpmath")
    x = onp.asarray(x, dtype=onp.float64)
    d1, d2 = onp.empty(x.shape), onp.empty(x.shape)
    near = onp.abs(x) < 10.0
    h1, h2 = 1e-6, 1e-4
    d1[near] = (onp.sinc(x[near] + h1) - onp.sinc(x[near] - h1)) / (2 * h1)
    d2[near] = (onp.sinc(x[near] + h2) - 2 * onp.sinc(x[near]) + onp.sinc(x[near] - h2)) / h2 ** 2
    with mpmath.workdps(420):
        for i in zip(*onp.nonzero(~near)):
            t = mpmath.mpf(float(x[i]))
            s, c, p = mpmath.sin(mpmath.pi * t), mpmath.cos(mpmath.pi * t), mpmath.pi
            d1[i] = float(c / t - s / (p * t ** 2))
            d2[i] = float(-p * s / t - 2 * c / t ** 2 + 2 * s / (p * t ** 3))
    return d1, d2


@pytest.mark.parametrize("name,points", SINC_POINTS, ids=[c[0] for c in SINC_POINTS])
def test_sinc_of_each_element_is_its_own_in_value_and_derivatives(name: str, points: Any) -> None:
    """sinc takes a series where |pi x| < 1 and sin(pi x) / (pi x) elsewhere; neither branch
    may reach the elements of the other (the series overflows far out, which the gradient of
    a plain where() turns into NaN)."""
    x = onp.asarray(points) if isinstance(points, onp.ndarray) else onp.array(points)
    f32 = x.dtype == onp.float32
    value, pull = wengert.vjp(wnp.sinc, x)
    expected = onp.sinc(x)
    assert value.dtype == expected.dtype
    outside = onp.abs(onp.pi * x) >= 1.0  # NumPy's own formula there: the same bits
    assert onp.array_equal(value[outside], expected[outside])
    onp.testing.assert_allclose(value, expected, rtol=1e-6 if f32 else 1e-15, atol=0)
    d1 = wengert.elementwise_grad(wnp.sinc)(x)
    d2 = wengert.elementwise_grad(wengert.elementwise_grad(wnp.sinc))(x)
    t1 = wengert.jvp(wnp.sinc, (x,), (onp.ones_like(x),))[1]
    t2 = wengert.jvp(lambda x: wengert.jvp(wnp.sinc, (x,), (onp.ones_like(x),))[1], (x,), (onp.ones_like(x),))[1]
    for found in (d1, d2, t1, t2, pull(onp.ones_like(x))[0]):
        assert found.dtype == x.dtype and onp.all(onp.isfinite(found))
    r1, r2 = _sinc_references(x)
    tol = dict(rtol=2e-6, atol=1e-6) if f32 else dict(rtol=1e-6, atol=1e-7)
    for found, reference in ((d1, r1), (t1, r1), (d2, r2), (t2, r2)):
        onp.testing.assert_allclose(found, reference, **tol)
    for i in range(x.size):  # alone, the same derivatives
        assert wengert.elementwise_grad(wnp.sinc)(x[i:i + 1])[0] == pytest.approx(d1[i], rel=1e-14, abs=0)


def _roll_written(np, x, shift, axis):
    y = x * 1.0
    r = np.roll(y, shift, axis=axis)
    r[0] = 0.5 * r[-1]  # a write into the result, which is a new array, not y
    y[1] = 3.0 * y[0]  # and a write into y, which the result does not see
    return np.sum(y * y) + np.sum(r * x)


@pytest.mark.parametrize("shift, axis", [(0, 0), (3, 0), (-6, None), (1, 0), (0, None)])
def test_roll_returns_a_new_array(shift, axis):
    """Also where nothing moves (a shift of a multiple of the length): writes into the result
    and into the argument stay apart, as NumPy's."""
    x = onp.array([1.0, -2.0, 0.5])
    expected = fd_grad(lambda x: _roll_written(onp, x, shift, axis), x)
    assert close(wengert.grad(lambda x: _roll_written(wnp, x, shift, axis))(x), expected, rtol=1e-6, atol=1e-6)


def test_roll_refuses_an_axis_that_is_not_an_integer():
    with pytest.raises(TypeError):
        wengert.grad(lambda x: wnp.sum(wnp.roll(x, 1, axis=0.0)))(onp.ones(3))


def test_reshape_in_order_a_of_a_list_of_traced_values():
    """A list is read into a C-ordered array: order 'A' is 'C' there, whatever the layout of
    the cotangent that comes back (r.T makes it Fortran-ordered)."""
    w = onp.array([[1.0, 2.0], [3.0, 4.0]])

    def f(np, x):
        return np.sum(np.reshape([x[0], x[1], x[2], x[3]], (2, 2), order="A").T * w)

    x = onp.array([1.0, 2.0, 3.0, 4.0])
    assert close(wengert.grad(lambda x: f(wnp, x))(x), fd_grad(lambda x: f(onp, x), x))
