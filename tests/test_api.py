"""The public gradient API: grad, value_and_grad, elementwise_grad, vjp, make_vjp,
stop_gradient, no_grad.

Gradients are checked against central finite differences (float64), against closed forms
worked out by hand, and against HIPS autograd as an independent oracle.
"""

from __future__ import annotations

import collections
import math

import autograd
import autograd.numpy as anp
import numpy as onp
import pytest

import wengert
import wengert.numpy as np
from _helpers import close as _close
from _helpers import fd_grad
from wengert import elementwise_grad, grad, make_vjp, stop_gradient, value_and_grad, vjp
from wengert._tree import flatten

RTOL, ATOL = 1e-6, 1e-8


def close(a, b, rtol=RTOL, atol=ATOL):
    return _close(a, b, rtol, atol)


# ----------------------------------------------------------------------------- helpers
def fd_vjp(f, x, ct, eps=1e-6):
    """Central finite differences of <ct, f(x)> with respect to the array x."""
    return fd_grad(lambda z: onp.sum(onp.asarray(f(z)) * ct), x, eps)


X3 = onp.array([0.3, -1.2, 2.0])
X23 = onp.array([[0.5, -0.7, 1.1], [2.0, 0.1, -1.5]])


# ----------------------------------------------------------------------------- grad: values
SCALAR_FUNCTIONS = [
    # (name, wengert function, autograd function, point)
    ("poly", lambda x: 3 * x ** 3 - 2 * x + 1, lambda x: 3 * x ** 3 - 2 * x + 1, 1.3),
    ("sin*exp", lambda x: np.sin(x) * np.exp(-x), lambda x: anp.sin(x) * anp.exp(-x), 0.7),
    ("quotient", lambda x: (x + 1) / (x * x + 2), lambda x: (x + 1) / (x * x + 2), -0.4),
    ("log-tanh", lambda x: np.log(1 + np.tanh(x) ** 2), lambda x: anp.log(1 + anp.tanh(x) ** 2), 0.9),
    ("rpow", lambda x: 2.0 ** x + x ** 0.5, lambda x: 2.0 ** x + x ** 0.5, 1.7),
]


@pytest.mark.parametrize("name,f,af,x0", SCALAR_FUNCTIONS, ids=[c[0] for c in SCALAR_FUNCTIONS])
def test_grad_scalar_functions_match_fd_and_autograd(name, f, af, x0):
    g = grad(f)(x0)
    assert close(g, fd_grad(f, x0))
    assert close(g, autograd.grad(af)(x0))
    wengert.gradcheck(f, x0)


ARRAY_FUNCTIONS = [
    ("sum-sin", lambda x: np.sum(np.sin(x) * x), lambda x: anp.sum(anp.sin(x) * x), X23),
    ("mean-sq-axis", lambda x: np.sum(np.mean(x ** 2, axis=0) * np.array([1.0, 2.0, 3.0])),
     lambda x: anp.sum(anp.mean(x ** 2, axis=0) * anp.array([1.0, 2.0, 3.0])), X23),
    ("matmul-tanh", lambda x: np.sum(np.tanh(x @ x.T)), lambda x: anp.sum(anp.tanh(anp.dot(x, x.T))), X23),
    ("logsumexp", lambda x: np.log(np.sum(np.exp(x))), lambda x: anp.log(anp.sum(anp.exp(x))), X3),
    ("norm", lambda x: np.sqrt(np.sum(x * x)), lambda x: anp.sqrt(anp.sum(x * x)), X3),
]


@pytest.mark.parametrize("name,f,af,x0", ARRAY_FUNCTIONS, ids=[c[0] for c in ARRAY_FUNCTIONS])
def test_grad_array_functions_match_fd_and_autograd(name, f, af, x0):
    g = grad(f)(x0)
    assert isinstance(g, onp.ndarray) and g.shape == x0.shape and g.dtype == x0.dtype
    assert close(g, fd_grad(f, x0))
    assert close(g, autograd.grad(af)(x0))


def test_gradcheck_passes_on_correct_function_and_raises_on_wrong_rule():
    wengert.gradcheck(lambda x, y: np.sin(x) * y + x ** 2, X3, X3[::-1].copy())

    @wengert.primitive
    def wrong_square(x):
        return x * x
    wengert.defvjp(wrong_square, lambda g, ans, x: g * 3.0 * x)  # should be 2x
    with pytest.raises(wengert.GradcheckError, match="argument 0"):
        wengert.gradcheck(wrong_square, X3)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_gradcheck_fails_on_a_nan_derivative_where_finite_differences_are_finite(mode):
    @wengert.primitive
    def nan_slope(x):
        return x * x
    wengert.defvjp(nan_slope, lambda g, ans, x: g * onp.nan)
    wengert.defjvp(nan_slope, lambda t, ans, x: t * onp.nan)
    with pytest.raises(wengert.GradcheckError, match=f"{mode} mode gives nan"):
        wengert.gradcheck(nan_slope, X3, modes=(mode,))


@wengert.primitive
def _doubled_sin(x):  # a deliberately wrong rule: twice the derivative
    return onp.sin(x)


wengert.defvjp(_doubled_sin, lambda g, ans, x: 2 * g * np.cos(x))


@pytest.mark.parametrize("f, args, where", [
    (lambda n, x: n * _doubled_sin(x), (3, X3), r"argument 1 at"),  # the int argument is held fixed
    (lambda d: d["a"] + _doubled_sin(d["b"]), ({"a": X3, "b": X3[::-1].copy()},), r"argument 0\['b'\] at"),
    (lambda p: p[0] * _doubled_sin(p[1][1]), ((2.0, (X3, 0.5)),), r"argument 0\[1\]\[1\] at"),
], ids=["after-an-int", "in-a-dict", "nested"])
def test_gradcheck_names_the_argument_and_the_place_in_it(f, args, where):
    with pytest.raises(wengert.GradcheckError, match=where):
        wengert.gradcheck(f, *args, modes="reverse")


