"""Property-based tests: random programs, checked against finite differences and autograd.

Hypothesis draws random shapes, values and programs built from the supported primitives:
compositions of elementwise functions on mutually broadcastable shapes, reductions over
random axes followed by shape changes, products with exact zeros and tiny factors,
cumulative sums, chains of reshapes, transposes and indexing, and random DAGs in which values
are used several times (fan-out). ``wengert.gradcheck`` compares reverse and forward mode
with central finite differences in float64, to first order and, for about one example in
four, to second order; the DAGs are also compared with autograd running the same program.

Every function is applied inside its domain: before each one, its argument goes through a
smooth map onto that domain (positive numbers for ``log``, the interval (-1, 1) for
``arcsin`` ...), so every program is smooth at every point drawn, zeros and repeated values
included.

How many examples each test draws: the environment variable ``WENGERT_PROPERTY_EXAMPLES``, a
positive number, or ``ci`` (25, the default) or ``thorough`` (1000). With ``CI`` set the
examples are derandomized. See docs/hardening.md.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable

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

NAMED_EXAMPLES = {"": 25, "ci": 25, "thorough": 1000}


def _examples() -> int:
    raw = os.environ.get("WENGERT_PROPERTY_EXAMPLES", "").strip().lower()
    if raw in NAMED_EXAMPLES:
        return NAMED_EXAMPLES[raw]
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"WENGERT_PROPERTY_EXAMPLES must be a positive whole number of examples per "
                         f"property test, 'ci' or 'thorough', not {raw!r}; unset it for the default (25).")
    return int(raw)


settings.register_profile(
    "wengert-properties",
    max_examples=_examples(),
    deadline=None,  # a second-order gradcheck of a large program can take a while
    derandomize=bool(os.environ.get("CI")),  # the same examples on every CI run
    database=None,  # nothing written into the working tree
    print_blob=True,  # a failure prints the @reproduce_failure line that replays it
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile("wengert-properties")  # applied per test, not loaded globally


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
    # with Python constants: the reflected operators, integer powers, a constant operand
    ("softplus", lambda m, x: m.logaddexp(0.0, x), "any"),
    ("sigmoid", lambda m, x: 1.0 / (1.0 + m.exp(-x)), "any"),
    ("cube", lambda m, x: x ** 3, "bounded"),
    ("1 - x²/2", lambda m, x: 1.0 - x * x / 2.0, "bounded"),
    ("hypot(x, 1)", lambda m, x: m.hypot(x, 1.0), "any"),
]

BINARY = [
    # (name, function of (module, x, y), domain of x, domain of y)
    ("add", lambda m, x, y: m.add(x, y), "any", "any"),
    ("subtract", lambda m, x, y: m.subtract(x, y), "any", "any"),
    ("multiply", lambda m, x, y: m.multiply(x, y), "bounded", "bounded"),
    ("divide", lambda m, x, y: m.divide(x, y), "bounded", "positive"),
    ("power", lambda m, x, y: m.power(x, y), "positive", "bounded"),
    ("float_power", lambda m, x, y: m.float_power(x, y) if m is np else m.power(x, y),  # autograd has no rule
     "positive", "bounded"),
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

# Strictly increasing functions: they keep the elements of an array distinct, so that a
# max or min applied after them has no ties.
MONOTONE = [k for k, u in enumerate(UNARY) if u[0] in ("exp", "tanh", "arctan", "arcsinh", "sinh", "cbrt", "log1p")]


def unary(m: Any, k: int, z: Any) -> Any:
    _, f, domain = UNARY[k]
    return f(m, DOMAINS[domain](m, z))


def binary(m: Any, k: int, a: Any, b: Any) -> Any:
    _, f, da, db = BINARY[k]
    return f(m, DOMAINS[da](m, a), DOMAINS[db](m, b))


# ----------------------------------------------------------------------------- strategies
ELEMENTS = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False, width=64)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)
ORDERS = st.sampled_from((1, 1, 1, 2))  # second order for about one example in four
UNARIES = st.integers(0, len(UNARY) - 1)


def arrays(shape: tuple, unique: bool = False) -> st.SearchStrategy:
    return hnp.arrays(onp.float64, shape, elements=ELEMENTS, unique=unique)


def check(f: Callable, *args: Any, order: int) -> None:
    """The program's values are finite, and its derivatives agree with finite differences."""
    out = f(*args)
    assert all(onp.all(onp.isfinite(onp.asarray(v))) for v in (out if isinstance(out, tuple) else (out,)))
    wengert.gradcheck(f, *args, order=order)


