"""NumPy functions whose calling convention needs more than a plain wrapper.

Array construction from lists of traced values, functions taking a list of arrays (each
element must be traced on its own), ``einsum``'s two call forms, and functions built from
other wrapped functions (``split``, ``ravel``): their derivatives come from the operations
they use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

import wengert.numpy as wnp

from .._core import Box, strip
from ._vjps import _layout, plain_astype
from ._wrap import DISPATCH, PRIMITIVES, _general, composite, nondifferentiable, object_dtype
from ._wrap import holds_box as _has_box

_nonzero = nondifferentiable(np.nonzero)


# ----------------------------------------------------------------------------- construction
@composite(np.array)
def array(object: Any, dtype: Any = None, *, copy: bool = True, order: str = "K",
          subok: bool = False, ndmin: int = 0, like: Any = None) -> Any:
    if not _has_box(object):
        return np.array(object, dtype=dtype, copy=copy, order=order, subok=subok, ndmin=ndmin,
                        **({} if like is None else {"like": like}))
    new = type(object) is not Box or _scalar(object)  # stacked from a list, or a 0-d array made
    out = wnp.stack([array(e) for e in object]) if type(object) is not Box else _as_array(object)
    if dtype is not None and np.dtype(dtype) != out.dtype:
        out, new = astype(out, dtype), True
    if ndmin > out.ndim:
        out, new = wnp.reshape(out, (1,) * (ndmin - out.ndim) + out.shape), False  # a view
    return wnp.copy(out) if copy and not new else out  # as NumPy's: writing into it leaves object alone


@composite(np.asarray)
def asarray(a: Any, dtype: Any = None, order: Any = None, **kwargs: Any) -> Any:
    if not _has_box(a):
        return np.asarray(a, dtype=dtype, order=order, **kwargs)
    if type(a) is not Box:
        return array(a, dtype=dtype)
    a = _as_array(a)
    if dtype is not None:
        a = astype(a, dtype, copy=False)
    v = strip(a)  # NumPy copies an array that is not laid out in the order asked for
    laid_out = order not in ("C", "F") or not isinstance(v, np.ndarray) or v.flags[order + "_CONTIGUOUS"]
    return a if laid_out else wnp.copy(a)


def _scalar(x: Box) -> bool:
    """Whether the traced ``x`` is a number (Python's or NumPy's) rather than an array."""
    return isinstance(x.value, (int, float, complex, np.generic))


def _as_array(x: Box) -> Box:
    """The traced ``x`` as an array: a number becomes a 0-d array, as NumPy's asarray makes it."""
    return wnp.copy(x) if _scalar(x) else x


def _converter(fun: Any, order: str | None) -> Any:
    """asanyarray, or ascontiguousarray and asfortranarray (``order``), which make a 0-d array 1-d."""
    def convert(a: Any, dtype: Any = None, *args: Any, **kwargs: Any) -> Any:
        if not _has_box(a):
            return fun(a, dtype, *args, **kwargs)
        out = asarray(a, dtype, order)
        return wnp.reshape(out, (1,)) if order and np.ndim(strip(out)) == 0 else out
    convert.__name__ = convert.__qualname__ = fun.__name__
    return composite(fun)(convert)


asanyarray = _converter(np.asanyarray, None)
ascontiguousarray = _converter(np.ascontiguousarray, "C")
asfortranarray = _converter(np.asfortranarray, "F")


@composite(np.astype)
def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
    if type(x) is Box and np.dtype(dtype).kind not in "fc":
        if np.dtype(dtype).kind == "O":
            raise TypeError(object_dtype("astype"))
        return plain_astype(strip(x), dtype)  # integers and booleans carry no gradient
    if type(x) is Box:
        if np.dtype(dtype) == x.dtype:  # a copy, as NumPy's, unless copy=False
            return wnp.copy(x) if copy else x
        return _general(PRIMITIVES[np.astype], (x, dtype), {})
    if hasattr(x, "astype"):
        return x.astype(dtype, copy=copy)
    return np.dtype(dtype).type(x)  # a Python scalar


@composite(np.full_like)
def full_like(a: Any, fill_value: Any, dtype: Any = None, order: str = "K", subok: bool = True,
              shape: Any = None, **kwargs: Any) -> Any:
    plain = np.full_like(strip(a), strip(fill_value), dtype=dtype, order=order, subok=subok,
                         shape=shape, **kwargs)
    if type(fill_value) is not Box or plain.dtype.kind not in "fc":
        return plain
    return astype(wnp.broadcast_to(fill_value, plain.shape), plain.dtype)


_clip = DISPATCH[np.clip]  # the primitive's wrapper


