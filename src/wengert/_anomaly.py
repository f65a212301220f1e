"""``detect_anomaly``: stop at the operation where a NaN or an infinity first appears.

Inside the block, every trace started watches what it records: an operation whose output
holds a NaN or an infinity although its inputs held none raises :class:`AnomalyError`,
naming the primitive, the line of the user's code that ran it, and the shapes of its inputs.
The backward sweep then runs the reference Python loop of ``_core``, which checks every
cotangent a rule returns the same way (naming where the operation had been recorded).
Watching costs time: a look at the call stack and a scan of every value.
"""

from __future__ import annotations

import linecache
import os
import sys
import threading
from typing import Any

import numpy as np

from ._core import Block, Box, Trace, rule_running, strip

__all__ = ["detect_anomaly", "AnomalyError"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_local = threading.local()


class AnomalyError(FloatingPointError):
    """A NaN or an infinity appeared in an operation while ``detect_anomaly`` was active."""


class detect_anomaly(Block):
    """Context manager: raise :class:`AnomalyError` where a NaN or an infinity first appears,
    in the forward pass or in the backward sweep, naming the operation, the line of your code
    that ran it, and its input shapes. Affects traces started inside the block, in this thread.

    Example:
        >>> import numpy as onp, wengert, wengert.numpy as np
        >>> with wengert.detect_anomaly():
        ...     wengert.grad(lambda x: np.sum(np.sqrt(x)))(onp.array([1.0, 0.0]))
        Traceback (most recent call last):
        ...
        wengert._anomaly.AnomalyError: detect_anomaly: the derivative rule of 'sqrt' ...
    """

    def __enter__(self) -> "detect_anomaly":
        _local.depth = getattr(_local, "depth", 0) + 1
        return self

    def __exit__(self, *exc: object) -> None:
        _local.depth -= 1


def watch(trace: Trace) -> "Watch | None":
    """Watch ``trace`` if a ``detect_anomaly`` block is open in this thread."""
    return Watch(trace) if getattr(_local, "depth", 0) else None


def _finite(v: Any) -> bool:
    v = strip(v)
    if isinstance(v, (bool, int)) or not hasattr(np.asarray(v), "dtype"):
        return True
    a = np.asarray(v)
    return a.dtype.kind not in "fc" or bool(np.isfinite(a).all())


def _where_user_called() -> str:
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
    if frame is None:
        return "an unknown place"
    code = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" + (f": {code}" if code else "")


def _shapes(args: tuple) -> str:
    def one(a: Any) -> str:
        a = strip(a)
        return str(np.shape(a)) if hasattr(a, "shape") or isinstance(a, (int, float, complex)) else type(a).__name__
    return ", ".join(one(a) for a in args)


class Watch:
    """Checks what a trace records and remembers where each operation was recorded."""

    def __init__(self, trace: Trace):
        self.origins: dict[int, str] = {}
        self.forward_append = trace.append
        trace.append = self.append

    def append(self, box: Box) -> None:
        running = rule_running()  # an operation of a derivative rule (a gradient of a gradient)
        if running is None:
            where, what = _where_user_called(), "in the forward pass"
        else:
            node, watch = running
            where = watch.origins.get(id(node), "an unknown place")
            what = f"in the derivative rule of '{node.prim.name}' (a gradient taken inside another)"
        self.origins[id(box)] = where
        prim, args = box.prim, box.args
        if prim is not None and not _finite(box.value) and all(_finite(a) for a in args):
            raise AnomalyError(f"detect_anomaly: '{prim.name}' produced a NaN or an infinity {what} from finite "
                               f"inputs (shapes {_shapes(args)}), for the operation at {where}")
        self.forward_append(box)
        if prim is not None and box.adj is not None and not _finite(box.adj):  # a forward-mode tangent
            raise AnomalyError(f"detect_anomaly: the JVP rule of '{prim.name}' produced a NaN or an infinity "
                               f"in a tangent, for the operation at {where} (input shapes {_shapes(args)})")

    def check(self, node: Box, k: int, g: Any, c: Any) -> None:
        """Called by the sweep with each cotangent ``c`` a rule returned from ``g``."""
        if not _finite(c) and _finite(g) and _finite(node.value) and all(_finite(a) for a in node.args):
            where = self.origins.get(id(node), "an unknown place")
            raise AnomalyError(f"detect_anomaly: the derivative rule of '{node.prim.name}' (argument {k}) "
                               f"produced a NaN or an infinity in the backward sweep from finite values; the "
                               f"operation was recorded at {where} (input shapes {_shapes(node.args)})")
