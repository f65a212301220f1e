"""NumPy with gradients: ``import wengert.numpy as np`` and write NumPy as usual.

Every NumPy name is here. Functions with a derivative rule record themselves when given a
traced value; piecewise-constant ones (``floor``, ``argmax``, comparisons ...) pass plain
values through; everything else is NumPy's own object, and calling it on a traced value
raises an error that names it. Plain ``import numpy as np`` code differentiates too: traced
values implement ``__array_ufunc__`` and ``__array_function__`` and land in the same rules.
"""

import numpy as _np

from .. import _core as _engine
from .._core import watch as _watch
from . import _wrap
from ._jvps import JVPS as _JVPS
from ._vjps import IMPLS as _IMPLS
from ._vjps import NONDIFFERENTIABLE as _NONDIFFERENTIABLE
from ._vjps import VJPS as _VJPS
from ._vjps import full_convolution as _full_convolution_impl
from ._vjps import running_product as _running_product_impl
from ._vjps import setitem as _setitem_impl
from ._vjps import untake as _untake_impl
from ._vjps import windows as _windows_impl

_wrap.register(_VJPS, _JVPS, _IMPLS, _NONDIFFERENTIABLE)
_watch(_wrap.WATCHED, _wrap.fingerprint, _wrap.refusal)  # constant arrays: checked for mutation
# Values no rule reads: arrays from 16 kB on are let go (the rules read shapes and dtypes with these functions).
_engine.release(_np.ndarray, 1 << 14, ("_shape", "_shapes", "_template"))
_engine.ieee_float = _np.float64  # rules of Python-float programs at singular points: inf, not an error

# Imported for their effects: _box gives traced values their ndarray behaviour, _assign their
# in-place operations, _composite replaces the plain wrappers of functions that take lists of
# arrays, or need more care, and _derived adds the functions built from the primitives.
from . import _assign, _box, _composite, _derived  # noqa: E402,F401

_getitem = _wrap.DISPATCH[__import__("operator").getitem]
_untake = _wrap.DISPATCH[_untake_impl]
_setitem = _wrap.DISPATCH[_setitem_impl]
_running_product = _wrap.DISPATCH[_running_product_impl]
_full_convolution = _wrap.DISPATCH[_full_convolution_impl]
_windows = _wrap.DISPATCH[_windows_impl]
at = _assign.at
_wrap.publish(globals(), _np)

from . import fft, linalg  # noqa: E402,F401  (numpy.linalg and numpy.fft with gradients)


def __getattr__(name: str):
    return getattr(_np, name)


def __dir__() -> list:
    return sorted(set(globals()) | set(dir(_np)))
