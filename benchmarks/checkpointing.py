"""Checkpointing against the full tape: the gradient of a 10,000-step RK4 integration.

Usage:  python benchmarks/checkpointing.py [--steps N] [--snapshots S]

The Lotka-Volterra system is integrated with 10,000 RK4 steps; the loss is the squared final
state; the gradient is taken with respect to the four parameters and the initial state,
once with every step on the tape and once with ``checkpointed_loop`` keeping 20 states.
Both are timed (best of a few runs, alternating) and measured with tracemalloc (peak bytes
allocated during one gradient), and the evaluations of ``step`` are counted: the ratio of
those counts is the recomputation factor, which binomial checkpointing keeps at the
optimum ``(N + revolve_steps(N, s)) / N``.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as onp

import wengert
import wengert.numpy as np

DT = 0.001
CALLS = {"step": 0}


def lotka_volterra(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    prey, predator = x[0], x[1]
    return np.stack([p[0] * prey - p[1] * prey * predator, p[3] * prey * predator - p[2] * predator])


def rk4(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    CALLS["step"] += 1
    k1 = lotka_volterra(x, p)
    k2 = lotka_volterra(x + 0.5 * DT * k1, p)
    k3 = lotka_volterra(x + 0.5 * DT * k2, p)
    k4 = lotka_volterra(x + DT * k3, p)
    return x + (DT / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def full_tape(x0: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
    x = x0
    for _ in range(n):
        x = rk4(x, p)
    return np.sum(x ** 2)


def checkpointed(x0: np.ndarray, p: np.ndarray, n: int, snapshots: int) -> np.ndarray:
    return np.sum(wengert.checkpointed_loop(rk4, x0, n, snapshots=snapshots, args=(p,)) ** 2)


def measure(fun, *args) -> tuple[float, int, int, object]:
    """(seconds, peak bytes, step evaluations, gradient) of one gradient."""
    grad = wengert.grad(fun, argnum=(0, 1))
    CALLS["step"] = 0
    tracemalloc.start()
    start = time.perf_counter()
    g = grad(*args)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak, CALLS["step"], g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    x0, p = onp.array([10.0, 5.0]), onp.array([1.0, 0.1, 1.5, 0.075])
    n, s = opts.steps, opts.snapshots

    # Time without tracemalloc (it slows allocation down), alternating, best of the repeats.
    best = {"full tape": float("inf"), "checkpointed": float("inf")}
    grads = {}
    for _ in range(opts.repeat):
        for name, run in (("full tape", lambda: wengert.grad(full_tape, argnum=(0, 1))(x0, p, n)),
                          ("checkpointed", lambda: wengert.grad(checkpointed, argnum=(0, 1))(x0, p, n, s))):
            start = time.perf_counter()
            grads[name] = run()
            best[name] = min(best[name], time.perf_counter() - start)
    for a, b in zip(grads["full tape"], grads["checkpointed"]):
        assert onp.allclose(a, b, rtol=1e-10, atol=0), "checkpointing changed the gradient"

    _, peak_full, calls_full, _ = measure(full_tape, x0, p, n)
    _, peak_ck, calls_ck, _ = measure(checkpointed, x0, p, n, s)
    optimum = n + wengert.revolve_steps(n, s)
    print(f"gradient of a {n:,}-step RK4 integration (Lotka-Volterra), {s} snapshots; "
          f"gradients agree to rtol 1e-10\n")
    print("| | time per gradient | peak memory (tracemalloc) | evaluations of step |")
    print("|---|---:|---:|---:|")
    print(f"| full tape | {best['full tape']:.2f} s | {peak_full / 2**20:.1f} MiB | {calls_full:,} |")
    print(f"| checkpointed_loop, {s} snapshots | {best['checkpointed']:.2f} s | {peak_ck / 2**20:.2f} MiB | "
          f"{calls_ck:,} |")
    print(f"| ratio | {best['checkpointed'] / best['full tape']:.2f}× | "
          f"{peak_full / peak_ck:.0f}× less | {calls_ck / calls_full:.2f}× (recomputation factor) |")
    print(f"\noptimum for {n:,} steps and {s} snapshots: {optimum:,} evaluations "
          f"({n:,} recorded + revolve_steps = {optimum - n:,}); measured {calls_ck:,}")
    assert calls_ck == optimum


if __name__ == "__main__":
    main()
