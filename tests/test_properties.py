"""Property-based tests: random programs, checked against finite differences and autograd.

Hypothesis draws (a) compositions of smooth elementwise functions on random, mutually
broadcastable shapes, (b) random programs whose intermediate values are reused several
times (fan-out), and (c) reductions over random axes and shape changes mixed with
elementwise functions. Every function is applied inside its domain: before each one, its
argument goes through a smooth map onto that domain (positive numbers for ``log``, the
interval (-1, 1) for ``arcsin`` ...), so every program is smooth at every point drawn.

How many examples each test draws: the environment variable ``WENGERT_PROPERTY_EXAMPLES``,
a number, or ``ci`` (30, the default) or ``thorough`` (1000).
"""

from __future__ import annotations

import os
import warnings

import autograd
import autograd.numpy as anp
import numpy as onp
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import wengert
import wengert.numpy as np
from _helpers import close, fd_grad

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=30, **_COMMON)
settings.register_profile("thorough", max_examples=1000, **_COMMON)
_REQUESTED = os.environ.get("WENGERT_PROPERTY_EXAMPLES", "").strip()
if _REQUESTED.isdigit():
    settings.register_profile("requested", max_examples=int(_REQUESTED), **_COMMON)
    _PROFILE = "requested"
else:
    _PROFILE = _REQUESTED or "ci"
settings.load_profile(_PROFILE)
# Also bound to each test, so that another file loading its own profile cannot change ours.
PROFILE = settings.get_profile(_PROFILE)


# ----------------------------------------------------------------------------- domains
# Each maps any real number smoothly into a domain, written for a module ``m`` (wengert.numpy
# or autograd.numpy) so that the same program runs under both.
DOMAINS = {
    "any": lambda m, z: z,
    "bounded": lambda m, z: 2.0 * m.tanh(z / 2.0),        # (-2, 2): keeps exp, sinh ... moderate
    "positive": lambda m, z: m.exp(m.tanh(z)),             # (1/e, e)
    "unit": lambda m, z: 0.9 * m.tanh(z),                  # (-0.9, 0.9)
    "above one": lambda m, z: 1.0 + m.exp(m.tanh(z)),      # (1 + 1/e, 1 + e)
    "tan": lambda m, z: 1.2 * m.tanh(z),                   # inside (-pi/2, pi/2)
}

UNARY = [
    # (name, function of (module, x), domain)
    ("sin", lambda m, x: m.sin(x), "any"),
    ("cos", lambda m, x: m.cos(x), "any"),
    ("tan", lambda m, x: m.tan(x), "tan"),
    ("exp", lambda m, x: m.exp(x), "bounded"),
    ("exp2", lambda m, x: m.exp2(x), "bounded"),
    ("expm1", lambda m, x: m.expm1(x), "bounded"),
    ("log", lambda m, x: m.log(x), "positive"),
    ("log2", lambda m, x: m.log2(x), "positive"),
    ("log10", lambda m, x: m.log10(x), "positive"),
    ("log1p", lambda m, x: m.log1p(x), "positive"),
    ("sqrt", lambda m, x: m.sqrt(x), "positive"),
    ("cbrt", lambda m, x: m.cbrt(x) if m is np else x ** (1.0 / 3.0), "positive"),  # autograd has no cbrt rule
    ("square", lambda m, x: m.square(x), "bounded"),
    ("reciprocal", lambda m, x: m.reciprocal(x), "positive"),
    ("abs", lambda m, x: m.abs(x), "positive"),
    ("negative", lambda m, x: m.negative(x), "any"),
    ("tanh", lambda m, x: m.tanh(x), "any"),
    ("sinh", lambda m, x: m.sinh(x), "bounded"),
    ("cosh", lambda m, x: m.cosh(x), "bounded"),
    ("arctan", lambda m, x: m.arctan(x), "any"),
    ("arcsin", lambda m, x: m.arcsin(x), "unit"),
    ("arccos", lambda m, x: m.arccos(x), "unit"),
    ("arcsinh", lambda m, x: m.arcsinh(x), "any"),
    ("arccosh", lambda m, x: m.arccosh(x), "above one"),
    ("arctanh", lambda m, x: m.arctanh(x), "unit"),
    ("deg2rad", lambda m, x: m.deg2rad(x), "any"),
]

