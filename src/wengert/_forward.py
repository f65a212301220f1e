"""Forward mode, Jacobians in the cheapest order, Hessians and higher derivatives.

Forward mode runs the function on a :class:`~wengert._core.ForwardTrace`, which pushes
tangents through each operation's JVP rule as it runs. Tangents may carry a leading batch
dimension, so that ``jacfwd`` pushes every direction in one pass. ``jacrev`` batches
cotangents the same way, by pushing a batch of tangents through the (linear) vector-Jacobian
product function: one reverse sweep, whatever the number of outputs. ``hessian`` is
forward-over-reverse. ``linearize`` records the function once and pushes tangents through
the recorded list without evaluating it again.

A rule for a Jacobian product is cheapest in a definite order: forward mode costs one pass
per input direction, reverse mode one per output direction, and a composition of stages with
its narrowest stage in the middle is cheapest in neither (``chain_jacobian``).
"""

from __future__ import annotations

import functools
import math
import weakref
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

import wengert.numpy as wnp

from ._anomaly import watch
from ._api import (
    ArgNum,
    _checked_argnums,
    _finish,
    _inputs,
    _no_leftovers,
    _outputs,
    _Recording,
    _seed,
    _split_aux,
    owner,
    vjp,
    writable,
)
from ._core import Box, ForwardTrace, Joint, Primitive, check_kept, forward_sweep, input_box, strip
from ._custom import USER_PRIMITIVES, give_rules
from ._tree import argument_paths, flatten, paths, same_structure, tree_map, unflatten
from .numpy._jvps import settle
from .numpy._wrap import ConversionError, refusal

__all__ = ["jvp", "make_jvp", "linearize", "jacfwd", "jacrev", "jacobian", "hessian", "hvp",
           "derivative", "chain_jacobian", "ChainJacobian", "defjvp"]


# ----------------------------------------------------------------------------- forward mode
def _tangent_leaves(api: str, primal_leaves: list, tangents: Any, batch: tuple,
                    structure: Any = None) -> list:
    leaves, t_structure = flatten(tangents)
    if len(leaves) != len(primal_leaves) or (structure is not None and not same_structure(t_structure, structure)):
        raise ValueError(f"{api}: the tangents must have the structure of the primals "
                         f"({len(primal_leaves)} array(s)); got {len(leaves)} in another structure.")
    for n, (p, t) in enumerate(zip(primal_leaves, leaves)):
        if (why := refusal(strip(t))) is not None:
            raise TypeError(f"{api}: the tangent of primal {n} is {why}")
        want = batch + np.shape(p)
        if np.shape(strip(t)) != want:
            raise ValueError(f"{api}: the tangent of primal {n} has shape {np.shape(strip(t))}, but "
                             f"{'the batch and the primal give' if batch else 'the primal gives'} {want}.")
        kind = np.result_type(strip(t)).kind
        if kind not in "fc":
            raise TypeError(f"{api}: the tangent of primal {n} has dtype {np.result_type(strip(t))}; "
                            "tangents are floating point or complex.")
        if kind == "c" and np.result_type(strip(p)).kind != "c":
            raise TypeError(f"{api}: the tangent of primal {n} is complex but the primal is real, so "
                            "its imaginary part would be a direction the function cannot move in. Pass "
                            "a real tangent, or make the primal complex (x + 0j).")
    return leaves


def _batch_of(api: str, tangents: list, primals: list, batched: bool) -> tuple:
    if not batched:
        return ()
    sizes = {np.shape(strip(t))[: np.ndim(strip(t)) - np.ndim(p)] for t, p in zip(tangents, primals)}
    if len(sizes) != 1 or len(next(iter(sizes))) != 1:
        raise ValueError(f"{api}: with batched=True every tangent needs the same single leading batch "
                         f"dimension; got batch shapes {sorted(sizes)}.")
    return sizes.pop()


