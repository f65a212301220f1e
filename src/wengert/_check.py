"""``gradcheck``: compare reverse and forward mode with central finite differences.

For ``f`` and arguments ``args``, a random cotangent ``u`` turns ``f`` into the real scalar
``s(args) = Σ u·f(args)``, whose gradient is the vector-Jacobian product ``uᵀJ``. Reverse
mode's ``uᵀJ`` and forward mode's directional derivatives (all directions in one batched
pass) are compared with central differences of ``s``: coordinate by coordinate for small
arguments, along random directions for large ones. The differences are taken term by term
of the sum before it is summed, so that a large output that does not depend on the coordinate
moved adds no rounding error. For ``order=2`` the same check is run on
``h(args) = Σ v·∇s(args)`` for a random ``v``, which differentiates the derivative rules
themselves (forward mode then runs over reverse mode).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, NamedTuple

import numpy as np

from ._api import grad
from ._core import strip
from ._tree import argument_paths, flatten, unflatten

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """Reverse mode and finite differences disagree; the message names the worst coordinate."""


def gradcheck(f: Callable, *args: Any, order: int = 2, modes: tuple = ("reverse", "forward"),
              eps: float | None = None, rtol: float | None = None, atol: float | None = None,
              directions: int = 4, max_coordinates: int = 64, seed: int = 0) -> None:
    """Check ``f``'s derivatives at ``args`` against central finite differences.

    Arguments:
        f: a function of arrays (or nested lists/tuples/dicts of them) returning arrays.
        *args: where to check; every floating-point argument is differentiated.
        order: 1 checks the gradient; 2 also checks the gradient of the gradient.
        modes: which of ``"reverse"`` and ``"forward"`` mode to check.
        eps: finite-difference step, relative to the size of the coordinate moved where that
            is above 1 (default: chosen from each argument's dtype).
        rtol, atol: tolerances (default: chosen from each argument's dtype and the outputs':
            1e-5 and 1e-6 in double precision; 2e-3 and a thousandth of the largest derivative
            seen along the argument where either is single or half precision; 1e-3 and that
            where only another argument is).
        directions: how many random directions to check when an argument is large.
        max_coordinates: arguments with at most this many elements in all are checked
            coordinate by coordinate.
        seed: seed of the random cotangents and directions.

    Raises:
        GradcheckError: naming the argument (and the place in it, for nested arguments), the
            coordinate (or direction), both values and the tolerance, for the worst
            disagreement found.
    """
    if isinstance(order, bool) or order not in (1, 2):
        raise ValueError(f"gradcheck: order must be 1 (the gradient) or 2 (also the gradient of "
                         f"the gradient), not {order!r}.")
    modes = _modes(modes)
    for name, value, least in (("directions", directions, 1), ("max_coordinates", max_coordinates, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"gradcheck: {name} must be an int of at least {least}, not {value!r}.")
    for name, value in (("eps", eps), ("rtol", rtol), ("atol", atol)):
        if value is not None and not (isinstance(value, (int, float, np.floating)) and np.isfinite(value)
                                      and (value > 0 if name == "eps" else value >= 0)):
            raise ValueError(f"gradcheck: {name} must be a finite number {'above' if name == 'eps' else 'of at least'}"
                             f" 0 (or None for the default), not {value!r}.")
    rng = np.random.default_rng(seed)
    leaves, structure = flatten(args)
    leaves = [strip(x) for x in leaves]  # called inside a traced function: check at the plain values
    names = [f"argument {place}" for place in argument_paths(structure)]
    wrt = [i for i, x in enumerate(leaves) if np.result_type(strip(x)).kind in "fc"
           and not isinstance(x, bool)]
    if not wrt:  # nothing to differentiate: the check would pass without checking anything
        raise TypeError("gradcheck: no argument is a floating point or complex number or array, so "
                        "there is nothing to check (integer and bool arguments are held fixed). "
                        "Pass the point as floats, for example x.astype(float) or 3.0 instead of 3.")

    def call(*xs: Any) -> Any:
        # Copies, so that a function assigning into its arguments in place changes nothing here.
        full = [copy.copy(leaf) for leaf in leaves]
        for i, x in zip(wrt, xs):
            full[i] = copy.copy(x)
        return f(*unflatten(structure, full))

    out_leaves, _ = flatten(call(*[leaves[i] for i in wrt]))
    cotangents = [_random_like(o, rng) for o in out_leaves]
    # The tolerances of an argument's derivatives suit its dtype and the outputs' (single or
    # half precision in either rounds what they are taken from); one of low precision beside it
    # only rounds the intermediate values, so its own derivatives are held tighter. Where any
    # value is of low precision, a step of 1e-6 would be lost in its rounding.
    point = [leaves[i] for i in wrt]
    rough_out, any_low = any(_low(v) for v in out_leaves), any(_low(v) for v in point + out_leaves)
    precision = [0 if rough_out or _low(x) else 1 if any_low else 2 for x in point]  # low, mixed, double
    rtols = [(2e-3, 1e-3, 1e-5)[p] if rtol is None else rtol for p in precision]
    atols = [(None, None, 1e-6)[p] if atol is None else atol for p in precision]  # None: relative to the sizes seen
    steps = [(1e-3 if any_low else 1e-6) if eps is None else eps] * len(point)
    how = _How([names[i] for i in wrt], steps, modes, rtols, atols, directions, max_coordinates, rng)

    def terms(*xs: Any) -> list:
        outs, _ = flatten(call(*xs))
        return [_real_product(u, o) for u, o in zip(cotangents, outs)]

    _compare(terms, point, "first", how)
    if order >= 2:
        gradient = grad(_total(terms), argnum=tuple(range(len(wrt))))
        probes = [_random_like(x, rng) for x in point]
        _compare(lambda *xs: [_real_product(v, g) for v, g in zip(probes, gradient(*xs))], point, "second", how)


def _modes(modes: Any) -> tuple:
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    unknown = set(modes) - {"reverse", "forward"}
    if unknown or not modes:
        raise ValueError(f"gradcheck: modes must name 'reverse' and/or 'forward', not {modes!r}.")
    return modes


def _low(x: Any) -> bool:
    return np.result_type(np.asarray(strip(x))) in (np.float32, np.complex64, np.float16)


class _How(NamedTuple):
    """How a check is made: each argument's name in errors, finite-difference step and
    tolerances (an absolute one of None: a thousandth of the largest derivative seen along that
    argument, for low precision), and what every argument shares."""

    names: list
    steps: list
    modes: tuple
    rtols: list
    atols: list
    directions: int
    max_coordinates: int
    rng: np.random.Generator


def _random_like(x: Any, rng: np.random.Generator) -> Any:
    x = np.asarray(strip(x))
    r = rng.standard_normal(x.shape)
    if x.dtype.kind == "c":
        r = r + 1j * rng.standard_normal(x.shape)
    return r.astype(x.dtype if x.dtype.kind in "fc" else float)


def _real_product(u: Any, v: Any) -> Any:
    """Re(u v) elementwise: the terms whose sum is the checked scalar."""
    import wengert.numpy as wnp
    return wnp.real(u * v) if np.iscomplexobj(u) else u * v


def _total(terms: Callable) -> Callable:
    """The scalar whose derivatives are checked: the sum of ``terms``."""
    import wengert.numpy as wnp
    return lambda *xs: sum(wnp.sum(t) for t in terms(*xs))


def _compare(terms: Callable, point: list, what: str, how: _How) -> None:
    """Check the derivatives of the sum of ``terms`` (elementwise arrays): the finite differences
    are taken term by term before summing, so that a large term that does not depend on the
    coordinate moved adds no rounding error (it cancels exactly)."""
    s = _total(terms)
    exact = grad(s, argnum=tuple(range(len(point))))(*point) if "reverse" in how.modes else None
    total = sum(np.size(strip(x)) for x in point)
    worst = None
    for k, x in enumerate(point):
        x = np.asarray(strip(x), dtype=np.result_type(strip(x), float))
        if total <= how.max_coordinates:
            probes = [(f"coordinate {idx}", _unit(x.shape, idx), abs(x[idx])) for idx in np.ndindex(x.shape)]
        else:
            size = float(np.max(np.abs(x), initial=0.0))
            probes = [(f"random direction {d}", how.rng.standard_normal(x.shape), size) for d in range(how.directions)]
        probes = [(label + (" (imaginary)" if im else ""), 1j * e if im else e, size)
                  for label, e, size in probes for im in ((False, True) if x.dtype.kind == "c" else (False,))]
        forward = (_forward_derivatives(s, point, k, [p for _, p, _ in probes])
                   if "forward" in how.modes and probes else None)  # an empty argument has no directions
        steps = [how.steps[k] * max(1.0, size) for _, _, size in probes]  # relative to large coordinates,
        numerics = [_central(terms, point, k, x, p, step)                   # where an absolute step is lost
                    for (_, p, _), step in zip(probes, steps)]
        atol = how.atols[k] if how.atols[k] is not None else 1e-3 * max([abs(v) for v in numerics], default=0.0)
        for n, ((label, p, _), step, numeric) in enumerate(zip(probes, steps, numerics)):
            found = []
            if exact is not None:
                # For complex x the gradient is ds/dRe(x) - i ds/dIm(x) (autograd's and JAX's
                # convention), so the derivative along p is Re(sum(p * g)).
                found.append(("reverse", float(np.real(np.sum(p * np.asarray(strip(exact[k])))))))
            if forward is not None:
                found.append(("forward", float(forward[n])))
            for mode, analytic in found:
                if analytic == numeric or (np.isnan(analytic) and np.isnan(numeric)):
                    continue
                err = abs(numeric - analytic)
                bound = atol + how.rtols[k] * float(np.nanmax([abs(numeric), abs(analytic)]))
                if not err <= bound:  # a NaN (or an infinity) on one side only fails too
                    ratio = err / bound if np.isfinite(err / bound) else np.inf
                    if worst is None or ratio > worst[0]:
                        worst = (ratio, how.names[k], label, mode, analytic, numeric, bound, step)
    if worst is not None:
        _, name, label, mode, analytic, numeric, bound, step = worst
        hint = ("" if np.isfinite(numeric) or not np.isfinite(analytic) else
                f" The finite differences are not finite: the step {step:.3g} may leave the function's "
                "domain; pass a smaller eps.")
        raise GradcheckError(f"{what}-order derivative of {name} at {label}: {mode} mode "
                             f"gives {analytic!r}, finite differences {numeric!r} (tolerance {bound:.3g}).{hint}")


def _forward_derivatives(s: Callable, point: list, k: int, directions: list) -> np.ndarray:
    """The derivatives of ``s`` along every direction in argument ``k``, in one batched pass."""
    from ._forward import jvp
    tangents = []
    for i, x in enumerate(point):
        shape = np.shape(strip(x))
        kind = np.result_type(strip(x), float)
        tangents.append(np.stack(directions).astype(kind) if i == k
                        else np.zeros((len(directions),) + shape, dtype=kind))
    _, t = jvp(s, tuple(point), tuple(tangents), batched=True)
    return np.real(np.asarray(strip(t)))


def _unit(shape: tuple, idx: tuple) -> np.ndarray:
    e = np.zeros(shape)
    e[idx] = 1.0
    return e


def _central(terms: Callable, point: list, k: int, x: np.ndarray, direction: np.ndarray, eps: float) -> float:
    def at(t: float) -> list:
        moved = list(point)
        shifted = x + t * direction
        original = strip(point[k])
        if isinstance(original, (float, int, complex)) and np.ndim(shifted) == 0:
            shifted = type(original)(shifted) if not isinstance(original, int) else float(shifted)
        elif hasattr(original, "dtype"):
            shifted = np.asarray(shifted).astype(original.dtype)
        moved[k] = shifted
        return [np.real(np.asarray(strip(t), dtype=np.result_type(strip(t), float))) for t in terms(*moved)]
    return float(sum(np.sum(a - b) for a, b in zip(at(eps), at(-eps)))) / (2 * eps)
