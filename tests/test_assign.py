"""Assignment into traced arrays: ``x[i] = v``, in-place operators, views and ``at``.

Each case is a function written as ordinary NumPy code that assigns in place. It is run on
plain arrays (NumPy's own semantics, on copies) and on traced ones: the values must agree,
and the derivatives must match central finite differences in reverse and forward mode, to
second order (``wengert.gradcheck``). The caller's arrays are never written to.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as onp
import pytest

import wengert
import wengert.numpy as np

R = onp.random.default_rng(11)
X = R.uniform(0.5, 1.5, (3, 4))
W = R.normal(size=(3, 4))


def traced_copy(x: Any) -> Any:
    return x * 1.0  # a new (traced) array: assigning into it leaves the argument alone


def index_case(index: Any, value: Callable) -> Callable:
    def f(x):
        y = traced_copy(x)
        y[index] = value(x)
        return np.sum(np.sin(y) * W)
    return f


INDEX_CASES = {  # x[index] = v for every kind of index; v traced unless noted
    "int": index_case(1, lambda x: x[0] ** 2),
    "int-int": index_case((2, 3), lambda x: x[0, 0] * x[1, 1]),
    "negative": index_case((-1, -2), lambda x: np.exp(x[0, 1])),
    "slice": index_case(slice(1, 3), lambda x: x[:2] * 2.0),
    "step": index_case((slice(None), slice(None, None, 2)), lambda x: x[:, 1::2] ** 2),
    "ellipsis": index_case((Ellipsis, 0), lambda x: x[:, 3]),
    "newaxis": index_case((None, 0), lambda x: x[1]),
    "bool-mask": index_case(X > 1.0, lambda x: x[X > 1.0] ** 3),
    "bool-row": index_case(onp.array([True, False, True]), lambda x: x[1]),
    "int-array": index_case(onp.array([2, 0]), lambda x: x[:2] * x[2]),
    "list": index_case([0, 2], lambda x: x[1] + 1.0),
    "repeated": index_case(([0, 1, 0], [1, 1, 1]), lambda x: x[2, :3] * 3.0),
    "repeated-rows": index_case([1, 1, 2, 1], lambda x: x[0] * onp.arange(1.0, 5.0)[:, None]),
    "advanced-pair": index_case((onp.array([[0], [2]]), onp.array([1, 3])), lambda x: x[1, :2]),
    "advanced-slice": index_case((slice(None), [3, 0]), lambda x: x[:, :2] ** 2),
    "scalar-broadcast": index_case(slice(None), lambda x: x[0, 0]),
    "row-broadcast": index_case((slice(0, 2),), lambda x: x[2]),
    "extra-leading-ones": index_case(0, lambda x: np.reshape(x[1], (1, 4))),
    "constant-value": index_case((1, slice(1, 3)), lambda x: 5.0),
    "list-of-traced": index_case((0, slice(0, 2)), lambda x: [x[1, 1], x[2, 2] ** 2]),
}


def aliasing(x):
    y = x * 1.0
    z = y  # the same array: NumPy's y += 1 changes z too
    y += 1.0
    y *= z
    return np.sum(z * W)


def accumulate(x):
    acc = np.zeros(4) + 0.0 * x[0]
    for i in range(3):
        acc += x[i] * acc + x[i]
        acc *= 0.9
    return np.sum(acc ** 2)


def fill_rows(x):
    out = x * 0.0
    for i in range(1, 3):
        out[i] = np.tanh(out[i - 1] + x[i])
    return np.sum(out * W)


def write_through_view(x):
    y = x * 1.0
    row = y[1]
    row[2] = x[0, 0] ** 2  # NumPy writes into y as well
    row += x[2]
    return np.sum(np.cos(y) * W) + np.sum(row)


def chained_index(x):
    y = x * 1.0
    y[0][1] = x[2, 2] * 3.0  # y[0] is a view, so this assigns into y
    y[1:][0][:2] = x[0, :2]
    return np.sum(y * W)


def views_see_assignment(x):
    y = x * 1.0
    t, r, s, d = y.T, np.reshape(y, (4, 3)), y[1:, ::2], np.diagonal(y, 1)  # NumPy's diagonal is a view too
    y[1, 2] = x[0, 0] * 7.0
    y[2] += x[0]
    return np.sum(t * W.T) + np.sum(r ** 2) + np.sum(s) + np.sum(d ** 2)


def assign_into_argument(x):
    x += 1.0  # the caller's array stays as it was
    x[0] = x[1] * x[2]
    return np.sum(x * W)


def operators(x):
    y = x * 1.0
    y -= x[0]
    y /= x[1] + 2.0
    y **= 2
    y %= 0.75 + x * 0.0  # far from the jumps of % at these points
    m = x[:, :3] * 1.0
    m @= x[:3, :3]
    return np.sum(y * W) + np.sum(m)


def zero_dim(x):
    s = np.sum(x) * 1.0
    s += x[0, 0]
    s *= 2.0
    return s


def complex_values(x):
    z = x * (1.0 + 0.5j)
    z[1] = np.exp(1j * x[0])
    z[0, 1:3] *= 1j
    return np.real(np.sum(z * np.conj(z) * W)) + np.sum(np.imag(z))


def results_that_are_the_array_itself(x):
    y = x * 2.0
    y.real[0, 1] = x[1, 1] ** 2  # .real of a real array is the array itself: NumPy writes into y
    np.real(y)[1] += x[2]
    y.conj()[2, 0] = 3.0 * x[0, 0]
    np.squeeze(y)[0, 3] = 1.5  # nothing to squeeze
    return np.sum(y * W)


def nan_to_num_in_place(x):
    y = x * 1.0
    y[0, :2] = onp.inf
    y[1, 2] = onp.nan
    np.nan_to_num(y, copy=False, posinf=5.0)  # NumPy writes into y
    return np.sum(y * W)


def floordiv_in_place(x):
    y = x * 1.0
    z = y  # the same array
    z[0] //= 0.5
    row = y[1]  # a view
    row //= 1.0
    return np.sum(y * W * x)


def attributes_set_in_place(x):
    z = x * (1.0 + 0.5j)
    z.imag = x ** 2
    z[1:].real = np.sin(x[1:])
    y = x * 2.0
    v = y.view()  # writing into a view writes into y
    v[0, 1] = x[2, 2] * 3.0
    t = y.T
    y.shape = (4, 3)  # the values seen with another shape; the transpose taken before keeps its own
    return np.sum(np.abs(z) ** 2 * W) + np.sum(y * W.reshape(4, 3) * 2.0) + np.sum(t * W.T)


def zero_dim_written(x):
    """0-d arrays written into, with a result that NumPy makes a scalar (the cotangent then
    arrives as a number where the rules index an array)."""
    a = np.array(x[0, 0])  # a 0-d array
    a[...] = 3.0 * x[1, 1]
    b = np.asarray(x[2, 2])  # a traced number made a 0-d array, as NumPy makes it
    b[()] = b * x[0, 1]
    c = np.at(b * 1.0)[...].add(np.asarray(x[1, 2], dtype=onp.complex128).real)
    d = np.array(x[0, 2])
    np.put(d, 0, x[2, 3] ** 2)  # NumPy's functions that write in place, into 0-d arrays
    e = np.array(x[1, 0])
    np.place(e, True, x[0, 3])
    np.putmask(e, True, e * x[2, 0])
    return a * 1.0 + b + c + d * e


def views_of_temporaries(x):
    """Views made by reshape or transpose of arrays nothing else refers to (the softmax idiom):
    no one could see a write through them, so they are written as arrays of their own."""
    a = np.exp(x).reshape(2, 6)
    a /= a.sum(axis=1, keepdims=True)
    t = (x * 1.0).reshape(4, 3).T
    t[0, 1] = x[2, 2] ** 2
    c = np.flip((x * 2.0)[1:].reshape(8)[::2])  # views of views, every one a temporary
    c[1:] *= x[0, :3]
    return np.sum(a * a) + np.sum(t * x.reshape(3, 4)) + np.sum(c * x[0])


def windows_see_writes(x):
    """sliding_window_view is a view: a later write into its array shows through it, as in NumPy."""
    y = x * 1.0
    w = np.lib.stride_tricks.sliding_window_view(y, (2, 2))
    y[1, 1] = x[0, 0] ** 3
    return np.sum(w * x[1:, 1:, None, None])


class _Holder:
    pass


def views_kept_while_loops_write(x):
    """Views kept in a list, a dict, a closure, an attribute, and one reached only through a
    view of a view the program dropped, while loops write the array between reads of
    temporaries (whose entries nothing but the tape holds, so they need not see the writes)."""
    y = x * 1.0
    kept, by_name, holder = [y[0]], {"col": y[:, 1]}, _Holder()
    holder.view = y[1:, 2:]
    corner = y[:2, :2]
    inner = corner[1]  # a view of a view; the outer one is dropped
    del corner
    last = y[2]
    def tail():  # noqa: E306
        return last
    for i in range(3):
        t = y[i, :2]
        y[i, 1:3] = t * 0.5 + x[i, 3]
        y[(i + 1) % 3, 0] = np.sum(y[i]) * 0.1
    return np.sum(kept[0] * by_name["col"][0]) + np.sum(holder.view ** 2) + np.sum(inner * tail()[:2])


def buffer_recurrence(x):
    """h[t] = tanh(W h[t-1] + x[t]) kept in a buffer: each step reads the row the last one wrote."""
    h = np.zeros((3, 4)) + 0.0 * x[0, 0]
    for t in range(1, 3):
        h[t] = np.tanh(h[t - 1] * x[t, 0] + x[t])
    return np.sum(h * W)


def smoothing_in_place(x):
    y = np.ravel(x) * 1.0
    for i in range(1, len(y) - 1):
        y[i] = np.mean(y[i - 1:i + 2])
    return np.sum(y ** 2)


def columns_scaled_in_place(x):
    y = x * 1.0
    for j in range(4):
        y[:, j] *= x[j % 3, j]  # NumPy: *= on the column view, then y[:, j] = that view
    y[1] += y[0]
    return np.sum(y * W)


PROGRAM_CASES = {f.__name__: f for f in [views_kept_while_loops_write, buffer_recurrence, smoothing_in_place,
                                         columns_scaled_in_place, aliasing, accumulate, fill_rows,
                                         write_through_view, chained_index,
                                         views_see_assignment, assign_into_argument, operators, zero_dim,
                                         complex_values, results_that_are_the_array_itself, nan_to_num_in_place,
                                         floordiv_in_place, attributes_set_in_place, zero_dim_written,
                                         views_of_temporaries, windows_see_writes]}
CASES = {**{f"index-{k}": f for k, f in INDEX_CASES.items()}, **PROGRAM_CASES}


@pytest.mark.parametrize("f", CASES.values(), ids=CASES.keys())
def test_value_matches_numpy_and_derivatives_match_finite_differences(f: Callable) -> None:
    x = X.copy()
    expected = f(X.copy())  # NumPy itself, in place
    value, g = wengert.value_and_grad(f)(x)
    onp.testing.assert_allclose(value, expected, rtol=1e-12)
    onp.testing.assert_array_equal(x, X)  # the argument was not written to
    assert g.shape == X.shape and g.dtype == X.dtype
    wengert.gradcheck(f, x, order=2)


def _buffer(h, n):
    for t in range(1, n):
        h[t] = np.tanh(h[t - 1] * 0.5 + 1.0)


def _smoothing(y, n):
    for i in range(1, n - 1):
        y[i] = np.mean(y[i - 1:i + 2])


def _columns(y, n):
    for j in range(n):
        y[:, j] *= 2.0


LOOPS = {"buffer": _buffer, "smoothing": _smoothing, "columns": _columns}  # each write follows a read of a view


@pytest.mark.parametrize("name", LOOPS)
def test_writes_after_reads_of_temporaries_record_a_list_growing_with_the_loop(name: str) -> None:
    """Each write recorded again every view read before it, held or not: n² entries."""
    counts = []
    for n in (20, 40):
        def f(x, n=n):
            y = x * 1.0
            LOOPS[name](y, n)
            counts.append(len(y.trace.nodes))
            return np.sum(y)
        wengert.grad(f)(onp.ones((n, 3)) if name != "columns" else onp.ones((3, n)))
    assert counts[1] < 2.2 * counts[0], counts


def _written_into(make: Callable) -> Callable:
    """A function that writes into the (first) array ``make`` returns, as into NumPy's new array."""
    def f(x):
        out = make(x)
        y = out[0] if isinstance(out, (tuple, list)) else out
        y[(0,) * y.ndim] = 0.25
        return np.sum(np.asarray(y) ** 2)
    return f