BINARY = [
    # (name, function of (module, x, y), domain of x, domain of y)
    ("add", lambda m, x, y: m.add(x, y), "any", "any"),
    ("subtract", lambda m, x, y: m.subtract(x, y), "any", "any"),
    ("multiply", lambda m, x, y: m.multiply(x, y), "bounded", "bounded"),
    ("divide", lambda m, x, y: m.divide(x, y), "bounded", "positive"),
    ("power", lambda m, x, y: m.power(x, y), "positive", "bounded"),
    ("operator **", lambda m, x, y: x ** y, "positive", "bounded"),
    ("operator +", lambda m, x, y: x + y, "any", "any"),
    ("operator -", lambda m, x, y: x - y, "any", "any"),
    ("operator *", lambda m, x, y: x * y, "bounded", "bounded"),
    ("operator /", lambda m, x, y: x / y, "bounded", "positive"),
    ("hypot", lambda m, x, y: m.hypot(x, y), "any", "positive"),
    ("arctan2", lambda m, x, y: m.arctan2(x, y), "any", "positive"),
    ("logaddexp", lambda m, x, y: m.logaddexp(x, y), "any", "any"),
    ("logaddexp2", lambda m, x, y: m.logaddexp2(x, y), "any", "any"),
]

# Smooth reductions that a program may apply to an intermediate value; their results
# broadcast against the other values when used again. (No max: the values drawn often tie.
# No prod: autograd's rule divides by the elements, and zeros are drawn often.)
REDUCING = [
    ("sum", lambda m, x: m.sum(x)),
    ("mean", lambda m, x: m.mean(x)),
    ("sum over the last axis, kept", lambda m, x: m.sum(x, axis=-1, keepdims=True) if m.ndim(x) else x),
    ("sum of squares over the first axis, kept", lambda m, x: m.sum(x * x, axis=0, keepdims=True) if m.ndim(x) else x),
    ("var over the last axis, kept", lambda m, x: m.var(x, axis=-1, keepdims=True) if m.ndim(x) else x),
    ("log-sum-exp", lambda m, x: m.log(m.sum(m.exp(2.0 * m.tanh(x / 2.0))))),
]

# Strictly increasing functions: they keep the elements of an array distinct, so that a
# max or min applied after them has no ties.
MONOTONE = [u for u in UNARY if u[0] in ("exp", "tanh", "arctan", "arcsinh", "sinh", "cbrt", "log1p")]


def unary(m, k, z):
    name, f, domain = UNARY[k]
    return f(m, DOMAINS[domain](m, z))


def binary(m, k, a, b):
    name, f, da, db = BINARY[k]
    return f(m, DOMAINS[da](m, a), DOMAINS[db](m, b))


# ----------------------------------------------------------------------------- strategies
ELEMENTS = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False, width=64)


def arrays(shape):
    return hnp.arrays(onp.float64, shape, elements=ELEMENTS)


STEP = st.one_of(
    st.tuples(st.just("unary"), st.integers(0, len(UNARY) - 1), st.just(0)),
    # the other operand: 0 the first input, 1 the second input, 2 the running value itself
    st.tuples(st.just("binary"), st.integers(0, len(BINARY) - 1), st.integers(0, 2)),
)


# ----------------------------------------------------------------------------- (a) compositions
def _compose(steps):
    def f(x, y):
        z = x
        for kind, k, other in steps:
            if kind == "unary":
                z = unary(np, k, z)
            else:
                z = binary(np, k, z, (x, y, z)[other])
        return z + 0.0 * y  # y always reaches the output's shape
    return f


