"""Programs whose cost once grew faster than their size: side-by-side timings.

Usage:  python benchmarks/patterns.py [--quick]

Each workload is timed at two sizes, wengert against plain NumPy's forward evaluation and
against PyTorch when it is installed, in turns (see run.race). A ratio that stays flat from
the small size to the large one is a constant factor; one that grows is a cost that grows
faster than the program.

Workloads:
  cumprod  gradient of sum(cumprod(x)), x of n elements near 1
  writes   one in-place write into each of m arrays made before (x[0] = 2 x[1] each)
  views    rows of an array kept as views while the array is written row by row
  pieces   the concatenation of n one-element pieces of x
  buffer   a recurrence written into a buffer row by row, each step reading the row before
  convolve np.convolve of two signals of n samples each
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

import numpy as onp

import wengert
import wengert.numpy as wnp
from run import optional, race

torch = optional("torch")


def cumprod_contestants(n: int) -> dict[str, Callable[[], Any]]:
    x = onp.random.default_rng(0).uniform(0.999, 1.001, n)
    c = {"numpy forward": lambda: onp.sum(onp.cumprod(x)),
         "wengert": lambda: wengert.grad(lambda x: wnp.sum(wnp.cumprod(x)))(x)}
    if torch is not None:
        xt = torch.tensor(x, requires_grad=True)
        c["pytorch eager"] = lambda: torch.autograd.grad(torch.sum(torch.cumprod(xt, 0)), xt)
    return c


def writes(np: Any, xs: list) -> Any:
    ys = [x * 1.0 for x in xs]  # m arrays, all made before the first write
    for y in ys:
        y[0] = 2.0 * y[1]
    return sum(np.sum(y) for y in ys)


def writes_contestants(m: int) -> dict[str, Callable[[], Any]]:
    xs = list(onp.random.default_rng(1).normal(size=(m, 4)))
    c = {"numpy forward": lambda: writes(onp, xs),
         "wengert": lambda: wengert.grad(lambda xs: writes(wnp, xs))(xs)}
    if torch is not None:
        ts = [torch.tensor(x, requires_grad=True) for x in xs]
        c["pytorch eager"] = lambda: torch.autograd.grad(writes(torch, ts), ts)
    return c


def one_array(program: Callable, x: Any, **torch_options: Any) -> dict[str, Callable[[], Any]]:
    """NumPy's forward pass of ``program(np, x)``, wengert's gradient, and PyTorch's (which gets
    ``torch_options`` too) where it is installed."""
    c = {"numpy forward": lambda: program(onp, x),
         "wengert": lambda: wengert.grad(lambda x: program(wnp, x))(x)}
    if torch is not None:
        xt = torch.tensor(x, requires_grad=True)
        c["pytorch eager"] = lambda: torch.autograd.grad(program(torch, xt, **torch_options), xt)
    return c


def views(np: Any, x: Any) -> Any:
    y = x * 1.0
    rows = [y[i] for i in range(len(y))]  # views of y, alive through every write
    for i in range(1, len(y)):
        y[i] = rows[i - 1] * 0.5 + 1.0
    return np.sum(y)


def views_contestants(n: int) -> dict[str, Callable[[], Any]]:
    return one_array(views, onp.random.default_rng(2).normal(size=(n, 8)))


def pieces(np: Any, x: Any, join: Callable | None = None) -> Any:
    return np.sum((join or np.concatenate)([x[i:i + 1] * 2.0 for i in range(len(x))]) ** 2)


def pieces_contestants(n: int) -> dict[str, Callable[[], Any]]:
    return one_array(pieces, onp.random.default_rng(3).normal(size=n), join=torch and torch.cat)


def buffer(np: Any, x: Any) -> Any:
    h = x * 0.0
    for t in range(1, len(x)):
        h[t] = np.tanh(h[t - 1] * 0.9 + x[t])
    return np.sum(h ** 2)


def buffer_contestants(n: int) -> dict[str, Callable[[], Any]]:
    return one_array(buffer, onp.random.default_rng(4).normal(size=(n, 8)))


def convolve_contestants(n: int) -> dict[str, Callable[[], Any]]:
    a, v = onp.random.default_rng(5).normal(size=(2, n))
    c = {"numpy forward": lambda: onp.sum(onp.convolve(a, v) ** 2),
         "wengert": lambda: wengert.grad(lambda a, v: wnp.sum(wnp.convolve(a, v) ** 2), (0, 1))(a, v)}
    if torch is not None:
        at, vt = (torch.tensor(u, requires_grad=True) for u in (a, v))
        conv = lambda: torch.nn.functional.conv1d(at[None, None], vt.flip(0)[None, None], padding=n - 1)  # noqa: E731
        c["pytorch eager"] = lambda: torch.autograd.grad(torch.sum(conv() ** 2), (at, vt))
    return c


WORKLOADS = {
    "cumprod": ("gradient of sum(cumprod(x))", cumprod_contestants, "n", (10**5, 10**6)),
    "writes": ("one in-place write into each of m arrays made before", writes_contestants, "m", (1000, 4000)),
    "views": ("an array written row by row while its rows are views", views_contestants, "n", (100, 400)),
    "pieces": ("the concatenation of n one-element pieces", pieces_contestants, "n", (1000, 4000)),
    "buffer": ("a recurrence written into a buffer row by row", buffer_contestants, "n", (100, 400)),
    "convolve": ("np.convolve of two signals of n samples", convolve_contestants, "n", (1000, 4000)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    opts = parser.parse_args()
    repeat, budget = (2, 0.3) if opts.quick else (5, 2.0)
    for key, (title, make, size, sizes) in WORKLOADS.items():
        print(f"### {key}: {title}\n")
        print(f"| {size} | contestant | time per call | ratio to numpy forward |")
        print("|---:|---|---:|---:|")
        for s in sizes:
            best = race(make(s), repeat, budget)
            for name, t in best.items():
                print(f"| {s} | {name} | {t * 1e3:.2f} ms | {t / best['numpy forward']:.1f}× |")
        print()


if __name__ == "__main__":
    main()
