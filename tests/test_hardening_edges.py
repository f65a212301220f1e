"""Hardening: non-differentiable points, unusual inputs, threads, re-entrancy and memory.

The conventions at non-differentiable points are read from the table in docs/hardening.md
and checked row by row in both modes, so the documentation and the behaviour cannot drift
apart. Expected gradients are closed forms worked out by hand (or central finite
differences in float64); none is copied from wengert's output.
"""

from __future__ import annotations

import gc
import math
import pathlib
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
from wengert import grad, stop_gradient

DOC = pathlib.Path(__file__).parent.parent / "docs" / "hardening.md"
NAN, INF = float("nan"), float("inf")


def same(a: Any, b: Any, rtol: float = 1e-12) -> None:
    """Equal values, NaNs and infinities included, and equal shapes."""
    assert onp.shape(a) == onp.shape(b), (onp.shape(a), onp.shape(b))
    onp.testing.assert_allclose(onp.asarray(a), onp.asarray(b), rtol=rtol, atol=0, equal_nan=True)


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
    required = {"abs at 0", "maximum tie", "minimum tie", "max, three-way tie", "min, two-way tie",
                "sort with ties", "sqrt at 0", "clip at the lower bound", "clip at the upper bound",
                "relu at 0"}
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


@pytest.mark.parametrize("c", CONVENTIONS, ids=[c.point for c in CONVENTIONS])
def test_convention_in_forward_mode(c: Convention) -> None:
    """The derivative along each coordinate direction t is Re(sum(t * gradient)) in IEEE
    arithmetic: that coordinate of the gradient (along 1 and i for a complex one), except that
    an infinite slope in a coordinate t leaves at 0 gives 0 * inf = nan, as in reverse mode."""
    x = onp.asarray(c.x)
    units = (1.0, 1j) if x.dtype.kind == "c" else (1.0,)
    for idx in onp.ndindex(x.shape):
        for unit in units:
            if x.ndim:
                t = onp.zeros_like(x)
                t[idx] = unit
            else:
                t = type(c.x)(unit)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                _, d = wengert.jvp(c.f, (c.x,), (t,))
            runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
            with onp.errstate(invalid="ignore"):
                expected = onp.real(onp.sum(t * c.gradient))
            same(onp.real(d), expected)
            if not c.warns:
                assert not runtime, [str(w.message) for w in runtime]


def _long_ties() -> tuple:
    """1000 elements, 25 copies of each value, and the gradient a stable sort implies for
    sum(sort(x) * weights): sorted position i feeds the element a stable sort put there."""
    x = onp.random.default_rng(7).permutation(onp.repeat(onp.arange(40.0), 25))
    weights = onp.arange(x.size, dtype=float)
    expected = onp.empty_like(x)
    expected[onp.argsort(x, kind="stable")] = weights
    return x, weights, expected


def test_sort_ties_follow_the_stable_order_in_long_arrays() -> None:
    x, weights, expected = _long_ties()
    same(grad(lambda x: np.sum(np.sort(x) * weights))(x), expected)


def test_sort_ties_follow_the_stable_order_when_asked_for() -> None:
    x, weights, expected = _long_ties()
    same(grad(lambda x: np.sum(np.sort(x, kind="stable") * weights))(x), expected)
    same(grad(lambda x: np.sum(np.sort(x, stable=True) * weights))(x), expected)


# ============================================================================= inputs
# ----------------------------------------------------------------------------- empty arrays
EMPTY_SHAPES = [(0,), (2, 0), (0, 3)]
EMPTY_FUNCTIONS = {
    "sum of squares": lambda x: np.sum(x ** 2),
    "sin": lambda x: np.sum(np.sin(x) * 3.0),
    "prod": lambda x: np.prod(x),
    "max with initial": lambda x: np.max(x, initial=0.0),
    "matmul": lambda x: np.sum(x @ x.T),
    "transpose and flip": lambda x: np.sum(np.flip(np.transpose(x)) * 2.0),
    "concatenate with itself": lambda x: np.sum(np.concatenate([x, x])),
}


@pytest.mark.parametrize("shape", EMPTY_SHAPES, ids=str)
@pytest.mark.parametrize("name", EMPTY_FUNCTIONS)
def test_gradient_of_empty_array(name: str, shape: tuple) -> None:
    x = onp.zeros(shape)
    g = grad(EMPTY_FUNCTIONS[name])(x)
    assert type(g) is onp.ndarray and g.shape == shape and g.dtype == onp.float64
    assert g.flags.writeable


