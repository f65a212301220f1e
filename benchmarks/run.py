"""Side-by-side timings of wengert, plain NumPy and the peers that are installed.

Usage:  python benchmarks/run.py [--quick] [--only chain,mlp,scalar]

Every workload is timed for every contestant in one run, in turns (contestant A, B, C, then
A, B, C again ...; see race), and the best time of each is kept, so that the ratios compare
like with like on a noisy machine. Ratios are to the plain NumPy forward evaluation of the
same function (or, for the scalar program, to micrograd). Contestants that are not
installed are reported as such.

Workloads (the core issue's acceptance list):
  chain   gradient of a chain of 1000 elementwise operations on an 8-element array
  mlp     gradient of an MLP 784-1024-1024-10, batch 256, softmax cross-entropy
  scalar  gradient of a Python-float program of about 15,000 operations (micrograd style)
  hessian Hessian of the Rosenbrock function, n = 100 (an absolute target: ≤ 1 ms)
  jacrev  Jacobian of R^1000 -> R^10 by reverse mode, in units of the function's own cost
"""

from __future__ import annotations

import argparse
import gc
import importlib
import platform
import sys
import time
from typing import Any, Callable

import numpy as onp

import wengert
import wengert.numpy as wnp


def optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception:
        return None


torch = optional("torch")
torch_func = optional("torch.func")
jax = optional("jax")
autograd = optional("autograd")
micrograd_engine = optional("micrograd.engine")
if jax is not None:
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
if autograd is not None:
    import autograd.numpy as anp


def race(contestants: dict[str, Callable[[], Any]], repeat: int, budget: float) -> dict[str, float]:
    """Best seconds per call of each contestant, over ``repeat`` rounds of about ``budget /
    repeat`` seconds each.

    What is timed is a contestant's steady state, as in a loop that takes gradient after
    gradient: a batch of calls lasting about 50 ms, after one untimed call (which brings the
    contestant's code and data back into the caches, and lets the worker threads another
    library left spinning go idle). The contestants that run on the same library's threads
    (NumPy's BLAS for NumPy, wengert, autograd and micrograd; PyTorch's; JAX's) take turns
    batch by batch: a machine whose speed drifts from one second to the next then slows
    them alike, and their ratios hold. Each library's group runs in a block of its own in
    each round. The best batch of each contestant is kept.

    As timeit does, the cycle collector is paused while the contestants run: otherwise one
    whose objects it tracks pays for full collections over everything the other libraries
    loaded into this process, which is no measure of the contestant itself. The garbage
    cycles a call leaves (micrograd's nodes hold themselves through their closures) are
    collected, untimed, after the untimed call and after each batch, and everything before
    each block."""
    gc.collect()
    gc.disable()
    try:
        return _race(contestants, repeat, budget)
    finally:
        gc.enable()


def _library(name: str) -> str:
    """Whose worker threads the contestant ``name`` runs on."""
    return "torch" if "torch" in name else "jax" if "jax" in name else "numpy"


def _race(contestants: dict[str, Callable[[], Any]], repeat: int, budget: float) -> dict[str, float]:
    batch = {}
    for name, f in contestants.items():  # warm up, and size a batch to about 50 ms
        f()
        t0 = time.perf_counter()
        f()
        batch[name] = max(1, int(0.05 / max(time.perf_counter() - t0, 1e-7)))
    groups: dict[str, list] = {}
    for name in contestants:
        groups.setdefault(_library(name), []).append(name)
    best = {name: float("inf") for name in contestants}
    for _ in range(repeat):
        for names in groups.values():
            gc.collect()
            spent = dict.fromkeys(names, 0.0)
            while max(spent.values()) < budget / repeat:
                for name in names:
                    f, n = contestants[name], batch[name]
                    f()  # untimed, as the first of a loop: the caches hold the contestant's own data
                    gc.collect(0)
                    t0 = time.perf_counter()
                    for _ in range(n):
                        f()
                    took = time.perf_counter() - t0
                    spent[name] += took
                    best[name] = min(best[name], took / n)
                    gc.collect(0)
    return best