NEW_ARRAYS = {  # functions whose NumPy result owns its data (wengert builds some from views of intermediates)
    "eigh": lambda x: np.linalg.eigh(x @ x.T)[::-1], "svd": lambda x: np.linalg.svd(x)[1],
    "qr": lambda x: np.linalg.qr(x), "cumprod": lambda x: np.cumprod(1 + 0.1 * x, axis=1),
    "nancumprod": lambda x: np.nancumprod(1 + 0.1 * x), "kron": lambda x: np.kron(x, x[:2, :2]),
    "cross": lambda x: np.cross(x[:, :3], x[::-1, 1:]), "meshgrid": lambda x: np.meshgrid(x[0], x[1]),
    "median-axis": lambda x: np.median(x, axis=1), "quantile-axis": lambda x: np.quantile(x, [0.2, 0.7], axis=0),
    "histogram-weights": lambda x: np.histogram(onp.arange(4.0), bins=2, weights=x[0]),
    "polyfit": lambda x: np.polyfit(onp.arange(4.0), x[1], 2),
    "apply_along_axis": lambda x: np.apply_along_axis(lambda r: r[::-1] * 2, 1, x),
    "matvec": lambda x: np.matvec(x, x[0]), "vecmat": lambda x: np.vecmat(x[0], x.T),
}


