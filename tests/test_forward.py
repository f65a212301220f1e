"""Forward mode and Jacobians: jvp, make_jvp, linearize, jacfwd, jacrev, jacobian, hessian,
hvp, derivative, chain_jacobian, defjvp, and forward mode through users' rules.

Results are checked against central finite differences (float64), against closed forms
worked out by hand, and against HIPS autograd as an independent oracle. Most cases are
written once as ``builder(m)`` with ``m`` a NumPy-like module, so that the same function runs
under wengert (``wengert.numpy``) and autograd (``autograd.numpy``); plain NumPy arrays go
through ``wengert.numpy`` unchanged, which is what the finite differences use.
"""

from __future__ import annotations

import math

import autograd
import autograd.numpy as anp
import numpy as onp
import pytest

import wengert
import wengert.numpy as np
from _helpers import close as _close
from _helpers import fd_grad
from wengert import (
    chain_jacobian,
    defjvp,
    derivative,
    grad,
    hessian,
    hvp,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    linearize,
    make_jvp,
)

RTOL, ATOL = 1e-6, 1e-8  # against finite differences
TIGHT = dict(rtol=1e-10, atol=1e-12)  # against autograd and closed forms


def close(a, b, rtol=RTOL, atol=ATOL):
    if onp.iscomplexobj(a) or onp.iscomplexobj(b):  # _close compares real parts only
        return onp.allclose(onp.asarray(a), onp.asarray(b), rtol=rtol, atol=atol)
    return _close(a, b, rtol, atol)


def same(a, b):
    """Equal shapes and values to rounding (two exact computations of one quantity)."""
    a, b = onp.asarray(a), onp.asarray(b)
    return a.shape == b.shape and onp.allclose(a, b, **TIGHT)


# ----------------------------------------------------------------------------- helpers
def fd_dir(f, x, t, eps=1e-6):
    """Central finite difference of ``f`` at ``x`` along the direction ``t`` (real or complex)."""
    x, t = onp.asarray(x), onp.asarray(t)
    return (onp.asarray(f(x + eps * t)) - onp.asarray(f(x - eps * t))) / (2 * eps)


def fd_jac(f, x, eps=1e-6, unit=1.0):
    """Central finite-difference Jacobian, shaped output.shape + input.shape, in double precision,
    complex where the input or the output is; each step is ``unit`` (1 or 1j) times ``eps``."""
    x = onp.asarray(x)
    x = x.astype(onp.result_type(x, onp.float64, unit))
    y = onp.asarray(f(x))
    J = onp.zeros(y.shape + x.shape, dtype=onp.result_type(y, onp.float64))
    for idx in onp.ndindex(x.shape):
        e = onp.zeros_like(x)
        e[idx] = eps * unit
        J[(Ellipsis,) + idx] = (onp.asarray(f(x + e)) - onp.asarray(f(x - e))) / (2 * eps)
    return J


def contract(J, t, nd):
    """J (output.shape + input.shape) applied to t (input.shape)."""
    return onp.tensordot(J, t, axes=nd)


RNG = onp.random.default_rng(20240611)
X3 = onp.array([0.3, -1.2, 2.0])
X4 = RNG.normal(size=4)
X23 = onp.array([[0.5, -0.7, 1.1], [2.0, 0.1, -1.5]])
A43 = RNG.normal(size=(4, 3))
B33 = RNG.normal(size=(3, 3))
C34 = RNG.normal(size=(3, 4))
W4 = onp.array([1.0, -2.0, 0.5, 3.0])


# ============================================================================= 1. jvp
# (name, builder(m) -> f, primal). Functions of one array, several output shapes.
JVP_CASES = [
    ("sin*x", lambda m: lambda x: m.sin(x) * x, X3),
    ("poly-scalar", lambda m: lambda x: 3 * x ** 3 - 2 * x + 1, 1.3),
    ("sum-exp", lambda m: lambda x: m.sum(m.exp(x) * x), X23),
    ("matvec-tanh", lambda m: lambda x: m.tanh(m.dot(A43, x)), X3),
    ("matrix-matmul", lambda m: lambda X: m.dot(X, B33) * m.exp(X), X23),
    ("broadcast", lambda m: lambda x: m.reshape(x, (3, 1)) * x + m.ones((2, 1, 1)), X3),
    ("axis-reductions", lambda m: lambda X: m.sum(X ** 3, axis=1) + m.mean(X, axis=0)[:2], X23),
    ("einsum", lambda m: lambda X: m.einsum("ij,kj->ik", X, X), X23),
    ("repeated-index", lambda m: lambda x: x[onp.array([0, 2, 2, 1, 0])] ** 2, X3),
    ("concat-stack", lambda m: lambda x: m.concatenate([m.stack([x, x ** 2]), m.reshape(m.sin(x), (1, 3))]), X3),
    ("prod-cumsum", lambda m: lambda X: m.cumsum(m.prod(X, axis=0)), X23),
    ("transpose-slice", lambda m: lambda X: m.transpose(X)[1:, ::-1] * X[0, 1], X23),
    ("quotient-log", lambda m: lambda x: m.log(1 + x * x) / (2 + m.cos(x)), X4),
]
JVP_IDS = [c[0] for c in JVP_CASES]


def _tangent_like(x, seed):
    return onp.random.default_rng(seed).normal(size=onp.shape(x))


@pytest.mark.parametrize("name,builder,x0", JVP_CASES, ids=JVP_IDS)
def test_jvp_matches_fd_and_autograd(name, builder, x0):
    f, af = builder(np), builder(anp)
    t = _tangent_like(x0, 1)
    out, tan = jvp(f, (x0,), (t,))
    assert same(out, f(x0))
    assert onp.shape(tan) == onp.shape(out)
    assert close(tan, fd_dir(f, x0, t))
    J = autograd.jacobian(af)(onp.asarray(x0, dtype=float))
    assert onp.allclose(tan, contract(J, t, onp.ndim(x0)), **TIGHT)


@pytest.mark.parametrize("name,builder,x0", JVP_CASES, ids=JVP_IDS)
def test_batched_jvp_equals_stacked_unbatched(name, builder, x0):
    f = builder(np)
    T = onp.random.default_rng(2).normal(size=(4,) + onp.shape(x0))
    out, tan = jvp(f, (x0,), (T,), batched=True)
    assert same(out, f(x0))
    stacked = onp.stack([jvp(f, (x0,), (T[i],))[1] for i in range(4)])
    assert onp.shape(tan) == (4,) + onp.shape(out)
    assert onp.allclose(tan, stacked, **TIGHT)


def test_batched_jvp_of_two_arguments_with_different_ranks():
    f = lambda x, Y: np.sin(x) * Y + x ** 2  # (3,) and (2, 3) broadcast together  # noqa: E731
    Y = X23
    T1, T2 = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 2, 3))
    _, tan = jvp(f, (X3, Y), (T1, T2), batched=True)
    assert tan.shape == (5, 2, 3)
    for i in range(5):
        expected = onp.cos(X3) * T1[i] * Y + onp.sin(X3) * T2[i] + 2 * X3 * T1[i]
        assert onp.allclose(tan[i], expected, **TIGHT)


def test_batched_jvp_of_a_python_float_primal():
    out, tan = jvp(np.sin, (0.5,), (onp.array([1.0, 2.0, -3.0]),), batched=True)
    assert out == pytest.approx(math.sin(0.5))
    assert onp.allclose(tan, math.cos(0.5) * onp.array([1.0, 2.0, -3.0]), **TIGHT)


def _pytree_fun(d, lst):
    return {"o": np.sum(d["a"] * lst[0]) + lst[1][0] ** 2, "p": (d["b"] * np.sin(lst[1][1]),)}


def test_jvp_of_pytree_primals_matches_closed_form_and_fd():
    a, b, v, s, r = X3, X23, onp.array([1.0, 0.5, -2.0]), 0.5, 0.3
    ta, tb, tv, ts, tr = RNG.normal(size=3), RNG.normal(size=(2, 3)), RNG.normal(size=3), 0.7, -1.1
    primals = ({"a": a, "b": b}, [v, (s, r)])
    tangents = ({"a": ta, "b": tb}, [tv, (ts, tr)])
    out, tan = jvp(_pytree_fun, primals, tangents)
    assert set(out) == {"o", "p"} and set(tan) == {"o", "p"}
    assert isinstance(tan["p"], tuple) and len(tan["p"]) == 1
    # by hand: d(sum(a*v) + s^2) = sum(ta*v + a*tv) + 2 s ts; d(b sin r) = tb sin r + b cos r tr
    assert tan["o"] == pytest.approx(onp.sum(ta * v + a * tv) + 2 * s * ts, rel=1e-12)
    assert onp.allclose(tan["p"][0], tb * math.sin(r) + b * math.cos(r) * tr, **TIGHT)

    def along(e):
        o = _pytree_fun({"a": a + e * ta, "b": b + e * tb}, [v + e * tv, (s + e * ts, r + e * tr)])
        return o["o"], o["p"][0]
    eps = 1e-6
    plus, minus = along(eps), along(-eps)
    assert close(tan["o"], (plus[0] - minus[0]) / (2 * eps))
    assert close(tan["p"][0], (plus[1] - minus[1]) / (2 * eps))


def test_batched_jvp_of_pytree_primals():
    primals = ({"a": X3, "b": X23}, [X3[::-1].copy(), (0.5, 0.3)])
    B = 3
    tangents = ({"a": RNG.normal(size=(B, 3)), "b": RNG.normal(size=(B, 2, 3))},
                [RNG.normal(size=(B, 3)), (RNG.normal(size=B), RNG.normal(size=B))])
    _, tan = jvp(_pytree_fun, primals, tangents, batched=True)
    assert tan["o"].shape == (B,) and tan["p"][0].shape == (B, 2, 3)
    for i in range(B):
        ti = ({"a": tangents[0]["a"][i], "b": tangents[0]["b"][i]},
              [tangents[1][0][i], (tangents[1][1][0][i], tangents[1][1][1][i])])
        _, one = jvp(_pytree_fun, primals, ti)
        assert onp.allclose(tan["o"][i], one["o"], **TIGHT)
        assert onp.allclose(tan["p"][0][i], one["p"][0], **TIGHT)


