"""Slowing down guessing: sign-in passwords, two-step codes and TV pairing codes.

A :class:`Throttle` counts tries per key (an account, a client address) over a sliding
window, in this process's memory. The web server is one process, so one count is seen by
every request; a restart forgets the counts, which only helps someone who can restart
the server, and they own it anyway.

The client address is the socket's, or the one a trusted reverse proxy reports (see
``server.trusted_proxy``): waitress drops ``X-Forwarded-*`` headers from anyone else, so
a made-up ``X-Forwarded-For`` cannot give a guesser a fresh count.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class Throttle:
    """At most ``limit`` tries per ``window`` seconds per key."""

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self._tries: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque:
        tries = self._tries.setdefault(key, deque())
        while tries and now - tries[0] > self.window:
            tries.popleft()
        return tries

    def blocked(self, key: str) -> bool:
        """True when ``key`` has used up its tries (nothing is counted)."""
        with self._lock:
            return len(self._recent(key, time.monotonic())) >= self.limit

    def record(self, key: str) -> None:
        """Count one try (a failed one, for sign-in)."""
        now = time.monotonic()
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._tries) > 10000:  # forget idle keys
                for idle in [k for k, v in self._tries.items() if not self._recent(k, now)]:
                    del self._tries[idle]

    def allow(self, key: str) -> bool:
        """Count a try and say whether it may go ahead (every try counts: TV codes)."""
        now = time.monotonic()
        with self._lock:
            tries = self._recent(key, now)
            if len(tries) >= self.limit:
                return False
            tries.append(now)
            return True

    def clear(self, key: str) -> None:
        with self._lock:
            self._tries.pop(key, None)
