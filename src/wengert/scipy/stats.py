"""``scipy.stats`` with gradients: ``wengert.scipy.stats``.

``norm``, ``t``, ``gamma``, ``beta``, ``poisson``, ``multivariate_normal`` and ``dirichlet``
carry differentiable density and distribution functions under scipy.stats' names and
calling conventions (``stats.norm.logpdf(x, loc=0, scale=1)``, or frozen:
``stats.norm(loc, scale).logpdf(x)``). They are composites of ``wengert.numpy`` and
``wengert.scipy.special`` functions, so every floating-point argument (the point, ``loc``,
``scale``, the shape parameters, ``mean`` and ``cov``) is differentiable to any order, with
these exceptions, which raise ``NotImplementedError`` when traced: the shape parameters of
``gamma``'s and ``beta``'s distribution functions (``cdf``, ``sf`` and their logarithms) and
the degrees of freedom of ``t``'s (derivatives of incomplete gamma and beta functions in
their parameters). ``poisson`` differentiates in the rate ``mu``, not in the count ``k`` or
the integer ``loc``. Any other attribute of a distribution (``rvs``, ``mean`` ...) is SciPy's
own, and so is any other name of this module; given traced values (or called on a frozen
distribution whose parameters are traced), such an attribute raises ``NoRuleError``: SciPy
would compute it from plain values, without their gradient.

Outside a distribution's support the values are SciPy's (``-inf`` log-densities, ``0``/``1``
probabilities) and the gradients zero; invalid parameters (``scale <= 0`` ...) give NaN, as
in SciPy. In both cases the formulas are evaluated at a harmless point instead, so that no
warning is raised and no NaN from the branch that is not taken reaches the gradient.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import numpy as np
import scipy.stats as _st

import wengert.numpy as wnp

from .._core import strip as _strip
from ..numpy._box import NoRuleError
from ..numpy._wrap import holds_box as _holds_box
from . import special as sp
from ._special_rules import inside as _inside
from ._special_rules import t_logpdf as _t_standard_logpdf
from ._stats_rules import logdet as _logdet
from ._stats_rules import solve as _solve

LOG_SQRT_2PI = float(0.5 * np.log(2 * np.pi))
LOG_2PI = float(np.log(2 * np.pi))


class _Family:
    """A distribution's differentiable functions; its other attributes are SciPy's. Calling
    it freezes its parameters, as in SciPy. ``constant`` names the shape parameters that must
    not be traced in its distribution functions (:data:`_TAILS`)."""

    def __init__(self, name: str, constant: tuple = (), **functions: Callable):
        self.__name__ = name
        self._scipy = getattr(_st, name)
        self._functions = {key: _entry(name, key, fun, constant if key in _TAILS else ())
                           for key, fun in functions.items()}
        for key, fun in self._functions.items():
            setattr(self, key, fun)

    def __call__(self, *args: Any, **kwargs: Any) -> _Frozen:
        return _Frozen(self, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._scipy, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            if _holds_box((*args, *kwargs.values())):
                raise self._no_rule(name)
            return attr(*args, **kwargs)
        return call

    def _no_rule(self, key: str, frozen: str = "") -> NoRuleError:
        """The error for ``key``, which has no rule, called with (or on ``frozen`` parameters
        holding) a traced value, whose gradient SciPy's plain computation would lose."""
        return NoRuleError(f"scipy.stats.{self.__name__}{frozen}.{key} has no derivative rule in wengert, and a "
                           "value given to it is traced: its gradient would be lost. Write it with the "
                           f"differentiable functions ({', '.join(self._functions)}) or wengert.numpy, or pass "
                           "plain values (wengert.stop_gradient) where the gradient is not needed.")

    def __dir__(self) -> list:
        return sorted(set(self._functions) | set(dir(self._scipy)))

    def __repr__(self) -> str:
        return f"<wengert.scipy.stats.{self.__name__}: {', '.join(self._functions)}>"


_TAILS = ("cdf", "logcdf", "sf", "logsf")


