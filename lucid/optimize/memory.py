"""Keep freed memory inside the process (glibc), so repeated CPU inference reuses its pages.

By default glibc hands large freed blocks back to the kernel: blocks above its (adaptive)
mmap threshold are unmapped at once, and free memory at the top of the heap is trimmed. A
model's activations are exactly such blocks, freed and requested again on every call, so each
call maps fresh pages and takes one page fault per 4 KiB page while the kernel zeroes it
(thousands of faults per call at batch 8 and 224 px). Serving large blocks from the heap instead
of separate mappings, and not trimming the heap, keeps those pages in the process: the next call
reuses them, as the inference runtimes do with their own memory pools. The price is that the
process keeps its peak heap size instead of shrinking after a call.

The setting is process-wide and only applies where the C library is glibc; elsewhere nothing changes.
"""
from __future__ import annotations

import ctypes
import sys

__all__ = ["retain_freed_memory"]

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
MMAP_THRESHOLD = 32 << 20  # the largest glibc accepts on 64-bit systems
TRIM_THRESHOLD = (1 << 31) - 1  # free heap top kept before trimming: the largest C int mallopt takes


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
    """Serve large blocks from glibc's heap (``M_MMAP_MAX=0``, and the largest mmap threshold,
    which also stops glibc adapting it) and keep up to 2 GiB of free heap top (``M_TRIM_THRESHOLD``),
    so freed blocks stay in the process for the next call.

    Returns whether the settings took effect (``False`` off glibc). Calling it again changes nothing.
    The threshold alone would not do: glibc caps it at 32 MiB, which a ResNeXt-50 activation
    passes at 288 px and batch 8. Where the heap cannot grow, glibc still falls back to a
    mapping, so no allocation fails because of this.
    """
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return False
    settings = ((_M_MMAP_MAX, 0), (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return all(mallopt(option, value) == 1 for option, value in settings)
