"""`picup run` as a family member meets it: a real waitress server that stops gracefully."""

import hashlib
import signal
import re
import time

import pytest
import requests

from tests import media_files


def test_run_prints_where_to_go_and_serves_the_first_visit(live_server):
    server = live_server()
    page = requests.get(server.url + "/")
    assert page.url.endswith("/setup") and "Welcome to Picup" in page.text
    out = server.log.read_text()
    assert f"Picup is running: http://localhost:{server.port}" in out
    assert "creates the first account" in out


def test_sigterm_lets_a_download_in_flight_finish(live_server):
    server = live_server()
    http = server.session()
    content = media_files.jpeg() + bytes(range(256)) * (160 * 1024)  # ~40 MiB
    created = http.post(server.url + "/api/v1/uploads", headers={
        "Tus-Resumable": "1.0.0", "Upload-Length": str(len(content)),
        "Upload-Metadata": "filename YmlnLmpwZw==", "Content-Type": "application/offset+octet-stream",
    }, data=content)
    assert created.status_code == 201, created.text
    media_id = created.headers["Picup-Media-Id"]

    download = http.get(f"{server.url}/api/v1/media/{media_id}/original", stream=True)
    received = hashlib.sha256()
    chunks = download.iter_content(256 * 1024)
    received.update(next(chunks))
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/healthz", timeout=2)  # no new requests once stopping
    for chunk in chunks:  # a slow reader still gets everything
        received.update(chunk)
        time.sleep(0.002)
    assert received.hexdigest() == hashlib.sha256(content).hexdigest()
    assert server.process.wait(timeout=30) == 0
    assert '"msg": "stopped"' in server.log.read_text()


def test_the_worker_runs_inside_picup_run(live_server):
    server = live_server()
    server.session()
    deadline = time.time() + 10
    while time.time() < deadline and "worker started" not in server.log.read_text():
        time.sleep(0.1)
    jobs = re.search(r'"jobs": "([^"]*)"', server.log.read_text()).group(1).split(",")
    assert sorted(jobs) == ["expire-uploads", "integrity-check", "purge-trash", "sweep-renditions", "tasks"], \
        "no backup job without a backup target"


def _send_partial(server, http, method, path, total, sent, extra_headers=""):
    """Send headers announcing ``total`` bytes, then only ``sent`` of them, then hang up."""
    import socket

    cookie = http.cookies.get("picup_session")
    body = media_files.jpeg() + bytes(sent)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall((f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                      f"Cookie: picup_session={cookie}\r\nX-CSRF-Token: {http.headers['X-CSRF-Token']}\r\n"
                      f"Content-Length: {total}\r\n{extra_headers}\r\n").encode() + body[:sent])
        time.sleep(0.3)


def test_a_client_that_hangs_up_mid_upload_leaves_nothing_behind(live_server):
    server = live_server()
    http = server.session()
    _send_partial(server, http, "POST", "/api/v1/media?filename=cut.jpg", 8_000_000, 1_000_000,
                  "Content-Type: application/octet-stream\r\n")
    created = http.post(server.url + "/api/v1/uploads", headers={
        "Tus-Resumable": "1.0.0", "Upload-Length": "8000000", "Upload-Metadata": "filename Y3V0LmpwZw=="})
    location = created.headers["Location"]
    _send_partial(server, http, "PATCH", location, 8_000_000, 2_000_000,
                  "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n")
    time.sleep(0.5)
    head = http.head(server.url + location, headers={"Tus-Resumable": "1.0.0"})
    assert head.headers["Upload-Offset"] == "0", "a cut-off chunk is not counted"
    assert http.get(server.url + "/api/v1/media").json()["items"] == []
    tmp = server.data_dir / "tmp"
    assert [p.name for p in tmp.glob("recv-*")] == []
    assert [p.stat().st_size for p in (tmp / "uploads").glob("*.part")] == [0]
    assert requests.get(server.url + "/readyz").status_code == 200
