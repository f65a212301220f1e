"""Checkpointing: checkpoint, checkpoint_sequential, checkpointed_loop (binomial checkpointing),
checkpointed_while, revolve_steps and track_memory.

Gradients with checkpointing are compared with the same computation recorded in full (they
must agree to round-off), with central finite differences and with HIPS autograd. Step counts
are compared with Griewank and Walther's formula, computed here with math.comb, and with a
brute-force minimisation over every schedule.
"""

from __future__ import annotations

import functools
import math
import random
import warnings
import weakref

import autograd
import autograd.numpy as anp
import numpy as onp
import pytest

import wengert
import wengert.numpy as np
from _helpers import close, fd_grad
from wengert import (
    Box,
    checkpoint,
    checkpoint_sequential,
    checkpointed_loop,
    checkpointed_while,
    grad,
    hessian,
    jacfwd,
    jvp,
    no_grad,
    revolve_steps,
    stop_gradient,
    track_memory,
    vjp,
)

RTOL = 1e-10  # checkpointed vs not: the same operations, so agreement to round-off


# ----------------------------------------------------------------------------- helpers
def leaves(tree):
    """The leaves of nested lists/tuples/dicts (dicts in sorted key order)."""
    if isinstance(tree, (list, tuple)):
        return [x for item in tree for x in leaves(item)]
    if isinstance(tree, dict):
        return [x for k in sorted(tree) for x in leaves(tree[k])]
    return [tree]


def tree_close(a, b, rtol=RTOL, atol=1e-13):
    la, lb = leaves(a), leaves(b)
    assert len(la) == len(lb)
    return all(onp.shape(x) == onp.shape(y) and close(x, y, rtol=rtol, atol=atol) for x, y in zip(la, lb))


def expected_extra_steps(n, s):
    """Griewank and Walther: with the repetition number t such that C(s+t-1, s) < n <= C(s+t, s),
    reversing n steps with s snapshots takes t*n - C(s+t, s+1) steps besides the n recorded."""
    t = 0
    while math.comb(s + t, s) < n:
        t += 1
    assert t == 0 or math.comb(s + t - 1, s) < n <= math.comb(s + t, s)
    return t * n - math.comb(s + t, s + 1)


@functools.lru_cache(maxsize=None)
def brute_force_steps(n, s):
    """The fewest unrecorded steps over all schedules, by the recursion of the problem: advance
    i steps to a new snapshot, reverse the last n - i with one snapshot fewer, then the first i."""
    if n == 1:
        return 0
    if s == 1:
        return n * (n - 1) // 2
    return min(i + brute_force_steps(i, s) + brute_force_steps(n - i, s - 1) for i in range(1, n))


# ----------------------------------------------------------------------------- 1. MLP
def dense(h, W, b):
    return np.tanh(h @ W + b)


def affine(h, W, b):
    return h @ W + b


def mlp_forward(params, X, wrap):
    h = X
    for k, (W, b) in enumerate(params):
        layer = dense if k < len(params) - 1 else affine
        h = wrap(k, layer)(h, W, b)
    return h


def mlp_loss(params, X, Y, wrap):
    return np.mean((mlp_forward(params, X, wrap) - Y) ** 2)


def mlp_loss_nested(params, X, Y):
    # a checkpoint around the whole network, whose layers are checkpointed again inside
    out = checkpoint(lambda ps, x: mlp_forward(ps, x, lambda k, f: checkpoint(f)))(params, X)
    return np.mean((out - Y) ** 2)


def mlp_loss_autograd(params, X, Y):
    h = X
    for k, (W, b) in enumerate(params):
        h = anp.dot(h, W) + b
        if k < len(params) - 1:
            h = anp.tanh(h)
    return anp.mean((h - Y) ** 2)


def make_mlp(seed=0, sizes=(4, 16, 16, 8, 1), batch=12):
    rng = onp.random.default_rng(seed)
    params = [(rng.normal(size=(a, b)) / math.sqrt(a), 0.1 * rng.normal(size=b))
              for a, b in zip(sizes[:-1], sizes[1:])]
    X = rng.normal(size=(batch, sizes[0]))
    Y = rng.normal(size=(batch, sizes[-1]))
    return params, X, Y


MLP_WRAPS = [
    ("every layer", lambda k, f: checkpoint(f)),
    ("odd layers", lambda k, f: checkpoint(f) if k % 2 else f),
    ("twice over", lambda k, f: checkpoint(checkpoint(f))),
]


@pytest.mark.parametrize("name,wrap", MLP_WRAPS, ids=[c[0] for c in MLP_WRAPS])
def test_mlp_with_checkpointed_layers_matches_full_tape(name, wrap):
    params, X, Y = make_mlp()
    plain = lambda k, f: f
    value0, (gp0, gx0) = wengert.value_and_grad(mlp_loss, (0, 1))(params, X, Y, plain)
    value1, (gp1, gx1) = wengert.value_and_grad(mlp_loss, (0, 1))(params, X, Y, wrap)
    assert value1 == pytest.approx(value0, rel=1e-14)
    assert tree_close(gp1, gp0) and tree_close(gx1, gx0)
    assert tree_close(gp1, autograd.grad(mlp_loss_autograd)(params, X, Y), rtol=1e-9)


def test_mlp_nested_checkpoints_match_full_tape():
    params, X, Y = make_mlp(seed=1)
    g0 = grad(mlp_loss, (0, 1))(params, X, Y, lambda k, f: f)
    g1 = grad(mlp_loss_nested, (0, 1))(params, X, Y)
    assert tree_close(g1, g0)