@pytest.mark.parametrize("name", NEW_ARRAYS)
def test_results_that_numpy_makes_new_can_be_written_into(name: str) -> None:
    f = _written_into(NEW_ARRAYS[name])
    assert onp.allclose(wengert.value_and_grad(f)(X)[0], f(X.copy()), rtol=1e-12)
    wengert.gradcheck(f, X.copy(), order=2)


def test_repeated_index_keeps_the_write_numpy_keeps() -> None:
    """Two writes land on y[0]: the gradient goes to the one whose value NumPy kept."""
    def f(v):
        y = np.zeros(3) + 0.0 * v[0]
        y[[0, 2, 0]] = v
        return np.sum(y * onp.array([1.0, 10.0, 100.0]))
    v = onp.array([1.0, 2.0, 3.0])
    plain = onp.zeros(3)
    plain[[0, 2, 0]] = v
    winner = 0 if plain[0] == v[0] else 2
    expected = onp.array([0.0, 100.0, 0.0])
    expected[winner] = 1.0
    onp.testing.assert_array_equal(wengert.grad(f)(v), expected)


# ----------------------------------------------------------------------------- at
I = onp.array([0, 2, 0, 1])


def at_add(x):
    return np.sum(np.at(x)[1, I].add(x[0] ** 2) * W)


