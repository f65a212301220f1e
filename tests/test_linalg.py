"""Linear algebra: every rule of wengert.numpy._linalg and wengert.scipy._linalg_rules, and
every composite built on them, checked against central finite differences to second order in
both modes, and forward mode against the transpose of reverse mode with a batch of two
tangents. Cases cover several sizes, stacks of matrices, complex inputs and the keyword
arguments that change the rule. Eigenvectors, singular vectors and the extra columns of a
complete Q are defined up to a phase (sign) or a rotation, so their cases differentiate
functions invariant under it. A registered rule or composite without a case fails
``test_every_rule_has_a_case``.

Then: ill-conditioned but valid inputs against 50-digit arithmetic (mpmath), the documented
results where no derivative exists, NumPy's errors, and autograd as an independent oracle.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Callable, NamedTuple

import autograd
import autograd.numpy as anp
import autograd.scipy.linalg as asl
import mpmath
import numpy as onp
import pytest
import scipy.linalg as sl

import wengert
import wengert.numpy as np
import wengert.scipy.linalg as sla
from _helpers import check_transpose
from wengert.numpy import _linalg as L
from wengert.scipy import _linalg_rules as S

la = np.linalg
LinAlgError = onp.linalg.LinAlgError
R = onp.random.default_rng(2024)


# ----------------------------------------------------------------------------- inputs
def real(*shape: int) -> Any:
    return R.normal(size=shape)


def cplx(*shape: int) -> Any:
    return R.normal(size=shape) + 1j * R.normal(size=shape)


def well(*shape: int, c: bool = False) -> Any:
    """A well-conditioned square matrix (stack): random plus a multiple of the identity."""
    return (cplx(*shape) if c else real(*shape)) + 3 * onp.eye(shape[-1])


def spd(*shape: int, c: bool = False) -> Any:
    """A Hermitian positive definite matrix (stack) with well-separated eigenvalues."""
    n = shape[-1]
    q = onp.linalg.qr(cplx(*shape) if c else real(*shape))[0]
    return (q * onp.linspace(1.0, 2.0 * n, n)[..., None, :]) @ onp.conj(onp.swapaxes(q, -1, -2))


def dense(*shape: int, c: bool = False) -> Any:
    """A general matrix with well-separated singular values (stack)."""
    m, n = shape[-2:]
    u = onp.linalg.qr(cplx(*shape[:-2], m, m) if c else real(*shape[:-2], m, m))[0][..., :min(m, n)]
    v = onp.linalg.qr(cplx(*shape[:-2], n, n) if c else real(*shape[:-2], n, n))[0][..., :min(m, n)]
    return (u * onp.linspace(3.0, 1.0, min(m, n))[..., None, :]) @ onp.conj(onp.swapaxes(v, -1, -2))


def weights(x: Any) -> Any:
    """A fixed pattern of weights shaped like ``x`` (for gauge-invariant test functions)."""
    shape = onp.shape(x)
    return onp.cos(1.0 + onp.arange(int(onp.prod(shape)))).reshape(shape)


def weighted(x: Any) -> Any:
    return weights(x) * x


def abs2(x: Any) -> Any:
    """|x|^2 elementwise, weighted: invariant under the phase of eigen- or singular vectors."""
    return weights(x) * np.real(x * np.conj(x))


def mT(x: Any) -> Any:  # noqa: N802
    return np.swapaxes(x, -1, -2)


def mH(x: Any) -> Any:  # noqa: N802
    return np.conj(mT(x))


# ----------------------------------------------------------------------------- the case table
class Case(NamedTuple):
    keys: tuple  # the rule-table entries and composites covered
    f: Callable  # function of the differentiated arguments
    args: tuple
    id: str


CASES: list[Case] = []


def case(keys: Any, f: Callable, *args: Any, id: str) -> None:
    keys = keys if isinstance(keys, tuple) else (keys,)
    CASES.append(Case(keys, f, args, f"{getattr(keys[0], '__name__', keys[0])}-{id}"))


# --- inverses and solves
for shape, c in [((1, 1), False), ((3, 3), False), ((4, 4), False), ((2, 3, 3), False), ((3, 3), True),
                 ((2, 2, 2), True)]:
    case(onp.linalg.inv, la.inv, well(*shape, c=c), id=f"{shape}{'c' if c else ''}")
for a, b, name in [(well(3, 3), real(3), "vector"), (well(3, 3), real(3, 2), "matrix"),
                   (well(2, 3, 3), real(3), "stack-vector"), (well(2, 3, 3), real(3, 2), "stack-broadcast-b"),
                   (well(3, 3), real(2, 3, 1), "stack-b"), (well(2, 1, 2, 2), real(3, 2, 2), "broadcast-both"),
                   (well(3, 3, c=True), cplx(3), "complex")]:
    case(onp.linalg.solve, la.solve, a, b, id=name)
case(onp.linalg.solve, lambda a: la.solve(a, onp.arange(3.0)), well(2, 3, 3), id="a-only")
case(onp.linalg.solve, lambda b: la.solve(onp.diag([1.0, 2.0, 3.0]) + 1, b), real(3, 2), id="b-only")
for shape, c in [((3, 2), False), ((2, 4), False), ((3, 3), False), ((2, 3, 2), False), ((2, 3), True)]:
    case(onp.linalg.pinv, la.pinv, dense(*shape, c=c), id=f"{shape}{'c' if c else ''}")
case(onp.linalg.pinv, lambda a: la.pinv(a, hermitian=True), spd(3, 3), id="hermitian")
for c in (False, True):  # NumPy reads the lower triangle and ignores the rest
    case(onp.linalg.pinv, lambda a: la.pinv(a, hermitian=True), spd(3, 3, c=c) + onp.triu(well(3, 3, c=c), 1),
         id=f"hermitian-lower{'c' if c else ''}")
low_rank = real(4, 2) @ real(2, 3)  # rank 2; finite differences stay below the cutoff
case(onp.linalg.pinv, lambda a: la.pinv(a, rcond=1e-4), low_rank, id="rank-deficient")
case(onp.linalg.lstsq, lambda a, b: la.lstsq(a, b)[0], dense(4, 2), real(4), id="vector")
case(onp.linalg.lstsq, lambda a, b: la.lstsq(a, b)[0], dense(2, 3), real(2, 2), id="underdetermined")
case(onp.linalg.lstsq, lambda a, b: la.lstsq(a, b)[1] + la.lstsq(a, b)[3][0], dense(4, 3), real(4, 2),
     id="residuals-and-s")
case(onp.linalg.tensorsolve, la.tensorsolve, well(6, 6).reshape(2, 3, 6), real(2, 3), id="default")
case(onp.linalg.tensorsolve, lambda a, b: la.tensorsolve(a, b, axes=(0,)), well(6, 6).reshape(6, 2, 3),
     real(2, 3), id="axes")
case(onp.linalg.tensorinv, lambda a: la.tensorinv(a, ind=1), well(4, 4).reshape(4, 2, 2), id="ind1")
case(onp.linalg.tensorinv, la.tensorinv, well(6, 6).reshape(2, 3, 6), id="ind2")
for n in (3, -2, 0, 1, 5, -1):
    case(onp.linalg.matrix_power, lambda a, n=n: la.matrix_power(a, n) + a, well(2, 3, 3) / 3, id=f"n={n}")
case(onp.linalg.multi_dot, lambda a, b, c, d: la.multi_dot([a, b, c, d]), real(3), real(3, 4), real(4, 2),
     real(2), id="vector-ends")
case(onp.linalg.multi_dot, lambda a, b, c: la.multi_dot([a, b, c]), real(2, 5), real(5, 1), real(1, 3), id="three")
case(onp.linalg.multi_dot, lambda a, b: la.multi_dot([a, b]), real(2, 3), real(3, 2), id="two")

# --- determinants
for shape, c in [((1, 1), False), ((3, 3), False), ((2, 4, 4), False), ((3, 3), True)]:
    case(onp.linalg.det, la.det, well(*shape, c=c), id=f"{shape}{'c' if c else ''}")
singular = onp.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])  # det == 0 exactly
case(onp.linalg.det, la.det, singular, id="singular")
for shape, c in [((3, 3), False), ((2, 3, 3), False), ((3, 3), True)]:
    a = well(*shape, c=c) * onp.array([1.0, -1.0, 1.0])  # negative determinants too
    case((L._logabsdet, onp.linalg.slogdet), lambda a: la.slogdet(a)[1], a, id=f"{shape}{'c' if c else ''}")
case(onp.linalg.slogdet, lambda a: la.slogdet(a)[0] * la.slogdet(a)[1], well(3, 3), id="sign-is-constant")
case(onp.linalg.slogdet, lambda a: la.slogdet(a)[0], well(2, 3, 3, c=True), id="complex-sign-is-a-phase")

# --- cholesky (reads one triangle: the raw-matrix cases differentiate exactly that)
for shape, c, upper in [((3, 3), False, False), ((1, 1), False, False), ((2, 3, 3), False, True),
                        ((3, 3), True, False), ((3, 3), True, True)]:
    case(onp.linalg.cholesky, lambda a, u=upper: la.cholesky(a, upper=u), spd(*shape, c=c),
         id=f"{shape}{'c' if c else ''}{'-upper' if upper else ''}")
case(onp.linalg.cholesky, lambda x: la.cholesky(x @ mT(x) + 3 * onp.eye(3)), real(3, 3), id="parametrised")

# --- eigenproblems
for shape, c, uplo in [((3, 3), False, "L"), ((4, 4), False, "U"), ((2, 3, 3), False, "L"), ((3, 3), True, "L"),
                       ((2, 2, 2), True, "U")]:
    a = spd(*shape, c=c) - 2.0 * onp.eye(shape[-1])  # indefinite too
    tag = f"{shape}{'c' if c else ''}-{uplo}"
    case((L._eigh, onp.linalg.eigh), lambda a, u=uplo: la.eigh(a, u)[0], a, id=f"values-{tag}")
    case((L._eigh, onp.linalg.eigh), lambda a, u=uplo: abs2(la.eigh(a, u)[1]), a, id=f"abs2-{tag}")
    case((L._eigh, onp.linalg.eigh), lambda a, u=uplo: (lambda w, v: (v * np.sin(w)[..., None, :]) @ mH(v))(
        *la.eigh(a, u)), a, id=f"function-{tag}")
    case(onp.linalg.eigvalsh, lambda a, u=uplo: la.eigvalsh(a, u), a, id=tag)
for shape, c in [((3, 3), False), ((2, 3, 3), False), ((3, 3), True), ((4, 4), True)]:
    a = well(*shape, c=c)
    tag = f"{shape}{'c' if c else ''}"
    case((L._eig, onp.linalg.eig), lambda a: la.eig(a)[0], a, id=f"values-{tag}")
    case((L._eig, onp.linalg.eig), lambda a: abs2(la.eig(a)[1]), a, id=f"abs2-{tag}")
    case((L._eig, onp.linalg.eig), lambda a: (lambda w, v: (v * np.exp(w)[..., None, :]) @ la.inv(v))(*la.eig(a)),
         a, id=f"function-{tag}")
    case(onp.linalg.eigvals, la.eigvals, a, id=tag)
real_spectrum = onp.array([[2.0, 1.0, 0.0], [0.5, -1.0, 0.3], [0.0, 0.2, 4.0]])
case((L._eig, onp.linalg.eig), lambda a: la.eig(a)[0] + abs2(la.eig(a)[1]).sum(), real_spectrum, id="real-spectrum")
case(onp.linalg.eigvals, la.eigvals, real_spectrum, id="real-spectrum")

# --- svd
for shape, c in [((3, 3), False), ((4, 2), False), ((2, 4), False), ((2, 3, 2), False), ((3, 2), True),
                 ((2, 3), True)]:
    a = dense(*shape, c=c)
    tag = f"{shape}{'c' if c else ''}"
    k = min(shape[-2:])
    case((L._singular_values, onp.linalg.svd), lambda a: la.svd(a, compute_uv=False), a, id=f"values-{tag}")
    case(onp.linalg.svdvals, la.svdvals, a, id=tag)
    for full in (False, True):
        def rebuild(a: Any, full: bool = full, k: int = k) -> Any:
            u, s, vh = la.svd(a, full_matrices=full)
            return (u[..., :k] * (s + onp.linspace(0.0, 1.0, k))[..., None, :]) @ vh[..., :k, :]
        case((L._svd, onp.linalg.svd), rebuild, a, id=f"rebuild-{tag}-full={full}")
        case((L._svd, onp.linalg.svd), lambda a, f=full, k=k: abs2(la.svd(a, full_matrices=f)[0][..., :k]).sum()
             + abs2(la.svd(a, full_matrices=f)[2][..., :k, :]).sum(), a, id=f"abs2-{tag}-full={full}")
    m, n = shape[-2:]
    if m != n:  # the extra columns of a full U (rows of Vh) through their projector
        case((L._svd, onp.linalg.svd), lambda a, k=k: (lambda u, s, vh: weighted(u[..., k:] @ mH(u[..., k:]))
             + weighted(mH(vh[..., k:, :]) @ vh[..., k:, :]).sum())(*la.svd(a)), a, id=f"completion-{tag}")
case((L._svd, onp.linalg.svd), lambda a: la.svd(a, hermitian=True)[1] + abs2(la.svd(a, hermitian=True)[0]).sum(),
     spd(3, 3) - 3.0 * onp.eye(3), id="hermitian")
case((L._singular_values, onp.linalg.svd), lambda a: la.svd(a, compute_uv=False, hermitian=True),
     spd(3, 3) - 3.0 * onp.eye(3), id="values-hermitian")
case((L._svd, onp.linalg.svd), lambda a: la.svd(a, hermitian=True)[1] + abs2(la.svd(a, hermitian=True)[0]).sum(),
     spd(3, 3) - 3.0 * onp.eye(3) + onp.triu(real(3, 3), 1), id="hermitian-lower")  # the upper triangle unread

# --- qr (Q and R are unique with LAPACK's conventions; the completion through its projector)
for shape, c in [((4, 3), False), ((3, 3), False), ((2, 4), False), ((2, 3, 2), False), ((4, 3), True),
                 ((2, 3), True)]:
    a = dense(*shape, c=c)
    tag = f"{shape}{'c' if c else ''}"
    case((L._qr, onp.linalg.qr), lambda a: la.qr(a), a, id=f"reduced-{tag}")
    case((L._qr, onp.linalg.qr), lambda a: la.qr(a, mode="r"), a, id=f"r-{tag}")
    k = min(shape[-2:])
    case((L._qr, onp.linalg.qr), lambda a, k=k: (lambda q, r: (weighted(q[..., k:] @ mH(q[..., k:])),
                                                               q[..., :k], r))(*la.qr(a, mode="complete")),
         a, id=f"complete-{tag}")

# --- norms
vec, mat, stack = real(5), real(3, 4), real(2, 3, 3)
for ord_ in (None, 1, 2, onp.inf, -onp.inf, 3, 0.5, -1.5, 0):
    case((L._norm2, onp.linalg.norm), lambda x, o=ord_: la.norm(x, o) + x[0] * 0, vec, id=f"vector-ord={ord_}")
case(onp.linalg.norm, lambda x: la.norm(x, 2, axis=1, keepdims=True), mat, id="vector-axis-keepdims")
case(onp.linalg.norm, lambda x: la.norm(x, 3, axis=-1), stack, id="vector-axis-stack")
case(onp.linalg.norm, lambda x: la.norm(x, onp.inf, axis=0), mat, id="vector-inf-axis")
case((L._norm2, onp.linalg.norm), la.norm, stack, id="flat-3d")
case(onp.linalg.norm, lambda x: la.norm(x, keepdims=True), mat, id="flat-keepdims")
case(onp.linalg.norm, la.norm, cplx(4), id="complex")
case(onp.linalg.norm, lambda x: la.norm(x, 1), cplx(4), id="complex-ord=1")
for ord_ in (None, "fro", "nuc", 1, -1, 2, -2, onp.inf, -onp.inf):
    case(onp.linalg.norm, lambda x, o=ord_: la.norm(x, o), mat, id=f"matrix-ord={ord_}")
    case(onp.linalg.norm, lambda x, o=ord_: la.norm(x, o, axis=(2, 0), keepdims=True), stack,
         id=f"matrix-axes-ord={ord_}")
case(onp.linalg.norm, lambda x: la.norm(x, "nuc"), cplx(3, 2), id="complex-nuc")
case(onp.linalg.norm, lambda x: la.norm(x, 2, axis=(-2, -1)), cplx(2, 2, 3), id="complex-spectral")
case(onp.linalg.matrix_norm, la.matrix_norm, stack, id="fro")
case(onp.linalg.matrix_norm, lambda x: la.matrix_norm(x, ord="nuc", keepdims=True), stack, id="nuc-keepdims")
case(onp.linalg.vector_norm, la.vector_norm, stack, id="all")
case(onp.linalg.vector_norm, lambda x: la.vector_norm(x, axis=(0, 2), ord=3, keepdims=True), stack, id="axes")
case(onp.linalg.vector_norm, lambda x: la.vector_norm(x, axis=1, ord=1), mat, id="axis")
for p in (None, 2, -2, "fro", 1, onp.inf, "nuc"):
    case(onp.linalg.cond, lambda x, p=p: la.cond(x, p), well(2, 3, 3), id=f"p={p}")

# --- the array API's names
case(onp.linalg.matmul, la.matmul, real(2, 3), real(3, 2), id="matrices")
case(onp.linalg.tensordot, lambda x, y: la.tensordot(x, y, axes=1), real(2, 3), real(3, 2), id="axes=1")
case(onp.linalg.outer, la.outer, real(3), cplx(2), id="vectors")
case(onp.linalg.vecdot, la.vecdot, cplx(2, 3), cplx(3), id="complex")
case(onp.linalg.vecdot, lambda x, y: la.vecdot(x, y, axis=0), real(3, 2), real(3, 2), id="axis")
case(onp.linalg.matrix_transpose, la.matrix_transpose, real(2, 3, 4), id="stack")
for off in (0, 1, -2):
    case(onp.linalg.diagonal, lambda x, o=off: la.diagonal(x, offset=o), real(2, 3, 4), id=f"offset={off}")
    case(onp.linalg.trace, lambda x, o=off: la.trace(x, offset=o), real(2, 3, 4), id=f"offset={off}")
case(onp.linalg.cross, la.cross, real(2, 3), real(3), id="broadcast")
case(onp.linalg.cross, lambda x, y: la.cross(x, y, axis=0), real(3, 2), real(3, 2), id="axis")

# --- scipy.linalg
for shape, c in [((1, 1), False), ((3, 3), False), ((2, 3, 3), False), ((3, 3), True)]:
    case(sl.expm, sla.expm, 0.5 * (cplx(*shape) if c else real(*shape)), id=f"{shape}{'c' if c else ''}")
for shape, c in [((3, 3), False), ((2, 2, 2), False), ((3, 3), True)]:
    case((S._root_of, sl.sqrtm), sla.sqrtm, spd(*shape, c=c), id=f"{shape}{'c' if c else ''}")
case((S._root_of, sl.sqrtm), sla.sqrtm, well(3, 3), id="nonsymmetric")
case(sl.solve_sylvester, sla.solve_sylvester, well(3, 3), well(2, 2), real(3, 2), id="real")
case(sl.solve_sylvester, sla.solve_sylvester, well(2, 2, 2, c=True), well(2, 2, c=True), cplx(2, 2), id="complex")
case(sl.solve_sylvester, lambda q: sla.solve_sylvester(onp.diag([1.0, 2.0]), onp.eye(2), q), real(2, 2), id="q-only")
for trans in (0, 1, 2, "N", "T", "C"):
    for lower, unit in ((True, False), (False, True)):
        for c in (False, True):
            tag = f"trans={trans}-lower={lower}-unit={unit}{'-c' if c else ''}"
            b = cplx(3, 2) if c else real(3)
            case(sl.solve_triangular, lambda a, b, t=trans, lo=lower, u=unit: sla.solve_triangular(
                a, b, trans=t, lower=lo, unit_diagonal=u), well(3, 3, c=c), b, id=tag)
case(sl.solve_triangular, lambda a, b: sla.solve_triangular(a, b, trans="T", lower=True), well(2, 3, 3),
     real(2, 3, 2), id="stack")
for trans, c in ((0, False), (1, False), (2, True), (1, True)):
    case((S._lu_of, sl.lu_factor, sl.lu_solve), lambda a, b, t=trans: sla.lu_solve(sla.lu_factor(a), b, trans=t),
         well(3, 3, c=c), cplx(3, 2) if c else real(3), id=f"solve-trans={trans}{'-c' if c else ''}")
case((S._lu_of, sl.lu_factor), lambda a: sla.lu_factor(a)[0], well(4, 4), id="factors")
case((S._lu_of, sl.lu_factor), lambda a: sla.lu_factor(a)[0], well(3, 3, c=True), id="factors-complex")
case((S._lu_of, sl.lu_factor, sl.lu_solve), lambda a, b: sla.lu_solve(sla.lu_factor(a), b), well(2, 3, 3),
     real(2, 3, 2), id="stack")
for lower, c in ((False, False), (True, False), (True, True), (False, True)):
    tag = f"lower={lower}{'-c' if c else ''}"
    case((sl.cho_factor, sl.cho_solve), lambda a, b, lo=lower: sla.cho_solve(sla.cho_factor(a, lower=lo), b),
         spd(3, 3, c=c), cplx(3, 2) if c else real(3), id=f"solve-{tag}")
    case(sl.cho_factor, lambda a, lo=lower: sla.cho_factor(a, lower=lo)[0], spd(3, 3, c=c), id=f"factor-{tag}")

# SciPy's names for NumPy's functions, under SciPy's conventions
case(sl.inv, sla.inv, well(3, 3), id="plain")
case(sl.det, sla.det, well(3, 3, c=True), id="complex")
case(sl.solve, lambda a, b: sla.solve(a, b), well(3, 3), real(3, 2), id="matrix")
case(sl.solve, lambda a, b: sla.solve(a, b, transposed=True), well(3, 3), real(3), id="transposed")
# assume_a: SciPy's solvers read part of a (a triangle, a band): the matrices here are not of that
# structure, so the part left unread must get no gradient (and the values are SciPy's, below)
SOLVE_STRUCTURES = [  # (assume_a, lower, transposed, a, b)
    ("sym", False, False, well(3, 3), real(3)), ("symmetric", True, True, well(3, 3), real(3, 2)),
    ("sym", True, False, well(3, 3, c=True), cplx(3)), ("her", False, False, well(3, 3, c=True), cplx(3, 2)),
    ("hermitian", True, False, well(2, 3, 3, c=True), cplx(3)), ("her", True, True, well(3, 3), real(3)),
    ("pos", False, False, spd(3, 3) + onp.tril(real(3, 3), -1), real(3)),
    ("positive definite", True, True, spd(2, 3, 3) + onp.triu(real(3, 3), 1), real(3, 2)),
    ("pos", True, False, spd(3, 3, c=True) + onp.triu(cplx(3, 3), 1) + 0.3j * onp.eye(3), cplx(3)),
    ("upper triangular", True, False, well(3, 3), real(3)), ("lower triangular", False, True, well(3, 3), real(3, 2)),
    ("diagonal", False, True, well(3, 3), real(3, 2)), ("tridiagonal", False, False, well(4, 4), real(4)),
    ("banded", False, False, well(3, 3), real(3)), ("gen", False, True, well(3, 3), real(3)),
]
for assume_a, lower, transposed, a, b in SOLVE_STRUCTURES:
    case(sl.solve, lambda a, b, k=assume_a, lo=lower, t=transposed: sla.solve(a, b, lower=lo, assume_a=k, transposed=t),
         a, b, id=f"{assume_a}-lower={lower}-transposed={transposed}-{a.shape}{'c' if onp.iscomplexobj(a) else ''}")
for lower in (False, True):
    case(sl.cholesky, lambda a, lo=lower: sla.cholesky(a, lower=lo), spd(3, 3), id=f"lower={lower}")
    case(sl.eigh, lambda a, lo=lower: sla.eigh(a, lower=lo, eigvals_only=True), spd(3, 3), id=f"values-lower={lower}")
case(sl.eigh, lambda a: (lambda w, v: v * w @ v.T)(*sla.eigh(a)), spd(3, 3), id="rebuilt")
case(sl.svd, lambda a: sla.svd(a, compute_uv=False), dense(3, 2), id="values")
case(sl.svd, lambda a: (lambda u, s, vh: (u * s) @ vh)(*sla.svd(a, full_matrices=False)), dense(3, 2), id="rebuilt")
case(sl.norm, lambda a: sla.norm(a, 2), dense(3, 2), id="2")
case(sl.norm, lambda a: sla.norm(a, axis=0), dense(3, 2), id="columns")
case(sl.pinv, sla.pinv, dense(3, 2), id="plain")
case(sl.block_diag, lambda a, b, c: sla.block_diag(a, b, c), real(2, 2), real(1, 3), real(2), id="three")
case(sl.inv, sla.inv, well(3, 3, c=True), id="complex")
case(sl.solve, lambda a, b: sla.solve(a, b), well(3, 3, c=True), cplx(3), id="complex")
case(sl.cholesky, sla.cholesky, spd(3, 3, c=True), id="complex")
case(sl.eigh, lambda a: sla.eigh(a, eigvals_only=True), spd(3, 3, c=True), id="complex")
case(sl.svd, lambda a: sla.svd(a, compute_uv=False), dense(3, 2, c=True), id="complex")
case(sl.norm, sla.norm, dense(3, 2, c=True), id="complex")
case(sl.pinv, sla.pinv, dense(2, 3, c=True), id="complex")
case(sl.block_diag, lambda a, b: sla.block_diag(a, b), cplx(2, 2), real(1, 2), id="complex")
case(sl.block_diag, lambda a, b: sla.block_diag(a, b), real(2, 2, 2), real(1, 3), id="stack")  # SciPy stacks too
for x in (onp.array(0.7), onp.array([0.7])):  # SciPy takes these as 1x1 matrices
    case(sl.expm, sla.expm, x, id=f"{x.ndim}-d")
    case(sl.solve, lambda a, b: sla.solve(a, b), x, onp.array(1.3), id=f"{x.ndim}-d")
case(sl.norm, sla.norm, 0.7, id="a-python-number")


def _sqrtm_with_estimate(a: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # SciPy 1.17 deprecates disp
        return sla.sqrtm(a, disp=False)[0]


case((S._root_of, sl.sqrtm), _sqrtm_with_estimate, spd(3, 3), id="disp=False")
case(sl.eigh, lambda a: sla.eigh(a, eigvals_only=True, overwrite_a=True, overwrite_b=True, type=2, driver="evd",
                                 check_finite=False), spd(3, 3), id="keywords-that-change-nothing")
case(sl.cho_solve, lambda b, c=sl.cho_factor(spd(2, 3, 3)): sla.cho_solve(c, b), real(2, 3, 1),
     id="scipy-stack-factors")  # SciPy's factors of a stack: [c, array([False, False])]


def test_scipy_conventions_are_kept() -> None:
    a, b = spd(3, 3), real(3)
    for got, want in [(sla.cholesky(a), sl.cholesky(a)),
                      (sla.eigh(a, eigvals_only=True), sl.eigh(a, eigvals_only=True)),
                      (sla.block_diag(a, b), sl.block_diag(a, b)),
                      (sla.solve(a, b, transposed=True), sl.solve(a, b, transposed=True))]:
        onp.testing.assert_allclose(got, want, rtol=1e-12)  # untraced: SciPy itself
    traced = wengert.value_and_grad(lambda a: np.sum(sla.cholesky(a)))(a)[0]
    onp.testing.assert_allclose(traced, onp.sum(sl.cholesky(a)), rtol=1e-12)  # upper, as SciPy
    for f, x in [(sla.svd, dense(2, 3, 3)), (sla.eigh, spd(2, 3, 3)), (sla.svd, dense(3, 3)), (sla.eigh, spd(3, 3))]:
        # several results: a list for a stack, a tuple for one matrix, as SciPy's
        assert type(wengert.vjp(f, x)[0]) is type(getattr(sl, f.__name__)(x))


@pytest.mark.parametrize("assume_a, lower, transposed, a, b", SOLVE_STRUCTURES,
                         ids=[str(s[:3]) for s in SOLVE_STRUCTURES])
def test_structured_solves_give_scipys_values(assume_a: str, lower: bool, transposed: bool, a: Any, b: Any) -> None:
    traced, _ = wengert.vjp(lambda a, b: sla.solve(a, b, lower=lower, assume_a=assume_a, transposed=transposed), a, b)
    onp.testing.assert_allclose(traced, sl.solve(a, b, lower=lower, assume_a=assume_a, transposed=transposed),
                                rtol=1e-12, atol=1e-14)


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, (tuple, list)) else out


def _kinds(out: Any) -> Any:
    """What a result is made of: its containers, and the dtype and shape of each value."""
    if isinstance(out, (tuple, list)):
        return type(out).__name__, [_kinds(x) for x in out]
    value = wengert.stop_gradient(out)
    return onp.result_type(value), onp.shape(value)


# scipy.linalg (``M``) on a Hermitian positive definite m; with ``M = sla`` on a traced m the
# result has SciPy's containers and dtypes (single precision stays single where SciPy's does).
SCIPY_CALLS = [
    ("expm", lambda M, m: M.expm(m)),
    ("sqrtm", lambda M, m: M.sqrtm(m)),
    ("solve_sylvester", lambda M, m: M.solve_sylvester(m, m, m)),
    ("solve_triangular", lambda M, m: M.solve_triangular(m, m[0])),
    ("lu_factor", lambda M, m: M.lu_factor(m)),
    ("lu_factor-stack", lambda M, m: M.lu_factor(np.stack([m, 2 * m]))),
    ("lu_solve", lambda M, m: M.lu_solve(M.lu_factor(m), m[0])),
    ("cho_factor", lambda M, m: M.cho_factor(m)),
    ("cho_factor-stack", lambda M, m: M.cho_factor(np.stack([m, 2 * m]), lower=True)),
    ("cho_solve", lambda M, m: M.cho_solve(M.cho_factor(m), m[0])),
    ("inv", lambda M, m: M.inv(m)),
    ("det", lambda M, m: M.det(m)),
    ("det-stack", lambda M, m: M.det(np.stack([m, 2 * m]))),
    ("solve", lambda M, m: M.solve(m, m[0])),
    ("cholesky", lambda M, m: M.cholesky(m)),
    ("eigh", lambda M, m: M.eigh(m)),
    ("svd", lambda M, m: M.svd(m)),
    *[(f"norm-{o}", lambda M, m, o=o: M.norm(m, o)) for o in (None, 1, 2, onp.inf, "fro", "nuc")],
    ("norm-vector", lambda M, m: M.norm(m[0])),
    ("norm-vector-1", lambda M, m: M.norm(m[0], 1)),
    ("norm-strided-1", lambda M, m: M.norm(m[::2], 1)),  # neither C nor Fortran order: NumPy's norm
    ("norm-axis", lambda M, m: M.norm(m, axis=0)),
    ("pinv", lambda M, m: M.pinv(m)),
    ("block_diag", lambda M, m: M.block_diag(m, m[0])),
    ("block_diag-stack", lambda M, m: M.block_diag(np.stack([m, m]), m[:2, :2])),
]
DTYPES = [onp.float32, onp.float64, onp.complex64, onp.complex128]


@pytest.mark.parametrize("dtype", DTYPES, ids=[onp.dtype(d).name for d in DTYPES])
@pytest.mark.parametrize("name, call", SCIPY_CALLS, ids=[c[0] for c in SCIPY_CALLS])
def test_traced_results_have_scipys_types_and_dtypes(name: str, call: Callable, dtype: Any) -> None:
    """The gradient keeps the input's dtype, as everywhere in wengert."""
    m = spd(3, 3, c=onp.dtype(dtype).kind == "c").astype(dtype)
    seen = {}

    def f(x: Any) -> Any:
        out = seen["out"] = call(sla, x)
        return np.sum(np.real(_first(out)))

    assert wengert.grad(f)(m).dtype == dtype
    assert _kinds(seen["out"]) == _kinds(call(sl, m))