def test_jvp_of_python_floats_matches_closed_form():
    f = lambda x, y: x * y + np.sin(x) / y  # noqa: E731
    x, y, tx, ty = 1.5, -0.5, 1.0, 2.0
    out, tan = jvp(f, (x, y), (tx, ty))
    assert onp.ndim(out) == 0 and onp.ndim(tan) == 0
    assert out == pytest.approx(x * y + math.sin(x) / y, rel=1e-14)
    expected = (y + math.cos(x) / y) * tx + (x - math.sin(x) / y ** 2) * ty
    assert tan == pytest.approx(expected, rel=1e-12)


def test_python_int_primal_is_promoted_like_grad():
    assert grad(lambda x: x ** 3)(2) == pytest.approx(12.0)
    out, tan = jvp(lambda x: x ** 3, (2,), (1.0,))
    assert out == pytest.approx(8.0) and tan == pytest.approx(12.0)


@pytest.mark.parametrize("f", [
    lambda x: np.sin(x) * x,
    lambda x: np.sum(np.exp(x) * 2.0),
    lambda x: np.tanh(x) @ np.ones((3, 2), dtype=onp.float32),
    lambda x: x / (1.0 + x * x),
], ids=["sin*x", "sum-exp", "matmul-f32", "rational"])
def test_float32_primal_and_tangent_stay_float32(f):
    x = X3.astype(onp.float32)
    t = onp.array([1.0, -2.0, 0.5], dtype=onp.float32)
    out, tan = jvp(f, (x,), (t,))
    assert onp.asarray(out).dtype == onp.float32
    assert onp.asarray(tan).dtype == onp.float32
    ref = fd_dir(f, X3, t.astype(float))
    assert onp.allclose(tan, ref, rtol=1e-4, atol=1e-5)
    _, tanb = jvp(f, (x,), (onp.stack([t, 2 * t]),), batched=True)
    assert onp.asarray(tanb).dtype == onp.float32


Z3 = onp.array([0.3 + 0.2j, -1.0 + 0.5j, 0.4 - 0.7j])
TZ3 = onp.array([1.0 + 1.0j, 0.5 - 2.0j, -0.3 + 0.1j])
M23C = RNG.normal(size=(2, 3)) + 1j * RNG.normal(size=(2, 3))
HOLOMORPHIC = [
    ("exp*z^2", lambda m: lambda z: m.exp(z) * z ** 2),
    ("sin/cos", lambda m: lambda z: m.sin(z) / m.cos(z)),
    ("log-sqrt", lambda m: lambda z: m.log(z) + m.sqrt(z)),
    ("tanh-sinh-cosh", lambda m: lambda z: m.tanh(z) + m.sinh(z) * m.cosh(z)),
    ("reciprocal", lambda m: lambda z: 1 / z + m.square(z)),
    ("matmul", lambda m: lambda z: m.dot(M23C, z)),
    ("sum-prod-cumsum", lambda m: lambda z: m.sum(z ** 3) * m.cumsum(z) + m.prod(z)),
    ("outer-einsum", lambda m: lambda z: m.einsum("i,j->ij", z, z) + m.outer(z, z ** 2)),
    ("complex-power", lambda m: lambda z: z ** (1.5 + 0.5j)),
    ("arctan-arcsinh", lambda m: lambda z: m.arctan(z) + m.arcsinh(z)),
]


@pytest.mark.parametrize("name,builder", HOLOMORPHIC, ids=[c[0] for c in HOLOMORPHIC])
def test_jvp_of_holomorphic_function_matches_fd_along_complex_direction(name, builder):
    f = builder(np)
    out, tan = jvp(f, (Z3,), (TZ3,))
    assert onp.iscomplexobj(tan) and onp.shape(tan) == onp.shape(out)
    assert close(tan, fd_dir(f, Z3, TZ3))
    # a holomorphic derivative is complex-linear: the direction i*t gives i times the tangent
    _, tanb = jvp(f, (Z3,), (onp.stack([TZ3, 1j * TZ3]),), batched=True)
    assert onp.allclose(tanb[0], tan, **TIGHT)
    assert onp.allclose(tanb[1], 1j * onp.asarray(tan), **TIGHT)
    assert close(tanb[1], fd_dir(f, Z3, 1j * TZ3))


@pytest.mark.parametrize("name,f", [
    ("abs", np.abs), ("conj", np.conj), ("real", np.real), ("imag", np.imag),
    ("abs2", lambda z: np.real(z * np.conj(z))),
], ids=lambda v: v if isinstance(v, str) else "")
def test_jvp_of_non_holomorphic_parts_matches_fd(name, f):
    out, tan = jvp(f, (Z3,), (TZ3,))
    ref = fd_dir(f, Z3, TZ3)
    assert onp.iscomplexobj(tan) == onp.iscomplexobj(ref)
    assert close(tan, ref)


def test_jvp_has_aux_returns_output_tangent_and_plain_aux():
    def f(x):
        return np.sin(x), {"cos": np.cos(x), "note": "hi", "n": 3}
    out, tan, aux = jvp(f, (X3,), (onp.ones(3),), has_aux=True)
    assert onp.allclose(out, onp.sin(X3), **TIGHT) and onp.allclose(tan, onp.cos(X3), **TIGHT)
    assert aux["note"] == "hi" and aux["n"] == 3
    assert type(aux["cos"]) is onp.ndarray and not isinstance(aux["cos"], wengert.Box)
    assert onp.allclose(aux["cos"], onp.cos(X3), **TIGHT)
    out, tan, aux = jvp(f, (X3,), (onp.stack([onp.ones(3), X3]),), has_aux=True, batched=True)
    assert tan.shape == (2, 3) and onp.allclose(tan[1], onp.cos(X3) * X3, **TIGHT)
    assert type(aux["cos"]) is onp.ndarray


@pytest.mark.parametrize("f,what", [
    (lambda x: x * 2.0, "a float"),
    (lambda x: x * onp.array([1.0, 5.0]), "a ndarray of shape \\(2,\\)"),
    (lambda x: (x, x, x), "a tuple"),
    (lambda x: (x,), "a tuple"),
], ids=["float", "array", "triple", "single"])
def test_jvp_has_aux_requires_a_pair_like_grad(f, what):
    with pytest.raises(TypeError, match=rf"^jvp: with has_aux=True .*pair.*returned {what}"):
        jvp(f, (1.0,), (1.0,), has_aux=True)


@pytest.mark.parametrize("batch", [(), (4,)], ids=["unbatched", "batched"])
@pytest.mark.parametrize("const", [
    onp.ones((2, 5)), 3.0, onp.arange(3), onp.float32(2.0),
], ids=["array", "float", "int-array", "float32"])
def test_output_independent_of_input_gives_zero_tangent_of_its_shape(const, batch):
    out, tan = jvp(lambda x: const, (X3,), (onp.ones(batch + (3,)),), batched=bool(batch))
    tan = onp.asarray(tan)
    assert tan.shape == batch + onp.shape(const)
    assert onp.all(tan == 0) and tan.dtype.kind == "f"


def test_output_pytree_with_an_independent_leaf():
    out, tan = jvp(lambda x: (x * 2.0, onp.zeros((2, 2)), {"c": 1.0}), (X3,), (onp.ones(3),))
    assert onp.allclose(tan[0], 2.0)
    assert onp.shape(tan[1]) == (2, 2) and onp.all(onp.asarray(tan[1]) == 0)
    assert onp.shape(tan[2]["c"]) == () and tan[2]["c"] == 0


# --- errors
def test_jvp_tangent_structure_mismatch_raises():
    with pytest.raises(ValueError, match="structure"):
        jvp(np.sin, (X3,), (X3, X3))
    with pytest.raises(ValueError, match="structure"):
        jvp(lambda a, b: a * b, (X3, X3), (X3,))
    with pytest.raises(ValueError, match="structure"):
        jvp(lambda d: d["a"] * d["b"], ({"a": X3, "b": X3},), ({"a": X3},))


def test_jvp_tangent_with_same_leaf_count_but_other_containers_raises():
    with pytest.raises(ValueError, match="structure"):
        jvp(lambda d: d["a"] * d["b"], ({"a": X3, "b": X3},), ([X3, X3],))


@pytest.mark.parametrize("batched,tangent,shape_text", [
    (False, onp.ones(2), r"\(2,\)"),
    (False, onp.ones((3, 1)), r"\(3, 1\)"),
    (False, 1.0, r"\(\)"),
    (True, onp.ones((4, 2)), r"\(4, 2\)"),
])
def test_jvp_tangent_of_wrong_shape_raises_naming_the_shape(batched, tangent, shape_text):
    with pytest.raises(ValueError, match=shape_text):
        jvp(np.sin, (X3,), (tangent,), batched=batched)


@pytest.mark.parametrize("tangent", [onp.array([1, 2, 3]), onp.array([True, False, True])], ids=["int", "bool"])
def test_jvp_non_float_tangent_raises_type_error(tangent):
    with pytest.raises(TypeError, match="dtype"):
        jvp(np.sin, (X3,), (tangent,))


def test_batched_jvp_with_different_batch_sizes_raises():
    with pytest.raises(ValueError, match="batch"):
        jvp(lambda a, b: a * b, (X3, X3), (onp.ones((4, 3)), onp.ones((5, 3))), batched=True)
    with pytest.raises(ValueError, match="batch"):  # no batch dimension at all
        jvp(np.sin, (X3,), (onp.ones(3),), batched=True)
    with pytest.raises(ValueError, match="batch"):  # two batch dimensions
        jvp(np.sin, (X3,), (onp.ones((2, 2, 3)),), batched=True)


