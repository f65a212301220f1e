"""NumPy functions built from wengert's primitives.

Each function here is written with ``wengert.numpy``'s differentiable operations, so its
derivatives of every order, in both modes, come from the operations it uses and are exact
(no rule to get wrong). Calls without traced values go straight to NumPy, except for the
functions that take a callable (``piecewise``, ``apply_along_axis``, ``apply_over_axes``),
which may close over traced values. Integer index arithmetic (where to gather, which elements
to mask) is done on plain values; only the floating point data flows through traced
operations.

Also here: the ufunc methods (``add.reduce``, ``maximum.accumulate``, ``multiply.outer`` ...)
on traced values, and NumPy's in-place functions (``put_along_axis``, ``put``, ``place``,
``putmask``, ``fill_diagonal``): in place on traced arrays, as an assignment ``x[...] = new``,
or functional with JAX's keyword ``inplace=False`` (the new array is returned).

Conventions where a derivative does not exist (ties and the like):

* ``maximum.accumulate`` and the other running extremes: each output gathers the element that
  holds the running extreme, the earliest one on ties (``max`` splits ties evenly instead).
* ``unique`` and the set functions give a repeated value's gradient to its first occurrence
  (``union1d``: in ``ar1`` before ``ar2``); ``intersect1d`` splits it evenly between the two
  arrays, as ``maximum`` splits a tie.
* ``histogram``, ``histogram2d``, ``histogramdd``: the counts are differentiable in ``weights``
  only; the bins are constants (their dependence on the data's range is not followed).
* ``copysign(x, y)``: no gradient for ``y`` (only its sign is used); slope 0 at ``x = 0``, as ``abs``.
"""

from __future__ import annotations

import builtins
import functools
import math
import warnings
from typing import Any, Callable

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

import wengert.numpy as wnp

from .._core import Box, strip
from ._wrap import (
    DISPATCH,
    PRIMITIVES,
    _strip_tree,
    index_array,
    module,
    outside_wengert,
    owning,
    package,
    reading_lists,
)
from ._wrap import holds_box as _has_box


def _traced(args: tuple, kwargs: dict) -> bool:
    """Whether the arguments of a call hold a traced value (in lists and tuples too)."""
    return _has_box(args) or _has_box(tuple(kwargs.values()))


# The NumPy functions this module implements (tests/test_derived.py needs a case for each).
DERIVED: list = []


def derived(fun: Any, always: bool = False) -> Callable[[Callable], Callable]:
    """Register ``impl`` as the traced version of the NumPy function ``fun`` (``always``: for
    untraced calls too, for functions taking callables that may close over traced values)."""
    def register(impl: Callable) -> Callable:
        traced = owning(reading_lists(impl))

        @functools.wraps(fun)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not (always or _traced(args, kwargs)):
                return fun(*args, **kwargs)
            _no_out(fun.__name__, kwargs.pop("out", None))
            return traced(*args, **kwargs)
        DISPATCH[fun] = wrapper
        DERIVED.append(fun)
        return wrapper
    return register


def _no_out(name: str, out: Any) -> None:
    if out is not None:
        raise TypeError(f"{name}: out= cannot be used with traced values, because the result would be written "
                        "behind the tape's back. Use the returned value instead.")


def _shape(x: Any) -> tuple:
    return np.shape(strip(x))


def _ndim(x: Any) -> int:
    return np.ndim(strip(x))


def _scalar(out: Any) -> Any:
    """A 0-d result as NumPy's reductions and elementwise functions give it: a scalar."""
    return out[()] if _ndim(out) == 0 else out


def _plain(x: Any) -> Any:
    return np.asarray(strip(x))


def _along(axis: int, nd: int, index: Any) -> tuple:
    """An index that applies ``index`` along ``axis`` of an ``nd``-dimensional array."""
    return (slice(None),) * axis + (index,) + (slice(None),) * (nd - axis - 1)


def _gather(layout: np.ndarray, *sources: Any) -> Any:
    """The elements of ``sources`` (flattened and joined) at the flat positions ``layout``.
    Functions that only move elements are computed this way: NumPy itself, run on arrays of
    indices, says where each output element comes from."""
    flat = [wnp.ravel(x) for x in sources]
    joined = wnp.concatenate(flat) if len(flat) > 1 else flat[0]
    return joined[layout] if layout.ndim else wnp.reshape(joined[layout[None]], ())  # 0-d stays an array


def _indices(x: Any, start: int = 0) -> np.ndarray:
    return np.arange(start, start + np.size(strip(x))).reshape(_shape(x))


def _as_dtype(x: Any, dtype: Any) -> Any:
    return x if _plain(x).dtype == dtype else wnp.astype(x, dtype)


# ============================================================================= elementwise
_SINC_SERIES = [(-1) ** n / math.factorial(2 * n + 1) for n in range(13)]  # sin(y) / y in powers of y^2


@derived(np.sinc)
def sinc(x: Any) -> Any:
    y = np.pi * wnp.asarray(x)
    # |y| < 1: the Taylor series to y^24 (its remainder below 1e-28), whose derivatives of every order up
    # to about 20 are exact, where those of sin(y) / y lose digits to cancellation as y nears 0
    small = np.abs(strip(y)) < 1.0
    if not np.any(small):
        return wnp.sin(y) / y
    # Each branch is evaluated on its own elements only, the others replaced by a value safe
    # for it (the double-where trick): where it is not taken, y^24 overflows to inf, and the
    # zero cotangent that where() sends there times an infinite slope is NaN.
    safe = wnp.where(small, 1.0, y)
    inside = wnp.where(small, y, 0.0)
    y2 = inside * inside
    series = _SINC_SERIES[-1]
    for c in _SINC_SERIES[-2::-1]:
        series = series * y2 + c
    return _scalar(wnp.where(small, series, wnp.sin(safe) / safe))


@derived(np.angle)
def angle(z: Any, deg: bool = False) -> Any:
    a = wnp.arctan2(wnp.imag(z), wnp.real(z))
    return a * (180 / np.pi) if deg else a


@derived(np.nan_to_num)
def nan_to_num(x: Any, copy: bool = True, nan: float = 0.0, posinf: Any = None, neginf: Any = None) -> Any:
    if wnp.iscomplexobj(x):
        parts = (nan_to_num(p, nan=nan, posinf=posinf, neginf=neginf) for p in (wnp.real(x), wnp.imag(x)))
        out = next(parts) + 1j * next(parts)
    else:
        info = np.finfo(np.result_type(strip(x)))
        v = strip(x)
        out = wnp.where(np.isnan(v), nan, x)
        out = wnp.where(np.isposinf(v), info.max if posinf is None else posinf, out)
        out = wnp.where(np.isneginf(v), info.min if neginf is None else neginf, out)
    if not copy and type(x) is Box and isinstance(strip(x), np.ndarray):  # NumPy writes into x and returns it
        x[...] = out
        return x
    return _scalar(out)


@derived(np.real_if_close)
def real_if_close(a: Any, tol: float = 100) -> Any:
    a = wnp.asarray(a)
    v = _plain(a)
    if v.dtype.kind != "c":
        return a
    limit = tol * np.finfo(v.dtype).eps if tol > 1 else tol
    return wnp.real(a) if np.all(np.abs(v.imag) < limit) else a


@derived(np.frexp)
def frexp(x: Any) -> tuple:
    exponent = np.frexp(strip(x))[1]
    return x * np.ldexp(np.ones((), np.result_type(strip(x))), -exponent), exponent  # in x's precision


@derived(np.vecdot)
def vecdot(x1: Any, x2: Any, /, *, axes: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    return _on_core(np.vecdot, (1, 1, 0), lambda x1, x2: wnp.sum(wnp.conj(x1) * x2, axis=-1),
                    x1, x2, axes, axis, keepdims)


@derived(np.matvec)
def matvec(x1: Any, x2: Any, /, *, axes: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    return _on_core(np.matvec, (2, 1, 1), lambda x1, x2: wnp.matmul(x1, wnp.expand_dims(x2, -1))[..., 0],
                    x1, x2, axes, axis, keepdims)


@derived(np.vecmat)
def vecmat(x1: Any, x2: Any, /, *, axes: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    return _on_core(np.vecmat, (1, 2, 1), lambda x1, x2: wnp.matmul(wnp.expand_dims(wnp.conj(x1), -2), x2)[..., 0, :],
                    x1, x2, axes, axis, keepdims)


def _on_core(fun: np.ufunc, cores: tuple, core: Callable, x1: Any, x2: Any, axes: Any, axis: Any,
             keepdims: bool) -> Any:
    """The generalized ufunc ``fun`` with NumPy's options ``axes``, ``axis`` and ``keepdims``
    (NumPy checks them): ``core`` computes it with the core dimensions last (``cores``: how
    many the two operands and the output have), and the output's are moved where asked."""
    options = {"axes": axes, "axis": axis, "keepdims": keepdims or None}  # matvec refuses even keepdims=False
    fun(_plain(x1), _plain(x2), **{k: v for k, v in options.items() if v is not None})  # NumPy's checks of them
    if keepdims:  # the reduced dimension stays, as a core dimension of the output
        cores = cores[:2] + (1,)
    last = [tuple(range(-c, 0)) for c in cores]
    if axis is not None:
        axes = [(axis,) if c else () for c in cores]
    given = [(e,) if np.ndim(e) == 0 else tuple(e) for e in axes or ()]
    given += last[len(given):]  # the output's entry may be left out
    out = core(*(wnp.moveaxis(x, g, t) for x, g, t in zip((x1, x2), given, last)))
    return wnp.moveaxis(wnp.expand_dims(out, -1) if keepdims else out, last[2], given[2])


# ============================================================================= reductions
def _fill(a: Any, value: float) -> Any:
    return wnp.where(np.isnan(strip(a)), value, a)


def _initial(name: str, initial: Any) -> dict:
    """The keyword ``initial`` to pass on (none when it is not given); a traced one is refused."""
    if type(initial) is Box:
        raise TypeError(f"{name}: initial= cannot be a traced value (its gradient would be lost); apply it to the "
                        f"result of {name} instead.")
    return {} if initial is np._NoValue else {"initial": initial}


@derived(np.nansum)
def nansum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False,
           initial: Any = np._NoValue, where: Any = True) -> Any:
    _no_out("nansum", out)
    return wnp.sum(_fill(a, 0.0), axis=axis, dtype=dtype, keepdims=keepdims, where=where, **_initial("nansum", initial))


@derived(np.nanprod)
def nanprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False,
            initial: Any = np._NoValue, where: Any = True) -> Any:
    _no_out("nanprod", out)
    return wnp.prod(_fill(a, 1.0), axis=axis, dtype=dtype, keepdims=keepdims, where=where,
                    **_initial("nanprod", initial))


@derived(np.nanmax)
def nanmax(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False, initial: Any = np._NoValue,
           where: Any = True) -> Any:
    return _nan_extreme(np.nanmax, wnp.max, -np.inf, a, axis, out, keepdims, initial, where)


@derived(np.nanmin)
def nanmin(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False, initial: Any = np._NoValue,
           where: Any = True) -> Any:
    return _nan_extreme(np.nanmin, wnp.min, np.inf, a, axis, out, keepdims, initial, where)


def _nan_extreme(fun: Any, extreme: Callable, fill: float, a: Any, axis: Any, out: Any, keepdims: bool,
                 initial: Any, where: Any) -> Any:
    """nanmax, nanmin: the extreme of the numbers, NaN where a slice holds none (NumPy's own
    call on the plain values says where, and checks the arguments)."""
    _no_out(fun.__name__, out)
    kw = _initial(fun.__name__, initial)
    none = np.isnan(fun(_plain(a), axis, None, keepdims, initial, where))
    return _scalar(wnp.where(none, np.nan, extreme(_fill(a, fill), axis=axis, keepdims=keepdims, where=where, **kw)))


def _kept(a: Any, where: Any) -> np.ndarray:
    """The elements nanmean, nanvar and nanstd count: those not NaN that ``where`` selects."""
    return ~np.isnan(_plain(a)) & where


def _inexact(name: str, dtype: Any) -> None:
    if dtype is not None and not np.issubdtype(dtype, np.inexact):
        raise TypeError(f"{name}: dtype must be a floating point or complex type, as in NumPy, not "
                        f"{np.dtype(dtype)}; cast the result instead.")


def _per(total: Any, count: Any) -> Any:
    """``total / count`` in the dtype of ``total``, as NumPy's nan-functions divide (in place)."""
    return _as_dtype(total / count, _plain(total).dtype)


@derived(np.nanmean)
def nanmean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False, *,
            where: Any = True) -> Any:
    _no_out("nanmean", out)
    _inexact("nanmean", dtype)
    kept = _kept(a, where)
    total = wnp.sum(wnp.where(kept, a, 0.0), axis=axis, dtype=dtype, keepdims=keepdims)
    return _per(total, np.sum(kept, axis=axis, keepdims=keepdims))


