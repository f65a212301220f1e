"""Users' own derivative rules: ``wengert.primitive`` + ``wengert.defvjp`` and the
``wengert.custom_vjp`` decorator."""

from __future__ import annotations

import math
import re

import autograd
import autograd.numpy as anp
import autograd.scipy.special
import numpy as onp
import pytest

import wengert
import wengert.numpy as np
from _helpers import close
from _helpers import fd_grad as fd
from wengert import elementwise_grad, grad, vjp
from wengert.numpy._wrap import PRIMITIVES, fit

X3 = onp.array([0.3, -1.2, 2.0])


# ----------------------------------------------------------------------------- primitive + defvjp
@wengert.primitive
def logsumexp(x, axis=None):
    """A numerically stable log-sum-exp, written in plain NumPy."""
    assert not isinstance(x, wengert.Box)  # the inside of a primitive sees plain values
    x = onp.asarray(x)
    m = onp.max(x, axis=axis, keepdims=True)
    out = m + onp.log(onp.sum(onp.exp(x - m), axis=axis, keepdims=True))
    return out.item() if axis is None else onp.squeeze(out, axis=axis)


def _lse_rule(g, ans, x, axis=None):
    if axis is not None:
        g, ans = np.expand_dims(g, axis), np.expand_dims(ans, axis)
    return g * np.exp(x - ans)


wengert.defvjp(logsumexp, _lse_rule)


@wengert.primitive
def scaled_product(x, y, scale=1.0):
    return x * y * scale


wengert.defvjp(scaled_product,
               lambda g, ans, x, y, scale=1.0: g * y * scale,
               lambda g, ans, x, y, scale=1.0: g * x * scale)


def test_primitive_plain_call_runs_the_function():
    assert logsumexp(X3) == pytest.approx(math.log(sum(math.exp(v) for v in X3)))
    assert scaled_product(2.0, 3.0, scale=0.5) == 3.0
    assert logsumexp.__name__ == "logsumexp" and "log-sum-exp" in logsumexp.__doc__


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_primitive_gradient_uses_the_rule(axis):
    x0 = onp.array([[0.5, -1.0, 2.0], [3.0, 0.2, -0.7]])
    W = onp.arange(1.0, 1.0 + onp.size(onp.sum(x0, axis=axis))).reshape(onp.shape(onp.sum(x0, axis=axis)))

    def f(x):
        return np.sum(logsumexp(x, axis=axis) * W)
    g = grad(f)(x0)
    assert close(g, fd(f, x0))
    assert close(g, autograd.grad(lambda x: anp.sum(
        autograd.scipy.special.logsumexp(x, axis=axis) * W))(x0))


def test_primitive_is_one_step_even_if_its_inside_cannot_be_traced():
    @wengert.primitive
    def via_math(x):
        return math.exp(float(x)) + float(onp.asarray(x)) ** 2  # would raise on a traced value

    wengert.defvjp(via_math, lambda g, ans, x: g * (np.exp(x) + 2 * x))
    assert grad(via_math)(0.5) == pytest.approx(math.exp(0.5) + 1.0)
    assert grad(lambda x: via_math(x) * x)(0.5) == pytest.approx(
        fd(lambda x: (math.exp(x) + x * x) * x, 0.5), rel=1e-7)


@pytest.mark.parametrize("argnum,expected", [
    (0, 3.0 * 0.5), (1, 2.0 * 0.5), ((0, 1), (1.5, 1.0)),
])
def test_primitive_with_several_arguments_and_keyword(argnum, expected):
    g = grad(scaled_product, argnum=argnum)(2.0, 3.0, scale=0.5)
    assert g == (pytest.approx(expected) if not isinstance(expected, tuple)
                 else tuple(pytest.approx(e) for e in expected))


def test_rule_receives_output_arguments_and_keywords():
    seen = []

    @wengert.primitive
    def f(x, y, *, power=2):
        return x ** power + y

    def rule_x(g, ans, x, y, power=2):
        seen.append((g, ans, x, y, power))
        return g * power * x ** (power - 1)

    wengert.defvjp(f, rule_x, lambda g, ans, x, y, power=2: g)
    g = grad(lambda x: 2.0 * f(x, 1.0, power=3))(2.0)
    assert g == pytest.approx(2.0 * 3 * 4.0)
    assert seen == [(2.0, 9.0, 2.0, 1.0, 3)]
    assert not any(isinstance(v, wengert.Box) for v in seen[0])


def test_primitive_broadcasting_is_undone_for_the_rule():
    # the rule returns a cotangent with the output's shape; the argument was broadcast
    x0, y0 = onp.array([1.0, 2.0, 3.0]), 0.5
    gx, gy = grad(lambda x, y: np.sum(scaled_product(x, y) ** 2), argnum=(0, 1))(x0, y0)
    assert close(gx, 2 * x0 * y0 ** 2)
    assert gy == pytest.approx(onp.sum(2 * x0 ** 2 * y0))


@pytest.mark.parametrize("argnum,position", [(0, 0), (1, 1)])
def test_primitive_without_rules_raises_not_implemented_naming_it(argnum, position):
    @wengert.primitive
    def mystery(x, y):
        return x * y

    assert mystery(2.0, 3.0) == 6.0  # plain calls work
    with pytest.raises(NotImplementedError,
                       match=rf"mystery: no derivative rule for positional argument {position}\. "
                             rf"Define one with wengert\.defvjp\(\S*mystery, "):
        grad(mystery, argnum=argnum)(2.0, 3.0)


def test_primitive_without_rules_still_works_when_not_differentiated():
    @wengert.primitive
    def mystery(x):
        return x * 2.0

    # traced argument that does not reach the output: nothing to differentiate
    assert grad(lambda x, y: x * 3.0 + 0.0 * mystery(2.0), argnum=0)(1.0, 5.0) == 3.0


