"""wengert.scipy.integrate: odeint and solve_ivp.

Values are compared with SciPy's own calls (exactly: the forward solve is SciPy's). Gradients
by the adjoint method are compared with closed forms, with central finite differences to
second order in reverse and forward mode (``wengert.gradcheck``), and with reverse mode
through an explicit fixed-step RK4 loop.

Tolerances. The solves use ``TIGHT`` (rtol=1e-10, atol=1e-12). An adaptive solver picks
different steps when its inputs move, so a finite difference of its solution carries noise
of about the solver's error divided by the difference step: with the step ``EPS`` = 1e-4
that is about 1e-6 relative, and the truncation error of the central difference is about
EPS² = 1e-8. Finite differences are therefore compared at rtol=1e-5, atol=1e-6 (``FD``);
closed forms, whose only error is the solvers', at rtol=1e-6 (``EXACT``); the RK4 loop
(step 0.01, error of order h⁴) at rtol=1e-6.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, Callable, NamedTuple

import numpy as onp
import pytest
import scipy.integrate as si

import wengert
import wengert.numpy as np
from wengert.scipy import integrate
from wengert.scipy.integrate import odeint, solve_ivp

TIGHT = dict(rtol=1e-10, atol=1e-12)
EPS = 1e-4  # finite-difference step
FD = dict(eps=EPS, rtol=1e-5, atol=1e-6)
EXACT = 1e-6  # relative tolerance against closed forms and the RK4 loop


# ----------------------------------------------------------------------------- systems
def decay(y: Any, t: Any, k: Any) -> Any:
    return -k * y


def oscillator(t: Any, y: Any, w: Any) -> Any:  # solve_ivp's order: x'' = -w² x
    return np.stack([y[1], -w ** 2 * y[0]])


def oscillator_yt(y: Any, t: Any, w: Any) -> Any:
    return oscillator(t, y, w)


def forced(y: Any, t: Any, k: Any, w: Any) -> Any:  # explicitly time dependent
    return -k * y + np.sin(w * t)


def lotka_volterra(y: Any, t: Any, a: Any, b: Any, c: Any, d: Any) -> Any:
    prey, predators = y[0], y[1]
    return np.stack([a * prey - b * prey * predators, d * prey * predators - c * predators])


def linear(y: Any, t: Any, A: Any) -> Any:
    return A @ y


def with_tree(y: Any, t: Any, p: dict, power: int) -> Any:  # a dict of parameters and a static int
    return -p["rate"] * y ** power + p["source"]


LV_PARAMS = [1.0, 0.1, 1.5, 0.075]
LV_Y0 = onp.array([10.0, 5.0])
A3 = onp.array([[-0.5, 1.0, 0.0], [-1.0, -0.3, 0.2], [0.1, 0.0, -0.8]])


# ----------------------------------------------------------------------------- values equal SciPy's
class Value(NamedTuple):
    id: str
    ours: Callable  # () -> result of wengert.scipy.integrate
    scipy: Callable  # () -> SciPy's result


T4 = onp.linspace(0.0, 2.0, 4)
VALUES = [
    Value("odeint-scalar-y0", lambda: odeint(decay, 1.5, T4, args=(0.8,)),
          lambda: si.odeint(decay, 1.5, T4, args=(0.8,))),
    Value("odeint-lotka-volterra", lambda: odeint(lotka_volterra, LV_Y0, T4, args=tuple(LV_PARAMS)),
          lambda: si.odeint(lotka_volterra, LV_Y0, T4, args=tuple(LV_PARAMS))),
    Value("odeint-tfirst", lambda: odeint(oscillator, [1.0, 0.0], T4, args=(1.3,), tfirst=True),
          lambda: si.odeint(oscillator, [1.0, 0.0], T4, args=(1.3,), tfirst=True)),
    Value("odeint-decreasing-t", lambda: odeint(decay, [1.0, 2.0], T4[::-1], args=(0.8,), **TIGHT),
          lambda: si.odeint(decay, [1.0, 2.0], T4[::-1], args=(0.8,), **TIGHT)),
    Value("odeint-integer-times", lambda: odeint(decay, [1.0], [0, 1, 2], args=(0.8,)),
          lambda: si.odeint(decay, [1.0], [0, 1, 2], args=(0.8,))),
    Value("odeint-full-output", lambda: odeint(decay, [1.0], T4, args=(0.8,), full_output=True)[1]["nfe"],
          lambda: si.odeint(decay, [1.0], T4, args=(0.8,), full_output=True)[1]["nfe"]),
    Value("odeint-options", lambda: odeint(linear, onp.ones(3), T4, args=(A3,), hmax=0.1, mxstep=2000),
          lambda: si.odeint(linear, onp.ones(3), T4, args=(A3,), hmax=0.1, mxstep=2000)),
    Value("solve_ivp-t_eval", lambda: solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.0], t_eval=T4[1:], args=(1.3,)).y,
          lambda: si.solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.0], t_eval=T4[1:], args=(1.3,)).y),
    Value("solve_ivp-steps-y", lambda: solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.0], args=(1.3,)).y,
          lambda: si.solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.0], args=(1.3,)).y),
    Value("solve_ivp-steps-t", lambda: solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.0], args=(1.3,)).t,
          lambda: si.solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.0], args=(1.3,)).t),
    Value("solve_ivp-backward", lambda: solve_ivp(oscillator, (2.0, 0.0), [1.0, 0.0], t_eval=T4[::-1], args=(1.3,)).y,
          lambda: si.solve_ivp(oscillator, (2.0, 0.0), [1.0, 0.0], t_eval=T4[::-1], args=(1.3,)).y),
    Value("solve_ivp-complex", lambda: solve_ivp(lambda t, y: 1j * y, (0.0, 1.0), [1.0 + 0j]).y,
          lambda: si.solve_ivp(lambda t, y: 1j * y, (0.0, 1.0), [1.0 + 0j]).y),
    Value("solve_ivp-vectorized", lambda: solve_ivp(lambda t, y: -y, (0, 1), [1.0, 2.0], vectorized=True).y,
          lambda: si.solve_ivp(lambda t, y: -y, (0, 1), [1.0, 2.0], vectorized=True).y),
    *[Value(f"solve_ivp-{m}", functools.partial(lambda m: solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.0], method=m,
                                                                    t_eval=T4, args=(1.3,)).y, m),
            functools.partial(lambda m: si.solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.0], method=m, t_eval=T4,
                                                     args=(1.3,)).y, m))
      for m in ("RK23", "DOP853", "Radau", "BDF", "LSODA")],
]


@pytest.mark.parametrize("case", VALUES, ids=[c.id for c in VALUES])
def test_values_equal_scipy(case: Value) -> None:
    ours, theirs = case.ours(), case.scipy()
    assert onp.shape(ours) == onp.shape(theirs)
    assert onp.array_equal(ours, theirs)


def test_solve_ivp_fields_equal_scipy() -> None:
    ours = solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.0], args=(1.3,), dense_output=True)
    theirs = si.solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.0], args=(1.3,), dense_output=True)
    for field in ("nfev", "njev", "nlu", "status", "message", "success"):
        assert ours[field] == theirs[field], field
        assert getattr(ours, field) == getattr(theirs, field), field
    assert onp.array_equal(ours.sol(0.7), theirs.sol(0.7))


def test_traced_values_equal_plain_ones() -> None:
    """Inside a gradient computation the values are SciPy's too."""
    seen = {}

    def loss(k: Any, y0: Any) -> Any:
        y = odeint(lotka_volterra, y0, T4, args=(k, 0.1, 1.5, 0.075))
        seen["y"] = wengert.stop_gradient(y)
        return np.sum(y)

    wengert.grad(loss, argnum=(0, 1))(1.0, LV_Y0)
    assert onp.array_equal(seen["y"], si.odeint(lotka_volterra, LV_Y0, T4, args=tuple(LV_PARAMS)))


