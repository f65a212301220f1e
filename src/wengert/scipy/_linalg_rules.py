"""VJP and JVP rules for scipy.linalg (see wengert/numpy/_vjps.py and _jvps.py for the
conventions, and wengert/numpy/_linalg.py for the linear-algebra helpers).

Primitives: ``expm``, ``solve_sylvester``, ``solve_triangular``, and the private ``_root_of``
behind ``sqrtm`` and ``_lu_of`` behind ``lu_factor``. Composites: ``sqrtm`` (SciPy's root,
recorded), ``lu_factor``, ``lu_solve`` (two triangular solves and a permutation),
``cho_factor`` (NumPy's cholesky), ``cho_solve`` (two triangular solves). Every rule calls
the recorded functions of this table, so it is differentiable again:

* expm: the derivative at A along E is the top-right block of expm([[A, E], [0, A]]), and the
  VJP is that at A^T (expm is holomorphic: transposes, no conjugates). Like SciPy, a 0-d
  (or one-element 1-d) A is a 1x1 matrix.
* sqrtm: X = sqrtm(A) solves X dX + dX X = dA, a Sylvester equation (unique where no two
  eigenvalues of X sum to zero, true of the principal root of a matrix without eigenvalues
  on the closed negative real axis). With ``disp=False`` (deprecated by SciPy) the error
  estimate SciPy returns beside X is a plain number, without a gradient.
* solve_triangular reads one triangle of ``a`` (without its diagonal for
  ``unit_diagonal=True``): the gradient lives there. ``trans="C"`` conjugates ``a``, so that
  case is not holomorphic and its rule carries the conjugates.
* lu_factor: square matrices with nonzero pivots; the permutation is piecewise constant.
* cho_factor: like numpy.linalg.cholesky, reads one triangle; the other triangle of the
  result is ``a``'s own (as SciPy leaves it), with derivative one there.
* solve: each ``assume_a`` reads part of ``a`` (a triangle mirrored, a triangle, one or three
  diagonals), and the matrix solved with is built from that part, so the gradient lives there;
  ``positive definite`` solves through a Cholesky factor.

On traced input the composites keep SciPy's conventions: the result dtypes (single precision
stays single, but ``det`` and some norms answer in double precision), ``check_finite``
(SciPy's error for an infinite or NaN entry), and the list SciPy returns for the factors of
a stack of matrices.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import scipy.linalg as sl

import wengert.numpy as wnp

from .._core import strip
from ..numpy._jvps import _bcast, _lead
from ..numpy._linalg import _H, _T, _cj, _mask, _mm, _traced
from ..numpy._vjps import _shape
from ..numpy._wrap import DISPATCH, _strip_tree, composite

_TRANS = {"N": 0, "T": 1, "C": 2}


def _op(fun: Callable) -> Callable:
    """The recording wrapper of a primitive of this table (made when linalg.py registers it)."""
    return DISPATCH[fun]


def _triangle(n: int, lower: bool, strict: bool) -> np.ndarray:
    """One triangle of an n x n matrix as a boolean mask: multiplying by it keeps the other
    operand's dtype, where a float64 mask would turn single precision into double."""
    return _mask(n, lower, strict).astype(bool)


def _check_finite(check_finite: bool, *xs: Any) -> None:
    """SciPy's ``check_finite`` on traced input: its own ValueError when an argument holds an
    infinity or a NaN (one look at the plain values; the traced computation would not check)."""
    if check_finite:
        for x in xs:
            np.asarray_chkfinite(_strip_tree(x))


def _double(x: Any) -> Any:
    """``x`` in double precision (complex128 if it is complex, else float64)."""
    dtype = np.dtype(np.complex128 if np.iscomplexobj(strip(x)) else np.float64)
    return x if np.result_type(strip(x)) == dtype else wnp.astype(x, dtype)


