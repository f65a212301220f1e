"""``numpy.linalg`` with gradients: ``wengert.numpy.linalg`` (``np.linalg`` after
``import wengert.numpy as np``). Functions with rules are wrapped; every other name is
NumPy's own, and calling it on a traced value raises an error that names it."""

import numpy as _np

from . import _linalg, _wrap

# The composites of _linalg (eigh, svd, norm ...) registered themselves when it was imported.
_wrap.register(_linalg.VJPS, _linalg.JVPS, nondiff=_linalg.NONDIFFERENTIABLE)
_wrap.publish(globals(), _np.linalg)


def __getattr__(name: str):
    return getattr(_np.linalg, name)


def __dir__() -> list:
    return sorted(set(globals()) | set(dir(_np.linalg)))
