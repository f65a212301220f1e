"""``scipy.integrate`` with gradients: ``odeint`` and ``solve_ivp`` by the continuous adjoint method.

The solution itself is SciPy's, computed on plain arrays with the caller's arguments. On the
tape the solve is one entry whose inputs are the initial state ``y0``, the output times ``t``
and the traced leaves of ``args`` (the parameters ``p``). Its reverse rule goes back over the
output times one interval at a time, integrating the augmented system

    y' = f(y, t, p),    a' = -aᵀ ∂f/∂y,    b' = -aᵀ ∂f/∂p

backward from ``t_i`` to ``t_{i-1}``, starting ``y`` from the saved forward state and adding
each output's cotangent ``g_i`` to the adjoint ``a`` as a jump (``a = g_{N-1}``, ``b = 0`` at
the last time). At the first time ``a`` is the cotangent of ``y0`` and ``b`` that of the
parameters; output time ``t_i`` (``i ≥ 1``) gets ``g_iᵀ f(y_i, t_i)``, and the initial time
``-aᵀ f(y_0, t_0)`` with the adjoint from the later outputs only (``g_0`` not yet added).
The products ``aᵀ ∂f/∂y`` and ``aᵀ ∂f/∂p`` come from :func:`wengert.vjp`, and each backward
interval is itself a recorded solve of the augmented system, so the same rule
differentiates it again: second derivatives work.

Forward mode integrates the sensitivity equations ``δy' = ∂f/∂y δy + ∂f/∂p δp`` next to the
state (:func:`wengert.jvp` for the products), every tangent direction in one solve.

``trapezoid`` is wengert.numpy's. Everything else in ``scipy.integrate`` is SciPy's own,
unchanged; its adaptive quadratures (``quad``, ``quad_vec``, ``dblquad``, ``tplquad``,
``nquad``) refuse traced values with an error that names them and suggests a fixed quadrature
rule written with ``wengert.numpy`` (SciPy's own, given a traced value, says the same).
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, Callable

import numpy as np
import scipy.integrate as _si
from scipy.optimize import OptimizeResult

import wengert.numpy as _wnp

from .._api import vjp as _vjp
from .._core import Box as _Box
from .._core import Joint as _Joint
from .._core import Primitive as _Primitive
from .._core import apply as _apply
from .._core import strip as _strip
from .._forward import jvp as _jvp
from .._tree import flatten as _flatten
from .._tree import unflatten as _unflatten
from ..numpy._box import ConversionError as _ConversionError
from ..numpy._wrap import fit as _fit

__all__ = ["odeint", "solve_ivp", "OdeResult", "trapezoid"]

_ODEINT_TOL = 1.49012e-8  # SciPy's odeint default for rtol and atol
# Options of the caller's solve that also steer the backward (and sensitivity) solves; the
# others (the original system's Jacobian, the first step, events ...) apply to it alone.
_ODEINT_SHARED = {"mxstep", "hmax", "hmin", "ixpr", "mxhnil", "mxordn", "mxords"}
_ODEINT_OPTIONS = _ODEINT_SHARED | {"Dfun", "col_deriv", "ml", "mu", "tcrit", "h0", "printmessg"}
_IVP_SHARED = {"max_step", "min_step"}


class OdeResult(OptimizeResult):
    """What :func:`solve_ivp` returns: SciPy's fields, with ``t`` and ``y`` differentiable.

    ``t`` (the output times) and ``y`` (the states, shape ``(n, len(t))``) carry gradients;
    ``sol``, ``t_events``, ``y_events``, ``nfev``, ``njev``, ``nlu``, ``status``, ``message``
    and ``success`` are SciPy's, as plain values.
    """


# ----------------------------------------------------------------------------- problems
class _Solver:
    """How SciPy integrates a plain system in the backward and sensitivity solves:
    ``solver(rhs, y0, t)`` returns the states at the times ``t`` as rows, ``rhs(y, s)``
    being the derivative. Only the shared options of the caller's solve are used."""

    __slots__ = ("api", "method", "rtol", "atol", "options")

    def __init__(self, api: str, method: Any, rtol: Any, atol: Any, options: dict):
        self.api, self.method, self.options = api, method, options
        # A per-component atol belongs to the original state: augmented states take its minimum.
        self.rtol = float(np.min(rtol))
        self.atol = float(np.min(atol))

    def __call__(self, rhs: Callable, y0: np.ndarray, t: np.ndarray) -> np.ndarray:
        if np.all(t == t[0]):
            return np.tile(y0, (len(t), 1))
        fresh = np.concatenate([[True], np.diff(t) != 0])
        if not np.all(fresh):  # repeated times (t_eval may repeat t_span[0]): solve at each time once
            return self(rhs, y0, t[fresh])[np.cumsum(fresh) - 1]
        if not np.all(np.isfinite(y0)):  # a cotangent that is NaN already: NaN comes out, as elsewhere
            return np.full((len(t), len(y0)), np.nan, dtype=np.result_type(y0, float))
        try:
            y = self._solve(rhs, y0, t)
        except (ValueError, np.linalg.LinAlgError) as e:  # SciPy's, on NaN met inside (an unstable solve)
            self._failed(t, f"{type(e).__name__}: {e}.", e)
        if not np.all(np.isfinite(y)):
            self._failed(t, "its solution is not finite (NaN or infinity): the augmented system is unstable "
                            "backward in time here (a strongly contracting, stiff system).")
        return y

    def _solve(self, rhs: Callable, y0: np.ndarray, t: np.ndarray) -> np.ndarray:
        if self.api == "odeint":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", _si.ODEintWarning)
                y = _si.odeint(rhs, y0, t, rtol=self.rtol, atol=self.atol, **self.options)
            problems = [str(w.message) for w in caught if issubclass(w.category, _si.ODEintWarning)]
            if problems:
                self._failed(t, problems[0])
            return y
        sol = _si.solve_ivp(lambda s, y: rhs(y, s), (t[0], t[-1]), y0, method=self.method, t_eval=t,
                            rtol=self.rtol, atol=self.atol, **self.options)
        if sol.status != 0:
            self._failed(t, sol.message)
        return sol.y.T

    def _failed(self, t: np.ndarray, message: str, cause: BaseException | None = None) -> None:
        raise RuntimeError(f"{self.api}: the solve of the augmented system (adjoint or sensitivity "
                           f"equations) from t={t[0]:g} to t={t[-1]:g} failed: {message} Loosen rtol/atol, "
                           "allow more steps (mxstep for odeint), or choose another method.") from cause


