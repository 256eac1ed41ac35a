"""docs/openapi.yaml describes every /api/v1 route, and a scanner finds nothing against it.

The scan is schemathesis (property-based, from the description) against a real
``picup run``: for every operation it sends examples, boundary values and random
valid and invalid requests as a signed-in admin with an API token, and checks each
answer: never a 5xx, a documented status, a documented content type, a body and
headers that match the description. More examples by hand: docs/security.md
("Scanner run").
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest
import schemathesis
import yaml
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter

from picup import create_app, errors
from tests.conftest import LiveServer, make_settings
from tests.media_files import jpeg, video

DOC = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    unsupported_method,
]
# The normal run stays well under a minute and a half; PICUP_SCAN_EXAMPLES=500 scans harder.
MAX_EXAMPLES = int(os.environ.get("PICUP_SCAN_EXAMPLES", "25"))

# tus chunks are raw bytes under their own media type
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
schema = schemathesis.openapi.from_path(DOC)
# Reproducible: the same requests in every run (one fixed seed, mixed with each operation's name).
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, with_security_parameters=False)
schema.config.seed = int(os.environ.get("PICUP_SCAN_SEED", "20261123"))


def documented() -> set[tuple[str, str]]:
    paths = yaml.safe_load(DOC.read_text())["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item if method in METHODS}


def routes(app) -> set[tuple[str, str]]:
    """(method, path) of every /api/v1 route, with Flask's automatic HEAD and OPTIONS left out."""
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = re.sub(r"<(?:[^<>]*:)?(\w+)>", r"{\1}", rule.rule)
        methods = set(rule.methods)
        if getattr(rule, "provide_automatic_options", False):
            methods.discard("OPTIONS")
        if "GET" in methods:
            methods.discard("HEAD")  # every GET answers HEAD too
        found |= {(method, path) for method in methods}
    return found


def test_every_api_route_is_described_and_nothing_else(app):
    assert routes(app) - documented() == set(), "routes missing from docs/openapi.yaml"
    assert documented() - routes(app) == set(), "docs/openapi.yaml describes routes the app does not have"


def test_error_codes_are_the_apps():
    error = yaml.safe_load(DOC.read_text())["components"]["schemas"]["Error"]
    assert set(error["properties"]["error"]["properties"]["code"]["enum"]) == set(errors.STATUS)


@dataclass
class Target:
    url: str
    token: str
    routes: MapAdapter  # the app's own URL map, to see which row a request names as the app will
    # endpoint -> (its id parameter, an id the rest of the scan needs, a spare to delete instead)
    keep: dict[str, tuple[str, int, int]]

    def spare_what_is_kept(self, case) -> None:
        """Point a request that would delete a kept row (``/tokens/1``, ``/tokens/01``, …) at its spare."""
        try:
            endpoint, args = self.routes.match(unquote(case.formatted_path), method=case.method)
        except HTTPException:
            return
        if endpoint in self.keep:
            name, kept, spare = self.keep[endpoint]
            if args[name] == kept:
                case.path_parameters[name] = spare


def _wait_rendered(http, url: str, media_ids: list[int], timeout=60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [http.get(f"{url}/api/v1/media/{i}").json()["media"]["render"]["status"] for i in media_ids]
        if all(state != "pending" for state in states):
            return
        time.sleep(0.2)
    raise AssertionError(f"the worker did not render {media_ids} in {timeout} s")


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """A real ``picup run`` with a family, a photo, a video, albums, slideshows and trash,
    so that the ids the scanner tries first (the examples: 1) hit real rows."""
    server = LiveServer(tmp_path_factory.mktemp("scan") / "data").start()
    try:
        http, url = server.session(), server.url  # mom, the admin

        def made(path, **kwargs):
            response = http.post(url + path, **kwargs)
            assert response.status_code in (200, 201), response.text
            return response.json()

        raw = {"Content-Type": "application/octet-stream"}
        photo = made("/api/v1/media?filename=a.jpg", data=jpeg("red", taken="2023:05:05 12:00:00"),
                     headers=raw)["media"]["id"]
        clip = made("/api/v1/media?filename=b.mp4", data=video(), headers=raw)["media"]["id"]
        gone = made("/api/v1/media?filename=c.jpg", data=jpeg("blue"), headers=raw)["media"]["id"]
        assert http.delete(f"{url}/api/v1/media/{gone}").status_code == 200
        dad = made("/api/v1/users", json={"username": "dad", "password": "correct horse"})["user"]["id"]
        album, spare_album = (made("/api/v1/albums", json={"title": t})["album"]["id"] for t in ("Jeju", "Old"))
        made(f"/api/v1/albums/{album}/media", json={"media_ids": [photo, clip]})
        assert http.put(f"{url}/api/v1/albums/{album}/members",
                        json={"members": [{"user_id": dad, "role": "view"}]}).status_code == 200
        show = made("/api/v1/slideshows", json={"album_id": album})["slideshow"]["id"]
        spare_show = made("/api/v1/slideshows", json={"source": "all"})["slideshow"]["id"]
        made("/api/v1/me/totp")  # two-step set-up started: its QR code answers
        scanner, spare = (made("/api/v1/tokens", json={"name": name}) for name in ("scanner", "spare"))
        _wait_rendered(http, url, [photo, clip])
        app = create_app(make_settings(tmp_path_factory.mktemp("routes") / "data"))
        yield Target(url, scanner["token"], app.url_map.bind("localhost"), keep={
            # Revoking the scanner's own token would sign the rest of the scan out.
            "api_accounts.revoke_token": ("token_id", scanner["id"], spare["id"]),
            # The album and its slideshow are what the album and slideshow operations after these work on.
            "api_albums.delete_album": ("album_id", album, spare_album),
            "api_slideshows.revoke_slideshow": ("show_id", show, spare_show),
        })
    finally:
        server.stop()


@schema.parametrize()
def test_api_answers_as_described(case, target):
    target.spare_what_is_kept(case)
    response = case.call_and_validate(
        base_url=target.url, headers={"Authorization": f"Bearer {target.token}"}, checks=CHECKS, timeout=30
    )
    # Every request carries the token: "not signed in" would mean the scan lost it and checks nothing more.
    signed_out = response.status_code == 401 and (case.method == "HEAD" or
                                                  response.json()["error"]["code"] == "not_signed_in")
    assert not signed_out, f"the scan lost its token at {case.as_curl_command()}"


def test_a_method_a_route_does_not_have_gets_405_with_allow(app):
    """RFC 9110: a 405 says which methods the route has."""
    response = app.test_client().put("/api/v1/media")
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
