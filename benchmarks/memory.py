"""Peak memory of a gradient: what the tape keeps while the forward pass runs.

Usage:  python benchmarks/memory.py [--n 1000000] [--steps 100]

Each program is a loop of `steps` steps over an array of `n` float64 elements (8 MB at the
default). Peak memory is measured with tracemalloc (NumPy reports its array buffers to it), in
MiB, for NumPy's forward evaluation alone, wengert's gradient and autograd's when it is
installed. PyTorch allocates outside Python's allocator, which tracemalloc does not see.

Programs:
  shift    y = y + 1.0             no rule reads a value
  affine   y = 0.9 * y - 0.5       the product's rule reads only the 0.9
  exp      y = exp(0.5 * y) - 1.0  exp's rule reads its output, not its argument
  sin      y = sin(y) + 1.0        sin's rule reads its argument: every step is kept
  long     y = exp(0.1 * (2 sin(0.5 y) + 1)) - 0.5   y is held while seven operations run
and, at fixed sizes (a 300 x 200 state, a 300 x 300 matrix; 2 * 10^5 points for heat and stencil):
  descent  w = w - 0.01 * (A.T @ (A @ w - B)), 50 steps   w is used twice; A @ w reads w's shape
  rnn      h = tanh(A @ h + C @ x), 30 steps              A @ h reads h: every h is kept
  heat     u = u + 0.1 * (roll(u, 1) - 2 u + roll(u, -1)), 50 steps   roll joins two views of u
  stencil  d = u[2:] - 2 u[1:-1] + u[:-2]; u = u + 0.1 * concatenate([d[:1], d, d[-1:]]), 50 steps
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from typing import Any, Callable

import numpy as onp

import wengert
import wengert.numpy as wnp
from run import optional

autograd = optional("autograd")
if autograd is not None:
    import autograd.numpy as anp

PROGRAMS: dict[str, Callable[[Any, Any], Any]] = {
    "shift": lambda np, y: y + 1.0,
    "affine": lambda np, y: 0.9 * y - 0.5,
    "exp": lambda np, y: np.exp(0.5 * y) - 1.0,
    "sin": lambda np, y: np.sin(y) + 1.0,
    "long": lambda np, y: np.exp(0.1 * (np.sin(0.5 * y) * 2.0 + 1.0)) - 0.5,
}


def stencil(np: Any, u: Any) -> Any:
    d = u[2:] - 2 * u[1:-1] + u[:-2]
    return u + 0.1 * np.concatenate([d[:1], d, d[-1:]])


_rng = onp.random.default_rng(0)
A, B, C = _rng.normal(size=(300, 300)) / 20, _rng.normal(size=(300, 200)), _rng.normal(size=(300, 300)) / 20
FIXED: dict[str, tuple[Callable[[Any, Any], Any], int, Any]] = {
    "descent": (lambda np, w: w - 0.01 * (A.T @ (A @ w - B)), 50, B),
    "rnn": (lambda np, h: np.tanh(A @ h + C @ B), 30, B),
    "heat": (lambda np, u: u + 0.1 * (np.roll(u, 1) - 2 * u + np.roll(u, -1)), 50, _rng.uniform(size=200_000)),
    "stencil": (stencil, 50, _rng.uniform(size=200_000)),
}


def looped(step: Callable, np: Any, steps: int) -> Callable:
    def f(y: Any) -> Any:
        for _ in range(steps):
            y = step(np, y)
        return np.sum(y)
    return f


def peak_mib(call: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="elements of the array")
    parser.add_argument("--steps", type=int, default=100, help="steps of each loop")
    a = parser.parse_args()
    x = onp.random.default_rng(0).uniform(-1.0, 1.0, a.n)
    print(f"peak memory (tracemalloc, MiB) of {a.steps} steps on {a.n} float64 elements "
          f"({x.nbytes / 2**20:.1f} MiB per array)\n")
    names = ["numpy forward", "wengert"] + (["autograd"] if autograd is not None else [])
    print("| program | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    programs = [(name, step, a.steps, x) for name, step in PROGRAMS.items()]
    for name, program in FIXED.items():
        programs.append((name, *program))
    for name, step, steps, x0 in programs:
        calls = [lambda: looped(step, onp, steps)(x0), lambda: wengert.grad(looped(step, wnp, steps))(x0)]
        if autograd is not None:
            calls.append(lambda: autograd.grad(looped(step, anp, steps))(x0))
        print(f"| {name} | " + " | ".join(f"{peak_mib(c):.0f}" for c in calls) + " |")


if __name__ == "__main__":
    main()
