"""The gradient API: ``grad``, ``value_and_grad``, ``elementwise_grad``, ``vjp``, ``make_vjp``,
``stop_gradient``.

Each call records the function on a fresh :class:`~wengert._core.Trace` (the forward pass),
then seeds the output cotangents and runs :func:`~wengert._core.sweep` (the backward pass).
Arguments and results may be nested lists, tuples and dicts of arrays and scalars; gradients
come back with the structure of the arguments they belong to.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Sequence

import numpy as np

from . import _core
from ._anomaly import watch
from ._core import (
    Box,
    EscapedTracerError,
    Trace,
    check_kept,
    finished,
    input_box,
    keep,
    recording,
    releasing,
    strip,
    sweep,
)
from ._tree import flatten, paths, same_structure, tree_map, unflatten
from .numpy._wrap import fit, refusal

__all__ = ["grad", "value_and_grad", "elementwise_grad", "vjp", "make_vjp", "stop_gradient"]

ArgNum = int | Sequence[int]

_tracking = threading.local()  # .open: the MemoryUsage objects of this thread's track_memory blocks


def stop_gradient(x: Any) -> Any:
    """Return ``x`` (a value or a nested list/tuple/dict of values) with every trace removed.

    Arguments:
        x: anything; traced values inside it are replaced by their plain values.

    Returns:
        The same structure holding plain values, which carry no gradient.
    """
    return tree_map(_plain_value, x)


def _plain_value(x: Any) -> Any:
    """The plain value under ``x``; one still saved on a recording tape is watched for mutation."""
    v = strip(x)
    if type(x) is Box and isinstance(v, _core._watched) and recording(x.trace):
        keep(x.trace, v, "the value of '{name}' returned by stop_gradient", x.prim.name if x.prim else "input")
    return v


# ----------------------------------------------------------------------------- recording
class _Recording:
    """The forward pass of one call: the Wengert list, where the inputs sit on it, and the
    function's (still traced) result."""

    __slots__ = ("trace", "nodes", "inputs", "out", "aux", "single", "lock", "watch")

    def __init__(self, api: str, fun: Callable, args: tuple, kwargs: dict, argnum: ArgNum,
                 has_aux: bool, kept: bool = False, release: bool = True):
        """``kept``: the recording outlives the call (vjp hands out its pullback), so the
        arrays given as the differentiated arguments are watched for changes like constants.
        ``release``: it is only swept backward, so values that no derivative rule reads are
        let go during the call (see :func:`wengert._core.releasing`); a recording that
        tangents are pushed through keeps them all."""
        self.single = isinstance(argnum, (int, np.integer))
        argnums = _checked_argnums(api, args, argnum)
        self.trace = trace = Trace()
        self.watch = watch(trace)  # inside detect_anomaly, which reads every value
        if release and self.watch is None:
            trace.append = releasing(trace.nodes)
        self.lock = threading.Lock()
        trace.reach = (fun, args, argnums, kwargs)
        args = list(args)
        self.inputs = []  # per differentiated argument: (structure, input boxes)
        for k in argnums:
            leaves, structure = flatten(args[k])
            boxes = [input_box(v, trace) for v in _inputs(api, leaves, lambda: paths(structure, str(k)))]
            args[k] = unflatten(structure, boxes)
            self.inputs.append((structure, boxes))
            for b in boxes if kept else ():
                if isinstance(b.value, _core._watched):
                    keep(trace, b.value, "the array given as argument {k} of '{name}'", api, k)
        try:
            out = fun(*args, **kwargs)
        finally:
            self.nodes = trace.close()
        if trace.moved:  # inputs assigned into in place: their gradients gather in earlier entries
            self.inputs = [(structure, [trace.entry(b) for b in boxes]) for structure, boxes in self.inputs]
        for usage in getattr(_tracking, "open", ()):  # wengert.track_memory blocks
            usage.add(self.nodes)
        _no_leftovers(api, out, trace)
        self.aux = None
        if has_aux:
            out, aux = _split_aux(api, out)
            self.aux = self._plain(aux)
        self.out = out

    def _plain(self, tree: Any) -> Any:
        """``tree`` with this trace's boxes replaced by their values (outer traces stay)."""
        return tree_map(lambda v: v.value if type(v) is Box and v.trace is self.trace else v, tree)

    def backward(self, outs: list, cotangents: list, free: bool) -> tuple:
        """Sweep from the given output leaves and cotangents; return the input gradients."""
        with self.lock:  # a recording kept by vjp may be swept from several threads
            check_kept(self.trace)  # before seeding: a refused sweep leaves no cotangent behind
            for o, c in zip(outs, cotangents):
                if type(o) is Box and o.trace is self.trace:
                    if type(c) in (float, complex) and isinstance(o.value, np.generic):
                        c = np.asarray(c, dtype=o.value.dtype)  # rules may index it, as the output's
                    o.adj = c if o.adj is None else o.adj + c
            sweep(self.nodes, self.watch, free)
            grads = []
            own = owner(cotangents + [b.value for _, boxes in self.inputs for b in boxes])
            for structure, boxes in self.inputs:
                leaves = [own(_finish(b.adj, b.value)) for b in boxes]
                for b in boxes:
                    b.adj = None
                grads.append(unflatten(structure, leaves))
            if free:
                self.nodes.clear()
        return grads[0] if self.single else tuple(grads)