NAN = spd(3, 3)
NAN[1, 2] = onp.nan  # in the upper triangle only: the routines that read the lower one compute
CHO, LU = sl.cho_factor(spd(3, 3)), sl.lu_factor(well(3, 3))
CHECKED = [  # (id, call(module, m, **options), whether check_finite=False gives SciPy's numbers)
    ("inv", lambda M, m, **kw: M.inv(m, **kw), True),
    ("det", lambda M, m, **kw: M.det(m, **kw), True),
    ("solve", lambda M, m, **kw: M.solve(m, onp.ones(3), **kw), True),
    ("cholesky", lambda M, m, **kw: M.cholesky(m, lower=True, **kw), True),
    ("cho_factor", lambda M, m, **kw: M.cho_factor(m, lower=True, **kw)[0], True),
    ("cho_solve", lambda M, m, **kw: M.cho_solve(CHO, m, **kw), True),
    ("lu_solve", lambda M, m, **kw: M.lu_solve(LU, m, **kw), True),
    ("norm", lambda M, m, **kw: M.norm(m, **kw), True),
    ("eigh", lambda M, m, **kw: M.eigh(m, **kw)[0], True),
    ("svd", lambda M, m, **kw: M.svd(m, **kw)[1], False),  # NaN: SciPy and NumPy fail differently
    ("pinv", lambda M, m, **kw: M.pinv(m, **kw), False),
]


