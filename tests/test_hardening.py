"""Hardening: the edges of the input space and of the runtime.

Documented conventions at points where a derivative does not exist; empty, 0-d, very large
and non-finite arrays; Python and NumPy scalars and the inputs that are refused; read-only,
strided, broadcast and memory-mapped inputs; threads; re-entrant gradient computations;
memory that must not grow and tapes that must be freed by reference counting alone; the
compiled and the Python engine giving bitwise identical results; reduced-precision dtypes.

Gradients are compared with central finite differences in float64 (``fd_grad``) or with
closed forms.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import tracemalloc
import warnings
import weakref

import numpy as onp
import pytest

import wengert
import wengert.numpy as np
from _helpers import close, fd_grad
from wengert import (
    elementwise_grad,
    grad,
    hessian,
    jacfwd,
    jacrev,
    jvp,
    stop_gradient,
    value_and_grad,
    vjp,
)

PURE = os.environ.get("WENGERT_PURE_PYTHON", "") not in ("", "0")
X4 = onp.array([0.3, -1.1, 0.8, 2.0])


def quiet(f, *args):
    """Call ``f`` with NumPy's floating point warnings silenced (inf and nan are expected)."""
    with warnings.catch_warnings(), onp.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return f(*args)


# ============================================================================= conventions
# README, "Conventions": abs and sign have slope 0 at 0; ties of max, min, maximum, minimum
# share the gradient equally; clip passes the gradient at its bounds; sqrt at 0 gives inf.

ZERO_SLOPE = [
    # (name, scalar function)
    ("np.abs", np.abs),
    ("np.absolute", np.absolute),
    ("abs()", abs),
    ("np.fabs", np.fabs),
    ("np.sign", np.sign),
    ("x*sign(x)", lambda x: x * np.sign(x)),
]


@pytest.mark.parametrize("name,f", ZERO_SLOPE, ids=[c[0] for c in ZERO_SLOPE])
def test_slope_is_zero_at_zero_in_every_mode(name, f):
    assert grad(f)(0.0) == 0.0
    assert grad(f)(-0.0) == 0.0
    z = onp.zeros(3)
    assert onp.array_equal(grad(lambda x: np.sum(f(x)))(z), onp.zeros(3))
    assert onp.array_equal(jvp(f, (z,), (onp.ones(3),))[1], onp.zeros(3))
    assert onp.array_equal(jacrev(f)(z), onp.zeros((3, 3)))
    assert onp.array_equal(hessian(lambda x: np.sum(f(x)))(z), onp.zeros((3, 3)))


def test_abs_and_sign_are_unaffected_next_to_zero():
    x = onp.array([0.0, 1e-300, -1e-300, 2.0, -3.0])
    assert onp.array_equal(grad(lambda x: np.sum(np.abs(x)))(x), [0.0, 1.0, -1.0, 1.0, -1.0])
    assert onp.array_equal(grad(lambda x: np.sum(np.sign(x) * 5.0))(x), onp.zeros(5))


EXTREME_TIES = [
    # (name, f, x, expected gradient)
    ("max pair", np.max, [1.0, 3.0, 3.0, 2.0], [0.0, 0.5, 0.5, 0.0]),
    ("max all equal", np.max, [2.0, 2.0, 2.0, 2.0], [0.25, 0.25, 0.25, 0.25]),
    ("amax triple", np.amax, [5.0, 1.0, 5.0, 5.0], [1 / 3, 0.0, 1 / 3, 1 / 3]),
    ("min pair", np.min, [1.0, 3.0, 1.0, 2.0], [0.5, 0.0, 0.5, 0.0]),
    ("amin all equal", np.amin, [-1.0, -1.0], [0.5, 0.5]),
    ("method max", lambda x: x.max(), [0.0, 0.0, -1.0], [0.5, 0.5, 0.0]),
    ("max -inf", np.max, [-onp.inf, -onp.inf], [0.5, 0.5]),
    ("max of equal zeros", np.max, [0.0, -0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]),
    ("python max", lambda x: max(x[0], x[1]), [2.0, 2.0], [1.0, 0.0]),  # Python's own max picks one
]


@pytest.mark.parametrize("name,f,x,expected", EXTREME_TIES, ids=[c[0] for c in EXTREME_TIES])
def test_ties_of_max_and_min_share_the_gradient_equally(name, f, x, expected):
    x = onp.array(x)
    g = grad(f)(x)
    assert close(g, expected, rtol=1e-15, atol=0)
    assert g.sum() == pytest.approx(1.0, rel=1e-15)


def test_ties_along_an_axis_share_within_their_own_slice():
    x = onp.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [3.0, 3.0, 3.0]])
    w = onp.array([1.0, 2.0, 3.0])
    g = grad(lambda x: np.sum(np.max(x, axis=1) * w))(x)
    assert close(g, [[0.5, 0.5, 0.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]], rtol=1e-15)
    x = onp.array([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0], [3.0, 1.0, 3.0]])
    g = grad(lambda x: np.sum(np.min(x, axis=0, keepdims=True) * w))(x)
    assert close(g, [[0.0, 1.0, 1.5], [1.0, 0.0, 1.5], [0.0, 1.0, 0.0]], rtol=1e-15)
    # forward mode splits the same way
    assert close(jacfwd(np.max)(onp.array([1.0, 3.0, 3.0])), [0.0, 0.5, 0.5], rtol=1e-15)
    assert close(jvp(np.min, (onp.array([1.0, 1.0, 4.0]),), (onp.array([1.0, 0.0, 9.0]),))[1], 0.5)


ELEMENTWISE_TIES = [
    # (name, f, d/dx at a tie, d/dy at a tie)
    ("maximum", np.maximum, 0.5, 0.5),
    ("minimum", np.minimum, 0.5, 0.5),
]


