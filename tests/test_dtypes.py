"""Dtypes through the sweep: low precision stays low, mixed precision promotes as NumPy does,
integers and booleans carry no gradient, and what becomes of integer inputs.

* float32 and float16 arguments of every elementwise primitive (one and two arguments) and
  of the main reductions: the value has NumPy's dtype, and the gradient (reverse mode), the
  gradient of the gradient, and the output tangent (forward mode) keep the argument's dtype;
  their values agree with the float64 computation to the precision of the dtype.
* Mixed dtypes: the value promotes as NumPy promotes (NEP 50: a Python float does not widen a
  float32 array, a NumPy float64 scalar does); each argument's gradient comes back in its own
  dtype.
* Comparisons, ``astype(int)``, ``floor_divide``, ``sign``, ``round`` and index arithmetic on
  ``argmax`` give values that carry no gradient, in both modes.
* complex64 stays complex64 (and its modulus float32).
* Python ints are promoted to float; NumPy integer scalars and arrays and bools are refused
  with an error that says how to convert them (README.md, docs/hardening.md).

The samplers of each function's domain are those of tests/test_rules.py.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as onp
import pytest

import test_rules as T
import wengert
import wengert.numpy as wnp
from _helpers import fd_grad
from wengert.numpy import _vjps

R = onp.random.default_rng(7)
LOW = [onp.float32, onp.float16]
TOL = {onp.float32: 2e-3, onp.float16: 3e-2}  # relative agreement with float64 (after rounding the input)


def away(*shape: int) -> Any:
    return T.between(0.3, 2.0, *shape) * R.choice([-1, 1], shape)


# ----------------------------------------------------------------------------- the functions
UNARY = dict(T.UNARY)  # function: sampler
BINARY = {**T.BINARY, onp.copysign: (away, away)}
SPECIAL = {  # elementwise primitives with an argument that is not differentiated: f(x) of one array
    onp.ldexp: lambda x: wnp.ldexp(x, onp.array([1, -2, 0])),
    onp.nextafter: lambda x: wnp.nextafter(x, onp.inf),
    onp.heaviside: lambda h: wnp.heaviside(onp.array([-1.0, 0.0, 2.0], wengert.stop_gradient(h).dtype), h),
}
REDUCTIONS = [
    ("sum", lambda x: wnp.sum(x, axis=0)), ("mean", lambda x: wnp.mean(x, axis=1)), ("prod", lambda x: wnp.prod(x)),
    ("var", lambda x: wnp.var(x, axis=0)), ("std", lambda x: wnp.std(x, axis=1, ddof=1)),
    ("max", lambda x: wnp.max(x, axis=1)), ("min", lambda x: wnp.min(x)), ("amax", lambda x: wnp.amax(x)),
    ("cumsum", lambda x: wnp.cumsum(x, axis=1)), ("matmul", lambda x: x @ x.T),
    ("einsum", lambda x: wnp.einsum("ij->j", x)),
    ("norm", lambda x: wnp.linalg.norm(x)), ("sum-keepdims", lambda x: wnp.sum(x, axis=1, keepdims=True) * x),
]


def _elementwise() -> list:
    """(id, function of arrays, sampler per argument) for every elementwise case."""
    out = [(f.__name__, getattr(wnp, f.__name__), (s,)) for f, s in UNARY.items()]
    out += [(f.__name__, getattr(wnp, f.__name__), samplers) for f, samplers in BINARY.items()]
    out += [(f.__name__, g, (away,)) for f, g in SPECIAL.items()]
    out += [(name, f, (lambda *s: T.between(0.5, 1.5, *s),) if name == "prod" else (T.real,))
            for name, f in REDUCTIONS]
    return out


ELEMENTWISE = _elementwise()


def _args(samplers: tuple, shape: tuple, dtype: Any) -> tuple:
    return tuple(onp.asarray(s(*shape)).astype(dtype) for s in samplers)


def _shape_of(name: str) -> tuple:
    return (2, 3) if name in dict(REDUCTIONS) else (3,)


def _weights(shape: tuple) -> Any:
    return onp.cos(1.0 + onp.arange(int(onp.prod(shape)))).reshape(shape)


def _loss(f: Callable) -> Callable:
    """sum(w * f(*args)) with float64 weights cast to the output's dtype (so they widen nothing)."""
    def loss(*args: Any) -> Any:
        out = f(*args)
        v = wengert.stop_gradient(out)
        return wnp.sum(out * _weights(onp.shape(v)).astype(onp.result_type(v)))
    return loss


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name, f, samplers", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_low_precision_keeps_its_dtype_in_both_modes(name: str, f: Callable, samplers: tuple, dtype: Any) -> None:
    args = _args(samplers, _shape_of(name), dtype)
    argnum = tuple(range(len(args)))
    with onp.errstate(all="ignore"):  # float16 may overflow in NumPy's value too; only dtypes matter there
        expected = onp.result_type(f(*args))
        value, grads = wengert.value_and_grad(_loss(f), argnum=argnum)(*args)
        out, tangent = wengert.jvp(f, args, tuple(onp.ones_like(a) for a in args))
        second = wengert.grad(lambda *xs: wnp.sum(wengert.grad(_loss(f), argnum=0)(*xs)), argnum=argnum)(*args)
    assert onp.result_type(out) == expected == (onp.float64 if name == "float_power" else dtype)  # NumPy's choice
    assert onp.result_type(tangent) == expected, "forward mode: the output tangent"
    for a, g, h in zip(args, grads, second):
        assert g.dtype == a.dtype, "reverse mode: the gradient"
        assert h.dtype == a.dtype, "reverse over reverse: the gradient of the gradient"
    # the low-precision gradient is the float64 one, to the dtype's precision
    wide = tuple(a.astype(onp.float64) for a in args)
    exact = wengert.grad(_loss(f), argnum=argnum)(*wide)
    for g, e in zip(grads, exact):
        onp.testing.assert_allclose(g.astype(onp.float64), e, rtol=TOL[dtype], atol=TOL[dtype] * max(1, abs(e).max()))