def at_multiply(x):
    return np.sum(np.at(x)[2, I].multiply(x[0] + 0.5) * W)


def at_divide(x):
    return np.sum(np.at(x)[:, 1].divide(x[:, 0] + 1.0) * W)


def at_set(x):
    return np.sum(np.at(x)[(0, 1), [3, 3]].set(x[2, :2] * 4.0) * W) + np.sum(np.at(x)[0].get())


def at_power(x):
    return np.sum(np.at(x)[2, I].power(x[0] * 0.5 + 1.0) * W)


def at_min(x):  # X lies in (0.5, 1.5): the traced bounds cross it, away from ties
    return np.sum(np.at(x)[0, I].min(x[1] * 0.7 + 0.3) * W)


def at_max(x):
    return np.sum(np.at(x)[:, [1, 1]].max(x[:, 2:] * 0.9 + 0.15) * W)


AT_CASES = {f.__name__: f for f in [at_add, at_multiply, at_divide, at_set, at_power, at_min, at_max]}


@pytest.mark.parametrize("f", AT_CASES.values(), ids=AT_CASES.keys())
def test_at_matches_finite_differences(f: Callable) -> None:
    wengert.gradcheck(f, X.copy(), order=2)


@pytest.mark.parametrize("method, ufunc", [("add", onp.add), ("multiply", onp.multiply), ("power", onp.power),
                                           ("min", onp.minimum), ("max", onp.maximum)])
def test_at_accumulates_repeated_indices_like_numpy(method: str, ufunc: Any) -> None:
    v = onp.arange(1.0, 5.0)
    expected = X.copy()
    ufunc.at(expected, (1, I), v)
    onp.testing.assert_allclose(getattr(np.at(X)[1, I], method)(v), expected, rtol=1e-14)
    # and the property on traced arrays is the same thing
    g_prop = wengert.grad(lambda x: np.sum(getattr(x.at[1, I], method)(v * x[0, 0]) * W))(X)
    g_func = wengert.grad(lambda x: np.sum(getattr(np.at(x)[1, I], method)(v * x[0, 0]) * W))(X)
    onp.testing.assert_array_equal(g_prop, g_func)


def test_at_leaves_the_array_unchanged() -> None:
    def f(x):
        y = x.at[0].set(0.0)
        return np.sum(x * W) + 0.0 * np.sum(y)
    onp.testing.assert_allclose(wengert.grad(f)(X), W)


# ----------------------------------------------------------------------------- other traces
def test_assignment_under_no_grad_carries_no_gradient() -> None:
    def f(x):
        y = x * 2.0
        with wengert.no_grad():
            y[0] = x[1] * 100.0  # value assigned, but not differentiated
        return np.sum(y * W)
    expected = 2.0 * W
    expected[0] = 0.0
    onp.testing.assert_allclose(wengert.grad(f)(X), expected)


def _through_a_view(x):
    y = x * 2.0
    v = y[1:]
    with wengert.no_grad():
        v[0, 0] = 100.0 * x[0, 0]  # writes y[1, 0]: a constant there, y's other elements keep theirs
    return np.sum(y * W)


def _beside_a_view(x):
    y = x * 2.0
    v = y[1:]
    with wengert.no_grad():
        y[1, 0] = 100.0 * x[0, 0]  # v sees the write, and keeps the gradient of what was not written
    return np.sum(v * W[1:])


@pytest.mark.parametrize("f, rows", [(_through_a_view, slice(None)), (_beside_a_view, slice(1, None))],
                         ids=["through-a-view", "beside-a-view"])
