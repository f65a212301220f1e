"""Vector-Jacobian product rules for NumPy, as data: one line per function, in sections.

A rule receives ``g`` (the cotangent of the output), ``a`` (the output), then the arguments
exactly as the function received them, and returns the cotangent of one argument. The table
maps each NumPy function to a tuple with one rule per positional argument; ``None`` marks an
argument with no gradient (a condition, an index, a shape). Rules are written with
``wengert.numpy``'s own functions, so running them on traced values records them again and
derivatives of any order come for free. The sweep passes every cotangent through one shared
``fit`` that undoes broadcasting and matches dtypes, so no rule does that itself.

Complex numbers follow the convention of HIPS autograd and JAX: the rule of a holomorphic
function is ``g * f'(x)`` (no conjugation), and ``abs``, ``sign``, ``conj``, ``real``, ``imag``
carry the conjugations.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import string
from typing import Any, Callable

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

import wengert.numpy as wnp

from .._core import Box, Joint, Pending, Released, compiled, negated, same, strip, times_ans, times_first, times_second

LN2, LN10, DEG = float(np.log(2)), float(np.log(10)), float(np.pi / 180)


class Variadic:
    """The rules of a function taking any number of arrays: ``rule(k, g, a, *args, **kw)``
    is the cotangent of positional argument ``k``."""

    __slots__ = ("rule", "skip", "cache")

    def __init__(self, rule: Callable, skip: int = 0):
        self.rule, self.skip, self.cache = rule, skip, {}

    def __getitem__(self, k: int) -> Callable | None:
        if k < self.skip:
            return None
        if k not in self.cache:
            self.cache[k] = functools.partial(self.rule, k)
        return self.cache[k]

    def __len__(self) -> int:
        return 1 << 30


# ----------------------------------------------------------------------------- helpers
def _shape(x: Any) -> tuple:
    return np.shape(strip(x))


def _shapes(xs: tuple) -> list:
    return [np.shape(strip(x)) for x in xs]


def _template(x: Any) -> Any:
    """``x``, for a rule that reads only its type, shape and dtype; for a value released from
    the tape (:class:`wengert._core.Released`), a read-only array with its shape and dtype that
    holds a single zero (every stride 0)."""
    if type(x) is not Released:
        return x
    zero = _ZERO.get(x.dtype)
    if zero is None:
        zero = _ZERO[x.dtype] = np.zeros((), x.dtype)
        zero.flags.writeable = False
    return _everywhere(zero, x.shape)


_ZERO: dict = {}  # dtype: its zero, read-only, under the templates of released values


def _everywhere(one: np.ndarray, shape: tuple) -> np.ndarray:
    """The 0-d array ``one`` as a read-only array of ``shape`` whose every stride is 0: what
    np.broadcast_to makes of it, built directly (in a tenth of the time)."""
    view = np.ndarray(shape, one.dtype, one, 0, (0,) * len(shape))
    view.flags.writeable = False
    return view


def _cj(x: Any) -> Any:
    """conj(x) for complex x; x itself otherwise (saves a copy on the real path)."""
    return wnp.conj(x) if wnp.iscomplexobj(x) else x


def _align(g: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    """The cotangent (or value) of a reduction of ``x`` with the reduced axes back in place,
    of length 1: it broadcasts against ``x`` (a rule multiplying it by an array shaped like
    ``x`` needs no more)."""
    nd = len(_shape(x))
    if not keepdims and axis is not None and np.ndim(strip(g)) != nd:
        g = wnp.expand_dims(g, normalize_axis_tuple(axis, nd))
    return g


def _expand(g: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    """The cotangent of a reduction of ``x`` broadcast back to the shape of ``x`` (a view)."""
    if type(g) is np.ndarray and g.size == 1 or isinstance(g, (float, np.generic)):  # (a total: the common case)
        return _everywhere(np.array(g).reshape(()), _shape(x))
    return wnp.broadcast_to(_align(g, x, axis, keepdims), _shape(x))


def _count(x: Any, a: Any) -> float:
    """How many elements of ``x`` went into each element of the reduction ``a``."""
    return np.size(strip(x)) / max(np.size(strip(a)), 1)


def _sum(g, a, x, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True):
    g = _expand(g, _template(x), axis, keepdims)
    return g if where is True else g * where


def _mean(g, a, x, axis=None, dtype=None, out=None, keepdims=False, *, where=True):
    like = _template(x)
    if where is True:
        return _expand(g / _count(like, a), like, axis, keepdims)
    mask = np.broadcast_to(where, _shape(like))
    return _expand(g, like, axis, keepdims) * (mask / np.sum(mask, axis=axis, keepdims=True))


def _extreme(g, a, x, axis=None, out=None, keepdims=False, initial=None, where=True):
    return _expand(g, x, axis, keepdims) * _share(a, x, axis, keepdims, where)


def _share(a: Any, x: Any, axis: Any, keepdims: bool, where: Any) -> np.ndarray:
    """max and min: the share of each element in the extreme ``a`` (a constant): the elements
    equal to it split it evenly among ties (a NaN extreme goes to the NaNs)."""
    a, x = np.asarray(_align(strip(a), strip(x), axis, keepdims)), strip(x)
    hit = x == a if where is True else (x == a) & where
    if np.any(np.isnan(a)):
        hit = hit | (np.isnan(x) & np.isnan(a) & where)
    return hit / np.maximum(np.sum(hit, axis=axis, keepdims=True), 1)


def _prod(g, a, x, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True):
    g = _expand(g, x, axis, keepdims)
    if where is not True:  # elements left out count as ones and get no gradient
        g, x = g * where, wnp.where(where, x, 1.0)
    if _normal(a, x):  # the quotient is exact (and smooth) where the product neither vanishes nor overflows
        return g * (_expand(a, x, axis, keepdims) / x)
    return g * _product_of_others(x, axis) * (1.0 if initial is None else initial)


def _normal(a: Any, x: Any) -> bool:
    """Whether ``a / x`` is a good product of the others: ``x`` is a plain value (differentiating
    the quotient again would cancel two huge terms where a factor is tiny), every product has
    more than one factor, and every product is a normal number (no factor is 0, none
    underflowed, nothing overflowed)."""
    a = strip(a)
    if type(x) is Box or np.size(x) <= np.size(a):
        return False
    tiny = np.finfo(np.result_type(a)).tiny if np.result_type(a).kind in "fc" else 0
    return bool(np.all(np.isfinite(a) & (np.abs(a) >= tiny) & (a != 0)))


def _product_of_others(x: Any, axis: Any) -> Any:
    """For each element, the product of the other elements along ``axis``, built from
    multiplications only, so that it and all its derivatives are exact when ``x`` has zeros."""
    nd = len(_shape(x))
    axes = tuple(range(nd)) if axis is None else normalize_axis_tuple(axis, nd)
    perm = [i for i in range(nd) if i not in axes] + list(axes)
    y = wnp.transpose(x, perm)
    moved = _shape(y)
    # The reduced axes flattened into one, its length spelled out: -1 cannot be inferred
    # when a kept axis has length 0 (there is no element to count).
    y = wnp.reshape(y, moved[: nd - len(axes)] + (math.prod(moved[nd - len(axes):]),))
    left = _exclusive_cumprod(y)
    right = wnp.flip(_exclusive_cumprod(wnp.flip(y, -1)), -1)
    return wnp.transpose(wnp.reshape(left * right, moved), np.argsort(perm))


def _exclusive_cumprod(y: Any) -> Any:
    """Products of the elements before each one along the last axis (a log-depth scan)."""
    n = _shape(y)[-1]
    p = wnp.concatenate([wnp.ones_like(y[..., :1]), y[..., :-1]], axis=-1)
    step = 1
    while step < n:
        p = wnp.concatenate([p[..., :step], p[..., step:] * p[..., :-step]], axis=-1)
        step *= 2
    return p


def _var(g, a, x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True,
         mean=None, correction=None):
    return _expand(g, x, axis, keepdims) * _var_slope(a, x, axis, ddof, where, mean, correction)


def _var_slope(a: Any, x: Any, axis: Any, ddof: Any, where: Any, mean: Any, correction: Any) -> Any:
    """d var / d x: 2·conj(x − mean) / (n − ddof) at the n elements each variance counts
    (the given ``mean`` if there is one), 0 at those ``where`` leaves out."""
    ddof = ddof if correction is None else correction
    if where is True:
        m = wnp.mean(x, axis=axis, keepdims=True) if mean is None else mean
        return 2 * _cj(x - m) / (_count(x, a) - ddof)
    mask = np.broadcast_to(strip(where), _shape(x))
    m = wnp.mean(x, axis=axis, keepdims=True, where=mask) if mean is None else mean
    return wnp.where(mask, 2 * _cj(x - m) / (np.sum(mask, axis=axis, keepdims=True) - ddof), 0.0)


def _std(g, a, x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    return _var(g / _twice_std(a, x, axis, keepdims, **kw), a, x, axis, None, None, ddof, keepdims, **kw)


def _twice_std(a: Any, x: Any, axis: Any, keepdims: bool, where: Any = True, mean: Any = None, **_: Any) -> Any:
    """2·std, which divides var's slope to give std's; 1 for a std of one element about its own
    mean: that std is 0 whatever the element, and so is var's slope, so std's slope is 0, not
    0 / 0. (A std of several equal elements, or |x − mean| at x = mean, is 0 at a kink: NaN stays.)"""
    if mean is not None:
        return 2 * a
    n = _count(x, a) if where is True else np.sum(np.broadcast_to(strip(where), _shape(x)), axis, keepdims=keepdims)
    return wnp.where(n == 1, 1.0, 2 * a) if np.any(n == 1) else 2 * a


def _cumsum(g, a, x, axis=None, dtype=None, out=None):
    if axis is None:
        return wnp.reshape(wnp.flip(wnp.cumsum(wnp.flip(g))), _shape(x))
    return wnp.flip(wnp.cumsum(wnp.flip(g, axis), axis), axis)


def running_product(x: Any, axis: int) -> Any:
    """``np.cumprod(x, axis)`` (``axis`` negative) where every running product is a normal
    number, as wengert.numpy.cumprod checks: then its derivatives may divide by ``x``."""
    return np.cumprod(x, axis=axis)


def _running_product(g, a, x, axis):
    """Element i of x is in every running product from i on: the sum of g * a from i on, over x."""
    return wnp.flip(wnp.cumsum(wnp.flip(g * a, axis), axis), axis) / x


def full_convolution(a: Any, v: Any) -> Any:
    """``np.convolve(a, v)`` of two 1-D arrays, all of it: the primitive of wengert.numpy's
    convolve and correlate, whose modes are slices of it."""
    return np.convolve(a, v)


def _full_convolution(other: int) -> Callable:
    """Element i of one argument meets element k - i of the other in output k: its cotangent is
    the cotangent slid along the other argument reversed (the transpose of the map, no conjugate)."""
    return lambda g, a, *args: wnp.convolve(g, args[other][::-1], mode="valid")


# --- powers: x ** y has a finite derivative in x when y == 0 and in y when x == 0
def _pow_x(g, a, x, y):
    if isinstance(y, (int, float)):  # the common x ** 2
        return g * y * x ** (y - 1) if y != 0 else wnp.zeros_like(g)
    return g * y * wnp.where((x == 0) & (y == 0), 1.0, x) ** (y - 1)


def _pow_y(g, a, x, y):
    return g * a * wnp.log(wnp.where(x == 0, 1.0, x))


def _nonzero(a: Any) -> Any:
    """``a`` with its zeros replaced by 1: the divisor of a length's derivative, whose
    numerator is 0 where the length is (slope 0 there)."""
    return wnp.where(a == 0, 1.0, a)


def _abs(g, a, x):
    if wnp.iscomplexobj(x):
        return g * wnp.conj(x) / _nonzero(a)
    return g * wnp.sign(x)


def _sign(g, a, x):
    """sign(z) = z / |z| of a complex z turns on the unit circle (0 at z = 0, where it stops);
    that of a real x is piecewise constant."""
    if wnp.iscomplexobj(x):
        return 1j * wnp.conj(a) * wnp.imag(g * a) / wnp.where(a == 0, 1.0, wnp.abs(x))
    return wnp.zeros_like(g)


def _numbers_win(t: Any, own: Any, other: Any) -> Any:
    """The factor ``t`` of fmax's or fmin's argument ``own``, corrected where a NaN is involved:
    these functions return the argument that is not NaN (and NaN, shared, when both are)."""
    mine, theirs = np.isnan(strip(own)), np.isnan(strip(other))
    if not (np.any(mine) or np.any(theirs)):
        return t
    return np.where(mine & theirs, 0.5, np.where(theirs, 1.0, np.where(mine, 0.0, t)))


def _tie(x: Any, y: Any) -> Any:
    """1 where x wins, 1/2 where x and y tie, 0 where y wins (maximum); as a constant.
    (Ties are rare, and a boolean mask is the cheapest thing to multiply by.)"""
    x, y = strip(x), strip(y)
    if isinstance(x, float) and isinstance(y, float):
        return 1.0 if x > y else 0.5 if x == y else 0.0
    if isinstance(x, complex) or isinstance(y, complex):  # Python's complex has no order; NumPy's is lexicographic
        x, y = np.asarray(x), np.asarray(y)
    tie = x == y
    return (x > y) + 0.5 * tie if np.any(tie) else x > y


_kernels = compiled("wengert.numpy._kernels")  # _kernels.c: rules in one pass, without branches
_KERNEL_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def _kernel_takes(g: Any) -> bool:
    """Whether the compiled kernels are there and take the cotangent ``g``: a C-contiguous
    float64 or float32 ndarray (a traced one, in a derivative of a derivative, is recorded)."""
    return _kernels is not None and type(g) is np.ndarray and g.dtype in _KERNEL_DTYPES and g.flags.c_contiguous


def _tie_times(g: Any, x: Any, y: Any) -> Any:
    """``g * _tie(x, y)``, the cotangent of maximum's ``x``; computed by the compiled kernel
    (one pass over memory where NumPy makes four) where it takes ``g`` and ``x`` and ``y`` are
    arrays just like it or Python numbers its dtype holds exactly."""
    x, y = strip(x), strip(y)
    if _kernel_takes(g) and (type(x) is np.ndarray or type(y) is np.ndarray) and _like(x, g) and _like(y, g):
        out = np.empty_like(g)
        if _kernels.tie_times(out, g, x, y):  # False: a NaN or an underflow, which NumPy reports
            return out
    return g * _tie(x, y)


def _select(c: Any, g: Any, keep: bool) -> Any:
    """``where(c, g, 0)`` (``keep``) or ``where(c, 0, g)``, the cotangents of where's choices;
    computed by the compiled kernel, without NumPy's branch per element (ten times slower on a
    mask like a layer's signs), where it takes ``g`` and ``c`` is a C-contiguous bool array of
    its shape."""
    c = strip(c)
    if (_kernel_takes(g) and type(c) is np.ndarray and c.dtype == np.bool_ and c.shape == g.shape
            and c.flags.c_contiguous):
        out = np.empty_like(g)
        _kernels.select(out, c, g, keep)
        return out
    return wnp.where(c, g, 0) if keep else wnp.where(c, 0, g)


def _like(x: Any, g: np.ndarray) -> bool:
    """Whether ``x`` is an operand :func:`_tie_times`'s kernel takes beside ``g``."""
    if type(x) is np.ndarray:
        return x.shape == g.shape and x.dtype == g.dtype and x.flags.c_contiguous
    return type(x) in (float, int) and -2**53 <= x <= 2**53 and float(g.dtype.type(x)) == x  # (no overflow)