@derived(np.nanvar)
def nanvar(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: float = 0, keepdims: bool = False,
           *, where: Any = True, mean: Any = np._NoValue, correction: Any = np._NoValue) -> Any:
    """NumPy's definition: the squared deviations of the elements counted from their mean (or
    from ``mean``, shaped as with keepdims=True), summed and divided by their number less
    ``ddof`` (``correction`` is its other name); NaN where that is not positive."""
    _no_out("nanvar", out)
    _inexact("nanvar, nanstd", dtype)
    if correction is not np._NoValue:
        if ddof != 0:
            raise ValueError("nanvar, nanstd: ddof and correction are two names of one argument; give only one.")
        ddof = correction
    kept = _kept(a, where)
    if mean is np._NoValue:
        mean = nanmean(a, axis=axis, dtype=dtype, keepdims=True, where=where)
    centred = wnp.where(kept, a - mean, 0.0)
    sq = wnp.real(centred * wnp.conj(centred)) if wnp.iscomplexobj(centred) else centred * centred
    dof = np.sum(kept, axis=axis, keepdims=keepdims) - ddof
    var = _per(wnp.sum(sq, axis=axis, dtype=dtype, keepdims=keepdims), np.where(dof > 0, dof, 1))
    return _scalar(wnp.where(dof > 0, var, np.nan))


@derived(np.nanstd)
def nanstd(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: float = 0, keepdims: bool = False,
           *, where: Any = True, mean: Any = np._NoValue, correction: Any = np._NoValue) -> Any:
    _no_out("nanstd", out)
    var = nanvar(a, axis, dtype, None, ddof, keepdims, where=where, mean=mean, correction=correction)
    alone = np.sum(_kept(a, where), axis=axis, keepdims=keepdims) == 1
    if mean is np._NoValue and np.any(alone):  # one number about its own mean: std 0 whatever it is,
        return _scalar(wnp.where(alone, 0.0 * var, wnp.sqrt(wnp.where(alone, 1.0, var))))  # slope 0, not 0 / 0
    return wnp.sqrt(var)


@derived(np.nancumsum)
def nancumsum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    _no_out("nancumsum", out)
    return wnp.cumsum(_fill(a, 0.0), axis=axis, dtype=dtype)


@derived(np.nancumprod)
def nancumprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    _no_out("nancumprod", out)
    return cumprod(_fill(a, 1.0), axis=axis, dtype=dtype)


@derived(np.cumprod)
def cumprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    """NumPy's running products, whose derivative divides by ``a`` where every running product
    is a normal number; elsewhere (a zero, an underflow or an overflow) a log-depth scan of
    multiplications, exact at zeros to every order."""
    _no_out("cumprod", out)
    a = wnp.asarray(a, dtype=dtype)
    if axis is None:
        a, axis = wnp.ravel(a), 0
    axis = normalize_axis_index(axis, _ndim(a))
    if _plain(a).dtype.kind in "fc" and np.all(_plain(a) != 0):  # (forward mode divides at once)
        fast = wnp._running_product(a, axis - _ndim(a))
        products = np.abs(_plain(fast))
        if np.all((products >= np.finfo(products.dtype).tiny) & (products <= np.finfo(products.dtype).max)):
            return fast
    y = wnp.moveaxis(a, axis, -1)
    n, step = _shape(y)[-1], 1
    while step < n:
        y = wnp.concatenate([y[..., :step], y[..., step:] * y[..., :-step]], axis=-1)
        step *= 2
    return wnp.moveaxis(y, -1, axis)


def _cumulative(op: Callable, identity: float) -> Callable:
    def cumulative(x: Any, /, *, axis: Any = None, dtype: Any = None, include_initial: bool = False) -> Any:
        if axis is None:
            if _ndim(x) > 1:
                raise ValueError("cumulative_sum, cumulative_prod: give an axis for arrays of more than one dimension")
            axis = 0
        out = op(atleast_1d(x), axis=axis, dtype=dtype)  # a 0-d x counts as one element, as NumPy's
        if include_initial:
            first = wnp.full_like(out, identity, shape=_shape(wnp.take(out, [0], axis=axis)))
            out = wnp.concatenate([first, out], axis=axis)
        return out
    return cumulative


derived(np.cumulative_sum)(_cumulative(lambda x, axis, dtype: wnp.cumsum(x, axis=axis, dtype=dtype), 0.0))
derived(np.cumulative_prod)(_cumulative(cumprod, 1.0))


@derived(np.average)
def average(a: Any, axis: Any = None, weights: Any = None, returned: bool = False, *, keepdims: bool = False) -> Any:
    if weights is None:
        avg = wnp.mean(a, axis=axis, keepdims=keepdims)
        total = np.size(strip(a)) / max(np.size(strip(avg)), 1)
        total = np.broadcast_to(np.asarray(total, dtype=float), _shape(avg))
    else:
        w = wnp.asarray(weights)
        if _shape(w) != _shape(a):
            w = _weights_along(a, w, axis)
        total = wnp.sum(wnp.broadcast_to(w, _shape(a)), axis=axis, keepdims=keepdims)
        avg = wnp.sum(a * w, axis=axis, keepdims=keepdims) / total
    return (avg, total) if returned else avg


def _weights_along(a: Any, w: Any, axis: Any) -> Any:
    """average's weights given along ``axis`` (one axis or several, in that order), shaped to
    broadcast against ``a``, as NumPy takes them."""
    if axis is None:
        raise TypeError(f"average: weights of shape {_shape(w)} differ from the shape of a, {_shape(a)}; give the "
                        "axis (or axes) they are along.")
    axes = normalize_axis_tuple(axis, _ndim(a))
    along = tuple(_shape(a)[i] for i in axes)
    if _shape(w) != along:
        raise ValueError(f"average: weights of shape {_shape(w)} must have the shape of a, {_shape(a)}, or its shape "
                         f"along axis={axis}, {along}.")
    shape = tuple(n if i in axes else 1 for i, n in enumerate(_shape(a)))
    return wnp.reshape(wnp.transpose(w, np.argsort(axes)), shape)


@derived(np.ptp)
def ptp(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False) -> Any:
    _no_out("ptp", out)
    return wnp.max(a, axis=axis, keepdims=keepdims) - wnp.min(a, axis=axis, keepdims=keepdims)


# The sorted positions a quantile method reads at the virtual index p = q (n - 1), as NumPy's
# (linear and midpoint interpolate between the two; the others take the first).
_QUANTILE_INDEX = {"linear": lambda p: (np.floor(p), np.floor(p) + 1), "midpoint": lambda p: (np.floor(p), np.ceil(p)),
                   "lower": lambda p: (np.floor(p),) * 2, "higher": lambda p: (np.ceil(p),) * 2,
                   "nearest": lambda p: (np.around(p),) * 2}


def _quantile(a: Any, q: Any, axis: Any, method: str, keepdims: Any, weights: Any, skipnan: bool, name: str) -> Any:
    """Linear interpolation between the sorted values (NumPy's default method); the gradient
    reaches the one or two values each quantile lies between, and ``q`` itself. ``skipnan``:
    NaNs are left out (each slice interpolates among its own values); otherwise a slice
    with a NaN gives NaN. ``name`` is the NumPy function called (``q`` is in percent for the
    percentiles)."""
    if method not in _QUANTILE_INDEX or weights is not None:
        raise NotImplementedError(f"{name}: only methods {sorted(_QUANTILE_INDEX)} without weights are "
                                  f"differentiable in wengert (got method={method!r}); use stop_gradient for "
                                  "the others.")
    if name not in ("median", "nanmedian") and np.iscomplexobj(_plain(a)):  # as NumPy: no complex quantiles
        raise TypeError(f"{name}: a must be an array of real numbers, as in NumPy; take the {name} of "
                        "wengert.numpy.real(a) or wengert.numpy.abs(a) instead.")
    if np.size(strip(a)) == 0:
        # Nothing to interpolate between, so nothing to differentiate: NumPy's own result (an
        # empty array; NaNs and its warning for nan*, which there also leave q's axes out),
        # or its error. A NaN is taken to be constant in q, as where a slice is all NaN below.
        return getattr(np, name)(_plain(a), _strip_tree(q), axis=axis, method=method, keepdims=keepdims)
    if name.endswith("percentile"):
        q = q / 100.0 if type(q) in (int, float) else wnp.asarray(q) / 100.0  # a Python number stays weak
    a = wnp.asarray(a)
    dtype = np.result_type(_plain(a), q if type(q) in (int, float) else _plain(wnp.asarray(q)))  # NumPy's
    nd_in = _ndim(a)
    if axis is None:
        a = wnp.ravel(a)
    else:  # the axes to reduce go last, flattened into one
        axes = normalize_axis_tuple(axis, nd_in)
        keep = [i for i in range(nd_in) if i not in axes]
        a = wnp.transpose(a, keep + list(axes))
        a = wnp.reshape(a, _shape(a)[: len(keep)] + (-1,))
    s = sort(a, axis=-1)  # NaNs sort last
    nan = np.isnan(_plain(s))
    n = _shape(s)[-1]
    count = np.sum(~nan, axis=-1, keepdims=True) if skipnan else np.full(_shape(s)[:-1] + (1,), n)
    last = np.maximum(count - 1, 0)
    q = wnp.asarray(q)
    pos = wnp.reshape(q, (-1,)) * (count - 1)  # (..., number of quantiles)
    lo, hi = (np.minimum(np.clip(i, 0, None).astype(np.intp), last) for i in _QUANTILE_INDEX[method](strip(pos)))
    s = wnp.where(nan, 0.0, s) if nan.any() else s  # no NaN on the gradient's path
    v_lo, v_hi = take_along_axis(s, lo, axis=-1), take_along_axis(s, hi, axis=-1)
    if method == "linear":
        out = v_lo + (v_hi - v_lo) * (pos - lo)
    elif method == "midpoint":
        out = v_lo + (v_hi - v_lo) * 0.5
    else:  # a sorted element itself
        out = v_lo
    undefined = count == 0 if skipnan else nan[..., -1:]
    if undefined.any():
        out = wnp.where(undefined, np.nan, out)
    out = wnp.reshape(out, _shape(out)[:-1] + _shape(q))
    qnd = _ndim(q)
    if qnd:  # the quantiles' dimensions come first
        out = wnp.moveaxis(out, tuple(range(_ndim(out) - qnd, _ndim(out))), tuple(range(qnd)))
    if keepdims is True:
        shape = list(_shape(out))
        for i in (range(nd_in) if axis is None else sorted(normalize_axis_tuple(axis, nd_in))):
            shape.insert(qnd + i, 1)
        out = wnp.reshape(out, tuple(shape))
    out = _as_dtype(out, dtype)
    return _scalar(out)


@derived(np.quantile)
def quantile(a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
             method: str = "linear", keepdims: bool = False, *, weights: Any = None, interpolation: Any = None) -> Any:
    _no_out("quantile", out)
    return _quantile(a, q, axis, interpolation or method, keepdims, weights, False, "quantile")


@derived(np.percentile)
def percentile(a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
               method: str = "linear", keepdims: bool = False, *, weights: Any = None,
               interpolation: Any = None) -> Any:
    _no_out("percentile", out)
    return _quantile(a, q, axis, interpolation or method, keepdims, weights, False, "percentile")


@derived(np.median)
def median(a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False, keepdims: bool = False) -> Any:
    _no_out("median", out)
    if np.size(strip(a)) == 0:  # NaN (or an empty result) and NumPy's warning; nothing to differentiate
        return np.median(_plain(a), axis, keepdims=keepdims)
    return _quantile(a, 0.5, axis, "linear", keepdims, None, False, "median")


