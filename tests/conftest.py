"""Shared fixtures: a real Picup on a temporary SQLite file and data folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from picup import config, create_app, db, worker
from tests.browser import launch
from tests.moto_server import moto_s3_server

BIN = Path(sys.executable).parent


def make_settings(data_dir: Path, **overrides) -> config.Settings:
    return config.load({"data_dir": str(data_dir), **overrides}, environ={})


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path / "data")


@pytest.fixture
def app(settings):
    return create_app(settings)


class Api:
    """A signed-in family member talking JSON to the app, CSRF token included."""

    def __init__(self, flask_app, lang="en"):
        self.client = flask_app.test_client()
        self.csrf = None
        self.user = None
        self.lang = lang

    def request(self, method, path, json=None, data=None, headers=None, **kwargs):
        headers = {"Accept-Language": self.lang, **(headers or {})}
        if self.csrf:
            headers.setdefault("X-CSRF-Token", self.csrf)
        return self.client.open(path, method=method, json=json, data=data, headers=headers, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def sign_in(self, username, password="correct horse", remember=True):
        response = self.post("/api/v1/session", json={"username": username, "password": password,
                                                     "remember": remember})
        assert response.status_code == 200, response.json
        self.csrf, self.user = response.json["csrf_token"], response.json["user"]
        return self

    def upload(self, content: bytes, filename="photo.jpg", **params):
        query = "&".join(f"{k}={v}" for k, v in {"filename": filename, **params}.items())
        return self.post(f"/api/v1/media?{query}", data=content, headers={"Content-Type": "application/octet-stream"})


@pytest.fixture
def family(app):
    """The admin (mom) signed in, and a way to add and sign in more members."""

    class Family:
        def __init__(self):
            self.admin = Api(app)
            response = self.admin.post("/api/v1/setup", json={"username": "mom", "password": "correct horse",
                                                             "display_name": "Mom"})
            assert response.status_code == 201, response.json
            self.admin.csrf, self.admin.user = response.json["csrf_token"], response.json["user"]

        def member(self, username, **fields):
            response = self.admin.post("/api/v1/users", json={"username": username, "password": "correct horse",
                                                             **fields})
            assert response.status_code == 201, response.json
            return Api(app).sign_in(username)

    return Family()


@pytest.fixture
def mom(family):
    return family.admin


@pytest.fixture
def pipeline(app, settings):
    """The worker's renditions, run by hand (see tests/test_media_pipeline.py)."""
    w = worker.Worker(settings, app.extensions["picup"].store, processes=1)
    w.register()
    yield w
    w.pool.close()


def store_of(flask_app):
    """The blob store an app writes to."""
    return flask_app.extensions["picup"].store


def render_everything(flask_app, settings) -> None:
    """Run the worker's renditions by hand until none is left (queued ones and those the sweep finds)."""
    w = worker.Worker(settings, store_of(flask_app), processes=1)
    w.register()
    try:
        with db.connection():
            worker.sweep_renditions()
        while worker.drain_tasks():
            pass
    finally:
        w.pool.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """``picup run`` (or another subcommand) as a real process on a free port."""

    def __init__(self, data_dir: Path, command="run", env=None):
        self.data_dir = data_dir
        self.command = command
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("PICUP_")}, **(env or {})}
        self.process = None
        self.log = data_dir.parent / f"server-{self.port}.log"

    def start(self, timeout=20):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [str(BIN / "picup"), self.command, "--port", str(self.port), "--data", str(self.data_dir)],
            env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"picup exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"picup did not come up:\n{self.log.read_text()}")

    def stop(self, timeout=30) -> int:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process else 0

    def session(self, username="mom", password="correct horse") -> requests.Session:
        """A requests session signed in as ``username`` (set up as admin if it is the first)."""
        http = requests.Session()
        if requests.get(self.url + "/api/v1/setup").json()["needs_setup"]:
            response = http.post(self.url + "/api/v1/setup", json={"username": username, "password": password})
        else:
            response = http.post(self.url + "/api/v1/session", json={"username": username, "password": password})
        response.raise_for_status()
        http.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        return http


@pytest.fixture
def live_server(tmp_path):
    servers = []

    def start(data_dir=None, **kwargs):
        server = LiveServer(data_dir or tmp_path / "live-data", **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium under Playwright, one per test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def endpoint():
    """A real S3 server (moto's server mode on 127.0.0.1) for the module: ``host:port``."""
    with moto_s3_server() as address:
        yield address
