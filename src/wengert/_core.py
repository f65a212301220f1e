"""The engine: traced values, the Wengert list they are recorded on, and the reverse sweep.

Nothing here knows about NumPy or about any particular derivative. Recording only writes
down what ran; the sweep only reads the rules a :class:`Primitive` carries.

A traced value is a :class:`Box`, and a box is also its own entry in the Wengert list: it
holds the value, the :class:`Primitive` that produced it, that primitive's arguments (with
this trace's boxes replaced by their values), and its ``parents``: one ``(argnum, box)``
pair per traced argument, saying that positional argument ``argnum`` came from ``box``.
Inputs are boxes with no primitive. The list of a trace holds its boxes in evaluation order, so it is already
topologically sorted and the sweep is one backward loop, with no recursion and no graph
search; cotangents accumulate in each box's ``adj`` slot. (One object per operation instead
of a record plus a box: this is the hottest code in the library.)

Traces nest: a value traced by an outer ``grad`` can be traced again by an inner one, and
the box of the inner trace then holds the box of the outer trace as its value. Each trace
has an id drawn from a counter, so an inner trace always has the larger id; an operation
records on the newest trace among its arguments and computes its value one level down,
which may record again on an older trace. That is what keeps ``grad(grad(f))`` free of
perturbation confusion.
"""

from __future__ import annotations

import dis
import functools
import importlib
import inspect
import itertools
import os
import sys
import threading
import types
from typing import Any, Callable


