"""The engine: accumulation over fan-out, nested traces (higher derivatives, perturbation
confusion), define-by-run control flow, long tapes, memory release, escaped tracers,
no_grad and threads."""

from __future__ import annotations

import gc
import math
import os
import platform
import subprocess
import sys
import threading
import tracemalloc
import weakref

import autograd
import autograd.numpy as anp
import numpy as onp
import pytest

import wengert
import wengert.numpy as np
from _helpers import close as helpers_close
from _helpers import fd_grad
from wengert import elementwise_grad, grad, make_vjp, stop_gradient, value_and_grad, vjp


def fd(f, x, eps=1e-6):
    """Central finite difference of a scalar function of a float."""
    return (float(f(x + eps)) - float(f(x - eps))) / (2 * eps)


def close(a, b, rtol=1e-9, atol=1e-12):
    return onp.allclose(onp.asarray(a, dtype=float), onp.asarray(b, dtype=float), rtol=rtol, atol=atol)


X4 = onp.array([0.3, -1.1, 0.8, 2.0])


# ----------------------------------------------------------------------------- fan-out
def _loop_sum(x):
    s = 0.0
    for k in range(1, 101):
        s = s + k * x
    return s


def _powers(x):
    s = 0.0
    for k in range(1, 8):
        s = s + x ** k
    return s


FANOUT = [
    # (name, f, closed-form derivative)
    ("x*x*x", lambda x: x * x * x, lambda x: 3 * x ** 2),
    ("x+x+x", lambda x: x + x + x, lambda x: 3.0),
    ("x-x", lambda x: x - x, lambda x: 0.0),
    ("x*(x+1)*(x-2)", lambda x: x * (x + 1) * (x - 2), lambda x: 3 * x ** 2 - 2 * x - 2),
    ("x/x*x", lambda x: x / x * x, lambda x: 1.0),
    ("loop k*x", _loop_sum, lambda x: 5050.0),
    ("loop x**k", _powers, lambda x: sum(k * x ** (k - 1) for k in range(1, 8))),
    ("python sum of 1000 uses", lambda x: sum([x] * 1000), lambda x: 1000.0),
    ("sin(x)*sin(x)+sin(x)", lambda x: np.sin(x) * np.sin(x) + np.sin(x),
     lambda x: (2 * math.sin(x) + 1) * math.cos(x)),
    ("exp shared", lambda x: (lambda e: e * e * e)(np.exp(x)), lambda x: 3 * math.exp(3 * x)),
]


@pytest.mark.parametrize("name,f,df", FANOUT, ids=[c[0] for c in FANOUT])
@pytest.mark.parametrize("x0", [0.7, -1.3])
def test_fan_out_accumulates_all_uses(name, f, df, x0):
    g = grad(f)(x0)
    assert g == pytest.approx(df(x0), rel=1e-10, abs=1e-12)


ARRAY_FANOUT = [
    ("y*y+y", lambda x: np.sum((lambda y: y * y + y)(np.sin(x))),
     lambda x: (2 * onp.sin(x) + 1) * onp.cos(x)),
    ("outer of self", lambda x: np.sum(x[:, None] * x[None, :]), lambda x: 2 * onp.sum(x) * onp.ones_like(x)),
    ("x used in reduction and elementwise", lambda x: np.sum(x * np.sum(x)),
     lambda x: 2 * onp.sum(x) * onp.ones_like(x)),
    ("repeated slices", lambda x: np.sum(x[:2]) + np.sum(x[1:]) + x[1] * x[1],
     lambda x: onp.array([1.0, 2.0 + 2 * x[1], 1.0, 1.0])),
    ("accumulate in loop", lambda x: np.sum(sum(x * k for k in range(10))),
     lambda x: 45.0 * onp.ones_like(x)),
]


@pytest.mark.parametrize("name,f,df", ARRAY_FANOUT, ids=[c[0] for c in ARRAY_FANOUT])
def test_array_fan_out(name, f, df):
    assert close(grad(f)(X4), df(X4))