@pytest.mark.parametrize("name,f,dx,dy", ELEMENTWISE_TIES, ids=[c[0] for c in ELEMENTWISE_TIES])
def test_ties_of_maximum_and_minimum_share_the_gradient_equally(name, f, dx, dy):
    # Python floats (the scalar fast path)
    assert grad(f, argnum=(0, 1))(1.5, 1.5) == (dx, dy)
    # arrays, ties mixed with strict orderings
    x, y = onp.array([1.0, 2.0, -1.0]), onp.array([1.0, 3.0, -2.0])
    gx, gy = grad(lambda x, y: np.sum(f(x, y)), argnum=(0, 1))(x, y)
    win = f is np.maximum
    assert onp.array_equal(gx, [dx, 0.0 if win else 1.0, 1.0 if win else 0.0])
    assert onp.array_equal(gy, [dy, 1.0 if win else 0.0, 0.0 if win else 1.0])
    # a broadcast scalar tying with some elements: relu at 0
    g = grad(lambda x: np.sum(f(x, 0.0)))(onp.array([0.0, 1.0, -1.0]))
    assert onp.array_equal(g, [dx, 1.0 if win else 0.0, 0.0 if win else 1.0])
    # the same value on both sides: the shares add back up to 1
    assert grad(lambda x: f(x, x))(0.7) == 1.0
    # forward mode: the tangent of a tie is the mean of the two tangents
    assert jvp(f, (1.0, 1.0), (1.0, 0.0))[1] == pytest.approx(0.5)


def test_clip_passes_the_gradient_at_its_bounds():
    x = onp.array([0.0, 1.0, 0.5, -1.0, 2.0])
    g = grad(lambda x: np.sum(np.clip(x, 0.0, 1.0)))(x)
    assert onp.array_equal(g, [1.0, 1.0, 1.0, 0.0, 0.0])
    assert onp.array_equal(jacfwd(lambda x: np.clip(x, 0.0, 1.0))(x).diagonal(), [1.0, 1.0, 1.0, 0.0, 0.0])
    assert onp.array_equal(grad(lambda x: np.sum(x.clip(0.0, 1.0)))(x), g)  # the method
    assert onp.array_equal(grad(lambda x: np.sum(np.clip(x, None, 1.0)))(x), [1.0, 1.0, 1.0, 1.0, 0.0])
    # traced bounds: a bound receives the gradient only where x is strictly outside
    gx, glo, ghi = grad(lambda x, lo, hi: np.sum(np.clip(x, lo, hi)), argnum=(0, 1, 2))(x, 0.0, 1.0)
    assert onp.array_equal(gx, [1.0, 1.0, 1.0, 0.0, 0.0])
    assert (glo, ghi) == (1.0, 1.0)


def test_sqrt_at_zero_gives_inf():
    assert quiet(grad(np.sqrt), 0.0) == onp.inf
    g = quiet(grad(lambda x: np.sum(np.sqrt(x))), onp.array([0.0, 4.0]))
    assert g[0] == onp.inf and g[1] == 0.25
    assert quiet(jvp, np.sqrt, (onp.zeros(2),), (onp.ones(2),))[1].tolist() == [onp.inf, onp.inf]


@pytest.mark.parametrize("mode", ["grad", "scalar", "jvp"])
def test_sqrt_at_zero_under_detect_anomaly_names_sqrt(mode):
    with pytest.raises(wengert.AnomalyError, match="'sqrt'") as raised:
        with wengert.detect_anomaly():
            if mode == "grad":
                quiet(grad(lambda x: np.sum(np.sqrt(x) * 2.0)), onp.array([1.0, 0.0]))
            elif mode == "scalar":
                quiet(grad(lambda x: np.sqrt(x)), 0.0)
            else:
                quiet(jvp, np.sqrt, (onp.zeros(2),), (onp.ones(2),))
    assert "test_hardening.py" in str(raised.value)  # names the user's line
    # outside the block the same computation is allowed
    assert quiet(grad(np.sqrt), 0.0) == onp.inf


# ============================================================================= empty arrays
E0, E30 = onp.zeros(0), onp.zeros((3, 0))

EMPTY = [
    # (name, f, x): every gradient is an empty array of the input's shape
    ("sum", lambda x: np.sum(x ** 2), E0),
    ("sum (3,0)", lambda x: np.sum(x ** 2), E30),
    ("sum axis=1", lambda x: np.sum(np.sum(x, axis=1) + 1.0), E30),
    ("mean axis=0", lambda x: np.sum(np.mean(x, axis=0)), E30),
    ("prod", lambda x: np.prod(x), E0),
    ("prod axis=1", lambda x: np.sum(np.prod(x, axis=1)), E30),
    ("max initial", lambda x: np.max(x, initial=-1.0), E0),
    ("min initial axis", lambda x: np.sum(np.min(x, axis=1, initial=0.0)), E30),
    ("matmul (3,0)@(0,2)", lambda x: np.sum(x @ onp.ones((0, 2))), E30),
    ("matmul (2,3)@(3,0)", lambda x: np.sum(onp.ones((2, 3)) @ x), E30),
    ("concatenate", lambda x: np.sum(np.concatenate([x, onp.ones(2)]) ** 2), E0),
    ("concatenate axis=1", lambda x: np.sum(np.concatenate([x, onp.ones((3, 2))], axis=1) ** 2), E30),
    ("stack", lambda x: np.sum(np.stack([x, x]) ** 2), E30),
    ("index slice", lambda x: np.sum(x[:, :0]), E30),
    ("index row", lambda x: np.sum(x[1] * 3.0), E30),
    ("fancy index", lambda x: np.sum(x[[0, 2]]), E30),
    ("cumsum", lambda x: np.sum(np.cumsum(x, axis=1)), E30),
    ("einsum", lambda x: np.einsum("ij,ij->", x, x), E30),
    ("reshape", lambda x: np.sum(np.reshape(x, (0, 7))), E30),
    ("transpose", lambda x: np.sum(np.sin(x.T)), E30),
    ("where", lambda x: np.sum(np.where(x > 0, x, -x)), E30),
    ("dot", lambda x: np.dot(x, x), E0),
]


@pytest.mark.parametrize("name,f,x", EMPTY, ids=[c[0] for c in EMPTY])
def test_empty_arrays_give_empty_gradients(name, f, x):
    value, g = value_and_grad(f)(x)
    assert onp.isfinite(value)
    assert type(g) is onp.ndarray and g.shape == x.shape and g.dtype == x.dtype


