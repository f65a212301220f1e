"""Assignment into traced arrays: ``x[i] = v``, ``x += y`` and friends, and ``x.at[i]``.

The tape is a record of values, so nothing on it is ever overwritten. An in-place operation
computes the new array with a primitive (``setitem``: a copy of ``x`` with ``v`` written at
``i``) and then *rebinds* the traced array to it (:func:`wengert._core.rebind`): the Python
object the user holds now stands for the new value, while the operations recorded before
keep the value they saw. NumPy's aliasing is kept where it is visible:

* a traced array that is a view of another one (``row = x[0]``, made by basic indexing)
  writes through to it: ``row[1] = v`` changes ``x`` as well;
* a view made otherwise (``reshape``, ``.T``) of an array nothing else refers to (nor to an
  array that one views, and so on), a temporary like the ``exp(x)`` of ``exp(x).reshape(2, 3)``,
  is written as an array of its own (no one could see the write through it); of any other
  array (the ``y`` of ``y[:2].reshape(2, 1)`` included), a write into it is refused;
* views taken of an array before it was assigned into (``x[0]``, ``x.T``, ``x.reshape``)
  see the assignment, because they are recomputed from the new value.

The arrays a user passes in are never written to: ``x += 1`` inside a differentiated
function leaves the caller's array as it was (NumPy would change it).

``x.at[i].set(v)`` / ``.add(v)`` / ``.multiply(v)`` / ``.divide(v)`` / ``.power(v)`` /
``.min(v)`` / ``.max(v)`` / ``.get()`` are the functional forms, returning a new array
(``wengert.numpy.at(x)[i]`` for any array, traced or not, so that the same code runs on plain
arrays); with repeated indices all but ``set`` apply every occurrence (as ``np.add.at`` and the
other ufuncs' ``at`` do), while ``set`` and ``x[i] = v`` keep one write per element, the one
NumPy keeps.
"""

from __future__ import annotations

import operator
import sys
from typing import Any, Callable

import numpy as np

import wengert.numpy as wnp

from .._core import _UNSHARED, Box, _root, apply, held, read_by, rebind, recording, strip, unpaused
from .._tree import flatten
from ._box import _UFUNC_METHODS
from ._wrap import PRIMITIVES, plain_index

_GETITEM = PRIMITIVES[operator.getitem]


# ----------------------------------------------------------------------------- storing
def _view_of(x: Box) -> tuple | None:
    """``(base, index)`` if ``x`` is a view made by basic indexing of the traced ``base``, or
    ``base`` itself (``index`` ``...``), handed back by an operation with nothing to do
    (``real`` or ``conj`` of a real array, ``squeeze`` without unit axes); ``None`` if ``x``
    owns its data. A view made any other way cannot be written through."""
    value = strip(x)
    if not (isinstance(value, np.ndarray) and x.parents):
        return None
    for _, p in x.parents:
        if strip(p) is value:
            return p, ...
        if _shares(value, p):
            if x.prim is _GETITEM:
                return p, x.args[1]
            if _unseen(p):  # a temporary (exp(x).reshape(2, 3)): no one could see the write
                return None
            raise TypeError(f"Assigning into a traced array that is a view made by "
                            f"{x.prim.name} of another traced array: NumPy would write through "
                            "to that array, which wengert follows only for views made by "
                            "indexing. Assign into the original array, or copy the view first "
                            "(x = x.copy()).")
    return None


def _shares(value: Any, p: Box) -> bool:
    """Whether ``value`` is a view of the traced array ``p``'s memory."""
    return value.base is not None and isinstance(strip(p), np.ndarray) and np.may_share_memory(value, strip(p))


