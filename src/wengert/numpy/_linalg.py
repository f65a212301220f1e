"""VJP and JVP rules for numpy.linalg (see _vjps.py and _jvps.py for the conventions).

Matrices are the last two dimensions: every rule works on stacks ``(..., M, N)``, and in
forward mode on tangents with extra leading batch dimensions too (products broadcast over
them). Rules are written with ``wengert.numpy``, so they are differentiable again.

Primitives (both tables): ``inv``, ``solve``, ``det``, ``cholesky``, ``eigvals``, ``eigvalsh``,
``pinv``, and private ones behind composites: ``_logabsdet`` (slogdet), ``_eigh``, ``_eig``,
``_svd``, ``_singular_values`` (svd without vectors, svdvals, the spectral norms), ``_qr`` and
``_norm2`` (the 2-norm and the Frobenius norm). A function with several outputs is one
primitive returning one *packed* array (each output flattened over its matrix dimensions,
concatenated along the last axis) that a composite with NumPy's signature unpacks: one LAPACK
call serves all outputs, and the rule sees every output's cotangent at once. Composites
(derivatives from the functions they call): ``slogdet``, ``eigh``, ``eig``, ``svd``,
``svdvals``, ``qr``, ``norm``, ``vector_norm``, ``matrix_norm``, ``cond``, ``lstsq``,
``matrix_power``, ``multi_dot``, ``tensorsolve``, ``tensorinv`` and the array-API names
(``matmul``, ``tensordot``, ``outer``, ``vecdot``, ``cross``, ``trace``, ``diagonal``,
``matrix_transpose``). ``matrix_rank`` is an integer: no gradient. Untraced calls are NumPy's.

Complex numbers: holomorphic functions (inv, solve, det, eig, eigvals) use transposes, never
conjugates, as in _vjps.py. For the others (cholesky, eigh, svd, qr, pinv, norms, the log of
|det|) the VJP is the transpose of the real-linear JVP under ``Re(sum(c * dx))``, which is
what autograd and JAX compute.

Hermitian inputs. LAPACK reads one triangle of the matrix given to cholesky, eigh, eigvalsh
and svd/pinv with ``hermitian=True`` (the lower one, or the one ``UPLO``/``upper`` names),
and the real part of its diagonal. These rules differentiate exactly that function, so
gradients live on that triangle (the strict part counts twice) and agree with finite
differences of NumPy's own results, as autograd's do; JAX instead symmetrizes the input.
Both agree for any function of a Hermitian parametrisation (``f(X + X^H)``).

Where no derivative exists (documented results, not silent nan where NumPy raises):

* eigh, eig, svd: the derivatives of eigenvectors and singular vectors need distinct
  eigenvalues (singular values). Exactly repeated ones give inf/nan in the gradient, as in
  JAX, with a RuntimeWarning. A function of the eigenvalues (singular values) alone keeps a
  finite derivative there: reverse mode skips the vector terms when their cotangent is zero,
  and forward mode computes them (and warns) but the values' tangents stay finite.
  Vectors are defined up to a phase (sign): only functions invariant under it have a
  derivative, and the rules pick the gauge ``Im(diag(V^H dV)) = 0``.
* svd: a zero singular value of a non-square or complex matrix makes the singular vectors'
  derivative infinite (inf/nan). With ``full_matrices=True`` the extra columns of U (or V)
  are any orthonormal completion; the rules move them with the others and nothing else.
* eig: distinct eigenvalues, and a diagonalizable matrix (V is inverted). The output is
  complex unless every eigenvalue is real (NumPy's rule); eigenvectors have unit norm and
  an arbitrary phase.
* qr: full rank (the triangular factor is inverted; a singular one raises LinAlgError).
  mode="complete" with M > N moves the extra columns of Q as svd does. mode="raw" has no
  derivative and raises.
* det: at a singular matrix the gradient is the transposed adjugate (through an SVD), which
  exists; second derivatives there need distinct singular values, and a real matrix.
* slogdet: sign has no gradient for a real matrix (it is piecewise constant); for a complex
  one it is the phase of the determinant and is differentiated. At a singular matrix
  (logabsdet = -inf) the gradient raises LinAlgError.
* pinv, lstsq: the rank (singular values above the cutoff) must not change nearby.
* norm: at the zero vector (matrix) the 2- and Frobenius norms get the subgradient 0; ord=0
  (a count) has no gradient; max/min norms split the gradient between ties.

Tolerances (tested in tests/test_linalg.py): for inv and solve at condition number kappa the
gradient has relative error about kappa * eps (1e-8 at kappa = 1e8, checked against 50-digit
arithmetic with rtol 1e-6); eigenvector gradients with eigenvalues delta apart have relative
error about eps / delta (1e-10 at delta = 1e-6, checked with rtol 1e-6).
"""

from __future__ import annotations

import functools
import operator
import warnings
from typing import Any, Callable

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

import wengert.numpy as wnp

from .._core import Box, ForwardTrace, strip
from ._jvps import _axes, _bcast, _lead
from ._vjps import _cj, _expand, _product_of_others, _shape
from ._wrap import DISPATCH, composite

LinAlgError = np.linalg.LinAlgError
_ONE = np.eye(1)
EighResult, EigResult = type(np.linalg.eigh(_ONE)), type(np.linalg.eig(_ONE))
SVDResult, QRResult = type(np.linalg.svd(_ONE)), type(np.linalg.qr(_ONE))
SlogdetResult = type(np.linalg.slogdet(_ONE))


# ----------------------------------------------------------------------------- helpers
def _T(x: Any) -> Any:
    return wnp.swapaxes(x, -1, -2)


def _H(x: Any) -> Any:
    return _cj(_T(x))


def _mm(*xs: Any) -> Any:
    out = xs[0]
    for x in xs[1:]:
        out = wnp.matmul(out, x)
    return out


def _complex(x: Any) -> bool:
    return np.iscomplexobj(strip(x))


def _re(x: Any) -> Any:
    return wnp.real(x) if _complex(x) else x