@pytest.mark.parametrize("f, args", [
    (lambda x: x ** 2, (onp.array([7e8, -3e9]),)),  # an absolute step of 1e-6 is lost at 7e8
    (lambda x, y: np.sin(x) * y, (onp.array([0.7], onp.float32), onp.array([1.0]))),  # float32 beside float64
    (lambda x: np.exp(-x / 1e7), (onp.array([2e7]),)),
    (lambda x: x ** 2, (onp.array([1e4, 1.0]),)),  # outputs of very different sizes: the large one's
    (np.exp, (onp.array([30.0, 1.0]),)),            # rounding must not swamp the small one's change
    (lambda x, y: (x * 1e8, np.sin(y)), (1.0, 0.5)),
], ids=["large-values", "mixed-precision", "large-scale", "square-1e4-and-1", "exp-30-and-1", "1e8x-beside-sin"])
def test_gradcheck_passes_correct_functions_at_large_or_mixed_scales(f, args):
    wengert.gradcheck(f, *args)


@wengert.primitive
def _sin_one_percent_off(x):
    return onp.sin(x)


wengert.defvjp(_sin_one_percent_off, lambda g, ans, x: g * np.cos(x) * 1.01)


@pytest.mark.parametrize("f, args", [
    (_sin_one_percent_off, (onp.array([0.3, 0.7], onp.float32),)),
    (lambda x, y: _sin_one_percent_off(x) + y, (onp.array([0.3, 0.7]), onp.float32(1.0))),
    (_sin_one_percent_off, (onp.array([0.3, 0.7]),)),
], ids=["float32", "float64-beside-float32", "float64"])
def test_gradcheck_catches_a_rule_one_percent_off_at_every_precision(f, args):
    with pytest.raises(wengert.GradcheckError, match="argument 0"):
        wengert.gradcheck(f, *args, order=1)


@pytest.mark.parametrize("options, match", [
    (dict(modes=()), "modes must name"),
    (dict(modes=("reverse", "sideways")), "modes must name"),
    (dict(directions=0), "directions must be an int of at least 1"),
    (dict(max_coordinates=-1), "max_coordinates must be an int of at least 0"),
    (dict(eps=0.0), "eps must be a finite number above 0"),
    (dict(eps="a"), "eps must be"),
    (dict(rtol=-1.0), "rtol must be a finite number of at least 0"),
    (dict(atol=onp.nan), "atol must be"),
])
def test_gradcheck_refuses_options_that_would_check_nothing_or_everything(options, match):
    with pytest.raises(ValueError, match=f"^gradcheck: {match}"):
        wengert.gradcheck(_doubled_sin, X3, **options)


def test_gradcheck_takes_a_single_mode_as_a_string_and_keeps_a_zero_tolerance():
    with pytest.raises(wengert.GradcheckError, match="reverse mode"):
        wengert.gradcheck(_doubled_sin, X3, modes="reverse")
    with pytest.raises(wengert.GradcheckError, match=r"tolerance 1e-13"):  # rtol=0 is kept, not the default
        wengert.gradcheck(lambda x: x ** 3, onp.array([0.3]), rtol=0, atol=1e-13, modes="reverse")


def test_gradcheck_says_when_the_step_leaves_the_domain():
    with onp.errstate(invalid="ignore"):
        with pytest.raises(wengert.GradcheckError, match="step 1e-06 may leave the function's domain"):
            wengert.gradcheck(np.log, onp.array([1e-8]))
        wengert.gradcheck(np.log, onp.array([1e-8]), eps=1e-14, order=1)


# ----------------------------------------------------------------------------- argnum
def f3(x, y, z):
    return x * x * y + np.sin(z) * y


def f3_grads(x, y, z):
    return (2 * x * y, x * x + math.sin(z), math.cos(z) * y)


@pytest.mark.parametrize("argnum,expected_index", [
    (0, 0), (1, 1), (2, 2), (-1, 2), (-2, 1), (-3, 0),
])
def test_argnum_int_and_negative(argnum, expected_index):
    args = (1.5, -0.5, 0.8)
    g = grad(f3, argnum=argnum)(*args)
    assert isinstance(g, float)
    assert g == pytest.approx(f3_grads(*args)[expected_index], rel=1e-12)


@pytest.mark.parametrize("argnum", [(0,), (0, 2), (2, 0), (1, -1), (0, 1, 2), (-1, -2, -3)])
def test_argnum_tuple_returns_tuple_in_the_given_order(argnum):
    args = (1.5, -0.5, 0.8)
    g = grad(f3, argnum=argnum)(*args)
    expected = f3_grads(*args)
    assert isinstance(g, tuple) and len(g) == len(argnum)
    for gi, k in zip(g, argnum):
        assert gi == pytest.approx(expected[k], rel=1e-12)


def test_argnum_numpy_integer_is_accepted():
    assert grad(f3, argnum=onp.int64(1))(1.5, -0.5, 0.8) == pytest.approx(1.5 ** 2 + math.sin(0.8))


def test_keyword_arguments_are_passed_but_not_differentiated():
    f = lambda x, scale=1.0: scale * np.sin(x)  # noqa: E731
    assert grad(f)(0.3, scale=4.0) == pytest.approx(4.0 * math.cos(0.3))


# ----------------------------------------------------------------------------- has_aux
def loss_with_aux(x):
    y = np.sum(x ** 2)
    return y, {"pred": x * 2.0, "note": "hello", "n": 3}


def test_grad_has_aux_returns_gradient_and_plain_aux():
    g, aux = grad(loss_with_aux, has_aux=True)(X3)
    assert close(g, 2 * X3)
    assert aux["note"] == "hello" and aux["n"] == 3
    assert type(aux["pred"]) is onp.ndarray and not isinstance(aux["pred"], wengert.Box)
    assert close(aux["pred"], 2 * X3)


def test_value_and_grad_has_aux_returns_value_aux_pair_and_gradient():
    (value, aux), g = value_and_grad(loss_with_aux, has_aux=True)(X3)
    assert value == pytest.approx(onp.sum(X3 ** 2))
    assert not isinstance(value, wengert.Box)
    assert aux["note"] == "hello"
    assert close(g, 2 * X3)


def test_value_and_grad_without_aux():
    value, g = value_and_grad(lambda x: np.sum(np.exp(x)))(X3)
    assert value == pytest.approx(onp.sum(onp.exp(X3)))
    assert close(g, onp.exp(X3))


def test_has_aux_accepts_a_list_pair():
    g, aux = grad(lambda x: [x ** 3, x], has_aux=True)(2.0)
    assert g == pytest.approx(12.0) and aux == 2.0 and type(aux) is float


def test_elementwise_grad_has_aux():
    g, aux = elementwise_grad(lambda x: (np.sin(x), "aux"), has_aux=True)(X3)
    assert close(g, onp.cos(X3)) and aux == "aux"