def test_none_rule_means_no_gradient_for_that_argument():
    @wengert.primitive
    def mul(x, y):
        return x * y

    wengert.defvjp(mul, lambda g, ans, x, y: g * y, None)
    assert grad(mul, argnum=(0, 1))(2.0, 3.0) == (3.0, 0.0)
    g = grad(lambda x, y: np.sum(mul(x, y)), argnum=1)(X3, onp.ones(3))
    assert isinstance(g, onp.ndarray) and g.shape == (3,) and not g.any()


def test_fewer_rules_than_traced_arguments_is_a_type_error():
    @wengert.primitive
    def mul(x, y):
        return x * y

    wengert.defvjp(mul, lambda g, ans, x, y: g * y)
    with pytest.raises(TypeError, match=r"mul: positional argument 1 is a traced value, but defvjp gave rules for "
                                        r"1 argument\(s\) only. Give one for it.*stop_gradient"):
        grad(mul, argnum=1)(2.0, 3.0)
    assert grad(mul, argnum=0)(2.0, 3.0) == 3.0


@pytest.mark.parametrize("rules, message", [
    ((3.0,), r"defvjp: the rule for positional argument 0 of '.*mul' is a float; give a function"),
    ((None, "g"), r"defvjp: the rule for positional argument 1 of '.*mul' is a str; give a function"),
])
def test_defvjp_refuses_rules_that_are_not_functions(rules, message):
    @wengert.primitive
    def mul(x, y):
        return x * y
    with pytest.raises(TypeError, match="^" + message):
        wengert.defvjp(mul, *rules)


def test_defvjp_again_replaces_the_rules():
    @wengert.primitive
    def sq(x):
        return x * x

    wengert.defvjp(sq, lambda g, ans, x: g * 2 * x)
    assert grad(sq)(3.0) == 6.0
    wengert.defvjp(sq, lambda g, ans, x: g * 100 * x)
    assert grad(sq)(3.0) == 300.0


HIGHER = [
    # (name, primitive body (plain numpy), rule (wengert.numpy), closed forms f', f'', f''')
    ("softplus", lambda x: onp.logaddexp(0.0, x), lambda g, ans, x: g / (1 + np.exp(-x)),
     [lambda x: 1 / (1 + math.exp(-x)),
      lambda x: math.exp(-x) / (1 + math.exp(-x)) ** 2,
      lambda x: math.exp(-x) * (math.exp(-x) - 1) / (1 + math.exp(-x)) ** 3]),
    ("cube", lambda x: x ** 3, lambda g, ans, x: g * 3 * x ** 2,
     [lambda x: 3 * x ** 2, lambda x: 6 * x, lambda x: 6.0]),
    ("sin-via-ans", lambda x: onp.sin(x), lambda g, ans, x: g * np.cos(x),
     [math.cos, lambda x: -math.sin(x), lambda x: -math.cos(x)]),
    ("exp-via-ans", lambda x: onp.exp(x), lambda g, ans, x: g * ans,
     [math.exp, math.exp, math.exp]),
]


@pytest.mark.parametrize("name,body,rule,derivs", HIGHER, ids=[c[0] for c in HIGHER])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_rules_written_with_wengert_numpy_give_higher_derivatives(name, body, rule, derivs, order):
    fun = wengert.primitive(body)
    wengert.defvjp(fun, rule)
    d = fun
    for _ in range(order):
        d = grad(d)
    for x0 in (0.4, -1.3):
        assert d(x0) == pytest.approx(derivs[order - 1](x0), rel=1e-9, abs=1e-12)


def test_primitive_second_derivative_on_arrays_matches_finite_differences():
    v = onp.array([1.0, -2.0, 0.5])

    def hvp(x):
        return grad(lambda z: np.sum(grad(lambda w: logsumexp(w) * 3.0)(z) * v))(x)
    h = hvp(X3)
    gfun = lambda z: onp.sum(grad(lambda w: logsumexp(w) * 3.0)(z) * v)  # noqa: E731
    assert close(h, fd(gfun, X3), rtol=1e-6)
    wengert.gradcheck(lambda x: logsumexp(x), X3, order=2)


@pytest.mark.parametrize("target", [
    lambda x: x,
    onp.sin,
    math.exp,
    "a string",
])
def test_defvjp_on_a_non_primitive_is_a_type_error(target):
    with pytest.raises(TypeError, match=r"^defvjp: .*was not made by wengert\.primitive"):
        wengert.defvjp(target, lambda g, ans, x: g)


def test_defvjp_on_a_wengert_numpy_function_is_a_type_error():
    prim = PRIMITIVES[onp.sin]
    saved = prim.vjps
    try:
        with pytest.raises(TypeError, match=r"^defvjp: "):
            wengert.defvjp(np.sin, lambda g, ans, x: g * 100.0)
    finally:
        prim.vjps = saved
    assert grad(grad(np.sin))(0.5) == pytest.approx(-math.sin(0.5))


_HYPOT_RULES = [lambda g, ans, x, y: g * x / ans, lambda g, ans, x, y: g * y / ans]