def _live(x: Any) -> bool:
    """Whether a cotangent can be nonzero. A traced one can, unless it is traced in forward
    mode with a zero value and a zero tangent (jacrev pushes a batch of cotangents through a
    VJP as the tangents of a zero placeholder; the parts that batch never reaches stay zero)."""
    while type(x) is Box:
        if not isinstance(x.trace, ForwardTrace) or (x.adj is not None and _live(x.adj)):
            return True
        x = x.value
    return bool(np.any(x))


def _traced(*xs: Any) -> bool:
    return any(type(x) is Box for x in xs)


def _op(fun: Callable) -> Callable:
    """The recording wrapper of a primitive of this table (made when linalg.py registers it)."""
    return DISPATCH[fun]


def _diag(v: Any) -> Any:
    """A stack of diagonal matrices from a stack of vectors."""
    return wnp.expand_dims(v, -1) * np.eye(_shape(v)[-1])


def _diagonal(x: Any) -> Any:
    """The diagonals of a stack of square matrices."""
    return wnp.sum(x * np.eye(_shape(x)[-1]), axis=-1)


def _mask(n: int, lower: bool, strict: bool) -> np.ndarray:
    ones = np.ones((n, n))
    return np.tril(ones, -1 if strict else 0) if lower else np.triu(ones, 1 if strict else 0)


def _hermitian(t: Any, lower: bool) -> Any:
    """The Hermitian matrix LAPACK reads from ``t``: one strict triangle mirrored with a
    conjugate, and the real part of the diagonal. Real-linear, so it maps tangents too."""
    n = _shape(t)[-1]
    half = t * _mask(n, lower, strict=True)
    return half + _H(half) + _re(t) * np.eye(n)


def _hermitian_t(c: Any, lower: bool) -> Any:
    """The transpose of :func:`_hermitian`: the cotangent of the matrix LAPACK read."""
    n = _shape(c)[-1]
    return (c + _H(c)) * _mask(n, lower, strict=True) + _re(c) * np.eye(n)


def _gaps(w: Any, what: str) -> Any:
    """``F[i, j] = 1 / (w[j] - w[i])`` off the diagonal, 0 on it. Exactly repeated values
    give inf there (the derivative does not exist), with a warning."""
    d = wnp.expand_dims(w, -2) - wnp.expand_dims(w, -1)
    eye = np.eye(_shape(w)[-1])
    if np.any((strip(d) == 0) & (eye == 0)):
        warnings.warn(f"{what}: repeated values; the derivative of the vectors does not exist there, "
                      "and the gradient has inf/nan entries", RuntimeWarning, stacklevel=4)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1 - eye) / (d + eye)


# --- packed outputs
def _pack(parts: list, cores: tuple) -> Any:
    """Several outputs as one array: each flattened over its ``cores[k]`` trailing dimensions,
    concatenated along the last axis (plain or traced)."""
    flat = [wnp.reshape(p, _shape(p)[: len(_shape(p)) - c] + (-1,)) for p, c in zip(parts, cores)]
    return wnp.concatenate(flat, axis=-1)


def _unpack(x: Any, shapes: list) -> list:
    """The outputs in a packed array, given their trailing shapes (leading dimensions kept)."""
    lead, out, lo = _shape(x)[:-1], [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(wnp.reshape(x[..., lo: lo + n], lead + s))
        lo += n
    return out


def _eigh_shapes(a: Any) -> list:
    n = _shape(a)[-1]
    return [(n,), (n, n)]


def _svd_shapes(a: Any, full: bool) -> list:
    m, n = _shape(a)[-2:]
    k = min(m, n)
    return [(m, m if full else k), (k,), (n if full else k, n)]


def _qr_shapes(a: Any, mode: str) -> list:
    m, n = _shape(a)[-2:]
    k = min(m, n)
    return [(m, m), (m, n)] if mode == "complete" else [(m, k), (k, n)]


# ----------------------------------------------------------------------------- inverses and solves
def _solve_adjoint(g: Any, a: Any, b: Any) -> Any:
    """solve(a^T, g), b's cotangent: NumPy 2 reads a 1-D b as a vector, anything else as a
    stack of matrices."""
    if np.ndim(strip(b)) == 1:
        return wnp.linalg.solve(_T(a), wnp.expand_dims(g, -1))[..., 0]
    return wnp.linalg.solve(_T(a), g)


def _solve_vjp_a(g, ans, a, b):
    gb = _solve_adjoint(g, a, b)
    if np.ndim(strip(b)) == 1:
        return -wnp.expand_dims(gb, -1) * wnp.expand_dims(ans, -2)
    return -_mm(gb, _T(ans))


def _solve_jvp_a(t, ans, a, b):
    vec = np.ndim(strip(b)) == 1
    x = wnp.expand_dims(ans, -1) if vec else ans
    r = -wnp.linalg.solve(a, _mm(_bcast(t, _lead(t, a), np.ndim(strip(x))), x))
    return r[..., 0] if vec else r


def _solve_jvp_b(t, ans, a, b):
    vec = np.ndim(strip(b)) == 1
    lead = _lead(t, b)
    r = wnp.linalg.solve(a, _bcast(wnp.expand_dims(t, -1) if vec else t, lead, np.ndim(strip(ans)) + vec))
    return r[..., 0] if vec else r


def _pinv_jvp(t, ans, a, rcond=None, hermitian=False, **kw):
    """d(A+) = -X dA X + X X^H dA^H (I - A X) + (I - X A) dA^H X^H X, X = A+, at constant rank."""
    x, a = ans, _hermitian(a, True) if hermitian else a  # hermitian=True reads the lower triangle
    t = _hermitian(t, True) if hermitian else t
    th = _H(t)
    m, n = _shape(a)[-2:]
    return (-_mm(x, t, x) + _mm(x, _H(x), th, np.eye(m) - _mm(a, x))
            + _mm(np.eye(n) - _mm(x, a), th, _H(x), x))


def _pinv_vjp(g, ans, a, rcond=None, hermitian=False, **kw):
    x, a = ans, _hermitian(a, True) if hermitian else a
    m, n = _shape(a)[-2:]
    gh = _H(g)
    c = (-_mm(_T(x), g, _T(x)) + _mm(_cj(np.eye(m) - _mm(a, x)), gh, _cj(_mm(x, _H(x))))
         + _mm(_cj(_mm(_H(x), x)), gh, _cj(np.eye(n) - _mm(x, a))))
    return _hermitian_t(c, True) if hermitian else c


# ----------------------------------------------------------------------------- determinants
def _logabsdet(a: Any) -> Any:
    """log|det a|: slogdet's differentiable half."""
    return np.linalg.slogdet(a)[1]


def _cofactor(a: Any, ans: Any) -> Any:
    """d det(a) / da = adj(a)^T: det(a) inv(a)^T, or through an SVD where a is singular
    (there the inverse does not exist but the adjugate does)."""
    if np.all(strip(ans) != 0):
        try:
            return wnp.expand_dims(ans, (-2, -1)) * _T(wnp.linalg.inv(a))
        except LinAlgError:
            pass
    u, s, vh = wnp.linalg.svd(a)
    others = _product_of_others(s, -1)  # adj(S): products of the other singular values
    phase = wnp.linalg.det(u) * wnp.linalg.det(vh)
    return wnp.expand_dims(phase, (-2, -1)) * _mm(_cj(u) * wnp.expand_dims(others, -2), _cj(vh))


def _det_vjp(g, ans, a):
    return wnp.expand_dims(g, (-2, -1)) * _cofactor(a, ans)


def _det_jvp(t, ans, a):
    return wnp.sum(_cofactor(a, ans) * t, axis=(-2, -1))


def _logabsdet_vjp(g, ans, a):
    return wnp.expand_dims(g, (-2, -1)) * _inverse_t(a)


def _logabsdet_jvp(t, ans, a):
    return _re(wnp.sum(_inverse_t(a) * t, axis=(-2, -1)))


def _inverse_t(a: Any) -> Any:
    """inv(a)^T, the derivative of log|det a|; at a singular matrix, an error that says so."""
    try:
        return _T(wnp.linalg.inv(a))
    except LinAlgError:
        raise LinAlgError("slogdet: the derivative of log|det(a)| is inv(a)^T, which does not exist at this "
                          "singular matrix (log|det(a)| is -inf there). Differentiate det(a) instead where a "
                          "may be singular, or keep a away from singularity (a + eps * I).") from None


# ----------------------------------------------------------------------------- cholesky
def _phi(n: int) -> np.ndarray:
    """The lower triangle with half the diagonal: the part of L^-1 dA L^-H that dL carries."""
    return np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n)