@pytest.mark.parametrize("name, call, unchecked", CHECKED, ids=[c[0] for c in CHECKED])
def test_check_finite_on_traced_input_is_scipys(name: str, call: Callable, unchecked: bool) -> None:
    kind, message = _numpy_error(lambda x: call(sl, x), NAN)
    for run in (lambda: wengert.grad(lambda x: np.sum(np.real(call(sla, x))))(NAN),
                lambda: wengert.jvp(lambda x: call(sla, x), (NAN,), (onp.ones((3, 3)),))):
        with pytest.raises(kind, match=re.escape(message)):
            run()
    if unchecked:
        with onp.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            traced = wengert.vjp(lambda x: call(sla, x, check_finite=False), NAN)[0]
            onp.testing.assert_allclose(traced, call(sl, NAN, check_finite=False), rtol=1e-12, equal_nan=True)


def test_sqrtm_error_estimate_is_scipys_plain_number() -> None:
    a, seen = spd(3, 3), {}

    def f(x: Any) -> Any:
        root, seen["estimate"] = sla.sqrtm(x, disp=False)
        return np.sum(weights(root) * root)

    with pytest.warns(DeprecationWarning, match="disp"):
        g = wengert.grad(f)(a)
        want = sl.sqrtm(a, disp=False)[1]
    assert type(seen["estimate"]) is type(want) and seen["estimate"] == want
    onp.testing.assert_allclose(g, wengert.grad(lambda x: np.sum(weights(x) * sla.sqrtm(x)))(a), rtol=1e-12)


