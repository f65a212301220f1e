"""Every derivative rule, checked against central finite differences to second order.

Each case names the rule-table entry it covers, a function of the differentiated arguments,
and the arguments. Cases cover scalars, vectors, matrices and broadcasting shapes, and the
keyword arguments that change the rule (axis, keepdims, ddof, order ...). Points are chosen
away from non-differentiable points (ties, kinks, branch cuts). A registered rule without a
case fails ``test_every_rule_has_a_case``.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, NamedTuple

import numpy as onp
import pytest

import wengert
import wengert.numpy as np
from _helpers import check_transpose
from wengert.numpy import _vjps
from wengert.numpy._wrap import DISPATCH

R = onp.random.default_rng(42)


def real(*shape: int) -> Any:
    return R.normal(size=shape)


def between(lo: float, hi: float, *shape: int) -> Any:
    return R.uniform(lo, hi, shape)


def cplx(*shape: int) -> Any:
    return R.normal(size=shape) + 1j * R.normal(size=shape)


class Case(NamedTuple):
    key: Any  # the rule-table entry covered
    f: Callable  # function of the differentiated arguments
    args: tuple
    id: str


CASES: list[Case] = []


def case(key: Any, f: Callable, *args: Any, id: str = "") -> None:
    name = getattr(key, "__name__", str(key))
    CASES.append(Case(key, f, args, f"{name}-{id or len([c for c in CASES if c.key is key])}"))


def fn(key: Any) -> Callable:
    """The public wengert.numpy callable for a rule-table entry."""
    return DISPATCH[key]


# ----------------------------------------------------------------------------- elementwise
SHAPES_1 = [(), (4,), (2, 3)]
UNARY = {  # function: a sampler for its domain (bounded away from singular points)
    onp.negative: real, onp.positive: real, onp.square: real, onp.sin: real, onp.cos: real,
    onp.tan: lambda *s: between(-1.2, 1.2, *s), onp.arctan: real, onp.sinh: real,
    onp.cosh: real, onp.tanh: real, onp.arcsinh: real, onp.exp: real, onp.exp2: real,
    onp.expm1: real, onp.deg2rad: real, onp.rad2deg: real, onp.degrees: real, onp.radians: real,
    onp.absolute: lambda *s: between(0.2, 2, *s) * R.choice([-1, 1], s),
    onp.fabs: lambda *s: between(0.2, 2, *s) * R.choice([-1, 1], s),
    onp.sign: lambda *s: between(0.2, 2, *s) * R.choice([-1, 1], s),
    onp.cbrt: lambda *s: between(0.2, 2, *s) * R.choice([-1, 1], s),
    onp.reciprocal: lambda *s: between(0.3, 2, *s) * R.choice([-1, 1], s),
    onp.sqrt: lambda *s: between(0.2, 3, *s), onp.log: lambda *s: between(0.2, 3, *s),
    onp.log2: lambda *s: between(0.2, 3, *s), onp.log10: lambda *s: between(0.2, 3, *s),
    onp.log1p: lambda *s: between(-0.7, 3, *s), onp.arcsin: lambda *s: between(-0.8, 0.8, *s),
    onp.arccos: lambda *s: between(-0.8, 0.8, *s), onp.arctanh: lambda *s: between(-0.8, 0.8, *s),
    onp.arccosh: lambda *s: between(1.3, 3, *s), onp.conjugate: real, onp.real: real, onp.imag: real,
}
for f, sample in UNARY.items():
    for shape in SHAPES_1:
        case(f, fn(f), sample(*shape), id=f"shape{shape}")
    case(f, fn(f), float(sample()), id="python-float")

# Holomorphic functions and the complex parts on complex inputs.
HOLOMORPHIC = [onp.negative, onp.square, onp.sin, onp.cos, onp.tan, onp.sinh, onp.cosh, onp.tanh,
               onp.exp, onp.expm1, onp.log, onp.sqrt, onp.reciprocal, onp.arctan, onp.arcsinh]
for f in HOLOMORPHIC + [onp.conjugate, onp.real, onp.imag, onp.absolute, onp.sign]:
    case(f, fn(f), 0.3 + 0.5 * cplx(3), id="complex")
case(onp.arccosh, fn(onp.arccosh), onp.array([-0.5 + 0.2j, -1.6 - 0.7j, -0.3 - 1.2j, 1.4 + 0.5j]),
     id="complex")  # left of the imaginary axis too, where 1/sqrt(z*z - 1) has the wrong sign

PAIRS = [((), ()), ((4,), (4,)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((3,), None)]  # None: a float
BINARY = {
    onp.add: (real, real), onp.subtract: (real, real), onp.multiply: (real, real),
    onp.divide: (real, lambda *s: between(0.5, 2, *s) * R.choice([-1, 1], s)),
    onp.power: (lambda *s: between(0.5, 2, *s), real),
    onp.float_power: (lambda *s: between(0.5, 2, *s), real),
    onp.maximum: (real, real), onp.minimum: (real, real), onp.fmax: (real, real),
    onp.fmin: (real, real), onp.logaddexp: (real, real), onp.logaddexp2: (real, real),
    onp.arctan2: (real, real), onp.hypot: (real, real),
    # x/y stays inside one integer interval, so floor/trunc(x/y) is constant near the point
    onp.remainder: (lambda *s: between(2.2, 2.8, *s) * R.choice([-1, 1], s),
                    lambda *s: between(1.01, 1.05, *s)),
    onp.fmod: (lambda *s: between(2.2, 2.8, *s) * R.choice([-1, 1], s),
               lambda *s: between(1.01, 1.05, *s)),
}
for f, (sx, sy) in BINARY.items():
    for xs, ys in PAIRS:
        x = sx(*xs)
        y = float(sy()) if ys is None else sy(*ys)
        case(f, fn(f), x, y, id=f"{xs}x{ys or 'float'}")
    case(f, lambda y, f=f, x=float(sx()): fn(f)(x, y), sy(3), id="float-first")
for f in (onp.add, onp.multiply, onp.divide, onp.power):
    case(f, fn(f), 0.5 + cplx(3), 0.5 + cplx(3), id="complex")

# powers with a constant exponent, including a base at zero
case(onp.power, lambda x: x ** 3, real(4), id="cube")
case(onp.power, lambda x: x ** 2, onp.array([0.0, 1.5, -2.0]), id="square-at-zero")
case(onp.power, lambda x: fn(onp.power)(x, onp.array([2.0, 0.0, 1.0])), real(3), id="zero-exponent")
case(onp.heaviside, lambda h: fn(onp.heaviside)(onp.array([-1.0, 0.0, 2.0, 0.0]), h), real(4))

# one differentiable argument: copysign's y only lends its sign, ldexp's exponent is an integer,
# nextafter's y only the direction of the step
away = lambda *s: between(0.2, 2, *s) * R.choice([-1, 1], s)  # noqa: E731
for xs, ys in [((4,), (4,)), ((2, 3), (3,)), ((), ())]:
    case(onp.copysign, fn(onp.copysign), away(*xs), away(*ys), id=f"{xs}x{ys}")
case(onp.copysign, lambda x: fn(onp.copysign)(x, -0.0), away(3), id="negative-zero")
case(onp.copysign, lambda x: fn(onp.copysign)(x, 1.0), float(away()), id="python-float")
case(onp.ldexp, lambda x: fn(onp.ldexp)(x, onp.array([-2, 0, 3, 1])), real(4))
case(onp.ldexp, lambda x: fn(onp.ldexp)(x, 3), real(2, 3), id="scalar-exponent")
case(onp.ldexp, lambda x: fn(onp.ldexp)(x, onp.array([[1], [-1]])), real(3), id="broadcast")
case(onp.nextafter, lambda x: fn(onp.nextafter)(x, onp.inf), real(4), id="up")
case(onp.nextafter, lambda x: fn(onp.nextafter)(x, onp.array([[-onp.inf], [0.0]])), real(3), id="broadcast")

# ----------------------------------------------------------------------------- selection
mask = onp.array([[True, False, True], [False, False, True]])
case(onp.where, lambda x, y: fn(onp.where)(mask, x, y), real(2, 3), real(3), id="broadcast")
case(onp.where, lambda x, y: fn(onp.where)(mask, x, y), 1.5, real(2, 3), id="scalar")
xs = onp.array([-2.0, -0.3, 0.2, 0.7, 3.0])
case(onp.clip, lambda x: fn(onp.clip)(x, -0.5, 0.5), xs, id="const-bounds")
case(onp.clip, lambda x: fn(onp.clip)(x, None, 0.5), xs, id="upper-only")
case(onp.clip, lambda x, lo, hi: fn(onp.clip)(x, lo, hi), xs, onp.full(5, -0.5), onp.full(5, 0.5),
     id="traced-bounds")
case(onp.clip, lambda x, lo, hi: fn(onp.clip)(x, lo, hi), xs, onp.array([1.0, -1.0, 1.0, 1.0, -1.0]),
     onp.array([0.5, 0.5, -0.5, 0.5, 0.5]), id="lower-above-upper")  # NumPy gives the upper bound there
case(onp.clip, lambda x, lo: fn(onp.clip)(x, lo, None), xs, onp.full(5, -0.5), id="traced-lower-only")

# ----------------------------------------------------------------------------- reductions
AXES = [dict(), dict(axis=0), dict(axis=1, keepdims=True), dict(axis=-1), dict(axis=(0, 1)),
        dict(axis=(0,), keepdims=True)]
for f in (onp.sum, onp.mean, onp.prod, onp.max, onp.min, onp.amax, onp.amin, onp.var, onp.std):
    sample = between(0.5, 1.5, 2, 3) if f is onp.prod else real(2, 3)
    for kw in AXES:
        case(f, lambda x, f=f, kw=kw: fn(f)(x, **kw), sample, id=str(kw))
    case(f, fn(f), real(4), id="vector")
    case(f, fn(f), 1.7, id="python-float")
case(onp.sum, lambda x: fn(onp.sum)(x, axis=0, where=onp.array([True, False, True])), real(2, 3),
     id="where")
case(onp.mean, lambda x: fn(onp.mean)(x, axis=1, where=onp.array([True, False, True])), real(2, 3),
     id="where")
case(onp.var, lambda x: fn(onp.var)(x, axis=1, ddof=1), real(2, 4), id="ddof")
some = onp.array([[True, False, True, True], [False, True, True, True]])
case(onp.var, lambda x: fn(onp.var)(x, where=some), real(2, 4), id="where")
case(onp.var, lambda x: fn(onp.var)(x, axis=1, ddof=1, keepdims=True, where=some), real(2, 4), id="where-axis")
case(onp.std, lambda x: fn(onp.std)(x, axis=1, where=onp.array([True, False, True, True])), real(3, 4),
     id="where")
case(onp.var, lambda x: fn(onp.var)(x, axis=1, mean=onp.array([[0.25], [-0.5]])), real(2, 4), id="given-mean")
case(onp.std, lambda x: fn(onp.std)(x, ddof=1), real(2, 4), id="ddof")
# the std of one element is 0 whatever the element (slope 0), unless a mean is given: |x - mean|
case(onp.std, lambda x: fn(onp.std)(x, axis=1), real(3, 1), id="one-element")
case(onp.std, lambda x: fn(onp.std)(x, axis=0, keepdims=True, ddof=0.5), real(1, 3), id="one-element-ddof")
case(onp.std, fn(onp.std), onp.array(0.8), id="0-d")
case(onp.std, lambda x: fn(onp.std)(x, axis=1, where=onp.array([[True, False, True], [False, False, True]])),
     real(2, 3), id="where-one-element")
case(onp.std, lambda x: fn(onp.std)(x, axis=1, mean=onp.array([[0.25], [-0.5]])), real(2, 1),
     id="one-element-given-mean")
case(onp.var, fn(onp.var), 0.5 + cplx(4), id="complex")
with_zeros = real(3, 4)
with_zeros[0, 1] = with_zeros[2, 0] = with_zeros[2, 3] = 0.0  # one zero, and two in a row
case(onp.prod, lambda x: fn(onp.prod)(x, axis=1), with_zeros, id="zeros-axis")
case(onp.prod, fn(onp.prod), onp.array([2.0, 0.0, 3.0, -1.5]), id="one-zero")
case(onp.prod, fn(onp.prod), onp.array([2.0, 0.0, 3.0, 0.0]), id="two-zeros")
case(onp.prod, lambda x: fn(onp.prod)(x, axis=0, where=onp.array([True, False, True, True])), with_zeros, id="where")
case(onp.prod, lambda x: fn(onp.prod)(x, axis=1, where=onp.array([False, True, True, True]), initial=1.5), with_zeros,
     id="where-initial-zeros")
case(onp.prod, lambda x: fn(onp.prod)(x, initial=-2.0), onp.array([2.0, 0.0, 3.0]), id="initial-zero")
case(onp.prod, lambda x: fn(onp.prod)(x, axis=(0, 2)), real(2, 3, 2) * (R.random((2, 3, 2)) > 0.3),
     id="zeros-3d")
for kw in (dict(), dict(axis=0), dict(axis=1), dict(axis=-1)):
    case(onp.cumsum, lambda x, kw=kw: fn(onp.cumsum)(x, **kw), real(2, 3), id=str(kw))
for axis in (-1, -2):  # the running products of cumprod where all are normal numbers
    case(_vjps.running_product, lambda x, a=axis: np._running_product(x, a), real(3, 4), id=f"axis={axis}")
case(_vjps.running_product, lambda z: np._running_product(z, -1), real(4) + 1j * real(4), id="complex")
case(_vjps.full_convolution, np._full_convolution, real(5), real(3), id="long-first")  # convolve's
case(_vjps.full_convolution, np._full_convolution, real(2), real(4), id="short-first")
case(_vjps.full_convolution, np._full_convolution, real(1), real(1), id="one-each")
case(_vjps.full_convolution, np._full_convolution, cplx(4), cplx(3), id="complex")
case(_vjps.windows, lambda x: np._windows(x, (2,), (-1,)), real(2, 4), id="rows")  # sliding_window_view's
case(_vjps.windows, lambda x: np._windows(x, (2, 3), (-2, -1)), real(3, 4), id="2-d")
case(_vjps.windows, lambda x: np._windows(x, (2, 2), (-1, -1)), real(5), id="one-axis-twice")

# ----------------------------------------------------------------------------- shapes
case(onp.reshape, lambda x: fn(onp.reshape)(x, (4, 3)), real(3, 4))
case(onp.reshape, lambda x: fn(onp.reshape)(x, (-1,)), real(3, 4), id="flat")
case(onp.reshape, lambda x: fn(onp.reshape)(x, (2, 6), order="F"), real(3, 4), id="fortran")
case(onp.reshape, lambda x: fn(onp.reshape)(x, (1, 1)), 2.5, id="scalar")
# 'A' follows the layout of the argument ('F' for a Fortran-contiguous one, as x.T), not the
# cotangent's or the tangent's (x.T + c is C-contiguous, the tangent of x.T is not)
case(onp.reshape, lambda x: fn(onp.reshape)(x.T, (6,), order="A"), real(2, 3), id="A-transposed")
case(onp.reshape, lambda x: x.T.reshape(2, 3, order="A"), real(2, 3), id="A-method")
case(onp.reshape, lambda x: fn(onp.reshape)(x.T + onp.ones((3, 2)), (6,), order="A"), real(2, 3), id="A-mixed")
case(onp.transpose, fn(onp.transpose), real(3, 4))
case(onp.transpose, lambda x: fn(onp.transpose)(x, (2, 0, 1)), real(2, 3, 4), id="axes")
case(onp.transpose, lambda x: fn(onp.transpose)(x, (-1, 0, 1)), real(2, 3, 4), id="negative-axes")
case(onp.swapaxes, lambda x: fn(onp.swapaxes)(x, 0, 2), real(2, 3, 4))
case(onp.moveaxis, lambda x: fn(onp.moveaxis)(x, 0, -1), real(2, 3, 4))
case(onp.moveaxis, lambda x: fn(onp.moveaxis)(x, (0, 1), (2, 0)), real(2, 3, 4), id="several")
case(onp.diagonal, lambda x: fn(onp.diagonal)(x), real(3, 4))
case(onp.diagonal, lambda x: fn(onp.diagonal)(x, 1, 2, 0), real(2, 3, 4), id="offset-axes")
case(onp.diagonal, lambda x: fn(onp.diagonal)(x, -1, -1, -2), real(2, 3, 3), id="negative")
case(onp.expand_dims, lambda x: fn(onp.expand_dims)(x, 0), real(3))
case(onp.expand_dims, lambda x: fn(onp.expand_dims)(x, (0, 2)), real(3, 2), id="several")
case(onp.squeeze, fn(onp.squeeze), real(1, 3, 1))
case(onp.squeeze, lambda x: fn(onp.squeeze)(x, axis=0), real(1, 3, 1), id="axis")
case(onp.broadcast_to, lambda x: fn(onp.broadcast_to)(x, (2, 3)), real(3))
case(onp.broadcast_to, lambda x: fn(onp.broadcast_to)(x, (2, 4)), real(2, 1), id="stretch")
case(onp.broadcast_to, lambda x: fn(onp.broadcast_to)(x, (2, 2)), 1.5, id="scalar")
case(onp.flip, fn(onp.flip), real(2, 3))
case(onp.flip, lambda x: fn(onp.flip)(x, 1), real(2, 3), id="axis")
case(onp.roll, lambda x: fn(onp.roll)(x, 2), real(5))
case(onp.roll, lambda x: fn(onp.roll)(x, -4), real(2, 3), id="flat")
case(onp.roll, lambda x: fn(onp.roll)(x, (1, -1), axis=(0, -1)), real(3, 4), id="axes")
case(onp.roll, lambda x: fn(onp.roll)(x, (1, 2), axis=(1, 1)), real(2, 3, 4), id="repeated-axis")
case(onp.copy, fn(onp.copy), real(2, 3))
case(onp.astype, lambda x: fn(onp.astype)(x, onp.complex128), real(2, 3), id="to-complex")
case(onp.astype, lambda x: fn(onp.astype)(x, onp.float64) * 2, real(3), id="same")
case(onp.concatenate, lambda x, y: fn(onp.concatenate)([x, y]), real(2, 3), real(1, 3))
case(onp.concatenate, lambda x, y: fn(onp.concatenate)([x, y, x], axis=1), real(2, 3), real(2, 2),
     id="axis1-repeated")
case(onp.concatenate, lambda x, y: fn(onp.concatenate)([x, y], axis=None), real(2, 3), real(4),
     id="flat")
case(onp.concatenate, lambda x: fn(onp.concatenate)([x, onp.ones((1, 3))]), real(2, 3), id="const")
case(onp.stack, lambda x, y: fn(onp.stack)([x, y]), real(2, 3), real(2, 3))
case(onp.stack, lambda x, y: fn(onp.stack)([x, y, x], axis=-1), real(2, 3), real(2, 3), id="last")

# ----------------------------------------------------------------------------- products
PRODUCTS = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4))]
for xs_, ys_ in PRODUCTS + [((2, 2, 3), (4, 3, 2)), ((), (3,))]:
    case(onp.dot, fn(onp.dot), real(*xs_), real(*ys_), id=f"{xs_}.{ys_}")
for xs_, ys_ in PRODUCTS + [((2, 2, 3), (3, 4)), ((2, 3), (2, 3, 4)), ((1, 2, 3), (2, 3, 2)),
                            ((3,), (2, 3, 4)), ((2, 2, 3), (3,))]:
    case(onp.matmul, fn(onp.matmul), real(*xs_), real(*ys_), id=f"{xs_}@{ys_}")
case(onp.matmul, fn(onp.matmul), cplx(2, 3), cplx(3, 2), id="complex")
for axes, xs_, ys_ in [(0, (2,), (3,)), (1, (2, 3), (3, 4)), (2, (2, 3, 4), (3, 4, 2)),
                       (([1], [0]), (2, 3), (3, 4)), (([0, 1], [1, 0]), (2, 3, 4), (3, 2, 5)),
                       (([2, 0], [0, 1]), (3, 2, 4), (4, 3, 2)), (([-1], [-2]), (2, 3), (3, 2))]:
    case(onp.tensordot, lambda x, y, a=axes: fn(onp.tensordot)(x, y, axes=a), real(*xs_),
         real(*ys_), id=f"axes={axes}")
for xs_, ys_ in [((3,), (3,)), ((2, 3), (3,)), ((2, 3), (4, 3)), ((), (3,))]:
    case(onp.inner, fn(onp.inner), real(*xs_), real(*ys_), id=f"{xs_},{ys_}")
case(onp.outer, fn(onp.outer), real(3), real(2))
case(onp.outer, fn(onp.outer), real(2, 2), real(3), id="flattens")
EINSUM = [("ij,jk->ik", (2, 3), (3, 4)), ("ij,ij->", (2, 3), (2, 3)), ("ii->", (3, 3)),
          ("ii->i", (3, 3)), ("ij->ji", (2, 3)), ("i,i", (3,), (3,)), ("ij", (2, 3)),
          ("ij,jk", (2, 3), (3, 2)), ("...j,j->...", (2, 3), (3,)), ("i...,i->...", (3, 2), (3,)),
          ("bij,bjk->bik", (2, 2, 3), (2, 3, 2)), ("ij,k->ijk", (2, 2), (3,)), ("i->", (4,)),
          ("ijk,jil->kl", (2, 3, 2), (3, 2, 4)), ("ij,jk,kl->il", (2, 3), (3, 2), (2, 2)),
          ("ii,i->i", (3, 3), (3,)), ("iij->j", (2, 2, 3)), ("...ij->...", (2, 1, 3)),
          ("ij,...j->...i", (2, 3), (4, 1, 3)), ("...,...->...", (2, 1), (3,))]
for spec, *shapes in EINSUM:
    case(onp.einsum, lambda *ops, s=spec: fn(onp.einsum)(s, *ops), *[real(*s) for s in shapes], id=spec)
case(onp.einsum, lambda x, y: fn(onp.einsum)(x, [0, 1], y, [1, 2], [0, 2]), real(2, 3), real(3, 2),
     id="sublists")
case(onp.einsum, lambda x, y: fn(onp.einsum)("ij,jk->ik", x, y, optimize=True), real(2, 3),
     real(3, 4), id="optimize")

# ----------------------------------------------------------------------------- indexing
for index in [1, -1, slice(1, None), slice(None, None, -2), (Ellipsis, 1), (None, 0), (1, slice(0, 2)),
              (onp.array([0, 0, 1]),), (slice(None), onp.array([2, 0, 2])),
              (onp.array([0, 1, 1]), onp.array([1, 1, 1])), onp.array([[True, False, True], [True, True, False]]),
              onp.array([True, False])]:
    case(operator.getitem, lambda x, i=index: x[i], real(2, 3), id=repr(index).replace(" ", ""))
case(operator.getitem, lambda x: x[[0, 0]], real(3), id="list-repeats")
case(_vjps.untake, lambda g: np._untake(g, onp.zeros((2, 3)), (onp.array([0, 0, 1]), slice(None))),
     real(3, 3), id="repeats")
case(_vjps.untake, lambda g: np._untake(g, onp.zeros(4), slice(1, 3)), real(2), id="slice")
for index, v in [(1, real(3)), ((slice(None), 0), real(2)), ((0, slice(0, 2)), 1.5),
                 ((onp.array([0, 1, 0]), onp.array([2, 2, 2])), real(3)),
                 (onp.array([[True, False, True]] * 2), real(4)), ((slice(None), onp.array([1, 1])), real(2, 1))]:
    case(_vjps.setitem, lambda x, v, i=index: np._setitem(x, v, i),
         real(2, 3), v, id=repr(index).replace(" ", "").replace("\n", ""))


# ----------------------------------------------------------------------------- composites
# Functions written with other wrapped functions: their derivatives come from those.
W6 = onp.arange(1.0, 7.0)
COMPOSITES = [
    ("ravel", lambda x: np.ravel(x) * W6, real(2, 3)),
    ("ravel-F", lambda x: np.ravel(x, order="F") * W6, real(2, 3)),
    ("ravel-K-of-transposed", lambda x: np.ravel(x.T, order="K") * W6, real(2, 3)),
    ("ravel-K-strided", lambda x: np.ravel(np.transpose(x, (1, 0, 2)), order="K") * onp.arange(12.0),
     real(2, 3, 2)),
    ("flatten", lambda x: x.flatten() * W6, real(2, 3)),
    ("split", lambda x: np.stack(np.split(x, 3, axis=1)) * onp.arange(3.0)[:, None, None], real(2, 3)),
    ("array_split", lambda x: np.concatenate([p * (i + 1) for i, p in enumerate(np.array_split(x, 3))]),
     real(5)),
    ("array-of-list", lambda x: np.array([x[0], x[1] * 2.0, 3.0]) ** 2, real(3)),
    ("array-nested", lambda x: np.array([[x[0], 1.0], [x[1], x[0] * x[1]]]), real(2)),
    ("asarray", lambda x: np.asarray([x, x ** 2]), real(2)),
    ("full_like-traced-fill", lambda v: np.full_like(onp.ones((2, 2)), v) * W6[:4].reshape(2, 2), 1.3),
    ("divmod", lambda x: np.divmod(x, 1.03)[1] + np.divmod(x, 1.03)[0], between(2.2, 2.8, 3)),
    ("modf", lambda x: np.modf(x)[0] * 2.0 + np.modf(x)[1], between(0.1, 0.9, 3) + onp.array([0, 1, -2])),
    ("logsumexp", lambda x: np.log(np.sum(np.exp(x - np.max(x)))) + np.max(x), real(5)),
    ("softmax", lambda x: np.exp(x - np.max(x, axis=-1, keepdims=True))
     / np.sum(np.exp(x - np.max(x, axis=-1, keepdims=True)), axis=-1, keepdims=True), real(2, 3)),
]


@pytest.mark.parametrize("f, x", [c[1:] for c in COMPOSITES], ids=[c[0] for c in COMPOSITES])
def test_composite_matches_finite_differences(f: Callable, x: Any) -> None:
    wengert.gradcheck(f, x, order=2)


def test_logsumexp_pattern_is_stable_where_the_naive_formula_overflows() -> None:
    x = onp.array([1000.0, 1000.0, 999.0])
    g = wengert.grad(lambda x: np.log(np.sum(np.exp(x - np.max(x)))) + np.max(x))(x)
    expected = onp.exp(x - x.max()) / onp.exp(x - x.max()).sum()
    onp.testing.assert_allclose(g, expected, rtol=1e-12)
    assert onp.isclose(g.sum(), 1.0)


# ============================================================================= tests
@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_rule_matches_finite_differences(c: Case) -> None:
    wengert.gradcheck(c.f, *c.args, order=2)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_jvp_is_the_transpose_of_vjp(c: Case) -> None:
    check_transpose(c.f, c.args)


def test_jvp_table_follows_the_vjp_table() -> None:
    from wengert.numpy import _jvps
    assert list(_jvps.JVPS) == list(_vjps.VJPS)


def test_every_rule_has_a_case() -> None:
    covered = {c.key for c in CASES}
    missing = [getattr(k, "__name__", k) for k in _vjps.VJPS if k not in covered]
    assert not missing, f"rules without a test case: {missing}"


@pytest.mark.parametrize("f, x, expected", [
    (lambda x: np.max(x), onp.array([1.0, 3.0, 3.0]), [0.0, 0.5, 0.5]),
    (lambda x: np.min(x, axis=1).sum(), onp.array([[2.0, 2.0], [1.0, 4.0]]), [[0.5, 0.5], [1.0, 0.0]]),
    (lambda x: np.maximum(x, 1.0).sum(), onp.array([0.0, 1.0, 2.0]), [0.0, 0.5, 1.0]),
    (lambda x: np.minimum(x, x[::-1]).sum(), onp.array([1.0, 5.0, 1.0]), [1.0, 1.0, 1.0]),
    (lambda x: np.abs(x).sum(), onp.array([-2.0, 0.0, 2.0]), [-1.0, 0.0, 1.0]),
    (lambda x: np.copysign(x, -1.0).sum(), onp.array([-2.0, 0.0, 2.0]), [1.0, 0.0, -1.0]),
    (lambda x: np.clip(x, 0.0, 1.0).sum(), onp.array([0.0, 0.5, 1.0]), [1.0, 1.0, 1.0]),
    (lambda z: np.imag(np.sign(z)).sum(), onp.array([0j, 2 + 0j]), [0.0, -0.5j]),
])
def test_convention_at_nondifferentiable_points(f: Callable, x: Any, expected: list) -> None:
    """Ties are split evenly, |x| (and copysign) has slope 0 at 0, and so has the sign of a complex
    number; clip passes the gradient at its bounds."""
    onp.testing.assert_allclose(wengert.grad(f)(x), expected)


def test_prod_gradient_at_zeros_matches_products_of_the_others() -> None:
    x = onp.array([2.0, 0.0, 3.0, 0.0, 5.0])
    onp.testing.assert_array_equal(wengert.grad(np.prod)(x), 0.0)  # two zeros: every partial is 0
    y = onp.array([2.0, 0.0, 3.0, 5.0])
    onp.testing.assert_allclose(wengert.grad(np.prod)(y), [0.0, 30.0, 0.0, 0.0])