def test_no_grad_gives_plain_values() -> None:
    def inside(k: Any) -> Any:
        with wengert.no_grad():
            y = odeint(decay, [1.0], T4, args=(k,))
        assert type(y) is onp.ndarray
        return k * 0.0
    assert wengert.grad(inside)(0.8) == 0.0


# ----------------------------------------------------------------------------- closed forms
def decay_at(k: Any, y0: Any, T: Any) -> Any:  # y(T) for y' = -k y
    return odeint(decay, y0, np.stack([0.0, T]), args=(k,), **TIGHT)[-1, 0]


def decay_ivp_at(k: Any, y0: Any, t0: Any, T: Any) -> Any:
    return solve_ivp(lambda t, y, k: -k * y, (t0, T), y0, method="DOP853", args=(k,), **TIGHT).y[0, -1]


def oscillator_at(w: Any, y0: Any, T: Any) -> Any:  # x(T) for x'' = -w² x
    return odeint(oscillator_yt, y0, np.stack([0.0, T]), args=(w,), **TIGHT)[-1, 0]


def oscillator_ivp_at(w: Any, y0: Any, t0: Any, T: Any) -> Any:
    return solve_ivp(oscillator, np.stack([t0, T]), y0, t_eval=np.stack([T]), method="DOP853", args=(w,),
                     **TIGHT).y[0, 0]


