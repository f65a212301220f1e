"""The numpy.fft rules (wengert.numpy.fft), checked against central finite differences to
second order, as transposes of each other with batched tangents, and against autograd.

Each case names the table entry (or composite) it covers. Cases cover 1-D and N-D arrays,
real and complex inputs, cropping and zero-padding (``n``, ``s``, with ``-1`` for "keep"),
odd and even lengths (the real transforms treat the Nyquist bin apart), the axes (repeated
ones too) and every normalisation. A rule or composite without a case fails
``test_every_rule_has_a_case``; every case's gradients and tangents must also be finite.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import autograd
import autograd.numpy as anp
import numpy as onp
import pytest

import wengert
import wengert.numpy as np
from _helpers import check_transpose, random_like
from wengert.numpy import _fft
from wengert.numpy._wrap import DISPATCH

R = onp.random.default_rng(3)
F = onp.fft


def real(*shape: int) -> Any:
    return R.normal(size=shape)


def cplx(*shape: int) -> Any:
    return R.normal(size=shape) + 1j * R.normal(size=shape)


class Case(NamedTuple):
    key: Any  # the numpy.fft function covered
    f: Callable  # function of the differentiated arguments
    args: tuple
    id: str


CASES: list[Case] = []
NORMS = [None, "backward", "ortho", "forward"]


def case(key: Any, x: Any, id: str = "", **kw: Any) -> None:
    """A case calling ``wengert.numpy.fft.<key>`` on ``x`` with the keywords ``kw``."""
    name = key.__name__
    label = id or ",".join(f"{k}={v}" for k, v in kw.items()) or "default"
    kind = "c" if onp.iscomplexobj(x) else "r"
    CASES.append(Case(key, lambda x: getattr(np.fft, name)(x, **kw), (x,),
                      f"{name}-{kind}{'x'.join(map(str, onp.shape(x)))}-{label}"))


# ----------------------------------------------------------------------------- complex transforms
for f in (F.fft, F.ifft):
    for norm in NORMS:
        case(f, cplx(6), norm=norm)
    case(f, real(5), id="real-input")
    case(f, cplx(5), n=8, id="pad")
    case(f, cplx(5), n=3, norm="ortho", id="crop")
    case(f, cplx(3, 4), axis=0, id="axis0")
    case(f, cplx(2, 5), n=7, axis=-1, norm="forward", id="pad-last")
    case(f, cplx(4, 2, 3), n=2, axis=1, id="crop-middle")
for f in (F.fft2, F.ifft2):
    for norm in NORMS:
        case(f, cplx(3, 4), norm=norm)
    case(f, cplx(2, 3, 4), norm="ortho", id="stack")
    case(f, cplx(3, 4), s=(5, 2), id="pad-crop")
    case(f, real(3, 4, 2), axes=(0, 2), norm="forward", id="axes-real")
for f in (F.fftn, F.ifftn):
    for norm in NORMS:
        case(f, cplx(2, 3, 2), norm=norm)
    case(f, cplx(3, 4), axes=(1,), norm="ortho", id="one-axis")
    case(f, cplx(2, 3, 4), s=(3, 2), axes=(0, 2), id="s-axes")
    case(f, cplx(2, 3, 4), s=(4, -1), axes=(-1, 0), norm="forward", id="s-minus-one")
    case(f, real(3, 3), axes=(0, 1), id="real-input")
    case(f, cplx(4, 3), s=(3, 5), axes=(0, 0), id="repeated-axis")  # two transforms along axis 0
    case(f, cplx(2, 3), s=(4, 2, 3), axes=(1, 0, -1), norm="ortho", id="repeated-negative-axis")

# ----------------------------------------------------------------------------- real transforms
for norm in NORMS:
    case(F.rfft, real(6), norm=norm, id=f"even-{norm}")
    case(F.rfft, real(5), norm=norm, id=f"odd-{norm}")
    case(F.irfft, cplx(4), norm=norm, id=f"even-{norm}")
    case(F.irfft, cplx(4), n=7, norm=norm, id=f"odd-{norm}")
case(F.rfft, real(5), n=8, id="pad-even")
case(F.rfft, real(6), n=3, id="crop-odd")
case(F.rfft, real(4, 3), axis=0, norm="ortho", id="axis0")
case(F.irfft, cplx(5), n=4, id="crop")
case(F.irfft, cplx(3), n=9, norm="forward", id="pad")
case(F.irfft, cplx(3, 4), axis=0, id="axis0")
case(F.irfft, real(4), id="real-input")
for f, inverse in ((F.rfft2, False), (F.rfftn, False), (F.irfft2, True), (F.irfftn, True)):
    x = (lambda *s: cplx(*s)) if inverse else real
    for norm in NORMS:
        case(f, x(3, 4), norm=norm)
    case(f, x(3, 5), norm="ortho", id="odd-last")
    case(f, x(2, 3, 4), s=(4, 5), axes=(0, 2), norm="forward", id="s-axes")
    case(f, x(2, 3, 4), s=(2, 3), axes=(1, 0), id="swapped-axes")
case(F.rfftn, real(2, 3, 4), id="3d")
case(F.irfftn, cplx(2, 3, 3), axes=(0, 2), id="3d-axes")
case(F.rfftn, real(3, 4), s=(-1, 7), axes=(0, 1), id="minus-one")  # -1 keeps an axis's length
case(F.irfftn, cplx(3, 4), s=(3, -1), axes=(0, 1), id="minus-one-last")  # 4 long, not 2 * (4 - 1)
case(F.irfft2, cplx(3, 5), s=(-1, -1), norm="ortho", id="minus-one")
# A repeated axis: the real transform along axis 1, then complex ones along 0 and 1 (or the reverse).
case(F.rfftn, real(4, 3), axes=(1, 0, 1), id="repeated-axis")
case(F.rfftn, real(4, 3), s=(5, 3, 4), axes=(1, 0, 1), norm="forward", id="repeated-axis-s")
case(F.irfftn, cplx(4, 3), axes=(1, 0, 1), id="repeated-axis")
case(F.irfftn, cplx(4, 3), s=(2, 5, 7), axes=(1, 0, 1), norm="ortho", id="repeated-axis-s")

# ----------------------------------------------------------------------------- Hermitian (composites)
for norm in NORMS:
    case(F.hfft, cplx(4), norm=norm)
    case(F.ihfft, real(5), norm=norm)
case(F.hfft, cplx(4), n=7, id="odd")
case(F.hfft, cplx(5), n=4, id="crop")  # reads 3 of the 5 bins
case(F.hfft, cplx(3), n=11, norm="ortho", id="pad")  # 6 bins, 3 of them zeros
case(F.hfft, real(4), id="real-input")
case(F.hfft, cplx(3, 4), axis=0, n=4, id="axis0")
case(F.ihfft, real(6), n=4, id="crop")
case(F.ihfft, real(5), n=8, norm="forward", id="pad")
case(F.ihfft, real(2, 5, 3), n=6, axis=1, norm="ortho", id="pad-middle")
case(F.ihfft, real(3, 4), axis=0, id="axis0")

# ----------------------------------------------------------------------------- shifts
for f in (F.fftshift, F.ifftshift):
    case(f, real(5))
    case(f, real(3, 4), id="all-axes")
    case(f, cplx(3, 5), axes=1, id="int-axis")
    case(f, real(2, 3, 5), axes=(0, 2), id="axes")

# ----------------------------------------------------------------------------- compositions
CASES.append(Case(F.fft, lambda x: np.fft.ifft(np.fft.fft(x) * onp.arange(1.0, 7.0)), (cplx(6),),
                  "fft-filter-ifft"))
CASES.append(Case(F.rfft, lambda x: np.fft.irfft(np.fft.rfft(x) ** 2, 8), (real(8),),
                  "rfft-square-irfft"))
CASES.append(Case(F.fftshift, lambda x: np.abs(np.fft.fftshift(np.fft.fft2(x))) ** 2, (real(3, 4),),
                  "power-spectrum"))


# ============================================================================= tests
@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_rule_matches_finite_differences(c: Case) -> None:
    wengert.gradcheck(c.f, *c.args, order=2)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_jvp_is_the_transpose_of_vjp(c: Case) -> None:
    check_transpose(c.f, c.args, finite=True)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_traced_values_are_numpys(c: Case) -> None:
    out, _ = wengert.vjp(c.f, *c.args)
    onp.testing.assert_allclose(out, c.f(*c.args), rtol=1e-13, atol=1e-13)
    assert onp.asarray(out).dtype == onp.asarray(c.f(*c.args)).dtype


def test_every_rule_has_a_case() -> None:
    covered = {c.key for c in CASES}
    wrapped = [f for f in vars(F).values() if callable(f) and f in DISPATCH]
    assert set(_fft.VJPS) | set(_fft.COMPOSITES) <= set(wrapped)
    missing = [f.__name__ for f in wrapped if f not in covered]
    assert not missing, f"numpy.fft functions without a test case: {missing}"


def test_jvp_table_follows_the_vjp_table() -> None:
    assert list(_fft.JVPS) == list(_fft.VJPS)


def test_frequencies_are_not_wrapped() -> None:
    assert np.fft.fftfreq is F.fftfreq and np.fft.rfftfreq is F.rfftfreq


# ----------------------------------------------------------------------------- the transpose convention
def _dft(n: int) -> Any:
    k = onp.arange(n)
    return onp.exp(-2j * onp.pi * onp.outer(k, k) / n)


@pytest.mark.parametrize("norm, scale", [(None, 1.0), ("ortho", 1 / onp.sqrt(5)), ("forward", 1 / 5)])
def test_the_transpose_of_fft_is_fft_not_ifft(norm: Any, scale: float) -> None:
    """With no conjugation, the VJP of x -> W x is u -> W^T u = W u (W is symmetric)."""
    x, u = cplx(5), cplx(5)
    _, pull = wengert.vjp(lambda x: np.fft.fft(x, norm=norm), x)
    (g,) = pull(u)
    onp.testing.assert_allclose(g, scale * _dft(5).T @ u, atol=1e-12)
    onp.testing.assert_allclose(g, F.fft(u, norm=norm), atol=1e-12)
    assert not onp.allclose(g, F.ifft(u, norm=norm))


def test_the_transpose_of_rfft_is_real_part_of_the_half_dft_transpose() -> None:
    x, u = real(6), cplx(4)
    _, pull = wengert.vjp(lambda x: np.fft.rfft(x), x)
    (g,) = pull(u)
    onp.testing.assert_allclose(g, onp.real(_dft(6)[:4].T @ u), atol=1e-12)


def test_irfft_ignores_the_imaginary_parts_numpy_drops() -> None:
    """irfft reads only the real parts of bin 0 and of an even length's Nyquist bin."""
    x = cplx(4)
    g = wengert.grad(lambda x: np.sum(np.fft.irfft(x) * onp.arange(6.0)))(x)
    assert g[0].imag == 0 and g[-1].imag == 0 and g[1].imag != 0