def _as_matrix(x: Any, a: Any) -> Any:
    """``x`` (``a`` or a tangent of it, with leading batch dimensions) with a 0-d or one-element
    1-d ``a`` made a 1x1 matrix, as SciPy's matrix functions take it."""
    return x if np.ndim(strip(a)) >= 2 else wnp.reshape(x, _shape(x)[:_lead(x, a)] + (1, 1))


def _parts(a: Any, parts: Any) -> Any:
    """Several results as SciPy returns them: a tuple for one matrix, a list for a stack."""
    return list(parts) if len(_shape(a)) > 2 else tuple(parts)


def _factors(a: Any, factors: Any, info: Any) -> Any:
    """A factorization as SciPy returns it: the tuple ``(factors, info)`` for one matrix, and for
    a stack the list ``[factors, info]`` with ``info`` given per matrix (SciPy's batching)."""
    batch = _shape(a)[:-2]
    return _parts(a, (factors, info if not batch or np.ndim(info) else np.full(batch, info)))


# ----------------------------------------------------------------------------- matrix functions
def _frechet(a: Any, e: Any) -> Any:
    """The Fréchet derivative of expm at ``a`` along ``e``: the top-right block of
    expm([[a, e], [0, a]]), written with the recorded expm (``e`` may carry batch dimensions)."""
    n = _shape(a)[-1]
    shape = np.broadcast_shapes(_shape(a), _shape(e))
    a, e = (x if _shape(x) == shape else wnp.broadcast_to(x, shape) for x in (a, e))
    zero = np.zeros(shape, dtype=np.result_type(strip(a), strip(e)))
    block = wnp.concatenate([wnp.concatenate([a, e], axis=-1), wnp.concatenate([zero, a], axis=-1)], axis=-2)
    return _op(sl.expm)(block)[..., :n, n:]


def _expm_vjp(g: Any, ans: Any, a: Any) -> Any:
    ga = _frechet(_T(_as_matrix(a, a)), g)
    return ga if np.ndim(strip(a)) >= 2 else wnp.reshape(ga, _shape(a))


def _expm_jvp(t: Any, ans: Any, a: Any) -> Any:
    return _frechet(_as_matrix(a, a), _as_matrix(t, a))


def _root_of(a: Any, x: Any) -> Any:
    """sqrtm's principal root of ``a``, already computed by SciPy (``x``), recorded as a function
    of ``a``; the rules read the root from the output, which is traced at higher orders."""
    return x


def _sylvester(a: Any, b: Any, q: Any) -> Any:
    """X with a X + X b = q (recorded: differentiable again)."""
    return _op(sl.solve_sylvester)(a, b, q)


def _sylvester_adjoint(g: Any, a: Any, b: Any) -> Any:
    """C with a^T C + C b^T = g: the cotangent of q in a X + X b = q."""
    return _sylvester(_T(a), _T(b), g)


def _sqrtm_jvp(t, ans, a, *args, **kw):
    return _sylvester(ans, ans, t)


def _sqrtm_vjp(g, ans, a, *args, **kw):
    return _sylvester_adjoint(g, ans, ans)


def _sylvester_jvp_a(t, ans, a, b, q):
    return -_sylvester(a, b, _mm(_bcast(t, _lead(t, a), np.ndim(strip(ans))), ans))


def _sylvester_jvp_b(t, ans, a, b, q):
    return -_sylvester(a, b, _mm(ans, _bcast(t, _lead(t, b), np.ndim(strip(ans)))))


def _sylvester_jvp_q(t, ans, a, b, q):
    return _sylvester(a, b, _bcast(t, _lead(t, q), np.ndim(strip(ans))))


# ----------------------------------------------------------------------------- triangular solves
def _solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False, check_finite=True):
    """SciPy's solve_triangular, never overwriting ``b`` (a recorded value may be it)."""
    return sl.solve_triangular(a, b, trans, lower, unit_diagonal, False, check_finite)


def _tri(a: Any, lower: bool, unit: bool) -> np.ndarray:
    """The entries of ``a`` that solve_triangular reads."""
    return _triangle(_shape(a)[-1], lower, strict=unit)