def test_vjp_has_aux_returns_triple():
    out, fn, aux = vjp(lambda x: (x ** 3, x * 2), 2.0, has_aux=True)
    assert out == 8.0 and aux == 4.0 and not isinstance(aux, wengert.Box)
    assert fn(1.0)[0] == pytest.approx(12.0)


# ----------------------------------------------------------------------------- pytrees
Params = collections.namedtuple("Params", "w b")


def tree_loss(p):
    a0, (a1_scalar, a1_unused) = p["a"][0], p["a"][1]
    return (np.sum(a0 ** 2) + a1_scalar * 3.0 + np.sum(p["n"].w * p["n"].b) + p["z"]
            + 0.0 * np.sum(a1_unused))


def test_grad_of_nested_pytree_has_the_same_structure():
    p = {"z": 1.0, "a": [onp.arange(3.0), (2.0, onp.ones((2, 2)))],
         "n": Params(onp.array([1.0, -2.0]), onp.array([3.0, 0.5]))}
    g = grad(tree_loss)(p)
    assert type(g) is dict and list(g) == list(p)
    assert type(g["a"]) is list and type(g["a"][1]) is tuple and type(g["n"]) is Params
    assert type(g["z"]) is float and g["z"] == 1.0
    assert close(g["a"][0], 2 * onp.arange(3.0))
    assert g["a"][1][0] == pytest.approx(3.0) and type(g["a"][1][0]) is float
    assert g["a"][1][1].shape == (2, 2) and close(g["a"][1][1], 0.0)
    assert close(g["n"].w, p["n"].b) and close(g["n"].b, p["n"].w)


def test_grad_of_pytree_matches_finite_differences_leaf_by_leaf():
    p = [onp.array([0.2, -0.3]), (0.7, {"k": onp.array([[1.0, 2.0]])})]

    def f(p):
        return np.sum(np.sin(p[0]) * p[1][0]) + np.sum(np.exp(p[1][1]["k"] * p[1][0]))

    g = grad(f)(p)
    assert close(g[0], fd_grad(lambda v: f([v, p[1]]), p[0]))
    assert g[1][0] == pytest.approx(fd_grad(lambda v: f([p[0], (v, p[1][1])]), 0.7), rel=1e-6)
    assert close(g[1][1]["k"], fd_grad(lambda v: f([p[0], (p[1][0], {"k": v})]), p[1][1]["k"]))


def test_grad_of_ordered_dict_and_unsortable_keys_keeps_type_and_order():
    od = collections.OrderedDict(b=2.0, a=3.0)
    g = grad(lambda d: d["a"] ** 2 * d["b"])(od)
    assert type(g) is collections.OrderedDict and list(g) == ["b", "a"]
    assert g["a"] == pytest.approx(12.0) and g["b"] == pytest.approx(9.0)
    g = grad(lambda d: d[1] ** 2 * d["b"])({1: 3.0, "b": 2.0})
    assert g == {1: pytest.approx(12.0), "b": pytest.approx(9.0)}


def test_grad_of_defaultdict_argument():
    d = collections.defaultdict(float, a=3.0)
    g = grad(lambda d: d["a"] ** 2)(d)
    assert isinstance(g, dict) and g["a"] == pytest.approx(6.0)


def test_grad_of_pytree_with_tuple_argnum_and_empty_containers():
    g = grad(lambda x, l, t: x ** 2 + sum(l), argnum=(0, 1, 2))(3.0, [1.0, 2.0], ())
    assert g == (pytest.approx(6.0), [1.0, 1.0], ())


def test_vjp_with_tuple_and_dict_outputs():
    x0 = onp.array([0.5, -1.0, 2.0])

    def f(x, y):
        return (x * y, {"s": np.sum(np.sin(x)), "t": y ** 2})

    out, fn = vjp(f, x0, 1.5)
    assert close(out[0], x0 * 1.5) and out[1]["t"] == pytest.approx(2.25)
    ct = (onp.array([1.0, 2.0, 3.0]), {"s": 0.5, "t": -1.0})
    gx, gy = fn(ct)
    assert close(gx, ct[0] * 1.5 + 0.5 * onp.cos(x0))
    assert gy == pytest.approx(onp.sum(ct[0] * x0) + (-1.0) * 2 * 1.5)


def test_vjp_namedtuple_output_and_none_cotangent_leaf():
    out, fn = vjp(lambda x: Params(x * 2.0, x ** 3), 2.0)
    assert type(out) is Params and out == Params(4.0, 8.0)
    assert fn(Params(1.0, 10.0))[0] == pytest.approx(2.0 + 10.0 * 12.0)
    # None in a cotangent leaf: that output contributes nothing
    assert fn(Params(1.0, None))[0] == pytest.approx(2.0)


def test_vjp_dict_cotangent_key_order_does_not_matter():
    _, fn = vjp(lambda x: {"b": x * 2.0, "a": x * 3.0}, 1.0)
    assert fn({"a": 1.0, "b": 0.0})[0] == pytest.approx(3.0)


def test_vjp_same_output_twice_accumulates():
    _, fn = vjp(lambda x: (x * 2.0,) * 2, 1.0)
    assert fn((1.0, 3.0))[0] == pytest.approx(8.0)


# ----------------------------------------------------------------------------- vjp / make_vjp
def test_vjp_returns_one_cotangent_per_primal_and_can_be_called_many_times():
    A = onp.array([[1.0, 2.0, 0.5], [-1.0, 0.3, 2.0]])
    x0 = onp.array([0.1, 0.2, -0.4])

    def f(x, s):
        return np.tanh(A @ x) * s

    out, fn = vjp(f, x0, 2.0)
    assert close(out, onp.tanh(A @ x0) * 2.0)
    for ct in (onp.array([1.0, 0.0]), onp.array([0.0, 1.0]), onp.array([0.3, -2.0])):
        res = fn(ct)
        assert isinstance(res, tuple) and len(res) == 2
        gx, gs = res
        assert close(gx, fd_vjp(lambda z: onp.tanh(A @ z) * 2.0, x0, ct))
        assert gs == pytest.approx(onp.sum(ct * onp.tanh(A @ x0)))
        assert close(gx, autograd.make_vjp(lambda z: anp.tanh(anp.dot(A, z)) * 2.0)(x0)[0](ct))


def test_vjp_single_primal_still_returns_a_tuple():
    out, fn = vjp(np.sin, 0.5)
    res = fn(1.0)
    assert isinstance(res, tuple) and len(res) == 1
    assert res[0] == pytest.approx(math.cos(0.5))