def test_single_precision_stays_single() -> None:
    x = real(8).astype(onp.float32)
    g = wengert.grad(lambda x: np.sum(np.abs(np.fft.rfft(x)) ** 2))(x)
    assert g.dtype == onp.float32
    onp.testing.assert_allclose(g, wengert.grad(lambda x: np.sum(np.abs(np.fft.rfft(x)) ** 2))(
        x.astype(float)), rtol=1e-4)


PUBLIC = sorted({c.key.__name__ for c in CASES})


@pytest.mark.parametrize("name", PUBLIC)
def test_plain_numpy_fft_on_traced_values(name: str) -> None:
    """numpy.fft functions called on traced values reach the same rules (and composites)
    through __array_function__, in reverse and forward mode."""
    x = real(4, 6) if name in ("rfft", "rfft2", "rfftn", "ihfft", "fftshift", "ifftshift") else cplx(4, 6)
    plain = lambda x: onp.sum(onp.abs(getattr(F, name)(x)) ** 2)  # noqa: E731
    mine = lambda x: np.sum(np.abs(getattr(np.fft, name)(x)) ** 2)  # noqa: E731
    onp.testing.assert_allclose(wengert.grad(plain)(x), wengert.grad(mine)(x), rtol=1e-13)
    v = random_like(x, onp.random.default_rng(1))
    onp.testing.assert_allclose(wengert.jvp(plain, (x,), (v,))[1], wengert.jvp(mine, (x,), (v,))[1], rtol=1e-12)
    assert getattr(np.fft, name) is not getattr(F, name) and getattr(np.fft, name).__doc__ == getattr(F, name).__doc__