@pytest.mark.parametrize("primal", [
    True, onp.bool_(False), "x", onp.array([1, 2, 3]), onp.array([True, False]), None,
], ids=["bool", "np-bool", "str", "int-array", "bool-array", "none"])
def test_non_float_primals_raise_type_error_like_grad(primal):
    with pytest.raises(TypeError):
        grad(lambda x: x)(primal)
    with pytest.raises(TypeError, match="argument 0"):
        jvp(lambda x: x, (primal,), (onp.ones(onp.shape(primal)),))
    for api in (jacfwd, jacrev, jacobian):
        with pytest.raises(TypeError):
            api(lambda x: x)(primal)


NON_NUMERIC_CALLS = {
    "jvp": lambda f: jvp(f, (X3,), (onp.ones(3),)),
    "make_jvp": lambda f: make_jvp(f)(X3)(onp.ones(3)),
    "linearize": lambda f: linearize(f, X3),
    "jacfwd": lambda f: jacfwd(f)(X3),
    "jacrev": lambda f: jacrev(f)(X3),
    "jacobian": lambda f: jacobian(f)(X3),  # auto: 3 inputs, 1 output element -> reverse
    "elementwise_grad": lambda f: wengert.elementwise_grad(f)(X3),
    "vjp": lambda f: wengert.vjp(f, X3),
    "make_vjp": lambda f: wengert.make_vjp(f)(X3),
}


@pytest.mark.parametrize("api", list(NON_NUMERIC_CALLS))
@pytest.mark.parametrize("f,what", [
    (lambda x: None, "None"),
    (lambda x: "s", "a str"),
    (lambda x: onp.ones(2, dtype=object), "an array of dtype object"),
    (lambda x: onp.array(["a", "b"]), "an array of dtype <U1"),
    (lambda x: (x * 2.0, None), "None \\(output leaf 1\\)"),
], ids=["None", "str", "object-array", "str-array", "None-leaf"])
def test_non_numeric_output_is_refused_naming_the_api(api, f, what):
    with pytest.raises(TypeError, match=rf"^{api}: the function must return numbers.*returned {what}"):
        NON_NUMERIC_CALLS[api](f)


# ============================================================================= 2. nesting
SCALAR_FUNS = [
    ("sum-sin*x^2", lambda m: lambda x: m.sum(m.sin(x) * x ** 2)),
    ("logsumexp", lambda m: lambda x: m.log(m.sum(m.exp(x)))),
    ("quartic-coupled", lambda m: lambda x: m.sum(x ** 4) * m.sum(x) + m.prod(x)),
]


@pytest.mark.parametrize("name,builder", SCALAR_FUNS, ids=[c[0] for c in SCALAR_FUNS])
def test_forward_over_reverse_jvp_of_grad_is_hessian_vector_product(name, builder):
    f, af = builder(np), builder(anp)
    v = onp.array([0.5, -1.0, 2.0])
    _, hv = jvp(grad(f), (X3,), (v,))
    assert onp.allclose(hv, autograd.hessian(af)(X3) @ v, **TIGHT)
    assert close(hv, fd_dir(grad(f), X3, v))


@pytest.mark.parametrize("name,builder", SCALAR_FUNS, ids=[c[0] for c in SCALAR_FUNS])
def test_reverse_over_forward_grad_of_jvp_is_hessian_vector_product(name, builder):
    f, af = builder(np), builder(anp)
    v = onp.array([0.5, -1.0, 2.0])
    g = grad(lambda x: jvp(f, (x,), (v,))[1])(X3)
    assert onp.allclose(g, autograd.hessian(af)(X3) @ v, **TIGHT)


@pytest.mark.parametrize("name,builder", SCALAR_FUNS, ids=[c[0] for c in SCALAR_FUNS])
def test_forward_over_forward_jvp_of_jvp_is_bilinear_form(name, builder):
    f, af = builder(np), builder(anp)
    u, v = onp.array([1.0, 0.0, -1.0]), onp.array([0.5, -1.0, 2.0])
    _, second = jvp(lambda x: jvp(f, (x,), (v,))[1], (X3,), (u,))
    assert second == pytest.approx(u @ autograd.hessian(af)(X3) @ v, rel=1e-10)
    # batched outer directions: every row of the Hessian times v
    _, rows = jvp(lambda x: jvp(f, (x,), (v,))[1], (X3,), (onp.eye(3),), batched=True)
    assert onp.allclose(rows, autograd.hessian(af)(X3) @ v, **TIGHT)


def test_reverse_over_forward_of_vector_function():
    f = lambda x: np.tanh(A43 @ x) * x[0]  # noqa: E731
    af = lambda x: anp.tanh(anp.dot(A43, x)) * x[0]  # noqa: E731
    v, w = onp.array([0.5, -1.0, 2.0]), W4
    g = grad(lambda x: np.sum(w * jvp(f, (x,), (v,))[1]))(X3)
    H = autograd.jacobian(lambda x: anp.dot(autograd.jacobian(af)(x), v))(X3)  # d(J v)/dx
    assert onp.allclose(g, w @ H, **TIGHT)


def test_forward_over_forward_second_derivative_closed_form():
    f = lambda x: np.sin(x) * x ** 2  # noqa: E731
    d2 = jvp(lambda y: jvp(f, (y,), (1.0,))[1], (0.7,), (1.0,))[1]
    x = 0.7
    assert d2 == pytest.approx(-math.sin(x) * x * x + 4 * x * math.cos(x) + 2 * math.sin(x), rel=1e-12)


@pytest.mark.parametrize("name,compute,expected", [
    ("classic-jvp-jvp", lambda: jvp(lambda x: x * jvp(lambda y: x * y, (2.0,), (1.0,))[1], (1.0,), (1.0,))[1], 2.0),
    ("grad-outer-jvp-inner", lambda: grad(lambda x: x * jvp(lambda y: x * y, (2.0,), (1.0,))[1])(1.0), 2.0),
    ("jvp-outer-grad-inner", lambda: jvp(lambda x: x * grad(lambda y: x * y)(2.0), (1.0,), (1.0,))[1], 2.0),
    ("jvp-of-grad-of-closure", lambda: jvp(lambda x: grad(lambda y: y * x)(1.0), (3.0,), (1.0,))[1], 1.0),
    ("inner-constant-in-outer",
     lambda: jvp(lambda x: jvp(lambda y: y * 3.0, (x,), (1.0,))[1] * x, (2.0,), (1.0,))[1], 3.0),
], ids=lambda v: v if isinstance(v, str) else "")
def test_no_perturbation_confusion(name, compute, expected):
    assert compute() == pytest.approx(expected, rel=1e-14)


def test_grad_with_respect_to_the_tangent_and_the_primal():
    assert grad(lambda s: jvp(np.sin, (0.3,), (s,))[1])(2.0) == pytest.approx(math.cos(0.3), rel=1e-14)
    assert grad(lambda x: jvp(np.sin, (x,), (1.0,))[1])(0.3) == pytest.approx(-math.sin(0.3), rel=1e-14)
    g = grad(lambda x: np.sum(jvp(np.sin, (x,), (onp.ones(3),))[1]))(X3)
    assert onp.allclose(g, -onp.sin(X3), **TIGHT)


def test_hessian_of_a_jvp_computed_quantity():
    H = hessian(lambda x: jvp(lambda y: np.sum(y ** 4), (x,), (onp.ones(2),))[1])(onp.array([1.0, 2.0]))
    # d/dt sum(y^4) along ones = 4 sum(y^3); its Hessian is diag(24 y)
    assert onp.allclose(H, onp.diag([24.0, 48.0]), **TIGHT)


NESTED_JACOBIANS = [
    ("jacfwd(jacfwd)", lambda f: jacfwd(jacfwd(f))),
    ("jacrev(jacfwd)", lambda f: jacrev(jacfwd(f))),
    ("jacfwd(jacrev)", lambda f: jacfwd(jacrev(f))),
    ("jacobian(jacobian)", lambda f: jacobian(jacobian(f))),
]


@pytest.mark.parametrize("name,nest", NESTED_JACOBIANS, ids=[c[0] for c in NESTED_JACOBIANS])
def test_jacobian_of_jacobian_matches_autograd(name, nest):
    f, af = (lambda x: np.sin(x) * x[0] ** 2), (lambda x: anp.sin(x) * x[0] ** 2)
    x = onp.array([1.0, 2.0])
    assert onp.allclose(nest(f)(x), autograd.jacobian(autograd.jacobian(af))(x), **TIGHT)


@pytest.mark.parametrize("api", [jacfwd, jacrev, jacobian, "hessian"], ids=["jacfwd", "jacrev", "jacobian", "hessian"])
def test_grad_of_a_jacobian_computed_quantity(api):
    x = onp.array([1.0, 2.0])
    if api == "hessian":  # sum of the Hessian of sum(y^4) = sum(12 y^2): gradient 24 y
        g = grad(lambda x: np.sum(hessian(lambda y: np.sum(y ** 4))(x)))(x)
        assert onp.allclose(g, 24 * x, **TIGHT)
    else:  # sum of the Jacobian of y^3 = sum(3 y^2): gradient 6 y
        g = grad(lambda x: np.sum(api(lambda y: y ** 3)(x)))(x)
        assert onp.allclose(g, 6 * x, **TIGHT)