def test_vjp_with_no_primals():
    out, fn = vjp(lambda: 3.0)
    assert out == 3.0 and fn(1.0) == ()


def test_make_vjp_autograd_order_and_argnum():
    fn, value = make_vjp(lambda x, y: np.sin(x) * y, argnum=1)(X3, 2.0)
    assert close(value, onp.sin(X3) * 2.0)
    ct = onp.array([1.0, -1.0, 0.5])
    g = fn(ct)
    assert not isinstance(g, tuple)
    assert g == pytest.approx(onp.sum(ct * onp.sin(X3)))
    fn2, _ = make_vjp(lambda x, y: np.sin(x) * y, argnum=(0, 1))(X3, 2.0)
    gx, gy = fn2(ct)
    assert close(gx, ct * onp.cos(X3) * 2.0) and gy == pytest.approx(g)
    # agrees with autograd's make_vjp
    agfn, agval = autograd.make_vjp(lambda x: anp.sin(x) * 2.0)(X3)
    assert close(make_vjp(lambda x: np.sin(x) * 2.0)(X3)[0](ct), agfn(ct))


def test_make_vjp_function_is_reusable():
    fn, value = make_vjp(lambda x: x ** 3)(2.0)
    assert value == 8.0
    assert [fn(c) for c in (1.0, 2.0, -1.0)] == [pytest.approx(12.0), pytest.approx(24.0), pytest.approx(-12.0)]


def test_elementwise_grad_matches_derivative_of_each_element():
    x0 = onp.linspace(-2, 2, 7)
    g = elementwise_grad(lambda x: np.tanh(x) * x)(x0)
    assert close(g, (1 - onp.tanh(x0) ** 2) * x0 + onp.tanh(x0))
    assert close(g, autograd.elementwise_grad(lambda x: anp.tanh(x) * x)(x0))


def test_elementwise_grad_of_tuple_output_sums_all_outputs():
    x0 = onp.array([0.1, 0.2])
    g = elementwise_grad(lambda x: (x * 2.0, np.sin(x)))(x0)
    assert close(g, 2.0 + onp.cos(x0))


# ----------------------------------------------------------------------------- types and dtypes
def test_python_int_input_is_promoted_to_float():
    g = grad(lambda x: x ** 2)(3)
    assert type(g) is float and g == 6.0
    g = grad(lambda x, y: x * y, argnum=(0, 1))(2, 5)
    assert all(type(v) is float for v in g) and g == (5.0, 2.0)


def test_python_int_leaves_of_a_pytree_are_promoted():
    g = grad(lambda p: p[0] * p[1] ** 2)([2, 3])
    assert g == [9.0, 12.0] and all(type(v) is float for v in g)


@pytest.mark.parametrize("f", [lambda x: x * 2.0, lambda x: np.sin(x), lambda x: np.exp(x) * x,
                               lambda x: np.sum(x * onp.ones(3))])
def test_python_float_input_gives_python_float_gradient(f):
    g = grad(f)(0.25)
    assert type(g) is float
    assert g == pytest.approx(fd_grad(f, 0.25), rel=1e-6)


def test_numpy_scalar_inputs_keep_their_type():
    g = grad(lambda x: x * onp.float64(2.0))(onp.float32(3.0))
    assert isinstance(g, onp.float32) and g == 2.0
    g = grad(lambda x: np.sin(x))(onp.float64(0.5))
    assert isinstance(g, onp.float64) and g == pytest.approx(math.cos(0.5))


@pytest.mark.parametrize("f", [
    pytest.param(lambda x: x * 2.0, id="mul"),
    pytest.param(lambda x: np.sin(x), id="sin"),
    pytest.param(lambda x: np.sum(x * x), id="sum"),
    pytest.param(lambda x: x, id="identity"),
    pytest.param(lambda x: x * onp.ones(()), id="times-0d-array"),
])
def test_zero_dim_array_input_gives_zero_dim_array_gradient(f):
    x = onp.array(0.5)
    g = grad(f)(x)
    assert isinstance(g, onp.ndarray) and g.shape == () and g.dtype == x.dtype


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
@pytest.mark.parametrize("api", ["grad", "elementwise_grad"])
def test_output_not_depending_on_input_gives_zeros(shape, api):
    x = onp.ones(shape) * 0.5 if shape else 0.5
    fun = (lambda x: 3.0) if api == "grad" else (lambda x: onp.ones(4))
    g = (grad if api == "grad" else elementwise_grad)(fun)(x)
    if shape:
        assert isinstance(g, onp.ndarray) and g.shape == shape and g.dtype == onp.float64
        assert not g.any()
        assert g.flags.writeable
    else:
        assert type(g) is float and g == 0.0


def test_unused_argument_and_pytree_leaf_get_zeros():
    g = grad(lambda x, y: np.sum(x ** 2), argnum=(0, 1))(X3, onp.ones((2, 2), dtype=onp.float32))
    assert close(g[0], 2 * X3)
    assert g[1].shape == (2, 2) and g[1].dtype == onp.float32 and not g[1].any()
    g = grad(lambda p: p["a"] * 2.0)({"a": 1.0, "b": onp.ones(3)})
    assert g["a"] == 2.0 and g["b"].shape == (3,) and not g["b"].any()


def test_output_with_no_dependence_via_stop_gradient_is_zero():
    assert grad(lambda x: stop_gradient(x) ** 2)(3.0) == 0.0
    assert close(grad(lambda x: np.sum(stop_gradient(x * 2.0)))(X3), 0.0)


LOW_PRECISION_FUNCTIONS = [
    ("const-f64-array", lambda x: np.sum(x * onp.ones(4))),
    ("matmul-f64", lambda x: np.sum(onp.ones((3, 4)) @ x)),
    ("f64-scalar", lambda x: np.sum(x * onp.float64(2.0))),
    ("exp-plus-f64", lambda x: np.sum(np.exp(x) + onp.arange(4.0))),
    ("mean-pyfloat", lambda x: np.mean(x ** 2) * 3.0),
    ("broadcast-f64-2d", lambda x: np.sum(x[None, :] * onp.ones((2, 1)))),
]


