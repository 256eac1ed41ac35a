"""Authorization, proven: every route of the app (read from Flask's URL map, so a new
route is covered without anyone remembering) is called by each kind of visitor, with the
ids of Mom's things, and each gets exactly what it should:

- nobody signed in: 401 from the API, the sign-in page from pages;
- Dad (another member): 404 for everything of Mom's, the same as for an id that does
  not exist, so he cannot even learn what exists; 403 ``admin_only`` on admin routes,
  whatever the id;
- Gran (Mom's album "Jeju" is shared with her to view): she sees that album and its
  photos, and none of her changes lands;
- a slideshow token: its own pictures on the TV routes, and nothing anywhere else;
- a revoked token: nothing.

Every answer also carries the security headers. And afterwards Mom's library is exactly
as it was.
"""

from __future__ import annotations

import re

import pytest

from picup import worker
from tests import media_files
from tests.conftest import Api

TUS = {"Tus-Resumable": "1.0.0"}
WRITE = {"POST", "PUT", "PATCH", "DELETE"}
OBJECT_PARAMS = {"album_id", "media_id", "upload_id", "show_id", "token_id", "device", "user_id"}
# a body with every field a route might want, so a refusal is about who asks, not what is sent
BODY = {"title": "hacked", "media_ids": [], "members": [], "cover_id": None, "paused": True, "settings": {},
        "name": "x", "password": "correct horse", "display_name": "x", "is_admin": True, "code": "123456",
        "seconds": 5, "ends_at": None, "new_code": True, "language": "en"}


@pytest.fixture
def world(family, app, pipeline):
    mom = family.admin
    shown = mom.upload(media_files.jpeg("teal", size=(640, 480)), "shared.jpg").json["media"]["id"]
    private = mom.upload(media_files.jpeg("plum", size=(640, 480)), "private.jpg").json["media"]["id"]
    worker.drain_tasks()
    jeju = mom.post("/api/v1/albums", json={"title": "Jeju"}).json["album"]["id"]
    secret = mom.post("/api/v1/albums", json={"title": "Secret"}).json["album"]["id"]
    mom.post(f"/api/v1/albums/{jeju}/media", json={"media_ids": [shown]})
    mom.post(f"/api/v1/albums/{secret}/media", json={"media_ids": [private]})
    gran = family.member("gran")
    dad = family.member("dad")
    mom.put(f"/api/v1/albums/{jeju}/members", json={"members": [{"user_id": gran.user["id"], "role": "view"}]})
    upload = mom.post("/api/v1/uploads", headers={**TUS, "Upload-Length": "100"}).headers["Location"]
    token = mom.post("/api/v1/tokens", json={"name": "script"}).json
    show = mom.post("/api/v1/slideshows", json={"album_id": jeju}).json["slideshow"]
    gone = mom.post("/api/v1/slideshows", json={"album_id": jeju}).json["slideshow"]
    mom.delete(f"/api/v1/slideshows/{gone['id']}")
    device = next(d["id"] for d in mom.get("/api/v1/sessions").json["sessions"] if d["current"])
    ids = {
        "album_id": secret, "media_id": private, "upload_id": upload.rsplit("/", 1)[1], "show_id": show["id"],
        "token_id": token["id"], "device": device, "user_id": mom.user["id"],
    }
    return {"mom": mom, "dad": dad, "gran": gran, "ids": ids, "jeju": jeju, "shown": shown,
            "private": private, "show": show, "gone": gone, "token": token["token"]}


def path_for(rule, ids: dict, token: str = "") -> str:
    path = rule.rule
    for name, value in ids.items():
        path = re.sub(rf"<(?:\w+:)?{name}>", str(value), path)
    path = path.replace("<token>", token)
    path = re.sub(r"<any\((\w+)[^)]*\):rendition>", r"\1", path)
    return path