@pytest.mark.parametrize("ufunc,rules,args,expected", [
    pytest.param(onp.sin, [lambda g, ans, x: g * np.cos(x)], (0.5,), (math.cos(0.5),), id="sin-float"),
    pytest.param(onp.sin, [lambda g, ans, x: g * np.cos(x)], (onp.array([0.5, 1.0]),),
                 (onp.cos([0.5, 1.0]),), id="sin-array"),
    pytest.param(onp.hypot, _HYPOT_RULES, (onp.array([3.0, 5.0]), onp.array([4.0, 12.0])),
                 (onp.array([0.6, 5 / 13]), onp.array([0.8, 12 / 13])), id="hypot-arrays"),
    pytest.param(onp.hypot, _HYPOT_RULES, (3.0, 4.0), (0.6, 0.8), id="hypot-floats"),
])
def test_primitive_of_a_ufunc_uses_the_rules_given_to_defvjp(ufunc, rules, args, expected):
    # (Up to commit b3807ab every case failed: the fast path captured the placeholder rules at
    # wrap time. Since ccae7dd rules are looked up during the sweep; the scalar twin still is not.)
    fun = wengert.primitive(ufunc)
    wengert.defvjp(fun, *rules)
    argnum = tuple(range(len(args)))
    g = grad(lambda *a: np.sum(fun(*a)), argnum=argnum)(*args)
    assert len(g) == len(expected)
    for gi, ei in zip(g, expected):
        assert close(gi, ei, rtol=1e-12)


# ----------------------------------------------------------------------------- custom_vjp
@wengert.custom_vjp
def clip_gradient(x):
    """Identity forward; gradient clipped to [-1, 1]."""
    return x


clip_gradient.defvjp(lambda x: (x, None), lambda residuals, g: (np.clip(g, -1.0, 1.0),))


def test_custom_vjp_uses_bwd_not_the_function():
    assert grad(lambda x: 10.0 * clip_gradient(x))(2.0) == 1.0
    g = grad(lambda x: np.sum(clip_gradient(x) * onp.array([10.0, 0.5, -3.0])))(onp.ones(3))
    assert close(g, [1.0, 0.5, -1.0])
    assert clip_gradient(3.0) == 3.0  # plain call
    assert clip_gradient.__name__ == "clip_gradient" and "clipped" in clip_gradient.__doc__


@wengert.custom_vjp
def sin_times(x, y):
    return np.sin(x) * y


sin_times.defvjp(lambda x, y: (np.sin(x) * y, (x, y)),
                 lambda r, g: (g * np.cos(r[0]) * r[1], g * np.sin(r[0])))


@pytest.mark.parametrize("x0,y0", [(1.0, 2.0), (-0.4, 0.3)])
def test_custom_vjp_single_output(x0, y0):
    gx, gy = grad(sin_times, argnum=(0, 1))(x0, y0)
    assert gx == pytest.approx(math.cos(x0) * y0) and gy == pytest.approx(math.sin(x0))
    x = onp.array([0.2, 1.1, -2.0])
    g = grad(lambda x: np.sum(sin_times(x, 3.0)))(x)
    assert close(g, 3.0 * onp.cos(x))


def test_custom_vjp_under_grad_of_grad():
    # d2/dx2 sin(x) * y = -sin(x) y; d2/dxdy = cos(x)
    assert grad(grad(sin_times))(1.0, 2.0) == pytest.approx(-math.sin(1.0) * 2.0)
    assert grad(grad(sin_times), argnum=1)(1.0, 2.0) == pytest.approx(math.cos(1.0))
    assert grad(grad(grad(sin_times)))(1.0, 2.0) == pytest.approx(-math.cos(1.0) * 2.0)
    x = onp.array([0.2, 1.1, -2.0])
    h = elementwise_grad(grad(lambda x: np.sum(sin_times(x, 3.0))))(x)
    assert close(h, -3.0 * onp.sin(x))


@wengert.custom_vjp
def polar(r, t):
    return r * np.cos(t), r * np.sin(t)


polar.defvjp(lambda r, t: ((r * np.cos(t), r * np.sin(t)), (r, t)),
             lambda res, g: (g[0] * np.cos(res[1]) + g[1] * np.sin(res[1]),
                             -g[0] * res[0] * np.sin(res[1]) + g[1] * res[0] * np.cos(res[1])))


def test_custom_vjp_multiple_outputs():
    r0, t0 = 2.0, 0.7
    x, y = polar(r0, t0)
    assert x == pytest.approx(r0 * math.cos(t0)) and y == pytest.approx(r0 * math.sin(t0))

    def loss(r, t):
        x, y = polar(r, t)
        return 3.0 * x + y * y

    gr, gt = grad(loss, argnum=(0, 1))(r0, t0)
    assert gr == pytest.approx(fd(lambda r: loss(r, t0), r0), rel=1e-7)
    assert gt == pytest.approx(fd(lambda t: loss(r0, t), t0), rel=1e-7)
    out, fn = vjp(polar, r0, t0)
    assert isinstance(out, tuple) and len(out) == 2
    assert fn((1.0, 0.0)) == (pytest.approx(math.cos(t0)), pytest.approx(-r0 * math.sin(t0)))
    assert fn((0.0, 1.0)) == (pytest.approx(math.sin(t0)), pytest.approx(r0 * math.cos(t0)))


def test_custom_vjp_multiple_outputs_under_grad_of_grad():
    def loss(r, t):
        x, y = polar(r, t)
        return x * y  # r^2 sin t cos t = r^2 sin(2t) / 2
    # d2/dt2 = -2 r^2 sin(2t); d2/dr dt = 2 r cos(2t)
    assert grad(grad(loss, argnum=1), argnum=1)(2.0, 0.7) == pytest.approx(-8.0 * math.sin(1.4))
    assert grad(grad(loss, argnum=1), argnum=0)(2.0, 0.7) == pytest.approx(4.0 * math.cos(1.4))


def _clipped_pair(calls: list) -> wengert.custom_vjp:
    """(a * x, b * x) whose bwd scales the pair of cotangents down to norm at most 1 (clipping by
    the global norm: not linear in g), and counts its calls."""
    @wengert.custom_vjp
    def pair(x):
        return 2.0 * x, -1.0 * x

    def bwd(x, g):
        calls.append(1)
        norm = onp.sqrt(onp.sum(g[0] ** 2) + onp.sum(g[1] ** 2))
        s = min(1.0, 1.0 / norm)
        return (2.0 * s * g[0] - s * g[1],)
    pair.defvjp(lambda x: (pair(x), x), bwd)
    return pair


