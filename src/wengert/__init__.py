"""wengert: reverse-mode automatic differentiation for Python and NumPy.

Write a function with NumPy (``import wengert.numpy as np``, or plain ``numpy``) and get its
exact gradient::

    import wengert
    import wengert.numpy as np

    def f(x, y):
        return np.sin(x * y)

    wengert.grad(f)(1.0, 2.0)          # 2 * cos(2)
    wengert.grad(f, argnum=(0, 1))(1.0, 2.0)

The forward pass records every elementary operation on a tape (the Wengert list); the
backward pass walks it in reverse, applying each operation's derivative rule.
"""

from . import _malloc  # noqa: F401  (keeps freed memory for the next gradient; see its docstring)
from ._anomaly import AnomalyError, detect_anomaly
from ._api import elementwise_grad, grad, holomorphic_grad, make_vjp, stop_gradient, value_and_grad, vjp
from ._check import GradcheckError, gradcheck
from ._checkpoint import (
    MemoryUsage,
    checkpoint,
    checkpoint_sequential,
    checkpointed_loop,
    checkpointed_while,
    revolve_steps,
    track_memory,
)
from ._core import Box, EscapedTracerError, MutationError, no_grad
from ._custom import custom_vjp, defvjp, primitive
from ._forward import (
    ChainJacobian,
    chain_jacobian,
    defjvp,
    derivative,
    hessian,
    hvp,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    linearize,
    make_jvp,
)
from .numpy._box import ConversionError, NoRuleError

__version__ = "0.1.0"

__all__ = [
    "AnomalyError",
    "Box",
    "ChainJacobian",
    "ConversionError",
    "EscapedTracerError",
    "GradcheckError",
    "MemoryUsage",
    "MutationError",
    "NoRuleError",
    "chain_jacobian",
    "checkpoint",
    "checkpoint_sequential",
    "checkpointed_loop",
    "checkpointed_while",
    "custom_vjp",
    "defjvp",
    "defvjp",
    "derivative",
    "detect_anomaly",
    "elementwise_grad",
    "grad",
    "gradcheck",
    "hessian",
    "holomorphic_grad",
    "hvp",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jvp",
    "linearize",
    "make_jvp",
    "make_vjp",
    "no_grad",
    "primitive",
    "revolve_steps",
    "stop_gradient",
    "track_memory",
    "value_and_grad",
    "vjp",
]