# ----------------------------------------------------------------------------- higher derivatives
HIGHER = [
    # (name, f, [f', f'', f''', f''''])
    ("x**5", lambda x: x ** 5, [lambda x: 5 * x ** 4, lambda x: 20 * x ** 3, lambda x: 60 * x ** 2,
                                 lambda x: 120 * x]),
    ("poly", lambda x: 2 * x ** 4 - 3 * x ** 2 + x, [lambda x: 8 * x ** 3 - 6 * x + 1,
                                                       lambda x: 24 * x ** 2 - 6, lambda x: 48 * x,
                                                       lambda x: 48.0]),
    ("sin", np.sin, [math.cos, lambda x: -math.sin(x), lambda x: -math.cos(x), math.sin]),
    ("exp", np.exp, [math.exp] * 4),
    ("exp(2x)", lambda x: np.exp(2 * x), [lambda x: 2 * math.exp(2 * x), lambda x: 4 * math.exp(2 * x),
                                          lambda x: 8 * math.exp(2 * x), lambda x: 16 * math.exp(2 * x)]),
    ("log", np.log, [lambda x: 1 / x, lambda x: -1 / x ** 2, lambda x: 2 / x ** 3, lambda x: -6 / x ** 4]),
    ("1/x", lambda x: 1 / x, [lambda x: -1 / x ** 2, lambda x: 2 / x ** 3, lambda x: -6 / x ** 4,
                              lambda x: 24 / x ** 5]),
    ("x*sin(x)", lambda x: x * np.sin(x), [lambda x: math.sin(x) + x * math.cos(x),
                                           lambda x: 2 * math.cos(x) - x * math.sin(x),
                                           lambda x: -3 * math.sin(x) - x * math.cos(x),
                                           lambda x: -4 * math.cos(x) + x * math.sin(x)]),
]


@pytest.mark.parametrize("name,f,derivs", HIGHER, ids=[c[0] for c in HIGHER])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("x0", [0.6, 1.7])
def test_repeated_grad_matches_closed_form(name, f, derivs, order, x0):
    d = f
    for _ in range(order):
        d = grad(d)
    value = d(x0)
    assert type(value) is float
    assert value == pytest.approx(derivs[order - 1](x0), rel=1e-9, abs=1e-10)


@pytest.mark.parametrize("f,af", [
    (lambda x: np.sum(np.sin(x) * x ** 2), lambda x: anp.sum(anp.sin(x) * x ** 2)),
    (lambda x: np.sum(np.tanh(np.outer(x, x))), lambda x: anp.sum(anp.tanh(anp.outer(x, x)))),
    (lambda x: np.log(np.sum(np.exp(x))), lambda x: anp.log(anp.sum(anp.exp(x)))),
])
def test_hessian_vector_product_matches_autograd(f, af):
    v = onp.array([1.0, -0.5, 0.25, 2.0])
    hvp = grad(lambda x: np.sum(grad(f)(x) * v))(X4)
    ag = autograd.grad(lambda x: anp.sum(autograd.grad(af)(x) * v))(X4)
    assert close(hvp, ag, rtol=1e-9)
    wengert.gradcheck(f, X4, order=2)


# ----------------------------------------------------------------------------- perturbation confusion
def _triple(x):
    # innermost d/dz (x*y*z) = x*y; times y: x*y**2; d/dy at y = x: 2*x*x; d/dx: 4*x
    return grad(lambda y: grad(lambda z: x * y * z)(1.0) * y)(x)


PERTURBATION = [
    # (name, wengert, autograd, point, expected)
    ("x*d/dy(x*y)", lambda x: x * grad(lambda y: x * y)(2.0),
     lambda x: x * autograd.grad(lambda y: x * y)(2.0), 1.0, 2.0),
    ("siskind-pearlmutter x*d/dy(x+y)", lambda x: x * grad(lambda y: x + y)(1.0),
     lambda x: x * autograd.grad(lambda y: x + y)(1.0), 1.0, 1.0),
    ("d/dy(x*y**2) at y=x", lambda x: grad(lambda y: x * y ** 2)(x),
     lambda x: autograd.grad(lambda y: x * y ** 2)(x), 1.5, 6.0),
    ("x*d/dy(x*y**2) at y=x", lambda x: x * grad(lambda y: x * y ** 2)(x),
     lambda x: x * autograd.grad(lambda y: x * y ** 2)(x), 1.5, 6 * 1.5 ** 2),
    ("triple nesting", _triple, None, 2.0, 8.0),
    ("inner ignores y", lambda x: x * grad(lambda y: x * x)(3.0),
     lambda x: x * autograd.grad(lambda y: x * x)(3.0), 2.0, 0.0),
    ("inner sin closure", lambda x: grad(lambda y: np.sin(x * y))(1.0),
     lambda x: autograd.grad(lambda y: anp.sin(x * y))(1.0), 0.4, math.cos(0.4) - 0.4 * math.sin(0.4)),
]


@pytest.mark.filterwarnings("ignore:Output seems independent of input")
@pytest.mark.parametrize("name,f,af,x0,expected", PERTURBATION, ids=[c[0] for c in PERTURBATION])
def test_no_perturbation_confusion(name, f, af, x0, expected):
    g = grad(f)(x0)
    assert g == pytest.approx(expected, rel=1e-12, abs=1e-12)
    if af is not None:
        assert g == pytest.approx(autograd.grad(af)(x0), rel=1e-12, abs=1e-12)
    assert g == pytest.approx(fd(f, x0), rel=1e-6, abs=1e-7)


def test_perturbation_confusion_on_arrays():
    def f(x):
        inner = grad(lambda y: np.sum(x * y ** 2))(onp.ones(4))  # 2*x*y at y = 1 -> 2x
        return np.sum(x * inner)  # 2 * sum(x**2)
    assert close(grad(f)(X4), 4 * X4)