def _unseen(base: Box) -> bool:
    """Whether a write into ``base``, the traced array a view was made of, could be seen by no
    one: nothing but the tape and that view refers to ``base``, and ``base`` views no other traced
    array, or one of which the same holds (``exp(x)[:2].reshape(2, 1)``, but not ``y[:2].reshape(2, 1)``
    of a ``y`` the program holds). Called from a loop over the parents of the view (as it calls
    itself), so that the loop's variable and the argument count alike at every level."""
    if sys.getrefcount(base) > _TEMPORARY:
        return False
    value = strip(base)
    for _, p in base.parents:
        if _shares(value, p):
            return _unseen(p)
    return True


# What sys.getrefcount says, in _unseen, of a traced array that nothing but the list and the
# entry of one view made of it refers to: an entry only the list holds (as _core._release sees it,
# from one call deep in a loop over the list), and the view's entry.
_TEMPORARY = _UNSHARED + 1


def _store(x: Box, new: Any) -> None:
    """``x`` takes the value ``new`` (same shape and dtype), as an in-place operation would
    give it, writing through to the array ``x`` is a view of."""
    base = _view_of(x)
    if base is None:
        _rebind(x, new)
    else:
        array, index = base  # x is refreshed from its new base; recorded inside no_grad too, where
        _store(array, unpaused(wnp._setitem, array, new, index))  # the base keeps the gradient of the rest


def _rebind(x: Box, new: Any) -> None:
    """Rebind ``x`` to ``new``, then recompute the views taken of ``x`` from its new value,
    so that they see the change as NumPy's views would."""
    old_value = strip(x)
    if x.prim is None and isinstance(old_value, np.ndarray):  # an input, written into for the first time
        _refuse_shared_input(x, old_value)
    old, users = rebind(x, new)
    if not isinstance(old_value, np.ndarray):
        return
    views = [u for u in users if _viewing(u, old_value)]
    if not views:
        return
    del users  # (held counts on the views being in one list)
    for view in held(views, x.trace.nodes, _viewing):  # a view only the tape holds is never seen again
        args = list(view.args)
        for k, p in view.parents:
            args[k] = x if p is old else p
        _rebind(view, unpaused(apply, view.prim, args, view.kwargs))  # (inside no_grad too)


def _viewing(view: Any, x: Any) -> bool:
    """Whether the traced or plain array ``view`` shares memory with ``x``."""
    value = strip(view)
    return isinstance(value, np.ndarray) and np.may_share_memory(value, strip(x))


def _refuse_shared_input(x: Box, value: np.ndarray) -> None:
    """Refuse to write into an input whose memory the function can reach another way (the same
    array given as two arguments, or read from its closure): NumPy would change both, while
    their traced values are separate."""
    root = _root(value)
    for other in _other_inputs(x) + _reachable(x.trace):
        if isinstance(other, np.ndarray) and _root(other) is root and np.may_share_memory(other, value):
            raise TypeError("Assigning into an argument that shares its memory with another argument or with an "
                            "array the function reads from its closure or globals (the same array given twice, or "
                            "two views of one array): NumPy would change both, which wengert does not follow. "
                            "Pass copies (f(a, a.copy())).")


def _other_inputs(x: Box) -> list:
    """The values of the other inputs of ``x``'s trace (the inputs lead its list)."""
    values = []
    for b in x.trace.nodes:
        if b.prim is not None:
            break
        if b is not x:
            values.append(b.value)
    return values


def _reachable(trace: Any) -> list:
    """What the differentiated function may read besides its differentiated arguments: its other
    arguments, its closure and the globals its code names (:func:`wengert._core.read_by`)."""
    if not trace.reach:
        return []
    fun, args, argnums, kwargs = trace.reach
    others = [a for k, a in enumerate(args) if k not in argnums]
    return flatten((others, kwargs))[0] + read_by(fun)