# ----------------------------------------------------------------------------- elementwise
@pytest.mark.parametrize("k", range(len(UNARY)), ids=[u[0] for u in UNARY])
@PROFILE
@given(x=arrays(SHAPES), order=ORDERS)
def test_every_unary_function(k: int, x: onp.ndarray, order: int) -> None:
    check(lambda x: unary(np, k, x), x, order=order)


@pytest.mark.parametrize("k", range(len(BINARY)), ids=[b[0] for b in BINARY])
@PROFILE
@given(data=st.data(), shapes=PAIRS, order=ORDERS)
def test_every_binary_function_with_broadcasting(k: int, data: st.DataObject, shapes: Any, order: int) -> None:
    sx, sy = shapes.input_shapes
    x, y = data.draw(arrays(sx), label="x"), data.draw(arrays(sy), label="y")
    assert onp.shape(binary(np, k, x, y)) == shapes.result_shape
    check(lambda x, y: binary(np, k, x, y), x, y, order=order)


STEP = st.one_of(
    st.tuples(st.just("unary"), UNARIES, st.just(0)),
    # the other operand: 0 the first input, 1 the second input, 2 the running value itself
    st.tuples(st.just("binary"), st.integers(0, len(BINARY) - 1), st.integers(0, 2)),
)


@PROFILE
@given(data=st.data(), shapes=PAIRS, steps=st.lists(STEP, min_size=1, max_size=5), order=ORDERS)
def test_random_elementwise_compositions(data: st.DataObject, shapes: Any, steps: list, order: int) -> None:
    sx, sy = shapes.input_shapes
    x, y = data.draw(arrays(sx), label="x"), data.draw(arrays(sy), label="y")

    def f(x, y):
        z = x
        for kind, k, other in steps:
            if kind == "unary":
                z = unary(np, k, z)
            else:
                z = binary(np, k, z, (x, y, z)[other])
        return z + 0.0 * y  # y always reaches the output's shape
    assert onp.shape(f(x, y)) == shapes.result_shape
    check(f, x, y, order=order)


# ----------------------------------------------------------------------------- reductions
REDUCTIONS: dict[str, Callable] = {  # f(x, axis, keepdims)
    "sum": lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
    "mean": lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims),
    "var": lambda x, axis, keepdims: np.var(x, axis=axis, keepdims=keepdims),
    "max": lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims),
    "min": lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims),
    # factors in (0.8, 1.2): a product of 27 of them stays moderate, which finite differences
    # of a function of it need (test_prod_with_exact_zeros_and_tiny_factors takes raw factors)
    "prod(1+tanh/5)": lambda x, axis, keepdims: np.prod(1.0 + 0.2 * np.tanh(x), axis=axis, keepdims=keepdims),
    "logsumexp": lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)),
    "soft norm": lambda x, axis, keepdims: np.sqrt(1.0 + np.sum(x * x, axis=axis, keepdims=keepdims)),
    "method sum": lambda x, axis, keepdims: x.sum(axis=axis, keepdims=keepdims),
    "add.reduce": lambda x, axis, keepdims: onp.add.reduce(x, axis=axis, keepdims=keepdims),
}