def test_the_canonical_example():
    assert grad(lambda x: x * grad(lambda y: x * y)(2.0))(1.0) == 2.0


# ----------------------------------------------------------------------------- gradients inside f
def test_gradient_computed_inside_function_being_differentiated():
    def h(x):
        return np.sum(np.sin(x) * x)

    def f(x):
        return np.sum(grad(h)(x) ** 2)

    def af(x):
        return anp.sum(autograd.grad(lambda z: anp.sum(anp.sin(z) * z))(x) ** 2)
    assert close(grad(f)(X4), autograd.grad(af)(X4))


def test_value_and_grad_vjp_and_elementwise_grad_inside_grad():
    def f(x):
        value, g = value_and_grad(lambda z: np.sum(z ** 3))(x)
        out, pull = vjp(np.sin, x)
        (c,) = pull(onp.ones(4))
        e = elementwise_grad(np.exp)(x)
        fn, val = make_vjp(np.tanh)(x)
        return value + np.sum(g * x) + np.sum(c * out) + np.sum(e) + np.sum(fn(onp.ones(4)) * val)

    def expected(x):  # by hand: d/dx [ sum x^3 + 3 x^3 + cos x sin x + e^x + (1 - tanh^2) tanh ]
        t = onp.tanh(x)
        return 12 * x ** 2 + onp.cos(2 * x) + onp.exp(x) + (1 - 3 * t ** 2) * (1 - t ** 2)
    assert close(grad(f)(X4), expected(X4), rtol=1e-9)


def test_inner_value_keeps_outer_dependence():
    # value_and_grad's value inside an outer grad is still traced by the outer trace
    def f(x):
        value, g = value_and_grad(lambda y: x * y * y)(3.0)
        return value * g  # (9x) * (6x) = 54 x^2
    assert grad(f)(2.0) == pytest.approx(216.0)


# ----------------------------------------------------------------------------- define-by-run
def piecewise(x):
    if x > 0:
        return x ** 2
    return -x ** 3


def doubling(x):
    while x < 10.0:
        x = x * 2.0
    return x


def rpower(x, n):
    return 1.0 if n == 0 else x * rpower(x, n - 1)


def newton_sqrt(a):
    x = a
    for _ in range(30):
        x = 0.5 * (x + a / x)
    return x


def array_branch(x):
    total = 0.0
    for xi in x:
        total = total + (np.sin(xi) if xi > 0 else xi ** 2)
    return total


CONTROL = [
    ("if positive", piecewise, 1.5, 3.0),
    ("if negative", piecewise, -1.5, -3 * 1.5 ** 2),
    ("while 3 doublings", doubling, 1.5, 8.0),     # 1.5 -> 12 after 3 doublings
    ("while 1 doubling", doubling, 6.0, 2.0),
    ("recursion x**5", lambda x: rpower(x, 5), 1.3, 5 * 1.3 ** 4),
    ("newton sqrt", newton_sqrt, 2.0, 0.5 / math.sqrt(2.0)),
]


@pytest.mark.parametrize("name,f,x0,expected", CONTROL, ids=[c[0] for c in CONTROL])
def test_define_by_run_control_flow(name, f, x0, expected):
    assert grad(f)(x0) == pytest.approx(expected, rel=1e-10)


def test_control_flow_on_array_elements():
    g = grad(array_branch)(X4)
    assert close(g, onp.where(X4 > 0, onp.cos(X4), 2 * X4))


def test_recursion_on_arrays_matches_autograd():
    def f(x, n, m):
        return x if n == 0 else f(m.tanh(x) * 1.5 + x * 0.1, n - 1, m)
    g = grad(lambda x: np.sum(f(x, 12, np)))(X4)
    ag = autograd.grad(lambda x: anp.sum(f(x, 12, anp)))(X4)
    assert close(g, ag)


# ----------------------------------------------------------------------------- long tapes
def test_million_operation_chain_has_no_recursion_error():
    a, b, n = 1.0000001, 1e-9, 500_000  # two operations per step: 1,000,000 operations

    def f(x):
        for _ in range(n):
            x = x * a + b
        return x

    value, g = value_and_grad(f)(1.0)
    assert g == pytest.approx(a ** n, rel=1e-9)
    assert value == pytest.approx(a ** n + b * (a ** n - 1) / (a - 1), rel=1e-9)


def test_long_array_chain():
    def f(x):
        for _ in range(2000):
            x = x * 0.999 + 0.001
        return np.sum(x)
    assert close(grad(f)(X4), 0.999 ** 2000 * onp.ones(4))