def oscillator_gradient(w: float, y0: onp.ndarray, T: float) -> tuple:
    x0, v0 = y0
    c, s = math.cos(w * T), math.sin(w * T)
    dw = -x0 * T * s + v0 * (T * c / w - s / w ** 2)
    return dw, onp.array([c, s / w]), -x0 * w * s + v0 * c


def repeated_times(k: Any, y0: Any) -> Any:  # outputs at 0, 0.5, 0.5, 1: the repeat counts twice
    return np.sum(odeint(decay, y0, [0.0, 0.5, 0.5, 1.0], args=(k,), **TIGHT))


class Closed(NamedTuple):
    id: str
    f: Callable  # a real scalar function
    args: tuple
    gradient: Callable  # the closed form: one gradient per argument


Y1 = onp.array([1.5])
Y2 = onp.array([0.7, -0.4])
CLOSED = [
    Closed("decay-odeint", decay_at, (0.8, Y1, 1.7),
           lambda k, y0, T: (-T * y0[0] * math.exp(-k * T), onp.array([math.exp(-k * T)]),
                             -k * y0[0] * math.exp(-k * T))),
    Closed("decay-solve_ivp", decay_ivp_at, (0.8, Y1, 0.3, 1.7),
           lambda k, y0, t0, T: (-(T - t0) * y0[0] * math.exp(-k * (T - t0)),
                                 onp.array([math.exp(-k * (T - t0))]),
                                 k * y0[0] * math.exp(-k * (T - t0)), -k * y0[0] * math.exp(-k * (T - t0)))),
    Closed("oscillator-odeint", oscillator_at, (1.3, Y2, 2.1), oscillator_gradient),
    Closed("oscillator-solve_ivp", oscillator_ivp_at, (1.3, Y2, 0.4, 2.5),
           lambda w, y0, t0, T: (lambda g: (g[0], g[1], -g[2], g[2]))(oscillator_gradient(w, y0, T - t0))),
    Closed("single-time", lambda k, y0, t0: np.sum(odeint(decay, y0, np.stack([t0]), args=(k,))), (0.8, Y2, 0.3),
           lambda k, y0, t0: (0.0, onp.ones(2), 0.0)),
    Closed("repeated-times", repeated_times, (0.8, Y1),
           lambda k, y0: (-y0[0] * (2 * 0.5 * math.exp(-0.5 * k) + math.exp(-k)),
                          onp.array([1 + 2 * math.exp(-0.5 * k) + math.exp(-k)]))),
]


@pytest.mark.parametrize("case", CLOSED, ids=[c.id for c in CLOSED])
def test_gradient_matches_closed_form(case: Closed) -> None:
    got = wengert.grad(case.f, argnum=tuple(range(len(case.args))))(*case.args)
    for n, (g, want) in enumerate(zip(got, case.gradient(*case.args))):
        assert onp.allclose(g, want, rtol=EXACT, atol=1e-9), (n, g, want)


def test_second_derivatives_match_closed_form() -> None:
    """d²y(T)/dk² = T² y0 e^{-kT}, and the mixed derivative d²y(T)/dk dy0 = -T e^{-kT}."""
    k, T = 0.8, 1.7
    h = wengert.hessian(lambda p: decay_at(p[0], p[1:], T))(onp.array([k, 1.5]))
    want = onp.array([[T * T * 1.5 * math.exp(-k * T), -T * math.exp(-k * T)], [-T * math.exp(-k * T), 0.0]])
    assert onp.allclose(h, want, rtol=EXACT, atol=1e-9)
    third = wengert.derivative(lambda k: decay_at(k, Y1, T), 3)(k)  # three nested adjoint solves
    assert math.isclose(third, -T ** 3 * 1.5 * math.exp(-k * T), rel_tol=1e-5)


# ----------------------------------------------------------------------------- finite differences
class Check(NamedTuple):
    id: str
    f: Callable  # a function of arrays returning arrays
    args: tuple
    order: int = 2