def _cholesky_jvp(t, ans, a, upper=False):
    l = _H(ans) if upper else ans
    y = wnp.linalg.solve(l, _hermitian(t, not upper))  # L^-1 dA
    x = _H(wnp.linalg.solve(l, _H(y)))  # L^-1 dA L^-H
    dl = _mm(l, x * _phi(_shape(a)[-1]))
    return _H(dl) if upper else dl


def _cholesky_vjp(g, ans, a, upper=False):
    l, gl = (_H(ans), _H(g)) if upper else (ans, g)
    y = wnp.linalg.solve(_T(l), _mm(_T(l), gl) * _phi(_shape(a)[-1]))  # L^-T phi(L^T G)
    c = _T(wnp.linalg.solve(_H(l), _T(y)))  # ... conj(L)^-1
    return _hermitian_t(c, not upper)


# ----------------------------------------------------------------------------- eigenproblems
def _eigh(a: Any, UPLO: str = "L") -> Any:  # noqa: N803  (NumPy's name)
    """eigh's eigenvalues and eigenvectors, packed."""
    w, v = np.linalg.eigh(a, UPLO)
    return _pack([w, v], (1, 2))


def _lower(UPLO: str) -> bool:  # noqa: N803
    return str(UPLO).upper() == "L"


def _eigh_jvp(t, ans, a, UPLO="L"):  # noqa: N803
    w, v = _unpack(ans, _eigh_shapes(a))
    m = _mm(_H(v), _hermitian(t, _lower(UPLO)), v)
    return _pack([_re(_diagonal(m)), _mm(v, _gaps(_re(w), "eigh") * m)], (1, 2))


def _eigh_vjp(g, ans, a, UPLO="L"):  # noqa: N803
    w, v = _unpack(ans, _eigh_shapes(a))
    gw, gv = _unpack(g, _eigh_shapes(a))
    inner = _diag(_re(gw))
    if _live(gv):  # skipped for functions of the eigenvalues alone: finite at repeated ones
        inner = inner + _gaps(_re(w), "eigh") * _mm(_T(v), gv)
    return _hermitian_t(_mm(_cj(v), inner, _T(v)), _lower(UPLO))


def _eigvalsh_jvp(t, ans, a, UPLO="L"):  # noqa: N803
    v = wnp.linalg.eigh(a, UPLO)[1]
    return _re(wnp.sum(_cj(v) * _mm(_hermitian(t, _lower(UPLO)), v), axis=-2))


def _eigvalsh_vjp(g, ans, a, UPLO="L"):  # noqa: N803
    v = wnp.linalg.eigh(a, UPLO)[1]
    return _hermitian_t(_mm(_cj(v) * wnp.expand_dims(_re(g), -2), _T(v)), _lower(UPLO))


# eig: A V = V diag(w) with distinct eigenvalues, V invertible, columns of unit norm. The
# output is complex unless every eigenvalue is real. dV keeps the unit norm (Re(v^H dv) = 0)
# and picks Im(v^H dv) = 0 for the free phase.
def _eig(a: Any) -> Any:
    """eig's eigenvalues and eigenvectors, packed."""
    w, v = np.linalg.eig(a)
    return _pack([w, v], (1, 2))


def _eig_jvp(t, ans, a):
    w, v = _unpack(ans, _eigh_shapes(a))
    m = _mm(wnp.linalg.inv(v), t, v)
    dv = _mm(v, _gaps(w, "eig") * m)
    dv = dv - v * wnp.expand_dims(_re(wnp.sum(_cj(v) * dv, axis=-2)), -2)
    return _pack([_diagonal(m), dv], (1, 2))