def test_a_write_under_no_grad_leaves_the_other_elements_their_gradient(f: Callable, rows: slice) -> None:
    expected = onp.zeros_like(W)
    expected[rows] = 2.0 * W[rows]
    expected[1, 0] = 0.0
    onp.testing.assert_allclose(wengert.grad(f)(X), expected)
    t = onp.zeros_like(X)
    t[1, 1] = 1.0
    onp.testing.assert_allclose(wengert.jvp(f, (X,), (t,))[1], expected[1, 1])


def test_writing_into_a_plain_view_made_under_no_grad_is_refused() -> None:
    def f(x):
        y = x * x
        with wengert.no_grad():
            view = y[1:]  # a plain array sharing the recorded value's memory
        view[0] = 7.0
        return np.sum(y * y)
    with pytest.raises(wengert.MutationError, match="viewed inside no_grad by 'getitem'"):
        wengert.grad(f)(X)

    def reads(x):  # reading through such a view is fine
        y = x * x
        with wengert.no_grad():
            top = float(y[1:].max())
        return np.sum(y * top)
    onp.testing.assert_allclose(wengert.grad(reads)(X), 2.0 * X * float((X * X)[1:].max()))


def test_assignment_inside_nested_gradients() -> None:
    def inner(x, c):
        y = x * 1.0
        y[0] = c * x[1]
        return np.sum(y ** 2)

    def outer(c):
        return np.sum(wengert.grad(inner)(X, c))  # c from the outer trace written into an inner array
    wengert.gradcheck(outer, 0.7, order=2)


def test_forward_mode_follows_views() -> None:
    def f(x):
        y = x * 1.0
        row = y[0]
        row[1] = x[2, 2] ** 2
        t = y.T
        y[1, 0] = 3.0 * x[0, 3]
        return t * 1.0
    wengert.gradcheck(f, X, order=2)
    onp.testing.assert_allclose(wengert.jacfwd(f)(X), wengert.jacrev(f)(X), rtol=1e-13)


@pytest.mark.parametrize("name", ["write_through_view", "views_see_assignment", "results_that_are_the_array_itself",
                                  "floordiv_in_place", "attributes_set_in_place"])