def _entry(name: str, key: str, fun: Callable, constant: tuple) -> Callable:
    """``fun`` as ``scipy.stats.<name>.<key>``: arguments read as SciPy reads them, and wrong
    arguments get an error that names the function and shows its signature, as does a traced
    value given for a parameter in ``constant`` (one wengert has no derivative in)."""
    signature = inspect.signature(fun)

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as wrong:
            raise TypeError(f"scipy.stats.{name}.{key}{signature}: {wrong}.") from None
        for p in constant:
            if _holds_box(bound.arguments.get(p)):
                raise NotImplementedError(
                    f"scipy.stats.{name}.{key}: no derivative with respect to the shape parameter {p!r}, "
                    "an infinite series that wengert does not sum (the derivatives in the point, loc and "
                    f"scale are there). Pass a plain value for {p!r} (wengert.stop_gradient) if its "
                    "gradient is not needed.")
        out = fun(*(_double(a) for a in args), **{k: _double(v) for k, v in kwargs.items()})
        return out[()] if np.ndim(_strip(out)) == 0 else out  # a 0-d result is a NumPy scalar, as SciPy's
    call.__name__ = call.__qualname__ = key
    call.__doc__ = f"scipy.stats.{name}.{key}{signature}, differentiable (wengert.scipy.stats)."
    call.__signature__ = signature  # type: ignore[attr-defined]
    return call


def _double(a: Any) -> Any:
    """An argument as SciPy's distributions read it: a list as an array, and single or half
    precision raised to double (their results are float64)."""
    if isinstance(a, (list, tuple)):
        a = wnp.asarray(a)
    dtype = getattr(_strip(a), "dtype", None)
    return wnp.astype(a, np.float64) if dtype is not None and dtype.kind == "f" and dtype.itemsize < 8 else a


class _Frozen:
    """A distribution with fixed parameters: ``norm(loc, scale).logpdf(x)`` is
    ``norm.logpdf(x, loc, scale)``. Other attributes are those of SciPy's frozen distribution,
    refused where a parameter is traced (SciPy computes them without its gradient)."""

    def __init__(self, family: _Family, args: tuple, kwargs: dict):
        self._family, self._args, self._kwargs = family, args, kwargs

    def __getattr__(self, name: str) -> Any:
        family = self.__dict__["_family"]
        fun = family._functions.get(name)
        if fun is not None:
            return functools.partial(_call_frozen, fun, self._args, self._kwargs)
        if _holds_box((*self._args, *self._kwargs.values())):  # (mean, std, isf ... computed by SciPy)
            raise family._no_rule(name, "(...)")
        return getattr(family._scipy(*self._args, **self._kwargs), name)

    def __repr__(self) -> str:
        return f"<frozen wengert.scipy.stats.{self._family.__name__}>"


def _call_frozen(fun: Callable, args: tuple, kwargs: dict, x: Any) -> Any:
    return fun(x, *args, **kwargs)


# ----------------------------------------------------------------------------- helpers
def _plain(x: Any) -> np.ndarray:
    return np.asarray(_strip(x))


def _positive(v: np.ndarray) -> np.ndarray:
    return v > 0


def _nonnegative(v: np.ndarray) -> np.ndarray:
    return v >= 0


def _probability(v: np.ndarray) -> np.ndarray:
    return (v >= 0) & (v <= 1)