@pytest.mark.parametrize("use", [
    lambda p: 3.0 * p[0] + 4.0 * p[1],  # cotangents 3 and 4: norm 5, scaled by 1/5
    lambda p: 4.0 * p[1] + 3.0 * p[0],  # the same, the outputs used in the other order
    lambda p: 1.5 * p[0] + p[0] * 1.5 + 4.0 * p[1],  # a cotangent summed from two uses
    lambda p: np.sum(np.stack([p[0], p[1]]) * onp.array([3.0, 4.0])),  # reached through a stack
])
def test_custom_vjp_with_several_outputs_calls_bwd_once_with_every_cotangent(use):
    """bwd sees the cotangents of all the outputs together, once per call, as a bwd that is not
    linear in them (clipping by the global norm) needs: (2·3 − 4) / 5."""
    calls: list = []
    pair = _clipped_pair(calls)
    assert grad(lambda x: use(pair(x)))(0.5) == pytest.approx((2.0 * 3.0 - 4.0) / 5.0)
    assert len(calls) == 1


def test_custom_vjp_output_not_used_gets_a_zero_cotangent():
    calls: list = []
    pair = _clipped_pair(calls)
    assert grad(lambda x: 0.5 * pair(x)[1])(0.5) == pytest.approx(-0.5)  # norm 1/2: not scaled
    assert len(calls) == 1


@pytest.mark.parametrize("transform", ["hessian", "linearize", "jacobian-forward", "jacfwd", "detect_anomaly"])
def test_custom_vjp_with_several_outputs_under_other_transforms(transform):
    """Forward mode transposes bwd output by output (a linear bwd: polar's), in a forward trace
    and pushed through a reverse recording (linearize, jacobian in forward mode)."""
    def f(v):
        x, y = polar(v[0], v[1])
        return np.stack([x * y, x + np.sin(y)])
    v = onp.array([2.0, 0.7])
    jac = onp.array([fd(lambda v: f(v)[i], v) for i in range(2)])
    if transform == "hessian":
        r, t = v  # f[0] = r² sin(2t) / 2
        expected = [[math.sin(2 * t), 2 * r * math.cos(2 * t)], [2 * r * math.cos(2 * t), -2 * r * r * math.sin(2 * t)]]
        assert close(wengert.hessian(lambda v: f(v)[0])(v), onp.array(expected))
    elif transform == "linearize":
        _, push = wengert.linearize(f, v)
        assert close(push(onp.array([1.0, 0.0])), jac[:, 0]) and close(push(onp.array([0.0, 1.0])), jac[:, 1])
    elif transform == "jacobian-forward":
        assert close(wengert.jacobian(f, mode="forward")(v), jac)
    elif transform == "jacfwd":
        assert close(wengert.jacfwd(f)(v), jac)
    else:
        with wengert.detect_anomaly():
            assert close(wengert.jacrev(f)(v), jac)


@wengert.custom_vjp
def weighted(params, x):
    return np.sum(params["w"] * x) + params["b"][0] * params["b"][1]


weighted.defvjp(
    lambda p, x: (weighted(p, x), (p, x)),
    lambda res, g: ({"w": g * res[1], "b": [g * res[0]["b"][1], g * res[0]["b"][0]]},
                    g * res[0]["w"]))


def test_custom_vjp_pytree_arguments():
    p = {"w": onp.array([1.0, -2.0, 0.5]), "b": [3.0, 4.0]}
    gp, gx = grad(weighted, argnum=(0, 1))(p, X3)
    assert type(gp) is dict and type(gp["b"]) is list
    assert close(gp["w"], X3) and gp["b"] == [pytest.approx(4.0), pytest.approx(3.0)]
    assert close(gx, p["w"])


def test_custom_vjp_pytree_argument_under_grad_of_grad():
    def f(w):
        return weighted({"w": w, "b": [1.0, 1.0]}, w) ** 2  # (sum w^2 + 1)^2
    w0 = onp.array([0.5, -1.0, 2.0])
    # the Hessian of (s + 1)^2, s = sum w^2, is 8 w w^T + 4 (s + 1) I; elementwise_grad of the
    # gradient is its product with a vector of ones
    h = elementwise_grad(grad(f))(w0)
    s = onp.sum(w0 ** 2)
    assert close(h, 8 * w0 * onp.sum(w0) + 4 * (s + 1))


def test_custom_vjp_none_cotangent_is_zero():
    @wengert.custom_vjp
    def f(x, y):
        return x * y

    f.defvjp(lambda x, y: (x * y, (x, y)), lambda r, g: (None, g * r[0]))
    assert grad(f, argnum=(0, 1))(2.0, 3.0) == (0.0, 2.0)
    gx, gy = grad(lambda x, y: np.sum(f(x, y)), argnum=(0, 1))(onp.full(2, 2.0), onp.full(2, 3.0))
    assert gx.shape == (2,) and not gx.any() and close(gy, 2.0)


def test_custom_vjp_non_float_argument_with_none():
    @wengert.custom_vjp
    def power(x, n):
        return x ** n

    power.defvjp(lambda x, n: (x ** n, (x, n)), lambda r, g: (g * r[1] * r[0] ** (r[1] - 1), None))
    assert grad(power)(2.0, 3) == pytest.approx(12.0)
    assert grad(grad(power))(2.0, 3) == pytest.approx(12.0)


def test_custom_vjp_bwd_may_return_a_list():
    @wengert.custom_vjp
    def double(x):
        return x * 2.0

    double.defvjp(lambda x: (x * 2.0, None), lambda r, g: [g * 2.0])
    assert grad(double)(1.0) == 2.0


