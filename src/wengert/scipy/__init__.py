"""SciPy with gradients: ``wengert.scipy.special``, ``.linalg``, ``.stats``, ``.integrate``.

SciPy is an optional dependency (``pip install wengert[scipy]``). Plain ``scipy.special``
functions called on traced values find their rules here too: they are NumPy ufuncs, and
wengert loads these tables the first time it meets one.
"""

try:
    import scipy as _scipy  # noqa: F401
except ImportError as missing:  # pragma: no cover - depends on the environment
    raise ImportError("wengert.scipy needs SciPy: pip install scipy (or pip install 'wengert[scipy]')") from missing
