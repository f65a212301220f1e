"""Checkpointing: keep less on the tape, recompute it during the backward sweep.

``checkpoint(f)`` records a call of ``f`` as one entry holding only its inputs; the sweep
evaluates ``f`` again, on a tape of its own, to pull cotangents through it.
``checkpointed_loop`` reverses a loop of ``n`` steps keeping at most ``s`` states, with the
fewest extra steps there can be (Griewank and Walther's binomial checkpointing, "revolve");
``checkpointed_while`` does the same for a loop whose length is known only when it ends.

A checkpointed call is one tape entry whose input is its traced arguments packed into one
vector and whose output is its results packed likewise; recorded pack and unpack operations
connect them to the caller's structures, so a single rule pulls every cotangent back at once.
The function must take what it differentiates through as arguments: one that closes over
values traced by the same computation is refused with an error (its recomputation could not
reach them). Random draws from NumPy's and Python's global generators, and from NumPy
``Generator`` and ``RandomState`` objects among its arguments, in its closure or in the globals
its code names, repeat exactly when a function is evaluated again (a generator reached only
through another function it calls is not found). Replaying sets the global generators' state:
do not draw from them in other threads meanwhile.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import random
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np

import wengert.numpy as wnp

from . import _core
from ._api import _layout, vjp
from ._core import Box, ForwardTrace, Joint, Primitive, Trace, record, recording, strip
from ._forward import Transposed
from ._tree import flatten, same_structure, tree_map, unflatten
from .numpy._wrap import fit

__all__ = ["checkpoint", "checkpoint_sequential", "checkpointed_loop", "checkpointed_while",
           "revolve_steps", "track_memory", "MemoryUsage"]


# ----------------------------------------------------------------------------- randomness
class _Randomness:
    """The state of the random generators a function may draw from, to replay it: NumPy's and
    Python's global ones, and the ``numpy.random.Generator`` and ``RandomState`` objects among
    ``sources`` (see :func:`_random_sources`)."""

    def __init__(self, sources: list, like: "_Randomness | None" = None):
        self.numpy = np.random.get_state()
        self.python = random.getstate()
        self.generators = [(g, _state(g)) for g in sources]
        if like is not None and self.same(like):  # nothing drawn since: share (states are large)
            self.numpy, self.python, self.generators = like.numpy, like.python, like.generators

    def same(self, other: "_Randomness") -> bool:
        """Whether no generator has moved between ``other`` and this state."""
        return (self.python == other.python and _same_state(self.numpy, other.numpy)
                and all(_same_state(a, b) for (_, a), (_, b) in zip(self.generators, other.generators)))

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        saved = (np.random.get_state(), random.getstate(), [_state(g) for g, _ in self.generators])
        np.random.set_state(self.numpy)
        random.setstate(self.python)
        for g, state in self.generators:
            _set_state(g, state)
        try:
            yield
        finally:
            np.random.set_state(saved[0])
            random.setstate(saved[1])
            for (g, _), state in zip(self.generators, saved[2]):
                _set_state(g, state)


_GENERATORS = (np.random.Generator, np.random.RandomState)


def _state(g: Any) -> Any:
    return g.bit_generator.state if isinstance(g, np.random.Generator) else g.get_state()


def _set_state(g: Any, state: Any) -> None:
    if isinstance(g, np.random.Generator):
        g.bit_generator.state = state
    else:
        g.set_state(state)


def _random_sources(fun: Callable, leaves: list) -> list:
    """The random generators ``fun`` may draw from besides the global ones: those among its
    arguments ``leaves`` and those it reads (:func:`wengert._core.read_by`)."""
    unique = {id(g): g for g in list(leaves) + _core.read_by(fun) if isinstance(g, _GENERATORS)}
    return list(unique.values())


def _same_state(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))  # (a NaN is unchanged)
    return a == b


# ----------------------------------------------------------------------------- packing
class _Packing(NamedTuple):
    """How traced leaves go into one vector and come out again."""

    shapes: list
    dtypes: list

    @staticmethod
    def of(values: list) -> "_Packing":
        return _Packing([np.shape(strip(v)) for v in values], [np.result_type(strip(v)) for v in values])

    def pack(self, values: list) -> Any:
        if not values:
            return np.zeros(0)
        return wnp.concatenate([wnp.ravel(v) for v in values]) if len(values) > 1 else wnp.ravel(values[0])

    def unpack(self, vector: Any) -> list:
        out, start = [], 0
        for shape, dtype in zip(self.shapes, self.dtypes):
            n = math.prod(shape)
            piece = wnp.reshape(vector[start: start + n], shape)
            if np.result_type(strip(piece)) != dtype:  # a real value packed beside complex ones
                piece = wnp.astype(wnp.real(piece) if dtype.kind != "c" else piece, dtype)
            out.append(piece)
            start += n
        return out


def _fresh(tree: Any) -> Any:
    """``tree`` with its arrays copied: the function runs on plain values outside the tape, and
    an assignment inside it (``z[0] = 0``) must not write into the recorded arrays, the
    caller's or a kept snapshot."""
    return tree_map(lambda v: v.copy() if isinstance(v, np.ndarray) else wnp.copy(v) if type(v) is Box else v, tree)