REFUSED = [  # (id, call on a traced 3x3 matrix, error, words the message holds)
    ("eigh-b", lambda a: sla.eigh(a, onp.eye(3)), NotImplementedError,
     ("scipy.linalg.eigh", "generalized one with b", "cholesky(b, lower=True)")),
    ("eigh-subset_by_index", lambda a: sla.eigh(a, subset_by_index=(0, 1)), NotImplementedError,
     ("scipy.linalg.eigh", "subset_by_index", "w[lo:hi + 1]")),
    ("eigh-subset_by_value", lambda a: sla.eigh(a, subset_by_value=(0.0, 3.0)), NotImplementedError,
     ("scipy.linalg.eigh", "subset_by_value", "(lo, hi]")),
    ("eigh-driver", lambda a: sla.eigh(a, driver="gvd"), ValueError, ("scipy.linalg.eigh", "driver='gvd'", "'evr'")),
    ("svd-lapack_driver", lambda a: sla.svd(a, lapack_driver="gesvx"), ValueError,
     ("scipy.linalg.svd", "lapack_driver", "'gesvd'")),
    ("cho_solve-mixed-triangles", lambda a: sla.cho_solve((np.stack([a, a]), onp.array([True, False])),
                                                          onp.ones((2, 3))), NotImplementedError,
     ("scipy.linalg.cho_solve", "lower", "same lower=")),
    ("solve-not-positive-definite", lambda a: sla.solve(a - 9 * onp.eye(3), onp.ones(3), assume_a="pos"),
     onp.linalg.LinAlgError, ("positive definite",)),
    ("solve-unknown-structure", lambda a: sla.solve(a, onp.ones(3), assume_a="spd"), ValueError,
     ("scipy.linalg.solve", "assume_a='spd'", "'positive definite'")),
    ("solve-complex-transposed", lambda a: sla.solve(a * 1j, onp.ones(3), transposed=True), NotImplementedError,
     ("scipy.linalg.solve", "transposed=True", "swapaxes")),
    ("sqrtm-of-a-number", lambda a: sla.sqrtm(a[0, 0]), ValueError, ("sqrtm", "not a matrix", "reshape(1, 1)")),
]