def _eig_vjp(g, ans, a):
    w, v = _unpack(ans, _eigh_shapes(a))
    gw, gv = _unpack(g, _eigh_shapes(a))
    inner = _diag(gw)
    if _live(gv):
        gv = gv - _cj(v) * wnp.expand_dims(_re(wnp.sum(gv * v, axis=-2)), -2)  # the normalisation
        inner = inner + _gaps(w, "eig") * _mm(_T(v), gv)
    return _mm(_T(wnp.linalg.inv(v)), inner, _T(v))


def _eigvectors(a: Any, ans: Any) -> Any:
    """eig(a)'s eigenvectors in the order of the eigenvalues ``ans`` that eigvals returned
    (LAPACK may order them differently without vectors)."""
    w, v = wnp.linalg.eig(a)
    # (..., of ans, of w), a plain array also for a duck array, whose values may lack .copy()
    distance = np.abs(np.asarray(strip(w))[..., None, :] - np.asarray(strip(ans))[..., :, None])
    # each value takes the nearest one not yet taken, the closest pairs first, so that repeated
    # values pair off one to one
    near = np.zeros(_shape(ans), dtype=np.intp)
    for at in np.ndindex(_shape(ans)[:-1]) if _shape(ans)[-1] else ():
        d = distance[at].copy()
        for i in np.argsort(d.min(axis=-1), kind="stable"):
            near[at + (i,)] = j = np.argmin(d[i])
            d[:, j] = np.inf
    return _mm(v, np.swapaxes(np.eye(_shape(ans)[-1])[near], -1, -2))


def _eigvals_jvp(t, ans, a):
    v = _eigvectors(a, ans)
    return wnp.sum(_T(wnp.linalg.inv(v)) * _mm(t, v), axis=-2)


def _eigvals_vjp(g, ans, a):
    v = _eigvectors(a, ans)
    return _mm(_T(wnp.linalg.inv(v)), wnp.expand_dims(g, -1) * _T(v))


# ----------------------------------------------------------------------------- svd
# A = U1 S V1^H (thin), dP = U1^H dA V1, F[i, j] = 1 / (s_j^2 - s_i^2):
#   ds  = Re diag(dP)
#   dU1 = U1 (F o (dP S + S dP^H) + i Im diag(dP) / S) + (I - U1 U1^H) dA V1 / S
#   dV1 = V1 (F o (S dP + dP^H S)) + (I - V1 V1^H) dA^H U1 / S
#   dU2 = -U1 S^-1 V1^H dA^H U2, dV2 = -V1 S^-1 U1^H dA V2  (full_matrices: the completions)
# The VJP is the transpose of each line.
def _svd(a: Any, full_matrices: bool = True, hermitian: bool = False) -> Any:
    """svd's U, s, Vh, packed."""
    u, s, vh = np.linalg.svd(a, full_matrices, True, hermitian)
    return _pack([u, s, vh], (2, 1, 2))


def _singular_values(a: Any, hermitian: bool = False) -> Any:
    """The singular values alone (svd with compute_uv=False, svdvals, spectral norms)."""
    return np.linalg.svd(a, compute_uv=False, hermitian=hermitian)


def _svd_frame(ans: Any, a: Any, full: bool) -> tuple:
    u, s, vh = _unpack(ans, _svd_shapes(a, full))
    k = _shape(s)[-1]
    return u, _re(s), vh, u[..., :k], _H(vh[..., :k, :]), k


def _svd_jvp(t, ans, a, full_matrices=True, hermitian=False):
    m, n = _shape(a)[-2:]
    u, s, vh, u1, v1, k = _svd_frame(ans, a, full_matrices)
    t = _hermitian(t, True) if hermitian else t
    dp = _mm(_H(u1), t, v1)
    f = _gaps(s * s, "svd")
    row, col = wnp.expand_dims(s, -2), wnp.expand_dims(s, -1)
    du = _mm(u1, f * (dp * row + col * _H(dp)))
    if _complex(ans):
        du = du + u1 * wnp.expand_dims(1j * wnp.imag(_diagonal(dp)) / s, -2)
    if m > k:
        du = du + (_mm(t, v1) - _mm(u1, dp)) / row
    dv = _mm(v1, f * (col * dp + _H(dp) * row))
    if n > k:
        dv = dv + (_mm(_H(t), u1) - _mm(v1, _H(dp))) / row
    if full_matrices and m > k:
        du = wnp.concatenate([du, -_mm(u1 / row, _H(v1), _H(t), u[..., k:])], axis=-1)
    if full_matrices and n > k:
        dv = wnp.concatenate([dv, -_mm(v1 / row, _H(u1), t, _H(vh[..., k:, :]))], axis=-1)
    return _pack([du, _re(_diagonal(dp)), _H(dv)], (2, 1, 2))


def _svd_vjp(g, ans, a, full_matrices=True, hermitian=False):
    m, n = _shape(a)[-2:]
    u, s, vh, u1, v1, k = _svd_frame(ans, a, full_matrices)
    gu, gs, gvh = _unpack(g, _svd_shapes(a, full_matrices))
    gv = _H(gvh)
    gu1, gv1 = gu[..., :k], gv[..., :k]
    row, col = wnp.expand_dims(s, -2), wnp.expand_dims(s, -1)
    gp = _diag(_re(gs))  # the cotangent of dP
    c = 0.0
    if _live(gu1) or _live(gv1):
        f = _gaps(s * s, "svd")
    if _live(gu1):
        j = _mm(_T(u1), gu1)
        q = f * j
        gp = gp + (q + _H(q)) * row
        if _complex(ans):
            gp = gp + _diag(1j * wnp.imag(_diagonal(j)) / s)
        if m > k:
            g1 = gu1 / row
            c = c + _mm(g1, _T(v1))
            gp = gp - _mm(_T(u1), g1)
    if _live(gv1):
        r = f * _mm(_T(v1), gv1)
        gp = gp + col * (r + _H(r))
        if n > k:
            h1 = gv1 / row
            c = c + _mm(_cj(u1), _H(h1))
            gp = gp - _mm(_H(h1), _cj(v1))
    if full_matrices and m > k and _live(gu[..., k:]):
        c = c - _mm(_mm(_cj(u[..., k:]), _H(gu[..., k:]), _cj(u1)) / row, _T(v1))
    if full_matrices and n > k and _live(gv[..., k:]):
        c = c - _mm(_cj(u1) / row, _T(v1), gv[..., k:], _cj(vh[..., k:, :]))
    c = c + _mm(_cj(u1), gp, _T(v1))
    return _hermitian_t(c, True) if hermitian else c


