"""Duck arrays: array types other than ndarray keep their type through the forward and the
backward pass, through both ``wengert.numpy`` calls and plain ``numpy`` calls.

Two kinds are used: a minimal wrapper class that is *not* an ndarray subclass (it stores an
ndarray and implements ``__array_ufunc__`` and ``__array_function__`` by unwrapping its own
instances, calling NumPy and re-wrapping ndarray results; operators come from NumPy's
``NDArrayOperatorsMixin``, which routes them through the ufuncs), and an ndarray subclass.
"""

from __future__ import annotations

import numpy as onp
import pytest
from numpy.lib.mixins import NDArrayOperatorsMixin

import wengert.numpy as np
from wengert import elementwise_grad, grad, jvp, stop_gradient, value_and_grad, vjp


class Wrapped(NDArrayOperatorsMixin):
    """A minimal duck array: an ndarray inside, the NumPy protocols outside. Immutable."""

    def __init__(self, data):
        self.data = onp.asarray(data)

    # -- the array-like surface
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        return f"{type(self).__name__}({self.data!r})"

    def __getitem__(self, index):
        return self._wrap(self.data[self._unwrap(index)])

    # -- unwrapping and rewrapping
    @classmethod
    def _unwrap(cls, x):
        if isinstance(x, Wrapped):
            return x.data
        if type(x) in (list, tuple):
            return type(x)(cls._unwrap(e) for e in x)
        if type(x) is dict:
            return {k: cls._unwrap(v) for k, v in x.items()}
        return x

    @classmethod
    def _wrap(cls, x):
        if type(x) is onp.ndarray:
            return cls(x)
        if type(x) in (list, tuple):
            return type(x)(cls._wrap(e) for e in x)
        return x

    # -- the protocols
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        result = getattr(ufunc, method)(*self._unwrap(inputs), **self._unwrap(kwargs))
        return None if method == "at" else self._wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        return self._wrap(func(*self._unwrap(args), **self._unwrap(kwargs)))


class SettableWrapped(Wrapped):
    """The same, plus item assignment (mutable)."""

    def __setitem__(self, index, value):
        self.data[self._unwrap(index)] = self._unwrap(value)


class Sub(onp.ndarray):
    """A plain ndarray subclass."""


X = onp.array([[0.5, -0.7, 1.1], [2.0, 0.1, -1.5]])
C = onp.array([1.0, 2.0, -0.5])
A = onp.array([[0.3, -1.0, 0.5, 2.0], [1.5, 0.2, -0.4, 0.7], [-0.6, 0.9, 1.2, -0.3]])
R = onp.array([[1.0, -1.0], [0.5, 2.0], [-0.3, 0.4]])


def make(kind, x):
    return x.view(Sub) if kind is Sub else kind(x)


def plain(x):
    if isinstance(x, Wrapped):
        return x.data
    return onp.asarray(x).view(onp.ndarray)