def _no_leftovers(api: str, out: Any, trace: Trace) -> None:
    """Refuse a result holding a traced value of a computation that finished before ``trace``
    (the call's own): handed back untouched, it would look like a constant (a silent zero
    gradient)."""
    if any(type(leaf) is Box and leaf.trace is not trace and finished(leaf.trace) for leaf in flatten(out)[0]):
        raise EscapedTracerError(
            f"{api}: the function returned a traced value left over from a gradient computation that has "
            "already finished (kept in a global, a closure or a list), so its dependence on the inputs is "
            "lost. Return a value computed in this call, or wengert.stop_gradient(x) for a constant.")


def _split_aux(api: str, out: Any) -> tuple:
    """``(output, aux)`` from what a function called with ``has_aux=True`` returned."""
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f"{api}: with has_aux=True the function must return a pair "
                        f"(output, auxiliary data); it returned {_describe(out)}.")
    return out[0], out[1]


def _outputs(api: str, out: Any) -> tuple:
    """``flatten(out)``, refusing a leaf that is not a number or an array of numbers (None, a
    string, an object array ...), which would otherwise pass as a constant. As in ``_seed``,
    booleans and integers are numbers: constants, with zero derivative."""
    leaves, structure = flatten(out)
    for n, leaf in enumerate(leaves):
        v = strip(leaf)
        if _numeric_dtype(v) is None:
            dtype = getattr(v, "dtype", None)
            what = _describe(v) if dtype is None else f"an array of dtype {dtype}"
            where = "" if leaf is out else f" (output leaf {n})"
            raise TypeError(f"{api}: the function must return numbers or arrays of numbers (or lists, "
                            f"tuples and dicts of them), but it returned {what}{where}. Return only "
                            "the values to differentiate.")
    return leaves, structure


def _checked_argnums(api: str, args: tuple, argnum: ArgNum) -> tuple:
    """The positions ``argnum`` names, each in range and none twice: the checks of
    :class:`_Recording` and forward mode."""
    argnums = _argnums(argnum, api)
    for k in argnums:
        if not -len(args) <= k < len(args):
            raise ValueError(f"{api}: argnum {k} is out of range for a call with {len(args)} "
                             "positional argument(s); pass the argument to differentiate "
                             "positionally, or choose another argnum.")
    if len({k % len(args) for k in argnums}) != len(argnums):
        raise ValueError(f"{api}: argnum {argnum} names the same argument twice.")
    return argnums


def _inputs(api: str, leaves: list, places: Callable[[], list[str]]) -> list:
    """:func:`_input` of every leaf. ``places()`` says where each leaf sits (``"0['n']"``); it
    is called only to name a refused leaf, so that a call that is accepted builds no names."""
    try:
        return [_input(x, api, "") for x in leaves]
    except TypeError:
        return [_input(x, api, place) for x, place in zip(leaves, places())]