T5 = onp.array([0.0, 0.4, 1.1, 1.5, 2.0])
CHECKS = [
    Check("decay-odeint-every-input", lambda k, y0, t: odeint(decay, y0, t, args=(k,), **TIGHT), (0.8, Y2, T5)),
    Check("decay-backward-in-time", lambda k, y0, t: odeint(decay, y0, t, args=(k,), **TIGHT),
          (0.8, Y1, T5[::-1])),
    Check("forced-time-dependent", lambda k, w, y0, t: odeint(forced, y0, t, args=(k, w), **TIGHT),
          (0.8, 2.0, Y1, T5)),
    Check("oscillator-tfirst", lambda w, y0, t: odeint(oscillator, y0, t, args=(w,), tfirst=True, **TIGHT),
          (1.3, Y2, T5[:3])),
    Check("linear-3-states-matrix", lambda A, y0: odeint(linear, y0, T5[:3], args=(A,), **TIGHT),
          (A3, onp.array([1.0, -0.5, 0.3]))),
    Check("pytree-args", lambda p, y0: odeint(with_tree, y0, T5[:3], args=(p, 2), **TIGHT),
          ({"rate": 0.7, "source": onp.array([0.2, 0.1])}, Y2)),
    *[Check(f"oscillator-solve_ivp-{m}",
            functools.partial(lambda m, w, y0, span, t_eval: solve_ivp(oscillator, span, y0, method=m, t_eval=t_eval,
                                                                       args=(w,), **TIGHT).y, m),
            (1.3, Y2, onp.array([0.0, 2.5]), onp.array([0.5, 2.0])), order)
      for m, order in (("RK45", 1), ("DOP853", 2), ("LSODA", 2))],  # RK45 at rtol 1e-10 takes many steps
    Check("solve_ivp-t_eval-from-t0", lambda w, y0: solve_ivp(oscillator, (0.0, 2.0), y0, method="DOP853",
                                                             t_eval=T5[:3], args=(w,), **TIGHT).y, (1.3, Y2)),
    Check("solve_ivp-vectorized", lambda k, y0: solve_ivp(lambda t, y, k: -k * y, (0.0, 1.5), y0, t_eval=T5[1:3],
                                                         vectorized=True, args=(k,), **TIGHT).y, (0.8, Y2)),
    Check("lotka-volterra", lambda p, y0: odeint(lotka_volterra, y0, T5[:3], args=tuple(p), **TIGHT),
          (LV_PARAMS, LV_Y0), order=1),
]


@pytest.mark.parametrize("case", CHECKS, ids=[c.id for c in CHECKS])
def test_finite_differences(case: Check) -> None:
    """Reverse and forward mode against central differences (second order: gradients of
    gradients, which differentiate the adjoint solves themselves)."""
    wengert.gradcheck(case.f, *case.args, order=case.order, **FD)


def test_gradcheck_would_notice_a_wrong_gradient() -> None:
    """The comparison is sharp enough to see a gradient 1e-4 off."""
    @wengert.custom_vjp
    def nudged(k: Any) -> Any:
        return k

    nudged.defvjp(lambda k: (k, None), lambda _, g: (g * (1 + 1e-4),))
    with pytest.raises(wengert.GradcheckError):
        wengert.gradcheck(lambda k, y0: odeint(decay, y0, T5[:3], args=(nudged(k),), **TIGHT), 0.8, Y1,
                          order=1, modes=("reverse",), **FD)


# ----------------------------------------------------------------------------- fixed-step RK4
def rk4(f: Callable, y0: Any, t: Any, args: tuple, h: float) -> Any:
    """Classical RK4 with about step ``h`` between consecutive output times, written with
    wengert.numpy so that wengert differentiates through every step."""
    out, y = [y0], y0
    for a, b in zip(t[:-1], t[1:]):
        m = max(1, math.ceil(abs(float(wengert.stop_gradient(b - a))) / h))
        dt = (b - a) / m
        for j in range(m):
            s = a + j * dt
            k1 = f(y, s, *args)
            k2 = f(y + 0.5 * dt * k1, s + 0.5 * dt, *args)
            k3 = f(y + 0.5 * dt * k2, s + 0.5 * dt, *args)
            k4 = f(y + dt * k3, s + dt, *args)
            y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(y)
    return np.stack(out)


class Loop(NamedTuple):
    id: str
    f: Callable  # f(y, t, *params)
    params: list
    y0: onp.ndarray
    t: onp.ndarray


LOOPS = [
    Loop("lotka-volterra", lotka_volterra, LV_PARAMS, LV_Y0, T5[:4]),
    Loop("forced", forced, [0.8, 2.0], Y1, T5),
    Loop("oscillator", oscillator_yt, [1.3], Y2, T5),
]