def _run_forward(api: str, fun: Callable, primals: tuple, tangents: tuple, batched: bool,
                 has_aux: bool = False) -> tuple:
    """Evaluate ``fun(*primals)`` on a forward trace; return (output, output tangents, aux)."""
    p_leaves, structure = flatten(tuple(primals))
    p_leaves = _inputs(api, p_leaves, lambda: argument_paths(structure))
    t_leaves, _ = flatten(tuple(tangents))
    batch = _batch_of(api, t_leaves, p_leaves, batched) if len(t_leaves) == len(p_leaves) else ()
    t_leaves = _tangent_leaves(api, p_leaves, tuple(tangents), batch, structure)
    trace = ForwardTrace(batch, settle)
    watch(trace)  # inside detect_anomaly
    boxes = []
    for p, t in zip(p_leaves, t_leaves):
        box = input_box(p, trace)
        box.adj = t
        boxes.append(box)
    try:
        out = fun(*unflatten(structure, boxes))
    finally:
        trace.close()
    _no_leftovers(api, out, trace)
    aux = None
    if has_aux:
        out, aux = _split_aux(api, out)
        aux = _plain(aux, trace)
    leaves, out_structure = _outputs(api, out)
    values = [leaf.value if type(leaf) is Box and leaf.trace is trace else leaf for leaf in leaves]
    own = owner(t_leaves + p_leaves)  # an output tangent may be an input's (the identity's is)
    tans = [own(_output_tangent(leaf, trace, batch)) for leaf in leaves]
    return unflatten(out_structure, values), unflatten(out_structure, tans), aux


def _plain(tree: Any, trace: Any) -> Any:
    return tree_map(lambda v: v.value if type(v) is Box and v.trace is trace else v, tree)


def _output_tangent(leaf: Any, trace: Any, batch: tuple) -> Any:
    """The tangent of an output ``leaf``, of its type where there is no batch (a float for a
    Python float, as grad gives an input's gradient)."""
    own = type(leaf) is Box and leaf.trace is trace
    value, t = strip(leaf.value if own else leaf), leaf.adj if own else None
    if not batch and (t is not None or isinstance(value, (float, complex, np.inexact))):
        return _finish(t, value)  # (a zero of the value's type where the output does not depend on the input)
    if t is not None:
        return t
    dtype = np.result_type(value)
    return np.zeros(batch + np.shape(value), dtype=dtype if dtype.kind in "fc" else float)


def jvp(fun: Callable, primals: Sequence, tangents: Sequence, has_aux: bool = False,
        batched: bool = False) -> tuple:
    """Evaluate ``fun(*primals)`` and push the tangents forward: the Jacobian-vector product.

    Arguments:
        fun: the function.
        primals: a tuple of arguments (nested lists/tuples/dicts of arrays allowed).
        tangents: a tuple with the structure of ``primals``, each tangent shaped like its primal.
        has_aux: whether ``fun`` returns ``(output, auxiliary data)``.
        batched: tangents carry one extra leading dimension of the same size: that many
            directions are pushed at once, and output tangents carry it too.

    Returns:
        ``(output, output_tangent)`` (``(output, output_tangent, aux)`` with ``has_aux``).

    Example:
        >>> import wengert, wengert.numpy as np
        >>> wengert.jvp(np.sin, (0.0,), (2.0,))
        (np.float64(0.0), np.float64(2.0))
    """
    for name, given in (("primals", primals), ("tangents", tangents)):
        if not isinstance(given, (tuple, list)):
            raise TypeError(f"jvp: {name} must be a tuple or list with one entry per argument of the function "
                            f"(jvp(f, (x,), (t,)) for one argument); got {type(given).__name__}.")
    out, tan, aux = _run_forward("jvp", fun, tuple(primals), tuple(tangents), batched, has_aux)
    return (out, tan, aux) if has_aux else (out, tan)


def make_jvp(fun: Callable, argnum: ArgNum = 0) -> Callable:
    """Make a function that, at given arguments, returns a function pushing tangents forward.

    Arguments:
        fun: the function.
        argnum: the position(s) of the argument(s) the tangents belong to.

    Returns:
        ``make_jvp(fun)(*args)`` returns ``push(tangent) -> (value, output_tangent)``; for a
        tuple ``argnum`` the tangent is a tuple. Each call of ``push`` evaluates ``fun`` again
        (use :func:`linearize` to evaluate once).
    """
    return _make_jvp(fun, argnum, "make_jvp")


