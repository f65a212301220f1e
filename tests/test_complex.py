"""Complex numbers through every differentiable function of wengert.numpy.

The convention (HIPS autograd's and JAX's): for a real function ``L`` of complex ``z = x + iy``,
``grad(L)(z) = dL/dx - i dL/dy``, so the derivative of ``L`` along a direction ``p`` is
``Re(sum(p * grad))``; the rule of a holomorphic function is ``g * f'(z)``, without conjugation.

Each case runs a function on complex arguments (some mixed with real ones) and turns its
result into the real objective ``sum(Re(w * out)) + sum(|out|^2) / 4`` with fixed complex
weights ``w``. For every case:

* the value equals NumPy's, dtype included;
* the gradient equals autograd's (for the functions autograd can differentiate; the others
  are marked, and a test checks that autograd really cannot);
* ``wengert.gradcheck`` agrees with central finite differences along the real and the
  imaginary direction of every coordinate, in reverse and forward mode, to second order;
* forward mode along a random complex direction ``p`` gives ``Re(sum(p * grad))``.

Every differentiable primitive and derived function either has a complex case (here, or in
tests/test_linalg.py, tests/test_fft.py and tests/test_scipy.py, whose tables are read) or is
on ``REAL_ONLY`` with the reason, so a new rule cannot slip through. Then: NumPy's
lexicographic order of complex numbers (``maximum``, ``max``, ``sort``, ``clip``), complex
results from real inputs and real results from complex ones, Python complex scalars, array
assignment, and the errors.
"""

from __future__ import annotations

import importlib
import operator
import warnings
from typing import Any, Callable, NamedTuple

import autograd
import autograd.numpy as anp
import autograd.scipy.special as asp
import numpy as onp
import pytest
import scipy.special as sc

import wengert
import wengert.numpy as wnp
import wengert.scipy.linalg  # noqa: F401  (registers scipy.linalg's rules, for the coverage test)
import wengert.scipy.special as wsp
from _helpers import written
from wengert._tree import flatten
from wengert.numpy import _derived, _vjps
from wengert.numpy import _fft as F
from wengert.numpy import _linalg as L
from wengert.numpy._wrap import PRIMITIVES
from wengert.scipy import _linalg_rules as S
from wengert.scipy import _special_rules as SP

R = onp.random.default_rng(20240)


# ----------------------------------------------------------------------------- samplers
def cz(*shape: int, re: tuple = (-1.0, 1.0), im: tuple = (-1.0, 1.0)) -> Any:
    """Complex numbers uniform in the box ``re x im`` of the plane (away from branch cuts and
    poles when the box is chosen so)."""
    return R.uniform(*re, shape) + 1j * R.uniform(*im, shape)


def rl(*shape: int, lo: float = -1.0, hi: float = 1.0) -> Any:
    return R.uniform(lo, hi, shape)


def right(*shape: int) -> Any:
    """Right of the imaginary axis: away from the cut of log, sqrt and powers on the negatives."""
    return cz(*shape, re=(0.4, 1.6), im=(-0.8, 0.8))


def small(*shape: int) -> Any:
    """Inside the unit disc: away from the cuts of arcsin, arctanh, arctan ... and the poles of tan."""
    return cz(*shape, re=(-0.6, 0.6), im=(-0.6, 0.6))


def apart(n: int) -> Any:
    """A complex vector whose real parts are distinct and well apart (no ties in NumPy's order)."""
    return R.permutation(onp.arange(n, dtype=float)) * 0.7 + 1j * rl(n)


# ----------------------------------------------------------------------------- the case table
class Case(NamedTuple):
    key: Any  # the rule-table entry (or derived function) covered
    f: Callable  # f(m, *args): m is wengert.numpy, numpy or autograd.numpy
    args: tuple
    id: str
    oracle: bool | str  # autograd differentiates f (True), cannot (False), or is wrong here (why)


CASES: list[Case] = []
NO_UNBROADCAST = "autograd does not sum its gradient over the broadcast dimensions here"


def case(key: Any, f: Callable, *args: Any, id: str = "", oracle: bool | str = True) -> None:
    name = getattr(key, "__name__", str(key))
    CASES.append(Case(key, f, args, f"{name}-{id or len([c for c in CASES if c.key is key])}", oracle))


def call(name: str) -> Callable:
    """``m.<name>(*args)``: the same NumPy function in each module."""
    return lambda m, *args: getattr(m, name)(*args)


# --- elementwise, one argument: holomorphic ones and the complex parts (not holomorphic)
UNARY = {
    onp.negative: cz, onp.positive: cz, onp.square: cz, onp.exp: cz, onp.exp2: cz, onp.expm1: cz,
    onp.sin: cz, onp.cos: cz, onp.sinh: cz, onp.cosh: cz, onp.tan: small, onp.tanh: small,
    onp.arcsin: small, onp.arccos: small, onp.arctan: small, onp.arcsinh: small, onp.arctanh: small,
    onp.arccosh: lambda *s: cz(*s, re=(1.3, 2.5), im=(-0.6, 0.6)),
    onp.reciprocal: right, onp.sqrt: right, onp.log: right, onp.log2: right, onp.log10: right,
    onp.log1p: lambda *s: cz(*s, re=(-0.5, 1.0)),
    onp.conjugate: cz, onp.real: cz, onp.imag: cz, onp.absolute: cz,
}
for f, sample in UNARY.items():
    no_rule = f in (onp.positive,)  # autograd has no VJP for positive
    case(f, call(f.__name__), sample(3), id="vector", oracle=not no_rule)
    case(f, call(f.__name__), sample(2, 2), id="matrix", oracle=not no_rule)
    case(f, call(f.__name__), complex(sample()[()]), id="python-complex", oracle=not no_rule)
case(onp.conjugate, lambda m, z: m.conj(z) * z, cz(3), id="times-z")  # |z|^2 through conj
case(onp.real, lambda m, z: m.real(z * z) + m.imag(m.exp(z)), cz(2, 2), id="parts-of-holomorphic")
above, below = cz(2, re=(-2.5, 0.5), im=(0.3, 1.5)), cz(2, re=(-2.5, 0.5), im=(-1.5, -0.3))  # off the cut
case(onp.arccosh, call("arccosh"), onp.concatenate([above, below]), id="left-half-plane",
     oracle="autograd's 1/sqrt(z*z - 1) has the wrong sign where Re z < 0")
for z in (cz(3), complex(cz()[()])):  # z / |z|: not holomorphic
    case(onp.sign, call("sign"), z, id=type(z).__name__, oracle="autograd gives sign no gradient, complex or not")

# --- elementwise, two arguments, broadcasting, and complex mixed with real
PAIRS = [((3,), (3,)), ((2, 3), (3,)), ((), (2, 2)), ((2, 1), (1, 3))]
BINARY = {onp.add: (cz, cz), onp.subtract: (cz, cz), onp.multiply: (cz, cz), onp.divide: (cz, right),
          onp.power: (right, cz), onp.float_power: (right, cz)}
for f, (sx, sy) in BINARY.items():
    ag = f is not onp.float_power  # autograd has no VJP for float_power
    for xs, ys in PAIRS:
        case(f, call(f.__name__), sx(*xs), sy(*ys), id=f"{xs}x{ys}", oracle=ag)
    case(f, call(f.__name__), sx(2, 3), rl(3, lo=0.5, hi=1.5), id="complex-real", oracle=ag)
    case(f, call(f.__name__), rl(3, lo=0.5, hi=1.5), sy(2, 3), id="real-complex", oracle=ag)
    case(f, lambda m, y, f=f, x=complex(sx()[()]): getattr(m, f.__name__)(x, y), sy(3),
         id="python-complex-first", oracle=ag)