def _watched(values: list) -> list:
    """The arrays among ``values``, with fingerprints of their contents (see :func:`_unchanged`)."""
    return [(k, v, _core._fingerprint(v)) for k, v in enumerate(values) if isinstance(v, np.ndarray)]


def _unchanged(api: str, what: str, watched: list) -> None:
    """Refuse arrays among a function's arguments that it changed in place: its evaluations
    during the backward sweep would change them again (and the caller's array with them)."""
    for k, v, f in watched:
        if _core._fingerprint(v) != f:
            raise TypeError(f"{api}: the {what} changed its argument (leaf {k} of its arguments) in place, and "
                            "the backward sweep evaluates it again, which would change it again. Compute a new "
                            "value instead (c = c * 1.1 rather than c *= 1.1), or pass a copy.")


def _top(leaves: list) -> Trace | None:
    boxes = [x.trace for x in leaves if type(x) is Box]
    return max(boxes, key=lambda t: t.id) if boxes else None


def _closed_over_check(api: str, top: Trace, before: int) -> None:
    if before < 0 or len(top.nodes) != before:
        raise TypeError(f"{api}: the function uses values traced by the surrounding computation that are "
                        "not among its arguments (it closes over them), so their gradient could not be "
                        "recomputed. Pass them as arguments instead.")


def _record_segment(api: str, top: Trace, traced: list, pullback: Callable, out_values: list) -> list:
    """Record one entry on ``top`` whose arguments are the values of the ``traced`` boxes and
    whose output is ``out_values`` packed into one vector (a view when there is one).
    ``pullback(g, *values)`` returns the cotangents of all the inputs at once."""
    outputs = _Packing.of(out_values)
    packed_out = wnp.concatenate([wnp.ravel(v) for v in out_values]) if len(out_values) > 1 \
        else wnp.ravel(out_values[0])

    def rule(ks: tuple, g: Any, ans: Any, *values: Any) -> list:
        cotangents = pullback(g, *values)
        return [cotangents[k] for k in ks]

    prim = Primitive(None, api, Joint(rule), fit)
    prim.jvps = Transposed(prim)  # forward mode over a record (linearize, jacobian): transpose the pullback
    node = record(top, prim, tuple(b.value for b in traced), {}, packed_out,
                  tuple((k, b) for k, b in enumerate(traced)))
    return outputs.unpack(node)


def _inexact(v: Any) -> bool:
    v = strip(v)
    if isinstance(v, (bool, int)):
        return False
    return isinstance(v, (float, complex)) or getattr(getattr(v, "dtype", None), "kind", "") in ("f", "c")


def _newer_boxes_check(api: str, top: Trace, leaves: list) -> None:
    """The function runs on ``top``'s values stripped of their boxes, so a result holding a box
    of ``top`` (returned as it is, or it would have been recorded) or of a newer trace means
    the function closed over a traced value."""
    if any(type(x) is Box and x.trace.id >= top.id for x in leaves):
        _closed_over_check(api, top, -1)


