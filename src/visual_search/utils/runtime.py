"""Process settings for fast CPU inference."""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

# mallopt parameters (glibc malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
INT_MAX = 2**31 - 1


def keep_freed_memory() -> bool:
    """Stop glibc from handing big freed blocks back to the OS.

    By default every large tensor is mmap-ed and unmapped again, so each batch faults its activations
    in anew: CPU inference spends more time in the kernel than computing (measured up to 3x slower).
    Serving big blocks from the heap and never trimming it keeps them mapped, at the cost of holding the
    peak memory. Returns False where glibc is not the allocator (nothing changed).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    done = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1
    log.debug("glibc malloc tuned: %s", done)
    return done