def test_every_elementwise_primitive_is_checked_in_low_precision() -> None:
    ufuncs = [f for f in _vjps.VJPS if isinstance(f, onp.ufunc)]
    checked = {f for f in ufuncs if f in UNARY or f in BINARY or f in SPECIAL} | {onp.matmul}  # with the reductions
    missing = [f.__name__ for f in ufuncs if f not in checked]
    assert not missing, f"elementwise primitives without a float32/float16 check: {missing}"


# ----------------------------------------------------------------------------- mixed dtypes
MIXED = [  # two arguments of these dtypes; None: a Python float or complex
    (onp.float32, onp.float64), (onp.float16, onp.float32), (onp.float16, onp.float64), (onp.float32, None),
    (onp.float16, None), (onp.complex64, onp.float32), (onp.complex64, onp.float64), (onp.float32, onp.complex128),
    (onp.complex64, onp.complex128), (onp.complex64, None),
]
OPS = [("multiply", lambda x, y: x * y), ("add-broadcast", lambda x, y: wnp.reshape(x, (3, 1)) + y),
       ("divide", lambda x, y: x / (y + 2.0)), ("where", lambda x, y: wnp.where(onp.array([True, False, True]), x, y)),
       ("matmul", lambda x, y: wnp.reshape(x, (3, 1)) @ wnp.reshape(wnp.broadcast_to(y, (3,)), (1, 3))),
    ("stack", lambda x, y: wnp.stack([x, x * y]))]


def _sample(dtype: Any, shape: tuple = (3,)) -> Any:
    if dtype is None:
        return 0.75
    x = R.uniform(0.5, 1.5, shape)
    if onp.dtype(dtype).kind == "c":
        x = x + 1j * R.uniform(-0.5, 0.5, shape)
    return x.astype(dtype)


@pytest.mark.parametrize("op, f", OPS, ids=[o[0] for o in OPS])
@pytest.mark.parametrize("dx, dy", MIXED, ids=[f"{getattr(a, '__name__', 'py')}-{getattr(b, '__name__', 'py')}"
                                                for a, b in MIXED])