# ----------------------------------------------------------------------------- checkpoint
def checkpoint(fun: Callable) -> Callable:
    """Make ``fun`` keep nothing on the tape but its inputs; the backward sweep evaluates it again.

    Arguments:
        fun: a function of arrays (nested structures allowed) returning arrays. What it is
            differentiated through must come in as arguments, not from its closure.

    Returns:
        A function with ``fun``'s signature and results. It works nested, under higher
        derivatives, and replays random draws exactly (see the module docstring).
    """
    @functools.wraps(fun)
    def checkpointed(*args: Any, **kwargs: Any) -> Any:
        leaves, structure = flatten((args, kwargs))
        top = _top(leaves)
        if top is None or isinstance(top, ForwardTrace) or not recording(top):
            return fun(*args, **kwargs)  # nothing on a tape to save
        where = [i for i, x in enumerate(leaves) if type(x) is Box and x.trace is top]
        values = [x.value if i in where else x for i, x in enumerate(leaves)]
        randomness = _Randomness(_random_sources(fun, values))

        def call(traced_values: list) -> list:
            full = list(values)
            for i, v in zip(where, traced_values):
                full[i] = v
            a, kw = unflatten(structure, full)
            return flatten(fun(*a, **kw))

        before = len(top.nodes)
        fresh = [_fresh(values[i]) for i in where]
        watched = _watched([v if i not in where else None for i, v in enumerate(values)])
        out_leaves, out_structure = call(fresh)
        _unchanged("checkpoint", "function", watched)
        changed = [i for i, v in zip(where, fresh) if not _same_state(strip(v), strip(values[i]))]
        if changed:  # NumPy would have written into the caller's array, and into an aliased argument
            raise TypeError(f"checkpoint: the function assigned into its traced argument (leaf {changed[0]} of its "
                            "arguments) in place, which a checkpointed function cannot pass on to the caller. "
                            "Return the new value instead, or copy the argument first (x = x.copy()).")
        _closed_over_check("checkpoint", top, before)
        _newer_boxes_check("checkpoint", top, out_leaves)
        inexact = [k for k, v in enumerate(out_leaves) if _inexact(v)]
        if not inexact:
            return unflatten(out_structure, out_leaves)

        def pullback(g: Any, *traced_values: Any) -> tuple:
            def rerun(*vs: Any) -> Any:
                outs = call(list(vs))[0]
                return _Packing.of([outs[k] for k in inexact]).pack([outs[k] for k in inexact])
            with randomness.replay():
                _, pull = vjp(rerun, *traced_values)
            return pull(g)

        boxed = _record_segment("checkpoint", top, [leaves[i] for i in where], pullback,
                                [out_leaves[k] for k in inexact])
        for k, b in zip(inexact, boxed):
            out_leaves[k] = b
        return unflatten(out_structure, out_leaves)
    return checkpointed


def checkpoint_sequential(stages: Sequence[Callable], segments: int, x: Any,
                          params: Sequence | None = None) -> Any:
    """Run ``x`` through ``stages`` one after another in ``segments`` checkpointed groups.

    Arguments:
        stages: functions ``stage(h)`` (or ``stage(h, p)`` with ``params``).
        segments: how many groups to split the stages into; each keeps only its input on the
            tape and is evaluated again during the backward sweep.
        x: the input of the first stage.
        params: optionally, one parameter structure per stage, passed as its second argument
            (what the stages are differentiated with respect to must come in this way).

    Returns:
        The output of the last stage.
    """
    stages = list(stages)
    segments = _count("checkpoint_sequential", "segments", segments, 1)
    if not segments <= max(len(stages), 1):
        raise ValueError(f"checkpoint_sequential: segments must be between 1 and the number of stages "
                         f"({len(stages)}), not {segments}.")
    if params is not None and len(params) != len(stages):
        raise ValueError(f"checkpoint_sequential: {len(params)} parameter structures for {len(stages)} stages.")
    bounds = np.linspace(0, len(stages), segments + 1).round().astype(int)

    def run(lo: int, hi: int) -> Callable:
        def group(h: Any, ps: Any) -> Any:
            for k in range(lo, hi):
                h = stages[k](h) if params is None else stages[k](h, ps[k - lo])
            return h
        return group

    for lo, hi in zip(bounds[:-1], bounds[1:]):
        x = checkpoint(run(lo, hi))(x, None if params is None else list(params[lo:hi]))
    return x


