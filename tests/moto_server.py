"""A real S3 server for tests: moto's server mode on 127.0.0.1.

It speaks S3 over HTTP, so the code under test goes through the real SDK,
signing, HTTP client and error parsing; nothing is patched. It creates no
buckets: each test makes its own.

moto keeps its state in process-wide backends; everything the server stores
lives in memory (and moto's spooled temp files) until the process ends.

    with moto_s3_server() as endpoint:      # "127.0.0.1:PORT"
        client(endpoint).make_bucket(bucket_name="family")

Test modules get one server each from the ``endpoint`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

# moto's server checks no signatures, but the SDK signs every request, so
# tests need some credentials: these are placeholders, not secrets.
ACCESS_KEY = "picup-test-access"
SECRET_KEY = "picup-test-secret"
REGION = "us-east-1"


@contextlib.contextmanager
def moto_s3_server() -> Iterator[str]:
    """Start moto's S3 server on a free port of 127.0.0.1; yield ``host:port``."""
    # moto reads these for the account and region of what it creates.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    from moto.server import ThreadedMotoServer

    # Werkzeug (moto's HTTP server) prints one line per request to stderr,
    # even with verbose=False; keep its warnings and errors only.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    # Port 0: the OS picks a free port when the server binds, so there is
    # no window in which another process can take it.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"{host}:{port}"
    finally:
        server.stop()


def client(endpoint: str):
    """The S3 SDK Picup uses, signed in to the server at ``endpoint``."""
    from minio import Minio

    return Minio(endpoint=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region=REGION)