def _make_jvp(fun: Callable, argnum: ArgNum, api: str) -> Callable:
    """:func:`make_jvp`, with errors naming ``api``."""
    single = isinstance(argnum, (int, np.integer))
    argnums = (argnum,) if single else tuple(argnum)

    def at(*args: Any, **kwargs: Any) -> Callable:
        _inputs_of(args, argnum, api)  # the arguments' checks, naming their positions

        def push(tangent: Any) -> tuple:
            ts = (tangent,) if single else tuple(tangent)
            out, tan, _ = _run_forward(api, _with(args, argnum, fun, kwargs),
                                       tuple(args[k] for k in argnums), ts, False)
            return out, tan
        return push
    return at


def _gradient(fun: Callable, argnum: ArgNum, api: str) -> Callable:
    """``grad(fun, argnum)``, with errors naming ``api`` (hessian, hvp, derivative)."""
    @functools.wraps(fun)
    def gradient(*args: Any, **kwargs: Any) -> Any:
        rec = _Recording(api, fun, args, kwargs, argnum, False)
        return rec.backward([rec.out], [_seed(rec.out, api)], free=True)
    return gradient


def linearize(fun: Callable, *primals: Any) -> tuple:
    """Evaluate ``fun(*primals)`` once and return its linear approximation there.

    Arguments:
        fun: the function.
        *primals: the arguments to linearize at.

    Returns:
        ``(output, f_jvp)``: ``f_jvp(*tangents)`` returns the output tangent, computed by
        pushing the tangents through the recorded operations (``fun`` is not evaluated again).
        ``f_jvp(*tangents, batched=True)`` takes tangents with a leading batch dimension.
    """
    rec = _Recording("linearize", fun, primals, {}, tuple(range(len(primals))), False, kept=True, release=False)
    outs, out_structure = _outputs("linearize", rec.out)
    out = rec._plain(rec.out)

    def f_jvp(*tangents: Any, batched: bool = False) -> Any:
        boxes = [b for _, bs in rec.inputs for b in bs]
        t_leaves, _ = flatten(tuple(tangents))
        values = [b.value for b in boxes]
        batch = _batch_of("linearize", t_leaves, values, batched)
        t_leaves = _tangent_leaves("linearize", values, tuple(tangents), batch)
        return unflatten(out_structure, _push(rec, boxes, t_leaves, outs, batch))
    return out, f_jvp


# ----------------------------------------------------------------------------- Jacobians
# A Jacobian is built as blocks[j][i] (output leaf j by input leaf i, each shaped output shape
# + input shape) and nested: the output's structure outside, the arguments' structure inside.
class _Inputs(NamedTuple):
    """The differentiated arguments: flattened leaves, and how to rebuild them."""

    leaves: list
    structures: list  # one per chosen argument
    counts: list  # leaves per chosen argument
    single: bool  # argnum was an int

    def nest(self, row: list) -> Any:
        if self.single:
            return unflatten(self.structures[0], row)
        starts = np.cumsum([0] + self.counts)
        return tuple(unflatten(s, row[a:b]) for s, a, b in zip(self.structures, starts[:-1], starts[1:]))


def _inputs_of(args: tuple, argnum: ArgNum, api: str) -> _Inputs:
    leaves, structures, counts = [], [], []
    for k in _checked_argnums(api, args, argnum):
        ls, st = flatten(args[k])
        leaves += _inputs(api, ls, lambda: paths(st, str(k)))
        structures.append(st)
        counts.append(len(ls))
    return _Inputs(leaves, structures, counts, isinstance(argnum, (int, np.integer)))


def _identity_blocks(leaves: list) -> list:
    """One batch of unit directions for every element of every leaf: leaf ``i`` gets the
    rows of an identity matrix that belong to it, zeros elsewhere."""
    sizes = [int(np.size(strip(x))) for x in leaves]
    total, start, blocks = sum(sizes), 0, []
    for x, n in zip(leaves, sizes):
        kind = np.result_type(strip(x))
        block = np.zeros((total, n), dtype=kind if kind.kind in "fc" else np.float64)
        block[start: start + n] = np.eye(n, dtype=block.dtype)
        blocks.append(block.reshape((total,) + np.shape(strip(x))))
        start += n
    return blocks