def _input(x: Any, api: str, k: int | str) -> Any:
    """Check that ``x`` (argument ``k``, or the place ``k`` names inside one: ``"0['n']"``) can
    be differentiated with respect to; promote Python ints to float."""
    if type(x) is bool or isinstance(x, np.bool_):
        kind = "a bool"
    elif type(x) is int:
        return float(x)
    elif isinstance(x, (float, complex)):
        return x
    elif (why := refusal(x)) is not None:
        raise TypeError(f"{api}: argument {k} is {why}")
    else:
        dtype = getattr(x, "dtype", None)
        try:
            numpy_kind = None if dtype is None else np.dtype(dtype).kind
        except TypeError:  # another library's array (torch.Tensor): its dtype is not NumPy's
            raise TypeError(f"{api}: argument {k} is a {type(x).__module__}.{type(x).__qualname__}, whose dtype "
                            f"{dtype} is not a NumPy dtype; wengert differentiates NumPy arrays and numbers (and "
                            "arrays that follow NumPy's protocols). Convert it with np.asarray(x).") from None
        if numpy_kind is not None and numpy_kind in "fc":
            return x
        kind = (_describe(x) if dtype is None else f"a NumPy scalar of dtype {dtype}" if isinstance(x, np.generic)
                else f"an array of dtype {dtype}")
    hint = (" Convert it with x.astype(float)." if "dtype" in kind and np.dtype(x.dtype).kind in "iub"
            else "")
    fixed = (" To keep it fixed, choose other arguments with argnum." if str(k).isdigit() else
             " To keep it fixed, pass it in an argument that is not differentiated (see argnum).")
    raise TypeError(f"{api}: argument {k} is {kind}; wengert differentiates with respect to "
                    "floating point or complex numbers and arrays (and lists, tuples and dicts of "
                    f"them).{hint}{fixed}")


def _describe(x: Any) -> str:
    x = strip(x)
    if x is None:
        return "None"
    shape, name = getattr(x, "shape", None), type(x).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}" + (f" of shape {shape}" if shape is not None else "")


def _finish(g: Any, x: Any) -> Any:
    """The gradient of input ``x``: zeros if nothing reached it, shaped, typed and of the same
    array type as ``x`` (a float for a Python float), and writable (:func:`owner` makes it
    an array of its own)."""
    if g is None:  # of x's type: a Python float, a NumPy scalar of its dtype, an array
        return type(x)(0) if isinstance(x, (float, complex, np.generic)) else np.zeros_like(strip(x))
    g = fit(g, x)
    if type(g) is Box or type(g) is type(x):
        pass
    elif isinstance(x, (float, complex)):
        g = type(x)(g) if isinstance(x, complex) or np.isrealobj(g) else g.item()
    elif isinstance(x, np.generic):
        g = x.dtype.type(g)
    elif type(x) is np.ndarray:  # e.g. a 0-d input, whose cotangent NumPy made a scalar
        g = np.asarray(g, dtype=x.dtype)
    else:  # an ndarray subclass or a duck array: let its own type build the result
        g = fit(np.zeros_like(x) + g, x)
    return writable(g)


def writable(g: Any) -> Any:
    """``g``, or a copy of it where it is an array that cannot be written (a broadcast view a
    rule handed on): a result the caller may update in place."""
    return g.copy() if isinstance(g, np.ndarray) and not g.flags.writeable else g


def owner(held: list) -> Callable[[Any], Any]:
    """A function that returns the array it is given, or a copy where it shares memory with
    an array in ``held`` (what the caller passed in: inputs, cotangents, tangents) or with one
    it returned before. A rule may hand a cotangent on unchanged (the identity's and the sum's
    do), so without this two gradients, or a gradient and the caller's cotangent, could be one
    array, and changing one in place would change the other."""
    groups: dict[int, list] = {}  # arrays by the array whose memory they use

    def group(a: np.ndarray) -> list:
        while isinstance(a.base, np.ndarray):
            a = a.base
        return groups.setdefault(id(a), [])

    def own(a: Any) -> Any:
        if isinstance(a, np.ndarray):
            if any(np.may_share_memory(a, b) for b in group(a)):
                a = a.copy()
            group(a).append(a)
        return a

    for a in held:
        if isinstance(a, np.ndarray):
            group(a).append(a)
    return own