def test_mlp_gradient_matches_finite_differences():
    params, X, Y = make_mlp(seed=2, sizes=(3, 5, 1), batch=6)
    wrap = MLP_WRAPS[0][1]
    (W0, b0), rest = params[0], params[1:]
    g = grad(lambda W: mlp_loss([(W, b0)] + rest, X, Y, wrap))(W0)
    assert close(g, fd_grad(lambda W: mlp_loss([(W, b0)] + rest, X, Y, wrap), W0), rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------- 1. a long ODE integration
DT = 1e-3
ODE_STEPS = 10_000


def van_der_pol(x, mu):
    return np.stack([x[1], mu * (1.0 - x[0] ** 2) * x[1] - x[0]])


def euler(x, mu):
    return x + DT * van_der_pol(x, mu)


def rk4(x, mu):
    k1 = van_der_pol(x, mu)
    k2 = van_der_pol(x + 0.5 * DT * k1, mu)
    k3 = van_der_pol(x + 0.5 * DT * k2, mu)
    k4 = van_der_pol(x + DT * k3, mu)
    return x + DT / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def ode_plain(x, mu, step):
    for _ in range(ODE_STEPS):
        x = step(x, mu)
    return np.sum(x ** 2)


def ode_checkpointed(x, mu, step):
    return np.sum(checkpointed_loop(step, x, ODE_STEPS, snapshots=20, args=(mu,)) ** 2)


X_ODE, MU = onp.array([1.0, 0.5]), 0.8


@pytest.fixture(scope="module")
def ode_runs():
    """Both gradients of the 10,000-step Euler integration, each with its tape measured
    (shared by the gradient and the memory tests: they are the slowest computations here)."""
    out = {}
    for name, fun in [("plain", ode_plain), ("checkpointed", ode_checkpointed)]:
        with track_memory() as usage:
            value, g = wengert.value_and_grad(fun, (0, 1))(X_ODE, MU, euler)
        out[name] = (value, g, usage)
    return out


def test_ode_checkpointed_loop_matches_plain_loop(ode_runs):
    v0, (gx0, gmu0), _ = ode_runs["plain"]
    v1, (gx1, gmu1), _ = ode_runs["checkpointed"]
    assert v1 == v0  # the same steps on the same values
    assert close(gx1, gx0, rtol=RTOL, atol=0) and gmu1 == pytest.approx(gmu0, rel=RTOL)
    # and both are right: central differences with plain NumPy values
    eps = 1e-6
    fd_mu = (float(ode_plain(X_ODE, MU + eps, euler)) - float(ode_plain(X_ODE, MU - eps, euler))) / (2 * eps)
    assert gmu1 == pytest.approx(fd_mu, rel=1e-6)


def test_rk4_checkpointed_loop_matches_plain_loop():
    n = 1500  # RK4 costs four times Euler's operations per step; its schedule is the same
    def plain(x, mu):
        for _ in range(n):
            x = rk4(x, mu)
        return np.sum(x ** 2)
    g0 = grad(plain, (0, 1))(X_ODE, MU)
    g1 = grad(lambda x, mu: np.sum(checkpointed_loop(rk4, x, n, 20, args=(mu,)) ** 2), (0, 1))(X_ODE, MU)
    assert tree_close(g1, g0)
    assert g1[0] == pytest.approx(fd_grad(lambda x: plain(x, MU), X_ODE), rel=1e-6)


# ----------------------------------------------------------------------------- 1. a recurrent loop
def rnn_cell(h, W, U, x):
    return np.tanh(W @ h + U @ x)


def rnn_plain(h, W, U, xs):
    for t in range(xs.shape[0]):
        h = rnn_cell(h, W, U, xs[t])
    return np.sum(h ** 2)


def rnn_checkpoint_per_step(h, W, U, xs):
    for t in range(xs.shape[0]):
        h = checkpoint(rnn_cell)(h, W, U, xs[t])
    return np.sum(h ** 2)


def rnn_step(state, W, U, xs):
    # the state carries the time index as a float array: the state must be all floating point
    h, t = state
    return rnn_cell(h, W, U, xs[int(stop_gradient(t))]), t + 1.0


def rnn_loop(snapshots):
    def loss(h, W, U, xs):
        h_final, t = checkpointed_loop(rnn_step, (h, onp.array(0.0)), xs.shape[0], snapshots, args=(W, U, xs))
        assert float(stop_gradient(t)) == xs.shape[0]
        return np.sum(h_final ** 2)
    return loss


def rnn_autograd(h, W, U, xs):
    for t in range(xs.shape[0]):
        h = anp.tanh(anp.dot(W, h) + anp.dot(U, xs[t]))
    return anp.sum(h ** 2)


RNN = [
    ("checkpoint per step", rnn_checkpoint_per_step),
    ("checkpointed_loop s=1", rnn_loop(1)),
    ("checkpointed_loop s=3", rnn_loop(3)),
    ("checkpointed_loop s=20", rnn_loop(20)),
    ("checkpointed_loop s=40", rnn_loop(40)),  # more snapshots than steps
]


@pytest.mark.parametrize("name,loss", RNN, ids=[c[0] for c in RNN])
def test_rnn_matches_full_tape_and_autograd(name, loss):
    rng = onp.random.default_rng(3)
    h0, W, U, xs = rng.normal(size=4), 0.5 * rng.normal(size=(4, 4)), rng.normal(size=(4, 3)), rng.normal(size=(30, 3))
    argnums = (0, 1, 2, 3)
    expected = grad(rnn_plain, argnums)(h0, W, U, xs)
    got = grad(loss, argnums)(h0, W, U, xs)
    assert tree_close(got, expected)
    assert tree_close(got, autograd.grad(rnn_autograd, argnums)(h0, W, U, xs), rtol=1e-9)


# ----------------------------------------------------------------------------- 2. step counting
class CountingStep:
    """``step(state) = 0.999 * state + 0.001``, counting its calls and watching the states.

    At every call it counts the states alive at that moment, through weak references to every
    array it has returned (an array is alive while anything at all refers to it: a snapshot
    in the schedule, a recorded step's tape, a forgotten local). Not counted: the argument of
    the call (the working state, "the one being computed" from), and the loop's final state,
    which is the loop's output and held by the caller's tape as such (it is the output of the
    first recorded call: the reversal starts with the last step). Counted in addition: the
    initial state, which the caller holds and which is one of the ``snapshots`` (the
    docstring: "the initial one included").
    """

    def __init__(self):
        self.calls = self.recorded = 0
        self.live = set()  # ids of the returned arrays still alive
        self.refs = []  # the weak references (keeping their callbacks registered)
        self.final = None  # weak reference to the final state
        self.peak = 0

    def __call__(self, state):
        self.calls += 1
        if isinstance(state, Box):  # a step recorded on a tape
            self.recorded += 1
        arg = stop_gradient(state)
        final = self.final() if self.final is not None else None
        excluded = {id(arg)} | ({id(final)} if final is not None else set())
        alive = 1 + len(self.live - excluded)
        self.peak = max(self.peak, alive)
        out = state * 0.999 + 0.001
        value = stop_gradient(out)
        key = id(value)
        self.live.add(key)
        self.refs.append(weakref.ref(value, lambda _, key=key: self.live.discard(key)))
        if isinstance(state, Box) and self.final is None:
            self.final = weakref.ref(value)
        return out


def count_loop(n, s):
    step = CountingStep()
    x0 = onp.array([1.0, 2.0])
    g = grad(lambda x: np.sum(checkpointed_loop(step, x, n, s)))(x0)
    assert close(g, 0.999 ** n * onp.ones(2), rtol=1e-12)
    return step


SMALL_PAIRS = [(n, s) for n in range(1, 41) for s in (1, 2, 3, 4, 5, 6, 10, 20)]
LARGE_PAIRS = ([(100, s) for s in (1, 2, 3, 4, 5, 6, 10, 20)] + [(1000, s) for s in (2, 3, 4, 5, 6, 10, 20)]
               + [(10_000, s) for s in (6, 10, 20)])


@pytest.mark.parametrize("n,s", SMALL_PAIRS + LARGE_PAIRS)
def test_checkpointed_loop_step_count_is_optimal(n, s):
    step = count_loop(n, s)
    assert step.calls == n + expected_extra_steps(n, s)
    assert step.recorded == n  # each step recorded exactly once, when it is reversed
    assert step.peak <= s  # at most `snapshots` states alive at once


@pytest.mark.parametrize("n,s", [
    (1, 1), (1, 5), (2, 2), (3, 3), (5, 10),
    pytest.param(2, 1),
    pytest.param(10, 1),
    pytest.param(12, 10),
    pytest.param(40, 3),
    pytest.param(100, 10),
])
def test_checkpointed_loop_keeps_at_most_snapshots_states(n, s):
    assert count_loop(n, s).peak <= s


def test_state_counter_sees_every_state_of_a_full_tape():
    # the instrument itself: on a plain loop every state stays on the tape until the sweep
    step = CountingStep()

    def loss(x):
        for _ in range(50):
            x = step(x)
        return np.sum(x)

    assert close(grad(loss)(onp.array([1.0, 2.0])), 0.999 ** 50 * onp.ones(2), rtol=1e-12)
    assert step.calls == step.recorded == 50
    # at the last call: the initial state and the 49 outputs so far, less the argument and the
    # first output (which the counter takes for the final state: its first recorded call)
    assert step.peak >= 48
    # while the checkpointed loop of 1000 steps holds a handful
    assert count_loop(1000, 3).peak <= 3 + 2


# ----------------------------------------------------------------------------- 3. revolve_steps
@pytest.mark.parametrize("s", [1, 2, 3, 4, 5, 6])
def test_revolve_steps_matches_brute_force(s):
    for n in range(1, 61):
        assert revolve_steps(n, s) == brute_force_steps(n, s), (n, s)


@pytest.mark.parametrize("n,s", [(1, 1), (2, 1), (7, 1), (10, 2), (55, 2), (56, 2), (100, 20), (10_000, 20),
                                 (10**6, 50), (21, 5), (252, 5), (253, 5)])
def test_revolve_steps_matches_closed_form(n, s):
    assert revolve_steps(n, s) == expected_extra_steps(n, s)


@pytest.mark.parametrize("n,s", [(2, 1), (3, 1), (10, 2), (20, 3), (100, 4)])
def test_revolve_steps_reference_values(n, s):
    # independently: with one snapshot every step is reached again from the start
    if s == 1:
        assert revolve_steps(n, s) == n * (n - 1) // 2
    else:
        assert revolve_steps(n, s) < n * (n - 1) // 2
    # with at least n snapshots (no more needed), one pass forward: n - 1 unrecorded steps
    assert revolve_steps(n, n) == n - 1


@pytest.mark.parametrize("n,s", [(0, 1), (-3, 2), (5, 0), (5, -1), (0, 0), (1.5, 2), (4, 2.5), (None, 2), ("3", 2)])
def test_revolve_steps_rejects_bad_arguments(n, s):
    with pytest.raises((ValueError, TypeError), match="revolve_steps: n and snapshots must be"):
        revolve_steps(n, s)


# ----------------------------------------------------------------------------- 4. checkpointed_while
def drift(x, a):
    return x + 0.05 * np.stack([np.cos(a * x[1]) + 1.5, np.sin(x[0])])


def until_one(x):
    return x[0] < 1.0


def while_plain(x, a):
    while until_one(stop_gradient(x)):
        x = drift(x, a)
    return np.sum(x ** 2)


def while_checkpointed(x, a, s=3):
    return np.sum(checkpointed_while(drift, x, until_one, snapshots=s, args=(a,)) ** 2)


@pytest.mark.parametrize("x0,a", [(onp.array([0.0, 0.3]), 0.7), (onp.array([-1.3, 0.1]), 1.9),
                                  (onp.array([0.93, -0.4]), 0.2)])
@pytest.mark.parametrize("s", [1, 2, 5, 20])
def test_checkpointed_while_matches_plain_while(x0, a, s):
    g0 = grad(while_plain, (0, 1))(x0, a)
    g1 = grad(lambda x, a: while_checkpointed(x, a, s), (0, 1))(x0, a)
    assert tree_close(g1, g0)
    # the point is one where the number of steps does not change nearby, so differences apply
    assert close(g1[0], fd_grad(lambda x: while_plain(x, a), x0), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("n,s", [(1, 1), (2, 1), (7, 2), (25, 3), (60, 4), (200, 6)])
def test_checkpointed_while_step_count(n, s):
    calls = {"all": 0, "recorded": 0}

    def step(x):
        calls["all"] += 1
        calls["recorded"] += isinstance(x, Box)
        return x + 1.0

    x0 = onp.array([0.0, 5.0])
    g = grad(lambda x: np.sum(checkpointed_while(step, x, lambda x: x[0] < n - 0.5, s)))(x0)
    assert close(g, [1.0, 1.0])
    # n counting steps in the forward pass, then the optimal reversal of n steps
    assert calls["all"] == n + n + expected_extra_steps(n, s)
    assert calls["recorded"] == n


def test_checkpointed_while_max_steps():
    with pytest.raises(RuntimeError, match="max_steps"):
        checkpointed_while(lambda x: x + 1.0, onp.zeros(2), lambda x: True, max_steps=50)
    with pytest.raises(RuntimeError, match="max_steps"):
        grad(lambda x: np.sum(checkpointed_while(lambda x: x + 1.0, x, lambda x: x[0] < 100, max_steps=10)))(
            onp.zeros(2))
    # exactly max_steps steps are allowed
    out = checkpointed_while(lambda x: x + 1.0, onp.zeros(2), lambda x: x[0] < 10, max_steps=10)
    assert close(out, [10.0, 10.0])


def test_checkpointed_while_zero_steps_is_the_identity():
    x0 = onp.array([2.0, -1.0, 0.5])
    calls = []

    def step(x, a):
        calls.append(1)
        return x * a

    never = lambda x: False
    assert close(checkpointed_while(step, x0, never, args=(3.0,)), x0)
    out, pull = vjp(lambda x, a: checkpointed_while(step, x, never, args=(a,)), x0, 3.0)
    assert close(out, x0)
    ct = onp.array([1.0, -2.0, 4.0])
    gx, ga = pull(ct)
    assert close(gx, ct) and ga == 0.0
    assert calls == []
    assert close(wengert.jacrev(lambda x: checkpointed_while(step, x, never, args=(3.0,)))(x0), onp.eye(3))


def test_checkpointed_while_with_pytree_state():
    def step(state, a):
        return {"x": state["x"] + 0.1 * a * state["v"], "v": state["v"] - 0.1 * state["x"]}

    def cond(state):
        return state["x"][0] < 1.0

    def plain(state, a):
        while cond(stop_gradient(state)):
            state = step(state, a)
        return np.sum(state["x"] * state["v"])

    state = {"x": onp.array([0.0, 0.2]), "v": onp.array([1.0, 0.3])}
    g0 = grad(plain, (0, 1))(state, 1.2)
    g1 = grad(lambda st, a: plain(checkpointed_while(step, st, cond, 2, args=(a,)), a), (0, 1))(state, 1.2)
    assert tree_close(g1, g0)


# ----------------------------------------------------------------------------- 5. checkpoint
X3 = onp.array([0.3, -0.7, 1.1])


def tree_fun(d, pair, scale=1.0):
    a, b = pair
    return {"u": np.sin(d["p"]) * a, "w": (d["q"] * b * scale, np.sum(d["p"] * d["q"]))}


def tree_loss(fun):
    def loss(d, pair, scale):
        out = fun(d, pair, scale=scale)
        return np.sum(out["u"] ** 2) + np.sum(out["w"][0]) * out["w"][1]
    return loss


def test_checkpoint_pytrees_and_keyword_arguments():
    d = {"p": X3, "q": onp.array([2.0, -1.0, 0.5])}
    pair = (1.5, onp.array([0.1, 0.2, 0.3]))
    argnums = (0, 1, 2)
    g0 = grad(tree_loss(tree_fun), argnums)(d, pair, 0.7)
    g1 = grad(tree_loss(checkpoint(tree_fun)), argnums)(d, pair, 0.7)
    assert tree_close(g1, g0)
    assert set(g1[0]) == {"p", "q"} and isinstance(g1[1], tuple)
    # the output structure is the function's
    out = checkpoint(tree_fun)(d, pair, scale=0.7)
    assert set(out) == {"u", "w"} and isinstance(out["w"], tuple)


def test_checkpointed_chunks_keep_the_tape_short():
    def chunk(x):
        for _ in range(20):
            x = np.sin(x) * 1.01
        return x

    def full(x):
        for _ in range(10):
            x = chunk(x)
        return np.sum(x)

    def chunked(x):
        for _ in range(10):
            x = checkpoint(chunk)(x)
        return np.sum(x)

    with track_memory() as usage_full:
        g0 = grad(full)(X3)
    with track_memory() as usage_ck:
        g1 = grad(chunked)(X3)
    assert close(g1, g0, rtol=RTOL)
    # the largest recording is either the outer tape (the chunks' inputs) or one chunk's
    # recomputation, never all 400 operations at once
    assert usage_full.tape_entries >= 400
    assert usage_ck.tape_entries * 4 < usage_full.tape_entries
    assert usage_ck.tape_bytes * 4 < usage_full.tape_bytes


NON_FLOAT_OUTPUTS = [
    ("int array", onp.arange(3)),
    ("int", 7),
    ("bool", True),
    ("bool array", onp.array([True, False])),
    pytest.param("None", None),
    pytest.param("str", "label"),
    pytest.param("str naming a float dtype", "f"),
    pytest.param("object", Ellipsis),
]


@pytest.mark.parametrize("name,extra", NON_FLOAT_OUTPUTS)
def test_checkpoint_non_float_outputs_pass_through(name, extra):
    def f(x):
        return np.sin(x), extra

    seen = []

    def loss(x):
        y, e = checkpoint(f)(x)
        seen.append(e)
        return np.sum(y)

    assert close(grad(loss)(X3), onp.cos(X3))
    (e,) = seen
    assert type(e) is type(extra)
    assert onp.array_equal(e, extra) if isinstance(extra, onp.ndarray) else e == extra


def test_checkpoint_only_integer_outputs():
    # nothing differentiable comes out: the result is passed through, the gradient is zero
    f = checkpoint(lambda x: (x > 0).astype(int))
    assert grad(lambda x: np.sum(x) * 0.0 + float(onp.sum(f(x))))(X3) == pytest.approx([0.0, 0.0, 0.0])
    assert onp.array_equal(f(X3), [1, 0, 1])


def test_checkpoint_output_independent_of_input_and_input_passed_through():
    const = onp.array([1.0, 2.0, 3.0])
    f = checkpoint(lambda x, y: (const, x, x * y))
    g = grad(lambda x, y: (lambda c, a, b: np.sum(c * a) + np.sum(b ** 2))(*f(x, y)), (0, 1))(X3, 2.0)
    assert close(g[0], const + 8 * X3) and g[1] == pytest.approx(4 * onp.sum(X3 ** 2))


def f_smooth(x, y):
    return np.sin(x * y) * np.exp(-x ** 2) + x ** 3 * y


@pytest.mark.parametrize("wrap", [checkpoint, lambda f: checkpoint(checkpoint(f)),
                                  lambda f: checkpoint(lambda x, y: checkpoint(f)(x, y) * 1.0)],
                         ids=["once", "twice", "nested"])
def test_checkpoint_higher_derivatives(wrap):
    cf = wrap(f_smooth)
    # grad of grad, in each variable and mixed
    for argnum in (0, 1):
        for inner in (0, 1):
            d2 = grad(grad(cf, inner), argnum)(0.7, 1.3)
            expected = grad(grad(f_smooth, inner), argnum)(0.7, 1.3)
            assert d2 == pytest.approx(expected, rel=1e-12)
    # third derivative
    assert grad(grad(grad(cf)))(0.7, 1.3) == pytest.approx(grad(grad(grad(f_smooth)))(0.7, 1.3), rel=1e-12)
    # Hessian (forward over reverse) of an array function
    h = lambda x: np.sum(cf(x, x[::-1]))
    h0 = lambda x: np.sum(f_smooth(x, x[::-1]))
    assert close(hessian(h)(X3), hessian(h0)(X3), rtol=RTOL, atol=1e-13)
    ah = autograd.hessian(lambda x: anp.sum(anp.sin(x * x[::-1]) * anp.exp(-x ** 2) + x ** 3 * x[::-1]))(X3)
    assert close(hessian(h)(X3), ah, rtol=1e-9, atol=1e-12)


def test_checkpoint_inside_inner_gradient_with_outer_arguments():
    # arguments traced by two nested gradients at once: d/dp d/dx sin(x p)
    def f(p, ck):
        g = ck(lambda y, q: np.sin(y * q))
        return grad(lambda x: g(x, p))(1.3)
    expected = math.cos(1.3 * 0.7) - 1.3 * 0.7 * math.sin(1.3 * 0.7)
    assert grad(lambda p: f(p, checkpoint))(0.7) == pytest.approx(expected, rel=1e-12)
    assert grad(lambda p: f(p, lambda h: h))(0.7) == pytest.approx(expected, rel=1e-12)


def test_checkpoint_vjp_pulled_twice():
    f = lambda x: np.tanh(x) * x
    out0, pull0 = vjp(f, X3)
    out1, pull1 = vjp(checkpoint(f), X3)
    ct = onp.array([1.0, 2.0, -1.0])
    assert close(out1, out0, rtol=0)
    assert close(pull1(ct)[0], pull0(ct)[0], rtol=RTOL) and close(pull1(ct)[0], pull0(ct)[0], rtol=RTOL)


# ------------------------------------------------- random draws replay
def draws_everywhere(x, rng):
    noise = np.random.normal(size=x.shape)  # NumPy's global generator
    u = random.random()  # Python's
    v = rng.normal(size=x.shape)  # a Generator passed in
    return np.sum(np.sin(x * noise) * v) * (1.0 + u)


def with_later_draws(fun):
    def loss(x, rng):
        value = fun(x, rng)
        return value + 0.0 * np.random.normal() + 0.0 * random.random()  # draws after the call too
    return loss


def run_seeded(loss, x):
    onp.random.seed(11)
    random.seed(12)
    rng = onp.random.default_rng(13)
    value, g = wengert.value_and_grad(loss)(x, rng)
    return value, g, onp.random.get_state(), random.getstate(), rng.bit_generator.state


@pytest.mark.parametrize("wrap", [checkpoint, lambda f: checkpoint(checkpoint(f))], ids=["once", "twice"])
def test_checkpoint_replays_random_draws(wrap):
    v0, g0, np0, py0, gen0 = run_seeded(with_later_draws(draws_everywhere), X3)
    v1, g1, np1, py1, gen1 = run_seeded(with_later_draws(wrap(draws_everywhere)), X3)
    assert v1 == v0
    assert close(g1, g0, rtol=RTOL)  # the recomputation saw the same draws
    # and afterwards every generator is where it is without checkpointing
    assert np0[0] == np1[0] and onp.array_equal(np0[1], np1[1]) and np0[2:] == np1[2:]
    assert py0 == py1
    assert gen0 == gen1


def test_checkpoint_random_draws_under_hessian():
    def f(x, rng):
        return np.sum(np.sin(x * np.random.normal(size=3)) * rng.normal(size=3))

    def run(fun):
        onp.random.seed(0)
        return hessian(lambda x: fun(x, onp.random.default_rng(1)))(X3)

    assert close(run(checkpoint(f)), run(f), rtol=RTOL, atol=1e-14)


def test_checkpoint_sequential_replays_dropout():
    def dropout_stage(h):
        mask = (np.random.uniform(size=h.shape) > 0.3) / 0.7
        return np.tanh(h) * mask

    stages = [dropout_stage] * 4

    def plain(x):
        for stage in stages:
            x = stage(x)
        return np.sum(x ** 2)

    x = onp.linspace(-1, 1, 8)
    onp.random.seed(5)
    g0 = grad(plain)(x)
    onp.random.seed(5)
    g1 = grad(lambda x: np.sum(checkpoint_sequential(stages, 2, x) ** 2))(x)
    assert close(g1, g0, rtol=RTOL)


def test_checkpointed_loop_replays_random_draws():
    def sde(x, a):  # Euler-Maruyama
        return x - 0.01 * a * x + 0.1 * np.random.normal(size=x.shape)

    def plain(x, a):
        for _ in range(30):
            x = sde(x, a)
        return np.sum(x ** 2)

    def ck(x, a):
        return np.sum(checkpointed_loop(sde, x, 30, 3, args=(a,)) ** 2)

    onp.random.seed(0)
    g0 = grad(plain, (0, 1))(X3, 0.5)
    state0 = onp.random.get_state()[1].copy()
    onp.random.seed(0)
    g1 = grad(ck, (0, 1))(X3, 0.5)
    state1 = onp.random.get_state()[1].copy()
    assert tree_close(g1, g0) and onp.array_equal(state0, state1)


# ------------------------------------------------- functions that assign into their arguments
def _halve_first(s):
    s[0] = s[0] * 0.5  # in place, as NumPy code may do
    return np.sin(s)


def _plain_loop(step, s, n):
    for _ in range(n):
        s = step(s)
    return s


IN_PLACE = [  # (id, checkpointed, the same without checkpointing): a step's state is replaced by its result
    (f"checkpointed_loop-{n}-{k}", lambda x, n=n, k=k: checkpointed_loop(_halve_first, x, n, k),
     lambda x, n=n: _plain_loop(_halve_first, x, n)) for n, k in [(1, 1), (3, 2), (5, 1), (7, 3)]]


@pytest.mark.parametrize("name,call", [
    ("one-argument", lambda x: checkpoint(_halve_first)(x)),
    ("nested", lambda x: checkpoint(lambda z: checkpoint(_halve_first)(z * 1.0))(x)),
    ("aliased", lambda x: (lambda y: checkpoint(lambda a, b: _halve_first(a) * b)(y, y))(x * 1.0)),
])
def test_checkpointed_function_assigning_into_its_argument_is_refused(name, call):
    """Without checkpoint NumPy would write into the caller's array (and into the other name of
    an aliased one); the checkpointed function runs on copies and cannot pass that on."""
    x = onp.array([1.0, 2.0, -0.5])
    with pytest.raises(TypeError, match="checkpoint: the function assigned into its traced argument"):
        grad(lambda x: np.sum(call(x)))(x)
    onp.testing.assert_array_equal(x, [1.0, 2.0, -0.5])


@pytest.mark.parametrize("name,ck,plain", IN_PLACE, ids=[c[0] for c in IN_PLACE])
def test_assignment_inside_a_checkpointed_step_writes_into_nothing_recorded(name, ck, plain):
    x = onp.array([1.0, 2.0, -0.5])
    kept = x.copy()
    loss = lambda f: lambda x: np.sum(x ** 2) + np.sum(f(x))  # x ** 2 saves x: it must survive
    assert close(grad(loss(ck))(x), grad(loss(plain))(x), rtol=1e-14)
    assert close(hessian(loss(ck))(x), hessian(loss(plain))(x), rtol=1e-12)
    onp.testing.assert_array_equal(x, kept)  # the caller's array was not written to


def test_assignment_inside_a_checkpointed_while_step_writes_into_nothing_recorded():
    def step(s):
        s[0] = s[0] * 0.5
        return s + 0.1

    def plain(x):
        while float(wengert.stop_gradient(x)[1]) < 3.0:
            x = step(x)
        return x
    x = onp.array([1.0, 2.0])
    loss = lambda f: lambda x: np.sum(x ** 2) + np.sum(f(x))
    assert close(grad(loss(lambda x: checkpointed_while(step, x, lambda s: s[1] < 3.0, 2)))(x), grad(loss(plain))(x))
    onp.testing.assert_array_equal(x, [1.0, 2.0])


# ------------------------------------------------- closures, no_grad, forward mode
CLOSURES = [
    ("checkpoint", lambda p: np.sum(checkpoint(lambda x: x * p)(p * 2.0))),
    ("checkpoint, used with an argument", lambda p: np.sum(checkpoint(lambda x: np.sin(x) + p)(onp.ones(2) * p))),
    ("checkpointed_loop", lambda p: np.sum(checkpointed_loop(lambda x: x * p, p * onp.ones(2), 3))),
    ("checkpointed_loop through args", lambda p: np.sum(checkpointed_loop(lambda x, a: x * a * p, onp.ones(2), 3,
                                                                          args=(p,)))),
    ("checkpointed_while", lambda p: np.sum(checkpointed_while(lambda x: x * p, p * onp.ones(2),
                                                               lambda x: x[0] < 10.0))),
    ("checkpoint_sequential", lambda p: np.sum(checkpoint_sequential([np.sin, lambda h: h * p], 2, p * onp.ones(2)))),
    # a closed-over value handed back as it is: no operation on it is recorded
    ("checkpoint, returned as it is", lambda p: (lambda w: np.sum(checkpoint(lambda x: (x * 2.0, w))(p)[1]))(p * 3.0)),
    ("checkpointed_loop, returned as it is", lambda p: (lambda w: np.sum(checkpointed_loop(
        lambda s: (s[0] * 0.5, w), (p, p), 3, snapshots=2)[1] ** 2))(p * 3.0)),
    ("checkpointed_while, returned as it is", lambda p: (lambda w: np.sum(checkpointed_while(
        lambda s: (s[0] + 1.0, w), (p, p), lambda s: s[0] < 4.0)[1]))(p * 3.0)),
]


@pytest.mark.parametrize("name,f", CLOSURES, ids=[c[0] for c in CLOSURES])
def test_closing_over_a_traced_value_is_refused(name, f):
    with pytest.raises(TypeError, match="Pass them as arguments"):
        grad(f)(1.5)


def test_closing_over_a_traced_value_without_traced_arguments_is_fine():
    # nothing traced comes in as an argument: nothing is saved, the call is simply recorded
    g = grad(lambda p: np.sum(checkpoint(lambda x: x * p ** 2)(onp.array([1.0, 2.0]))))(1.5)
    assert g == pytest.approx(9.0)


@pytest.mark.parametrize("api", ["checkpoint", "checkpointed_loop"])
def test_closing_over_a_value_of_an_inner_gradient_is_refused_or_right(api):
    p0 = X3

    def outer(p, ck):
        def inner(x):  # p is traced by the outer gradient only; x by this one
            step = lambda s: s + 0.1 * np.sin(s * x)
            if not ck:
                return np.sum(step(step(p)))
            if api == "checkpoint":
                return np.sum(checkpoint(lambda s: step(step(s)))(p))
            return np.sum(checkpointed_loop(step, p, 2, 1))
        return grad(inner)(1.5)

    expected = grad(lambda p: outer(p, False))(p0)
    assert onp.all(onp.abs(expected) > 1e-3)
    try:
        got = grad(lambda p: outer(p, True))(p0)
    except TypeError as e:  # refusing it is also right
        assert "argument" in str(e)
    else:
        assert close(got, expected, rtol=1e-10)


def test_checkpoint_under_no_grad_just_runs():
    calls = []

    def f(x):
        calls.append(type(x))
        return np.sin(x) * 2.0

    with no_grad():
        assert close(checkpoint(f)(X3), 2 * onp.sin(X3), rtol=0)

    def loss(x):
        with no_grad():
            y = checkpoint(f)(x)  # not recorded: a constant for the gradient
        assert not isinstance(y, Box)
        return np.sum(x * y)

    assert close(grad(loss)(X3), 2 * onp.sin(X3), rtol=0)
    assert len(calls) == 2  # the function ran once each time, and was not run again


def test_checkpointed_loop_under_no_grad_and_without_tracing():
    step = lambda x, a: x * a + 1.0
    expected = X3
    for _ in range(5):
        expected = step(expected, 0.5)
    assert close(checkpointed_loop(step, X3, 5, 2, args=(0.5,)), expected, rtol=0)
    with no_grad():
        assert close(checkpointed_loop(step, X3, 5, 2, args=(0.5,)), expected, rtol=0)


FORWARD = [
    ("checkpoint", lambda x: checkpoint(f_smooth)(x, x[::-1]), lambda x: f_smooth(x, x[::-1])),
    ("checkpointed_loop", lambda x: checkpointed_loop(lambda s: s + 0.1 * np.sin(s), x, 6, 2),
     lambda x: functools.reduce(lambda s, _: s + 0.1 * np.sin(s), range(6), x)),
    ("checkpointed_while", lambda x: checkpointed_while(lambda s: s * 1.5, x, lambda s: s[0] < 2.0),
     lambda x: x * 1.5 ** 5),  # X3[0] = 0.3 reaches 2 after five steps
    ("checkpoint_sequential", lambda x: checkpoint_sequential([np.sin, np.exp, np.tanh], 2, x),
     lambda x: np.tanh(np.exp(np.sin(x)))),
]


@pytest.mark.parametrize("name,f,f0", FORWARD, ids=[c[0] for c in FORWARD])
def test_forward_mode_just_runs_the_function(name, f, f0):
    v = onp.array([1.0, -0.5, 2.0])
    out, tan = jvp(f, (X3,), (v,))
    out0, tan0 = jvp(f0, (X3,), (v,))
    assert close(out, out0, rtol=0) and close(tan, tan0, rtol=RTOL)
    assert close(jacfwd(f)(X3), jacfwd(f0)(X3), rtol=RTOL)
    # and reverse mode gives the same Jacobian
    assert close(wengert.jacrev(f)(X3), jacfwd(f0)(X3), rtol=1e-9)


@pytest.mark.parametrize("name,f,f0", FORWARD, ids=[c[0] for c in FORWARD])
def test_jacobian_and_linearize_through_checkpointing(name, f, f0):
    assert close(wengert.jacobian(f)(X3), jacfwd(f0)(X3), rtol=1e-9)
    out, f_jvp = wengert.linearize(f, X3)
    assert close(f_jvp(onp.ones(3)), jvp(f0, (X3,), (onp.ones(3),))[1], rtol=1e-9)


def test_checkpointed_loop_higher_derivatives():
    step = lambda x, a: x + 0.1 * np.sin(a * x)

    def plain(x, a):
        for _ in range(7):
            x = step(x, a)
        return np.sum(x ** 3)

    def ck(x, a):
        return np.sum(checkpointed_loop(step, x, 7, 2, args=(a,)) ** 3)

    assert close(hessian(ck)(X3, 1.3), hessian(plain)(X3, 1.3), rtol=RTOL, atol=1e-13)
    d2 = grad(grad(ck, 1), 1)(X3, 1.3)
    assert d2 == pytest.approx(grad(grad(plain, 1), 1)(X3, 1.3), rel=1e-10)


def test_checkpointed_loop_vjp_pulled_twice():
    step = lambda x, a: x + 0.1 * np.sin(a * x)
    f = lambda x, a: checkpointed_loop(step, x, 9, 2, args=(a,))
    _, pull = vjp(f, X3, 1.3)
    _, pull0 = vjp(lambda x, a: functools.reduce(lambda s, _: step(s, a), range(9), x), X3, 1.3)
    ct = onp.array([1.0, -1.0, 0.5])
    expected = pull0(ct)
    assert tree_close(pull(ct), expected) and tree_close(pull(ct), expected)


def test_checkpointed_loop_pytree_state_and_parameters():
    def step(state, p):
        x, v = state["x"], state["v"]
        return {"x": x + 0.1 * v, "v": v - 0.1 * p["k"] * np.sin(x) - 0.1 * p["c"] * v}

    def plain(state, p):
        for _ in range(40):
            state = step(state, p)
        return np.sum(state["x"] ** 2 + state["v"])

    def ck(state, p):
        out = checkpointed_loop(step, state, 40, 4, args=(p,))
        return np.sum(out["x"] ** 2 + out["v"])

    state = {"x": X3, "v": onp.zeros(3)}
    p = {"k": 2.0, "c": onp.array([0.1, 0.2, 0.3])}
    assert tree_close(grad(ck, (0, 1))(state, p), grad(plain, (0, 1))(state, p))


def test_checkpointed_loop_float32_state():
    x = X3.astype(onp.float32)
    g = grad(lambda x: np.sum(checkpointed_loop(lambda s: s * 1.5, x, 3, 2)))(x)
    assert g.dtype == onp.float32 and close(g, [3.375] * 3, rtol=1e-6)


def test_checkpointed_loop_state_whose_dtype_changes_matches_full_tape():
    """A float32 state meets float64 parameters and is float64 from the first step on: its
    cotangent must not be rounded to float32 on the way back."""
    x, a = X3.astype(onp.float32), onp.array([1.1, 0.9, 1.3])

    def run(x, a, loop):
        return np.sum(loop(lambda s, a: np.sin(s * a), x, 4, a) ** 2)

    def plain_loop(step, s, n, a):
        for _ in range(n):
            s = step(s, a)
        return s
    full = grad(lambda x, a: run(x, a, plain_loop), (0, 1))(x, a)
    ck = grad(lambda x, a: run(x, a, lambda step, s, n, a: checkpointed_loop(step, s, n, 2, args=(a,))), (0, 1))(x, a)
    assert ck[0].dtype == onp.float32 and ck[1].dtype == onp.float64
    assert onp.array_equal(ck[0], full[0]) and onp.array_equal(ck[1], full[1])


def test_checkpoint_real_and_complex_results_warn_of_nothing():
    f = checkpoint(lambda x: (x * 3.0, x * 1j))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning from taking the real result back out
        g = grad(lambda x: np.sum(f(x)[0] + np.abs(f(x)[1]) ** 2))(X3)
    assert close(g, 3.0 + 2 * X3)


# ----------------------------------------------------------------------------- 6. checkpoint_sequential
def make_stages(k):
    rng = onp.random.default_rng(7)
    params = [{"W": 0.6 * rng.normal(size=(5, 5)), "b": 0.1 * rng.normal(size=5)} for _ in range(k)]
    stage = lambda h, p: np.tanh(h @ p["W"] + p["b"])
    return [stage] * k, params


@pytest.mark.parametrize("segments", [1, 2, 3, 4, 5, 6, 7])
def test_checkpoint_sequential_matches_composition(segments):
    stages, params = make_stages(7)
    x = onp.linspace(-1.0, 1.0, 5)

    def plain(x, params):
        for stage, p in zip(stages, params):
            x = stage(x, p)
        return np.sum(x ** 2)

    def seq(x, params):
        return np.sum(checkpoint_sequential(stages, segments, x, params) ** 2)

    assert seq(x, params) == pytest.approx(float(plain(x, params)), rel=1e-14)
    assert tree_close(grad(seq, (0, 1))(x, params), grad(plain, (0, 1))(x, params))


@pytest.mark.parametrize("segments", [1, 2, 3])
def test_checkpoint_sequential_without_params(segments):
    stages = [np.sin, lambda h: h * h, np.exp]
    x = onp.array([0.2, -0.4, 0.9])
    g = grad(lambda x: np.sum(checkpoint_sequential(stages, segments, x)))(x)
    expected = onp.exp(onp.sin(x) ** 2) * 2 * onp.sin(x) * onp.cos(x)
    assert close(g, expected, rtol=1e-12)


@pytest.mark.parametrize("segments,n_params,match", [
    (0, None, "segments"), (-1, None, "segments"), (4, None, "segments"), (10, None, "segments"),
    (2, 2, "parameter"), (2, 4, "parameter"), (1, 0, "parameter"),
])
def test_checkpoint_sequential_bad_arguments(segments, n_params, match):
    stages = [np.sin, np.cos, np.tanh]
    params = None if n_params is None else [1.0] * n_params
    with pytest.raises(ValueError, match=match):
        checkpoint_sequential(stages, segments, X3, params)


# ----------------------------------------------------------------------------- 7. track_memory
def test_track_memory_checkpointed_loop_is_much_smaller(ode_runs):
    plain = ode_runs["plain"][2]
    ck = ode_runs["checkpointed"][2]
    assert plain.tape_entries > ODE_STEPS and plain.tape_bytes > 0
    assert ck.tape_bytes * 10 <= plain.tape_bytes
    assert ck.tape_bytes * 1000 <= plain.tape_bytes  # in fact it does not grow with the steps
    assert ck.tape_entries < 100


def deep_mlp(depth=9, batch=256):
    params, X, Y = make_mlp(sizes=(8,) + (64,) * depth + (1,), batch=batch)
    stages = [lambda h, p: dense(h, *p)] * (len(params) - 1) + [lambda h, p: affine(h, *p)]
    return params, X, Y, stages


def test_track_memory_checkpointed_mlp_is_smaller():
    params, X, Y, stages = deep_mlp(depth=16)

    def loss(params, segments):
        return np.mean((checkpoint_sequential(stages, segments, X, params) - Y) ** 2)

    with track_memory() as plain:
        g0 = grad(mlp_loss)(params, X, Y, lambda k, f: f)
    with track_memory() as ck:
        g1 = grad(loss)(params, 4)  # about sqrt(17) segments
    assert tree_close(g1, g0)
    assert plain.recordings == 1 and ck.recordings >= 1
    assert 0 < ck.tape_bytes * 1.5 < plain.tape_bytes


def test_track_memory_mlp_with_every_layer_checkpointed_is_smaller():
    params, X, Y, _ = deep_mlp(depth=9)
    with track_memory() as plain:
        g0 = grad(mlp_loss)(params, X, Y, lambda k, f: f)
    with track_memory() as ck:
        g1 = grad(mlp_loss)(params, X, Y, lambda k, f: checkpoint(f))
    assert tree_close(g1, g0)
    assert 0 < ck.tape_bytes < plain.tape_bytes


def test_track_memory_does_not_count_views_as_new_bytes():
    x = onp.ones(1000)
    with track_memory() as direct:
        grad(lambda x: np.sum(x ** 2))(x)
    with track_memory() as reshaped:  # three reshapes: views of x, no memory of their own
        grad(lambda x: np.sum(np.reshape(np.reshape(np.reshape(x, (10, 100)), (100, 10)), (1000,)) ** 2))(x)
    assert direct.tape_bytes == 2 * x.nbytes + 8
    assert reshaped.tape_bytes == direct.tape_bytes


def test_track_memory_counts_recordings():
    f = lambda x: np.sum(np.sin(x) ** 2)
    grad(f)(X3)  # outside the block: not counted
    with track_memory() as usage:
        assert usage.recordings == 0 and usage.tape_bytes == 0
        for _ in range(3):
            grad(f)(X3)
    assert usage.recordings == 3
    assert usage.tape_entries > 0 and usage.tape_bytes >= 3 * X3.nbytes
    grad(f)(X3)  # after the block: not counted any more
    assert usage.recordings == 3


def test_track_memory_counts_this_threads_recordings_only():
    import threading
    started, stop = threading.Event(), threading.Event()

    def elsewhere():
        while not stop.is_set():
            grad(lambda y: np.sum(y * y))(onp.ones(10_000))
            started.set()
    worker = threading.Thread(target=elsewhere)
    worker.start()
    try:
        started.wait()
        with track_memory() as usage:
            grad(lambda x: np.sum(x * 2.0))(X3)
            started.clear()
            started.wait()  # the other thread recorded again meanwhile
    finally:
        stop.set()
        worker.join()
    assert usage.recordings == 1 and usage.tape_bytes < 10_000


def test_track_memory_reports_the_largest_recording():
    small = lambda x: np.sum(x)
    big = lambda x: np.sum(np.sin(np.cos(np.exp(x))) * x)
    x = onp.ones(1000)
    with track_memory() as only_big:
        grad(big)(x)
    with track_memory() as both:
        grad(small)(x)
        grad(big)(x)
        grad(small)(x)
    assert both.recordings == 3
    assert both.tape_bytes == only_big.tape_bytes and both.tape_entries == only_big.tape_entries
    assert only_big.tape_bytes >= 4 * x.nbytes


# ----------------------------------------------------------------------------- 8. errors and edge cases
@pytest.mark.parametrize("api", ["loop", "while"])
def test_integer_state_is_refused(api):
    state = onp.arange(3)
    with pytest.raises(TypeError, match="floating point"):
        if api == "loop":
            checkpointed_loop(lambda s: s + 1, state, 3)
        else:
            checkpointed_while(lambda s: s + 1, state, lambda s: s[0] < 3)
    with pytest.raises(TypeError, match="floating point"):  # one int leaf in a pytree state
        checkpointed_loop(lambda s: s, {"x": X3, "i": onp.arange(2)}, 2)


def _loop_sum(x, **kw):
    return np.sum(checkpointed_loop(kw.pop("step", lambda s, *a: s * 0.5), x, 3, **kw))


MISUSES = [  # (id, function of x under grad, error, start of the message)
    ("step-returns-none", lambda x: _loop_sum(x, step=lambda s: None), TypeError,
     r"checkpointed_loop: the step returned a state holding None where"),
    ("step-drops-a-leaf", lambda x: np.sum(checkpointed_loop(lambda s: s[0], (x, x), 3)[0]), TypeError,
     r"checkpointed_loop: the step returned a state laid out otherwise"),
    ("args-a-number", lambda x: _loop_sum(x, step=lambda s, p: s * p, args=np.sum(x)), TypeError,
     r"checkpointed_loop: args is a float64; it must be a tuple"),
    ("args-an-array", lambda x: _loop_sum(x, step=lambda s, p: s * p, args=x), TypeError,
     r"checkpointed_loop: args is a ndarray; it must be a tuple"),
    ("str-in-state", lambda x: np.sum(checkpointed_loop(lambda s: (s[0] * 2, s[1]), (x, "tag"), 3)[0]), TypeError,
     r"checkpointed_loop: every leaf of the loop state must be a floating point or complex array; got a str\."),
    ("cond-gives-an-array", lambda x: np.sum(checkpointed_while(lambda s: s * 0.5, x, lambda s: s > 0.1)), ValueError,
     r"checkpointed_while: cond returned 3 values \(shape \(3,\)\); it must return one bool"),
    ("segments-a-fraction", lambda x: np.sum(checkpoint_sequential([np.sin, np.cos], 1.5, x)), ValueError,
     r"checkpoint_sequential: segments must be a positive int"),
]


@pytest.mark.parametrize("name,f,error,start", MISUSES, ids=[m[0] for m in MISUSES])
def test_misuse_of_the_loops_names_the_function_and_the_argument(name, f, error, start):
    with pytest.raises(error, match=f"^{start}"):
        grad(f)(X3)


@pytest.mark.parametrize("n_steps,snapshots", [(-1, 20), (-100, 3), (2.5, 3), (5, 0), (5, -2), (5, 1.5),
                                                (None, 3), ("4", 3), (5, None), (True, 3)])
def test_checkpointed_loop_bad_arguments(n_steps, snapshots):
    with pytest.raises((ValueError, TypeError), match="checkpointed_loop: (n_steps|snapshots) must be"):
        checkpointed_loop(lambda s: s * 2.0, X3, n_steps, snapshots)


@pytest.mark.parametrize("snapshots", [0, -1, 2.5, None])
def test_checkpointed_while_bad_snapshots(snapshots):
    with pytest.raises((ValueError, TypeError), match="checkpointed_while: snapshots must be"):
        checkpointed_while(lambda s: s * 2.0, X3, lambda s: False, snapshots)


def test_checkpointed_loop_zero_steps_returns_the_state():
    calls = []

    def step(s, a):
        calls.append(1)
        return s * a

    assert checkpointed_loop(step, X3, 0) is X3
    state = {"a": X3, "b": (onp.ones(2),)}
    assert checkpointed_loop(step, state, 0, args=(2.0,)) is state
    g = grad(lambda x, a: np.sum(checkpointed_loop(step, x, 0, args=(a,)) * X3), (0, 1))(X3, 2.0)
    assert close(g[0], X3) and g[1] == 0.0
    assert calls == []


@pytest.mark.parametrize("n", [1, 2, 3, 17])
def test_more_snapshots_than_steps_runs_each_step_twice_at_most(n):
    step = count_loop(n, 100)
    assert step.calls == 2 * n - 1 and step.recorded == n  # one forward pass, then one recording each


# ------------------------------------------------- what the recomputations must replay or refuse
def _scale_in_place(x, c):
    c *= 1.1  # the caller's array, changed again by every evaluation
    return np.sin(x) * c


@pytest.mark.parametrize("name, call", [
    ("checkpoint", lambda x, c: checkpoint(_scale_in_place)(x, c)),
    ("checkpointed_loop", lambda x, c: checkpointed_loop(_scale_in_place, x, 4, 2, args=(c,))),
    ("checkpointed_while", lambda x, c: checkpointed_while(_scale_in_place, x, lambda s: s[0] < 0.99, 2,
                                                           args=(c,), max_steps=50)),
])
def test_changing_another_argument_in_place_is_refused(name, call):
    c = onp.array([1.0, 2.0, 0.5])
    with pytest.raises(TypeError, match=rf"^{name}: the (function|step) changed its argument .* in place"):
        grad(lambda x: np.sum(call(x, c)))(onp.array([0.3, 0.5, 0.2]))


def _noisy(x, scale, rng, legacy):
    return x * (1.0 + 0.1 * rng.normal(size=3)) + scale * legacy.normal(size=3)


_CLOSED = onp.random.default_rng(3)


def _noisy_closed(x, scale):
    return x * (1.0 + 0.1 * _CLOSED.normal(size=3)) + scale * onp.random.uniform(size=3)


RANDOM_SOURCES = {  # a loss of x drawing from generators given as arguments, closed over, or global
    "arguments": lambda ck: lambda x: np.sum(ck(_noisy)(x, 0.2, onp.random.default_rng(1),
                                                         onp.random.RandomState(2)) ** 2),
    "closure": lambda ck: (lambda rng: lambda x: np.sum(ck(lambda x, s: x * rng.normal(size=3) + s)(x, 0.1) ** 2))(
        onp.random.default_rng(4)),
    "globals": lambda ck: lambda x: np.sum(ck(_noisy_closed)(x, 0.3) ** 2),
}
CHECKPOINTS = {"checkpoint": checkpoint,
               "checkpointed_loop": lambda f: lambda x, *a: checkpointed_loop(f, x, 5, 2, args=a)}


@pytest.mark.parametrize("api", CHECKPOINTS)
@pytest.mark.parametrize("source", RANDOM_SOURCES)
def test_draws_from_every_kind_of_generator_are_replayed_in_every_sweep(source, api):
    """The value and the gradients of a first and a second sweep of the same recording are those
    of the same draws, as without checkpointing, and the sweeps draw nothing new."""
    wrap = CHECKPOINTS[api]
    plain = {"checkpoint": lambda f: f, "checkpointed_loop": lambda f: lambda x, *a: _plain_loop(
        lambda s: f(s, *a), x, 5)}[api]
    x = onp.array([0.4, -1.2, 0.7])
    onp.random.seed(0)
    global _CLOSED
    _CLOSED = onp.random.default_rng(3)
    value0, pull0 = wengert.vjp(RANDOM_SOURCES[source](plain), x)
    first0 = pull0(1.0)[0]
    onp.random.seed(0)
    _CLOSED = onp.random.default_rng(3)
    value, pull = wengert.vjp(RANDOM_SOURCES[source](wrap), x)
    state = onp.random.get_state()[1].copy()
    first, second = pull(1.0)[0], pull(1.0)[0]
    assert value == value0 and close(first, first0, rtol=RTOL) and close(second, first0, rtol=RTOL)
    assert onp.array_equal(onp.random.get_state()[1], state)  # the sweeps drew nothing new


def test_a_traced_argument_holding_nan_is_not_taken_for_a_changed_one():
    x = onp.array([1.0, onp.nan, 2.0])
    clean = lambda z: np.where(np.isnan(z), 0.0, z) ** 2  # noqa: E731
    assert onp.array_equal(grad(lambda x: np.sum(checkpoint(clean)(x)))(x), [2.0, 0.0, 4.0])


def test_a_step_changing_the_state_structure_is_named():
    with pytest.raises(TypeError, match=r"^checkpointed_loop: the step returned a state laid out otherwise"):
        grad(lambda x: np.sum(checkpointed_loop(lambda s: (s, s), x, 3, 2)[0]))(onp.ones(2))