# ----------------------------------------------------------------------------- memory
def test_saved_values_are_released_after_grad():
    refs = []

    def f(x):
        c = onp.linspace(1.0, 2.0, x.shape[0])  # a plain constant saved by the multiply
        refs.append(weakref.ref(c))
        y = np.sin(x)
        refs.append(weakref.ref(stop_gradient(y)))
        z = y * c
        refs.append(weakref.ref(stop_gradient(z)))
        w = np.exp(z)
        refs.append(weakref.ref(stop_gradient(w)))
        return np.sum(w * y)

    g = grad(f)(X4)
    assert g.shape == (4,)
    gc.collect()
    assert len(refs) == 4
    assert all(r() is None for r in refs), [r() is None for r in refs]


def test_saved_values_are_released_while_the_sweep_passes_them():
    """grad drops each entry's saved values once the sweep is past it: a rule that runs last
    (on the first operation) sees the later intermediates already freed; a vjp function,
    which may be called again, keeps them."""
    refs, alive_at_last_rule = [], []

    @wengert.primitive
    def first(x):
        return x * 1.0

    wengert.defvjp(first, lambda g, ans, x: alive_at_last_rule.append(
        [r() is not None for r in refs]) or g)

    def f(x):
        y = np.exp(first(x))
        z = np.sin(y)
        refs.extend([weakref.ref(y.value), weakref.ref(z.value)])  # (stop_gradient would watch them)
        return np.sum(z * z)

    expected = 2 * onp.sin(onp.exp(X4)) * onp.cos(onp.exp(X4)) * onp.exp(X4)
    assert close(grad(f)(X4), expected)
    assert alive_at_last_rule == [[False, False]]
    refs.clear(), alive_at_last_rule.clear()
    out, pullback = vjp(f, X4)
    for _ in range(2):  # the recording is kept for the next call
        assert close(pullback(1.0)[0], expected)
    assert alive_at_last_rule == [[True, True]] * 2


def test_sweep_reuses_the_memory_of_values_it_has_passed():
    """Peak memory of a gradient with respect to 20 weight arrays: the forward pass saves two
    arrays per layer (40), and the 20 gradients made by the sweep fit into the memory of the
    values it has passed (61 arrays at the peak if the list kept them all to the end)."""
    x = onp.linspace(0.0, 1.0, 100_000)  # 800 kB per array
    ws = [onp.full_like(x, 0.5 + k / 40) for k in range(20)]

    def f(ws):
        h = x
        for w in ws:
            h = np.sin(h * w)
        return np.sum(h)

    expected = grad(f)(ws)
    tracemalloc.start()
    try:
        g = grad(f)(ws)
        peak = tracemalloc.get_traced_memory()[1] / x.nbytes
    finally:
        tracemalloc.stop()
    assert all(close(a, b) for a, b in zip(g, expected))
    assert peak < 45, peak


def test_saved_values_are_released_after_grad_of_ndarray_subclass():
    class Tagged(onp.ndarray):
        pass

    refs = []

    def f(x):
        t = np.exp(x) * 2.0
        assert isinstance(stop_gradient(t), Tagged)
        refs.append(weakref.ref(stop_gradient(t)))
        return np.sum(t * t)

    g = grad(f)(X4.view(Tagged))
    assert close(g, 8.0 * onp.exp(2 * X4))
    gc.collect()
    assert refs[0]() is None


def test_memory_does_not_grow_over_repeated_grad_calls():
    x = onp.linspace(0.0, 1.0, 50_000)  # 400 kB per intermediate

    def f(x):
        a = np.sin(x)
        b = a * x
        c = np.exp(b) / (1 + x * x)
        d = np.tanh(c) ** 2
        return np.sum(d * a)

    g0 = grad(f)(x)
    tracemalloc.start()
    try:
        for _ in range(10):
            grad(f)(x)
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(200):
            g = grad(f)(x)
        del g
        gc.collect()
        current = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # one leaked intermediate per call would be 200 * 400 kB = 80 MB
    assert current - base < 1_000_000, current - base
    assert g0.shape == x.shape


@pytest.mark.parametrize("make", ["vjp", "make_vjp"])
def test_vjp_keeps_recording_alive_until_deleted(make):
    refs = []

    def f(x):
        y = np.exp(x)
        refs.append(weakref.ref(stop_gradient(y)))
        return y * np.sin(x)

    if make == "vjp":
        out, fn = vjp(f, X4)
        pull = lambda ct: fn(ct)[0]  # noqa: E731, F821
    else:
        fn, out = make_vjp(f)(X4)
        pull = fn
    gc.collect()
    assert refs[0]() is not None  # saved by the recording that fn holds
    for _ in range(3):
        g = pull(onp.ones(4))
        assert close(g, onp.exp(X4) * (onp.sin(X4) + onp.cos(X4)))
    assert refs[0]() is not None
    del fn, pull
    gc.collect()
    assert refs[0]() is None


# ----------------------------------------------------------------------------- escaped tracers
def _escape():
    leaked = []

    def f(x):
        y = x * 2.0
        leaked.append(y)
        return np.sum(y)

    grad(f)(onp.array([1.0, 2.0]))
    return leaked[0]