def _st(a: Any, rhs: Any, trans: int, lower: bool, unit: bool = False) -> Any:
    """A recorded triangular solve; its callers have checked the inputs (check_finite) already."""
    return _op(sl.solve_triangular)(a, rhs, trans=trans, lower=lower, unit_diagonal=unit, check_finite=False)


def _st_adjoint(g, ans, a, b, trans=0, lower=False, unit_diagonal=False, **kw):
    """op(T)^-T g, b's cotangent (op(T) is T, T^T or T^H)."""
    trans = _TRANS.get(trans, trans)
    if trans == 2:
        return _cj(_st(a, _cj(g), 0, lower, unit_diagonal))
    return _st(a, g, 1 - trans, lower, unit_diagonal)


def _st_vjp_a(g, ans, a, b, trans=0, lower=False, unit_diagonal=False, **kw):
    trans = _TRANS.get(trans, trans)
    gb = _st_adjoint(g, ans, a, b, trans, lower, unit_diagonal)
    if np.ndim(strip(b)) == 1:
        gb, ans = wnp.expand_dims(gb, -1), wnp.expand_dims(ans, -1)
    c = -_mm(gb, _T(ans)) if trans == 0 else -_mm(ans, _T(gb)) if trans == 1 else -_mm(_cj(ans), _H(gb))
    return c * _tri(a, lower, unit_diagonal)


def _st_jvp_a(t, ans, a, b, trans=0, lower=False, unit_diagonal=False, **kw):
    trans = _TRANS.get(trans, trans)
    vec = np.ndim(strip(b)) == 1
    x = wnp.expand_dims(ans, -1) if vec else ans
    dt = t * _tri(a, lower, unit_diagonal)
    dt = dt if trans == 0 else _T(dt) if trans == 1 else _H(dt)
    r = -_st(a, _mm(_bcast(dt, _lead(t, a), np.ndim(strip(x))), x), trans, lower, unit_diagonal)
    return r[..., 0] if vec else r


def _st_jvp_b(t, ans, a, b, trans=0, lower=False, unit_diagonal=False, **kw):
    trans = _TRANS.get(trans, trans)
    vec = np.ndim(strip(b)) == 1
    lead = _lead(t, b)
    rhs = _bcast(wnp.expand_dims(t, -1) if vec else t, lead, np.ndim(strip(ans)) + vec)
    r = _st(a, rhs, trans, lower, unit_diagonal)
    return r[..., 0] if vec else r


# ----------------------------------------------------------------------------- LU
# A = P L U, X = L^-1 P^T dA U^-1: dL = L tril(X, -1), dU = triu(X) U, and lu = L - I + U.
def _lu_of(a: Any, lu: Any, piv: Any) -> Any:
    """lu_factor's packed factors of ``a``, already computed (``lu``), recorded as a function
    of ``a``; rules read the factors from the output, which is traced at higher orders."""
    return lu


def _permutation(piv: Any) -> np.ndarray:
    """P^T as a (stack of) boolean permutation matrices, P^T A = L U, from LAPACK's row
    interchanges (boolean: a product with one keeps the other factor's dtype)."""
    piv = np.asarray(piv)
    n, batch = piv.shape[-1], piv.shape[:-1]
    perms = np.tile(np.arange(n), (int(np.prod(batch, dtype=int)), 1))
    for perm, swaps in zip(perms, piv.reshape(perms.shape)):  # (one matrix of each stack, even a 0 x 0 one)
        for i, j in enumerate(swaps):
            perm[i], perm[j] = perm[j], perm[i]
    return np.eye(n, dtype=bool)[perms.reshape(batch + (n,))]


def _lu_parts(lu: Any) -> tuple:
    n = _shape(lu)[-1]
    strict, upper = _triangle(n, True, strict=True), _triangle(n, False, strict=False)
    return lu * strict + np.eye(n, dtype=bool), lu * upper, strict, upper