# ----------------------------------------------------------------------------- x[i] = v
def _setitem(x: Box, index: Any, v: Any) -> None:
    value = strip(x)
    if not (isinstance(value, (np.ndarray, np.generic)) or hasattr(value, "__setitem__")):
        # an immutable duck array: the same program on it untraced fails here too
        raise TypeError(f"x[...] = v: x is a traced {type(value).__name__}, which does not support item "
                        "assignment. Use x = x.at[index].set(v), which returns a new array.")
    if type(v) is Box and v.prim is _GETITEM and v.parents and v.parents[0][1] is x and _same_index(v.args[1], index):
        return  # x[i] = x[i], the second half of x[i] += y (whose first half wrote through the view)
    if isinstance(v, (list, tuple)):
        v = wnp.array(v)
    index = plain_index(index)
    if recording(x.trace):
        _store(x, wnp._setitem(x, v, index))
    else:  # inside no_grad: the value written carries no gradient, the rest of x keeps its own
        _store(x, unpaused(wnp._setitem, x, strip(v), index))


def _same_index(a: Any, b: Any) -> bool:
    """Whether the indices ``a`` and ``b`` are one, or equal made of integers and slices."""
    if type(a) is tuple and type(b) is tuple:
        return len(a) == len(b) and all(map(_same_index, a, b))
    return a is b or type(a) is type(b) and type(a) in (int, slice) and a == b


# ----------------------------------------------------------------------------- x += y ...
def _inplace(op: Callable, name: str) -> Callable:
    def method(self: Box, other: Any) -> Any:
        value = strip(self)
        if not hasattr(value, "__setitem__"):  # Python and NumPy scalars are immutable:
            return op(self, other)             # x += y rebinds the name, as in Python
        new = op(self, other)
        shape, dtype = np.shape(value), value.dtype
        if np.shape(strip(new)) != shape:
            raise ValueError(f"x {name}= y: y of shape {np.shape(strip(other))} does not "
                             f"broadcast to x's shape {shape}; NumPy cannot store the result "
                             "in x either. Write x = x " + f"{name} y to get a new array.")
        new_dtype = np.result_type(strip(new))
        if new_dtype != dtype:
            if not np.can_cast(new_dtype, dtype, "same_kind"):
                raise TypeError(f"x {name}= y: the result has dtype {new_dtype}, which NumPy "
                                f"does not cast to x's dtype {dtype} in place. Write x = x "
                                f"{name} y to get a new array.")
            new = wnp.astype(new, dtype)
        _store(self, new)
        return self
    method.__name__ = f"__i{op.__name__.strip('_')}__"
    return method


INPLACE = {"add": ("+", operator.add), "sub": ("-", operator.sub), "mul": ("*", operator.mul),
           "truediv": ("/", operator.truediv), "pow": ("**", operator.pow),
           "matmul": ("@", operator.matmul), "mod": ("%", operator.mod), "floordiv": ("//", operator.floordiv)}

for _name, (_symbol, _op) in INPLACE.items():
    setattr(Box, f"__i{_name}__", _inplace(_op, _symbol))
Box.__setitem__ = _setitem


# ----------------------------------------------------------------------------- x.at[i]
class _At:
    """``x.at[index]``: functional updates of a traced array (see the module docstring)."""

    __slots__ = ("x",)

    def __init__(self, x: Any):
        self.x = x

    def __getitem__(self, index: Any) -> "_AtIndex":
        return _AtIndex(self.x, plain_index(index))