# clip(x, lo, hi) is minimum(maximum(x, lo), hi): x where lo <= x <= hi (closed), lo where x
# is below it, hi where x is above it, and hi everywhere when lo > hi.
def _clip_x(g, a, x, a_min=None, a_max=None, out=None, **kw):
    lo, hi = kw.get("min", a_min), kw.get("max", a_max)
    x = _ordered(x)
    inside = True
    if lo is not None:
        inside = inside & (x >= lo)
    if hi is not None:
        inside = inside & (x <= hi)
    return g * inside


def _clip_lo(g, a, x, lo, hi=None, *rest, **kw):
    below = _ordered(x) < lo
    return g * (below if hi is None else below & (lo <= hi))


def _clip_hi(g, a, x, lo, hi, *rest, **kw):
    above = _ordered(x) > hi
    return g * (above if lo is None else above | (lo > hi))


def _ordered(x: Any) -> Any:
    """Python complex has no order; NumPy orders complex numbers lexicographically."""
    return np.asarray(x) if isinstance(x, complex) else x


# --- shapes
def _layout(x: Any, order: Any) -> str:
    """The index order, 'C' or 'F', in which reshaping ``x`` with ``order`` reads and writes: 'A'
    is 'F' where ``x`` is Fortran-contiguous and not C-contiguous, 'C' otherwise, as NumPy decides
    (the cotangent's or tangent's own layout does not count)."""
    order = (order or "C").upper()
    if order == "A":
        flags = getattr(strip(x), "flags", None)
        order = "F" if flags is not None and flags.f_contiguous and not flags.c_contiguous else "C"
    return order