@derived(np.nanquantile)
def nanquantile(a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
                method: str = "linear", keepdims: Any = False, *, weights: Any = None,
                interpolation: Any = None) -> Any:
    _no_out("nanquantile", out)
    return _quantile(a, q, axis, interpolation or method, keepdims, weights, True, "nanquantile")


@derived(np.nanpercentile)
def nanpercentile(a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
                  method: str = "linear", keepdims: Any = False, *, weights: Any = None,
                  interpolation: Any = None) -> Any:
    _no_out("nanpercentile", out)
    return _quantile(a, q, axis, interpolation or method, keepdims, weights, True, "nanpercentile")


@derived(np.nanmedian)
def nanmedian(a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False, keepdims: Any = False) -> Any:
    _no_out("nanmedian", out)
    if np.size(strip(a)) == 0:
        return np.nanmedian(_plain(a), axis, keepdims=keepdims)
    return _quantile(a, 0.5, axis, "linear", keepdims, None, True, "nanmedian")


# ============================================================================= differences, integrals
@derived(np.diff)
def diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = np._NoValue, append: Any = np._NoValue) -> Any:
    a = wnp.asarray(a)
    axis = normalize_axis_index(axis, _ndim(a))
    parts = []
    for extra in (prepend, None, append):
        if extra is None:
            parts.append(a)
        elif extra is not np._NoValue:
            e = wnp.asarray(extra)
            if _ndim(e) == 0:
                shape = list(_shape(a))
                shape[axis] = 1
                e = wnp.broadcast_to(e, tuple(shape))
            parts.append(e)
    a = wnp.concatenate(parts, axis=axis) if len(parts) > 1 else a
    for _ in range(n):
        a = a[_along(axis, _ndim(a), slice(1, None))] - a[_along(axis, _ndim(a), slice(None, -1))]
    return a


@derived(np.ediff1d)
def ediff1d(ary: Any, to_end: Any = None, to_begin: Any = None) -> Any:
    d = diff(wnp.ravel(ary))

    def end(e: Any) -> list:  # cast to the differences' dtype, as NumPy casts it
        return [] if e is None else [_as_dtype(wnp.ravel(wnp.asarray(e)), _plain(d).dtype)]

    parts = end(to_begin) + [d] + end(to_end)
    return wnp.concatenate(parts) if len(parts) > 1 else d


@derived(np.unwrap)
def unwrap(p: Any, discont: Any = None, axis: int = -1, *, period: Any = 2 * np.pi) -> Any:
    """``p`` plus whole periods: how many is read from NumPy's own result (piecewise constant),
    so the derivative is 1 in ``p`` and the number of periods added in ``period``."""
    p = wnp.asarray(p)
    plain = _plain(p)
    turns = np.round((np.unwrap(plain, strip(discont), axis, period=strip(period)) - plain) / strip(period))
    return p + turns * period


@derived(np.gradient)
def gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    """Central differences inside, one-sided at the edges (first or second order), for a
    uniform spacing (a number) or coordinates (an array) per axis, as NumPy computes them."""
    f = wnp.asarray(f)
    nd = _ndim(f)
    axes = tuple(range(nd)) if axis is None else normalize_axis_tuple(axis, nd)
    spacings = list(varargs) if len(varargs) > 1 else list(varargs) * len(axes) if varargs else [1.0] * len(axes)
    dtype = _plain(f).dtype if np.issubdtype(_plain(f).dtype, np.inexact) else np.float64  # NumPy's
    out = [_as_dtype(_gradient_along(f, ax, h, edge_order), dtype) for ax, h in zip(axes, spacings)]
    return out[0] if len(out) == 1 else tuple(out)


def _gradient_along(f: Any, ax: int, h: Any, edge_order: int) -> Any:
    nd, n = _ndim(f), _shape(f)[ax]
    if n < edge_order + 1:
        raise ValueError("gradient: an axis needs at least edge_order + 1 points")

    def at(i: Any) -> Any:
        return f[_along(ax, nd, i)]

    def bcast(v: Any) -> Any:  # a coordinate vector along ax, shaped to broadcast against f
        return wnp.reshape(v, tuple(-1 if i == ax else 1 for i in range(nd)))

    if _ndim(h) == 0:  # uniform spacing
        inner = (at(slice(2, None)) - at(slice(None, -2))) / (2.0 * h)
        if edge_order == 1:
            first, last = (at(1) - at(0)) / h, (at(-1) - at(-2)) / h
        else:
            first = (-1.5 * at(0) + 2.0 * at(1) - 0.5 * at(2)) / h
            last = (0.5 * at(-3) - 2.0 * at(-2) + 1.5 * at(-1)) / h
    else:  # coordinates: second-order accurate differences on a non-uniform grid
        x = wnp.asarray(h)
        dx = diff(x)
        h1, h2 = bcast(dx[:-1]), bcast(dx[1:])
        inner = (-h2 / (h1 * (h1 + h2)) * at(slice(None, -2)) + (h2 - h1) / (h1 * h2) * at(slice(1, -1))
                 + h1 / (h2 * (h1 + h2)) * at(slice(2, None)))
        if edge_order == 1:
            first, last = (at(1) - at(0)) / dx[0], (at(-1) - at(-2)) / dx[-1]
        else:
            a1, a2 = dx[0], dx[1]
            first = (-(2 * a1 + a2) / (a1 * (a1 + a2)) * at(0) + (a1 + a2) / (a1 * a2) * at(1)
                     - a1 / (a2 * (a1 + a2)) * at(2))
            b1, b2 = dx[-2], dx[-1]
            last = (b2 / (b1 * (b1 + b2)) * at(-3) - (b1 + b2) / (b1 * b2) * at(-2)
                    + (2 * b2 + b1) / (b2 * (b1 + b2)) * at(-1))
    return wnp.concatenate([wnp.expand_dims(first, ax), inner, wnp.expand_dims(last, ax)], axis=ax)


@derived(np.trapezoid)
def trapezoid(y: Any, x: Any = None, dx: float = 1.0, axis: int = -1) -> Any:
    """NumPy's steps: ``axis`` is y's, and also x's when x is not 1-d (the product broadcasts)."""
    y = wnp.asarray(y)
    nd = _ndim(y)
    ay = normalize_axis_index(axis, nd)
    if x is None:
        d = dx
    else:
        x = wnp.asarray(x)
        d = diff(x, axis=-1 if _ndim(x) == 1 else axis)
        if _ndim(x) == 1:
            d = wnp.reshape(d, tuple(-1 if i == ay else 1 for i in range(nd)))
    return wnp.sum(d * (y[_along(ay, nd, slice(1, None))] + y[_along(ay, nd, slice(None, -1))]) / 2.0, axis=axis)


@derived(np.interp)
def interp(x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None, period: Any = None) -> Any:
    # in double precision, as NumPy's (complex if fp is)
    x, xp = wnp.asarray(x, dtype=np.float64), wnp.asarray(xp, dtype=np.float64)
    fp = wnp.asarray(fp, dtype=np.complex128 if np.iscomplexobj(strip(fp)) else np.float64)
    if period is not None:  # as NumPy: all in [0, period), the knots sorted there and one wrapped to each end
        if strip(period) == 0:
            raise ValueError("period must be a non-zero value")
        period, left, right = abs(period), None, None
        x, xp = x % period, xp % period
        order = np.argsort(_plain(xp))
        xp, fp = xp[order], fp[order]
        xp = wnp.concatenate([xp[-1:] - period, xp, xp[:1] + period])
        fp = wnp.concatenate([fp[-1:], fp, fp[:1]])
    xv, xpv = _plain(x), _plain(xp)
    if len(xpv) == 1:  # one knot: fp[0] at it (the slope between two knots would be 0 / 0)
        inside = wnp.broadcast_to(fp[0], _shape(x))
    else:
        i = np.clip(np.searchsorted(xpv, xv, side="right"), 1, len(xpv) - 1)
        x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
        width = _plain(x1) - _plain(x0)
        if np.any(width == 0):  # between repeated knots: no slope (and no 0 / 0 on the gradient's path)
            x1 = wnp.where(width == 0, x0 + 1.0, x1)
            f1 = wnp.where(width == 0, f0, f1)
        inside = f0 + (f1 - f0) * (x - x0) / (x1 - x0)
        inside = wnp.where(xv == xpv[-1], fp[-1], inside)  # NumPy's value at the last knot, repeated or not
    out = wnp.where(xv < xpv[0], fp[0] if left is None else left, inside)
    return _scalar(wnp.where(xv > xpv[-1], fp[-1] if right is None else right, out))


# ============================================================================= sorting and selection
@derived(np.sort)
def sort(a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *, stable: Any = None) -> Any:
    if axis is None:
        a, axis = wnp.ravel(a), -1
    if kind is None and stable is None:  # ties in the order a stable sort gives: reproducible gradients
        stable = True
    order_idx = np.argsort(strip(a), axis=axis, kind=kind, stable=stable)
    return take_along_axis(a, order_idx, axis=axis)


@derived(np.partition)
def partition(a: Any, kth: Any, axis: int = -1, kind: str = "introselect", order: Any = None) -> Any:
    if axis is None:
        a, axis = wnp.ravel(a), -1
    return take_along_axis(a, np.argpartition(strip(a), kth, axis=axis), axis=axis)


@derived(np.take)
def take(a: Any, indices: Any, axis: Any = None, out: Any = None, mode: str = "raise") -> Any:
    _no_out("take", out)
    if axis is None:
        a, axis = wnp.ravel(a), 0
    axis = normalize_axis_index(axis, _ndim(a))
    n, idx = _shape(a)[axis], index_array(strip(indices))
    if mode == "wrap":
        idx = idx % n
    elif mode == "clip":
        idx = np.clip(idx, 0, n - 1)
    return a[_along(axis, _ndim(a), idx)]


@derived(np.take_along_axis)
def take_along_axis(arr: Any, indices: Any, axis: Any = -1) -> Any:
    if axis is None:
        arr, axis = wnp.ravel(arr), 0
    axis = normalize_axis_index(axis, _ndim(arr))
    return _gather(np.take_along_axis(_indices(arr), np.asarray(indices), axis=axis), arr)


@derived(np.compress)
def compress(condition: Any, a: Any, axis: Any = None) -> Any:
    where_true = np.flatnonzero(strip(condition))
    return take(a, where_true, axis=axis)


@derived(np.extract)
def extract(condition: Any, arr: Any) -> Any:
    return wnp.ravel(arr)[np.flatnonzero(np.ravel(strip(condition)))]


@derived(np.select)
def select(condlist: Any, choicelist: Any, default: Any = 0) -> Any:
    out = default
    for cond, choice in reversed(list(zip(condlist, choicelist))):
        out = wnp.where(strip(cond), choice, out)
    return out


@derived(np.choose)
def choose(a: Any, choices: Any, out: Any = None, mode: str = "raise") -> Any:
    _no_out("choose", out)
    idx = np.asarray(strip(a))
    n = len(choices)
    idx = idx % n if mode == "wrap" else np.clip(idx, 0, n - 1) if mode == "clip" else idx
    return select([idx == k for k in range(n)], list(choices), 0.0)


