"""Waiting in tests for something a real process does, with a clear failure when it does not."""

from __future__ import annotations

import time

import requests


def wait_for(predicate, timeout: float, what: str, process=None, interval: float = 0.05):
    """Call ``predicate`` until it returns something true (returned), or fail after ``timeout`` s.

    ``process``, when given, is watched too (an object with ``process`` (a Popen), ``name`` and
    ``output()``): if it exits, the test fails at once with its output. A refused connection
    counts as "not yet", since a server that is starting refuses for a moment.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.process.poll() is not None:
            raise AssertionError(f"{process.name} exited with {process.process.returncode}:\n{process.output()}")
        try:
            value = predicate()
        except requests.ConnectionError:
            value = None
        if value:
            return value
        time.sleep(interval)
    tail = f":\n{process.output()}" if process is not None else ""
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{tail}")