def _checked(**tests: Callable) -> Callable:
    """Decorator: NaN (SciPy's answer) where an argument fails its test. There, every tested
    argument is replaced by a harmless value (0.5 for probabilities, else 1) before the formula
    sees it, so that neither a warning nor a NaN of the formula reaches the value or the
    gradient."""
    def decorate(fun: Callable) -> Callable:
        signature = inspect.signature(fun)

        @functools.wraps(fun)
        def checked(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            ok = functools.reduce(np.logical_and, [test(_plain(bound.arguments[name]))
                                                   for name, test in tests.items()])
            if np.all(ok):
                return fun(*bound.args, **bound.kwargs)
            for name, test in tests.items():
                harmless = 0.5 if test is _probability else 1.0
                bound.arguments[name] = wnp.where(ok, bound.arguments[name], harmless)
            return wnp.where(ok, fun(*bound.args, **bound.kwargs), np.nan)
        return checked
    return decorate


def _log_probability(p: Any, complement: Callable[[], Any]) -> Any:
    """log p for a probability ``p`` whose complement 1 - p is ``complement()``: log1p of minus
    the complement where p > 1/2, which keeps the digits log(p) loses near 1 (as SciPy does)."""
    near_one = _plain(p) > 0.5
    if not np.any(near_one):
        return wnp.log(p)
    # (the complement moved to 0 where p <= 1/2: there it may be 1, whose log1p(-1) = -inf would
    # make the gradient of the branch not taken 0 * inf = NaN)
    return _inside(near_one, complement(), 0.0, lambda c: wnp.log1p(-c), wnp.log(p))


def _log(fun: Callable, complement: Callable) -> Callable:
    """The logarithm of a distribution function (SciPy's logcdf and logsf of these families)."""
    return functools.wraps(fun)(lambda *args, **kwargs: _log_probability(fun(*args, **kwargs),
                                                                          lambda: complement(*args, **kwargs)))


# the regularised incomplete functions and their complements: cdf and sf of gamma, beta, poisson
_COMPLEMENT = {sp.gammainc: sp.gammaincc, sp.gammaincc: sp.gammainc, sp.betainc: sp.betaincc, sp.betaincc: sp.betainc}


def _log_regularised(regularised: Callable, *args: Any) -> Any:
    return _log_probability(regularised(*args), lambda: _COMPLEMENT[regularised](*args))


def _end(p: Any, log: bool) -> Any:
    """A probability of 0 or 1 off the support, or its logarithm (-inf or 0) without a warning."""
    return np.where(np.asarray(p) == 0, -np.inf, 0.0) if log else p


def _squeeze(out: Any) -> Any:
    """SciPy's multivariate outputs: unit dimensions dropped."""
    return wnp.squeeze(out) if np.ndim(_strip(out)) else out


# ----------------------------------------------------------------------------- norm
@_checked(scale=_positive)
def _norm_logpdf(x, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return -0.5 * z * z - wnp.log(scale) - LOG_SQRT_2PI


def _standardised(fun: Callable, sign: float = 1.0) -> Callable:
    """A function of ``sign * (x - loc) / scale`` (sign -1: the survival functions)."""
    @_checked(scale=_positive)
    def f(x, loc=0.0, scale=1.0):
        return fun(sign * (x - loc) / scale)
    return f


@_checked(q=_probability, scale=_positive)
def _norm_ppf(q, loc=0.0, scale=1.0):
    return loc + scale * sp.ndtri(q)


norm = _Family(
    "norm",
    logpdf=_norm_logpdf,
    pdf=lambda x, loc=0.0, scale=1.0: wnp.exp(_norm_logpdf(x, loc, scale)),
    cdf=_standardised(sp.ndtr),
    logcdf=_standardised(sp.log_ndtr),
    sf=_standardised(sp.ndtr, -1.0),
    logsf=_standardised(sp.log_ndtr, -1.0),
    ppf=_norm_ppf,
)


# ----------------------------------------------------------------------------- t
@_checked(df=_positive, scale=_positive)
def _t_logpdf(x, df, loc=0.0, scale=1.0):
    return _t_standard_logpdf((x - loc) / scale, df) - wnp.log(scale)


@_checked(df=_positive, scale=_positive)
def _t_cdf(x, df, loc=0.0, scale=1.0):
    return sp.stdtr(df, (x - loc) / scale)


@_checked(df=_positive, scale=_positive)
def _t_sf(x, df, loc=0.0, scale=1.0):
    return sp.stdtr(df, (loc - x) / scale)


t = _Family(
    "t", ("df",),
    logpdf=_t_logpdf,
    pdf=lambda x, df, loc=0.0, scale=1.0: wnp.exp(_t_logpdf(x, df, loc, scale)),
    cdf=_t_cdf,
    logcdf=_log(_t_cdf, _t_sf),
    sf=_t_sf,
    logsf=_log(_t_sf, _t_cdf),
)


# ----------------------------------------------------------------------------- gamma
@_checked(a=_positive, scale=_positive)
def _gamma_logpdf(x, a, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return _inside(~(_plain(z) < 0), z, 1.0, lambda z: sp.xlogy(a - 1, z) - z - sp.gammaln(a), -np.inf) \
        - wnp.log(scale)


def _gamma_tail(regularised: Any, below: float, log: bool = False) -> Callable:
    """cdf (``gammainc``) or sf (``gammaincc``), or their logarithms: ``below`` for points
    left of the support."""
    @_checked(a=_positive, scale=_positive)
    def f(x, a, loc=0.0, scale=1.0):
        z = (x - loc) / scale
        formula = (lambda z: _log_regularised(regularised, a, z)) if log else (lambda z: regularised(a, z))
        return _inside(~(_plain(z) <= 0), z, 1.0, formula, _end(below, log))  # (NaN: the formula's NaN)
    return f


gamma = _Family(
    "gamma", ("a",),
    logpdf=_gamma_logpdf,
    pdf=lambda x, a, loc=0.0, scale=1.0: wnp.exp(_gamma_logpdf(x, a, loc, scale)),
    cdf=_gamma_tail(sp.gammainc, 0.0),
    logcdf=_gamma_tail(sp.gammainc, 0.0, log=True),
    sf=_gamma_tail(sp.gammaincc, 1.0),
    logsf=_gamma_tail(sp.gammaincc, 1.0, log=True),
)


# ----------------------------------------------------------------------------- beta
@_checked(a=_positive, b=_positive, scale=_positive)
def _beta_logpdf(x, a, b, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    zp = _plain(z)
    return _inside(~((zp < 0) | (zp > 1)), z, 0.5,
                   lambda z: sp.xlogy(a - 1, z) + sp.xlog1py(b - 1, -z) - sp.betaln(a, b), -np.inf) \
        - wnp.log(scale)


def _beta_tail(regularised: Any, below: float, log: bool = False) -> Callable:
    """cdf (``betainc``) or sf (``betaincc``), or their logarithms: ``below`` left of the
    support, ``1 - below`` right of it."""
    @_checked(a=_positive, b=_positive, scale=_positive)
    def f(x, a, b, loc=0.0, scale=1.0):
        z = (x - loc) / scale
        zp = _plain(z)
        formula = (lambda z: _log_regularised(regularised, a, b, z)) if log else (lambda z: regularised(a, b, z))
        return _inside(~((zp <= 0) | (zp >= 1)), z, 0.5, formula, _end(np.where(zp <= 0, below, 1.0 - below), log))
    return f


beta = _Family(
    "beta", ("a", "b"),
    logpdf=_beta_logpdf,
    pdf=lambda x, a, b, loc=0.0, scale=1.0: wnp.exp(_beta_logpdf(x, a, b, loc, scale)),
    cdf=_beta_tail(sp.betainc, 0.0),
    logcdf=_beta_tail(sp.betainc, 0.0, log=True),
    sf=_beta_tail(sp.betaincc, 1.0),
    logsf=_beta_tail(sp.betaincc, 1.0, log=True),
)


# ----------------------------------------------------------------------------- poisson
@_checked(mu=_nonnegative)
def _poisson_logpmf(k, mu, loc=0):
    k = _plain(k) - _plain(loc)  # counts: no derivative
    ok = (k >= 0) & (k == np.floor(k))
    value = sp.xlogy(np.where(ok, k, 0.0), mu) - sp.gammaln(np.where(ok, k, 0.0) + 1) - mu
    return value if np.all(ok) else wnp.where(ok, value, np.where(np.isnan(k), np.nan, -np.inf))


def _poisson_tail(regularised: Any, below: float, log: bool = False) -> Callable:
    """cdf, P(K <= k) = Q(k + 1, mu) (``gammaincc``), or sf, P(K > k) = P(k + 1, mu)
    (``gammainc``), or their logarithms: ``below`` for counts below 0."""
    @_checked(mu=_nonnegative)
    def f(k, mu, loc=0):
        k = np.floor(_plain(k) - _plain(loc))
        ok = k >= 0
        n = np.where(ok, k, 0.0) + 1
        value = _log_regularised(regularised, n, mu) if log else regularised(n, mu)
        return value if np.all(ok) else wnp.where(ok, value, np.where(np.isnan(k), np.nan, _end(below, log)))
    return f


poisson = _Family(
    "poisson",
    logpmf=_poisson_logpmf,
    pmf=lambda k, mu, loc=0: wnp.exp(_poisson_logpmf(k, mu, loc)),
    cdf=_poisson_tail(sp.gammaincc, 0.0),
    logcdf=_poisson_tail(sp.gammaincc, 0.0, log=True),
    sf=_poisson_tail(sp.gammainc, 1.0),
    logsf=_poisson_tail(sp.gammainc, 1.0, log=True),
)


# ----------------------------------------------------------------------------- multivariate_normal
def _mvn_logpdf(x, mean=None, cov=1, allow_singular=False):
    """-(d log 2 pi + log det cov + r^T cov^-1 r) / 2 with r = x - mean, over the last axis of
    ``x``, with a linear solve rather than an inverse. ``cov`` may be a matrix, a vector (the
    diagonal) or a number (times the identity), and must be positive definite: the singular
    covariances that ``allow_singular=True`` admits in SciPy are not supported. As in SciPy,
    only the lower triangle of a matrix ``cov`` is read, so its gradient lies there too."""
    c = _plain(cov)
    dim = _plain(mean).size if mean is not None else (c.shape[0] if c.ndim >= 1 else 1)
    if c.ndim > 2 or (c.ndim == 2 and c.shape != (dim, dim)) or (c.ndim == 1 and c.size != dim):
        raise ValueError(f"multivariate_normal: cov must be a number, a vector of {dim} variances or a "
                         f"{dim} x {dim} matrix (mean has {dim} components), not of shape {c.shape}.")
    try:
        np.linalg.cholesky(c * np.eye(dim) if c.ndim < 2 else c)
    except np.linalg.LinAlgError:
        raise ValueError("multivariate_normal: cov must be symmetric positive definite"
                         + (" (singular covariances, which allow_singular=True admits in SciPy, are "
                            "not supported)" if allow_singular else "") + ".") from None
    mean = np.zeros(dim) if mean is None else wnp.reshape(mean, (dim,))
    if c.ndim < 2:
        cov = cov * np.eye(dim)  # a number times the identity, or a vector on the diagonal
    else:
        cov = wnp.tril(cov) + wnp.tril(cov, -1).T  # SciPy reads the lower triangle, as cholesky does
    xp = _plain(x)
    if xp.ndim == 0:
        x = wnp.reshape(x, (1,))
    elif xp.ndim == 1:
        x = wnp.reshape(x, (-1, 1) if dim == 1 else (1, -1))
    if _plain(x).shape[-1] != dim:
        raise ValueError(f"multivariate_normal: x must have {dim} components in its last axis (as mean "
                         f"and cov do), not {_plain(x).shape[-1]}.")
    r = x - mean
    batch = np.shape(_strip(r))[:-1]
    rows = wnp.reshape(r, (-1, dim)).T  # one column per point
    maha = wnp.sum(rows * _solve(cov, rows), axis=0)
    out = -0.5 * (dim * LOG_2PI + _logdet(cov) + maha)
    return _squeeze(wnp.reshape(out, batch))


multivariate_normal = _Family(
    "multivariate_normal",
    logpdf=_mvn_logpdf,
    pdf=lambda x, mean=None, cov=1, allow_singular=False: wnp.exp(_mvn_logpdf(x, mean, cov, allow_singular)),
)


# ----------------------------------------------------------------------------- dirichlet
SIMPLEX_TOLERANCE = 1e-5


def _dirichlet_logpdf(x, alpha):
    """sum((alpha - 1) log x) - log B(alpha), over the first axis of ``x`` (SciPy's layout);
    given one component fewer than ``alpha``, the last is one minus the others' sum. ``x``
    must lie in the simplex, to within ``SIMPLEX_TOLERANCE`` (looser than SciPy's 1e-9, so
    that finite differences can step off it); the derivative in ``x`` is the formula's, with
    every component free."""
    alpha_p = _plain(alpha)
    if alpha_p.ndim != 1 or np.any(alpha_p <= 0):
        raise ValueError("dirichlet: alpha must be a vector of positive numbers.")
    k, xp = alpha_p.shape[0], _plain(x)
    if xp.ndim == 0 or xp.shape[0] not in (k, k - 1):
        raise ValueError(f"dirichlet: x must have {k} or {k - 1} components along its first axis "
                         f"(alpha has {k}), not shape {xp.shape}.")
    if xp.shape[0] == k - 1:
        x = wnp.concatenate([x, 1 - wnp.sum(x, axis=0, keepdims=True)], axis=0)
        xp = _plain(x)
    if np.any(xp < 0) or np.any(xp > 1) or np.any(np.abs(np.sum(xp, axis=0) - 1) > SIMPLEX_TOLERANCE):
        raise ValueError("dirichlet: x must lie in the simplex (components between 0 and 1, summing "
                         f"to 1 along the first axis); its sums are {np.sum(xp, axis=0)}.")
    if np.any((xp == 0) & (alpha_p.reshape((k,) + (1,) * (xp.ndim - 1)) < 1)):
        raise ValueError("dirichlet: a component of x is 0 where its alpha is below 1 (the density is "
                         "infinite there); SciPy refuses it too.")
    log_b = wnp.sum(sp.gammaln(alpha)) - sp.gammaln(wnp.sum(alpha))
    a = wnp.reshape(alpha - 1, (k,) + (1,) * (xp.ndim - 1))
    return _squeeze(wnp.sum(sp.xlogy(a, x), axis=0) - log_b)


dirichlet = _Family(
    "dirichlet",
    logpdf=_dirichlet_logpdf,
    pdf=lambda x, alpha: wnp.exp(_dirichlet_logpdf(x, alpha)),
)

DISTRIBUTIONS = [norm, t, gamma, beta, poisson, multivariate_normal, dirichlet]


def __getattr__(name: str) -> Any:
    return getattr(_st, name)


def __dir__() -> list:
    return sorted(set(globals()) | set(dir(_st)))
