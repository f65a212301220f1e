"""wengert.scipy.special and wengert.scipy.stats, checked against central finite differences
to second order, as transposes of each other with batched tangents, against SciPy's values
and against autograd's gradients.

Each case names what it covers: a scipy.special rule-table entry, a scipy.special composite,
a distribution's function (``"norm.logpdf"``) or a private primitive of the stats module.
Points lie away from poles, branch points and the edges of supports, which have tests of
their own (with invalid parameters, and the derivatives that must stay finite: ``xlogy`` at
x = 0, ``log_ndtr`` deep in its tail, ``logsumexp`` of huge values). Anything registered
without a case fails ``test_every_rule_has_a_case``. Also here: plain ``scipy.special`` and
``numpy.i0`` on traced values, frozen distributions, and the errors of misuse.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from typing import Any, Callable, NamedTuple

import numpy as onp
import pytest

pytest.importorskip("scipy")  # an optional dependency (in the test extra)

import autograd
import autograd.numpy as anp
import autograd.scipy.special as asp
import autograd.scipy.stats as ast
import mpmath
import scipy.special as sc
import scipy.stats as ss

import wengert
import wengert.numpy as np
import wengert.scipy.linalg as sl
import wengert.scipy.special as sp
import wengert.scipy.stats as st
from _helpers import check_transpose
from wengert.scipy import _special_rules, _stats_rules

R = onp.random.default_rng(11)


def real(*shape: int) -> Any:
    return R.normal(size=shape)


def between(lo: float, hi: float) -> Callable:
    return lambda *shape: R.uniform(lo, hi, shape)


def cplx(*shape: int) -> Any:
    return 0.3 * (R.normal(size=shape) + 1j * R.normal(size=shape))


class Case(NamedTuple):
    key: Any  # what the case covers
    f: Callable  # function of the differentiated arguments
    args: tuple
    id: str
    oracle: Callable | None = None  # SciPy's value, when it is not f on plain arguments


CASES: list[Case] = []


def case(key: Any, f: Callable, *args: Any, id: str = "", oracle: Callable | None = None) -> None:
    name = key if isinstance(key, str) else getattr(key, "__name__", str(key))
    CASES.append(Case(key, f, args, f"{name}-{id or len([c for c in CASES if c.key is key])}", oracle))


def fn(key: Any) -> Callable:
    """The wengert.scipy.special function for a rule-table entry."""
    return getattr(sp, key.__name__)


# ============================================================================= scipy.special
SHAPES = [(), (4,), (2, 3)]
UNARY = {  # function: a sampler of its domain, away from poles and branch points
    sc.erf: real, sc.erfc: real, sc.erfi: between(-1.5, 1.5), sc.erfcx: between(-1, 3),
    sc.erfinv: between(-0.9, 0.9), sc.erfcinv: between(0.1, 1.9), sc.dawsn: real,
    sc.ndtr: real, sc.log_ndtr: between(-6, 3), sc.ndtri: between(0.05, 0.95), sc.ndtri_exp: between(-6, -0.1),
    sc.gamma: between(0.5, 4), sc.gammaln: between(0.3, 6), sc.loggamma: between(0.3, 6),
    sc.rgamma: between(0.5, 4), sc.psi: between(0.4, 6),
    sc.expit: real, sc.logit: between(0.1, 0.9), sc.log_expit: real, sc.entr: between(0.2, 3),
    sc.expm1: real, sc.log1p: between(-0.6, 3), sc.exp2: real, sc.exp10: between(-1, 1), sc.cosm1: real,
    sc.i0: real, sc.i1: real, sc.i0e: between(-3, 3), sc.i1e: between(-3, 3),
    sc.j0: between(-5, 5), sc.j1: between(-5, 5), sc.y0: between(0.5, 5), sc.y1: between(0.5, 5),
}
for f, sample in UNARY.items():
    for shape in SHAPES:
        case(f, fn(f), sample(*shape), id=f"shape{shape}")
    case(f, fn(f), float(sample()), id="python-float")
case(sc.psi, sp.digamma, between(0.4, 6)(3), id="digamma-alias")
for f in (sc.i1, sc.i1e, sc.j1):  # the removable singularity of j1(x) / x at 0
    case(f, fn(f), onp.array([0.0, 0.7, -1.3]), id="at-zero")
case(sc.log_ndtr, sp.log_ndtr, onp.array([-30.0, -12.0, 8.0]), id="tails")
# Holomorphic functions on complex inputs (no conjugation in the rule).
for f in (sc.erf, sc.erfc, sc.erfi, sc.erfcx, sc.dawsn, sc.expm1, sc.log1p, sc.ndtr, sc.log_ndtr):
    case(f, fn(f), cplx(3), id="complex")

PAIRS = [((), ()), ((4,), (4,)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((3,), None)]  # None: a float
BINARY = {
    sc.beta: (between(0.5, 3), between(0.5, 3)), sc.betaln: (between(0.5, 3), between(0.5, 3)),
    sc.xlogy: (real, between(0.3, 3)), sc.xlog1py: (real, between(-0.6, 3)),
    sc.rel_entr: (between(0.2, 3), between(0.2, 3)), sc.kl_div: (between(0.2, 3), between(0.2, 3)),
    sc.poch: (between(0.5, 3), between(-0.4, 2)), sc.powm1: (between(0.3, 3), real),
}
for f, (sx, sy) in BINARY.items():
    for xs, ys in PAIRS:
        y = float(sy()) if ys is None else sy(*ys)
        case(f, fn(f), sx(*xs), y, id=f"{xs}x{ys or 'float'}")
    case(f, lambda y, f=f, x=float(sx()): fn(f)(x, y), sy(3), id="float-first")
case(sc.xlogy, sp.xlogy, cplx(3) + 1, cplx(3) + 1, id="complex")
case(sc.xlog1py, sp.xlog1py, cplx(3), cplx(3) + 0.5, id="complex")
# x = 0: the value is 0 for every y, so the derivative in y is 0 (and smooth in x, to second order).
X0 = onp.array([0.0, 0.0, 0.7])
for f in (sc.xlogy, sc.xlog1py):
    case(f, fn(f), X0, between(0.3, 2)(3), id="x=0")
for f in (sc.rel_entr, sc.kl_div):  # x log x: not differentiable in x at 0
    case(f, lambda y, f=f: fn(f)(X0, y), between(0.3, 2)(3), id="x=0")

# Functions differentiable in some arguments only: the others are plain here.
for n in (0, 1, 3):
    case(sc.polygamma, lambda x, n=n: sp.polygamma(n, x), between(0.5, 5)(2, 3), id=f"n={n}")
case(sc.polygamma, lambda x: sp.polygamma(onp.array([0, 1, 2]), x), between(0.5, 5)(3), id="n-array")
for a in (0.6, 2.5, onp.array([0.5, 1.0, 4.0])):
    case(sc.gammainc, lambda x, a=a: sp.gammainc(a, x), between(0.3, 4)(3), id=f"a={a}")
    case(sc.gammaincc, lambda x, a=a: sp.gammaincc(a, x), between(0.3, 4)(3), id=f"a={a}")
case(sc.betainc, lambda x: sp.betainc(2.0, 3.5, x), between(0.1, 0.9)(4), id="a=2,b=3.5")
case(sc.betainc, lambda x: sp.betainc(onp.array([0.7, 1.5]), 0.8, x), between(0.1, 0.9)(3, 2), id="broadcast")
case(sc.stdtr, lambda t: sp.stdtr(3.5, t), real(4), id="df=3.5")
case(sc.stdtr, lambda t: sp.stdtr(onp.array([1.0, 4.0, 30.0]), t), real(2, 3), id="df-array")
case(sc.zeta, lambda q: sp.zeta(3.0, q), between(0.5, 3)(4), id="hurwitz")
case(sc.zeta, lambda q: sp.zeta(onp.array([2.0, 4.5]), q), between(0.5, 3)(2), id="x-array")
case(sc.betaincc, lambda x: sp.betaincc(2.0, 3.5, x), between(0.1, 0.9)(4), id="a=2,b=3.5")
case(sc.betaincc, lambda x: sp.betaincc(onp.array([0.7, 1.5]), 0.8, x), between(0.1, 0.9)(3, 2), id="broadcast")
# Plain scipy.special.zeta (a Python function) calls private ufuncs, which find their rules.
case(_special_rules._zeta, lambda q: sc.zeta(3.0, q), between(0.5, 3)(4), id="plain-scipy-zeta",
     oracle=lambda q: sc.zeta(3.0, q))

# ----------------------------------------------------------------------------- composites
for kw in (dict(), dict(axis=0), dict(axis=1, keepdims=True), dict(axis=(0, 1)), dict(axis=-1)):
    case(sc.logsumexp, lambda a, kw=kw: sp.logsumexp(a, **kw), real(2, 3), id=str(kw))
case(sc.logsumexp, sp.logsumexp, real(5) * 40, id="large")
case(sc.logsumexp, lambda a, b: sp.logsumexp(a, axis=1, b=b), real(2, 3), between(0.5, 2)(3), id="b")
case(sc.logsumexp, lambda a, b: sp.logsumexp(a, b=b, axis=0), real(3, 1), between(0.5, 2)(3, 2), id="b-broadcast")
case(sc.logsumexp, lambda a: sp.logsumexp(a, b=onp.array([1.0, 0.0, 2.0])), real(3), id="b-zero")
case(sc.logsumexp, lambda a, b: sp.logsumexp(a, b=b), real(3), onp.array([1.0, 0.0, 2.0]),
     id="traced-b-zero")  # the zero weight still has a derivative: exp(a) / sum
case(sc.logsumexp, lambda a, b: sp.logsumexp(a, b=b, return_sign=True)[0], real(4),
     onp.array([1.0, -0.5, 2.0, -3.0]), id="return_sign", oracle=lambda a, b: sc.logsumexp(a, b=b, return_sign=True)[0])
case(sc.logsumexp, lambda a: sp.logsumexp(a, axis=1), cplx(2, 3), id="complex")
case(sc.logsumexp, lambda a: sp.logsumexp(a, axis=1, return_sign=True)[1], cplx(2, 3), id="complex-sign-is-a-phase",
     oracle=lambda a: sc.logsumexp(a, axis=1, return_sign=True)[1])
for axis in (None, 0, -1):
    case(sc.softmax, lambda x, axis=axis: sp.softmax(x, axis=axis), real(2, 3), id=f"axis={axis}")
    case(sc.log_softmax, lambda x, axis=axis: sp.log_softmax(x, axis=axis), real(2, 3), id=f"axis={axis}")
case(sc.softmax, lambda x: sp.softmax(x, axis=0), real(4) * 300, id="large")


# ============================================================================= scipy.stats
def stat(name: str, method: str, diff: dict, const: dict | None = None, id: str = "") -> None:
    """A case for ``<name>.<method>`` called with keywords: ``diff`` differentiated, ``const`` not;
    SciPy's own function is the oracle of the values."""
    const = const or {}
    keys = list(diff)
    mine, theirs = getattr(getattr(st, name), method), getattr(getattr(ss, name), method)
    case(f"{name}.{method}", lambda *v: mine(**dict(zip(keys, v)), **const), *diff.values(),
         id=id or "-".join(keys), oracle=lambda *v: theirs(**dict(zip(keys, v)), **const))