def _lu_jvp(t, ans, a, lu, piv):
    l, u, strict, upper = _lu_parts(ans)
    y = _st(ans, _mm(_permutation(piv), t), 0, True, True)  # L^-1 P^T dA
    x = _T(_st(ans, _T(y), 1, False))  # ... U^-1
    return _mm(l, x * strict) + _mm(x * upper, u)


def _lu_vjp(g, ans, a, lu, piv):
    l, u, strict, upper = _lu_parts(ans)
    gx = _mm(_T(l), g * strict) * strict + _mm(g * upper, _T(u)) * upper
    z = _T(_st(ans, _T(gx), 0, False))  # gX U^-T
    return _mm(_T(_permutation(piv)), _st(ans, z, 1, True, True))  # P L^-T ...


# ============================================================================= the tables
VJPS: dict[Any, Any] = {
    sl.expm:             (_expm_vjp,),
    _root_of:            (_sqrtm_vjp,                      None),
    sl.solve_sylvester:  (lambda g, ans, a, b, q: -_mm(_sylvester_adjoint(g, a, b), _T(ans)),
                          lambda g, ans, a, b, q: -_mm(_T(ans), _sylvester_adjoint(g, a, b)),
                          lambda g, ans, a, b, q: _sylvester_adjoint(g, a, b)),
    sl.solve_triangular: (_st_vjp_a,                       _st_adjoint),
    _lu_of:              (_lu_vjp,                         None, None),
}

JVPS: dict[Any, Any] = {
    sl.expm:             (_expm_jvp,),
    _root_of:            (_sqrtm_jvp,                      None),
    sl.solve_sylvester:  (_sylvester_jvp_a,                _sylvester_jvp_b, _sylvester_jvp_q),
    sl.solve_triangular: (_st_jvp_a,                       _st_jvp_b),
    _lu_of:              (_lu_jvp,                         None, None),
}

IMPLS: dict[Any, Callable] = {sl.solve_triangular: _solve_triangular}


# ============================================================================= composites
COMPOSITES: list = []  # the SciPy functions below, for the tests' coverage check


def _composite(fun: Any) -> Callable[[Callable], Callable]:
    COMPOSITES.append(fun)
    return composite(fun)


@_composite(sl.sqrtm)
def sqrtm(A: Any, *args: Any, **kwargs: Any) -> Any:  # SciPy 1.17 deprecates its disp and blocksize
    if not _traced(A):
        return sl.sqrtm(A, *args, **kwargs)
    if np.ndim(strip(A)) < 2:  # SciPy 1.17 answers exp(a) there, which a square root's rule would not match
        raise ValueError(f"sqrtm: a traced input of shape {np.shape(strip(A))} is not a matrix; pass a square "
                         "matrix (for a number, a.reshape(1, 1)).")
    out = sl.sqrtm(strip(A), *args, **kwargs)  # SciPy's value, warnings and errors, computed once
    if isinstance(out, tuple):  # disp=False: (root, error estimate); the estimate is a plain number
        return _op(_root_of)(A, out[0]), out[1]
    return _op(_root_of)(A, out)