@PROFILE
@given(data=st.data(), shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       steps=st.lists(STEP, min_size=1, max_size=5))
def test_random_elementwise_compositions_match_finite_differences(data, shapes, steps):
    sx, sy = shapes.input_shapes
    x, y = data.draw(arrays(sx), label="x"), data.draw(arrays(sy), label="y")
    f = _compose(steps)
    out = f(x, y)
    assert onp.all(onp.isfinite(out)) and onp.shape(out) == shapes.result_shape
    wengert.gradcheck(f, x, y, order=1)


@pytest.mark.parametrize("k", range(len(UNARY)), ids=[u[0] for u in UNARY])
@PROFILE
@given(x=arrays(hnp.array_shapes(min_dims=0, max_dims=2, max_side=4)))
def test_every_unary_primitive_matches_finite_differences(k, x):
    wengert.gradcheck(lambda x: unary(np, k, x), x, order=1)


@pytest.mark.parametrize("k", range(len(BINARY)), ids=[b[0] for b in BINARY])
@PROFILE
@given(data=st.data(), shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
def test_every_binary_primitive_with_broadcasting_matches_finite_differences(k, data, shapes):
    sx, sy = shapes.input_shapes
    x, y = data.draw(arrays(sx), label="x"), data.draw(arrays(sy), label="y")
    wengert.gradcheck(lambda x, y: binary(np, k, x, y), x, y, order=1)


# ----------------------------------------------------------------------------- (b) fan-out programs
@st.composite
def programs(draw):
    """A random DAG: each operation takes its operands from every value computed so far (the
    two inputs included), so values are reused; the output sums several of them."""
    n_ops = draw(st.integers(2, 8))
    ops = []
    for i in range(n_ops):
        pool = 2 + i
        kind = draw(st.sampled_from(["unary", "binary", "binary", "reduce"]))
        if kind == "unary":
            ops.append(("unary", draw(st.integers(0, len(UNARY) - 1)), draw(st.integers(0, pool - 1)), None))
        elif kind == "reduce":
            ops.append(("reduce", draw(st.integers(0, len(REDUCING) - 1)), draw(st.integers(0, pool - 1)), None))
        else:
            ops.append(("binary", draw(st.integers(0, len(BINARY) - 1)), draw(st.integers(0, pool - 1)),
                        draw(st.integers(0, pool - 1))))
    total = 2 + n_ops
    # the last value, plus a few others drawn with repetition, with weights
    weighted = st.tuples(st.integers(0, total - 1), st.sampled_from([1.0, -0.5, 2.0]))
    outputs = [(total - 1, 1.0)] + draw(st.lists(weighted, min_size=1, max_size=4))
    return ops, outputs


def _run_program(m, program, x, y):
    ops, outputs = program
    pool = [x, y]
    for kind, k, a, b in ops:
        if kind == "unary":
            pool.append(unary(m, k, pool[a]))
        elif kind == "reduce":
            pool.append(REDUCING[k][1](m, pool[a]))
        else:
            pool.append(binary(m, k, pool[a], pool[b]))
    total = 0.0
    for i, w in outputs:
        total = total + w * m.sum(pool[i])
    return total


@PROFILE
@given(data=st.data(), program=programs(), floats=st.booleans(),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=2, max_side=3))
def test_random_programs_with_fan_out_match_finite_differences_and_autograd(data, program, floats, shapes):
    if floats:  # Python floats: the scalar fast path of the engine
        x, y = data.draw(ELEMENTS, label="x"), data.draw(ELEMENTS, label="y")
    else:
        sx, sy = shapes.input_shapes
        x, y = data.draw(arrays(sx), label="x"), data.draw(arrays(sy), label="y")
    f = lambda x, y: _run_program(np, program, x, y)  # noqa: E731
    af = lambda x, y: _run_program(anp, program, x, y)  # noqa: E731
    value, (gx, gy) = wengert.value_and_grad(f, argnum=(0, 1))(x, y)
    assert onp.isfinite(value)
    assert value == pytest.approx(af(x, y), rel=1e-12, abs=1e-12)
    assert onp.shape(gx) == onp.shape(x) and onp.shape(gy) == onp.shape(y)
    if floats:
        assert type(gx) is float and type(gy) is float
    # an independent implementation of reverse mode, running the same program
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # autograd: "Output seems independent of input"
        ax, ay = autograd.grad(af, 0)(x, y), autograd.grad(af, 1)(x, y)
    assert close(gx, ax, rtol=1e-9, atol=1e-11)
    assert close(gy, ay, rtol=1e-9, atol=1e-11)
    # and central finite differences
    assert close(gx, fd_grad(lambda z: f(z, y), x), rtol=1e-5, atol=1e-6)
    assert close(gy, fd_grad(lambda z: f(x, z), y), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- (c) reductions and shapes
REDUCTIONS = ["sum", "mean", "max", "min", "prod", "var"]


@st.composite
def axes_for(draw, ndim):
    """None, an int (maybe negative), or a tuple of distinct axes."""
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    return tuple(draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)))