def _numeric_dtype(v: Any) -> np.dtype | None:
    """The dtype of a number or an array of numbers (bools and ints are constants), else None."""
    dtype = getattr(v, "dtype", None)
    if dtype is None and isinstance(v, (bool, int, float, complex)):
        dtype = np.result_type(v)
    return dtype if dtype is not None and np.dtype(dtype).kind in "fciub" else None


def _seed(out: Any, api: str, holomorphic: bool = False) -> Any:
    """The cotangent 1 for a scalar output (real; complex for a holomorphic function)."""
    v = strip(out)
    dtype = _numeric_dtype(v)
    if dtype is None:
        advice = (" Return the loss alone, or use has_aux=True to return (loss, auxiliary data)."
                  if isinstance(v, (list, tuple, dict)) else "")
        raise TypeError(f"{api}: the function must return a single scalar (a real float or an "
                        f"array with one element), but it returned {_describe(v)}.{advice}")
    if holomorphic:
        if np.size(v) != 1 or dtype.kind != "c":
            raise TypeError(f"{api}: the function must return a complex scalar (a complex number or a "
                            f"complex array with one element), but it returned {_describe(v)} of dtype "
                            f"{dtype}. For a real-valued function use wengert.grad.")
        return 1.0 + 0.0j if isinstance(v, complex) else np.ones_like(v)
    if np.size(v) != 1 or dtype.kind == "c":
        what = (f"an array of shape {np.shape(v)}" if np.size(v) != 1 else f"a value of dtype {dtype}")
        advice = ("a complex output has no gradient in this sense: differentiate its real part, "
                  "its abs, or use vjp" if dtype.kind == "c" else
                  "use elementwise_grad, vjp or jacobian for non-scalar outputs, or reduce it "
                  "(for example with np.sum) first")
        raise TypeError(f"{api}: the function must return a real scalar (a float or an array "
                        f"with one element), but it returned {what}; {advice}.")
    if isinstance(v, (int, float)):
        return 1.0
    return np.ones_like(v, dtype=dtype if dtype.kind == "f" else float)


# ----------------------------------------------------------------------------- public API
def value_and_grad(fun: Callable, argnum: ArgNum = 0, has_aux: bool = False) -> Callable:
    """Make a function that returns both ``fun``'s value and its gradient.

    Arguments:
        fun: a function returning a real scalar (a float or an array with one element), or,
            with ``has_aux``, a pair ``(scalar, auxiliary data)``.
        argnum: the position of the argument to differentiate with respect to, or a tuple of
            positions.
        has_aux: whether ``fun`` returns auxiliary data alongside the scalar.

    Returns:
        A function with ``fun``'s signature returning ``(value, gradient)``, or
        ``((value, aux), gradient)`` with ``has_aux``. The gradient has the structure of the
        argument (a tuple of them for a tuple ``argnum``).
    """
    return _value_and_grad(fun, argnum, has_aux, "value_and_grad")


def _value_and_grad(fun: Callable, argnum: ArgNum, has_aux: bool, api: str) -> Callable:
    """value_and_grad, with errors naming ``api`` (grad, holomorphic_grad ...)."""
    holomorphic = api == "holomorphic_grad"

    @functools.wraps(fun)
    def value_and_gradient(*args: Any, **kwargs: Any) -> Any:
        rec = _Recording(api, fun, args, kwargs, argnum, has_aux)
        if holomorphic:
            for k, (_, boxes) in zip(_argnums(argnum), rec.inputs):
                if not all(np.iscomplexobj(b.value) for b in boxes):
                    raise TypeError(f"{api}: argument {k} is real; a holomorphic derivative is taken at "
                                    "complex points. Pass it as complex (x + 0j), or use wengert.grad.")
        value = rec._plain(rec.out)
        g = rec.backward([rec.out], [_seed(rec.out, api, holomorphic)], free=True)
        return ((value, rec.aux) if has_aux else value), g
    return value_and_gradient


