"""wengert.numpy as a drop-in for NumPy, and plain ``numpy`` code on traced values.

The same function is written once against a module ``m`` and run with ``m = numpy``
(dispatching through ``__array_ufunc__``/``__array_function__``), ``m = wengert.numpy`` and
``m = autograd.numpy`` (the independent oracle).
"""

from __future__ import annotations

import math
import operator
import re

import autograd
import autograd.numpy as anp
import numpy as onp
import pytest

import wengert
import wengert.numpy as np
from _helpers import close as _close
from _helpers import fd_grad
from wengert import elementwise_grad, grad, stop_gradient
from wengert.numpy._vjps import NONDIFFERENTIABLE

X = onp.array([[0.5, -0.7, 1.1], [2.0, 0.1, -1.5]])


def close(a, b, rtol=1e-9, atol=1e-11):
    return _close(a, b, rtol, atol)
A = onp.array([[0.3, -1.0, 0.5, 2.0], [1.5, 0.2, -0.4, 0.7], [-0.6, 0.9, 1.2, -0.3]])


def weights(shape, seed=0):
    return onp.random.default_rng(seed).standard_normal(shape)


# ----------------------------------------------------------------------------- same function, three modules
FUNCTIONS = [
    ("ufunc-mix", lambda m, x: m.sin(x) * m.exp(-x) + m.log1p(x * x)),
    ("tanh-sqrt-power", lambda m, x: m.tanh(x) ** 2 + m.sqrt(x * x + 1.0)),
    ("sum-axis0", lambda m, x: m.sum(x ** 2, axis=0)),
    ("mean-keepdims-broadcast", lambda m, x: x * m.mean(x, axis=1, keepdims=True)),
    ("max-axis-1", lambda m, x: m.max(x * m.cos(x), axis=-1)),
    ("prod-axis0", lambda m, x: m.prod(x + 2.0, axis=0)),
    ("reshape-transpose", lambda m, x: m.transpose(m.reshape(x, (3, 2))) * m.reshape(x, (2, 3))),
    ("matmul", lambda m, x: m.matmul(m.tanh(x), A) + x @ A),
    ("einsum", lambda m, x: m.einsum("ij,jk->ik", x, A) + m.einsum("ij,ij->i", x, x)[:, None]),
    ("concatenate", lambda m, x: m.concatenate([x, x ** 2, m.sin(x)], axis=1)),
    ("stack", lambda m, x: m.stack([x, m.exp(x)], axis=-1)),
    ("where", lambda m, x: m.where(x > 0.2, x ** 2, m.cos(x))),
    ("indexing", lambda m, x: x[:, 1:] * x[0, :2] + x[1, 2]),
    ("cumsum-var-std", lambda m, x: m.cumsum(x, axis=1) * m.var(x) + m.std(x, axis=0)),
    ("dot-tensordot", lambda m, x: m.dot(x, A)[:, :2] + m.tensordot(x, x, axes=([1], [1]))),
    ("outer", lambda m, x: m.outer(x[0], x[1])),
    ("clip-maximum-minimum", lambda m, x: m.clip(x, -0.5, 0.8) + m.maximum(x, 0.15) * m.minimum(x, 0.3)),
    ("squeeze-expand-swapaxes", lambda m, x: m.squeeze(m.expand_dims(x, 0), 0)
     * m.swapaxes(m.reshape(x, (3, 2)), 0, 1)),
    ("logaddexp-hypot-arctan2", lambda m, x: m.logaddexp(x, 2 * x) + m.hypot(x, 1.0) + m.arctan2(x, 2.0)),
]