# ============================================================================= 3. Jacobians
JAC_CASES = [
    ("R3->R (m=1)", lambda m: lambda x: m.sum(m.sin(x) * x), X3),
    ("R->R4 (n=1)", lambda m: lambda x: x * onp.arange(4.0) + x ** 2, 0.7),
    ("R->R", lambda m: lambda x: m.sin(x) * x, 0.5),
    ("matvec", lambda m: lambda x: m.tanh(m.dot(A43, x)), X3),
    ("matrix->matrix", lambda m: lambda X: m.dot(X, B33) * m.exp(X), X23),
    ("broadcast", lambda m: lambda x: m.reshape(x, (3, 1)) * x + m.ones((2, 1, 1)), X3),
    ("reductions-axis", lambda m: lambda X: m.sum(X ** 3, axis=1) + m.mean(X, axis=0)[:2]
     + m.max(m.sin(X), axis=1), X23),
    ("matmul", lambda m: lambda X: m.dot(m.dot(X, C34), m.transpose(C34)), X23),
    ("einsum", lambda m: lambda X: m.einsum("ij,jk->ik", X, m.transpose(X)), X23),
    ("einsum-scalar*X", lambda m: lambda X: m.einsum("ij,kj->", X, X) * X, X23),
    ("repeated-index", lambda m: lambda x: x[onp.array([0, 2, 2, 1, 0])] ** 2, X3),
    ("concat-stack", lambda m: lambda x: m.concatenate(
        [m.stack([x, x ** 2], axis=1), m.reshape(m.sin(x), (3, 1))], axis=1), X3),
    ("var-std", lambda m: lambda X: m.var(X, axis=0) + m.std(X, axis=0), X23),
    ("mixed-index", lambda m: lambda X: X[1, :] * X[:, 2:][0], X23),
]
JAC_IDS = [c[0] for c in JAC_CASES]
JAC_APIS = [
    ("jacfwd", jacfwd),
    ("jacrev", jacrev),
    ("auto", lambda f: jacobian(f)),
    ("forward", lambda f: jacobian(f, mode="forward")),
    ("reverse", lambda f: jacobian(f, mode="reverse")),
]


@pytest.mark.parametrize("name,builder,x0", JAC_CASES, ids=JAC_IDS)
def test_jacobians_agree_with_each_other_fd_and_autograd(name, builder, x0):
    f, af = builder(np), builder(anp)
    ref = autograd.jacobian(af)(onp.asarray(x0, dtype=float))
    fd = fd_jac(f, x0)
    assert ref.shape == fd.shape == onp.shape(f(x0)) + onp.shape(x0)
    assert close(ref, fd)  # the oracle itself
    for api_name, api in JAC_APIS:
        J = api(f)(x0)
        assert onp.shape(J) == ref.shape, api_name
        assert onp.allclose(J, ref, **TIGHT), api_name


@pytest.mark.parametrize("api_name,api", JAC_APIS, ids=[a[0] for a in JAC_APIS])
def test_jacobian_of_float32_input_is_float32(api_name, api):
    J = api(lambda x: np.sin(x) * 2.0)(X3.astype(onp.float32))
    assert J.dtype == onp.float32 and J.shape == (3, 3)
    assert onp.allclose(J, onp.diag(2 * onp.cos(X3)), rtol=1e-6)


@pytest.mark.parametrize("make", [
    lambda f: wengert.jacfwd(f, has_aux=True), lambda f: wengert.jacrev(f, has_aux=True),
    lambda f: wengert.jacobian(f, has_aux=True), lambda f: wengert.jacobian(f, mode="forward", has_aux=True),
    lambda f: wengert.jacobian(f, mode="reverse", has_aux=True),
    lambda f: (lambda x: wengert.jacobian(f, has_aux=True, return_mode=True)(x)[0]),
], ids=["jacfwd", "jacrev", "jacobian", "jacobian-forward", "jacobian-reverse", "jacobian-return_mode"])
def test_jacobians_with_auxiliary_data(make):
    def f(x):
        y = np.sin(x) * x[0]
        return y, {"norm": np.sum(x ** 2), "count": 3, "y": y}
    J, aux = make(f)(X3)
    assert close(J, fd_jac(lambda x: f(x)[0], X3))
    assert close(aux["norm"], onp.sum(X3 ** 2)) and aux["count"] == 3 and close(aux["y"], onp.sin(X3) * X3[0])
    assert not isinstance(aux["y"], wengert.Box)  # plain values, as grad's has_aux gives


NONADJACENT = lambda A: A[onp.array([0, 1]), :, onp.array([2, 3])]  # noqa: E731
X234 = RNG.normal(size=(2, 3, 4))


def test_jacfwd_with_non_adjacent_advanced_indices():
    J = jacfwd(NONADJACENT)(X234)
    assert J.shape == (2, 3, 2, 3, 4)
    assert onp.allclose(J, fd_jac(NONADJACENT, X234), **TIGHT)


@pytest.mark.parametrize("api_name", ["jacrev", "reverse", "auto", "hessian"])
def test_reverse_jacobians_with_non_adjacent_advanced_indices(api_name):
    if api_name == "hessian":
        f = lambda A: np.sum(NONADJACENT(A) ** 3)  # noqa: E731
        H = hessian(f)(X234)
        expected = onp.zeros((2, 3, 4, 2, 3, 4))
        for i, k in ((0, 2), (1, 3)):
            for j in range(3):
                expected[i, j, k, i, j, k] = 6 * X234[i, j, k]
        assert onp.allclose(H, expected, **TIGHT)
        return
    api = {"jacrev": jacrev, "reverse": lambda f: jacobian(f, mode="reverse"),
           "auto": lambda f: jacobian(f)}[api_name]  # auto: 24 inputs > 6 outputs -> reverse
    assert onp.allclose(api(NONADJACENT)(X234), fd_jac(NONADJACENT, X234), **TIGHT)


# --- pytrees
def _dict_to_tuple(d):
    return (np.sum(d["a"] ** 2) * d["b"], np.reshape(d["a"], (1, 3)) * d["b"] + np.sin(d["c"]))


@pytest.mark.parametrize("api_name,api", JAC_APIS, ids=[a[0] for a in JAC_APIS])
def test_jacobian_of_dict_input_and_tuple_output_nests_output_outside(api_name, api):
    d = {"a": X3, "b": X23, "c": 0.4}
    J = api(_dict_to_tuple)(d)
    assert isinstance(J, tuple) and len(J) == 2
    for j, out_shape in enumerate([(2, 3), (2, 3)]):
        assert isinstance(J[j], dict) and set(J[j]) == {"a", "b", "c"}
        for key in "abc":
            in_shape = onp.shape(d[key])
            assert onp.shape(J[j][key]) == out_shape + in_shape, (j, key)

            def leaf_fun(v, key=key, j=j):
                return onp.asarray(_dict_to_tuple({**d, key: v})[j])
            x0 = onp.asarray(d[key], dtype=float)
            assert close(J[j][key], fd_jac(leaf_fun, x0).reshape(out_shape + in_shape)), (j, key)
    # closed forms for two blocks
    assert onp.allclose(J[0]["b"], onp.sum(X3 ** 2) * onp.eye(6).reshape(2, 3, 2, 3), **TIGHT)
    assert onp.allclose(J[1]["c"], onp.full((2, 3), math.cos(0.4)), **TIGHT)