class _Problem:
    """One system on the tape: ``dyn(y, t, *params)`` (a function of possibly traced values
    returning the derivative as a 1-D array), the solver, and the answer already computed for
    the caller's plain arguments."""

    __slots__ = ("api", "dyn", "solver", "known")

    def __init__(self, api: str, dyn: Callable, solver: _Solver, known: tuple | None = None):
        self.api, self.dyn, self.solver, self.known = api, dyn, solver, known


def _run(y0: Any, t: Any, *params: Any, problem: _Problem) -> np.ndarray:
    """The primitive's value: the states at the times ``t`` (rows), from plain arguments."""
    known = problem.known
    if known is not None and len(known[0]) == 2 + len(params) and all(
            np.array_equal(a, b) for a, b in zip(known[0], (y0, t, *params))):
        return known[1]
    dyn = problem.dyn
    rhs = lambda y, s: np.asarray(dyn(y, s, *params), dtype=float)
    return problem.solver(rhs, np.asarray(y0, dtype=float), np.asarray(t, dtype=float))


def _solve(problem: _Problem, y0: Any, t: Any, params: list) -> Any:
    """Record (or just compute) one solve: states of shape ``(len(t), len(y0))``."""
    return _apply(_PRIMITIVES[problem.api], (y0, t, *params), {"problem": problem})


# ----------------------------------------------------------------------------- reverse rule
def _pullback(ks: tuple, g: Any, ans: Any, y0: Any, t: Any, *params: Any, problem: _Problem) -> list:
    """The cotangents of the arguments ``ks``: one backward solve gives them all."""
    cotangents = _adjoint(problem, g, ans, y0, t, params)
    return [cotangents[k] for k in ks]


