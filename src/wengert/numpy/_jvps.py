"""Jacobian-vector product rules for NumPy (forward mode), as data, in the VJP table's order.

A rule receives ``t`` (the tangent of one argument), ``a`` (the output), then the arguments
exactly as the function received them, and returns that argument's contribution to the
output's tangent. Tangents may carry leading batch dimensions (several directions pushed at
once), so rules act on the trailing dimensions: ``lead`` is the number of batch dimensions.

``DIAGONAL`` marks an elementwise function: its derivative is diagonal, so the tangent rule is
the cotangent rule of the VJP table with ``t`` in place of ``g`` (the primitive then also
lifts batched tangents so that they broadcast like their argument). Like the VJP rules, these
are written with ``wengert.numpy`` and so are differentiable again.
"""

from __future__ import annotations

import operator
import string
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

import wengert.numpy as wnp

from .._core import Joint, same, strip
from . import _vjps as V
from ._vjps import _count, _einsum_parse, _expand, _product_of_others, _shape, _tensordot_axes, untake
from ._wrap import _dtype, match_dtype

DIAGONAL = "diagonal"  # the JVP rules are the VJP rules (see the module docstring)


# ----------------------------------------------------------------------------- batch helpers
def _lead(t: Any, x: Any) -> int:
    """How many batch dimensions the tangent ``t`` of ``x`` carries."""
    return np.ndim(strip(t)) - np.ndim(strip(x))


def _axes(axis: Any, x: Any, lead: int) -> tuple:
    """The axes ``axis`` of ``x`` as axes of its batched tangent."""
    nd = np.ndim(strip(x))
    axes = range(nd) if axis is None else normalize_axis_tuple(axis, nd)
    return tuple(lead + a for a in axes)


def _bcast(t: Any, lead: int, nd: int) -> Any:
    """Insert unit dimensions after the batch dimensions, so that ``t`` has ``lead + nd`` of them
    and its own dimensions broadcast from the right like an ``nd``-dimensional array."""
    shape = _shape(t)
    missing = lead + nd - len(shape)
    return wnp.reshape(t, shape[:lead] + (1,) * missing + shape[lead:]) if missing > 0 else t


def lift(t: Any, x: Any, ans: Any, nbatch: int) -> Any:
    """For broadcasting primitives: the batched tangent of ``x`` made to broadcast like ``x``."""
    return _bcast(t, nbatch, np.ndim(strip(ans)))


def settle(t: Any, ans: Any, batch: tuple) -> Any:
    """A summed tangent given the output's shape (plus the batch) and dtype."""
    shape = batch + np.shape(strip(ans))
    if np.shape(strip(t)) != shape:
        t = wnp.broadcast_to(t, shape)
    return match_dtype(t, _dtype(ans))


def _zeros(x: Any, t: Any, lead: int) -> Any:
    """A zero tangent for ``x``, with the ``lead`` batch dimensions of a sibling's tangent ``t``."""
    ref = strip(t)
    return wnp.zeros_like(ref, shape=_shape(ref)[:lead] + np.shape(strip(x)))


# ----------------------------------------------------------------------------- reductions
def _sum(t, a, x, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True):
    t = t if where is True else t * where
    return wnp.sum(t, axis=_axes(axis, x, _lead(t, x)), keepdims=keepdims)


def _mean(t, a, x, axis=None, dtype=None, out=None, keepdims=False, *, where=True):
    if where is True:
        return _sum(t, a, x, axis, keepdims=keepdims) / _count(x, a)
    mask = np.broadcast_to(where, _shape(x))
    return _sum(t, a, x, axis, keepdims=keepdims, where=mask) / np.sum(mask, axis=axis, keepdims=keepdims)


def _weighted(t, x, weights, axis, keepdims):
    """sum(t * weights) over ``axis``: the tangent of a reduction whose derivative is ``weights``."""
    return wnp.sum(t * weights, axis=_axes(axis, x, _lead(t, x)), keepdims=keepdims)


def _prod(t, a, x, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True):
    if where is not True:  # elements left out count as ones and get no tangent
        t, x = t * where, wnp.where(where, x, 1.0)
    if V._normal(a, x):
        return _weighted(t, x, _expand(a, x, axis, keepdims) / x, axis, keepdims)
    return _weighted(t, x, _product_of_others(x, axis) * (1.0 if initial is None else initial), axis, keepdims)