@pytest.mark.parametrize("dtype", [onp.float32, onp.float16])
@pytest.mark.parametrize("name,f", LOW_PRECISION_FUNCTIONS, ids=[c[0] for c in LOW_PRECISION_FUNCTIONS])
def test_low_precision_inputs_give_gradients_of_the_same_dtype(dtype, name, f):
    x = onp.linspace(0.1, 1.0, 4).astype(dtype)
    g = grad(f)(x)
    assert isinstance(g, onp.ndarray) and g.dtype == dtype and g.shape == x.shape
    expected = fd_grad(lambda z: f(z), x.astype(onp.float64))
    tol = 1e-2 if dtype == onp.float16 else 1e-4
    assert onp.allclose(g.astype(onp.float64), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [onp.float32, onp.float16])
def test_low_precision_elementwise_grad_and_vjp(dtype):
    x = onp.linspace(0.1, 1.0, 4).astype(dtype)
    g = elementwise_grad(lambda x: x * onp.arange(4.0))(x)
    assert g.dtype == dtype and onp.allclose(g, onp.arange(4.0))
    (gx,) = vjp(lambda x: x * onp.float64(3.0), x)[1](onp.ones(4))
    assert gx.dtype == dtype and onp.allclose(gx, 3.0)


@pytest.mark.parametrize("f", [
    lambda x: np.sum(x),
    lambda x: np.sum(x * 2.0),
    lambda x: np.sum(x.reshape(3, 2)),
    lambda x: np.sum(x.T),
    lambda x: np.sum(np.broadcast_to(x, (4, 2, 3))),
    lambda x: x[0, 0],
    lambda x: np.sum(x[:, 1:]),
    lambda x: np.mean(x),
], ids=["sum", "scale", "reshape", "T", "broadcast_to", "index", "slice", "mean"])
def test_gradient_is_writable_and_not_a_view_of_the_input(f):
    x = X23.copy()
    g = grad(f)(x)
    assert isinstance(g, onp.ndarray) and g.shape == x.shape
    assert g.flags.writeable
    assert not onp.shares_memory(g, x)
    g[...] = 123.0  # does not touch the input
    assert onp.array_equal(x, X23)


def test_elementwise_grad_of_identity_is_writable_array_of_its_own():
    x = X3.copy()
    g = elementwise_grad(lambda x: x)(x)
    assert g.flags.writeable and not onp.shares_memory(g, x) and close(g, 1.0)


def _pair(x, y):
    return np.sum((x + y) ** 2)


# Calls whose results are arrays that a rule could hand on unchanged (the identity's, the
# sum's and the add's rules pass their cotangent on): each returns (results, what the caller
# passed in). No result may share memory with another or with anything passed in.
OWN_RESULTS = {
    "vjp of the identity": lambda x, t: (vjp(lambda x: x, x)[1](t), [x, t]),
    "vjp of x + 0": lambda x, t: (vjp(lambda x: x + 0.0, x)[1](t), [x, t]),
    "vjp of x + y": lambda x, t: (vjp(lambda x, y: x + y, x, x + 1.0)[1](t), [x, t]),
    "vjp of (x, x)": lambda x, t: (vjp(lambda x: (x, x + 0.0), x)[1]((t, t)), [x, t]),
    "grad, two list entries added": lambda x, t: (grad(lambda p: _pair(*p))([x, x + 1.0]), [x]),
    "grad, argnum (0, 1)": lambda x, t: (grad(_pair, argnum=(0, 1))(x, x + 1.0), [x]),
    "value_and_grad of a dict": lambda x, t: (value_and_grad(lambda d: _pair(d["a"], d["b"]))(
        {"a": x, "b": x + 1.0})[1], [x]),
    "elementwise_grad of x + y": lambda x, t: (elementwise_grad(lambda x, y: x + y, argnum=(0, 1))(
        x, x + 1.0), [x]),
    "jvp of (x, x + 0)": lambda x, t: (wengert.jvp(lambda x: (x, x + 0.0), (x,), (t,))[1], [x, t]),
    "jvp of x + y": lambda x, t: (wengert.jvp(lambda x, y: (x + y, x + y), (x, x), (t, t))[1], [x, t]),
    "linearize of (x, x)": lambda x, t: (wengert.linearize(lambda x: (x, x), x)[1](t), [x, t]),
}


@pytest.mark.parametrize("call", OWN_RESULTS.values(), ids=OWN_RESULTS.keys())
def test_results_are_arrays_of_their_own(call):
    x, t = X3.copy(), onp.ones(3)
    results, held = call(x, t)
    leaves = flatten(results)[0]
    assert leaves and all(isinstance(a, onp.ndarray) and a.flags.writeable for a in leaves)
    for k, a in enumerate(leaves):
        for b in leaves[k + 1:] + held:
            assert not onp.shares_memory(a, b)
    assert onp.array_equal(x, X3) and onp.all(t == 1.0)


def test_value_and_grad_value_is_plain():
    value, _ = value_and_grad(lambda x: np.sum(x ** 2))(X3)
    assert not isinstance(value, wengert.Box)
    assert value == pytest.approx(onp.sum(X3 ** 2))


# ----------------------------------------------------------------------------- stop_gradient / no_grad
def test_stop_gradient_cuts_the_path():
    g = grad(lambda x: x * stop_gradient(x))(3.0)
    assert g == 3.0  # d/dx (x * c) with c = x held constant
    g = grad(lambda x: np.sum(np.sin(x) * stop_gradient(np.cos(x))))(X3)
    assert close(g, onp.cos(X3) * onp.cos(X3))


def test_stop_gradient_on_pytree_and_plain_values():
    def f(x):
        t = stop_gradient([x, {"a": x * 2.0}, (x, 5)])
        assert not any(isinstance(v, wengert.Box) for v in (t[0], t[1]["a"], t[2][0]))
        assert t[2][1] == 5
        return t[1]["a"] * x
    assert grad(f)(3.0) == 6.0
    plain = onp.ones(2)
    assert stop_gradient(plain) is plain
    assert stop_gradient({"a": 1.0}) == {"a": 1.0}


def test_no_grad_values_carry_no_gradient():
    def f(x):
        with wengert.no_grad():
            y = np.sin(x) * 3.0
            assert not isinstance(y, wengert.Box)
        return np.sum(x * y)
    g = grad(f)(X3)
    assert close(g, onp.sin(X3) * 3.0)