case(onp.power, lambda m, z: z ** 3, cz(4), id="cube")
case(onp.power, lambda m, z: m.power(z, 0.5), right(3), id="real-exponent")
# maximum and friends follow NumPy's lexicographic order (real part first); away from ties the
# result is one of the arguments, which receives the whole cotangent.
for f in (onp.maximum, onp.minimum, onp.fmax, onp.fmin):
    case(f, call(f.__name__), apart(4), apart(4) + 0.35, id="lexicographic")
    case(f, call(f.__name__), apart(3), onp.array([0.3, 1.1, 0.8]), id="complex-real")

# --- selection
MASK = onp.array([[True, False, True], [False, True, True]])
case(onp.where, lambda m, x, y: m.where(MASK, x, y), cz(2, 3), cz(3), oracle=NO_UNBROADCAST)
case(onp.where, lambda m, x, y: m.where(MASK, x, y), cz(2, 3), rl(2, 3), id="complex-real")
case(onp.where, lambda m, x: m.where(MASK, x, 0.0), cz(2, 3), id="constant")
case(onp.clip, lambda m, z: m.clip(z, 0.5, 2.5), apart(5), id="lexicographic")
case(onp.clip, lambda m, z: m.clip(z, 0.5, 2.0 + 1j), 1.0 + 2j, id="python-complex")
case(onp.maximum, call("maximum"), 2.0 + 1j, 1.0 + 3j, id="python-complex")
case(onp.minimum, lambda m, z: m.minimum(z, 1.0), 2.0 - 1j, id="python-complex-float")

# --- reductions (complex values, real results for var and std)
AXES = [dict(), dict(axis=0), dict(axis=1, keepdims=True), dict(axis=(0, 1))]
for f in (onp.sum, onp.mean, onp.prod, onp.var, onp.std, onp.cumsum):
    for kw in AXES if f is not onp.cumsum else [dict(), dict(axis=1)]:
        case(f, lambda m, z, f=f, kw=kw: getattr(m, f.__name__)(z, **kw), right(2, 3), id=str(kw))
case(onp.var, lambda m, z: m.var(z, axis=1, ddof=1), cz(2, 4), id="ddof")
case(onp.std, lambda m, z: m.std(z, ddof=1), cz(5), id="ddof")
for f in (onp.max, onp.min, onp.amax, onp.amin):
    case(f, lambda m, z, f=f: getattr(m, f.__name__)(z), apart(5), id="all")
    case(f, lambda m, z, f=f: getattr(m, f.__name__)(z, axis=1),
         onp.stack([apart(4), apart(4) + 1j]), id="axis")

# --- shapes
case(onp.reshape, lambda m, z: m.reshape(z, (3, 2)), cz(2, 3))
case(onp.reshape, lambda m, z: m.reshape(z, (6,), order="F"), cz(2, 3), id="fortran")
case(onp.transpose, lambda m, z: m.transpose(z, (2, 0, 1)), cz(2, 3, 2))
case(onp.swapaxes, lambda m, z: m.swapaxes(z, 0, 2), cz(2, 3, 2))
case(onp.moveaxis, lambda m, z: m.moveaxis(z, 0, -1), cz(2, 3, 2))
case(onp.expand_dims, lambda m, z: m.expand_dims(z, 1), cz(3))
case(onp.squeeze, lambda m, z: m.squeeze(z), cz(1, 3, 1))
case(onp.broadcast_to, lambda m, z: m.broadcast_to(z, (2, 3)), cz(3), oracle=False)  # "extra leading dims"
case(onp.flip, lambda m, z: m.flip(z, 1), cz(2, 3), oracle=False)  # autograd has no VJP for flip
case(onp.roll, lambda m, z: m.roll(z, 1, axis=1), cz(2, 3))
case(onp.copy, lambda m, z: m.copy(z), cz(2, 3), oracle=False)  # nor for copy
case(onp.astype, lambda m, x: m.astype(x, onp.complex128) * (1 + 2j), rl(3), id="real-to-complex")
case(onp.astype, lambda m, z: m.astype(z, onp.complex128), cz(3).astype(onp.complex64), id="complex64-up")
case(onp.concatenate, lambda m, z, x: m.concatenate([z, x, z]), cz(2, 3), rl(1, 3))
case(onp.stack, lambda m, z, x: m.stack([z, x], axis=1), cz(2, 3), rl(2, 3))

# --- products (no conjugation: they are bilinear; vdot, vecdot and vecmat conjugate their first argument)
for xs, ys in [((3,), (3,)), ((2, 3), (3,)), ((2, 3), (3, 2)), ((), (3,))]:
    case(onp.dot, call("dot"), cz(*xs), cz(*ys), id=f"{xs}.{ys}")
for xs, ys in [((3,), (3,)), ((2, 3), (3, 2)), ((2, 2, 3), (3,)), ((3,), (2, 3, 2))]:
    case(onp.matmul, call("matmul"), cz(*xs), cz(*ys), id=f"{xs}@{ys}")
case(onp.matmul, call("matmul"), cz(2, 3), rl(3, 2), id="complex-real")
case(onp.tensordot, lambda m, x, y: m.tensordot(x, y, axes=([1, 0], [0, 2])), cz(3, 2, 2), cz(2, 4, 3))
case(onp.tensordot, lambda m, x, y: m.tensordot(x, y, axes=1), rl(2, 3), cz(3, 2), id="real-complex")
case(onp.inner, call("inner"), cz(2, 3), cz(4, 3))
case(onp.outer, call("outer"), cz(3), cz(2))
for spec, shapes in [("ij,jk->ik", ((2, 3), (3, 2))), ("ii->", ((3, 3),)), ("i,i", ((3,), (3,))),
                     ("...j,j->...", ((2, 3), (3,))), ("ij,jk,k->i", ((2, 3), (3, 2), (2,)))]:
    case(onp.einsum, lambda m, *ops, s=spec: m.einsum(s, *ops), *[cz(*s) for s in shapes], id=spec,
         oracle=spec != "ii->")  # autograd cannot transpose a trace
case(onp.einsum, lambda m, x, y: m.einsum("ij,j->i", x, y), rl(2, 3), cz(3), id="real-complex")

# --- indexing, its transpose, and assignment
for index in [1, slice(None, None, -1), (Ellipsis, 0), (onp.array([0, 0, 2]),), onp.array([True, False, True]),
              (slice(None), onp.array([1, 1]))]:
    case(operator.getitem, lambda m, z, i=index: z[i] * 1.0, cz(3, 2), id=repr(index).replace(" ", ""))
case(_vjps.untake, lambda m, g: m._untake(g, onp.zeros((3, 2)), (onp.array([0, 0, 2]), slice(None))), cz(3, 2),
     id="repeats", oracle=False)  # wengert's own primitives: autograd has neither these nor x[i] = v
case(_vjps.setitem, lambda m, z, v: m._setitem(z, v, (slice(None), 0)), cz(3, 2), cz(3), id="column", oracle=False)
case(_vjps.setitem, lambda m, z, v: m._setitem(z, v, onp.array([0, 2, 0])), cz(3), cz(3), id="repeats",
     oracle=False)