def _first_index(flat: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Where in ``flat`` each of the (distinct) ``values`` occurs first; the k-th NaN among the
    values is matched with the k-th NaN of ``flat``."""
    u, first = np.unique(flat, return_index=True)
    idx = first[np.minimum(np.searchsorted(u, values), len(u) - 1)] if len(u) else np.zeros(0, np.intp)
    nan = np.isnan(values) if values.dtype.kind in "fc" else np.zeros(values.shape, bool)
    if nan.any():
        idx[nan] = np.flatnonzero(np.isnan(flat))[: int(nan.sum())]
    return idx


@derived(np.unique)
def unique(ar: Any, return_index: bool = False, return_inverse: bool = False, return_counts: bool = False,
           axis: Any = None, *, equal_nan: bool = True, sorted: bool = True) -> Any:
    """The unique values gathered from their first occurrences (NumPy's own call says which)."""
    v = _plain(ar)
    flags = dict(return_index=return_index, return_inverse=return_inverse, return_counts=return_counts)
    plain = np.unique(v, **flags, axis=axis, equal_nan=equal_nan, sorted=sorted)
    parts = list(plain) if any(flags.values()) else [plain]
    if axis is None:
        first = parts[1] if return_index else _first_index(v.ravel(), parts[0])
        parts[0] = wnp.ravel(ar)[first]
    else:
        first = parts[1] if return_index else np.unique(v, return_index=True, axis=axis, equal_nan=equal_nan,
                                                        sorted=sorted)[1]
        parts[0] = take(ar, first, axis=axis)
    return tuple(parts) if len(parts) > 1 else parts[0]


def _unique_result(fun: Any) -> Callable:
    """unique_all, unique_counts, unique_inverse: NumPy's named tuple, values gathered."""
    def impl(x: Any, /) -> Any:
        v = _plain(x)
        plain = fun(v)
        first = plain.indices if hasattr(plain, "indices") else _first_index(v.ravel(), plain.values)
        return type(plain)(wnp.ravel(x)[first], *plain[1:])
    return impl


for _f in (np.unique_all, np.unique_counts, np.unique_inverse):
    derived(_f)(_unique_result(_f))


@derived(np.unique_values)
def unique_values(x: Any, /) -> Any:
    v = _plain(x)
    return wnp.ravel(x)[_first_index(v.ravel(), np.unique_values(v))]


@derived(np.union1d)
def union1d(ar1: Any, ar2: Any) -> Any:
    return unique(wnp.concatenate([wnp.ravel(ar1), wnp.ravel(ar2)]))


@derived(np.intersect1d)
def intersect1d(ar1: Any, ar2: Any, assume_unique: bool = False, return_indices: bool = False) -> Any:
    """Each common value is the mean of its (equal) first occurrences in the two arrays, so
    the gradient is split evenly between them."""
    _, i1, i2 = np.intersect1d(_plain(ar1), _plain(ar2), assume_unique=assume_unique, return_indices=True)
    values = (wnp.ravel(ar1)[i1] + wnp.ravel(ar2)[i2]) * 0.5
    return (values, i1, i2) if return_indices else values


@derived(np.setdiff1d)
def setdiff1d(ar1: Any, ar2: Any, assume_unique: bool = False) -> Any:
    ar1 = wnp.ravel(ar1) if assume_unique else unique(ar1)
    return ar1[~np.isin(_plain(ar1), _plain(ar2), assume_unique=True)]


@derived(np.setxor1d)
def setxor1d(ar1: Any, ar2: Any, assume_unique: bool = False) -> Any:
    if not assume_unique:
        ar1, ar2 = unique(ar1), unique(ar2)
    aux = wnp.concatenate([wnp.ravel(ar1), wnp.ravel(ar2)])
    order = np.argsort(_plain(aux), kind="stable")
    v = _plain(aux)[order]
    alone = np.concatenate(([True], v[1:] != v[:-1], [True]))
    return aux[order[alone[1:] & alone[:-1]]]


@derived(np.sort_complex)
def sort_complex(a: Any) -> Any:
    b = sort(a)
    char = _plain(b).dtype.char
    if _plain(b).dtype.kind == "c":
        return b
    return wnp.astype(b, "F" if char in "bhBH" else "G" if char == "g" else "D")


@derived(np.trim_zeros)
def trim_zeros(filt: Any, trim: str = "fb", axis: Any = None) -> Any:
    """A slice of ``filt``; where to cut is read from its plain values."""
    filt = wnp.asarray(filt)
    v = _plain(filt)
    trim = trim.lower()
    if trim not in {"fb", "bf", "f", "b"}:
        raise ValueError(f"trim_zeros: unexpected character(s) in `trim`: {trim!r}; use 'f', 'b' or 'fb'")
    if v.ndim == 0:  # nothing to cut
        return filt
    axes = tuple(range(v.ndim)) if axis is None else normalize_axis_tuple(axis, v.ndim)
    nonzero = np.argwhere(v)
    if nonzero.size == 0:  # all zeros: an empty slice
        start = stop = [0] * v.ndim
    else:
        start = nonzero.min(axis=0) if "f" in trim else [None] * v.ndim
        stop = nonzero.max(axis=0) + 1 if "b" in trim else [None] * v.ndim
    return filt[tuple(slice(start[i], stop[i]) if i in axes else slice(None) for i in range(v.ndim))]


# ----------------------------------------------------------------------------- histograms
def _binned(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value (1 to len(edges) - 1; 0 and len(edges) outside), the last bin
    closed on the right, as NumPy bins (plain arrays: NumPy gives a duck array's edges in its type)."""
    values, edges = np.asarray(values), np.asarray(edges)
    idx = np.searchsorted(edges, values, side="right")
    idx[values == edges[-1]] -= 1
    return idx


def _following(edges: np.ndarray, x: Any, bins: Any, span: Any) -> Any:
    """Bin edges ``edges`` (NumPy's values), traced where they follow traced values: evenly
    spaced bins (``bins`` a count or a rule's name) run from min(x) to max(x), or over ``span``
    (the range) when it is given; edges given as an array are those (traced if they are)."""
    if np.ndim(_strip_tree(bins)) != 0:
        return wnp.asarray(bins) if _has_box(bins) else edges
    if not (_has_box(span) or (span is None and type(x) is Box)):
        return edges
    lo, hi = (wnp.min(x), wnp.max(x)) if span is None else span
    t = np.linspace(0.0, 1.0, len(edges))
    return edges + (1 - t) * (lo - _plain(lo)) + t * (hi - _plain(hi))  # moves with lo and hi


def _densities(counts: Any, edges: list) -> Any:
    """``counts`` divided by the volume of their bins and by their total, as density=True gives."""
    total = wnp.sum(counts)
    for i, e in enumerate(edges):
        counts = counts / wnp.reshape(wnp.diff(e), tuple(-1 if j == i else 1 for j in builtins.range(len(edges))))
    return counts / total


@derived(np.histogramdd)
def histogramdd(sample: Any, bins: Any = 10, range: Any = None, density: Any = None, weights: Any = None) -> tuple:
    """Weighted counts through bincount, so that they are differentiable in ``weights``; the
    counts do not depend smoothly on the sample, but evenly spaced bins move with its extremes
    (or with a traced range), and so do densities."""
    points = _strip_tree(sample)  # (N, D), or D arrays of N values as NumPy reads them
    by_rows = hasattr(points, "shape") and np.ndim(points) == 2
    points = points if by_rows else np.atleast_2d(points).T
    hist, plain = np.histogramdd(points, _strip_tree(bins), _strip_tree(range), density, _strip_tree(weights))
    d = len(plain)
    flat = np.ndim(points) == 2 and not by_rows and np.ndim(_strip_tree(sample)) == 1  # one dimension
    columns = [sample[:, i] if by_rows else sample if flat else sample[i] for i in builtins.range(d)]
    each = bins if isinstance(bins, (list, tuple)) or np.ndim(strip(bins)) else [bins] * d  # per dimension
    edges = [_following(e, wnp.asarray(c), b, None if range is None else range[i])
             for i, (e, c, b) in enumerate(zip(plain, columns, each))]
    if not _has_box(weights) and not (density and _has_box(edges)):
        return hist, edges
    if _has_box(weights):
        nbin = np.array([len(e) + 1 for e in plain])
        flat = np.ravel_multi_index(tuple(_binned(points[:, i], e) for i, e in enumerate(plain)), nbin)
        counts = wnp.reshape(bincount(flat, weights=wnp.ravel(wnp.asarray(weights)), minlength=int(nbin.prod())),
                             tuple(nbin))
        counts = counts[(slice(1, -1),) * d]
    else:
        counts = np.histogramdd(points, plain, weights=_strip_tree(weights))[0]
    return (_densities(counts, edges) if density else counts), edges


@derived(np.histogram)
def histogram(a: Any, bins: Any = 10, range: Any = None, density: Any = None, weights: Any = None) -> tuple:
    hist, plain = np.histogram(_plain(a), _strip_tree(bins), _strip_tree(range), density=density,
                               weights=_strip_tree(weights))
    edges = _following(plain, wnp.asarray(a), bins, range)
    if not _has_box(weights) and not (density and type(edges) is Box):
        return hist, edges
    if _has_box(weights):
        w = wnp.ravel(wnp.asarray(weights))
        if wnp.iscomplexobj(w):  # NumPy takes complex weights here (not in histogramdd): count each part
            counts = (histogram(_plain(a), plain, weights=wnp.real(w))[0]
                      + 1j * histogram(_plain(a), plain, weights=wnp.imag(w))[0])
        else:
            counts = histogramdd(_plain(a).ravel(), [plain], weights=w)[0]
    else:
        counts = np.histogram(_plain(a), plain, weights=_strip_tree(weights))[0]
    return (_densities(counts, [edges]) if density else counts), edges


@derived(np.histogram_bin_edges)
def histogram_bin_edges(a: Any, bins: Any = 10, range: Any = None, weights: Any = None) -> Any:
    return _following(np.histogram_bin_edges(_plain(a), _strip_tree(bins), _strip_tree(range), _strip_tree(weights)),
                      wnp.asarray(a), bins, range)


@derived(np.histogram2d)
def histogram2d(x: Any, y: Any, bins: Any = 10, range: Any = None, density: Any = None, weights: Any = None) -> tuple:
    if np.ndim(bins) == 1 and len(bins) not in (1, 2):  # one array of edges for both, as NumPy reads it
        bins = [bins, bins]
    counts, edges = histogramdd([x, y], bins, range, density, weights)
    return counts, edges[0], edges[1]


# ----------------------------------------------------------------------------- functional forms of in-place functions
def functional(fun: Any, target: str) -> Callable[[Callable], Callable]:
    """NumPy's in-place ``fun`` (it writes into its first argument, ``target``, and returns None),
    with JAX's extra keyword ``inplace``. ``impl`` computes the new array. ``inplace=True`` (the
    default) does what NumPy does: a traced ``target`` is assigned the new array (``target[...] =
    new``, recorded like any assignment); traced values cannot be written into a plain array.
    ``inplace=False`` returns the new array and leaves ``target`` as it was."""
    def register(impl: Callable) -> Callable:
        @functools.wraps(fun)
        def wrapper(*args: Any, inplace: bool = True, **kwargs: Any) -> Any:
            if not inplace:
                return impl(*args, **kwargs)
            if not _traced(args, kwargs):
                return fun(*args, **kwargs)
            array = args[0] if args else kwargs.get(target)
            if type(array) is not Box:
                raise TypeError(f"{fun.__name__}: writing traced values into the plain array `{target}` in place "
                                f"would drop their gradient. Call wengert.numpy.{fun.__name__}(..., inplace=False), "
                                "which returns the new array instead.")
            array[...] = impl(*args, **kwargs)
            return None
        DISPATCH[fun] = wrapper
        DERIVED.append(fun)
        return wrapper
    return register


def _written(write: Callable, a: Any, values: Any) -> Any:
    """``a`` with ``values`` written in by ``write(a, values)``: NumPy's own function run on
    arrays of positions says which element of ``a`` or ``values`` lands where (repeats,
    cycling and broadcasting included). The result keeps ``a``'s dtype, as in place."""
    a, values = wnp.asarray(a), wnp.asarray(values)
    write(np.array(_plain(a), copy=True), _plain(values))  # NumPy's errors and warnings (casting, bounds)
    layout = _indices(a)
    write(layout, _indices(values, layout.size))
    return _as_dtype(_gather(layout, a, values), _plain(a).dtype)


@functional(np.put_along_axis, "arr")
def put_along_axis(arr: Any, indices: Any, values: Any, axis: Any) -> Any:
    return _written(lambda a, v: np.put_along_axis(a, _plain(indices), v, axis), arr, values)


@functional(np.put, "a")
def put(a: Any, ind: Any, v: Any, mode: str = "raise") -> Any:
    return _written(lambda a_, v_: np.put(a_, _plain(ind), v_, mode), a, v)


@functional(np.place, "arr")
def place(arr: Any, mask: Any, vals: Any) -> Any:
    return _written(lambda a, v: np.place(a, _plain(mask), v), arr, vals)


@functional(np.putmask, "a")
def putmask(a: Any, mask: Any, values: Any) -> Any:
    return _written(lambda a_, v: np.putmask(a_, _plain(mask), v), a, values)


@functional(np.fill_diagonal, "a")
def fill_diagonal(a: Any, val: Any, wrap: bool = False) -> Any:
    return _written(lambda a_, v: np.fill_diagonal(a_, v, wrap), a, val)


def _numpy_caller() -> str | None:
    """The NumPy function that called the function calling this one, if NumPy made the call
    on the user's behalf (full_like and nan_to_num call copyto on arguments they do not
    dispatch on); None if the user called it."""
    frame = outside_wengert()
    return frame.f_code.co_name if frame is not None and package(frame) == "numpy" else None


@functools.wraps(np.copyto)
def copyto(dst: Any, src: Any, casting: str = "same_kind", where: Any = True) -> None:
    if not (_has_box(dst) or _has_box(src)):
        return np.copyto(dst, src, casting=casting, where=where)
    if type(dst) is Box:  # into a traced array: recorded as dst[...] = src where ``where`` holds
        src = wnp.asarray(src)  # a list of traced values too
        np.copyto(np.empty_like(strip(dst)), strip(src), casting=casting, where=strip(where))  # NumPy's checks
        dst[...] = src if where is True else wnp.where(where, src, dst)
        return None
    caller = _numpy_caller()
    if caller is not None and hasattr(wnp, caller):
        raise TypeError(f"{caller}: NumPy's {caller} writes a traced value into a plain array (through copyto), "
                        f"which would drop its gradient. Call wengert.numpy.{caller} instead: it records the "
                        "result.")
    raise TypeError("copyto: writing a traced `src` into the plain array `dst` would drop its gradient. Build the "
                    "new array instead: wengert.numpy.where(where, src, dst), or wengert.numpy.broadcast_to(src, "
                    "dst.shape).")


DISPATCH[np.copyto] = copyto  # a write into a traced array (assignment), or a refusal: tested in tests/test_derived.py


# ============================================================================= rearranging
@derived(np.rot90)
def rot90(m: Any, k: int = 1, axes: tuple = (0, 1)) -> Any:
    ax0, ax1 = (normalize_axis_index(a, _ndim(m)) for a in axes)
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return wnp.flip(wnp.flip(m, ax0), ax1)
    perm = list(range(_ndim(m)))
    perm[ax0], perm[ax1] = perm[ax1], perm[ax0]
    return wnp.transpose(wnp.flip(m, ax1), perm) if k == 1 else wnp.flip(wnp.transpose(m, perm), ax1)


derived(np.flipud)(lambda m: wnp.flip(m, 0))
derived(np.fliplr)(lambda m: wnp.flip(m, 1))


@derived(np.tile)
def tile(A: Any, reps: Any) -> Any:
    return _gather(np.tile(_indices(A), reps), A)


@derived(np.repeat)
def repeat(a: Any, repeats: Any, axis: Any = None) -> Any:
    return _gather(np.repeat(_indices(a), repeats, axis=axis), a)


@derived(np.pad)
def pad(array: Any, pad_width: Any, mode: str = "constant", **kwargs: Any) -> Any:
    """np.pad run on arrays of indices says where each element comes from (and checks the
    keywords of each mode). mode='constant' gathers from the constant values too, one for
    each axis and side as NumPy broadcasts them, so that they are differentiable; an odd
    reflection is no gather (see _reflect_odd)."""
    if callable(mode):
        raise NotImplementedError("pad: a function as the mode is not differentiable in wengert; compute the "
                                  "padded array with wengert.numpy functions (np.concatenate) instead.")
    a = wnp.asarray(array)
    if mode in _PAD_STATISTICS or mode == "linear_ramp":
        np.pad(_plain(a), pad_width, mode, **{k: _strip_tree(v) for k, v in kwargs.items()})  # NumPy's checks
        widths = np.broadcast_to(np.round(pad_width).astype(np.intp), (_ndim(a), 2))
        out = _pad_computed(a, widths, mode, kwargs)
    elif mode == "constant":
        values = wnp.broadcast_to(wnp.asarray(kwargs.pop("constant_values", 0)), (_ndim(a), 2))
        layout = np.pad(_indices(a), pad_width, mode, constant_values=_indices(values, np.size(strip(a))), **kwargs)
        out = _gather(layout, a, values)
    else:
        layout = np.pad(_indices(a), pad_width, "edge" if mode == "empty" else mode, **kwargs)
        if kwargs.get("reflect_type") == "odd":
            widths = np.broadcast_to(np.round(pad_width).astype(np.intp), (_ndim(a), 2))
            out = _reflect_odd(a, widths, mode == "symmetric")
        else:
            out = _gather(layout, a)
    return _as_dtype(out, _plain(a).dtype)


_PAD_STATISTICS = {"mean": lambda c, ax: wnp.mean(c, axis=ax, keepdims=True),
                   "median": lambda c, ax: wnp.median(c, axis=ax, keepdims=True),
                   "maximum": lambda c, ax: wnp.max(c, axis=ax, keepdims=True),
                   "minimum": lambda c, ax: wnp.min(c, axis=ax, keepdims=True)}


def _pad_computed(a: Any, widths: np.ndarray, mode: str, kwargs: dict) -> Any:
    """np.pad's modes whose padding is computed from the array, in NumPy's own steps: axis after
    axis (the later axes see the earlier ones' padding), each side filled with a statistic of
    the ``stat_length`` elements next to it, or (``linear_ramp``) with a ramp from
    ``end_values`` up to (not including) the edge element."""
    nd = _ndim(a)
    lengths = np.broadcast_to(np.asarray(kwargs.get("stat_length", None), dtype=object), (nd, 2))
    ends = wnp.broadcast_to(wnp.asarray(kwargs.get("end_values", 0.0)), (nd, 2))
    for axis, widths_here in enumerate(widths):
        n, dtype = _shape(a)[axis], _plain(a).dtype
        if mode == "linear_ramp":  # end + (edge - end) k / width, k = 0 .. width - 1; the right side mirrored
            edges = (a[_along(axis, nd, slice(0, 1))], a[_along(axis, nd, slice(n - 1, n))])
            steps = [wnp.reshape(np.arange(w) / max(w, 1), (-1,) + (1,) * (nd - axis - 1)) for w in widths_here]
            first, last = (end + (edge - end) * k for edge, end, k in zip(edges, ends[axis], steps))
            last = last[_along(axis, nd, slice(None, None, -1))]
        else:  # the statistic of the stat_length elements next to each side, repeated across it
            m_left, m_right = (n if m is None else min(int(m), n) for m in lengths[axis])
            chunks = (a[_along(axis, nd, slice(0, m_left))], a[_along(axis, nd, slice(n - m_right, n))])
            shape = list(_shape(a))
            first, last = (wnp.broadcast_to(_PAD_STATISTICS[mode](c, axis), (*shape[:axis], w, *shape[axis + 1:]))
                           for c, w in zip(chunks, widths_here))
        a = wnp.concatenate([_as_dtype(first, dtype), a, _as_dtype(last, dtype)], axis=axis)
    return a


def _reflect_odd(a: Any, widths: np.ndarray, symmetric: bool) -> Any:
    """np.pad's odd reflection in NumPy's own steps (so with its roundings, and its NaNs): axis
    after axis, chunks of whole periods of the original are mirrored onto both sides as
    ``2 * edge - value``, until the widths are filled. An axis of length one is repeated."""
    for axis, (left, right) in enumerate(widths):
        nd, n = _ndim(a), _shape(a)[axis]
        if n == 1 and (left or right):
            a = take(a, np.zeros(left + 1 + right, np.intp), axis=axis)
            continue
        while left or right:
            have = _shape(a)[axis]
            period = have // n * n if symmetric else (have - 1) // (n - 1) * (n - 1)
            if left:
                chunk = min(period, left)
                mirrored = take(a, np.arange(chunk, 0, -1) - symmetric, axis=axis)
                a = wnp.concatenate([2 * a[_along(axis, nd, slice(0, 1))] - mirrored, a], axis=axis)
                left -= chunk
            if right:
                chunk = min(period, right)
                mirrored = take(a, symmetric - 2 - np.arange(chunk), axis=axis)
                a = wnp.concatenate([a, 2 * a[_along(axis, nd, slice(-1, None))] - mirrored], axis=axis)
                right -= chunk
    return a


@derived(np.resize)
def resize(a: Any, new_shape: Any) -> Any:
    return _gather(np.resize(_indices(a), new_shape), a)


@derived(np.append)
def append(arr: Any, values: Any, axis: Any = None) -> Any:
    if axis is None:
        return wnp.concatenate([wnp.ravel(arr), wnp.ravel(values)])
    return wnp.concatenate([arr, values], axis=axis)


@derived(np.lib.stride_tricks.sliding_window_view)
def sliding_window_view(x: Any, window_shape: Any, axis: Any = None, *, subok: bool = False,
                        writeable: bool = False) -> Any:
    """NumPy's read-only view of the windows (one that can be written, ``writeable=True``, would
    write through to ``x``, which is refused)."""
    if writeable:
        raise TypeError("sliding_window_view: writeable=True makes a view that writes through to x, which "
                        "wengert does not follow on a traced x. Leave writeable False and build the new "
                        "array from the windows instead.")
    x = wnp.asarray(x)
    nd = _ndim(x)
    window_shape = tuple(window_shape) if np.iterable(window_shape) else (window_shape,)
    axis = tuple(range(nd)) if axis is None else normalize_axis_tuple(axis, nd, allow_duplicate=True)
    return wnp._windows(x, window_shape, tuple(a - nd for a in axis))


@derived(np.delete)
def delete(arr: Any, obj: Any, axis: Any = None) -> Any:
    return _gather(np.delete(_indices(arr), obj, axis=axis), arr)


@derived(np.insert)
def insert(arr: Any, obj: Any, values: Any, axis: Any = None) -> Any:
    values = _as_dtype(wnp.asarray(values), _plain(arr).dtype)  # as NumPy casts them
    return _gather(np.insert(_indices(arr), obj, _indices(values, np.size(strip(arr))), axis=axis), arr, values)


@derived(np.rollaxis)
def rollaxis(a: Any, axis: int, start: int = 0) -> Any:
    nd = _ndim(a)
    axis = normalize_axis_index(axis, nd)
    start = start + nd if start < 0 else start
    if axis < start:
        start -= 1
    return wnp.moveaxis(a, axis, start) if axis != start else a


derived(np.matrix_transpose)(lambda x, /: wnp.swapaxes(x, -1, -2))


@derived(np.unstack)
def unstack(x: Any, /, *, axis: int = 0) -> tuple:
    axis = normalize_axis_index(axis, _ndim(x))
    return tuple(x[_along(axis, _ndim(x), i)] for i in range(_shape(x)[axis]))


@derived(np.broadcast_arrays)
def broadcast_arrays(*args: Any, subok: bool = False) -> tuple:
    shape = np.broadcast_shapes(*(_shape(a) for a in args))
    return tuple(wnp.broadcast_to(a, shape) for a in args)


@derived(np.meshgrid)
def meshgrid(*xi: Any, copy: bool = True, sparse: bool = False, indexing: str = "xy") -> tuple:
    nd = len(xi)
    shapes = [[1] * nd for _ in xi]
    for i in range(nd):
        shapes[i][i] = -1
    if indexing == "xy" and nd > 1:
        shapes[0][:2], shapes[1][:2] = [1, -1], [-1, 1]
        for s in shapes[2:]:
            s[:2] = [1, 1]
    grids = [wnp.reshape(wnp.ravel(x), tuple(s)) for x, s in zip(xi, shapes)]
    grids = grids if sparse else broadcast_arrays(*grids)
    return tuple(wnp.copy(g) for g in grids) if copy else tuple(grids)  # copy: arrays of their own, as NumPy's


def _atleast(nd: int) -> Callable:
    def convert(*arys: Any) -> Any:
        out = []
        for a in arys:
            a = wnp.asarray(a)
            shape = _shape(a)
            if len(shape) < nd:
                shape = {1: (1,), 2: (1,) + shape if len(shape) == 1 else (1, 1), 3:
                         (1,) + shape + (1,) if len(shape) == 1 else shape + (1,) if len(shape) == 2 else (1, 1, 1)}[nd]
                a = wnp.reshape(a, shape)
            out.append(a)
        return out[0] if len(out) == 1 else tuple(out)
    return convert


atleast_1d = derived(np.atleast_1d)(_atleast(1))
atleast_2d = derived(np.atleast_2d)(_atleast(2))
atleast_3d = derived(np.atleast_3d)(_atleast(3))


def _as_tuple(x: Any) -> tuple:
    return x if isinstance(x, tuple) else (x,)


@derived(np.hstack)
def hstack(tup: Any, *, dtype: Any = None, casting: str = "same_kind") -> Any:
    arrs = _as_tuple(atleast_1d(*tup))
    return wnp.concatenate(arrs, axis=0 if _ndim(arrs[0]) == 1 else 1)


@derived(np.vstack)
def vstack(tup: Any, *, dtype: Any = None, casting: str = "same_kind") -> Any:
    return wnp.concatenate(_as_tuple(atleast_2d(*tup)), axis=0)


@derived(np.row_stack)
def row_stack(tup: Any, *, dtype: Any = None, casting: str = "same_kind") -> Any:
    warnings.warn("`row_stack` alias is deprecated. Use `np.vstack` directly.", DeprecationWarning, stacklevel=3)
    return vstack(tup)


@derived(np.dstack)
def dstack(tup: Any) -> Any:
    return wnp.concatenate(_as_tuple(atleast_3d(*tup)), axis=2)


@derived(np.column_stack)
def column_stack(tup: Any) -> Any:
    cols = [wnp.reshape(a, (-1, 1)) if _ndim(a) < 2 else a for a in map(wnp.asarray, tup)]
    return wnp.concatenate(cols, axis=1)


def _split_along(axis_of: Callable, name: str) -> Callable:
    def split_fn(ary: Any, indices_or_sections: Any) -> list:
        return wnp.split(ary, indices_or_sections, axis=axis_of(_ndim(ary)))
    split_fn.__name__ = name
    return split_fn


derived(np.hsplit)(_split_along(lambda nd: 1 if nd > 1 else 0, "hsplit"))
derived(np.vsplit)(_split_along(lambda nd: 0, "vsplit"))
derived(np.dsplit)(_split_along(lambda nd: 2, "dsplit"))


@derived(np.block)
def block(arrays: Any) -> Any:
    def depth(x: Any) -> int:
        return 1 + depth(x[0]) if isinstance(x, list) else 0

    def assemble(x: Any, level: int, total: int) -> Any:
        if not isinstance(x, list):
            a = wnp.asarray(x)
            return wnp.reshape(a, (1,) * (max(total, _ndim(a)) - _ndim(a)) + _shape(a))
        parts = [assemble(e, level + 1, total) for e in x]
        nd = max(_ndim(p) for p in parts)
        return wnp.concatenate(parts, axis=nd - (total - level))
    d = depth(arrays)
    return assemble(arrays, 0, d)


# ============================================================================= matrices
@derived(np.diag)
def diag(v: Any, k: int = 0) -> Any:
    if _ndim(v) == 1:
        n = _shape(v)[0] + abs(k)
        rows = np.arange(_shape(v)[0]) + max(-k, 0)
        carrier = np.broadcast_to(np.empty((), dtype=np.result_type(strip(v))), (n, n))
        return wnp._untake(v, carrier, (rows, rows + k))
    return wnp.diagonal(v, offset=k)


@derived(np.diagflat)
def diagflat(v: Any, k: int = 0) -> Any:
    return diag(wnp.ravel(v), k)


@derived(np.trace)
def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None) -> Any:
    return wnp.sum(wnp.diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


def _triangle(keep: Callable) -> Callable:
    def tri(m: Any, k: int = 0) -> Any:  # a 1-d m is the row of a square matrix, as in NumPy
        return wnp.where(keep(np.ones(_shape(m)[-2:], dtype=bool), k), m, 0.0)
    return tri


derived(np.triu)(_triangle(np.triu))
derived(np.tril)(_triangle(np.tril))


@derived(np.kron)
def kron(a: Any, b: Any) -> Any:
    a, b = wnp.asarray(a), wnp.asarray(b)
    nd = max(_ndim(a), _ndim(b))
    a = wnp.reshape(a, (1,) * (nd - _ndim(a)) + _shape(a))
    b = wnp.reshape(b, (1,) * (nd - _ndim(b)) + _shape(b))
    sa, sb = _shape(a), _shape(b)
    prod = wnp.reshape(a, tuple(x for s in sa for x in (s, 1))) * wnp.reshape(b, tuple(x for s in sb for x in (1, s)))
    return wnp.reshape(prod, tuple(x * y for x, y in zip(sa, sb)))


@derived(np.cross)
def cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1, axis: Any = None) -> Any:
    if axis is not None:
        axisa = axisb = axisc = axis
    a = wnp.moveaxis(a, axisa, -1)
    b = wnp.moveaxis(b, axisb, -1)
    na, nb = _shape(a)[-1], _shape(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("cross: incompatible dimensions for cross product (dimension must be 2 or 3)")
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2] if na == 3 else 0.0
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2] if nb == 3 else 0.0
    if na == 2 and nb == 2:  # the z component alone, an array even for two vectors (as NumPy's)
        return wnp.asarray(a0 * b1 - a1 * b0)
    c = wnp.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    return wnp.moveaxis(c, -1, axisc)


@derived(np.vdot)
def vdot(a: Any, b: Any, /) -> Any:
    return wnp.sum(wnp.conj(wnp.ravel(a)) * wnp.ravel(b))


# ============================================================================= constructing
@derived(np.arange)
def arange(*args: Any, **kwargs: Any) -> Any:
    # NumPy's arange([start,] stop[, step], dtype=None, ...) on the plain values gives the length
    # and the dtype; the values are computed as NumPy fills them, in the result's dtype: start,
    # start + step, then start + i * ((start + step) - start), so they are NumPy's to the bit,
    # and differentiable in start and step (the length, piecewise constant in stop, carries none)
    plain = np.arange(*[strip(a) for a in args], **{k: strip(v) for k, v in kwargs.items()})
    if plain.dtype.kind not in "fc":
        return plain  # counted in integers: no gradient
    alone = len(args) == 1 and "stop" not in kwargs  # arange(stop): the one positional is the stop
    given = dict(zip(("stop",) if alone else ("start", "stop", "step"), args), **kwargs)
    start, step = given.get("start", 0), given.get("step", 1)
    work = np.float32 if plain.dtype == np.float16 else plain.dtype  # NumPy fills half precision in single
    first, second = (wnp.astype(wnp.astype(wnp.asarray(v), plain.dtype, copy=False), work, copy=False)
                     for v in (start, start + step))
    i = np.arange(plain.size, dtype=work)
    return wnp.astype(wnp.where(i == 1, second, first + i * (second - first)), plain.dtype, copy=False)


@derived(np.kaiser)
def kaiser(M: Any, beta: Any) -> Any:
    # NumPy's formula, with beta traced (the window's length carries no gradient)
    M = np.array([0.0, strip(M), strip(beta)])[1]
    if M == 1:
        return np.ones(1, dtype=np.result_type(0.0, M, strip(beta)))
    n = np.arange(0, M)
    alpha = (M - 1) / 2.0
    return wnp.i0(beta * np.sqrt(1 - ((n - alpha) / alpha) ** 2.0)) / wnp.i0(beta)


@derived(np.linspace)
def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, retstep: bool = False,
             dtype: Any = None, axis: int = 0, *, device: Any = None) -> Any:
    div = (num - 1) if endpoint else num
    weak = [v if type(v) in (int, float, complex) else _plain(v) for v in (start, stop)]  # Python numbers: weak
    computed = np.result_type(*weak, float(num))  # NumPy's precision, and its default dtype
    dtype = dtype or computed
    start, stop = wnp.asarray(start), wnp.asarray(stop)
    span = stop - start
    span = span if np.result_type(strip(span)) == computed else wnp.astype(span, computed)
    t = (np.arange(num) / div if div > 0 else np.zeros(num)).reshape((-1,) + (1,) * _ndim(span))
    out = start + t * span
    if endpoint and num > 1:  # the last point is stop itself, as NumPy makes it
        out = wnp.concatenate([out[:-1], wnp.expand_dims(wnp.broadcast_to(stop, _shape(span)), 0)], axis=0)
    out = wnp.moveaxis(out, 0, axis) if axis else out
    out = out if np.result_type(strip(out)) == dtype else wnp.astype(out, dtype)
    return (out, span / div if div > 0 else span * np.nan) if retstep else out


@derived(np.logspace)
def logspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, base: Any = 10.0,
             dtype: Any = None, axis: int = 0) -> Any:
    if _ndim(base):  # as NumPy: all three get the dimensions they broadcast to, and the bases run along axis
        nd = np.broadcast(_plain(start), _plain(stop), _plain(base)).ndim
        start, stop, base = (wnp.reshape(v, (1,) * (nd - _ndim(v)) + _shape(v)) for v in (start, stop, base))
        base = wnp.expand_dims(base, axis)
    y = linspace(start, stop, num=num, endpoint=endpoint, axis=axis)
    return wnp.power(base, y) if dtype is None else wnp.astype(wnp.power(base, y), dtype)