@pytest.mark.parametrize("use", [
    lambda e: e * 3.0,
    lambda e: 3.0 + e,
    lambda e: np.sin(e),
    lambda e: -e,
    lambda e: e @ onp.ones(2),
    lambda e: np.sum(e),
    lambda e: e[0],
    lambda e: np.concatenate([e, e]),
    lambda e: onp.exp(e),
], ids=["mul", "radd", "sin", "neg", "matmul", "sum", "getitem", "concatenate", "plain-numpy-exp"])
def test_escaped_tracer_used_after_grad_raises(use):
    escaped = _escape()
    with pytest.raises(wengert.EscapedTracerError, match="left over from a gradient computation"):
        use(escaped)


def test_escaped_tracer_used_inside_a_new_grad_raises():
    escaped = _escape()
    with pytest.raises(wengert.EscapedTracerError, match=r"stop_gradient"):
        grad(lambda x: np.sum(x * escaped))(onp.ones(2))


RETURNING_A_LEFTOVER = {  # an escaped tracer handed back untouched would look like a constant: zero gradient
    "grad": lambda e: wengert.grad(lambda x: e)(onp.ones(2)),
    "value_and_grad": lambda e: wengert.value_and_grad(lambda x: (np.sum(x), e), has_aux=True)(onp.ones(2)),
    "elementwise_grad": lambda e: wengert.elementwise_grad(lambda x: e)(onp.ones(2)),
    "vjp": lambda e: wengert.vjp(lambda x: (x, e), onp.ones(2)),
    "jacrev": lambda e: wengert.jacrev(lambda x: e)(onp.ones(2)),
    "jacfwd": lambda e: wengert.jacfwd(lambda x: e)(onp.ones(2)),
    "jvp": lambda e: wengert.jvp(lambda x: [x, e], (onp.ones(2),), (onp.ones(2),)),
}


@pytest.mark.parametrize("api", RETURNING_A_LEFTOVER)
def test_returning_an_escaped_tracer_raises(api):
    with pytest.raises(wengert.EscapedTracerError, match=rf"^{api}: the function returned a traced value left over"):
        RETURNING_A_LEFTOVER[api](_escape())


def test_returning_a_value_of_an_inner_gradient_from_the_outer_one_raises():
    def outer(x):
        kept = []
        wengert.grad(lambda z: kept.append(z * x) or z * x)(1.0)
        return kept[0]  # z * x, recorded by the inner gradient, which has finished
    with pytest.raises(wengert.EscapedTracerError, match="^grad: the function returned"):
        grad(outer)(2.0)
    assert grad(lambda x: wengert.grad(lambda z: z * x)(1.0))(2.0) == 1.0  # a value of the live outer trace


def test_escaped_tracer_can_still_be_inspected_and_stripped():
    escaped = _escape()
    assert escaped.shape == (2,)
    plain = stop_gradient(escaped)
    assert isinstance(plain, onp.ndarray) and close(plain, [2.0, 4.0])
    # with its plain value a new gradient works
    assert close(grad(lambda x: np.sum(x * plain))(onp.ones(2)), [2.0, 4.0])


def test_escaped_tracer_error_is_a_runtime_error():
    assert issubclass(wengert.EscapedTracerError, RuntimeError)


# ----------------------------------------------------------------------------- joint rules
def _weighted_sum(calls: list, answer=None):
    """sum_k (k + 1) a_k as a primitive whose rule gives every traced argument's cotangent in one
    call (a Joint), logging the positions it was asked for; ``answer`` replaces its result."""
    from wengert._core import Joint, Primitive, apply

    def rule(ks, g, ans, *arrays):
        calls.append(ks)
        return [g * (k + 1.0) for k in ks] if answer is None else answer

    prim = Primitive(lambda *a: sum((k + 1.0) * v for k, v in enumerate(a)), "weighted_sum", Joint(rule))
    return lambda *a: apply(prim, a, {})


JOINT = [  # (arguments as "x" traced, "c" constant, "y" another traced one), positions asked for, dx, dy
    ("x", (0,), 1.0, 0.0),
    ("cx", (1,), 2.0, 0.0),
    ("xcy", (0, 2), 1.0, 3.0),
    ("xcx", (0, 2), 4.0, 0.0),  # the same value twice: both contributions
    ("cccccccx" + "y" * 40, tuple(range(7, 48)), 8.0, sum(range(9, 49))),
]


@pytest.mark.parametrize("spec,asked,dx,dy", JOINT, ids=[c[0][:12] for c in JOINT])
def test_a_joint_rule_runs_once_per_entry_for_all_its_traced_arguments(spec, asked, dx, dy):
    calls = []
    f = _weighted_sum(calls)
    pick = {"c": lambda x, y: 0.5, "x": lambda x, y: x, "y": lambda x, y: y}
    gx, gy = grad(lambda x, y: f(*[pick[s](x, y) for s in spec]) * 2.0, (0, 1))(0.3, -1.2)
    assert (gx, gy) == (2.0 * dx, 2.0 * dy)
    assert calls == [asked]