def _extreme(t, a, x, axis=None, out=None, keepdims=False, initial=None, where=True):
    return _weighted(t, x, V._share(a, x, axis, keepdims, where), axis, keepdims)


def _var(t, a, x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True, mean=None,
         correction=None):
    return _weighted(t, x, V._var_slope(a, x, axis, ddof, where, mean, correction), axis, keepdims)


def _std(t, a, x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    return _var(t, a, x, axis, None, None, ddof, keepdims, **kw) / V._twice_std(a, x, axis, keepdims, **kw)


def _cumsum(t, a, x, axis=None, dtype=None, out=None):
    lead = _lead(t, x)
    if axis is None:
        return wnp.cumsum(wnp.reshape(t, _shape(t)[:lead] + (-1,)), axis=-1)
    return wnp.cumsum(t, axis=lead + normalize_axis_index(axis, np.ndim(strip(x))))


# ----------------------------------------------------------------------------- shapes
def _reshaped(t, a, x, *args, order="C", **kw):
    """Reshape-like functions (reshape, expand_dims, squeeze): the tangent takes the output's shape."""
    lead = _lead(t, x)
    batch = _shape(t)[:lead]
    order = V._layout(x, args[1] if len(args) > 1 else order)
    if order == "F" and lead:  # keep the batch dimensions out of a Fortran-order reshape
        moved = wnp.moveaxis(t, tuple(range(lead)), tuple(range(-lead, 0)))
        return wnp.moveaxis(wnp.reshape(moved, _shape(a) + batch, order="F"), tuple(range(-lead, 0)),
                            tuple(range(lead)))
    return wnp.reshape(t, batch + _shape(a), order=order)


def _transpose(t, a, x, axes=None):
    lead = _lead(t, x)
    nd = np.ndim(strip(x))
    axes = range(nd - 1, -1, -1) if axes is None else normalize_axis_tuple(tuple(axes), nd)
    return wnp.transpose(t, tuple(range(lead)) + tuple(lead + i for i in axes))


def _swapaxes(t, a, x, axis1, axis2):
    lead, nd = _lead(t, x), np.ndim(strip(x))
    return wnp.swapaxes(t, lead + normalize_axis_index(axis1, nd), lead + normalize_axis_index(axis2, nd))


def _moveaxis(t, a, x, source, destination):
    lead = _lead(t, x)
    return wnp.moveaxis(t, _axes(source, x, lead), _axes(destination, x, lead))


def _diagonal(t, a, x, offset=0, axis1=0, axis2=1):
    lead, nd = _lead(t, x), np.ndim(strip(x))
    return wnp.diagonal(t, offset, lead + normalize_axis_index(axis1, nd), lead + normalize_axis_index(axis2, nd))


def _broadcast_to(t, a, x, shape, subok=False):
    lead = _lead(t, x)
    return wnp.broadcast_to(_bcast(t, lead, len(_shape(a))), _shape(t)[:lead] + _shape(a))


def _flip(t, a, x, axis=None):
    return wnp.flip(t, _axes(axis, x, _lead(t, x)))


def _roll(t, a, x, shift, axis=None):
    lead = _lead(t, x)
    if axis is None:  # along the elements of each tangent in the batch
        return wnp.reshape(wnp.roll(wnp.reshape(t, _shape(t)[:lead] + (-1,)), shift, -1), _shape(t))
    return wnp.roll(t, shift, tuple(ax if ax < 0 else ax + lead for ax in map(operator.index, np.ravel(axis))))


def _filled(tangents, arrays):
    """The tangents of a list of arrays, zeros for the untraced ones, and their batch shape."""
    k = next(i for i, t in enumerate(tangents) if t is not None)
    ref = tangents[k]
    lead = _lead(ref, arrays[k])
    return [t if t is not None else _zeros(x, ref, lead) for t, x in zip(tangents, arrays)], lead


def _concatenate(tangents, a, *arrays, axis=0, out=None, dtype=None, casting=None):
    ts, lead = _filled(tangents, arrays)
    if axis is None:
        return wnp.concatenate([wnp.reshape(t, _shape(t)[:lead] + (-1,)) for t in ts], axis=-1)
    return wnp.concatenate(ts, axis=lead + normalize_axis_index(axis, np.ndim(strip(arrays[0]))))


def _stack(tangents, a, *arrays, axis=0, out=None, dtype=None, casting=None):
    ts, lead = _filled(tangents, arrays)
    return wnp.stack(ts, axis=lead + normalize_axis_index(axis, np.ndim(strip(arrays[0])) + 1))


def _convolved(t: Any, other: Any) -> Any:
    """The full convolution of the tangent ``t`` of one argument with the ``other`` (it commutes),
    each row of a batched tangent in turn."""
    if _lead(t, other) == 0:
        return wnp._full_convolution(t, other)
    shape = _shape(t)
    rows = wnp.reshape(t, (-1, shape[-1]))
    out = wnp.stack([wnp._full_convolution(rows[i], other) for i in range(_shape(rows)[0])])
    return wnp.reshape(out, shape[:-1] + (-1,))


# ----------------------------------------------------------------------------- products
def _tensordot_x(t, a, x, y, axes=2):
    lead = _lead(t, x)
    ax, ay = _tensordot_axes(np.ndim(strip(x)), np.ndim(strip(y)), axes)
    return wnp.tensordot(t, y, axes=([lead + i for i in ax], ay))


def _tensordot_y(t, a, x, y, axes=2):
    lead = _lead(t, y)
    ax, ay = _tensordot_axes(np.ndim(strip(x)), np.ndim(strip(y)), axes)
    r = wnp.tensordot(x, t, axes=(ax, [lead + j for j in ay]))
    free = np.ndim(strip(x)) - len(ax)  # the batch dimensions come out after x's free ones
    return wnp.moveaxis(r, tuple(range(free, free + lead)), tuple(range(lead))) if lead and free else r


def _dot_axes(x: Any, y: Any) -> tuple:
    ynd = np.ndim(strip(y))
    return [np.ndim(strip(x)) - 1], [max(ynd - 2, 0)]


def _product_rule(which, axes_of):
    """dot and inner: a tensordot over ``axes_of(x, y)``, or a product when one is a scalar."""
    def rule(t, a, x, y, out=None):
        other = y if which is _tensordot_x else x
        if np.ndim(strip(x)) == 0 or np.ndim(strip(y)) == 0:
            own = x if which is _tensordot_x else y
            return _bcast(t, _lead(t, own), np.ndim(strip(a))) * other
        return which(t, a, x, y, axes_of(x, y))
    return rule


def _matmul_x(t, a, x, y, **kw):
    xnd, ynd = np.ndim(strip(x)), np.ndim(strip(y))
    lead = _lead(t, x)
    if xnd == 1 and ynd == 1:
        return wnp.sum(t * y, axis=-1)
    if xnd == 1 and ynd == 2:  # the batch of row vectors is one matrix: a single product
        return wnp.matmul(t, y)
    if xnd == 1:  # a row vector against a stack of matrices
        return wnp.matmul(_bcast(wnp.expand_dims(t, -2), lead, ynd), y)[..., 0, :]
    return wnp.matmul(_bcast(t, lead, max(xnd, ynd)), y)


def _matmul_y(t, a, x, y, **kw):
    xnd, ynd = np.ndim(strip(x)), np.ndim(strip(y))
    lead = _lead(t, y)
    if xnd == 1 and ynd == 1:
        return wnp.sum(x * t, axis=-1)
    if ynd == 1 and xnd == 2:  # the batch of column vectors is one matrix: a single product
        return wnp.matmul(t, wnp.swapaxes(x, -1, -2))
    if ynd == 1:  # a stack of matrices against a column vector
        return wnp.matmul(x, _bcast(wnp.expand_dims(t, -1), lead, xnd))[..., 0]
    return wnp.matmul(x, _bcast(t, lead, max(xnd, ynd)))


def _outer_x(t, a, x, y, out=None):
    return wnp.reshape(t, _shape(t)[: _lead(t, x)] + (-1, 1)) * wnp.ravel(y)


def _outer_y(t, a, x, y, out=None):
    return wnp.reshape(wnp.ravel(x), (-1, 1)) * wnp.reshape(t, _shape(t)[: _lead(t, y)] + (1, -1))


def _einsum(k, t, a, subscripts, *operands, out=None, optimize=False, **kw):
    """Operand ``k`` replaced by its tangent; batch dimensions get letters of their own."""
    ins, result = _einsum_parse(subscripts, len(operands))
    lead = _lead(t, operands[k - 1])
    batch = "".join(sorted(set(string.ascii_letters) - set(subscripts))[:lead])
    ins[k - 1] = batch + ins[k - 1]
    ops = list(operands)
    ops[k - 1] = t
    return wnp.einsum(",".join(ins) + "->" + batch + result, *ops, optimize=optimize)


# ----------------------------------------------------------------------------- indexing
def _batched_index(index: Any, x: Any, ans: Any, lead: int) -> tuple[tuple, int | None]:
    """``index`` applied behind ``lead`` batch dimensions. NumPy puts the dimensions of
    advanced indices first when they are not next to each other; the second value then says
    where the batch dimensions land (after that many advanced dimensions), else ``None``."""
    parts = list(index) if type(index) is tuple else [index]
    parts = [np.asarray(p) if isinstance(p, list) else p for p in parts]
    if any(p is Ellipsis for p in parts):
        i = next(i for i, p in enumerate(parts) if p is Ellipsis)
        used = sum(0 if p is None or p is Ellipsis else np.ndim(p) if _is_bool(p) else 1 for p in parts)
        parts[i: i + 1] = [slice(None)] * (np.ndim(strip(x)) - used)
    advanced = [i for i, p in enumerate(parts)
                if isinstance(p, (int, np.integer)) or (np.ndim(p) > 0 and not isinstance(p, slice))]
    if any(np.ndim(parts[i]) > 0 for i in advanced) and advanced != list(range(advanced[0], advanced[-1] + 1)):
        plain_dims = sum(1 for p in parts if p is None or isinstance(p, slice))
        moved_to = np.ndim(strip(ans)) - plain_dims
    else:
        moved_to = None
    return (slice(None),) * lead + tuple(parts), moved_to


def _is_bool(p: Any) -> bool:
    return getattr(getattr(p, "dtype", None), "kind", None) == "b"


def _getitem(t, a, x, index):
    lead = _lead(t, x)
    full, moved_to = _batched_index(index, x, a, lead)
    r = t[full]
    if moved_to is not None and lead:
        r = wnp.moveaxis(r, tuple(range(moved_to, moved_to + lead)), tuple(range(lead)))
    return r


def _setitem(tangents, a, x, v, index):
    tx, tv = tangents[:2]
    lead = _lead(tx, x) if tx is not None else _lead(tv, v)
    base = tx if tx is not None else _zeros(x, tv, lead)
    part = strip(x)[index]
    full, moved_to = _batched_index(index, x, part, lead)
    if tv is None:
        return wnp._setitem(base, 0, full)
    extra = np.ndim(strip(v)) - np.ndim(part)  # NumPy lets v carry extra leading 1s
    if extra > 0:
        tv = wnp.reshape(tv, _shape(tv)[:lead] + _shape(tv)[lead + extra:])
    tv = wnp.broadcast_to(_bcast(tv, lead, np.ndim(part)), _shape(tv)[:lead] + np.shape(part))
    if moved_to is not None and lead:  # lay the tangent out as NumPy lays out the indexed part
        tv = wnp.moveaxis(tv, tuple(range(lead)), tuple(range(moved_to, moved_to + lead)))
    return wnp._setitem(base, tv, full)


def _untake(t, a, g, x, index):
    lead = _lead(t, g)
    batch = _shape(t)[:lead]
    full, moved_to = _batched_index(index, x, g, lead)
    if moved_to is not None and lead:  # lay the tangent out as NumPy lays out the indexed part
        t = wnp.moveaxis(t, tuple(range(lead)), tuple(range(moved_to, moved_to + lead)))
    carrier = np.broadcast_to(np.empty((), dtype=np.result_type(strip(t))), batch + np.shape(strip(x)))
    return wnp._untake(t, carrier, full)


def _abs(t, a, x):
    if wnp.iscomplexobj(x):
        return wnp.real(wnp.conj(x) * t) / wnp.where(a == 0, 1.0, a)
    return t * wnp.sign(x)


def _sign(t, a, x):
    if wnp.iscomplexobj(x):
        return 1j * a * wnp.imag(wnp.conj(a) * t) / wnp.where(a == 0, 1.0, wnp.abs(x))
    return wnp.zeros_like(t)


# ============================================================================= the table
JVPS: dict[Any, Any] = {
    # --------------------------------------------------------------- arithmetic
    np.add:          DIAGONAL,
    np.subtract:     DIAGONAL,
    np.multiply:     DIAGONAL,
    np.divide:       DIAGONAL,
    np.remainder:    DIAGONAL,
    np.fmod:         DIAGONAL,
    np.power:        DIAGONAL,
    np.float_power:  DIAGONAL,
    np.negative:     DIAGONAL,
    np.positive:     DIAGONAL,
    np.reciprocal:   DIAGONAL,
    np.square:       DIAGONAL,
    np.sqrt:         DIAGONAL,
    np.cbrt:         DIAGONAL,
    np.absolute:     (_abs,),  # not holomorphic: |z| depends on z and its conjugate
    np.fabs:         DIAGONAL,
    np.sign:         (_sign,),  # not holomorphic either: z / |z|
    np.maximum:      DIAGONAL,
    np.minimum:      DIAGONAL,
    np.fmax:         DIAGONAL,
    np.fmin:         DIAGONAL,
    np.copysign:     DIAGONAL,
    np.ldexp:        DIAGONAL,
    np.nextafter:    DIAGONAL,
    # --------------------------------------------------------------- exponentials and logarithms
    np.exp:          DIAGONAL,
    np.exp2:         DIAGONAL,
    np.expm1:        DIAGONAL,
    np.log:          DIAGONAL,
    np.log2:         DIAGONAL,
    np.log10:        DIAGONAL,
    np.log1p:        DIAGONAL,
    np.logaddexp:    DIAGONAL,
    np.logaddexp2:   DIAGONAL,
    # --------------------------------------------------------------- trigonometric
    np.sin:          DIAGONAL,
    np.cos:          DIAGONAL,
    np.tan:          DIAGONAL,
    np.arcsin:       DIAGONAL,
    np.arccos:       DIAGONAL,
    np.arctan:       DIAGONAL,
    np.arctan2:      DIAGONAL,
    np.hypot:        DIAGONAL,
    np.deg2rad:      DIAGONAL,
    np.rad2deg:      DIAGONAL,
    np.degrees:      DIAGONAL,
    np.radians:      DIAGONAL,
    # --------------------------------------------------------------- hyperbolic
    np.sinh:         DIAGONAL,
    np.cosh:         DIAGONAL,
    np.tanh:         DIAGONAL,
    np.arcsinh:      DIAGONAL,
    np.arccosh:      DIAGONAL,
    np.arctanh:      DIAGONAL,
    # --------------------------------------------------------------- complex parts
    np.conjugate:    DIAGONAL,
    np.real:         DIAGONAL,  # settle keeps the real part of the tangent
    np.imag:         DIAGONAL,  # Re(-1j * t) is Im(t), which settle keeps
    # --------------------------------------------------------------- selection
    np.where:        DIAGONAL,
    np.clip:         DIAGONAL,
    np.heaviside:    DIAGONAL,
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
    V.running_product: (lambda t, a, x, axis: a * wnp.cumsum(t / x, axis=axis), None),
    V.full_convolution: (lambda t, a, x, v: _convolved(t, v), lambda t, a, x, v: _convolved(t, x)),
    # --------------------------------------------------------------- shapes
    np.reshape:      (_reshaped,),
    np.transpose:    (_transpose,),
    np.swapaxes:     (_swapaxes,),
    np.moveaxis:     (_moveaxis,),
    np.diagonal:     (_diagonal,),
    np.expand_dims:  (_reshaped,),
    np.squeeze:      (_reshaped,),
    np.broadcast_to: (_broadcast_to,),
    np.flip:         (_flip,),
    np.roll:         (_roll,),
    np.copy:         (same,),
    np.astype:       (same,),  # settle casts the tangent to the new dtype
    np.concatenate:  Joint(_concatenate),
    np.stack:        Joint(_stack),
    # --------------------------------------------------------------- products
    np.dot:          (_product_rule(_tensordot_x, _dot_axes), _product_rule(_tensordot_y, _dot_axes)),
    np.matmul:       (_matmul_x,                      _matmul_y),
    np.tensordot:    (_tensordot_x,                   _tensordot_y),
    np.inner:        (_product_rule(_tensordot_x, lambda x, y: ([-1], [-1])),
                      _product_rule(_tensordot_y, lambda x, y: ([-1], [-1]))),
    np.outer:        (_outer_x,                       _outer_y),
    np.einsum:       V.Variadic(_einsum, skip=1),
    # --------------------------------------------------------------- indexing
    operator.getitem: (_getitem, None),
    untake:           (_untake, None, None),
    V.windows:        (lambda t, a, x, window_shape, axis: wnp._windows(t, window_shape, axis), None, None),
    V.setitem:        Joint(_setitem),
}