@pytest.mark.parametrize("shape", EMPTY_SHAPES, ids=str)
def test_other_apis_on_empty_arrays(shape: tuple) -> None:
    x = onp.zeros(shape)
    assert wengert.elementwise_grad(np.sin)(x).shape == shape
    assert wengert.jacfwd(lambda x: x * 2.0)(x).shape == shape * 2
    assert wengert.jacrev(lambda x: x * 2.0)(x).shape == shape * 2
    assert wengert.jacobian(np.exp)(x).shape == shape * 2
    assert wengert.hessian(lambda x: np.sum(x ** 3))(x).shape == shape * 2
    assert wengert.vjp(np.sin, x)[1](x)[0].shape == shape
    assert wengert.jvp(np.sin, (x,), (x,))[1].shape == shape
    assert wengert.hvp(lambda x: np.sum(x ** 3))(x, x).shape == shape
    wengert.gradcheck(np.sin, x)  # nothing to compare, and no crash
    wengert.gradcheck(lambda x, y: np.sum(np.sin(x)) + y ** 2, x, 1.5)  # y is still checked
    with pytest.raises(wengert.GradcheckError):  # ... really checked
        wengert.gradcheck(lambda x, y: np.sum(np.sin(x)) + stop_gradient(y) ** 2, x, 1.5)


# ----------------------------------------------------------------------------- 0-d arrays
ZERO_D = [  # name, f, point, hand-derived derivative
    ("square", lambda x: x ** 2, 1.5, lambda v: 2 * v),
    ("sin", np.sin, 0.4, math.cos),
    ("sum", np.sum, 2.0, lambda v: 1.0),
    ("exp times x", lambda x: np.exp(x) * x, 0.3, lambda v: math.exp(v) * (1 + v)),
    ("reshape then index", lambda x: np.reshape(x, (1, 1))[0, 0] ** 3, 1.2, lambda v: 3 * v * v),
    ("empty index", lambda x: x[()] * 4.0, 0.7, lambda v: 4.0),
    ("constant", lambda x: 5.0, 0.7, lambda v: 0.0),
]


@pytest.mark.parametrize("dtype", [onp.float64, onp.float32])
@pytest.mark.parametrize("name,f,v,df", ZERO_D, ids=[c[0] for c in ZERO_D])
def test_gradient_of_0d_array_is_0d_array(name: str, f: Callable, v: float, df: Callable, dtype: Any) -> None:
    x = onp.array(v, dtype=dtype)
    g = grad(f)(x)
    assert type(g) is onp.ndarray and g.ndim == 0 and g.dtype == dtype, (type(g), g)
    assert close(g, df(float(x)), rtol=1e-6 if dtype == onp.float32 else 1e-12)


def test_gradient_of_complex_0d_array() -> None:
    z = onp.array(3 + 4j)
    g = grad(lambda z: np.real(z * np.conj(z)))(z)  # |z|^2 = z conj(z): 2 df/dz = 2 conj(z)
    assert type(g) is onp.ndarray and g.ndim == 0 and g.dtype == onp.complex128
    assert g == 6 - 8j
    assert close(grad(lambda z: np.abs(z) ** 2)(z), 6 - 8j)


# ----------------------------------------------------------------------------- large arrays
def test_gradient_of_ten_million_elements() -> None:
    x = onp.linspace(-3.0, 3.0, 10 ** 7)
    g = grad(lambda x: np.sum(x * x) / 2.0)(x)
    assert g.shape == x.shape and g.dtype == onp.float64
    assert onp.array_equal(g, x)  # 0.5 x + 0.5 x is exact


