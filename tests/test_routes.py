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


def test_every_page_sends_a_stranger_to_sign_in_and_back(family, app):
    stranger = Api(app)
    pages = [r.rule for r in app.url_map.iter_rules()
             if r.endpoint.startswith("pages.") and r.rule not in ("/setup", "/signin")]
    assert {"/", "/albums", "/albums/<int:album_id>", "/trash", "/family", "/settings"} <= set(pages)
    for rule in pages:
        path = rule.replace("<int:album_id>", "1")
        response = stranger.get(path)
        assert response.status_code == 302, path
        expected = "/signin" if path == "/" else f"/signin?next={path}"
        assert response.headers["Location"] == expected, path


def test_a_member_is_told_in_words_that_the_family_page_is_for_the_admin(family, app):
    dad = family.member("dad")
    response = dad.get("/family")
    assert response.status_code == 403
    assert "Only the family&#39;s administrator can do that." in response.get_data(as_text=True)
    missing = dad.get("/albums/999", headers={"Accept-Language": "ko"})
    assert missing.status_code == 404 and "찾을 수 없" in missing.get_data(as_text=True)


def test_pages_scripts_are_cached_by_content_and_json_is_compressed(mom):
    import gzip
    import re as regex

    from tests import media_files

    for n in range(12):
        mom.upload(media_files.jpeg((n * 20, 80, 120)), filename=f"{n}.jpg")
    page = mom.get("/").get_data(as_text=True)
    script = regex.search(r'src="(/static/app\.js\?v=[0-9a-f]{12})"', page).group(1)
    cached = mom.get(script)
    assert cached.status_code == 200 and "max-age=31536000" in cached.headers["Cache-Control"]
    plain = mom.get("/api/v1/media")
    packed = mom.get("/api/v1/media", headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.headers["Vary"]
    assert len(packed.data) < len(plain.data) / 3
    assert gzip.decompress(packed.data) == plain.data
    original = mom.get(plain.json["items"][0]["urls"]["original"], headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in original.headers, "photos are sent as they are"