for m in ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"):
    stat("norm", m, dict(x=real(4)))
    stat("norm", m, dict(x=real(2, 3), loc=real(3), scale=between(0.5, 2)(2, 1)))
stat("norm", "logcdf", dict(x=onp.array([-30.0, -8.0, 0.0, 5.0])), id="tails")
stat("norm", "ppf", dict(q=between(0.05, 0.95)(4)))
stat("norm", "ppf", dict(q=between(0.05, 0.95)(4), loc=0.3, scale=1.7))
for m in ("logpdf", "pdf"):
    stat("t", m, dict(x=real(4), df=between(1, 8)(4)))
    stat("t", m, dict(x=real(2, 3), df=2.5, loc=real(3), scale=1.4))
for m in ("cdf", "logcdf", "sf", "logsf"):
    stat("t", m, dict(x=real(4)), dict(df=3.0))
    stat("t", m, dict(x=real(2, 3), loc=real(3), scale=1.4), dict(df=onp.array([1.5, 4.0, 20.0])))
for m in ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"):  # an infinite df is the normal distribution
    stat("t", m, dict(x=real(2, 3), scale=1.3), dict(df=onp.array([2.0, onp.inf, 1e9])), id="df-inf")
for m in ("logpdf", "pdf"):
    stat("gamma", m, dict(x=between(0.3, 4)(4), a=between(0.7, 3)(4)))
    stat("gamma", m, dict(x=between(0.5, 4)(2, 3), a=2.2, loc=0.2, scale=between(0.5, 2)(3)))
for m in ("cdf", "logcdf", "sf", "logsf"):
    stat("gamma", m, dict(x=between(0.3, 4)(4)), dict(a=1.7))
    stat("gamma", m, dict(x=between(0.5, 4)(2, 3), loc=0.2, scale=1.3), dict(a=onp.array([0.8, 2.0, 5.0])))
for m in ("logpdf", "pdf"):
    stat("beta", m, dict(x=between(0.1, 0.9)(4), a=between(0.7, 3)(4), b=between(0.7, 3)(4)))
    stat("beta", m, dict(x=between(0.2, 1.1)(2, 3), a=1.5, b=2.5, loc=-0.1, scale=1.3))
for m in ("cdf", "logcdf", "sf", "logsf"):
    stat("beta", m, dict(x=between(0.1, 0.9)(4)), dict(a=2.5, b=0.8))
    stat("beta", m, dict(x=between(0.2, 1.1)(3), loc=-0.1, scale=1.3), dict(a=1.5, b=2.5))
K = onp.array([0.0, 1.0, 3.0, 7.0])
for m in ("logpmf", "pmf", "cdf", "logcdf", "sf", "logsf"):
    stat("poisson", m, dict(mu=between(0.5, 6)(4)), dict(k=K))
    off_grid = 4.0 if m == "logpmf" else 4.5  # log pmf there is -inf: nothing for finite differences
    stat("poisson", m, dict(mu=2.5), dict(k=onp.array([[0.0, 2.0], [off_grid, 3.0]]), loc=-1), id="loc")

A = R.normal(size=(3, 3))
COV = A @ A.T + 2 * onp.eye(3)
for m in ("logpdf", "pdf"):
    stat("multivariate_normal", m, dict(x=real(3), mean=real(3), cov=COV))
    stat("multivariate_normal", m, dict(x=real(2, 4, 3), mean=real(3), cov=COV), id="batch")
stat("multivariate_normal", "logpdf", dict(x=real(2, 3), mean=real(3), cov=between(0.5, 2)(3)), id="diagonal")
stat("multivariate_normal", "logpdf", dict(x=real(4), mean=0.3, cov=1.7), id="one-dimensional")
stat("multivariate_normal", "logpdf", dict(x=real(2, 3), mean=real(3)), id="identity")
stat("multivariate_normal", "logpdf", dict(x=real(2, 3), mean=real(3), cov=COV + onp.triu(real(3, 3), 1)),
     id="reads-the-lower-triangle")  # as SciPy does
SIMPLEX = onp.array([[0.2, 0.5], [0.3, 0.1], [0.5, 0.4]])
for m in ("logpdf", "pdf"):
    stat("dirichlet", m, dict(x=SIMPLEX[:, 0], alpha=between(0.5, 3)(3)))
    stat("dirichlet", m, dict(x=SIMPLEX, alpha=between(0.5, 3)(3)), id="points")
    stat("dirichlet", m, dict(x=SIMPLEX[:2], alpha=between(0.5, 3)(3)), id="one-fewer")

# ----------------------------------------------------------------------------- the private primitives
case(_stats_rules.solve, _stats_rules.solve, COV, real(3, 2), id="matrix")
case(_stats_rules.solve, _stats_rules.solve, COV + A, real(2, 3, 1), id="stacked-b")
case(_stats_rules.logdet, _stats_rules.logdet, COV, id="spd")
case(_stats_rules.logdet, _stats_rules.logdet, COV - 4 * onp.eye(3) + A, id="general")
case(_stats_rules.logdet, _stats_rules.logdet, onp.stack([COV, COV + A.T]), id="stack")


# ============================================================================= tests
@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_rule_matches_finite_differences(c: Case) -> None:
    wengert.gradcheck(c.f, *c.args, order=2)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_jvp_is_the_transpose_of_vjp(c: Case) -> None:
    check_transpose(c.f, c.args, finite=True)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_values_match_scipy(c: Case) -> None:
    """Traced values equal SciPy's (for the composites, the plain call is SciPy's own)."""
    out, _ = wengert.vjp(c.f, *c.args)
    expected = (c.oracle or c.f)(*c.args)
    onp.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-300)
    assert onp.shape(out) == onp.shape(expected)


def _covered() -> set:
    """What the cases cover, and the rules that only raise (the Riemann zeta function's)."""
    return {c.key for c in CASES} | {n[1] for n in NOT_DIFFERENTIABLE}