case(_vjps.running_product, lambda m, z: m._running_product(z, -1), cz(2, 3), id="rows", oracle=False)
case(_vjps.windows, lambda m, z: m._windows(z, (2,), (-1,)), cz(2, 3), id="rows", oracle=False)
case(_vjps.full_convolution, lambda m, a, v: m._full_convolution(a, v), cz(4), cz(3), id="pair", oracle=False)


# Assignment as users write it (x[i] = v, x += y, x.at[i]): recorded as setitem; autograd has no
# assignment. The same code runs on plain arrays for the values.
def assign_complex(m: Any, z: Any, v: Any) -> Any:
    y = z * 1.0
    y[1] = v * 2j
    y[0, ::2] += v[:2] ** 2
    y[:, 1] *= 1j
    return y


def assign_real_into_complex(m: Any, z: Any, x: Any) -> Any:
    y = z * 1.0
    y[0] = x  # a real value: its gradient is real
    y[[1, 1], [0, 2]] = x[:2] * 3.0  # an advanced index
    y -= x[2]
    return y


def at_complex(m: Any, z: Any, v: Any) -> Any:
    y = wnp.at(z)[onp.array([0, 1, 0]), 2].add(v)  # repeated indices accumulate
    return wnp.at(y)[1].multiply(1j + v[1]) + wnp.at(z)[:, 0].set(v[:2])


for program in (assign_complex, at_complex):
    case(_vjps.setitem, program, cz(2, 3), cz(3), id=program.__name__, oracle=False)
case(_vjps.setitem, assign_real_into_complex, cz(2, 3), rl(3), id="assign_real_into_complex", oracle=False)

# complex results of real arguments, real results of complex ones
case(onp.multiply, lambda m, x: 1j * x + m.exp(1j * x) * x, rl(4), id="real-to-complex")
case(onp.absolute, lambda m, z: m.abs(z) + m.angle(z) * m.var(z), cz(4), id="complex-to-real")

# composites (wengert/numpy/_composite.py) and ufunc methods on complex values
case(onp.array, lambda m, z, x: m.array([z[0], x * 1j, 2.0 + z[1] * x]), cz(2), 0.7)
case(onp.asarray, lambda m, x: m.asarray(x, dtype=complex) * (1 - 1j), rl(3), oracle=False)
case(onp.full_like, lambda m, v: m.full_like(onp.zeros(3, complex), v) * onp.arange(1.0, 4.0), 0.5 - 0.5j,
     oracle="autograd's full_like does not follow the fill value: its gradient is 0")
case(onp.ravel, lambda m, z: m.ravel(m.transpose(z), order="K") * onp.arange(6.0), cz(2, 3), oracle=False)
case(onp.split, lambda m, z: m.split(z, 3, axis=1)[1] * 2j, cz(2, 3))
case(onp.einsum, lambda m, x, y: m.einsum(x, [0, 1], y, [1, 2], [0, 2]), cz(2, 3), cz(3, 2), id="sublists")
case("add.reduce", lambda m, z: m.add.reduce(z, axis=1), cz(2, 3), oracle=False)
case("multiply.accumulate", lambda m, z: m.multiply.accumulate(z), cz(4), oracle=False)
case("maximum.reduce", lambda m, z: m.maximum.reduce(z), apart(4), oracle=False)
case("subtract.outer", lambda m, z, x: m.subtract.outer(z, x), cz(3), rl(2), oracle=False)


# ----------------------------------------------------------------------------- derived functions
def d(key: Any, f: Callable, *args: Any, id: str = "", oracle: bool = False) -> None:
    """A case for a derived function; autograd has rules for few of them (marked ``oracle``)."""
    case(key, f, *args, id=id, oracle=oracle)


with_nan = cz(2, 3)
with_nan[0, 1] = onp.nan + 0j
NAN = onp.isnan(with_nan)


def nan_in(z: Any, m: Any) -> Any:
    return m.where(NAN, onp.nan + 0j, z)


# elementwise
d(onp.sinc, call("sinc"), onp.array([0.3 + 0.2j, -1.2 + 0.4j, 1e-5j]), oracle=True)
d(onp.sinc, call("sinc"), onp.array([0.3 + 0.2j, 0.0j]), id="at-zero", oracle="autograd's derivative is nan at 0")
d(onp.angle, call("angle"), cz(4), oracle=True)
d(onp.angle, lambda m, z: m.angle(z, deg=True), cz(3), id="deg")
d(onp.nan_to_num, lambda m, z: m.nan_to_num(nan_in(z, m), nan=2.0), cz(2, 3))
d(onp.real_if_close, lambda m, z: m.real_if_close(z), cz(3), oracle=True)
d(onp.real_if_close, lambda m, x: m.real_if_close(x + 0j), rl(3), id="real", oracle=True)
d(onp.vecdot, call("vecdot"), cz(2, 3), cz(3))
d(onp.matvec, call("matvec"), cz(2, 3), cz(3))
d(onp.vecmat, call("vecmat"), cz(3), cz(3, 2))
d(onp.vdot, call("vdot"), cz(2, 3), cz(6))
# reductions
for key, kw in [(onp.nansum, {}), (onp.nanprod, {"axis": 1}), (onp.nanmean, {"axis": 0}), (onp.nanvar, {"axis": 1}),
                (onp.nanstd, {}), (onp.nancumsum, {"axis": 1}), (onp.nancumprod, {"axis": 1})]:
    d(key, lambda m, z, key=key, kw=kw: getattr(m, key.__name__)(nan_in(z, m), **kw), right(2, 3))
for key in (onp.nanmax, onp.nanmin):
    d(key, lambda m, z, key=key: getattr(m, key.__name__)(m.where(NAN[0], onp.nan + 0j, z)), apart(3))