def test_mixed_dtypes_promote_as_numpy_does(op: str, f: Callable, dx: Any, dy: Any) -> None:
    x, y = _sample(dx), _sample(dy)
    if dy is None and onp.dtype(dx).kind == "c":
        y = 0.75 - 0.25j
    expected = onp.result_type(f(onp.asarray(x), y) if op not in ("where",) else onp.where([True, False, True], x, y))
    value, grads = wengert.vjp(f, x, y)
    assert onp.result_type(value) == expected
    u = _weights(onp.shape(value)).astype(expected)
    if expected.kind == "c":
        u = u * (1 - 0.5j)
    gx, gy = grads(u)
    assert onp.result_type(gx) == onp.result_type(x)
    assert type(gy) is type(y) if dy is None else gy.dtype == y.dtype
    # the same numbers as in double precision (the real part for a real argument)
    wide = lambda a: a if a is None or isinstance(a, (float, complex)) else a.astype(onp.result_type(a, onp.float64))  # noqa: E731
    ex, ey = wengert.vjp(f, wide(x), wide(y))[1](u.astype(onp.result_type(u, onp.float64)))
    tol = 3e-2 if onp.float16 in (dx, dy) else 2e-5
    onp.testing.assert_allclose(onp.asarray(gx, dtype=complex), onp.asarray(ex, dtype=complex), rtol=tol, atol=tol)
    onp.testing.assert_allclose(onp.asarray(gy, dtype=complex), onp.asarray(ey, dtype=complex), rtol=tol, atol=tol)


def test_numpy_float64_scalar_widens_a_float32_array_and_a_python_float_does_not() -> None:
    """NEP 50, which wengert follows because it calls NumPy: only the value's dtype changes, the
    gradient stays in the argument's."""
    x = onp.ones(3, onp.float32)
    v1, g1 = wengert.value_and_grad(lambda x: wnp.sum(x * 2.0))(x)
    v2, g2 = wengert.value_and_grad(lambda x: wnp.sum(x * onp.float64(2.0)))(x)
    assert onp.result_type(v1) == onp.float32 and onp.result_type(v2) == onp.float64
    assert g1.dtype == g2.dtype == onp.float32
    onp.testing.assert_array_equal(g1, g2)


SEQUENCES = [  # functions that build arrays from their arguments: NumPy's result dtype, Python numbers weak
    ("linspace-from-0", lambda x: onp.linspace(0, x, 4)),
    ("linspace-to-5", lambda x: onp.linspace(x, 5, 4, endpoint=False)),
    ("linspace-step", lambda x: onp.linspace(x, 5, 4, retstep=True)[1]),
    ("linspace-dtype", lambda x: onp.linspace(x, 5, 4, dtype=onp.float64)),
    ("logspace", lambda x: onp.logspace(0, x, 3)),
    ("geomspace", lambda x: onp.geomspace(x, 5, 3)),
    ("polyval-float64-coefficients", lambda x: onp.polyval([1.0, 2.0], x)),
    ("polyval-traced-coefficients", lambda x: onp.polyval(x, onp.array([0.5, 2.0], onp.float32))),
]


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
@pytest.mark.parametrize("name,f", SEQUENCES, ids=[c[0] for c in SEQUENCES])
def test_built_sequences_have_numpys_dtype(name: str, f: Callable, dtype: Any) -> None:
    x = onp.array([0.5, 1.5, 2.0], dtype)
    out = wengert.vjp(f, x)[0]
    assert out.dtype == f(x).dtype
    onp.testing.assert_allclose(out, f(x), rtol=1e-6)