@pytest.mark.parametrize("name, call, kind, words", REFUSED, ids=[r[0] for r in REFUSED])
def test_refusals_name_the_function_and_argument(name: str, call: Callable, kind: type, words: tuple) -> None:
    with pytest.raises(kind) as info:
        wengert.grad(lambda a: np.sum(np.real(_first(call(a)))))(spd(3, 3))
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_slogdet_at_a_singular_matrix_says_why_it_has_no_derivative() -> None:
    f = lambda a: la.slogdet(a)[1]  # noqa: E731
    for run in (lambda a: wengert.grad(f)(a), lambda a: wengert.jvp(f, (a,), (a,))):
        with pytest.raises(onp.linalg.LinAlgError, match=r"^slogdet: the derivative of log\|det\(a\)\| is inv"):
            run(onp.ones((2, 2)))


# ============================================================================= derivatives
@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_rule_matches_finite_differences(c: Case) -> None:
    wengert.gradcheck(c.f, *c.args, order=2)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_jvp_is_the_transpose_of_vjp(c: Case) -> None:
    check_transpose(c.f, c.args, tol=1e-9)


def test_every_rule_has_a_case() -> None:
    covered = {k for c in CASES for k in c.keys}
    registered = list(L.VJPS) + L.COMPOSITES + list(S.VJPS) + S.COMPOSITES
    missing = [getattr(k, "__name__", k) for k in registered if k not in covered]
    assert not missing, f"rules without a test case: {missing}"


