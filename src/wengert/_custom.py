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
from typing import Any, Callable

import numpy as np

from ._core import Box, Primitive, record, recording, strip
from ._tree import flatten, tree_map, unflatten
from .numpy._vjps import Variadic
from .numpy._wrap import _general, fit


def Transposed(prim: Primitive) -> Any:  # noqa: N802  (imported late: _forward imports this module's API)
    from ._forward import Transposed as T
    return T(prim)

__all__ = ["primitive", "defvjp", "custom_vjp"]


class _Undefined:
    """The rules of a primitive before ``defvjp``: differentiating it explains what is missing."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __getitem__(self, k: int) -> Callable:
        def missing(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError(
                f"{self.name}: no derivative rule for positional argument {k}. Define one with "
                f"wengert.defvjp({self.name}, rule_for_arg0, rule_for_arg1, ...), where "
                "rule(g, ans, *args, **kwargs) returns the argument's cotangent.")
        return missing

    def __len__(self) -> int:
        return 1 << 30


def primitive(fun: Callable) -> Callable:
    """Make ``fun`` an elementary operation: recorded as one step, differentiated by the rules
    given to :func:`defvjp` rather than through its inside.

    Use it for a numerically stable formula, a call into compiled code, or anything whose
    inside wengert cannot or should not trace. Inside ``fun`` the arguments are plain values.

    Arguments:
        fun: the function. Arguments that may be traced must be passed positionally.

    Returns:
        A function with ``fun``'s signature that records itself on traced arguments.
    """
    name = getattr(fun, "__qualname__", getattr(fun, "__name__", "primitive"))
    prim = Primitive(fun, name, _Undefined(name), fit)
    prim.jvps = Transposed(prim)  # forward mode until defjvp gives rules of its own

    @functools.wraps(fun)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
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
            again (higher derivatives).

    Example:
        >>> import wengert, wengert.numpy as np
        >>> @wengert.primitive
        ... def softplus(x):
        ...     return np.logaddexp(0.0, x)
        >>> wengert.defvjp(softplus, lambda g, ans, x: g / (1 + np.exp(-x)))
    """
    prim = getattr(fun, "__wengert_primitive__", None)
    if not isinstance(prim, Primitive):
        raise TypeError(f"defvjp: {getattr(fun, '__name__', fun)!r} was not made by "
                        "wengert.primitive; decorate the function with @wengert.primitive first.")
    prim.vjps = tuple(rules)


class custom_vjp:
    """Decorator: a function with a hand-written reverse rule, in forward/backward form.

    Example:
        >>> import wengert, wengert.numpy as np
        >>> @wengert.custom_vjp
        ... def clip_gradient(x):
        ...     return x
        >>> clip_gradient.defvjp(lambda x: (x, None),
        ...                      lambda residuals, g: (np.clip(g, -1.0, 1.0),))

    ``fwd(*args)`` returns ``(output, residuals)``; ``bwd(residuals, g)`` returns a tuple with
    one cotangent per positional argument (shaped like the argument; ``None`` for zero).
    Arguments and outputs may be nested lists, tuples and dicts of arrays.
    """

    def __init__(self, fun: Callable):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        """Set the forward function ``fwd(*args) -> (output, residuals)`` and the backward
        function ``bwd(residuals, g) -> tuple of cotangents, one per argument``."""
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args: Any) -> Any:
        leaves, structure = flatten(args)
        top = max((x.trace for x in leaves if type(x) is Box), key=lambda t: t.id, default=None)
        if top is None:
            return self.fun(*args)
        if not recording(top):  # inside no_grad: plain values in, plain values out
            return self.fun(*tree_map(strip, args))
        if self.fwd is None:
            raise NotImplementedError(f"{self.__name__}: custom_vjp function called on traced "
                                      "values before .defvjp(fwd, bwd) gave it its rule.")
        values = [x.value if type(x) is Box and x.trace is top else x for x in leaves]
        plain_args = unflatten(structure, values)
        out, residuals = self.fwd(*plain_args)
        if any(type(v) is Box for v in values):  # traced one level down too: use the rule there
            out = self(*plain_args)
        outs, out_structure = flatten(out)
        traced = [k for k, x in enumerate(leaves) if type(x) is Box and x.trace is top]
        boxed = []
        for j, o in enumerate(outs):  # one entry per output leaf; each pulls back through bwd
            rule = functools.partial(self._cotangent, structure, out_structure, outs, residuals, j)
            prim = Primitive(self.fun, self.__name__, Variadic(rule), fit)
            prim.jvps = Transposed(prim)  # forward mode transposes bwd
            parents = tuple((k, leaves[k]) for k in traced)
            boxed.append(record(top, prim, tuple(values), {}, o, parents))
        return unflatten(out_structure, boxed)

    def _cotangent(self, structure: Any, out_structure: Any, outs: list, residuals: Any, j: int,
                   k: int, g: Any, ans: Any, *args: Any) -> Any:
        """Cotangent of flattened argument ``k`` from output leaf ``j`` (the others get zeros)."""
        cts = [g if i == j else np.zeros_like(strip(o)) for i, o in enumerate(outs)]
        result = self.bwd(residuals, unflatten(out_structure, cts))
        arguments = unflatten(structure, list(args))
        if not isinstance(result, (tuple, list)) or len(result) != len(arguments):
            raise TypeError(f"{self.__name__}: bwd must return a tuple with one cotangent per "
                            f"argument ({len(arguments)}); it returned {result!r:.80}.")
        filled = tuple(tree_map(np.zeros_like, a) if c is None else c
                       for a, c in zip(arguments, result))
        flat = flatten(filled)[0]
        if len(flat) != len(args):
            raise ValueError(f"{self.__name__}: the cotangents bwd returned do not have the "
                             "structure of the arguments.")
        return flat[k]