d(onp.cumprod, lambda m, z: m.cumprod(z, axis=1), cz(2, 3))
d(onp.cumulative_sum, lambda m, z: m.cumulative_sum(z, axis=0, include_initial=True), cz(3, 2))
d(onp.cumulative_prod, lambda m, z: m.cumulative_prod(z), cz(4))
d(onp.average, lambda m, z, w: m.average(z, axis=1, weights=w), cz(2, 3), rl(3, lo=0.5, hi=1.5))
d(onp.average, lambda m, z, w: m.average(z, weights=w), cz(3), cz(3) + 2, id="complex-weights")
d(onp.ptp, lambda m, z: m.ptp(z), apart(5))
d(onp.median, lambda m, z: m.median(z), apart(6))
d(onp.median, lambda m, z: m.median(z), apart(5), id="odd")
d(onp.nanmedian, lambda m, z: m.nanmedian(m.where(NAN[0], onp.nan + 0j, z)), apart(3))
# differences and integrals
d(onp.diff, lambda m, z: m.diff(z, n=2, axis=0), cz(4, 2), oracle=True)
d(onp.ediff1d, lambda m, z: m.ediff1d(z, to_begin=[1j]), cz(4))
d(onp.gradient, lambda m, z: m.gradient(z, axis=0), cz(5), oracle=True)
d(onp.gradient, lambda m, z: m.gradient(z, 0.5, edge_order=2), cz(5), id="edge2")
d(onp.gradient, lambda m, z, x: m.gradient(z, x), cz(4), onp.cumsum(rl(4, lo=0.5, hi=1.5)), id="coordinates")
d(onp.trapezoid, lambda m, z, x: m.trapezoid(z, x), cz(5), onp.cumsum(rl(5, lo=0.5, hi=1.5)))
d(onp.interp, lambda m, x, fp: m.interp(x, onp.arange(4.0), fp), onp.array([-0.5, 0.3, 1.7, 3.5]), cz(4))
# sorting and selection (sorting is lexicographic, as in NumPy)
d(onp.sort, lambda m, z: m.sort(z), apart(5), oracle=True)
d(onp.sort, lambda m, z: m.sort(z, axis=0), onp.stack([apart(3), apart(3)], axis=1), id="axis0")
d(onp.partition, lambda m, z: m.partition(z, 2)[:3], apart(6), oracle=True)
d(onp.take, lambda m, z: m.take(z, [0, 2, 2, -1]), cz(2, 3))
d(onp.take_along_axis, lambda m, z: m.take_along_axis(z, onp.array([[0, 2], [1, 1]]), axis=1), cz(2, 3))
d(onp.compress, lambda m, z: m.compress([True, False, True], z, axis=1), cz(2, 3))
d(onp.extract, lambda m, z: m.extract(MASK, z), cz(2, 3))
d(onp.select, lambda m, x, y: m.select([MASK[0], MASK[1]], [x, y], default=1j), cz(3), cz(3), oracle=True)
d(onp.choose, lambda m, x, y: m.choose(onp.array([0, 1, 1]), [x, y]), cz(3), cz(3))
d(onp.unique, lambda m, z: m.unique(m.concatenate([z, z[:2]])), apart(4))
for key in (onp.unique_all, onp.unique_counts, onp.unique_inverse):
    d(key, lambda m, z, key=key: getattr(m, key.__name__)(m.concatenate([z, z[1:3]])).values, apart(4))
d(onp.unique_values, lambda m, z: m.sort(m.unique_values(m.concatenate([z, z[1:3]]))), apart(4))
d(onp.union1d, lambda m, x, y: m.union1d(x, m.concatenate([y, x[:1]])), apart(3), apart(2) + 5)
d(onp.intersect1d, lambda m, x, y: m.intersect1d(m.concatenate([x, y[1:]]), y), apart(3), apart(3) + 5)
d(onp.setdiff1d, lambda m, x, y: m.setdiff1d(x, m.concatenate([y, x[:2]])), apart(4), apart(2) + 5)
d(onp.setxor1d, lambda m, x, y: m.setxor1d(m.concatenate([x, y[:1]]), y), apart(3), apart(3) + 5)
d(onp.sort_complex, call("sort_complex"), apart(5))
d(onp.trim_zeros, lambda m, z: m.trim_zeros(z * onp.array([0.0, 1.0, 1.0, 0.0])), cz(4))
SAMPLE = R.uniform(0.0, 1.0, 6)
d(onp.histogram, lambda m, w: m.histogram(SAMPLE, bins=3, weights=w)[0], cz(6))
d(onp.histogram_bin_edges, lambda m, a: m.histogram_bin_edges(a, bins=3), cz(6))  # lexicographic extremes
d(onp.histogram, lambda m, w: m.histogram(SAMPLE, bins=[0.0, 0.3, 1.0], weights=w, density=True)[0], cz(6) + 2,
  id="density")


d(onp.put_along_axis, lambda m, a, v: written(m, "put_along_axis", a, onp.array([[0], [2]]), v, 1), cz(2, 3), cz(2, 1))
d(onp.put, lambda m, a, v: written(m, "put", a, [0, 4], v), cz(2, 3), cz(2))
d(onp.place, lambda m, a, v: written(m, "place", a, MASK[0], v), cz(3), cz(2))
d(onp.putmask, lambda m, a, v: written(m, "putmask", a, MASK, v), cz(2, 3), cz(4))
d(onp.fill_diagonal, lambda m, a, v: written(m, "fill_diagonal", a, v), cz(3, 3), 0.5 - 1j)
# rearranging
d(onp.rot90, lambda m, z: m.rot90(z), cz(2, 3), oracle=True)
d(onp.flipud, call("flipud"), cz(3, 2), oracle=True)
d(onp.fliplr, call("fliplr"), cz(3, 2), oracle=True)
d(onp.tile, lambda m, z: m.tile(z, (2, 1)), cz(2, 2), oracle=True)
d(onp.repeat, lambda m, z: m.repeat(z, 2, axis=0), cz(2, 2), oracle=True)
d(onp.pad, lambda m, z: m.pad(z, (1, 2), constant_values=0.5), cz(3))
d(onp.pad, lambda m, z: m.pad(z, (2, 1), mode="reflect"), cz(3), id="reflect")
d(onp.resize, lambda m, z: m.resize(z, (3, 3)), cz(2, 2))
d(onp.append, lambda m, z, x: m.append(z, x), cz(2), rl(2), oracle=True)
d(onp.delete, lambda m, z: m.delete(z, [0, 2]), cz(4))
d(onp.lib.stride_tricks.sliding_window_view, lambda m, z: onp.lib.stride_tricks.sliding_window_view(z, 2), cz(4))
d(onp.insert, lambda m, z, v: m.insert(z, 1, v), cz(3), cz(1))
d(onp.rollaxis, lambda m, z: m.rollaxis(z, 2), cz(2, 3, 2), oracle=True)
d(onp.matrix_transpose, call("matrix_transpose"), cz(2, 2, 3))
d(onp.unstack, lambda m, z: m.unstack(z)[1], cz(2, 3))
d(onp.broadcast_arrays, lambda m, x, y: m.broadcast_arrays(x, y)[0] * m.broadcast_arrays(x, y)[1], cz(3, 1), cz(2))
d(onp.meshgrid, lambda m, x, y: m.meshgrid(x, y)[0] * m.meshgrid(x, y)[1], cz(3), cz(2))
for key in (onp.atleast_1d, onp.atleast_2d, onp.atleast_3d):
    d(key, lambda m, z, key=key: getattr(m, key.__name__)(z) * 1.0, cz(2), oracle=True)
for key in (onp.hstack, onp.vstack, onp.dstack, onp.column_stack):
    d(key, lambda m, x, y, key=key: getattr(m, key.__name__)([x, y]), cz(2, 2), rl(2, 2),
      oracle=key is not onp.dstack)
d(onp.row_stack, lambda m, x, y: m.row_stack([x, y]), cz(3), cz(2, 3), oracle=True)
for key in (onp.hsplit, onp.vsplit, onp.dsplit):
    d(key, lambda m, z, key=key: getattr(m, key.__name__)(z, 2)[1] * 1.0, cz(2, 2, 2), oracle=True)