@pytest.mark.parametrize("name,f", FUNCTIONS, ids=[c[0] for c in FUNCTIONS])
def test_plain_numpy_and_wengert_numpy_give_the_same_gradient(name, f):
    W = weights(onp.shape(f(onp, X)))

    def loss(m):
        return lambda x: m.sum(f(m, x) * W)

    g_plain = grad(loss(onp))(X)
    g_wnp = grad(loss(np))(X)
    g_ag = autograd.grad(loss(anp))(X)
    assert isinstance(g_plain, onp.ndarray) and g_plain.shape == X.shape
    assert close(g_plain, g_wnp, rtol=1e-12, atol=1e-14)
    assert close(g_wnp, g_ag)
    assert close(g_wnp, fd_grad(loss(onp), X), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("convert", [np.ascontiguousarray, np.asfortranarray, np.asanyarray])
def test_array_converters_keep_numpys_shape(convert):
    """ascontiguousarray and asfortranarray make a 0-d array 1-d (asanyarray does not)."""
    x = onp.array(0.7)
    out, pullback = wengert.vjp(convert, x)
    assert out.shape == getattr(onp, convert.__name__)(x).shape
    assert pullback(onp.ones_like(out))[0] == 1.0


@pytest.mark.parametrize("name,f", FUNCTIONS, ids=[c[0] for c in FUNCTIONS])
def test_plain_numpy_forward_values_are_unchanged(name, f):
    seen = {}

    def capture(x):
        out = f(onp, x)
        seen["out"] = stop_gradient(out)
        return onp.sum(out)

    grad(capture)(X)
    assert close(seen["out"], f(onp, X), rtol=1e-15, atol=0)


# ----------------------------------------------------------------------------- operators
OPERATORS = [
    ("add", lambda x, y: x + y),
    ("sub", lambda x, y: x - y),
    ("mul", lambda x, y: x * y),
    ("truediv", lambda x, y: x / y),
    ("mod", lambda x, y: x % y),
    ("pow", lambda x, y: x ** y),
    ("neg", lambda x, y: -x * y),
    ("abs", lambda x, y: abs(x - 0.3) * y),
]
POS_X = onp.array([[0.5, 0.7, 1.1], [2.0, 0.4, 1.5]])
POS_Y = onp.array([[1.3, 0.6, 0.35], [0.45, 1.7, 0.9]])


@pytest.mark.parametrize("name,op", OPERATORS, ids=[c[0] for c in OPERATORS])
@pytest.mark.parametrize("which", ["both", "left-traced-pyfloat", "right-traced-pyfloat",
                                   "left-ndarray", "right-ndarray"])
def test_operators_match_autograd(name, op, which):
    if which == "both":
        def f(m):
            return lambda x, y: m.sum(op(x, y))
        g = grad(f(np), argnum=(0, 1))(POS_X, POS_Y)
        ag = autograd.grad(f(anp), argnum=(0, 1))(POS_X, POS_Y)
        assert close(g[0], ag[0]) and close(g[1], ag[1])
        return
    if which == "left-traced-pyfloat":      # x op 1.7
        h = lambda m: lambda x: m.sum(op(x, 1.7))  # noqa: E731
    elif which == "right-traced-pyfloat":   # 1.7 op x
        h = lambda m: lambda x: m.sum(op(1.7, x) * onp.ones(3))  # noqa: E731
    elif which == "left-ndarray":           # plain ndarray on the left: onp.ones(3) op x
        h = lambda m: lambda x: m.sum(op(POS_Y, x))  # noqa: E731
    else:                                   # x op plain ndarray
        h = lambda m: lambda x: m.sum(op(x, POS_Y))  # noqa: E731
    g = grad(h(np))(POS_X)
    assert close(g, autograd.grad(h(anp))(POS_X))
    assert close(g, fd_grad(h(onp), POS_X), rtol=1e-6, atol=1e-8)


SEQUENCE_OPERANDS = [  # NumPy makes a list or tuple operand an array; the rules must see that array
    ("pow", lambda x: x ** POS_Y.tolist()),
    ("rpow", lambda x: tuple(POS_Y[0]) ** x),
    ("mul", lambda x: POS_Y.tolist() * x),
    ("truediv", lambda x: x / tuple(POS_Y[1])),
    ("matmul", lambda x: x @ POS_Y.T.tolist()),
    ("rmatmul", lambda x: [1.0, -2.0] @ x),
    ("arctan2", lambda x: onp.arctan2(x, POS_Y.tolist())),
    ("float_power", lambda x: onp.float_power(x, tuple(POS_Y[0]))),
    ("hypot", lambda x: np.hypot(POS_Y.tolist(), x)),
    ("list-with-traced", lambda x: x[0] ** [x[1, 0], 2.0, 0.5]),
    ("lstsq", lambda x: onp.linalg.lstsq([[2.0, 0.5], [0.1, 1.0]], x)[0]),
    ("polyval", lambda x: onp.polyval(x[0], [0.5, 2.0])),
]


@pytest.mark.parametrize("name,f", SEQUENCE_OPERANDS, ids=[c[0] for c in SEQUENCE_OPERANDS])
def test_list_and_tuple_operands_act_as_arrays(name, f):
    assert close(wengert.vjp(f, POS_X)[0], f(POS_X))  # the value under tracing is NumPy's
    wengert.gradcheck(lambda x: onp.sum(f(x) * weights(onp.shape(f(POS_X)))), POS_X, order=2)


LISTS_OF_TRACED = [  # wengert.numpy reads a list holding traced values as NumPy reads a list
    ("sum", lambda x: np.sum([x[0, 0], 2 * x[0, 1], x[1, 0] ** 2])),
    ("sum-tuple-axis", lambda x: np.sum((x[0], x[1] ** 2), axis=0)),
    ("mean-nested", lambda x: np.mean([[x[0, 0], 1.0], [x[1, 1], x[0, 1] * x[1, 0]]], axis=1)),
    ("max-prod-var", lambda x: np.max([x[0, 0], x[1, 1]]) + np.prod([x[0, 1], x[1, 0], 2.0])
     + np.var([x[0, 0], x[1, 0]])),
    ("exp-unary-ufunc", lambda x: np.exp([x[0, 0], -x[1, 1]])),
    ("add-both-lists", lambda x: np.add([x[0, 0], 1.0], (2.0, x[1, 0]))),
    ("maximum-list-first", lambda x: np.maximum([x[0, 0], x[1, 1]], x[0, 1])),
    ("matmul-lists", lambda x: np.matmul([[x[0, 0], 1.0]], [[2.0], [x[1, 1]]])),
    ("dot-outer-einsum", lambda x: np.dot([x[0, 0], x[0, 1]], x[1, :2]) + np.sum(np.outer([x[0, 0], 1.0], x[1]))
     + np.einsum("i,i", [x[1, 0], 2.0], [x[0, 1], x[1, 1]])),
    ("where-clip", lambda x: np.where([True, False], [x[0, 0], x[0, 1]], 0.0) + np.clip([x[1, 0], 3.0], 0.0, 1.8)),
    ("concatenate-lists", lambda x: np.concatenate([[x[0, 0], 2 * x[0, 1]], [x[1, 1] ** 2]])),
    ("average-weights", lambda x: np.average([x[0, 0], 2.0, x[1, 0]], weights=[1.0, x[0, 1], 2.0])),
    ("sort-median-diff", lambda x: np.sort([x[0, 0] ** 2, x[1, 1]]) + np.median([x[0, 1], x[1, 0], 1.0])
     + np.diff([x[0, 0], x[1, 0] ** 2])),
    ("keyword-lists", lambda x: np.sum(a=[x[0, 0], x[1, 1]]) + np.dot(a=[x[0, 0], 1.0], b=[x[0, 1], x[1, 2]])),
    ("ufunc-methods", lambda x: np.add.reduce([x[0], x[1] ** 2]) + np.sum(np.multiply.outer([x[0, 0], 2.0], x[1]))
     + np.sum(np.maximum.accumulate([x[0, 1], x[1, 0], 0.3]))),
    ("linalg", lambda x: np.linalg.norm([x[0, 0], 2 * x[0, 1]]) + np.linalg.det([[x[0, 0], 1.0], [2.0, x[1, 1]]])
     + np.sum(np.linalg.solve([[x[0, 0], 1.0], [2.0, x[1, 1] + 3.0]], [1.0, x[1, 0]]))),
]


@pytest.mark.parametrize("name,f", LISTS_OF_TRACED, ids=[c[0] for c in LISTS_OF_TRACED])
def test_wengert_numpy_reads_lists_of_traced_values_as_arrays(name, f):
    assert close(wengert.vjp(f, POS_X)[0], f(POS_X))  # the value under tracing is NumPy's
    wengert.gradcheck(lambda x: np.sum(f(x) * weights(onp.shape(f(POS_X)))), POS_X, order=2)


TRACED_KEYWORDS = [  # a traced keyword argument goes where the function takes it positionally
    ("clip", lambda x: np.clip(x, a_min=x[0, 0], a_max=2 * x[1, 0]), lambda x: np.clip(x, x[0, 0], 2 * x[1, 0])),
    ("clip-a_max", lambda x: np.clip(x, 0.6, a_max=2 * x[1, 0]), lambda x: np.clip(x, 0.6, 2 * x[1, 0])),
    ("clip-min-max", lambda x: np.clip(x, min=x[0, 0], max=2 * x[1, 0]), lambda x: np.clip(x, x[0, 0], 2 * x[1, 0])),
    ("clip-max-method", lambda x: x.clip(max=2 * x[1, 0]), lambda x: np.clip(x, None, 2 * x[1, 0])),
    ("clip-plain-min", lambda x: np.clip(x, min=0.6), lambda x: np.clip(x, 0.6, None)),
    ("clip-plain-max", lambda x: onp.clip(x, max=1.2), lambda x: np.clip(x, None, 1.2)),
    ("clip-no-bound", lambda x: onp.clip(x) * np.clip(x), lambda x: np.clip(x, None, None) ** 2),
    ("sum-a", lambda x: np.sum(a=x ** 2, axis=0), lambda x: np.sum(x ** 2, axis=0)),
    ("dot-a-b", lambda x: np.dot(b=x.T, a=x), lambda x: np.dot(x, x.T)),
    ("where-x-y", lambda x: np.where(x > 1.0, x=x ** 2, y=-x), lambda x: np.where(x > 1.0, x ** 2, -x)),
    ("tensordot", lambda x: np.tensordot(a=x, b=x.T, axes=1), lambda x: np.tensordot(x, x.T, 1)),
    ("dot-plain-b", lambda x: np.dot(a=x, b=A[:3]), lambda x: np.dot(x, A[:3])),
    ("outer-plain-b", lambda x: np.outer(a=x[0], b=A[0]), lambda x: np.outer(x[0], A[0])),
    ("solve", lambda x: np.linalg.solve(a=x[:, :2] + 2 * onp.eye(2), b=x[:, 2]),
     lambda x: np.linalg.solve(x[:, :2] + 2 * onp.eye(2), x[:, 2])),
]


@pytest.mark.parametrize("name,call,positional", TRACED_KEYWORDS, ids=[c[0] for c in TRACED_KEYWORDS])
def test_traced_keyword_arguments_act_as_positional_ones(name, call, positional):
    assert close(wengert.vjp(call, POS_X)[0], positional(POS_X))
    wengert.gradcheck(lambda x: np.sum(call(x) * weights(onp.shape(positional(POS_X)))), POS_X, order=2)


@pytest.mark.parametrize("call", [lambda x: np.max(x, initial=x[0, 0]), lambda x: np.var(x, mean=np.mean(x))],
                         ids=["max-initial", "var-mean"])
def test_a_traced_keyword_without_a_derivative_is_refused_with_advice(call):
    with pytest.raises(TypeError, match=r"keyword argument '\w+' is a traced value, and wengert has no derivative "
                                        r".*np.maximum\(np.max\(x\), c\)"):
        grad(lambda x: np.sum(call(x)))(POS_X)


def test_a_missing_argument_beside_a_traced_keyword_gets_numpys_error():
    with pytest.raises(TypeError, match=r"missing 1 required positional argument: 'a'"):
        grad(lambda x: np.sum(np.dot(b=x)))(POS_X)


def test_plain_numpy_given_a_list_of_traced_values_says_to_use_wengert_numpy():
    with pytest.raises(wengert.ConversionError, match=r"wengert.numpy.*np.mean\(\[x, y\]\)"):
        grad(lambda x: onp.mean([x[0], x[1]]))(onp.array([1.0, 2.0]))


def test_unary_plus_minus_abs():
    g = grad(lambda x: np.sum(+x * 2.0 - (-x) * 3.0 + abs(x) * 4.0))(X)
    assert close(g, 2.0 + 3.0 + 4.0 * onp.sign(X))


def test_reflected_operators_with_ndarray_on_the_left_are_traced():
    x0 = onp.array([0.5, 1.5, 2.5])
    ones = onp.ones(3)

    def f(x):
        r = [ones * x, ones + x, ones - x, ones / x, ones ** x, 2.0 ** x, 3.0 - x, 1.0 / x,
             ones @ x, onp.array([5.0, 6.0, 7.0]) % x]
        assert all(isinstance(v, wengert.Box) for v in r)
        return sum(np.sum(v) for v in r)

    expected = 1 + 1 - 1 - 1 / x0 ** 2 + 0 + math.log(2) * 2 ** x0 - 1 - 1 / x0 ** 2 + 1 \
        - onp.floor(onp.array([5.0, 6.0, 7.0]) / x0)
    assert close(grad(f)(x0), expected)


def test_matmul_operator_both_sides():
    x0 = X.copy()
    g = grad(lambda x: np.sum(A.T @ x.T) + np.sum(x @ A))(x0)
    # d/dx[i, j] of sum_{i,j,k} x[i,j] A[j,k], twice
    assert close(g, onp.broadcast_to(2 * A.sum(axis=1), (2, 3)))


@pytest.mark.parametrize("cmp", [operator.lt, operator.le, operator.gt, operator.ge, operator.eq,
                                 operator.ne])
def test_comparisons_return_plain_booleans(cmp):
    def f(x):
        arr = cmp(x, 0.5)
        assert not isinstance(arr, wengert.Box)
        assert isinstance(arr, onp.ndarray) and arr.dtype == bool
        assert onp.array_equal(arr, cmp(X, 0.5))
        scalar = cmp(x[0, 0], 0.5)
        assert not isinstance(scalar, wengert.Box) and isinstance(scalar, (bool, onp.bool_))
        swapped = cmp(onp.full((2, 3), 0.5), x)   # ndarray on the left
        assert not isinstance(swapped, wengert.Box) and onp.array_equal(swapped, cmp(0.5, X))
        both = cmp(x, x * 1.0)
        assert not isinstance(both, wengert.Box)
        return np.sum(x)
    assert close(grad(f)(X), 1.0)
    py = grad(lambda x: (x * 2.0) if cmp(x, 0.5) else (x * 3.0))(0.7)
    assert py == (2.0 if cmp(0.7, 0.5) else 3.0)


def test_floordiv_and_divmod_quotient_carries_no_gradient():
    g = grad(lambda x: np.sum(x // 0.3 * x))(X)
    assert close(g, X // 0.3)
    g = grad(lambda x: np.sum(divmod(x, 0.3)[1]))(X)  # remainder: derivative 1
    assert close(g, 1.0)


def test_bool_int_and_format_conversions_are_allowed():
    def f(x):
        assert bool(x > 0) is True
        assert int(x * 3.0) == 4
        assert f"{x:.2f}" == "1.50"
        assert str(x) == "1.5"
        assert (math.floor(x), math.ceil(x), math.trunc(-x), round(x)) == (1, 2, -1, 2)  # integers, as int()
        assert type(math.floor(x)) is int
        return x * x
    assert grad(f)(1.5) == 3.0


# ----------------------------------------------------------------------------- attributes and methods
def test_attributes():
    def f(x):
        assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and x.dtype == onp.float64
        assert isinstance(x.T, wengert.Box) and x.T.shape == (3, 2)
        assert isinstance(x.real, wengert.Box) and x.real.shape == (2, 3)
        assert isinstance(x.imag, wengert.Box)
        return np.sum(x.T * A[:, :2]) + np.sum(x.real ** 2) + np.sum(x.imag)
    g = grad(f)(X)
    assert close(g, A[:, :2].T + 2 * X)


METHODS = [
    # (name, method form, function form with autograd.numpy)
    ("sum", lambda x: x.sum(axis=0), lambda x: anp.sum(x, axis=0)),
    ("mean", lambda x: x.mean(axis=1, keepdims=True), lambda x: anp.mean(x, axis=1, keepdims=True)),
    ("max", lambda x: x.max(axis=0), lambda x: anp.max(x, axis=0)),
    ("min", lambda x: x.min(), lambda x: anp.min(x)),
    ("prod", lambda x: (x + 2.0).prod(axis=1), lambda x: anp.prod(x + 2.0, axis=1)),
    ("reshape-args", lambda x: x.reshape(3, 2) * onp.arange(6.0).reshape(3, 2),
     lambda x: anp.reshape(x, (3, 2)) * onp.arange(6.0).reshape(3, 2)),
    ("reshape-tuple", lambda x: x.reshape((3, 2)) * onp.arange(6.0).reshape(3, 2),
     lambda x: anp.reshape(x, (3, 2)) * onp.arange(6.0).reshape(3, 2)),
    ("reshape-minus-one", lambda x: x.reshape(-1) * onp.arange(6.0), lambda x: anp.reshape(x, -1) * onp.arange(6.0)),
    ("transpose", lambda x: x.transpose() * A[:, :2], lambda x: anp.transpose(x) * A[:, :2]),
    ("transpose-axes", lambda x: x.transpose(1, 0) * A[:, :2], lambda x: anp.transpose(x, (1, 0)) * A[:, :2]),
    ("dot", lambda x: x.dot(A), lambda x: anp.dot(x, A)),
    ("clip", lambda x: x.clip(-0.5, 0.8) * x, lambda x: anp.clip(x, -0.5, 0.8) * x),
    ("astype", lambda x: x.astype(onp.float32).astype(onp.float64) * x,
     lambda x: x * x),  # float32 round trip: equal up to float32 rounding
    ("ravel", lambda x: x.ravel() * onp.arange(6.0), lambda x: anp.ravel(x) * onp.arange(6.0)),
    ("squeeze", lambda x: x[None].squeeze() * x, lambda x: x * x),
    ("flatten", lambda x: x.flatten() * onp.arange(6.0), lambda x: anp.reshape(x, -1) * onp.arange(6.0)),
    ("var", lambda x: x.var(axis=0), lambda x: anp.var(x, axis=0)),
    ("std", lambda x: x.std(), lambda x: anp.std(x)),
    ("cumsum", lambda x: x.cumsum(axis=1) * x, lambda x: anp.cumsum(x, axis=1) * x),
    ("swapaxes", lambda x: x.swapaxes(0, 1) * A[:, :2], lambda x: anp.swapaxes(x, 0, 1) * A[:, :2]),
    ("copy", lambda x: x.copy() * x, lambda x: x * x),
    ("transpose-tuple", lambda x: x.transpose((1, 0)) * A[:, :2], lambda x: anp.transpose(x) * A[:, :2]),
    ("clip-keywords", lambda x: x.clip(min=0.0) * x + x.clip(max=0.6),
     lambda x: anp.clip(x, 0.0, anp.inf) * x + anp.clip(x, -anp.inf, 0.6)),
    ("ravel-F", lambda x: x.ravel(order="F") * onp.arange(6.0),
     lambda x: anp.reshape(anp.transpose(x), -1) * onp.arange(6.0)),
    ("flatten-F", lambda x: x.flatten("F") * onp.arange(6.0),
     lambda x: anp.reshape(anp.transpose(x), -1) * onp.arange(6.0)),
    ("reshape-F", lambda x: x.reshape((3, 2), order="F") * onp.arange(6.0).reshape(3, 2),
     lambda x: anp.transpose(anp.reshape(anp.transpose(x), (2, 3))) * onp.arange(6.0).reshape(3, 2)),
    ("mean-tuple-axis", lambda x: x.mean(axis=(0, 1)), lambda x: anp.mean(x)),
    ("var-ddof", lambda x: x.var(ddof=1), lambda x: anp.var(x, ddof=1)),
    ("std-axis", lambda x: x.std(axis=1), lambda x: anp.std(x, axis=1)),
    ("cumsum-flat", lambda x: x.cumsum() * onp.arange(6.0), lambda x: anp.cumsum(x) * onp.arange(6.0)),
    ("conj", lambda x: x.conj() * x, lambda x: x * x),
    ("mT", lambda x: x.mT * A[:, :2], lambda x: anp.transpose(x) * A[:, :2]),
]


@pytest.mark.parametrize("name,method,ref", METHODS, ids=[c[0] for c in METHODS])
def test_methods(name, method, ref):
    W = weights(onp.shape(ref(X)), seed=1)
    g = grad(lambda x: np.sum(method(x) * W))(X)
    ag = autograd.grad(lambda x: anp.sum(ref(x) * W))(X)
    rtol = 1e-6 if name == "astype" else 1e-9
    assert close(g, ag, rtol=rtol, atol=1e-7 if name == "astype" else 1e-11)


def _sorted_in_place(x, **kw):
    y = x * 1.0
    y.sort(**kw)
    return y


def _partitioned_in_place(x):
    y = x * 1.0
    y.partition(1, axis=1)
    return y[:, :1]  # the smallest of each row; the order of the rest is unspecified


def _filled_and_put(x):
    y = x * 2.0
    y.fill(x[0, 1])
    y.put([1, 4], x[1, 2] * onp.array([3.0, -1.0]))
    return y


# (name, a method of a traced array, the same computed on a plain array): the gradients of
# sum(result * W) must match finite differences of the plain form.
MORE_METHODS = [
    ("cumprod", lambda x: x.cumprod(axis=1), None),
    ("cumprod-flat", lambda x: x.cumprod(), None),
    ("diagonal", lambda x: x.diagonal(1), None),
    ("repeat", lambda x: x.repeat([1, 3], axis=0), None),
    ("take", lambda x: x.take([0, 4, 4]), None),
    ("compress", lambda x: x.compress([True, False, True], axis=1), None),
    ("sort-in-place", lambda x: _sorted_in_place(x, axis=1), lambda x: onp.sort(x, axis=1)),
    ("sort-in-place-axis0", lambda x: _sorted_in_place(x, axis=0), lambda x: onp.sort(x, axis=0)),
    ("partition-in-place", _partitioned_in_place, lambda x: onp.min(x, axis=1, keepdims=True)),
    ("fill-and-put", _filled_and_put, None),
    ("argpartition", lambda x: x[0][x[0].argpartition(1)], lambda x: x[0][onp.argpartition(x[0], 1)]),
    ("astype-keywords", lambda x: x.astype(onp.float64, order="F", casting="same_kind", subok=True, copy=True), None),
    ("astype-order-positional", lambda x: x.astype(onp.float64, "C"), None),
    ("reshape-copy", lambda x: x.reshape(3, 2, copy=True), None),
    ("sort-stable", lambda x: _sorted_in_place(x, axis=0, stable=True), lambda x: onp.sort(x, axis=0, stable=True)),
    ("to_device", lambda x: x.to_device("cpu") * 2.0, None),
    ("array-namespace", lambda x: x.__array_namespace__().sin(x), None),
]


@pytest.mark.parametrize("name,method,plain", MORE_METHODS, ids=[c[0] for c in MORE_METHODS])
def test_more_methods_match_finite_differences(name, method, plain):
    plain = plain or method  # the method itself, on a plain array
    W = weights(onp.shape(plain(X)), seed=2)
    assert close(wengert.stop_gradient(method(X)), plain(X))
    assert close(grad(lambda x: np.sum(method(x) * W))(X), fd_grad(lambda x: onp.sum(plain(x) * W), X), rtol=1e-6)


def test_array_metadata_attributes_of_a_traced_array():
    def f(x):
        assert (x.nbytes, x.itemsize, x.strides, x.flags.c_contiguous) == (X.nbytes, X.itemsize, X.strides, True)
        assert x.device == X.device and x.__array_namespace__() is np
        return np.sum(x)
    assert close(grad(f)(X), 1.0)


@pytest.mark.parametrize("call,match", [
    (lambda x: x.trace(), r"x\.trace\(\) .*np\.trace\(x\)"),
    (lambda x: x.flat[0], r"x\.flat .*np\.ravel\(x\)\[i\]"),
    (lambda x: x.resize((3, 2)), r"x\.resize\(\) .*np\.resize\(x, shape\)"),
    (lambda x: x.view(onp.int64), r"x\.view\(dtype or type\) .*x\.astype\(dtype\)"),
    (lambda x: x.byteswap(), r"x\.byteswap\(\) .*stop_gradient"),
    (lambda x: x.getfield(onp.float32), r"x\.getfield\(\) .*stop_gradient"),
    (lambda x: (x * (1 + 0j)).real + setattr(x * 1.0, "imag", x), r"x\.imag = v: x is real.* x \+ 0j"),
    (lambda x: x.base, r"x\.base \(.*stop_gradient\(x\)\.base"),
    (lambda x: x.data, r"x\.data \(.*stop_gradient\(x\)\.data"),
    (lambda x: x.ctypes, r"x\.ctypes \(.*stop_gradient\(x\)\.ctypes"),
    (lambda x: x.setflags(write=False), r"x\.setflags\(\) .*never written in place"),
    (lambda x: x.astype(onp.float32, casting="safe"), r"Cannot cast array data from dtype\('float64'\) to "
                                                      r"dtype\('float32'\) according to the rule 'safe'"),
], ids=["trace", "flat", "resize", "view-dtype", "byteswap", "getfield", "set-imag-of-real", "base", "data",
        "ctypes", "setflags", "astype-casting"])
def test_unsupported_array_methods_say_what_to_use(call, match):
    with pytest.raises(TypeError, match=match):
        grad(lambda x: np.sum(call(x)))(X)


def test_method_results_are_traced_and_copy_is_independent():
    def f(x):
        for v in (x.sum(), x.reshape(6), x.T, x.ravel(), x.copy(), x.flatten(), x.astype(onp.float32)):
            assert isinstance(v, wengert.Box)
        assert not isinstance(x.astype(int), wengert.Box)  # integers carry no gradient
        return np.sum(x.copy())
    assert close(grad(f)(X), 1.0)


def test_item_drops_the_gradient_on_purpose():
    def f(x):
        v = x[0, 0].item()
        assert type(v) is float and v == 0.5
        assert wengert.stop_gradient(x).tolist() == X.tolist()
        return x[0, 0] * v  # only the traced factor contributes
    g = grad(f)(X)
    expected = onp.zeros_like(X)
    expected[0, 0] = 0.5
    assert close(g, expected)


SCALAR_METHODS = {  # a method of a traced value, at x = 3 as a Python float, a NumPy scalar and a 0-d array
    "item": (lambda x: x.item() * x, 3.0),  # the plain factor counts as a constant
    "astype(float32)": (lambda x: x.astype(onp.float32) * x, 6.0),
    "astype(float)": (lambda x: x.astype(float) * x, 6.0),
    "astype, then a product": (lambda x: (x.astype(onp.float64) * x).astype(onp.float32), 6.0),
    "astype(int)": (lambda x: (x.astype(int) + x.astype(bool)) * x, 4.0),  # integers: constants
}


@pytest.mark.parametrize("name", SCALAR_METHODS)
@pytest.mark.parametrize("point", [3.0, onp.float64(3.0), onp.array(3.0)], ids=["float", "float64", "0-d"])
def test_scalar_methods_of_traced_numbers(name, point):
    """A traced Python float has item() and astype() as NumPy's numbers have."""
    f, expected = SCALAR_METHODS[name]
    assert grad(f)(point) == pytest.approx(expected)


def _stored_under(key):
    d = {}
    d[key] = 1
    return d


@pytest.mark.parametrize("use", [lambda x: {x: 1}, lambda x: {x}, lambda x: hash(x), _stored_under],
                         ids=["dict", "set", "hash", "d[x] = v"])
def test_traced_values_are_unhashable_with_advice(use):
    for point in (X, 1.5):  # an array, and a Python float (hashable unless traced)
        with pytest.raises(TypeError, match=r"cannot be a dict key or a set element.*stop_gradient\(x\)"):
            grad(lambda x: np.sum(x) + 0.0 * len(use(x)))(point)


def test_tolist_refuses_where_iteration_keeps_the_gradient():
    # sum(x.tolist()) would otherwise be a silent zero gradient; sum(x) is traced.
    with pytest.raises(wengert.ConversionError, match=r"x\.tolist\(\).*Iterate over x"):
        grad(lambda x: sum(x.tolist()))(X[0])
    assert close(grad(lambda x: sum(x))(X[0]), 1.0)


# ----------------------------------------------------------------------------- indexing
def _counts(idx, shape):
    c = onp.zeros(shape)
    onp.add.at(c, idx, 1.0)
    return c


INDEXING = [
    ("int", lambda x: x[1], lambda: _counts(1, (2, 3))),
    ("int-int", lambda x: x[1, 2], lambda: _counts((1, 2), (2, 3))),
    ("negative-int", lambda x: x[-1, -1], lambda: _counts((1, 2), (2, 3))),
    ("slice", lambda x: x[:, 1:], lambda: _counts((slice(None), slice(1, None)), (2, 3))),
    ("step-slice", lambda x: x[:, ::2], lambda: _counts((slice(None), slice(None, None, 2)), (2, 3))),
    ("ellipsis", lambda x: x[..., 0], lambda: _counts((Ellipsis, 0), (2, 3))),
    ("none", lambda x: x[None, :, None, 1], lambda: _counts((slice(None), 1), (2, 3))),
    ("repeated-int-array", lambda x: x[:, onp.array([0, 0, 2, 0])],
     lambda: _counts((slice(None), onp.array([0, 0, 2, 0])), (2, 3))),
    ("repeated-list", lambda x: x[[1, 1, 0]], lambda: _counts([1, 1, 0], (2, 3))),
    ("pair-arrays-repeated", lambda x: x[onp.array([0, 1, 0]), onp.array([2, 2, 2])],
     lambda: _counts((onp.array([0, 1, 0]), onp.array([2, 2, 2])), (2, 3))),
    ("bool-mask", lambda x: x[X > 0.3], lambda: (X > 0.3).astype(float)),
    ("bool-row-mask", lambda x: x[onp.array([False, True])], lambda: _counts(1, (2, 3))),
]


@pytest.mark.parametrize("name,index,counts", INDEXING, ids=[c[0] for c in INDEXING])
def test_getitem_gradient_counts_each_use(name, index, counts):
    g = grad(lambda x: np.sum(index(x)))(X)
    assert close(g, counts())
    # weighted, against autograd
    W = weights(onp.shape(index(X)), seed=2)
    g = grad(lambda x: np.sum(index(x) * W))(X)
    assert close(g, autograd.grad(lambda x: anp.sum(index(x) * W))(X))


def test_getitem_second_order():
    # f = sum(x[idx]**3) with repeats: f'' on the diagonal is 6*x*count
    idx = onp.array([0, 0, 2])
    x0 = onp.array([0.5, -1.0, 2.0])
    hdiag = elementwise_grad(grad(lambda x: np.sum(x[idx] ** 3)))(x0)
    assert close(hdiag, 6 * x0 * onp.array([2.0, 0.0, 1.0]))


def test_len_and_iteration():
    def f(x):
        assert len(x) == 2
        rows = list(x)
        assert len(rows) == 2 and all(isinstance(r, wengert.Box) for r in rows)
        return sum(np.sum(r * (k + 1)) for k, r in enumerate(x))
    g = grad(f)(X)
    assert close(g, onp.array([[1.0] * 3, [2.0] * 3]))
    assert close(grad(lambda x: sum(x))(onp.array([1.0, 2.0, 3.0])), 1.0)


def test_array_built_from_a_list_of_traced_scalars():
    def f(x):
        v = np.array([x[0] * 2.0, x[1] ** 2, 3.0])
        assert isinstance(v, wengert.Box) and v.shape == (3,)
        return np.sum(v * onp.array([1.0, 1.0, 1.0]))
    assert close(grad(f)(onp.array([1.0, 2.0])), [2.0, 4.0])


# ----------------------------------------------------------------------------- the namespace
def test_namespace_mirrors_numpy():
    assert np.pi == onp.pi and np.e == onp.e and np.inf == onp.inf
    assert np.float32 is onp.float32 and np.float64 is onp.float64
    assert np.random is onp.random
    for sub in ("linalg", "fft"):  # wengert's mirrors of NumPy's submodules
        mine, theirs = getattr(np, sub), getattr(onp, sub)
        assert mine.__name__ == f"wengert.numpy.{sub}" and set(dir(theirs)) <= set(dir(mine))
    assert np.newaxis is None
    assert np.ndarray is onp.ndarray
    assert set(dir(onp)) <= set(dir(np))


@pytest.mark.parametrize("name,original", [
    ("abs", onp.absolute), ("absolute", onp.absolute), ("concat", onp.concatenate),
    ("concatenate", onp.concatenate), ("round", onp.round), ("around", onp.around),
    ("sin", onp.sin), ("sum", onp.sum), ("where", onp.where), ("einsum", onp.einsum),
    ("conj", onp.conjugate), ("conjugate", onp.conjugate), ("max", onp.max), ("floor", onp.floor),
])
def test_names_are_the_wrapped_versions(name, original):
    wrapped = getattr(np, name)
    assert wrapped is not getattr(onp, name)
    assert wrapped.__wrapped__ is original
    assert callable(wrapped) and wrapped.__doc__ == original.__doc__


def test_aliases_share_one_wrapper():
    assert np.abs is np.absolute
    assert np.concat is np.concatenate
    assert np.conj is np.conjugate


def test_wrapped_functions_on_plain_values_return_numpy_results():
    assert onp.array_equal(np.sin(X), onp.sin(X))
    assert type(np.sum(X)) is type(onp.sum(X))
    assert onp.array_equal(np.concatenate([X, X]), onp.concatenate([X, X]))
    assert onp.array_equal(np.add.reduce(X, axis=1), onp.add.reduce(X, axis=1))
    assert np.add.identity == 0 and np.add.nin == 2


# ----------------------------------------------------------------------------- non-differentiable functions
SORTED = onp.array([-2.0, -0.5, 0.3, 1.0, 2.5])
NONDIFF_CALLS = {
    "floor": lambda m, x: m.floor(x),
    "ceil": lambda m, x: m.ceil(x),
    "trunc": lambda m, x: m.trunc(x),
    "rint": lambda m, x: m.rint(x),
    "fix": lambda m, x: m.fix(x),
    "round": lambda m, x: m.round(x, 1),
    "around": lambda m, x: m.around(x),
    "signbit": lambda m, x: m.signbit(x),
    "floor_divide": lambda m, x: m.floor_divide(x, 0.3),
    "spacing": lambda m, x: m.spacing(x),
    "isfinite": lambda m, x: m.isfinite(x),
    "isinf": lambda m, x: m.isinf(x),
    "isnan": lambda m, x: m.isnan(x),
    "isposinf": lambda m, x: m.isposinf(x),
    "isneginf": lambda m, x: m.isneginf(x),
    "iscomplex": lambda m, x: m.iscomplex(x),
    "isreal": lambda m, x: m.isreal(x),
    "iscomplexobj": lambda m, x: m.iscomplexobj(x),
    "isrealobj": lambda m, x: m.isrealobj(x),
    "greater": lambda m, x: m.greater(x, 0.3),
    "greater_equal": lambda m, x: m.greater_equal(x, 0.5),
    "less": lambda m, x: m.less(x, 0.3),
    "less_equal": lambda m, x: m.less_equal(x, 0.5),
    "equal": lambda m, x: m.equal(x, 0.5),
    "not_equal": lambda m, x: m.not_equal(x, 0.5),
    "logical_and": lambda m, x: m.logical_and(x, x > 0.3),
    "logical_or": lambda m, x: m.logical_or(x, 0.0),
    "logical_xor": lambda m, x: m.logical_xor(x, x),
    "logical_not": lambda m, x: m.logical_not(x),
    "isclose": lambda m, x: m.isclose(x, 0.5),
    "allclose": lambda m, x: m.allclose(x, X),
    "array_equal": lambda m, x: m.array_equal(x, X),
    "array_equiv": lambda m, x: m.array_equiv(x, X),
    "argmax": lambda m, x: m.argmax(x, axis=1),
    "argmin": lambda m, x: m.argmin(x),
    "argsort": lambda m, x: m.argsort(x, axis=0),
    "argwhere": lambda m, x: m.argwhere(x),
    "nonzero": lambda m, x: m.nonzero(x),
    "flatnonzero": lambda m, x: m.flatnonzero(x),
    "count_nonzero": lambda m, x: m.count_nonzero(x > 0),
    "searchsorted": lambda m, x: m.searchsorted(SORTED, x),
    "digitize": lambda m, x: m.digitize(x, SORTED),
    "any": lambda m, x: m.any(x > 1.0),
    "all": lambda m, x: m.all(x),
    "shape": lambda m, x: m.shape(x),
    "ndim": lambda m, x: m.ndim(x),
    "size": lambda m, x: m.size(x),
    "result_type": lambda m, x: m.result_type(x, onp.float32),
    "zeros_like": lambda m, x: m.zeros_like(x),
    "ones_like": lambda m, x: m.ones_like(x),
    "empty_like": lambda m, x: m.empty_like(x).shape,
    "may_share_memory": lambda m, x: m.may_share_memory(x, X),
    "shares_memory": lambda m, x: m.shares_memory(x, x),
    # integer, bit and date functions see traced values only through integer conversions
    "bitwise_and": lambda m, x: m.bitwise_and(m.astype(x * 4, int), 5),
    "bitwise_or": lambda m, x: m.bitwise_or(m.astype(x * 4, int), 2),
    "bitwise_xor": lambda m, x: m.bitwise_xor(m.astype(x * 4, int), 3),
    "invert": lambda m, x: m.invert(x > 0),
    "left_shift": lambda m, x: m.left_shift(m.astype(x * 4, int), 1),
    "right_shift": lambda m, x: m.right_shift(m.astype(x * 4, int), 1),
    "bitwise_count": lambda m, x: m.bitwise_count(m.astype(x * 4, int)),
    "gcd": lambda m, x: m.gcd(m.astype(x * 4, int), 6),
    "lcm": lambda m, x: m.lcm(m.astype(x * 4, int), 4),
    "isnat": lambda m, x: m.isnat(m.astype(m.astype(x, int), "datetime64[s]")),
    "packbits": lambda m, x: m.packbits(x > 0),
    "unpackbits": lambda m, x: m.unpackbits(m.packbits(x > 0)),
    "argpartition": lambda m, x: m.argpartition(x, 1, axis=1),
    "nanargmax": lambda m, x: m.nanargmax(x, axis=0),
    "nanargmin": lambda m, x: m.nanargmin(x),
    "lexsort": lambda m, x: m.lexsort((x[0], x[1])),
    "isin": lambda m, x: m.isin(x, X[0]),
    "ravel_multi_index": lambda m, x: m.ravel_multi_index(m.nonzero(x > 0), x.shape),
    "unravel_index": lambda m, x: m.unravel_index(m.argmax(x), x.shape),
    "diag_indices_from": lambda m, x: m.diag_indices_from(x[:, :2]),
    "tril_indices_from": lambda m, x: m.tril_indices_from(x),
    "triu_indices_from": lambda m, x: m.triu_indices_from(x, 1),
    "einsum_path": lambda m, x: m.einsum_path("ij,kj->ik", x, x)[1],
}
_NONDIFF_NAMES = [f.__name__ for f in NONDIFFERENTIABLE]


def test_nondifferentiable_table_covers_the_whole_list():
    assert sorted(NONDIFF_CALLS) == sorted(_NONDIFF_NAMES)
    assert len(_NONDIFF_NAMES) == len(set(_NONDIFF_NAMES))


def _contains_box(v):
    if isinstance(v, wengert.Box):
        return True
    if isinstance(v, (list, tuple)):
        return any(_contains_box(e) for e in v)
    return False


def _equal(a, b):
    if isinstance(a, tuple):
        return type(b) is tuple and len(a) == len(b) and all(_equal(p, q) for p, q in zip(a, b))
    return onp.array_equal(onp.asarray(a), onp.asarray(b))


@pytest.mark.parametrize("module", ["wengert.numpy", "numpy"])
@pytest.mark.parametrize("name", _NONDIFF_NAMES)
def test_nondifferentiable_functions_give_plain_results_and_zero_gradient(module, name):
    m = np if module == "wengert.numpy" else onp
    call = NONDIFF_CALLS[name]
    expected = call(onp, X)
    seen = {}

    def f(x):
        r = call(m, x)
        seen["result"] = r
        assert not _contains_box(r)
        total = x[0, 0] * 0.0
        if isinstance(r, onp.ndarray) and r.dtype.kind in "fc":
            total = total + np.sum(r * x)   # r is a constant factor
        return total + np.sum(x)

    g = grad(f)(X)
    assert _equal(seen["result"], expected)
    r = seen["result"]
    const = r if isinstance(r, onp.ndarray) and r.dtype.kind in "fc" else 0.0
    assert close(g, 1.0 + const)   # no gradient flowed through the function itself


@pytest.mark.parametrize("name", ["floor", "sign", "round", "rint", "ceil", "trunc", "fix", "around"])
def test_piecewise_constant_functions_have_zero_gradient(name):
    fun = getattr(np, name)
    g = grad(lambda x: np.sum(fun(x) * 3.0))(X)
    assert isinstance(g, onp.ndarray) and g.shape == X.shape and not g.any()
    g = grad(lambda x: np.sum(getattr(onp, name)(x)))(X)
    assert not g.any()


def test_argmax_selected_element_gets_the_gradient():
    g = grad(lambda x: x.ravel()[np.argmax(x)])(X)
    expected = onp.zeros_like(X)
    expected[1, 0] = 1.0
    assert close(g, expected)
    g = grad(lambda x: x.ravel()[onp.argmax(x)])(X)
    assert close(g, expected)


# ----------------------------------------------------------------------------- no rule: loud failure
NO_RULE = [
    ("numpy.logaddexp.reduceat", lambda x: onp.logaddexp.reduceat(x, [0, 1])),
    ("numpy.subtract.reduceat", lambda x: np.subtract.reduceat(x, [0, 1], axis=1)),
    ("numpy.logaddexp.at", lambda x: (lambda y: (onp.logaddexp.at(y, [0, 1], 0.5), y)[1])(x * 1.0)),
    ("numpy.frompyfunc's ufunc 'abs (vectorized)'", lambda x: onp.frompyfunc(abs, 1, 1)(x).astype(float)),
]


@pytest.mark.parametrize("name,call", NO_RULE, ids=[f"{c[0]}-{i}" for i, c in enumerate(NO_RULE)])
def test_function_without_rule_raises_type_error_naming_it(name, call):
    with pytest.raises(TypeError, match=rf"^{re.escape(name)} has no derivative rule in wengert"):
        grad(lambda x: np.sum(call(x)))(X)
    # untraced calls are plain NumPy
    assert onp.all(onp.isfinite(call(X)))


# ----------------------------------------------------------------------------- conversions
CONVERSIONS = [
    ("float", lambda x: float(x[0, 0]), r"float\(x\).*x\.item\(\)"),
    ("complex", lambda x: complex(x[0, 0]), r"complex\(x\)"),
    ("math.sin", lambda x: math.sin(x[0, 0]), r"float\(x\).*wengert\.numpy functions instead of math"),
    ("percent-format", lambda x: "%f" % x[0, 0], r"float\(x\)"),
    ("onp.asarray", lambda x: onp.asarray(x), r"np\.asarray.*stop_gradient"),
    ("onp.array", lambda x: onp.array(x), r"plain NumPy array"),
    ("onp.array-of-list", lambda x: onp.array([x[0, 0], x[1, 1]]), r"plain NumPy array"),
    ("tobytes", lambda x: onp.frombuffer(x.tobytes()), r"x\.tobytes\(\).*stop_gradient\(x\)\.tobytes\(\)"),
    ("dumps", lambda x: len(x.dumps()), r"x\.dumps\(\)"),
    ("pickle", lambda x: len(__import__("pickle").dumps(x)), r"pickle\.dumps\(x\).*stop_gradient"),
    # NumPy's scalar types (wengert.numpy.float32 is numpy.float32) convert through np.asarray(x, dtype)
    ("scalar float32", lambda x: np.float32(x[0, 0]), r"np\.float32\(x\) \(use x\.astype\(np\.float32\)\)"),
    ("scalar int64 of an array", lambda x: onp.int64(x), r"a NumPy scalar type such as np\.float32\(x\)"),
]


@pytest.mark.parametrize("name,call,pattern", CONVERSIONS, ids=[c[0] for c in CONVERSIONS])
def test_conversions_that_drop_the_gradient_raise(name, call, pattern):
    with pytest.raises(wengert.ConversionError, match=pattern) as info:
        grad(lambda x: np.sum(x) + 0.0 * np.sum(np.asarray(call(x), dtype=float)))(X)
    assert "drop the gradient" in str(info.value)
    assert isinstance(info.value, TypeError)


def _rows_written_into_a_plain_array(x):
    out = onp.zeros((2, 3))
    out[0] = x[0]
    return out


PLAIN_CALLS = [  # (a call that converts a traced value to a plain array, what the error must say)
    (lambda x: __import__("scipy.special").special.logsumexp(x), r"^scipy\.special\.logsumexp .* Call "
     r"wengert\.scipy\.special\.logsumexp instead"),
    (lambda x: __import__("scipy.linalg").linalg.cholesky(x.T @ x + onp.eye(3)), r"^scipy\.linalg\.cholesky .* "
     r"wengert\.scipy\.linalg\.cholesky"),
    (lambda x: __import__("scipy.stats").stats.norm.logpdf(x), r"^scipy\.stats\.norm\.logpdf .* "
     r"wengert\.scipy\.stats\.norm\.logpdf"),
    (lambda x: __import__("scipy.signal").signal.convolve(x[0], x[1]), r"^scipy\.signal\.convolve .* wengert has no "
     r"version of it"),
    (_rows_written_into_a_plain_array, r"^a\[i\] = x: writing a traced value into a plain array .*\.at\(a\)\[i\]"),
    # the published name, not SciPy's internal wrapper's (wrapper, __call__), nor an unhashable-value error
    (lambda x: __import__("scipy.special").special.spherical_jn(1, x), r"^scipy\.special\.spherical_jn converts"),
    (lambda x: __import__("scipy.special").special.sph_harm_y(1, 1, x, 0.3).real, r"^scipy\.special\.sph_harm_y "
     r"converts"),
    (lambda x: __import__("scipy.special").special.factorial(x[0, 0]), r"^scipy\.special\.factorial converts"),
]


@pytest.mark.parametrize("call,pattern", PLAIN_CALLS, ids=["logsumexp", "cholesky", "norm.logpdf", "convolve",
                                                           "setitem", "spherical_jn", "sph_harm_y", "factorial"])
def test_conversions_name_the_scipy_function_or_the_assignment_that_asked(call, pattern):
    with pytest.raises(wengert.ConversionError, match=pattern):
        grad(lambda x: np.sum(call(x)))(X)


def test_a_traced_number_written_into_a_plain_array_explains_in_the_cause():
    """NumPy stores one element through float(x) and replaces its error with a ValueError of its
    own; the ConversionError it chains says what happened."""
    def f(x):
        out = onp.zeros(2)
        out[0] = x[0, 0]
        return np.sum(out)
    with pytest.raises(ValueError) as info:
        grad(f)(X)
    assert isinstance(info.value.__cause__, wengert.ConversionError)
    assert str(info.value.__cause__).startswith("a[i] = x: writing a traced value into a plain array")


OUT_CALLS = [
    ("sin", lambda x: onp.sin(x, out=onp.empty((2, 3)))),
    ("add", lambda x: onp.add(x, 1.0, out=onp.empty((2, 3)))),
    ("add", lambda x: np.add(x, 1.0, out=onp.empty((2, 3)))),
    ("multiply", lambda x: onp.multiply(2.0, x, out=onp.empty((2, 3)))),
    ("sum", lambda x: onp.sum(x, axis=0, out=onp.empty(3))),
    ("add", lambda x: onp.add(onp.zeros((2, 3)), x, out=onp.empty((2, 3)))),
    # given positionally: a ufunc's arguments after its inputs are its out, and so is pow()'s third
    ("add", lambda x: np.add(x, 1.0, onp.empty((2, 3)))),
    ("sin", lambda x: np.sin(x, onp.empty((2, 3)))),
    ("negative", lambda x: np.negative(x, onp.empty((2, 3)))),
    ("power", lambda x: pow(x, 2.0, onp.empty((2, 3)))),
    ("power", lambda x: pow(x[0, 0], 3, 5)),
]


@pytest.mark.parametrize("name,call", OUT_CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(OUT_CALLS)])
def test_out_argument_with_traced_value_is_a_type_error(name, call):
    with pytest.raises(TypeError, match=rf"^{name}: out= cannot be used with traced values"):
        grad(lambda x: np.sum(call(x)))(X)


def test_inplace_add_into_plain_array_is_a_type_error():
    def f(x):
        buf = onp.zeros((2, 3))
        buf += x
        return np.sum(buf)
    with pytest.raises(TypeError, match=r"out= cannot be used.*a = a \+ b"):
        grad(f)(X)