def test_grad_started_inside_no_grad_works():
    with wengert.no_grad():
        assert grad(lambda x: x ** 3)(2.0) == pytest.approx(12.0)
        assert close(grad(lambda x: np.sum(np.exp(x)))(X3), onp.exp(X3))


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("api", ["grad", "value_and_grad"])
@pytest.mark.parametrize("out,shape", [
    (lambda x: x * 2.0, r"\(3,\)"),
    (lambda x: np.outer(x, x), r"\(3, 3\)"),
    (lambda x: np.sum(x)[None, None] * onp.ones((1, 2)), r"\(1, 2\)"),
])
def test_grad_of_non_scalar_output_mentions_shape(api, out, shape):
    fun = grad(out) if api == "grad" else value_and_grad(out)
    with pytest.raises(TypeError, match=r"grad: .*real scalar.*shape " + shape):
        fun(X3)


def test_grad_of_one_element_array_output_is_fine():
    g = grad(lambda x: np.sum(x, keepdims=True) * onp.ones((1, 1)))(X3)
    assert close(g, 1.0)


@pytest.mark.parametrize("out,x", [
    (lambda x: x * 1j, 1.0),
    (lambda x: np.sum(x * (1 + 2j)), X3),
    (lambda x: x, 1.0 + 2.0j),
], ids=["complex-scalar", "complex-sum", "complex-input-identity"])
def test_grad_of_complex_output_is_a_type_error(out, x):
    with pytest.raises(TypeError, match=r"^grad: .*dtype complex128.*real part"):
        grad(out)(x)


@pytest.mark.parametrize("ret,kind", [
    (lambda x: (x, x), "tuple"),
    (lambda x: [x], "list"),
    (lambda x: {"loss": x}, "dict"),
])
def test_grad_of_container_output_without_has_aux(ret, kind):
    with pytest.raises(TypeError, match=rf"grad: .*single scalar.*returned a {kind}.*has_aux"):
        grad(ret)(1.0)


@pytest.mark.parametrize("ret", [
    pytest.param(lambda x: None),
    pytest.param(lambda x: "abc"),
    pytest.param(lambda x: object()),
], ids=["None", "str", "object"])
def test_grad_of_non_numeric_output_is_a_grad_type_error(ret):
    with pytest.raises(TypeError, match=r"^grad: "):
        grad(ret)(1.0)


@pytest.mark.parametrize("api,call", [
    ("grad", lambda f: grad(f, has_aux=True)(1.0)),
    ("value_and_grad", lambda f: value_and_grad(f, has_aux=True)(1.0)),
    ("elementwise_grad", lambda f: elementwise_grad(f, has_aux=True)(1.0)),
    ("vjp", lambda f: vjp(f, 1.0, has_aux=True)),
])
@pytest.mark.parametrize("f,what", [
    (lambda x: x * 2.0, "a float"),
    (lambda x: (x, x, x), "a tuple"),
    (lambda x: (x,), "a tuple"),
])
def test_has_aux_requires_a_pair(api, call, f, what):
    with pytest.raises(TypeError, match=rf"^{api}: with has_aux=True .*pair.*returned {what}"):
        call(f)


BAD_INPUTS = [
    ("int-array", onp.arange(3), r"an array of dtype int64.*astype\(float\)"),
    ("uint8-array", onp.arange(3, dtype=onp.uint8), r"an array of dtype uint8"),
    ("bool-array", onp.array([True, False]), r"an array of dtype bool"),
    ("bool", True, r"a bool"),
    ("numpy-bool", onp.bool_(False), r"a bool"),
    ("str", "abc", r"a str"),
    ("None", None, r"None"),
    ("object-array", onp.array([1.0, 2.0], dtype=object), r"an array of dtype object"),
    ("int-array-in-list", [1.0, onp.arange(2)], r"an array of dtype int64"),  # named as argument k[1]
    ("numpy-int-scalar", onp.int64(3), r"a NumPy scalar of dtype int64"),
]