@composite(np.clip)
def clip(a: Any, a_min: Any = np._NoValue, a_max: Any = np._NoValue, *args: Any, min: Any = np._NoValue,
         max: Any = np._NoValue, **kwargs: Any) -> Any:
    """np.clip, whose keyword-only min= and max= (the array API's spelling) are a_min and a_max
    given positionally, where the derivatives are; a bound given neither way is None, as in NumPy
    (which also wants both a_min and a_max when one is given)."""
    if a_min is np._NoValue and a_max is np._NoValue:
        a_min, a_max = (None if v is np._NoValue else v for v in (min, max))
        min = max = np._NoValue
    elif a_min is np._NoValue or a_max is np._NoValue:
        missing = "a_min" if a_min is np._NoValue else "a_max"
        raise TypeError(f"clip() missing 1 required positional argument: '{missing}'")
    bounds = {k: v for k, v in (("min", min), ("max", max)) if v is not np._NoValue}
    return _clip(a, a_min, a_max, *args, **bounds, **kwargs)


# ----------------------------------------------------------------------------- lists of arrays
@composite(np.concatenate)
def concatenate(arrays: Any, axis: Any = 0, out: Any = None, *, dtype: Any = None,
                casting: str = "same_kind") -> Any:
    return _general(PRIMITIVES[np.concatenate], tuple(arrays),
                    dict(axis=axis, out=out, dtype=dtype, casting=casting))


@composite(np.stack)
def stack(arrays: Any, axis: int = 0, out: Any = None, *, dtype: Any = None,
          casting: str = "same_kind") -> Any:
    return _general(PRIMITIVES[np.stack], tuple(arrays),
                    dict(axis=axis, out=out, dtype=dtype, casting=casting))


@composite(np.einsum)
def einsum(*operands: Any, out: Any = None, optimize: Any = False, **kwargs: Any) -> Any:
    if not isinstance(operands[0], str):  # einsum(a, [0, 1], b, [1, 2], [0, 2])
        operands = _interleaved_to_string(operands)
    return _general(PRIMITIVES[np.einsum], operands, dict(out=out, optimize=optimize, **kwargs))


def _interleaved_to_string(args: tuple) -> tuple:
    def letters(sub: Any) -> str:
        return "".join("..." if s is Ellipsis else "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[s]
                       for s in sub)
    ops, subs = list(args[0::2]), [letters(s) for s in args[1::2]]
    result = ""
    if len(ops) > len(subs):  # the last sublist is the output's
        result = "->" + letters(ops.pop())
    return (",".join(subs) + result, *ops)


@composite(np.where)
def where(condition: Any, x: Any = None, y: Any = None) -> Any:
    if x is None and y is None:
        return _nonzero(condition)
    return _general(PRIMITIVES[np.where], (condition, x, y), {})


# ----------------------------------------------------------------------------- shapes
@composite(np.reshape)
def reshape(a: Any, *args: Any, **kwargs: Any) -> Any:
    """order='A' is settled here, from ``a``'s layout, so that the rule reads only its shape."""
    if len(args) > 1:  # (the order given by position)
        args, kwargs = args[:1] + args[2:], {**kwargs, "order": args[1]}
    if str(kwargs.get("order")).upper() == "A":  # (a list is read into a C-ordered array)
        kwargs["order"] = _layout(a, "A")
    return _general(PRIMITIVES[np.reshape], (a, *args), kwargs)


@composite(np.ravel)
def ravel(a: Any, order: str = "C") -> Any:
    if type(a) is not Box:
        return np.ravel(a, order)
    value = strip(a)
    flags = getattr(value, "flags", None)
    if order in "AK" and flags is not None:
        if flags.f_contiguous and not flags.c_contiguous:
            order = "F"
        elif order == "K" and not flags.c_contiguous:  # memory order of a strided view
            offsets = np.indices(value.shape).reshape(value.ndim, -1).T @ np.abs(value.strides)
            return wnp.reshape(a, -1)[np.argsort(offsets, kind="stable")]
    return wnp.reshape(a, -1, order="F" if order == "F" else "C")


def _split_bounds(n: int, sections: Any, equal: bool, name: str) -> list:
    if np.ndim(sections) == 0:
        sections = int(sections)
        if sections <= 0:
            raise ValueError(f"{name}: the number of sections must be larger than 0")
        if equal and n % sections:
            raise ValueError(f"{name}: an array of length {n} does not split into {sections} equal sections; "
                             "use array_split for unequal ones")
        each, extra = divmod(n, sections)
        sizes = [each + 1] * extra + [each] * (sections - extra)
        return list(np.cumsum([0] + sizes))
    return [0, *[int(i) for i in sections], n]


def _split(a: Any, sections: Any, axis: int, equal: bool, name: str) -> list:
    shape = np.shape(strip(a))
    axis = normalize_axis_index(axis, len(shape))
    bounds = _split_bounds(shape[axis], sections, equal, name)
    head = (slice(None),) * axis
    return [a[head + (slice(lo, hi),)] for lo, hi in zip(bounds[:-1], bounds[1:])]


@composite(np.split)
def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list:
    return _split(ary, indices_or_sections, axis, True, "split")


@composite(np.array_split)
def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list:
    return _split(ary, indices_or_sections, axis, False, "array_split")



# ----------------------------------------------------------------------------- two-output ufuncs
@composite(np.divmod)
def divmod(x: Any, y: Any, /) -> tuple:
    return wnp.floor_divide(x, y), wnp.remainder(x, y)


@composite(np.modf)
def modf(x: Any, /) -> tuple:
    whole = wnp.trunc(x)
    return x - whole, whole