@derived(np.geomspace)
def geomspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, dtype: Any = None, axis: int = 0) -> Any:
    """NumPy's steps: start is turned onto the positive real axis (divided by its sign, a
    constant, as the sequence does not depend on it), the powers are taken there, and the
    endpoints are start and stop themselves."""
    if np.any(_plain(start) == 0) or np.any(_plain(stop) == 0):
        raise ValueError("geomspace: a geometric sequence cannot include zero; give a nonzero start and stop.")
    dt = np.result_type(_plain(start), _plain(stop), float(num), np.zeros((), dtype))
    sign = np.sign(_plain(start).astype(dt))
    start, stop = wnp.astype(wnp.asarray(start), dt) / sign, wnp.astype(wnp.asarray(stop), dt) / sign
    out = logspace(wnp.log10(start), wnp.log10(stop), num=num, endpoint=endpoint, dtype=dt)
    i = np.arange(num).reshape((-1,) + (1,) * (_ndim(out) - 1))
    out = wnp.where(i == 0, start, wnp.where((i == num - 1) & endpoint, stop, out)) * sign
    out = wnp.moveaxis(out, 0, axis) if axis else out
    return out if dtype is None else wnp.astype(out, dtype)


@derived(np.full)
def full(shape: Any, fill_value: Any, dtype: Any = None, order: str = "C", **kwargs: Any) -> Any:
    plain = np.full(shape, strip(fill_value), dtype=dtype, order=order, **kwargs)
    if plain.dtype.kind not in "fc":
        return plain
    return wnp.astype(wnp.broadcast_to(fill_value, plain.shape), plain.dtype)