def test_empty_selection_of_a_nonempty_array_gives_zeros():
    x = onp.arange(3.0)
    assert onp.array_equal(grad(lambda x: np.sum(x[1:1]))(x), onp.zeros(3))
    assert onp.array_equal(grad(lambda x: np.sum(x[onp.array([], dtype=int)]))(x), onp.zeros(3))
    assert onp.array_equal(grad(lambda x: np.sum(x[x > 5.0]) + 0.0)(x), onp.zeros(3))
    gx, gy = grad(lambda x, y: np.sum(np.concatenate([x, y]) ** 2), argnum=(0, 1))(E0, x)
    assert gx.shape == (0,) and onp.array_equal(gy, 2 * x)


def test_mean_of_empty_is_nan_like_numpy_and_its_gradient_is_empty():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = onp.mean(E0)
        value, g = value_and_grad(np.mean)(E0)
        value30, g30 = value_and_grad(np.mean)(E30)
        rows, grows = value_and_grad(lambda x: np.sum(np.mean(x, axis=1)))(E30)
    assert onp.isnan(expected) and onp.isnan(value) and onp.isnan(value30) and onp.isnan(rows)
    assert g.shape == (0,) and g30.shape == (3, 0) and grows.shape == (3, 0)


def test_reductions_without_identity_raise_numpys_error_on_empty():
    with pytest.raises(ValueError, match="zero-size array"):
        onp.max(E0)
    with pytest.raises(ValueError, match="zero-size array"):
        grad(lambda x: np.max(x))(E0)


@pytest.mark.parametrize("api", ["jacfwd", "jacrev", "jacobian", "hessian", "vjp", "jvp", "elementwise_grad"])
def test_empty_arrays_through_every_api(api):
    if api == "jacfwd":
        assert jacfwd(np.sin)(E30).shape == (3, 0, 3, 0)
        assert jacfwd(lambda x: x[:0])(onp.ones(3)).shape == (0, 3)
    elif api == "jacrev":
        assert jacrev(lambda x: np.sum(x, axis=1))(E30).shape == (3, 3, 0)
        assert jacrev(lambda x: x[:0])(onp.ones(3)).shape == (0, 3)
    elif api == "jacobian":
        assert wengert.jacobian(np.sin)(E0).shape == (0, 0)
    elif api == "hessian":
        assert hessian(lambda x: np.sum(x ** 3))(E30).shape == (3, 0, 3, 0)
    elif api == "vjp":
        out, pull = vjp(np.sin, E30)
        assert out.shape == (3, 0) and pull(E30)[0].shape == (3, 0)
    elif api == "jvp":
        out, t = jvp(np.sin, (E30,), (E30,))
        assert out.shape == t.shape == (3, 0)
    else:
        assert elementwise_grad(np.sin)(E30).shape == (3, 0)


# ============================================================================= 0-d arrays
ZERO_D = [
    # (name, f, d/dx at x = 0.5)
    ("sin", np.sin, onp.cos(0.5)),
    ("x*x", lambda x: x * x, 1.0),
    ("sum", lambda x: np.sum(x * 3.0), 3.0),
    ("mean", np.mean, 1.0),
    ("max", np.max, 1.0),
    ("prod", lambda x: np.prod(x * x), 1.0),
    ("cumsum", lambda x: np.sum(np.cumsum(x)), 1.0),
    ("x[None]", lambda x: np.sum(x[None] * 2.0), 2.0),
    ("x[...]", lambda x: x[...] * x, 1.0),
    ("reshape", lambda x: np.sum(np.reshape(x, (1, 1)) ** 2), 1.0),
    ("matmul with itself as 1-vector", lambda x: np.reshape(x, (1,)) @ np.reshape(x, (1,)), 1.0),
]


@pytest.mark.parametrize("name,f,expected", ZERO_D, ids=[c[0] for c in ZERO_D])
def test_zero_dimensional_arrays(name, f, expected):
    x = onp.array(0.5)
    g = grad(f)(x)
    assert type(g) is onp.ndarray and g.shape == () and g.dtype == onp.float64
    assert close(g, expected, rtol=1e-14)
    assert close(g, fd_grad(lambda z: f(onp.asarray(z)), x), rtol=1e-6)
    assert close(jvp(f, (x,), (onp.array(1.0),))[1], expected, rtol=1e-14)


def test_zero_dimensional_jacobians_and_hessian():
    x = onp.array(2.0)
    assert jacfwd(np.sin)(x).shape == () and close(jacfwd(np.sin)(x), onp.cos(2.0))
    assert jacrev(np.sin)(x).shape == () and close(jacrev(np.sin)(x), onp.cos(2.0))
    assert close(jacfwd(lambda x: x * onp.arange(3.0))(x), [0.0, 1.0, 2.0])
    assert close(jacrev(lambda x: x * onp.arange(3.0))(x), [0.0, 1.0, 2.0])
    h = hessian(lambda x: x ** 3)(x)
    assert h.shape == () and h == 12.0


# ============================================================================= a very large array
def test_very_large_array_gradient_is_exact():
    x = onp.random.default_rng(0).standard_normal(10_000_000)
    g = grad(lambda x: np.sum(x ** 2))(x)
    assert g.shape == x.shape and g.dtype == onp.float64
    assert onp.array_equal(g, 2.0 * x)  # 2 * x is exact in floating point