def _singular_values_jvp(t, ans, a, hermitian=False):
    u, s, vh = wnp.linalg.svd(a, full_matrices=False, hermitian=hermitian)
    t = _hermitian(t, True) if hermitian else t
    return _re(wnp.sum(_cj(u) * _mm(t, _H(vh)), axis=-2))


def _singular_values_vjp(g, ans, a, hermitian=False):
    u, s, vh = wnp.linalg.svd(a, full_matrices=False, hermitian=hermitian)
    c = _mm(_cj(u) * wnp.expand_dims(_re(g), -2), _cj(vh))
    return _hermitian_t(c, True) if hermitian else c


# ----------------------------------------------------------------------------- qr
# A1 = Q1 R1 (the first K = min(M, N) columns), B = dA1 R1^-1, C = Q1^H B,
# Omega = tril(C, -1) - tril(C, -1)^H + i Im diag(C) (keeps diag(R) real, as LAPACK does):
#   dQ1 = Q1 (Omega - C) + B,  dR1 = (C - Omega) R1,  dR2 = Q1^H dA2 - Omega R2  (M < N)
#   dQ2 = -Q1 B^H Q2  (mode="complete", M > N: the completion)
def _qr(a: Any, mode: str = "reduced") -> Any:
    """qr's Q and R, packed (mode "reduced" or "complete")."""
    q, r = np.linalg.qr(a, mode)
    return _pack([q, r], (2, 2))


def _qr_frame(ans: Any, a: Any, mode: str) -> tuple:
    m, n = _shape(a)[-2:]
    k = min(m, n)
    q, r = _unpack(ans, _qr_shapes(a, mode))
    return m, n, k, q, r, q[..., :k], r[..., :k, :k]


def _skew(c: Any, k: int) -> Any:
    low = c * _mask(k, True, strict=True)
    o = low - _H(low)
    return o + 1j * wnp.imag(c) * np.eye(k) if _complex(c) else o


def _qr_jvp(t, ans, a, mode="reduced"):
    m, n, k, q, r, q1, r1 = _qr_frame(ans, a, mode)
    b = _T(wnp.linalg.solve(_T(r1), _T(t[..., :k])))  # dA1 R1^-1
    c = _mm(_H(q1), b)
    o = _skew(c, k)
    dq = _mm(q1, o - c) + b
    dr = _mm(c - o, r1)
    if n > k:
        dr = wnp.concatenate([dr, _mm(_H(q1), t[..., k:]) - _mm(o, r[..., :k, k:])], axis=-1)
    if mode == "complete" and m > k:
        dq = wnp.concatenate([dq, -_mm(q1, _H(b), q[..., k:])], axis=-1)
        dr = wnp.concatenate([dr, np.zeros(_shape(dr)[:-2] + (m - k, n), dtype=np.result_type(strip(dr)))], axis=-2)
    return _pack([dq, dr], (2, 2))


def _qr_vjp(g, ans, a, mode="reduced"):
    m, n, k, q, r, q1, r1 = _qr_frame(ans, a, mode)
    gq, gr = _unpack(g, _qr_shapes(a, mode))
    gq1, gr1 = gq[..., :k], gr[..., :k, :k]
    direct = _mm(_T(q1), gq1) - _mm(gr1, _T(r1))  # the cotangent of Omega - C
    go = direct
    if n > k:
        go = go - _mm(gr[..., :k, k:], _T(r[..., :k, k:]))
    gc = -direct + (go - _H(go)) * _mask(k, True, strict=True)
    if _complex(go):
        gc = gc + 1j * wnp.imag(go) * np.eye(k)
    gb = gq1 + _mm(_cj(q1), gc)
    if mode == "complete" and m > k:
        gb = gb - _mm(_cj(q[..., k:]), _H(gq[..., k:]), _cj(q1))
    c = _T(wnp.linalg.solve(r1, _T(gb)))  # gB R1^-T
    return wnp.concatenate([c, _mm(_cj(q1), gr[..., :k, k:])], axis=-1) if n > k else c