# ----------------------------------------------------------------------------- chain
def chain(np: Any, x: Any) -> Any:
    """1000 elementwise operations: (sin, scale, tanh, shift, exp) x 200, then a sum."""
    for _ in range(200):
        x = np.sin(x)
        x = x * 1.1
        x = np.tanh(x)
        x = x + 0.3
        x = np.exp(x)
    return np.sum(x)


def chain_contestants() -> tuple[dict, str]:
    x = onp.random.default_rng(0).random(8)
    c: dict[str, Callable] = {"numpy forward": lambda: chain(onp, x)}
    g = wengert.grad(lambda x: chain(wnp, x))
    c["wengert"] = lambda: g(x)
    g_plain = wengert.grad(lambda x: chain(onp, x))
    c["wengert (plain numpy code)"] = lambda: g_plain(x)
    expected = g(x)
    if autograd is not None:
        ga = autograd.grad(lambda x: chain(anp, x))
        assert onp.allclose(ga(x), expected)
        c["autograd"] = lambda: ga(x)
    if torch is not None:
        tx = torch.tensor(x, requires_grad=True)

        def torch_grad() -> Any:
            return torch.autograd.grad(chain(torch, tx), tx)[0]
        assert onp.allclose(torch_grad().numpy(), expected)
        c["pytorch eager"] = torch_grad
    if jax is not None:
        gj = jax.grad(lambda x: chain(jnp, x))
        jx = jnp.asarray(x)
        assert onp.allclose(gj(jx), expected)
        c["jax eager"] = lambda: gj(jx).block_until_ready()
    return c, "numpy forward"


# ----------------------------------------------------------------------------- mlp
def mlp_loss(np: Any, params: dict, X: Any, labels: Any) -> Any:
    h = np.maximum(X @ params["W1"] + params["b1"], 0.0)
    h = np.maximum(h @ params["W2"] + params["b2"], 0.0)
    z = h @ params["W3"] + params["b3"]
    m = np.max(z, axis=1, keepdims=True)
    log_norm = np.log(np.sum(np.exp(z - m), axis=1, keepdims=True)) + m
    return -np.mean(np.sum((z - log_norm) * labels, axis=1))