d(onp.block, lambda m, a, b: m.block([[a, b]]), cz(2, 2), cz(2, 1))
# matrices
d(onp.diag, lambda m, v: m.diag(v, k=1), cz(3), oracle=True)
d(onp.diag, lambda m, a: m.diag(a), cz(3, 3), id="extract", oracle=True)
d(onp.diagflat, call("diagflat"), cz(2, 2))
d(onp.diagonal, lambda m, a: m.diagonal(a, offset=1), cz(3, 4))
d(onp.trace, call("trace"), cz(3, 3), oracle=True)
d(onp.triu, call("triu"), cz(3, 3), oracle=True)
d(onp.tril, lambda m, a: m.tril(a, -1), cz(3, 3), oracle=True)
d(onp.kron, call("kron"), cz(2, 2), cz(2), oracle=True)
d(onp.cross, call("cross"), cz(2, 3), cz(3), oracle=NO_UNBROADCAST)
d(onp.cross, call("cross"), cz(2, 3), cz(2, 3), id="same-shape", oracle=True)
# constructing
d(onp.linspace, lambda m, a, b: m.linspace(a, b, 4), 0.5 + 1j, -1.0 + 0.3j, oracle=True)
d(onp.logspace, lambda m, a, b: m.logspace(a, b, 3), 0.2 + 0.5j, 0.7 - 0.2j)
d(onp.geomspace, lambda m, a, b: m.geomspace(a, b, 4), 1.0 + 1.0j, 2.0 - 0.5j)
d(onp.full, lambda m, v: m.full((2, 2), v), 0.5 - 1.5j, oracle=True)
d(onp.asarray_chkfinite, lambda m, z: m.asarray_chkfinite(z) * 1.0, cz(3))
d(onp.require, lambda m, z: m.require(z) * 1.0, cz(3))
d(onp.vander, lambda m, z: m.vander(z, 3), cz(3))
# polynomials and signals
d(onp.polyval, call("polyval"), cz(3), cz(2))
d(onp.polyder, lambda m, p: m.polyder(p), cz(4))
d(onp.polyint, lambda m, p: m.polyint(p), cz(3))
d(onp.polyadd, call("polyadd"), cz(3), cz(2))
d(onp.polysub, call("polysub"), cz(2), cz(3))
d(onp.polymul, call("polymul"), cz(3), cz(2))
d(onp.polydiv, lambda m, u, v: m.polydiv(u, v)[0], cz(4), right(2))
d(onp.poly, call("poly"), cz(3))
d(onp.roots, call("roots"), onp.array([1.0 + 0.5j, -0.3 + 1.0j, 2.0 - 1.0j]))
d(onp.polyfit, lambda m, x, y: m.polyfit(x, y, 1), onp.linspace(0.0, 1.0, 4) + 0.1 * rl(4), cz(4))
d(onp.convolve, lambda m, a, v: m.convolve(a, v), cz(4), cz(2))
d(onp.correlate, lambda m, a, v: m.correlate(a, v, "full"), cz(4), cz(2))
# functions of functions, statistics
d(onp.piecewise, lambda m, z: m.piecewise(z, [onp.array([True, False, True])], [lambda v: v ** 2, m.sin]), cz(3))
d(onp.apply_along_axis, lambda m, z: m.apply_along_axis(lambda v: v * m.sum(v), 1, z), cz(2, 3))
d(onp.apply_over_axes, lambda m, z: m.apply_over_axes(m.sum, z * z, [0]), cz(2, 3))
d(onp.cov, call("cov"), cz(2, 4))
d(onp.corrcoef, call("corrcoef"), cz(2, 4))


# ----------------------------------------------------------------------------- linear algebra and SciPy
# Complex cases beyond tests/test_linalg.py: the composites it checks on real matrices only.
def well(*shape: int) -> Any:
    return cz(*shape) + 3 * onp.eye(shape[-1])


case(onp.linalg.matrix_power, lambda m, a: m.linalg.matrix_power(a, 3), well(3, 3) / 3, id="n=3", oracle=False)
case(onp.linalg.matrix_power, lambda m, a: m.linalg.matrix_power(a, -2), well(2, 2), id="n=-2", oracle=False)
case(onp.linalg.multi_dot, lambda m, a, b, c: m.linalg.multi_dot([a, b, c]), cz(3), cz(3, 2), cz(2))
case(onp.linalg.lstsq, lambda m, a, b: m.linalg.lstsq(a, b)[0], cz(4, 2), cz(4), oracle=False)
case(onp.linalg.tensorsolve, lambda m, a, b: m.linalg.tensorsolve(a, b), well(6, 6).reshape(2, 3, 6), cz(2, 3),
     oracle=False)
case(onp.linalg.tensorinv, lambda m, a: m.linalg.tensorinv(a, ind=1), well(4, 4).reshape(4, 2, 2), oracle=False)
case(onp.linalg.cond, lambda m, a: m.linalg.cond(a), well(3, 3), oracle=False)
case(onp.linalg.cond, lambda m, a: m.linalg.cond(a, "fro"), well(3, 3), id="fro", oracle=False)
case(onp.linalg.matrix_norm, lambda m, a: m.linalg.matrix_norm(a, ord="nuc"), cz(2, 3), oracle=False)
case(onp.linalg.vector_norm, lambda m, a: m.linalg.vector_norm(a, ord=3, axis=1), cz(2, 3), oracle=False)
case(onp.linalg.matmul, lambda m, a, b: m.linalg.matmul(a, b), cz(2, 3), cz(3, 2), oracle=False)
case(onp.linalg.tensordot, lambda m, a, b: m.linalg.tensordot(a, b, axes=1), cz(2, 3), cz(3), oracle=False)
case(onp.linalg.matrix_transpose, lambda m, a: m.linalg.matrix_transpose(a), cz(2, 3), oracle=False)
case(onp.linalg.diagonal, lambda m, a: m.linalg.diagonal(a, offset=1), cz(2, 3, 3), oracle=False)
case(onp.linalg.trace, lambda m, a: m.linalg.trace(a), cz(2, 3, 3), oracle=False)
case(onp.linalg.cross, lambda m, a, b: m.linalg.cross(a, b), cz(2, 3), cz(3), oracle=False)
# autograd as an oracle for complex linear algebra (tests/test_linalg.py checks these with
# finite differences only); eigh and svd through functions invariant under the eigenvectors' phases
case(onp.linalg.inv, lambda m, a: m.linalg.inv(a), well(3, 3))
case(onp.linalg.solve, lambda m, a, b: m.linalg.solve(a, b), well(3, 3), cz(3, 2))
case(onp.linalg.det, lambda m, a: m.linalg.det(a), well(3, 3))
case(onp.linalg.slogdet, lambda m, a: m.linalg.slogdet(a)[1], well(3, 3))
case(onp.linalg.eigh, lambda m, a: m.linalg.eigh(a + m.conj(m.swapaxes(a, -1, -2)))[0], cz(3, 3))
case(onp.linalg.svd, lambda m, a: m.linalg.svd(a, compute_uv=False), cz(3, 2))
# scipy.special's holomorphic gamma functions (the others are in tests/test_scipy.py); their second
# derivatives need polygamma at complex points, which SciPy lacks and wengert sums as a series
SPECIAL = {wnp: wsp, anp: asp}  # the scipy.special of each module (SciPy's own for NumPy)
for key in (sc.gamma, sc.loggamma, sc.rgamma, sc.psi):
    case(key, lambda m, z, key=key: getattr(SPECIAL.get(m, sc), key.__name__)(z), right(3) + 1,
         oracle=key not in (sc.loggamma, sc.psi))  # autograd has no loggamma, nor psi' off the real line
case(sc.psi, lambda m, z: SPECIAL.get(m, sc).psi(z), cz(4, re=(-30.0, 20.0), im=(0.3, 3.0)),
     id="left-half-plane", oracle=False)  # where the series is summed term by term for longest

# the tables the other test files keep, read for their complex cases
ELSEWHERE = ["test_linalg", "test_fft", "test_scipy"]


