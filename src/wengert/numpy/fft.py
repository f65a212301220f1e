"""``numpy.fft`` with gradients: ``wengert.numpy.fft`` (``np.fft`` after
``import wengert.numpy as np``). Functions with rules are wrapped; every other name is
NumPy's own, and calling it on a traced value raises an error that names it."""

import numpy as _np

from . import _fft, _wrap

_wrap.register(_fft.VJPS, _fft.JVPS)
_wrap.publish(globals(), _np.fft)


def __getattr__(name: str):
    return getattr(_np.fft, name)


def __dir__() -> list:
    return sorted(set(globals()) | set(dir(_np.fft)))