# ----------------------------------------------------------------------------- norms
def _norm2(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """sqrt(sum |x|^2) over ``axis``: the 2-norm of vectors, the Frobenius norm of matrices."""
    return np.sqrt(np.sum(np.real(np.conj(x) * x), axis=axis, keepdims=keepdims))  # (np.real: duck arrays too)


def _nonzero(ans: Any) -> Any:
    return wnp.where(ans == 0, 1.0, ans)


def _norm2_vjp(g, ans, x, axis=None, keepdims=False):
    return _expand(g / _nonzero(ans), x, axis, keepdims) * _cj(x)  # 0 at the zero vector


def _norm2_jvp(t, ans, x, axis=None, keepdims=False):
    return wnp.sum(_re(_cj(x) * t), axis=_axes(axis, x, _lead(t, x)), keepdims=keepdims) / _nonzero(ans)


# ============================================================================= the tables
VJPS: dict[Any, Any] = {
    np.linalg.inv:      (lambda g, a, x: -_mm(_T(a), g, _T(a)),),
    np.linalg.solve:    (_solve_vjp_a,                    lambda g, ans, a, b: _solve_adjoint(g, a, b)),
    np.linalg.pinv:     (_pinv_vjp,),
    np.linalg.det:      (_det_vjp,),
    _logabsdet:         (_logabsdet_vjp,),
    np.linalg.cholesky: (_cholesky_vjp,),
    _eigh:              (_eigh_vjp,),
    np.linalg.eigvalsh: (_eigvalsh_vjp,),
    _eig:               (_eig_vjp,),
    np.linalg.eigvals:  (_eigvals_vjp,),
    _svd:               (_svd_vjp,),
    _singular_values:   (_singular_values_vjp,),
    _qr:                (_qr_vjp,),
    _norm2:             (_norm2_vjp,),
}

JVPS: dict[Any, Any] = {
    np.linalg.inv:      (lambda t, a, x: -_mm(a, t, a),),
    np.linalg.solve:    (_solve_jvp_a,                    _solve_jvp_b),
    np.linalg.pinv:     (_pinv_jvp,),
    np.linalg.det:      (_det_jvp,),
    _logabsdet:         (_logabsdet_jvp,),
    np.linalg.cholesky: (_cholesky_jvp,),
    _eigh:              (_eigh_jvp,),
    np.linalg.eigvalsh: (_eigvalsh_jvp,),
    _eig:               (_eig_jvp,),
    np.linalg.eigvals:  (_eigvals_jvp,),
    _svd:               (_svd_jvp,),
    _singular_values:   (_singular_values_jvp,),
    _qr:                (_qr_jvp,),
    _norm2:             (_norm2_jvp,),
}

NONDIFFERENTIABLE = [np.linalg.matrix_rank]


# ============================================================================= composites
COMPOSITES: list = []  # the NumPy functions below, for the tests' coverage check


def _composite(fun: Any) -> Callable[[Callable], Callable]:
    """Register ``impl`` as ``fun`` on traced values; an empty array among the arguments goes
    to NumPy's own ``fun`` (its result has no element to differentiate, and NumPy knows the
    shapes, zeros and errors of every empty case)."""
    COMPOSITES.append(fun)

    def register(impl: Callable) -> Callable:
        @functools.wraps(impl)
        def call(*args: Any, **kwargs: Any) -> Any:
            if any(type(a) is Box and np.size(strip(a)) == 0 for a in args):
                return fun(*[strip(a) for a in args], **kwargs)
            return impl(*args, **kwargs)
        return composite(fun)(call)
    return register


@_composite(np.linalg.slogdet)
def slogdet(a: Any) -> Any:
    if not _traced(a):
        return np.linalg.slogdet(a)
    sign = np.linalg.slogdet(strip(a)).sign  # piecewise constant for real a: no gradient
    return SlogdetResult(_phase(a, sign) if _complex(a) else sign, _op(_logabsdet)(a))


def _phase(a: Any, sign: Any) -> Any:
    """The phase det(a) / |det(a)| of a complex matrix as a traced value. It is ``sign`` times
    the phase of det(a0^-1 a) at the constant a0 = a: exact near a0, and the determinant
    there is close to 1, so nothing overflows. A singular matrix keeps its sign 0."""
    singular = np.expand_dims(sign == 0, (-2, -1))
    a0 = np.where(singular, np.eye(_shape(a)[-1], dtype=strip(a).dtype), strip(a))  # (complex64 stays so)
    u = wnp.linalg.det(wnp.linalg.solve(a0, wnp.where(singular, a0, a)))
    return sign * (u / wnp.abs(u))


@_composite(np.linalg.eigh)
def eigh(a: Any, UPLO: str = "L") -> Any:  # noqa: N803
    if not _traced(a):
        return np.linalg.eigh(a, UPLO)
    w, v = _unpack(_op(_eigh)(a, UPLO), _eigh_shapes(a))
    return EighResult(_re(w), v)


@_composite(np.linalg.eig)
def eig(a: Any) -> Any:
    if not _traced(a):
        return np.linalg.eig(a)
    return EigResult(*_unpack(_op(_eig)(a), _eigh_shapes(a)))


@_composite(np.linalg.svd)
def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False) -> Any:
    if not _traced(a):
        return np.linalg.svd(a, full_matrices, compute_uv, hermitian)
    if not compute_uv:
        return _op(_singular_values)(a, hermitian=hermitian)
    u, s, vh = _unpack(_op(_svd)(a, full_matrices=full_matrices, hermitian=hermitian),
                       _svd_shapes(a, full_matrices))
    return SVDResult(u, _re(s), vh)


@_composite(np.linalg.svdvals)
def svdvals(x: Any, /) -> Any:
    return _op(_singular_values)(x) if _traced(x) else np.linalg.svdvals(x)


@_composite(np.linalg.qr)
def qr(a: Any, mode: str = "reduced") -> Any:
    if not _traced(a):
        return np.linalg.qr(a, mode)
    if mode not in ("reduced", "complete", "r"):
        np.linalg.qr(strip(a), mode)  # NumPy's error for an unknown mode
        raise TypeError(f"qr: mode={mode!r} has no derivative in wengert; use mode='reduced', 'complete' or 'r'.")
    q, r = _unpack(_op(_qr)(a, "complete" if mode == "complete" else "reduced"),
                   _qr_shapes(a, mode))
    return r if mode == "r" else QRResult(q, r)


# ----------------------------------------------------------------------------- norms
@_composite(np.linalg.norm)
def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    if not _traced(x):
        return np.linalg.norm(x, ord, axis, keepdims)
    nd = x.ndim
    if axis is None:
        if ord is None or (ord in ("f", "fro") and nd == 2) or (ord == 2 and nd == 1):
            r = _op(_norm2)(x)
            return wnp.reshape(r, (1,) * nd) if keepdims else r
        axis = tuple(range(nd))
    elif not isinstance(axis, tuple):
        axis = (operator.index(axis),)
    if len(axis) == 1:
        return _vector_norm(x, ord, axis, keepdims)
    if len(axis) == 2:
        return _matrix_norm(x, ord, axis, keepdims)
    raise ValueError("Improper number of dimensions to norm.")