@pytest.mark.parametrize("answer", ["ab", [1.0], (1.0, 2.0, 3.0), 1.0])
def test_a_joint_rule_returning_the_wrong_number_of_cotangents_is_named(answer):
    f = _weighted_sum([], answer=answer)
    with pytest.raises(TypeError, match=r"weighted_sum: its joint derivative rule must return a list of 2 "):
        grad(lambda x, y: f(x, 0.5, y), (0, 1))(0.3, -1.2)


# ----------------------------------------------------------------------------- reads of elements
# The cotangents of many reads x[index] of one array are summed in an array the sweep owns
# (numpy._vjps._Scatter): each case mixes them with other uses of x, in either order. A case
# is f(np, x), run by wengert and by autograd.
READS = [
    ("elements", lambda np, x: sum(x[i] * x[i] for i in range(len(x)))),
    ("negative elements", lambda np, x: sum(np.sin(x[-i - 1]) * (i + 1.0) for i in range(len(x)))),
    ("one read", lambda np, x: x[2] ** 3),
    ("slices", lambda np, x: sum(np.sum(x[i:i + 2] ** 2) for i in range(len(x) - 1))),
    ("whole then reads", lambda np, x: np.sum(np.exp(x)) + x[0] * x[3] + x[1]),
    ("reads then whole", lambda np, x: x[0] * x[3] + x[1] + np.sum(np.exp(x))),
    ("reads around whole", lambda np, x: x[0] * x[4] + np.sum(x * x) + x[0]),
    ("repeated indices", lambda np, x: np.sum(x[onp.array([0, 2, 2, 0, 2])] ** 2) + x[2]),
    ("mask and elements", lambda np, x: np.sum(x[onp.array([True, False, True, True, False])] ** 3) + x[0] * x[1]),
    ("ellipsis and newaxis", lambda np, x: np.sum(x[..., None] * x[None, 1:3]) + x[...][4]),
    ("rows of a matrix", lambda np, x: sum(np.sum(np.reshape(x, (5, 1))[i] * x[i]) for i in range(5))),
    ("through stack", lambda np, x: np.sum(np.stack([x[i] * (i + 1.0) for i in range(5)]) ** 2)),
]
X5 = onp.array([0.3, -1.1, 0.8, 2.0, -0.4])


@pytest.mark.parametrize("dtype", [onp.float64, onp.float32])
@pytest.mark.parametrize("name,f", READS, ids=[c[0] for c in READS])
def test_reads_of_elements_sum_their_cotangents(name, f, dtype):
    g = grad(lambda x: f(np, x))(X5.astype(dtype))
    assert type(g) is onp.ndarray and g.dtype == dtype and g.flags.writeable
    rtol = 1e-5 if dtype == onp.float32 else 1e-7
    assert close(g, fd_grad(lambda x: f(onp, x), X5), rtol=rtol, atol=1e-6)
    assert close(g, autograd.grad(lambda x: f(anp, x))(X5), rtol=rtol)


@pytest.mark.parametrize("layout", ["strided", "fortran", "read-only", "complex"])
def test_reads_of_elements_of_unusual_arrays(layout):
    base = onp.arange(1.0, 21.0).reshape(4, 5) / 7.0
    x = {"strided": base[::2, 1::2], "fortran": onp.asfortranarray(base), "read-only": base.copy(),
         "complex": base * (1 + 0.5j)}[layout]
    x.flags.writeable = layout != "read-only"
    reads = grad(lambda x: np.real(sum(x[i, j] ** 2 for i in range(x.shape[0]) for j in range(x.shape[1]))))(x)
    whole = grad(lambda x: np.real(np.sum(x ** 2)))(x)  # the same function without reads
    assert helpers_close(reads, whole, rtol=1e-12) and reads.dtype == whole.dtype
    assert not onp.shares_memory(reads, x)


@pytest.mark.parametrize("traced_first", [True, False])
def test_reads_of_elements_in_a_second_derivative(traced_first):
    """The inner sweep sums plain cotangents of reads of x with traced ones (carrying the outer
    w), the traced ones first or last in the sweep."""
    x0, w0 = X5[:3], onp.array([0.5, -2.0, 1.5])

    def inner(np, w):
        if traced_first:
            return lambda x: x[2] * x[1] + x[0] ** 2 * w[1] + np.sum(x * w)
        return lambda x: np.sum(x * w) + x[0] ** 2 * w[1] + x[2] * x[1]

    expected = autograd.grad(lambda w: anp.sum(autograd.grad(inner(anp, w))(x0) ** 2))(w0)
    assert close(grad(lambda w: np.sum(grad(inner(np, w))(x0) ** 2))(w0), expected)
    assert close(wengert.hessian(lambda x: x[0] * x[1] ** 2 + np.sum(x ** 3))(x0),
                 autograd.hessian(lambda x: x[0] * x[1] ** 2 + anp.sum(x ** 3))(x0))


