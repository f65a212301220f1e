"""What makes a traced value behave like an ndarray: operators, attributes, methods, and the
two NumPy protocols through which plain ``numpy`` calls reach wengert.

Operators take a fast path (:func:`~wengert._core.apply2` with the Python operator), which
also keeps Python floats as floats in scalar programs.
"""

from __future__ import annotations

import dis
import importlib
import math
import operator
import sys
from typing import Any, Callable

import numpy as np

import wengert.numpy as wnp

from .. import _core
from .._core import Box, binary, rebind, recording, strip, unary, unpaused
from ._wrap import DISPATCH, PRIMITIVES, ConversionError, module, outside_wengert, package, plain_index


class NoRuleError(TypeError):
    """A NumPy function without a derivative rule was called on a traced value."""


def _binary(fun: Any, op: Callable) -> tuple[Callable, Callable]:
    call = binary(PRIMITIVES[fun], op, DISPATCH[fun])  # the ufunc's wrapper takes list operands
    return call, lambda self, other: call(other, self)


def _unary(fun: Any, op: Callable) -> Callable:
    return unary(PRIMITIVES[fun], op, None)


def _plain(op: Callable) -> Callable:
    """An operator whose result carries no gradient (comparisons, floor division)."""
    return lambda self, other: op(strip(self), strip(other))


def _refuse(what: str, advice: str) -> Callable:
    def method(self: Box, *args: Any, **kwargs: Any) -> Any:
        raise ConversionError(f"{what} would drop the gradient of a traced value. {advice}")
    return method


