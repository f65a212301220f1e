"""Hardening: the edges of the input space and of the runtime.

The conventions at points where a derivative does not exist are read from the table in
docs/hardening.md and checked row by row in both modes, so the documentation and the
behaviour cannot drift apart. Then: empty, 0-d, very large and non-finite arrays; Python and
NumPy scalars and the inputs that are refused; read-only, strided, broadcast and
memory-mapped inputs; reduced-precision dtypes; threads; re-entrant gradient computations;
memory that must not grow and tapes that must be freed by reference counting alone; the
compiled and the Python engine giving bitwise identical results.

Expected gradients are closed forms worked out by hand or central finite differences in
float64 (``fd_grad``); none is copied from wengert's output.
"""

from __future__ import annotations

import array
import gc
import json
import math
import os
import pathlib
import subprocess
import sys
import threading
import tracemalloc
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, NamedTuple

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

DOC = pathlib.Path(__file__).parent.parent / "docs" / "hardening.md"
PURE = os.environ.get("WENGERT_PURE_PYTHON", "") not in ("", "0")
NAN, INF = float("nan"), float("inf")


def same(a: Any, b: Any, rtol: float = 1e-15) -> None:
    """Equal values, NaNs and infinities included, and equal shapes."""
    assert onp.shape(a) == onp.shape(b), (onp.shape(a), onp.shape(b))
    onp.testing.assert_allclose(onp.asarray(a), onp.asarray(b), rtol=rtol, atol=0, equal_nan=True)


def quiet(f: Callable, *args: Any) -> Any:
    """Call ``f`` with NumPy's floating point warnings silenced (inf and nan are expected)."""
    with warnings.catch_warnings(), onp.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return f(*args)


# ============================================================================= conventions
class Convention(NamedTuple):
    point: str
    source: str  # f(x), an expression in x
    f: Callable
    x: Any
    gradient: Any
    warns: bool