def _argnums(argnum: ArgNum, api: str = "grad") -> tuple:
    if isinstance(argnum, (int, np.integer)) and not isinstance(argnum, bool):
        return (int(argnum),)
    if isinstance(argnum, (tuple, list)) and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool)
                                                 for k in argnum):
        return tuple(int(k) for k in argnum)
    raise TypeError(f"{api}: argnum must be an int or a tuple of ints (the positions of the arguments to "
                    f"differentiate with respect to); got {argnum!r}.")


def grad(fun: Callable, argnum: ArgNum = 0, has_aux: bool = False) -> Callable:
    """Make a function that returns the gradient of ``fun``.

    Arguments:
        fun: a function returning a real scalar (a float or an array with one element), or,
            with ``has_aux``, a pair ``(scalar, auxiliary data)``.
        argnum: the position of the argument to differentiate with respect to, or a tuple of
            positions.
        has_aux: whether ``fun`` returns auxiliary data alongside the scalar.

    Returns:
        A function with ``fun``'s signature returning the gradient (``(gradient, aux)`` with
        ``has_aux``). The gradient has the structure, shape and dtype of the argument; a tuple
        of them for a tuple ``argnum``. An output that does not depend on the argument gives
        zeros.

    Example:
        >>> import wengert, wengert.numpy as np
        >>> wengert.grad(lambda x: np.sin(x) * x)(0.0)
        0.0
    """
    return _gradient_only(_value_and_grad(fun, argnum, has_aux, "grad"), fun, has_aux)


def holomorphic_grad(fun: Callable, argnum: ArgNum = 0, has_aux: bool = False) -> Callable:
    """Make a function that returns the complex derivative ``f'(z)`` of a holomorphic ``fun``.

    Arguments:
        fun: a holomorphic function of complex arguments returning a complex scalar (or, with
            ``has_aux``, a pair ``(scalar, auxiliary data)``).
        argnum: the position of the argument to differentiate with respect to, or a tuple of
            positions.
        has_aux: whether ``fun`` returns auxiliary data alongside the scalar.

    Returns:
        A function with ``fun``'s signature returning ``f'(z)`` (the vector-Jacobian product
        with cotangent 1, which under wengert's convention is the complex derivative itself),
        with the structure of the argument. For an ``fun`` that is not holomorphic the result
        is not a derivative of anything: use :func:`grad` on a real-valued function instead.

    Example:
        >>> import wengert, wengert.numpy as np
        >>> complex(wengert.holomorphic_grad(lambda z: z ** 3)(1j))
        (-3+0j)
    """
    return _gradient_only(_value_and_grad(fun, argnum, has_aux, "holomorphic_grad"), fun, has_aux)


def _gradient_only(value_and_gradient: Callable, fun: Callable, has_aux: bool) -> Callable:
    @functools.wraps(fun)
    def gradient(*args: Any, **kwargs: Any) -> Any:
        value, g = value_and_gradient(*args, **kwargs)
        return (g, value[1]) if has_aux else g
    return gradient


def elementwise_grad(fun: Callable, argnum: ArgNum = 0, has_aux: bool = False) -> Callable:
    """Make a function that returns the sum of the gradients of every output element.

    For a function applied elementwise (``y[i]`` depends only on ``x[i]``) this is the
    derivative of each element. It is the vector-Jacobian product with a cotangent of ones.

    Arguments:
        fun: a function returning an array (or a nested structure of arrays).
        argnum: the position(s) of the argument(s) to differentiate with respect to.
        has_aux: whether ``fun`` returns ``(output, auxiliary data)``.

    Returns:
        A function with ``fun``'s signature returning the gradient (and the aux data with
        ``has_aux``), shaped like the argument.
    """
    @functools.wraps(fun)
    def gradient(*args: Any, **kwargs: Any) -> Any:
        rec = _Recording("elementwise_grad", fun, args, kwargs, argnum, has_aux)
        outs, _ = _outputs("elementwise_grad", rec.out)
        ones = [np.ones_like(strip(o), dtype=_cotangent_dtype(o)) for o in outs]
        g = rec.backward(outs, ones, free=True)
        return (g, rec.aux) if has_aux else g
    return gradient


