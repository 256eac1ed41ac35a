"""A process the picup command starts keeps to two malloc arenas (picup.memory), however many threads
allocate (the photo pool's forkserver processes are not limited: no difference was measured there).

Each case is a fresh Python process (glibc fixes its arena limit when the first
extra arena is made) whose eight threads each allocate while the others hold
their blocks; glibc's own ``malloc_stats()`` then counts the arenas on stderr.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import picup.memory

THREADS = 8

BUSY_THREADS = textwrap.dedent(
    f"""
    import ctypes, threading
    barrier = threading.Barrier({THREADS})
    def work():
        blocks = [bytearray(64 * 1024) for _ in range(4)]  # malloc'd, below the mmap threshold
        barrier.wait()  # every thread holds its blocks at once
    threads = [threading.Thread(target=work) for _ in range({THREADS})]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ctypes.CDLL(None).malloc_stats()
    """
)


def arenas_after(prelude: str, **env) -> int:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    environ.update(env)
    done = subprocess.run([sys.executable, "-c", prelude + BUSY_THREADS], env=environ,
                          capture_output=True, text=True, timeout=60, check=True)
    return len(re.findall(r"^Arena \d+:", done.stderr, flags=re.MULTILINE))


def test_without_the_limit_busy_threads_get_arenas_of_their_own():
    # The baseline the limit exists for: glibc allows 8 per core, and even 1 core allows 8.
    assert arenas_after("") > picup.memory.ARENAS


def test_the_limit_keeps_busy_threads_to_two_arenas():
    prelude = "import picup.memory\nassert picup.memory.limit_malloc_arenas()\n"
    assert arenas_after(prelude) == picup.memory.ARENAS


def test_every_picup_command_applies_it():
    prelude = textwrap.dedent(
        """
        from picup.cli import main
        try:
            main(["migrate", "--help"])
        except SystemExit:
            pass
        """
    )
    assert arenas_after(prelude) == picup.memory.ARENAS


def test_the_installers_own_setting_wins():
    prelude = "import picup.memory\nassert not picup.memory.limit_malloc_arenas()\n"
    assert arenas_after(prelude, MALLOC_ARENA_MAX="4") == 4
