"""VJP and JVP rules for numpy.fft (see _vjps.py and _jvps.py for the conventions)."""

from __future__ import annotations

from typing import Any

VJPS: dict[Any, Any] = {}
JVPS: dict[Any, Any] = {}