def test_every_rule_has_a_case() -> None:
    wanted = (list(_special_rules.VJPS) + sp.COMPOSITES + list(_stats_rules.PRIMITIVES.values())
              + [f"{d.__name__}.{m}" for d in st.DISTRIBUTIONS for m in d._functions])
    missing = [getattr(k, "__name__", k) for k in wanted if k not in _covered()]
    assert not missing, f"rules without a test case: {missing}"


def test_every_rule_is_published_under_scipys_names() -> None:
    for f in list(_special_rules.VJPS) + sp.COMPOSITES:
        if not f.__name__.startswith("_"):  # SciPy's private ufuncs (behind zeta) are not published
            assert getattr(sp, f.__name__).__wrapped__ is f
    assert sp.digamma is sp.psi
    assert sp.jv is sc.jv  # no rule: SciPy's own
    assert set(dir(sc)) <= set(dir(sp))


# ----------------------------------------------------------------------------- stats: edges of supports
EDGES = [  # (function, arguments) evaluated on plain and traced values, against SciPy
    ("norm.logpdf", (onp.array([0.0, 1.0]), 0.0, onp.array([1.0, -1.0]))),
    ("t.logpdf", (onp.array([0.5, 0.5]), onp.array([2.0, -1.0]))),
    ("gamma.logpdf", (onp.array([-1.0, 0.0, 1.0]), 1.0)),
    ("gamma.logpdf", (onp.array([0.0, 2.0]), 2.5)),
    ("gamma.pdf", (onp.array([-1.0, 0.5, 2.0]), onp.array([2.0, 2.0, -1.0]))),
    ("gamma.cdf", (onp.array([-1.0, 0.0, 1.0]), 2.0)),
    ("gamma.logcdf", (onp.array([-1.0, 0.0, 1.0]), 2.0)),
    ("gamma.sf", (onp.array([-1.0, 0.0, 1.0]), 2.0)),
    ("gamma.logsf", (onp.array([-1.0, 0.0, 1.0]), 2.0)),
    ("beta.logpdf", (onp.array([-0.5, 0.0, 0.5, 1.0, 2.0]), 2.0, 3.0)),
    ("beta.pdf", (onp.array([-0.5, 0.3, 1.5]), 0.5, 0.5)),
    ("beta.cdf", (onp.array([-1.0, 0.0, 0.5, 1.0, 2.0]), 2.0, 3.0)),
    ("beta.logcdf", (onp.array([-1.0, 0.0, 0.5, 1.0, 2.0]), 2.0, 3.0)),
    ("beta.sf", (onp.array([-1.0, 0.0, 0.5, 1.0, 2.0]), 2.0, 3.0)),
    ("beta.logsf", (onp.array([-1.0, 0.0, 0.5, 1.0, 2.0]), 2.0, 3.0)),
    ("poisson.logpmf", (onp.array([-1.0, 0.0, 1.5, 2.0]), 2.0)),
    ("poisson.pmf", (onp.array([-1.0, 0.0, 1.5, 2.0]), 2.0)),
    ("poisson.cdf", (onp.array([-1.0, 0.0, 1.5, 2.0]), 2.0)),
    ("poisson.logcdf", (onp.array([-1.0, 0.0, 1.5, 2.0]), 2.0)),
    ("poisson.sf", (onp.array([-1.0, 0.0, 1.5, 2.0]), 2.0)),
    ("poisson.logsf", (onp.array([-1.0, 0.0, 1.5, 2.0]), 2.0)),
    ("poisson.logpmf", (onp.array([0.0, 1.0]), -1.0)),
    ("poisson.logpmf", (onp.array([0.0, 0.0]), 0.0)),  # a zero rate: log pmf 0, derivative -1
    ("poisson.logpmf", (onp.array([1.0, 2.0]), 0.0)),  # log pmf -inf, derivative +inf
    ("t.logpdf", (onp.array([0.5, -2.0]), onp.array([onp.inf, 1e12]))),  # the normal distribution
    ("t.cdf", (onp.array([0.5, -2.0]), onp.inf)),
]
NAN_POINTS = [(f"{family}.{m}", rest)
              for family, rest in (("gamma", (2.5,)), ("beta", (2.5, 1.5)), ("poisson", (2.0,)))
              for m in (("logpmf", "pmf") if family == "poisson" else ("logpdf", "pdf"))
              + ("cdf", "logcdf", "sf", "logsf")]


SCALAR_CALLS = [  # (id, call on the traced x, x): SciPy returns a NumPy scalar for each
    ("norm.ppf-outside", lambda m, x: m.norm.ppf(x), 1.5),
    ("gamma.cdf-left-of-the-support", lambda m, x: m.gamma.cdf(x, 2.0), -1.0),
    ("beta.logsf-right-of-the-support", lambda m, x: m.beta.logsf(x, 2.0, 3.0), 2.0),
    ("poisson.logpmf-not-a-count", lambda m, x: m.poisson.logpmf(3.5, x), 2.5),
    ("multivariate_normal.logpdf-one-point", lambda m, x: m.multivariate_normal.logpdf(x, onp.zeros(2), onp.eye(2)),
     onp.array([0.1, 0.2])),
]


@pytest.mark.parametrize("call, x", [c[1:] for c in SCALAR_CALLS], ids=[c[0] for c in SCALAR_CALLS])
def test_a_single_value_is_a_numpy_scalar_as_scipys(call: Callable, x: Any) -> None:
    with onp.errstate(all="ignore"):
        expected, out = call(ss, x), wengert.vjp(lambda x: call(st, x), x)[0]
    assert type(out) is type(expected) and onp.shape(out) == ()
    onp.testing.assert_allclose(out, expected, rtol=1e-12)


@pytest.mark.parametrize("path, rest", NAN_POINTS, ids=[p for p, _ in NAN_POINTS])
def test_a_nan_point_gives_scipys_nan_not_an_edge_value(path: str, rest: tuple) -> None:
    point = onp.array([onp.nan, 0.4, 3.0, -1.0])
    with onp.errstate(all="ignore"):
        expected = _method(ss, path)(point, *rest)
        for out in (_method(st, path)(point, *rest), wengert.vjp(lambda x: _method(st, path)(x, *rest), point)[0]):
            onp.testing.assert_allclose(out, expected, rtol=1e-12)  # NaN where SciPy's is


def _method(owner: Any, path: str) -> Callable:
    name, method = path.split(".")
    return getattr(getattr(owner, name), method)


@pytest.mark.parametrize("path, args", EDGES, ids=[f"{p}-{i}" for i, (p, _) in enumerate(EDGES)])
def test_values_and_gradients_at_the_edges_of_supports(path: str, args: tuple) -> None:
    """SciPy's values outside the support and for invalid parameters; the gradient in the
    rate or point stays finite (no NaN from the branch that is not taken)."""
    mine, theirs = _method(st, path), _method(ss, path)
    with onp.errstate(all="ignore"):
        expected = theirs(*args)
        onp.testing.assert_allclose(mine(*args), expected, rtol=1e-12)
        k = 1 if path.startswith("poisson") else 0  # the differentiated argument
        out, pull = wengert.vjp(lambda v: mine(*args[:k], v, *args[k + 1:]), args[k])
        onp.testing.assert_allclose(out, expected, rtol=1e-12)
        (g,) = pull(onp.ones_like(onp.asarray(out)))
    g = onp.broadcast_to(g, onp.shape(expected))
    assert onp.all(onp.isfinite(g[onp.isfinite(expected)]))
    assert onp.all(g[onp.isnan(expected)] == 0)  # invalid parameters: NaN, with no gradient


INVALID = [  # (function, arguments, which are differentiated): off the support or invalid parameters
    ("norm.logpdf", (0.3, 0.0, onp.array([-1.0, 0.0])), (0, 1, 2)), ("norm.logsf", (0.3, 0.0, -2.0), (0, 1, 2)),
    ("norm.ppf", (onp.array([0.3, 1.5]), 0.0, onp.array([-1.0, 1.0])), (0, 1, 2)),
    ("t.logpdf", (0.3, onp.array([-1.0, 0.0])), (0, 1)), ("t.cdf", (0.3, 3.0, 0.0, -1.0), (0, 2, 3)),
    ("gamma.logpdf", (onp.array([-1.0, 1.0]), onp.array([2.0, -2.0])), (0, 1)),
    ("gamma.pdf", (1.0, 2.0, 0.0, 0.0), (0, 1, 2, 3)),
    ("gamma.logcdf", (onp.array([-1.0, 1.0]), onp.array([2.0, -2.0])), (0,)),
    ("gamma.logsf", (onp.array([-1.0, 1.0]), onp.array([2.0, -2.0])), (0,)),
    ("beta.logpdf", (onp.array([-0.5, 1.5, 0.5]), onp.array([2.0, 2.0, -1.0]), 3.0), (0, 1, 2)),
    ("beta.logcdf", (onp.array([-0.5, 1.5, 0.5]), 2.0, onp.array([3.0, 3.0, 0.0])), (0,)),
    ("beta.logsf", (onp.array([-0.5, 1.5, 0.5]), 2.0, onp.array([3.0, 3.0, 0.0])), (0,)),
    ("poisson.logpmf", (onp.array([-1.0, 1.5, 2.0]), onp.array([2.0, 2.0, -1.0])), (1,)),
    ("poisson.logcdf", (onp.array([-1.0, 2.0]), onp.array([2.0, -1.0])), (1,)),
    ("poisson.logsf", (onp.array([-1.0, 2.0]), onp.array([2.0, -1.0])), (1,)),
]