def test_jvp_tables_follow_the_vjp_tables() -> None:
    assert list(L.JVPS) == list(L.VJPS)
    assert list(S.JVPS) == list(S.VJPS)


def test_values_are_numpys() -> None:
    """Traced calls give NumPy's (SciPy's) own results."""
    a, h = well(2, 3, 3), spd(3, 3)
    pairs = [(lambda m: la.eigh(m)[0], lambda m: onp.linalg.eigh(m)[0], h),
             (lambda m: la.svd(m)[1], lambda m: onp.linalg.svd(m)[1], a),
             (lambda m: la.qr(m)[1], lambda m: onp.linalg.qr(m)[1], a),
             (lambda m: la.slogdet(m)[1], lambda m: onp.linalg.slogdet(m)[1], a),
             (lambda m: sla.lu_factor(m)[0], lambda m: sl.lu_factor(m)[0], a[0]),
             (lambda m: sla.cho_factor(m)[0], lambda m: sl.cho_factor(m)[0], h),
             (lambda m: sla.block_diag(m, m[0, :2]), lambda m: sl.block_diag(m, m[0, :2]), a)]
    for traced, plain, x in pairs:
        value, _ = wengert.vjp(traced, x)
        onp.testing.assert_allclose(value, plain(x), rtol=1e-13, atol=1e-13)


# ============================================================================= hard but valid inputs
mpmath.mp.dps = 50


def _mp(x: Any) -> Any:
    return mpmath.matrix(onp.asarray(x).tolist())


def _np(m: Any) -> Any:
    return onp.array(m.tolist(), dtype=float)


def _conditioned(n: int, kappa: float) -> Any:
    q1, q2 = onp.linalg.qr(real(n, n))[0], onp.linalg.qr(real(n, n))[0]
    return (q1 * onp.logspace(0, -onp.log10(kappa), n)) @ q2.T


def test_inv_and_solve_at_condition_number_1e8() -> None:
    """Tolerance: the gradient of inv (solve) at condition number kappa has relative error
    about kappa * eps; at kappa = 1e8 it stays within rtol 1e-6 of 50-digit arithmetic."""
    a, w, b = _conditioned(4, 1e8), real(4, 4), real(4)
    ainv = _mp(a) ** -1
    exact = _np(-(ainv.T * _mp(w) * ainv.T))
    got = wengert.grad(lambda a: np.sum(w * la.inv(a)))(a)
    assert onp.max(onp.abs(got - exact)) <= 1e-6 * onp.max(onp.abs(exact))
    x = ainv * _mp(b[:, None])
    gb = ainv.T * _mp(w[0][:, None])
    ga, gbb = wengert.grad(lambda a, b: np.sum(w[0] * la.solve(a, b)), argnum=(0, 1))(a, b)
    for got, exact in ((ga, _np(-gb * x.T)), (gbb, _np(gb)[:, 0])):
        assert onp.max(onp.abs(got - exact)) <= 1e-6 * onp.max(onp.abs(exact))


def _mp_gradient(f: Callable, a: Any, h: float = 1e-25) -> Any:
    """Central differences of ``f`` (a function of an mpmath matrix) in 50-digit arithmetic."""
    g = onp.zeros(a.shape)
    for i, j in onp.ndindex(a.shape):
        up, down = _mp(a), _mp(a)
        up[i, j] += h
        down[i, j] -= h
        g[i, j] = float((f(up) - f(down)) / (2 * h))
    return g


def test_eigenvectors_of_eigenvalues_1e6_apart() -> None:
    """Tolerance: eigenvector gradients with eigenvalues delta apart have relative error about
    eps / delta; at delta = 1e-6 they stay within rtol 1e-6 of 50-digit arithmetic."""
    q = onp.linalg.qr(real(3, 3))[0]
    a = (q * [1.0, 1.0 + 1e-6, 2.5]) @ q.T
    w = real(3, 3)

    def projector(m: Any) -> Any:  # sum(w * v0 v0^T) for the smallest eigenvalue: gauge-invariant
        low = mpmath.matrix(3, 3)
        for i, j in onp.ndindex(3, 3):
            low[i, j] = m[max(i, j), min(i, j)]  # the lower triangle, as eigh reads it
        e, v = mpmath.eigsy(low)
        k = min(range(3), key=lambda i: e[i])
        return sum(w[i, j] * v[i, k] * v[j, k] for i, j in onp.ndindex(3, 3))

    exact = _mp_gradient(projector, a)
    got = wengert.grad(lambda a: np.sum(w * (la.eigh(a)[1][:, :1] @ la.eigh(a)[1][:, :1].T)))(a)
    assert onp.max(onp.abs(exact)) > 1e4  # the gradient is large: ~ 1 / delta
    assert onp.max(onp.abs(got - exact)) <= 1e-6 * onp.max(onp.abs(exact))


def test_singular_vectors_of_singular_values_1e6_apart() -> None:
    u, v = onp.linalg.qr(real(3, 3))[0], onp.linalg.qr(real(3, 3))[0]
    a = (u * [2.0, 1.0 + 1e-6, 1.0]) @ v.T
    w = real(3, 3)

    def dyad(m: Any) -> Any:  # sum(w * u1 v1^T) for the middle singular value: sign-invariant
        uu, s, vv = mpmath.svd_r(m)
        k = sorted(range(3), key=lambda i: -s[i])[1]
        return sum(w[i, j] * uu[i, k] * vv[k, j] for i, j in onp.ndindex(3, 3))

    exact = _mp_gradient(dyad, a)
    got = wengert.grad(lambda a: (lambda u, s, vh: np.sum(w * (u[:, 1:2] @ vh[1:2])))(*la.svd(a)))(a)
    assert onp.max(onp.abs(got - exact)) <= 1e-6 * onp.max(onp.abs(exact))


