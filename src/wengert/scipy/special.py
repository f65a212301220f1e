"""``scipy.special`` with gradients: ``wengert.scipy.special``.

Functions with rules (``_special_rules``) are wrapped primitives; ``logsumexp``, ``softmax``
and ``log_softmax`` are composites of them; every other name is SciPy's own. Plain
``scipy.special`` ufuncs (``scipy.special.erf(x)``) called on traced values find the same
rules, because wengert loads this module the first time one of them meets a traced value; so
does ``scipy.special.zeta``, through the ufuncs it calls. SciPy's other Python-level functions
(``logsumexp``, ``softmax``, ``log_softmax``, ``polygamma``) convert their arguments to plain
arrays, so on traced values call the versions here. ``numpy.i0`` gets ``scipy.special.i0``'s
rule from this module too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special as _sc

import wengert.numpy as _wnp

from .._core import Box as _Box
from .._core import strip as _strip
from ..numpy import _wrap
from . import _special_rules

_wrap.register(_special_rules.VJPS, _special_rules.JVPS)


def _traced(*xs: Any) -> bool:
    return any(type(x) is _Box for x in xs)


@_wrap.composite(_sc.logsumexp)
def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False) -> Any:
    if not _traced(a, b):
        return _sc.logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=return_sign)
    if np.ndim(_strip(a)) == 0:  # as SciPy reads a number: keepdims=True then gives shape (1,)
        a = _wnp.reshape(a, (1,))
    # Shift by the largest element that counts (a plain constant: the shift cancels, so it
    # carries no derivative) so that exp cannot overflow.
    plain = np.asarray(_strip(a))
    counted = plain
    if b is not None:
        weights = np.asarray(_strip(b))
        plain, weights = np.broadcast_arrays(plain, weights)
        counted = np.where(weights != 0, plain, -np.inf)
    shift = np.max(np.real(counted), axis=axis, keepdims=True) if plain.size else np.zeros((1,) * plain.ndim)
    shift = np.where(np.isfinite(shift), shift, 0.0)
    if b is not None:
        # A term with b == 0 adds nothing but still has a derivative in b, exp(a) / sum; it is
        # left out only where exp(a - shift) would overflow (inf * 0 would make the sum NaN).
        with np.errstate(invalid="ignore"):
            huge = (weights == 0) & (np.real(plain) - shift > np.log(np.finfo(np.result_type(plain, 1.0)).max))
        if np.any(huge):
            a = _wnp.where(huge, -np.inf, a)
    terms = _wnp.exp(a - shift)
    total = _wnp.sum(terms if b is None else terms * b, axis=axis, keepdims=True)
    plain_total = _strip(total)
    if np.iscomplexobj(plain_total):
        sign = total / _wnp.abs(total)  # the phase, as SciPy returns it (and differentiable)
        out = _wnp.log(total) if not return_sign else _wnp.log(_wnp.abs(total))
    else:
        sign = np.sign(plain_total)  # piecewise constant: no gradient
        with np.errstate(divide="ignore"):  # log(0) = -inf: every term -inf, as in SciPy
            out = _wnp.log(_wnp.abs(total))  # d log|s| = ds / s, for either sign
        if not return_sign and np.any(sign < 0):
            out = _wnp.where(sign < 0, np.nan, out)  # SciPy's value for a negative sum
    out = out + shift
    if not keepdims:  # a full reduction gives NumPy scalars, as SciPy's
        out = _wnp.squeeze(out, axis=axis)
        sign = _wnp.squeeze(sign, axis=axis)
        if np.ndim(_strip(out)) == 0:
            out, sign = out[()], sign[()]
    return (out, sign) if return_sign else out


@_wrap.composite(_sc.log_softmax)
def log_softmax(x: Any, axis: Any = None) -> Any:
    if not _traced(x):
        return _sc.log_softmax(x, axis=axis)
    top = np.amax(_strip(x), axis=axis, keepdims=True)
    shifted = x - np.where(np.isfinite(top), top, 0)  # SciPy's steps; the constant shift cancels
    with np.errstate(divide="ignore"):  # log(0) = -inf where every term is -inf, as in SciPy
        return shifted - _wnp.log(_wnp.sum(_wnp.exp(shifted), axis=axis, keepdims=True))


@_wrap.composite(_sc.softmax)
def softmax(x: Any, axis: Any = None) -> Any:
    if not _traced(x):
        return _sc.softmax(x, axis=axis)
    terms = _wnp.exp(x - np.amax(_strip(x), axis=axis, keepdims=True))  # SciPy's steps: no overflow
    return terms / _wnp.sum(terms, axis=axis, keepdims=True)


COMPOSITES = [_sc.logsumexp, _sc.log_softmax, _sc.softmax]

_wrap.publish(globals(), _sc)

# numpy.i0 (NumPy's own Bessel function, not a ufunc) shares scipy.special.i0's rule: wengert
# loads this module when numpy.i0 first meets a traced value (wengert.numpy._box._lookup).
_wrap.register({np.i0: _special_rules.VJPS[_sc.i0]}, {np.i0: _special_rules.JVPS[_sc.i0]})


def __getattr__(name: str) -> Any:
    return getattr(_sc, name)


def __dir__() -> list:
    return sorted(set(globals()) | set(dir(_sc)))