def mlp_grad_by_hand(params: dict, X: Any, labels: Any) -> dict:
    """The same gradient written out in NumPy (backpropagation by hand): the floor for a tape."""
    W1, b1, W2, b2, W3, b3 = (params[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    a1 = X @ W1 + b1
    h1 = onp.maximum(a1, 0.0)
    a2 = h1 @ W2 + b2
    h2 = onp.maximum(a2, 0.0)
    z = h2 @ W3 + b3
    e = onp.exp(z - onp.max(z, axis=1, keepdims=True))
    gz = (e / onp.sum(e, axis=1, keepdims=True) * onp.sum(labels, axis=1, keepdims=True) - labels) / len(X)
    g2 = (gz @ W3.T) * (a2 > 0)
    g1 = (g2 @ W2.T) * (a1 > 0)
    return {"W1": X.T @ g1, "b1": g1.sum(0), "W2": h1.T @ g2, "b2": g2.sum(0), "W3": h2.T @ gz, "b3": gz.sum(0)}


def mlp_loss_torch(params: dict, X: Any, labels: Any) -> Any:
    """The same loss in PyTorch's spelling."""
    h = torch.relu(X @ params["W1"] + params["b1"])
    h = torch.relu(h @ params["W2"] + params["b2"])
    z = h @ params["W3"] + params["b3"]
    m = torch.amax(z, dim=1, keepdim=True)
    log_norm = torch.log(torch.sum(torch.exp(z - m), dim=1, keepdim=True)) + m
    return -torch.mean(torch.sum((z - log_norm) * labels, dim=1))


def mlp_contestants() -> tuple[dict, str]:
    rng = onp.random.default_rng(0)
    sizes = [784, 1024, 1024, 10]
    params = {}
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{i}"] = rng.normal(scale=1 / onp.sqrt(m), size=(m, n))
        params[f"b{i}"] = onp.zeros(n)
    X = rng.normal(size=(256, 784))
    labels = onp.eye(10)[rng.integers(0, 10, 256)]
    c: dict[str, Callable] = {"numpy forward": lambda: mlp_loss(onp, params, X, labels)}
    g = wengert.grad(lambda p: mlp_loss(wnp, p, X, labels))
    c["wengert"] = lambda: g(params)
    expected = g(params)
    by_hand = mlp_grad_by_hand(params, X, labels)
    assert all(onp.allclose(by_hand[k], expected[k]) for k in params)
    c["numpy by hand (backpropagation written out)"] = lambda: mlp_grad_by_hand(params, X, labels)
    if autograd is not None:
        ga = autograd.grad(lambda p: mlp_loss(anp, p, X, labels))
        assert onp.allclose(ga(params)["W1"], expected["W1"])
        c["autograd"] = lambda: ga(params)
    if torch is not None:
        tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        tX, tl = torch.tensor(X), torch.tensor(labels)

        def torch_grad() -> Any:
            return torch.autograd.grad(mlp_loss_torch(tp, tX, tl), list(tp.values()))
        assert onp.allclose(torch_grad()[0].numpy(), expected["W1"])
        c["pytorch eager"] = torch_grad
    if jax is not None:
        jp = {k: jnp.asarray(v) for k, v in params.items()}
        jX, jl = jnp.asarray(X), jnp.asarray(labels)
        gj = jax.grad(lambda p: mlp_loss(jnp, p, jX, jl))
        c["jax eager"] = lambda: jax.block_until_ready(gj(jp))
    return c, "numpy forward"


# ----------------------------------------------------------------------------- scalar program
def scalar_program(params: list, X: list, Y: list, relu: Callable) -> Any:
    """A 3-16-16-1 perceptron on Python numbers, squared loss over a batch: ~15,000 operations."""
    sizes, loss, k = [3, 16, 16, 1], 0.0, 0
    layers = []
    for m, n in zip(sizes[:-1], sizes[1:]):
        layers.append([(params[k + j * (m + 1): k + j * (m + 1) + m], params[k + j * (m + 1) + m])
                       for j in range(n)])
        k += n * (m + 1)
    for x, y in zip(X, Y):
        for depth, layer in enumerate(layers):
            out = []
            for w, b in layer:
                act = b
                for wi, xi in zip(w, x):
                    act = act + wi * xi
                out.append(relu(act) if depth < len(layers) - 1 else act)
            x = out
        loss = loss + (x[0] - y) ** 2
    return loss


def scalar_contestants() -> tuple[dict, str]:
    rng = onp.random.default_rng(0)
    n_params = 16 * 4 + 16 * 17 + 17
    params = [float(v) for v in rng.normal(scale=0.5, size=n_params)]
    X = [[float(v) for v in row] for row in rng.normal(size=(22, 3))]
    Y = [float(v) for v in rng.normal(size=22)]
    c: dict[str, Callable] = {}
    g = wengert.grad(lambda p: scalar_program(p, X, Y, lambda v: wnp.maximum(v, 0.0)))
    expected = onp.array(g(params))
    if micrograd_engine is not None:
        Value = micrograd_engine.Value
        sys.setrecursionlimit(100_000)  # micrograd's topological sort recurses

        def micrograd_grad() -> Any:
            vs = [Value(p) for p in params]
            scalar_program(vs, X, Y, lambda v: v.relu()).backward()
            return [v.grad for v in vs]
        assert onp.allclose(micrograd_grad(), expected)
        c["micrograd"] = micrograd_grad
    c["wengert"] = lambda: g(params)
    if autograd is not None:
        ga = autograd.grad(lambda p: scalar_program(p, X, Y, lambda v: anp.maximum(v, 0.0)))
        c["autograd"] = lambda: ga(params)
    base = "micrograd" if "micrograd" in c else "wengert"
    return c, base


# ----------------------------------------------------------------------------- hessian
def rosenbrock(np: Any, x: Any) -> Any:
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def hessian_contestants() -> tuple[dict, str]:
    x = onp.random.default_rng(0).normal(size=100)
    h = wengert.hessian(lambda x: rosenbrock(wnp, x))
    expected = h(x)
    c: dict[str, Callable] = {"wengert": lambda: h(x)}
    if torch is not None:
        th = torch_func.hessian(lambda x: rosenbrock(torch, x))
        tx = torch.tensor(x)
        assert onp.allclose(th(tx).numpy(), expected)
        c["torch.func.hessian"] = lambda: th(tx)
    if autograd is not None:
        ah = autograd.hessian(lambda x: rosenbrock(anp, x))
        assert onp.allclose(ah(x), expected)
        c["autograd"] = lambda: ah(x)
    if jax is not None:
        jh = jax.hessian(lambda x: rosenbrock(jnp, x))
        jx = jnp.asarray(x)
        c["jax eager"] = lambda: jh(jx).block_until_ready()
    return c, "wengert"


# ----------------------------------------------------------------------------- jacrev
def wide(np: Any, W1: Any, W2: Any, x: Any) -> Any:
    """R^1000 -> R^10: two layers; one evaluation is dominated by the 1000 x 1000 product."""
    return W2 @ np.tanh(W1 @ x)


def jacrev_contestants() -> tuple[dict, str]:
    rng = onp.random.default_rng(0)
    W1, W2 = rng.normal(size=(1000, 1000)) / 30, rng.normal(size=(10, 1000)) / 30
    x = rng.normal(size=1000)
    jr = wengert.jacrev(lambda x: wide(wnp, W1, W2, x))
    expected = jr(x)
    c: dict[str, Callable] = {"numpy forward (one evaluation)": lambda: wide(onp, W1, W2, x),
                              "wengert jacrev": lambda: jr(x)}
    jf = wengert.jacfwd(lambda x: wide(wnp, W1, W2, x))
    c["wengert jacfwd (1000 directions)"] = lambda: jf(x)
    if autograd is not None:
        aj = autograd.jacobian(lambda x: wide(anp, W1, W2, x))
        assert onp.allclose(aj(x), expected)
        c["autograd jacobian"] = lambda: aj(x)
    if torch is not None:
        tW1, tW2, tx = torch.tensor(W1), torch.tensor(W2), torch.tensor(x)
        tj = torch_func.jacrev(lambda x: wide(torch, tW1, tW2, x))
        assert onp.allclose(tj(tx).numpy(), expected)
        c["torch.func.jacrev"] = lambda: tj(tx)
    if jax is not None:
        jW1, jW2, jx = jnp.asarray(W1), jnp.asarray(W2), jnp.asarray(x)
        jj = jax.jacrev(lambda x: wide(jnp, jW1, jW2, x))
        c["jax eager jacrev"] = lambda: jj(jx).block_until_ready()
    return c, "numpy forward (one evaluation)"


WORKLOADS = {
    "chain": ("gradient of a chain of 1000 elementwise ops, 8 elements", chain_contestants,
              "≤ 4× numpy forward"),
    "mlp": ("gradient of an MLP 784-1024-1024-10, batch 256", mlp_contestants,
            "≤ 2.6× numpy forward"),
    "scalar": ("gradient of a ~15,000-op Python-float program", scalar_contestants,
               "≤ 0.5× micrograd"),
    "hessian": ("Hessian of the Rosenbrock function, n = 100", hessian_contestants, "≤ 1 ms"),
    "jacrev": ("Jacobian of R^1000 -> R^10 (W2 @ tanh(W1 @ x))", jacrev_contestants,
               "about 10 evaluations of the function, not 1000"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    opts = parser.parse_args()
    repeat, budget = (3, 0.3) if opts.quick else (7, 2.0)
    print(f"python {platform.python_version()}, numpy {onp.__version__}, wengert "
          f"{wengert.__version__}" + "".join(f", {m.__name__} {getattr(m, '__version__', '')}" for m in
                                             (torch, jax, autograd) if m is not None))
    print(f"best time per call over {repeat} rounds, each library's contestants timed in turns (see race); "
          "ratios are to the row at 1.00×\n")
    for key in opts.only.split(","):
        title, make, target = WORKLOADS[key]
        contestants, base = make()
        best = race(contestants, repeat, budget if key != "chain" else budget / 2)
        print(f"### {key}: {title} (target: wengert {target})\n")
        print("| contestant | time per call | ratio |")
        print("|---|---:|---:|")
        for name, t in best.items():
            print(f"| {name} | {t * 1e3:.3f} ms | {t / best[base]:.2f}× |")
        print()


if __name__ == "__main__":
    main()