def _adjoint(problem: _Problem, g: Any, ans: Any, y0: Any, t: Any, params: tuple) -> tuple:
    """Cotangents of ``y0``, ``t`` and the parameters, by the adjoint method (module docstring)."""
    dyn = problem.dyn
    count, n = np.shape(_strip(ans))
    times = np.asarray(_strip(t))
    shapes = [np.shape(_strip(p)) for p in params]
    augmented = _Problem(problem.api, _augmented(dyn, n), problem.solver)
    if count == 1:  # the output is y0 itself
        return (g[0], np.zeros(1), *[np.zeros(s) for s in shapes])
    a, b = g[count - 1], np.zeros(sum(math.prod(s) for s in shapes))
    t_bar = [None] * count
    for i in range(count - 1, 0, -1):
        t_bar[i] = _wnp.sum(g[i] * dyn(ans[i], t[i], *params))
        if times[i] != times[i - 1]:
            state = _wnp.concatenate([ans[i], a, b])
            back = _solve(augmented, state, _wnp.stack([t[i], t[i - 1]]), list(params))[1]
            a, b = back[n: 2 * n], back[2 * n:]
        if i > 1:
            a = a + g[i - 1]
    t_bar[0] = -_wnp.sum(a * dyn(y0, t[0], *params))  # a: the adjoint just after t_0, without g_0
    return (a + g[0], _wnp.stack(t_bar), *_unpack(b, shapes))


def _augmented(dyn: Callable, n: int) -> Callable:
    """The dynamics of (state, adjoint, parameter adjoint) in forward time."""
    def dynamics(state: Any, s: Any, *params: Any) -> Any:
        f, pull = _vjp(lambda y, *p: dyn(y, s, *p), state[:n], *params)
        cotangents = pull(state[n: 2 * n])
        return _wnp.concatenate([f, -cotangents[0], *[-_wnp.ravel(c) for c in cotangents[1:]]])
    return dynamics


def _unpack(vector: Any, shapes: list) -> list:
    out, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(_wnp.reshape(vector[start: start + size], shape))
        start += size
    return out


# ----------------------------------------------------------------------------- forward rule
def _push(tangents: list, ans: Any, y0: Any, t: Any, *params: Any, problem: _Problem) -> Any:
    """The output's tangent from all the input tangents (``None``: zero), which may carry
    leading batch dimensions: one solve of the state with every direction's sensitivity."""
    args = (y0, t, *params)
    k = next(k for k, tk in enumerate(tangents) if tk is not None)
    batch = np.shape(_strip(tangents[k]))[: np.ndim(_strip(tangents[k])) - np.ndim(_strip(args[k]))]
    m = math.prod(batch)
    count, n = np.shape(_strip(ans))
    dyn = problem.dyn
    ty0, tt = tangents[0], tangents[1]
    dy0 = np.zeros((m, n)) if ty0 is None else _wnp.reshape(ty0, (m, n))
    if tt is not None:  # moving t_0 moves the whole trajectory by -f(y_0, t_0) per unit
        tt = _wnp.reshape(tt, (m, count))
        dy0 = dy0 - tt[:, :1] * dyn(y0, t[0], *params)
    dps = [np.zeros((m,) + np.shape(_strip(p))) if tp is None else _wnp.reshape(tp, (m,) + np.shape(_strip(p)))
           for p, tp in zip(params, tangents[2:])]
    sensitivity = _Problem(problem.api, _sensitivity(dyn, n, m), problem.solver)
    out = _solve(sensitivity, _wnp.concatenate([y0, _wnp.ravel(dy0)]), t, [*params, *dps])
    dy = _wnp.reshape(out[:, n:], (count, m, n))
    if tt is not None:  # an output time's own motion
        slopes = _wnp.stack([dyn(ans[i], t[i], *params) for i in range(count)])
        dy = dy + _wnp.transpose(tt)[:, :, None] * slopes[:, None, :]
    return _wnp.reshape(_wnp.moveaxis(dy, 1, 0), batch + (count, n))


def _sensitivity(dyn: Callable, n: int, m: int) -> Callable:
    """The dynamics of (state, ``m`` tangents of it); the parameters' tangents follow them."""
    def dynamics(state: Any, s: Any, *params_and_tangents: Any) -> Any:
        half = len(params_and_tangents) // 2
        params, dps = params_and_tangents[:half], params_and_tangents[half:]
        f, df = _jvp(lambda y, *p: dyn(y, s, *p), (state[:n], *params),
                     (_wnp.reshape(state[n:], (m, n)), *dps), batched=True)
        return _wnp.concatenate([f, _wnp.ravel(df)])
    return dynamics


_PRIMITIVES = {api: _Primitive(_run, api, _Joint(_pullback), _fit, jvps=_Joint(_push))
               for api in ("odeint", "solve_ivp")}