def _reshape(g, a, x, *args, order="C", **kw):  # (order 'A' is settled when it is recorded)
    return wnp.reshape(g, _shape(x), order=args[1] if len(args) > 1 else order)


def _transpose(g, a, x, axes=None):
    if axes is None:
        return wnp.transpose(g)
    return wnp.transpose(g, np.argsort(normalize_axis_tuple(tuple(axes), len(axes))))


def _concatenate(ks, g, a, *arrays, axis=0, out=None, dtype=None, casting=None):
    shapes = _shapes(arrays)
    if axis is None:
        edges = list(itertools.accumulate(map(math.prod, shapes), initial=0))
        return [wnp.reshape(g[edges[k]:edges[k + 1]], shapes[k]) for k in ks]
    axis = normalize_axis_index(axis, len(shapes[0]))
    edges = list(itertools.accumulate((s[axis] for s in shapes), initial=0))
    lead = (slice(None),) * axis
    return [g[lead + (slice(edges[k], edges[k + 1]),)] for k in ks]


def _stack(ks, g, a, *arrays, axis=0, out=None, dtype=None, casting=None):
    lead = (slice(None),) * normalize_axis_index(axis, len(_shape(g)))
    return [g[lead + (k,)] for k in ks]


# --- products
def _tensordot_axes(xnd: int, ynd: int, axes: Any) -> tuple[list, list]:
    if isinstance(axes, (int, np.integer)):
        return list(range(xnd - axes, xnd)), list(range(axes))
    ax, ay = axes
    ax = [ax] if isinstance(ax, (int, np.integer)) else list(ax)
    ay = [ay] if isinstance(ay, (int, np.integer)) else list(ay)
    return [i % xnd for i in ax], [i % ynd for i in ay]