def test_custom_vjp_called_before_defvjp():
    @wengert.custom_vjp
    def undefined(x):
        return x * 2.0

    assert undefined(1.5) == 3.0  # plain calls do not need the rule
    with pytest.raises(NotImplementedError, match=r"undefined: custom_vjp function called on traced "
                                                  r"values before \.defvjp"):
        grad(undefined)(1.5)


@pytest.mark.parametrize("bwd,count", [
    (lambda r, g: (g, g), "1"),
    (lambda r, g: (), "1"),
    (lambda r, g: g, "1"),
])
def test_custom_vjp_bwd_with_wrong_number_of_cotangents(bwd, count):
    @wengert.custom_vjp
    def ident(x):
        return x

    ident.defvjp(lambda x: (x, None), bwd)
    with pytest.raises(TypeError, match=rf"ident: bwd must return a tuple with one cotangent per "
                                        rf"argument \({count}\)"):
        grad(ident)(1.0)


def test_custom_vjp_bwd_with_wrong_count_for_two_arguments():
    @wengert.custom_vjp
    def mul(x, y):
        return x * y

    mul.defvjp(lambda x, y: (x * y, (x, y)), lambda r, g: (g * r[1],))
    with pytest.raises(TypeError, match=r"mul: bwd must return a tuple with one cotangent per argument \(2\)"):
        grad(mul)(2.0, 3.0)


@wengert.custom_vjp
def _affine(p, x):
    return np.sum(p["W"] * x + p["b"])


_P, _XA = {"W": onp.array([2.0, 3.0]), "b": onp.array([10.0, 20.0])}, onp.array([5.0, 7.0])
AFFINE_BWDS = {  # name: (bwd, the error's text where refused, else which gradients finite differences give)
    "keys as the argument's": (lambda r, g: ({"W": g * r[1], "b": g * onp.ones(2)}, g * r[0]["W"]), "all"),
    "None for zeros, nested": (lambda r, g: ({"W": g * r[1], "b": None}, None), "b and x zero"),
    "a key misspelt": (lambda r, g: ({"W": g * r[1], "B": g * onp.ones(2)}, g * r[0]["W"]),
                       r"positional argument 0 is a dict with keys 'B', 'W', but the argument there is a dict "
                       r"with keys 'W', 'b'"),
    "a list for the dict": (lambda r, g: ([g * r[1], g * onp.ones(2)], g * r[0]["W"]),
                            r"positional argument 0 is a list of length 2, but the argument there is a dict"),
    "a list for an array": (lambda r, g: ({"W": g * r[1], "b": g * onp.ones(2)}, [g * r[0]["W"]]),
                            r"positional argument 1 is a list of length 1, but the argument there is a value"),
    "a dict inside": (lambda r, g: ({"W": {"w": g * r[1]}, "b": g * onp.ones(2)}, g * r[0]["W"]),
                      r"positional argument 0\['W'\] is a dict with keys 'w', but the argument there is a value"),
}


@pytest.mark.parametrize("name", AFFINE_BWDS)
def test_custom_vjp_bwd_cotangents_must_have_the_arguments_structure(name):
    """Matched leaf by leaf in flattened order, a misspelt key or another container would hand
    the arrays to the wrong parameters: refused, naming where."""
    bwd, expected = AFFINE_BWDS[name]
    _affine.defvjp(lambda p, x: (_affine(p, x), (p, x)), bwd)
    if isinstance(expected, str) and expected.startswith("positional"):
        with pytest.raises(TypeError, match=r"^_affine: the cotangent bwd returned for " + expected):
            grad(_affine, argnum=(0, 1))(_P, _XA)
        return
    gp, gx = grad(_affine, argnum=(0, 1))(_P, _XA)
    zero = expected == "b and x zero"
    assert close(gp["W"], fd(lambda w: _affine({"W": w, "b": _P["b"]}, _XA), _P["W"]))
    assert close(gp["b"], 0 * _P["b"] if zero else fd(lambda b: _affine({"W": _P["W"], "b": b}, _XA), _P["b"]))
    assert close(gx, 0 * _XA if zero else fd(lambda x: _affine(_P, x), _XA))


def test_custom_vjp_bwd_may_give_a_tuple_for_a_list_argument():
    @wengert.custom_vjp
    def product(pair):
        return pair[0] * pair[1]

    product.defvjp(lambda pair: (product(pair), pair), lambda r, g: ((g * r[1], g * r[0]),))
    assert grad(product)([2.0, 3.0]) == [3.0, 2.0]


@wengert.primitive
def _rounded(d):
    return np.round(d["x"] if isinstance(d, dict) else d[0])


wengert.defvjp(_rounded, lambda g, ans, d: g)  # straight through


@pytest.mark.parametrize("call, where", [
    (lambda x: _rounded({"x": x}), "positional argument 0 is a dict holding traced values"),
    (lambda x: _rounded([x, 2.0]), "positional argument 0 is a list holding traced values"),
    (lambda x: _rounded(([x],)), "positional argument 0 is a tuple holding traced values"),
])
def test_primitive_refuses_containers_holding_traced_values(call, where):
    """Its rules take arrays: called on a container, the body ran on the traced values inside and
    recorded its own operations, and the rule was silently not used."""
    with pytest.raises(TypeError, match=rf"^_rounded: {where}, but a primitive's arguments are arrays "
                                        r"and numbers.*wengert.custom_vjp"):
        grad(call)(1.3)
    assert _rounded({"x": 1.3}) == 1.0 and _rounded([1.6]) == 2.0  # plain values: the function itself


def _closing_custom_vjp(w, in_fwd: bool):
    @wengert.custom_vjp
    def f(y):
        return np.tanh(y) * w if in_fwd else np.tanh(y)
    f.defvjp(lambda y: (f(y), np.tanh(y)), lambda t, g: (g * (1 - t ** 2) * (1.0 if in_fwd else w),))
    return f


