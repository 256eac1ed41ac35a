"""Fewer malloc arenas, so a many-threaded Picup holds less memory on a small box.

glibc gives a thread its own heap ("arena") up to 8 per CPU core, and memory
freed in one arena is not handed to another. Waitress' threads each receive
request bodies and read pictures, so each arena keeps its own high-water mark:
on a 4-core Raspberry Pi that is up to 32 of them. Two arenas, measured with
`picup run` on 2 cores, no slower: after 60 concurrent 12-megapixel JPEG uploads
and their renditions the server had grown 10 MiB instead of 29; after 24 HEIC
photos (an iPhone's) it held 96 MiB instead of 224.

Every ``picup`` command asks for this at start, before any thread allocates.
An installer's own ``MALLOC_ARENA_MAX`` (read by glibc itself) wins. Not here:
the photo pool's processes (no difference measured) and the video children,
which get ``MALLOC_ARENA_MAX=2`` from media/video.py for their memory limit.
"""

from __future__ import annotations

import os

ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(environ=os.environ) -> bool:
    """At most ``ARENAS`` malloc arenas from now on; False when not glibc or already set."""
    if "MALLOC_ARENA_MAX" in environ:
        return False
    try:
        import ctypes  # here: a saving must never stop Picup from starting

        mallopt = ctypes.CDLL(None).mallopt
    except (ImportError, MemoryError, OSError, AttributeError):  # not glibc (musl, macOS), no libffi
        return False
    return mallopt(_M_ARENA_MAX, ARENAS) == 1
