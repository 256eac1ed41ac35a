"""Every route says who may use it, and the API refuses strangers."""

import re

from tests.conftest import Api

PUBLIC = {"/healthz", "/readyz", "/metrics", "/", "/setup", "/signin", "/api/v1/setup", "/api/v1/session",
          "/api/v1/uploads", "/api/v1/uploads/<upload_id>", "/static/<path:filename>"}


def test_every_view_declares_its_access(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "picup_auth", None) in {"public", "user", "admin"}, rule.rule


def test_the_api_refuses_anyone_not_signed_in(family, app):
    stranger = Api(app)
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:int:)?\w+>", "1", rule.rule).replace("<any(thumb, preview, video):rendition>", "thumb")
        for method in rule.methods - {"OPTIONS", "HEAD"}:
            view = app.view_functions[rule.endpoint]
            if view.picup_auth == "public":
                assert rule.rule in PUBLIC
                continue
            headers = {"Tus-Resumable": "1.0.0"}
            response = stranger.request(method, path, json={}, headers=headers)
            assert response.status_code == 401, f"{method} {path}: {response.status_code}"
            assert response.json["error"]["code"] == "not_signed_in"
            checked += 1
    assert checked > 25


def test_unknown_api_paths_answer_json(mom):
    response = mom.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    wrong = mom.request("PUT", "/api/v1/media")
    assert wrong.status_code == 405 and wrong.json["error"]["code"] == "method_not_allowed"


def test_health_readiness_and_metrics(mom, app):
    from tests import media_files

    mom.upload(media_files.jpeg())
    assert mom.get("/healthz").json == {"status": "ok"}
    ready = mom.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"] == {"database": "ok", "store": "ok"}
    text = mom.get("/metrics").get_data(as_text=True)
    assert 'picup_media{state="library"} 1' in text and "picup_users 1" in text