def _closing_primitive(w):
    @wengert.primitive
    def f(y):
        return np.tanh(y) * w
    wengert.defvjp(f, lambda g, ans, y: g * (1 - np.tanh(y) ** 2))
    return f


CLOSED_OVER = {  # the function of w: a user rule whose function closes over the traced w
    "custom_vjp, fwd": (lambda w: _closing_custom_vjp(w, True)(2.0 * w), TypeError, r"f: fwd uses values traced"),
    "custom_vjp, bwd": (lambda w: _closing_custom_vjp(w, False)(2.0 * w), wengert.EscapedTracerError,
                        r"f: bwd uses a traced value from its closure or a global"),
    "primitive": (lambda w: _closing_primitive(w)(2.0 * w), TypeError,
                  r"_closing_primitive.<locals>.f: the primitive's function uses values traced"),
}


@pytest.mark.parametrize("name", CLOSED_OVER)
def test_user_rules_closing_over_traced_values_are_refused(name):
    """The rule sees only the arguments: the dependence through the closure was dropped
    silently (a wrong gradient), or bwd failed with a message about another error."""
    f, error, message = CLOSED_OVER[name]
    with pytest.raises(error, match="^" + message):
        grad(f)(0.5)


def test_custom_vjp_fwd_runs_on_plain_values():
    seen = []

    @wengert.custom_vjp
    def f(x):
        return x ** 2

    def fwd(x):
        seen.append(type(x))
        return onp.asarray(x) ** 2, float(x)  # plain NumPy would fail on a traced value

    f.defvjp(fwd, lambda r, g: (2 * g * r,))
    assert grad(f)(3.0) == pytest.approx(6.0)
    assert seen == [float]


def test_custom_vjp_respects_no_grad():
    @wengert.custom_vjp
    def cube(x):
        return x ** 3

    cube.defvjp(lambda x: (x ** 3, x), lambda x, g: (3 * g * x ** 2,))

    def f(x):
        with wengert.no_grad():
            y = cube(x)
        return x * y  # y is a constant: d/dx = y = x^3
    assert grad(f)(2.0) == pytest.approx(8.0)


def test_primitive_respects_no_grad():
    def f(x):
        with wengert.no_grad():
            y = scaled_product(x, x)
            assert not isinstance(y, wengert.Box)
        return x * y
    assert grad(f)(2.0) == pytest.approx(4.0)


# ----------------------------------------------------------------------------- what rules return
def _double(vjp_rule=None, jvp_rule=None):
    """A primitive 2x with the rules given (the call's argument may be an array)."""
    @wengert.primitive
    def double(x):
        return 2.0 * x

    if vjp_rule is not None:
        wengert.defvjp(double, vjp_rule)
    if jvp_rule is not None:
        wengert.defjvp(double, jvp_rule)
    return double


def _scaled(vjp_rule):
    """A primitive x * s (s broadcast over x) whose rule for s is ``vjp_rule``."""
    @wengert.primitive
    def scaled(x, s):
        return x * s

    wengert.defvjp(scaled, lambda g, ans, x, s: g * s, vjp_rule)
    return scaled


def _bwd_double(bwd):
    @wengert.custom_vjp
    def double(x, y):
        return 2.0 * x + y

    double.defvjp(lambda x, y: (2.0 * x + y, None), bwd)
    return double


def _reverse(fun, *args):
    return grad(lambda *a: np.sum(fun(*a)), argnum=tuple(range(len(args))))(*args)


def _forward(fun, x):
    return wengert.jvp(fun, (x,), (onp.ones_like(x),))


REFUSED_RESULTS = [
    # (id, run, error, start of the message)
    ("vjp-sum-of-g", lambda: _reverse(_double(lambda g, ans, x: np.sum(g)), X3), ValueError,
     r"double: the result of the derivative rule for positional argument 0 has shape \(\), but the "
     r"argument has shape \(3,\)"),
    ("vjp-too-short", lambda: _reverse(_double(lambda g, ans, x: g[:2]), X3), ValueError,
     r"double: the result of the derivative rule for positional argument 0 has shape \(2,\)"),
    ("vjp-too-long", lambda: _reverse(_double(lambda g, ans, x: np.concatenate([g, g])), X3), ValueError,
     r"double: the result of the derivative rule for positional argument 0 has shape \(6,\)"),
    ("vjp-list", lambda: _reverse(_double(lambda g, ans, x: [2.0, 2.0, 2.0]), X3), TypeError,
     r"double: the result of the derivative rule for positional argument 0 is a list, not an array"),
    ("vjp-tuple-for-scalar", lambda: _reverse(_double(lambda g, ans, x: (2 * g, g)), 1.5), TypeError,
     r"double: the result of the derivative rule for positional argument 0 is a tuple"),
    ("vjp-none", lambda: _reverse(_double(lambda g, ans, x: None), X3), TypeError,
     r"double: the result of the derivative rule for positional argument 0 is None"),
    ("vjp-second-argument", lambda: _reverse(_scaled(lambda g, ans, x, s: np.sum(g * x)), X3, onp.ones(3)),
     ValueError, r"scaled: the result of the derivative rule for positional argument 1 has shape \(\), but "
                 r"the argument has shape \(3,\)"),
    ("vjp-under-forward-mode", lambda: _forward(_double(lambda g, ans, x: np.sum(g)), X3), ValueError,
     r"double: the result of the derivative rule for positional argument 0 has shape \(\)"),
    ("jvp-sum-of-t", lambda: _forward(_double(jvp_rule=lambda t, ans, x: np.sum(t)), onp.ones(2)), ValueError,
     r"double: the result of the JVP rule for positional argument 0 has shape \(\), but the output's "
     r"tangent has shape \(2,\)"),
    ("jvp-list", lambda: _forward(_double(jvp_rule=lambda t, ans, x: [2.0, 2.0]), onp.ones(2)), TypeError,
     r"double: the result of the JVP rule for positional argument 0 is a list, not an array"),
    ("jvp-batched", lambda: wengert.jacfwd(_double(jvp_rule=lambda t, ans, x: 2.0 * t[0]))(X3), ValueError,
     r"double: the result of the JVP rule for positional argument 0 has shape \(\), but the output's "
     r"tangent has shape \(3,\)"),  # (a rule sees one direction at a time)
    ("bwd-sum-of-g", lambda: _reverse(_bwd_double(lambda r, g: (2 * np.sum(g), g)), X3, X3), ValueError,
     r"double: the cotangent bwd returned for positional argument 0 has shape \(\), but the argument has "
     r"shape \(3,\)"),
    ("bwd-second-argument", lambda: _reverse(_bwd_double(lambda r, g: (2 * g, g[1:])), X3, X3), ValueError,
     r"double: the cotangent bwd returned for positional argument 1 has shape \(2,\)"),
]


