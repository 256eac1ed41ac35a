"""tus-js-client, the library behind Uppy and most tus uploads from web pages, against the real server.

The client is the npm release locked in ``tests/tus_js/package-lock.json`` (``make test``
installs it), run by Node.js through ``tests/tus_js/upload.js``, signed in like a page of
Picup: the session cookie and the CSRF token. The server is ``picup run`` in its own process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from picup.web.auth import COOKIE

from . import media_files
from .test_uploads_tus import sha256

HERE = Path(__file__).parent / "tus_js"
CLIENT = HERE / "node_modules" / "tus-js-client"


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    assert found and CLIENT.is_dir(), "Node.js and tus-js-client are missing: run `make test` (it installs them)"
    return found


class TusJs:
    """One ``node upload.js`` run; its JSON lines are read as they come."""

    def __init__(self, node: str, server, http, path: Path, chunk_size: int, pause_after: int | None = None,
                 **metadata):
        options = {
            "endpoint": f"{server.url}/api/v1/uploads",
            "path": str(path),
            "headers": {"Cookie": f"{COOKIE}={http.cookies[COOKIE]}", "X-CSRF-Token": http.headers["X-CSRF-Token"]},
            "metadata": metadata,
            "chunkSize": chunk_size,
            "pauseAfter": pause_after,
        }
        self.events: list[dict] = []
        self.process = subprocess.Popen([node, str(HERE / "upload.js"), json.dumps(options)], cwd=HERE,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def until(self, key: str, timeout: float = 60) -> dict:
        """Read events until one has ``key`` (or the client ends, which fails the test)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            event = json.loads(line)
            self.events.append(event)
            if key in event:
                return event
        raise AssertionError(f"tus-js-client never reported {key!r}; it said: {self.events}")

    def go_on(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def finish(self) -> dict:
        done = self.until("done")
        assert self.process.wait(timeout=30) == 0
        assert not [e for e in self.events if "error" in e]
        return done


def test_tus_js_client_uploads_a_photo_in_chunks(node, live_server, tmp_path):
    content = media_files.noisy_jpeg(31, size=(1600, 1200))
    path = tmp_path / "IMG_0001.jpg"
    path.write_bytes(content)
    server = live_server()
    http = server.session()
    chunk = 128 * 1024
    assert len(content) > 4 * chunk

    client = TusJs(node, server, http, path, chunk, filename="할머니 생신.jpg", filetype="image/jpeg")
    done = client.finish()

    accepted = [e["accepted"] for e in client.events if "accepted" in e]
    assert accepted == [min(n * chunk, len(content)) for n in range(1, len(accepted) + 1)]
    assert accepted[-1] == len(content)
    assert done["duplicate"] == "false"
    items = http.get(server.url + "/api/v1/media").json()["items"]
    assert [(str(m["id"]), m["filename"], m["size"], m["sha256"]) for m in items] == [
        (done["media"], "할머니 생신.jpg", len(content), sha256(content))]
    original = http.get(f"{server.url}/api/v1/media/{done['media']}/original")
    assert sha256(original.content) == sha256(content)

    again = TusJs(node, server, http, path, chunk, filename="copy.jpg").finish()
    assert (again["media"], again["duplicate"]) == (done["media"], "true")


def test_tus_js_client_retries_through_a_server_restart_and_finishes(node, live_server, tmp_path):
    """Picup restarts (an upgrade, a power blip) mid-upload: the client's own retries carry it through."""
    content = media_files.noisy_jpeg(32, size=(2400, 1800))
    path = tmp_path / "IMG_0002.jpg"
    path.write_bytes(content)
    server = live_server(data_dir=tmp_path / "data")
    http = server.session()
    chunk = 256 * 1024
    client = TusJs(node, server, http, path, chunk, pause_after=3 * chunk, filename="IMG_0002.jpg")

    assert client.until("paused")["paused"] == 3 * chunk
    assert len(list((tmp_path / "data").rglob("*.part"))) == 1  # the upload in progress
    assert server.stop() == 0  # stopped while the client holds its next request
    client.go_on()
    assert client.until("retry")["status"] == 0  # the server is gone: no answer at all
    server.start()  # the same data folder and port
    done = client.finish()

    assert [e for e in client.events if "retry" in e]
    accepted = [e["accepted"] for e in client.events if "accepted" in e]
    assert accepted[:3] == [chunk, 2 * chunk, 3 * chunk] and accepted[-1] == len(content)
    assert accepted == sorted(accepted), "it went on from where the server was, never back"
    items = http.get(server.url + "/api/v1/media").json()["items"]
    assert [(str(m["id"]), m["sha256"]) for m in items] == [(done["media"], sha256(content))]
    original = http.get(f"{server.url}/api/v1/media/{done['media']}/original")
    assert sha256(original.content) == sha256(content)
    assert not list((tmp_path / "data").rglob("*.part")), "no upload left behind"