@st.composite
def reshape_to(draw, shape):
    """A random shape with the same number of elements."""
    n = int(onp.prod(shape))
    factors, rest = [], n
    for p in (2, 3, 5, 7):
        while rest % p == 0:
            factors.append(p)
            rest //= p
    factors = draw(st.permutations(factors)) if factors else []
    dims, cut = [], draw(st.integers(1, 3))
    for i, f in enumerate(factors):
        if dims and i % cut:
            dims[-1] *= f
        else:
            dims.append(f)
    if draw(st.booleans()):
        dims.insert(draw(st.integers(0, len(dims))), 1)
    if dims and draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    return tuple(dims) if dims else ()


@PROFILE
@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_random_reductions_and_shape_changes_match_finite_differences(data, shape):
    x = data.draw(hnp.arrays(onp.float64, shape, elements=ELEMENTS, unique=True), label="x")
    before = data.draw(st.sampled_from(range(len(MONOTONE))), label="monotone")
    reduction = data.draw(st.sampled_from(REDUCTIONS), label="reduction")
    axis = data.draw(axes_for(len(shape)), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    if reduction in ("max", "min"):
        flat = onp.sort(x.ravel())
        assume(flat.size < 2 or onp.min(onp.diff(flat)) > 1e-3)  # no ties, not even near ones
    reduced_shape = onp.shape(getattr(onp, reduction)(onp.ones(shape), axis=axis, keepdims=keepdims))
    new_shape = data.draw(reshape_to(reduced_shape), label="reshape")
    after_ndim = len(onp.empty(reduced_shape).reshape(new_shape).shape)
    perm = data.draw(st.permutations(range(after_ndim)), label="transpose")
    after = data.draw(st.integers(0, len(UNARY) - 1), label="elementwise")
    last = data.draw(st.sampled_from(["none", "flip", "cumsum", "index"]), label="then")

    def f(x):
        _, mono, domain = MONOTONE[before]
        z = mono(np, DOMAINS[domain](np, x))
        z = getattr(np, reduction)(z, axis=axis, keepdims=keepdims)
        z = np.transpose(np.reshape(z, new_shape), perm)
        if np.ndim(z) and last == "flip":
            z = np.flip(z, 0)
        elif np.ndim(z) and last == "cumsum":
            z = np.cumsum(z, axis=-1)
        elif np.ndim(z) and last == "index":  # repeated indices: cotangents add up
            z = z[[0, -1, 0]]
        return unary(np, after, z)

    out = f(x)
    assert onp.all(onp.isfinite(out))
    wengert.gradcheck(f, x, order=1)