# ----------------------------------------------------------------------------- NaN and Inf
IEEE_POINTS = [NAN, INF, -INF, 0.5, -2.0]
IEEE = [  # name, f, the derivative written by hand in plain NumPy
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
def test_nan_and_inf_inputs_follow_ieee(name: str, f: Callable, df: Callable) -> None:
    x = onp.array(IEEE_POINTS)
    with onp.errstate(all="ignore"):
        expected = df(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own warnings about inf - inf etc.
        same(wengert.elementwise_grad(f)(x), expected)
        same(wengert.jvp(f, (x,), (onp.ones_like(x),))[1], expected)
        for v, e in zip(IEEE_POINTS, expected):  # the Python float path
            same(grad(f)(v), e)


def test_nan_in_a_reduction_reaches_only_its_own_gradient() -> None:
    x = onp.array([NAN, 1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        same(grad(lambda x: np.sum(x * x))(x), onp.array([NAN, 2.0, 4.0]))
        same(grad(lambda x: np.sum(x))(x), onp.ones(3))


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
        same(onp.ravel(wengert.jvp(f, (x,), (tangent,))[1]), [expected])


PROD_NEAR_ZERO = [  # name, computation, hand-derived value
    ("first order, g * a underflows", lambda: grad(lambda x: np.prod(x) * 1e-30)(onp.array([1e-300, 2.0]))[0],
     2e-30),  # d/dx0 (1e-30 x0 x1) = 1e-30 x1
    ("second order, other terms lost", lambda: grad(grad(lambda y: np.prod(y) + np.sin(y) ** 2))(1e-100),
     2.0),  # (y + sin² y)'' = 2 cos 2y
    ("Hessian, doubled", lambda: wengert.hessian(lambda x: np.prod(x) ** 2)(onp.array([1e-170, 1.5]))[0, 0],
     4.5),  # d²/dx0² (x0 x1)² = 2 x1²
]


@pytest.mark.parametrize("name,compute,expected", PROD_NEAR_ZERO, ids=[c[0] for c in PROD_NEAR_ZERO])
def test_prod_near_zero_is_accurate(name: str, compute: Callable, expected: float) -> None:
    assert close(compute(), expected, rtol=1e-9, atol=0)


def test_prod_at_exact_zeros_and_moderate_values_is_accurate() -> None:
    """The same computations where prod's rule is exact: at zeros and away from them."""
    assert close(grad(lambda x: np.prod(x) * 1e-30)(onp.array([0.5, 2.0]))[0], 2e-30, rtol=1e-12, atol=0)
    assert close(grad(grad(lambda y: np.prod(y) + np.sin(y) ** 2))(0.0), 2.0, rtol=1e-12)
    assert close(grad(grad(lambda y: np.prod(y) + np.sin(y) ** 2))(0.25), 2 * math.cos(0.5), rtol=1e-12)
    assert close(wengert.hessian(lambda x: np.prod(x) ** 2)(onp.array([0.0, 1.5]))[0, 0], 4.5, rtol=1e-12)


def test_fmax_and_fmin_send_the_gradient_to_the_non_nan_argument() -> None:
    x, y = onp.array([2.0, NAN]), onp.array([NAN, 1.0])
    gx, gy = grad(lambda x, y: np.sum(np.fmax(x, y) + 2.0 * np.fmin(x, y)), argnum=(0, 1))(x, y)
    same(gx, onp.array([3.0, 0.0]))
    same(gy, onp.array([0.0, 3.0]))


# ----------------------------------------------------------------------------- wrong input types
def _sq_sum(x: Any) -> Any:
    return np.sum(x ** 2)


APIS = {  # name: a call of that API on one input
    "grad": lambda x: wengert.grad(_sq_sum)(x),
    "value_and_grad": lambda x: wengert.value_and_grad(_sq_sum)(x),
    "elementwise_grad": lambda x: wengert.elementwise_grad(np.square)(x),
    "vjp": lambda x: wengert.vjp(np.square, x),
    "make_vjp": lambda x: wengert.make_vjp(np.square)(x),
    "jvp": lambda x: wengert.jvp(np.square, (x,), (onp.ones(onp.shape(x)),)),
    "make_jvp": lambda x: wengert.make_jvp(np.square)(x),
    "linearize": lambda x: wengert.linearize(np.square, x),
    "jacfwd": lambda x: wengert.jacfwd(np.square)(x),
    "jacrev": lambda x: wengert.jacrev(np.square)(x),
    "jacobian": lambda x: wengert.jacobian(np.square)(x),
    "hessian": lambda x: wengert.hessian(_sq_sum)(x),
    "hvp": lambda x: wengert.hvp(_sq_sum)(x, onp.ones(onp.shape(x))),
    "derivative": lambda x: wengert.derivative(np.square, 2)(x),
}
BAD_INPUTS = {  # name: (value, advice the message must give)
    "int array": (onp.array([1, 2]), "astype(float)"),
    "bool": (True, "argnum"),
    "bool array": (onp.array([True, False]), "astype(float)"),
    "numpy int scalar": (onp.int64(3), "astype(float)"),
    "object array": (onp.array([1.0, 2.0], dtype=object), "argnum"),
    "str": ("1.5", "argnum"),
    "str array": (onp.array(["1.5"]), "argnum"),
    "None": (None, "argnum"),
    "datetime array": (onp.array(["2024-01-01"], dtype="datetime64[D]"), "argnum"),
}


@pytest.mark.parametrize("bad", BAD_INPUTS)
@pytest.mark.parametrize("api", APIS)
def test_non_float_input_is_a_type_error_naming_api_and_argument(api: str, bad: str) -> None:
    value, advice = BAD_INPUTS[bad]
    with pytest.raises(TypeError) as raised:
        APIS[api](value)
    message = str(raised.value)
    assert message.startswith(f"{api}: argument 0 is "), message
    assert advice in message and "floating point" in message, message


ARGNUM_1 = {
    "grad": lambda x: wengert.grad(lambda a, b: np.sum(a * b), argnum=1)(1.0, x),
    "jacfwd": lambda x: wengert.jacfwd(lambda a, b: a * b, argnum=1)(1.0, x),
    "jacrev": lambda x: wengert.jacrev(lambda a, b: a * b, argnum=1)(1.0, x),
    "hessian": lambda x: wengert.hessian(lambda a, b: np.sum(a * b * b), argnum=1)(1.0, x),
    "make_jvp": lambda x: wengert.make_jvp(lambda a, b: a * b, argnum=1)(1.0, x),
    "hvp": lambda x: wengert.hvp(lambda a, b: np.sum(a * b * b), argnum=1)(1.0, x, onp.ones(2)),
}


@pytest.mark.parametrize("api", ARGNUM_1)
def test_type_error_names_the_differentiated_argument(api: str) -> None:
    with pytest.raises(TypeError, match=rf"^{api}: argument 1 is an array of dtype int64"):
        ARGNUM_1[api](onp.array([1, 2]))


ARGNUM_2 = {
    "jacfwd": lambda: wengert.jacfwd(np.sin, argnum=2)(1.0),
    "hessian": lambda: wengert.hessian(np.sin, argnum=2)(1.0),
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
    "hessian": lambda x: wengert.hessian(np.sin)(x),
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


# ----------------------------------------------------------------------------- Python ints
PYTHON_INTS = [  # name, call, expected leaves, expected container type (None: any)
    ("grad", lambda: grad(lambda x: x ** 2)(3), [6.0], float),
    ("grad of the second argument", lambda: grad(lambda x, y: x * y, argnum=1)(2.5, 4), [2.5], float),
    ("both arguments", lambda: grad(lambda x, y: x * y * y, argnum=(0, 1))(2, 3), [9.0, 12.0], tuple),
    ("inside a dict", lambda: grad(lambda d: d["a"] ** 2 * d["b"])({"a": 3, "b": 2.0}), [12.0, 9.0], dict),
    ("inside a list", lambda: grad(lambda l: l[0] * l[1])([2, 5]), [5.0, 2.0], list),
    ("jvp", lambda: wengert.jvp(lambda x: x ** 2, (3,), (1.0,))[1], [6.0], None),
    ("derivative", lambda: wengert.derivative(lambda x: x ** 3, 2)(2), [12.0], float),
    ("hessian", lambda: wengert.hessian(lambda x: x ** 3)(2), [12.0], None),
]


@pytest.mark.parametrize("name,call,expected,kind", PYTHON_INTS, ids=[c[0] for c in PYTHON_INTS])
def test_python_ints_are_promoted_to_float(name: str, call: Callable, expected: list, kind: Any) -> None:
    g = call()
    if kind is not None:
        assert type(g) is kind, type(g)
    leaves = list(g.values()) if isinstance(g, dict) else list(g) if isinstance(g, (list, tuple)) else [g]
    assert len(leaves) == len(expected)
    for leaf, e in zip(leaves, expected):
        assert onp.result_type(leaf) == onp.float64 and float(leaf) == e
        if kind in (dict, list, tuple):
            assert type(leaf) is float


# ----------------------------------------------------------------------------- NumPy scalars
SCALAR_APIS = {  # name: (call, hand-derived value at 1.5)
    "grad": (lambda x: grad(lambda x: x ** 2 * 3.0)(x), 9.0),
    "value_and_grad": (lambda x: wengert.value_and_grad(lambda x: x ** 2 * 3.0)(x)[1], 9.0),
    "derivative": (lambda x: wengert.derivative(lambda x: x ** 3, 2)(x), 9.0),
    "grad of sin": (lambda x: grad(np.sin)(x), math.cos(1.5)),
    "jvp": (lambda x: wengert.jvp(np.sin, (x,), (type(x)(2.0),))[1], 2 * math.cos(1.5)),
}


@pytest.mark.parametrize("dtype", [onp.float64, onp.float32, onp.float16])
@pytest.mark.parametrize("api", SCALAR_APIS)
def test_numpy_scalar_keeps_its_type(api: str, dtype: Any) -> None:
    call, expected = SCALAR_APIS[api]
    g = call(dtype(1.5))
    assert type(g) is dtype, type(g)
    assert close(g, expected, rtol=2e-3 if dtype == onp.float16 else 1e-6)


# ----------------------------------------------------------------------------- read-only arrays
READ_ONLY = {  # name: (computes a gradient-like result from x, the same by hand)
    "sum": (lambda x: grad(np.sum)(x), lambda x: onp.ones_like(x)),
    "sum of squares": (lambda x: grad(lambda x: np.sum(x ** 2))(x), lambda x: 2 * x),
    "elementwise identity": (lambda x: wengert.elementwise_grad(lambda x: x)(x), lambda x: onp.ones_like(x)),
    "vjp of identity": (lambda x: wengert.vjp(lambda x: x, x)[1](x)[0], lambda x: x),
    "jacfwd of identity": (lambda x: wengert.jacfwd(lambda x: x)(x), lambda x: onp.eye(x.size)),
    "jvp of identity": (lambda x: wengert.jvp(lambda x: x, (x,), (x,))[1], lambda x: x),
    "jvp of a slice": (lambda x: wengert.jvp(lambda x: x[1:], (x,), (x,))[1], lambda x: x[1:]),
    "linearize of identity": (lambda x: wengert.linearize(lambda x: x, x)[1](x), lambda x: x),
    "indexing": (lambda x: grad(lambda x: x[2] * 3.0)(x), lambda x: onp.eye(x.size)[2] * 3.0),
}


@pytest.mark.parametrize("name", READ_ONLY)
def test_read_only_input_is_untouched_and_result_writable(name: str) -> None:
    x = onp.arange(1.0, 6.0)
    x.flags.writeable = False
    before = x.copy()
    compute, expected = READ_ONLY[name]
    g = compute(x)
    assert onp.array_equal(x, before) and not x.flags.writeable
    assert close(g, expected(before))
    assert g.flags.writeable and not onp.shares_memory(g, x)
    g[...] = -1.0  # writing into the result leaves the input alone
    assert onp.array_equal(x, before)


def test_read_only_0d_array() -> None:
    x = onp.array(2.0)
    x.flags.writeable = False
    g = grad(lambda x: x * 3.0)(x)
    assert g.flags.writeable and g == 3.0 and x == 2.0


# ----------------------------------------------------------------------------- memory layouts
_M = onp.arange(1.0, 25.0).reshape(4, 6) / 10
LAYOUTS = {
    "every second element": onp.linspace(0.1, 2.0, 20)[::2],
    "reversed": onp.linspace(0.1, 2.0, 10)[::-1],
    "Fortran order": onp.asfortranarray(_M),
    "transposed view": _M.T,
    "column view": _M[:, 1],
    "strided 2-d view": _M[::2, ::3],
    "broadcast view (zero strides)": onp.broadcast_to(onp.array([0.3, 0.6, 0.9]), (4, 3)),
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_non_contiguous_input(name: str) -> None:
    x = LAYOUTS[name]
    before = x.copy()
    w = onp.arange(1.0, x.size + 1).reshape(x.shape)  # distinct weights tell elements apart
    g = grad(lambda x: np.sum(np.sin(x) * w))(x)
    assert g.shape == x.shape and g.flags.writeable
    assert close(g, onp.cos(before) * w)
    assert onp.array_equal(x, before)
    j = wengert.jacfwd(lambda x: np.sin(x) * w)(x)
    assert close(j.reshape(x.size, x.size), onp.diag((onp.cos(before) * w).ravel()))


@pytest.mark.parametrize("mode", ["r", "r+", "c"])
def test_memmap_input(tmp_path: pathlib.Path, mode: str) -> None:
    path = tmp_path / "x.dat"
    data = onp.linspace(-1.0, 1.0, 12).reshape(3, 4)
    data.tofile(path)
    raw = path.read_bytes()
    x = onp.memmap(path, dtype=onp.float64, mode=mode, shape=(3, 4))
    g = grad(lambda x: np.sum(x ** 3) + np.sum(x[1:] * 2.0))(x)
    expected = 3 * data ** 2
    expected[1:] += 2.0
    assert close(g, expected)
    assert isinstance(g, onp.ndarray) and g.flags.writeable and not onp.shares_memory(g, x)
    g[...] = 0.0
    if mode == "r+":
        x.flush()
    del x
    assert path.read_bytes() == raw


# ----------------------------------------------------------------------------- float32, float16
W3 = onp.linspace(1.0, 2.0, 3)  # a float64 constant: the computation is promoted to float64


def _low(x: Any) -> Any:
    return np.sin(x) * 2.0 + x ** 2  # stays in the input's precision


DTYPE_APIS = {  # name: (call, which dtype the result has: "input" or "float64")
    "grad": (lambda x: grad(lambda x: np.sum(_low(x)))(x), "input"),
    "grad, promoted": (lambda x: grad(lambda x: np.sum(np.exp(x) * W3))(x), "input"),
    "value_and_grad": (lambda x: wengert.value_and_grad(lambda x: np.sum(_low(x)))(x)[1], "input"),
    "elementwise_grad, promoted": (lambda x: wengert.elementwise_grad(lambda x: x * W3)(x), "input"),
    "vjp": (lambda x: wengert.vjp(_low, x)[1](onp.ones_like(x))[0], "input"),
    "make_vjp, promoted": (lambda x: wengert.make_vjp(lambda x: x * W3)(x)[0](onp.ones(3))[0], "input"),
    "jvp": (lambda x: wengert.jvp(_low, (x,), (onp.ones_like(x),))[1], "input"),
    "linearize": (lambda x: wengert.linearize(_low, x)[1](onp.ones_like(x)), "input"),
    "jacfwd": (lambda x: wengert.jacfwd(_low)(x), "input"),
    "jacrev": (lambda x: wengert.jacrev(_low)(x), "input"),
    "hessian": (lambda x: wengert.hessian(lambda x: np.sum(_low(x)))(x), "input"),
    "hvp": (lambda x: wengert.hvp(lambda x: np.sum(_low(x)))(x, onp.ones_like(x)), "input"),
    "checkpoint": (lambda x: grad(lambda x: np.sum(wengert.checkpoint(_low)(x)))(x), "input"),
    "jvp, promoted": (lambda x: wengert.jvp(lambda x: x * W3, (x,), (onp.ones_like(x),))[1], "float64"),
}


@pytest.mark.parametrize("dtype", [onp.float32, onp.float16])
@pytest.mark.parametrize("api", DTYPE_APIS)
def test_low_precision_result_keeps_dtype(api: str, dtype: Any) -> None:
    x = onp.array([0.25, -0.5, 1.0], dtype=dtype)
    call, kind = DTYPE_APIS[api]
    out = call(x)
    assert out.dtype == (dtype if kind == "input" else onp.float64), out.dtype
    assert onp.all(onp.isfinite(out))


@pytest.mark.parametrize("dtype", [onp.float32, onp.float16])
def test_low_precision_gradient_values(dtype: Any) -> None:
    x64 = onp.array([0.25, -0.5, 1.0])
    g = grad(lambda x: np.sum(_low(x)))(x64.astype(dtype))
    tol = 1e-2 if dtype == onp.float16 else 1e-5
    assert close(g, 2 * onp.cos(x64) + 2 * x64, rtol=tol, atol=tol)


# ============================================================================= threads
def _checkpointed(x: Any) -> Any:
    return np.sum(wengert.checkpoint(lambda h: np.sin(h) * h)(x))


@wengert.custom_vjp
def _cube(x: Any) -> Any:
    return x ** 3


_cube.defvjp(lambda x: (x ** 3, x), lambda x, g: (3.0 * x ** 2 * g,))

THREAD_JOBS = [  # name, computation at x, the same derived by hand
    ("grad", lambda x: grad(lambda x: np.sum(np.sin(x) * x))(x), lambda x: onp.cos(x) * x + onp.sin(x)),
    ("value_and_grad", lambda x: wengert.value_and_grad(lambda x: np.sum(np.log1p(x * x)))(x)[1],
     lambda x: 2 * x / (1 + x * x)),
    ("jacfwd", lambda x: wengert.jacfwd(np.tanh)(x), lambda x: onp.diag(1 - onp.tanh(x) ** 2)),
    ("jacrev", lambda x: wengert.jacrev(lambda x: np.exp(x) * 2.0)(x), lambda x: onp.diag(2 * onp.exp(x))),
    ("hessian", lambda x: wengert.hessian(lambda x: np.sum(x ** 4) / 12.0)(x), lambda x: onp.diag(x * x)),
    ("second derivative", lambda x: onp.array([wengert.derivative(lambda t: t ** 5, 2)(float(v)) for v in x]),
     lambda x: 20 * x ** 3),
    ("checkpoint", lambda x: grad(_checkpointed)(x), lambda x: onp.cos(x) * x + onp.sin(x)),
    ("custom_vjp", lambda x: grad(lambda x: np.sum(_cube(x) * x))(x), lambda x: 4 * x ** 3),
]


def test_eight_threads_differentiate_independently() -> None:
    start = threading.Barrier(len(THREAD_JOBS))

    def run(k: int) -> list:
        _, compute, expected = THREAD_JOBS[k]
        start.wait(timeout=60)
        wrong = []
        for i in range(150):
            x = onp.linspace(-1.0, 1.0, 4) * (0.5 + 0.1 * k) + 0.01 * i  # inputs differ by thread and step
            if not onp.allclose(compute(x), expected(x), rtol=1e-10, atol=1e-12):
                wrong.append(i)
        return wrong

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, in the middle of recordings and sweeps
    try:
        with ThreadPoolExecutor(len(THREAD_JOBS)) as pool:
            results = list(pool.map(run, range(len(THREAD_JOBS)), timeout=300))
    finally:
        sys.setswitchinterval(old)
    assert results == [[]] * len(THREAD_JOBS), {THREAD_JOBS[k][0]: r[:5] for k, r in enumerate(results) if r}


def test_no_grad_and_detect_anomaly_stay_in_their_thread() -> None:
    """One thread holds no_grad and detect_anomaly open while the other differentiates."""
    holding, finished = threading.Event(), threading.Event()

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

    def other() -> list:
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

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        with warnings.catch_warnings(), ThreadPoolExecutor(2) as pool:  # filters are global: set here
            warnings.simplefilter("ignore", RuntimeWarning)  # sqrt's divide by zero
            a, b = pool.submit(holder), pool.submit(other)
            assert a.result(timeout=120) == [] and b.result(timeout=120) == []
    finally:
        sys.setswitchinterval(old)


# ============================================================================= re-entrancy
X0 = 0.7
REENTRANT = [  # name, f, hand-derived derivative at X0 (cases cutting a dependence say so in their name)
    ("inner gradient as a constant (cut)", lambda x: x * stop_gradient(grad(lambda y: y ** 3)(x)), 3 * X0 ** 2),
    ("inner gradient differentiated", lambda x: x * grad(lambda y: y ** 3)(x), 9 * X0 ** 2),
    ("inner gradient closes over the outer input", lambda x: grad(lambda y: x * y ** 2)(1.5), 3.0),
    ("inner value_and_grad", lambda x: sum(wengert.value_and_grad(lambda y: np.sin(y) * x)(x)),
     math.sin(X0) + X0 * math.cos(X0) + math.cos(X0) - X0 * math.sin(X0)),
    ("inner jacfwd", lambda x: np.sum(wengert.jacfwd(lambda y: np.sin(y) * x)(x)),
     math.cos(X0) - X0 * math.sin(X0)),
    ("inner hessian", lambda x: wengert.hessian(lambda y: y ** 4)(x) * x, 36 * X0 ** 2),
    ("inner vjp", lambda x: wengert.vjp(lambda y: np.exp(y * x), x)[1](1.0)[0],
     math.exp(X0 ** 2) * (1 + 2 * X0 ** 2)),
    ("inner gradient inside no_grad (cut)", lambda x: x * _in_no_grad(x), 3 * X0 ** 2),
]


def _in_no_grad(x: Any) -> Any:
    with wengert.no_grad():
        return grad(lambda y: y ** 3)(x)  # the outer trace is paused: a constant


@pytest.mark.parametrize("name,f,expected", REENTRANT, ids=[c[0] for c in REENTRANT])
def test_gradient_inside_differentiated_function(name: str, f: Callable, expected: float) -> None:
    g = grad(f)(X0)
    assert close(g, expected, rtol=1e-12)
    if "(cut)" not in name:  # finite differences see the whole dependence
        assert close(g, fd_grad(f, X0), rtol=1e-6)
    else:  # ... which the cut really cut
        assert not close(g, fd_grad(f, X0), rtol=1e-3)


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


# ============================================================================= memory
def test_no_memory_growth_over_ten_thousand_gradient_calls() -> None:
    x = onp.linspace(0.1, 1.0, 8)
    f = lambda x: np.sum(np.tanh(x) * x + np.exp(-x))  # noqa: E731
    for _ in range(200):  # warm caches before measuring
        grad(f)(x)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            g = grad(f)(x)
        del g
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 50_000, f"{grown} bytes more after 10,000 calls"  # 5 bytes a call would show


def _with_anomaly(call: Callable) -> Any:
    with wengert.detect_anomaly():
        return call()


def _cut(x: Any) -> Any:
    with wengert.no_grad():
        return x * 3.0


CYCLE_CALLS = {  # name: a call of that API
    "grad": lambda x: grad(lambda x: np.sum(np.sin(x) * x ** 2))(x),
    "value_and_grad": lambda x: wengert.value_and_grad(lambda x: np.sum(np.exp(x)[::-1] * x))(x),
    "elementwise_grad": lambda x: wengert.elementwise_grad(lambda x: np.sin(x) * x)(x),
    "vjp": lambda x: wengert.vjp(lambda x: np.sin(x) * x, x)[1](x),
    "make_vjp": lambda x: wengert.make_vjp(lambda x: np.sin(x) * x)(x)[0](x),
    "jvp": lambda x: wengert.jvp(lambda x: np.sin(x) * x, (x,), (x,)),
    "linearize": lambda x: wengert.linearize(lambda x: np.sin(x) * x, x)[1](x),
    "jacfwd": lambda x: wengert.jacfwd(lambda x: np.sin(x) * x)(x),
    "jacrev": lambda x: wengert.jacrev(lambda x: np.sin(x) * x)(x),
    "jacobian": lambda x: wengert.jacobian(lambda x: np.sin(x) * x)(x),
    "hessian": lambda x: wengert.hessian(lambda x: np.sum(np.sin(x) * x))(x),
    "hvp": lambda x: wengert.hvp(lambda x: np.sum(np.sin(x) * x))(x, x),
    "grad of grad": lambda x: grad(grad(lambda t: t ** 4))(1.5),
    "checkpoint": lambda x: grad(_checkpointed)(x),
    "checkpoint, forward over the record": lambda x: wengert.jacobian(
        lambda x: wengert.checkpoint(lambda h: np.sin(h) * h)(x))(x),
    "custom_vjp": lambda x: grad(lambda x: np.sum(_cube(x)))(x),
    "custom_vjp, forward": lambda x: wengert.jacfwd(_cube)(x),
    "detect_anomaly": lambda x: _with_anomaly(lambda: grad(lambda x: np.sum(np.sin(x) * x))(x)),
    "no_grad": lambda x: grad(lambda x: _cut(x) * x)(1.5),
}


@pytest.mark.parametrize("name", CYCLE_CALLS)
def test_no_reference_cycles_after_the_call(name: str) -> None:
    """Tapes are freed by reference counting alone: the cycle collector finds nothing."""
    x = onp.linspace(0.1, 1.0, 4)
    call = CYCLE_CALLS[name]
    call(x)  # first-call caches
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            result = call(x)
        del result
        found = gc.collect()
    finally:
        gc.enable()
    assert found == 0, f"{found} objects in reference cycles"


KEEPERS = {  # name: runs f (which keeps weak references to its intermediates) under that API
    "grad": lambda f, x: grad(lambda x: np.sum(f(x)))(x),
    "vjp, then dropped": lambda f, x: wengert.vjp(f, x)[1](x),
    "jvp": lambda f, x: wengert.jvp(f, (x,), (x,)),
    "hessian": lambda f, x: wengert.hessian(lambda x: np.sum(f(x)))(x),
    "checkpoint": lambda f, x: grad(lambda x: np.sum(wengert.checkpoint(f)(x)))(x),
    "custom_vjp": lambda f, x: grad(lambda x: np.sum(_cube(f(x))))(x),
}


@pytest.mark.parametrize("name", KEEPERS)
def test_intermediates_die_with_the_call_without_the_cycle_collector(name: str) -> None:
    refs: list = []

    def f(x):
        y = np.sin(x) * 2.0
        z = np.exp(y) + x
        refs.extend(weakref.ref(stop_gradient(v)) for v in (y, z))
        return z * y

    x = onp.linspace(0.1, 1.0, 4)
    gc.collect()
    gc.disable()
    try:
        KEEPERS[name](f, x)
        alive = [r() is not None for r in refs]
    finally:
        gc.enable()
    assert refs and not any(alive), alive