def calls(app):
    """(rule, method) for every route but static files."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        methods = rule.methods - {"OPTIONS"}
        if "GET" in methods:
            methods.discard("HEAD")  # Flask adds HEAD to every GET
        for method in sorted(methods) or ["OPTIONS"]:  # tus answers OPTIONS itself
            yield rule, method


def send(api, method, path):
    headers = dict(TUS)
    if method == "PATCH" and "/uploads/" in path:
        headers.update({"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        return api.request(method, path, data=b"x" * 10, headers=headers)
    if method == "POST" and path.endswith("/uploads"):
        headers["Upload-Length"] = "10"
    return api.request(method, path, json=BODY if method in WRITE else None, headers=headers)


def check_headers(response, where):
    headers = response.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") == "same-origin", where
    policy = headers.get("Content-Security-Policy", "")
    assert "frame-ancestors" in policy, where
    scripts = re.search(r"script-src ([^;]*)", policy) or re.search(r"default-src ([^;]*)", policy)
    assert scripts and "'unsafe-inline'" not in scripts.group(1) and "'unsafe-eval'" not in scripts.group(1), where


def library_of(mom, world):
    """What Mom would check: her photos, albums and who sees them, her upload, token, slideshow."""
    albums = {a["id"]: (a["title"], a.get("cover")) for a in mom.get("/api/v1/albums").json["albums"]}
    members = mom.get("/api/v1/users").json["users"]
    return {
        "media": sorted((m["id"], m["trashed_at"]) for m in mom.get("/api/v1/media").json["items"]),
        "trash": [m["id"] for m in mom.get("/api/v1/trash").json["items"]],
        "albums": albums,
        "album items": {a: [m["id"] for m in mom.get(f"/api/v1/media?album={a}").json["items"]] for a in albums},
        "members": sorted((u["username"], u["is_admin"], str(u["albums"])) for u in members),
        "upload": mom.request("HEAD", f"/api/v1/uploads/{world['ids']['upload_id']}", headers=TUS).status_code,
        "tokens": [t["id"] for t in mom.get("/api/v1/tokens").json["tokens"]],
        "slideshows": [(s["id"], s["paused"], s["settings"]) for s in mom.get("/api/v1/slideshows").json["slideshows"]],
        "me": mom.get("/api/v1/me").status_code,
    }


def test_nobody_signed_in_gets_nothing_but_the_public_routes(app, world):
    stranger = Api(app)
    for rule, method in calls(app):
        view = app.view_functions[rule.endpoint]
        if view.picup_auth == "public" or rule.rule.startswith("/tv"):
            continue
        response = send(stranger, method, path_for(rule, world["ids"]))
        check_headers(response, rule.rule)
        assert response.status_code == 401, (method, rule.rule)
        if method != "HEAD":
            assert response.json["error"]["code"] == "not_signed_in", (method, rule.rule)
    for page in ("/", "/albums", f"/albums/{world['jeju']}", "/trash", "/family", "/settings", "/slideshows",
                 "/status"):
        response = stranger.get(page)
        assert response.status_code == 302 and response.headers["Location"].startswith("/signin"), page


def test_another_member_cannot_tell_moms_things_from_things_that_do_not_exist(app, world):
    mom, dad = world["mom"], world["dad"]
    before = library_of(mom, world)
    nowhere = {name: 999999 if name != "device" and name != "upload_id" else "0" * 16 for name in OBJECT_PARAMS}
    checked = 0
    for rule, method in calls(app):
        view = app.view_functions[rule.endpoint]
        if rule.rule.startswith("/tv") or not (OBJECT_PARAMS & set(rule.arguments)) or view.picup_auth == "public":
            continue
        theirs = send(dad, method, path_for(rule, world["ids"]))
        missing = send(dad, method, path_for(rule, nowhere))
        check_headers(theirs, rule.rule)
        where = f"{method} {rule.rule}"
        if view.picup_auth == "admin":
            assert theirs.status_code == 403 and theirs.json["error"]["code"] == "admin_only", where
        elif rule.rule.startswith("/api/"):
            assert theirs.status_code == 404, f"{where}: {theirs.status_code}"
        else:  # a page: "not found" in words
            assert theirs.status_code == 404, where
        assert (theirs.status_code, theirs.get_data()) == (missing.status_code, missing.get_data()), \
            f"{where}: Mom's id and a missing id must look the same"
        checked += 1
    assert checked >= 25
    assert library_of(mom, world) == before, "nothing of Mom's changed"


def test_a_member_who_may_only_look_sees_the_shared_album_and_changes_nothing(app, world):
    mom, gran = world["mom"], world["gran"]
    before = library_of(mom, world)
    shared = {**world["ids"], "album_id": world["jeju"], "media_id": world["shown"]}
    for rule, method in calls(app):
        if rule.rule.startswith("/tv") or not ({"album_id", "media_id"} & set(rule.arguments)):
            continue
        if set(rule.arguments) & {"show_id", "upload_id", "token_id", "device", "user_id"}:
            continue
        response = send(gran, method, path_for(rule, shared))
        check_headers(response, rule.rule)
        where = f"{method} {rule.rule}: {response.status_code}"
        if method == "GET":
            assert response.status_code == 200, where
        elif rule.endpoint.endswith("favorite"):
            assert response.status_code == 200, where  # her own heart on a photo she can see
        else:
            assert response.status_code in (403, 404), where
    assert gran.get(f"/api/v1/media/{world['private']}").status_code == 404
    assert gran.get(f"/api/v1/albums/{world['ids']['album_id']}").status_code == 404
    assert library_of(mom, world) == before, "nothing of Mom's changed"


def test_a_slideshow_token_opens_its_own_pictures_and_nothing_else(app, world):
    tv = app.test_client()
    token, shown, private = world["show"]["token"], world["shown"], world["private"]
    for rule, method in calls(app):
        if rule.rule.startswith("/tv") or app.view_functions[rule.endpoint].picup_auth == "public":
            continue
        path = path_for(rule, {**world["ids"], "media_id": shown})
        for how in ({"headers": {"Authorization": f"Bearer {token}", **TUS}}, {"query_string": {"token": token}, "headers": TUS}):
            response = tv.open(path, method=method, **how)
            assert response.status_code in (401, 302), f"{method} {path} {how}: {response.status_code}"
    assert tv.get(f"/tv/{token}").status_code == 200
    assert tv.get(f"/tv/{token}/feed").json["items"][0]["id"] == shown
    assert tv.get(f"/tv/{token}/media/{shown}/display").status_code == 200
    for rendition in ("display", "video", "original"):
        assert tv.get(f"/tv/{token}/media/{private}/{rendition}").status_code == 404, rendition
    assert tv.get(f"/tv/{token}/media/{shown}/original").status_code == 404, "download is off"


def test_a_revoked_token_opens_nothing(app, world):
    tv = app.test_client()
    gone = world["gone"]["token"]
    checked = 0
    for rule, method in calls(app):
        if "<token>" not in rule.rule:
            continue
        response = tv.open(path_for(rule, {"media_id": world["shown"]}, token=gone), method=method)
        check_headers(response, rule.rule)
        assert response.status_code in (404, 410), f"{method} {rule.rule}: {response.status_code}"
        checked += 1
    assert checked >= 3
    page = tv.get(f"/tv/{gone}")
    assert page.status_code == 410 and "This slideshow was turned off" in page.get_data(as_text=True)


def test_only_the_slideshow_may_be_framed(app, world):
    tv = app.test_client()
    page = tv.get(f"/tv/{world['show']['token']}")
    assert "frame-ancestors *" in page.headers["Content-Security-Policy"] and "X-Frame-Options" not in page.headers
    for path in ("/signin", "/tv", f"/tv/{world['show']['token']}/feed"):
        response = tv.get(path)
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], path
        assert response.headers["X-Frame-Options"] == "DENY", path