@_composite(sl.lu_factor)
def lu_factor(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> Any:
    if not _traced(a):
        return sl.lu_factor(a, overwrite_a, check_finite)
    lu, piv = sl.lu_factor(strip(a), False, check_finite)
    if lu.shape[-1] != lu.shape[-2]:
        raise ValueError(f"lu_factor: derivatives are implemented for square matrices; got shape {lu.shape}.")
    return _factors(a, _op(_lu_of)(a, lu, piv), piv)


@_composite(sl.lu_solve)
def lu_solve(lu_and_piv: tuple, b: Any, trans: Any = 0, overwrite_b: bool = False, check_finite: bool = True) -> Any:
    lu, piv = lu_and_piv
    if not _traced(lu, b):
        return sl.lu_solve((lu, piv), b, trans, overwrite_b, check_finite)
    _check_finite(check_finite, lu, b)
    trans = _TRANS.get(trans, trans)
    pt = _permutation(piv)
    if trans == 0:  # U^-1 L^-1 P^T b
        return _st(lu, _st(lu, _mm(pt, b), 0, True, True), 0, False)
    return _mm(_T(pt), _st(lu, _st(lu, b, trans, False), trans, True, True))  # P L^-T U^-T b (or ^-H)


@_composite(sl.cho_factor)
def cho_factor(a: Any, lower: bool = False, overwrite_a: bool = False, check_finite: bool = True) -> Any:
    if not _traced(a):
        return sl.cho_factor(a, lower, overwrite_a, check_finite)
    _check_finite(check_finite, a)
    factor = wnp.linalg.cholesky(a, upper=not lower)  # reads the triangle SciPy reads
    return _factors(a, factor + a * _triangle(_shape(a)[-1], not lower, strict=True), lower)


def _one_triangle(lower: Any) -> bool:
    """cho_solve's ``lower``: a flag, or one flag per matrix for the factors of a stack."""
    flags = np.unique(np.asarray(lower, dtype=bool))
    if flags.size > 1:
        raise NotImplementedError("scipy.linalg.cho_solve: the factors of this stack mix lower and upper "
                                  "triangles (lower holds both True and False); on traced values wengert "
                                  "solves with one triangle for the whole stack. Factor every matrix with "
                                  "the same lower=, or call cho_solve on each matrix.")
    return bool(flags.size and flags[0])


@_composite(sl.cho_solve)
def cho_solve(c_and_lower: tuple, b: Any, overwrite_b: bool = False, check_finite: bool = True) -> Any:
    c, lower = c_and_lower
    if not _traced(c, b):
        return sl.cho_solve((c, lower), b, overwrite_b, check_finite)
    _check_finite(check_finite, c, b)
    if _one_triangle(lower):  # A = L L^H
        return _st(c, _st(c, b, 0, True), 2, True)
    return _st(c, _st(c, b, 2, False), 0, False)  # A = U^H U


# ----------------------------------------------------------------------------- SciPy's names for NumPy's
# The decompositions and solvers scipy.linalg shares with numpy.linalg, under SciPy's
# conventions (upper Cholesky factors, lower=, eigvals_only= ...), through wengert.numpy.linalg.
@_composite(sl.inv)
def inv(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> Any:
    if not _traced(a):
        return sl.inv(a, overwrite_a, check_finite)
    _check_finite(check_finite, a)
    return wnp.linalg.inv(a)


@_composite(sl.det)
def det(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> Any:
    if not _traced(a):
        return sl.det(a, overwrite_a, check_finite)
    _check_finite(check_finite, a)
    return wnp.linalg.det(_double(a))  # SciPy answers in double precision (no overflow in single)


# What SciPy's solver for each assume_a reads of a: the matrix it solves with is made of that
# part alone (a triangle mirrored, a band, the diagonal), so the rest of a gets no gradient.
_STRUCTURES = {None: "general", "gen": "general", "general": "general", "banded": "general",
               "sym": "symmetric", "symmetric": "symmetric", "her": "hermitian", "hermitian": "hermitian",
               "pos": "positive definite", "positive definite": "positive definite",
               "upper triangular": "upper triangular", "lower triangular": "lower triangular",
               "diagonal": "diagonal", "tridiagonal": "tridiagonal"}


def _structured(a: Any, structure: str, lower: bool) -> Any:
    """The matrix SciPy's solver for ``structure`` solves with, from the part of ``a`` it reads
    (a Hermitian one's diagonal is real: LAPACK ignores its imaginary part)."""
    n = _shape(a)[-1]
    if structure in ("symmetric", "hermitian", "positive definite"):
        part = a * _triangle(n, lower, strict=True)
        diagonal = a * np.eye(n, dtype=bool)
        if structure == "symmetric":
            return part + _T(part) + diagonal
        return part + _H(part) + (wnp.real(diagonal) if np.iscomplexobj(strip(a)) else diagonal)
    if structure.endswith("triangular"):
        return a * _triangle(n, structure == "lower triangular", strict=False)
    if structure != "general":  # the diagonal, or three of them
        i = np.arange(n)
        return a * (abs(i[:, None] - i) <= (1 if structure == "tridiagonal" else 0))
    return a


@_composite(sl.solve)
def solve(a: Any, b: Any, lower: bool = False, overwrite_a: bool = False, overwrite_b: bool = False,
          check_finite: bool = True, assume_a: Any = None, transposed: bool = False) -> Any:
    if not _traced(a, b):
        return sl.solve(a, b, lower=lower, overwrite_a=overwrite_a, overwrite_b=overwrite_b,
                        check_finite=check_finite, assume_a=assume_a, transposed=transposed)
    structure = _STRUCTURES.get(assume_a) if isinstance(assume_a, (str, type(None))) else None
    if structure is None:
        raise ValueError(f"scipy.linalg.solve: assume_a={assume_a!r} is not one of SciPy's matrix structures "
                         f"{[k for k in _STRUCTURES if k]}.")
    if transposed and np.iscomplexobj(strip(a)):
        raise NotImplementedError("scipy.linalg.solve: transposed=True with a complex a is not supported "
                                  "(nor by SciPy): pass np.swapaxes(a, -1, -2) (or its conjugate) with "
                                  "transposed=False.")
    _check_finite(check_finite, a, b)
    if np.ndim(strip(a)) < 2 and np.size(strip(a)) == 1:  # a number, which SciPy takes as a 1x1 matrix
        a = wnp.reshape(a, (1, 1))
    if np.ndim(strip(b)) == 0:  # and a number b as a vector
        b = wnp.reshape(b, (1,))
    a = _structured(a, structure, lower)
    if structure == "positive definite":  # a Cholesky factor, which refuses a matrix that is not
        return cho_solve((wnp.linalg.cholesky(a), True), b, check_finite=False)
    return wnp.linalg.solve(_T(a) if transposed else a, b)


@_composite(sl.cholesky)
def cholesky(a: Any, lower: bool = False, overwrite_a: bool = False, check_finite: bool = True) -> Any:
    if not _traced(a):
        return sl.cholesky(a, lower, overwrite_a, check_finite)
    _check_finite(check_finite, a)
    return wnp.linalg.cholesky(a, upper=not lower)


_EIGH_DRIVERS = (None, "ev", "evd", "evr", "evx")  # the standard problem's: the same values by other routes


@_composite(sl.eigh)
def eigh(a: Any, b: Any = None, *, lower: bool = True, eigvals_only: bool = False, overwrite_a: bool = False,
         overwrite_b: bool = False, type: int = 1, check_finite: bool = True, subset_by_index: Any = None,
         subset_by_value: Any = None, driver: Any = None) -> Any:
    if not _traced(a, b):
        return sl.eigh(a, b, lower=lower, eigvals_only=eigvals_only, overwrite_a=overwrite_a,
                       overwrite_b=overwrite_b, type=type, check_finite=check_finite,
                       subset_by_index=subset_by_index, subset_by_value=subset_by_value, driver=driver)
    if b is not None:
        raise NotImplementedError(
            "scipy.linalg.eigh: on traced values wengert differentiates the standard problem a v = w v, "
            "not the generalized one with b. Reduce it to a standard problem: with L = cholesky(b, lower=True), "
            "solve C = L^-1 a L^-H with solve_triangular; eigh(C) gives the same eigenvalues, and its "
            "eigenvectors y give those of (a, b) as solve_triangular(L, y, lower=True, trans='C').")
    if subset_by_index is not None or subset_by_value is not None:
        raise NotImplementedError(
            "scipy.linalg.eigh: subset_by_index and subset_by_value are not supported on traced values. "
            "Compute every eigenpair and select: w, v = eigh(a), then w[lo:hi + 1] and v[:, lo:hi + 1] "
            "for indices lo..hi, or the w in (lo, hi] for a range of values.")
    if driver not in _EIGH_DRIVERS:
        raise ValueError(f"scipy.linalg.eigh: driver={driver!r} is not a driver of the standard problem "
                         f"(no b); use one of {list(_EIGH_DRIVERS)}.")
    _check_finite(check_finite, a)
    uplo = "L" if lower else "U"
    return wnp.linalg.eigvalsh(a, UPLO=uplo) if eigvals_only else _parts(a, wnp.linalg.eigh(a, UPLO=uplo))


@_composite(sl.svd)
def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True, overwrite_a: bool = False,
        check_finite: bool = True, lapack_driver: str = "gesdd") -> Any:
    if not _traced(a):
        return sl.svd(a, full_matrices, compute_uv, overwrite_a, check_finite, lapack_driver)
    if lapack_driver not in ("gesdd", "gesvd"):
        raise ValueError(f"scipy.linalg.svd: lapack_driver must be 'gesdd' or 'gesvd', not {lapack_driver!r}.")
    _check_finite(check_finite, a)
    out = wnp.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)
    return _parts(a, out) if compute_uv else out


def _answers_in_double(a: np.ndarray, ord: Any, axis: Any, keepdims: bool) -> bool:
    """Whether SciPy's norm of ``a`` comes from BLAS's nrm2 or LAPACK's lange, which return a
    Python float (double precision) whatever ``a``'s precision; otherwise SciPy calls NumPy's."""
    if not (a.size and a.dtype.char in "fdFD" and axis is None and not keepdims):
        return False
    if a.ndim == 1:
        return ord is None or (not isinstance(ord, str) and ord == 2)
    return a.ndim == 2 and not isinstance(ord, str) and ord in (1, np.inf) and (np.isfortran(a) or np.isfortran(a.T))


@_composite(sl.norm)
def norm(a: Any, ord: Any = None, axis: Any = None, keepdims: bool = False, check_finite: bool = True) -> Any:
    if not _traced(a):
        return sl.norm(a, ord, axis, keepdims, check_finite)
    _check_finite(check_finite, a)
    out = wnp.linalg.norm(a, ord, axis, keepdims)
    return _double(out) if _answers_in_double(np.asarray(strip(a)), ord, axis, keepdims) else out


@_composite(sl.pinv)
def pinv(a: Any, *, atol: Any = None, rtol: Any = None, return_rank: bool = False, check_finite: bool = True) -> Any:
    if not _traced(a):
        return sl.pinv(a, atol=atol, rtol=rtol, return_rank=return_rank, check_finite=check_finite)
    if atol is not None or return_rank:
        raise NotImplementedError("scipy.linalg.pinv: atol and return_rank are not supported on traced "
                                  "values; use rtol, or wengert.numpy.linalg.pinv.")
    _check_finite(check_finite, a)
    return wnp.linalg.pinv(a) if rtol is None else wnp.linalg.pinv(a, rtol=rtol)


@_composite(sl.block_diag)
def block_diag(*arrs: Any) -> Any:
    if not _traced(*arrs):
        return sl.block_diag(*arrs)
    blocks = [wnp.atleast_2d(a) for a in arrs]
    batch = np.broadcast_shapes(*[_shape(b)[:-2] for b in blocks])  # SciPy stacks block matrices too
    dtype = np.result_type(*[_strip_tree(b) for b in blocks])
    width = sum(_shape(b)[-1] for b in blocks)
    rows, left = [], 0
    for b in blocks:
        (m, n), right = _shape(b)[-2:], width - left - _shape(b)[-1]
        parts = [wnp.broadcast_to(b, batch + (m, n)) if _shape(b)[:-2] != batch else b]
        parts = ([np.zeros(batch + (m, left), dtype)] if left else []) + parts + \
            ([np.zeros(batch + (m, right), dtype)] if right else [])
        rows.append(wnp.concatenate(parts, axis=-1))
        left += n
    return wnp.concatenate(rows, axis=-2)