@pytest.mark.parametrize("run,error,start", [c[1:] for c in REFUSED_RESULTS], ids=[c[0] for c in REFUSED_RESULTS])
def test_rule_result_that_is_not_one_array_shaped_like_its_argument_is_refused(run, error, start):
    # (summing over broadcast dimensions cannot grow or reshape a cotangent: these were
    # accepted with a wrong shape, or failed deep inside NumPy)
    with pytest.raises(error, match=start):
        run()


INTEGER_RESULTS = [
    # (id, run, expected gradients): a user's rule gives integer or boolean values for a float argument
    ("vjp-int-array", lambda: _reverse(_double(lambda g, ans, x: onp.full(3, 2)), X3), (onp.full(3, 2.0),)),
    ("vjp-int-scalar", lambda: _reverse(_double(lambda g, ans, x: 2), onp.float64(1.5)), (onp.float64(2.0),)),
    ("vjp-bool", lambda: _reverse(_double(lambda g, ans, x: onp.ones(3, bool)), X3), (onp.ones(3),)),
    ("vjp-float32-argument", lambda: _reverse(_double(lambda g, ans, x: onp.full(3, 2)), X3.astype(onp.float32)),
     (onp.full(3, 2.0, onp.float32),)),
    ("bwd-int", lambda: _reverse(_bwd_double(lambda r, g: (onp.full(3, 2), onp.ones(3, int))), X3, X3),
     (onp.full(3, 2.0), onp.ones(3))),
    ("jvp-int", lambda: _forward(_double(jvp_rule=lambda t, ans, x: onp.full(3, 2)), X3)[1:], (onp.full(3, 2.0),)),
]


@pytest.mark.parametrize("run,expected", [c[1:] for c in INTEGER_RESULTS], ids=[c[0] for c in INTEGER_RESULTS])
def test_integer_results_of_users_rules_take_the_arguments_dtype(run, expected):
    result = run()
    assert len(result) == len(expected)
    for r, e in zip(result, expected):
        assert type(r) is type(e) and r.dtype == e.dtype and onp.array_equal(r, e)


@pytest.mark.parametrize("cshape,xshape", [((), (3,)), ((2,), (3,)), ((1,), (3,)), ((3,), (2, 3)), ((3, 2), (3,))])
def test_fit_refuses_a_cotangent_that_summing_cannot_shape_like_its_argument(cshape, xshape):
    # (the reverse sweep fits every rule's result, wengert's own rules' too)
    with pytest.raises(ValueError, match=rf"a derivative rule returned a cotangent of shape {re.escape(str(cshape))} "
                                         rf"for an argument of shape {re.escape(str(xshape))}"):
        fit(onp.ones(cshape), onp.ones(xshape))


@pytest.mark.parametrize("rules,missing", [
    ((lambda t, ans, x, y, z: t * y * z,), 1),
    ((), 0),
    ((lambda t, ans, x, y, z: t * y * z, None), 2),  # None: no derivative in y, but z has no rule
])
def test_defjvp_with_a_rule_missing_names_the_argument(rules, missing):
    @wengert.primitive
    def mul3(x, y, z):
        return x * y * z

    wengert.defjvp(mul3, *rules)
    with pytest.raises(NotImplementedError, match=rf"mul3: no JVP rule for positional argument {missing}\. "
                                                  r"Define one with wengert\.defjvp\(\S*mul3, "):
        wengert.jvp(mul3, (2.0, 3.0, 4.0), (1.0, 1.0, 1.0))


@wengert.custom_vjp
def scale(x, factor=2.0):
    return x * factor


scale.defvjp(lambda x, factor=2.0: (x * factor, factor), lambda factor, g: (g * factor,))


def _paused(fun):
    with wengert.no_grad():
        return fun()


KEYWORD_CALLS = [
    # (id, computation, value worked out by hand: scale(x, factor=3) is 3x)
    ("plain", lambda: scale(onp.ones(2), factor=3.0), onp.full(2, 3.0)),
    ("grad", lambda: grad(lambda x: np.sum(scale(x, factor=3.0)))(onp.ones(2)), onp.full(2, 3.0)),
    ("grad-of-grad", lambda: grad(grad(lambda x: scale(x, factor=3.0) ** 2))(1.5), 18.0),
    ("jvp", lambda: wengert.jvp(lambda x: scale(x, factor=3.0), (onp.ones(2),), (onp.ones(2),))[1],
     onp.full(2, 3.0)),
    ("no-grad", lambda: grad(lambda x: x * _paused(lambda: scale(x, factor=3.0)))(2.0), 6.0),  # 3x, constant
]