@pytest.mark.parametrize("case", LOOPS, ids=[c.id for c in LOOPS])
def test_adjoint_matches_differentiated_rk4_loop(case: Loop) -> None:
    weights = onp.random.default_rng(3).normal(size=(len(case.t), len(case.y0)))

    def loss(solve: Callable) -> Callable:
        return lambda p, y0, t: np.sum(weights * solve(p, y0, t))

    adjoint = wengert.grad(loss(lambda p, y0, t: odeint(case.f, y0, t, args=tuple(p), **TIGHT)), (0, 1, 2))
    looped = wengert.grad(loss(lambda p, y0, t: rk4(case.f, y0, t, tuple(p), 0.01)), (0, 1, 2))
    for got, want in zip(adjoint(case.params, case.y0, case.t), looped(case.params, case.y0, case.t)):
        assert onp.allclose(got, want, rtol=EXACT, atol=1e-8), (got, want)


# ----------------------------------------------------------------------------- output times
def test_gradient_wrt_output_time_is_func_there() -> None:
    """d/dt_i Σ G·y = G_i · func(y_i, t_i) for i ≥ 1; for an autonomous system moving every
    time together changes nothing, so the t gradients sum to zero."""
    G = onp.random.default_rng(5).normal(size=(len(T5), 2))
    args = tuple(LV_PARAMS)
    g = wengert.grad(lambda t: np.sum(G * odeint(lotka_volterra, LV_Y0, t, args=args, **TIGHT)))(T5)
    ys = si.odeint(lotka_volterra, LV_Y0, T5, args=args, **TIGHT)
    want = [G[i] @ lotka_volterra(ys[i], T5[i], *args) for i in range(1, len(T5))]
    assert onp.allclose(g[1:], want, rtol=1e-12)
    assert abs(onp.sum(g)) < 1e-6 * onp.max(onp.abs(g))


def test_solve_ivp_steps_gradient_equals_t_eval_at_the_steps() -> None:
    """Without t_eval the outputs sit at the solver's steps: the gradient is that of a solve
    with t_eval fixed at those steps, and .t moves with the ends of t_span."""
    steps = si.solve_ivp(oscillator, (0.0, 2.0), Y2, args=(1.3,), **TIGHT).t
    G = onp.random.default_rng(7).normal(size=(2, len(steps)))
    free = wengert.grad(lambda y0, w: np.sum(G * solve_ivp(oscillator, (0.0, 2.0), y0, args=(w,), **TIGHT).y),
                        (0, 1))(Y2, 1.3)
    fixed = wengert.grad(lambda y0, w: np.sum(G * solve_ivp(oscillator, (0.0, 2.0), y0, t_eval=steps, args=(w,),
                                                            **TIGHT).y), (0, 1))(Y2, 1.3)
    for a, b in zip(free, fixed):
        assert onp.allclose(a, b, rtol=1e-7)
    dt = wengert.jacobian(lambda span: solve_ivp(oscillator, span, Y2, args=(1.3,), **TIGHT).t)(onp.array([0.0, 2.0]))
    assert onp.array_equal(dt[[0, -1]], onp.eye(2)) and not onp.any(dt[1:-1])