# ----------------------------------------------------------------------------- binomial reversal
def _beta(s: int, t: int) -> int:
    return math.comb(s + t, s) if t >= 0 else 0


def _repetitions(n: int, s: int) -> int:
    t = 0
    while _beta(s, t) < n:
        t += 1
    return t


def _count(api: str, what: str, value: Any, least: int) -> int:
    """``value`` as an int, if it is a whole number (a float like 3.0 too) of at least ``least``."""
    whole = isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and float(value).is_integer())
    if isinstance(value, (bool, np.bool_)) or not whole or value < least:
        raise ValueError(f"{api}: {what} must be {'a positive' if least else 'a non-negative'} int, not {value!r}.")
    return int(value)


def revolve_steps(n: int, snapshots: int) -> int:
    """The fewest steps a reversal of an ``n``-step loop keeping ``snapshots`` states needs
    (besides the ``n`` recorded ones): ``t·n − β(s+1, t−1)`` with the repetition number ``t``
    such that ``β(s, t−1) < n ≤ β(s, t)``, ``β(s, t) = C(s+t, s)`` (Griewank and Walther)."""
    n, snapshots = (_count("revolve_steps", "n and snapshots", v, 1) for v in (n, snapshots))
    t = _repetitions(n, snapshots)
    return t * n - _beta(snapshots + 1, t - 1)


def _split(n: int, s: int) -> int:
    """Where to put the next snapshot when reversing ``n`` steps with ``s`` of them: any point
    of this range gives the optimum (it is the range of optimal splits of the recursion
    m(n, s) = min_i i + m(i, s) + m(n − i, s − 1))."""
    t = _repetitions(n, s)
    lo = max(1, _beta(s, t - 2), n - _beta(s - 1, t))
    hi = min(n - 1, _beta(s, t - 1), n - _beta(s - 1, t - 1))
    return (lo + hi) // 2


class _Reversal:
    """Runs one loop's schedule. A state travels with the random-generator state it was reached
    with: ``advance`` moves it on without recording, ``tape`` records one step and returns its
    pullback, which adds the cotangents of the parameters ``args[k]`` (``k`` in ``traced``)
    into ``arg_cotangent``. Until the first state is handed out the loop runs live (draws are
    made for the first time); afterwards each recomputation replays the draws it made then."""

    def __init__(self, step: Callable, args: list, traced: list, sources: list):
        self.step, self.args, self.traced, self.sources = step, args, traced, sources
        self.arg_cotangent: list | None = None
        self.live = True
        self.random = True  # until the live pass shows that the steps draw no random numbers
        self.alive = self.peak = 0  # states held at once by the schedule

    def _replaying(self, randomness: _Randomness | None) -> Any:
        return contextlib.nullcontext() if self.live or not self.random else randomness.replay()

    def advance(self, at: tuple, k: int) -> tuple:
        state, randomness = at
        state = _fresh(state) if k else state  # a snapshot is advanced again later: the steps must not write into it
        with self._replaying(randomness):
            for _ in range(k):
                state = self.step(state, self.args)
            return state, (_Randomness(self.sources, like=randomness) if self.random else None)

    def tape(self, at: tuple) -> tuple[Any, Callable]:
        state, randomness = at

        def one_step(st: Any, *traced_args: Any) -> Any:
            full = list(self.args)
            for k, v in zip(self.traced, traced_args):
                full[k] = v
            return self.step(st, full)

        with self._replaying(randomness):
            out, pull = vjp(one_step, state, *[self.args[k] for k in self.traced])

        def pullback(g: Any) -> Any:
            g_state, *g_args = pull(g)
            self.arg_cotangent = g_args if self.arg_cotangent is None else [
                x + y for x, y in zip(self.arg_cotangent, g_args)]
            return g_state
        return out, pullback

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        self.alive += 1
        self.peak = max(self.peak, self.alive)
        try:
            yield
        finally:
            self.alive -= 1

    def schedule(self, at: tuple, n: int, s: int) -> Any:
        """A generator: yields the state after the ``n`` steps from ``at``, receives its
        cotangent, and returns the cotangent of ``at``'s state, keeping at most ``s`` states
        (``at`` included)."""
        with self.holding():
            if n == 1:
                out, pull = self.tape(at)
                self.live = False
                g = yield out
                return pull(g)
            if s == 1:  # no room for another snapshot: walk up from ``at`` every time
                g = None
                for k in range(n - 1, -1, -1):
                    out, pull = self.tape(self.advance(at, k))
                    if k == n - 1:
                        self.live = False
                        g = yield out
                    g = pull(g)
                    del out, pull  # drop that step's recording before recording the next
                return g
            m = _split(n, s)
            middle = self.advance(at, m)
            g = yield from self.schedule(middle, n - m, s - 1)
            del middle
            return _drive(self.schedule(at, m, s), g)