class _AtIndex:
    __slots__ = ("x", "index")

    def __init__(self, x: Any, index: Any):
        self.x, self.index = x, index

    def get(self) -> Any:
        """``x[index]``."""
        return self.x[self.index]

    def set(self, v: Any) -> Any:
        """A copy of ``x`` with ``v`` written at ``index`` (one write per repeated element)."""
        return wnp._setitem(self.x, v, self.index)

    def add(self, v: Any) -> Any:
        """A copy of ``x`` with ``v`` added at ``index``, every occurrence of a repeated index
        adding (like ``np.add.at``)."""
        x = strip(self.x)
        return self.x + wnp._untake(wnp.broadcast_to(v, np.shape(x[self.index])), x, self.index)

    def multiply(self, v: Any) -> Any:
        """A copy of ``x`` with the elements at ``index`` multiplied by ``v``, every occurrence
        of a repeated index multiplying (like ``np.multiply.at``)."""
        return self._each(wnp.multiply, v)

    def divide(self, v: Any) -> Any:
        """A copy of ``x`` with the elements at ``index`` divided by ``v``."""
        return self.multiply(1 / v if type(v) is Box else np.divide(1, v))

    def power(self, v: Any) -> Any:
        """A copy of ``x`` with the elements at ``index`` raised to ``v``, every occurrence of a
        repeated index in turn (like ``np.power.at``)."""
        return self._each(wnp.power, v)

    def min(self, v: Any) -> Any:
        """A copy of ``x`` with the elements at ``index`` replaced by their minimum with ``v``,
        every occurrence of a repeated index taking part (like ``np.minimum.at``)."""
        return self._each(wnp.minimum, v)

    def max(self, v: Any) -> Any:
        """As :meth:`min`, with the maximum (``np.maximum.at``)."""
        return self._each(wnp.maximum, v)

    def _each(self, op: Callable, v: Any) -> Any:
        """``x[i] = op(x[i], v_k)`` for every position ``i`` of the index in order, a repeated
        position once per occurrence: in rounds, round r taking the r-th occurrence of each."""
        x = strip(self.x)
        shape = np.shape(x)
        positions = np.arange(np.size(x)).reshape(shape)[self.index].ravel()
        values = wnp.ravel(wnp.broadcast_to(v, np.shape(x[self.index])))
        order = np.argsort(positions, kind="stable")
        ranked = positions[order]
        first = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
        occurrence = np.empty_like(positions)
        occurrence[order] = np.arange(len(ranked)) - np.repeat(first, np.diff(np.r_[first, len(ranked)]))
        out = self.x
        for r in range(int(occurrence.max(initial=-1)) + 1):
            chosen = np.flatnonzero(occurrence == r)
            spots = np.unravel_index(positions[chosen], shape)
            out = wnp._setitem(out, op(out[spots], values[chosen]), spots)
        return out


def _ufunc_at(ufunc: np.ufunc, method: str, invert: Callable) -> Callable:
    """``ufunc.at(x, indices, b)`` on traced values: in place, like ``x.at[indices].method(b)``
    followed by assignment (``invert`` turns subtract into add, divide into multiply)."""
    def ufunc_at(x: Any, indices: Any, b: Any = None) -> None:
        if type(x) is not Box:
            raise TypeError(f"numpy.{ufunc.__name__}.at: the array written to is plain, and "
                            "writing a traced value into it in place would drop the gradient. Use "
                            f"x = wengert.numpy.at(x)[indices].{method}(b), which returns the new array.")
        _store(x, getattr(at(x)[indices], method)(invert(b)))
    return ufunc_at


def at(x: Any) -> _At:
    """Functional updates of any array, traced or not: ``at(x)[i].set(v)``, ``.add(v)``,
    ``.multiply(v)``, ``.divide(v)``, ``.power(v)``, ``.min(v)``, ``.max(v)``, ``.get()`` each
    return a new array (``x`` is unchanged).
    Traced arrays also have them as the property ``x.at``."""
    return _At(x)


Box.at = property(_At, doc=at.__doc__)
_UFUNC_METHODS.update({
    (np.add, "at"): _ufunc_at(np.add, "add", lambda b: b),
    (np.subtract, "at"): _ufunc_at(np.subtract, "add", lambda b: -b),
    (np.multiply, "at"): _ufunc_at(np.multiply, "multiply", lambda b: b),
    (np.divide, "at"): _ufunc_at(np.divide, "divide", lambda b: b),
    (np.power, "at"): _ufunc_at(np.power, "power", lambda b: b),
    (np.minimum, "at"): _ufunc_at(np.minimum, "min", lambda b: b),
    (np.maximum, "at"): _ufunc_at(np.maximum, "max", lambda b: b),
})