@pytest.mark.parametrize("path, args, wrt", INVALID, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(INVALID)])
def test_invalid_points_give_scipys_values_zero_gradients_and_no_warnings(path: str, args: tuple,
                                                                         wrt: tuple) -> None:
    """Where SciPy answers NaN, -inf, 0 or 1 without evaluating its formula, so do these: the
    formula runs at a harmless point there, so that nothing warns and every gradient is 0."""
    mine, theirs = _method(st, path), _method(ss, path)
    with onp.errstate(all="ignore"):
        expected = theirs(*args)

    def f(*v: Any) -> Any:
        return mine(*[v[wrt.index(i)] if i in wrt else a for i, a in enumerate(args)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        onp.testing.assert_allclose(mine(*args), expected, rtol=1e-12)
        out, pull = wengert.vjp(f, *[args[i] for i in wrt])
        onp.testing.assert_allclose(out, expected, rtol=1e-12)
        for g in pull(onp.ones_like(onp.asarray(out))):
            assert onp.all(onp.asarray(g) == 0)


def test_stats_objects_fall_back_to_scipy() -> None:
    assert st.norm.mean(loc=2.0) == 2.0
    assert st.expon is ss.expon
    assert "logpdf" in dir(st.gamma) and "rvs" in dir(st.gamma)
    assert "norm" in repr(st.norm) and st.norm.logpdf.__name__ == "logpdf"
    assert st.dirichlet.logpdf(SIMPLEX[:, 0], onp.ones(3)) == pytest.approx(ss.dirichlet.logpdf(SIMPLEX[:, 0],
                                                                                                onp.ones(3)))


def test_stats_functions_take_lists_and_name_themselves_in_wrong_calls() -> None:
    onp.testing.assert_allclose(st.norm.logpdf([0.1, 2], scale=2.0), ss.norm.logpdf([0.1, 2], scale=2.0), rtol=1e-14)
    onp.testing.assert_allclose(st.multivariate_normal.pdf([0.1, 0.2], [0, 1], [[1, 0.5], [0.5, 2]]),
                                ss.multivariate_normal.pdf([0.1, 0.2], [0, 1], [[1, 0.5], [0.5, 2]]), rtol=1e-14)
    assert st.dirichlet.logpdf([0.2, 0.8], [1.5, 2]) == pytest.approx(ss.dirichlet.logpdf([0.2, 0.8], [1.5, 2]))
    with pytest.raises(TypeError, match=r"scipy\.stats\.gamma\.logpdf\(x, a, loc=0\.0, scale=1\.0\): missing .*'a'"):
        st.gamma.logpdf(1.0)
    with pytest.raises(TypeError, match=r"scipy\.stats\.norm\.cdf\(x, loc=0\.0, scale=1\.0\): .*'lower'"):
        st.norm.cdf(1.0, lower=2.0)
    assert "differentiable" in st.t.logsf.__doc__ and st.t.logsf.__name__ == "logsf"


FROZEN = [  # (distribution, parameters, which one is differentiated, point)
    ("norm", (0.3, 1.7), 1, real(3)), ("t", (3.5, 0.2, 1.1), 1, real(3)),
    ("gamma", (2.2, 0.1, 1.3), 1, between(0.5, 3)(3)), ("beta", (1.5, 2.5, -0.1, 1.3), 2, between(0.1, 0.9)(3)),
    ("poisson", (2.5,), 0, K), ("multivariate_normal", (onp.zeros(3), COV), 0, real(2, 3)),
    ("dirichlet", (onp.array([1.5, 2.0, 0.7]),), 0, SIMPLEX),
]


@pytest.mark.parametrize("name, params, k, x", FROZEN, ids=[f[0] for f in FROZEN])
def test_frozen_distributions_match_the_unfrozen_functions(name: str, params: tuple, k: int, x: Any) -> None:
    """stats.norm(loc, scale).logpdf(x) is stats.norm.logpdf(x, loc, scale), with the gradient in
    the parameters; other attributes are SciPy's frozen distribution's."""
    family = getattr(st, name)

    def given(p: Any) -> tuple:
        return params[:k] + (p,) + params[k + 1:]
    for method in family._functions:
        frozen = getattr(family(*params), method)
        onp.testing.assert_allclose(frozen(x), getattr(getattr(ss, name)(*params), method)(x), rtol=1e-12)
        onp.testing.assert_allclose(
            wengert.grad(lambda p: np.sum(getattr(family(*given(p)), method)(x)))(params[k]),
            wengert.grad(lambda p: np.sum(getattr(family, method)(x, *given(p))))(params[k]), rtol=1e-14)
    onp.testing.assert_array_equal(family(*params).rvs(random_state=0), getattr(ss, name)(*params).rvs(random_state=0))
    assert name in repr(family(*params))


WITHOUT_A_RULE = [  # (id, function of a traced parameter): SciPy would compute these on plain values
    ("frozen-mean", lambda m: st.norm(m, 2.0).mean(), "scipy.stats.norm(...).mean"),
    ("frozen-std-keyword", lambda s: st.norm(loc=0.0, scale=s).std(), "scipy.stats.norm(...).std"),
    ("frozen-isf", lambda s: st.norm(0.0, s).isf(0.1), "scipy.stats.norm(...).isf"),
    ("frozen-entropy", lambda a: st.gamma(a).entropy(), "scipy.stats.gamma(...).entropy"),
    ("frozen-interval", lambda b: st.beta(2.0, b).interval(0.9)[0], "scipy.stats.beta(...).interval"),
    ("mean", lambda m: st.norm.mean(loc=m), "scipy.stats.norm.mean"),
    ("isf", lambda s: st.t.isf(0.1, 3.0, 0.0, s), "scipy.stats.t.isf"),
]


@pytest.mark.parametrize("f, name", [w[1:] for w in WITHOUT_A_RULE], ids=[w[0] for w in WITHOUT_A_RULE])
def test_distribution_attributes_without_a_rule_refuse_a_traced_value(f: Callable, name: str) -> None:
    """They were computed by SciPy from the parameters' plain values: a silent zero gradient
    (frozen), or a conversion error that pointed at the function itself."""
    with pytest.raises(wengert.NoRuleError, match=rf"^{re.escape(name)} has no derivative rule in wengert"):
        wengert.grad(lambda v: np.sum(f(v)))(1.5)
    assert onp.all(onp.isfinite(f(1.5)))  # plain parameters: SciPy's own


def test_dirichlet_rejects_what_scipy_rejects() -> None:
    with pytest.raises(ValueError, match="alpha"):
        st.dirichlet.logpdf(SIMPLEX[:, 0], onp.array([1.0, -1.0, 2.0]))
    with pytest.raises(ValueError, match="components"):
        st.dirichlet.logpdf(onp.ones(5) / 5, onp.ones(3))
    with pytest.raises(ValueError, match="simplex.*sums are"):
        st.dirichlet.logpdf(onp.array([0.2, 0.2, 0.2]), onp.ones(3))
    with pytest.raises(ValueError, match="simplex"):
        st.dirichlet.logpdf(onp.array([1.2, -0.2, 0.0]), onp.ones(3))
    with pytest.raises(ValueError, match="is 0 where its alpha is below 1"):
        st.dirichlet.logpdf(onp.array([0.0, 0.5, 0.5]), onp.array([0.5, 2.0, 3.0]))
    for bad, alpha in ((onp.array([0.2, 0.2, 0.2]), onp.ones(3)), (onp.array([1.2, -0.2, 0.0]), onp.ones(3)),
                       (onp.array([0.0, 0.5, 0.5]), onp.array([0.5, 2.0, 3.0]))):  # SciPy rejects them too
        with pytest.raises(ValueError):
            ss.dirichlet.logpdf(bad, alpha)


MVN_MISUSE = [  # (arguments, keywords, the error message's pattern)
    ((onp.ones(3), onp.zeros(2), onp.eye(2)), {}, "x must have 2 components in its last axis"),
    ((onp.ones(2), onp.zeros(2), onp.eye(3)), {}, "cov must be .* a 2 x 2 matrix"),
    ((onp.ones(2), onp.zeros(2), onp.ones(3)), {}, "vector of 2 variances"),
    ((onp.ones(2), onp.zeros(2), onp.ones((2, 2))), {}, "positive definite"),
    ((onp.ones(2), onp.zeros(2), onp.array([[1.0, 2.0], [2.0, 1.0]])), {}, "positive definite"),
    ((onp.ones(2), onp.zeros(2), -1.0), {}, "positive definite"),
    ((onp.ones(2), onp.zeros(2), onp.ones((2, 2))), dict(allow_singular=True), "allow_singular=True"),  # SciPy's
]


@pytest.mark.parametrize("args, kw, match", MVN_MISUSE, ids=[m[2] for m in MVN_MISUSE])
def test_multivariate_normal_rejects_bad_shapes_and_covariances(args: tuple, kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=f"multivariate_normal: .*{match}"):
        st.multivariate_normal.logpdf(*args, **kw)
    with pytest.raises(ValueError, match=match):
        wengert.grad(lambda m: np.sum(st.multivariate_normal.logpdf(args[0], m, *args[2:], **kw)))(args[1])
    if not kw:  # SciPy refuses them too (it accepts a singular cov with allow_singular=True)
        with pytest.raises((ValueError, onp.linalg.LinAlgError)):
            ss.multivariate_normal.logpdf(*args, **kw)


def test_multivariate_normal_accepts_allow_singular_with_a_regular_cov() -> None:
    x, m = real(2, 3), real(3)
    mine = st.multivariate_normal.logpdf(x, m, COV, allow_singular=True)
    onp.testing.assert_allclose(mine, ss.multivariate_normal.logpdf(x, m, COV, allow_singular=True), rtol=1e-12)
    onp.testing.assert_allclose(st.multivariate_normal.pdf(x, m, COV, True),
                                ss.multivariate_normal.pdf(x, m, COV, True), rtol=1e-12)


# ----------------------------------------------------------------------------- arguments without derivatives
NOT_DIFFERENTIABLE = [  # (id, what it covers, function, point, the error message's pattern)
    ("gammainc", sc.gammainc, lambda a: sp.gammainc(a, 1.5), 2.0, "a \\(argument 0\\)"),
    ("gammaincc", sc.gammaincc, lambda a: sp.gammaincc(a, onp.array([0.5, 1.5])), 2.0, "a \\(argument 0\\)"),
    ("betainc-a", sc.betainc, lambda a: sp.betainc(a, 2.0, 0.3), 1.5, "a \\(argument 0\\)"),
    ("betainc-b", sc.betainc, lambda b: sp.betainc(1.5, b, 0.3), 1.5, "b \\(argument 1\\)"),
    ("betaincc-a", sc.betaincc, lambda a: sp.betaincc(a, 2.0, 0.3), 1.5, "betaincc.*a \\(argument 0\\)"),
    ("betaincc-b", sc.betaincc, lambda b: sp.betaincc(1.5, b, 0.3), 1.5, "betaincc.*b \\(argument 1\\)"),
    ("stdtr", sc.stdtr, lambda df: sp.stdtr(df, 0.3), 3.0, "df \\(argument 0\\)"),
    ("zeta", sc.zeta, lambda x: sp.zeta(x, 1.5), 3.0, "x \\(argument 0\\)"),
    ("riemann-zeta", sc.zeta, lambda x: sp.zeta(x), 3.0, "x \\(argument 0\\)"),
    ("plain-zeta", _special_rules._zeta, lambda x: sc.zeta(x, 1.5), 3.0, "zeta.*x \\(argument 0\\)"),
    ("plain-riemann-zeta", _special_rules._riemann_zeta, lambda x: sc.zeta(x), 3.0, "zeta.*x \\(argument 0\\)"),
    ("gamma.cdf", "gamma.cdf", lambda a: st.gamma.cdf(1.2, a), 2.0, "stats.gamma.cdf: .* shape parameter 'a'"),
    ("gamma.logsf", "gamma.logsf", lambda a: st.gamma.logsf(1.2, a), 2.0, "stats.gamma.logsf: .* parameter 'a'"),
    ("gamma.sf-list", "gamma.sf", lambda a: st.gamma.sf(1.2, [a, 2.0]), 2.0, "stats.gamma.sf: .* parameter 'a'"),
    ("t.cdf", "t.cdf", lambda df: st.t.cdf(0.4, df), 3.0, "stats.t.cdf: .* parameter 'df'"),
    ("t.logcdf-keyword", "t.logcdf", lambda df: st.t.logcdf(0.4, df=df), 3.0, "stats.t.logcdf: .* parameter 'df'"),
    ("t.sf-frozen", "t.sf", lambda df: st.t(df).sf(0.4), 3.0, "stats.t.sf: .* parameter 'df'"),
    ("beta.cdf", "beta.cdf", lambda b: st.beta.cdf(0.4, 2.0, b), 3.0, "stats.beta.cdf: .* parameter 'b'"),
    ("beta.sf", "beta.sf", lambda a: st.beta.sf(0.4, a, 2.0), 3.0, "stats.beta.sf: .* parameter 'a'"),
]


@pytest.mark.parametrize("f, x, match", [n[2:] for n in NOT_DIFFERENTIABLE], ids=[n[0] for n in NOT_DIFFERENTIABLE])
def test_shape_parameters_without_a_rule_raise(f: Callable, x: float, match: str) -> None:
    with pytest.raises(NotImplementedError, match=match):
        wengert.grad(lambda v: np.sum(f(v)))(x)
    with pytest.raises(NotImplementedError, match=match):
        wengert.jvp(f, (x,), (1.0,))


NEAR_ONE = [  # (name, log of a probability close to 1, its complement from SciPy, point)
    ("gamma.logsf", lambda x: st.gamma.logsf(x, 5.0), lambda x: ss.gamma.cdf(x, 5.0), 1e-3),
    ("gamma.logcdf", lambda x: st.gamma.logcdf(x, 2.0), lambda x: ss.gamma.sf(x, 2.0), 40.0),
    ("t.logcdf", lambda x: st.t.logcdf(x, 3.0), lambda x: ss.t.sf(x, 3.0), 300.0),
    ("t.logsf", lambda x: st.t.logsf(x, 3.0), lambda x: ss.t.cdf(x, 3.0), -300.0),
    ("beta.logcdf", lambda x: st.beta.logcdf(x, 2.0, 3.0), lambda x: ss.beta.sf(x, 2.0, 3.0), 0.9999),
    ("beta.logsf", lambda x: st.beta.logsf(x, 2.0, 3.0), lambda x: ss.beta.cdf(x, 2.0, 3.0), 1e-5),
    ("poisson.logcdf", lambda mu: st.poisson.logcdf(20, mu), lambda mu: ss.poisson.sf(20, mu), 2.0),
    ("poisson.logsf", lambda mu: st.poisson.logsf(0, mu), lambda mu: ss.poisson.cdf(0, mu), 20.0),
]


@pytest.mark.parametrize("f, complement, x", [n[1:] for n in NEAR_ONE], ids=[n[0] for n in NEAR_ONE])
def test_log_probabilities_near_one_keep_their_digits(f: Callable, complement: Callable, x: float) -> None:
    """log p = log1p(-(1 - p)): log(p) would round p to 1 first and lose every digit."""
    assert 0 < complement(x) < 1e-6
    assert f(x) == pytest.approx(onp.log1p(-complement(x)), rel=1e-12, abs=0)
    wengert.gradcheck(f, x, order=1)


def test_a_plain_shape_parameter_is_fine() -> None:
    x = 1.3
    expected = onp.exp((2.5 - 1) * onp.log(x) - x - sc.gammaln(2.5))
    assert wengert.grad(lambda x: sp.gammainc(2.5, x))(x) == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------- plain scipy.special on traced values
def test_plain_scipy_erf_loads_the_rules_lazily() -> None:
    """In a fresh interpreter, scipy.special.erf on a traced value imports wengert.scipy.special
    and uses its rule."""
    code = ("import sys, numpy, scipy.special, wengert\n"
            "assert 'wengert.scipy.special' not in sys.modules\n"
            "g = wengert.grad(lambda x: numpy.sum(scipy.special.erf(x)))(numpy.array([0.1, -0.7]))\n"
            "assert 'wengert.scipy.special' in sys.modules\n"
            "print(repr(g.tolist()))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    x = onp.array([0.1, -0.7])
    onp.testing.assert_allclose(eval(done.stdout), 2 / onp.sqrt(onp.pi) * onp.exp(-x * x), rtol=1e-14)
    onp.testing.assert_allclose(eval(done.stdout), wengert.grad(lambda x: np.sum(sp.erf(x)))(x), rtol=1e-14)


@pytest.mark.parametrize("name", ["erf", "gammaln", "expit", "i0e", "xlogy", "log_ndtr"])
def test_plain_scipy_ufuncs_give_the_same_derivatives(name: str) -> None:
    x = between(0.3, 2)(4)
    two = name == "xlogy"
    plain = (lambda x: getattr(sc, name)(x, x + 1)) if two else getattr(sc, name)
    mine = (lambda x: getattr(sp, name)(x, x + 1)) if two else getattr(sp, name)
    onp.testing.assert_allclose(wengert.elementwise_grad(plain)(x), wengert.elementwise_grad(mine)(x), rtol=1e-14)
    _, t1 = wengert.jvp(plain, (x,), (onp.ones(4),))
    _, t2 = wengert.jvp(mine, (x,), (onp.ones(4),))
    onp.testing.assert_allclose(t1, t2, rtol=1e-14)
    wengert.gradcheck(plain, x, order=2)


# ----------------------------------------------------------------------------- numpy.i0
@pytest.mark.parametrize("f", [np.i0, onp.i0], ids=["wengert.numpy.i0", "numpy.i0"])
def test_numpy_i0_is_differentiated_with_scipys_rule(f: Callable) -> None:
    """NumPy's own i0 (not a ufunc) on traced values: NumPy's values, scipy.special.i1 as the
    derivative, to second order, in reverse and forward mode."""
    x = real(2, 3) * 2
    wengert.gradcheck(f, x, order=2)
    out, _ = wengert.vjp(f, x)
    onp.testing.assert_array_equal(out, onp.i0(x))
    onp.testing.assert_allclose(wengert.elementwise_grad(f)(x), sc.i1(x), rtol=1e-14)
    onp.testing.assert_allclose(wengert.jvp(f, (x,), (onp.ones_like(x),))[1], sc.i1(x), rtol=1e-14)


I0_CODE = ("import sys, numpy, wengert\n"
           "x = numpy.array([0.5, -1.5])\n"
           "print(repr(numpy.i0(x).tolist()))\n"
           "try:\n"
           "    print(repr(wengert.grad(lambda x: numpy.sum(numpy.i0(x)))(x).tolist()))\n"
           "except Exception as e:\n"
           "    print(type(e).__name__, e)\n"
           "print('wengert.scipy.special' in sys.modules)")


@pytest.mark.parametrize("scipy", [True, False], ids=["with-scipy", "without-scipy"])
def test_numpy_i0_loads_scipys_rule_when_needed(scipy: bool) -> None:
    """In a fresh interpreter, numpy.i0 on a traced value loads wengert.scipy.special; without
    SciPy, its plain values still work and its derivative names the missing package."""
    code = I0_CODE if scipy else "import sys\nsys.modules['scipy'] = None  # as if not installed\n" + I0_CODE
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    values, gradient, loaded = done.stdout.splitlines()
    x = onp.array([0.5, -1.5])
    onp.testing.assert_array_equal(eval(values), onp.i0(x))
    if scipy:
        onp.testing.assert_allclose(eval(gradient), sc.i1(x), rtol=1e-14)
        assert loaded == "True"
    else:
        assert gradient.startswith("NoRuleError numpy.i0") and "pip install scipy" in gradient
        assert loaded == "False"


SCIPY_REFUSALS = [  # (call on a traced x, the words the error holds)
    (lambda x: onp.sum(__import__("scipy.linalg").linalg.expm(onp.diag(x))), "Call wengert.scipy.linalg.expm instead"),
    (lambda x: np.sum(__import__("scipy.linalg").linalg.logm(np.diag(x))), "wengert has no version of it"),
    (lambda x: np.sum(sl.logm(np.diag(x))), "wengert has no version of it"),
    (lambda x: np.sum(st.expon.logpdf(x)), "scipy.stats.expon.logpdf converts its arguments"),
    (lambda x: np.sum(sp.boxcox(x, 0.5)), "scipy.special.boxcox has no derivative rule"),
    (lambda x: np.sum(sc.binom(x, 2.0)), "scipy.special.binom has no derivative rule"),
]


@pytest.mark.parametrize("call, words", SCIPY_REFUSALS, ids=[w for _, w in SCIPY_REFUSALS])
def test_scipy_functions_without_a_rule_are_named_with_the_right_advice(call: Callable, words: str) -> None:
    with pytest.raises(TypeError, match=words) as raised:
        wengert.grad(call)(onp.array([0.3, 0.6]))
    assert ("instead" in str(raised.value)) == ("instead" in words)


# ----------------------------------------------------------------------------- stability
def test_logsumexp_and_softmax_are_stable_where_the_naive_formulas_overflow() -> None:
    x = onp.array([1000.0, 1000.0, 999.0])
    assert sp.logsumexp(x) == pytest.approx(sc.logsumexp(x))
    g = wengert.grad(sp.logsumexp)(x)
    onp.testing.assert_allclose(g, sc.softmax(x), rtol=1e-14)
    j = wengert.jacobian(lambda x: sp.softmax(x))(x)
    s = sc.softmax(x)
    onp.testing.assert_allclose(j, onp.diag(s) - onp.outer(s, s), atol=1e-15)
    h = wengert.hessian(sp.logsumexp)(x)
    onp.testing.assert_allclose(h, onp.diag(s) - onp.outer(s, s), atol=1e-15)


def test_logsumexp_sign_of_real_terms_carries_no_gradient() -> None:
    a, b = onp.array([0.5, 1.0, -0.2]), onp.array([1.0, -2.0, 0.5])
    (value, sign) = sp.logsumexp(a, b=b, return_sign=True)
    assert (value, sign) == pytest.approx(sc.logsumexp(a, b=b, return_sign=True))
    assert sign == -1.0 and not isinstance(sign, wengert.Box)
    total = onp.sum(b * onp.exp(a))
    onp.testing.assert_allclose(wengert.grad(lambda a: sp.logsumexp(a, b=b, return_sign=True)[0])(a),
                                b * onp.exp(a) / total, rtol=1e-14)
    assert onp.isnan(sp.logsumexp(wengert.stop_gradient(a), b=b))  # SciPy: NaN without return_sign


@pytest.mark.parametrize("n", [1, 2, 3])
def test_complex_polygamma_matches_50_digit_arithmetic(n: int) -> None:
    """psi's derivative at complex points: SciPy has no complex polygamma, so wengert sums its series."""
    z = onp.array([0.5 + 0.3j, 3 - 2j, -2.5 + 0.1j, 20 + 5j, 1e-3 + 1e-3j, -40.3 + 7j, 1 + 0j, 100 + 200j, 0.2 - 30j])
    with mpmath.workdps(50):
        exact = onp.array([complex(mpmath.polygamma(n, complex(v))) for v in z])
    onp.testing.assert_allclose(_special_rules._complex_polygamma(n, z), exact, rtol=1e-13)
    onp.testing.assert_allclose(_special_rules._complex_polygamma(n, z.real + 0j), sc.polygamma(n, z.real), rtol=1e-13)


def _mp_expit(t: Any) -> Any:
    return 1 / (1 + mpmath.exp(-t))


def _mp_dawson(t: Any) -> Any:
    return mpmath.sqrt(mpmath.pi) / 2 * mpmath.exp(-t * t) * mpmath.erfi(t)


ACCURATE = [  # (name, function, point, the function in 50-digit arithmetic, order): rules that cancel naively
    ("erfcx-large", sp.erfcx, 1e5, lambda t: mpmath.exp(t * t) * mpmath.erfc(t), 1),
    ("erfcx-large-second", sp.erfcx, 1e8, lambda t: mpmath.exp(t * t) * mpmath.erfc(t), 2),
    ("dawsn-large", sp.dawsn, -1e6, _mp_dawson, 1),
    ("dawsn-large-second", sp.dawsn, 60.0, _mp_dawson, 2),
    ("log_ndtr-left", sp.log_ndtr, -1e5, lambda t: mpmath.log(mpmath.ncdf(t)), 1),
    ("log_ndtr-left-second", sp.log_ndtr, -1e3, lambda t: mpmath.log(mpmath.ncdf(t)), 2),
    ("norm.logcdf-left", lambda x: st.norm.logcdf(x), -1e8, lambda t: mpmath.log(mpmath.ncdf(t)), 1),
    ("ndtri_exp-left", sp.ndtri_exp, -1e6, None, 1),  # the inverse of log_ndtr: 1 / log_ndtr'(ndtri_exp(y))
    ("expit-right", sp.expit, 40.0, _mp_expit, 1),
    ("log_expit-second", sp.log_expit, -40.0, lambda t: mpmath.log(_mp_expit(t)), 2),
    ("expm1-left", sp.expm1, -40.0, mpmath.expm1, 1),
    ("powm1-y", lambda y: sp.powm1(0.5, y), 100.0, lambda t: mpmath.power(0.5, t) - 1, 1),
    ("powm1-y-huge", lambda y: sp.powm1(0.5, y), -2000.0, lambda t: mpmath.power(0.5, t) - 1, 1),  # inf, not an error
    ("rel_entr-x", lambda x: sp.rel_entr(x, 1e300), 1e-300, lambda t: t * (mpmath.log(t) - mpmath.log(1e300)), 1),
    ("kl_div-x", lambda x: sp.kl_div(x, 1e-320), 1.0, lambda t: t * mpmath.log(t / mpmath.mpf(1e-320)) - t, 1),
    ("i1-second-near-0", sp.i1, 1e-8, lambda t: mpmath.besseli(1, t), 2),
    ("j1-second-near-0", sp.j1, 1e-8, lambda t: mpmath.besselj(1, t), 2),
    ("i1e-second-near-0", sp.i1e, 1e-5, lambda t: mpmath.exp(-abs(t)) * mpmath.besseli(1, t), 2),
    ("i1e-where-i1-overflows", sp.i1e, 1e3, lambda t: mpmath.exp(-abs(t)) * mpmath.besseli(1, t), 1),
    ("i1-second", sp.i1, 0.5, lambda t: mpmath.besseli(1, t), 2),
    ("rgamma-at-0", sp.rgamma, 0.0, mpmath.rgamma, 1),  # 1/Γ is entire: 0 times a pole of ψ for the usual rule
    ("rgamma-at-0-second", sp.rgamma, 0.0, mpmath.rgamma, 2),
    ("rgamma-at-minus-5", sp.rgamma, -5.0, mpmath.rgamma, 1),
]


@pytest.mark.parametrize("f, x, exact, order", [c[1:] for c in ACCURATE], ids=[c[0] for c in ACCURATE])
def test_derivatives_where_the_naive_formula_cancels_keep_their_digits(f: Callable, x: float, exact: Any,
                                                                        order: int) -> None:
    with mpmath.workdps(50):
        if exact is None:  # ndtri_exp: the derivative of an inverse
            a = mpmath.mpf(float(sc.ndtri_exp(x)))
            want = 1 / mpmath.diff(lambda t: mpmath.log(mpmath.ncdf(t)), a)
        else:
            step = abs(mpmath.mpf(x)) * mpmath.mpf("1e-12") or mpmath.mpf("1e-20")  # stays inside the domain
            want = mpmath.diff(exact, mpmath.mpf(x), order, h=step)
    with onp.errstate(over="ignore"):  # powm1-y-huge overflows to inf, as it should
        got = wengert.grad(f)(x) if order == 1 else wengert.grad(wengert.grad(f))(x)
    assert got == pytest.approx(float(want), rel=1e-12, abs=0)


def test_softmax_of_huge_values_is_scipys() -> None:
    for x in (onp.array([1e15, 1e15 + 1]), onp.array([1e308, 1e308]), onp.array([1e5, 1e5 + 1])):
        for ours, theirs in ((sp.softmax, sc.softmax), (sp.log_softmax, sc.log_softmax)):
            onp.testing.assert_array_equal(wengert.vjp(ours, x)[0], theirs(x))
    g = wengert.grad(lambda x: sp.softmax(x)[0])(onp.array([1e15, 1e15 + 1]))
    onp.testing.assert_allclose(g, [0.19661193324148185, -0.19661193324148185], rtol=1e-12)  # p0 (1 - p0), -p0 p1


def test_psi_derivative_far_left_of_the_origin_refuses() -> None:
    with pytest.raises(NotImplementedError, match=r"scipy.special.psi: the derivative at complex z with Re\(z\) <"):
        wengert.grad(lambda z: np.real(sp.psi(z)))(-2e5 + 1j)


@pytest.mark.parametrize("a, kw", [(onp.array([1.0, 2.0]), {}), (onp.array([1.0, 2.0]), {"keepdims": True}),
                                   (onp.array(1.0), {}), (onp.array(1.0), {"keepdims": True}),
                                   (onp.ones((2, 3)), {"axis": 1}), (onp.ones((2, 3)), {"axis": (0, 1)}),
                                   (onp.array([1.0, 2.0]), {"b": onp.array([1.0, -2.0]), "return_sign": True})],
                         ids=["all", "all-keepdims", "0-d", "0-d-keepdims", "axis", "axes", "sign"])
def test_logsumexp_results_have_scipys_types_and_shapes(a: Any, kw: dict) -> None:
    expected = sc.logsumexp(a, **kw)
    out = wengert.vjp(lambda a: sp.logsumexp(a, **kw), a)[0]
    for o, e in zip(*((x,) if not isinstance(x, tuple) else x for x in (out, expected))):
        assert (type(o), onp.shape(o)) == (type(e), onp.shape(e))
        onp.testing.assert_allclose(o, e, rtol=1e-14)


def test_logsumexp_edge_values_match_scipy() -> None:
    for a, kw in [(onp.array([-onp.inf, -onp.inf]), {}), (onp.array([-onp.inf, 0.0, 1.0]), {}),
                  (onp.array([[1.0, 2.0], [3.0, -onp.inf]]), dict(axis=1, keepdims=True)),
                  (onp.array([2.0, 700.0]), dict(b=onp.array([1.0, 0.0]))),
                  (onp.array([1 + 2j, 3 - 1j]), dict(return_sign=True))]:
        out, _ = wengert.vjp(lambda a, kw=kw: sp.logsumexp(a, **kw), a)
        with onp.errstate(divide="ignore"):
            onp.testing.assert_allclose(out, sc.logsumexp(a, **kw), rtol=1e-14)


def test_logsumexp_ignores_huge_terms_whose_weight_is_zero() -> None:
    """exp(1000) * 0 would be NaN: a term with b = 0 does not count, in the value or the gradient."""
    a, b = onp.array([2.0, 1000.0, 1.0]), onp.array([1.0, 0.0, 2.0])
    value, g = wengert.value_and_grad(lambda a: sp.logsumexp(a, b=b))(a)
    assert value == pytest.approx(sc.logsumexp(a, b=b), rel=1e-15)
    weights = onp.where(b != 0, b * onp.exp(onp.minimum(a, 2.0) - 2.0), 0.0)
    onp.testing.assert_allclose(g, weights / weights.sum(), rtol=1e-15)


STABLE_AT_ZERO = [  # (function of y at x = 0, y): the value is 0 for every y, so its derivative is 0
    ("xlogy", lambda y: sp.xlogy(0.0, y), onp.array([0.0, 1e-300, 2.0])),
    ("xlogy-array", lambda y: sp.xlogy(onp.zeros(3), y), onp.array([0.0, 1e-300, 2.0])),
    ("xlog1py", lambda y: sp.xlog1py(0.0, y), onp.array([-1.0, 0.0, 2.0])),
    ("rel_entr", lambda y: sp.rel_entr(0.0, y), onp.array([0.0, 2.0])),
    ("kl_div", lambda y: sp.kl_div(0.0, y) - y, onp.array([0.0, 2.0])),
    ("poisson-k=0", lambda mu: st.poisson.logpmf(0, mu) + mu, onp.array([0.0, 2.0])),
]


@pytest.mark.parametrize("f, y", [s[1:] for s in STABLE_AT_ZERO], ids=[s[0] for s in STABLE_AT_ZERO])
def test_derivatives_in_y_at_x_zero_are_zero_not_nan(f: Callable, y: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert onp.all(wengert.elementwise_grad(f)(y) == 0)
        assert onp.all(wengert.jvp(f, (y,), (onp.ones_like(y),))[1] == 0)
        if onp.ndim(f(float(y[0]))) == 0:
            assert wengert.grad(f)(float(y[0])) == 0  # a Python float too


def test_log_ndtr_derivative_is_accurate_deep_in_the_tail() -> None:
    """pdf / cdf computed in logarithms: finite where ndtr underflows, and equal to the
    asymptotic Mills ratio -x / (1 - 1/x^2 + 3/x^4 - 15/x^6 + 105/x^8)."""
    x = onp.array([-40.0, -200.0])
    g = wengert.elementwise_grad(sp.log_ndtr)(x)
    series = -x / (1 - x ** -2 + 3 * x ** -4 - 15 * x ** -6 + 105 * x ** -8)
    onp.testing.assert_allclose(g, series, rtol=1e-9)
    with onp.errstate(all="ignore"):
        assert not onp.all(onp.isfinite(wengert.elementwise_grad(lambda x: np.log(sp.ndtr(x)))(x)))


# ----------------------------------------------------------------------------- autograd as an oracle
AG_SPECIAL = [  # (name, wengert, autograd, domain): elementwise functions
    ("erf", sp.erf, asp.erf, real), ("erfc", sp.erfc, asp.erfc, real),
    ("erfinv", sp.erfinv, asp.erfinv, between(-0.9, 0.9)), ("erfcinv", sp.erfcinv, asp.erfcinv, between(0.1, 1.9)),
    ("gamma", sp.gamma, asp.gamma, between(0.5, 4)), ("gammaln", sp.gammaln, asp.gammaln, between(0.5, 5)),
    ("digamma", sp.digamma, asp.digamma, between(0.5, 5)), ("rgamma", sp.rgamma, asp.rgamma, between(0.5, 4)),
    ("expit", sp.expit, asp.expit, real), ("logit", sp.logit, asp.logit, between(0.1, 0.9)),
    ("i0", sp.i0, asp.i0, real), ("i1", sp.i1, asp.i1, real), ("j0", sp.j0, asp.j0, real),
    ("j1", sp.j1, asp.j1, real), ("y0", sp.y0, asp.y0, between(0.5, 4)), ("y1", sp.y1, asp.y1, between(0.5, 4)),
    ("polygamma", lambda x: sp.polygamma(2, x), lambda x: asp.polygamma(2, x), between(0.5, 4)),
    ("gammainc", lambda x: sp.gammainc(1.7, x), lambda x: asp.gammainc(1.7, x), between(0.3, 3)),
    ("gammaincc", lambda x: sp.gammaincc(1.7, x), lambda x: asp.gammaincc(1.7, x), between(0.3, 3)),
    ("beta", lambda x: sp.beta(x, 1.5), lambda x: asp.beta(x, 1.5), between(0.5, 3)),
    ("betaln", lambda x: sp.betaln(2.0, x), lambda x: asp.betaln(2.0, x), between(0.5, 3)),
]


@pytest.mark.parametrize("f, fa, sample", [a[1:] for a in AG_SPECIAL], ids=[a[0] for a in AG_SPECIAL])
def test_special_derivatives_match_autograd(f: Callable, fa: Callable, sample: Callable) -> None:
    x = sample(5)
    onp.testing.assert_allclose(wengert.elementwise_grad(f)(x), autograd.elementwise_grad(fa)(x), rtol=1e-10)
    second = wengert.elementwise_grad(wengert.elementwise_grad(f))(x)
    onp.testing.assert_allclose(second, autograd.elementwise_grad(autograd.elementwise_grad(fa))(x),
                                rtol=1e-8, atol=1e-12)


X23 = real(2, 3)
AG_LOSSES = [  # (name, wengert loss, autograd loss, arguments): gradients in every argument
    ("logsumexp", lambda a: sp.logsumexp(a, axis=1) @ onp.array([1.0, -2.0]),
     lambda a: anp.dot(asp.logsumexp(a, axis=1), onp.array([1.0, -2.0])), (X23,)),
    ("logsumexp-keepdims", lambda a: np.sum(sp.logsumexp(a, axis=0, keepdims=True) * onp.arange(3.0)),
     lambda a: anp.sum(asp.logsumexp(a, axis=0, keepdims=True) * onp.arange(3.0)), (X23,)),
    ("norm", lambda x, m, s: np.sum(st.norm.logpdf(x, m, s) + st.norm.cdf(x, m, s)),
     lambda x, m, s: anp.sum(ast.norm.logpdf(x, m, s) + ast.norm.cdf(x, m, s)), (real(4), 0.3, 1.4)),
    ("t", lambda x, df, m, s: np.sum(st.t.logpdf(x, df, m, s)),
     lambda x, df, m, s: anp.sum(ast.t.logpdf(x, df, m, s)), (real(4), 3.2, 0.3, 1.4)),
    ("gamma", lambda x, a: np.sum(st.gamma.logpdf(x, a) + st.gamma.cdf(x, 2.0)),
     lambda x, a: anp.sum(ast.gamma.logpdf(x, a) + ast.gamma.cdf(x, 2.0)), (between(0.5, 3)(4), 1.8)),
    ("beta", lambda x, a, b: np.sum(st.beta.logpdf(x, a, b)),
     lambda x, a, b: anp.sum(ast.beta.logpdf(x, a, b)), (between(0.1, 0.9)(4), 1.8, 2.7)),
    ("poisson", lambda mu: np.sum(st.poisson.logpmf(K, mu) + st.poisson.cdf(K, mu)),
     lambda mu: anp.sum(ast.poisson.logpmf(K, mu) + ast.poisson.cdf(K, mu)), (between(0.5, 4)(4),)),
    ("multivariate_normal", lambda x, m, c: np.sum(st.multivariate_normal.logpdf(x, m, c)),
     lambda x, m, c: anp.sum(ast.multivariate_normal.logpdf(x, m, anp.tril(c) + anp.tril(c, -1).T)),
     (real(4, 3), real(3), COV)),  # SciPy reads the lower triangle of cov; autograd the whole matrix
    ("dirichlet", lambda x, a: st.dirichlet.logpdf(x, a),
     lambda x, a: ast.dirichlet.logpdf(x, a), (SIMPLEX[:, 1], between(0.5, 3)(3))),
]


@pytest.mark.parametrize("f, fa, args", [a[1:] for a in AG_LOSSES], ids=[a[0] for a in AG_LOSSES])
def test_gradients_match_autograd(f: Callable, fa: Callable, args: tuple) -> None:
    argnum = tuple(range(len(args)))
    mine = wengert.grad(f, argnum=argnum)(*args)
    for k in argnum:
        onp.testing.assert_allclose(mine[k], autograd.grad(fa, k)(*args), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["i1", "j1"])
@pytest.mark.parametrize("x0", [0.0, 3e-4, 3e-3, 0.5, 0.99, 1.01, 2.0])
def test_bessel_derivatives_of_high_order_match_mpmath(name: str, x0: float) -> None:
    """i1' and j1' hold f(x) / x, whose derivatives cancel near 0: the rules must stay exact to
    high order on both sides of where they change formula."""
    mpmath.mp.dps = 40
    order = {"i1": mpmath.besseli, "j1": mpmath.besselj}[name]
    for k in (1, 2, 4, 6, 8, 9):
        exact = float(mpmath.diff(lambda t: order(1, t), mpmath.mpf(x0), k))
        assert wengert.derivative(getattr(sp, name), k)(x0) == pytest.approx(exact, rel=1e-8, abs=1e-14)


TAILS = [  # (name, log-probability of x beside a point far in the other tail, a point, the oracle's derivative)
    ("gamma.logsf", lambda x: st.gamma.logsf(x, 2.0), [1.0, 50.0],
     lambda x: -ss.gamma.pdf(x, 2.0) / ss.gamma.sf(x, 2.0)),
    ("gamma.logcdf", lambda x: st.gamma.logcdf(x, 2.0), [5.0, 1e-6],
     lambda x: ss.gamma.pdf(x, 2.0) / ss.gamma.cdf(x, 2.0)),
    ("t.logcdf", lambda x: st.t.logcdf(x, 3.0), [3.0, -1e7], lambda x: ss.t.pdf(x, 3.0) / ss.t.cdf(x, 3.0)),
    ("beta.logsf", lambda x: st.beta.logsf(x, 2.0, 5.0), [0.2, 0.9999],
     lambda x: -ss.beta.pdf(x, 2.0, 5.0) / ss.beta.sf(x, 2.0, 5.0)),
]


@pytest.mark.parametrize("name, f, x, derivative", TAILS, ids=[t[0] for t in TAILS])
def test_log_probabilities_mixing_both_halves_have_finite_gradients(name, f, x, derivative):
    """Where p > 1/2 the logarithm is taken as log1p of minus the complement; an element in the
    far tail beside it must not get the NaN of the branch it does not take (0 * inf)."""
    x = onp.array(x)
    g = wengert.grad(lambda x: np.sum(f(x)))(x)
    onp.testing.assert_allclose(g, derivative(x), rtol=1e-6)