def _tensordot_x(g, a, x, y, axes=2):
    xnd, ynd = len(_shape(x)), len(_shape(y))
    ax, ay = _tensordot_axes(xnd, ynd, axes)
    free_x = [i for i in range(xnd) if i not in ax]
    free_y = [i for i in range(ynd) if i not in ay]
    r = wnp.tensordot(g, y, axes=(list(range(len(free_x), len(free_x) + len(free_y))), free_y))
    order = free_x + [ax[ay.index(j)] for j in sorted(ay)]
    return wnp.transpose(r, np.argsort(order))


def _tensordot_y(g, a, x, y, axes=2):
    xnd, ynd = len(_shape(x)), len(_shape(y))
    ax, ay = _tensordot_axes(xnd, ynd, axes)
    free_x = [i for i in range(xnd) if i not in ax]
    free_y = [i for i in range(ynd) if i not in ay]
    r = wnp.tensordot(x, g, axes=(free_x, list(range(len(free_x)))))
    order = [ay[ax.index(i)] for i in sorted(ax)] + free_y
    return wnp.transpose(r, np.argsort(order))


def _dot(which: Callable) -> Callable:
    def rule(g, a, x, y, out=None):
        xnd, ynd = len(_shape(x)), len(_shape(y))
        if xnd == 0 or ynd == 0:
            return g * (y if which is _tensordot_x else x)
        return which(g, a, x, y, ([xnd - 1], [max(ynd - 2, 0)]))
    return rule


def _inner(which: Callable) -> Callable:
    def rule(g, a, x, y):
        xnd, ynd = len(_shape(x)), len(_shape(y))
        if xnd == 0 or ynd == 0:
            return g * (y if which is _tensordot_x else x)
        return which(g, a, x, y, ([xnd - 1], [ynd - 1]))
    return rule