# Every function is non-linear in x, so that values of the input's type take part in the
# backward pass. Written twice: with wengert.numpy and with plain numpy.
FUNCTIONS = [
    ("ufunc-broadcast-plain", lambda m, x: m.sum(m.sin(x) * C + m.exp(x) / (1.0 + C))),
    ("sum-axis", lambda m, x: m.sum(m.sum(x * x, axis=0) * C) + m.sum(m.tanh(x), axis=1)[1]),
    ("reshape", lambda m, x: m.sum(m.reshape(m.sin(x), (3, 2)) * R)),
    ("matmul", lambda m, x: m.sum(m.matmul(m.cos(x), A)) + m.sum((x * x) @ A)),
    # in the indexing cases the cotangent reaching the indexing is itself of the input's type
    ("basic-index", lambda m, x: m.sum(m.sin(x)[:, 1:] * x[0, :2]) + x[1, 2] ** 2),
    ("fancy-index", lambda m, x: m.sum(m.exp(x)[:, [0, 0, 2]] * x[[1, 1]])),
    ("mask-index", lambda m, x: m.sum(m.sin(x)[X > 0.3] * x[X > 0.3])),
    ("everything", lambda m, x: m.sum(m.matmul(m.reshape(m.tanh(x) * C, (3, 2)), R.T)[:, ::2])
     + m.sum(m.sum(x ** 3, axis=1) * onp.array([1.0, -2.0])) + m.sum(x[0, :2] * m.sin(x)[1, :2])),
    # functions whose rules once called methods a duck array lacks (.real, .astype, .copy) or
    # wrote into its values (x.at[...] is functional, so it must work on an immutable one)
    ("norm", lambda m, x: m.linalg.norm(m.sin(x)) + m.sum(m.linalg.norm(x, axis=0) * C)),
    ("astype", lambda m, x: m.sum(m.astype(m.sin(x), onp.float32) * X) + m.sum(x.astype(onp.complex128).real ** 3)),
    ("sinc", lambda m, x: m.sum(m.sinc(0.5 * x) * X)),  # both of its branches
    ("astype-int", lambda m, x: m.sum(m.sin(x) * m.astype(3.0 * x, onp.int64))),
    ("eigvals", lambda m, x: m.sum(m.real(m.linalg.eigvals(m.sin(x)[:, :2] * x[:, 1:] + 3.0 * onp.eye(2))))),
    ("histogram-weights", lambda m, x: m.sum(m.histogram(onp.arange(6.0), 3, weights=m.ravel(m.sin(x)))[0] * C)),
    ("at-set", lambda m, x: m.sum(np.at(m.exp(x))[0, [0, 2]].set(x[1, :2] ** 2) * X)),
    ("at-multiply", lambda m, x: m.sum(np.at(x * x)[[1, 1], 2].multiply(m.sin(x)[0, :2]) * X)),
    ("at-set-mask", lambda m, x: m.sum(np.at(m.tanh(x))[X > 0.3].set(x[0, 0]) * X)),
]
def _cases():
    for name, f in FUNCTIONS:
        for kind in (Wrapped, SettableWrapped, Sub):
            for module in ("wengert.numpy", "numpy"):
                yield pytest.param(name, f, kind, module, id=f"{name}-{kind.__name__}-{module}")