def test_forward_and_reverse_jacobians_agree() -> None:
    def solution(y0: Any, p: Any, t: Any) -> Any:
        return odeint(lotka_volterra, y0, t, args=tuple(p[i] for i in range(4)), **TIGHT)

    point = (LV_Y0, onp.array(LV_PARAMS), T5[:3])
    forward = wengert.jacfwd(solution, (0, 1, 2))(*point)
    reverse = wengert.jacrev(solution, (0, 1, 2))(*point)
    for a, b in zip(forward, reverse):
        assert a.shape == b.shape and onp.allclose(a, b, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- single precision
CALLS = [0]  # evaluations of counted_lotka_volterra


def counted_lotka_volterra(y: Any, t: Any, *p: Any) -> Any:
    CALLS[0] += 1
    return lotka_volterra(y, t, *p)


SINGLE = [  # (id, a function of the first Lotka-Volterra parameter)
    ("odeint", lambda a: np.sum(odeint(counted_lotka_volterra, LV_Y0, T5, args=(a, 0.1, 1.5, 0.075), **TIGHT))),
    ("solve_ivp", lambda a: np.sum(solve_ivp(lambda t, y, *p: counted_lotka_volterra(y, t, *p), (0.0, 2.0), LV_Y0,
                                             method="DOP853", t_eval=T5, args=(a, 0.1, 1.5, 0.075), **TIGHT).y)),
]


@pytest.mark.parametrize("name, f", SINGLE, ids=[s[0] for s in SINGLE])
def test_single_precision_parameter_gets_the_double_precision_derivative(name: str, f: Callable) -> None:
    """SciPy solves in double precision whatever the parameters' dtype, and so do the adjoint and
    sensitivity solves: a float32 parameter takes the very solves of its float64 value (the same
    number of steps; float32 rounding noise in them would make the step control work much
    harder, or give up), and its derivative is the float64 one (itself checked against finite
    differences), rounded to float32 at the end."""
    wengert.gradcheck(f, onp.float64(1.0), order=1, **FD)
    derivatives, counts = [], []
    for a in (onp.float64(1.0), onp.float32(1.0)):
        CALLS[0] = 0
        derivatives += [wengert.grad(f)(a), wengert.jvp(f, (a,), (a,))[1]]
        counts.append(CALLS[0])
    g64, t64, g32, t32 = derivatives
    assert counts[0] == counts[1]
    assert g32.dtype == onp.float32 and g32 == onp.float32(g64)
    assert t32 == t64


# ----------------------------------------------------------------------------- errors
RATE = None  # a module global that one error case sets to a traced value


def global_decay(y: Any, t: Any) -> Any:
    return -RATE * y


def _closure_case(k: Any) -> Any:
    return odeint(lambda y, t: -k * y, Y1, T4)


def _global_case(k: Any) -> Any:
    global RATE
    RATE = k
    try:
        return solve_ivp(lambda t, y: global_decay(y, t), (0.0, 1.0), Y1).y
    finally:
        RATE = None


def _partial_case(k: Any) -> Any:
    return odeint(functools.partial(decay, k=k), Y1, T4)


def _grad_of(f: Callable) -> Callable:
    return lambda: wengert.grad(lambda k: np.sum(f(k)))(0.8)


class Error(NamedTuple):
    id: str
    call: Callable
    kind: type
    words: tuple  # fragments the message must contain


ERRORS = [
    Error("odeint-t-not-monotonic", lambda: odeint(decay, Y1, [0.0, 1.0, 0.5], args=(0.8,)), ValueError,
          ("odeint", "t[2] = 0.5", "monotonic")),
    Error("odeint-t-2d", lambda: odeint(decay, Y1, onp.ones((2, 2)), args=(0.8,)), ValueError,
          ("odeint", "t must be a non-empty 1-D", "(2, 2)")),
    Error("odeint-t-empty", lambda: odeint(decay, Y1, [], args=(0.8,)), ValueError, ("odeint", "t must")),
    Error("odeint-t-nan", lambda: odeint(decay, Y1, [0.0, onp.nan], args=(0.8,)), ValueError,
          ("odeint", "t holds a value that is not finite")),
    Error("odeint-y0-2d", lambda: odeint(decay, onp.ones((2, 2)), T4, args=(0.8,)), ValueError,
          ("odeint", "y0 must be a non-empty 1-D", "(2, 2)")),
    Error("odeint-y0-complex", lambda: odeint(decay, [1j], T4, args=(0.8,)), TypeError,
          ("odeint", "y0 is complex")),
    Error("odeint-y0-strings", lambda: odeint(decay, ["a"], T4, args=(0.8,)), TypeError, ("odeint", "y0 must hold")),
    Error("odeint-func-size", lambda: odeint(lambda y, t: np.ones(3), Y2, T4), ValueError,
          ("odeint", "func returned 3 value(s)", "y0 has 2")),
    Error("odeint-func-not-callable", lambda: odeint(3.0, Y1, T4), TypeError, ("odeint", "func must be a callable")),
    Error("odeint-args-not-tuple", lambda: odeint(decay, Y1, T4, args=0.8), TypeError,
          ("odeint", "args must be a tuple", "args=(k,)")),
    Error("odeint-unknown-option", lambda: odeint(decay, Y1, T4, args=(0.8,), max_step=0.1), TypeError,
          ("odeint", "unknown option", "max_step")),
    Error("odeint-traced-complex-arg", lambda: wengert.grad(
        lambda c: np.sum(np.real(odeint(lambda y, t, c: -np.real(c) * y, Y1, T4, args=(c,)))))(1.0 + 1j),
        TypeError, ("odeint", "args element 0 is complex")),
    Error("odeint-closure", _grad_of(_closure_case), TypeError,
          ("odeint", "func uses a traced value", "'k'", "args")),
    Error("odeint-closure-forward-mode", lambda: wengert.jvp(_closure_case, (0.8,), (1.0,)), TypeError,
          ("odeint", "func uses a traced value", "'k'")),
    Error("odeint-partial", _grad_of(_partial_case), TypeError, ("odeint", "functools.partial argument", "args")),
    Error("solve_ivp-global", _grad_of(_global_case), TypeError, ("solve_ivp", "fun uses a traced value", "args")),
    Error("solve_ivp-t_eval-repeated", lambda: solve_ivp(decay, (0.0, 1.0), Y1, t_eval=[0.1, 0.5, 0.5]), ValueError,
          ("solve_ivp", "t_eval must be strictly increasing or strictly decreasing", "t_eval[2]")),
    Error("solve_ivp-t_eval-outside", lambda: solve_ivp(decay, (0.0, 1.0), Y1, t_eval=[0.5, 1.5]), ValueError,
          ("solve_ivp", "t_eval must lie within t_span")),
    Error("solve_ivp-t_eval-direction", lambda: solve_ivp(decay, (0.0, 1.0), Y1, t_eval=[0.5, 0.2]), ValueError,
          ("solve_ivp", "t_eval must be sorted in the direction of integration")),
    Error("solve_ivp-t_span-shape", lambda: solve_ivp(decay, (0.0, 1.0, 2.0), Y1), ValueError,
          ("solve_ivp", "t_span must be a pair")),
    Error("solve_ivp-y0-scalar", lambda: solve_ivp(decay, (0.0, 1.0), 1.0), ValueError,
          ("solve_ivp", "y0 must be a 1-D array")),
    Error("solve_ivp-args-not-tuple", lambda: solve_ivp(decay, (0.0, 1.0), Y1, args=0.8), TypeError,
          ("solve_ivp", "args must be a tuple")),
    Error("solve_ivp-fun-not-callable", lambda: solve_ivp(None, (0.0, 1.0), Y1), TypeError,
          ("solve_ivp", "fun must be a callable")),
    Error("solve_ivp-traced-events", _grad_of(
        lambda k: solve_ivp(lambda t, y, k: -k * y, (0.0, 1.0), Y1, args=(k,), events=lambda t, y, k: y[0] - 0.5).y),
        TypeError, ("solve_ivp", "events cannot be differentiated")),
    *[Error(f"{name}-traced-{where}", _grad_of(call), wengert.ConversionError,
            (f"{name}: SciPy's adaptive quadrature", "leggauss", "wengert.stop_gradient"))
      for name, where, call in [
          ("quad", "closure", lambda k: integrate.quad(lambda x: k * x, 0.0, 1.0)[0]),
          ("quad", "args", lambda k: integrate.quad(lambda x, k: k * x, 0.0, 1.0, args=(k,))[0]),
          ("quad", "limit", lambda k: integrate.quad(onp.sin, 0.0, k)[0]),
          ("quad_vec", "closure", lambda k: integrate.quad_vec(lambda x: k * x, 0.0, 1.0)[0]),
          ("dblquad", "closure", lambda k: integrate.dblquad(lambda y, x: k * x * y, 0.0, 1.0, 0.0, 1.0)[0]),
          # SciPy's own, met by a traced value: the same explanation, not advice to call wengert's
          ("quad", "plain SciPy", lambda k: si.quad(lambda x: k * x, 0.0, 1.0)[0]),
          ("dblquad", "plain SciPy", lambda k: si.dblquad(lambda y, x: k * x * y, 0, 1, 0, 1)[0])]],
    Error("solve_ivp-traced-complex", _grad_of(
        lambda k: np.real(solve_ivp(lambda t, y, k: -k * y, (0.0, 1.0), onp.array([1j]), args=(k,)).y)),
        TypeError, ("solve_ivp", "y0 is complex")),
]


def test_trapezoid_is_numpys_rule() -> None:
    """SciPy's trapezoid is NumPy's: wengert.scipy.integrate has it, differentiable."""
    y, x = onp.array([1.0, 3.0, 2.0, 5.0]), onp.array([0.0, 0.5, 1.5, 2.0])
    assert integrate.trapezoid(y, x) == si.trapezoid(y, x)
    assert integrate.trapezoid(y, dx=0.3) == si.trapezoid(y, dx=0.3)
    f = lambda y, x: integrate.trapezoid(np.sin(y), x)  # noqa: E731
    wengert.gradcheck(f, y, x, order=2)


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_errors_name_the_function_and_argument(case: Error) -> None:
    with pytest.raises(case.kind) as info:
        case.call()
    for word in case.words:
        assert word in str(info.value), (word, str(info.value))


def test_failed_backward_solve_is_reported() -> None:
    """A forward solve out of steps warns (SciPy's warning); the backward solve then fails too
    and its error names odeint and says what to change."""
    def loss(k: Any) -> Any:
        return np.sum(odeint(oscillator_yt, Y2, [0.0, 30.0], args=(k,), mxstep=20, **TIGHT))

    with pytest.warns(si.ODEintWarning), pytest.raises(RuntimeError, match="odeint: the solve of the augmented"):
        wengert.grad(loss)(1.3)


def _robertson(t: Any, y: Any, k1: Any, k2: Any, k3: Any) -> Any:
    return np.stack([-k1 * y[0] + k3 * y[1] * y[2], k1 * y[0] - k2 * y[1] ** 2 - k3 * y[1] * y[2], k2 * y[1] ** 2])


@pytest.mark.parametrize("method, t_eval", [("BDF", [40.0]), ("LSODA", [40.0]), ("LSODA", [1.0, 40.0])])
def test_unstable_backward_solve_is_reported(method: str, t_eval: list) -> None:
    """The adjoint of the stiff Robertson system, integrated backward, blows up: SciPy raised its
    own ValueError (a NaN met in a factorisation, or the next interval's start), or LSODA
    returned NaN with no error. Each is the documented RuntimeError, naming the interval."""
    k, y0 = onp.array([0.04, 3e7, 1e4]), onp.array([1.0, 0.0, 0.0])

    def loss(k: Any) -> Any:
        sol = solve_ivp(_robertson, (0.0, 40.0), y0, method=method, t_eval=onp.array(t_eval), args=(k[0], k[1], k[2]),
                        rtol=1e-8, atol=1e-12)
        return np.sum(sol.y[0])
    with pytest.raises(RuntimeError, match=r"^solve_ivp: the solve of the augmented system .* from t=40 to t=(0|1) "
                                           r"failed: "), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (overflow inside the blown-up solve)
        wengert.grad(loss)(k)


@pytest.mark.parametrize("solver", ["odeint", "solve_ivp"])
def test_nan_cotangent_gives_nan_not_an_error(solver: str) -> None:
    """(SciPy's solve_ivp refused the NaN start of the backward solve.)"""
    def f(k: Any) -> Any:
        if solver == "odeint":
            return odeint(oscillator_yt, Y2, [0.0, 1.0], args=(k,), **TIGHT)
        return solve_ivp(lambda t, y, k: oscillator_yt(y, t, k), (0.0, 1.0), Y2, t_eval=onp.array([1.0]), args=(k,),
                         **TIGHT).y
    _, pull = wengert.vjp(f, 1.3)
    assert onp.isnan(pull(onp.full((2, 2) if solver == "odeint" else (2, 1), onp.nan)))


def test_other_names_are_scipys() -> None:
    assert integrate.simpson is si.simpson and integrate.cumulative_trapezoid is si.cumulative_trapezoid
    assert integrate.quad(onp.sin, 0.0, 1.0) == si.quad(onp.sin, 0.0, 1.0)  # on plain values, SciPy's quad
    assert "solve_ivp" in dir(integrate) and "trapezoid" in dir(integrate)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing above warns by accident
        assert integrate.odeint(decay, [1.0], [0.0, 1.0], args=(0.8,)).shape == (2, 1)


def test_pulling_back_cotangents_written_into_one_reused_array():
    """A Jacobian built row by row, the unit cotangent written into the same array each time
    (handed to the solve's rule as it is): each row is the derivative of its own output, here
    y(0) = y0 and y(1) = R(1) y0 for the oscillator."""
    def f(y0):
        return odeint(lambda y, t: np.stack([y[1], -y[0]]), y0, [0.0, 1.0], rtol=1e-10, atol=1e-12)
    out, pull = wengert.vjp(f, onp.array([1.0, 0.0]))
    e, rows = onp.zeros_like(out), []
    for i in range(out.size):
        e[...] = 0.0
        e.flat[i] = 1.0
        rows.append(pull(e)[0])
    rotation = onp.array([[math.cos(1.0), math.sin(1.0)], [-math.sin(1.0), math.cos(1.0)]])
    assert onp.allclose(rows, onp.vstack([onp.eye(2), rotation]), atol=1e-7)


def test_a_traced_value_read_late_from_the_closure_is_named_as_such():
    """The up-front check sees what the function reads at the start; a value read only later
    reaches SciPy's solver, and the error says where it came from (not to call what was called)."""
    with pytest.raises(wengert.ConversionError, match=r"reads from outside its arguments.*args=") as raised:
        wengert.grad(lambda k: odeint(lambda y, t: -y * (k if t > 0.5 else 1.0), onp.array([1.0]),
                                      [0.0, 1.0])[-1, 0])(0.5)
    assert "instead" not in str(raised.value)
