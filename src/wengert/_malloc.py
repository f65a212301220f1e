"""Keep freed memory in the process, so that repeated gradients do not page-fault.

A gradient allocates and frees the same large arrays on every call: the values the forward
pass saves, the cotangents of the sweep, the gradients it returns. With glibc's default
settings, freed memory at the top of the heap is handed back to the kernel as soon as more
than twice the largest recently freed block sits there, and the next call faults every page
of it in again (each fault also zeroes a 4 kB page). On a virtual machine a fault costs a few
microseconds: for an MLP with 8 MB weight matrices that was 2,000-6,000 faults and a third
more time per gradient, varying from one process to the next with its allocation history.

At import, on Linux with glibc, wengert therefore asks malloc to serve blocks up to 32 MiB
from the heap (glibc's own upper limit for that threshold) and to keep up to 128 MiB of free
memory there instead of returning it. The process may keep up to that much more memory
resident after a large computation; blocks above 32 MiB are still returned at once. Set the
environment variable ``WENGERT_MALLOC=default`` before importing wengert to keep glibc's
defaults. Other platforms and C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 128 << 20


def keep_freed_memory() -> bool:
    """Apply the settings above; return whether they were applied."""
    if os.environ.get("WENGERT_MALLOC", "") == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (glibc has it; musl, whose malloc differs, does not)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


applied = keep_freed_memory()