def _drive(gen: Any, g: Any) -> Any:
    """Run a schedule whose output cotangent is already known."""
    next(gen)
    try:
        gen.send(g)
    except StopIteration as done:
        return done.value
    raise RuntimeError("a reversal schedule yielded twice")


def _loop_node(api: str, step: Callable, state: Any, args: tuple, schedule: Callable, run: Callable) -> Any:
    """Record a whole loop as one entry. ``schedule(reversal, start)`` returns a generator whose
    first value is the final state and which, sent its cotangent, returns the initial
    state's; ``start`` is ``(initial state, the random generators' state)``. Where there is no
    tape to keep small (forward mode, no_grad, nothing traced), ``run(step, state)`` just
    runs the loop."""
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"{api}: args is a {type(strip(args)).__name__}; it must be a tuple of the extra arguments "
                        "step takes after the state (args=(p,) for one).")
    state_leaves, state_structure = flatten(state)
    arg_leaves, arg_structure = flatten(tuple(args))
    for leaf in state_leaves:
        if not _inexact(leaf):
            dtype = getattr(strip(leaf), "dtype", None)
            raise TypeError(f"{api}: every leaf of the loop state must be a floating point or complex "
                            f"array; got a {type(strip(leaf)).__name__}" + (f" of dtype {dtype}." if dtype else ".")
                            + " Carry a step counter as a float (i + 1.0), and keep constants (labels, "
                            "flags) in step's args or closure: the sweep runs steps again, so the state is "
                            "all that may change from step to step.")
    top = _top(state_leaves + arg_leaves)

    def plain(leaves: list) -> list:
        return [x.value if type(x) is Box and x.trace is top else x for x in leaves]

    def run_step(st: Any, arg_values: list) -> Any:
        new = step(st, *unflatten(arg_structure, arg_values))
        if "random" not in first:  # the first live pass: every step once (the others repeat them)
            checked(new)
        return new

    def checked(new: Any) -> None:
        leaves, structure = flatten(new)
        if not same_structure(structure, state_structure):
            raise TypeError(f"{api}: the step returned a state laid out otherwise than the one it was given "
                            f"({_layout(new, len(leaves))} instead of {_layout(state, len(state_leaves))}); "
                            "step returns the new state, with the structure of the one it was given.")
        for leaf in map(strip, leaves):
            if not (_inexact(leaf) or type(leaf) is int):  # (an int is promoted, as grad's arguments are)
                what = "None" if leaf is None else f"a {type(leaf).__name__}"
                raise TypeError(f"{api}: the step returned a state holding {what} where the state it was given "
                                "holds a floating point or complex array; step returns the new state.")

    if top is None or isinstance(top, ForwardTrace) or not recording(top):
        return run(lambda st: step(st, *args), state)
    traced = [x for x in state_leaves + arg_leaves if type(x) is Box and x.trace is top]
    state_values, arg_values = plain(state_leaves), plain(arg_leaves)
    traced_state = [k for k, x in enumerate(state_leaves) if any(x is t for t in traced)]
    traced_args = [k for k, x in enumerate(arg_leaves) if any(x is t for t in traced)]
    initial = unflatten(state_structure, state_values)

    sources = _random_sources(step, arg_values)
    first: dict = {}  # the live pass's random generators' state, and whether the steps drew from them

    def start() -> tuple[Any, Any, _Reversal]:
        reversal = _Reversal(run_step, arg_values, traced_args, sources)
        before = len(top.nodes)
        again = bool(first)  # a later sweep replays the live pass's draws from its start
        if again:
            reversal.live, reversal.random = False, first["random"]
        randomness = first.setdefault("randomness", _Randomness(sources))
        watched = _watched(arg_values)
        gen = schedule(reversal, (initial, randomness))
        final = next(gen)  # the live pass, to the last step
        _unchanged(api, "step", watched)
        if not again:  # nothing to replay if nothing was drawn
            reversal.random = first["random"] = not _Randomness(sources).same(randomness)
        _closed_over_check(api, top, before)
        _newer_boxes_check(api, top, flatten(final)[0])
        return gen, final, reversal

    runs = [start()]
    final = plain(flatten(runs[0][1])[0])
    final_packing = _Packing.of(final)  # the state's dtypes may change along the loop

    def pullback(g: Any, *values: Any) -> list:
        gen, _, reversal = runs.pop() if runs else start()  # a second sweep starts afresh
        g_state = unflatten(state_structure, final_packing.unpack(g))
        try:
            gen.send(g_state)
        except StopIteration as done:
            g_initial = flatten(done.value)[0]
        else:
            raise RuntimeError(f"{api}: the reversal schedule did not finish")
        pieces = [g_initial[k] for k in traced_state] + list(reversal.arg_cotangent or [None] * len(traced_args))
        return [wnp.zeros_like(strip(x.value)) if p is None else p for p, x in zip(pieces, traced)]

    return unflatten(state_structure, _record_segment(api, top, traced, pullback, final))