@pytest.mark.parametrize("api_name,api", [
    ("jacfwd", jacfwd), ("jacrev", jacrev), ("auto", jacobian),
    ("forward", lambda f, argnum: jacobian(f, argnum, mode="forward")),
    ("reverse", lambda f, argnum: jacobian(f, argnum, mode="reverse")),
], ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("argnum", [(0, 2), (2, 0), (1,), (0, 1, 2), (-1, 0)])
def test_jacobian_tuple_argnum_gives_a_tuple_over_the_arguments(api_name, api, argnum):
    def f(x, y, z):
        return np.sin(x) * y[:, None] + z * x

    args = (X23, onp.array([0.5, -2.0]), 1.5)
    J = api(f, argnum)(*args)
    assert isinstance(J, tuple) and len(J) == len(argnum)
    for Jk, k in zip(J, argnum):
        def partial(v, k=k):
            a = list(args)
            a[k] = v
            return f(*a)
        x0 = onp.asarray(args[k], dtype=float)
        assert onp.shape(Jk) == (2, 3) + x0.shape
        assert close(Jk, fd_jac(partial, x0))


def test_jacobian_of_list_output_is_a_list():
    J = jacfwd(lambda x: [x * 2.0, np.sum(x)])(X3)
    assert isinstance(J, list) and len(J) == 2
    assert onp.allclose(J[0], 2 * onp.eye(3)) and onp.allclose(J[1], onp.ones(3))


def test_jacobian_of_constant_output_is_zero_of_the_right_shape():
    for _, api in JAC_APIS:
        J = api(lambda x: onp.ones((2, 5)))(X3)
        assert onp.shape(J) == (2, 5, 3) and onp.all(onp.asarray(J) == 0)


def test_jacobian_keyword_arguments_are_passed_through():
    for _, api in JAC_APIS:
        J = api(lambda x, scale=1.0: scale * np.sin(x))(X3, scale=3.0)
        assert onp.allclose(J, 3.0 * onp.diag(onp.cos(X3)), **TIGHT)


def test_jacobian_invalid_mode_raises():
    with pytest.raises(ValueError, match="mode"):
        jacobian(np.sin, mode="fwd")


# --- argnum naming an argument twice: every forward API refuses it with jacrev's words
DUPLICATE_CALLS = {
    "jacfwd": lambda f, argnum: jacfwd(f, argnum)(1.0, 2.0),
    "jacobian": lambda f, argnum: jacobian(f, argnum, mode="forward")(1.0, 2.0),
    "make_jvp": lambda f, argnum: make_jvp(f, argnum)(1.0, 2.0)((1.0, 1.0)),
}  # (hessian and hvp refuse it already, in the gradient they differentiate)


@pytest.mark.parametrize("api", list(DUPLICATE_CALLS))
@pytest.mark.parametrize("argnum", [(0, 0), (1, -1), (0, 1, -2)])
def test_argnum_naming_an_argument_twice_is_refused_as_in_jacrev(api, argnum):
    f = lambda a, b: a * b  # noqa: E731
    with pytest.raises(ValueError) as reverse:
        jacrev(f, argnum)(1.0, 2.0)
    with pytest.raises(ValueError) as forward:
        DUPLICATE_CALLS[api](f, argnum)
    assert str(forward.value) == str(reverse.value).replace("jacrev:", f"{api}:", 1)
    assert str(forward.value) == f"{api}: argnum {argnum} names the same argument twice."


# --- complex outputs of real inputs: the whole complex derivative, in every mode
JAC_MAKERS = {  # name: make(f, argnum)
    "jacfwd": jacfwd,
    "jacrev": jacrev,
    "auto": lambda f, argnum=0: jacobian(f, argnum),
    "forward": lambda f, argnum=0: jacobian(f, argnum, mode="forward"),
    "reverse": lambda f, argnum=0: jacobian(f, argnum, mode="reverse"),
}
R_TO_C = [  # (name, f, args, argnum): each argument real, or complex with f holomorphic in it
    ("sum*(1+i)", lambda x: np.sum(x) * (1 + 1j), (X3,), 0),
    ("exp(ix)", lambda x: np.exp(1j * x) * x[::-1], (X3,), 0),
    ("complex constant", lambda x: np.sin(x) * onp.array([1 - 2j, 0.5j, 3.0]) + x ** 2, (X3,), 0),
    ("real and complex outputs", lambda x: (np.sum(x ** 2), np.outer(x, 1j + x)), (X3,), 0),
    ("real next to complex argument", lambda a, b: a * b, (1.5, onp.array([1 + 1j, 2 - 0.5j])), (0, 1)),
    ("structures", lambda d: {"c": d["x"] * (2 - 1j) * d["y"], "r": d["x"] * d["y"]},
     ({"x": X3, "y": 0.7},), 0),
]


def _fd_blocks(f, args, argnum):
    """Finite-difference Jacobian blocks, one per (output leaf, input leaf), in the order of the
    leaves of the APIs' nested result (the output's structure outside, the inputs' inside)."""
    from wengert._tree import flatten, unflatten
    ks = (argnum,) if isinstance(argnum, int) else argnum
    n_out = len(flatten(f(*args))[0])
    columns = []  # per input leaf, its block for every output leaf
    for k in ks:
        leaves, structure = flatten(args[k])
        for n, leaf in enumerate(leaves):
            def moved(v, k=k, n=n, leaves=leaves, structure=structure):
                a = list(args)
                a[k] = unflatten(structure, leaves[:n] + [v] + leaves[n + 1:])
                return flatten(f(*a))[0]
            columns.append([fd_jac(lambda v, j=j: moved(v)[j], leaf) for j in range(n_out)])
    return [block for row in zip(*columns) for block in row]


@pytest.mark.parametrize("name,f,args,argnum", R_TO_C, ids=[c[0] for c in R_TO_C])
def test_jacobians_of_complex_outputs_of_real_inputs_agree_with_fd(name, f, args, argnum):
    from wengert._tree import flatten
    want = _fd_blocks(f, args, argnum)
    for api_name, make in JAC_MAKERS.items():
        got = flatten(make(f, argnum)(*args))[0]
        assert len(got) == len(want), api_name
        for g, w in zip(got, want):
            assert onp.shape(g) == w.shape and onp.iscomplexobj(g) == onp.iscomplexobj(w), api_name
            assert close(g, w), (api_name, g, w)


# --- dtype: a Jacobian has its input's dtype (complex of that precision for a complex output)
W3 = onp.linspace(1.0, 2.0, 3)  # a float64 constant


@pytest.mark.parametrize("f,x,dtype", [
    (lambda x: x * W3, X3.astype(onp.float32), onp.float32),  # the output is float64
    (lambda x: np.sin(x).astype(onp.float32), X3, onp.float64),  # the output is float32
    (lambda x: x * (1 + 2j) * W3, X3.astype(onp.float32), onp.complex64),  # the output is complex128
    (lambda z: z ** 2 * W3, (X3 + 1j).astype(onp.complex64), onp.complex64),  # the output is complex128
], ids=["f32->f64", "f64->f32", "f32->c128", "c64->c128"])
def test_jacobian_dtype_is_the_inputs_in_every_mode(f, x, dtype):
    want = fd_jac(f, x, eps=1e-3)  # float32 values: a step large enough for their rounding
    for api_name, make in JAC_MAKERS.items():
        J = make(f)(x)
        assert J.dtype == dtype, (api_name, J.dtype)
        assert close(J, want, rtol=1e-3, atol=1e-3), api_name


# --- nothing to differentiate: empty structures, as jacrev gives them
@pytest.mark.parametrize("call,want", [
    (lambda make: make(lambda a, b: a * b, ())(1.0, 2.0), ()),
    (lambda make: make(lambda d: 1.0)({}), {}),
    (lambda make: make(lambda d, x: (x * 2.0, np.sum(x)))({}, X3), ({}, {})),
    (lambda make: make(lambda x: {})(X3), {}),
], ids=["argnum=()", "empty dict", "empty dict, two outputs", "no outputs"])
def test_jacobian_with_nothing_to_differentiate_is_empty_in_every_mode(call, want):
    for api_name, make in JAC_MAKERS.items():
        assert call(make) == want, api_name


@pytest.mark.parametrize("f,args,argnum,want", [
    (lambda a, b: a * b, (1.0, 2.0), (), ()),
    (lambda d: 1.0, ({},), 0, {}),
    (lambda d, x: np.sum(x ** 2), ({}, X3), 0, {}),
], ids=["argnum=()", "empty dict", "empty dict next to an array"])
def test_hessian_with_nothing_to_differentiate_is_empty_as_jacrev_of_grad(f, args, argnum, want):
    assert hessian(f, argnum)(*args) == jacrev(grad(f, argnum), argnum)(*args) == want


# ============================================================================= 4. mode="auto"
def test_auto_mode_chooses_reverse_for_many_inputs_one_output():
    x = onp.linspace(-1.0, 1.0, 1000)
    J, used = jacobian(lambda v: np.sum(v ** 2), return_mode=True)(x)
    assert used == "reverse"
    assert J.shape == (1000,) and onp.allclose(J, 2 * x, **TIGHT)


@pytest.mark.parametrize("x", [2.0, onp.array([2.0])], ids=["float", "array1"])
def test_auto_mode_chooses_forward_for_one_input_many_outputs(x):
    J, used = jacobian(lambda v: v * onp.arange(1000.0), return_mode=True)(x)
    assert used == "forward"
    assert onp.allclose(onp.reshape(J, -1), onp.arange(1000.0), **TIGHT)


NOT_HOLOMORPHIC = [  # complex inputs, real outputs
    ("sum |z|^2 + Re z", lambda z: np.sum(np.abs(z) ** 2 + np.real(z))),
    ("Re z * Im z", lambda z: np.sum(np.real(z) * np.imag(z)) * onp.ones(2)),
    ("|z| elementwise", lambda z: np.abs(z) * 2.0),
]


@pytest.mark.parametrize("name,f", NOT_HOLOMORPHIC, ids=[c[0] for c in NOT_HOLOMORPHIC])
def test_auto_mode_on_complex_inputs_follows_grad_at_every_size(name, f):
    """For complex inputs forward and reverse mode agree on holomorphic functions only, so
    mode="auto" does not let the sizes pick: it is reverse mode, grad's d/dx - i d/dy."""
    for z in (onp.array([0.6 - 1.2j]), onp.array([0.6 - 1.2j, -0.3 + 0.4j, 2.0 + 0.5j])):
        want = fd_jac(f, z) - 1j * fd_jac(f, z, unit=1j)
        J, used = jacobian(f, return_mode=True)(z)
        assert used == "reverse", z.size
        assert J.shape == want.shape and close(J, want), z.size
        assert onp.allclose(J, jacrev(f)(z), **TIGHT)
        if J.ndim == 1:
            assert onp.allclose(J, grad(f)(z), **TIGHT)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_explicit_mode_is_returned(mode):
    J, used = jacobian(lambda v: np.sin(v), mode=mode, return_mode=True)(X3)
    assert used == mode and onp.allclose(J, onp.diag(onp.cos(X3)), **TIGHT)


def test_auto_mode_records_the_function_once():
    calls = []

    def f(v):
        calls.append(1)
        return np.sin(v) * v[0]
    for x in (X3, onp.ones(1)):  # forward (3 <= 3, 1 <= 1) and ...
        calls.clear()
        jacobian(f)(x)
        assert len(calls) == 1
    calls.clear()
    jacobian(lambda v: np.sum(f(v)))(X3)  # ... reverse
    assert len(calls) == 1


# ============================================================================= 5. Hessians
A44 = RNG.normal(size=(4, 4))
HESS_CASES = [
    ("rosenbrock-5", lambda m: lambda x: m.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2),
     onp.array([-1.2, 1.0, 0.5, -0.3, 0.8])),
    ("quadratic", lambda m: lambda x: m.dot(x, m.dot(A44, x)), X4),
    ("sum-tanh^2", lambda m: lambda x: m.sum(m.tanh(x) ** 2), X4),
    ("logsumexp", lambda m: lambda x: m.log(m.sum(m.exp(x))), X4),
    ("matrix", lambda m: lambda X: m.sum(m.sin(m.dot(X, m.transpose(X)))) + m.prod(X[0]), X23 * 0.5),
]