# ----------------------------------------------------------------------------- integers and booleans
X = onp.array([0.3, -1.7, 2.6, 1.1, -0.4])
INTEGER_PATHS = [  # (id, f, expected gradient of sum(f(x)) at X, computed by hand)
    ("comparison-mask", lambda x: (x > 0) * x, (X > 0) * 1.0),
    ("astype-int", lambda x: x.astype(int) * 1.0 + x, onp.ones(5)),
    ("astype-bool", lambda x: wnp.where(x.astype(bool), x ** 2, 0.0), 2 * X),
    ("astype-int-only", lambda x: wnp.astype(x, onp.int64) * 1.0, onp.zeros(5)),
    ("floor_divide", lambda x: wnp.floor_divide(x, 0.7) * x, onp.floor_divide(X, 0.7)),
    ("sign", lambda x: wnp.sign(x) * x, onp.sign(X)),
    ("round-floor", lambda x: wnp.round(x) + wnp.floor(x) * x, onp.floor(X)),
    ("argmax-arithmetic", lambda x: x[(wnp.argmax(x) + 1) % 5] * x[wnp.argmax(x)],
     onp.array([0.0, 0.0, X[3], X[2], 0.0])),
    ("nonzero-count", lambda x: x * wnp.count_nonzero(x > 0), onp.full(5, 3.0)),
]


@pytest.mark.parametrize("name, f, expected", INTEGER_PATHS, ids=[p[0] for p in INTEGER_PATHS])
def test_integer_and_bool_intermediates_carry_no_gradient(name: str, f: Callable, expected: Any) -> None:
    def checked(x: Any) -> Any:
        for plain in (x > 0, x.astype(int), wnp.argmax(x), wnp.floor_divide(x, 0.7) if name == "floor_divide" else 0):
            assert not isinstance(plain, wengert.Box) or onp.result_type(wengert.stop_gradient(plain)).kind == "f"
        return wnp.sum(f(x))
    onp.testing.assert_array_equal(wengert.grad(checked)(X), expected)
    _, tangent = wengert.jvp(lambda x: wnp.sum(f(x)), (X,), (onp.ones(5),))  # forward mode: the same slope
    assert float(tangent) == pytest.approx(expected.sum())


def test_integer_results_are_constants_in_forward_mode() -> None:
    out, tangent = wengert.jvp(lambda x: x.astype(int), (X,), (onp.ones(5),))
    onp.testing.assert_array_equal(out, X.astype(int))
    onp.testing.assert_array_equal(tangent, 0.0)
    assert not isinstance(wengert.jvp(lambda x: x > 0, (X,), (onp.ones(5),))[0], wengert.Box)


# ----------------------------------------------------------------------------- complex64
C64 = [("sin", wnp.sin), ("abs", wnp.abs), ("conj-times", lambda z: wnp.conj(z) * z), ("real", wnp.real),
       ("angle", wnp.angle), ("exp-of-sum", lambda z: wnp.exp(wnp.sum(z) / 3)),
       ("matmul", lambda z: wnp.outer(z, z) @ z),
       ("power", lambda z: z ** 2.5), ("var", wnp.var), ("fft", wnp.fft.fft)]


@pytest.mark.parametrize("name, f", C64, ids=[c[0] for c in C64])
def test_complex64_stays_complex64(name: str, f: Callable) -> None:
    z = (R.uniform(0.5, 1.5, 3) + 1j * R.uniform(-0.5, 0.5, 3)).astype(onp.complex64)
    expected = onp.result_type(f(z) if name not in ("abs", "real", "angle", "var") else onp.abs(z))
    out, pull = wengert.vjp(f, z)
    assert onp.result_type(out) == expected  # complex64, or float32 for the real-valued ones
    cot = onp.ones(onp.shape(out), dtype=expected)
    assert pull(cot)[0].dtype == onp.complex64
    _, tangent = wengert.jvp(f, (z,), ((1 + 1j) * onp.ones(3, onp.complex64),))
    assert onp.result_type(tangent) == expected
    g = wengert.grad(lambda z: wnp.sum(wnp.real(f(z) * 0.5)))(z)
    assert g.dtype == onp.complex64
    wengert.gradcheck(f, z, order=2)  # complex64 tolerances


