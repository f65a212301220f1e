"""Values released during the forward pass: a value that no derivative rule reads (a rule's
function never loads its parameter), on an entry the program no longer refers to, is let go
before the sweep (wengert._core.releasing).

The table runs each program with every plain array eligible (the size threshold set to 0),
checks its gradient, second derivative and the other reverse-mode APIs against autograd, and
checks whether the tape let go of values or, where a rule reads them or the program keeps
them, did not."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tracemalloc

import autograd
import autograd.numpy as anp
import numpy as onp
import pytest

import wengert
import wengert._core as core
import wengert.numpy as wnp
from _helpers import close, fd_grad
from wengert._api import _Recording

DEFAULT, READERS = core._min_bytes, core._readers


@pytest.fixture
def every_array():
    """Release arrays of any size (the NumPy layer's threshold is 16 kB)."""
    core.release(onp.ndarray, 0, READERS)
    try:
        yield
    finally:
        core.release(onp.ndarray, DEFAULT, READERS)


def _sum_loop(np, x):
    y = x
    for _ in range(5):
        y = y + 1.0
    return np.sum(y * y)


def _affine(np, x):
    y = x
    for _ in range(5):
        y = 0.9 * y - 0.5
    return np.sum(np.tanh(y))


def _two_statements(np, x):
    y = x
    for _ in range(4):
        y = y * 0.99 + 0.5
        y = -(y - 0.1)
    return np.sum(y ** 3)


def _exp_reads_its_output(np, x):
    y = x
    for _ in range(4):
        y = np.exp(y * 0.5)
    return np.sum(y)


def _sin_reads_its_argument(np, x):
    y = x
    for _ in range(4):
        y = np.sin(y) + 1.0
    return np.sum(y)


def _tanh_reads_its_output(np, x):
    y = x
    for _ in range(4):
        y = np.tanh(y) - 0.1
    return np.sum(y * y)


def _matrix_products(np, x):
    a = onp.linspace(-1.0, 1.0, x.size * x.size).reshape(x.size, x.size)
    y = x
    for _ in range(3):
        y = np.tanh(a @ y + 0.5)  # the product's rules read its factors, not its output
    return np.sum(y)


def _product_reads_both(np, x):
    y = x
    for _ in range(4):
        y = y * x
    return np.sum(y)


def _kept_in_a_list(np, x):
    ys, y = [], x
    for _ in range(4):
        y = y + 1.0
        ys.append(y)
    return sum(np.sum(v * v) for v in ys)


def _fan_out(np, x):
    y = x
    for _ in range(3):
        z = y - 1.0
        y = z * z + z
    return np.sum(y)


def _broadcast_bias(np, x):
    y = np.reshape(x, (2, 3))
    for _ in range(3):
        y = y + x[:3] * 0.5  # the (3,) term's cotangent is summed over the rows
    return np.sum(y * y)


def _views_read_later(np, x):
    y = x + 0.0
    head = y[:2]
    for _ in range(3):
        y = y + 1.0
    return np.sum(y * y) + np.sum(head ** 2)


def _copies_and_casts(np, x):
    copy = (lambda a: a) if np is anp else np.copy  # (autograd has no rule for copy)
    y = x
    for _ in range(3):
        y = copy(y * 2.0) + 1.0
        y = y.astype(np.float64) - 0.25
    return np.sum(y ** 2)


def _complex_steps(np, x):
    y = x * (1.0 + 0.5j)
    for _ in range(3):
        y = y * (0.5 - 1j) + 1.0
    return np.sum(np.real(y * np.conj(y)))


def _rolled(np, x):
    y = x
    for _ in range(3):  # roll: two slices (views) joined
        y = y + 0.1 * (np.roll(y, 1) - 2 * y + np.roll(y, -1))
    return np.sum(y * y)


def _stencil(np, x):
    y = x
    for _ in range(3):
        inner = y[2:] - 2 * y[1:-1] + y[:-2]  # slices of y, and slices of inner below
        y = y + 0.1 * np.concatenate([inner[:1], inner, inner[-1:]])
    return np.sum(y * y)


def _reshaped(np, x):
    y = x
    for _ in range(3):
        y = np.reshape(np.transpose(np.reshape(y, (2, 3))) * 0.5 + 1.0, (6,))
    return np.sum(np.tanh(y))


def _stacked(np, x):
    y = x
    for _ in range(3):
        y = np.sum(np.stack([y[::-1], y - 1.0]), axis=0)  # stack's rule reads none of its arguments
    return np.sum(y * y)


def _long_steps(np, x):
    y = x
    for _ in range(4):
        z = np.sin(y * 0.5)  # the old y is used here only, and its name held until the step is done
        z = z * 2.0 + 1.0
        z = np.exp(z * 0.1)
        y = z - 0.5
    return np.sum(y * y)


X6 = onp.array([0.3, -1.1, 0.8, 2.0, -0.4, 1.3])

PROGRAMS = [
    # (name, f(np, x), whether the tape lets go of values)
    ("y = y + 1.0", _sum_loop, True),
    ("y = 0.9 * y - 0.5", _affine, True),
    ("two statements a step", _two_statements, True),
    ("exp reads its output only", _exp_reads_its_output, True),
    ("sin reads its argument only", _sin_reads_its_argument, True),
    ("tanh reads its output only", _tanh_reads_its_output, True),
    ("matrix products", _matrix_products, True),
    ("a product reads both factors", _product_reads_both, False),
    ("kept in a list", _kept_in_a_list, False),
    ("fan-out", _fan_out, True),
    ("broadcast term", _broadcast_bias, True),
    ("a view read later", _views_read_later, True),
    ("copies and casts", _copies_and_casts, True),
    ("complex steps", _complex_steps, True),
    ("roll", _rolled, True),
    ("stencil of slices", _stencil, True),
    ("reshape and transpose", _reshaped, True),
    ("stack of a view", _stacked, True),
    ("a name held for a long step", _long_steps, True),
]
IDS = [p[0] for p in PROGRAMS]


def _tape_bytes(f, x) -> int:
    with wengert.track_memory() as usage:
        wengert.grad(f)(x)
    return usage.tape_bytes


@pytest.mark.parametrize("name, f, releases", PROGRAMS, ids=IDS)
def test_gradients_with_values_released(every_array, name, f, releases):
    expected = autograd.grad(lambda x: f(anp, x))(X6)
    assert close(wengert.grad(lambda x: f(wnp, x))(X6), expected)
    assert close(expected, fd_grad(lambda x: f(onp, x), X6), rtol=1e-6, atol=1e-6)
    kept = _tape_bytes(lambda x: f(wnp, x), X6)
    core.release(onp.ndarray, 1 << 62, READERS)
    everything = _tape_bytes(lambda x: f(wnp, x), X6)
    assert (kept < everything) == releases, (kept, everything)


@pytest.mark.parametrize("name, f, releases", PROGRAMS, ids=IDS)
def test_other_reverse_apis_with_values_released(every_array, name, f, releases):
    fw, fa = (lambda x: f(wnp, x)), (lambda x: f(anp, x))
    expected = autograd.grad(fa)(X6)
    assert close(wengert.elementwise_grad(lambda x: fw(x) * 1.0)(X6), expected)
    value, pullback = wengert.vjp(fw, X6)
    for _ in range(2):  # the kept recording is swept again
        assert close(pullback(1.0)[0], expected)
    assert close(wengert.jacrev(lambda x: wnp.stack([fw(x), 2.0 * fw(x)]))(X6), onp.stack([expected, 2 * expected]))
    v = onp.linspace(-1.0, 1.0, X6.size)
    assert close(wengert.hvp(fw)(X6, v), autograd.hessian_vector_product(fa)(X6, v))
    assert close(wengert.grad(lambda x: wnp.sum(wengert.grad(fw)(x) * v))(X6),
                 autograd.grad(lambda x: anp.sum(autograd.grad(fa)(x) * v))(X6))
    t = onp.cos(X6)
    assert close(wengert.linearize(fw, X6)[1](t), onp.dot(expected, t))


class _Rules:
    def square(self, g, ans, x):  # its parameters start with self: read as reading anything
        return 2.0 * g * x


def _reads_x_in_a_closure(g, a, x):
    return (lambda: g * x)()


def _reads_x_in_a_comprehension(g, a, x):
    return sum(g * v for v in [x])


def _reads_everything_through_locals(g, a, x):
    return g * locals()["x"]


def _reads_args(g, a, *args):
    return g * args[0]


def _reads_the_arguments_after_x(g, a, x, *args):
    return g * args[0]


def _shape(x):  # the name of the NumPy layer's shape reader: a parameter only passed to it is unread
    return onp.shape(x)


def _template(x):  # the NumPy layer's other reader: its type, shape and dtype
    return x


def _reads_the_template_of_y(g, a, x, y):
    return g * x * _template(y).dtype.itemsize


def _reads_the_shape_of_y(g, a, x, y):
    return g * x * len(_shape(y))


def _reads_y_and_its_shape(g, a, x, y):
    return g * y * len(_shape(y))


READS = [
    # (rule, what it reads as _core._reads says: 1 its output, 2 << k argument k, -1 anything)
    (_reads_the_shape_of_y, 2),
    (_reads_y_and_its_shape, 4),
    (lambda g, a, x: onp.reshape(g, _shape(x)), 0),
    (lambda g, a, x: onp.reshape(g, onp.shape(x)), 2),  # another function: x is read
    (lambda g, a, x: g * x, 2),
    (lambda g, a, x: g * a, 1),
    (lambda g, a, x, y: g, 0),
    (lambda g, a, x, y: g * y, 4),
    (lambda g, a, x, y, axis=None: g.sum(axis), 8),
    (core.same, 0),
    (core.times_first, 2),
    (core.times_ans, 1),
    (_reads_x_in_a_closure, 2),
    (_reads_x_in_a_comprehension, 2),
    (_reads_everything_through_locals, -1),
    (_reads_args, sum(2 << k for k in range(30))),  # every argument
    (_reads_the_arguments_after_x, sum(2 << k for k in range(1, 30))),
    (_reads_the_template_of_y, 2),
    (_Rules().square, -1),
    (functools.partial(lambda k, g, a, x: g * x, 0), -1),
    (core.Joint(lambda argnums, g, a, x: [g]), 0),  # a joint rule's parameters start with the argnums
    (core.Joint(lambda argnums, g, a, x: [g * x]), 2),
    (core.Joint(lambda argnums, g, a, *xs: [g * len(xs)]), sum(2 << k for k in range(30))),
]


@pytest.mark.parametrize("rule, reads", READS)
def test_what_a_rule_reads_comes_from_its_code(rule, reads):
    prim = core.Primitive(lambda x, y=None, axis=None: x, "f", rule if type(rule) is core.Joint else (rule,))
    assert core._reads(prim, 0) == reads


def _descent(np, x):
    a = onp.linspace(-1.0, 1.0, 36).reshape(6, 6)
    w = x
    for _ in range(3):
        r = a @ w  # the rule of w in a @ w reads only w's shape
        w = w - 0.1 * (a.T @ (r - 1.0))
    return np.sum(w * w)


def test_a_value_whose_shape_only_is_read_is_released(every_array):
    expected = autograd.grad(lambda x: _descent(anp, x))(X6)
    assert close(wengert.grad(lambda x: _descent(wnp, x))(X6), expected)
    shapes_read = _tape_bytes(lambda x: _descent(wnp, x), X6)
    core.release(onp.ndarray, 0, ())  # no shape reader: every parameter loaded is read
    assert shapes_read < _tape_bytes(lambda x: _descent(wnp, x), X6)


def _update(np, x):
    y = x
    for _ in range(6):
        y = y - 0.1 * np.tanh(y)  # y used twice: by tanh, whose rule reads its output only, and by -
    return np.sum(y * y)


def test_a_value_used_twice_is_released(every_array):
    assert close(wengert.grad(lambda x: _update(wnp, x))(X6), autograd.grad(lambda x: _update(anp, x))(X6))
    rec = _Recording("grad", lambda x: _update(wnp, x), (X6,), {}, 0, False)
    kept = [n.prim.name for n in rec.nodes if n.prim is not None and type(n.value) is onp.ndarray]
    assert kept == ["tanh"] * 6 + ["subtract", "multiply"], kept  # what the rules read, and the last step's


@pytest.mark.parametrize("f, kept", [
    (_rolled, ["add", "multiply"]),  # the last step's: its sum, and the square's factor
    (_stencil, ["add", "add", "multiply"]),
    (_stacked, ["sum", "multiply"]),
    (_reshaped, ["reshape", "tanh"]),  # (y holds the last step's reshape)
    (_long_steps, ["multiply", "exp"] * 4 + ["subtract", "multiply"]),  # what sin and exp read
])
def test_views_and_values_held_long_are_released(every_array, f, kept):
    """Views (slices, reshapes, roll's pieces) no rule reads are let go, and with them the
    arrays they view; so are the arguments of concatenate, stack and sum, whose rules read
    only their shapes; and values the program held when the entries after them were
    recorded, once it lets go of them."""
    rec = _Recording("grad", lambda x: f(wnp, x), (X6,), {}, 0, False)
    names = [n.prim.name for n in rec.nodes if n.prim is not None and type(n.value) is onp.ndarray]
    assert names == kept


def _fresh_constants(np, x):
    y = x
    for k in range(4):
        y = np.tanh(y + onp.cos(X6 * k))  # a constant made afresh each step: only the sum's arguments hold it
    return np.sum(y)


def test_a_constant_no_rule_reads_is_released(every_array):
    expected = autograd.grad(lambda x: _fresh_constants(anp, x))(X6)
    assert close(wengert.grad(lambda x: _fresh_constants(wnp, x))(X6), expected)
    rec = _Recording("grad", lambda x: _fresh_constants(wnp, x), (X6,), {}, 0, False)
    sums = [n for n in rec.nodes if n.prim is not None and n.prim.name == "add"]
    assert [type(n.args[1]) is core.Released for n in sums] == [True] * 4, [n.args for n in sums]


def test_the_constants_of_a_view_stay_for_its_refresh(every_array):
    """A write into an array recomputes the views taken of it from their entries' arguments:
    broadcast_to's shape, an array no rule reads, is needed again."""
    x = onp.random.default_rng(0).normal(size=(6, 5))

    def f(x):
        y = x[0] * 2.0
        v = wnp.broadcast_to(y, onp.array([3, 5]))
        s = wnp.sum(v * 3.0)
        y[0] = 7.0  # v sees the write
        return wnp.sum(v * v) + s

    expected = onp.zeros_like(x)
    expected[0] = 3 * 2.0 * (2 * 2 * x[0] + 3.0)
    expected[0, 0] = 3 * 2.0 * 3.0  # y[0] was overwritten: only s saw x[0, 0]
    assert close(wengert.grad(f)(x), expected)


def test_writes_into_arrays_whose_history_was_released(every_array):
    def f(np, x):
        y = x + 0.0
        for k in range(3):
            y = y * 2.0 + 1.0
            y[k] = y[k + 1] * 3.0  # NumPy's write: the entry before it is copied, its users moved
            y += 0.5
        return np.sum(y * y)

    def f_autograd(x):  # the same values, without writes (autograd has none)
        y = x + 0.0
        for k in range(3):
            y = y * 2.0 + 1.0
            y = anp.concatenate([y[:k], y[k + 1:k + 2] * 3.0, y[k + 1:]])
            y = y + 0.5
        return anp.sum(y * y)

    assert close(wengert.grad(lambda x: f(wnp, x))(X6), autograd.grad(f_autograd)(X6))


def _views_of_a_view(np, x):
    y = x * 1.0
    v = y[1:]
    row = v[::2]  # a view of the view v, kept: a write into row reaches y through v
    z = v * 2.0
    del v
    for _ in range(3):
        z = z + 1.0
    row[0] = 3.0 * row[1]
    return np.sum(y * y) + np.sum(z * z)


def _write_after_a_view_was_read(np, x):
    y = x * 1.0
    s = np.sum(np.exp(y[1:] * 2.0))  # y[1:] is read by no rule and let go
    for k in range(2):
        y[k] = 3.0 * y[k + 2]  # y sees the write
        y = y + 1.0
    return s + np.sum(y * y)


@pytest.mark.parametrize("f", [_views_of_a_view, _write_after_a_view_was_read])
def test_writes_through_views_when_views_are_released(every_array, f):
    """A view is released only if no value made from it views the same memory: a write into
    such a value (row of v of y) goes through the view's entry to the array."""
    released = wengert.grad(lambda x: f(wnp, x))(X6)
    assert close(released, fd_grad(lambda x: f(onp, x.copy()), X6), rtol=1e-6, atol=1e-6)
    core.release(onp.ndarray, 1 << 62, READERS)
    assert close(released, wengert.grad(lambda x: f(wnp, x))(X6))


def test_a_released_value_cannot_be_computed_with():
    released = core.Released(onp.zeros((2, 3), dtype=onp.float32))
    assert (released.shape, released.dtype) == ((2, 3), onp.float32)
    with pytest.raises(TypeError):
        onp.add(released, 1.0)  # NumPy's ufuncs refuse it
    for misread in (onp.asarray, lambda r: r == 0, lambda r: r < 0, bool):  # not a silent False
        with pytest.raises(RuntimeError, match="released"):
            misread(released)


def _where_on_itself(np, x):
    y = x - 1.0
    z = np.where(y, y, 0.0)  # y also at the condition, which has no rule
    del y
    for _ in range(3):
        z = z + 1.0
    return np.sum(z * z)


def _heaviside_on_itself(np, x):
    y = x + 0.0
    z = np.heaviside(y, y)  # the rule of the second argument reads the first
    del y
    for _ in range(3):
        z = z + 1.0
    return np.sum(z)


@pytest.mark.parametrize("f, x", [(_where_on_itself, onp.linspace(0.5, 2.0, 6)),
                                  (_heaviside_on_itself, onp.array([0.0, 0.0, 1.5, -2.0]))])
def test_an_array_also_given_where_there_is_no_rule_is_kept(every_array, f, x):
    released = wengert.grad(lambda x: f(wnp, x))(x)
    core.release(onp.ndarray, 1 << 62, READERS)
    assert close(released, wengert.grad(lambda x: f(wnp, x))(x))


WRITE_WHILE_RELEASING = """
import numpy as np, wengert, wengert.numpy as wnp, wengert._core as core
writes, drop = [], core._drop
def drop_then_write(p, q):  # Python code that runs while the compiled loop walks the parents
    drop(p, q)
    while writes:
        writes.pop()()
core._drop = drop_then_write
core.release(np.ndarray, 0)
def f(x):
    X = x * 1.0
    y = x + 0.0
    for i in range(6):
        q = (y + 1.0) + X
        def write(X=X):
            X[0] = 5.0  # X is rebound: the parents of q are replaced, the old tuple freed
            [(float(k), float(k)) for k in range(2000)]  # (and its memory reused)
        writes.append(write)
        r = q + 1.0
        del q
        y = r + 1.0
        del r
    return wnp.sum(y * X)
print(wengert.grad(f)(np.linspace(0.0, 1.0, 7)).round(6).tolist())
"""


RECORD_WHILE_RELEASING = """
import numpy as np, wengert, wengert.numpy as wnp, wengert._core as core
pending, drop = [], core._drop
def drop_then_record(p, q):  # an entry recorded while the release runs (here, or by another thread)
    drop(p, q)
    while pending:
        pending.pop()()
core._drop = drop_then_record
core.release(np.ndarray, 0, core._readers)
def f(x):
    keep, h, y = [], x * 1.0, x * 1.0
    for i in range(12):
        pending.append(lambda: keep.append(h * 2.0))
        z = wnp.sin(y * 0.5)  # (y waits until the step is done)
        z = wnp.exp((z * 2.0 + 1.0) * 0.1)
        y = z - 0.5
    return wnp.sum(y) + sum(wnp.sum(k) for k in keep)
print(wengert.grad(f)(np.linspace(0.0, 1.0, 7)).round(6).tolist())
"""


@pytest.mark.parametrize("program", [WRITE_WHILE_RELEASING, RECORD_WHILE_RELEASING], ids=["write", "record"])
def test_recording_while_values_are_released(program):
    """An in-place write run while the release walks the list (by another thread, or here by the
    function that releases) replaces tuples the walk holds (the compiled walk crashed); an entry
    recorded meanwhile is only appended (a nested release took waiting entries off twice, and
    the compiled list of them overran: a segfault)."""
    runs = [subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                           env={**os.environ, "WENGERT_PURE_PYTHON": pure}) for pure in ("0", "1")]
    assert [r.returncode for r in runs] == [0, 0], [r.stderr[-2000:] for r in runs]
    assert runs[0].stdout == runs[1].stdout