@pytest.mark.parametrize("name,builder,x0", HESS_CASES, ids=[c[0] for c in HESS_CASES])
def test_hessian_matches_fd_of_gradient_and_autograd(name, builder, x0):
    f, af = builder(np), builder(anp)
    H = hessian(f)(x0)
    assert H.shape == x0.shape + x0.shape
    assert onp.allclose(H, autograd.hessian(af)(x0), rtol=1e-10, atol=1e-10)
    g = grad(f)
    assert close(H, fd_jac(g, x0), rtol=1e-5, atol=1e-6)
    assert onp.allclose(H.reshape(x0.size, -1), H.reshape(x0.size, -1).T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,builder,x0", HESS_CASES, ids=[c[0] for c in HESS_CASES])
def test_hvp_equals_hessian_times_vector(name, builder, x0):
    f = builder(np)
    v = onp.random.default_rng(7).normal(size=x0.shape)
    assert onp.allclose(hvp(f)(x0, v), contract(hessian(f)(x0), v, x0.ndim), **TIGHT)


def test_quadratic_form_hessian_is_a_plus_a_transpose():
    H = hessian(lambda x: x @ A44 @ x)(X4)
    assert onp.allclose(H, A44 + A44.T, **TIGHT)
    v = onp.array([1.0, 0.0, -2.0, 0.5])
    assert onp.allclose(hvp(lambda x: x @ A44 @ x)(X4, v), (A44 + A44.T) @ v, **TIGHT)


def test_hessian_of_two_arguments_with_tuple_argnum():
    def f(x, y):
        return np.sum(x ** 2 * y) + np.sum(np.sin(y)) * x[0]

    def F(z):  # the same function of the concatenated arguments, for autograd
        x, y = z[:3], z[3:]
        return anp.sum(x ** 2 * y) + anp.sum(anp.sin(y)) * x[0]
    x, y = X3, onp.array([2.0, -1.2, 0.3])
    H = hessian(f, argnum=(0, 1))(x, y)
    full = autograd.hessian(F)(onp.concatenate([x, y]))
    assert isinstance(H, tuple) and all(isinstance(r, tuple) and len(r) == 2 for r in H)
    blocks = [[full[:3, :3], full[:3, 3:]], [full[3:, :3], full[3:, 3:]]]
    for i in range(2):
        for j in range(2):
            assert onp.allclose(H[i][j], blocks[i][j], **TIGHT), (i, j)


def test_hessian_with_argnum_and_hvp_with_argnum():
    f = lambda a, b: np.sum(a * b ** 3)  # noqa: E731
    assert onp.allclose(hessian(f, argnum=1)(X3, X3[::-1]), onp.diag(6 * X3 * X3[::-1]), **TIGHT)
    assert onp.allclose(hvp(f, argnum=1)(X3, X3[::-1], onp.ones(3)), 6 * X3 * X3[::-1], **TIGHT)


@pytest.mark.parametrize("x, v", [
    (0.7, 1.0), (onp.float32(0.7), onp.float32(1.0)), (onp.array(0.7), onp.array(1.0)),
    ((onp.ones(2), onp.array(0.5)), (onp.ones(2), onp.array(1.0))), ([1.0, 0.5], [1.0, 1.0]), (2, 1.0),
], ids=["float", "float32", "0-d", "tuple with a 0-d part", "list of floats", "int"])
def test_hvp_result_has_the_arguments_types(x, v):
    """As grad's gradient: a float for a Python float, a 0-d array for a 0-d array."""
    from wengert._tree import flatten
    f = (lambda x: np.sin(x) * x) if not isinstance(x, (tuple, list)) else (lambda p: np.sum(np.sin(p[0]) * p[1] ** 2))
    got, g = hvp(f)(x, v), wengert.grad(f)(x)
    assert all(type(a) is type(b) for a, b in zip(flatten(got)[0], flatten(g)[0])) and type(got) is type(g)
    if not isinstance(x, (tuple, list)):  # the value: the derivative of the gradient along v
        assert close(got, fd_dir(lambda y: wengert.grad(f)(float(y)), float(x), float(v)), rtol=1e-5)


def test_hessian_of_dict_argument():
    H = hessian(lambda d: np.sum(d["a"] ** 2 * d["b"]))({"a": X3, "b": 2.0})
    assert onp.allclose(H["a"]["a"], 4 * onp.eye(3), **TIGHT)
    assert onp.allclose(H["a"]["b"], 2 * X3, **TIGHT) and onp.allclose(H["b"]["a"], 2 * X3, **TIGHT)
    assert onp.allclose(H["b"]["b"], 0.0)


# ============================================================================= 6. higher orders
def _tanh3(x):  # by hand: T' = 1 - T^2, T'' = -2 T T', T''' = (1 - T^2)(6 T^2 - 2)
    T = math.tanh(x)
    return (1 - T * T) * (6 * T * T - 2)


THIRD = [
    ("sin", np.sin, lambda x: -math.cos(x), 0.7),
    ("exp", np.exp, math.exp, -0.4),
    ("x^5", lambda x: x ** 5, lambda x: 60 * x ** 2, 1.3),
    ("log", np.log, lambda x: 2 / x ** 3, 0.8),
    ("tanh", np.tanh, _tanh3, 0.5),
    ("tanh-at-0", np.tanh, lambda x: -2.0, 0.0),
]


@pytest.mark.parametrize("name,f,d3,x", THIRD, ids=[c[0] for c in THIRD])
def test_third_derivative_matches_closed_form(name, f, d3, x):
    assert derivative(f, 3)(x) == pytest.approx(d3(x), rel=1e-10, abs=1e-12)
    # and the finite difference of the second derivative
    assert derivative(f, 3)(x) == pytest.approx(fd_grad(derivative(f, 2), x), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("order,expected", [
    (0, math.sin(0.7)), (1, math.cos(0.7)), (2, -math.sin(0.7)), (3, -math.cos(0.7)), (4, math.sin(0.7)),
])
def test_derivative_orders_of_sin(order, expected):
    assert derivative(np.sin, order)(0.7) == pytest.approx(expected, rel=1e-12)


def test_derivative_order_zero_returns_the_function_and_default_is_one():
    f = lambda x: x ** 3  # noqa: E731
    assert derivative(f, 0) is f
    assert derivative(f)(2.0) == pytest.approx(12.0)
    assert derivative(f, order=1)(2.0) == pytest.approx(12.0)


def test_derivative_agrees_with_autograd_fourth_order():
    f, af = (lambda x: np.exp(np.sin(x)) * x), (lambda x: anp.exp(anp.sin(x)) * x)
    ref = autograd.grad(autograd.grad(autograd.grad(autograd.grad(af))))(0.3)
    assert derivative(f, 4)(0.3) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("order", [-1, -3, 1.0, 2.5, "2", None])
def test_derivative_rejects_negative_or_non_int_order(order):
    with pytest.raises(ValueError, match="order"):
        derivative(np.sin, order)


def test_derivative_accepts_numpy_integer_order():
    assert derivative(np.sin, onp.int64(2))(0.7) == pytest.approx(-math.sin(0.7), rel=1e-12)


# ============================================================================= 7. linearize, make_jvp
def _counted():
    calls = []

    def inner(v):
        calls.append(1)
        return v

    def f(x, y):
        return np.outer(np.sin(inner(x)), y) * np.sum(x * x)
    return f, calls


Y2 = onp.array([0.5, 1.5])


def test_linearize_pushes_tangents_without_calling_f_again():
    f, calls = _counted()
    out, f_jvp = linearize(f, X3, Y2)
    assert len(calls) == 1
    assert onp.allclose(out, f(X3, Y2), **TIGHT)
    calls.clear()
    rng = onp.random.default_rng(11)
    tangents = [(rng.normal(size=3), rng.normal(size=2)) for _ in range(4)]
    tangents += [(onp.zeros(3), onp.ones(2)), (onp.ones(3), onp.zeros(2))]
    results = [f_jvp(tx, ty) for tx, ty in tangents]
    batched = f_jvp(onp.stack([t[0] for t in tangents]), onp.stack([t[1] for t in tangents]), batched=True)
    assert calls == []  # neither the single nor the batched pushes evaluated f
    for (tx, ty), r, rb in zip(tangents, results, batched):
        ref = jvp(f, (X3, Y2), (tx, ty))[1]
        assert onp.allclose(r, ref, **TIGHT) and onp.allclose(rb, ref, **TIGHT)
        assert close(r, fd_dir(lambda z: f(z[:3], z[3:]), onp.concatenate([X3, Y2]), onp.concatenate([tx, ty])))
    assert batched.shape == (len(tangents), 3, 2)


@pytest.mark.parametrize("name,builder,x0", JVP_CASES, ids=JVP_IDS)
def test_linearize_matches_jvp_on_the_jvp_table(name, builder, x0):
    f = builder(np)
    out, f_jvp = linearize(f, x0)
    assert same(out, f(x0))
    T = onp.random.default_rng(3).normal(size=(3,) + onp.shape(x0))
    for i in range(3):
        assert onp.allclose(f_jvp(T[i]), jvp(f, (x0,), (T[i],))[1], **TIGHT)
    assert onp.allclose(f_jvp(T, batched=True), jvp(f, (x0,), (T,), batched=True)[1], **TIGHT)


def test_linearize_can_be_pushed_many_times_without_stale_tangents():
    _, f_jvp = linearize(lambda x: np.sin(x) * x, X3)
    a = f_jvp(onp.ones(3))
    f_jvp(onp.full(3, 100.0))
    assert onp.allclose(f_jvp(onp.ones(3)), a, **TIGHT)
    assert onp.allclose(a, onp.cos(X3) * X3 + onp.sin(X3), **TIGHT)


def test_linearize_of_pytrees_identity_and_constants():
    _, f_jvp = linearize(lambda d: d["a"] * d["b"], {"a": X3, "b": 2.0})
    assert onp.allclose(f_jvp({"a": onp.ones(3), "b": 1.0}), 2.0 + X3, **TIGHT)
    _, f_jvp = linearize(lambda x: (x, x * 2.0, onp.ones(2)), X3)
    t = f_jvp(onp.array([1.0, 2.0, 3.0]))
    assert onp.allclose(t[0], [1, 2, 3]) and onp.allclose(t[1], [2, 4, 6])
    assert onp.shape(t[2]) == (2,) and onp.all(onp.asarray(t[2]) == 0)
    out, f_jvp = linearize(lambda x: x * x, 1.5)
    assert out == pytest.approx(2.25) and f_jvp(1.0) == pytest.approx(3.0)


def test_linearize_tangent_errors():
    _, f_jvp = linearize(lambda x: np.sin(x), X3)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        f_jvp(onp.ones(2))
    with pytest.raises(TypeError, match="dtype"):
        f_jvp(onp.array([1, 2, 3]))
    with pytest.raises(ValueError, match="batch"):
        f_jvp(onp.ones(3), batched=True)


@pytest.mark.parametrize("argnum", [0, 1, (0, 1), (1, 0)])
def test_make_jvp_equals_jvp(argnum):
    f = lambda x, y: np.outer(np.sin(x), y) * np.sum(x * x)  # noqa: E731
    args = (X3, Y2)
    rng = onp.random.default_rng(5)
    tans = {0: rng.normal(size=3), 1: rng.normal(size=2)}
    push = make_jvp(f, argnum)(*args)
    if isinstance(argnum, int):
        value, tan = push(tans[argnum])
        ks = (argnum,)
        full_t = (tans[argnum],)
    else:
        value, tan = push(tuple(tans[k] for k in argnum))
        ks = argnum
        full_t = tuple(tans[k] for k in argnum)

    def partial(*chosen):
        a = list(args)
        for k, v in zip(ks, chosen):
            a[k] = v
        return f(*a)
    ref_out, ref_tan = jvp(partial, tuple(args[k] for k in ks), full_t)
    assert onp.allclose(value, f(*args), **TIGHT) and onp.allclose(tan, ref_tan, **TIGHT)
    # and by hand, for the single-argument cases
    if argnum == 1:
        assert onp.allclose(tan, onp.outer(onp.sin(X3), tans[1]) * onp.sum(X3 * X3), **TIGHT)


def test_make_jvp_push_can_be_called_many_times():
    push = make_jvp(lambda x: x ** 3)(2.0)
    assert push(1.0) == (pytest.approx(8.0), pytest.approx(12.0))
    assert push(-2.0) == (pytest.approx(8.0), pytest.approx(-24.0))


# ============================================================================= 8. chain_jacobian
def _tanh_stage(W):
    return lambda v: np.tanh(W @ v)


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64, onp.complex64])
def test_chain_jacobian_keeps_the_dtype_other_jacobians_have(dtype):
    x = (onp.array([1, 2, 3]) * 0.1).astype(dtype)
    stages = [np.sin, np.cos]
    assert chain_jacobian(stages, x).jacobian.dtype == jacfwd(lambda v: np.cos(np.sin(v)))(x).dtype == dtype
    assert chain_jacobian(stages, onp.array([1, 2])).jacobian.dtype == onp.float64  # integers: promoted