def _vector_norm(x: Any, ord: Any, axis: tuple, keepdims: bool) -> Any:
    if ord is None or ord == 2:
        return _op(_norm2)(x, axis, keepdims)
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order '{ord}' for vectors")
    if ord == 0:  # a count of nonzeros: no gradient
        return np.linalg.norm(strip(x), 0, axis, keepdims)
    if ord in (np.inf, -np.inf):
        return (wnp.max if ord > 0 else wnp.min)(wnp.abs(x), axis=axis, keepdims=keepdims)
    if ord == 1:
        return wnp.sum(wnp.abs(x), axis=axis, keepdims=keepdims)
    return wnp.sum(wnp.abs(x) ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)


def _matrix_norm(x: Any, ord: Any, axis: tuple, keepdims: bool) -> Any:
    nd = x.ndim
    row, col = normalize_axis_index(axis[0], nd), normalize_axis_index(axis[1], nd)
    if row == col:
        raise ValueError("Duplicate axes given.")
    if ord in (2, -2, "nuc"):
        s = _op(_singular_values)(wnp.moveaxis(x, (row, col), (-2, -1)))
        r = wnp.sum(s, axis=-1) if ord == "nuc" else (wnp.max if ord == 2 else wnp.min)(s, axis=-1)
    elif ord in (1, -1):
        sums = wnp.sum(wnp.abs(x), axis=row)
        r = (wnp.max if ord == 1 else wnp.min)(sums, axis=col - (col > row))
    elif ord in (np.inf, -np.inf):
        sums = wnp.sum(wnp.abs(x), axis=col)
        r = (wnp.max if ord > 0 else wnp.min)(sums, axis=row - (row > col))
    elif ord in (None, "fro", "f"):
        r = _op(_norm2)(x, (row, col))
    else:
        raise ValueError("Invalid norm order for matrices.")
    if keepdims:
        shape = list(x.shape)
        shape[row] = shape[col] = 1
        r = wnp.reshape(r, tuple(shape))
    return r


@_composite(np.linalg.matrix_norm)
def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    if not _traced(x):
        return np.linalg.matrix_norm(x, keepdims=keepdims, ord=ord)
    return norm(x, ord, (-2, -1), keepdims)


@_composite(np.linalg.vector_norm)
def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: Any = 2) -> Any:
    if not _traced(x):
        return np.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord)
    shape = x.shape
    if axis is None:
        y, along = wnp.reshape(x, (-1,)), 0
    elif isinstance(axis, tuple):  # several axes: one vector of all their elements
        axes = normalize_axis_tuple(axis, len(shape))
        rest = [i for i in range(len(shape)) if i not in axes]
        y = wnp.reshape(wnp.transpose(x, axes + tuple(rest)), (-1,) + tuple(shape[i] for i in rest))
        along = 0
    else:
        y, along = x, axis
    r = norm(y, ord, along)
    if keepdims:
        kept = normalize_axis_tuple(range(len(shape)) if axis is None else axis, len(shape))
        r = wnp.reshape(r, tuple(1 if i in kept else n for i, n in enumerate(shape)))
    return r


@_composite(np.linalg.cond)
def cond(x: Any, p: Any = None) -> Any:
    if not _traced(x):
        return np.linalg.cond(strip(x), p)
    if p is None or p in (2, -2):
        s = _op(_singular_values)(x)
        return s[..., -1] / s[..., 0] if p == -2 else s[..., 0] / s[..., -1]
    infinite = np.isinf(np.linalg.cond(strip(x), p))  # singular (NumPy's inf): left out of the inverse
    if not np.any(infinite):
        return norm(x, p, (-2, -1)) * norm(wnp.linalg.inv(x), p, (-2, -1))
    x = wnp.where(infinite[..., None, None], np.eye(_shape(x)[-1]), x)
    return wnp.where(infinite, np.inf, norm(x, p, (-2, -1)) * norm(wnp.linalg.inv(x), p, (-2, -1)))


# ----------------------------------------------------------------------------- solves and products
@_composite(np.linalg.lstsq)
def lstsq(a: Any, b: Any, rcond: Any = None) -> tuple:
    """The solution through the pseudo-inverse with lstsq's cutoff; rank and the emptiness
    of the residuals from NumPy's own call."""
    if not _traced(a, b):
        return np.linalg.lstsq(a, b, rcond)
    a, b = (v if _traced(v) else np.asarray(v) for v in (a, b))
    _, resid, rank, _ = np.linalg.lstsq(strip(a), strip(b), rcond)
    m, n = _shape(a)[-2:]
    cutoff = np.finfo(np.result_type(strip(a), float)).eps * max(m, n) if rcond is None else rcond
    x = wnp.matmul(wnp.linalg.pinv(a, cutoff), b)
    if np.size(resid):
        resid = wnp.reshape(wnp.sum(wnp.abs(b - wnp.matmul(a, x)) ** 2, axis=0), (-1,))
    return x, resid, rank, svdvals(a)


@_composite(np.linalg.matrix_power)
def matrix_power(a: Any, n: int) -> Any:
    if not _traced(a):
        return np.linalg.matrix_power(a, n)
    try:
        n = operator.index(n)
    except TypeError as e:
        raise TypeError("exponent must be an integer") from e
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise LinAlgError("Last 2 dimensions of the array must be square")
    if n == 0:
        return np.broadcast_to(np.eye(a.shape[-1], dtype=a.dtype), a.shape).copy()
    if n < 0:
        a, n = wnp.linalg.inv(a), -n
    if n == 1:
        return a
    if n == 2:
        return wnp.matmul(a, a)
    if n == 3:
        return wnp.matmul(wnp.matmul(a, a), a)
    z = result = None  # binary powering, in NumPy's order
    while n > 0:
        z = a if z is None else wnp.matmul(z, z)
        n, bit = divmod(n, 2)
        if bit:
            result = z if result is None else wnp.matmul(result, z)
    return result