@st.composite
def axes(draw: Callable, ndim: int) -> Any:
    """None, one axis (possibly negative), or a tuple of distinct axes (possibly empty, and
    possibly negative)."""
    kind = draw(st.sampled_from(["none", "int", "tuple"] if ndim else ["none", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    chosen = draw(st.lists(st.integers(0, ndim - 1), max_size=ndim, unique=True)) if ndim else []
    return tuple(a - ndim if draw(st.booleans()) else a for a in chosen)


@st.composite
def reshape_to(draw: Callable, shape: tuple) -> tuple:
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
@given(data=st.data(), shape=SHAPES, reduction=st.sampled_from(sorted(REDUCTIONS)), keepdims=st.booleans(),
       order=ORDERS)
def test_reductions_over_random_axes_then_shape_changes(data: st.DataObject, shape: tuple, reduction: str,
                                                        keepdims: bool, order: int) -> None:
    extreme = reduction in ("max", "min")
    x = data.draw(arrays(shape, unique=extreme), label="x")
    if extreme:  # a strictly increasing function, and no ties, not even near ones: max and min are smooth
        flat = onp.sort(x.ravel())
        assume(flat.size < 2 or onp.min(onp.diff(flat)) > 1e-3)
        before = data.draw(st.sampled_from(MONOTONE), label="before")
    else:
        before = data.draw(UNARIES, label="before")
    axis = data.draw(axes(len(shape)), label="axis")
    reduced_shape = onp.shape(onp.sum(onp.ones(shape), axis=axis, keepdims=keepdims))
    assert onp.shape(REDUCTIONS[reduction](unary(np, before, x), axis, keepdims)) == reduced_shape
    new_shape = data.draw(reshape_to(reduced_shape), label="reshape")
    after_ndim = onp.empty(reduced_shape).reshape(new_shape).ndim
    perm = data.draw(st.permutations(range(after_ndim)), label="transpose")
    last = data.draw(st.sampled_from(["none", "flip", "cumsum", "index"]), label="then")
    after = data.draw(UNARIES, label="after")

    def f(x):
        z = REDUCTIONS[reduction](unary(np, before, x), axis, keepdims)
        z = np.transpose(np.reshape(z, new_shape), perm)
        if np.ndim(z) and last == "flip":
            z = np.flip(z, 0)
        elif np.ndim(z) and last == "cumsum":
            z = np.cumsum(z, axis=-1)
        elif np.ndim(z) and last == "index":  # repeated indices: cotangents add up
            z = z[[0, -1, 0]]
        return unary(np, after, z)
    check(f, x, order=order)


@PROFILE
@given(data=st.data(), shape=SHAPES, keepdims=st.booleans(), after=UNARIES, order=ORDERS)
def test_prod_with_exact_zeros_and_tiny_factors(data: st.DataObject, shape: tuple, keepdims: bool, after: int,
                                                order: int) -> None:
    """Factors that are zero (often several), near ±1 (so that a product of 27 of them stays
    moderate, and finite differences of a function of it stay accurate) or tiny (down to
    subnormal products)."""
    near_one = [st.just(0.0), st.floats(0.7, 1.3), st.floats(-1.3, -0.7)]
    factors = st.one_of(*near_one, st.floats(-1e-3, 1e-3))
    x = data.draw(hnp.arrays(onp.float64, shape, elements=factors), label="x")
    axis = data.draw(axes(len(shape)), label="axis")
    check(lambda x: unary(np, after, np.prod(x, axis=axis, keepdims=keepdims)), x, order=order)


@PROFILE
@given(data=st.data(), shape=SHAPES, order=ORDERS)
def test_cumulative_sums(data: st.DataObject, shape: tuple, order: int) -> None:
    x = data.draw(arrays(shape), label="x")
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)) if shape else st.none(),
                     label="axis")
    check(lambda x: np.sin(np.cumsum(x * x, axis=axis)), x, order=order)


