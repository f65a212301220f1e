"""VJP and JVP rules for numpy.fft (see _vjps.py and _jvps.py for the conventions).

Every transform is linear, so its JVP is the same transform of the tangent (over the same
axes, behind the batch dimensions) and its VJP is the transpose of the linear map applied to
the cotangent. Under the no-conjugation convention the DFT matrix is its own transpose: the
VJP of ``fft`` is ``fft`` with the same normalisation (not ``ifft``), and that of ``ifft`` is
``ifft``. The cropping or zero-padding that ``n`` and ``s`` ask for transposes to
zero-padding or cropping back to the input's shape.

The real transforms keep half a spectrum, the bins ``0 .. n//2``. Of those, the ones strictly
between 0 and the Nyquist bin stand for two bins of the full spectrum, so they carry a weight
of 2 in the transposes: ``rfft``'s is the inverse real transform of the conjugated cotangent
divided by the weights, and ``irfft``'s is the conjugated real transform of the cotangent
multiplied by them (each with the opposite normalisation, which scales by the same factor).
The 1-D and 2-D transforms share the N-D rules; ``hfft`` and ``ihfft`` are written, as NumPy
writes them, with ``irfft`` and ``rfft``.

An N-D transform is a chain of 1-D ones, and its transpose is the chain of their transposes
in reverse order. Over distinct axes the links commute and one N-D call transposes them all;
when an axis is repeated (``fftn(x, s=(3, 5), axes=(0, 0))``), the chain is walked link by
link, in NumPy's order.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

import wengert.numpy as wnp

from .._core import Box, strip
from ._jvps import _lead
from ._vjps import _shape
from ._wrap import DISPATCH, composite

F = np.fft
# The normalisation that scales the opposite direction by the same factor.
_SWAP = {None: "forward", "backward": "forward", "ortho": "ortho", "forward": "backward"}


# ----------------------------------------------------------------------------- arguments
def _one(n=None, axis=-1, norm=None, out=None) -> tuple:
    """The ``(s, axes, norm)`` of a 1-D transform's arguments after the array."""
    return (None if n is None else (n,)), (axis,), norm


def _two(s=None, axes=(-2, -1), norm=None, out=None) -> tuple:
    return s, axes, norm


def _many(s=None, axes=None, norm=None, out=None) -> tuple:
    return s, axes, norm


def _plan(x: Any, s: Any, axes: Any, norm: Any, inverse_real: bool = False) -> tuple:
    """Explicit lengths and non-negative axes, as NumPy works them out: ``-1`` (or ``None``)
    keeps an axis's length, except that an inverse real transform given no ``s`` (or ``None``
    for its last axis) makes that axis ``2 * (m - 1)`` long."""
    shape = _shape(x)
    nd = len(shape)
    if axes is None:
        axes = range(nd) if s is None else range(nd - len(s), nd)
    axes = tuple(normalize_axis_index(a, nd) for a in (axes if np.ndim(axes) else (axes,)))
    given = [None] * len(axes) if s is None else list(s)
    s = [shape[a] if n is None or n == -1 else int(n) for n, a in zip(given, axes)]
    if inverse_real and given[-1] is None:
        s[-1] = 2 * (shape[axes[-1]] - 1)
    return tuple(s), axes, norm


def _fn(fun: Any) -> Callable:
    """The wrapped (recording) version of a numpy.fft function, looked up when called."""
    return lambda *args, **kwargs: DISPATCH[fun](*args, **kwargs)


# ----------------------------------------------------------------------------- transposes
def _resize(r: Any, shape: tuple, axes: tuple) -> Any:
    """Crop or zero-pad ``r`` along ``axes`` to ``shape``: the transpose of the zero-padding
    or cropping of an array of that shape to the transform's lengths."""
    for ax in sorted(set(axes)):
        have, want = _shape(r)[ax], shape[ax]
        if have > want:
            r = r[(slice(None),) * ax + (slice(0, want),)]
        elif have < want:
            pad = list(_shape(r))
            pad[ax] = want - have
            r = wnp.concatenate([r, np.zeros(pad, dtype=np.result_type(strip(r)))], axis=ax)
    return r


