"""Serving the app with waitress, and stopping gracefully on SIGTERM.

On SIGTERM or Ctrl+C the listening socket closes at once, requests in flight
run to the end (up to ``graceful_timeout`` seconds), their answers are flushed
to the clients, and only then does the process exit.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

import waitress
from waitress import wasyncore

log = logging.getLogger(__name__)


def create_server(app, settings):
    return waitress.create_server(
        app,
        host=settings.host,
        port=settings.port,
        threads=settings.threads,
        ident="picup",
        # tus chunks and raw uploads are spooled to TMPDIR by waitress; the app caps each route.
        max_request_body_size=settings.max_upload_size + 1024**2,
        channel_timeout=300,
        # waitress reads 8 KiB per recv() by default, which makes a large upload
        # CPU-bound; 256 KiB reads cut its CPU per GiB roughly in half.
        recv_bytes=256 * 1024,
        clear_untrusted_proxy_headers=True,
        **_proxy(settings),
    )


def _proxy(settings) -> dict:
    """X-Forwarded-* only from the installer's reverse proxy; from anyone else they are
    dropped, so a made-up X-Forwarded-For cannot change the client address."""
    if not settings.trusted_proxy:
        return {}
    return {
        "trusted_proxy": settings.trusted_proxy,
        "trusted_proxy_count": settings.trusted_proxy_count,
        "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"},
    }


def _busy(server) -> bool:
    dispatcher = server.task_dispatcher
    if dispatcher.active_count or dispatcher.queue:
        return True
    return any(getattr(channel, "total_outbufs_len", 0) for channel in list(server._map.values()))


def _drain(server, timeout: float, done: threading.Event) -> None:
    server.trigger.pull_trigger(lambda: wasyncore.dispatcher.close(server))  # stop accepting
    deadline = time.monotonic() + timeout
    while _busy(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _busy(server):
        log.warning("stopping with requests still running", extra={"timeout": timeout})
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=2)
    done.set()
    server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))


def serve(server, settings, on_stop=None) -> None:
    """Run until SIGTERM/SIGINT, then drain and return."""
    done = threading.Event()
    started = threading.Event()

    def stop(signum, _frame):
        if started.is_set():
            return
        started.set()
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        threading.Thread(target=_drain, args=(server, settings.graceful_timeout, done), daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.run()
    finally:
        done.wait(timeout=settings.graceful_timeout + 5)
        if on_stop is not None:
            on_stop()
        log.info("stopped")