# ============================================================================= where no derivative exists
def test_det_at_a_singular_matrix_is_the_transposed_adjugate() -> None:
    cofactors = onp.array([[onp.linalg.det(onp.delete(onp.delete(singular, i, 0), j, 1)) * (-1) ** (i + j)
                            for j in range(3)] for i in range(3)])
    onp.testing.assert_allclose(wengert.grad(la.det)(singular), cofactors, atol=1e-12)
    rank1 = onp.outer(real(3), real(3))  # adj = 0: every 2x2 minor vanishes
    onp.testing.assert_allclose(wengert.grad(la.det)(rank1), onp.zeros((3, 3)), atol=1e-12)


@onp.errstate(invalid="ignore")
def test_repeated_eigenvalues() -> None:
    """Documented: functions of the eigenvalues alone stay finite; eigenvector derivatives at
    exactly repeated eigenvalues come out inf/nan (as in JAX) with a RuntimeWarning."""
    a = onp.diag([1.0, 1.0, 2.0])
    onp.testing.assert_allclose(wengert.grad(lambda a: np.sum(la.eigh(a)[0] ** 2))(a), 2 * onp.tril(a))
    onp.testing.assert_allclose(wengert.grad(lambda a: np.sum(la.eigvalsh(a)))(a), onp.eye(3))
    with pytest.warns(RuntimeWarning, match="repeated values"):
        g = wengert.grad(lambda a: np.sum(weights(a) * la.eigh(a)[1]))(a)
    assert not onp.all(onp.isfinite(g))
    with pytest.warns(RuntimeWarning, match="repeated values"):
        wengert.jvp(lambda a: la.eigh(a)[1], (a,), (real(3, 3),))


REPEATED_VALUES = {  # functions of the eigen- or singular values alone at diag(1, 1, 2): finite in every mode
    "eigh": lambda a: la.eigh(a)[0], "eigvalsh": lambda a: la.eigvalsh(a), "svd": lambda a: la.svd(a)[1],
    "svdvals": lambda a: la.svdvals(a), "eig": lambda a: np.real(la.eig(a)[0]),
    "eigvals": lambda a: np.real(la.eigvals(a)), "sum of eigh": lambda a: np.sum(la.eigh(a)[0] ** 2),
}


@pytest.mark.parametrize("name", REPEATED_VALUES)
def test_functions_of_repeated_values_alone_are_finite_in_every_mode(name: str) -> None:
    """jacrev pushes its batch of cotangents through the rules as traced values; the vectors'
    part, never reached, must still count as zero (it made every entry NaN), and eigvals must
    pair repeated values with distinct vectors (it raised 'Singular matrix')."""
    a = onp.diag([1.0, 1.0, 2.0])
    f = REPEATED_VALUES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # forward mode's own warning about the vectors
        forward = wengert.jacfwd(f)(a)
    reverse = wengert.jacrev(f)(a)
    assert onp.all(onp.isfinite(reverse)) and onp.allclose(reverse, forward)
    if name == "eigvals":  # d sum(w^2) = 2 a^T, as JAX and PyTorch give
        onp.testing.assert_allclose(wengert.grad(lambda a: np.sum(np.real(la.eigvals(a)) ** 2))(a), 2 * a.T)


def test_cond_of_a_stack_holding_a_singular_matrix_is_numpys() -> None:
    stack = onp.stack([onp.array([[2.0, 1.0], [0.5, 3.0]]), onp.array([[1.0, 2.0], [2.0, 4.0]])])
    for p in (1, -1, onp.inf, -onp.inf, "fro"):
        value, g = wengert.value_and_grad(lambda a: la.cond(a, p)[0])(stack)
        onp.testing.assert_array_equal(wengert.stop_gradient(la.cond(stack * 1.0, p)), onp.linalg.cond(stack, p))
        eps = 1e-6
        fd = [(onp.linalg.cond(stack + eps * e, p)[0] - onp.linalg.cond(stack - eps * e, p)[0]) / (2 * eps)
              for e in onp.eye(8).reshape(8, 2, 2, 2)]
        onp.testing.assert_allclose(g.ravel(), fd, rtol=1e-6, atol=1e-8)


EMPTY = {  # linear algebra of empty arrays: NumPy's value, and an empty gradient
    "norm 0x0 2": (lambda a: la.norm(a, 2), (0, 0)), "norm 3x0 1": (lambda a: la.norm(a, 1), (3, 0)),
    "matrix_norm 0x3 inf": (lambda a: la.matrix_norm(a, ord=onp.inf), (0, 3)),
    "vector_norm inf": (lambda a: la.vector_norm(a, ord=onp.inf), (0,)),
    "eigvals 0x0": (lambda a: np.sum(la.eigvals(a)), (0, 0)),
    "eigvals 2x0x0": (lambda a: np.sum(la.eigvals(a)), (2, 0, 0)),
    "eigh 0x3x3": (lambda a: np.sum(la.eigh(a)[0]), (0, 3, 3)),
    "svd 0x3x2": (lambda a: np.sum(la.svd(a)[1]), (0, 3, 2)),
    "qr 0x3x2": (lambda a: np.sum(la.qr(a)[1]), (0, 3, 2)),
    "scipy lu_factor 0x0": (lambda a: np.sum(sla.lu_factor(a)[0]), (0, 0)),
    "scipy lu_factor 2x0x0": (lambda a: np.sum(sla.lu_factor(a)[0]), (2, 0, 0)),
}


@pytest.mark.parametrize("name", EMPTY)
def test_empty_arrays_give_numpys_value(name: str) -> None:
    f, shape = EMPTY[name]
    a = onp.zeros(shape)
    value, g = wengert.value_and_grad(lambda a: f(a) * 1.0)(a)
    assert value == f(a) and g.shape == shape
    assert wengert.jvp(lambda a: f(a) * 1.0, (a,), (a,))[1] == 0.0


def test_multi_dot_reads_nested_lists_and_refuses_what_numpy_refuses() -> None:
    g = wengert.grad(lambda x: np.sum(la.multi_dot([[[x, 1.0]], [[2.0], [x]], [[1.0, 2.0]]])))(1.7)
    assert g == pytest.approx(9.0)  # the sum is (2x + x)(1 + 2)
    a = onp.arange(9.0).reshape(3, 3)
    with pytest.raises(onp.linalg.LinAlgError, match="3-dimensional array given"):
        wengert.jvp(lambda a: la.multi_dot([a, a[None], a]), (a,), (a,))


def test_slogdet_of_complex64_keeps_its_dtype() -> None:
    a = (real(3, 3) + 1j * real(3, 3) + 3 * onp.eye(3)).astype(onp.complex64)
    seen = {}
    wengert.grad(lambda a: np.real(seen.setdefault("sign", la.slogdet(a)[0])) + la.slogdet(a)[1])(a)
    assert onp.result_type(wengert.stop_gradient(seen["sign"])) == onp.linalg.slogdet(a)[0].dtype == onp.complex64


@onp.errstate(invalid="ignore")
def test_repeated_singular_values() -> None:
    # Orthogonal with exact entries (a 3-4-5 rotation times a permutation): LAPACK returns its
    # singular values as exactly 1. A random orthogonal matrix does so only for some draws.
    q = onp.array([[0.6, -0.8, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 1.0]]) @ onp.eye(3)[[2, 0, 1]]
    onp.testing.assert_allclose(wengert.grad(lambda a: np.sum(la.svd(a)[1]))(q), q, atol=1e-12)  # d nuc = U V^T
    with pytest.warns(RuntimeWarning, match="repeated values"):
        g = wengert.grad(lambda a: np.sum(weights(a) * la.svd(a)[0]))(q)
    assert not onp.all(onp.isfinite(g))


