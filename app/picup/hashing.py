"""Hashing beside reading and writing: a helper thread hashes the bytes an upload
writes, or a check reads back, while the next ones move.

``hashlib`` and file reads and writes all let go of the GIL for large buffers,
so with the hashing on its own thread the SHA-256 pass and the disk work
overlap instead of adding up. That matters most where SHA-256 is slow next to
the disk, as on a Raspberry Pi 4, whose CPU has no SHA instructions.
"""

from __future__ import annotations

import queue
import threading

# Chunks that may wait for the hashing thread. One is enough for the overlap; each more
# costs a CHUNK of memory per upload, kept afterwards in the malloc arena of every server
# thread that handled one (bench/upload.py, before memory.py limited the arenas: RSS growth
# 18 MiB with no thread, 24 MiB with one waiting, 48 MiB with four, and no faster).
AHEAD = 1


class HashingBeside:
    """Feeds every chunk given to :meth:`update` to ``hashers``, in order, on a thread.

    Use it as a context manager, or call :meth:`close`: the hashers are
    complete only then. A chunk that is not ``bytes`` (a buffer its reader may
    fill again) is copied first.
    """

    def __init__(self, *hashers):
        self.hashers = hashers
        self._queue: queue.Queue = queue.Queue(maxsize=AHEAD)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="picup-hashing", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._failure is None:  # after a failure, keep taking chunks so the writer never blocks
                try:
                    for hasher in self.hashers:
                        hasher.update(data)
                except BaseException as exc:  # pragma: no cover - hashlib fails only when out of memory
                    self._failure = exc

    def update(self, data: bytes) -> None:
        if not self._thread.is_alive():
            raise RuntimeError("the hashing is closed")
        self._queue.put(data if isinstance(data, bytes) else bytes(data))

    def close(self) -> None:
        """Wait until every chunk given so far is hashed."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._failure is not None:
            raise self._failure

    def __enter__(self) -> HashingBeside:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