# ----------------------------------------------------------------------------- arguments
def _traced(tree: Any) -> bool:
    return any(type(x) is _Box for x in _flatten(tree)[0])


def _array(x: Any) -> Any:
    """A sequence that may hold traced values, as one (traced) array."""
    return _wnp.array(x) if isinstance(x, (list, tuple)) else x


def _real(api: str, name: str, x: Any, complex_ok: bool) -> Any:
    kind = np.result_type(_strip(x)).kind
    if kind == "c" and complex_ok:
        return x
    if kind == "c":
        hint = " (SciPy's odeint is real only; solve_ivp solves complex systems when nothing is traced)" \
            if api == "odeint" and name == "y0" else ""
        raise TypeError(f"{api}: {name} is complex, but {api} differentiates real states and parameters only. "
                        f"Split complex values into their real and imaginary parts{hint}.")
    if kind == "f":
        return x
    if kind in "iub":
        return np.asarray(x, dtype=float)
    raise TypeError(f"{api}: {name} must hold numbers, not values of dtype {np.result_type(_strip(x))}.")


def _double(p: Any) -> Any:
    """A parameter in double precision, SciPy's working precision (recorded: the gradient comes back
    in the parameter's own dtype). The backward and sensitivity solves integrate the parameter's
    cotangent or tangent beside the state; in single precision it would be rounded at every step."""
    dtype = np.result_type(_strip(p))
    return _wnp.astype(p, np.float64) if dtype.kind == "f" and dtype.itemsize < 8 else p


def _times(api: str, name: str, t: Any, strict: bool) -> Any:
    t = _real(api, name, _array(t), complex_ok=False)
    plain = np.asarray(_strip(t))
    if plain.ndim != 1 or plain.size == 0:
        raise ValueError(f"{api}: {name} must be a non-empty 1-D sequence of times; got shape {plain.shape}.")
    if not np.all(np.isfinite(plain)):
        raise ValueError(f"{api}: {name} holds a value that is not finite; give finite times.")
    steps = np.diff(plain)
    direction = np.sign(steps[np.flatnonzero(steps)[0]]) if np.any(steps) else 1.0
    bad = np.flatnonzero(steps * direction <= 0 if strict else steps * direction < 0)
    if bad.size:
        k = int(bad[0]) + 1
        how = "strictly increasing or strictly decreasing" if strict else \
            "monotonic (increasing or decreasing; repeated values are allowed)"
        raise ValueError(f"{api}: {name} must be {how}, but {name}[{k}] = {plain[k]:g} breaks the order "
                         f"after {name}[{k - 1}] = {plain[k - 1]:g}. Sort the times.")
    return t


def _state(api: str, y0: Any, complex_ok: bool) -> Any:
    y0 = _real(api, "y0", _array(y0), complex_ok)
    shape = np.shape(_strip(y0))
    if len(shape) > 1 or math.prod(shape) == 0:
        raise ValueError(f"{api}: y0 must be a non-empty 1-D array (or a scalar) of initial values; "
                         f"got shape {shape}.")
    return _wnp.ravel(y0) if len(shape) == 0 else y0


def _parametrize(api: str, fun: Callable, args: tuple, tfirst: bool, vectorized: bool = False) -> tuple:
    """The traced leaves of ``args`` (the parameters), ``args`` with plain values, and the
    canonical dynamics ``dyn(y, t, *params)`` returning a 1-D array (a ``vectorized`` ``fun``
    is given ``y`` as one column)."""
    leaves, structure = _flatten(args)
    where = [i for i, x in enumerate(leaves) if type(x) is _Box]
    params = [_double(_real(api, f"args element {i}", leaves[i], complex_ok=False)) for i in where]
    static = [None if type(x) is _Box else x for x in leaves]
    plain_args = _unflatten(structure, [_strip(x) for x in leaves])

    def dyn(y: Any, s: Any, *p: Any) -> Any:
        full = list(static)
        for i, v in zip(where, p):
            full[i] = v
        rebuilt = _unflatten(structure, full)
        if vectorized:
            y = _wnp.expand_dims(y, 1)
        out = _array(fun(s, y, *rebuilt) if tfirst else fun(y, s, *rebuilt))
        if np.result_type(_strip(out)).kind in "iub":
            out = np.asarray(out, dtype=float)
        return _wnp.ravel(out)
    return params, plain_args, dyn