def _diagonal(g, a, x, offset=0, axis1=0, axis2=1):
    """The diagonal's cotangent put back on the diagonal of zeros shaped like ``x`` (moved to the
    last two axes, where NumPy's diagonal takes it from, and back)."""
    nd = len(_shape(x))
    ax1, ax2 = normalize_axis_index(axis1, nd), normalize_axis_index(axis2, nd)
    moved = np.moveaxis(np.zeros(_shape(x), dtype=np.result_type(strip(g), strip(x))), (ax1, ax2), (-2, -1))
    i = np.arange(_shape(g)[-1])
    full = wnp._setitem(moved, g, (..., i - min(offset, 0), i + max(offset, 0)))
    return wnp.moveaxis(full, (-2, -1), (ax1, ax2))


def _matmul_x(g, a, x, y, **kw):
    xnd, ynd = len(_shape(x)), len(_shape(y))
    if ynd == 1:
        return g * y if xnd == 1 else wnp.expand_dims(g, -1) * y
    if xnd == 1:
        return wnp.matmul(wnp.expand_dims(g, -2), wnp.swapaxes(y, -1, -2))[..., 0, :]
    return wnp.matmul(g, wnp.swapaxes(y, -1, -2))


def _matmul_y(g, a, x, y, **kw):
    xnd, ynd = len(_shape(x)), len(_shape(y))
    if xnd == 1:
        return g * x if ynd == 1 else wnp.expand_dims(x, -1) * wnp.expand_dims(g, -2)
    if ynd == 1:
        return wnp.matmul(wnp.swapaxes(x, -1, -2), wnp.expand_dims(g, -1))[..., 0]
    return wnp.matmul(wnp.swapaxes(x, -1, -2), g)


def _outer_x(g, a, x, y, out=None):
    return wnp.reshape(wnp.dot(g, wnp.ravel(y)), _shape(x))


def _outer_y(g, a, x, y, out=None):
    return wnp.reshape(wnp.dot(wnp.ravel(x), g), _shape(y))


def _einsum(k, g, a, subscripts, *operands, out=None, optimize=False, **kw):
    """The cotangent of operand ``k``: contract the output cotangent with the other operands
    into the subscripts of operand ``k``. A repeated index (a diagonal) is rebuilt with an
    identity matrix; an index summed away inside operand ``k`` alone, with a vector of ones.
    Broadcast (``...``) dimensions come out first and are reduced to the operand's own."""
    ins, result = _einsum_parse(subscripts, len(operands))
    target, shape = ins[k - 1], _shape(operands[k - 1])
    before, ellipsis, after = target.partition("...")
    letters = before + after
    middle = shape[len(before): len(shape) - len(after)]
    size = dict(zip(letters, shape[: len(before)] + shape[len(shape) - len(after):]))
    others = [j for j in range(len(operands)) if j != k - 1]
    present = ",".join([result] + [ins[j] for j in others])
    broadcast = "..." in present
    unused = iter(sorted(set(string.ascii_letters) - set(subscripts)))
    const = _constant(g)
    new, extras = "", []
    for c in letters:
        if c in new:  # a repeated index: the cotangent lives on a diagonal
            fresh = next(unused)
            extras.append((c + fresh, wnp.eye(size[c], dtype=const.dtype, like=const)))
            c = fresh
        elif c not in present:  # summed inside operand k alone: every element gets g
            extras.append((c, wnp.ones_like(const, shape=(size[c],))))
        new += c
        present += "," + c
    if ellipsis and not broadcast:  # broadcast dimensions that operand k alone sums away
        extras.append(("...", wnp.ones_like(const, shape=middle)))
    lead = "..." if ellipsis or broadcast else ""
    spec = ",".join([result] + [ins[j] for j in others] + [e for e, _ in extras]) + "->" + lead + new
    r = wnp.einsum(spec, g, *[operands[j] for j in others], *[t for _, t in extras],
                   optimize=optimize)
    if not lead:
        return r
    rshape = _shape(r)
    extra = len(rshape) - len(new) - len(middle)  # broadcast dimensions operand k does not have
    if extra:
        r = wnp.sum(r, axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(middle) if n == 1 and rshape[extra + i] != 1)
    if stretched:
        r = wnp.sum(r, axis=stretched, keepdims=True)
    if before and middle:  # move the broadcast dimensions to where operand k has them
        r = wnp.moveaxis(r, tuple(range(len(middle))), tuple(range(len(before), len(before) + len(middle))))
    return r


def _constant(g: Any) -> Any:
    """The plain value of ``g`` as an array that NumPy's ``like=`` accepts."""
    g = strip(g)
    return g if hasattr(g, "__array_function__") else np.asarray(g)


def _einsum_parse(subscripts: str, n: int) -> tuple[list, str]:
    s = subscripts.replace(" ", "")
    if "->" in s:
        lhs, result = s.split("->")
    else:
        lhs = s
        letters = lhs.replace("...", "").replace(",", "")
        result = ("..." if "..." in lhs else "") + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1))
    ins = lhs.split(",")
    if len(ins) != n:
        raise ValueError(f"einsum: {len(ins)} operand subscripts for {n} operands")
    return ins, result


# --- indexing
def untake(g: Any, x: Any, index: Any) -> Any:
    """The transpose of ``x[index]``: an array shaped like ``x``, zero but for ``g`` added at ``index``."""
    z = np.zeros_like(g, shape=np.shape(x))
    if _basic(index) and hasattr(z, "__setitem__"):
        z[index] = g
    else:  # sums repeated indices; also serves array types without item assignment
        np.add.at(z, index, g)
    return z