def _typed(block: Any, o: Any, x: Any) -> Any:
    """The block of output ``o`` and input ``x`` in the Jacobian's dtype: the input's, as a
    gradient has it, made complex (of the input's precision) when the output is complex."""
    dtype = np.result_type(strip(x))
    if np.iscomplexobj(strip(o)):
        dtype = np.result_type(dtype, np.complex64)
    return block if np.result_type(strip(block)) == dtype else wnp.astype(block, dtype)


def _from_tangents(tangents: list, outs: list, ins: list) -> list:
    """Blocks from batched output tangents, batch = all input elements. (Built with
    wengert.numpy, so that a Jacobian can itself be differentiated.)"""
    starts = np.cumsum([0] + [int(np.size(strip(x))) for x in ins])
    blocks = []
    for t, o in zip(tangents, outs):
        oshape = np.shape(strip(o))
        row = []
        for x, a, b in zip(ins, starts[:-1], starts[1:]):
            ishape = np.shape(strip(x))
            block = wnp.reshape(t[a:b], ishape + oshape)
            row.append(_typed(wnp.moveaxis(block, tuple(range(len(ishape))),
                                           tuple(range(len(oshape), len(oshape) + len(ishape)))), o, x))
        blocks.append(row)
    return blocks


def _from_cotangents(cotangents: list, outs: list, ins: list, imaginary: bool) -> list:
    """Blocks from batched input cotangents, batch = all output elements, pulled back from the
    cotangent 1; with ``imaginary``, followed by the same from the cotangent i."""
    starts = np.cumsum([0] + [int(np.size(strip(o))) for o in outs])
    n = starts[-1]

    def block(c: Any, o: Any, x: Any, a: int, b: int) -> Any:
        rows = c[a:b]
        if imaginary and np.iscomplexobj(strip(o)) and not np.iscomplexobj(strip(x)):
            rows = rows - 1j * c[n + a: n + b]  # see _jacrev_at
        return writable(_typed(wnp.reshape(rows, np.shape(strip(o)) + np.shape(strip(x))), o, x))
    return [[block(c, o, x, a, b) for c, x in zip(cotangents, ins)] for o, a, b in zip(outs, starts[:-1], starts[1:])]


def _nest(blocks: list, out_structure: Any, inputs: _Inputs) -> Any:
    return unflatten(out_structure, [inputs.nest(row) for row in blocks])


def _with(args: tuple, argnum: ArgNum, fun: Callable, kwargs: dict) -> Callable:
    """``fun`` as a function of the chosen arguments only."""
    argnums = (argnum,) if isinstance(argnum, (int, np.integer)) else tuple(argnum)

    def partial(*chosen: Any) -> Any:
        full = list(args)
        for k, v in zip(argnums, chosen):
            full[k] = v
        return fun(*full, **kwargs)
    return partial


def _jacfwd_at(fun: Callable, args: tuple, kwargs: dict, argnum: ArgNum, api: str, has_aux: bool = False) -> Any:
    inputs = _inputs_of(args, argnum, api)
    blocks = _identity_blocks(inputs.leaves)
    chosen = inputs.nest(inputs.leaves)
    directions = inputs.nest(blocks)
    primals, tangents = ((chosen,), (directions,)) if inputs.single else (chosen, directions)
    # Without input elements there is no batch to push (the Jacobian holds empty structures).
    out, tan, aux = _run_forward(api, _with(args, argnum, fun, kwargs), primals, tangents,
                                 batched=bool(inputs.leaves), has_aux=has_aux)
    outs, out_structure = flatten(out)
    jac = _nest(_from_tangents(flatten(tan)[0], outs, inputs.leaves), out_structure, inputs)
    return (jac, aux) if has_aux else jac


