"""Users' own derivative rules: ``primitive`` + ``defvjp``, and the ``custom_vjp`` decorator.

``primitive`` turns a function into one elementary step of the tape (its inside is not
recorded), whose derivative comes from rules given to ``defvjp`` in the same form as
wengert's own tables. ``custom_vjp`` takes the forward/backward pair form instead: ``fwd``
returns the output and residuals, ``bwd`` turns residuals and an output cotangent into one
cotangent per argument. Both apply their rule at every level of nesting, so higher
derivatives differentiate the rules themselves.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any, Callable

import numpy as np

from ._core import Box, EscapedTracerError, Joint, Pending, Primitive, record, recording, strip, traced_keyword
from ._tree import flatten, is_sequence, tree_map, unflatten
from .numpy._wrap import _general, broadcasts, fit


def Transposed(prim: Primitive) -> Any:  # noqa: N802  (imported late: _forward imports this module's API)
    from ._forward import Transposed as T
    return T(prim)

__all__ = ["primitive", "defvjp", "custom_vjp"]

USER_PRIMITIVES: weakref.WeakSet = weakref.WeakSet()  # the primitives users' rules define


# ----------------------------------------------------------------------------- checking rules
# What the errors say about each kind of user rule: what its result is called (of positional
# argument {k}), what the expected shape belongs to, and what the rule must return.
_VJP = ("the result of the derivative rule for positional argument {k}", "the argument",
        "A derivative rule returns its argument's cotangent: an array shaped like the argument, or "
        "like the output where the argument was broadcast.")
_JVP = ("the result of the JVP rule for positional argument {k}", "the output's tangent",
        "A JVP rule returns its argument's contribution to the output's tangent: an array shaped like "
        "the output, with the tangent's leading batch dimensions.")
_BWD = ("the cotangent bwd returned for positional argument {k}", "the argument",
        "bwd returns one cotangent per positional argument, shaped like the argument (None for zero).")

# The rule a primitive lacks, and the call that gives it, by the function that gives rules.
_MISSING = {"defvjp": ("derivative rule", "rule(g, ans, *args, **kwargs) returns the argument's cotangent"),
            "defjvp": ("JVP rule", "rule(t, ans, *args, **kwargs) returns the argument's contribution to "
                       "the output's tangent, and None declares an argument without derivative")}


def _check(name: str, k: int, kind: tuple, result: Any, fits: bool, expected: tuple) -> None:
    """Refuse the ``result`` of a rule (of ``kind``) that a user gave the function ``name`` for
    its argument ``k``, unless it is one array whose shape ``fits`` (``expected`` says what)."""
    subject, owner, advice = kind
    subject = f"{name}: {subject.format(k=k)}"
    if result is None or isinstance(result, (list, tuple, dict)):
        returned = "None" if result is None else f"a {type(result).__name__}"
        raise TypeError(f"{subject} is {returned}, not an array. {advice}")
    if not fits:
        raise ValueError(f"{subject} has shape {np.shape(strip(result))}, but {owner} has shape "
                         f"{expected}. {advice}")


def _vjp_checked(name: str, k: int, rule: Callable) -> Callable:
    """``rule``, refusing a result that summing over broadcast dimensions (fit) cannot make
    the cotangent of argument ``k``."""
    def checked(g: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
        c = rule(g, ans, *args, **kwargs)
        shape = np.shape(strip(args[k]))
        _check(name, k, _VJP, c, broadcasts(shape, np.shape(strip(c))), shape)
        return c
    return checked


def _jvp_checked(name: str, k: int, rule: Callable) -> Callable:
    """``rule``, given one tangent direction at a time (a batch of them, for a Jacobian or a
    Hessian, is pushed direction by direction and stacked: a rule written for one direction,
    ``M @ t``, would mix the batch dimension into its product), and refusing a result that is
    neither shaped like the output's tangent nor broadcasts to it from a shape the argument's
    tangent broadcasts to (an argument that was broadcast contributes the same along the
    dimensions broadcasting added or stretched)."""
    def checked(t: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
        shape = np.shape(strip(args[k]))
        batch = np.shape(strip(t))[:np.ndim(strip(t)) - len(shape)]
        if batch:
            import wengert.numpy as wnp  # (imported here: the NumPy layer imports this module)
            flat = np.reshape(t, (-1,) + shape)
            c = wnp.stack([checked(flat[i], ans, *args, **kwargs) for i in range(len(flat))])
            return np.reshape(c, batch + np.shape(strip(c))[1:])
        c = rule(t, ans, *args, **kwargs)
        out, found = np.shape(strip(ans)), np.shape(strip(c))
        _check(name, k, _JVP, c, found == out or (broadcasts(found, out) and broadcasts(shape, found)), out)
        return c
    return checked


class _Rules:
    """A user primitive's rules by argument position: those ``given``, then for any other
    argument a rule explaining that it is missing. Past the rules defvjp gave, a traced
    argument is refused when the call is recorded."""

    __slots__ = ("name", "api", "given")

    def __init__(self, name: str, api: str, given: tuple = ()):
        self.name, self.api, self.given = name, api, given

    def __getitem__(self, k: int) -> Callable:
        if k < len(self.given):
            return self.given[k]
        rule, returns = _MISSING[self.api]
        if self.api == "defvjp" and self.given:
            raise TypeError(f"{self.name}: positional argument {k} is a traced value, but defvjp gave rules for "
                            f"{len(self.given)} argument(s) only. Give one for it with wengert.defvjp({self.name}, "
                            "rule_for_arg0, rule_for_arg1, ...), or pass a plain value there "
                            "(wengert.stop_gradient(x)).")

        def missing(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError(
                f"{self.name}: no {rule} for positional argument {k}. Define one with "
                f"wengert.{self.api}({self.name}, rule_for_arg0, rule_for_arg1, ...), where {returns}.")
        return missing

    def __len__(self) -> int:
        return 1 << 30


def give_rules(api: str, fun: Callable, rules: tuple) -> None:
    """What defvjp and defjvp do: set ``rules`` on the primitive ``fun`` was made into, each
    wrapped in a check of its result; an argument defjvp gives no rule gets one that explains
    so (one without a derivative rule is refused when a call is recorded)."""
    prim = getattr(fun, "__wengert_primitive__", None)
    if not isinstance(prim, Primitive):
        raise TypeError(f"{api}: {getattr(fun, '__name__', fun)!r} was not made by wengert.primitive; "
                        "decorate the function with @wengert.primitive first.")
    for k, r in enumerate(rules):
        if r is not None and not callable(r):
            raise TypeError(f"{api}: the rule for positional argument {k} of {prim.name!r} is a {type(r).__name__}; "
                            "give a function (or None for an argument without derivative).")
    checked = _vjp_checked if api == "defvjp" else _jvp_checked
    rules = tuple(None if r is None else checked(prim.name, k, r) for k, r in enumerate(rules))
    if api == "defvjp":
        prim.vjps = _Rules(prim.name, api, rules)
    else:
        prim.jvps = _Rules(prim.name, api, rules)


_CLOSURE = ("{name}: {fun} uses values traced by the surrounding computation that are not among its "
            "arguments (it closes over them, or reads them from a global), so the rule would not see them "
            "and their gradient would be lost. Pass them as arguments instead.")


def _one_output(fun: Callable, name: str) -> Callable:
    """``fun``, refusing to return several outputs (a primitive's rules get one ``g``), or a
    traced value (it runs on plain values: one it returns was traced outside its arguments)."""
    def call(*args: Any, **kwargs: Any) -> Any:
        out = fun(*args, **kwargs)
        if type(out) is Box:
            raise TypeError(_CLOSURE.format(name=name, fun="the primitive's function"))
        if isinstance(out, (tuple, list, dict)):
            raise TypeError(f"{name}: a primitive must return one array (or number); it returned a "
                            f"{type(out).__name__}. Use wengert.custom_vjp for a function with several outputs.")
        return out
    return call


def _holds_traced(a: Any) -> bool:
    """Whether ``a`` is a list, tuple or dict holding a traced value at any depth."""
    return isinstance(a, (list, tuple, dict)) and any(type(x) is Box for x in flatten(a)[0])


def primitive(fun: Callable) -> Callable:
    """Make ``fun`` an elementary operation: recorded as one step, differentiated by the rules
    given to :func:`defvjp` rather than through its inside.

    Use it for a numerically stable formula, a call into compiled code, or anything whose
    inside wengert cannot or should not trace. Inside ``fun`` the arguments are plain values.

    Arguments:
        fun: the function. It returns one array or number (for several outputs, use
            :class:`custom_vjp`). Arguments that may be traced must be passed positionally;
            keyword arguments are constants, passed on to the rules.

    Returns:
        A function with ``fun``'s signature that records itself on traced arguments.
    """
    name = getattr(fun, "__qualname__", getattr(fun, "__name__", "primitive"))
    prim = Primitive(_one_output(fun, name), name, _Rules(name, "defvjp"), fit)
    USER_PRIMITIVES.add(prim)
    prim.jvps = Transposed(prim)  # forward mode until defjvp gives rules of its own

    @functools.wraps(fun)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for k, a in enumerate(args):
            if _holds_traced(a):
                raise TypeError(f"{name}: positional argument {k} is a {type(a).__name__} holding traced values, "
                                "but a primitive's arguments are arrays and numbers (its rules would not see "
                                "them). Pass them as arguments of their own, or use wengert.custom_vjp, whose "
                                "arguments may be nested lists, tuples and dicts.")
        for key, a in kwargs.items():
            if _holds_traced(a):
                raise traced_keyword(name, key)
        return _general(prim, args, kwargs)

    wrapper.__wengert_primitive__ = prim  # type: ignore[attr-defined]  # what defvjp sets rules on
    return wrapper


def defvjp(fun: Callable, *rules: Callable | None) -> None:
    """Give a function made by :func:`primitive` its vector-Jacobian product rules.

    Arguments:
        fun: the function returned by :func:`primitive`.
        *rules: one per positional argument, in order: ``rule(g, ans, *args, **kwargs)``
            returns the cotangent of that argument, given ``g`` (the cotangent of the output),
            ``ans`` (the output) and the call's arguments. ``None`` declares an argument with
            no gradient. Write rules with ``wengert.numpy`` so that they are differentiable
            again (higher derivatives). A result that is not an array shaped like its argument
            (or like the output, where the argument was broadcast) is refused.

    Example:
        >>> import wengert, wengert.numpy as np
        >>> @wengert.primitive
        ... def softplus(x):
        ...     return np.logaddexp(0.0, x)
        >>> wengert.defvjp(softplus, lambda g, ans, x: g / (1 + np.exp(-x)))
    """
    give_rules("defvjp", fun, rules)


def _cotangent_leaves(name: str, position: int, where: str, a: Any, c: Any) -> list:
    """The cotangent ``c`` that bwd returned for the argument ``a`` (positional argument
    ``position``; ``where`` inside it), as the leaves :func:`flatten` gives ``a``: zeros where
    ``c`` has None. Refused where ``c`` does not have ``a``'s containers, lengths and keys
    (a list may stand for a tuple): matched leaf by leaf, its arrays would go to the wrong
    parameters."""
    if c is None:
        return [np.zeros_like(x) for x in flatten(a)[0]]
    sequence = is_sequence(a)
    if isinstance(a, dict) and isinstance(c, dict) and set(a) == set(c):
        return [leaf for key in flatten(a)[1][1]
                for leaf in _cotangent_leaves(name, position, f"{where}[{key!r}]", a[key], c[key])]
    if sequence and isinstance(c, (list, tuple)) and len(c) == len(a):
        return [leaf for i, (x, y) in enumerate(zip(a, c))
                for leaf in _cotangent_leaves(name, position, f"{where}[{i}]", x, y)]
    if not (isinstance(a, dict) or sequence or isinstance(c, (list, tuple, dict))):
        return [c]

    def what(v: Any) -> str:
        if isinstance(v, dict):
            return f"a {type(v).__name__} with keys {', '.join(sorted(map(repr, v)))}"
        return f"a {type(v).__name__} of length {len(v)}" if isinstance(v, (list, tuple)) else "a value"
    raise TypeError(f"{name}: the cotangent bwd returned for positional argument {position}{where} is {what(c)}, "
                    f"but the argument there is {what(a)}. bwd returns for each argument a cotangent with its "
                    "lists, tuples and dicts (the same lengths and keys), or None for zeros.")


class _Outputs(Pending):
    """The cotangents (or tangents) of the output leaves of a call of a custom_vjp function with
    several outputs, by position, gathered while the sweep runs so that bwd sees them together."""

    __slots__ = ("parts",)

    def __init__(self, parts: dict):
        self.parts = parts

    def dense(self) -> "_Outputs":
        return self

    def added_to(self, total: "_Outputs") -> "_Outputs":
        parts = dict(total.parts)
        for j, c in self.parts.items():
            parts[j] = parts[j] + c if j in parts else c
        return _Outputs(parts)


def _pick(name: str, j: int) -> Primitive:
    """The primitive of output leaf ``j`` of a call with several outputs: its cotangent goes to
    the call's entry as part ``j``, and its tangent is part ``j`` of the call's."""
    return Primitive(lambda parts: parts[j], name, (lambda g, ans, _: _Outputs({j: g}),), None,
                     jvps=(lambda t, ans, _: t.parts.get(j),))


class custom_vjp:
    """Decorator: a function with a hand-written reverse rule, in forward/backward form.

    Example:
        >>> import wengert, wengert.numpy as np
        >>> @wengert.custom_vjp
        ... def clip_gradient(x):
        ...     return x
        >>> clip_gradient.defvjp(lambda x: (x, None),
        ...                      lambda residuals, g: (np.clip(g, -1.0, 1.0),))

    ``fwd(*args, **kwargs)`` returns ``(output, residuals)``; ``bwd(residuals, g)`` returns a
    tuple with one cotangent per positional argument (shaped like the argument; ``None`` for
    zero). Arguments and outputs may be nested lists, tuples and dicts of arrays. Keyword
    arguments are constants, passed on to ``fwd`` (and to the function itself): they are not
    differentiated, and a traced value given by keyword is refused (pass it positionally).

    Reverse mode (``grad``, ``vjp``, ``jacrev``) calls ``bwd`` once per call, on plain cotangents
    of all the outputs together (zeros for those not used), so a ``bwd`` that is not linear in
    ``g``, as the clipping above, is followed exactly. Forward mode (``jvp``, ``jacfwd``,
    ``hessian``, and ``jacobian`` where it picks forward mode) has no rule of its own here: it
    transposes ``bwd``, output by output, which is right only where ``bwd`` is linear in ``g``,
    as a true derivative is (the clipping above has slope 1 near a zero cotangent, so forward
    mode sees the unclipped derivative).
    """

    def __init__(self, fun: Callable):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        """Set the forward function ``fwd(*args) -> (output, residuals)`` and the backward
        function ``bwd(residuals, g) -> tuple of cotangents, one per argument``."""
        for name, f in (("fwd", fwd), ("bwd", bwd)):
            if not callable(f):
                raise TypeError(f"{self.__name__}.defvjp: {name} must be a function; got {type(f).__name__}.")
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for key, value in kwargs.items():
            if any(type(x) is Box for x in flatten(value)[0]):
                raise traced_keyword(self.__name__, key)
        leaves, structure = flatten(args)
        top = max((x.trace for x in leaves if type(x) is Box), key=lambda t: t.id, default=None)
        if top is None:
            return self.fun(*args, **kwargs)
        if not recording(top):  # inside no_grad: plain values in, plain values out
            return self.fun(*tree_map(strip, args), **kwargs)
        if self.fwd is None:
            raise NotImplementedError(f"{self.__name__}: custom_vjp function called on traced "
                                      "values before .defvjp(fwd, bwd) gave it its rule.")
        values = [x.value if type(x) is Box and x.trace is top else x for x in leaves]
        plain_args = unflatten(structure, values)
        before = len(top.nodes)
        pair = self.fwd(*plain_args, **kwargs)
        if len(top.nodes) != before:  # fwd computed with a traced value that is not an argument
            raise TypeError(_CLOSURE.format(name=self.__name__, fun="fwd"))
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise TypeError(f"{self.__name__}: fwd must return a pair (output, residuals); it returned "
                            f"{type(pair).__name__} {pair!r:.60}.")
        out, residuals = pair
        if any(type(v) is Box for v in values):  # traced one level down too: use the rule there
            out = self(*plain_args, **kwargs)
        outs, out_structure = flatten(out)
        parents = tuple((k, x) for k, x in enumerate(leaves) if type(x) is Box and x.trace is top)
        pull = functools.partial(self._cotangents, structure, out_structure, outs, residuals)
        if len(outs) == 1:  # one entry, which pulls back through bwd
            return unflatten(out_structure, [record(top, self._leaf(pull, 0), tuple(values), {}, outs[0], parents)])
        # Several outputs: one entry for the call, which gathers the cotangents of every output
        # (an _Outputs) and calls bwd once with them; then one entry per output, picking it out.
        call = Primitive(self.fun, self.__name__, Joint(lambda ks, g, ans, *args: pull(g.parts, ks, *args)), fit,
                         jvps=Joint(functools.partial(self._tangents, pull, outs)))
        USER_PRIMITIVES.add(call)
        pack = record(top, call, tuple(values), {}, None, parents)
        return unflatten(out_structure, [record(top, _pick(self.__name__, j), (None,), {}, o, ((0, pack),))
                                         for j, o in enumerate(outs)])

    def _tangents(self, pull: Callable, outs: list, tangents: list, ans: Any, *args: Any) -> _Outputs:
        """Forward mode through a call with several outputs: each output's tangent, from bwd
        transposed output by output."""
        parts = {}
        for j, o in enumerate(outs):
            leaf = self._leaf(pull, j)  # (held here: its jvps refers to it weakly)
            for k, t in enumerate(tangents):
                if t is not None:
                    c = leaf.jvps[k](t, o, *args)
                    parts[j] = c if j not in parts else parts[j] + c
        return _Outputs(parts)

    def _leaf(self, pull: Callable, j: int) -> Primitive:
        """The primitive of output leaf ``j`` alone: its cotangent through bwd, with zeros for
        the other outputs; forward mode transposes it."""
        prim = Primitive(self.fun, self.__name__, Joint(lambda ks, g, ans, *args: pull({j: g}, ks, *args)), fit)
        USER_PRIMITIVES.add(prim)
        prim.jvps = Transposed(prim)
        return prim

    def _cotangents(self, structure: Any, out_structure: Any, outs: list, residuals: Any, parts: dict,
                    ks: tuple, *args: Any) -> list:
        """The cotangents of the flattened arguments ``ks`` from the cotangents ``parts`` of the
        output leaves, by position (zeros for those missing): one call of bwd."""
        arguments = unflatten(structure, list(args))
        cts = [parts[j] if j in parts else np.zeros_like(strip(o)) for j, o in enumerate(outs)]
        try:
            result = self.bwd(residuals, unflatten(out_structure, cts))
        except EscapedTracerError as e:  # from bwd's closure: the recording it belongs to has finished
            raise EscapedTracerError(f"{self.__name__}: bwd uses a traced value from its closure or a global, "
                                     "whose recording has finished when the backward sweep runs. Hand bwd what "
                                     "it needs through fwd's residuals, and pass values whose gradient you want "
                                     "as arguments.") from e
        if not isinstance(result, (tuple, list)) or len(result) != len(arguments):
            raise TypeError(f"{self.__name__}: bwd must return a tuple with one cotangent per "
                            f"argument ({len(arguments)}); it returned {result!r:.80}.")
        flat = [leaf for i, (a, c) in enumerate(zip(arguments, result))
                for leaf in _cotangent_leaves(self.__name__, i, "", a, c)]
        positions = [i for i, a in enumerate(arguments) for _ in flatten(a)[0]]
        for k in ks:
            shape = np.shape(strip(args[k]))
            _check(self.__name__, positions[k], _BWD, flat[k], broadcasts(shape, np.shape(strip(flat[k]))), shape)
        return [flat[k] for k in ks]