# ============================================================================= NaN and Inf
NONFINITE = [
    # (name, f, x, expected gradient; nan where expected)
    ("sin nan", lambda x: np.sum(np.sin(x)), [onp.nan, 1.0], [onp.nan, onp.cos(1.0)]),
    ("square nan", lambda x: np.sum(x * x), [onp.nan, 1.0], [onp.nan, 2.0]),
    ("sum nan", lambda x: np.sum(x), [1.0, onp.nan], [1.0, 1.0]),
    ("exp inf", lambda x: np.sum(np.exp(x)), [onp.inf, 0.0, -onp.inf], [onp.inf, 1.0, 0.0]),
    ("sin inf", lambda x: np.sum(np.sin(x)), [onp.inf, 0.0], [onp.nan, 1.0]),
    ("log at 0", lambda x: np.sum(np.log(x)), [0.0, 2.0], [onp.inf, 0.5]),
    ("where masks nan", lambda x: np.sum(np.where(onp.array([True, False]), x, 0.0)), [1.0, onp.nan], [1.0, 0.0]),
    ("max with inf", np.max, [onp.inf, 1.0], [1.0, 0.0]),
    ("nan does not leak through a dot", lambda x: np.sum(onp.array([[1.0, 2.0], [3.0, 4.0]]) @ x ** 2),
     [onp.nan, 1.0], [onp.nan, 12.0]),
]


@pytest.mark.parametrize("name,f,x,expected", NONFINITE, ids=[c[0] for c in NONFINITE])
def test_nan_and_inf_inputs_propagate(name, f, x, expected):
    x, expected = onp.array(x), onp.array(expected)
    g = quiet(grad(f), x)
    assert onp.allclose(g, expected, rtol=1e-14, equal_nan=True), g
    assert onp.allclose(quiet(jacrev(f), x), expected, rtol=1e-14, equal_nan=True)
    # Forward mode pushes every direction through the whole computation, and 0 * nan is nan:
    # a NaN or an infinite intermediate reaches every column that meets it. Where the
    # derivative itself is not finite, forward mode agrees with it.
    t = quiet(jacfwd(f), x)
    bad = ~onp.isfinite(expected)
    assert onp.array_equal(t[bad], expected[bad], equal_nan=True), t


def test_max_over_nan_sends_the_gradient_to_the_nans():
    # np.max([nan, 1.0]) is nan: the NaN is the extreme, so it receives the cotangent (shared
    # between NaNs), never a silent all-zero gradient.
    for x, expected in [([onp.nan, 1.0], [1.0, 0.0]), ([onp.nan, 2.0, onp.nan], [0.5, 0.0, 0.5])]:
        onp.testing.assert_array_equal(quiet(grad(np.max), onp.array(x)), expected)
        onp.testing.assert_array_equal(quiet(grad(np.min), onp.array(x)), expected)


# ============================================================================= scalars and types
def test_python_ints_are_promoted_to_float():
    assert grad(lambda x: x * x)(3) == 6.0 and type(grad(lambda x: x * x)(3)) is float
    gx, gy = grad(lambda x, y: x * y * y, argnum=(0, 1))(2, 3)
    assert (gx, gy) == (9.0, 12.0) and type(gx) is float and type(gy) is float
    g = grad(lambda p: p["a"] * p["b"][0] ** 2)({"a": 2, "b": [5]})
    assert g == {"a": 25.0, "b": [20.0]} and type(g["b"][0]) is float
    assert jvp(lambda x: x * x, (3,), (1.0,))[1] == 6.0


@pytest.mark.parametrize("kind", [onp.float64, onp.float32, onp.float16])
def test_numpy_scalars_keep_their_type(kind):
    x = kind(0.75)
    for f, df in [(lambda x: x * x, lambda x: 2 * x), (np.sin, onp.cos),
                  (lambda x: np.exp(x) * 2.5 + 1.0, lambda x: 2.5 * onp.exp(x))]:
        g = grad(f)(x)
        assert type(g) is kind, (f, type(g))
        assert close(g, df(onp.float64(x)), rtol=1e-13 if kind is onp.float64 else 5e-3)
    _, t = jvp(np.sin, (x,), (kind(1.0),))
    assert onp.result_type(t) == onp.dtype(kind)


INVALID = [
    # (name, argument, what the message says it is, whether it advises x.astype(float))
    ("int array", onp.arange(3), "an array of dtype int64", True),
    ("uint8 array", onp.ones(3, onp.uint8), "an array of dtype uint8", True),
    ("bool array", onp.ones(3, bool), "an array of dtype bool", True),
    ("object array", onp.ones(3, object), "an array of dtype object", False),
    ("string array", onp.array(["a", "b"]), "an array of dtype <U1", False),
    ("bool", True, "a bool", False),
    ("numpy bool", onp.bool_(False), "a bool", False),
    ("str", "abc", "a str", False),
    ("None", None, "None", False),
    ("numpy int", onp.int64(3), "dtype int64", True),
]


@pytest.mark.parametrize("name,x,what,advice", INVALID, ids=[c[0] for c in INVALID])
@pytest.mark.parametrize("api", ["grad", "vjp", "jvp", "jacfwd", "jacrev"])
def test_invalid_inputs_raise_the_documented_type_error(name, x, what, advice, api):
    call = {
        "grad": lambda: grad(lambda x: 1.0)(x),
        "vjp": lambda: vjp(lambda x: 1.0, x),
        "jvp": lambda: jvp(lambda x: 1.0, (x,), (x,)),
        "jacfwd": lambda: jacfwd(lambda x: 1.0)(x),
        "jacrev": lambda: jacrev(lambda x: 1.0)(x),
    }[api]
    with pytest.raises(TypeError) as raised:
        call()
    msg = str(raised.value)
    assert msg.startswith(f"{api}: argument 0 is ") and what in msg, msg
    assert ("x.astype(float)" in msg) == advice, msg
    assert "argnum" in msg  # how to keep it fixed instead


@pytest.mark.parametrize("api", ["grad", "vjp", "jacfwd"])
def test_invalid_leaf_inside_a_structure_names_the_positional_argument(api):
    call = {
        "grad": lambda: grad(lambda p: 1.0)([1.0, onp.arange(2)]),
        "vjp": lambda: vjp(lambda p: 1.0, [1.0, onp.arange(2)]),
        "jacfwd": lambda: jacfwd(lambda p: 1.0)([1.0, onp.arange(2)]),
    }[api]
    with pytest.raises(TypeError, match=rf"^{api}: argument 0 is an array of dtype int64"):
        call()


