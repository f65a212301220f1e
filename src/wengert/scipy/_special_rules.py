"""Derivative rules for scipy.special, as data: one line per function (see
wengert/numpy/_vjps.py for the conventions).

Every function here is elementwise, so each is ``DIAGONAL``: its JVP rules are its VJP rules.
The rules are written with ``wengert.numpy`` and with ``wengert.scipy.special``'s own wrapped
functions (``digamma`` differentiates into ``polygamma``, ``i0`` into ``i1`` ...), so that
derivatives of any order come for free. Where a function is a ratio of quantities that
overflow (``log_ndtr``, ``gammainc``), its derivative is formed in logarithms.

Derivatives with respect to the shape parameters of the incomplete gamma and beta functions,
the degrees of freedom of Student's t and the exponent of ``zeta`` have no closed form: their
rules raise ``NotImplementedError`` naming the argument, so that a traced value there fails
loudly instead of receiving a wrong or missing gradient.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import scipy.special as sc

import wengert.numpy as wnp
import wengert.scipy.special as wsp

from .._core import strip
from ..numpy._jvps import DIAGONAL

TWO_OVER_SQRT_PI = float(2 / np.sqrt(np.pi))
HALF_SQRT_PI = float(np.sqrt(np.pi) / 2)
SQRT_2PI = float(np.sqrt(2 * np.pi))
LOG_SQRT_2PI = float(0.5 * np.log(2 * np.pi))
SQRT_2, SQRT_2_OVER_PI, SQRT_PI_OVER_2 = float(np.sqrt(2)), float(np.sqrt(2 / np.pi)), float(np.sqrt(np.pi / 2))
LN2, LN10, LOG_PI = float(np.log(2)), float(np.log(10)), float(np.log(np.pi))
_zeta, _riemann_zeta = sc._ufuncs._zeta, sc._ufuncs._riemann_zeta  # private ufuncs behind sc.zeta


# ----------------------------------------------------------------------------- helpers
def no_derivative(function: str, argument: str, why: str = "it has no closed form") -> Callable:
    """The rule of an argument wengert cannot differentiate: raises when that argument is
    traced (and only then: rules run only for traced arguments)."""
    def rule(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"scipy.special.{function}: no derivative with respect to {argument}, because {why}. "
            f"Pass a plain value there (wengert.stop_gradient) if its gradient is not needed.")
    return rule


def inside(mask: Any, z: Any, safe: float, formula: Callable, outside: Any) -> Any:
    """``formula(z)`` where the plain ``mask`` holds, ``outside`` elsewhere. Points outside are
    moved to ``safe`` before ``formula`` sees them: a NaN or infinity in the branch that
    ``where`` drops would still poison the gradient (0 * inf)."""
    if np.all(mask):
        return formula(z)
    return wnp.where(mask, formula(wnp.where(mask, z, safe)), outside)


def _patched(mask: Any, x: Any, safe: float, formula: Callable, usual: Any) -> Any:
    """``usual``, with ``formula`` where the plain ``mask`` holds (see :func:`inside`)."""
    return inside(mask, x, safe, formula, usual) if np.any(mask) else usual


def _ratio(x: Any, y: Any, pole: float = 0.0) -> Any:
    """x / (y - pole), taken as 0 where x = 0 even at y = pole: xlogy(0, y) and friends are 0 for
    every y, so their derivative in y is 0 there, not 0 / 0."""
    both = (x == 0) & (y == pole)
    return x / (wnp.where(both, pole + 1.0, y) - pole) if np.any(both) else x / (y - pole)


NEAR_ZERO = 1.0  # below it f(x) / x is its Taylor series to x^24, whose remainder is below 1e-26
_OVER_X_SERIES = [1 / (2 ** (2 * k + 1) * math.factorial(k) * math.factorial(k + 1)) for k in range(13)]


def _over_x(f: Any, x: Any, sign: float, damped: bool = False) -> Any:
    """f(x) / x for f = i1 (``sign`` +1), j1 (``sign`` -1) or, ``damped``, i1e = exp(-|x|) i1, the
    Bessel recurrences: near 0 the series sum of (±x²)^k / (2^(2k+1) k! (k+1)!) (times exp(-|x|)),
    because there the derivatives of the quotient, f'/x - f/x², cancel to nothing (a second
    derivative of i1 at 1e-8 came out twice too big, and an eighth one at 0.003 lost all its
    digits); the series' derivatives are exact to about order 20."""
    near = np.abs(strip(x)) < NEAR_ZERO
    if not np.any(near):
        return f / x

    def series(y: Any) -> Any:
        y2 = sign * y * y
        s = _OVER_X_SERIES[-1]
        for c in _OVER_X_SERIES[-2::-1]:
            s = s * y2 + c
        return s * wnp.exp(-wnp.abs(y)) if damped else s
    return inside(near, x, 0.0, series, f / wnp.where(near, 1.0, x))