@pytest.mark.parametrize("name", ["fft", "rfft", "irfft2", "hfft", "ihfft"])
def test_out_is_refused_on_traced_values(name: str) -> None:
    x = real(6) if name in ("rfft", "ihfft") else cplx(3, 6)
    out = onp.empty_like(getattr(F, name)(x))
    with pytest.raises(TypeError, match=f"{name}: out= cannot be used with traced values"):
        wengert.grad(lambda x: np.sum(np.real(getattr(np.fft, name)(x, out=out))))(x)


# ----------------------------------------------------------------------------- autograd as an oracle
W8 = R.normal(size=8)
W5 = R.normal(size=5)
ORACLE = [  # (name, wengert function, autograd function, argument): real scalar losses
    ("fft", lambda x: np.sum(np.abs(np.fft.fft(x)) ** 2 * W8), lambda x: anp.sum(anp.abs(anp.fft.fft(x)) ** 2 * W8),
     cplx(8)),
    ("ifft-n", lambda x: np.sum(np.real(np.fft.ifft(x, 8)) * W8), lambda x: anp.sum(anp.real(anp.fft.ifft(x, 8)) * W8),
     cplx(6)),
    ("fft2-ortho", lambda x: np.sum(np.imag(np.fft.fft2(x, norm="ortho")) ** 2),
     lambda x: anp.sum(anp.imag(anp.fft.fft2(x, norm="ortho")) ** 2), cplx(4, 6)),
    ("rfft", lambda x: np.sum(np.abs(np.fft.rfft(x)) ** 2 * W5), lambda x: anp.sum(anp.abs(anp.fft.rfft(x)) ** 2 * W5),
     real(8)),
    ("irfft", lambda x: np.sum(np.fft.irfft(x) * W8), lambda x: anp.sum(anp.fft.irfft(x) * W8), cplx(5)),
    ("rfftn", lambda x: np.sum(np.abs(np.fft.rfftn(x)) ** 2), lambda x: anp.sum(anp.abs(anp.fft.rfftn(x)) ** 2),
     real(4, 6)),
    ("irfft2", lambda x: np.sum(np.fft.irfft2(x) ** 3), lambda x: anp.sum(anp.fft.irfft2(x) ** 3), cplx(4, 5)),
    ("fftshift", lambda x: np.sum(np.fft.fftshift(x) * W5), lambda x: anp.sum(anp.fft.fftshift(x) * W5), real(5)),
]


@pytest.mark.parametrize("f, fa, x", [o[1:] for o in ORACLE], ids=[o[0] for o in ORACLE])
def test_gradients_match_autograd(f: Callable, fa: Callable, x: Any) -> None:
    onp.testing.assert_allclose(wengert.grad(f)(x), autograd.grad(fa)(x), rtol=1e-10, atol=1e-10)