@pytest.mark.parametrize("name,f,kind,module", list(_cases()))
def test_grad_keeps_the_input_type_and_matches_plain_gradient(name, f, kind, module):
    m = np if module == "wengert.numpy" else onp
    expected = grad(lambda x: f(np, x))(X)
    g = grad(lambda x: f(m, x))(make(kind, X.copy()))
    assert type(g) is kind
    assert g.shape == X.shape and g.dtype == X.dtype
    assert onp.allclose(plain(g), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", [Wrapped, SettableWrapped, Sub])
def test_forward_values_keep_the_input_type(kind):
    seen = {}

    def f(x):
        y = np.sin(x) * C
        z = np.matmul(np.reshape(y, (3, 2)), R.T)
        seen["y"], seen["z"] = stop_gradient(y), stop_gradient(z)
        return np.sum(z * z)

    value, g = value_and_grad(f)(make(kind, X))
    assert type(seen["y"]) is kind and type(seen["z"]) is kind
    assert type(g) is kind
    yy = onp.sin(X) * C
    assert onp.allclose(plain(seen["z"]), yy.reshape(3, 2) @ R.T)
    assert float(plain(value)) == pytest.approx(onp.sum((yy.reshape(3, 2) @ R.T) ** 2))


@pytest.mark.parametrize("kind", [Wrapped, SettableWrapped, Sub])
def test_elementwise_grad_keeps_the_input_type(kind):
    g = elementwise_grad(lambda x: np.exp(x) * C + x ** 2)(make(kind, X))
    assert type(g) is kind
    assert onp.allclose(plain(g), onp.exp(X) * C + 2 * X)


@pytest.mark.parametrize("kind", [Wrapped, SettableWrapped, Sub])
def test_vjp_output_and_cotangent_keep_the_type(kind):
    out, fn = vjp(lambda x: np.tanh(x) * C, make(kind, X))
    assert type(out) is kind
    (g,) = fn(onp.ones((2, 3)))
    assert type(g) is kind
    assert onp.allclose(plain(g), (1 - onp.tanh(X) ** 2) * C)


@pytest.mark.parametrize("kind", [Wrapped, SettableWrapped, Sub])
def test_zero_gradient_keeps_the_input_type(kind):
    g = grad(lambda x: 3.0)(make(kind, X))
    assert type(g) is kind and g.shape == X.shape and not plain(g).any()


@pytest.mark.parametrize("kind", [Wrapped, SettableWrapped, Sub])
def test_second_derivative_of_duck_input(kind):
    # d2/dx2 of sum(sin(x) * x) on the diagonal: 2 cos x - x sin x
    h = elementwise_grad(grad(lambda x: np.sum(np.sin(x) * x)))(make(kind, X))
    assert type(h) is kind
    assert onp.allclose(plain(h), 2 * onp.cos(X) - X * onp.sin(X))


@pytest.mark.parametrize("kind", [Wrapped, SettableWrapped, Sub])
def test_duck_input_inside_a_pytree(kind):
    g = grad(lambda p: np.sum(np.sin(p["x"]) * p["w"]))({"x": make(kind, X), "w": 2.0})
    assert type(g["x"]) is kind
    assert onp.allclose(plain(g["x"]), 2.0 * onp.cos(X))
    assert g["w"] == pytest.approx(onp.sum(onp.sin(X)))


@pytest.mark.parametrize("kind", [Wrapped, SettableWrapped, Sub])
@pytest.mark.parametrize("f", [
    lambda x: np.sum(x),
    lambda x: np.sum(x * C),
    lambda x: np.sum(np.reshape(x, (3, 2)) * R),
], ids=["sum", "scale", "reshape"])
def test_linear_function_gradient_keeps_the_input_type(kind, f):
    g = grad(f)(make(kind, X))
    assert type(g) is kind


def test_duck_gradient_values_match_for_linear_function():
    # whatever the type, the values are right
    g = grad(lambda x: np.sum(np.reshape(x, (3, 2)) * R))(Wrapped(X))
    assert onp.allclose(plain(g), R.reshape(2, 3))


def test_minimal_basic_indexing_of_immutable_duck_array():
    g = grad(lambda x: np.sum(x[0] * x[1]))(Wrapped(X))
    assert type(g) is Wrapped
    assert onp.allclose(plain(g), X[::-1])


def test_fancy_indexing_of_immutable_duck_array():
    g = grad(lambda x: np.sum(x[[0]] * x[[1]]))(Wrapped(X))
    assert type(g) is Wrapped
    assert onp.allclose(plain(g), X[::-1])


@pytest.mark.parametrize("name,f", FUNCTIONS, ids=[c[0] for c in FUNCTIONS])
@pytest.mark.parametrize("kind", [Wrapped, SettableWrapped, Sub])
def test_jvp_of_duck_input_matches_plain_tangent(kind, name, f):
    tangent = onp.cos(3.0 * X)
    value, expected = jvp(lambda x: f(np, x), (X,), (tangent,))
    found_value, found = jvp(lambda x: f(np, x), (make(kind, X.copy()),), (make(kind, tangent),))
    assert onp.allclose(plain(found_value), value, rtol=1e-12, atol=1e-14)
    assert onp.allclose(plain(found), expected, rtol=1e-12, atol=1e-14)


def test_assignment_into_immutable_duck_array_names_the_functional_form():
    def f(x):
        y = np.sin(x)
        y[0, 1] = 2.0
        return np.sum(y)

    with pytest.raises(TypeError, match=r"x\[\.\.\.\] = v: x is a traced Wrapped, .*x\.at\[index\]\.set\(v\)"):
        grad(f)(Wrapped(X))
    with pytest.raises(TypeError, match="does not support item assignment"):  # as untraced
        f(Wrapped(X))
    g = grad(f)(SettableWrapped(X))  # a mutable one is written as NumPy writes
    expected = onp.cos(X)
    expected[0, 1] = 0.0
    assert type(g) is SettableWrapped and onp.allclose(plain(g), expected)