def compiled(name: str) -> Any:
    """The compiled module ``name``, or None where it was not built or the environment variable
    WENGERT_PURE_PYTHON=1 asks for the Python code that each compiled function mirrors."""
    if os.environ.get("WENGERT_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# The compiled hot paths (_speedups.c); this module's Python versions are the reference.
_speedups = compiled("wengert._speedups")

__all__ = [
    "Box",
    "ForwardTrace",
    "Joint",
    "MutationError",
    "Pending",
    "Primitive",
    "Released",
    "Trace",
    "apply",
    "binary",
    "check_kept",
    "finished",
    "forward_sweep",
    "held",
    "input_box",
    "keep",
    "negated",
    "no_grad",
    "rebind",
    "record",
    "recording",
    "release",
    "releasing",
    "rule_running",
    "same",
    "strip",
    "sweep",
    "tangent",
    "times_ans",
    "times_first",
    "times_second",
    "traced_keyword",
    "unary",
    "watch",
]

NO_KWARGS: dict = {}  # shared by every record made without keyword arguments; never mutated


class Primitive:
    """An elementary operation the tape records, with its derivative rules.

    ``vjps[k]`` is the rule for positional argument ``k``: ``rule(g, ans, *args, **kwargs)``
    returns the cotangent of that argument given the cotangent ``g`` of the output (or
    ``vjps`` is a :class:`Joint`, giving the cotangents of all the traced arguments at once). It is
    written with wengert's own wrapped functions, so that running it on traced values records
    it too; that is what makes higher derivatives work. ``fit(cotangent, arg)`` is applied by
    the sweep to every cotangent a rule returns (undoing broadcasting, matching dtype); it
    lives in one place instead of in every rule.

    ``jvps[k]``, for forward mode, is ``rule(t, ans, *args, **kwargs)``: the contribution of
    the tangent ``t`` of argument ``k`` to the output's tangent (or ``jvps`` is a
    :class:`Joint`). Tangents may carry leading batch dimensions; ``lift(t, arg, ans, nbatch)``,
    for broadcasting primitives, makes a batched tangent broadcast like its argument.
    """

    __slots__ = ("fun", "name", "vjps", "jvps", "fit", "lift", "scalar", "__weakref__")

    def __init__(self, fun: Callable, name: str, vjps: Any = (), fit: Callable | None = None,
                 scalar: "Primitive | None" = None, jvps: Any = None, lift: Callable | None = None):
        self.fun = fun
        self.name = name
        self.vjps = vjps
        self.jvps = jvps
        self.fit = fit
        self.lift = lift
        self.scalar = scalar  # see binary()

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


class Joint:
    """The rules of a primitive given as one function of all its arguments, for functions of
    many arrays (concatenate) or whose cotangents come out of one computation (a checkpointed
    segment, a custom rule), where a rule per argument would repeat work or copy every argument
    once per argument.

    As ``jvps``: ``rule(tangents, ans, *args, **kwargs)`` is the output's tangent,
    ``tangents[k]`` being argument ``k``'s tangent or ``None``. As ``vjps``: ``rule(argnums, g,
    ans, *args, **kwargs)`` returns the cotangents of the arguments at the positions
    ``argnums`` (those traced), in that order; every position has a derivative."""

    __slots__ = ("rule",)

    def __init__(self, rule: Callable):
        self.rule = rule


class Pending:
    """A cotangent held in a form cheaper than the array it stands for, while the sweep is
    still summing the contributions to it. (The rule of indexing returns one: the cotangent
    of ``x[i]`` is zero but at ``i``, and adding it into a sum the sweep owns costs the size of
    ``x[i]``, not of ``x``.) The sweep adds a pending contribution with ``c.added_to(total)``,
    a contribution to a pending total with ``total + c``, and reads a pending cotangent with
    ``dense()`` before handing it to the rules."""

    __slots__ = ()
    __array_ufunc__ = None  # NumPy refuses to mix it into arrays instead of making object arrays

    def dense(self) -> Any:
        raise NotImplementedError

    def added_to(self, total: Any) -> Any:
        raise NotImplementedError


class Trace:
    """One level of recording: an id (newer traces have larger ids) and its Wengert list.

    ``append`` is the list's bound method, looked up once instead of at every operation."""

    __slots__ = ("id", "nodes", "append", "moved", "kept", "reach")

    def __init__(self) -> None:
        self.id = next(_trace_ids)
        self.nodes: list = []
        self.append = self.nodes.append
        self.moved: dict | None = None  # see rebind
        self.kept: dict | None = None  # see watch
        self.reach: tuple = ()  # (function, args, argnums, kwargs) of the call recorded: see _assign._reachable

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # A traced array's .trace is this object, which hides ndarray.trace().
        raise TypeError("x.trace() is not available on a traced array (its .trace is wengert's "
                        "recording); use np.trace(x) for the sum of the diagonal.")

    def entry(self, box: "Box") -> "Box":
        """The entry that holds the gradient of the input ``box``: ``box`` itself, unless an
        in-place operation rebound it (see :func:`rebind`)."""
        return self.moved.get(id(box), box) if self.moved else box

    def close(self) -> list:
        """Stop recording; return the Wengert list. Boxes of a closed trace that escape and
        are used again raise :class:`EscapedTracerError` instead of recording on a dead tape.
        (This also breaks the cycle box -> trace -> list -> box.)"""
        nodes, self.nodes, self.append = self.nodes, [], _escaped
        return nodes


class ForwardTrace(Trace):
    """A trace in forward mode: instead of keeping its entries for a sweep, it pushes tangents
    forward as operations run. A box's ``adj`` slot holds its tangent (``None``: zero), and a
    recorded entry keeps only its value. ``batch`` is the shape of the leading dimensions that
    tangents carry (several directions at once); ``settle(t, ans, batch)`` gives a summed
    tangent the output's shape and dtype, as ``fit`` does for cotangents."""

    __slots__ = ("batch", "settle")

    def __init__(self, batch: tuple, settle: Callable):
        super().__init__()
        self.batch = batch
        self.settle = settle
        self.append = self.push

    def push(self, box: "Box") -> None:
        if box.prim is not None and box.parents:
            box.adj = tangent(box, self.batch, self.settle)
            value = strip(box.value)  # the array itself, also where an outer trace boxes it
            if getattr(value, "base", None) is None and all(strip(p.value) is not value for _, p in box.parents):
                box.args = box.parents = ()  # nothing will be swept
            else:  # a view (or its argument itself): listed, so that assignment can write through it or refresh it
                self.nodes.append(box)


def tangent(box: "Box", batch: tuple, settle: Callable) -> Any:
    """The tangent of an entry, from the tangents (``adj``) of the entries it came from."""
    prim, ans, args, kwargs = box.prim, box.value, box.args, box.kwargs
    jvps = prim.jvps
    try:
        if type(jvps) is Joint:
            tangents = [None] * len(args)
            for k, p in box.parents:
                tangents[k] = p.adj
            t = jvps.rule(tangents, ans, *args, **kwargs) if any(x is not None for x in tangents) else None
        else:
            t = None
            lift = prim.lift if batch else None
            for k, p in box.parents:
                tk = p.adj
                if tk is None or jvps[k] is None:  # a zero tangent, or no derivative in this argument
                    continue
                if lift is not None:
                    tk = lift(tk, p.value, ans, len(batch))
                try:
                    c = jvps[k](tk, ans, *args, **kwargs) if kwargs else jvps[k](tk, ans, *args)
                except ZeroDivisionError:
                    c = _ieee(jvps[k], tk, ans, args, kwargs)
                t = c if t is None else t + c
    except Exception as e:
        if hasattr(e, "add_note"):
            e.add_note(f"(raised by the JVP rule of '{prim.name}' in forward mode)")
        raise
    return t if t is None or isinstance(t, Pending) else settle(t, ans, batch)  # (a Pending: parts of several outputs')


def forward_sweep(nodes: list, batch: tuple, settle: Callable) -> None:
    """Push the tangents set in the inputs' ``adj`` slots forward through a recorded Wengert
    list (``linearize``: the values are already there, only tangents are computed). The
    caller reads the outputs' tangents and clears every ``adj``."""
    for node in nodes:
        if node.prim is not None and node.parents:
            node.adj = tangent(node, batch, settle)


_trace_ids = itertools.count(1)


class EscapedTracerError(RuntimeError):
    """A traced value outlived the gradient computation that created it."""


def finished(trace: Trace) -> bool:
    """Whether ``trace`` was closed: its computation is over and its boxes are left-overs."""
    return trace.append is _escaped


def _escaped(box: "Box") -> None:
    raise EscapedTracerError(
        f"{box.prim.name}: an argument is a traced value left over from a gradient computation "
        "that has already finished (kept in a global, a closure or a list). Use its plain value "
        "instead: wengert.stop_gradient(x), or return it as an output of the function.")


class Box:
    """A value being traced, and its entry in the Wengert list (see the module docstring).

    The NumPy layer gives boxes the operators, attributes and methods of an ndarray.
    """

    __slots__ = ("value", "trace", "prim", "args", "kwargs", "parents", "adj")

    def __init__(self, value: Any, trace: Trace, prim: "Primitive | None", args: tuple,
                 kwargs: dict, parents: tuple):
        self.value = value
        self.trace = trace
        self.prim = prim
        self.args = args
        self.kwargs = kwargs
        self.parents = parents
        self.adj = None


_new = object.__new__


if _speedups is not None:
    # The same seven fields in C, and not tracked by the cycle collector (boxes form a DAG;
    # Trace.close breaks the one cycle), so that full collections never walk the tape.
    _speedups.Box.__doc__ = Box.__doc__
    Box = _speedups.Box  # type: ignore[misc]  # noqa: F811


def input_box(value: Any, trace: Trace) -> Box:
    """Start tracing ``value`` as an input of ``trace``."""
    box = Box(value, trace, None, (), NO_KWARGS, ())
    trace.append(box)
    return box


def strip(x: Any) -> Any:
    """The plain value under any number of boxes."""
    while type(x) is Box:
        x = x.value
    return x


# ----------------------------------------------------------------------------- no_grad
# The hot path reads one module global (`_pausing`, the number of open no_grad blocks in
# all threads); only when it is non-zero does it look at the thread's own state.
_pausing = 0
_local = threading.local()
_lock = threading.Lock()


def _paused(trace: Trace) -> bool:
    return trace.id < getattr(_local, "below", 0)


def recording(trace: Trace) -> bool:
    """Whether operations on boxes of ``trace`` are recorded now (no no_grad block pauses it)."""
    return not (_pausing and _paused(trace))


def unpaused(fun: Callable, *args: Any) -> Any:
    """``fun(*args)`` with recording resumed in this thread, inside no_grad blocks too."""
    saved = getattr(_local, "below", 0)
    _local.below = 0
    try:
        return fun(*args)
    finally:
        _local.below = saved


class Block:
    """A context manager that also decorates, with or without parentheses: ``@block()`` and
    ``@block`` both run each call of the function inside a block of its own."""

    def __new__(cls, fun: Callable | None = None) -> Any:
        if fun is None:
            return super().__new__(cls)
        if not callable(fun):
            raise TypeError(f"wengert.{cls.__name__}() takes no arguments (got an object of type "
                            f"{type(fun).__name__}); use it as `with wengert.{cls.__name__}():` or as a decorator.")
        return in_block(cls, fun)

    def __call__(self, fun: Callable) -> Callable:
        """As a decorator: each call of ``fun`` runs in a block of its own."""
        return in_block(type(self), fun)


class no_grad(Block):
    """Context manager: operations inside it are not recorded on the traces already running.

    Values computed inside come out as plain arrays, cut off from the gradient. A gradient
    computation started inside the block records as usual. Thread-safe: it affects only the
    thread that enters it.
    """

    def __enter__(self) -> "no_grad":
        global _pausing
        # The state to restore goes on the thread's own stack, not on this object: one
        # instance may be entered again inside its own block, or from several threads.
        _local.__dict__.setdefault("saved", []).append(getattr(_local, "below", 0))
        _local.below = next(_trace_ids)  # every trace started before this point is paused
        with _lock:
            _pausing += 1
            if _speedups:
                _speedups.set_pausing(_pausing)
        return self

    def __exit__(self, *exc: object) -> None:
        global _pausing
        _local.below = _local.saved.pop()
        with _lock:
            _pausing -= 1
            if _speedups:
                _speedups.set_pausing(_pausing)


def in_block(block: type, fun: Callable) -> Callable:
    """``fun``, each call of it run inside a new ``block()`` (a context manager). The body of
    a generator function runs in a block each time it is resumed (not across its yields, where
    the caller's code runs); an async function is refused, its body running when awaited."""
    if inspect.iscoroutinefunction(fun) or inspect.isasyncgenfunction(fun):
        raise TypeError(f"wengert.{block.__name__}() cannot decorate the async function "
                        f"{getattr(fun, '__qualname__', fun)!r}: its body runs when it is awaited, after "
                        f"the call has returned and the block has closed. Open the block inside it "
                        f"instead: with wengert.{block.__name__}(): ...")
    if inspect.isgeneratorfunction(fun):
        @functools.wraps(fun)
        def resumed(*args: Any, **kwargs: Any) -> Any:
            inner = fun(*args, **kwargs)
            try:
                with block():
                    out = next(inner)
                while True:
                    try:
                        sent = yield out
                    except GeneratorExit:
                        with block():
                            inner.close()
                        raise
                    except BaseException as e:
                        with block():
                            out = inner.throw(e)
                    else:
                        with block():
                            out = inner.send(sent)
            except StopIteration as stop:
                return stop.value
        return resumed

    @functools.wraps(fun)
    def call(*args: Any, **kwargs: Any) -> Any:
        with block():
            return fun(*args, **kwargs)
    return call


# ----------------------------------------------------------------------------- mutation
# A constant array saved on the list (an argument that is not traced) could be changed in
# place before the sweep reads it, which would make the gradient silently wrong. The NumPy
# layer names the type of such constants and a fingerprint of their contents (watch); each
# is fingerprinted once per trace when first saved, and checked before every sweep. The layer
# may also refuse constants whose operators its rules do not follow (NumPy's matrix).
_watched: type | tuple = ()
_fingerprint: Callable = lambda value: None
_refusal: Callable = lambda value: None


class MutationError(RuntimeError):
    """An array saved on the tape was changed in place before the backward sweep."""


def watch(kind: type | tuple, fingerprint: Callable, refusal: Callable = lambda value: None) -> None:
    """Watch constants of type ``kind`` (a type or a tuple of types); ``fingerprint(value)``
    returns something that compares equal for unchanged contents (``None``: nothing to watch);
    ``refusal(value)`` says why a constant cannot meet a traced value (``None``: it can)."""
    global _watched, _fingerprint, _refusal
    _watched, _fingerprint, _refusal = kind, fingerprint, refusal
    if _speedups is not None:
        _speedups.watch(kind)


def keep(trace: Trace, value: Any, saver: str, name: str, k: int | str = 0) -> None:
    """Fingerprint ``value``, saved on ``trace``; ``saver.format(name=name, k=k)`` describes who
    saved it in the error (formatted only then: this runs for every constant recorded)."""
    if type(trace) is not Trace:  # a forward trace sweeps nothing later
        return
    kept = trace.kept
    if kept is None:
        kept = trace.kept = {}
    if id(value) not in kept:
        f = _fingerprint(value)
        if f is not None:
            kept[id(value)] = (value, f, saver, name, k)


def _keep_constants(trace: Trace, prim: "Primitive", args: tuple | list, kwargs: dict) -> None:
    read = None  # whether a rule may read the constants (x + c's and x - c's read none)
    for k, a in enumerate(args):
        if isinstance(a, _watched):
            why = _refusal(a)
            if why is not None:
                raise TypeError(f"{prim.name}: argument {k} is {why}")
            if read is None:
                read = any(_rule(prim, j) not in (same, negated) for j, b in enumerate(args) if type(b) is Box)
            if read:
                keep(trace, a, "argument {k} of '{name}'", prim.name, k)
        elif type(a) is tuple:  # an index, or a list of arrays as the tape keeps it
            for part in a:
                if isinstance(part, _watched):
                    keep(trace, part, "an array in a tuple or list given to '{name}'", prim.name)
    for key, a in kwargs.items():  # where= masks ...
        if isinstance(a, _watched):
            keep(trace, a, "keyword argument {k!r} of '{name}'", prim.name, key)


def _keep_viewed(trace: Trace, prim: "Primitive", args: tuple | list) -> None:
    """A plain view made inside no_grad of a recorded value (``y[1:]`` of a traced ``y``):
    writing into it would change that value behind the tape's back, so the values are watched."""
    for a in args:
        if type(a) is Box and a.trace is trace and isinstance(a.value, _watched):
            keep(trace, a.value, "a traced array viewed inside no_grad by '{name}'", prim.name)


def check_kept(trace: Trace) -> None:
    """Raise :class:`MutationError` if a constant saved on ``trace`` has changed since."""
    for value, f, saver, name, k in (trace.kept or {}).values():
        if _fingerprint(value) != f:
            raise MutationError(
                f"{saver.format(name=name, k=k)}, an array of shape {getattr(value, 'shape', '?')} saved "
                "on the tape, was changed in place after it was recorded and before the backward sweep, "
                "so its gradient would be wrong. Pass a copy (x.copy()) to the operation, or change the "
                "array only after the gradient is computed.")


# ----------------------------------------------------------------------------- recording
def apply(prim: Primitive, args: tuple | list, kwargs: dict) -> Any:
    """Call ``prim`` on ``args``, recording it on the newest trace among them."""
    top = None
    for a in args:
        if type(a) is Box and (top is None or a.trace.id > top.id):
            top = a.trace
    if kwargs and any(type(a) is Box for a in kwargs.values()):
        return apply(prim, *_bound(prim, args, kwargs))
    if top is None:
        return prim.fun(*args, **kwargs)
    if _pausing and _paused(top):
        out = prim.fun(*[strip(a) for a in args], **kwargs)
        if isinstance(out, _watched) and getattr(out, "base", None) is not None:
            _keep_viewed(top, prim, args)
        return out
    if _watched:
        _keep_constants(top, prim, args, kwargs)
    vals = list(args)
    parents = []
    deeper = False
    for k, a in enumerate(args):
        if type(a) is Box:
            if a.trace is top:
                vals[k] = v = a.value
                if _rule(prim, k) is not None:  # None: this argument has no gradient
                    parents.append((k, a))
                deeper = deeper or type(v) is Box
            else:
                deeper = True
    ans = apply(prim, vals, kwargs) if deeper else prim.fun(*vals, **kwargs)
    return record(top, prim, tuple(vals), kwargs, ans, tuple(parents))


def traced_keyword(name: str, key: str, derivative: bool = True) -> TypeError:
    """The error for a traced value passed to ``name`` as the keyword argument ``key``, which
    it takes with a derivative positionally (``derivative``) or not at all."""
    if not derivative:
        return TypeError(f"{name}: keyword argument {key!r} is a traced value, and wengert has no derivative with "
                         "respect to it. Pass a plain value (wengert.stop_gradient(v)), or compute the same with "
                         "operations that have one (for example, max(x, initial=c) is np.maximum(np.max(x), c)).")
    return TypeError(f"{name}: keyword argument {key!r} is a traced value; pass it positionally "
                     "so that its gradient can be recorded.")


def _bound(prim: Primitive, args: tuple | list, kwargs: dict) -> tuple[tuple, dict]:
    """``args`` and ``kwargs`` with each traced keyword argument moved to the position where
    ``prim`` also takes it with a derivative (np.clip(x, a_min=lo, a_max=hi)), the positions
    before it filled with what was given or their defaults; an error where there is none."""
    try:
        params = list(inspect.signature(prim.fun).parameters.values())
    except (TypeError, ValueError):  # a ufunc: its keywords (where=, dtype= ...) have no derivative
        params = []
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    position = {p.name: k for k, p in enumerate(positional) if p.kind is p.POSITIONAL_OR_KEYWORD}
    args, kwargs = list(args), dict(kwargs)
    for key in [key for key, a in kwargs.items() if type(a) is Box]:
        if key not in kwargs:  # already moved, filling an earlier position
            continue
        k = position.get(key)
        try:
            rule = None if k is None else _rule(prim, k)
        except TypeError:  # no rule at that position
            rule = None
        if rule is None:
            raise traced_keyword(prim.name, key, derivative=False)
        for p in positional[len(args):k + 1]:
            if p.name not in kwargs and p.default is p.empty:  # a required argument is missing
                prim.fun(*[strip(a) for a in args], **{n: strip(a) for n, a in kwargs.items()})  # its error
            args.append(kwargs.pop(p.name) if p.name in kwargs else p.default)
    for p in positional[len(args):]:  # the rules take the arguments after it by position too
        if p.name not in kwargs:
            break
        args.append(kwargs.pop(p.name))
    return tuple(args), kwargs


def record(trace: Trace, prim: Primitive, args: tuple, kwargs: dict, ans: Any, parents: tuple) -> Box:
    """Append one entry to the Wengert list of ``trace``; return it (the traced result)."""
    box = Box(ans, trace, prim, args, kwargs, parents)
    trace.append(box)
    return box


def rebind(box: Box, new: Any) -> tuple[Box, list]:
    """Make ``box`` stand for ``new`` from now on: how NumPy's in-place operations
    (``x[i] = v``, ``x += y``) act on a traced array while the list stays a record of values.

    ``new`` is the entry just recorded for the operation (the last one of the list), or a
    plain value when recording is paused. A copy of the box's current entry takes the box's
    place in the list, and every later entry that used the box now uses that copy; then the
    box becomes the new entry. Returns that copy and the later entries that used the box
    (which a caller that knows about views refreshes)."""
    trace = box.trace
    if type(new) is not Box or new.trace is not trace:
        if type(new) is Box and new.trace.id > trace.id:
            raise TypeError("In-place assignment: the value assigned is traced by a gradient "
                            "computation nested inside the one the array belongs to (the array was made "
                            "from values of the outer computation, or before the inner one began), so the "
                            "array would hold a value of a computation that ends before it. Build a new "
                            "array instead (y = y.at[i].set(v), or y = np.concatenate(...)).")
        new = Box(new, trace, _CONSTANT, (), NO_KWARGS, ())  # recording paused: no gradient flows
        trace.append(new)
    nodes = trace.nodes
    forward = isinstance(trace, ForwardTrace)  # it lists only views (see ForwardTrace.push)
    last = bool(nodes) and nodes[-1] is new
    i, users = _uses(nodes, box, len(nodes) - last)
    if not forward and (i < 0 or not last):
        raise RuntimeError("In-place assignment: the traced array is not on its trace's list.")
    old = Box(box.value, trace, box.prim, box.args, box.kwargs, box.parents)
    old.adj = box.adj
    if i >= 0:
        nodes[i] = old
    for n in users + [new]:
        n.parents = tuple((k, old if p is box else p) for k, p in n.parents)
    if last:
        nodes[-1] = box
    if box.prim is None:  # an input: its gradient is now collected by the copy
        trace.moved = trace.moved or {}
        trace.moved[id(box)] = old
    box.value, box.prim, box.args, box.kwargs, box.parents, box.adj = (
        new.value, new.prim, new.args, new.kwargs, new.parents, new.adj)
    return old, users


def _uses(nodes: list, box: Box, stop: int) -> tuple[int, list]:
    """Where ``box`` last stands in ``nodes[:stop]`` (-1: nowhere), and the entries after it
    there that use it (compiled in _speedups: rebind runs it for every in-place write)."""
    i = stop - 1
    while i >= 0 and nodes[i] is not box:
        i -= 1
    return i, [n for n in nodes[i + 1:stop] if any(p is box for _, p in n.parents)]


# A value given to a traced array while recording was paused: it carries no gradient.
_CONSTANT = Primitive(lambda x: x, "constant")


def _rule(prim: Primitive, k: int) -> Callable | None:
    vjps = prim.vjps
    if type(vjps) is Joint:
        return vjps.rule
    try:
        return vjps[k]
    except IndexError:
        raise TypeError(f"{prim.name}: positional argument {k} is a traced value, but there is no "
                        "derivative with respect to it. Pass a plain value there (for instance "
                        "wengert.stop_gradient(x)).") from None


def unary(prim: Primitive, fun: Callable, fallback: Callable | None) -> Callable:
    """The recording wrapper of a one-argument primitive, with the fast path inlined.

    ``fun(x)`` computes the value (it may be a quicker equivalent of ``prim.fun``: a Python
    operator keeps Python floats as floats). Calls with more arguments, or with a list or
    tuple (which may hold traced values), go to ``fallback``; nested traces and paused
    recording to :func:`apply`."""
    def call(x, *args, **kwargs):
        if args or kwargs:
            return fallback(x, *args, **kwargs)
        if type(x) is not Box:
            return fallback(x) if (type(x) is list or type(x) is tuple) and fallback else fun(x)
        v = x.value
        if type(v) is Box or _pausing:
            return apply(prim, (x,), NO_KWARGS)
        t = x.trace
        box = _new(Box)  # Box(...) without the cost of calling __init__
        box.value = fun(v)
        box.trace = t
        box.prim = prim
        box.args = (v,)
        box.kwargs = NO_KWARGS
        box.parents = ((0, x),)
        box.adj = None
        t.append(box)
        return box
    return call


def binary(prim: Primitive, fun: Callable, fallback: Callable | None) -> Callable:
    """The recording wrapper of a two-argument primitive, with the fast path inlined.

    When the untraced argument is a Python float or int, or both are traced Python floats,
    every traced argument already has the output's shape and dtype, so the entry is recorded
    with ``prim.scalar``, a twin whose cotangents skip ``fit``."""
    scalar = prim.scalar or prim

    def call(x, y, *args, **kwargs):
        if args or kwargs:
            return fallback(x, y, *args, **kwargs)
        if type(x) is Box:
            t = x.trace
            xv = x.value
            if type(y) is Box:
                yv = y.value
                if y.trace is not t or type(xv) is Box or type(yv) is Box or _pausing:
                    return apply(prim, (x, y), NO_KWARGS)
                both_floats = isinstance(xv, float) and isinstance(yv, float)
                p, parents = scalar if both_floats else prim, ((0, x), (1, y))
            else:
                if type(y) is list or type(y) is tuple:  # the fallback makes it an array, as the rules expect
                    return fallback(x, y)
                if type(xv) is Box or _pausing or isinstance(y, _watched):
                    return apply(prim, (x, y), NO_KWARGS)
                yv = y
                p, parents = scalar if type(y) is float or type(y) is int else prim, ((0, x),)
        elif type(y) is Box:
            yv = y.value
            if type(x) is list or type(x) is tuple:
                return fallback(x, y)
            if type(yv) is Box or _pausing or isinstance(x, _watched):
                return apply(prim, (x, y), NO_KWARGS)
            t, xv = y.trace, x
            p, parents = scalar if type(x) is float or type(x) is int else prim, ((1, y),)
        elif type(x) is list or type(x) is tuple or type(y) is list or type(y) is tuple:  # may hold traced values
            return fallback(x, y)
        else:
            return fun(x, y)
        box = _new(Box)  # Box(...) without the cost of calling __init__
        box.value = fun(xv, yv)
        box.trace = t
        box.prim = p
        box.args = (xv, yv)
        box.kwargs = NO_KWARGS
        box.parents = parents
        box.adj = None
        t.append(box)
        return box
    return call


# ----------------------------------------------------------------------------- rule helpers
# The commonest rules, named (after JAX's linear/bilinear helpers). They are ordinary rules;
# the compiled sweep recognises them and applies them without a Python call.
def same(g: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
    """The rule of an argument the output depends on with slope 1 (x + y, reshape, copy)."""
    return g


def negated(g: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
    """The rule of an argument with slope -1 (-x, the y of x - y)."""
    return -g


def times_second(g: Any, ans: Any, x: Any, y: Any, *args: Any, **kwargs: Any) -> Any:
    """The rule of the first factor of a product: g * y."""
    return g * y


def times_first(g: Any, ans: Any, x: Any, y: Any, *args: Any, **kwargs: Any) -> Any:
    """The rule of the second factor of a product: g * x."""
    return g * x


def times_ans(g: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
    """The rule of a function that is its own derivative (exp): g * ans."""
    return g * ans


# A rule of a Python-float program at a singular point (the rule of log at 0 divides by 0)
# raises ZeroDivisionError, where NumPy's floats give inf or nan as IEEE arithmetic does; the
# rule then runs again on those (the NumPy layer names the type).
ieee_float: Callable = float


def _ieee(rule: Callable, g: Any, ans: Any, args: tuple, kwargs: dict) -> Any:
    """``rule(g, ans, *args, **kwargs)`` with Python floats replaced by IEEE ones."""
    f = ieee_float
    g, ans, *args = [f(v) if type(v) is float else v for v in (g, ans, *args)]
    return rule(g, ans, *args, **kwargs)


# ----------------------------------------------------------------------------- releasing
# A value on the list is needed by the sweep only where a derivative rule reads it: x + y
# reads neither x nor y, x * 2.0 reads only the 2.0, exp(x) only its output (what a rule reads
# is found in its code: see _reads). A trace made with ``releasing`` lets go of a value that
# no rule reads once the program has let go of its entry too (only the list and the entries
# that used it refer to it: one, or several among the last _TAIL entries): the value is
# replaced by a Released stand-in with its shape and dtype, all the sweep reads of it, so that
# a loop such as ``y = y + 1.0`` holds a few arrays instead of one per step. So is a constant
# argument that no rule reads and only the entry holds. An entry is looked at when the
# entries two to four steps after it are recorded (its constants, one to three steps after),
# if they are arrays that could be released too (programs of small values pay nothing): by
# then a statement of up to three operations (``y = exp(a * y) - b``) has moved its name on;
# an entry the program still held then waits (see _release_waiting) until its references fall.
# The NumPy layer says which values may be released (plain arrays from a size on). A view is
# released too, unless a value made from it views the same memory (a write into that value, or
# holding it, leads through the view's entry).
_kind: type | None = None
_min_bytes = 0
_readers: tuple = ()  # the names of the functions rules call to read an argument's shape and dtype
_STEPS = 4
_WAITING = 8  # entries the program held when looked at, looked at again when it lets go
_TAIL = 64  # entries: how far back the users of a value used more than once are looked for


class Released:
    """What the list keeps of a value released early (see :func:`releasing`): its shape and
    dtype, which is all that the sweep reads of it (to fit the cotangents of its entry)."""

    __slots__ = ("shape", "dtype")
    __array_ufunc__ = None  # NumPy refuses to compute with it

    def __init__(self, value: Any):
        self.shape, self.dtype = value.shape, value.dtype

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("wengert read a value it had released from the tape as unread; this is a bug in "
                           "wengert, please report it with the program that raised it.")

    # Comparisons and truth would otherwise fall back to identity (x == 0 is False) and hide a misread.
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __array__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<released value of shape {self.shape} and dtype {self.dtype}>"


def release(kind: type, min_bytes: int, readers: tuple = ()) -> None:
    """Let traces made with :func:`releasing` release values of exactly type ``kind`` (with
    ``base``, ``nbytes``, ``shape`` and ``dtype``) of at least ``min_bytes`` bytes.
    ``readers``: the names of the global functions the rules call on an argument to read its
    shape and dtype only (they must take a :class:`Released` stand-in as well)."""
    global _kind, _min_bytes, _readers
    _kind, _min_bytes, _readers = kind, min_bytes, tuple(readers)
    _code_reads.cache_clear()
    if _speedups is not None:
        _speedups.release(kind, min_bytes, _drop, _drop_constant, _code_reads)


def releasing(nodes: list) -> Callable:
    """The ``append`` of a trace whose list is ``nodes`` and that releases the values no rule
    reads (compiled in _speedups, as every recording calls it)."""
    append = nodes.append
    waiting: list = []
    busy = threading.Lock()  # held while releasing: an entry recorded meanwhile (by the code that
    # runs, another thread) is only appended

    def add(box: Box) -> None:
        append(box)
        if type(box.value) is _kind and box.value.nbytes >= _min_bytes and busy.acquire(False):
            try:
                _release_before(box, _STEPS - 1, nodes, waiting)
                if waiting:
                    _release_waiting(nodes, waiting)
            finally:
                busy.release()
    return add


def _release_before(box: Box, steps: int, nodes: list, waiting: list) -> None:
    """Release what can be of the arguments of the entries ``box`` used, and so on ``steps`` deep."""
    for _, q in box.parents:
        _release_unread(q, nodes, waiting)
        if steps > 1:
            _release_before(q, steps - 1, nodes, waiting)


def _release_unread(q: Box, nodes: list, waiting: list) -> None:
    """Release the values of the arguments of ``q`` that nothing else refers to and no rule
    reads; note in ``waiting`` those that only the program still refers to."""
    for _, p in q.parents:
        if p.prim is not None and type(p.value) is _kind and _holds_enough(p.value):
            i, users = _users(q, p, nodes)
            if not users:
                continue
            edges = _edges(users, p)
            held = sys.getrefcount(p) - _IN_LOOP - edges
            if not held and _unread(p, users):
                _drop(p, users)
            elif held > 0 and i >= 0 and len(waiting) < _WAITING and _unread(p, users):
                if all(j != i for j, _ in waiting):
                    waiting.append([i, held + edges])
    if not _owns_value(q):  # a write into the array refreshes a view from its entry's arguments
        return
    reads = _rules_read(q)
    for k in range(len(q.args) if reads >= 0 else 0):  # the constants (h + c: c is read by no rule)
        if not reads & _argument(k) and type(q.args[k]) is _kind and q.args[k].nbytes >= _min_bytes:
            _drop_constant(q, k)


def _holds_enough(value: Any) -> bool:
    """Whether ``value``, or the array it views (a small slice keeps all of it), has at least
    the bytes to be worth releasing."""
    base = value.base
    return value.nbytes >= _min_bytes or type(base) is _kind and base.nbytes >= _min_bytes


def _users(q: Box, p: Box, nodes: list) -> tuple[int, list]:
    """Where ``p`` stands in ``nodes`` (-1: not looked for) and the entries that use it, ``q``
    among them, if ``q`` is the only one or ``p`` lies in the last _TAIL entries (``y - 0.1 *
    f(y)`` uses ``y`` twice); else none."""
    if sys.getrefcount(p) == _IN_USERS + _edges([q], p):
        return -1, [q]
    start = max(len(nodes) - _TAIL, 0)
    for i in range(len(nodes) - 1, start - 1, -1):
        if nodes[i] is p:
            return i, _users_after(p, nodes, i)
    return -1, []


def _users_after(p: Box, nodes: list, i: int) -> list:
    """The entries after ``nodes[i]`` that use ``p``."""
    return [u for u in nodes[i + 1:] if _edges([u], p)]


def _release_waiting(nodes: list, waiting: list) -> None:
    """Look again at the entries of ``waiting`` (``[index in nodes, references besides the
    list's]``) whose references have fallen since: the program let go of them after the
    entries that follow them were recorded (``y = f(y)`` holds the old ``y`` until the whole
    statement is done). They wait until released or _TAIL entries old."""
    for w in waiting[:]:
        p = nodes[w[0]]  # (or the copy an in-place write left there: the same entry)
        now = sys.getrefcount(p) - _IN_WAITING
        if now < w[1] and type(p.value) is _kind:
            users = _users_after(p, nodes, w[0])
            if now == _edges(users, p) and _unread(p, users):
                _drop(p, users)
                _release_unread(p, nodes, waiting)  # (the array a view held)
        w[1] = now
        if type(p.value) is not _kind or len(nodes) - w[0] >= _TAIL:
            waiting.remove(w)


def _edges(users: list, p: Box) -> int:
    """How many of the pairs of the ``parents`` of ``users`` name ``p``."""
    n = 0
    for u in users:
        for _, r in u.parents:
            n += r is p
    return n


def _unread(p: Box, users: list) -> bool:
    """Whether no rule reads the value of ``p``: not its own (as their output), nor those of
    its ``users`` at the positions of their arguments that hold it (where ``p`` is traced, and
    where an argument without a rule of its own is the same array: ``where(y, y, 0)``)."""
    own = _rules_read(p)
    if own < 0 or own & 1:
        return False
    for u in users:
        reads, arguments = _rules_read(u), 0
        for k, a in enumerate(u.args):
            if a is p.value:
                arguments |= _argument(k)
        if reads < 0 or reads & arguments:
            return False
    return True


def _argument(k: int) -> int:
    """The bit of argument ``k`` in what a rule reads (see :func:`_reads`)."""
    return 2 << k if k < 29 else 1 << 30


def _rules_read(box: Box) -> int:
    """What the rules of ``box`` at the argnums of its parents read together (see :func:`_reads`)."""
    reads = 0
    for k, _ in box.parents:
        reads |= _reads(box.prim, k)  # (-1, anything, stays -1)
    return reads


def _reads(prim: Primitive, k: int) -> int:
    """What the rule of argument ``k`` of ``prim``, ``rule(g, ans, *args, **kwargs)`` (or its
    joint rule, ``rule(argnums, g, ans, *args, **kwargs)``), reads of its entry, as bits: 1 its
    output, ``2 << j`` argument j (1 << 30: any after the 29th); -1 anything (a callable that
    is not a plain Python function: a bound method's parameters start with its object). A
    parameter whose name the function's code never loads is a value it cannot read."""
    joint = type(prim.vjps) is Joint
    rule = prim.vjps.rule if joint else _rule(prim, k)
    return _code_reads(rule.__code__, joint) if type(rule) is types.FunctionType else -1


@functools.lru_cache(maxsize=None)  # one entry per function definition, not per closure
def _code_reads(code: types.CodeType, joint: bool = False) -> int:
    """:func:`_reads` of a function with this code (``joint``: a joint rule's, whose parameters
    start with the argnums). A parameter only ever passed alone to one of the layer's readers
    (``len(_shape(y))``) counts as unread: the stand-in has its shape."""
    if set(code.co_names) & {"locals", "vars", "eval", "exec"}:
        return -1
    loaded = set(code.co_cellvars)  # (read by the functions defined inside)
    instructions = list(dis.get_instructions(code))
    for i, instruction in enumerate(instructions):
        if instruction.opname.startswith("LOAD_FAST") and not _shape_only(instructions, i):
            names = instruction.argval
            loaded.update(names if type(names) is tuple else (names,))
    params = code.co_varnames[joint:code.co_argcount]
    reads = 1 if len(params) > 1 and params[1] in loaded else 0
    for k, name in enumerate(params[2:]):
        if name in loaded:
            reads |= _argument(k)
    if code.co_flags & inspect.CO_VARARGS and code.co_varnames[code.co_argcount + code.co_kwonlyargcount] in loaded:
        for k in range(max(len(params) - 2, 0), 30):  # *args read: every argument after the named ones
            reads |= _argument(k)
    return reads


def _owns_value(q: Box) -> bool:
    """Whether the value of ``q`` is an array of its own: not a view, nor one of its arguments."""
    return (q.prim is not None and type(q.value) is _kind and q.value.base is None
            and not any(a is q.value for a in q.args))


def _drop_constant(q: Box, k: int) -> None:
    """Replace the argument ``k`` of ``q``, a constant no rule reads, by a :class:`Released`
    one, unless it is a view or something besides ``q`` refers to it."""
    if (type(q.args[k]) is _kind and q.args[k].base is None
            and sys.getrefcount(q.args[k]) == _VALUE_ALONE):  # (a traced value: its box too)
        q.args = q.args[:k] + (Released(q.args[k]),) + q.args[k + 1:]


def _shape_only(instructions: list, i: int) -> bool:
    """Whether the load ``instructions[i]`` is the one argument of a call of one of the readers."""
    before, after = instructions[i - 1] if i else None, instructions[i + 1] if i + 1 < len(instructions) else None
    return (before is not None and after is not None
            and before.opname == "LOAD_GLOBAL" and before.argval in _readers
            and after.opname in ("PRECALL", "CALL", "CALL_FUNCTION") and after.arg == 1)


def _drop(p: Box, users: list) -> None:
    """Replace the value of ``p`` by a :class:`Released` one, in ``p`` and in the arguments of
    its ``users``, unless something besides them refers to it, or it is a view that one of its
    users' values views too (a write into that array, or holding it, leads through ``p``)."""
    value = p.value
    if type(value) is not _kind:  # released already
        return
    if sys.getrefcount(value) - 1 != _VALUE_ALONE + _given(users, value):  # (less this function's name for it)
        return
    if value.base is not None:
        root = _root(value)
        for u in users:
            if type(u.value) is _kind and (u.value is root or u.value.base is not None and _root(u.value) is root):
                return
    released = Released(value)
    for u in users:
        u.args = tuple([released if a is value else a for a in u.args])
    p.value = released


def _given(users: list, value: Any) -> int:
    """How many arguments of ``users`` are ``value``."""
    n = 0
    for u in users:
        for a in u.args:
            n += a is value
    return n


def _root(value: Any) -> Any:
    """The object whose memory ``value`` views (``value`` itself if it owns its data)."""
    while getattr(value, "base", None) is not None:
        value = value.base
    return value


# ----------------------------------------------------------------------------- the sweep
def sweep(nodes: list, watch: Any = None, free: bool = False) -> None:
    """The reverse sweep: walk the Wengert list backward, turning the cotangents seeded in
    the outputs' ``adj`` slots into cotangents in the inputs' ``adj`` slots (the caller reads
    and clears those). Contributions from every use of a value are summed.

    With ``free`` (the caller drops the list afterwards), each entry lets go of what it saved
    as soon as the sweep has passed it (:func:`_release`): the cotangent arrays made later in
    the sweep then reuse memory that the forward pass's values held, instead of adding to it.

    ``watch.check(node, k, g, cotangent)``, if a watch is given (``detect_anomaly``), sees
    every cotangent a rule returns, and :func:`rule_running` tells the operations a rule runs
    whose rule they belong to; the Python loop then runs even where the compiled one exists."""
    try:
        if watch is None:
            _sweep(nodes, free)
        else:
            _sweep_python(nodes, free, watch)
    except BaseException:
        for node in nodes:  # leave no stale cotangents behind for the next sweep
            node.adj = None
        raise


def _sweep_python(nodes: list, free: bool, watch: Any = None) -> None:
    node = None
    outer = getattr(_local, "rule_of", None)
    try:
        for node in reversed(nodes):
            if watch is not None:
                _local.rule_of = (node, watch)
            _sweep_node(node, watch.check if watch is not None else None)
            if free:
                _release(node)
    except Exception as e:
        if node is not None and node.prim is not None and hasattr(e, "add_note"):
            e.add_note(f"(raised by the derivative rule of '{node.prim.name}' during the reverse sweep)")
        raise
    finally:
        _local.rule_of = outer


def rule_running() -> tuple | None:
    """``(node, watch)`` while a watched sweep in this thread runs the rules of ``node``."""
    return getattr(_local, "rule_of", None)


def _sweep_node(node: Box, check: Callable | None) -> None:
    g = node.adj
    if g is None:
        return
    if isinstance(g, Pending):
        node.adj = g = g.dense()
    parents = node.parents
    if not parents:
        return  # an input: its cotangent is the result
    node.adj = None
    a = node.value
    args = node.args
    kwargs = node.kwargs
    prim = node.prim
    vjps = prim.vjps
    fit = prim.fit
    joint = _joint(prim, parents, g, a, args, kwargs) if type(vjps) is Joint else None
    for j, (k, p) in enumerate(parents):
        if joint is not None:
            c = joint[j]
        else:
            try:
                c = vjps[k](g, a, *args, **kwargs) if kwargs else vjps[k](g, a, *args)
            except ZeroDivisionError:
                c = _ieee(vjps[k], g, a, args, kwargs)
        if fit is not None:
            c = fit(c, p.value)
        if check is not None:
            check(node, k, g, c.dense() if isinstance(c, Pending) else c)
        q = p.adj
        p.adj = c if q is None else c.added_to(q) if isinstance(c, Pending) else q + c


def _joint(prim: Primitive, parents: tuple, g: Any, ans: Any, args: tuple, kwargs: dict) -> list:
    """The cotangents of all the traced arguments of an entry whose rules are a :class:`Joint`."""
    rule = functools.partial(prim.vjps.rule, tuple(k for k, _ in parents))
    try:
        cotangents = rule(g, ans, *args, **kwargs)
    except ZeroDivisionError:
        cotangents = _ieee(rule, g, ans, args, kwargs)
    if not isinstance(cotangents, (tuple, list)) or len(cotangents) != len(parents):
        raise TypeError(f"{prim.name}: its joint derivative rule must return a list of {len(parents)} "
                        f"cotangents, one per traced argument; it returned {type(cotangents).__name__}.")
    return cotangents


def _release(node: Box) -> None:
    """Drop what the swept entry ``node`` saved: its arguments always, its value when nothing
    but the list and the sweep refers to it (a box kept elsewhere stays usable), so that the
    arrays the rest of the sweep makes can reuse that memory. Inputs keep everything: their
    cotangents are the result."""
    if node.prim is not None:
        node.args, node.parents, node.kwargs = (), (), NO_KWARGS
        if sys.getrefcount(node) <= _UNSHARED:
            node.value = None


def held(users: list, nodes: list, through: Callable) -> list:
    """The entries among ``users`` (entries of ``nodes``, in a list the caller holds them in
    and nowhere else) that something besides the Wengert list refers to, such as a view the
    user keeps, as opposed to a temporary read whose entry only the list and the entries that
    used it hold; and those that a later entry ``n`` uses with ``through(n, user)`` true (a
    view of a view leads through it). An entry is held when its reference count exceeds what
    the list, ``users`` and the distinct (argnum, box) pairs of later entries naming it account for."""
    if not users:
        return users
    named = _named(nodes, {id(u): k for k, u in enumerate(users)})
    return [u for u, count, uses in zip(users, _counts(users), named)
            if count > _LISTED + len({id(pair) for _, pair in uses}) or any(through(n, u) for n, _ in uses)]


def _named(nodes: list, index: dict) -> list:
    """For each entry of ``nodes`` whose id ``index`` maps to k, the (entry, pair) of the later
    entries whose parents name it, in list k (compiled in _speedups)."""
    named: list = [[] for _ in index]
    left = len(index)
    for n in reversed(nodes):
        if id(n) in index:
            left -= 1
            if not left:
                break  # the pairs naming an entry come after it
        for pair in n.parents:
            k = index.get(id(pair[1]))
            if k is not None:
                named[k].append((n, pair))
    return named


def _counts(boxes: list) -> list:
    return [sys.getrefcount(b) for b in boxes]


def read_by(fun: Callable) -> list:
    """What ``fun`` reads besides its arguments: the values of its closure and the globals its
    code names (one level deep: the functions it calls are not searched)."""
    found = []
    for cell in getattr(fun, "__closure__", None) or ():
        try:
            found.append(cell.cell_contents)
        except ValueError:  # a cell not yet filled
            pass
    code = getattr(fun, "__code__", None)
    return found + ([fun.__globals__.get(name) for name in code.co_names] if code is not None else [])


def _unshared() -> int:
    """What ``sys.getrefcount`` says in :func:`_release` of a box only the list refers to."""
    nodes = [Box(None, None, None, (), NO_KWARGS, ())]
    node = nodes[-1]  # as the sweep's loop holds it
    return (lambda box: sys.getrefcount(box))(node)


_UNSHARED = _unshared()


def _in_loop() -> int:
    """What ``sys.getrefcount`` says in :func:`_release_unread`'s loop of a box the list holds,
    less the edges naming it."""
    nodes = [Box(None, None, None, (), NO_KWARGS, ())]
    q = Box(None, None, None, (), NO_KWARGS, ((0, nodes[0]),))
    for _, p in q.parents:
        return sys.getrefcount(p) - 1
    raise AssertionError


_IN_LOOP = _in_loop()
_IN_USERS = _IN_LOOP + 1  # in _users, called from that loop: its own parameter


def _in_waiting() -> int:
    """What ``sys.getrefcount`` says in :func:`_release_waiting` of a box only the list holds."""
    nodes = [Box(None, None, None, (), NO_KWARGS, ())]
    p = nodes[0]
    return sys.getrefcount(p)


_IN_WAITING = _in_waiting()
_VALUE_ALONE = (lambda p: sys.getrefcount(p.value))(Box(object(), None, None, (), NO_KWARGS, ()))  # in _drop
_LISTED = (lambda nodes: _counts(nodes[:]))([Box(None, None, None, (), NO_KWARGS, ())])[0]  # in held


if _speedups is not None:
    _speedups.configure(apply, NO_KWARGS, (same, negated, times_second, times_first, times_ans), _ieee,
                        Joint, _sweep_node, Pending)
    unary, binary, _sweep, _uses = _speedups.unary, _speedups.binary, _speedups.sweep, _speedups.uses  # noqa: F811
    _named = _speedups.named  # noqa: F811
    releasing = _speedups.releasing  # noqa: F811
else:
    _sweep = _sweep_python