def _d_i1(g, a, x):  # i1' = i0 - i1 / x
    return g * (wsp.i0(x) - _over_x(a, x, 1.0))


def _d_i1e(g, a, x):  # i1e = exp(-|x|) i1, so i1e' = i0e - i1e (sign(x) + 1 / x)
    return g * (wsp.i0e(x) - wnp.sign(x) * a - _over_x(a, x, 1.0, damped=True))


def _d_j1(g, a, x):  # j1' = j0 - j1 / x
    return g * (wsp.j0(x) - _over_x(a, x, -1.0))


LARGE = 20.0  # beyond it erfcx' and dawsn' come from their asymptotic series (12 terms: the rest below 1e-22)


def _odd_factorial_series(x: Any, alternating: bool) -> Any:
    """sum over k = 1..12 of (±1)^k (2k-1)!! / (2x²)^k, the tail shared by erfcx' and dawsn'."""
    t = 1 / (2 * x * x)
    total, term = 0.0, 1.0
    for k in range(1, 13):
        term = term * (2 * k - 1) * (-t if alternating else t)
        total = total + term
    return total


def _far(x: Any, beyond: Callable) -> Any:
    """Where a real ``x`` is beyond LARGE (``beyond`` picks the side: ``x > LARGE``, ``|x| > LARGE``)."""
    v = strip(x)
    return np.isrealobj(v) & beyond(np.real(v))


def _d_erfcx(g, a, x):  # 2x erfcx(x) - 2/sqrt(pi); for large x, 2/sqrt(pi) (x sqrt(pi) erfcx(x) - 1)
    return g * _patched(_far(x, lambda v: v > LARGE), x, 2 * LARGE,
                        lambda x: TWO_OVER_SQRT_PI * _odd_factorial_series(x, True), 2 * x * a - TWO_OVER_SQRT_PI)


def _d_dawsn(g, a, x):  # 1 - 2x D(x), for large |x| -(sum of the odd factorial series)
    return g * _patched(_far(x, lambda v: np.abs(v) > LARGE), x, 2 * LARGE,
                        lambda x: -_odd_factorial_series(x, False), 1 - 2 * x * a)


def _d_rgamma(g, a, x):
    """(1/Γ)' = -ψ/Γ; at 0 and the negative integers (zeros of 1/Γ, poles of ψ, where that is
    0 times infinity) from the reflection 1/Γ(x) = Γ(1-x) sin(πx)/π instead, whose derivative
    is Γ(1-x) (π cos πx - ψ(1-x) sin πx) / π: (-1)^n n! at -n, and smooth for higher orders."""
    v = strip(x)
    poles = np.isrealobj(v) & (np.real(v) <= 0) & (v == np.floor(np.real(v)))
    if not np.any(poles):
        return -g * a * wsp.psi(x)

    def reflected(x: Any) -> Any:
        return wsp.gamma(1 - x) * (np.pi * wnp.cos(np.pi * x) - wsp.psi(1 - x) * wnp.sin(np.pi * x)) / np.pi
    return g * inside(poles, x, -0.5, reflected, -a * wsp.psi(wnp.where(poles, 0.5, x)))


def _d_log_ndtr(g, a, x):
    """pdf / cdf; for x < 0 as sqrt(2/pi) / erfcx(-x/sqrt 2), where exp(-x²/2 - log_ndtr(x)) would
    subtract two nearly equal large numbers."""
    return g * _patched(np.real(strip(x)) < 0, x, -1.0, lambda x: SQRT_2_OVER_PI / wsp.erfcx(-x / SQRT_2),
                        wnp.exp(-0.5 * x * x - LOG_SQRT_2PI - a))


def _d_ndtri_exp(g, a, y):
    """exp(y) / pdf(a) with a = ndtri_exp(y); for a < 0 as sqrt(pi/2) erfcx(-a/sqrt 2), which
    does not cancel as exp(y + a²/2) does."""
    return g * _patched(strip(a) < 0, a, -1.0, lambda a: SQRT_PI_OVER_2 * wsp.erfcx(-a / SQRT_2),
                        wnp.exp(y + 0.5 * a * a + LOG_SQRT_2PI))


def _d_gammainc(g, ans, a, x):
    """d/dx P(a, x) = x^(a-1) e^-x / Gamma(a), in logarithms (the factors overflow apart)."""
    return g * wnp.exp(wsp.xlogy(a - 1, x) - x - wsp.gammaln(a))


def _d_betainc(g, ans, a, b, x):
    """d/dx I_x(a, b) = x^(a-1) (1-x)^(b-1) / B(a, b), in logarithms."""
    return g * wnp.exp(wsp.xlogy(a - 1, x) + wsp.xlog1py(b - 1, -x) - wsp.betaln(a, b))