@pytest.mark.parametrize("name,bad,pattern", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
@pytest.mark.parametrize("position", [0, 1])
def test_non_float_input_is_a_type_error_naming_position_and_kind(name, bad, pattern, position):
    args = [0.5, 0.5]
    args[position] = bad
    place = "\\[1\\]" if name == "int-array-in-list" else ""
    with pytest.raises(TypeError, match=rf"^grad: argument {position}{place} is {pattern}"):
        grad(lambda x, y: 1.0, argnum=position)(*args)


@pytest.mark.parametrize("api,call", [
    ("elementwise_grad", lambda bad: elementwise_grad(lambda x: x)(bad)),
    ("vjp", lambda bad: vjp(lambda x, y: y, 1.0, bad)),
    ("make_vjp", lambda bad: make_vjp(lambda x: x)(bad)),
    ("value_and_grad", lambda bad: value_and_grad(lambda x: 1.0)(bad)),
])
def test_non_float_input_error_names_the_api(api, call):
    with pytest.raises(TypeError, match=rf"^{api}: argument \d is an array of dtype int64"):
        call(onp.arange(3))


def test_non_differentiated_arguments_may_be_anything():
    g = grad(lambda x, n, s, m: np.sum(x * n), argnum=0)(2.0, onp.arange(3), "label", None)
    assert type(g) is float and g == 3.0


@pytest.mark.parametrize("argnum,pattern", [
    (2, r"argnum 2 is out of range for a call with 2 positional"),
    (-3, r"argnum -3 is out of range"),
    ((0, 5), r"argnum 5 is out of range"),
    ((0, 0), r"names the same argument twice"),
    ((1, -1), r"names the same argument twice"),
    ((0, -2), r"names the same argument twice"),
])
@pytest.mark.parametrize("api,make", [
    ("grad", lambda a: grad(lambda x, y: x * y, argnum=a)),
    ("value_and_grad", lambda a: value_and_grad(lambda x, y: x * y, argnum=a)),
    ("elementwise_grad", lambda a: elementwise_grad(lambda x, y: x * y, argnum=a)),
    ("make_vjp", lambda a: make_vjp(lambda x, y: x * y, argnum=a)),
])
def test_bad_argnum_is_a_value_error(argnum, pattern, api, make):
    with pytest.raises(ValueError, match=rf"^{api}: .*{pattern}"):
        make(argnum)(1.0, 2.0)


@pytest.mark.parametrize("argnum", ["01", 1.0, None, True, (0, 1.5), {0: 1}], ids=repr)
@pytest.mark.parametrize("api,make", [
    ("grad", lambda a: grad(lambda x, y: x * y, argnum=a)),
    ("make_vjp", lambda a: make_vjp(lambda x, y: x * y, argnum=a)),
    ("jacfwd", lambda a: wengert.jacfwd(lambda x, y: x * y, argnum=a)),
])
def test_argnum_of_another_type_is_a_type_error(argnum, api, make):
    with pytest.raises(TypeError, match=rf"^{api}: argnum must be an int or a tuple of ints .*; got "):
        make(argnum)(1.0, 2.0)


def test_jvp_primals_and_tangents_must_be_sequences():
    for primals, tangents, name in [(3.0, (1.0,), "primals"), ((3.0,), 1.0, "tangents")]:
        with pytest.raises(TypeError, match=rf"^jvp: {name} must be a tuple or list .* got float"):
            wengert.jvp(lambda x: x * x, primals, tangents)


@pytest.mark.parametrize("parentheses", [True, False], ids=["@block()", "@block"])
def test_no_grad_and_detect_anomaly_decorate_functions(parentheses):
    decorate = (lambda block: block()) if parentheses else (lambda block: block)

    @decorate(wengert.no_grad)
    def constant(y):
        return y * 2.0

    assert close(grad(lambda x: np.sum(x * constant(x)))(onp.array([1.0, 3.0])), [2.0, 6.0])

    @decorate(wengert.detect_anomaly)
    def gradient_of_sqrt(x):
        return grad(lambda x: np.sum(np.sqrt(x)))(x)
    with onp.errstate(divide="ignore"):  # the rule's own 1 / 0, which the watch then reports
        with pytest.raises(wengert.AnomalyError, match="sqrt"):
            gradient_of_sqrt(onp.array([1.0, 0.0]))
        assert onp.all(onp.isinf(grad(lambda x: np.sum(np.sqrt(x)))(onp.array([0.0]))))  # outside: no check
    for block in (wengert.no_grad, wengert.detect_anomaly):
        with pytest.raises(TypeError, match=rf"^wengert.{block.__name__}\(\) takes no arguments \(got an object "
                                            r"of type int\)"):
            block(3)


def test_a_complex_cotangent_for_a_real_output_is_refused():
    _, pullback = wengert.vjp(lambda x: x ** 2, onp.ones(3))
    with pytest.raises(ValueError, match=r"^vjp: the cotangent of output 0 is complex, but the output is real"):
        pullback(1j * onp.ones(3))
    assert close(wengert.vjp(lambda x: x ** 2, onp.ones(3) + 0j)[1](1j * onp.ones(3))[0], 2j * onp.ones(3))


@pytest.mark.parametrize("api", ["vjp", "make_vjp", "linearize"])
def test_changing_a_differentiated_array_before_the_pullback_is_an_error(api):
    y = onp.array([1.0, 2.0, 3.0])
    f = lambda y: np.sin(y) * y  # noqa: E731
    later = {"vjp": lambda: wengert.vjp(f, y)[1], "make_vjp": lambda: wengert.make_vjp(f)(y)[0],
             "linearize": lambda: wengert.linearize(f, y)[1]}[api]()
    first = later(onp.ones(3))  # unchanged: fine
    y[0] = 5.0
    with pytest.raises(wengert.MutationError, match=rf"^the array given as argument 0 of '{api}'"):
        later(onp.ones(3))
    y[0] = 1.0  # restored: the refused call left nothing behind (no cotangent added twice)
    assert all(close(a, b) for a, b in zip(later(onp.ones(3)), first))


@pytest.mark.parametrize("x", [-1.0, onp.float64(-1.0), onp.float32(-1.0), onp.float16(-1.0), onp.complex64(1j),
                               onp.array(-1.0, onp.float32)], ids=["float", "float64", "float32", "float16",
                                                                   "complex64", "0-d float32"])
def test_a_gradient_nothing_reaches_has_the_inputs_type(x):
    """0 of the input's type (as a gradient something reaches has): max(0, x) at x < 0, a
    constant output, and forward mode's tangent of a constant."""
    for g in (wengert.grad(lambda x: max(0.0, np.real(x)))(x), wengert.grad(lambda x: 3.0)(x)):
        assert type(g) is type(x) and g == 0 and not onp.signbit(onp.real(g))
    value, tangent = wengert.jvp(lambda y: 3.0, (x,), (x,))
    assert type(tangent) is type(value) and tangent == 0


def test_grad_with_no_positional_arguments_is_a_value_error():
    with pytest.raises(ValueError, match=r"^grad: argnum 0 is out of range for a call with 0"):
        grad(lambda: 1.0)()


@pytest.mark.parametrize("api,get", [
    ("vjp", lambda f, x: vjp(f, x)[1]),
    ("make_vjp", lambda f, x: make_vjp(f)(x)[0]),
])
@pytest.mark.parametrize("ct,pattern", [
    (onp.ones(4), r"cotangent of output 0 has shape \(4,\), but the output has shape \(3,\)"),
    (onp.ones((3, 1)), r"has shape \(3, 1\), but the output has shape \(3,\)"),
    (1.0, r"has shape \(\), but the output has shape \(3,\)"),
])
def test_vjp_cotangent_of_wrong_shape_is_a_value_error(api, get, ct, pattern):
    fn = get(lambda x: x * 2.0, X3)
    with pytest.raises(ValueError, match=rf"^{api}: .*{pattern}"):
        fn(ct)


def test_vjp_cotangent_of_wrong_structure_is_a_value_error():
    _, fn = vjp(lambda x: (x * 2.0, np.sum(x)), X3)
    with pytest.raises(ValueError, match=r"^vjp: the cotangent must have the structure of the output \(2 array"):
        fn(onp.ones(3))
    with pytest.raises(ValueError,
                       match=r"^vjp: the cotangent of output 1 has shape \(3,\), but the output has shape \(\)"):
        fn((onp.ones(3), onp.ones(3)))
    # the function still works after the errors
    gx, = fn((onp.ones(3), 2.0))
    assert close(gx, 4.0)


@pytest.mark.parametrize("f, ct, want, got", [
    (lambda x: {"k": x * 2.0}, {"q": onp.ones(3)}, r"1 array\(s\) laid out as {'k': \*}",
     r"1 array\(s\) laid out as {'q': \*}"),
    (lambda x: {"k": x * 2.0}, [onp.ones(3)], r"1 array\(s\) laid out as {'k': \*}",
     r"1 array\(s\) laid out as \[\*\]"),
    (lambda x: [x * 2.0], onp.ones(3), r"1 array\(s\) laid out as \[\*\]", r"one array"),
    (lambda x: x * 2.0, [1.0, 1.0, 1.0], r"one array", r"3 array\(s\) laid out as \[\*, \*, \*\]"),
    (lambda x: ({"a": x, "b": x},), ({"a": onp.ones(3), "c": onp.ones(3)},),  # the difference is inside
     r"2 array\(s\) laid out as \({'a': \*, 'b': \*},\)", r"2 array\(s\) laid out as \({'a': \*, 'c': \*},\)"),
])
def test_vjp_cotangent_structure_must_match_even_for_one_leaf(f, ct, want, got):
    """A cotangent laid out otherwise than the output is refused, whatever its leaf count."""
    _, fn = vjp(f, X3)
    with pytest.raises(ValueError, match=rf"^vjp: the cotangent must have the structure of the output \({want}\); "
                                         rf"got {got}\."):
        fn(ct)


class _Key:
    """A dict key that does not compare with others of its kind."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"Key{self.n}"


_K1, _K2 = _Key(1), _Key(2)


@pytest.mark.parametrize("out, ct", [
    ({1: 2.0, "a": 3.0}, {"a": 1.0, 1: 0.0}),  # keys of two types
    ({_K2: 2.0, _K1: 3.0}, {_K1: 1.0, _K2: 0.0}),  # keys that do not compare
])
def test_vjp_with_unsortable_dict_keys_in_another_order(out, ct):
    _, fn = vjp(lambda x: {k: x * v for k, v in out.items()}, X3)
    assert close(fn({k: c * onp.ones(3) for k, c in ct.items()})[0], 3.0 * onp.ones(3))


@pytest.mark.parametrize("ct", [onp.array([100, 100, 100], dtype=onp.int8), onp.ones(3, dtype=onp.uint8),
                                onp.ones(3, dtype=bool), True])
def test_vjp_integer_and_bool_cotangents_are_refused(ct):
    """Integer arithmetic in the sweep would wrap around (int8: 3 * 100 = 44)."""
    _, fn = vjp(lambda x: 3.0 * np.sum(x) if ct is True else 3.0 * x, X3)
    with pytest.raises(TypeError, match=r"^vjp: the cotangent of output 0 has dtype (int8|uint8|bool); cotangents "
                                        r"are floating point or complex"):
        fn(ct)


M2 = onp.array([[1.0, 2.0], [3.0, 4.0]])
DIRECTIONS = [  # (id, call given the direction, start of the message): refused as a primal would be
    ("vjp", lambda d: vjp(lambda v: v * v, M2)[1](d), "vjp: the cotangent of output 0 is"),
    ("jvp", lambda d: wengert.jvp(lambda v: v * v, (M2,), (d,)), "jvp: the tangent of primal 0 is"),
    ("linearize", lambda d: wengert.linearize(lambda v: v * v, M2)[1](d), "linearize: the tangent of primal 0 is"),
    ("hvp", lambda d: wengert.hvp(lambda v: np.sum(v ** 3))(M2, d), "hvp: the tangent of primal 0 is"),
]


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("kind", ["matrix", "masked"])
@pytest.mark.parametrize("call, start", [d[1:] for d in DIRECTIONS], ids=[d[0] for d in DIRECTIONS])
def test_matrix_and_masked_directions_are_refused(call, start, kind):
    """A numpy.matrix direction made the rules' * a matrix product, a masked one skipped its
    masked elements: wrong values, accepted."""
    d = onp.asmatrix(M2) if kind == "matrix" else onp.ma.array(M2, mask=[[True, False], [False, False]])
    with pytest.raises(TypeError, match=rf"^{start} a numpy\.{'matrix' if kind == 'matrix' else 'ma.MaskedArray'}"):
        call(d)


def test_vjp_python_int_cotangent_is_promoted():
    g, = vjp(lambda x: 3.0 * np.sum(x), X3)[1](2)
    assert g.dtype == onp.float64 and close(g, 6.0 * onp.ones(3))


# ----------------------------------------------------------------------------- holomorphic_grad
HOLOMORPHIC = [  # (f, f'), f' written by hand
    (lambda z: z ** 3, lambda z: 3 * z ** 2),
    (lambda z: np.exp(np.sin(z)), lambda z: np.cos(z) * np.exp(np.sin(z))),
    (lambda z: np.log(z) / z, lambda z: (1 - np.log(z)) / z ** 2),
    (lambda z: np.tanh(z) * np.sqrt(z), lambda z: np.sqrt(z) / np.cosh(z) ** 2 + np.tanh(z) / (2 * np.sqrt(z))),
    (lambda z: 1.0 / (1.0 + z ** 2), lambda z: -2 * z / (1 + z ** 2) ** 2),
]


@pytest.mark.parametrize("f, df", HOLOMORPHIC)
@pytest.mark.parametrize("z", [0.3 + 0.7j, -1.2 + 0.4j, onp.array([0.5 - 0.2j, 1.1 + 0.9j])])
def test_holomorphic_grad_is_the_complex_derivative(f, df, z):
    g = wengert.holomorphic_grad(lambda z: np.sum(f(z)))(z)
    onp.testing.assert_allclose(g, df(z), rtol=1e-12)
    h = 1e-6  # a holomorphic function has the same difference quotient along every direction
    for step in (h, 1j * h):
        onp.testing.assert_allclose((f(z + step) - f(z - step)) / (2 * step), df(z), rtol=1e-7)
    assert type(g) is type(z) and onp.asarray(g).dtype == onp.complex128


def test_holomorphic_grad_of_several_arguments_and_aux():
    g, aux = wengert.holomorphic_grad(lambda a, b: (a * b ** 2, "aux"), argnum=(0, 1), has_aux=True)(1j, 2.0 + 1j)
    assert aux == "aux"
    onp.testing.assert_allclose(g, ((2.0 + 1j) ** 2, 2 * 1j * (2.0 + 1j)))


@pytest.mark.parametrize("f, z, message", [
    (lambda z: z ** 2, 0.5, "argument 0 is real"),
    (lambda z: np.abs(z), 0.5 + 1j, "must return a complex scalar"),
    (lambda z: z * 2.0, onp.array([1j, 2j]), "must return a complex scalar"),
])
def test_holomorphic_grad_errors(f, z, message):
    with pytest.raises(TypeError, match=rf"^holomorphic_grad: .*{message}"):
        wengert.holomorphic_grad(f)(z)