# ----------------------------------------------------------------------------- shapes and indexing
@st.composite
def rearrangements(draw: Callable, shape: tuple) -> tuple:
    """A shape operation for an array of ``shape``: (description, function)."""
    nd = len(shape)
    choices = ["reshape", "flat", "expand and squeeze", "basic index", "mask", "concatenate", "stack"]
    if nd:
        choices += ["transpose", "flip", "repeat"]
    if nd and all(shape):  # (an earlier step may have left an empty array: nothing to pick from)
        choices += ["integer index", "take"]
    if not nd:
        choices += ["integer index"]
    if nd >= 2:
        choices += ["swapaxes", "moveaxis", ".T"]
    kind = draw(st.sampled_from(choices))
    if kind == "reshape":
        target = draw(st.sampled_from([shape[::-1], (1,) + shape, shape + (1,), (-1, 1)]))
        return f"reshape {target}", lambda x: np.reshape(x, target)
    if kind == "flat":
        return "ravel", np.ravel
    if kind == "expand and squeeze":
        at = draw(st.integers(-nd - 1, nd))
        return f"expand_dims {at}, squeeze", lambda x: np.squeeze(np.expand_dims(x, at) * 2.0)
    if kind == "basic index":
        index = draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True))
        return f"x[{index!r}]", lambda x: x[index]
    if kind == "integer index":  # repeats: their cotangents add up
        n = shape[0] if nd else 1
        picks = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=6))
        index = onp.array(picks) if nd else ()
        return f"x[{picks}]", lambda x: x[index] if nd else x[()]
    if kind == "mask":
        mask = draw(hnp.arrays(bool, shape))
        return f"x[{mask.tolist()}]", lambda x: x[mask]
    if kind == "concatenate":
        axis = draw(st.integers(0, nd - 1)) if nd else None
        return f"concatenate axis={axis}", lambda x: np.concatenate([x, x * x], axis=axis)
    if kind == "stack":
        axis = draw(st.integers(-nd - 1, nd))
        return f"stack axis={axis}", lambda x: np.stack([x, np.sin(x), x], axis=axis)
    if kind == "transpose":
        perm = tuple(draw(st.permutations(range(nd))))
        return f"transpose {perm}", lambda x: np.transpose(x, perm)
    if kind == "flip":
        axis = draw(st.one_of(st.none(), st.integers(-nd, nd - 1)))
        return f"flip {axis}", lambda x: np.flip(x, axis)
    if kind == "take":
        axis = draw(st.integers(0, nd - 1))
        picks = draw(st.lists(st.integers(0, shape[axis] - 1), min_size=1, max_size=5))
        return f"take {picks} axis={axis}", lambda x: np.take(x, picks, axis=axis)
    if kind == "repeat":
        times = draw(st.integers(1, 3))
        return f"repeat {times}", lambda x: np.repeat(x, times, axis=0)
    if kind == "swapaxes":
        a, b = draw(st.integers(0, nd - 1)), draw(st.integers(0, nd - 1))
        return f"swapaxes {a} {b}", lambda x: np.swapaxes(x, a, b)
    if kind == "moveaxis":
        a, b = draw(st.integers(0, nd - 1)), draw(st.integers(-nd, nd - 1))
        return f"moveaxis {a} {b}", lambda x: np.moveaxis(x, a, b)
    return ".T", lambda x: x.T


@PROFILE
@given(data=st.data(), shape=SHAPES, before=UNARIES, after=UNARIES, order=ORDERS)
def test_reshapes_transposes_and_indexing(data: st.DataObject, shape: tuple, before: int, after: int,
                                          order: int) -> None:
    x = data.draw(arrays(shape), label="x")
    steps = [data.draw(rearrangements(shape), label="first")]
    middle = onp.shape(steps[0][1](onp.zeros(shape)))
    steps.append(data.draw(rearrangements(middle), label="second"))

    def f(x):
        z = unary(np, before, x)
        for _, step in steps:
            z = step(z)
        return unary(np, after, z) * z  # non-linear in what the steps moved around
    plain = onp.ones(shape)
    for _, step in steps:
        plain = step(plain)
    assert onp.shape(f(x)) == onp.shape(plain)
    check(f, x, order=order)


# ----------------------------------------------------------------------------- fan-out programs
# Smooth reductions that a program may apply to an intermediate value; their results
# broadcast against the other values when used again. (No max: the values drawn often tie.)
REDUCING = [
    ("sum", lambda m, x: m.sum(x)),
    ("mean", lambda m, x: m.mean(x)),
    ("sum over the last axis, kept", lambda m, x: m.sum(x, axis=-1, keepdims=True) if m.ndim(x) else x),
    ("sum of squares over the first axis, kept", lambda m, x: m.sum(x * x, axis=0, keepdims=True) if m.ndim(x) else x),
    ("var over the last axis, kept", lambda m, x: m.var(x, axis=-1, keepdims=True) if m.ndim(x) else x),
    ("prod(1+tanh/5) over the last axis, kept",
     lambda m, x: m.prod(1.0 + 0.2 * m.tanh(x), axis=-1, keepdims=True) if m.ndim(x) else x),
    ("log-sum-exp", lambda m, x: m.log(m.sum(m.exp(2.0 * m.tanh(x / 2.0))))),
    ("soft norm", lambda m, x: m.sqrt(1.0 + m.sum(x * x))),
]