class _Scatter(Pending):
    """``untake(g, x, index)`` not yet built: the rule of ``x[index]`` returns it for a plain
    array ``x`` and a cotangent ``g`` of its dtype. Added to another cotangent of ``x``, it
    makes an array that only the sweep holds (:class:`_Owned`), into which later ones are
    added in place: reading the n elements of ``x`` one by one costs n, not n times the size
    of ``x``. ``shape`` and ``dtype`` are those of the array it stands for (what ``fit`` reads)."""

    __slots__ = ("g", "x", "index")

    def __init__(self, g: Any, x: np.ndarray, index: Any):
        self.g, self.x, self.index = g, x, index

    shape = property(lambda self: self.x.shape)
    dtype = property(lambda self: self.x.dtype)

    def dense(self) -> np.ndarray:
        return untake(self.g, self.x, self.index)

    def added_to(self, total: Any) -> Any:
        if type(total) is _Owned:
            self._into(total.total)
            return total
        if isinstance(total, Pending):
            total = total.dense()  # a new array
        elif _dtype_of(total) is not None and np.shape(total) == self.x.shape:
            total = np.array(total, dtype=np.result_type(total, self.g))  # a copy, the sweep's from now on
        else:  # a traced sum (a higher derivative) or another array type
            return total + self.dense()
        self._into(total)
        return _Owned(total)

    def __add__(self, c: Any) -> Any:  # the first contribution was this one
        return _Owned(self.dense()) + c

    def _into(self, total: np.ndarray) -> None:
        if _basic(self.index):
            total[self.index] += self.g
        else:
            np.add.at(total, self.index, self.g)


class _Owned(Pending):
    """A sum of cotangents in an array that only the sweep holds, added to in place."""

    __slots__ = ("total",)

    def __init__(self, total: np.ndarray):
        self.total = total

    def dense(self) -> np.ndarray:
        return self.total

    def __add__(self, c: Any) -> Any:
        if type(c) is np.ndarray and c.shape == self.total.shape and c.dtype == self.total.dtype:
            self.total += c
            return self
        return self.total + c


def _getitem(g, a, x, index):
    like = _template(x)
    if type(like) is np.ndarray and like.ndim and type(g) is not Box and _dtype_of(g) == like.dtype:
        return _Scatter(g, like, index)
    return wnp._untake(g, like, index)


def _dtype_of(g: Any) -> Any:
    """The dtype of a plain cotangent (a Python float's is float64), None for another object."""
    return _PYTHON_DTYPES.get(type(g)) or (g.dtype if type(g) is np.ndarray or isinstance(g, np.generic) else None)


_PYTHON_DTYPES = {float: np.dtype(float), complex: np.dtype(complex)}


def windows(x: Any, window_shape: tuple, axis: tuple) -> Any:
    """NumPy's sliding windows of ``x``, a read-only view of it, so that they see later writes
    into ``x`` as NumPy's do (``axis`` negative: a tangent with leading batch dimensions takes its
    windows along the same axes)."""
    return np.lib.stride_tricks.sliding_window_view(x, window_shape, axis)


def _windows(g, a, x, window_shape, axis):
    """Each window's cotangent added back onto the elements it holds."""
    shape = _shape(x)
    at = np.lib.stride_tricks.sliding_window_view(np.arange(np.prod(shape, dtype=int)).reshape(shape), window_shape, axis)
    return wnp._untake(g, x, np.unravel_index(at, shape))


def setitem(x: Any, v: Any, index: Any) -> Any:
    """``x`` with ``v`` written at ``index``, as a new array: ``x[index] = v`` without the mutation."""
    z = np.copy(x, subok=True)
    if hasattr(z, "__setitem__"):
        z[index] = v
        return z
    # An array type without item assignment (an immutable duck array): NumPy writes the
    # position of each of v's elements into a plain array of x's shape (so its broadcasting,
    # its errors and its choice among repeated indices are the assignment's own), and the
    # result is gathered by functions that reach the type through NumPy's protocols.
    source = np.full(np.shape(x), -1, dtype=np.intp)
    source[index] = np.arange(np.size(v)).reshape(np.shape(v))
    values = np.astype(np.take(np.ravel(v), np.maximum(source, 0)), np.result_type(x))
    return np.where(source >= 0, values, z)


def _kept_writes(shape: tuple, index: Any) -> np.ndarray | None:
    """Which writes of ``x[index] = v`` stay, as a mask shaped like ``x[index]``: where an
    advanced index repeats an element, NumPy keeps one of the writes to it and the others are
    lost. ``None`` when every write stays (always so for basic indices)."""
    if _basic(index):
        return None
    probe = np.full(shape, -1, dtype=np.intp)
    order = np.arange(probe[index].size).reshape(probe[index].shape)
    probe[index] = order
    kept = probe[index] == order
    return None if kept.all() else kept