def _conventions() -> list[Convention]:
    """The rows of the conventions table in docs/hardening.md."""
    section = DOC.read_text().split("## Conventions at non-differentiable points", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = [line.strip() for line in section.splitlines() if line.strip().startswith("|")]
    header, _, *body = rows
    assert [c.strip() for c in header.strip("|").split("|")] == \
        ["point", "`f(x)`", "`x`", "gradient", "RuntimeWarning"], header
    namespace = {"np": np, "nan": NAN, "inf": INF}
    out = []
    for line in body:
        point, source, x, gradient, warns = [c.strip().strip("`") for c in line.strip("|").split("|")]
        assert warns in ("yes", "no"), line
        x = eval(x, namespace)
        x = onp.array(x, dtype=float) if isinstance(x, list) else x
        out.append(Convention(point, source, eval(f"lambda x: {source}", namespace), x,
                              onp.asarray(eval(gradient, namespace)), warns == "yes"))
    return out


CONVENTIONS = _conventions()


def test_convention_table_covers_the_required_points() -> None:
    points = {c.point for c in CONVENTIONS}
    required = {"abs at 0", "abs at -0", "abs at complex 0", "maximum tie", "minimum tie",
                "max, three-way tie", "min, two-way tie", "sort with ties", "sqrt at 0",
                "clip at the lower bound", "clip at the upper bound", "relu at 0", "max with a NaN",
                "fmax and fmin beside a NaN", "prod with two zeros", "Python's built-in max"}
    assert required <= points, required - points
    assert len(points) == len(CONVENTIONS), "two rows share a name"


@pytest.mark.parametrize("c", CONVENTIONS, ids=[c.point for c in CONVENTIONS])
def test_convention_in_reverse_mode(c: Convention) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = grad(c.f)(c.x)
    runtime = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert bool(runtime) == c.warns, runtime
    same(g, c.gradient)
    assert onp.result_type(g) == onp.result_type(c.x)
    same(quiet(jacrev(c.f), c.x), c.gradient)  # the batched sweep splits the same way


@pytest.mark.parametrize("c", CONVENTIONS, ids=[c.point for c in CONVENTIONS])
def test_convention_in_forward_mode(c: Convention) -> None:
    """The derivative along each coordinate direction t is Re(sum(t * gradient)) in IEEE
    arithmetic: that coordinate of the gradient (along 1 and i for a complex one), except that
    an infinite slope in a coordinate t leaves at 0 gives 0 * inf = nan, as in reverse mode.
    ``jacfwd`` (real points) gives the derivatives along the real coordinates at once."""
    x = onp.asarray(c.x)
    units = (1.0, 1j) if x.dtype.kind == "c" else (1.0,)
    along = onp.empty(x.shape)
    for idx in onp.ndindex(x.shape):
        for unit in units:
            if x.ndim:
                t = onp.zeros_like(x)
                t[idx] = unit
            else:
                t = type(c.x)(unit)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                _, d = jvp(c.f, (c.x,), (t,))
            runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
            with onp.errstate(invalid="ignore"):
                expected = onp.real(onp.sum(t * c.gradient))
            same(onp.real(d), expected)
            if unit == 1.0:
                along[idx] = expected
            if not c.warns:
                assert not runtime, [str(w.message) for w in runtime]
    if x.dtype.kind != "c":
        same(quiet(jacfwd(c.f), c.x), along)


ZERO_SLOPE = [  # (name, elementwise function): slope 0 at 0 and -0
    ("np.abs", np.abs),
    ("np.absolute", np.absolute),
    ("abs()", abs),
    ("np.fabs", np.fabs),
    ("np.sign", np.sign),
    ("x*sign(x)", lambda x: x * np.sign(x)),
]


@pytest.mark.parametrize("name,f", ZERO_SLOPE, ids=[c[0] for c in ZERO_SLOPE])
def test_zero_slope_at_zero_on_floats_and_in_jacobians_and_hessians(name: str, f: Callable) -> None:
    """The table checks these on arrays; here the Python-float path, a full Jacobian of the
    elementwise function, and the second derivative at the kink."""
    assert grad(f)(0.0) == 0.0 and type(grad(f)(0.0)) is float
    assert grad(f)(-0.0) == 0.0
    z = onp.zeros(3)
    assert onp.array_equal(jacrev(f)(z), onp.zeros((3, 3)))
    assert onp.array_equal(hessian(lambda x: np.sum(f(x)))(z), onp.zeros((3, 3)))


@pytest.mark.parametrize("f", [np.maximum, np.minimum, np.fmax, np.fmin], ids=lambda f: f.__name__)
def test_ties_of_two_python_floats_share_the_gradient_equally(f: Callable) -> None:
    """The scalar fast path, both arguments traced (the table's ties index into arrays)."""
    assert grad(f, argnum=(0, 1))(1.5, 1.5) == (0.5, 0.5)
    assert jvp(f, (1.0, 1.0), (1.0, 0.0))[1] == 0.5  # the mean of the two tangents
    assert grad(lambda x: f(x, x))(0.7) == 1.0  # the shares add back up


@pytest.mark.parametrize("mode", ["grad", "python float", "jvp"])
def test_sqrt_at_zero_under_detect_anomaly_names_sqrt(mode: str) -> None:
    with pytest.raises(wengert.AnomalyError, match="'sqrt'") as raised:
        with wengert.detect_anomaly():
            if mode == "grad":
                quiet(grad(lambda x: np.sum(np.sqrt(x) * 2.0)), onp.array([1.0, 0.0]))
            elif mode == "python float":
                quiet(grad(lambda x: np.sqrt(x)), 0.0)
            else:
                quiet(jvp, np.sqrt, (onp.zeros(2),), (onp.ones(2),))
    assert "test_hardening.py" in str(raised.value)  # names the user's line
    # outside the block the same computation is allowed
    assert quiet(grad(np.sqrt), 0.0) == INF


def _sqrt_of_double(x: Any) -> Any:
    doubled = x * 2.0
    return np.sqrt(doubled)  # the culprit: its derivative rule divides by 0 at 0


@pytest.mark.parametrize("api", ["grad-of-grad", "jacrev", "hessian-of-sum"])
def test_anomaly_in_a_rule_run_by_an_inner_gradient_names_the_rule_and_the_users_line(api: str) -> None:
    """The inner sweep's rules run while the outer computation records: the anomaly is named
    as the rule of 'sqrt', at the line where sqrt was called, not as a 'divide' of the
    forward pass at the line that called wengert."""
    calls = {"grad-of-grad": lambda: grad(grad(_sqrt_of_double))(0.0),
             "jacrev": lambda: jacrev(_sqrt_of_double)(onp.zeros(1)),
             "hessian-of-sum": lambda: hessian(lambda x: np.sum(_sqrt_of_double(x)))(onp.zeros(1))}
    with pytest.raises(wengert.AnomalyError, match=r"'sqrt'.*return np\.sqrt\(doubled\)"):
        with wengert.detect_anomaly():
            quiet(calls[api])


def _long_ties() -> tuple:
    """1000 elements, 25 copies of each value, and the gradient a stable sort implies for
    sum(sort(x) * weights): sorted position i feeds the element a stable sort put there."""
    x = onp.random.default_rng(7).permutation(onp.repeat(onp.arange(40.0), 25))
    weights = onp.arange(x.size, dtype=float)
    expected = onp.empty_like(x)
    expected[onp.argsort(x, kind="stable")] = weights
    return x, weights, expected


@pytest.mark.parametrize("kwargs", [{}, {"kind": "stable"}, {"stable": True}], ids=str)
def test_sort_ties_follow_the_stable_order_in_long_arrays(kwargs: dict) -> None:
    x, weights, expected = _long_ties()
    same(grad(lambda x: np.sum(np.sort(x, **kwargs) * weights))(x), expected)


SINGULAR = [  # name, f, point, the derivative there by IEEE arithmetic
    ("log at 0", np.log, 0.0, INF),
    ("log2 at 0", np.log2, 0.0, INF),
    ("log1p at -1", np.log1p, -1.0, INF),
    ("arctanh at 1", np.arctanh, 1.0, INF),
    ("power 1/2 at 0", lambda x: x ** 0.5, 0.0, INF),
]


@pytest.mark.parametrize("kind", ["array", "numpy scalar", "python float"])
@pytest.mark.parametrize("name,f,v,expected", SINGULAR, ids=[c[0] for c in SINGULAR])
def test_singular_point_gives_ieee_derivative(name: str, f: Callable, v: float, expected: float,
                                              kind: str) -> None:
    x = {"array": onp.array([v]), "numpy scalar": onp.float64(v), "python float": v}[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reverse = grad(lambda x: np.sum(f(x))) if kind == "array" else grad(f)  # scalars stay scalars
        same(onp.ravel(reverse(x)), [expected])
        tangent = onp.ones_like(x) if kind == "array" else type(x)(1.0)
        same(onp.ravel(jvp(f, (x,), (tangent,))[1]), [expected])


_UNEVEN = onp.array([0.3, 0.08])
PROD_NEAR_ZERO = [  # name, computation, hand-derived value
    ("first order, g * a underflows", lambda: grad(lambda x: np.prod(x) * 1e-30)(onp.array([1e-300, 2.0]))[0],
     2e-30),  # d/dx0 (1e-30 x0 x1) = 1e-30 x1
    ("second order, other terms lost", lambda: grad(grad(lambda y: np.prod(y) + np.sin(y) ** 2))(1e-100),
     2.0),  # (y + sin² y)'' = 2 cos 2y
    ("Hessian, doubled", lambda: hessian(lambda x: np.prod(x) ** 2)(onp.array([1e-170, 1.5]))[0, 0],
     4.5),  # d²/dx0² (x0 x1)² = 2 x1²
    # the same computations where the rule needs no care: at exact zeros and away from them
    ("first order, moderate", lambda: grad(lambda x: np.prod(x) * 1e-30)(onp.array([0.5, 2.0]))[0], 2e-30),
    ("second order, at 0", lambda: grad(grad(lambda y: np.prod(y) + np.sin(y) ** 2))(0.0), 2.0),
    ("second order, moderate", lambda: grad(grad(lambda y: np.prod(y) + np.sin(y) ** 2))(0.25),
     2 * math.cos(0.5)),
    ("Hessian, at 0", lambda: hessian(lambda x: np.prod(x) ** 2)(onp.array([0.0, 1.5]))[0, 0], 4.5),
    # found by the property tests: a subnormal product, and a tiny factor differentiated twice
    ("first order, subnormal product", lambda: grad(np.prod)(onp.array([5e-324, 0.75]))[0], 0.75),
    ("reverse over reverse, uneven cotangent",  # d/dx0 (c0 x1 + c1 x0) = c1
     lambda: grad(lambda x: np.sum(_UNEVEN * grad(np.prod)(x)))(onp.array([1e-20, 0.5]))[0], 0.08),
]


@pytest.mark.parametrize("name,compute,expected", PROD_NEAR_ZERO,
                         ids=[c[0] for c in PROD_NEAR_ZERO])
def test_prod_near_zero_is_accurate(name: str, compute: Callable, expected: float) -> None:
    assert close(compute(), expected, rtol=1e-12, atol=0)


# ============================================================================= empty arrays
EMPTY_SHAPES = [(0,), (2, 0), (0, 3)]
EMPTY_ANY_SHAPE = [  # (name, f): defined for every shape in EMPTY_SHAPES
    ("sum of squares", lambda x: np.sum(x ** 2)),
    ("sin", lambda x: np.sum(np.sin(x) * 3.0)),
    ("prod", lambda x: np.prod(x)),
    ("max with initial", lambda x: np.max(x, initial=0.0)),
    ("matmul with its transpose", lambda x: np.sum(x @ x.T)),
    ("transpose and flip", lambda x: np.sum(np.flip(np.transpose(x)) * 2.0)),
    ("concatenate with itself", lambda x: np.sum(np.concatenate([x, x]))),
]
EMPTY_ONE_SHAPE = [  # (name, f, shape)
    ("sum axis=1", lambda x: np.sum(np.sum(x, axis=1) + 1.0), (3, 0)),
    ("mean axis=0", lambda x: np.sum(np.mean(x, axis=0)), (3, 0)),
    ("prod axis=1", lambda x: np.sum(np.prod(x, axis=1)), (3, 0)),
    ("min with initial, axis=1", lambda x: np.sum(np.min(x, axis=1, initial=0.0)), (3, 0)),
    ("matmul (3,0)@(0,2)", lambda x: np.sum(x @ onp.ones((0, 2))), (3, 0)),
    ("matmul (2,3)@(3,0)", lambda x: np.sum(onp.ones((2, 3)) @ x), (3, 0)),
    ("concatenate with a non-empty array", lambda x: np.sum(np.concatenate([x, onp.ones(2)]) ** 2), (0,)),
    ("concatenate axis=1", lambda x: np.sum(np.concatenate([x, onp.ones((3, 2))], axis=1) ** 2), (3, 0)),
    ("stack", lambda x: np.sum(np.stack([x, x]) ** 2), (3, 0)),
    ("index slice", lambda x: np.sum(x[:, :0]), (3, 0)),
    ("index row", lambda x: np.sum(x[1] * 3.0), (3, 0)),
    ("integer-array index", lambda x: np.sum(x[[0, 2]]), (3, 0)),
    ("cumsum", lambda x: np.sum(np.cumsum(x, axis=1)), (3, 0)),
    ("einsum", lambda x: np.einsum("ij,ij->", x, x), (3, 0)),
    ("reshape", lambda x: np.sum(np.reshape(x, (0, 7))), (3, 0)),
    ("where", lambda x: np.sum(np.where(x > 0, x, -x)), (3, 0)),
    ("dot", lambda x: np.dot(x, x), (0,)),
]
EMPTY = [(f"{name} {shape}", f, shape) for name, f in EMPTY_ANY_SHAPE for shape in EMPTY_SHAPES] + \
    [(f"{name} {shape}", f, shape) for name, f, shape in EMPTY_ONE_SHAPE]


@pytest.mark.parametrize("name,f,shape", EMPTY, ids=[c[0] for c in EMPTY])
def test_empty_arrays_give_empty_gradients(name: str, f: Callable, shape: tuple) -> None:
    x = onp.zeros(shape)
    value, g = value_and_grad(f)(x)
    assert onp.isfinite(value)
    assert type(g) is onp.ndarray and g.shape == shape and g.dtype == onp.float64
    assert g.flags.writeable


EMPTY_ELSEWHERE = [  # (name, f(module, x), shape): a reduction where an axis other than the one reduced is empty
    *[(f"{fn} axis={axis} {shape}", lambda m, x, fn=fn, axis=axis: getattr(m, fn)(x, axis=axis), shape)
      for fn in ("prod", "nanprod") for shape, axis in [((3, 0), 0), ((2, 0, 3), 0), ((2, 0, 3), 2), ((0, 3), 1)]],
    *[(f"{fn} q={q} axis={axis} {shape}", lambda m, x, fn=fn, q=q, axis=axis: getattr(m, fn)(x, q, axis=axis),
       shape) for fn, q in [("quantile", 0.3), ("percentile", [10.0, 70.0]), ("nanquantile", [0.3]),
                            ("nanpercentile", 30)]
      for shape, axis in [((3, 0), 0), ((2, 0, 3), 0), ((2, 0, 3), 2), ((0, 3), 1)]],
    ("quantile keepdims", lambda m, x: m.quantile(x, 0.5, axis=0, keepdims=True), (2, 0, 3)),
    ("nanquantile of an empty axis", lambda m, x: m.nanquantile(x, 0.3, axis=1), (2, 0, 3)),  # NaNs, with a warning
    ("nanpercentile of an empty axis", lambda m, x: m.nanpercentile(x, 30, axis=0), (0, 3)),
    ("nanquantile of all of nothing", lambda m, x: m.nanquantile(x, [0.3, 0.5]), (2, 0, 3)),
]


@pytest.mark.parametrize("name,f,shape", EMPTY_ELSEWHERE, ids=[c[0] for c in EMPTY_ELSEWHERE])
def test_reductions_with_an_empty_axis_give_numpys_result_and_empty_derivatives(name: str, f: Callable,
                                                                                 shape: tuple) -> None:
    x = onp.zeros(shape)
    with warnings.catch_warnings(record=True) as expected_warnings:
        warnings.simplefilter("always")
        expected = f(onp, x)
    with warnings.catch_warnings(record=True) as found_warnings:
        warnings.simplefilter("always")
        out, pull = vjp(lambda x: f(np, x), x)
        g = grad(lambda x: np.sum(f(np, x)))(x)
        out_fwd, t = jvp(lambda x: f(np, x), (x,), (onp.ones(shape),))
    for value in (out, out_fwd):
        assert type(value) is type(expected) and value.shape == expected.shape and value.dtype == expected.dtype
        assert onp.array_equal(value, expected, equal_nan=True)
    assert {str(w.message) for w in found_warnings} == {str(w.message) for w in expected_warnings}
    (cotangent,) = pull(onp.ones(expected.shape))
    assert cotangent.shape == g.shape == shape and g.dtype == onp.float64
    assert onp.shape(t) == expected.shape


def test_empty_selection_of_a_nonempty_array_gives_zeros() -> None:
    x = onp.arange(3.0)
    assert onp.array_equal(grad(lambda x: np.sum(x[1:1]))(x), onp.zeros(3))
    assert onp.array_equal(grad(lambda x: np.sum(x[onp.array([], dtype=int)]))(x), onp.zeros(3))
    assert onp.array_equal(grad(lambda x: np.sum(x[x > 5.0]) + 0.0)(x), onp.zeros(3))
    gx, gy = grad(lambda x, y: np.sum(np.concatenate([x, y]) ** 2), argnum=(0, 1))(onp.zeros(0), x)
    assert gx.shape == (0,) and onp.array_equal(gy, 2 * x)


def test_mean_of_empty_is_nan_like_numpy_and_its_gradient_is_empty() -> None:
    e0, e30 = onp.zeros(0), onp.zeros((3, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = onp.mean(e0)
        value, g = value_and_grad(np.mean)(e0)
        value30, g30 = value_and_grad(np.mean)(e30)
        rows, grows = value_and_grad(lambda x: np.sum(np.mean(x, axis=1)))(e30)
    assert onp.isnan(expected) and onp.isnan(value) and onp.isnan(value30) and onp.isnan(rows)
    assert g.shape == (0,) and g30.shape == (3, 0) and grows.shape == (3, 0)


def test_reductions_without_identity_raise_numpys_error_on_empty() -> None:
    with pytest.raises(ValueError, match="zero-size array"):
        onp.max(onp.zeros(0))
    with pytest.raises(ValueError, match="zero-size array"):
        grad(lambda x: np.max(x))(onp.zeros(0))


@pytest.mark.parametrize("shape", EMPTY_SHAPES, ids=str)
def test_every_api_on_empty_arrays(shape: tuple) -> None:
    x = onp.zeros(shape)
    assert elementwise_grad(np.sin)(x).shape == shape
    assert jacfwd(lambda x: x * 2.0)(x).shape == shape * 2
    assert jacrev(lambda x: x * 2.0)(x).shape == shape * 2
    assert jacrev(lambda x: np.sum(x, axis=-1))(x).shape == shape[:-1] + shape  # a reduction
    assert jacfwd(lambda x: np.sum(x, axis=-1))(x).shape == shape[:-1] + shape
    assert wengert.jacobian(np.exp)(x).shape == shape * 2
    assert hessian(lambda x: np.sum(x ** 3))(x).shape == shape * 2
    out, pull = vjp(np.sin, x)
    assert out.shape == shape and pull(x)[0].shape == shape
    out, t = jvp(np.sin, (x,), (x,))
    assert out.shape == t.shape == shape
    assert wengert.hvp(lambda x: np.sum(x ** 3))(x, x).shape == shape
    wengert.gradcheck(np.sin, x)  # nothing to compare, and no crash
    wengert.gradcheck(lambda x, y: np.sum(np.sin(x)) + y ** 2, x, 1.5)  # y is still checked
    with pytest.raises(wengert.GradcheckError):  # ... really checked
        wengert.gradcheck(lambda x, y: np.sum(np.sin(x)) + stop_gradient(y) ** 2, x, 1.5)


def test_empty_outputs_of_nonempty_inputs() -> None:
    x = onp.ones(3)
    assert jacfwd(lambda x: x[:0])(x).shape == (0, 3)
    assert jacrev(lambda x: x[:0])(x).shape == (0, 3)
    out, pull = vjp(lambda x: x[:0] * 2.0, x)
    assert out.shape == (0,) and onp.array_equal(pull(onp.zeros(0))[0], onp.zeros(3))


# ============================================================================= 0-d arrays
ZERO_D = [  # name, f, point, hand-derived derivative
    ("square", lambda x: x ** 2, 1.5, lambda v: 2 * v),
    ("x*x", lambda x: x * x, 0.5, lambda v: 2 * v),
    ("sin", np.sin, 0.4, math.cos),
    ("exp times x", lambda x: np.exp(x) * x, 0.3, lambda v: math.exp(v) * (1 + v)),
    ("sum", lambda x: np.sum(x * 3.0), 2.0, lambda v: 3.0),
    ("mean", np.mean, 0.5, lambda v: 1.0),
    ("max", np.max, 0.5, lambda v: 1.0),
    ("prod", lambda x: np.prod(x * x), 0.5, lambda v: 2 * v),
    ("cumsum", lambda x: np.sum(np.cumsum(x)), 0.5, lambda v: 1.0),
    ("x[None]", lambda x: np.sum(x[None] * 2.0), 0.5, lambda v: 2.0),
    ("x[...]", lambda x: x[...] * x, 0.5, lambda v: 2 * v),
    ("x[()]", lambda x: x[()] * 4.0, 0.7, lambda v: 4.0),
    ("reshape then index", lambda x: np.reshape(x, (1, 1))[0, 0] ** 3, 1.2, lambda v: 3 * v * v),
    ("reshape", lambda x: np.sum(np.reshape(x, (1, 1)) ** 2), 0.5, lambda v: 2 * v),
    ("matmul of 1-vectors", lambda x: np.reshape(x, (1,)) @ np.reshape(x, (1,)), 0.5, lambda v: 2 * v),
    ("constant", lambda x: 5.0, 0.7, lambda v: 0.0),
]


@pytest.mark.parametrize("dtype", [onp.float64, onp.float32])
@pytest.mark.parametrize("name,f,v,df", ZERO_D, ids=[c[0] for c in ZERO_D])
def test_gradient_of_0d_array_is_0d_array(name: str, f: Callable, v: float, df: Callable, dtype: Any) -> None:
    x = onp.array(v, dtype=dtype)
    tol = 1e-6 if dtype == onp.float32 else 1e-14
    g = grad(f)(x)
    assert type(g) is onp.ndarray and g.ndim == 0 and g.dtype == dtype, (type(g), g)
    assert close(g, df(float(x)), rtol=tol)
    assert close(jvp(f, (x,), (onp.array(1.0, dtype),))[1], df(float(x)), rtol=tol)
    if dtype == onp.float64:
        assert close(g, fd_grad(lambda z: f(onp.asarray(z)), x), rtol=1e-6)


def test_jacobians_and_hessian_of_0d_arrays() -> None:
    x = onp.array(2.0)
    assert jacfwd(np.sin)(x).shape == () and close(jacfwd(np.sin)(x), onp.cos(2.0))
    assert jacrev(np.sin)(x).shape == () and close(jacrev(np.sin)(x), onp.cos(2.0))
    assert close(jacfwd(lambda x: x * onp.arange(3.0))(x), [0.0, 1.0, 2.0])
    assert close(jacrev(lambda x: x * onp.arange(3.0))(x), [0.0, 1.0, 2.0])
    h = hessian(lambda x: x ** 3)(x)
    assert h.shape == () and h == 12.0


def test_gradient_of_complex_0d_array() -> None:
    z = onp.array(3 + 4j)
    g = grad(lambda z: np.real(z * np.conj(z)))(z)  # |z|^2 = z conj(z): 2 df/dz = 2 conj(z)
    assert type(g) is onp.ndarray and g.ndim == 0 and g.dtype == onp.complex128
    assert g == 6 - 8j
    assert close(grad(lambda z: np.abs(z) ** 2)(z), 6 - 8j)


# ============================================================================= a very large array
def test_gradient_of_ten_million_elements() -> None:
    x = onp.random.default_rng(0).standard_normal(10 ** 7)
    g = grad(lambda x: np.sum(x * x) / 2.0)(x)
    assert g.shape == x.shape and g.dtype == onp.float64
    assert onp.array_equal(g, x)  # 0.5 x + 0.5 x is exact in floating point


# ============================================================================= NaN and Inf
IEEE_POINTS = [NAN, INF, -INF, 0.5, -2.0]
IEEE = [  # name, elementwise f, the derivative written by hand in plain NumPy
    ("square", lambda x: x ** 2, lambda x: 2 * x),
    ("cube", lambda x: x * x * x, lambda x: 3 * x * x),
    ("exp", np.exp, onp.exp),
    ("sin", np.sin, onp.cos),
    ("tanh", np.tanh, lambda x: 1 - onp.tanh(x) ** 2),
    ("log", np.log, lambda x: 1 / x),
    ("sqrt", np.sqrt, lambda x: 0.5 / onp.sqrt(x)),
    ("arctan", np.arctan, lambda x: 1 / (1 + x * x)),
    ("scale", lambda x: x * 3.0, lambda x: onp.full_like(x, 3.0)),
    ("identity", lambda x: x, lambda x: onp.ones_like(x)),
]


@pytest.mark.parametrize("name,f,df", IEEE, ids=[c[0] for c in IEEE])
def test_nan_and_inf_through_elementwise_functions_follow_ieee(name: str, f: Callable, df: Callable) -> None:
    x = onp.array(IEEE_POINTS)
    with onp.errstate(all="ignore"):
        expected = df(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own warnings about inf - inf etc.
        same(elementwise_grad(f)(x), expected, rtol=1e-12)
        same(jvp(f, (x,), (onp.ones_like(x),))[1], expected, rtol=1e-12)
        for v, e in zip(IEEE_POINTS, expected):  # the Python float path
            same(grad(f)(v), e, rtol=1e-12)


NONFINITE = [  # (name, f, x, expected gradient; nan where expected)
    ("sum with a NaN", lambda x: np.sum(x), [NAN, 1.0, 2.0], [1.0, 1.0, 1.0]),
    ("sum of squares with a NaN", lambda x: np.sum(x * x), [NAN, 1.0, 2.0], [NAN, 2.0, 4.0]),
    ("where masks a NaN", lambda x: np.sum(np.where(onp.array([True, False]), x, 0.0)), [1.0, NAN], [1.0, 0.0]),
    ("max with inf", np.max, [INF, 1.0], [1.0, 0.0]),
    ("NaN through a matrix product", lambda x: np.sum(onp.array([[1.0, 2.0], [3.0, 4.0]]) @ x ** 2),
     [NAN, 1.0], [NAN, 12.0]),
]


@pytest.mark.parametrize("name,f,x,expected", NONFINITE, ids=[c[0] for c in NONFINITE])
def test_nan_and_inf_in_whole_programs_reach_only_their_own_gradient(name: str, f: Callable, x: list,
                                                                     expected: list) -> None:
    x, expected = onp.array(x), onp.array(expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        same(grad(f)(x), expected, rtol=1e-14)
        same(jacrev(f)(x), expected, rtol=1e-14)
        # Forward mode pushes every direction through the whole computation, and 0 * nan is
        # nan: a NaN intermediate reaches every column that meets it. Where the derivative
        # itself is not finite, forward mode agrees with it.
        t = jacfwd(f)(x)
    bad = ~onp.isfinite(expected)
    assert onp.array_equal(t[bad], expected[bad], equal_nan=True), t


# ============================================================================= scalars and types
def _same_tree(got: Any, want: Any, python_floats: bool) -> None:
    """The same structure and values; every leaf a float64 value (a Python float if asked)."""
    if isinstance(want, dict):
        assert type(got) is dict and got.keys() == want.keys(), got
        for k in want:
            _same_tree(got[k], want[k], python_floats)
    elif isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want), got
        for a, b in zip(got, want):
            _same_tree(a, b, python_floats)
    else:
        assert onp.result_type(got) == onp.float64 and float(got) == want, got
        if python_floats:
            assert type(got) is float, type(got)


PYTHON_INTS = [  # name, call, expected (a structure), whether every leaf is a Python float
    ("grad", lambda: grad(lambda x: x ** 2)(3), 6.0, True),
    ("grad of x*x", lambda: grad(lambda x: x * x)(3), 6.0, True),
    ("grad of the second argument", lambda: grad(lambda x, y: x * y, argnum=1)(2.5, 4), 2.5, True),
    ("both arguments", lambda: grad(lambda x, y: x * y * y, argnum=(0, 1))(2, 3), (9.0, 12.0), True),
    ("inside a dict holding a list", lambda: grad(lambda p: p["a"] * p["b"][0] ** 2)({"a": 2, "b": [5]}),
     {"a": 25.0, "b": [20.0]}, True),
    ("inside a list", lambda: grad(lambda l: l[0] * l[1])([2, 5]), [5.0, 2.0], True),
    ("jvp", lambda: jvp(lambda x: x ** 2, (3,), (1.0,))[1], 6.0, False),
    ("derivative", lambda: wengert.derivative(lambda x: x ** 3, 2)(2), 12.0, True),
    ("hessian", lambda: hessian(lambda x: x ** 3)(2), 12.0, False),
]


@pytest.mark.parametrize("name,call,expected,python_floats", PYTHON_INTS, ids=[c[0] for c in PYTHON_INTS])
def test_python_ints_are_promoted_to_float(name: str, call: Callable, expected: Any, python_floats: bool) -> None:
    _same_tree(call(), expected, python_floats)


SCALAR_APIS = {  # name: (call, hand-derived value at 1.5)
    "grad": (lambda x: grad(lambda x: x ** 2 * 3.0)(x), 9.0),
    "grad of sin": (lambda x: grad(np.sin)(x), math.cos(1.5)),
    "grad of exp, Python constants": (lambda x: grad(lambda x: np.exp(x) * 2.5 + 1.0)(x), 2.5 * math.exp(1.5)),
    "value_and_grad": (lambda x: value_and_grad(lambda x: x ** 2 * 3.0)(x)[1], 9.0),
    "derivative": (lambda x: wengert.derivative(lambda x: x ** 3, 2)(x), 9.0),
    "jvp": (lambda x: jvp(np.sin, (x,), (type(x)(2.0),))[1], 2 * math.cos(1.5)),
}


@pytest.mark.parametrize("dtype", [onp.float64, onp.float32, onp.float16])
@pytest.mark.parametrize("api", SCALAR_APIS)
def test_numpy_scalar_keeps_its_type(api: str, dtype: Any) -> None:
    call, expected = SCALAR_APIS[api]
    g = call(dtype(1.5))
    assert type(g) is dtype, type(g)
    assert close(g, expected, rtol={onp.float64: 1e-13, onp.float32: 1e-6, onp.float16: 2e-3}[dtype])


# ----------------------------------------------------------------------------- wrong input types
def _sq_sum(x: Any) -> Any:
    return np.sum(x ** 2)


APIS = {  # name: a call of that API on one input
    "grad": lambda x: grad(_sq_sum)(x),
    "value_and_grad": lambda x: value_and_grad(_sq_sum)(x),
    "elementwise_grad": lambda x: elementwise_grad(np.square)(x),
    "vjp": lambda x: vjp(np.square, x),
    "make_vjp": lambda x: wengert.make_vjp(np.square)(x),
    "jvp": lambda x: jvp(np.square, (x,), (onp.ones(onp.shape(x)),)),
    "make_jvp": lambda x: wengert.make_jvp(np.square)(x),
    "linearize": lambda x: wengert.linearize(np.square, x),
    "jacfwd": lambda x: jacfwd(np.square)(x),
    "jacrev": lambda x: jacrev(np.square)(x),
    "jacobian": lambda x: wengert.jacobian(np.square)(x),
    "hessian": lambda x: hessian(_sq_sum)(x),
    "hvp": lambda x: wengert.hvp(_sq_sum)(x, onp.ones(onp.shape(x))),
    "derivative": lambda x: wengert.derivative(np.square, 2)(x),
}
INVALID = [  # (name, argument, what the message says it is, whether it advises x.astype(float))
    ("int array", onp.arange(3), "an array of dtype int64", True),
    ("uint8 array", onp.ones(3, onp.uint8), "an array of dtype uint8", True),
    ("bool array", onp.ones(3, bool), "an array of dtype bool", True),
    ("object array", onp.ones(3, object), "an array of dtype object", False),
    ("string array", onp.array(["a", "b"]), "an array of dtype <U1", False),
    ("datetime array", onp.array(["2024-01-01"], dtype="datetime64[D]"), "an array of dtype datetime64[D]", False),
    ("bool", True, "a bool", False),
    ("numpy bool", onp.bool_(False), "a bool", False),
    ("str", "1.5", "a str", False),
    ("None", None, "None", False),
    ("object", object(), "an object", False),
    ("numpy int", onp.int64(3), "dtype int64", True),
]


@pytest.mark.parametrize("name,x,what,advice", INVALID, ids=[c[0] for c in INVALID])
@pytest.mark.parametrize("api", APIS)
def test_non_float_input_is_a_type_error_naming_api_and_argument(api: str, name: str, x: Any, what: str,
                                                                 advice: bool) -> None:
    with pytest.raises(TypeError) as raised:
        APIS[api](x)
    message = str(raised.value)
    assert message.startswith(f"{api}: argument 0 is ") and what in message, message
    assert "floating point" in message, message
    assert ("x.astype(float)" in message) == advice, message
    assert "argnum" in message, message  # how to keep it fixed instead


_NO_MATRIX_NOTICE = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")


class _ForeignTensor:
    """Another library's array (a torch.Tensor, say): a dtype attribute that is not NumPy's."""

    dtype = "float64 of another library"
    shape = (2,)


@pytest.mark.parametrize("api", APIS)
def test_another_librarys_array_is_refused_naming_api_and_argument(api: str) -> None:
    with pytest.raises(TypeError, match=rf"^{api}: argument 0 is a test_hardening._ForeignTensor, whose dtype "
                                        r"float64 of another library is not a NumPy dtype.*np.asarray\(x\)"):
        APIS[api](_ForeignTensor())


@_NO_MATRIX_NOTICE
@pytest.mark.parametrize("api", APIS)
def test_numpy_matrix_input_is_refused_by_every_api(api: str) -> None:
    with pytest.raises(TypeError, match=rf"^{api}: argument 0 is a numpy.matrix.*np.asarray"):
        APIS[api](onp.asmatrix(onp.eye(2)))


with warnings.catch_warnings():  # NumPy's notice that matrix is not recommended
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    _MAT = onp.asmatrix([[1.0, 2.0], [3.0, 4.0]])
MATRIX_CONSTANTS = {  # name: (function of a traced vector x meeting a numpy.matrix constant, op named)
    "A @ x": (lambda x: np.sum(_MAT @ x), "matmul"),
    "x @ A": (lambda x: np.sum(x @ _MAT), "matmul"),
    "x * A": (lambda x: np.sum(x * _MAT), "multiply"),
    "A + x": (lambda x: np.sum(_MAT + x), "add"),
    "np.dot(A, x)": (lambda x: np.sum(np.dot(_MAT, x)), "dot"),
    "plain numpy: onp.dot(A, x)": (lambda x: np.sum(onp.dot(_MAT, x)), "dot"),
}


@_NO_MATRIX_NOTICE
@pytest.mark.parametrize("mode", ["grad", "jvp"])
@pytest.mark.parametrize("name", MATRIX_CONSTANTS)
def test_numpy_matrix_constant_meeting_a_traced_value_is_refused(name: str, mode: str) -> None:
    f, op = MATRIX_CONSTANTS[name]
    x = onp.array([0.5, -1.0])
    with pytest.raises(TypeError, match=rf"^{op}: argument \d is a numpy.matrix"):
        grad(f)(x) if mode == "grad" else jvp(f, (x,), (x,))


_MASKED = onp.ma.array([1.0, 1.0], mask=[False, True])
MASKED = {  # a masked array as the argument, or as a constant meeting a traced x: its mask would be ignored
    "argument": (lambda x: grad(lambda m: np.sum(m))(onp.ma.array(x, mask=[False, True])), r"^grad: argument 0"),
    "x * m": (lambda x: grad(lambda x: np.sum(x * _MASKED))(x), r"^multiply: argument 1"),
    "np.dot(m, x)": (lambda x: grad(lambda x: np.dot(_MASKED, x))(x), r"^dot: argument 0"),
    "m * x": (lambda x: grad(lambda x: np.sum(_MASKED * x))(x), r"Converting to a plain NumPy array"),
    "jvp": (lambda x: jvp(lambda x: np.sum(x * _MASKED), (x,), (x,)), r"^multiply: argument 1"),
}


@pytest.mark.parametrize("name", MASKED)
def test_masked_arrays_are_refused(name: str) -> None:
    """The values would follow the mask and the gradients would not (they would count the
    masked elements): refused, as numpy.matrix is."""
    call, message = MASKED[name]
    with pytest.raises(TypeError, match=message) as raised:
        call(onp.array([0.5, -1.0]))
    assert "MaskedArray" in str(raised.value) or "Converting" in str(raised.value)


BUFFERS = {"array.array": lambda: array.array("d", [1.0, 2.0]), "memoryview": lambda: memoryview(onp.ones(2)),
           "bytearray": lambda: bytearray(b"ab")}
MEETING_A_BUFFER = {  # a traced x meets a buffer b, which could change behind the tape's back
    "x * b": (lambda x, b: np.sum(x * b), r"^multiply: argument 1"),
    "b * x": (lambda x, b: np.sum(b * x), r"^multiply: argument 0"),
    "x @ b": (lambda x, b: x @ b, r"^matmul: argument 1"),
    "np.dot(b, x)": (lambda x, b: np.dot(b, x), r"^dot: argument 0"),
    "plain numpy: onp.multiply(x, b)": (lambda x, b: np.sum(onp.multiply(x, b)), r"^multiply: argument 1"),
    "argument": (None, r"^grad: argument 0"),
}


@pytest.mark.parametrize("buffer", BUFFERS)
@pytest.mark.parametrize("name", MEETING_A_BUFFER)
def test_python_buffers_meeting_traced_values_are_refused(name: str, buffer: str) -> None:
    """NumPy reads them in place, so a change after the operation would reach the derivative
    rule unseen (the tape watches NumPy arrays): refused, naming what to pass instead."""
    f, message = MEETING_A_BUFFER[name]
    b = BUFFERS[buffer]()
    x = onp.array([0.5, -1.0])
    with pytest.raises(TypeError, match=message + rf" is an object of type {buffer}: .*np.asarray\(a\)"):
        grad(lambda b: np.sum(b))(b) if f is None else grad(f)(x, b)
    if f is not None:  # the advice works
        assert close(grad(f)(x, onp.asarray(b)), fd_grad(lambda x: f(x, onp.asarray(b)), x))


LEAF_IN_A_LIST = {  # an int array as the second leaf of the one positional argument (a list, then a dict)
    "grad": lambda p: grad(lambda p: 1.0)(p),
    "value_and_grad": lambda p: value_and_grad(lambda p: 1.0)(p),
    "vjp": lambda p: vjp(lambda p: 1.0, p),
    "jvp": lambda p: jvp(lambda p: 1.0, (p,), (p,)),
    "jacfwd": lambda p: jacfwd(lambda p: 1.0)(p),
    "jacrev": lambda p: jacrev(lambda p: 1.0)(p),
    "hessian": lambda p: hessian(lambda p: 1.0)(p),
}


@pytest.mark.parametrize("api", LEAF_IN_A_LIST)
def test_invalid_leaf_inside_a_structure_names_the_argument_and_its_place(api: str) -> None:
    for tree, place in [([1.0, onp.arange(2)], r"\[1\]"), ({"w": 1.0, "n": onp.arange(2)}, r"\['n'\]")]:
        with pytest.raises(TypeError, match=rf"^{api}: argument 0{place} is an array of dtype int64.*argnum"):
            LEAF_IN_A_LIST[api](tree)


ARGNUM_1 = {
    "grad": lambda x: grad(lambda a, b: np.sum(a * b), argnum=1)(1.0, x),
    "jacfwd": lambda x: jacfwd(lambda a, b: a * b, argnum=1)(1.0, x),
    "jacrev": lambda x: jacrev(lambda a, b: a * b, argnum=1)(1.0, x),
    "hessian": lambda x: hessian(lambda a, b: np.sum(a * b * b), argnum=1)(1.0, x),
    "make_jvp": lambda x: wengert.make_jvp(lambda a, b: a * b, argnum=1)(1.0, x),
    "hvp": lambda x: wengert.hvp(lambda a, b: np.sum(a * b * b), argnum=1)(1.0, x, onp.ones(2)),
}


@pytest.mark.parametrize("api", ARGNUM_1)
def test_type_error_names_the_differentiated_argument(api: str) -> None:
    with pytest.raises(TypeError, match=rf"^{api}: argument 1 is an array of dtype int64"):
        ARGNUM_1[api](onp.array([1, 2]))


ARGNUM_2 = {
    "jacfwd": lambda: jacfwd(np.sin, argnum=2)(1.0),
    "hessian": lambda: hessian(np.sin, argnum=2)(1.0),
    "make_jvp": lambda: wengert.make_jvp(np.sin, argnum=2)(1.0),
    "hvp": lambda: wengert.hvp(np.sin, argnum=2)(1.0, 1.0),
}


@pytest.mark.parametrize("api", ARGNUM_2)
def test_argnum_out_of_range_is_named(api: str) -> None:
    with pytest.raises(ValueError, match=rf"^{api}: argnum 2 is out of range"):
        ARGNUM_2[api]()


@pytest.mark.parametrize("point", [(onp.array([1, 2]),), (3,), (True, onp.array([1]))], ids=str)
def test_gradcheck_refuses_to_check_nothing(point: tuple) -> None:
    with pytest.raises(TypeError, match="^gradcheck: no argument is a floating point"):
        wengert.gradcheck(lambda *a: a[0] * 2.0, *point)


@pytest.mark.parametrize("order", [0, 3, True])
def test_gradcheck_refuses_unknown_orders(order: Any) -> None:
    with pytest.raises(ValueError, match="^gradcheck: order must be 1"):
        wengert.gradcheck(np.sin, 0.5, order=order)


NON_SCALAR = {
    "hessian": lambda x: hessian(np.sin)(x),
    "hvp": lambda x: wengert.hvp(np.sin)(x, x),
    "derivative": lambda x: wengert.derivative(np.sin)(x),
}


@pytest.mark.parametrize("api", NON_SCALAR)
def test_non_scalar_output_error_names_the_api(api: str) -> None:
    with pytest.raises(TypeError, match=rf"^{api}: the function must return a real scalar"):
        NON_SCALAR[api](onp.ones(3))


def test_hvp_without_arguments_says_how_to_call_it() -> None:
    with pytest.raises(TypeError, match=r"^hvp: call the product as hvp\(fun\)\(\*args, v\)"):
        wengert.hvp(np.sin)()


# ============================================================================= read-only inputs
READ_ONLY = {  # name: (computes a gradient-like result from x, the same by hand)
    "sum": (lambda x: grad(np.sum)(x), lambda x: onp.ones_like(x)),
    "sum of x times one": (lambda x: grad(lambda x: np.sum(x * 1.0))(x), lambda x: onp.ones_like(x)),
    "sum of squares": (lambda x: grad(lambda x: np.sum(x ** 2))(x), lambda x: 2 * x),
    "sum of a broadcast": (lambda x: grad(lambda x: np.sum(np.broadcast_to(x, (3, 5))))(x),
                           lambda x: onp.full_like(x, 3.0)),
    "sum of a reshape": (lambda x: grad(lambda x: np.sum(np.reshape(x, (5, 1))))(x), lambda x: onp.ones_like(x)),
    "indexing": (lambda x: grad(lambda x: x[2] * 3.0)(x), lambda x: onp.eye(x.size)[2] * 3.0),
    "elementwise identity": (lambda x: elementwise_grad(lambda x: x)(x), lambda x: onp.ones_like(x)),
    "vjp of identity": (lambda x: vjp(lambda x: x, x)[1](x)[0], lambda x: x),
    "jacfwd of identity": (lambda x: jacfwd(lambda x: x)(x), lambda x: onp.eye(x.size)),
    "jvp of identity": (lambda x: jvp(lambda x: x, (x,), (x,))[1], lambda x: x),
    "jvp of a slice": (lambda x: jvp(lambda x: x[1:], (x,), (x,))[1], lambda x: x[1:]),
    "linearize of identity": (lambda x: wengert.linearize(lambda x: x, x)[1](x), lambda x: x),
    "jacrev of a mean": (lambda x: jacrev(lambda x: 2 * np.mean(x))(x), lambda x: onp.full_like(x, 2 / x.size)),
    "jacobian of a sum": (lambda x: wengert.jacobian(lambda x: np.sum(x) / 3)(x), lambda x: onp.full_like(x, 1 / 3)),
}


@pytest.mark.parametrize("name", READ_ONLY)
def test_read_only_input_is_untouched_and_the_result_is_the_callers_own(name: str) -> None:
    x = onp.arange(1.0, 6.0)
    x.flags.writeable = False
    before = x.copy()
    compute, expected = READ_ONLY[name]
    g = compute(x)
    assert onp.array_equal(x, before) and not x.flags.writeable
    assert close(g, expected(before))
    assert g.flags.writeable and not onp.shares_memory(g, x)
    g[...] = -1.0  # writing into the result leaves the input, and a later result, alone
    assert onp.array_equal(x, before)
    assert close(compute(x), expected(before))


def test_read_only_0d_array() -> None:
    x = onp.array(2.0)
    x.flags.writeable = False
    g = grad(lambda x: x * 3.0)(x)
    assert g.flags.writeable and g == 3.0 and x == 2.0


# ============================================================================= memory layouts
def _memmap(tmp_path: pathlib.Path, mode: str) -> onp.memmap:
    path = tmp_path / f"x-{mode}.dat"
    data = onp.linspace(-1.0, 1.3, 24).reshape(4, 6) * 0.9
    if mode == "w+":
        x = onp.memmap(path, dtype=onp.float64, mode="w+", shape=(4, 6))
        x[:] = data
        x.flush()
        return x
    data.tofile(path)
    return onp.memmap(path, dtype=onp.float64, mode=mode, shape=(4, 6))


def _read_only(m: onp.ndarray) -> onp.ndarray:
    m = m.copy()
    m.flags.writeable = False
    return m


_BASE = onp.linspace(-1.0, 1.3, 24)
_M = _BASE.reshape(4, 6)
LAYOUTS = {  # name: makes the input, given a temporary folder
    "read-only": lambda tmp: _read_only(_M),
    "x[::2]": lambda tmp: _BASE[::2],
    "x[::-1]": lambda tmp: _BASE[::-1],
    "x[::-3]": lambda tmp: _BASE[::-3],
    "x.T": lambda tmp: _M.T,
    "Fortran order": lambda tmp: onp.asfortranarray(_M),
    "column view": lambda tmp: _M[:, 1],
    "strided 2-d view": lambda tmp: _M[::2, ::3],
    "broadcast_to (zero strides)": lambda tmp: onp.broadcast_to(onp.array([0.2, -0.4, 0.9]), (4, 3)),
    "broadcast_to, 0-stride column": lambda tmp: onp.broadcast_to(onp.array([[0.5], [-0.1]]), (2, 5)),
    "memmap w+": lambda tmp: _memmap(tmp, "w+"),
    "memmap r": lambda tmp: _memmap(tmp, "r"),
    "memmap r+": lambda tmp: _memmap(tmp, "r+"),
    "memmap c": lambda tmp: _memmap(tmp, "c"),
}


def _layout_functions(shape: tuple) -> list:
    """(f, hand-derived gradient or None): scalar functions of an array of any shape."""
    w = onp.arange(1.0, int(onp.prod(shape)) + 1).reshape(shape)  # distinct weights tell elements apart
    return [
        (lambda x: np.sum(np.sin(x) * w), lambda x: onp.cos(x) * w),
        (lambda x: np.sum(np.sin(x) * x), lambda x: onp.cos(x) * x + onp.sin(x)),
        (lambda x: np.sum(np.tanh(x) ** 2) + np.max(x), None),
        (lambda x: np.sum(np.reshape(x, (-1,)) * onp.arange(x.size)), None),
        (lambda x: np.sum(np.exp(x[..., ::-1]) * x[..., :1]), None),
        (lambda x: np.sum(np.swapaxes(x, 0, -1) @ onp.ones(x.shape[0])) ** 2, None),
    ]


@pytest.mark.parametrize("name", LAYOUTS)
def test_unusual_layouts_give_correct_gradients_and_are_not_modified(name: str, tmp_path: pathlib.Path) -> None:
    x = LAYOUTS[name](tmp_path)
    before = onp.array(x, copy=True)
    plain = onp.array(x)  # a contiguous, writable copy
    broadcast = name.startswith("broadcast_to")  # holds ties, which max splits
    for f, df in _layout_functions(x.shape):
        g = grad(f)(x)
        assert isinstance(g, onp.ndarray) and g.shape == x.shape and g.dtype == onp.float64
        assert g.flags.writeable and not onp.shares_memory(g, x)
        assert close(g, grad(f)(plain), rtol=1e-14, atol=1e-15)  # the same as for a contiguous copy
        if df is not None:
            assert close(g, df(plain), rtol=1e-12)
        if df is not None or not broadcast:  # and as finite differences, where smooth
            assert close(g, fd_grad(f, plain), rtol=1e-6, atol=1e-8)
        # forward mode sees the same layout
        _, t = jvp(f, (x,), (onp.ones(x.shape),))
        assert close(t, onp.sum(g), rtol=1e-9)
        assert close(jacfwd(f)(x), g, rtol=1e-12, atol=1e-14)
    w = onp.arange(1.0, x.size + 1).reshape(x.shape)
    j = jacfwd(lambda x: np.sin(x) * w)(x)
    assert close(j.reshape(x.size, x.size), onp.diag((onp.cos(plain) * w).ravel()))
    h = hessian(lambda x: np.sum(np.sin(x) * x))(x)
    assert h.shape == x.shape * 2
    assert onp.array_equal(onp.asarray(x), before)


@pytest.mark.parametrize("mode", ["r", "r+", "c", "w+"])
def test_memmap_file_is_not_touched(tmp_path: pathlib.Path, mode: str) -> None:
    x = _memmap(tmp_path, mode)
    path = pathlib.Path(x.filename)
    raw = path.read_bytes()
    data = onp.array(x)
    g = grad(lambda x: np.sum(x ** 3) + np.sum(x[1:] * 2.0))(x)
    expected = 3 * data ** 2
    expected[1:] += 2.0
    assert close(g, expected)
    assert type(g) is onp.ndarray and g.flags.writeable and not onp.shares_memory(g, x)
    g[...] = 0.0
    if mode in ("r+", "w+"):
        x.flush()
    del x
    assert path.read_bytes() == raw


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
def test_reduced_precision_dtypes_are_kept(name: str, f: Callable, dtype: Any) -> None:
    x = onp.array([0.3, 0.7, 1.1], dtype=dtype)
    ones = onp.ones_like(x)
    tol = 1e-5 if dtype == onp.float32 else 1e-2
    want = fd_grad(f, x.astype(onp.float64))
    vector = lambda x: np.sin(x) * f(x)  # noqa: E731  (a vector output, for the Jacobians)
    g = grad(f)(x)
    assert g.dtype == dtype and close(g, want, rtol=tol, atol=tol)
    value, g = value_and_grad(f)(x)
    assert onp.result_type(value) == dtype and g.dtype == dtype
    out, t = jvp(f, (x,), (ones,))
    assert onp.result_type(out) == dtype and onp.result_type(t) == dtype
    assert close(t, want.sum(), rtol=tol, atol=tol)
    results = {
        "jacfwd": jacfwd(vector)(x),
        "jacrev": jacrev(vector)(x),
        "hessian": hessian(f)(x),
        "vjp": vjp(vector, x)[1](ones)[0],
        "make_vjp": wengert.make_vjp(vector)(x)[0](ones)[0],
        "elementwise_grad": elementwise_grad(vector)(x),
        "linearize": wengert.linearize(vector, x)[1](ones),
        "hvp": wengert.hvp(f)(x, ones),
        "checkpoint": grad(lambda x: wengert.checkpoint(f)(x))(x),
    }
    for api, r in results.items():
        assert r.dtype == dtype and onp.all(onp.isfinite(r)), (api, r)
    assert results["jacfwd"].shape == results["jacrev"].shape == results["hessian"].shape == (3, 3)
    assert close(results["checkpoint"], want, rtol=tol, atol=tol)


W3 = onp.linspace(1.0, 2.0, 3)  # a float64 constant: the computation is promoted to float64
PROMOTED = {  # name: (call, which dtype the result has: "input" or "float64")
    "grad": (lambda x: grad(lambda x: np.sum(np.exp(x) * W3))(x), "input"),
    "elementwise_grad": (lambda x: elementwise_grad(lambda x: x * W3)(x), "input"),
    "make_vjp": (lambda x: wengert.make_vjp(lambda x: x * W3)(x)[0](onp.ones(3))[0], "input"),
    "jvp": (lambda x: jvp(lambda x: x * W3, (x,), (onp.ones_like(x),))[1], "float64"),
}


@pytest.mark.parametrize("dtype", [onp.float32, onp.float16], ids=["float32", "float16"])
@pytest.mark.parametrize("api", PROMOTED)
def test_reduced_precision_promoted_by_a_float64_constant(api: str, dtype: Any) -> None:
    """A gradient has its input's dtype; a jvp tangent has its output's."""
    call, kind = PROMOTED[api]
    out = call(onp.array([0.25, -0.5, 1.0], dtype=dtype))
    assert out.dtype == (dtype if kind == "input" else onp.float64), out.dtype
    assert onp.all(onp.isfinite(out))


@pytest.mark.parametrize("dtype", [onp.float32, onp.float16], ids=["float32", "float16"])
def test_reduced_precision_hessian_matches_float64(dtype: Any) -> None:
    f = lambda x: np.sum(np.sin(x) * x ** 2)  # noqa: E731
    x = onp.array([0.3, 0.7, 1.1])
    H64 = hessian(f)(x)
    H = hessian(f)(x.astype(dtype))
    assert H.dtype == dtype
    tol = 1e-2 if dtype == onp.float16 else 1e-5
    assert close(H, H64, rtol=tol, atol=tol)


# ============================================================================= threads
def _checkpointed(x: Any) -> Any:
    return np.sum(wengert.checkpoint(lambda h: np.sin(h) * h)(x))


@wengert.custom_vjp
def _cube(x: Any) -> Any:
    return x ** 3


_cube.defvjp(lambda x: (x ** 3, x), lambda x, g: (3.0 * x ** 2 * g,))


def _scalar_program(t: Any) -> Any:
    s = t
    for k in range(40):
        s = s * 0.9 + np.sin(s) / (k + 1)
    return s


_RNG = onp.random.default_rng(1)
THREAD_JOBS = [  # name, first input, computation at x, the same derived by hand (None: computed alone, before)
    ("grad", onp.linspace(-1.0, 1.0, 7), lambda x: grad(lambda x: np.sum(np.sin(x) * x))(x),
     lambda x: onp.cos(x) * x + onp.sin(x)),
    ("grad, 20,000 elements", _RNG.standard_normal(20_000), lambda x: grad(lambda x: np.sum(np.exp(x) ** 2))(x),
     lambda x: 2 * onp.exp(2 * x)),
    ("value_and_grad", onp.linspace(-0.6, 0.6, 4), lambda x: value_and_grad(lambda x: np.sum(np.log1p(x * x)))(x)[1],
     lambda x: 2 * x / (1 + x * x)),
    ("jacfwd", onp.linspace(-0.7, 0.7, 4), lambda x: jacfwd(np.tanh)(x), lambda x: onp.diag(1 - onp.tanh(x) ** 2)),
    ("jacrev", onp.linspace(-0.8, 0.8, 4), lambda x: jacrev(lambda x: np.exp(x) * 2.0)(x),
     lambda x: onp.diag(2 * onp.exp(x))),
    ("jacrev of a matrix product", _RNG.standard_normal((3, 4)), lambda x: jacrev(lambda m: m @ m.T)(x), None),
    ("hessian", onp.linspace(-0.9, 0.9, 4), lambda x: hessian(lambda x: np.sum(x ** 4) / 12.0)(x),
     lambda x: onp.diag(x * x)),
    ("gradient of a gradient", onp.array([0.7]), lambda x: grad(grad(lambda t: t ** 4))(float(x[0])),
     lambda x: 12 * x[0] ** 2),
    ("second derivative", onp.linspace(-1.0, 1.0, 4),
     lambda x: onp.array([wengert.derivative(lambda t: t ** 5, 2)(float(v)) for v in x]), lambda x: 20 * x ** 3),
    ("scalar program", onp.array([0.3]), lambda x: grad(_scalar_program)(float(x[0])), None),
    ("checkpoint", onp.linspace(-1.1, 1.1, 4), lambda x: grad(_checkpointed)(x), lambda x: onp.cos(x) * x + onp.sin(x)),
    ("checkpointed loop", _RNG.standard_normal(50),
     lambda x: grad(lambda x: np.sum(wengert.checkpointed_loop(lambda s: np.sin(s) * 0.9, x, 12, 3)))(x), None),
    ("custom_vjp", onp.linspace(-1.2, 1.2, 4), lambda x: grad(lambda x: np.sum(_cube(x) * x))(x),
     lambda x: 4 * x ** 3),
]
THREAD_STEPS = 150


def test_threads_differentiating_different_things_at_once() -> None:
    def inputs(x0: onp.ndarray) -> list:
        return [x0 + 0.01 * i for i in range(THREAD_STEPS)]  # inputs differ by thread and step

    wants = [[expected(x) if expected is not None else compute(x) for x in inputs(x0)]
             for _, x0, compute, expected in THREAD_JOBS]
    start = threading.Barrier(len(THREAD_JOBS))

    def run(k: int) -> list:
        _, x0, compute, _ = THREAD_JOBS[k]
        start.wait(timeout=60)
        return [i for i, x in enumerate(inputs(x0))
                if not close(compute(x), wants[k][i], rtol=1e-10, atol=1e-12)]

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, in the middle of recordings and sweeps
    try:
        with ThreadPoolExecutor(len(THREAD_JOBS)) as pool:
            results = list(pool.map(run, range(len(THREAD_JOBS)), timeout=300))
    finally:
        sys.setswitchinterval(old)
    assert results == [[]] * len(THREAD_JOBS), {THREAD_JOBS[k][0]: r[:5] for k, r in enumerate(results) if r}


def test_one_vjp_function_called_from_several_threads() -> None:
    x = onp.linspace(-1.0, 1.0, 9)
    f = lambda x: np.sum(np.tanh(x)[:, None] * x[None, :], axis=0) * np.exp(x)  # noqa: E731
    _, pull = vjp(f, x)
    J = jacfwd(f)(x)
    cotangents = [onp.random.default_rng(k).standard_normal(9) for k in range(8)]
    start = threading.Barrier(len(cotangents))

    def run(c: onp.ndarray) -> bool:
        start.wait(timeout=60)
        return all(close(pull(c)[0], c @ J, rtol=1e-12, atol=1e-13) for _ in range(75))

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        with ThreadPoolExecutor(len(cotangents)) as pool:
            assert all(pool.map(run, cotangents, timeout=120))
    finally:
        sys.setswitchinterval(old)


def test_no_grad_and_detect_anomaly_stay_in_their_thread() -> None:
    """One thread holds no_grad and detect_anomaly open while one differentiates plainly and
    two more keep entering and leaving them."""
    holding, finished = threading.Event(), threading.Event()
    xs = onp.linspace(0.5, 1.5, 6)

    def cut(x: Any) -> Any:  # inside no_grad, x * 3 is a constant: d/dx = 3x
        with wengert.no_grad():
            y = x * 3.0
        return x * y

    def holder() -> list:
        wrong = []
        with wengert.no_grad(), wengert.detect_anomaly():
            holding.set()
            while not finished.is_set() and len(wrong) < 5:
                if grad(cut)(2.0) != 6.0:  # a computation started inside no_grad records as usual
                    wrong.append("no_grad")
                try:
                    grad(lambda x: np.sum(np.sqrt(x)))(onp.array([0.0, 1.0]))
                    wrong.append("anomaly not detected")
                except wengert.AnomalyError:
                    pass
        return wrong

    def plain() -> list:
        assert holding.wait(60)
        wrong = []
        try:
            for _ in range(300):
                if grad(lambda x: x * (x * 3.0))(2.0) != 12.0:  # not paused by the other thread
                    wrong.append("paused")
                g = grad(lambda x: np.sum(np.sqrt(x)))(onp.array([0.0, 1.0]))  # no anomaly check here
                if not (g[0] == INF and g[1] == 0.5):
                    wrong.append("sqrt")
        finally:
            finished.set()
        return wrong

    def pausing() -> list:
        assert holding.wait(60)
        wrong = []
        for _ in range(100):
            with wengert.no_grad():
                g = grad(lambda x: np.sum(x ** 3))(xs)
            if not close(g, 3 * xs ** 2):
                wrong.append("pausing")
        return wrong

    def watching() -> list:
        assert holding.wait(60)
        wrong = []
        for _ in range(100):
            with wengert.detect_anomaly():
                g = grad(lambda x: np.sum(np.log(x) * x))(xs)
            if not close(g, onp.log(xs) + 1):
                wrong.append("watching")
        return wrong

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        with warnings.catch_warnings(), ThreadPoolExecutor(4) as pool:  # filters are global: set here
            warnings.simplefilter("ignore", RuntimeWarning)  # sqrt's divide by zero
            futures = [pool.submit(job) for job in (holder, plain, pausing, watching)]
            assert [f.result(timeout=120) for f in futures] == [[], [], [], []]
    finally:
        sys.setswitchinterval(old)


# ============================================================================= re-entrancy
X0 = 0.7


def _in_no_grad(x: Any) -> Any:
    with wengert.no_grad():
        return grad(lambda y: y ** 3)(x)  # the outer trace is paused: a constant


REENTRANT = [  # name, f, hand-derived derivative at X0 (cases cutting a dependence say so in their name)
    ("unrelated inner gradient", lambda x: np.sum(x * grad(lambda z: np.sum(z ** 3))(onp.array([1.0, 2.0]))),
     15.0),
    ("inner gradient as a constant (cut)", lambda x: x * stop_gradient(grad(lambda y: y ** 3)(x)), 3 * X0 ** 2),
    ("inner gradient inside no_grad (cut)", lambda x: x * _in_no_grad(x), 3 * X0 ** 2),
    ("inner gradient differentiated", lambda x: x * grad(lambda y: y ** 3)(x), 9 * X0 ** 2),
    ("inner gradient closes over the outer input", lambda x: grad(lambda y: x * y ** 2)(1.5), 3.0),
    ("inner gradient at the outer input, closing over it", lambda x: x * grad(lambda z: np.sin(z) * x)(x),
     2 * X0 * math.cos(X0) - X0 ** 2 * math.sin(X0)),
    ("inner value_and_grad", lambda x: sum(value_and_grad(lambda y: np.sin(y) * x)(x)),
     math.sin(X0) + X0 * math.cos(X0) + math.cos(X0) - X0 * math.sin(X0)),
    ("inner jacfwd", lambda x: np.sum(jacfwd(lambda y: np.sin(y) * x)(x)), math.cos(X0) - X0 * math.sin(X0)),
    ("inner hessian", lambda x: hessian(lambda y: y ** 4)(x) * x, 36 * X0 ** 2),
    ("inner vjp", lambda x: vjp(lambda y: np.exp(y * x), x)[1](1.0)[0], math.exp(X0 ** 2) * (1 + 2 * X0 ** 2)),
    ("unrelated vjp and jvp inside", lambda x: np.sum(x * vjp(np.exp, onp.array([0.0, 1.0]))[1](onp.ones(2))[0])
     * jvp(np.sin, (onp.array(0.0),), (onp.array(1.0),))[1], 1 + math.e),
]


@pytest.mark.parametrize("name,f,expected", REENTRANT, ids=[c[0] for c in REENTRANT])
def test_gradient_inside_differentiated_function(name: str, f: Callable, expected: float) -> None:
    g = grad(f)(X0)
    assert close(g, expected, rtol=1e-12)
    if "(cut)" not in name:  # finite differences see the whole dependence
        assert close(g, fd_grad(f, X0), rtol=1e-6)
    else:  # ... which the cut really cut
        assert not close(g, fd_grad(f, X0), rtol=1e-3)


def test_gradient_computed_inside_a_custom_primitives_rules() -> None:
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


def test_a_vjp_function_recovers_after_a_rule_raised() -> None:
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


def test_gradcheck_inside_grad() -> None:
    checked = []

    def f(x):
        wengert.gradcheck(lambda t: np.sin(t) * t, x)  # at the plain value of the traced x
        wengert.gradcheck(lambda t: np.sin(t * x), 0.3)  # closing over the traced x
        checked.append(True)
        return np.sin(x)

    assert close(grad(f)(X0), math.cos(X0)) and len(checked) == 1
    xs = onp.array([0.3, 0.5])
    assert close(grad(lambda x: np.sum(f(x)))(xs), onp.cos(xs))


def test_failing_gradcheck_inside_grad_still_fails() -> None:
    def f(x):
        wengert.gradcheck(lambda t: np.sin(t) + stop_gradient(t) ** 2, x)
        return x

    with pytest.raises(wengert.GradcheckError, match="first-order derivative of argument 0"):
        grad(f)(X0)


def test_gradcheck_of_a_function_that_calls_grad() -> None:
    w = onp.array([0.5, -1.0, 2.0])
    wengert.gradcheck(lambda x: grad(lambda y: np.sum(np.sin(y) * x * w))(x), onp.array([0.3, 0.2, -0.4]),
                      order=2)


# ============================================================================= memory growth
def test_no_memory_growth_over_ten_thousand_gradient_calls() -> None:
    x = onp.array([0.3, -1.2, 2.0])
    f = lambda x: np.sum(np.sin(x) * x + np.exp(-x * x)) / 3.0  # noqa: E731
    expected = grad(f)(x)
    for _ in range(200):  # warm every cache
        grad(f)(x)
    gc.collect()
    objects = len(gc.get_objects())
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            last = grad(f)(x)  # a new wrapper every time, as well as a new tape
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert onp.array_equal(last, expected)
    assert grown < 16_384, f"{grown} bytes more after 10,000 calls"  # a leaked 3-float array a call: ~1 MB
    assert len(gc.get_objects()) - objects < 50


@pytest.mark.parametrize("api", ["value_and_grad scalar", "vjp", "jvp", "hessian", "checkpoint"])
def test_no_memory_growth_over_repeated_calls_of_other_apis(api: str) -> None:
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
X5 = onp.linspace(0.1, 1.0, 5)


def _paused(f: Callable, x: Any) -> Any:
    with wengert.no_grad():
        return f(x)


def _raising(f: Callable, x: Any) -> None:
    def failing(x):
        np.sum(f(x))
        raise ValueError("boom")
    with pytest.raises(ValueError, match="boom"):
        grad(failing)(x)


def _with_anomaly(call: Callable) -> Any:
    with wengert.detect_anomaly():
        return call()


def _step(f: Callable, extra: float) -> Callable:
    return lambda s: np.mean(f(s), axis=0) * 0.5 + s * 0.5 + extra


CYCLES = {  # name: uses the API on f, a function whose large intermediate is watched by weak reference
    "grad": lambda f, x: grad(lambda x: np.sum(f(x)))(x),
    "value_and_grad": lambda f, x: value_and_grad(lambda x: np.sum(f(x)))(x),
    "elementwise_grad": lambda f, x: elementwise_grad(f)(x),
    "vjp, then dropped": lambda f, x: vjp(f, x)[1](onp.ones(BIG)),
    "make_vjp, then dropped": lambda f, x: wengert.make_vjp(f)(x)[0](onp.ones(BIG)),
    "jvp": lambda f, x: jvp(f, (x,), (onp.ones(5),)),
    "linearize, then dropped": lambda f, x: wengert.linearize(f, x)[1](onp.ones(5)),
    "jacfwd": lambda f, x: jacfwd(lambda x: np.sum(f(x), axis=0))(x),
    "jacrev": lambda f, x: jacrev(lambda x: np.sum(f(x), axis=0))(x),
    "jacobian": lambda f, x: wengert.jacobian(lambda x: np.sum(f(x), axis=0))(x),
    "hessian": lambda f, x: hessian(lambda x: np.sum(f(x)))(x),
    "hvp": lambda f, x: wengert.hvp(lambda x: np.sum(f(x)))(x, x),
    "grad of grad": lambda f, x: grad(lambda x: np.sum(grad(lambda y: np.sum(f(y)))(x) ** 2))(x),
    "grad of grad, Python floats": lambda f, x: grad(grad(lambda t: t ** 4 + np.sum(f(t))))(1.5),
    "checkpoint": lambda f, x: grad(lambda x: np.sum(wengert.checkpoint(f)(x)))(x),
    "checkpoint, forward over the record": lambda f, x: wengert.jacobian(
        lambda x: np.sum(wengert.checkpoint(f)(x), axis=0))(x),
    "checkpointed_loop": lambda f, x: grad(lambda x: np.sum(wengert.checkpointed_loop(_step(f, 0.0), x, 6,
                                                                                      snapshots=2)))(x),
    "checkpointed_while": lambda f, x: grad(lambda x: np.sum(wengert.checkpointed_while(
        _step(f, 0.25), x, lambda s: s[0] < 1.0, snapshots=2)))(x),
    "custom_vjp": lambda f, x: grad(lambda x: np.sum(_cube(f(x))))(x),
    "custom_vjp, forward": lambda f, x: jacfwd(lambda x: np.sum(_cube(f(x)), axis=0))(x),
    "detect_anomaly": lambda f, x: _with_anomaly(lambda: grad(lambda x: np.sum(f(x)))(x)),
    "no_grad": lambda f, x: grad(lambda x: np.sum(_paused(f, x) * f(x)))(x),
    "error in the function": _raising,
}


def _watched_call(call: Callable) -> tuple:
    refs: list = []

    def f(x):
        big = np.exp(x) * onp.ones(BIG)
        refs.append(weakref.ref(stop_gradient(big)))
        return np.sin(big)
    return refs, call(f, X5)


@pytest.mark.parametrize("name", CYCLES)
def test_tapes_are_freed_by_reference_counting_alone(name: str) -> None:
    """With the cycle collector off, a call's intermediates die with it, and afterwards the
    collector finds nothing to collect."""
    _watched_call(CYCLES[name])  # first-call caches
    gc.collect()
    gc.disable()
    try:
        alive = []
        for _ in range(2):
            refs, result = _watched_call(CYCLES[name])
            assert refs, "the function was not run"
            alive += [k for k, r in enumerate(refs) if r() is not None]
            del result
        found = gc.collect()
    finally:
        gc.enable()
    assert alive == [], f"{len(alive)} large intermediates kept alive by a cycle"
    assert found == 0, f"{found} objects in reference cycles"


def test_a_vjp_function_keeps_its_tape_until_deleted_without_the_collector() -> None:
    refs: list = []

    def f(x):
        big = np.exp(x) * onp.ones(BIG)
        refs.append(weakref.ref(stop_gradient(big)))
        return np.sin(big)

    gc.collect()
    gc.disable()
    try:
        _, pull = vjp(f, X5)
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


def test_compiled_and_python_engines_agree_bitwise() -> None:
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
