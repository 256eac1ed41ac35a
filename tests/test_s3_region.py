"""A server that wants another region says which setting to change, for the photo store and the backup.

Garage refuses requests signed for a region other than its ``s3_region`` ("garage" unless
changed) with 400 AuthorizationHeaderMalformed, and the S3 client signs for us-east-1 when
no region is set. There is no Garage here and moto takes any region, so the server in
this file is a stand-in, the only one in the suite: it answers every request the way
Garage does (its error text, 400, S3's XML). Everything on Picup's side is real: the
``picup`` command, the configuration from the environment, the S3 client, the HTTP.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

PICUP = str(Path(sys.executable).parent / "picup")
GARAGE_SAYS = ("Authorization header malformed, unexpected scope: '20261204/us-east-1/s3/aws4_request', "
               "expected: '20261204/garage/s3/aws4_request'")


class WrongRegion(http.server.BaseHTTPRequestHandler):
    def answer(self, with_body: bool) -> None:
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AuthorizationHeaderMalformed</Code>'
                f"<Message>{GARAGE_SAYS}</Message><Region>garage</Region><Path>{self.path}</Path></Error>").encode()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(400)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (http.server's names)
        self.answer(True)

    do_PUT = do_POST = do_DELETE = do_GET

    def do_HEAD(self):  # noqa: N802
        self.answer(False)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def garage():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WrongRegion)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def picup(*args, input: str | None = None, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PICUP_")}
    return subprocess.run([PICUP, *args], env={**environ, **env}, input=input, capture_output=True, text=True,
                          timeout=120)


def test_a_photo_store_on_garage_without_its_region_names_the_setting(garage, tmp_path):
    done = picup("serve", "--port", "1", "--data", str(tmp_path / "data"), PICUP_STORAGE_BACKEND="s3",
                 PICUP_STORAGE_ENDPOINT=garage, PICUP_STORAGE_BUCKET="family", PICUP_STORAGE_SECURE="false",
                 PICUP_STORAGE_ACCESS_KEY="GK0123456789abcdef", PICUP_STORAGE_SECRET_KEY="s3cr3t-value")
    assert done.returncode == 1
    assert "Picup will not start: s3://family/.picup-store: the server does not accept the region 'us-east-1'; " \
           "it expects 'garage'. Set region in [storage] (PICUP_STORAGE_REGION) to the server's region" in done.stderr
    assert "s3cr3t-value" not in done.stderr + done.stdout


def test_a_backup_to_garage_without_its_region_names_the_setting(garage, tmp_path):
    data = str(tmp_path / "data")
    assert picup("user", "add", "mom", "--password-stdin", "--data", data, input="long enough\n").returncode == 0
    done = picup("backup", "--data", data, PICUP_BACKUP_ENDPOINT=garage, PICUP_BACKUP_BUCKET="family-backup",
                 PICUP_BACKUP_SECURE="false", PICUP_BACKUP_ACCESS_KEY="GK0123456789abcdef",
                 PICUP_BACKUP_SECRET_KEY="s3cr3t-value")
    assert done.returncode == 1
    assert f"the backup server {garage} refused the request while " in done.stderr
    assert "the server does not accept the region 'us-east-1'; it expects 'garage'. Set region in [backup] " \
           "(PICUP_BACKUP_REGION) to the server's region" in done.stderr
    assert "s3cr3t-value" not in done.stderr + done.stdout