def checkpointed_loop(step: Callable, state: Any, n_steps: int, snapshots: int = 20, args: tuple = ()) -> Any:
    """``n_steps`` applications of ``step``, reversible keeping at most ``snapshots`` states.

    The backward sweep reverses the loop with binomial checkpointing (Griewank and Walther's
    revolve): with ``s`` snapshots and the repetition number ``t`` such that
    ``β(s, t−1) < n ≤ β(s, t)``, ``β(s, t) = C(s+t, s)``, ``step`` runs ``n`` times on a tape
    (one per step reversed) and ``t·n − β(s+1, t−1)`` times without one (:func:`revolve_steps`),
    the fewest possible; at most ``s`` states are alive at once. A full tape would keep all
    ``n`` steps' intermediate values. Random draws made by the steps repeat exactly when a
    step is evaluated again.

    Arguments:
        step: ``step(state, *args) -> state``; the state is an array or a nested structure of
            floating point arrays, the same structure at every step.
        state: the initial state.
        n_steps: how many steps.
        snapshots: how many states may be kept at once (the initial one included).
        args: parameters passed to every step, differentiated too (what ``step`` is
            differentiated with respect to must come in this way, not from its closure).

    Returns:
        The state after ``n_steps`` steps.
    """
    n_steps = _count("checkpointed_loop", "n_steps", n_steps, 0)
    snapshots = _count("checkpointed_loop", "snapshots", snapshots, 1)
    if n_steps == 0:
        return state

    def run(one: Callable, st: Any) -> Any:
        for _ in range(n_steps):
            st = one(st)
        return st

    return _loop_node("checkpointed_loop", step, state, args,
                      lambda reversal, start: reversal.schedule(start, n_steps, snapshots), run)


