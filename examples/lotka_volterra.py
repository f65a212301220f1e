"""Estimate the parameters of a predator-prey model from noisy observations.

The Lotka-Volterra equations

    prey'     = alpha * prey - beta * prey * predator
    predator' = delta * prey * predator - gamma * predator

are integrated with RK4 from known initial populations; the loss compares the simulated
populations with noisy observations (on a log scale). The whole simulation is one
``checkpointed_loop``: its tape keeps a handful of states instead of every RK4 stage of every
step, and the reverse sweep recomputes what it needs with binomial checkpointing. The
parameters are fitted by gradient descent with Adam, on their logarithms (they are positive).
"""

from __future__ import annotations

import numpy as onp

import wengert
import wengert.numpy as np

TRUE = onp.array([1.0, 0.1, 1.5, 0.075])  # alpha, beta, gamma, delta
X0 = onp.array([10.0, 5.0])
DT, SUBSTEPS, N_OBS = 0.05, 10, 24  # an observation every 0.5 time units, up to t = 12


def rates(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    prey, predator = x[0], x[1]
    return np.stack([p[0] * prey - p[1] * prey * predator, p[3] * prey * predator - p[2] * predator])


def rk4(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    k1 = rates(x, p)
    k2 = rates(x + 0.5 * DT * k1, p)
    k3 = rates(x + 0.5 * DT * k2, p)
    k4 = rates(x + DT * k3, p)
    return x + (DT / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def interval(state: dict, p: np.ndarray, observations: onp.ndarray) -> dict:
    """One step of the checkpointed loop: integrate to the next observation and score it."""
    x = state["x"]
    for _ in range(SUBSTEPS):
        x = rk4(x, p)
    seen = observations[int(state["k"])]
    miss = np.log(x) - onp.log(seen)
    return {"x": x, "loss": state["loss"] + np.sum(miss * miss), "k": state["k"] + 1.0}


def loss(log_p: np.ndarray, observations: onp.ndarray) -> np.ndarray:
    start = {"x": X0, "loss": 0.0, "k": 0.0}
    end = wengert.checkpointed_loop(interval, start, N_OBS, snapshots=4, args=(np.exp(log_p), observations))
    return end["loss"] / N_OBS


def loss_full_tape(log_p: np.ndarray, observations: onp.ndarray) -> np.ndarray:
    """The same loss as an ordinary Python loop: every operation of every step is on the tape."""
    state = {"x": X0, "loss": 0.0, "k": 0.0}
    for _ in range(N_OBS):
        state = interval(state, np.exp(log_p), observations)
    return state["loss"] / N_OBS


def simulate(p: onp.ndarray) -> onp.ndarray:
    states, x = [], X0
    for _ in range(N_OBS):
        for _ in range(SUBSTEPS):
            x = rk4(x, p)
        states.append(x)
    return onp.array(states)


def adam(value_and_grad, x: onp.ndarray, steps: int, lr: float, *args) -> onp.ndarray:
    m, v = onp.zeros_like(x), onp.zeros_like(x)
    for t in range(1, steps + 1):
        value, g = value_and_grad(x, *args)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        x = x - lr * (m / (1 - 0.9 ** t)) / (onp.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        if t in (1, 10, 20, 40, 60, steps):
            print(f"  step {t:3d}   loss {value:.5f}   parameters {onp.round(onp.exp(x), 3)}")
    return x


def main() -> None:
    rng = onp.random.default_rng(1)
    observations = simulate(TRUE) * onp.exp(0.05 * rng.normal(size=(N_OBS, 2)))  # 5% noise
    guess = onp.log(onp.array([0.7, 0.15, 1.1, 0.1]))

    # The checkpointed loop gives the full tape's gradient, from a much smaller tape.
    with wengert.track_memory() as full:
        g_full = wengert.grad(loss_full_tape)(guess, observations)
    with wengert.track_memory() as kept:
        g_kept = wengert.grad(loss)(guess, observations)
    assert onp.allclose(g_full, g_kept, rtol=1e-10)
    print(f"{N_OBS * SUBSTEPS} RK4 steps: the full tape has {full.tape_entries:,} entries holding "
          f"{full.tape_bytes / 1024:.0f} KiB; with checkpointed_loop (4 snapshots) the largest tape has "
          f"{kept.tape_entries} entries, {kept.tape_bytes / 1024:.1f} KiB. Same gradient.")

    print("fitting alpha, beta, gamma, delta with Adam:")
    fitted = onp.exp(adam(wengert.value_and_grad(loss), guess, 80, 0.05, observations))
    print(f"  true parameters {TRUE}")
    assert onp.allclose(fitted, TRUE, rtol=0.15), fitted


if __name__ == "__main__":
    main()