def test_nested_forward_mode_follows_views(name: str) -> None:
    """Forward mode inside another transformation: the inner trace's values are boxes of the
    outer one, and its views must still write through (they were dropped from its list)."""
    f, x, v = PROGRAM_CASES[name], X.copy(), onp.cos(onp.arange(12.0)).reshape(X.shape)
    second = wengert.hessian(f)(x)  # reverse mode over reverse mode, which was right
    onp.testing.assert_allclose(wengert.jacfwd(wengert.jacfwd(f))(x), second, rtol=1e-10, atol=1e-12)
    inner = lambda z: wengert.jvp(f, (z,), (v,))[1]
    onp.testing.assert_allclose(wengert.grad(inner)(x), onp.einsum("ijkl,kl->ij", second, v), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- errors
ERRORS = [
    ("view-by-transpose", lambda x: x.T.__setitem__(0, 1.0), TypeError, r"view made by transpose"),
    ("view-by-reshape-of-a-held-array", lambda x: (lambda e: (e.reshape(4, 3).__setitem__(0, 1.0), e)[1])(x * 1.0),
     TypeError, r"view made by reshape"),
    *[(f"{label}-of-a-held-array", lambda x, view=view: (lambda y: (view(y).__setitem__(0, 1.0), y)[1])(x * 1.0),
       TypeError, rf"view made by {made_by} ") for label, made_by, view in [  # NumPy would write into y
        ("reshape-of-slice", "reshape", lambda y: y[:2].reshape(8)),
        ("transpose-of-slice", "transpose", lambda y: y[:, 1:].T),
        ("ravel-of-slice", "reshape", lambda y: y[1:].ravel()),
        ("swapaxes-of-slice", "swapaxes", lambda y: np.swapaxes(y[:], 0, 1)),
        ("flip-of-slice", "flip", lambda y: np.flip(y[:], 0)),
        ("squeeze-of-newaxis", "squeeze", lambda y: np.squeeze(y[None])),
        ("reshape-of-split", "reshape", lambda y: np.split(y, 3)[1].reshape(4, 1)),
        ("reshape-of-two-temporaries", "reshape", lambda y: y[:].reshape(12)[1:].reshape(1, 11)),
    ]],
    ("shape", lambda x: x[0].__iadd__(x), ValueError, r"x \+= y: y of shape \(3, 4\) does not broadcast"),
    ("dtype", lambda x: (x * 1.0).__imul__(1j), TypeError, r"x \*= y: the result has dtype complex128"),
]


@pytest.mark.parametrize("name, call, error, pattern", ERRORS, ids=[e[0] for e in ERRORS])
def test_assignment_errors(name: str, call: Callable, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        wengert.grad(lambda x: np.sum(call(x)))(X)


def test_value_from_an_inner_trace_cannot_be_assigned_into_an_outer_array() -> None:
    def outer(x):
        y = x * 1.0

        def inner(z):
            y[0] = z  # y belongs to the outer computation
            return np.sum(z)
        wengert.grad(inner)(X[0])
        return np.sum(y)
    with pytest.raises(TypeError, match="nested inside"):
        wengert.grad(outer)(X)


# ----------------------------------------------------------------------------- ufunc.at
def ufunc_at(x):
    y = x * 1.0
    onp.add.at(y, (0, [0, 0, 2]), x[1, :3] ** 2)
    onp.subtract.at(y, (1, [3, 3]), x[2, :2])
    onp.multiply.at(y, (2, [1, 1]), x[0, :2] + 0.5)
    onp.divide.at(y, ([0, 0], [1, 1]), x[1, 1:3] + 1.0)
    onp.power.at(y, (2, [3, 3]), x[0, 2:] * 0.5 + 0.5)
    onp.minimum.at(y, (1, [0, 2, 0]), x[2, :3] * 0.8 + 0.2)
    onp.maximum.at(y, (0, [3]), x[2, 3] * 0.9)
    return np.sum(np.sin(y) * W)


def test_ufunc_at_on_traced_arrays_matches_numpy_and_finite_differences() -> None:
    value = wengert.value_and_grad(ufunc_at)(X)[0]
    onp.testing.assert_allclose(value, ufunc_at(X.copy()), rtol=1e-12)
    wengert.gradcheck(ufunc_at, X, order=2)


# ----------------------------------------------------------------------------- copies
# What NumPy returns as a new array is a new traced array: writing into it leaves the traced
# array it came from alone (and what NumPy returns as the same array, or a view, writes through).
COPIES = {
    "np.array": lambda x: np.array(x), "np.array(ndmin=3)": lambda x: np.array(x, ndmin=3),
    "np.array(dtype)": lambda x: np.array(x, dtype=onp.float64), "x.astype(float)": lambda x: x.astype(float),
    "np.astype": lambda x: np.astype(x, onp.float64), "x.flatten()": lambda x: x.flatten(),
    "ascontiguousarray(x.T)": lambda x: np.ascontiguousarray(x.T), "asfortranarray(x)": lambda x: np.asfortranarray(x),
    "asarray(order='F')": lambda x: np.asarray(x, order="F"), "x.copy()": lambda x: x.copy(),
}
SAME = {"np.asarray": lambda x: np.asarray(x), "np.array(copy=False)": lambda x: np.array(x, copy=False),
        "x.astype(copy=False)": lambda x: x.astype(float, copy=False),
        "ascontiguousarray(x)": lambda x: np.ascontiguousarray(x)}


def written_copy(make: Callable) -> Callable:
    def f(x):
        y = x * 1.0
        c = make(y)
        c[..., 1] = 5.0
        return np.sum(np.sin(y) * W) + np.sum(np.cos(c))
    return f


@pytest.mark.parametrize("make", [*COPIES.values(), *SAME.values()], ids=[*COPIES, *SAME])
def test_writing_into_a_copy_or_the_same_array_follows_numpy(make: Callable) -> None:
    f = written_copy(make)
    value, _ = wengert.vjp(f, X)
    onp.testing.assert_allclose(value, f(X.copy()), rtol=1e-12)  # NumPy's own result
    wengert.gradcheck(f, X, order=2)


# ----------------------------------------------------------------------------- mutation
def mutate_factor(x):
    buf = onp.ones(4)
    y = x * buf  # the rule for x reads buf
    buf[0] = 5.0
    return np.sum(y * x)


def mutate_matrix(x):
    m = onp.eye(4)
    y = m @ x.T
    m *= 2.0
    return np.sum(np.sin(y))


def mutate_index(x):
    idx = onp.array([0, 2])
    y = x[idx]
    idx[0] = 1
    return np.sum(y ** 2)


def mutate_stop_gradient(x):
    y = np.exp(x)
    v = wengert.stop_gradient(y)
    v[0, 0] = 0.0  # the value exp saved for its own rule
    return np.sum(y)


def mutate_reused_buffer(x):
    total, buf = 0.0, onp.empty(4)
    for i in range(3):
        buf[:] = W[i]
        total = total + np.sum(np.sin(x[i] * buf))
    return total


MUTATIONS = {f.__name__: (f, saver) for f, saver in [
    (mutate_factor, "argument 1 of 'multiply'"), (mutate_matrix, "argument 0 of 'matmul'"),
    (mutate_index, "argument 1 of 'getitem'"), (mutate_stop_gradient, "the value of 'exp' returned by stop_gradient"),
    (mutate_reused_buffer, "argument 1 of 'multiply'")]}


@pytest.mark.parametrize("f, saver", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_mutating_a_saved_array_is_an_error_naming_the_operation(f: Callable, saver: str) -> None:
    with pytest.raises(wengert.MutationError, match=rf"^{saver}, an array of shape"):
        wengert.grad(f)(X)


def mutated_where(x):
    mask, total = onp.zeros(4, bool), 0.0
    for k in range(2):
        mask[:] = onp.arange(4) % 2 == k
        total = total + (k + 1) * np.sum(x[0] ** 2, where=mask)
    return total


def test_a_mask_given_as_a_keyword_is_watched_too() -> None:
    with pytest.raises(wengert.MutationError, match=r"^keyword argument 'where' of 'sum', an array of shape \(4,\)"):
        wengert.grad(mutated_where)(X)


def reused_list_index(x):
    idx, total = [0, 0], 0.0
    for i in range(3):
        idx[0], idx[1] = i, i + 1  # the tape keeps the index as it was
        total = total + np.prod(x[1, idx]) + np.sum(x[(2, idx)] ** 2)
    return total


def reused_list_argument(x):
    w, total = [1.0, 2.0, 3.0, 4.0], 0.0
    for i in range(2):
        w[0] = float(i)
        total = total + np.sum(np.dot(x, w) ** 2)
    return total


def reused_list_written(x):
    y, idx = x * 1.0, [0, 1]
    y[0, idx] = x[1, :2] ** 2
    idx[0] = 3
    return np.sum(np.sin(y) * W)


def reused_buffer_added(x):
    buf, total = onp.zeros(4), 0.0
    for i in range(3):
        buf[:] = i  # x + buf and buf - x do not keep buf: their derivatives do not read it
        total = total + np.sum(np.exp(x[i] + buf)) + np.sum(np.exp(buf - x[i]))
    return total


def reused_list_mask(x):
    mask = [True, False, True, True]
    total = np.sum(x ** 2, where=mask, axis=1)
    mask[0] = False
    return np.sum(total * np.sum(x ** 3, where=mask))


def empty_list_indices(x):
    y = x * 1.0
    y[[[]]] = 5.0
    return np.sum(x[[]]) + np.sum(x[:, []] * 2.0) + np.sum(x[[[]]]) + np.sum(np.take(x, [])) + np.sum(y ** 3)


@pytest.mark.parametrize("f", [reused_list_index, reused_list_argument, reused_list_written, reused_list_mask,
                               reused_buffer_added, empty_list_indices],
                         ids=["list index", "list argument", "list index written", "list mask", "buffer added",
                              "empty list index"])
def test_lists_and_buffers_changed_after_use_do_not_change_the_derivative(f: Callable) -> None:
    wengert.gradcheck(f, X, order=2)


def test_mutation_between_forward_pass_and_pullback_is_caught() -> None:
    buf = onp.ones(4)
    _, pull = wengert.vjp(lambda x: x @ buf, X)
    pull(onp.ones(3))  # unchanged: fine
    buf[2] = 3.0
    with pytest.raises(wengert.MutationError):
        pull(onp.ones(3))


@pytest.mark.parametrize("c, new", [(onp.array([onp.nan, 1.0, 2.0, 3.0]), 7.0),  # NaN: compared by bytes
                                    (onp.array([1.0, 2.0, 3.0, 4.0]), onp.nan),
                                    (onp.arange(4), 7), (onp.array([True, False, True, True]), True)])
def test_arrays_with_nan_and_integer_arrays_are_watched_too(c: Any, new: Any) -> None:
    def f(x):
        y = x[0] * c
        c[1] = new
        return np.sum(y * x[0])
    with pytest.raises(wengert.MutationError):
        wengert.grad(f)(X)


# Constants up to 64 kB are compared by a copy of their bytes, larger ones by their bits folded
# into columns and weighted sums of their blocks of 1024 elements: both sizes (the large one
# ends in a partial block), every dtype that is watched, and a NaN already there.
SIZES = {"small": 5, "large": 20_000}
KINDS = {"float64": lambda n: R.normal(size=n), "float32": lambda n: R.normal(size=n).astype(onp.float32),
         "complex": lambda n: R.normal(size=n) + 1j * R.normal(size=n), "int": lambda n: R.integers(-9, 9, n),
         "bool": lambda n: R.random(n) > 0.5,
         "with a NaN": lambda n: onp.where(onp.arange(n) == 3, onp.nan, R.normal(size=n))}


def _other(c: Any, i: int) -> None:
    c[i] = ~c[i] if c.dtype == bool else c[i] + 1


def _swap(c: Any, i: int) -> None:
    j = onp.flatnonzero(c != c[i])[-1]  # an element that differs, in another block when large
    c[[i, j]] = c[[j, i]]


CHANGES = {"one element": lambda c: _other(c, 1), "the last element": lambda c: _other(c, -1),
           "two swapped": lambda c: _swap(c, 0), "a NaN written": lambda c: c.__setitem__(2, onp.nan),
           "all negated": lambda c: onp.negative(c, out=c, where=c != 0),
           "reshaped in place": lambda c: setattr(c, "shape", (c.size, 1))}
UNFIT = {("int", "a NaN written"), ("bool", "a NaN written"), ("bool", "all negated")}
MUTATED = [(size, kind, change) for size in SIZES for kind in KINDS for change in CHANGES
           if (kind, change) not in UNFIT]


@pytest.mark.parametrize("size, kind, change", MUTATED, ids=["-".join(case) for case in MUTATED])
def test_every_change_to_a_watched_constant_is_caught(size: str, kind: str, change: str) -> None:
    c = KINDS[kind](SIZES[size])

    def f(x):
        y = x[0, 0] * c  # the rule for x reads c
        CHANGES[change](c)
        return np.sum(np.real(y))
    with pytest.raises(wengert.MutationError, match="argument 1 of 'multiply'"):
        wengert.grad(f)(X)


def _large(dtype: Any, first: Any) -> Any:
    c = onp.ones(20_000, dtype)
    c[0] = first
    return c


HIDDEN = {  # (a large constant, a change that one of the two summaries does not see)
    "beside a much larger element": (lambda: _large(float, 1e20), lambda c: c.__setitem__(5, 1000.0)),
    "beside a much larger element, float32": (lambda: _large(onp.float32, 1e30), lambda c: c.__setitem__(5, 9.0)),
    "beside an infinity": (lambda: _large(float, onp.inf), lambda c: c.__setitem__(5, 2.0)),
    "beside a large integer": (lambda: _large(onp.int64, 2 ** 62), lambda c: c.__setitem__(5, 2)),
    "two elements 8 kB apart set alike": (lambda: _large(float, 1.0), lambda c: c.__setitem__([3, 1027], 0.0)),
    "a strided view": (lambda: onp.arange(60_000.0)[::3], lambda c: c.__setitem__(5, -1.0)),
    "a transposed view": (lambda: onp.arange(20_000.0).reshape(100, 200).T, lambda c: c.__setitem__((5, 3), -1.0)),
}


@pytest.mark.parametrize("make, change", HIDDEN.values(), ids=HIDDEN.keys())
def test_changes_one_summary_of_a_large_constant_misses_are_caught(make: Callable, change: Callable) -> None:
    c = make()

    def f(x):
        y = x[0, 0] * c
        change(c)
        return np.sum(y)
    with pytest.raises(wengert.MutationError, match="argument 1 of 'multiply'"):
        wengert.grad(f)(X)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_unchanged_constants_pass(size: str, kind: str) -> None:
    c = KINDS[kind](SIZES[size])
    g = wengert.grad(lambda x: np.sum(np.real(x[0, 0] * c * x[0, 0])))(X)
    onp.testing.assert_allclose(g[0, 0], 2 * X[0, 0] * onp.sum(onp.real(c)), rtol=1e-6)
    assert not g[1:].any()


SHARED_A = onp.arange(1.0, 13.0)


def _writes(x, y):
    x[0] = 5.0 * y[1]
    return np.sum(x * y)


SHARING = [  # (id, a gradient whose function writes into an argument another way of reaching it shares)
    ("same array", lambda a: wengert.grad(_writes, argnum=(0, 1))(a, a)),
    ("reversed view", lambda a: wengert.grad(_writes, argnum=(0, 1))(a, a[::-1])),
    ("row view", lambda a: wengert.grad(_writes, argnum=(0, 1))(a, a.reshape(3, 4)[0])),
    ("an argument not differentiated", lambda a: wengert.grad(_writes)(a, a)),
    ("in a list", lambda a: wengert.grad(lambda x, ys: _writes(x, ys[0]))(a, [a[2:]])),
    ("a keyword argument", lambda a: wengert.grad(lambda x, y=None: _writes(x, y))(a, y=a)),
    ("a closure", lambda a: wengert.grad(lambda x: _writes(x, a))(a)),
    ("a global", lambda _: wengert.grad(lambda x: _writes(x, SHARED_A))(SHARED_A)),
]


@pytest.mark.parametrize("call", [c[1] for c in SHARING], ids=[c[0] for c in SHARING])
def test_writing_into_an_argument_that_shares_memory_with_another_is_refused(call: Callable) -> None:
    """NumPy would change both; their traced values are separate, so the value and the gradient
    would silently differ from NumPy's."""
    with pytest.raises(TypeError, match=r"^Assigning into an argument that shares its memory with another"):
        call(SHARED_A.copy())
    a = SHARED_A.copy()
    g = wengert.grad(_writes, argnum=(0, 1))(a, a.copy())  # copies: fine, and reading both is fine too
    assert g[0][0] == 0.0 and wengert.grad(lambda x, y: np.sum(x * y), argnum=(0, 1))(a, a)[0][0] == 1.0
