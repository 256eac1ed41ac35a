"""A real HTTP server in front of a real S3 server that answers some requests itself.

Backblaze B2 answers "503 Service Unavailable" now and then by design, AWS S3
answers "503 SlowDown" under load, and a busy NAS's MinIO a 500 or a 502. This
server makes that happen for real, over real sockets, for the requests a test
chooses; everything else goes through to the S3 server (moto) unchanged.

    with FaultyS3(moto_port) as s3:
        s3.fail("POST", "uploads")               # the next "create multipart upload" gets a 503
        s3.fail("PUT", "partNumber", times=2)    # the next two part uploads too
        ... point the client at s3.address ...
        s3.answered                               # [("POST", "/bucket/key?uploads"), ...] answered with a fault
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class _Rule:
    method: str
    query_key: str
    times: int
    status: int
    code: str


class FaultyS3:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.rules: list[_Rule] = []
        self.answered: list[tuple[str, str]] = []  # the requests met with a fault
        self.seen: list[tuple[str, str]] = []  # every request, in order
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = outer._take(self.command, self.path)
                if fault is not None:
                    message = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}</Code>'
                               f"<Message>Please try again.</Message></Error>").encode()
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(message)))
                    self.end_headers()
                    self.wfile.write(message)
                    return
                upstream = http.client.HTTPConnection(*outer.upstream, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    answer = response.read()
                    self.send_response(response.status, response.reason)
                    for key, value in response.getheaders():
                        if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                            self.send_header(key, value)
                    if self.command == "HEAD":
                        self.send_header("Content-Length", response.getheader("Content-Length") or "0")
                    else:
                        self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(answer)
                finally:
                    upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def fail(self, method: str, query_key: str, *, times: int = 1, status: int = 503,
             code: str = "ServiceUnavailable") -> None:
        """Answer the next ``times`` requests with ``method`` and ``query_key`` in their query
        string (``uploads``, ``uploadId``, ``partNumber``; ``""`` for any) with ``status``."""
        with self._lock:
            self.rules.append(_Rule(method, query_key, times, status, code))

    def _take(self, method: str, path: str) -> _Rule | None:
        keys = parse_qs(urlsplit(path).query, keep_blank_values=True)
        with self._lock:
            self.seen.append((method, path))
            for rule in self.rules:
                if rule.times > 0 and rule.method == method and (not rule.query_key or rule.query_key in keys):
                    rule.times -= 1
                    self.answered.append((method, path))
                    return rule
        return None

    def __enter__(self) -> "FaultyS3":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