def _cotangent_dtype(o: Any) -> Any:
    dtype = np.result_type(strip(o))
    return dtype if dtype.kind in "fc" else float


def _make_vjp_function(rec: _Recording, api: str) -> Callable:
    outs, structure = _outputs(api, rec.out)

    def vjp_function(cotangent: Any) -> Any:
        cts, ct_structure = flatten(cotangent)
        if not same_structure(ct_structure, structure):
            raise ValueError(f"{api}: the cotangent must have the structure of the output "
                             f"({_layout(rec.out, len(outs))}); got {_layout(cotangent, len(cts))}.")
        cts = [float(c) if type(c) is int else c for c in cts]  # as grad promotes a Python int
        for n, (o, c) in enumerate(zip(outs, cts)):
            if (why := refusal(strip(c))) is not None:
                raise TypeError(f"{api}: the cotangent of output {n} is {why}")
            if c is not None and np.result_type(strip(c)).kind not in "fc":
                raise TypeError(f"{api}: the cotangent of output {n} has dtype {np.result_type(strip(c))}; "
                                "cotangents are floating point or complex (c.astype(float)).")
            if c is not None and np.shape(strip(c)) != np.shape(strip(o)):
                raise ValueError(f"{api}: the cotangent of output {n} has shape "
                                 f"{np.shape(strip(c))}, but the output has shape {np.shape(strip(o))}.")
            if c is not None and np.iscomplexobj(strip(c)) and not np.iscomplexobj(strip(o)):
                raise ValueError(f"{api}: the cotangent of output {n} is complex, but the output is real; its "
                                 "imaginary part would be dropped. Give a real cotangent (np.real(c)).")
        return rec.backward(outs, cts, free=False)
    return vjp_function


class _Slot:
    """Where an array sits, in :func:`_layout`'s picture of a structure."""

    def __repr__(self) -> str:
        return "*"


def _layout(tree: Any, n: int) -> str:
    """How a cotangent or an output is laid out, for an error: "one array", or "2 array(s)
    laid out as ({'a': *, 'b': *},)"."""
    if type(tree) is Box or not isinstance(tree, (list, tuple, dict)):
        return "one array"
    return f"{n} array(s) laid out as {tree_map(lambda _: _Slot(), tree)!r}"


def vjp(fun: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """Evaluate ``fun(*primals)`` and return a function that pulls cotangents back.

    Arguments:
        fun: the function to differentiate.
        *primals: the arguments to evaluate at; all are differentiated with respect to.
        has_aux: whether ``fun`` returns ``(output, auxiliary data)``.

    Returns:
        ``(output, vjp_function)`` (``(output, vjp_function, aux)`` with ``has_aux``).
        ``vjp_function(cotangent)``, with a cotangent shaped like the output, returns a tuple
        with one cotangent per primal: the vector-Jacobian product. It can be called many
        times; the recording it needs lives as long as it does.
    """
    rec = _Recording("vjp", fun, primals, {}, tuple(range(len(primals))), has_aux, kept=True)
    pullback = _make_vjp_function(rec, "vjp")
    out = rec._plain(rec.out)
    return (out, pullback, rec.aux) if has_aux else (out, pullback)


def make_vjp(fun: Callable, argnum: ArgNum = 0) -> Callable:
    """Make a function returning ``(vjp_function, value)`` for ``fun`` at given arguments.

    Arguments:
        fun: the function to differentiate.
        argnum: the position(s) of the argument(s) to differentiate with respect to.

    Returns:
        A function with ``fun``'s signature returning ``(vjp_function, value)``, where
        ``vjp_function(cotangent)`` returns the cotangent of the argument (a tuple of them for
        a tuple ``argnum``).
    """
    @functools.wraps(fun)
    def make(*args: Any, **kwargs: Any) -> tuple:
        rec = _Recording("make_vjp", fun, args, kwargs, argnum, False, kept=True)
        return _make_vjp_function(rec, "make_vjp"), rec._plain(rec.out)
    return make