def t_logpdf(t: Any, df: Any) -> Any:
    """The log-density of Student's t distribution, as SciPy writes it (``poch`` keeps it
    accurate for large ``df``), and the normal one where ``df`` is infinite."""
    infinite = np.isinf(strip(df))
    if np.any(infinite):
        finite = t_logpdf(t, wnp.where(infinite, 1.0, df))
        return wnp.where(infinite, -0.5 * t * t - LOG_SQRT_2PI, finite)
    return (wnp.log(wsp.poch(0.5 * df, 0.5)) - 0.5 * (wnp.log(df) + LOG_PI)
            - (df + 1) / 2 * wnp.log1p(t * t / df))


def _d_stdtr(g, ans, df, t):
    """d/dt of Student's t distribution function: its density."""
    return g * wnp.exp(t_logpdf(t, df))


def _d_zeta(g, a, x, q=None, out=None):  # Hurwitz zeta: d/dq sum (k + q)^-x = -x zeta(x + 1, q)
    return -g * x * wsp.zeta(x + 1, q)


# B_2, B_4, ..., B_20: the Bernoulli numbers of the Euler-Maclaurin tail below
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798, -174611 / 330)
_NEAR = 16.0  # the tail is summed where Re(z + N) >= 16: its first omitted term is below 1e-20
_MOST_TERMS = 100_000


def _complex_polygamma(n: int, z: Any) -> Any:
    """polygamma(n, z) = (-1)^(n+1) n! zeta(n + 1, z) for complex ``z``, which SciPy's
    polygamma refuses: N terms of the series summed directly, so that Re(z + N) >= 16, then
    the Euler-Maclaurin tail of the rest. Written in traced operations, so that its own
    derivatives (the next polygammas) come from the tape."""
    s = n + 1
    steps = max(0, int(np.ceil(_NEAR - np.min(np.real(strip(z)), initial=_NEAR))))
    if steps > _MOST_TERMS:
        raise NotImplementedError(f"scipy.special.psi: the derivative at complex z with Re(z) < "
                                  f"{_NEAR - _MOST_TERMS:g} is not supported (its series would need more "
                                  f"than {_MOST_TERMS} terms).")
    w = z + steps
    total = w ** (1 - s) / (s - 1) + w ** -s / 2
    rising = s / 2  # s (s + 1) ... (s + 2j - 2) / (2j)!
    for j, b in enumerate(_BERNOULLI, start=1):
        total = total + b * rising * w ** (1 - s - 2 * j)
        rising *= (s + 2 * j - 1) * (s + 2 * j) / ((2 * j + 1) * (2 * j + 2))
    if steps:
        total = total + wnp.sum((wnp.expand_dims(z, -1) + np.arange(steps)) ** -s, axis=-1)
    return (-1) ** (n + 1) * float(np.prod(np.arange(1, n + 1))) * total


def _trigamma(x: Any) -> Any:
    """psi' = polygamma(1, x), by the series above where ``x`` is complex."""
    return _complex_polygamma(1, x) if np.iscomplexobj(strip(x)) else wsp.polygamma(1, x)


def _d_poch(g, a, z, m):  # poch(z, m) = Gamma(z + m) / Gamma(z)
    return g * a * (wsp.psi(z + m) - wsp.psi(z))


def _d_beta(g, a, x, y):
    return g * a * (wsp.psi(x) - wsp.psi(x + y))


def _d_betaln(g, a, x, y):
    return g * (wsp.psi(x) - wsp.psi(x + y))