def _check_dynamics(api: str, name: str, fun: Callable, dyn: Callable, y0: Any, t0: Any,
                    params: list) -> None:
    """Evaluate the dynamics once on plain values: a traced result means ``fun`` reads a traced
    value from somewhere other than its arguments; a wrong size is reported before SciPy runs."""
    out = dyn(y0, t0, *[_strip(p) for p in params])
    if type(out) is _Box:
        names = _captured(fun)
        where = (f"it reads {', '.join(repr(n) for n in names)} from its closure or globals" if names
                 else "from its closure, its globals or an object it holds")
        raise TypeError(f"{api}: {name} uses a traced value that is not among its arguments ({where}), "
                        f"so the solver cannot differentiate with respect to it. Pass it through args: "
                        f"{api}(..., args=(value,)), with {name} taking it as an extra parameter.")
    if np.size(out) != np.size(y0):
        raise ValueError(f"{api}: {name} returned {np.size(out)} value(s), but y0 has {np.size(y0)}; it must "
                         "return the derivative of every component of y, in y's order.")


def _captured(fun: Any) -> list:
    """Names of traced values a function holds in its closure, its globals or its partial
    arguments (best effort: the names it uses directly)."""
    names: list = []
    if isinstance(fun, functools.partial):
        if _traced((fun.args, fun.keywords)):
            names.append("a functools.partial argument")
        fun = fun.func
    fun = getattr(fun, "__func__", fun)  # a bound method
    code = getattr(fun, "__code__", None)
    if code is None:
        return names
    for name, cell in zip(code.co_freevars, getattr(fun, "__closure__", None) or ()):
        try:
            if _traced(cell.cell_contents):
                names.append(name)
        except ValueError:  # an empty cell
            pass
    space = getattr(fun, "__globals__", {})
    names += [name for name in code.co_names if name in space and _traced(space[name])]
    return names


def _options(api: str, options: dict, allowed: set | None) -> None:
    unknown = sorted(set(options) - allowed) if allowed is not None else []
    if unknown:
        raise TypeError(f"{api}: unknown option(s) {unknown}; the options are {sorted(allowed)} "
                        "(full_output, tfirst, rtol and atol are named arguments).")


# ----------------------------------------------------------------------------- odeint
def odeint(func: Callable, y0: Any, t: Any, args: tuple = (), rtol: Any = None, atol: Any = None,
           tfirst: bool = False, full_output: bool = False, **options: Any) -> Any:
    """Integrate ``dy/dt = func(y, t, *args)``, as :func:`scipy.integrate.odeint`, with gradients.

    Arguments:
        func: the derivative, ``func(y, t, *args)`` (``func(t, y, *args)`` with ``tfirst``),
            written with ``wengert.numpy`` or plain ``numpy``. Every traced value it uses must
            come in through ``y``, ``t`` or ``args``: one read from its closure or globals is
            refused with an error.
        y0: the initial state, a 1-D array (or a scalar).
        t: the output times, monotonic (repeats allowed); ``t[0]`` is the initial time.
        args: a tuple of extra arguments (nested lists, tuples and dicts allowed); traced
            floating leaves are differentiated.
        rtol, atol: SciPy's tolerances (default 1.49012e-8), used by the backward solves too.
        tfirst: ``func`` takes ``(t, y, ...)``.
        full_output: also return SciPy's dictionary of information on the forward solve.
        **options: SciPy's other options (``mxstep``, ``hmax``, ``Dfun`` ...). ``Dfun``,
            ``col_deriv``, ``ml``, ``mu``, ``tcrit``, ``h0`` and ``printmessg`` apply to the
            forward solve only.

    Returns:
        An array of shape ``(len(t), len(y0))``, differentiable with respect to ``y0``, ``t``
        and the traced leaves of ``args`` (``(array, info)`` with ``full_output``).
    """
    api = "odeint"
    if not callable(func):
        raise TypeError(f"odeint: func must be a callable func(y, t, *args), not {type(func).__name__}.")
    if not isinstance(args, tuple):
        raise TypeError(f"odeint: args must be a tuple of extra arguments for func; got a "
                        f"{type(args).__name__}. For one argument k write args=(k,).")
    _options(api, options, _ODEINT_OPTIONS)
    y0 = _state(api, y0, complex_ok=False)
    t = _times(api, "t", t, strict=False)
    params, plain_args, dyn = _parametrize(api, func, args, tfirst)
    y0_plain, t_plain = np.asarray(_strip(y0), dtype=float), np.asarray(_strip(t), dtype=float)
    _check_dynamics(api, "func", func, dyn, y0_plain, t_plain[0], params)
    rtol = _ODEINT_TOL if rtol is None else rtol
    atol = _ODEINT_TOL if atol is None else atol
    result = _si.odeint(func, y0_plain, t_plain, args=plain_args, rtol=rtol, atol=atol, tfirst=tfirst,
                        full_output=full_output, **options)
    y_plain = result[0] if full_output else result
    shared = {k: v for k, v in options.items() if k in _ODEINT_SHARED}
    problem = _Problem(api, dyn, _Solver(api, None, rtol, atol, shared),
                       known=((y0_plain, t_plain, *[_strip(p) for p in params]), y_plain))
    y = _solve(problem, y0, t, params)
    return (y, result[1]) if full_output else y