def test_chain_jacobian_refuses_a_traced_input_and_a_stage_without_one_array():
    with pytest.raises(TypeError, match=r"^chain_jacobian: x is a traced value .* Call wengert.jacobian there"):
        grad(lambda x: np.sum(chain_jacobian([np.sin, np.cos], x).jacobian))(X3)
    with pytest.raises(TypeError, match=r"^chain_jacobian: stage 1 returned a dict; each stage maps one array"):
        chain_jacobian([np.sin, lambda v: {"a": v}], X3)


def test_chain_jacobian_seed_example_counts_and_jacobian():
    nx, na, nb, ny = 3, 5, 7, 11
    rng = onp.random.default_rng(12)
    Wp, Wq, Wr = rng.normal(size=(na, nx)), rng.normal(size=(nb, na)), rng.normal(size=(ny, nb))
    stages = [_tanh_stage(Wp), _tanh_stage(Wq), _tanh_stage(Wr)]
    x = rng.normal(size=nx)
    res = chain_jacobian(stages, x)
    assert isinstance(res, wengert.ChainJacobian)
    forward = nx * na * nb + nx * nb * ny  # J_q J_p first (b x a x x), then J_r times it (y x b x x)
    reverse = ny * na * nb + ny * na * nx  # J_r J_q first (y x b x a), then times J_p (y x a x x)
    assert (forward, reverse) == (336, 550)
    assert res.multiplications["forward"] == forward
    assert res.multiplications["reverse"] == reverse
    assert res.multiplications["chosen"] == forward and res.order == "J3 (J2 J1)"
    composed = lambda v: stages[2](stages[1](stages[0](v)))  # noqa: E731
    assert res.jacobian.shape == (ny, nx)
    assert onp.allclose(res.jacobian, jacfwd(composed)(x), **TIGHT)
    assert close(res.jacobian, fd_jac(composed, x))
    # the stage Jacobians, at the intermediate values, by hand: diag(1 - tanh^2) W
    a = onp.tanh(Wp @ x)
    b = onp.tanh(Wq @ a)
    hand = [(1 - a ** 2)[:, None] * Wp, (1 - b ** 2)[:, None] * Wq, (1 - onp.tanh(Wr @ b) ** 2)[:, None] * Wr]
    assert [j.shape for j in res.stage_jacobians] == [(na, nx), (nb, na), (ny, nb)]
    for got, want in zip(res.stage_jacobians, hand):
        assert onp.allclose(got, want, **TIGHT)


def test_chain_jacobian_reversed_sizes_chooses_reverse():
    sizes = [11, 7, 5, 3]
    rng = onp.random.default_rng(13)
    stages = [_tanh_stage(rng.normal(size=(sizes[i + 1], sizes[i])) / 3) for i in range(3)]
    res = chain_jacobian(stages, rng.normal(size=11))
    forward = 11 * 7 * 5 + 11 * 5 * 3
    reverse = 3 * 7 * 5 + 3 * 7 * 11
    assert res.multiplications == {"forward": forward, "reverse": reverse, "chosen": reverse}
    assert res.order == "(J3 J2) J1"


def test_chain_jacobian_narrow_middle_beats_forward_and_reverse():
    sizes = [40, 40, 2, 40, 40]
    rng = onp.random.default_rng(14)
    stages = [_tanh_stage(rng.normal(size=(sizes[i + 1], sizes[i])) / 6) for i in range(4)]
    x = rng.normal(size=40)
    res = chain_jacobian(stages, x)
    # J1: 40x40, J2: 2x40, J3: 40x2, J4: 40x40
    forward = 2 * 40 * 40 + 40 * 2 * 40 + 40 * 40 * 40  # J2 J1, J3 (J2 J1), J4 (...)
    reverse = 40 * 40 * 2 + 40 * 2 * 40 + 40 * 40 * 40  # J4 J3, (J4 J3) J2, (...) J1
    hybrid = 40 * 40 * 2 + 2 * 40 * 40 + 40 * 2 * 40  # J4 J3, J2 J1, and their 40x2 by 2x40 product
    assert (forward, reverse, hybrid) == (70400, 70400, 9600)
    assert res.order == "(J4 J3) (J2 J1)"
    assert res.multiplications == {"forward": forward, "reverse": reverse, "chosen": hybrid}
    assert res.multiplications["chosen"] < min(forward, reverse)

    def composed(v):
        for s in stages:
            v = s(v)
        return v
    assert onp.allclose(res.jacobian, jacfwd(composed)(x), **TIGHT)
    assert onp.linalg.matrix_rank(res.jacobian) <= 2  # it factors through 2 dimensions


def test_chain_jacobian_single_stage_and_matrix_shaped_stage():
    res = chain_jacobian([np.sin], X3)
    assert res.order == "J1" and res.multiplications == {"forward": 0, "reverse": 0, "chosen": 0}
    assert onp.allclose(res.jacobian, onp.diag(onp.cos(X3)), **TIGHT)
    res = chain_jacobian([lambda v: np.reshape(v, (3, 1)) * v, lambda M: np.sum(M, axis=0)], X3)
    # sum_i x_i x_j = S x_j: d/dx_k = x_j + S [j == k]
    assert res.jacobian.shape == (3, 3)
    assert onp.allclose(res.jacobian, X3[:, None] + onp.sum(X3) * onp.eye(3), **TIGHT)
    assert res.multiplications["forward"] == 3 * 9 * 3


A22C = onp.array([[1.0 + 0.5j, -0.3j], [0.2, 2.0 - 1.0j]])


@pytest.mark.parametrize("stages,x", [
    ([lambda v: v ** 2], onp.array([1 + 1j])),
    ([lambda v: A22C @ v, np.exp, lambda v: np.sin(v) * v[::-1]], onp.array([0.3 - 0.2j, -0.5 + 1.0j])),
    ([lambda v: v * (1 + 2j), np.sin, lambda v: np.outer(v, v).ravel()],
     onp.array([0.4 + 0.1j, -0.7 + 0.3j], onp.complex64)),
], ids=["square", "matmul-exp-sin", "complex64"])
def test_chain_jacobian_of_holomorphic_stages_keeps_a_complex_input_complex(stages, x):
    def composed(v):
        for s in stages:
            v = s(v)
        return v
    res = chain_jacobian(stages, x)
    assert res.jacobian.dtype == x.dtype  # complex64 stays complex64, as jacfwd's does
    exact = fd_jac(composed, x.astype(onp.complex128))  # a holomorphic map: the step along 1 is enough
    assert close(res.jacobian, exact, rtol=1e-5 if x.dtype == onp.complex64 else 1e-7)


def test_chain_jacobian_needs_a_stage():
    with pytest.raises(ValueError, match="stage"):
        chain_jacobian([], X3)


# ============================================================================= 9. custom rules
def _vjp_only_cube():
    @wengert.primitive
    def cube(x):
        return x ** 3
    wengert.defvjp(cube, lambda g, ans, x: g * 3 * x ** 2)
    return cube


def _vjp_only_mix():
    @wengert.primitive
    def mix(x, y):  # sum(x) * y: x (3,), y (2,)
        return np.sum(x) * y
    wengert.defvjp(mix, lambda g, ans, x, y: np.ones_like(x) * np.sum(g * y),
                   lambda g, ans, x, y: g * np.sum(x))
    return mix


def test_vjp_only_primitive_in_forward_mode_uses_the_transposed_rule():
    cube = _vjp_only_cube()
    t = onp.array([1.0, -2.0, 0.5])
    out, tan = jvp(cube, (X3,), (t,))
    assert onp.allclose(out, X3 ** 3) and onp.allclose(tan, 3 * X3 ** 2 * t, **TIGHT)
    assert close(tan, fd_dir(cube, X3, t))
    assert onp.allclose(jacfwd(cube)(X3), onp.diag(3 * X3 ** 2), **TIGHT)
    T = RNG.normal(size=(4, 3))
    _, tanb = jvp(cube, (X3,), (T,), batched=True)
    assert tanb.shape == (4, 3) and onp.allclose(tanb, 3 * X3 ** 2 * T, **TIGHT)
    assert jvp(cube, (0.5,), (1.0,))[1] == pytest.approx(0.75)
    for point in (0.5, onp.float32(0.5), onp.array(0.5)):  # the tangent has the output's type
        out, tangent = jvp(cube, (point,), (point * 0 + 1,))
        assert type(tangent) is type(out)
    # inside a larger function, and linearized
    f = lambda x: np.sin(cube(x)) * x  # noqa: E731
    assert close(jacfwd(f)(X3), fd_jac(f, X3))
    _, f_jvp = linearize(f, X3)
    assert onp.allclose(f_jvp(T, batched=True), jvp(f, (X3,), (T,), batched=True)[1], **TIGHT)