# ============================================================================= the table
_NO_SHAPE = "the derivative in the shape parameter is an infinite series"
VJPS: dict[Any, Any] = {
    # --------------------------------------------------------------- error functions
    sc.erf:       (lambda g, a, x: g * TWO_OVER_SQRT_PI * wnp.exp(-x * x),),
    sc.erfc:      (lambda g, a, x: -g * TWO_OVER_SQRT_PI * wnp.exp(-x * x),),
    sc.erfi:      (lambda g, a, x: g * TWO_OVER_SQRT_PI * wnp.exp(x * x),),
    sc.erfcx:     (_d_erfcx,),
    sc.erfinv:    (lambda g, a, x: g * HALF_SQRT_PI * wnp.exp(a * a),),
    sc.erfcinv:   (lambda g, a, x: -g * HALF_SQRT_PI * wnp.exp(a * a),),
    sc.dawsn:     (_d_dawsn,),
    # --------------------------------------------------------------- the normal distribution
    sc.ndtr:      (lambda g, a, x: g * wnp.exp(-0.5 * x * x - LOG_SQRT_2PI),),
    sc.log_ndtr:  (_d_log_ndtr,),
    sc.ndtri:     (lambda g, a, x: g * SQRT_2PI * wnp.exp(0.5 * a * a),),
    sc.ndtri_exp: (_d_ndtri_exp,),
    # --------------------------------------------------------------- gamma and beta functions
    sc.gamma:     (lambda g, a, x: g * a * wsp.psi(x),),
    sc.gammaln:   (lambda g, a, x: g * wsp.psi(x),),
    sc.loggamma:  (lambda g, a, x: g * wsp.psi(x),),
    sc.rgamma:    (_d_rgamma,),
    sc.psi:       (lambda g, a, x: g * _trigamma(x),),
    sc.polygamma: (None, lambda g, a, n, x: g * wsp.polygamma(n + 1, x)),
    sc.poch:      (_d_poch, lambda g, a, z, m: g * a * wsp.psi(z + m)),
    sc.beta:      (_d_beta, lambda g, a, x, y: _d_beta(g, a, y, x)),
    sc.betaln:    (_d_betaln, lambda g, a, x, y: _d_betaln(g, a, y, x)),
    sc.gammainc:  (no_derivative("gammainc", "a (argument 0)", _NO_SHAPE), _d_gammainc),
    sc.gammaincc: (no_derivative("gammaincc", "a (argument 0)", _NO_SHAPE),
                   lambda g, ans, a, x: -_d_gammainc(g, ans, a, x)),
    sc.betainc:   (no_derivative("betainc", "a (argument 0)", _NO_SHAPE),
                   no_derivative("betainc", "b (argument 1)", _NO_SHAPE), _d_betainc),
    sc.betaincc:  (no_derivative("betaincc", "a (argument 0)", _NO_SHAPE),
                   no_derivative("betaincc", "b (argument 1)", _NO_SHAPE),
                   lambda g, ans, a, b, x: -_d_betainc(g, ans, a, b, x)),
    sc.stdtr:     (no_derivative("stdtr", "df (argument 0)", _NO_SHAPE), _d_stdtr),
    sc.zeta:      (no_derivative("zeta", "x (argument 0)"), _d_zeta),
    # what plain scipy.special.zeta calls: so that it finds these rules on traced values too
    _zeta:        (no_derivative("zeta", "x (argument 0)"), _d_zeta),
    _riemann_zeta: (no_derivative("zeta", "x (argument 0)"),),
    # --------------------------------------------------------------- logistic
    sc.expit:     (lambda g, a, x: g * a * wsp.expit(-x),),  # not a (1 - a): 1 - a is 0 beyond x = 37
    sc.logit:     (lambda g, a, x: g / (x * (1 - x)),),
    sc.log_expit: (lambda g, a, x: g * wsp.expit(-x),),
    # --------------------------------------------------------------- logarithms and entropies
    sc.xlogy:     (lambda g, a, x, y: g * wnp.log(y), lambda g, a, x, y: g * _ratio(x, y)),
    sc.xlog1py:   (lambda g, a, x, y: g * wnp.log1p(y), lambda g, a, x, y: g * _ratio(x, y, -1.0)),
    sc.entr:      (lambda g, a, x: -g * (wnp.log(x) + 1),),
    sc.rel_entr:  (lambda g, a, x, y: g * (wnp.log(x) - wnp.log(y) + 1), lambda g, a, x, y: -g * _ratio(x, y)),
    sc.kl_div:    (lambda g, a, x, y: g * (wnp.log(x) - wnp.log(y)), lambda g, a, x, y: g * (1 - _ratio(x, y))),
    sc.expm1:     (lambda g, a, x: g * wnp.exp(x),),  # not a + 1, which is 0 below x = -37
    sc.log1p:     (lambda g, a, x: g / (x + 1),),
    sc.cosm1:     (lambda g, a, x: -g * wnp.sin(x),),
    sc.powm1:     (lambda g, a, x, y: g * y * wnp.power(x, y - 1),  # NumPy's power: inf, not Python's OverflowError
                   lambda g, a, x, y: g * wsp.xlogy(wnp.power(x, y), x)),
    sc.exp2:      (lambda g, a, x: g * a * LN2,),
    sc.exp10:     (lambda g, a, x: g * a * LN10,),
    # --------------------------------------------------------------- Bessel functions
    sc.i0:        (lambda g, a, x: g * wsp.i1(x),),
    sc.i1:        (_d_i1,),
    sc.i0e:       (lambda g, a, x: g * (wsp.i1e(x) - wnp.sign(x) * a),),
    sc.i1e:       (_d_i1e,),
    sc.j0:        (lambda g, a, x: -g * wsp.j1(x),),
    sc.j1:        (_d_j1,),
    sc.y0:        (lambda g, a, x: -g * wsp.y1(x),),
    sc.y1:        (lambda g, a, x: g * (wsp.y0(x) - a / x),),
}

JVPS: dict[Any, Any] = {f: DIAGONAL for f in VJPS}  # every function here is elementwise