# ----------------------------------------------------------------------------- solve_ivp
def solve_ivp(fun: Callable, t_span: Any, y0: Any, method: Any = "RK45", t_eval: Any = None,
              dense_output: bool = False, events: Any = None, vectorized: bool = False, args: Any = None,
              rtol: Any = 1e-3, atol: Any = 1e-6, **options: Any) -> OdeResult:
    """Solve ``dy/dt = fun(t, y, *args)``, as :func:`scipy.integrate.solve_ivp`, with gradients.

    Arguments:
        fun: the derivative ``fun(t, y, *args)``, written with ``wengert.numpy`` or plain
            ``numpy``; every traced value it uses must come in through ``t``, ``y`` or ``args``.
        t_span: ``(t0, tf)``, the interval of integration.
        y0: the initial state, a 1-D array.
        method: SciPy's method ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA" or an
            ``OdeSolver`` class); the backward solves use it too.
        t_eval: the output times (within ``t_span``, sorted in the direction of integration);
            ``None`` returns the solver's steps.
        dense_output, events: SciPy's, for the forward solve. The dense solution ``sol`` is
            plain (not differentiable); events cannot be differentiated and are refused when
            anything is traced.
        vectorized: ``fun`` takes ``y`` as columns, shape ``(n, k)``; the backward solves
            give it one column.
        args: a tuple of extra arguments for ``fun``; traced floating leaves are differentiated.
        rtol, atol: SciPy's tolerances (defaults 1e-3 and 1e-6), used by the backward solves too.
        **options: SciPy's solver options (``max_step``, ``first_step``, ``jac`` ...);
            ``max_step`` and ``min_step`` also steer the backward solves.

    Returns:
        An :class:`OdeResult`: ``y`` of shape ``(len(y0), len(t))`` and ``t``, differentiable
        with respect to ``y0``, ``t_span``, ``t_eval`` and the traced leaves of ``args``;
        SciPy's other fields as plain values.
    """
    api = "solve_ivp"
    if not callable(fun):
        raise TypeError(f"solve_ivp: fun must be a callable fun(t, y, *args), not {type(fun).__name__}.")
    if args is not None and not isinstance(args, (tuple, list)):
        raise TypeError(f"solve_ivp: args must be a tuple of extra arguments for fun; got a "
                        f"{type(args).__name__}. For one argument k write args=(k,).")
    args = tuple(args or ())
    span = _array(t_span)
    if np.shape(_strip(span)) != (2,):
        raise ValueError(f"solve_ivp: t_span must be a pair (t0, tf); got shape {np.shape(_strip(span))}.")
    span = _times(api, "t_span", span, strict=False)
    traced = _traced((y0, t_span, t_eval, args))
    y0 = _array(y0)
    if np.ndim(_strip(y0)) != 1:
        raise ValueError(f"solve_ivp: y0 must be a 1-D array of initial values; got shape {np.shape(_strip(y0))}.")
    y0 = _state(api, y0, complex_ok=not traced)
    t0, tf = (float(v) for v in np.asarray(_strip(span)))
    if t_eval is not None:
        t_eval = _times(api, "t_eval", t_eval, strict=True)
        plain = np.asarray(_strip(t_eval))
        if np.any(plain < min(t0, tf)) or np.any(plain > max(t0, tf)):
            raise ValueError(f"solve_ivp: t_eval must lie within t_span = ({t0:g}, {tf:g}); it runs from "
                             f"{plain.min():g} to {plain.max():g}.")
        if len(plain) > 1 and (plain[1] - plain[0]) * (tf - t0) < 0:
            raise ValueError("solve_ivp: t_eval must be sorted in the direction of integration "
                             f"(from t_span[0] = {t0:g} to t_span[1] = {tf:g}); reverse it.")
    if traced and events is not None:
        raise TypeError("solve_ivp: events cannot be differentiated (their times depend on the solution). "
                        "Solve without events, or locate the event first and integrate up to its time.")
    params, plain_args, dyn = _parametrize(api, fun, args, tfirst=True, vectorized=vectorized)
    y0_plain = np.asarray(_strip(y0))
    _check_dynamics(api, "fun", fun, dyn, y0_plain, t0, params)
    sol = _si.solve_ivp(fun, (t0, tf), y0_plain, method=method,
                        t_eval=None if t_eval is None else np.asarray(_strip(t_eval)),
                        dense_output=dense_output, events=events, vectorized=vectorized,
                        args=plain_args or None, rtol=rtol, atol=atol, **options)
    count = sol.y.shape[1]
    if t_eval is None:  # the solver's steps: the ends move with t_span, the inner steps are constants
        t_out = sol.t
        if traced:
            last = span[1:] if sol.status == 0 and count >= 2 else sol.t[1:][-1:]
            t_out = _wnp.concatenate([span[:1], sol.t[1:-1], last])
        times, rows = t_out, sol.y.T
    else:  # the solve starts at t_span[0], which t_eval need not contain
        t_out = t_eval[:count]
        times, rows = _wnp.concatenate([span[:1], t_out]), np.vstack([y0_plain[None, :], sol.y.T])
    if np.iscomplexobj(y0_plain):
        y = sol.y  # a plain complex solve: nothing is traced
    else:
        solver = _Solver(api, method, rtol, atol, {k: v for k, v in options.items() if k in _IVP_SHARED})
        known = ((y0_plain, np.asarray(_strip(times), dtype=float), *[_strip(p) for p in params]), rows)
        states = _solve(_Problem(api, dyn, solver, known), y0, times, params)
        y = _wnp.transpose(states if t_eval is None else states[1:])
    return OdeResult(t=t_out, y=y, sol=sol.sol, t_events=sol.t_events, y_events=sol.y_events, nfev=sol.nfev,
                     njev=sol.njev, nlu=sol.nlu, status=sol.status, message=sol.message, success=sol.success)