# ----------------------------------------------------------------------------- integer and bool inputs
def test_python_ints_are_promoted_to_float() -> None:
    """README.md: 'Python ints are promoted'; docs/hardening.md: the gradient is a Python float."""
    g = wengert.grad(lambda x: x * x * 1.5)(3)
    assert g == 9.0 and type(g) is float
    gx, gy = wengert.grad(lambda x, y: wnp.sin(x) * y, argnum=(0, 1))(2, 0.5)
    assert type(gx) is float and type(gy) is float and gx == pytest.approx(0.5 * onp.cos(2.0))
    value, tangent = wengert.jvp(lambda x: x ** 3, (2,), (1.0,))
    assert (value, tangent) == (8.0, 12.0)


@pytest.mark.parametrize("x, kind", [(onp.int64(3), "a NumPy scalar of dtype int64"),
                                     (onp.arange(3), "an array of dtype int64"),
                                     (onp.uint8(3), "a NumPy scalar of dtype uint8"), (True, "a bool"),
                                     (onp.array([True]), "an array of dtype bool")])
def test_numpy_integers_and_bools_are_refused_with_the_fix(x: Any, kind: str) -> None:
    """NumPy integer scalars are not promoted as Python ints are: like arrays of an integer
    dtype, they are refused (named as scalars) with the conversion to make."""
    hint = r" Convert it with x.astype\(float\)\." if "dtype" in kind else ""
    for api, call in (("grad", lambda: wengert.grad(lambda x: wnp.sum(x * 1.0))(x)),
                      ("jvp", lambda: wengert.jvp(lambda x: x * 1.0, (x,), (onp.ones(onp.shape(x)),)))):
        with pytest.raises(TypeError, match=rf"^{api}: argument 0 is {kind}; wengert differentiates .*{hint}"):
            call()
    assert wengert.grad(lambda x: wnp.sum(x * 1.0))(onp.asarray(x).astype(float)).dtype == onp.float64


# ----------------------------------------------------------------------------- dtype= arguments
X3 = onp.array([1.3, 2.6, 0.4])
INTEGER_DTYPE_CALLS = {  # computed in integers or booleans: piecewise constant, zero gradient
    "sum": lambda m, x: m.sum(x, dtype=int),
    "sum-positional": lambda m, x: m.sum(x, None, int),
    "method": lambda m, x: x.sum(dtype=int),
    "mean": lambda m, x: m.mean(x, dtype=int),
    "prod": lambda m, x: m.prod(x, dtype=int),
    "cumsum": lambda m, x: m.sum(m.cumsum(x, dtype=int)),
    "cumsum-positional": lambda m, x: m.sum(m.cumsum(x, 0, int)),
    "nansum": lambda m, x: m.nansum(x, dtype=int),
    "std": lambda m, x: m.std(x, dtype=int),
    "uint8": lambda m, x: m.sum(x * 7, dtype=onp.uint8),
    "bool": lambda m, x: m.sum(x, dtype=bool),
    "trace": lambda m, x: m.trace(m.outer(x, x), dtype=int),
    "ufunc": lambda m, x: m.sum(m.multiply(x, 3.0, dtype=int, casting="unsafe")),
}


@pytest.mark.parametrize("name", INTEGER_DTYPE_CALLS)
def test_integer_dtype_argument_gives_numpys_value_and_zero_gradient(name: str) -> None:
    """NumPy casts the elements to the integer dtype first; the result is piecewise constant,
    so its derivative is zero (central differences agree), in both modes."""
    f = INTEGER_DTYPE_CALLS[name]
    value, g = wengert.value_and_grad(lambda x: f(wnp, x) * 1.0)(X3)
    assert value == f(onp, X3) * 1.0
    assert onp.array_equal(g, onp.zeros(3)) and onp.array_equal(fd_grad(lambda x: f(onp, x) * 1.0, X3), g)
    assert wengert.jvp(lambda x: f(wnp, x) * 1.0, (X3,), (onp.ones(3),))[1] == 0.0