@pytest.mark.parametrize("compute,expected", [c[1:] for c in KEYWORD_CALLS], ids=[c[0] for c in KEYWORD_CALLS])
def test_custom_vjp_keyword_arguments_are_constants_given_to_fwd(compute, expected):
    assert close(compute(), expected)


@pytest.mark.parametrize("loss", [
    pytest.param(lambda s: np.sum(scale(onp.ones(2), factor=s)), id="only-by-keyword"),
    pytest.param(lambda s: np.sum(scale(s * onp.ones(2), factor=s)), id="positionally-too"),
    pytest.param(lambda s: np.sum(scale(onp.ones(2), factor=[s])), id="inside-a-list"),
])
def test_custom_vjp_traced_keyword_argument_is_refused(loss):
    with pytest.raises(TypeError, match=r"scale: keyword argument 'factor' is a traced value; pass it "
                                        r"positionally"):
        grad(loss)(3.0)


@pytest.mark.parametrize("output", [
    pytest.param(lambda x: (2.0 * x, 3.0 * x), id="tuple"),
    pytest.param(lambda x: [2.0 * x, 3.0 * x], id="list"),
    pytest.param(lambda x: {"a": 2.0 * x}, id="dict"),
])
@pytest.mark.parametrize("call", [
    pytest.param(lambda f: f(1.0), id="plain"),
    pytest.param(lambda f: grad(lambda x: f(x)[0])(1.0), id="grad"),
    pytest.param(lambda f: wengert.jvp(f, (1.0,), (1.0,)), id="jvp"),
])
def test_primitive_returning_several_outputs_is_refused(output, call):
    tup = wengert.primitive(output)
    wengert.defvjp(tup, lambda g, ans, x: g)
    with pytest.raises(TypeError, match=r"a primitive must return one array \(or number\); it returned a "
                                        r"(tuple|list|dict)\. Use wengert\.custom_vjp"):
        call(tup)


def test_custom_vjp_runs_bwd_once_per_output_for_all_arguments():
    calls = []

    @wengert.custom_vjp
    def weighted(p, x):
        return np.sum(p["w"] * x + p["b"])

    def fwd(p, x):
        return weighted(p, x), (p, x)

    def bwd(res, g):
        calls.append(g)
        p, x = res
        return {"w": g * x, "b": g * onp.ones_like(p["b"])}, g * p["w"]
    weighted.defvjp(fwd, bwd)
    p, x = {"w": onp.array([1.0, 2.0]), "b": onp.array([0.5, 0.5])}, onp.array([3.0, -1.0])
    gp, gx = grad(lambda p, x: weighted(p, x) * 2.0, argnum=(0, 1))(p, x)
    assert len(calls) == 1  # three argument leaves, one call
    assert close(gp["w"], 2 * x) and close(gp["b"], [2.0, 2.0]) and close(gx, 2 * p["w"])
    grad(lambda p, x: weighted(p, x), argnum=(0, 1))(p, x)
    assert len(calls) == 2  # and again for the next gradient


@pytest.mark.parametrize("fwd, bwd, error", [
    (lambda x: x * 2.0, lambda res, g: (g,), r"^double: fwd must return a pair \(output, residuals\); it returned"),
    (lambda x: (x * 2.0, None), 2, r"^double\.defvjp: bwd must be a function; got int"),
])
def test_custom_vjp_misuse_of_fwd_and_bwd(fwd, bwd, error):
    @wengert.custom_vjp
    def double(x):
        return x * 2.0
    with pytest.raises(TypeError, match=error):
        double.defvjp(fwd, bwd)
        grad(lambda x: double(x))(1.0)


# ----------------------------------------------------------------------------- jacrev of users' rules
_K = onp.array([1.0, -2.0, 0.5])


@wengert.primitive
def _convolve(x):
    """A call into compiled code, which takes plain arrays only (its rule too)."""
    return onp.convolve(onp.asarray(x), _K)


wengert.defvjp(_convolve, lambda g, ans, x: onp.correlate(onp.asarray(g), _K, mode="valid"))


@wengert.custom_vjp
def _clip_gradient(x):
    return x


_clip_gradient.defvjp(lambda x: (x, None), lambda residuals, g: (np.clip(g, -1.0, 1.0),))

JACREV_OF_USER_RULES = {  # name: (function, point, Jacobian worked out by hand)
    "compiled rule": (lambda x: _convolve(x) * 2.0, onp.array([0.3, -1.0, 2.0, 0.5]),
                      lambda x: 2.0 * sum(onp.eye(6, 4, -j) * _K[j] for j in range(3))),
    "compiled rule, scalar out": (lambda x: np.sum(_convolve(x) ** 2), onp.array([0.3, -1.0, 2.0, 0.5]),
                                  lambda x: fd(lambda x: onp.sum(onp.convolve(x, _K) ** 2), x)),
    "clipped gradient": (lambda x: np.sum(_clip_gradient(x) * 3.0), onp.array([0.5, 1.0, 2.0]),
                         lambda x: onp.ones(3)),  # the cotangent 3 clipped to 1, as grad gives
}


@pytest.mark.parametrize("name", JACREV_OF_USER_RULES)
def test_jacrev_calls_users_rules_on_plain_cotangents_as_grad_does(name):
    f, x, expected = JACREV_OF_USER_RULES[name]
    J = wengert.jacrev(f)(x)
    assert close(J, expected(x), rtol=1e-6)
    assert close(wengert.jacobian(f, mode="reverse")(x), J)
    if onp.ndim(J) == 1:
        assert close(grad(f)(x), J)


def test_forward_mode_through_a_compiled_rule_says_to_give_a_jvp_rule():
    with pytest.raises(wengert.ConversionError, match=r"^_convolve: forward mode .*wengert\.defjvp"):
        wengert.jvp(_convolve, (onp.ones(4),), (onp.ones(4),))
