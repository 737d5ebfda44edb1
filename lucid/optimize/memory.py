"""Keep freed memory inside the process (glibc), so repeated CPU inference reuses its pages.

By default glibc hands large freed blocks back to the kernel: blocks above its (adaptive)
mmap threshold are unmapped at once, and free memory at the top of the heap is trimmed. A
model's activations are exactly such blocks, freed and requested again on every call, so each
call maps fresh pages and takes one page fault per 4 KiB page while the kernel zeroes it
(thousands of faults per call at batch 8 and 224 px). Raising both thresholds keeps those pages
in the process: the next call reuses them, as the inference runtimes do with their own memory
pools. The price is that the process keeps its peak heap size instead of shrinking after a call.

The setting is process-wide and only applies where the C library is glibc; elsewhere nothing changes.
"""
from __future__ import annotations

import ctypes
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "retain_freed_memory"]

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's upper limit for mallopt(M_MMAP_THRESHOLD) on 64-bit systems
TRIM_THRESHOLD = (1 << 31) - 1  # mallopt takes a C int


def _glibc_mallopt() -> ctypes._CFuncPtr | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None  # musl and other C libraries: their mallopt does not take glibc's parameters
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds so freed blocks up to 32 MiB stay in the process.

    Returns whether the setting took effect (``False`` off glibc). Calling it again changes nothing.
    Blocks larger than 32 MiB (activations at large batches or resolutions) are still
    mapped per call: glibc refuses a higher mmap threshold.
    """
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return False
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