# ----------------------------------------------------------------------------- quadrature
def _plain_only(name: str) -> Callable:
    """SciPy's adaptive quadrature ``name``, unchanged on plain values; on a traced value it
    raises wengert's ConversionError naming itself and saying what to write instead."""
    scipy_fun = getattr(_si, name)
    refusal = (f"{name}: SciPy's adaptive quadrature calls the integrand at plain numbers of its own "
               "choosing, so it cannot differentiate with respect to a traced value (in the limits, in "
               "args, or read by the integrand). Write the integral as a fixed rule with wengert.numpy "
               "instead, for instance Gauss-Legendre: x, w = numpy.polynomial.legendre.leggauss(50), then "
               "(b - a) / 2 * np.sum(w * f((b - a) / 2 * x + (a + b) / 2)); or wrap the value in "
               "wengert.stop_gradient if no gradient should flow through the integral.")

    @functools.wraps(scipy_fun)
    def call(*args: Any, **kwargs: Any) -> Any:
        if _traced((args, kwargs)):
            raise _ConversionError(refusal)
        try:
            return scipy_fun(*args, **kwargs)
        except _ConversionError as error:  # the integrand returned a traced value
            raise _ConversionError(refusal) from error
    call.__wengert_refusal__ = refusal  # type: ignore[attr-defined]  # what plain SciPy's call is told too
    return call


quad, quad_vec, dblquad, tplquad, nquad = (_plain_only(name) for name in
                                           ("quad", "quad_vec", "dblquad", "tplquad", "nquad"))
trapezoid = _wnp.trapezoid  # SciPy's is NumPy's rule, with the same arguments


def __getattr__(name: str) -> Any:
    return getattr(_si, name)


def __dir__() -> list:
    return sorted(set(globals()) | set(dir(_si)))