@derived(np.asarray_chkfinite)
def asarray_chkfinite(a: Any, dtype: Any = None, order: Any = None) -> Any:
    a = wnp.asarray(a, dtype=dtype)
    if not np.all(np.isfinite(_plain(a))):
        raise ValueError("asarray_chkfinite: array must not contain infs or NaNs")
    return a


derived(np.require)(lambda a, dtype=None, requirements=None, **kw: wnp.asarray(a, dtype=dtype))


@derived(np.vander)
def vander(x: Any, N: Any = None, increasing: bool = False) -> Any:  # noqa: N803  (NumPy's name)
    x = wnp.asarray(x)
    if _ndim(x) != 1:
        raise ValueError("vander: x must be a one-dimensional array or sequence.")
    n = _shape(x)[0] if N is None else N
    powers = np.arange(n, dtype=float) if increasing else np.arange(n - 1, -1, -1, dtype=float)
    return wnp.power(wnp.expand_dims(x, -1), powers)


# ============================================================================= polynomials, signals
@derived(np.polyval)
def polyval(p: Any, x: Any) -> Any:
    p, x = wnp.asarray(p), wnp.asarray(x)
    out = wnp.zeros_like(x)  # in x's dtype, promoted by p's as the scheme runs (NumPy's dtype)
    for c in p:  # Horner's scheme
        out = out * x + c
    return out