def _written(g: Any, a: Any, x: Any, v: Any, index: Any) -> Any:
    """The cotangent of the value ``v`` of ``x[index] = v``: ``g`` at ``index``, where the write stayed."""
    c = wnp.asarray(g)[index]  # (a number, where the result of the write was used as one)
    kept = _kept_writes(_shape(x), index)
    if kept is not None:
        c = wnp.where(kept, c, 0)
    extra = np.ndim(strip(v)) - np.ndim(strip(c))  # NumPy lets v carry extra leading 1s
    return wnp.reshape(c, (1,) * extra + _shape(c)) if extra > 0 else c


def _basic(index: Any) -> bool:
    parts = index if type(index) is tuple else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice))
               or getattr(getattr(p, "dtype", None), "kind", None) == "b" for p in parts)


# ============================================================================= the table
VJPS: dict[Any, tuple] = {
    # --------------------------------------------------------------- arithmetic
    np.add:          (same,                            same),
    np.subtract:     (same,                            negated),
    np.multiply:     (times_second,                    times_first),
    np.divide:       (lambda g, a, x, y: g / y,        lambda g, a, x, y: -g * a / y),
    np.remainder:    (same,                            lambda g, a, x, y: -g * wnp.floor_divide(x, y)),
    np.fmod:         (same,                            lambda g, a, x, y: -g * wnp.trunc(x / y)),
    np.power:        (_pow_x,                          _pow_y),
    np.float_power:  (_pow_x,                          _pow_y),
    np.negative:     (negated,),
    np.positive:     (same,),
    np.reciprocal:   (lambda g, a, x: -g * a * a,),
    np.square:       (lambda g, a, x: g * 2 * x,),
    np.sqrt:         (lambda g, a, x: g * 0.5 / a,),
    np.cbrt:         (lambda g, a, x: g / (3 * a * a),),
    np.absolute:     (_abs,),
    np.fabs:         (lambda g, a, x: g * wnp.sign(x),),
    np.sign:         (_sign,),
    np.maximum:      (lambda g, a, x, y: _tie_times(g, x, y), lambda g, a, x, y: _tie_times(g, y, x)),
    np.minimum:      (lambda g, a, x, y: _tie_times(g, y, x), lambda g, a, x, y: _tie_times(g, x, y)),
    np.fmax:         (lambda g, a, x, y: g * _numbers_win(_tie(x, y), x, y), lambda g, a, x, y: g * _numbers_win(_tie(y, x), y, x)),
    np.fmin:         (lambda g, a, x, y: g * _numbers_win(_tie(y, x), x, y), lambda g, a, x, y: g * _numbers_win(_tie(x, y), y, x)),
    np.copysign:     (lambda g, a, x, y: g * wnp.sign(x) * wnp.sign(a), None),  # y: only its sign is used
    np.ldexp:        (lambda g, a, x, i: g * wnp.ldexp(1.0, i), None),  # x * 2**i; i: an integer
    np.nextafter:    (same, None),  # x moved one step toward y (slope 1); y lends only the direction
    # --------------------------------------------------------------- exponentials and logarithms
    np.exp:          (times_ans,),
    np.exp2:         (lambda g, a, x: g * a * LN2,),
    np.expm1:        (lambda g, a, x: g * (a + 1),),
    np.log:          (lambda g, a, x: g / x,),
    np.log2:         (lambda g, a, x: g / (x * LN2),),
    np.log10:        (lambda g, a, x: g / (x * LN10),),
    np.log1p:        (lambda g, a, x: g / (x + 1),),
    np.logaddexp:    (lambda g, a, x, y: g * wnp.exp(x - a), lambda g, a, x, y: g * wnp.exp(y - a)),
    np.logaddexp2:   (lambda g, a, x, y: g * wnp.exp2(x - a), lambda g, a, x, y: g * wnp.exp2(y - a)),
    # --------------------------------------------------------------- trigonometric
    np.sin:          (lambda g, a, x: g * wnp.cos(x),),
    np.cos:          (lambda g, a, x: -g * wnp.sin(x),),
    np.tan:          (lambda g, a, x: g * (1 + a * a),),
    np.arcsin:       (lambda g, a, x: g / wnp.sqrt(1 - x * x),),
    np.arccos:       (lambda g, a, x: -g / wnp.sqrt(1 - x * x),),
    np.arctan:       (lambda g, a, x: g / (1 + x * x),),
    np.arctan2:      (lambda g, a, y, x: g * x / (x * x + y * y), lambda g, a, y, x: -g * y / (x * x + y * y)),
    np.hypot:        (lambda g, a, x, y: g * x / _nonzero(a), lambda g, a, x, y: g * y / _nonzero(a)),
    np.deg2rad:      (lambda g, a, x: g * DEG,),
    np.rad2deg:      (lambda g, a, x: g / DEG,),
    np.degrees:      (lambda g, a, x: g / DEG,),
    np.radians:      (lambda g, a, x: g * DEG,),
    # --------------------------------------------------------------- hyperbolic
    np.sinh:         (lambda g, a, x: g * wnp.cosh(x),),
    np.cosh:         (lambda g, a, x: g * wnp.sinh(x),),
    np.tanh:         (lambda g, a, x: g * (1 - a * a),),
    np.arcsinh:      (lambda g, a, x: g / wnp.sqrt(x * x + 1),),
    np.arccosh:      (lambda g, a, x: g / (wnp.sqrt(x - 1) * wnp.sqrt(x + 1)),),  # sqrt(x*x - 1): wrong sign for Re x < 0
    np.arctanh:      (lambda g, a, x: g / (1 - x * x),),
    # --------------------------------------------------------------- complex parts
    np.conjugate:    (lambda g, a, x: wnp.conj(g),),
    np.real:         (same,),
    np.imag:         (lambda g, a, x: -1j * g,),
    # --------------------------------------------------------------- selection
    np.where:        (None, lambda g, a, c, x, y: _select(c, g, True), lambda g, a, c, x, y: _select(c, g, False)),
    np.clip:         (_clip_x, _clip_lo, _clip_hi),
    np.heaviside:    (None, lambda g, a, x, h: g * (x == 0)),
    # --------------------------------------------------------------- reductions
    np.sum:          (_sum,),
    np.mean:         (_mean,),
    np.prod:         (_prod,),
    np.max:          (_extreme,),
    np.min:          (_extreme,),
    np.amax:         (_extreme,),
    np.amin:         (_extreme,),
    np.var:          (_var,),
    np.std:          (_std,),
    np.cumsum:       (_cumsum,),
    running_product: (_running_product, None),
    full_convolution: (_full_convolution(1), _full_convolution(0)),
    # --------------------------------------------------------------- shapes
    np.reshape:      (_reshape,),
    np.transpose:    (_transpose,),
    np.swapaxes:     (lambda g, a, x, axis1, axis2: wnp.swapaxes(g, axis1, axis2),),
    np.moveaxis:     (lambda g, a, x, source, destination: wnp.moveaxis(g, destination, source),),
    np.diagonal:     (_diagonal,),  # NumPy's diagonal is a view: later writes into x reach it
    np.expand_dims:  (lambda g, a, x, axis: wnp.reshape(g, _shape(x)),),
    np.squeeze:      (lambda g, a, x, axis=None: wnp.reshape(g, _shape(x)),),
    np.broadcast_to: (same,),
    np.flip:         (lambda g, a, x, axis=None: wnp.flip(g, axis),),
    np.roll:         (lambda g, a, x, shift, axis=None: wnp.roll(g, np.negative(shift), axis),),
    np.copy:         (same,),
    np.astype:       (same,),
    np.concatenate:  Joint(_concatenate),
    np.stack:        Joint(_stack),
    # --------------------------------------------------------------- products
    np.dot:          (_dot(_tensordot_x),              _dot(_tensordot_y)),
    np.matmul:       (_matmul_x,                       _matmul_y),
    np.tensordot:    (_tensordot_x,                    _tensordot_y),
    np.inner:        (_inner(_tensordot_x),            _inner(_tensordot_y)),
    np.outer:        (_outer_x,                        _outer_y),
    np.einsum:       Variadic(_einsum, skip=1),
    # --------------------------------------------------------------- indexing (each the other's transpose)
    operator.getitem: (_getitem, None),
    untake:           (lambda g, a, c, x, index: g[index], None, None),
    windows:          (_windows, None, None),
    setitem:          (lambda g, a, x, v, index: wnp._setitem(g, 0, index), _written, None),
}