def test_norm_at_zero_has_the_zero_subgradient() -> None:
    for f in (la.norm, lambda x: la.norm(x, "fro"), lambda x: la.norm(x, axis=1)[0]):
        onp.testing.assert_array_equal(wengert.grad(f)(onp.zeros((2, 3))), 0.0)
    onp.testing.assert_array_equal(wengert.grad(lambda x: la.norm(x, 0))(real(4)), 0.0)  # a count


# ============================================================================= errors, as NumPy raises them
def _numpy_error(f: Callable, x: Any) -> tuple:
    with pytest.raises(Exception) as info:
        f(x)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("name, x", [
    ("inv", onp.zeros((3, 3))), ("inv", real(2, 3)), ("det", real(2, 3)), ("slogdet", real(3, 2)),
    ("cholesky", real(2, 3)), ("cholesky", -spd(3, 3)), ("eigh", real(2, 3)), ("eigvalsh", real(3, 2)),
    ("eig", real(2, 3)), ("eigvals", real(2, 3)), ("solve", onp.ones((3, 3))), ("solve", real(2, 3)),
    ("tensorinv", real(2, 3)), ("matrix_power", real(2, 3)), ("cond", onp.empty((0, 0))),
])
def test_errors_are_numpys(name: str, x: Any) -> None:
    """Singular, non-square and indefinite inputs raise NumPy's own error, in both modes."""
    def call(module: Any) -> Callable:
        f = getattr(module.linalg, name)
        return (lambda a: f(a, onp.ones(onp.shape(a)[-2]))) if name == "solve" else f

    kind, message = _numpy_error(call(onp), x)
    first = lambda r: r[0] if isinstance(r, tuple) else r
    for run in (lambda f: wengert.grad(lambda a: np.sum(np.real(first(f(a)))))(x),
                lambda f: wengert.jvp(f, (x,), (onp.ones_like(x),))):
        with pytest.raises(kind, match=re.escape(message)):
            run(call(np))


def test_gradient_errors() -> None:
    with pytest.raises(LinAlgError):  # log|det| = -inf at a singular matrix: no gradient
        wengert.grad(lambda a: la.slogdet(a)[1])(singular)
    assert la.slogdet(singular)[1] == onp.linalg.slogdet(singular)[1] == -onp.inf
    stack = onp.stack([well(3, 3, c=True), singular + 0j])  # the phase of a singular matrix is 0, and stays
    onp.testing.assert_allclose(la.slogdet(stack)[0], onp.linalg.slogdet(stack)[0], rtol=1e-14)
    g = wengert.grad(lambda a: np.sum(np.imag(la.slogdet(a)[0])))(stack)
    assert onp.isfinite(g).all() and not g[1].any() and g[0].any()
    with pytest.raises(TypeError, match="raw"):
        wengert.grad(lambda a: np.sum(la.qr(a, mode="raw")[0]))(real(3, 2))
    with pytest.raises(ValueError, match="square"):
        wengert.grad(lambda a: np.sum(sla.lu_factor(a)[0]))(real(3, 2))
    with pytest.raises(LinAlgError):  # a rank-deficient R has no inverse
        wengert.grad(lambda a: np.sum(la.qr(a)[0]))(onp.ones((3, 2)))
    from wengert.numpy._box import ConversionError
    with pytest.raises(ConversionError):  # plain scipy.linalg does not dispatch to wengert
        wengert.grad(lambda a: np.sum(sl.expm(a)))(real(2, 2))


def test_untraced_calls_are_numpys_own() -> None:
    a = well(3, 3)
    assert la.eigh is not onp.linalg.eigh and la.eigh(spd(3, 3))[0].dtype == onp.float64
    onp.testing.assert_array_equal(la.norm(a, "nuc"), onp.linalg.norm(a, "nuc"))
    onp.testing.assert_array_equal(la.matrix_rank(a), onp.linalg.matrix_rank(a))
    h = spd(3, 3)
    onp.testing.assert_array_equal(sla.cho_factor(h)[0], sl.cho_factor(h)[0])
    assert wengert.grad(lambda a: la.matrix_rank(a) * 1.0 + np.sum(a))(a).sum() == 9.0  # rank: no gradient


# ============================================================================= autograd as an oracle
def _symmetric(x: Any) -> Any:
    return x @ x.T + 3 * onp.eye(x.shape[-1])


ORACLE = [  # (name, wengert function, autograd function, argument)
    ("inv", lambda a: np.sum(weights(a) * la.inv(a)), lambda a: anp.sum(weights(a) * anp.linalg.inv(a)), well(3, 3)),
    ("det", la.det, anp.linalg.det, well(3, 3)),
    ("slogdet", lambda a: la.slogdet(a)[1], lambda a: anp.linalg.slogdet(a)[1], well(3, 3) * [1.0, -1.0, 1.0]),
    ("solve", lambda a: np.sum(la.solve(a, onp.arange(3.0)) ** 2), lambda a: anp.sum(anp.linalg.solve(
        a, onp.arange(3.0)) ** 2), well(3, 3)),
    ("pinv", lambda a: np.sum(weights(a.T) * la.pinv(a)), lambda a: anp.sum(weights(a.T) * anp.linalg.pinv(a)),
     dense(4, 3)),
    ("cholesky", lambda x: np.sum(weights(x) * la.cholesky(_symmetric(x))),
     lambda x: anp.sum(weights(x) * anp.linalg.cholesky(_symmetric(x))), real(3, 3)),
    ("eigh", lambda a: np.sum(weights(a) * la.eigh(a)[1] ** 2) + np.sum(la.eigh(a)[0] ** 3),
     lambda a: anp.sum(weights(a) * anp.linalg.eigh(a)[1] ** 2) + anp.sum(anp.linalg.eigh(a)[0] ** 3), spd(3, 3)),
    ("svd", lambda a: np.sum(la.svd(a, full_matrices=False)[1] ** 3) + np.sum(abs2(la.svd(a, False)[0])),
     lambda a: anp.sum(anp.linalg.svd(a, full_matrices=False)[1] ** 3) + anp.sum(
         weights(onp.zeros((4, 3))) * anp.linalg.svd(a, full_matrices=False)[0] ** 2), dense(4, 3)),
    ("norm-nuc", lambda a: la.norm(a, "nuc"), lambda a: anp.linalg.norm(a, "nuc"), dense(3, 4)),
    ("norm-3", lambda a: np.sum(la.norm(a, 3, axis=0)), lambda a: anp.sum(anp.linalg.norm(a, 3, axis=0)), real(3, 4)),
    ("sqrtm", lambda a: np.sum(weights(a) * sla.sqrtm(a)), lambda a: anp.sum(weights(a) * asl.sqrtm(a)), spd(3, 3)),
    ("solve_triangular", lambda a: np.sum(sla.solve_triangular(a, onp.arange(3.0), trans=1, lower=True) ** 2),
     lambda a: anp.sum(asl.solve_triangular(a, onp.arange(3.0), trans=1, lower=True) ** 2), well(3, 3)),
]


@pytest.mark.parametrize("name, f, g, x", ORACLE, ids=[o[0] for o in ORACLE])
def test_gradient_matches_autograd(name: str, f: Callable, g: Callable, x: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = autograd.grad(g)(x)
    onp.testing.assert_allclose(wengert.grad(f)(x), expected, rtol=1e-9, atol=1e-10)