def test_a_read_with_a_nan_cotangent_is_caught_by_detect_anomaly():
    with pytest.raises(wengert.AnomalyError, match="'sqrt'"):
        with wengert.detect_anomaly(), onp.errstate(divide="ignore"):
            grad(lambda x: np.sqrt(x[0]) + x[1])(onp.array([0.0, 1.0]))


# ----------------------------------------------------------------------------- errors in the sweep
def test_error_in_a_rule_names_the_primitive_and_leaves_no_stale_cotangents():
    @wengert.primitive
    def touchy(x):
        return x * 3.0

    def rule(g, ans, x):
        if onp.any(onp.abs(g) > 100):
            raise ArithmeticError("too big")
        return g * 3.0

    wengert.defvjp(touchy, rule)
    out, fn = vjp(lambda x: touchy(x) * 1.0 + x, X4)
    with pytest.raises(ArithmeticError, match="too big") as info:
        fn(onp.full(4, 1000.0))
    assert any("touchy" in note for note in getattr(info.value, "__notes__", []))
    (g,) = fn(onp.ones(4))
    assert close(g, 4.0)  # nothing left over from the failed sweep


def test_error_in_the_forward_pass_propagates_and_the_next_call_works():
    def f(x):
        y = x * 2.0
        if float(stop_gradient(y)) > 3.0:
            raise KeyError("boom")
        return y * y

    with pytest.raises(KeyError):
        grad(f)(2.0)
    assert grad(f)(1.0) == pytest.approx(8.0)


# ----------------------------------------------------------------------------- no_grad
def test_no_grad_values_are_plain_and_carry_no_gradient():
    def f(x):
        with wengert.no_grad():
            y = np.sin(x) * x
            z = np.concatenate([x, x])[:4] + 1.0
            assert not isinstance(y, wengert.Box) and not isinstance(z, wengert.Box)
        return np.sum(x * y) + np.sum(x * z)
    g = grad(f)(X4)
    assert close(g, onp.sin(X4) * X4 + X4 + 1.0)


def test_no_grad_nested_and_restored_after_exception():
    def f(x):
        with wengert.no_grad():
            with wengert.no_grad():
                a = x * 2.0
            b = x * 3.0
        try:
            with wengert.no_grad():
                raise ValueError
        except ValueError:
            pass
        c = x * 5.0  # recorded again
        assert isinstance(c, wengert.Box)
        return a * b * c
    # a*b constant (6x^2 = 6*4 = 24), c = 5x -> 24*5
    assert grad(f)(2.0) == pytest.approx(120.0)


NO_GRAD_CONVERSIONS = {  # name: (conversion of the traced vector x or its traced sum s, its plain result's check)
    "float": (lambda x, s: float(s), lambda v: type(v) is float and v == 5.0),
    "complex": (lambda x, s: complex(s), lambda v: type(v) is complex and v == 5.0),
    "tolist": (lambda x, s: x.tolist(), lambda v: v == [2.0, 3.0]),
    "numpy.asarray": (lambda x, s: onp.asarray(x), lambda v: type(v) is onp.ndarray and list(v) == [2.0, 3.0]),
    "numpy.array, float32": (lambda x, s: onp.array(x, dtype=onp.float32), lambda v: v.dtype == onp.float32),
    "math.exp": (lambda x, s: math.exp(s), lambda v: v == pytest.approx(math.exp(5.0))),
}


@pytest.mark.parametrize("name", NO_GRAD_CONVERSIONS)
def test_conversions_to_plain_values_are_allowed_inside_no_grad(name):
    """Outside no_grad they raise (they would drop the gradient silently); inside, where
    values come out plain anyway, they convert, into copies that writing cannot change the
    recorded values through."""
    convert, check = NO_GRAD_CONVERSIONS[name]

    def f(x):
        s = np.sum(x)
        with pytest.raises(wengert.ConversionError):
            convert(x, s)
        with wengert.no_grad():
            v = convert(x, s)
        assert check(v)
        if isinstance(v, onp.ndarray):
            v[0] = 100.0
        return np.sum(x * x)
    assert close(grad(f)(onp.array([2.0, 3.0])), [4.0, 6.0])


def test_one_no_grad_object_entered_again_inside_its_own_block():
    block = wengert.no_grad()

    def f(x):
        with block:
            with block:  # the same object: the state to restore is kept per entry, not on it
                a = x * 2.0
            b = x * 3.0
        return a * b * x  # a * b constant (6x^2 = 24 at x = 2): the gradient is 24
    holding, done = threading.Event(), threading.Event()

    def pausing() -> None:  # another thread inside a block makes any stale state of this one show
        with wengert.no_grad():
            holding.set()
            done.wait(10)
    other = threading.Thread(target=pausing)
    other.start()
    holding.wait(10)
    try:
        assert grad(f)(2.0) == pytest.approx(24.0)
    finally:
        done.set()
        other.join()