# How to call the functions that take their arrays in a list: spread out, each array is a
# positional argument that can be traced on its own.
IMPLS: dict[Any, Callable] = {
    np.concatenate: lambda *arrays, **kw: np.concatenate(arrays, **kw),
    np.stack:       lambda *arrays, **kw: np.stack(arrays, **kw),
    np.astype:      lambda x, dtype: plain_astype(x, dtype),
}


def plain_astype(x: Any, dtype: Any) -> Any:
    """``x`` converted to ``dtype``: its method (NumPy scalars have it, but np.astype refuses
    them), the type's constructor for a Python number, np.astype for a duck array without the
    method (it reaches the type through __array_function__)."""
    if hasattr(x, "astype"):
        return x.astype(dtype)
    return np.dtype(dtype).type(x) if isinstance(x, (int, float, complex)) else np.astype(x, dtype)

# Functions that are piecewise constant, or whose results are not floating point numbers:
# traced arguments pass their plain values and the results carry no gradient.
NONDIFFERENTIABLE = [
    np.floor, np.ceil, np.trunc, np.rint, np.fix, np.round, np.around, np.signbit,
    np.floor_divide, np.spacing, np.isfinite, np.isinf, np.isnan,
    np.isposinf, np.isneginf, np.iscomplex, np.isreal, np.iscomplexobj, np.isrealobj,
    np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
    np.logical_and, np.logical_or, np.logical_xor, np.logical_not, np.isclose, np.allclose,
    np.array_equal, np.array_equiv, np.argmax, np.argmin, np.argsort, np.argwhere,
    np.nonzero, np.flatnonzero, np.count_nonzero, np.searchsorted, np.digitize, np.any,
    np.all, np.shape, np.ndim, np.size, np.result_type, np.zeros_like, np.ones_like,
    np.empty_like, np.may_share_memory, np.shares_memory,
    # integers, bits and dates
    np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert, np.left_shift, np.right_shift,
    np.bitwise_count, np.gcd, np.lcm, np.isnat, np.packbits, np.unpackbits,
    # indices, orderings, membership and counts
    np.argpartition, np.nanargmax, np.nanargmin, np.lexsort, np.isin, np.ravel_multi_index,
    np.unravel_index, np.diag_indices_from, np.tril_indices_from, np.triu_indices_from,
    np.einsum_path,
]