def test_vjp_only_primitive_of_two_arguments_in_forward_mode():
    mix = _vjp_only_mix()
    Jx, Jy = jacfwd(mix, argnum=(0, 1))(X3, Y2)
    assert onp.allclose(Jx, onp.outer(Y2, onp.ones(3)), **TIGHT)
    assert onp.allclose(Jy, onp.sum(X3) * onp.eye(2), **TIGHT)
    Tx, Ty = RNG.normal(size=(3, 3)), RNG.normal(size=(3, 2))
    _, tanb = jvp(mix, (X3, Y2), (Tx, Ty), batched=True)
    for i in range(3):
        assert onp.allclose(tanb[i], onp.sum(Tx[i]) * Y2 + onp.sum(X3) * Ty[i], **TIGHT)
        assert close(tanb[i], fd_dir(lambda z: mix(z[:3], z[3:]), onp.concatenate([X3, Y2]),
                                     onp.concatenate([Tx[i], Ty[i]])))


def test_transposed_vjp_rule_of_a_broadcasting_primitive():
    @wengert.primitive
    def scale(x, s):
        return x * s
    # s's rule returns an array shaped like x; reverse mode sums it (fit), as for built-in rules
    wengert.defvjp(scale, lambda g, ans, x, s: g * s, lambda g, ans, x, s: g * x)
    assert grad(lambda s: np.sum(scale(X3, s)))(2.0) == pytest.approx(onp.sum(X3))
    assert onp.allclose(jacrev(lambda s: scale(X3, s))(2.0), X3)
    assert onp.allclose(jvp(lambda s: scale(X3, s), (2.0,), (1.0,))[1], X3)
    assert onp.allclose(jacfwd(lambda s: scale(X3, s))(2.0), X3)


def test_defjvp_rule_is_used_in_forward_mode_and_vjp_in_reverse():
    @wengert.primitive
    def square(x):
        return x * x
    wengert.defvjp(square, lambda g, ans, x: 2 * g * x)
    wengert.defjvp(square, lambda t, ans, x: 10.0 * t * x)  # deliberately 5x the truth
    t = onp.array([1.0, -1.0, 2.0])
    assert onp.allclose(jvp(square, (X3,), (t,))[1], 10 * X3 * t, **TIGHT)
    assert onp.allclose(jacfwd(square)(X3), onp.diag(10 * X3), **TIGHT)
    assert onp.allclose(jvp(square, (X3,), (onp.stack([t, 2 * t]),), batched=True)[1],
                        onp.stack([10 * X3 * t, 20 * X3 * t]), **TIGHT)
    _, f_jvp = linearize(square, X3)
    assert onp.allclose(f_jvp(t), 10 * X3 * t, **TIGHT)
    # reverse mode keeps the VJP rule
    assert onp.allclose(grad(lambda x: np.sum(square(x)))(X3), 2 * X3, **TIGHT)
    assert onp.allclose(jacrev(square)(X3), onp.diag(2 * X3), **TIGHT)


@pytest.mark.parametrize("directions", [2, 3])
def test_defjvp_rule_sees_one_direction_at_a_time(directions):
    """A rule written for one tangent (M @ t) under jacfwd, hessian and a batched jvp, where the
    directions once came as a leading batch dimension: M @ T mixed them (a transposed Jacobian
    when there are as many directions as elements, an error otherwise)."""
    M = onp.arange(1.0, 1.0 + directions * directions).reshape(directions, directions) ** 1.5
    seen = []

    @wengert.primitive
    def mv(a):
        return M @ a
    wengert.defvjp(mv, lambda g, ans, a: M.T @ g)
    wengert.defjvp(mv, lambda t, ans, a: seen.append(np.shape(t)) or M @ t)
    x = onp.linspace(0.5, 1.5, directions)
    assert onp.allclose(jacfwd(mv)(x), M, **TIGHT)
    assert set(seen) == {(directions,)}
    assert onp.allclose(hessian(lambda a: np.sum(mv(a) ** 3))(x), M.T @ onp.diag(6 * (M @ x)) @ M, **TIGHT)
    T = onp.stack([x, 2 * x, -x])
    assert onp.allclose(jvp(mv, (x,), (T,), batched=True)[1], T @ M.T, **TIGHT)


def test_defjvp_only_primitive_works_in_forward_mode():
    @wengert.primitive
    def my_sin(x):
        return np.sin(x)
    wengert.defjvp(my_sin, lambda t, ans, x: t * np.cos(x))
    assert onp.allclose(jvp(my_sin, (X3,), (onp.ones(3),))[1], onp.cos(X3), **TIGHT)
    assert onp.allclose(jacfwd(my_sin)(X3), onp.diag(onp.cos(X3)), **TIGHT)
    # second order through the JVP rule (written with wengert.numpy): forward over forward
    second = jvp(lambda x: jvp(my_sin, (x,), (1.0,))[1], (0.4,), (1.0,))[1]
    assert second == pytest.approx(-math.sin(0.4), rel=1e-12)


def test_defjvp_rule_of_two_arguments():
    @wengert.primitive
    def mul(x, y):
        return x * y
    wengert.defjvp(mul, lambda t, ans, x, y: t * y, lambda t, ans, x, y: x * t)
    tx, ty = onp.array([1.0, 0.0, 2.0]), onp.array([0.5, 0.5, -1.0])
    _, tan = jvp(mul, (X3, Y2[:1] * onp.ones(3)), (tx, ty))
    assert onp.allclose(tan, tx * 0.5 + X3 * ty, **TIGHT)


def test_defjvp_none_rule_means_no_contribution():
    @wengert.primitive
    def mul(x, y):
        return x * y
    wengert.defvjp(mul, lambda g, a, x, y: g * y, lambda g, a, x, y: g * x)
    wengert.defjvp(mul, lambda t, a, x, y: t * y, None)
    _, tan = jvp(mul, (X3, X3), (onp.ones(3), onp.ones(3)))
    assert onp.allclose(tan, X3)


def _custom_sin_times():
    @wengert.custom_vjp
    def f(x, y):  # sin(x) * y, x (3,), y a scalar
        return np.sin(x) * y
    f.defvjp(lambda x, y: (np.sin(x) * y, (x, y)),
             lambda r, g: (g * np.cos(r[0]) * r[1], np.sum(g * np.sin(r[0]))))
    return f


def test_custom_vjp_function_under_jvp_and_jacfwd():
    f = _custom_sin_times()
    y = 2.0
    out, tan = jvp(f, (X3, y), (onp.ones(3), 1.0))
    assert onp.allclose(out, onp.sin(X3) * y, **TIGHT)
    assert onp.allclose(tan, onp.cos(X3) * y + onp.sin(X3), **TIGHT)
    assert onp.allclose(jacfwd(f)(X3, y), onp.diag(onp.cos(X3) * y), **TIGHT)
    assert onp.allclose(jacfwd(f, argnum=1)(X3, y), onp.sin(X3), **TIGHT)
    _, tanb = jvp(f, (X3, y), (onp.stack([onp.ones(3), onp.zeros(3)]), onp.array([0.0, 1.0])), batched=True)
    assert onp.allclose(tanb, onp.stack([onp.cos(X3) * y, onp.sin(X3)]), **TIGHT)
    assert close(jacfwd(lambda x: f(x, y))(X3), fd_jac(lambda x: f(x, y), X3))


def test_custom_vjp_rule_is_what_forward_mode_transposes():
    @wengert.custom_vjp
    def clipped(x):
        return x * 1.0
    clipped.defvjp(lambda x: (x * 1.0, None), lambda r, g: (3.0 * g,))  # a deliberately wrong slope
    assert onp.allclose(jvp(clipped, (X3,), (onp.ones(3),))[1], 3.0, **TIGHT)
    assert onp.allclose(jacfwd(clipped)(X3), 3.0 * onp.eye(3), **TIGHT)


def test_custom_vjp_with_tuple_output_under_jacfwd():
    @wengert.custom_vjp
    def h(x):
        return x ** 2, np.sum(x)
    h.defvjp(lambda x: ((x ** 2, np.sum(x)), x), lambda r, g: (2 * r * g[0] + g[1],))
    out, tan = jvp(h, (X3,), (onp.ones(3),))
    assert onp.allclose(tan[0], 2 * X3, **TIGHT) and tan[1] == pytest.approx(3.0)
    J = jacfwd(h)(X3)
    assert isinstance(J, tuple)
    assert onp.allclose(J[0], onp.diag(2 * X3), **TIGHT) and onp.allclose(J[1], onp.ones(3), **TIGHT)


@pytest.mark.parametrize("fun", [np.sin, lambda x: x, onp.sin, "not a function"],
                         ids=["wnp.sin", "lambda", "onp.sin", "str"])
def test_defjvp_on_a_non_primitive_raises_type_error(fun):
    with pytest.raises(TypeError, match="primitive"):
        defjvp(fun, lambda t, ans, x: t)


# ============================================================================= 10. the JVP table
def test_jvp_table_has_the_vjp_tables_keys_in_the_same_order():
    from wengert.numpy._jvps import JVPS
    from wengert.numpy._vjps import VJPS
    assert list(JVPS) == list(VJPS)


def test_every_jvp_rule_is_diagonal_a_joint_or_one_entry_per_vjp_rule():
    from wengert._core import Joint
    from wengert.numpy._jvps import DIAGONAL, JVPS
    from wengert.numpy._vjps import VJPS, Variadic
    for fun, rules in JVPS.items():
        vjps = VJPS[fun]
        if rules is DIAGONAL or type(rules) is Joint:
            continue
        if isinstance(rules, Variadic):
            assert isinstance(vjps, Variadic), fun
            continue
        assert isinstance(rules, tuple) and len(rules) == len(vjps), fun
        for j, v in zip(rules, vjps):
            assert (j is None) == (v is None), fun
