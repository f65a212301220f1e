"""The first thing to run: a gradient checked by hand, then a model fitted with it.

1. The gradient of f(x, y) = sin(x * y), compared with central finite differences.
2. Logistic regression on data this script generates, fitted by gradient descent; the loss
   is printed as it falls.
"""

import numpy as onp

import wengert
import wengert.numpy as np


def f(x, y):
    return np.sin(x * y)


def finite_difference(fun, args, k, eps=1e-6):
    up, down = list(args), list(args)
    up[k] += eps
    down[k] -= eps
    return (fun(*up) - fun(*down)) / (2 * eps)


def check_sin_product() -> None:
    x, y = 0.7, -1.3
    dx, dy = wengert.grad(f, argnum=(0, 1))(x, y)
    print("f(x, y) = sin(x * y) at x = 0.7, y = -1.3")
    for name, exact, by_hand, numeric in [
        ("df/dx", dx, y * onp.cos(x * y), finite_difference(f, (x, y), 0)),
        ("df/dy", dy, x * onp.cos(x * y), finite_difference(f, (x, y), 1)),
    ]:
        print(f"  {name}: wengert {exact:+.12f}   by hand {by_hand:+.12f}   "
              f"finite differences {numeric:+.12f}")
        assert abs(exact - by_hand) < 1e-12 and abs(exact - numeric) < 1e-8


def make_data(n=500, d=3, seed=0):
    rng = onp.random.default_rng(seed)
    true_w, true_b = rng.normal(size=d), 0.5
    X = rng.normal(size=(n, d))
    p = 1 / (1 + onp.exp(-(X @ true_w + true_b)))
    y = (rng.random(n) < p).astype(float)
    return X, y, true_w, true_b


def loss(params, X, y):
    """Mean negative log-likelihood of the logistic model, written stably."""
    w, b = params["w"], params["b"]
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, z) - y * z)


def fit_logistic_regression() -> None:
    X, y, true_w, true_b = make_data()
    params = {"w": onp.zeros(X.shape[1]), "b": 0.0}
    value_and_grad = wengert.value_and_grad(loss)
    print("\nlogistic regression, 500 points, 3 features, gradient descent (step 0.5)")
    first = None
    for step in range(201):
        value, g = value_and_grad(params, X, y)
        first = value if first is None else first
        if step in (0, 5, 10, 20, 40, 80, 200):
            print(f"  step {step:3d}   loss {value:.6f}")
        params = {"w": params["w"] - 0.5 * g["w"], "b": params["b"] - 0.5 * g["b"]}
    print(f"  fitted w {onp.round(params['w'], 2)}  b {params['b']:.2f}   "
          f"(data drawn with w {onp.round(true_w, 2)}  b {true_b:.2f})")
    assert value < first


if __name__ == "__main__":
    check_sin_product()
    fit_logistic_regression()