B = Box
B.__add__, B.__radd__ = _binary(np.add, operator.add)
B.__sub__, B.__rsub__ = _binary(np.subtract, operator.sub)
B.__mul__, B.__rmul__ = _binary(np.multiply, operator.mul)
B.__truediv__, B.__rtruediv__ = _binary(np.divide, operator.truediv)
B.__mod__, B.__rmod__ = _binary(np.remainder, operator.mod)
B.__pow__, B.__rpow__ = _binary(np.power, operator.pow)
B.__matmul__, B.__rmatmul__ = _binary(np.matmul, operator.matmul)
B.__neg__ = _unary(np.negative, operator.neg)
B.__pos__ = _unary(np.positive, operator.pos)
B.__abs__ = _unary(np.absolute, operator.abs)
B.__floordiv__ = _plain(operator.floordiv)
B.__rfloordiv__ = lambda self, other: strip(other) // strip(self)
B.__divmod__ = lambda self, other: (self // other, self % other)
B.__rdivmod__ = lambda self, other: (other // self, other % self)
B.__lt__, B.__le__ = _plain(operator.lt), _plain(operator.le)
B.__gt__, B.__ge__ = _plain(operator.gt), _plain(operator.ge)
B.__eq__, B.__ne__ = _plain(operator.eq), _plain(operator.ne)


def _unhashable(self: Box) -> int:  # like ndarray's: elementwise == makes boxes unhashable
    why = _what_converts(writes=False)  # a SciPy function using the value as a plain number (a cache key)
    if why is not None:
        raise ConversionError(why)
    raise TypeError("A traced value cannot be a dict key or a set element (its == is elementwise, as an "
                    "array's). Key by wengert.stop_gradient(x) (a number, or x.tobytes() of it for an "
                    "array), or by id(x).")


B.__hash__ = _unhashable

# Conversions. bool(), int(), round() and math.floor/ceil/trunc of a traced value are piecewise
# constant, so they are allowed; float(), complex() and tolist() would silently cut the
# gradient (math.sin(x), "%f" % x, sum(x.tolist())), so they raise.
B.__bool__ = lambda self: bool(strip(self))
B.__int__ = lambda self: int(strip(self))
B.__index__ = lambda self: operator.index(strip(self))
B.__round__ = lambda self, ndigits=None: round(strip(self), ndigits)
B.__floor__ = lambda self: math.floor(strip(self))  # math.floor/ceil/trunc: integers, as int() gives
B.__ceil__ = lambda self: math.ceil(strip(self))
B.__trunc__ = lambda self: math.trunc(strip(self))
_to_float = _refuse("float(x)", "Use wengert.numpy functions instead of math ones, format with "
                    "f'{x:.3f}', or call x.item() if you want the plain number on purpose.")
_to_complex = _refuse("complex(x)", "Use wengert.numpy functions instead of cmath ones, or "
                      "x.item() if you want the plain number on purpose.")
_to_array = _refuse(
    "Converting to a plain NumPy array (np.asarray, np.array, a NumPy scalar type such as np.float32(x) "
    "(use x.astype(np.float32)), or NumPy given a list of traced values)",
    "Use `import wengert.numpy as np`, whose array/asarray/stack keep the gradient and whose "
    "functions read a list of traced values as NumPy reads a list (np.mean([x, y])); NumPy's own "
    "functions do not look inside lists, so with them build the array first "
    "(numpy.mean(wengert.numpy.array([x, y]))); or call wengert.stop_gradient(x) if you want the "
    "plain array on purpose.")


def _published(part: str, name: str) -> bool:
    """Whether ``scipy.<part>`` publishes ``name`` (its first part, for norm.logpdf)."""
    try:
        return hasattr(importlib.import_module(f"scipy.{part}"), name.split(".")[0])
    except ImportError:
        return False


def _public_scipy(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "scipy" and len(parts) > 1 and not parts[1].startswith("_")


def _within(name: str) -> bool:
    """Whether a function of the module ``name`` is running further up the call stack."""
    frame = sys._getframe(1)
    while frame is not None and module(frame) != name:
        frame = frame.f_back
    return frame is not None


_STORE_SUBSCR = dis.opmap["STORE_SUBSCR"]


def _what_converts(writes: bool = True) -> str | None:
    """Who asked for a plain array, where the call stack tells: a SciPy function (they have no
    dispatch protocol, so they convert their arguments), or (``writes``) the user's own
    ``a[i] = x`` on a plain array ``a``. None where neither is recognised."""
    frame = outside_wengert()
    caller, called = frame, None
    while frame is not None and package(frame) in ("numpy", "scipy"):
        if isinstance(frame.f_locals.get("self"), np.vectorize):
            return ("numpy.vectorize converts its arguments to plain arrays, which would drop the gradient of a "
                    "traced value. Use wengert.numpy.vectorize, which calls the function on traced elements.")
        # the outermost function of a public SciPy subpackage is the one the user called; a
        # private decorator's frame holds the function it wraps
        owner = frame.f_locals.get("self")  # a method of a named object (or of a frozen one): norm.logpdf
        label = getattr(owner, "name", None) or getattr(getattr(owner, "dist", None), "name", None)
        method = f"{label}.{frame.f_code.co_name}" if isinstance(label, str) else frame.f_code.co_name
        if frame.f_code.co_name == "__call__" and isinstance(getattr(owner, "__name__", None), str):
            method = owner.__name__  # a callable object SciPy publishes (sph_harm_y)
        named = [(module(frame), method)] + [
            (v.__module__, v.__name__) for v in frame.f_locals.values()
            if callable(v) and isinstance(getattr(v, "__module__", None), str) and hasattr(v, "__name__")]
        found = [(m.split(".")[1], n) for m, n in named if _public_scipy(m)]  # a published name first
        called = next((c for c in found if _published(*c)), found[0] if found else called)
        frame = frame.f_back
    if called is not None:
        part, function = called
        name = f"scipy.{part}.{function}"
        try:  # (wengert's SciPy modules hand out SciPy's own functions for names they lack)
            first = function.split(".")[0]
            ours = getattr(importlib.import_module(f"wengert.scipy.{part}"), first)
            if ours is getattr(importlib.import_module(f"scipy.{part}"), first, None):
                ours = None
        except (ImportError, AttributeError):
            ours = None
        if ours is not None and _within(f"wengert.scipy.{part}"):  # ours called SciPy's: a value slipped in
            return (f"{name}, which wengert.{name} runs on plain values, met a traced value: one the function "
                    "given to it reads from outside its arguments (its closure, or a global), which the "
                    "up-front check cannot always see. Pass such values through args=.")
        if getattr(ours, "__wengert_refusal__", None):  # wengert's version refuses traced values too: why
            return ours.__wengert_refusal__
        return (f"{name} converts its arguments to plain arrays (SciPy has no dispatch protocol), which would "
                f"drop the gradient of a traced value. " + (f"Call wengert.{name} instead." if ours is not None else
                "wengert has no version of it: write it with wengert.numpy functions, or pass "
                "wengert.stop_gradient(x) if you want it without a gradient."))
    code = caller.f_code.co_code if caller is not None else b""  # co_code: the instructions unspecialised
    if writes and caller is not None and 0 <= caller.f_lasti < len(code) and code[caller.f_lasti] == _STORE_SUBSCR:
        return ("a[i] = x: writing a traced value into a plain array would drop its gradient. Build the array "
                "from traced values instead: a = wengert.numpy.at(a)[i].set(x), or collect the rows in a list "
                "and stack them (np.stack(rows)).")
    return None


def _refusal(default: Callable, plain: Callable) -> Callable:
    """A conversion that raises, saying who asked for it where the call stack tells (a[i] = x
    into a plain array converts through float(x); SciPy through np.asarray). Inside no_grad,
    where values come out plain anyway, it converts: ``plain(value, *args, **kwargs)``."""
    def method(self: Box, *args: Any, **kwargs: Any) -> Any:
        if not recording(self.trace):
            return plain(strip(self), *args, **kwargs)
        why = _what_converts()
        if why is None:
            return default(self)
        raise ConversionError(why)
    return method


def _copied_array(value: Any, dtype: Any = None, copy: Any = None) -> np.ndarray:
    """np.asarray(x) of a traced x inside no_grad: a copy, which writing into cannot change the
    recorded value."""
    return np.array(value, dtype=dtype, copy=True)


B.__array__ = _refusal(_to_array, _copied_array)
B.__float__, B.__complex__ = _refusal(_to_float, float), _refusal(_to_complex, complex)
B.__len__ = lambda self: len(strip(self))
B.__iter__ = lambda self: (self[i] for i in range(len(self)))
B.__contains__ = lambda self, item: item in strip(self)
B.__getitem__ = lambda self, index: wnp._getitem(self, plain_index(index))
B.__format__ = lambda self, spec: format(strip(self), spec)
B.__repr__ = lambda self: f"Box({strip(self)!r}, trace={self.trace.id})"
B.__str__ = lambda self: str(strip(self))
B.__copy__ = lambda self: wnp.copy(self)
B.__reduce_ex__ = _refuse("pickle.dumps(x)", "Pickle wengert.stop_gradient(x) if you want the plain value on purpose.")
B.__deepcopy__ = lambda self, memo: wnp.copy(self)
B.item = lambda self, *args: np.asarray(strip(self)).item(*args)  # a traced Python float has one too
B.tolist = _refusal(_refuse("x.tolist()", "Iterate over x or index it (the elements stay traced), or call "
                           "wengert.stop_gradient(x).tolist() (x.item() for one number) if you want plain "
                           "numbers on purpose."), lambda value: np.asarray(value).tolist())


# Attributes.
def _attr(name: str) -> property:
    def get(self: Box) -> Any:
        v = strip(self)
        return getattr(v, name) if hasattr(v, name) else getattr(np.asarray(v), name)
    return property(get)


B.shape, B.ndim, B.size, B.dtype = _attr("shape"), _attr("ndim"), _attr("size"), _attr("dtype")
B.nbytes, B.itemsize, B.strides, B.flags = _attr("nbytes"), _attr("itemsize"), _attr("strides"), _attr("flags")
B.T = property(lambda self: wnp.transpose(self))
B.mT = property(lambda self: wnp.swapaxes(self, -1, -2))


def _set_real(self: Box, v: Any) -> None:
    """``x.real = v``: NumPy writes the real part in place (all of a real ``x``)."""
    self[...] = v + 1j * wnp.imag(self) if np.iscomplexobj(strip(self)) else v


def _set_imag(self: Box, v: Any) -> None:
    if not np.iscomplexobj(strip(self)):
        raise TypeError("x.imag = v: x is real, so it has no imaginary part to set (NumPy refuses too). "
                        "Make x complex first: x = x + 0j.")
    self[...] = wnp.real(self) + 1j * v


def _set_shape(self: Box, shape: Any) -> None:
    """``x.shape = s``: the same values seen with a new shape, where NumPy can do that without a
    copy (NumPy's own error otherwise). Views taken of ``x`` before keep their shape."""
    value = strip(self)
    if not isinstance(value, np.ndarray):
        raise AttributeError(f"x.shape = {shape!r}: x is a {type(value).__name__}, whose shape cannot be set.")
    value.view().shape = shape  # raises NumPy's error where a copy would be needed
    rebind(self, unpaused(wnp.reshape, self, shape))


B.shape = property(B.shape.fget, _set_shape)
B.real = property(lambda self: wnp.real(self), _set_real)
B.imag = property(lambda self: wnp.imag(self), _set_imag)


# Methods with the same arguments as the NumPy function of the same name.
def _method(fun: Any) -> Callable:
    def method(self: Box, *args: Any, **kwargs: Any) -> Any:
        return DISPATCH[fun](self, *args, **kwargs)
    method.__name__ = fun.__name__
    return method


for _f in (np.sum, np.mean, np.prod, np.max, np.min, np.var, np.std, np.cumsum, np.cumprod,
           np.dot, np.ravel, np.squeeze, np.swapaxes, np.copy, np.any, np.all,
           np.argmax, np.argmin, np.argsort, np.nonzero, np.round, np.diagonal,
           np.repeat, np.take, np.searchsorted, np.argpartition, np.choose):
    setattr(B, _f.__name__, _method(_f))


def _conjugate(self: Box) -> Any:
    """``x.conj()``: for real ``x``, ``x`` itself, as NumPy's method returns (writing into the
    result writes into ``x``); a new array for complex ``x``."""
    return DISPATCH[np.conjugate](self) if np.iscomplexobj(strip(self)) else self


B.conjugate = B.conj = _conjugate
B.compress = lambda self, condition, axis=None: wnp.compress(condition, self, axis)


# In-place methods give the traced array its new value as x[...] = v does.
def _in_place(make: Callable) -> Callable:
    def method(self: Box, *args: Any, **kwargs: Any) -> None:
        self[...] = make(self, *args, **kwargs)
    return method


B.sort = _in_place(lambda self, axis=-1, kind=None, order=None, **stable: wnp.sort(self, axis, kind, order, **stable))
B.partition = _in_place(lambda self, kth, axis=-1, kind="introselect", order=None:
                        wnp.partition(self, kth, axis, kind, order))
B.fill = _in_place(lambda self, value: value)
B.put = lambda self, indices, values, mode="raise": wnp.put(self, indices, values, mode)


def _unsupported(what: str, advice: str) -> Callable:
    def method(self: Box, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{what} is not supported on a traced array. {advice}")
    return method


B.resize = _unsupported("x.resize() (a change of shape in place)", "Build the new array instead: "
                        "np.resize(x, shape), or np.pad / np.concatenate to grow it.")
B.flat = property(_unsupported("x.flat", "Read elements with np.ravel(x)[i], and write them with "
                               "x[np.unravel_index(i, x.shape)] = v."))
for _name in ("byteswap", "getfield", "setfield"):  # a reinterpretation of the bytes: no derivative
    setattr(B, _name, _unsupported(f"x.{_name}()", "Work on wengert.stop_gradient(x) if you want it without "
                                   "a gradient."))
for _name in ("tobytes", "tofile", "dump", "dumps"):
    setattr(B, _name, _refuse(f"x.{_name}()", f"Call wengert.stop_gradient(x).{_name}() if you want the plain "
                              "data on purpose."))


B.device = property(lambda self: getattr(strip(self), "device", "cpu"))
B.to_device = lambda self, device, /, *, stream=None: (strip(self).to_device(device, stream=stream), self)[1]
B.__array_namespace__ = lambda self, /, *, api_version=None: (
    strip(self).__array_namespace__(api_version=api_version), wnp)[1]  # NumPy's checks, wengert's namespace
for _name, _what in (("base", "the array whose memory x views"), ("data", "the buffer of x's memory"),
                     ("ctypes", "x's memory for ctypes")):
    setattr(B, _name, property(_unsupported(f"x.{_name} ({_what})", "Its memory is that of the plain value "
                                            f"under it: use wengert.stop_gradient(x).{_name} to inspect that.")))
B.setflags = _unsupported("x.setflags()", "A traced array is never written in place (an assignment records a new "
                          "value), so its flags cannot be set; set them on the plain array before or after.")


def _view(self: Box, *args: Any, **kwargs: Any) -> Any:
    """``x.view()``: a new array over the same data, ``x[...]`` (writing into it writes into x)."""
    if args or kwargs:
        raise TypeError("x.view(dtype or type) reinterprets the data, which has no derivative, so it is "
                        "not supported on a traced array. Use x.astype(dtype) to convert the values, or "
                        "x.view() for a view of the same values.")
    return self[...]


B.view = _view


def _astype(self: Box, dtype: Any, order: str = "K", casting: str = "unsafe", subok: bool = True,
            copy: bool = True) -> Any:
    """``x.astype(...)``: the values converted as NumPy's method converts them (``casting``
    checked as NumPy checks it), laid out in ``order``."""
    if not np.can_cast(self.dtype, dtype, casting):
        raise TypeError(f"Cannot cast array data from {self.dtype!r} to {np.dtype(dtype)!r} "
                        f"according to the rule {casting!r}")
    out = wnp.astype(self, dtype, copy=copy)
    return wnp.asarray(out, order=order) if order in ("C", "F") else out


B.astype = _astype


def _shape_args(args: tuple) -> Any:
    return args[0] if len(args) == 1 else args


B.reshape = lambda self, *shape, order="C", **copy: wnp.reshape(self, _shape_args(shape), order=order, **copy)
B.transpose = lambda self, *axes: wnp.transpose(self, _shape_args(axes) if axes else None)
B.flatten = lambda self, order="C": wnp.copy(wnp.ravel(self, order))  # a new array, as NumPy's
B.clip = lambda self, min=None, max=None, **kwargs: wnp.clip(self, min, max, **kwargs)


# ----------------------------------------------------------------------------- protocols
def _lookup(func: Any) -> Callable | None:
    """The wrapper of a NumPy or SciPy callable; SciPy's tables load the first time one of its
    functions meets a traced value (scipy.special's ufuncs carry no module name)."""
    wrapper = DISPATCH.get(func)
    if wrapper is None and func is np.i0:  # differentiated with scipy.special.i0's rule: load it
        try:
            importlib.import_module("wengert.scipy.special")
        except ImportError as missing:
            raise NoRuleError("numpy.i0 on a traced value needs SciPy for its derivative (scipy.special.i1): "
                              "pip install scipy, or wrap the call in wengert.stop_gradient.") from missing
        return DISPATCH.get(func)
    if wrapper is None and "scipy" in sys.modules:
        home = getattr(func, "__module__", None) or ("scipy.special" if isinstance(func, np.ufunc) else "")
        parts = home.split(".")
        if parts[0] == "scipy" and len(parts) > 1:
            try:
                importlib.import_module(f"wengert.scipy.{parts[1]}")
            except ImportError:
                return None
            wrapper = DISPATCH.get(func)
    return wrapper


def _array_ufunc(self: Box, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    wrapper = _lookup(ufunc)
    if method == "__call__" and wrapper is not None:
        return wrapper(*inputs, **kwargs)
    reduction = _UFUNC_METHODS.get((ufunc, method))
    if reduction is not None:
        return reduction(*inputs, **kwargs)
    if ufunc.__name__.endswith("(vectorized)"):  # made by numpy.frompyfunc
        raise NoRuleError(f"numpy.frompyfunc's ufunc {ufunc.__name__!r} has no derivative rule in wengert and "
                          "was called on a traced value. Use wengert.numpy.vectorize(f), which differentiates "
                          "f element by element, or wrap the call in wengert.stop_gradient.")
    home = getattr(ufunc, "__module__", None) or "scipy.special"  # (SciPy's ufuncs name no module)
    what = f"{home}.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
    raise NoRuleError(f"{what} has no derivative rule in wengert and was called on a traced value. "
                      "Use another function, wrap the call in wengert.stop_gradient if its gradient "
                      "is not needed, or give it a rule with wengert.primitive and defvjp.")


def _array_function(self: Box, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
    wrapper = _lookup(func)
    if wrapper is None:
        mod = getattr(func, "__module__", "numpy") or "numpy"
        raise NoRuleError(f"{mod}.{func.__name__} has no derivative rule in wengert and was called on "
                        "a traced value. Use another function, wrap the call in "
                        "wengert.stop_gradient if its gradient is not needed, or give it a rule with "
                        "wengert.primitive and defvjp.")
    return wrapper(*args, **kwargs)


# Compiled, the protocols call the wrapper the table has for the callable at once (the common
# case) and these functions for the rest.
B.__array_ufunc__, B.__array_function__ = (_array_ufunc, _array_function) if _core._speedups is None else \
    _core._speedups.protocols(DISPATCH, _array_ufunc, _array_function)


class _UfuncMethods(dict):
    """(ufunc, method name) -> ``ufunc.method`` (reduce, accumulate, outer ...) on traced values,
    made on first use by :func:`wengert.numpy._derived.ufunc_method` (kept once found)."""

    def get(self, key: tuple, default: Any = None) -> Any:
        found = dict.get(self, key)
        if found is None:
            from ._derived import ufunc_method
            found = ufunc_method(*key)
            if found is not None:
                self[key] = found
        return default if found is None else found


_UFUNC_METHODS = _UfuncMethods()
