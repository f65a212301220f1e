"""``scipy.linalg`` with gradients: ``wengert.scipy.linalg``.

Differentiable here: ``expm``, ``sqrtm``, ``solve_sylvester``, ``solve_triangular``,
``lu_factor``, ``lu_solve``, ``cho_factor`` and ``cho_solve``, and SciPy's names for NumPy's
decompositions and solvers under SciPy's conventions (``inv``, ``det``, ``solve``,
``cholesky``, ``eigh``, ``svd``, ``norm``, ``pinv``, ``block_diag``); the rules and their
limits are in :mod:`wengert.scipy._linalg_rules`. On traced input they keep SciPy's result
types and dtypes and honour ``check_finite``; gradients have the dtype of their argument.
Every other name is SciPy's own.

SciPy's linalg functions do not dispatch through NumPy's ``__array_function__``: only calls
through this module are differentiated. Plain ``scipy.linalg.expm(x)`` on a traced value
raises wengert's ``ConversionError`` (SciPy turns its argument into a plain array, which
would drop the gradient), so write ``import wengert.scipy.linalg as sla`` and call ``sla.expm``.
"""

import scipy.linalg as _sl

from ..numpy import _wrap
from . import _linalg_rules

# The composites of _linalg_rules (lu_factor, cho_solve ...) registered themselves on import.
_wrap.register(_linalg_rules.VJPS, _linalg_rules.JVPS, _linalg_rules.IMPLS)
_wrap.publish(globals(), _sl)


def __getattr__(name: str):
    return getattr(_sl, name)


def __dir__() -> list:
    return sorted(set(globals()) | set(dir(_sl)))