def _jacrev_at(rec: _Recording, inputs: _Inputs, api: str) -> Any:
    outs, out_structure = _outputs(api, rec.out)
    blocks = _identity_blocks(outs)
    # A real input keeps the real part of the cotangent that reaches it: the cotangent 1 on a
    # complex output gives Re(dy/dx), the cotangent i gives -Im(dy/dx). For a real input next
    # to a complex output both are pulled back, in one batch, and the row is vjp(1) - i vjp(i).
    # (A complex input's row is vjp(1), grad's convention; see docs/complex.md.)
    imaginary = (any(np.iscomplexobj(strip(o)) for o in outs)
                 and not all(np.iscomplexobj(strip(x)) for x in inputs.leaves))
    if imaginary:
        blocks = [np.concatenate([b, 1j * b if b.dtype.kind == "c" else 0 * b]) for b in blocks]
    zeros = [np.zeros(np.shape(strip(o)), dtype=b.dtype) for o, b in zip(outs, blocks)]

    def pullback(*cts: Any) -> Any:  # linear in the cotangents
        return rec.backward(outs, list(cts), free=False)

    if any(node.prim in USER_PRIMITIVES for node in rec.nodes):
        # A user's rule may call code that takes plain arrays only, or not be linear in its
        # cotangent (a clipped gradient): it is called on each row's plain cotangents, as grad does.
        rows = [flatten(pullback(*[b[i] for b in blocks]))[0] for i in range(len(blocks[0]) if blocks else 0)]
        cot = [wnp.stack([row[j] for row in rows]) for j in range(len(inputs.leaves))] if rows else []
    else:  # one sweep pushing the whole batch of cotangents forward through the pullback
        _, cot = jvp(pullback, tuple(zeros), tuple(blocks), batched=bool(outs))  # no outputs, no batch
        cot = flatten(cot)[0]
    return _nest(_from_cotangents(cot, outs, inputs.leaves, imaginary), out_structure, inputs)


def _push(rec: _Recording, boxes: list, tangents: list, outs: list, batch: tuple) -> list:
    """Push ``tangents`` of the input ``boxes`` through a recording; the outputs' tangents."""
    with rec.lock:
        try:
            for b, t in zip(boxes, tangents):
                b.adj = t
            check_kept(rec.trace)
            forward_sweep(rec.nodes, batch, settle)
            own = owner(list(tangents) + [b.value for b in boxes])
            return [own(_output_tangent(o, rec.trace, batch)) for o in outs]
        finally:
            for node in rec.nodes:
                node.adj = None


def _jacfwd_from_record(rec: _Recording, inputs: _Inputs, api: str) -> Any:
    """Forward mode over an existing record: identity tangents pushed through it."""
    boxes = [b for _, bs in rec.inputs for b in bs]
    blocks = _identity_blocks([b.value for b in boxes])
    outs, out_structure = _outputs(api, rec.out)
    batch = (blocks[0].shape[0],) if blocks else ()
    tans = _push(rec, boxes, blocks, outs, batch)
    return _nest(_from_tangents(tans, outs, inputs.leaves), out_structure, inputs)


def jacfwd(fun: Callable, argnum: ArgNum = 0, has_aux: bool = False) -> Callable:
    """The Jacobian by forward mode: all input directions pushed in one batched pass.

    Arguments:
        fun: the function (arrays and nested structures in and out).
        argnum: the position(s) of the argument(s) to differentiate with respect to.
        has_aux: whether ``fun`` returns ``(output, auxiliary data)``; the Jacobian function
            then returns ``(jacobian, auxiliary data)``.

    Returns:
        A function returning the Jacobian: for array input and output, an array of shape
        ``output.shape + input.shape``; for structures, the output's structure holding the
        input's structure of such blocks. Cheapest when there are fewer inputs than outputs.
    """
    @functools.wraps(fun)
    def jacobian_fwd(*args: Any, **kwargs: Any) -> Any:
        return _jacfwd_at(fun, args, kwargs, argnum, "jacfwd", has_aux)
    return jacobian_fwd