def test_no_grad_decorating_a_generator_covers_its_body_at_each_resume():
    @wengert.no_grad()
    def doubled(x):
        sent = yield x * 2.0
        yield sent * x
        return "finished"

    def f(x):
        steps = doubled(x)
        a = next(steps)  # computed inside the block: a constant
        b = steps.send(x)  # so is this
        with pytest.raises(StopIteration) as stop:
            next(steps)
        assert stop.value.value == "finished"
        assert not isinstance(a, wengert.Box) and not isinstance(b, wengert.Box)
        return np.sum(a * x) + np.sum(b * x)  # d/dx = a + b = 2x + x^2
    x = onp.array([1.0, 3.0])
    assert close(grad(f)(x), 2 * x + x * x)
    assert isinstance(grad(lambda x: x * x)(3.0), float)  # recording resumed between and after


@pytest.mark.parametrize("block", [wengert.no_grad, wengert.detect_anomaly])
def test_blocks_refuse_to_decorate_async_functions(block):
    async def coroutine(x):
        return x

    async def generator(x):
        yield x
    for fun in (coroutine, generator):
        with pytest.raises(TypeError, match=rf"^wengert.{block.__name__}\(\) cannot decorate the async function "
                                            rf".*{fun.__name__}.*with wengert.{block.__name__}\(\):"):
            block()(fun)


def test_grad_started_inside_no_grad_records_as_usual():
    with wengert.no_grad():
        assert grad(lambda x: x ** 3)(2.0) == pytest.approx(12.0)
        assert grad(grad(np.sin))(0.5) == pytest.approx(-math.sin(0.5))


def test_no_grad_inside_inner_grad_pauses_only_older_traces():
    def f(x):
        def inner(y):
            with wengert.no_grad():
                z = x * y  # both traces paused: a constant
            return y * z + x * y
        return grad(inner)(3.0)  # d/dy = z + x = 3x + x = 4x (z constant)
    # outer derivative: the inner result 3x + x; z's dependence on x is cut: d/dx = 1
    assert grad(f)(2.0) == pytest.approx(1.0)


def test_no_grad_in_one_thread_does_not_affect_others():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    errors: list = []
    started = threading.Barrier(5)
    holding = threading.Event()
    done = threading.Event()

    def pausing_thread():
        started.wait()
        with wengert.no_grad():
            holding.set()
            n = 0
            while not done.is_set() and n < 100_000:
                n += 1
                def f(x):
                    with wengert.no_grad():
                        y = x * 3.0
                    return x * y
                g = grad(f)(2.0)
                if g != 6.0:
                    errors.append(("pausing", g))
                    return

    def worker(k):
        started.wait()
        holding.wait()
        scale = 0.5 + k
        for i in range(200):
            x = onp.linspace(0.1, 1.0, 16) * scale
            if k % 2:
                g = grad(lambda x: np.sum(np.sin(x) * x))(x)
                expected = onp.cos(x) * x + onp.sin(x)
            else:
                g = grad(lambda x: np.sum(x ** 3) * scale)(x)
                expected = 3 * x ** 2 * scale
            if not onp.allclose(g, expected, rtol=1e-12):
                errors.append((k, i))
                return
            if i % 50 == 0:  # second order too
                if grad(grad(lambda t: t ** 4 * scale))(1.5) != pytest.approx(12 * 1.5 ** 2 * scale):
                    errors.append((k, "second"))
                    return

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    threads.append(threading.Thread(target=pausing_thread))
    try:
        for t in threads:
            t.start()
        for t in threads[:4]:
            t.join(timeout=60)
        done.set()
        threads[4].join(timeout=60)
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors[:5]
    assert not any(t.is_alive() for t in threads)


def test_concurrent_vjp_calls_on_one_recording():
    out, fn = vjp(lambda x: np.sin(x) * x, X4)
    results = {}

    def call(k):
        ct = onp.full(4, float(k))
        for _ in range(50):
            (g,) = fn(ct)
            if not close(g, k * (onp.cos(X4) * X4 + onp.sin(X4))):
                results[k] = False
                return
        results[k] = True

    threads = [threading.Thread(target=call, args=(k,)) for k in range(1, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == {k: True for k in range(1, 6)}


# ----------------------------------------------------------------------------- malloc settings
@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="the malloc settings apply to glibc only")
@pytest.mark.parametrize("setting, applied", [(None, True), ("default", False)])
def test_malloc_settings_apply_unless_asked_not_to(setting, applied):
    env = {k: v for k, v in os.environ.items() if k != "WENGERT_MALLOC"}
    if setting is not None:
        env["WENGERT_MALLOC"] = setting
    out = subprocess.run([sys.executable, "-c", "import wengert._malloc as m; print(m.applied)"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(applied)