def checkpointed_while(step: Callable, state: Any, cond: Callable, snapshots: int = 20, args: tuple = (),
                       max_steps: int | None = None) -> Any:
    """``while cond(state): state = step(state, *args)``, reversible keeping at most ``snapshots`` states.

    The length of the loop is known only when it ends, so the forward pass keeps the initial
    state alone and counts the steps (``n``); the backward sweep then reverses with the
    optimal schedule for ``n`` (as :func:`checkpointed_loop`). That costs the ``n`` steps of
    the forward pass on top of ``revolve_steps(n, snapshots)``: at most twice the optimum,
    since the optimum is never below ``n − 1``. Random draws repeat as in
    :func:`checkpointed_loop`.

    Arguments:
        step: ``step(state, *args) -> state``.
        state: the initial state (an array or a nested structure of floating point arrays).
        cond: ``cond(state) -> bool``, evaluated on plain values (it is not differentiated).
        snapshots: how many states may be kept at once (the initial one included).
        args: parameters passed to every step, differentiated too.
        max_steps: stop with an error after this many steps (a guard against endless loops).

    Returns:
        The first state for which ``cond`` is false.
    """
    snapshots = _count("checkpointed_while", "snapshots", snapshots, 1)

    def run(one: Callable, st: Any) -> tuple[Any, int]:
        n = 0
        while _truth(cond(strip_tree(st))):
            if max_steps is not None and n >= max_steps:
                raise RuntimeError(f"checkpointed_while: still running after max_steps={max_steps} steps.")
            st, n = one(st), n + 1
        return st, n

    def schedule(reversal: _Reversal, start: tuple) -> Any:
        with reversal._replaying(start[1]):
            final, n = run(lambda st: reversal.step(st, reversal.args), _fresh(start[0]))
        reversal.live = False
        g = yield final
        return g if n == 0 else _drive(reversal.schedule(start, n, snapshots), g)

    return _loop_node("checkpointed_while", step, state, args, schedule, lambda one, st: run(one, st)[0])


def _truth(c: Any) -> bool:
    """What ``cond`` returned, as one bool."""
    if np.size(c) != 1:
        raise ValueError(f"checkpointed_while: cond returned {np.size(c)} values (shape {np.shape(c)}); it must "
                         "return one bool. Reduce it with .any() or .all().")
    return bool(c)


def strip_tree(tree: Any) -> Any:
    leaves, structure = flatten(tree)
    return unflatten(structure, [strip(x) for x in leaves])


# ----------------------------------------------------------------------------- memory
class MemoryUsage:
    """What :func:`track_memory` reports."""

    def __init__(self) -> None:
        self.recordings = 0  # recordings finished inside the block
        self.tape_entries = 0  # entries of the largest one
        self.tape_bytes = 0  # bytes of the values the largest one saved

    def add(self, nodes: list) -> None:
        seen, total = set(), 0
        for node in nodes:
            for v in (node.value, *node.args):
                v = strip(v)
                while getattr(v, "base", None) is not None:  # a view: count the memory it looks into once
                    v = v.base
                if id(v) not in seen and hasattr(v, "nbytes"):
                    seen.add(id(v))
                    total += int(v.nbytes)
        self.recordings += 1
        if total >= self.tape_bytes:
            self.tape_bytes, self.tape_entries = total, len(nodes)

    def __repr__(self) -> str:
        return (f"MemoryUsage(recordings={self.recordings}, tape_entries={self.tape_entries}, "
                f"tape_bytes={self.tape_bytes})")


@contextlib.contextmanager
def track_memory() -> Iterator[MemoryUsage]:
    """Report how much the tapes recorded inside the block (in this thread) hold.

    Example:
        >>> import numpy as onp, wengert, wengert.numpy as np
        >>> with wengert.track_memory() as usage:
        ...     g = wengert.grad(lambda x: np.sum(np.sin(x) ** 2))(onp.ones(1000))
        >>> usage.tape_bytes > 0
        True

    Yields:
        A :class:`MemoryUsage`: for the largest recording made inside the block, the number of
        entries and the bytes of the distinct arrays it saved (values and arguments), measured
        when its forward pass ended.
    """
    from . import _api
    usage = MemoryUsage()
    blocks = _api._tracking.__dict__.setdefault("open", [])
    blocks.append(usage)
    try:
        yield usage
    finally:
        blocks.remove(usage)