def jacrev(fun: Callable, argnum: ArgNum = 0, has_aux: bool = False) -> Callable:
    """The Jacobian by reverse mode: one sweep with a batch of cotangents, one per output element.

    Arguments:
        fun: the function (arrays and nested structures in and out).
        argnum: the position(s) of the argument(s) to differentiate with respect to.
        has_aux: as :func:`jacfwd`'s.

    Returns:
        A function returning the Jacobian, laid out as :func:`jacfwd`'s. Cheapest when there
        are fewer outputs than inputs.
    """
    @functools.wraps(fun)
    def jacobian_rev(*args: Any, **kwargs: Any) -> Any:
        rec = _Recording("jacrev", fun, args, kwargs, argnum, has_aux)
        jac = _jacrev_at(rec, _inputs_of(args, argnum, "jacrev"), "jacrev")
        return (jac, rec.aux) if has_aux else jac
    return jacobian_rev


def jacobian(fun: Callable, argnum: ArgNum = 0, mode: str = "auto", return_mode: bool = False,
             has_aux: bool = False) -> Callable:
    """The Jacobian, by forward or reverse mode, whichever needs fewer passes.

    Arguments:
        fun: the function.
        argnum: the position(s) of the argument(s) to differentiate with respect to.
        mode: ``"auto"`` (records ``fun`` once, then pushes tangents forward through the
            record when there are no more inputs than outputs and none of them is complex,
            else pulls cotangents back), ``"forward"`` or ``"reverse"``. For complex inputs
            the two modes agree on holomorphic functions only (docs/complex.md), so ``"auto"``
            gives reverse mode's answer, :func:`grad`'s convention, whatever the sizes.
        return_mode: also return the mode used.
        has_aux: as :func:`jacfwd`'s.

    Returns:
        A function returning the Jacobian (laid out as :func:`jacfwd`'s), or
        ``(jacobian, "forward" | "reverse")`` with ``return_mode`` (``jacobian`` is
        ``(jacobian, auxiliary data)`` with ``has_aux``).
    """
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"jacobian: mode must be 'auto', 'forward' or 'reverse', not {mode!r}.")

    @functools.wraps(fun)
    def jac(*args: Any, **kwargs: Any) -> Any:
        if mode == "forward":
            result, used = _jacfwd_at(fun, args, kwargs, argnum, "jacobian", has_aux), "forward"
        else:
            rec = _Recording("jacobian", fun, args, kwargs, argnum, has_aux, release=False)
            inputs = _inputs_of(args, argnum, "jacobian")
            n_in = sum(int(np.size(x)) for x in inputs.leaves)
            n_out = sum(int(np.size(strip(o))) for o in flatten(rec.out)[0])
            complex_in = any(np.iscomplexobj(strip(x)) for x in inputs.leaves)
            if mode == "auto" and n_in <= n_out and not complex_in:
                result, used = _jacfwd_from_record(rec, inputs, "jacobian"), "forward"
            else:
                result, used = _jacrev_at(rec, inputs, "jacobian"), "reverse"
            if has_aux:
                result = (result, rec.aux)
        return (result, used) if return_mode else result
    return jac


def hessian(fun: Callable, argnum: ArgNum = 0) -> Callable:
    """The Hessian of a scalar function: forward mode over reverse mode, all directions at once.

    Arguments:
        fun: a function returning a real scalar.
        argnum: the position(s) of the argument(s).

    Returns:
        A function returning the Hessian, of shape ``x.shape + x.shape`` for an array ``x``
        (nested as :func:`jacfwd`'s for structures).
    """
    gradient = _gradient(fun, argnum, "hessian")

    @functools.wraps(fun)
    def hess(*args: Any, **kwargs: Any) -> Any:
        return _jacfwd_at(gradient, args, kwargs, argnum, "hessian")
    return hess


def hvp(fun: Callable, argnum: int = 0) -> Callable:
    """Hessian-vector products without forming the Hessian.

    Arguments:
        fun: a function returning a real scalar.
        argnum: the position of the argument.

    Returns:
        ``hvp(fun)(*args, v)``: the product of the Hessian at ``args`` with ``v`` (shaped like
        ``args[argnum]``), by forward mode over reverse mode, at the cost of about two gradients.
    """
    gradient = _gradient(fun, argnum, "hvp")

    def product(*args_and_v: Any, **kwargs: Any) -> Any:
        if not args_and_v:
            raise TypeError("hvp: call the product as hvp(fun)(*args, v), with the vector v last.")
        *args, v = args_and_v
        out = _make_jvp(gradient, argnum, "hvp")(*args, **kwargs)(v)[1]
        leaves, structure = flatten(args[argnum])  # in range: the product was computed
        parts, out_structure = flatten(out)
        if not same_structure(out_structure, structure):
            return out
        # each part of the type of its argument's part (a 0-d array, a Python float), as grad's
        return unflatten(structure, [_finish(o, float(x) if type(x) is int else x) for o, x in zip(parts, leaves)])
    return product