def _weights(n: int, axis: int, g: Any) -> np.ndarray:
    """How many bins of the full spectrum of length ``n`` each bin of the half spectrum
    stands for (1 for bin 0 and an even ``n``'s Nyquist bin, 2 for the others), shaped to
    broadcast along ``axis`` of ``g``."""
    w = np.full(n // 2 + 1, 2.0, dtype=np.finfo(np.result_type(strip(g))).dtype)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w.reshape((-1,) + (1,) * (len(_shape(g)) - 1 - axis))


def _real(g: Any) -> Any:
    """The cotangent of a real output: its imaginary part means nothing."""
    return wnp.real(g) if np.iscomplexobj(strip(g)) else g


def _t_complex(transform: Any) -> Callable:
    """fftn (ifftn) is symmetric: its transpose is itself, applied to the cotangent, whose
    lengths are already the transform's."""
    return lambda g, shape, s, axes, norm: _resize(_fn(transform)(g, axes=axes, norm=norm), shape, axes)


def _t_rfft(g: Any, shape: tuple, s: tuple, axes: tuple, norm: Any) -> Any:
    """rfftn: Re(A^T g) is the inverse real transform of conj(g) / weights."""
    half = wnp.conj(g) / _weights(s[-1], axes[-1], g)
    return _resize(_fn(F.irfftn)(half, s=s, axes=axes, norm=_SWAP[norm]), shape, axes)


def _t_irfft(g: Any, shape: tuple, s: tuple, axes: tuple, norm: Any) -> Any:
    """irfftn: the conjugated real transform of the cotangent, times the weights (the
    imaginary parts of bin 0 and of the Nyquist bin, which NumPy ignores, get zero)."""
    g = _real(g)
    half = wnp.conj(_fn(F.rfftn)(g, s=s, axes=axes, norm=_SWAP[norm]))
    return _resize(half * _weights(s[-1], axes[-1], g), shape, axes)


_TRANSPOSES = {"fft": _t_complex(F.fftn), "ifft": _t_complex(F.ifftn), "rfft": _t_rfft, "irfft": _t_irfft}


def _links(kind: str, s: tuple, axes: tuple) -> list:
    """The chain of transforms NumPy applies, in order, as ``(kind, s, axes)``: one N-D link
    when the axes are distinct, else one 1-D link per axis (see numpy.fft's rfftn ...)."""
    if len(set(axes)) == len(axes):
        return [(kind, s, axes)]
    one = [(s[i:i + 1], axes[i:i + 1]) for i in range(len(axes))]
    if kind == "rfft":
        return [("rfft", *one[-1])] + [("fft", *link) for link in reversed(one[:-1])]
    if kind == "irfft":
        return [("ifft", *link) for link in one[:-1]] + [("irfft", *one[-1])]
    return [(kind, *link) for link in reversed(one)]


def _vjp(parse: Callable, kind: str) -> Callable:
    """The transpose of the chain of transforms, link by link from the last."""
    def rule(g, a, x, *args, **kwargs):
        s, axes, norm = _plan(x, *parse(*args, **kwargs), inverse_real=kind == "irfft")
        shapes = [_shape(x)]  # the shape entering each link
        links = _links(kind, s, axes)
        for k, n, ax in links[:-1]:
            shape = list(shapes[-1])
            for i, axis in enumerate(ax):
                shape[axis] = n[i] // 2 + 1 if k == "rfft" and i == len(ax) - 1 else n[i]
            shapes.append(tuple(shape))
        for (k, n, ax), shape in zip(reversed(links), reversed(shapes)):
            g = _TRANSPOSES[k](g, shape, n, ax, norm)
        return g
    return rule


def _jvp(parse: Callable, transform: Any, inverse_real: bool = False) -> Callable:
    """The N-D ``transform`` of the tangent with the call's lengths, behind the batch dimensions."""
    def rule(t, a, x, *args, **kwargs):
        s, axes, norm = _plan(x, *parse(*args, **kwargs), inverse_real=inverse_real)
        lead = _lead(t, x)
        return _fn(transform)(t, s=s, axes=tuple(lead + ax for ax in axes), norm=norm)
    return rule


def _shift_axes(x: Any, axes: Any, lead: int = 0) -> tuple:
    nd = len(_shape(x))
    return tuple(lead + a for a in (range(nd) if axes is None else normalize_axis_tuple(axes, nd)))


def _shift_vjp(opposite: Any) -> Callable:
    """fftshift and ifftshift: permutations, transposed by the opposite shift."""
    return lambda g, a, x, axes=None: _fn(opposite)(g, axes=_shift_axes(x, axes))


def _shift_jvp(same: Any) -> Callable:
    return lambda t, a, x, axes=None: _fn(same)(t, axes=_shift_axes(x, axes, _lead(t, x)))


# ============================================================================= the tables
VJPS: dict[Any, Any] = {
    F.fft:       (_vjp(_one, "fft"),),
    F.ifft:      (_vjp(_one, "ifft"),),
    F.fft2:      (_vjp(_two, "fft"),),
    F.ifft2:     (_vjp(_two, "ifft"),),
    F.fftn:      (_vjp(_many, "fft"),),
    F.ifftn:     (_vjp(_many, "ifft"),),
    F.rfft:      (_vjp(_one, "rfft"),),
    F.rfft2:     (_vjp(_two, "rfft"),),
    F.rfftn:     (_vjp(_many, "rfft"),),
    F.irfft:     (_vjp(_one, "irfft"),),
    F.irfft2:    (_vjp(_two, "irfft"),),
    F.irfftn:    (_vjp(_many, "irfft"),),
    F.fftshift:  (_shift_vjp(F.ifftshift),),
    F.ifftshift: (_shift_vjp(F.fftshift),),
}

JVPS: dict[Any, Any] = {
    F.fft:       (_jvp(_one, F.fftn),),
    F.ifft:      (_jvp(_one, F.ifftn),),
    F.fft2:      (_jvp(_two, F.fftn),),
    F.ifft2:     (_jvp(_two, F.ifftn),),
    F.fftn:      (_jvp(_many, F.fftn),),
    F.ifftn:     (_jvp(_many, F.ifftn),),
    F.rfft:      (_jvp(_one, F.rfftn),),
    F.rfft2:     (_jvp(_two, F.rfftn),),
    F.rfftn:     (_jvp(_many, F.rfftn),),
    F.irfft:     (_jvp(_one, F.irfftn, inverse_real=True),),
    F.irfft2:    (_jvp(_two, F.irfftn, inverse_real=True),),
    F.irfftn:    (_jvp(_many, F.irfftn, inverse_real=True),),
    F.fftshift:  (_shift_jvp(F.fftshift),),
    F.ifftshift: (_shift_jvp(F.ifftshift),),
}


# ----------------------------------------------------------------------------- composites
# The Hermitian transforms, as NumPy defines them: their derivatives come from irfft and rfft.
def _refuse_out(name: str, out: Any) -> None:
    if out is not None:
        raise TypeError(f"numpy.fft.{name}: out= cannot be used with traced values, because the result "
                        "would be written behind the tape's back. Use the returned value instead.")


@composite(F.hfft)
def hfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    if type(a) is not Box:
        return F.hfft(a, n, axis, norm, out)
    _refuse_out("hfft", out)
    return _fn(F.irfft)(wnp.conj(a), n, axis, norm=_SWAP[norm])


@composite(F.ihfft)
def ihfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    if type(a) is not Box:
        return F.ihfft(a, n, axis, norm, out)
    _refuse_out("ihfft", out)
    return wnp.conj(_fn(F.rfft)(a, n, axis, norm=_SWAP[norm]))


COMPOSITES = [F.hfft, F.ihfft]
