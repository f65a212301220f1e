"""NumPy with gradients: ``import wengert.numpy as np`` and write NumPy as usual.

Every NumPy name is here. Functions with a derivative rule record themselves when given a
traced value; piecewise-constant ones (``floor``, ``argmax``, comparisons ...) pass plain
values through; everything else is NumPy's own object, and calling it on a traced value
raises an error that names it. Plain ``import numpy as np`` code differentiates too: traced
values implement ``__array_ufunc__`` and ``__array_function__`` and land in the same rules.
"""

import numpy as _np

from . import _wrap
from ._jvps import DIAGONAL as _DIAGONAL
from ._jvps import JVPS as _JVPS
from ._jvps import lift as _lift
from ._vjps import IMPLS as _IMPLS
from ._vjps import NONDIFFERENTIABLE as _NONDIFFERENTIABLE
from ._vjps import VJPS as _VJPS
from ._vjps import untake as _untake_impl

for _fun, _rules in _VJPS.items():
    _diagonal = _JVPS[_fun] is _DIAGONAL  # elementwise: the tangent rules are the cotangent rules
    _wrap.differentiable(_fun, _rules, impl=_IMPLS.get(_fun), jvps=_rules if _diagonal else _JVPS[_fun],
                         lift=_lift if _diagonal else None)
for _fun in _NONDIFFERENTIABLE:
    _wrap.nondifferentiable(_fun)

# Imported for their effects: _box gives traced values their ndarray behaviour, _composite
# replaces the plain wrappers of functions that take lists of arrays, or need more care.
from . import _box, _composite  # noqa: E402,F401

_getitem = _wrap.DISPATCH[__import__("operator").getitem]
_untake = _wrap.DISPATCH[_untake_impl]


def _publish() -> list:
    """Bind every wrapped callable under each of the names NumPy has for it."""
    import warnings

    names = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in dir(_np):
            try:
                wrapper = _wrap.DISPATCH.get(getattr(_np, name))
            except (TypeError, AttributeError):
                continue
            if wrapper is not None and not name.startswith("_"):
                globals()[name] = wrapper
                names.append(name)
    return names


_publish()


def __getattr__(name: str):
    return getattr(_np, name)


def __dir__() -> list:
    return sorted(set(globals()) | set(dir(_np)))