@derived(np.polyder)
def polyder(p: Any, m: int = 1) -> Any:
    for _ in range(m):
        n = _shape(p)[0] - 1
        p = p[:-1] * np.arange(n, 0, -1, dtype=float) if n > 0 else wnp.zeros_like(p[:1])
    return p


@derived(np.polyint)
def polyint(p: Any, m: int = 1, k: Any = None) -> Any:
    ks = np.zeros(m) if k is None else np.broadcast_to(np.asarray(k, dtype=float), (m,))
    for i in range(m):
        n = _shape(p)[0]  # integrate once more
        p = wnp.concatenate([p / np.arange(n, 0, -1, dtype=float), np.array([ks[i]])])
    return p


@derived(np.polyadd)
def polyadd(a1: Any, a2: Any) -> Any:
    a1, a2 = atleast_1d(a1), atleast_1d(a2)
    n1, n2 = _shape(a1)[0], _shape(a2)[0]
    n = max(n1, n2)
    return wnp.pad(a1, (n - n1, 0)) + wnp.pad(a2, (n - n2, 0))


derived(np.polysub)(lambda a1, a2: polyadd(a1, -wnp.asarray(a2)))


@derived(np.polydiv)
def polydiv(u: Any, v: Any) -> tuple:
    """Long division, NumPy's steps: each one subtracts a multiple of the shifted divisor."""
    u, v = atleast_1d(u) + 0.0, atleast_1d(v) + 0.0
    m, n = _shape(u)[0] - 1, _shape(v)[0] - 1
    scale = 1.0 / v[0]
    r, q = u, []
    for k in builtins.range(m - n + 1):
        d = scale * r[k]
        q.append(d)
        r = r - d * wnp.pad(v, (k, m - n - k))
    while np.allclose(_plain(r)[0], 0, rtol=1e-14) and _shape(r)[-1] > 1:
        r = r[1:]
    return (wnp.stack(q) if q else np.zeros(1, np.result_type(_plain(u), _plain(v)))), r


@derived(np.poly)
def poly(seq_of_zeros: Any) -> Any:
    """The coefficients of prod(x - z), one factor at a time (the eigenvalues of a square matrix)."""
    z = wnp.asarray(seq_of_zeros)
    shape = _shape(z)
    if len(shape) == 2 and shape[0] == shape[1] and shape[0] != 0:
        z = wnp.linalg.eigvals(z)
    elif len(shape) != 1:
        raise ValueError("poly: input must be 1d or non-empty square 2d array.")
    if _shape(z)[0] == 0:
        return 1.0
    a = np.ones(1, dtype=_plain(z).dtype)
    for k in builtins.range(_shape(z)[0]):  # a * (x - z_k)
        zero = np.zeros(1, a.dtype)
        a = wnp.concatenate([a, zero]) - z[k] * wnp.concatenate([zero, a])
    roots = _plain(z)
    if roots.dtype.kind == "c" and np.all(np.sort(roots) == np.sort(roots.conjugate())):
        a = wnp.real(a)
    return a


@derived(np.roots)
def roots(p: Any) -> Any:
    """The eigenvalues of the companion matrix, as NumPy computes them."""
    p = atleast_1d(p)
    if _ndim(p) != 1:
        raise ValueError("roots: input must be a rank-1 array.")
    nonzero = np.flatnonzero(_plain(p))
    if len(nonzero) == 0:
        return np.array([])
    trailing = _shape(p)[0] - nonzero[-1] - 1
    p = p[int(nonzero[0]): int(nonzero[-1]) + 1]
    n = _shape(p)[0]
    r = np.array([])
    if n > 1:
        companion = wnp.concatenate([wnp.reshape(-p[1:] / p[0], (1, -1)), np.eye(n - 2, n - 1, dtype=_plain(p).dtype)])
        r = wnp.linalg.eigvals(companion)
    return wnp.concatenate([r, np.zeros(trailing, _plain(r).dtype)]) if trailing else r


@derived(np.polyfit)
def polyfit(x: Any, y: Any, deg: int, rcond: Any = None, full: bool = False, w: Any = None, cov: Any = False) -> Any:
    """NumPy's scaled least-squares problem, solved with wengert.numpy.linalg.lstsq."""
    order = int(deg) + 1
    x, y = wnp.asarray(x) + 0.0, wnp.asarray(y) + 0.0
    np.polyfit(_plain(x), _plain(y), deg, strip(rcond), full, _strip_tree(w))  # NumPy's checks and warnings
    rcond = len(_plain(x)) * np.finfo(_plain(x).dtype).eps if rcond is None else rcond
    lhs, rhs = vander(x, order), y
    if w is not None:
        w = wnp.asarray(w) + 0.0
        lhs = lhs * w[:, None]
        rhs = rhs * (w[:, None] if _ndim(rhs) == 2 else w)
    scale = wnp.sqrt(wnp.sum(lhs * lhs, axis=0))
    lhs = lhs / scale
    c, resids, rank, sv = wnp.linalg.lstsq(lhs, rhs, rcond)
    c = wnp.transpose(wnp.transpose(c) / scale)
    if full:
        return c, resids, rank, sv, rcond
    if cov:
        base = wnp.linalg.inv(wnp.matmul(wnp.transpose(lhs), lhs)) / wnp.outer(scale, scale)
        if cov == "unscaled":
            fac = 1.0
        elif len(_plain(x)) <= order:
            raise ValueError("polyfit: the number of data points must exceed order to scale the covariance matrix")
        else:
            fac = resids / (len(_plain(x)) - order)
        return c, (base * fac if _ndim(y) == 1 else wnp.expand_dims(base, -1) * fac)
    return c


@derived(np.convolve)
def convolve(a: Any, v: Any, mode: str = "full") -> Any:
    """A slice of the full convolution."""
    if _ndim(a) > 1 or _ndim(v) > 1:
        raise ValueError("object too deep for desired array")  # NumPy's words
    a, v = wnp.ravel(a), wnp.ravel(v)  # (a number is one sample)
    full = wnp._full_convolution(a, v)  # (NumPy's checks and messages, in the caller's order)
    m, n = sorted((_shape(a)[0], _shape(v)[0]))
    if mode == "full":
        return full
    if mode == "same":
        start = (m - 1) // 2
        return full[start: start + max(n, m)]
    if mode == "valid":
        return full[m - 1: n]
    raise ValueError(f"convolve: mode must be 'full', 'same' or 'valid', not {mode!r}")


@derived(np.polymul)
def polymul(a1: Any, a2: Any) -> Any:
    return convolve(_coefficients(a1), _coefficients(a2))


def _coefficients(c: Any) -> Any:
    """The coefficients np.poly1d reads from ``c``: without leading zeros (one zero if all are)."""
    kept = len(np.poly1d(_plain(c)).coeffs)  # (and poly1d's checks)
    c = wnp.atleast_1d(c)
    return c[_shape(c)[0] - kept:]


@derived(np.correlate)
def correlate(a: Any, v: Any, mode: str = "valid") -> Any:
    if _plain(v).size > _plain(a).size:  # NumPy swaps the arguments, which moves the "same" window
        return wnp.conj(correlate(v, a, mode))[::-1]
    return convolve(a, wnp.conj(wnp.ravel(v))[::-1], mode=mode)


# ============================================================================= functions of functions
@derived(np.piecewise, always=True)
def piecewise(x: Any, condlist: Any, funclist: Any, *args: Any, **kw: Any) -> Any:
    """Each piece is computed on its elements and scattered back; later conditions win."""
    v = _plain(x)
    x = wnp.reshape(x, v.shape)  # an array (a traced Python float is not one)
    if np.isscalar(condlist) or (not isinstance(condlist[0], (list, np.ndarray)) and v.ndim != 0):
        condlist = [condlist]
    conds = np.asarray(_strip_tree(condlist), dtype=bool)
    if len(conds) == len(funclist) - 1:  # the last function is for "otherwise"
        conds = np.concatenate([conds, ~np.any(conds, axis=0, keepdims=True)], axis=0)
    elif len(conds) != len(funclist):
        raise ValueError(f"piecewise: with {len(conds)} condition(s), {len(conds)} or {len(conds) + 1} functions "
                         f"are expected, not {len(funclist)}")
    y = np.zeros_like(v)
    carrier = np.broadcast_to(np.empty((), v.dtype), v.shape)
    for cond, func in zip(conds, funclist):
        if not callable(func):
            y = wnp.where(cond, func, y)
        elif cond.any():
            piece = wnp.broadcast_to(func(x[cond], *args, **kw), (int(cond.sum()),))
            y = wnp.where(cond, wnp._untake(piece, carrier, cond), y)
    return _as_dtype(y, v.dtype)


@derived(np.apply_along_axis, always=True)
def apply_along_axis(func1d: Callable, axis: int, arr: Any, *args: Any, **kwargs: Any) -> Any:
    """A Python loop over the 1-d slices; the results are stacked where ``axis`` was."""
    arr = wnp.asarray(arr)
    axis = normalize_axis_index(axis, _ndim(arr))
    moved = wnp.moveaxis(arr, axis, -1)
    outer = _shape(moved)[:-1]
    if 0 in outer:
        raise ValueError("apply_along_axis: cannot apply along an axis when any iteration dimensions are 0")
    results = [wnp.asarray(func1d(moved[i], *args, **kwargs)) for i in np.ndindex(outer)]
    inner = _shape(results[0])
    out = wnp.reshape(wnp.stack(results), outer + inner)
    k = len(outer)
    return wnp.transpose(out, [*builtins.range(axis), *builtins.range(k, k + len(inner)), *builtins.range(axis, k)])


@derived(np.apply_over_axes, always=True)
def apply_over_axes(func: Callable, a: Any, axes: Any) -> Any:
    val = wnp.asarray(a)
    nd = _ndim(val)
    for axis in np.atleast_1d(axes):
        axis = int(axis) + nd if axis < 0 else int(axis)
        res = func(val, axis)
        if _ndim(res) != nd:
            res = wnp.expand_dims(res, axis)
            if _ndim(res) != nd:
                raise ValueError("apply_over_axes: function is not returning an array of the correct shape")
        val = res
    return val