@_composite(np.linalg.multi_dot)
def multi_dot(arrays: Any, *, out: Any = None) -> Any:
    arrays = [wnp.asarray(a) if isinstance(a, (list, tuple)) else a for a in arrays]  # lists as NumPy reads them
    if not _traced(*arrays):
        return np.linalg.multi_dot(arrays, out=out)
    if out is not None:
        raise TypeError("multi_dot: out= cannot be used with traced values; use the returned value.")
    if len(arrays) < 2:
        raise ValueError("Expecting at least two arrays.")
    if len(arrays) == 2:
        return wnp.dot(arrays[0], arrays[1])
    first, last = np.ndim(strip(arrays[0])), np.ndim(strip(arrays[-1]))
    if first == 1:
        arrays[0] = wnp.reshape(arrays[0], (1, -1))
    if last == 1:
        arrays[-1] = wnp.reshape(arrays[-1], (-1, 1))
    for a in arrays:
        if np.ndim(strip(a)) != 2:
            raise np.linalg.LinAlgError(f"{np.ndim(strip(a))}-dimensional array given. Array must be two-dimensional")
    result = _chain(arrays, _chain_order([_shape(x) for x in arrays]), 0, len(arrays) - 1)
    if first == 1 and last == 1:
        return result[0, 0]
    return wnp.reshape(result, (-1,)) if first == 1 or last == 1 else result


def _chain_order(shapes: list) -> np.ndarray:
    """Where to split each sub-chain for the fewest scalar multiplications (ties: leftmost)."""
    dims = [s[0] for s in shapes] + [shapes[-1][1]]
    n = len(shapes)
    cost = np.zeros((n, n))
    split = np.zeros((n, n), dtype=int)
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i, j] = np.inf
            for k in range(i, j):
                c = cost[i, k] + cost[k + 1, j] + dims[i] * dims[k + 1] * dims[j + 1]
                if c < cost[i, j]:
                    cost[i, j], split[i, j] = c, k
    return split


def _chain(arrays: list, split: np.ndarray, i: int, j: int) -> Any:
    if i == j:
        return arrays[i]
    k = split[i, j]
    return wnp.dot(_chain(arrays, split, i, k), _chain(arrays, split, k + 1, j))


@_composite(np.linalg.tensorsolve)
def tensorsolve(a: Any, b: Any, axes: Any = None) -> Any:
    if not _traced(a, b):
        return np.linalg.tensorsolve(a, b, axes)
    nd = np.ndim(strip(a))
    if axes is not None:
        moved = normalize_axis_tuple(axes, nd)
        a = wnp.transpose(a, [i for i in range(nd) if i not in moved] + list(moved))
    shape = _shape(a)[np.ndim(strip(b)):]
    size = int(np.prod(shape))
    if size * size != np.size(strip(a)):
        np.linalg.tensorsolve(strip(a), strip(b))  # NumPy's error
    x = wnp.linalg.solve(wnp.reshape(a, (size, size)), wnp.reshape(b, (-1,)))
    return wnp.reshape(x, shape)


@_composite(np.linalg.tensorinv)
def tensorinv(a: Any, ind: int = 2) -> Any:
    if not _traced(a):
        return np.linalg.tensorinv(a, ind)
    if ind <= 0:
        raise ValueError("Invalid ind argument.")
    shape = _shape(a)
    inverse = wnp.linalg.inv(wnp.reshape(a, (int(np.prod(shape[ind:])), -1)))
    return wnp.reshape(inverse, shape[ind:] + shape[:ind])


# ----------------------------------------------------------------------------- the array API's names
@_composite(np.linalg.matmul)
def matmul(x1: Any, x2: Any, /) -> Any:
    return wnp.matmul(x1, x2) if _traced(x1, x2) else np.linalg.matmul(x1, x2)


@_composite(np.linalg.tensordot)
def tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    return wnp.tensordot(x1, x2, axes=axes) if _traced(x1, x2) else np.linalg.tensordot(x1, x2, axes=axes)


@_composite(np.linalg.outer)
def outer(x1: Any, x2: Any, /) -> Any:
    if not _traced(x1, x2):
        return np.linalg.outer(x1, x2)
    if np.ndim(strip(x1)) != 1 or np.ndim(strip(x2)) != 1:
        raise ValueError(f"Input arrays must be one-dimensional, but they are x1.ndim={np.ndim(strip(x1))} "
                         f"and x2.ndim={np.ndim(strip(x2))}.")
    return wnp.outer(x1, x2)


@_composite(np.linalg.vecdot)
def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    if not _traced(x1, x2):
        return np.linalg.vecdot(x1, x2, axis=axis)
    return wnp.sum(_cj(x1) * x2, axis=axis)


@_composite(np.linalg.matrix_transpose)
def matrix_transpose(x: Any, /) -> Any:
    if not _traced(x) or x.ndim < 2:  # NumPy's own error for fewer than two dimensions
        return np.linalg.matrix_transpose(strip(x))
    return _T(x)


@_composite(np.linalg.diagonal)
def diagonal(x: Any, /, *, offset: int = 0) -> Any:
    if not _traced(x) or x.ndim < 2:
        return np.linalg.diagonal(strip(x), offset=offset)
    m, n = x.shape[-2:]
    rows = np.arange(max(0, -offset), min(m, n - offset))
    return x[..., rows, rows + offset]


@_composite(np.linalg.trace)
def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    if not _traced(x):
        return np.linalg.trace(x, offset=offset, dtype=dtype)
    r = wnp.sum(diagonal(x, offset=offset), axis=-1)
    return r if dtype is None else wnp.astype(r, dtype)


@_composite(np.linalg.cross)
def cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    if not _traced(x1, x2):
        return np.linalg.cross(x1, x2, axis=axis)
    if np.shape(strip(x1))[axis] != 3 or np.shape(strip(x2))[axis] != 3:
        raise ValueError("Both input arrays must be (arrays of) 3-dimensional vectors, but they are "
                         f"{np.shape(strip(x1))[axis]} and {np.shape(strip(x2))[axis]} dimensional instead.")
    u, v = wnp.moveaxis(x1, axis, -1), wnp.moveaxis(x2, axis, -1)
    parts = [u[..., i] * v[..., j] - u[..., j] * v[..., i] for i, j in ((1, 2), (2, 0), (0, 1))]
    return wnp.moveaxis(wnp.stack(parts, axis=-1), -1, axis)