def test_jvp_invalid_leaf_inside_a_structure_names_the_positional_argument():
    # jvp has one primal here, a list whose second leaf is an int array; the error says
    # "jvp: argument 1 is an array of dtype int64", naming an argument that does not exist.
    with pytest.raises(TypeError, match=r"^jvp: argument 0 is an array of dtype int64"):
        jvp(lambda p: 1.0, ([1.0, onp.arange(2)],), ([1.0, onp.ones(2)],))


# ============================================================================= unusual memory
def _functions():
    return [
        (lambda x: np.sum(np.sin(x) * x), lambda x: onp.cos(x) * x + onp.sin(x)),
        (lambda x: np.sum(np.tanh(x) ** 2) + np.max(x), None),
        (lambda x: np.sum(np.reshape(x, (-1,)) * onp.arange(x.size)), None),
        (lambda x: np.sum(np.exp(x[..., ::-1]) * x[..., :1]), None),
        (lambda x: np.sum(np.swapaxes(x, 0, -1) @ onp.ones(x.shape[0])) ** 2, None),
    ]


def _strided_inputs(tmp_path):
    base = onp.linspace(-1.0, 1.3, 24)
    ro = base.reshape(4, 6).copy()
    ro.flags.writeable = False
    mm = onp.memmap(tmp_path / "x.dat", dtype=onp.float64, mode="w+", shape=(4, 6))
    mm[:] = base.reshape(4, 6) * 0.9
    mm.flush()
    mr = onp.memmap(tmp_path / "x.dat", dtype=onp.float64, mode="r", shape=(4, 6))
    return {
        "read-only": ro,
        "x[::2]": base[::2],
        "x.T": base.reshape(4, 6).T,
        "fortran": onp.asfortranarray(base.reshape(4, 6)),
        "negative stride": base[::-3],
        "broadcast_to": onp.broadcast_to(onp.array([0.2, -0.4, 0.9]), (4, 3)),
        "broadcast_to 0-stride column": onp.broadcast_to(onp.array([[0.5], [-0.1]]), (2, 5)),
        "memmap w+": mm,
        "memmap r": mr,
    }


STRIDED = ["read-only", "x[::2]", "x.T", "fortran", "negative stride", "broadcast_to",
           "broadcast_to 0-stride column", "memmap w+", "memmap r"]


@pytest.mark.parametrize("kind", STRIDED)
def test_unusual_array_layouts_give_correct_gradients_and_are_not_modified(kind, tmp_path):
    x = _strided_inputs(tmp_path)[kind]
    before = onp.array(x, copy=True)
    plain = onp.array(x)  # a contiguous, writable copy
    for f, df in _functions():
        g = grad(f)(x)
        assert isinstance(g, onp.ndarray) and g.shape == x.shape and g.dtype == onp.float64
        assert g.flags.writeable and not onp.shares_memory(g, x)
        # the same as for a contiguous copy (a broadcast view holds ties, which max splits)...
        assert close(g, grad(f)(plain), rtol=1e-14, atol=1e-15)
        # ... and as finite differences, for the smooth functions
        if df is not None or kind not in ("broadcast_to", "broadcast_to 0-stride column"):
            assert close(g, df(plain) if df is not None else fd_grad(f, plain), rtol=1e-6, atol=1e-8)
        # forward mode and the Hessian see the same layout
        _, t = jvp(f, (x,), (onp.ones(x.shape),))
        assert close(t, onp.sum(g), rtol=1e-9)
    h = hessian(lambda x: np.sum(np.sin(x) * x))(x)
    assert h.shape == x.shape * 2
    assert onp.array_equal(onp.asarray(x), before)


def test_the_returned_gradient_is_the_callers_own():
    x = onp.linspace(0.0, 1.0, 5)
    x.flags.writeable = False
    for f in (lambda x: np.sum(x), lambda x: np.sum(x * 1.0), lambda x: np.sum(np.broadcast_to(x, (3, 5))),
              lambda x: np.sum(np.reshape(x, (5, 1)))):
        g = grad(f)(x)
        expected = g.copy()
        assert g.flags.writeable and not onp.shares_memory(g, x)
        g += 1.0
        assert onp.array_equal(grad(f)(x), expected)  # a later call is not affected
    (g,) = vjp(lambda x: x, x)[1](x)
    assert g.flags.writeable and not onp.shares_memory(g, x)
    assert onp.array_equal(x, onp.linspace(0.0, 1.0, 5))


# ============================================================================= threads
def _thread_tasks():
    rng = onp.random.default_rng(1)

    def scalar_program(t):
        s = t
        for k in range(40):
            s = s * 0.9 + np.sin(s) / (k + 1)
        return s

    return [
        # (name, compute, expected (by closed form, or computed once before the threads start))
        ("grad sin*x", rng.standard_normal(7), lambda x: grad(lambda x: np.sum(np.sin(x) * x))(x),
         lambda x: onp.cos(x) * x + onp.sin(x)),
        ("grad exp**2 large", rng.standard_normal(20_000), lambda x: grad(lambda x: np.sum(np.exp(x) ** 2))(x),
         lambda x: 2 * onp.exp(2 * x)),
        ("hessian", rng.standard_normal(5), lambda x: hessian(lambda x: np.sum(x ** 3))(x),
         lambda x: onp.diag(6 * x)),
        ("jacfwd", rng.standard_normal(6), lambda x: jacfwd(np.tanh)(x),
         lambda x: onp.diag(1 - onp.tanh(x) ** 2)),
        ("jacrev matmul", rng.standard_normal((3, 4)), lambda x: jacrev(lambda m: m @ m.T)(x), None),
        ("grad of grad", onp.array([0.7]), lambda x: grad(grad(lambda t: t ** 4))(float(x[0])),
         lambda x: 12 * x[0] ** 2),
        ("scalar program", onp.array([0.3]), lambda x: grad(scalar_program)(float(x[0])), None),
        ("checkpointed loop", rng.standard_normal(50),
         lambda x: grad(lambda x: np.sum(wengert.checkpointed_loop(lambda s: np.sin(s) * 0.9, x, 12, 3)))(x),
         None),
    ]