def derivative(fun: Callable, order: int = 1) -> Callable:
    """The ``order``-th derivative of a scalar function of one scalar variable.

    Arguments:
        fun: a function from a float to a float.
        order: how many times to differentiate (0 returns ``fun`` itself).

    Returns:
        A function of a float returning the derivative there.
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
        raise ValueError(f"derivative: order must be a non-negative int, not {order!r}.")
    for _ in range(order):
        fun = _gradient(fun, 0, "derivative")
    return fun


# ----------------------------------------------------------------------------- chains
class ChainJacobian(NamedTuple):
    """What :func:`chain_jacobian` returns."""

    jacobian: np.ndarray  # d(output)/d(input), flattened: (output size, input size)
    order: str  # the bracketing used, e.g. "J3 (J2 J1)"
    multiplications: dict  # scalar multiplications: "forward", "reverse", "chosen"
    stage_jacobians: list  # J1 ... Jk, each (out size, in size)


def chain_jacobian(stages: Sequence[Callable], x: Any) -> ChainJacobian:
    """The Jacobian of ``f = stages[-1] ∘ … ∘ stages[0]`` at ``x``, multiplying the stages'
    Jacobians in the order that needs the fewest scalar multiplications.

    Forward mode multiplies from the input side (``J_k (… (J_2 J_1))``), reverse mode from
    the output side (``((J_k J_{k-1}) …) J_1``); when the narrowest stage is in the middle,
    a hybrid bracketing beats both. The bracketing comes from the matrix-chain dynamic
    program over the stage sizes.

    Arguments:
        stages: functions, each from an array to an array.
        x: the input.

    Returns:
        A :class:`ChainJacobian`: the Jacobian as a (output size, input size) matrix, the
        bracketing, the multiplication counts of the forward, reverse and chosen orders, and
        the stage Jacobians.
    """
    if not stages:
        raise ValueError("chain_jacobian: give at least one stage.")
    if type(x) is Box:
        raise TypeError("chain_jacobian: x is a traced value (chain_jacobian was called inside a function being "
                        "differentiated); its matrices are plain arrays, not differentiable with respect to x. "
                        "Call wengert.jacobian there instead, or chain_jacobian outside.")
    x = np.asarray(x)
    values, jacs = [np.asarray(x, dtype=np.result_type(x, 1.0))], []  # float32 and complex stay so
    for i, stage in enumerate(stages):
        out = stage(values[-1])
        if isinstance(out, (list, tuple, dict)) or out is None:
            what = "None" if out is None else f"a {type(out).__name__}"
            raise TypeError(f"chain_jacobian: stage {i} returned {what}; each stage maps one array to one array.")
        j = jacobian(stage)(values[-1])
        out = np.asarray(strip(out))
        jacs.append(np.reshape(j, (out.size, values[-1].size)))
        values.append(out)
    dims = [v.size for v in values]  # J_i has shape (dims[i], dims[i-1])
    cost, split = _matrix_chain(dims)
    k = len(stages)
    forward = sum(dims[i] * dims[i - 1] * dims[0] for i in range(2, k + 1))
    reverse = sum(dims[k] * dims[i] * dims[i - 1] for i in range(1, k))
    product = _multiply(jacs, split, 1, k)
    return ChainJacobian(product, _bracketing(split, 1, k), {"forward": forward, "reverse": reverse,
                                                             "chosen": cost[1][k]}, jacs)


def _matrix_chain(dims: list) -> tuple[list, list]:
    """cost[i][j]: fewest multiplications for J_j … J_i (J_i is dims[i] × dims[i-1]);
    split[i][j]: where to split that product."""
    k = len(dims) - 1
    cost = [[0] * (k + 1) for _ in range(k + 1)]
    split = [[0] * (k + 1) for _ in range(k + 1)]
    for length in range(2, k + 1):
        for i in range(1, k - length + 2):
            j = i + length - 1
            cost[i][j] = math.inf
            for s in range(i, j):  # (J_j … J_{s+1}) (J_s … J_i)
                c = cost[i][s] + cost[s + 1][j] + dims[j] * dims[s] * dims[i - 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, s
    return cost, split


def _multiply(jacs: list, split: list, i: int, j: int) -> np.ndarray:
    if i == j:
        return jacs[i - 1]
    s = split[i][j]
    return _multiply(jacs, split, s + 1, j) @ _multiply(jacs, split, i, s)


def _bracketing(split: list, i: int, j: int) -> str:
    if i == j:
        return f"J{i}"
    s = split[i][j]
    left, right = _bracketing(split, s + 1, j), _bracketing(split, i, s)
    wrap = lambda e, a, b: e if a == b else f"({e})"  # noqa: E731
    return f"{wrap(left, s + 1, j)} {wrap(right, i, s)}"


# ----------------------------------------------------------------------------- custom rules
class Transposed:
    """JVP rules made from a primitive's VJP rules. A VJP rule is linear in the cotangent, and
    the transpose of that linear map is the JVP; reverse mode over the rule computes it. This
    is what forward mode uses for users' primitives that have VJP rules only (it costs a
    small reverse pass per tangent direction)."""

    __slots__ = ("_prim",)

    def __init__(self, prim: Primitive):
        # Weak: the primitive holds this object as its ``jvps``, and a strong reference back
        # would be a cycle keeping every per-call primitive (checkpoint, custom_vjp) and the
        # arrays its rules close over alive until the cycle collector runs.
        self._prim = weakref.ref(prim)

    @property
    def prim(self) -> Primitive:
        return self._prim()

    def __getitem__(self, k: int) -> Callable:
        def rule(t: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
            vjps = self.prim.vjps
            vjp_k = (lambda g, *rest, **kw: vjps.rule((k,), g, *rest, **kw)[0]) if type(vjps) is Joint else vjps[k]
            lead = np.ndim(strip(t)) - np.ndim(strip(args[k]))
            zero = np.zeros_like(strip(ans), dtype=np.result_type(strip(ans), float))
            fit = self.prim.fit or (lambda c, x: c)
            try:
                _, pull = vjp(lambda g: fit(vjp_k(g, ans, *args, **kwargs), args[k]), zero)
            except ConversionError as e:
                raise ConversionError(
                    f"{self.prim.name}: forward mode (jvp, jacfwd, hessian) has no JVP rule for it, and the "
                    "transpose of its derivative rule cannot be taken: the rule turns a traced cotangent into a "
                    f"plain array (it calls code wengert cannot follow). Give it one with wengert.defjvp.") from e
            if lead == 0:
                return pull(t)[0]
            flat = np.reshape(t, (-1,) + np.shape(strip(args[k])))
            import wengert.numpy as wnp
            pulled = wnp.stack([pull(flat[i])[0] for i in range(np.shape(strip(flat))[0])])
            return wnp.reshape(pulled, np.shape(strip(t))[:lead] + np.shape(strip(ans)))
        return rule

    def __len__(self) -> int:
        return 1 << 30


def defjvp(fun: Callable, *rules: Callable | None) -> None:
    """Give a function made by :func:`wengert.primitive` its JVP rules (forward mode).

    Arguments:
        fun: the function returned by :func:`wengert.primitive`.
        *rules: one per positional argument: ``rule(t, ans, *args, **kwargs)`` returns the
            contribution of that argument's tangent ``t`` to the output's tangent; ``None`` for
            an argument with no derivative. A rule sees one direction at a time, ``t`` shaped
            like its argument (the directions of a Jacobian or a Hessian are pushed through it
            one by one). Without
            ``defjvp``, forward mode transposes the VJP rules instead. A result that is not
            an array shaped like the output's tangent is refused, and so is forward mode through
            an argument given no rule.
    """
    give_rules("defjvp", fun, rules)