class vectorize(np.vectorize):
    """numpy.vectorize whose function may take traced values: called element by element, as
    NumPy's is (a Python loop), each call recorded, the results assembled into arrays."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not _traced(args, kwargs):
            return super().__call__(*args, **kwargs)
        if self.signature is not None:
            raise NotImplementedError("vectorize: signature= is not supported on traced values in wengert; "
                                      "write the function with wengert.numpy operations on whole arrays instead.")
        names = [k for k in builtins.range(len(args)) if k not in self.excluded] + [
            k for k in kwargs if k not in self.excluded]
        given = {**dict(enumerate(args)), **kwargs}
        arrays = wnp.broadcast_arrays(*[wnp.asarray(given[k]) for k in names])
        shape = _shape(arrays[0]) if arrays else ()
        if 0 in shape and not self.otypes:
            raise ValueError("cannot call `vectorize` on size 0 inputs unless `otypes` is set")
        results = []
        for i in np.ndindex(shape):
            at = {**given, **{k: a[i] for k, a in zip(names, arrays)}}
            results.append(self.pyfunc(*[at[k] for k in builtins.range(len(args))],
                                       **{k: at[k] for k in kwargs}))
        outputs = len(self.otypes) if self.otypes else (len(results[0]) if isinstance(results[0], tuple) else 0)
        columns = [results] if not outputs else [[r[j] for r in results] for j in builtins.range(outputs)]
        out = []
        for j, column in enumerate(columns):
            dtype = np.dtype(self.otypes[j]) if self.otypes else None
            a = wnp.reshape(wnp.array(column, dtype=dtype), shape) if column else np.empty(shape, dtype)
            out.append(a)
        return tuple(out) if outputs else out[0]


DISPATCH[np.vectorize] = vectorize


# ============================================================================= statistics
@derived(np.cov)
def cov(m: Any, y: Any = None, rowvar: bool = True, bias: bool = False, ddof: Any = None,
        fweights: Any = None, aweights: Any = None, *, dtype: Any = None) -> Any:
    if dtype is None:  # NumPy's: at least double precision
        dtype = np.result_type(strip(m), np.float64) if y is None else np.result_type(strip(m), strip(y), np.float64)
    x = wnp.astype(atleast_2d(m), dtype)
    if not rowvar and _ndim(m) > 1:
        x = wnp.transpose(x)
    if y is not None:
        yy = wnp.astype(atleast_2d(y), dtype)
        if not rowvar and _ndim(y) > 1:
            yy = wnp.transpose(yy)
        x = wnp.concatenate([x, yy], axis=0)
    n = _shape(x)[1]
    w = None
    if fweights is not None:
        w = np.asarray(fweights, dtype=float)
    if aweights is not None:
        w = wnp.asarray(aweights) if w is None else w * wnp.asarray(aweights)
    # NumPy's operations in NumPy's order, so that the values are NumPy's to the bit
    if w is None:
        xc = x - wnp.mean(x, axis=1, keepdims=True)
        c = wnp.matmul(xc, wnp.conj(wnp.transpose(xc)))
        fact = n - (0 if bias else 1) if ddof is None else n - ddof
    else:
        v1 = wnp.sum(w)
        xc = x - wnp.sum(x * w, axis=1, keepdims=True) / v1  # NumPy subtracts in place: in x's dtype
        xc = wnp.astype(xc, dtype, copy=False)
        c = wnp.matmul(xc, wnp.conj(wnp.transpose(xc * w)))
        ddof = (0 if bias else 1) if ddof is None else ddof
        fact = v1 - ddof * (wnp.sum(w * wnp.asarray(aweights)) / v1 if aweights is not None else 1.0)
    scaled = c * wnp.true_divide(1, _dof(fact))  # NumPy scales in place: in c's dtype (float32 with dtype=)
    c = wnp.astype(scaled, np.result_type(strip(c)), copy=False)
    return wnp.squeeze(c) if _shape(c) == (1, 1) else c


def _dof(fact: Any) -> Any:
    """cov's divisor, as NumPy's: where it is not positive, a warning, and 0 (the result NaN or inf)."""
    if strip(fact) <= 0:
        _warn("Degrees of freedom <= 0 for slice")
        return 0.0
    return fact


def _warn(message: str) -> None:
    """A RuntimeWarning shown at the line that called into wengert, as NumPy's own are."""
    frame = outside_wengert()
    warnings.warn_explicit(message, RuntimeWarning, frame.f_code.co_filename, frame.f_lineno,
                           module=module(frame), registry=frame.f_globals.setdefault("__warningregistry__", {}))


@derived(np.corrcoef)
def corrcoef(x: Any, y: Any = None, rowvar: bool = True, *, dtype: Any = None) -> Any:
    c = cov(x, y, rowvar, dtype=dtype)
    if _ndim(c) == 0:
        return c / c
    d = wnp.sqrt(wnp.real(wnp.diagonal(c)))
    c = c / d[:, None] / d[None, :]
    if np.iscomplexobj(strip(c)):  # NumPy's bounds, which rounding can pass (arccos of a 1 + 2e-16 is NaN)
        return wnp.clip(wnp.real(c), -1, 1) + 1j * wnp.clip(wnp.imag(c), -1, 1)
    return wnp.clip(c, -1, 1)


@derived(np.bincount)
def bincount(x: Any, weights: Any = None, minlength: int = 0) -> Any:
    idx = np.asarray(strip(x))
    n = max(int(idx.max()) + 1 if idx.size else 0, minlength)
    if weights is None:
        return np.bincount(idx, minlength=minlength)
    w = wnp.asarray(weights)
    if np.iscomplexobj(strip(w)):
        raise TypeError("bincount: weights must be real, as in NumPy; count the two parts apart: "
                        "bincount(x, wengert.numpy.real(w)) + 1j * bincount(x, wengert.numpy.imag(w)).")
    carrier = np.broadcast_to(np.empty((), dtype=np.float64), (n,))
    return wnp._untake(wnp.astype(w, np.float64), carrier, idx)  # NumPy counts in double precision


# ============================================================================= ufunc methods
# ``add.reduce(x)``, ``maximum.accumulate(x)``, ``multiply.outer(x, y)`` ... on traced values reach
# _box's __array_ufunc__, which asks ufunc_method for an implementation the first time.
_REDUCTIONS = {np.add: "sum", np.multiply: "prod", np.maximum: "max", np.minimum: "min"}
_RUNNING = (np.maximum, np.minimum, np.fmax, np.fmin)


def ufunc_method(ufunc: np.ufunc, method: str) -> Callable | None:
    """``ufunc.method`` for traced values, or None where wengert has none (``at``, which works in
    place, and ``reduceat`` of differentiable ufuncs other than add, multiply, maximum and
    minimum): the caller then raises NoRuleError."""
    if DISPATCH.get(ufunc) is None or method not in ("reduce", "accumulate", "outer", "reduceat"):
        return None
    if ufunc.nin != 2 or ufunc.signature is not None:  # NumPy refuses these itself
        return functools.partial(_plain_method, ufunc, method)
    if method == "outer":  # through the ufunc's wrapper, whatever kind it is
        return functools.partial(_outer, ufunc)
    if ufunc not in PRIMITIVES:  # no gradient (or two outputs, which NumPy refuses to reduce)
        return functools.partial(_plain_method, ufunc, method)
    impl = {"reduce": _reduce, "accumulate": _accumulate}.get(method)
    if method == "reduceat" and ufunc in _REDUCTIONS:
        impl = _reduceat
    return functools.partial(impl, ufunc) if impl else None


def _plain_method(ufunc: np.ufunc, method: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(ufunc, method)(*_strip_tree(args), **{k: _strip_tree(v) for k, v in kwargs.items()})


def _method_out(ufunc: np.ufunc, method: str, out: Any) -> None:
    if out is not None and any(o is not None for o in (out if isinstance(out, tuple) else (out,))):
        raise TypeError(f"{ufunc.__name__}.{method}: out= cannot be used with traced values, because the result "
                        "would be written behind the tape's back. Use the returned value instead.")


def _outer(ufunc: np.ufunc, A: Any, B: Any, /, **kwargs: Any) -> Any:  # noqa: N803  (NumPy's names)
    """``ufunc(A[..., None, ..., None], B)``: every pair, with the ufunc's own rules."""
    _method_out(ufunc, "outer", kwargs.pop("out", None))
    a = wnp.asarray(A)
    return DISPATCH[ufunc](wnp.reshape(a, _shape(a) + (1,) * _ndim(B)), B, **kwargs)


def _reduce(ufunc: np.ufunc, array: Any, axis: Any = 0, dtype: Any = None, out: Any = None, keepdims: bool = False,
            initial: Any = np._NoValue, where: Any = True) -> Any:
    """add, multiply, maximum, minimum: sum, prod, max, min. Any other binary ufunc: a left fold
    along the axes (NumPy's order), one traced step per element."""
    _method_out(ufunc, "reduce", out)
    plain = ufunc.reduce(_plain(array), axis=axis, dtype=dtype, keepdims=keepdims, initial=strip(initial),
                         where=where)  # NumPy's checks of the arguments, and the result's dtype
    x = wnp.asarray(array)
    x = x if dtype is None else wnp.astype(x, dtype)
    if ufunc in _REDUCTIONS:
        extra = {} if initial is np._NoValue else {"initial": initial}
        return getattr(wnp, _REDUCTIONS[ufunc])(x, axis=axis, keepdims=keepdims, where=where, **extra)
    nd = _ndim(x)
    if np.size(plain) == 0 or _plain(x).size == 0:
        return plain  # nothing to fold: initial values or the identity, constants
    axes = tuple(builtins.range(nd)) if axis is None else normalize_axis_tuple(axis, nd)
    rest = [i for i in builtins.range(nd) if i not in axes]
    kept = tuple(_shape(x)[i] for i in rest)
    y = wnp.reshape(wnp.transpose(x, list(axes) + rest), (-1,) + kept)
    mask = None if where is True else np.broadcast_to(where, _shape(x)).transpose(list(axes) + rest).reshape(
        (-1,) + kept)
    acc = strip(initial) if initial is not np._NoValue and type(initial) is not Box else initial
    if acc is np._NoValue:
        acc = None if mask is None else ufunc.identity
    f = DISPATCH[ufunc]
    for k in builtins.range(_shape(y)[0]):
        step = y[k] if acc is None else f(acc, y[k])
        acc = step if mask is None else wnp.where(mask[k], step, acc)
    acc = _as_dtype(wnp.reshape(wnp.broadcast_to(acc, kept), np.shape(plain)), plain.dtype)
    return acc if isinstance(plain, np.ndarray) else _scalar(acc)


def _accumulate(ufunc: np.ufunc, array: Any, axis: int = 0, dtype: Any = None, out: Any = None) -> Any:
    """add: cumsum; multiply: cumprod; maximum, minimum, fmax, fmin: the element holding the
    running extreme (the earliest on ties). Any other binary ufunc: one traced step per element."""
    _method_out(ufunc, "accumulate", out)
    plain = ufunc.accumulate(_plain(array), axis=axis, dtype=dtype)  # NumPy's checks, and the running values
    x = wnp.asarray(array)
    x = x if dtype is None else wnp.astype(x, dtype)
    axis = normalize_axis_index(axis, _ndim(x))
    if ufunc is np.add:
        return wnp.cumsum(x, axis=axis)
    if ufunc is np.multiply:
        return cumprod(x, axis=axis)
    if ufunc in _RUNNING:
        return take_along_axis(x, _holders(plain, axis), axis=axis)
    f = DISPATCH[ufunc]
    y = wnp.moveaxis(x, axis, 0)
    steps = [y[0]]
    for k in builtins.range(1, _shape(y)[0]):
        steps.append(f(steps[-1], y[k]))
    return wnp.moveaxis(wnp.stack(steps), 0, axis)


def _reduceat(ufunc: np.ufunc, array: Any, indices: Any, axis: int = 0, dtype: Any = None, out: Any = None) -> Any:
    """add, multiply, maximum, minimum: output j reduces the segment ``x[i[j]:i[j + 1]]`` along
    ``axis`` (the last runs to the end; where ``i[j] >= i[j + 1]``, ``x[i[j]]`` alone), as NumPy's."""
    _method_out(ufunc, "reduceat", out)
    plain = ufunc.reduceat(_plain(array), indices, axis=axis, dtype=dtype)  # NumPy's checks, and the dtype
    x = wnp.asarray(array)
    x = x if dtype is None else wnp.astype(x, dtype)
    axis = normalize_axis_index(axis, _ndim(x))
    starts = np.asarray(indices, dtype=np.intp)
    ends = np.append(starts[1:], _shape(x)[axis])
    ends = np.where(starts < ends, ends, starts + 1)
    if ufunc is np.add:  # every element of every segment gathered, then summed into its output
        lengths = ends - starts
        first = np.repeat(np.cumsum(lengths) - lengths, lengths)
        members = np.arange(lengths.sum()) - first + np.repeat(starts, lengths)
        segment = _along(axis, _ndim(x), np.repeat(np.arange(len(starts)), lengths))
        return _as_dtype(wnp._untake(take(x, members, axis=axis), np.zeros(plain.shape, plain.dtype), segment),
                         plain.dtype)
    reduce = getattr(wnp, _REDUCTIONS[ufunc])
    parts = [reduce(x[_along(axis, _ndim(x), slice(s, e))], axis=axis, keepdims=True) for s, e in zip(starts, ends)]
    return _as_dtype(wnp.concatenate(parts, axis=axis), plain.dtype)


def _holders(run: np.ndarray, axis: int) -> np.ndarray:
    """For a running extreme ``run``: the index of the element each value comes from, the one
    where it last changed (a NaN that stays NaN does not change it)."""
    head = _along(axis, run.ndim, slice(None, 1))
    same = (run[_along(axis, run.ndim, slice(1, None))] == run[_along(axis, run.ndim, slice(None, -1))]) | (
        np.isnan(run[_along(axis, run.ndim, slice(1, None))]) & np.isnan(run[_along(axis, run.ndim, slice(None, -1))]))
    changed = np.concatenate([np.ones_like(run[head], dtype=bool), ~same], axis=axis)
    positions = np.arange(run.shape[axis]).reshape(tuple(-1 if i == axis else 1 for i in builtins.range(run.ndim)))
    return np.maximum.accumulate(np.where(changed, positions, 0), axis=axis)