# ============================================================================= the cases
def _weights(shape: tuple) -> Any:
    """Fixed complex weights for the objective."""
    k = onp.arange(int(onp.prod(shape)), dtype=float).reshape(shape)
    return onp.cos(1.0 + k) + 1j * onp.sin(2.0 + 0.5 * k)


def objective(c: Case, m: Any) -> Callable:
    """The real function ``sum(Re(w * out)) + sum(|out|^2) / 4`` of the case's arguments."""
    def f(*args: Any) -> Any:
        out = c.f(m, *args)
        w = _weights(onp.shape(wengert.stop_gradient(out) if m is wnp else getattr(out, "_value", out)))
        return m.sum(m.real(w * out)) + 0.25 * m.sum(m.real(out * m.conj(out)))
    return f


class _Plain:
    """NumPy, plus plain versions of wengert's own indexing primitives."""
    _untake, _setitem = staticmethod(_vjps.untake), staticmethod(_vjps.setitem)
    _running_product, _windows = staticmethod(_vjps.running_product), staticmethod(_vjps.windows)
    _full_convolution = staticmethod(_vjps.full_convolution)

    def __getattr__(self, name: str) -> Any:
        return getattr(onp, name)


pytestmark = [pytest.mark.filterwarnings("ignore:`row_stack` alias is deprecated"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_value_matches_numpy(c: Case) -> None:
    expected = c.f(_Plain(), *c.args)
    out, _ = wengert.vjp(lambda *xs: c.f(wnp, *xs), *c.args)
    onp.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert onp.result_type(out) == onp.result_type(expected)


def _autograd(c: Case) -> list:
    """autograd's gradient for each argument (the real part for a real argument, which is the
    gradient under the convention: autograd sometimes leaves it complex)."""
    with warnings.catch_warnings(), onp.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", onp.exceptions.ComplexWarning)  # autograd's casts to real arguments
        warnings.filterwarnings("ignore", "Output seems independent of input")
        grads = [autograd.grad(objective(c, anp), argnum=k)(*c.args) for k in range(len(c.args))]
    return [g if onp.iscomplexobj(x) else onp.real(g) for g, x in zip(grads, c.args)]


ORACLE = [c for c in CASES if c.oracle is True]


@pytest.mark.parametrize("c", ORACLE, ids=[c.id for c in ORACLE])
def test_gradient_matches_autograd(c: Case) -> None:
    got = wengert.grad(objective(c, wnp), argnum=tuple(range(len(c.args))))(*c.args)
    for x, g, expected in zip(c.args, got, _autograd(c)):
        onp.testing.assert_allclose(g, expected, rtol=1e-9, atol=1e-10)
        assert onp.result_type(g) == onp.result_type(x)  # complex for complex, real for real


def test_cases_without_autograd_are_beyond_it() -> None:
    """A case is compared with autograd unless autograd cannot differentiate it (no VJP rule, or
    a function it does not have) or is wrong there (then its answer must differ from wengert's,
    which the finite differences below confirm): an outdated mark would hide a comparison."""
    could, agrees = [], []
    for c in CASES:
        if c.oracle is True:
            continue
        try:
            expected = _autograd(c)
        except Exception:  # noqa: BLE001 - any failure shows that autograd cannot
            continue
        if c.oracle is False:
            could.append(c.id)
            continue
        got = wengert.grad(objective(c, wnp), argnum=tuple(range(len(c.args))))(*c.args)
        if all(onp.shape(g) == onp.shape(e) and onp.allclose(g, e, rtol=1e-9, atol=1e-10)
               for g, e in zip(got, expected)):
            agrees.append(c.id)
    assert not could, f"autograd differentiates these: compare them with it: {could}"
    assert not agrees, f"autograd agrees with wengert on these after all: {agrees}"


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_derivatives_match_finite_differences(c: Case) -> None:
    """Along the real and the imaginary direction of every coordinate, reverse and forward mode."""
    wengert.gradcheck(lambda *xs: c.f(wnp, *xs), *c.args, order=2)


def _direction(x: Any, rng: Any) -> Any:
    shape = onp.shape(x)
    p = rng.normal(size=shape)
    if onp.iscomplexobj(x):
        p = p + 1j * rng.normal(size=shape)
    return type(x)(p) if isinstance(x, (float, complex)) else p.astype(onp.result_type(x))


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_forward_mode_is_the_real_pairing_of_the_gradient(c: Case) -> None:
    """The derivative along ``p`` from forward mode is ``Re(sum(p * grad))`` from reverse mode."""
    rng = onp.random.default_rng(5)
    f = objective(c, wnp)
    ps = tuple(_direction(x, rng) for x in c.args)
    gs = wengert.grad(f, argnum=tuple(range(len(c.args))))(*c.args)
    _, tangent = wengert.jvp(f, c.args, ps)
    expected = sum(onp.real(onp.sum(p * g)) for p, g in zip(ps, gs))
    assert onp.isrealobj(tangent)
    low = any(onp.result_type(x) == onp.complex64 for x in c.args)
    assert float(tangent) == pytest.approx(expected, rel=1e-5 if low else 1e-9, abs=1e-10)


# ============================================================================= coverage
def _complex_keys_elsewhere() -> set:
    """The keys of the cases with a complex argument in the other test files' tables."""
    keys: set = set()
    for name in ELSEWHERE:
        for c in importlib.import_module(name).CASES:
            if any(onp.iscomplexobj(leaf) for leaf in flatten(c.args)[0]):
                own = getattr(c, "keys", None)
                keys |= set(own) if isinstance(own, tuple) else {c.key}
    return keys


NO_LOOP = "NumPy (SciPy) has no complex version and raises TypeError on complex input"
REAL_ONLY: dict[Any, str] = {
    **{f: NO_LOOP for f in (onp.remainder, onp.fmod, onp.cbrt, onp.fabs, onp.copysign, onp.ldexp, onp.nextafter,
                            onp.logaddexp, onp.logaddexp2, onp.arctan2, onp.hypot, onp.deg2rad, onp.rad2deg,
                            onp.degrees, onp.radians, onp.heaviside, onp.frexp, onp.unwrap, onp.quantile,
                            onp.percentile, onp.nanquantile, onp.nanpercentile, onp.bincount, onp.histogram2d,
                            onp.histogramdd, onp.i0, onp.fft.rfft, onp.fft.rfft2, onp.fft.rfftn, onp.fft.ihfft)},
    **{f: NO_LOOP for f in (sc.erfinv, sc.erfcinv, sc.ndtri, sc.ndtri_exp, sc.gammaln, sc.polygamma, sc.poch,
                            sc.beta, sc.betaln, sc.gammainc, sc.gammaincc, sc.betainc, sc.betaincc, sc.stdtr,
                            sc.zeta, sc.expit, sc.logit, sc.log_expit, sc.entr, sc.rel_entr, sc.kl_div, sc.cosm1,
                            sc.powm1, sc.exp2, sc.exp10, sc.i0, sc.i1, sc.i0e, sc.i1e, sc.j0, sc.j1, sc.y0, sc.y1)},
    onp.arange: "NumPy's ranges with a complex bound or step are empty",
    onp.kaiser: "its beta goes through i0, which NumPy defines for real numbers only",
    SP._zeta: "complex only in x, which has no derivative rule (q, the differentiable argument, is real)",
    SP._riemann_zeta: "complex only in x, which has no derivative rule",
    L._norm2: "the squared-magnitude helper of norm: complex norms reach it through abs (norm's complex cases)",
}
def _registered() -> list:
    """Every differentiable primitive, derived function and composite of the NumPy and SciPy mirrors."""
    return list(PRIMITIVES) + list(_derived.DERIVED) + L.COMPOSITES + F.COMPOSITES + S.COMPOSITES


def test_every_function_has_a_complex_case_or_a_reason() -> None:
    covered = {c.key for c in CASES} | _complex_keys_elsewhere()
    missing = [getattr(k, "__name__", k) for k in _registered()
               if k not in covered and k not in REAL_ONLY]
    assert not missing, f"no complex case and not listed as real-only: {missing}"
    stale = [getattr(k, "__name__", k) for k in REAL_ONLY if k in covered]
    assert not stale, f"listed as real-only but given a complex case: {stale}"
    unknown = [getattr(k, "__name__", k) for k in REAL_ONLY if k not in _registered()]
    assert not unknown, f"listed but not registered (renamed or removed?): {unknown}"


Z2 = onp.array([0.5 + 0.5j, 0.25 + 0.2j])
PROBES = {  # f: (arguments, the position of the complex one) where the default does not fit
    onp.ldexp: ((Z2, 2), 0), onp.quantile: ((Z2, 0.5), 0), onp.percentile: ((Z2, 50.0), 0),
    onp.nanquantile: ((Z2, 0.5), 0), onp.nanpercentile: ((Z2, 50.0), 0), onp.bincount: ((onp.array([0, 1]), Z2), 1),
    onp.histogram2d: ((Z2.real, Z2.imag, 2, None, None, Z2), 5), onp.histogramdd: ((Z2.real, 2, None, None, Z2), 4),
    sc.polygamma: ((1, Z2), 1), sc.zeta: ((2.0, Z2 + 1), 1), onp.fft.rfft2: ((Z2.reshape(1, 2),), 0),
}
REFUSED = [f for f, why in REAL_ONLY.items() if why == NO_LOOP]


@pytest.mark.parametrize("f", REFUSED, ids=[("scipy." if f in SP.VJPS else "numpy.") + f.__name__ for f in REFUSED])
def test_real_only_functions_refuse_complex_input_as_numpy_does(f: Any) -> None:
    """The reason given is true: NumPy (SciPy) raises TypeError, and so does wengert on a traced value."""
    args, k = PROBES.get(f, ((Z2,) + (0.5,) * (getattr(f, "nin", 1) - 1), 0))
    with pytest.raises(TypeError):
        f(*args)
    wrapped = getattr(wsp if f in SP.VJPS else wnp.fft if f.__module__ == "numpy.fft" else wnp, f.__name__)

    def traced(z: Any) -> Any:
        return wnp.sum(wnp.real(wrapped(*args[:k], z, *args[k + 1:])))
    with pytest.raises(TypeError):
        wengert.grad(traced)(args[k])


# ============================================================================= the convention, by example
def test_squared_modulus_gives_twice_the_conjugate_as_autograd() -> None:
    """|z|^2 = x^2 + y^2: dL/dx - i dL/dy = 2x - 2iy = 2 conj(z)."""
    z = 3.0 + 4.0j
    g = wengert.grad(lambda z: wnp.abs(z) ** 2)(z)
    assert g == 6.0 - 8.0j and type(g) is complex
    assert autograd.grad(lambda z: anp.abs(z) ** 2)(z) == g


def test_convention_is_jaxs_too() -> None:
    """The same convention as JAX (installed with the bench extra, so not always here)."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    z = 3.0 + 4.0j
    g = wengert.grad(lambda z: wnp.abs(z) ** 2)(z)
    with jax.enable_x64(True):
        assert complex(jax.grad(lambda z: jnp.abs(z) ** 2)(z)) == g
        zs = cz(4)
        f = lambda m: lambda z: m.sum(m.angle(z) * m.real(z) + m.imag(m.conj(z) * m.sin(z)))  # noqa: E731
        onp.testing.assert_allclose(wengert.grad(f(wnp))(zs), jax.grad(f(jnp))(zs), rtol=1e-12)


def test_holomorphic_derivative_is_the_gradient_of_the_real_part() -> None:
    """For holomorphic f = u + iv, grad(Re f) = u_x - i u_y = u_x + i v_x = f'(z) (Cauchy-Riemann)
    and grad(Im f) = -i f'(z); the VJP with cotangent 1 and the JVP with tangent 1 are f'(z)."""
    z = right(5)
    for f, df in ((wnp.sin, onp.cos), (wnp.exp, onp.exp), (lambda z: z ** 3, lambda z: 3 * z ** 2),
                  (wnp.log, lambda z: 1 / z)):
        onp.testing.assert_allclose(wengert.grad(lambda z: wnp.sum(wnp.real(f(z))))(z), df(z), rtol=1e-12)
        onp.testing.assert_allclose(wengert.grad(lambda z: wnp.sum(wnp.imag(f(z))))(z), -1j * df(z), rtol=1e-12)
        onp.testing.assert_allclose(wengert.vjp(f, z)[1](onp.ones(5))[0], df(z), rtol=1e-12)
        onp.testing.assert_allclose(wengert.elementwise_grad(f)(z), df(z), rtol=1e-12)
        onp.testing.assert_allclose(wengert.jvp(f, (z,), (onp.ones(5),))[1], df(z), rtol=1e-12)
        onp.testing.assert_allclose(wengert.jvp(f, (z,), (1j * onp.ones(5),))[1], 1j * df(z), rtol=1e-12)


def test_non_holomorphic_parts() -> None:
    """Re, Im, conj and |.| are not holomorphic: their VJPs with cotangent 1 are what the
    convention makes of d/dx - i d/dy, and forward mode is not complex-linear for them."""
    z = 1.5 - 2.0j
    assert wengert.grad(lambda z: wnp.real(z))(z) == 1.0
    assert wengert.grad(lambda z: wnp.imag(z))(z) == -1j
    assert wengert.grad(lambda z: wnp.abs(z))(z) == pytest.approx(onp.conj(z) / abs(z))
    assert wengert.grad(lambda z: wnp.angle(z))(z) == pytest.approx(-1j * onp.conj(z) / abs(z) ** 2)
    assert wengert.vjp(wnp.conj, z)[1](1.0)[0] == 1.0  # conj's rule conjugates the cotangent
    _, t_real = wengert.jvp(wnp.conj, (z,), (1.0 + 0j,))
    _, t_imag = wengert.jvp(wnp.conj, (z,), (1j,))
    assert (t_real, t_imag) == (1.0, -1j)  # not i times the first: conj is not complex-linear


@pytest.mark.parametrize("f, z, w, winner", [
    (wnp.maximum, 1.0 + 5.0j, 2.0 + 0.0j, 1),  # the real part decides, not the modulus
    (wnp.maximum, 2.0 - 1.0j, 2.0 + 1.0j, 1),  # equal real parts: the imaginary part decides
    (wnp.minimum, 2.0 - 1.0j, 2.0 + 1.0j, 0),
    (wnp.fmax, -3.0 + 0.0j, -4.0 + 9.0j, 0),
])
def test_extremes_of_complex_numbers_follow_numpys_lexicographic_order(f: Callable, z: complex, w: complex,
                                                                      winner: int) -> None:
    """NumPy orders complex numbers by real part, then imaginary part; wengert follows it, and
    the cotangent goes to the argument NumPy picked."""
    out = f(z, w)
    assert out == onp.maximum(z, w) if f in (wnp.maximum, wnp.fmax) else out == onp.minimum(z, w)
    assert out == (z, w)[winner]
    gz, gw = wengert.grad(lambda z, w: wnp.real(f(z, w) * (1.0 - 2.0j)), argnum=(0, 1))(z, w)
    assert (gz, gw)[winner] == 1.0 - 2.0j and (gz, gw)[1 - winner] == 0
    values = onp.array([1.0 + 5.0j, 2.0 - 7.0j, 2.0 - 8.0j, -1.0 + 9.0j])
    g = wengert.grad(lambda v: wnp.real(wnp.max(v)))(values)
    onp.testing.assert_array_equal(g, [0, 1, 0, 0])  # 2-7j, not the largest modulus 2-8j
    onp.testing.assert_array_equal(wengert.grad(lambda v: wnp.real(wnp.sort(v)[0]))(values), [0, 0, 0, 1])


def test_complex_ties_share_the_cotangent() -> None:
    z = onp.array([1.0 + 1.0j, 2.0 + 1.0j])
    g = wengert.grad(lambda z: wnp.real(wnp.sum(wnp.maximum(z, onp.array([1.0 + 1.0j, 2.0 + 0.0j])))))(z)
    onp.testing.assert_array_equal(g, [0.5, 1.0])  # an exact tie, then a win on the imaginary part


def test_python_complex_and_numpy_complex_scalars_keep_their_type() -> None:
    f = lambda z: wnp.abs(wnp.exp(z) + z) ** 2  # noqa: E731
    g = wengert.grad(f)(0.3 + 0.4j)
    assert type(g) is complex
    for t in (onp.complex64, onp.complex128):
        gt = wengert.grad(f)(t(0.3 + 0.4j))
        assert type(gt) is t and gt == pytest.approx(g, rel=1e-6)
    assert type(wengert.grad(lambda z: wnp.real(wnp.maximum(z, 0.5j)))(1.0 + 1.0j)) is complex


def test_real_arguments_of_complex_computations_get_real_gradients() -> None:
    x, z = rl(3), cz(3)
    gx, gz = wengert.grad(lambda x, z: wnp.sum(wnp.abs(x * z + 1j * x) ** 2), argnum=(0, 1))(x, z)
    assert gx.dtype == onp.float64 and gz.dtype == onp.complex128
    onp.testing.assert_allclose(gx, 2 * onp.real(onp.conj(x * z + 1j * x) * (z + 1j)))
    onp.testing.assert_allclose(gz, 2 * onp.conj(x * z + 1j * x) * x)
    g = wengert.grad(lambda x: wnp.sum(wnp.real(wnp.astype(x, onp.complex128) * (2.0 - 1.0j))))(x)
    onp.testing.assert_array_equal(g, 2.0)
    assert g.dtype == onp.float64


def test_complex_outputs_have_no_gradient_and_say_what_to_do() -> None:
    for api in (wengert.grad, wengert.value_and_grad):
        with pytest.raises(TypeError, match=r"^(grad|value_and_grad): .*dtype complex128; a complex output has "
                                            r"no gradient in this sense: differentiate its real part, its abs, or "
                                            r"use vjp"):
            api(wnp.sin)(1.0 + 1.0j)
    out, pull = wengert.vjp(wnp.sin, 1.0 + 1.0j)  # the way to a holomorphic derivative
    assert pull(1.0 + 0j)[0] == pytest.approx(onp.cos(1.0 + 1.0j))


def test_complex_value_into_a_real_array_is_numpys_error_or_warning() -> None:
    """NumPy refuses a complex scalar written into a real array, and casts a complex array with
    a ComplexWarning (keeping the real part); wengert does the same, and the gradient of the
    value is then that of its real part."""
    def scalar(x: Any) -> Any:
        y = x * 1.0
        y[0] = 1j * x[1]
        return wnp.sum(y)
    with pytest.raises(TypeError, match="not 'complex'"):
        wengert.grad(scalar)(rl(3))
    w = onp.array([1.0, -2.0, 0.5])

    def array(x: Any, v: Any) -> Any:
        y = x * 1.0
        y[:2] = v
        return wnp.sum(y * w)
    with pytest.warns(onp.exceptions.ComplexWarning):
        gx, gv = wengert.grad(array, argnum=(0, 1))(rl(3), cz(2))
    onp.testing.assert_array_equal(gx, [0.0, 0.0, 0.5])
    onp.testing.assert_array_equal(gv, w[:2].astype(complex))  # d Re(v) = w along x, 0 along y
    with pytest.raises(TypeError, match=r"x \*= y: the result has dtype complex128"):
        wengert.grad(lambda x: wnp.sum((x * 1.0).__imul__(1j)))(rl(3))


def test_complex_tangent_of_a_real_primal_is_refused() -> None:
    with pytest.raises(TypeError, match="jvp: the tangent of primal 0"):
        wengert.jvp(lambda x: x * 2.0, (3.0,), (1j,))


HOLOMORPHIC = [(wnp.sin, onp.cos), (wnp.exp, onp.exp), (lambda z: z ** 3 - 2j * z, lambda z: 3 * z ** 2 - 2j),
               (wnp.log, lambda z: 1 / z), (wnp.tanh, lambda z: 1 - onp.tanh(z) ** 2),
               (lambda z: wnp.sqrt(z) / (1 + z), lambda z: (1 - z) / (2 * onp.sqrt(z) * (1 + z) ** 2))]


@pytest.mark.parametrize("f, df", HOLOMORPHIC, ids=[str(k) for k in range(len(HOLOMORPHIC))])
def test_holomorphic_grad_is_the_complex_derivative(f: Callable, df: Callable) -> None:
    """holomorphic_grad(f)(z) = f'(z) = grad(Re f)(z) = the VJP with cotangent 1 (no conjugate)."""
    for z in (0.7 + 0.4j, onp.complex64(0.7 + 0.4j), onp.array(1.2 - 0.3j)):
        d = wengert.holomorphic_grad(f)(z)
        assert type(d) is type(z) and onp.result_type(d) == onp.result_type(z)
        tol = 1e-5 if onp.result_type(z) == onp.complex64 else 1e-12
        assert complex(d) == pytest.approx(complex(df(complex(z))), rel=tol)
        assert complex(d) == pytest.approx(complex(wengert.grad(lambda z: wnp.real(f(z)))(z)), rel=tol)
    h = 1e-6  # the same difference quotient along every direction: the function is holomorphic
    z = 0.7 + 0.4j
    for step in (h, 1j * h, (1 + 1j) * h / onp.sqrt(2)):
        assert (complex(f(z + step)) - complex(f(z - step))) / (2 * step) == pytest.approx(df(z), rel=1e-7)


def test_holomorphic_grad_misuse_names_the_fix() -> None:
    with pytest.raises(TypeError, match=r"^holomorphic_grad: argument 0 is real; .* \(x \+ 0j\), or use wengert.grad"):
        wengert.holomorphic_grad(wnp.sin)(1.0)
    with pytest.raises(TypeError, match=r"^holomorphic_grad: the function must return a complex scalar.*use "
                                        r"wengert\.grad"):
        wengert.holomorphic_grad(wnp.abs)(1.0 + 1.0j)