@st.composite
def programs(draw: Callable) -> tuple:
    """A random DAG: each operation takes its operands from every value computed so far (the
    two inputs included, the same one possibly twice), so values are reused; the values are
    summed with weights at the end."""
    n_ops = draw(st.integers(2, 8))
    ops = []
    for i in range(n_ops):
        pool = st.integers(0, 2 + i - 1)
        kind = draw(st.sampled_from(["unary", "binary", "binary", "reduce"]))
        if kind == "unary":
            ops.append(("unary", draw(UNARIES), draw(pool), None))
        elif kind == "reduce":
            ops.append(("reduce", draw(st.integers(0, len(REDUCING) - 1)), draw(pool), None))
        else:
            ops.append(("binary", draw(st.integers(0, len(BINARY) - 1)), draw(pool), draw(pool)))
    # a weight 0 leaves a value out of the sum: its branch may then be dead, with no cotangent
    weights = draw(st.lists(st.sampled_from([1.0, -0.5, 2.0, 0.0]), min_size=2 + n_ops, max_size=2 + n_ops))
    return ops, weights


def _run_program(m: Any, program: tuple, x: Any, y: Any) -> tuple:
    """The last value, and the weighted sum of every value: each step reaches the outputs, most
    by several paths."""
    ops, weights = program
    pool = [x, y]
    for kind, k, a, b in ops:
        if kind == "unary":
            pool.append(unary(m, k, pool[a]))
        elif kind == "reduce":
            pool.append(REDUCING[k][1](m, pool[a]))
        else:
            pool.append(binary(m, k, pool[a], pool[b]))
    total = 0.0
    for v, w in zip(pool, weights):
        total = total + w * m.sum(v)
    return pool[-1], total


@PROFILE
@given(data=st.data(), program=programs(), floats=st.booleans(),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3), order=ORDERS)
def test_random_programs_with_fan_out(data: st.DataObject, program: tuple, floats: bool, shapes: Any,
                                      order: int) -> None:
    if floats:  # Python floats: the scalar fast path of the engine
        x, y = data.draw(ELEMENTS, label="x"), data.draw(ELEMENTS, label="y")
    else:
        sx, sy = shapes.input_shapes
        x, y = data.draw(arrays(sx), label="x"), data.draw(arrays(sy), label="y")
    f = lambda x, y: _run_program(np, program, x, y)[1]  # noqa: E731
    af = lambda x, y: _run_program(anp, program, x, y)[1]  # noqa: E731
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
    # central finite differences
    assert close(gx, fd_grad(lambda z: f(z, y), x), rtol=1e-5, atol=1e-6)
    assert close(gy, fd_grad(lambda z: f(x, z), y), rtol=1e-5, atol=1e-6)
    # both outputs, both modes, and sometimes the second order
    check(lambda x, y: _run_program(np, program, x, y), x, y, order=order)


# ----------------------------------------------------------------------------- the profile
def test_the_profile_reads_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("WENGERT_PROPERTY_EXAMPLES", "7")
    assert _examples() == 7
    monkeypatch.delenv("WENGERT_PROPERTY_EXAMPLES")
    assert _examples() == 25
    monkeypatch.setenv("WENGERT_PROPERTY_EXAMPLES", "ci")
    assert _examples() == 25
    monkeypatch.setenv("WENGERT_PROPERTY_EXAMPLES", "thorough")
    assert _examples() == 1000
    for bad in ("lots", "0", "-3"):
        monkeypatch.setenv("WENGERT_PROPERTY_EXAMPLES", bad)
        with pytest.raises(ValueError, match=rf"WENGERT_PROPERTY_EXAMPLES .*'{bad}'"):
            _examples()
    assert PROFILE.deadline is None and PROFILE.database is None
    assert PROFILE.derandomize == bool(os.environ.get("CI"))