@pytest.mark.filterwarnings("ignore:invalid value encountered in log")
def test_nothing_is_released_inside_detect_anomaly(every_array):
    """The anomaly watch reads every value of the tape to say where a NaN came from."""
    def f(x):
        y = x
        for _ in range(3):
            y = y + 1.0
        return wnp.sum(wnp.log(y - 3.5))  # log of negative numbers

    with pytest.raises(wengert.AnomalyError, match="log"):
        with wengert.detect_anomaly():
            wengert.grad(f)(X6)


def test_a_small_slice_of_a_large_array_is_let_go():
    """roll(u, 1) joins a one-element slice of u, below the size threshold, to the rest: the
    slice is let go all the same, as it holds u's memory (the heat equation kept every step)."""
    x = onp.linspace(0.0, 1.0, 200_000)

    def f(np, u):
        for _ in range(30):
            u = u + 0.1 * (np.roll(u, 1) - 2 * u + np.roll(u, -1))
        return np.sum(u * u)

    tracemalloc.start()
    try:
        g = wengert.grad(lambda u: f(wnp, u))(x)
        peak = tracemalloc.get_traced_memory()[1] / x.nbytes
    finally:
        tracemalloc.stop()
    assert close(g, autograd.grad(lambda u: f(anp, u))(x))
    assert peak < 10, peak  # 30 steps kept: about 60


def test_memory_of_a_long_loop_stays_flat():
    """100 steps of y = y + 1.0 on 8 MB arrays: the tape held one array per step (763 MiB at
    the peak); now the values no rule reads are let go as the loop goes."""
    x = onp.ones(1_000_000)

    def f(y):
        for _ in range(100):
            y = y + 1.0
        return wnp.sum(y * y)

    tracemalloc.start()
    try:
        g = wengert.grad(f)(x)
        peak = tracemalloc.get_traced_memory()[1] / x.nbytes
    finally:
        tracemalloc.stop()
    assert close(g, 2 * (x + 100))
    assert peak < 10, peak