@pytest.mark.parametrize("name, f", [
    ("astype", lambda x: x.astype(object)), ("asarray", lambda x: wnp.asarray(x, dtype=object)),
    ("array", lambda x: wnp.array(x, dtype=object)), ("ufunc", lambda x: wnp.add(x, x, dtype=object)),
    ("sum", lambda x: wnp.sum(x, dtype=object))])
def test_object_dtype_is_refused(name: str, f: Callable) -> None:
    """An object array holds Python numbers whose arithmetic is not recorded: its gradient
    would be a silent zero, so it is refused."""
    with pytest.raises(TypeError, match=r"dtype=object is not supported on traced values"):
        wengert.grad(lambda x: wnp.sum(f(x) * 2))(X3)


F16 = onp.array([0.1, 0.9, 0.35, 0.6], dtype=onp.float16)
KEEPS_DTYPE = {  # functions whose traced result must have NumPy's dtype and type for low precision
    "median": lambda m, x: m.median(x),
    "quantile": lambda m, x: m.quantile(x, 0.3),
    "quantile-list": lambda m, x: m.quantile(x, [0.3, 0.5]),
    "quantile-float64": lambda m, x: m.quantile(x, onp.float64(0.3)),
    "percentile": lambda m, x: m.percentile(x, 30),
    "nanmedian": lambda m, x: m.nanmedian(x),
    "nanpercentile-lower": lambda m, x: m.nanpercentile(x, 30, method="lower"),
    "insert": lambda m, x: m.insert(x, 1, 0.1),
    "frexp": lambda m, x: m.frexp(x)[0],
    "ediff1d": lambda m, x: m.ediff1d(x, to_begin=onp.float64(0.1), to_end=[2.0]),
    "gradient": lambda m, x: m.gradient(x, onp.float64(0.3)),
    "gradient-coordinates": lambda m, x: m.gradient(x, onp.array([0.0, 0.5, 1.5, 1.75])),
    # computed in double precision, as NumPy computes them
    "cov": lambda m, x: m.cov(m.reshape(x, (2, 2))),
    "cov-xy": lambda m, x: m.cov(x[:2], x[2:]),
    "cov-weights": lambda m, x: m.cov(m.reshape(x, (2, 2)), aweights=onp.array([1.0, 2.0], x.dtype)),
    "corrcoef": lambda m, x: m.corrcoef(m.reshape(x, (2, 2))),
    "interp": lambda m, x: m.interp(x, onp.array([0.0, 1.0], x.dtype), onp.array([0.0, 3.0], x.dtype)),
    "interp-fp": lambda m, x: m.interp(onp.array([0.1, 0.7], x.dtype), onp.array([0.0, 1.0], x.dtype), x[:2]),
    "bincount": lambda m, x: m.bincount([0, 1, 1, 3], weights=x),
}


@pytest.mark.parametrize("dtype", [onp.float16, onp.float32])
@pytest.mark.parametrize("name", KEEPS_DTYPE)
def test_traced_results_have_numpys_dtype(name: str, dtype: Any) -> None:
    f, x = KEEPS_DTYPE[name], F16.astype(dtype)
    seen = {}

    def traced(x: Any) -> Any:
        seen["value"] = wengert.stop_gradient(f(wnp, x))
        return wnp.sum(f(wnp, x))
    g = wengert.grad(traced)(x)
    plain = f(onp, x)
    assert type(seen["value"]) is type(plain) and onp.result_type(seen["value"]) == onp.result_type(plain)
    assert onp.allclose(seen["value"], plain, rtol=2 * onp.finfo(dtype).eps, atol=0) and g.dtype == dtype


def test_scipy_distributions_compute_in_double_precision_as_scipy() -> None:
    stats = pytest.importorskip("wengert.scipy.stats")
    import scipy.stats
    x = F16.astype(onp.float32)
    seen = {}
    g = wengert.grad(lambda x: wnp.sum(seen.setdefault("v", stats.norm.cdf(x))))(x)
    assert onp.result_type(wengert.stop_gradient(seen["v"])) == scipy.stats.norm.cdf(x).dtype == onp.float64
    assert g.dtype == onp.float32