def _run_threads(jobs, reps):
    """Run every job in its own thread, all started together; return the failures."""
    failures = []
    barrier = threading.Barrier(len(jobs))

    def worker(name, job):
        try:
            barrier.wait(timeout=30)
            for _ in range(reps):
                ok = job()
                if not ok:
                    failures.append(name)
                    return
        except Exception as e:
            failures.append(f"{name}: {e!r}")

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often
    try:
        threads = [threading.Thread(target=worker, args=job) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(old)
    assert not any(t.is_alive() for t in threads)
    return failures


def test_eight_threads_computing_different_gradients_concurrently():
    jobs = []
    for name, x, compute, expect in _thread_tasks():
        want = expect(x) if expect is not None else compute(x)  # computed alone, before
        jobs.append((name, lambda x=x, compute=compute, want=want: close(compute(x), want, rtol=1e-12, atol=1e-14)))
    assert len(jobs) == 8
    for _ in range(3):
        assert _run_threads(jobs, reps=15) == []


def test_one_vjp_function_called_from_several_threads():
    x = onp.linspace(-1.0, 1.0, 9)
    f = lambda x: np.sum(np.tanh(x)[:, None] * x[None, :], axis=0) * np.exp(x)  # noqa: E731
    out, pull = vjp(f, x)
    J = jacfwd(f)(x)
    cotangents = [onp.random.default_rng(k).standard_normal(9) for k in range(8)]
    jobs = [(f"ct{k}", lambda c=c: close(pull(c)[0], c @ J, rtol=1e-12, atol=1e-13)) for k, c in enumerate(cotangents)]
    for _ in range(3):
        assert _run_threads(jobs, reps=25) == []


def test_threads_mixing_no_grad_anomaly_checks_and_gradients():
    x = onp.linspace(0.5, 1.5, 6)

    def paused():
        with wengert.no_grad():
            g = grad(lambda x: np.sum(x ** 3))(x)  # a computation started inside no_grad records
        return close(g, 3 * x ** 2)

    def watched():
        with wengert.detect_anomaly():
            g = grad(lambda x: np.sum(np.log(x) * x))(x)
        return close(g, onp.log(x) + 1)

    def plain():
        return close(grad(lambda x: np.sum(np.sqrt(x)))(x), 0.5 / onp.sqrt(x))

    jobs = [("paused", paused), ("watched", watched), ("plain", plain), ("paused 2", paused), ("plain 2", plain)]
    assert _run_threads(jobs, reps=20) == []


# ============================================================================= re-entrancy
def test_gradient_computed_inside_a_function_being_differentiated():
    def f(x):
        c = grad(lambda z: np.sum(z ** 3))(onp.array([1.0, 2.0]))  # an unrelated, plain gradient
        return np.sum(x * c)
    assert onp.array_equal(grad(f)(onp.array([0.5, 0.5])), [3.0, 12.0])

    def f2(x):  # a gradient of the traced argument itself (second order)
        return np.sum(grad(lambda z: np.sum(np.sin(z) * x))(x) * x)
    x = onp.array([0.3, 0.9, -1.4])
    assert close(grad(f2)(x), -onp.sin(x) * x ** 2 + 2 * x * onp.cos(x), rtol=1e-12)
    assert close(grad(f2)(x), fd_grad(f2, x), rtol=1e-6)

    def f3(x):  # a full vjp of something else, and a jvp, in the middle of a recording
        _, pull = vjp(np.exp, onp.array([0.0, 1.0]))
        _, t = jvp(np.sin, (onp.array(0.0),), (onp.array(1.0),))
        return np.sum(x * pull(onp.ones(2))[0]) * t
    assert close(grad(f3)(onp.array([1.0, 1.0])), [1.0, onp.e], rtol=1e-14)


def test_gradient_computed_inside_a_custom_primitives_rules():
    @wengert.primitive
    def softplus(x):
        return onp.logaddexp(0.0, x)
    # the rule is itself a gradient computation, on traced values at higher order
    wengert.defvjp(softplus, lambda g, ans, x: g * elementwise_grad(lambda z: np.logaddexp(0.0, z))(x))
    sig = lambda t: 1 / (1 + onp.exp(-t))  # noqa: E731
    x = onp.array([0.3, -2.0, 4.0])
    assert close(grad(lambda x: np.sum(softplus(x)))(x), sig(x), rtol=1e-14)
    assert close(grad(grad(softplus))(0.3), sig(0.3) * (1 - sig(0.3)), rtol=1e-12)
    assert close(hessian(lambda x: np.sum(softplus(x)))(x), onp.diag(sig(x) * (1 - sig(x))), rtol=1e-12)

    @wengert.primitive
    def identity_by_grad(x):  # the forward computation is a gradient too
        return grad(lambda z: 0.5 * np.sum(z * z))(x)
    wengert.defvjp(identity_by_grad, lambda g, ans, x: grad(lambda z: np.sum(z * g))(x))
    assert close(grad(lambda x: np.sum(identity_by_grad(x) ** 2))(x), 2 * x, rtol=1e-14)

    @wengert.custom_vjp
    def cube(x):
        return x ** 3
    cube.defvjp(lambda x: (x ** 3, x), lambda res, g: vjp(lambda z: z ** 3, res)[1](g))
    assert close(grad(lambda x: np.sum(cube(x)))(x), 3 * x ** 2, rtol=1e-14)
    assert close(grad(grad(cube))(0.7), 6 * 0.7, rtol=1e-12)


def test_a_vjp_function_recovers_after_a_rule_raised():
    failing = {"once": True}

    @wengert.primitive
    def flaky(x):
        return x * 2.0

    def rule(g, ans, x):
        if failing.pop("once", False):
            raise RuntimeError("transient")
        return 2.0 * g
    wengert.defvjp(flaky, rule)
    x = onp.array([0.3, 0.9])
    _, pull = vjp(lambda x: np.sin(x) * flaky(x) + x, x)
    with pytest.raises(RuntimeError, match="transient"):
        pull(onp.ones(2))
    expected = 2 * (onp.cos(x) * x + onp.sin(x)) + 1
    for _ in range(2):  # no stale cotangents left behind by the failed sweep
        assert close(pull(onp.ones(2))[0], expected, rtol=1e-14)


# ============================================================================= memory growth
def test_no_memory_growth_over_ten_thousand_gradient_calls():
    x = onp.array([0.3, -1.2, 2.0])
    g = grad(lambda x: np.sum(np.sin(x) * x + np.exp(-x * x)) / 3.0)
    expected = g(x)
    for _ in range(200):  # warm every cache
        g(x)
    gc.collect()
    objects = len(gc.get_objects())
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            last = g(x)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert onp.array_equal(last, expected)
    assert grown < 16_384, grown  # one leaked 3-float array per call would be ~1 MB
    assert len(gc.get_objects()) - objects < 50


@pytest.mark.parametrize("api", ["value_and_grad scalar", "vjp", "jvp", "hessian", "checkpoint"])
def test_no_memory_growth_over_repeated_calls_of_other_apis(api):
    x = onp.array([0.3, -1.2, 2.0])
    call = {
        "value_and_grad scalar": lambda: value_and_grad(lambda t: t * np.sin(t) + t ** 3)(0.4),
        "vjp": lambda: vjp(lambda x: np.tanh(x) * x, x)[1](x),
        "jvp": lambda: jvp(lambda x: np.tanh(x) * x, (x,), (x,)),
        "hessian": lambda: hessian(lambda x: np.sum(np.tanh(x) * x))(x),
        "checkpoint": lambda: grad(lambda x: np.sum(wengert.checkpoint(lambda y: np.sin(y) * y)(x)))(x),
    }[api]
    for _ in range(100):
        call()
    gc.collect()
    objects = len(gc.get_objects())
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(300 if api in ("hessian", "checkpoint") else 1_500):
            call()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 16_384, grown
    assert len(gc.get_objects()) - objects < 50


# ============================================================================= no reference cycles
BIG = (2000, 5)


def _tracked():
    """A function whose large traced intermediate is watched by weak reference."""
    refs = []

    def f(x):
        big = np.exp(x) * onp.ones(BIG)
        refs.append(weakref.ref(stop_gradient(big)))
        return np.sin(big)
    return refs, f


def _loop_tracked(kind):
    refs = []

    def step(s):
        big = np.sin(s) * onp.ones((BIG[0], 1))
        refs.append(weakref.ref(stop_gradient(big)))
        return np.mean(big, axis=0) * 0.5 + s * 0.5 + (0.25 if kind == "while" else 0.0)
    return refs, step


X5 = onp.linspace(0.1, 1.0, 5)


def _run_api(api):
    if api in ("checkpointed_loop", "checkpointed_while"):
        refs, step = _loop_tracked("loop" if api == "checkpointed_loop" else "while")
        if api == "checkpointed_loop":
            g = grad(lambda x: np.sum(wengert.checkpointed_loop(step, x, 6, snapshots=2)))(X5)
        else:
            g = grad(lambda x: np.sum(wengert.checkpointed_while(step, x, lambda s: s[0] < 1.0, snapshots=2)))(X5)
        return refs, g
    refs, f = _tracked()
    total = lambda x: np.sum(f(x))  # noqa: E731
    if api == "grad":
        g = grad(total)(X5)
    elif api == "value_and_grad":
        g = value_and_grad(total)(X5)
    elif api == "elementwise_grad":
        g = elementwise_grad(f)(X5)
    elif api == "vjp":
        out, pull = vjp(f, X5)
        g = pull(onp.ones(BIG))
        del pull
    elif api == "make_vjp":
        pull, out = wengert.make_vjp(f)(X5)
        g = pull(onp.ones(BIG))
        del pull
    elif api == "jvp":
        g = jvp(f, (X5,), (onp.ones(5),))
    elif api == "linearize":
        out, push = wengert.linearize(f, X5)
        g = push(onp.ones(5))
        del push
    elif api == "jacfwd":
        g = jacfwd(lambda x: np.sum(f(x), axis=0))(X5)
    elif api == "jacrev":
        g = jacrev(lambda x: np.sum(f(x), axis=0))(X5)
    elif api == "hessian":
        g = hessian(total)(X5)
    elif api == "grad of grad":
        g = grad(lambda x: np.sum(grad(total)(x) ** 2))(X5)
    elif api == "checkpoint":
        g = grad(lambda x: np.sum(wengert.checkpoint(f)(x)))(X5)
    elif api == "detect_anomaly":
        with wengert.detect_anomaly():
            g = grad(total)(X5)
    elif api == "error in the function":
        def failing(x):
            total(x)
            raise ValueError("boom")
        with pytest.raises(ValueError):
            grad(failing)(X5)
        g = None
    else:
        raise AssertionError(api)
    return refs, g


CYCLE_APIS = ["grad", "value_and_grad", "elementwise_grad", "vjp", "make_vjp", "jvp", "linearize",
              "jacfwd", "jacrev", "hessian", "grad of grad", "checkpoint", "checkpointed_loop",
              "checkpointed_while", "detect_anomaly", "error in the function"]


@pytest.mark.parametrize("api", CYCLE_APIS)
def test_tapes_are_freed_by_reference_counting_alone(api):
    gc.collect()
    gc.disable()
    try:
        refs, g = _run_api(api)
        assert refs, "the function was not run"
        alive = [k for k, r in enumerate(refs) if r() is not None]
        del g
    finally:
        gc.enable()
    assert alive == [], f"{len(alive)} of {len(refs)} large intermediates kept alive by a cycle"


def test_a_vjp_function_keeps_its_tape_until_deleted_without_the_collector():
    gc.collect()
    gc.disable()
    try:
        refs, f = _tracked()
        out, pull = vjp(f, X5)
        pull(onp.ones(BIG))
        held = refs[0]() is not None
        del pull
        freed = refs[0]() is None
    finally:
        gc.enable()
    assert held and freed


# ============================================================================= the two engines
ENGINE_PROGRAM = r'''
import numpy as onp, wengert, wengert.numpy as np
from wengert import _core

def _scalar(t):
    s = t
    for k in range(200):
        s = s * 0.99 + np.sin(s) * t / (k + 1)
    return s

def run():
    x = onp.linspace(-1.3, 1.7, 7)
    m = onp.linspace(-1.0, 1.0, 12).reshape(3, 4)
    cases = {
        "fan-out": lambda: wengert.grad(lambda x: np.sum((lambda y: y * y + y / (1 + y * y))(np.tanh(x)) * x))(x),
        "broadcasting": lambda: wengert.grad(lambda m: np.sum(np.exp(m[:, :1] * m)) + np.sum(m.T[0] @ m[:, 1:]))(m),
        "scalar program": lambda: wengert.grad(_scalar)(0.37),
        "ties and kinks": lambda: wengert.grad(
            lambda x: np.sum(np.maximum(x, 0.2) * np.abs(x - 0.2)) + np.max(np.round(x)))(x),
        "third derivative": lambda: wengert.derivative(lambda t: np.sin(t) * np.exp(t * t), order=3)(0.4),
        "hessian": lambda: wengert.hessian(lambda m: np.sum(np.log1p(m ** 2)) * np.mean(m))(m),
        "jacrev": lambda: wengert.jacrev(lambda x: np.cumsum(x ** 3) / np.sum(x ** 2))(x),
        "vjp of a dict": lambda: wengert.vjp(lambda a, b: {"p": a[:, None] * b, "q": np.sin(a)}, x, x[:4])[1](
            {"p": onp.ones((7, 4)), "q": x}),
        "float32": lambda: wengert.grad(lambda x: np.sum(np.tanh(x) * x ** 2))(x.astype(onp.float32)),
        "checkpointed loop": lambda: wengert.grad(lambda x: np.sum(wengert.checkpointed_loop(
            lambda s: np.sin(s) * 1.1, x, 9, snapshots=2)))(x),
    }
    out = {}
    for name, case in cases.items():
        r = case()
        leaves = r if isinstance(r, tuple) else (r,)
        out[name] = [[str(onp.asarray(v).dtype), list(onp.shape(v)), onp.asarray(v).tobytes().hex()] for v in leaves]
    return {"pure": _core._speedups is None, "results": out}
'''


def test_compiled_and_python_engines_agree_bitwise():
    from wengert import _core
    if _core._speedups is None and not PURE:
        pytest.skip("the compiled engine was not built")
    namespace: dict = {}
    exec(compile(ENGINE_PROGRAM, "engine_program", "exec"), namespace)
    here = namespace["run"]()
    assert here["pure"] == PURE
    env = {**os.environ, "WENGERT_PURE_PYTHON": "0" if PURE else "1"}
    run = subprocess.run([sys.executable, "-c", ENGINE_PROGRAM + "\nimport json\nprint(json.dumps(run()))"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    there = json.loads(run.stdout.strip().splitlines()[-1])
    assert there["pure"] != here["pure"], "the subprocess did not run the other engine"
    assert there["results"].keys() == here["results"].keys()
    differ = [name for name in here["results"] if here["results"][name] != there["results"][name]]
    assert differ == []


# ============================================================================= reduced precision
LOW_FUNCTIONS = [
    # (name, f) written with Python-float constants only, so NumPy keeps the input's dtype
    ("sin*x", lambda x: np.sum(np.sin(x) * x)),
    ("affine", lambda x: np.sum(x * 2.5 + 1.0)),
    ("power/div", lambda x: np.sum(x ** 2 / 3.0)),
    ("mean exp", lambda x: np.mean(np.exp(x))),
    ("max", lambda x: np.max(x) * 2.0),
    ("logsumexp", lambda x: np.log(np.sum(np.exp(x)))),
    ("sqrt", lambda x: np.sum(np.sqrt(x))),
    ("where", lambda x: np.sum(np.where(x > 0.5, x, x * x))),
    ("index", lambda x: x[0] * x[2]),
    ("var", lambda x: np.var(x)),
    ("dot", lambda x: np.dot(x, x)),
    ("prod", lambda x: np.prod(x)),
    ("maximum", lambda x: np.sum(np.maximum(x, 0.6))),
    ("matmul", lambda x: np.sum(np.outer(x, x) @ x)),
]


@pytest.mark.parametrize("dtype", [onp.float32, onp.float16], ids=["float32", "float16"])
@pytest.mark.parametrize("name,f", LOW_FUNCTIONS, ids=[c[0] for c in LOW_FUNCTIONS])
def test_reduced_precision_dtypes_are_kept(name, f, dtype):
    x = onp.array([0.3, 0.7, 1.1], dtype=dtype)
    tol = 2e-3 if dtype == onp.float32 else 3e-2
    want = fd_grad(f, x.astype(onp.float64))
    g = grad(f)(x)
    assert g.dtype == dtype and close(g, want, rtol=tol, atol=tol)
    value, g = value_and_grad(f)(x)
    assert onp.result_type(value) == dtype and g.dtype == dtype
    out, t = jvp(f, (x,), (onp.ones_like(x),))
    assert onp.result_type(out) == dtype and onp.result_type(t) == dtype
    assert close(t, want.sum(), rtol=tol, atol=tol)
    for jac in (jacfwd, jacrev):
        J = jac(lambda x: np.sin(x) * f(x))(x)
        assert J.dtype == dtype and J.shape == (3, 3)
    H = hessian(f)(x)
    assert H.dtype == dtype and H.shape == (3, 3)
    (c,) = vjp(lambda x: np.sin(x) * f(x), x)[1](onp.ones(3, dtype))
    assert c.dtype == dtype
    assert wengert.hvp(f)(x, onp.ones_like(x)).dtype == dtype


@pytest.mark.parametrize("dtype", [onp.float32, onp.float16], ids=["float32", "float16"])
def test_reduced_precision_hessian_matches_float64(dtype):
    f = lambda x: np.sum(np.sin(x) * x ** 2)  # noqa: E731
    x = onp.array([0.3, 0.7, 1.1])
    H64 = hessian(f)(x)
    H = hessian(f)(x.astype(dtype))
    assert H.dtype == dtype
    assert close(H, H64, rtol=1e-2 if dtype == onp.float16 else 1e-5, atol=1e-2 if dtype == onp.float16 else 1e-5)
