"""First-run setup, signing in and out, family members, CSRF and API tokens."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import Api


def test_first_visit_creates_the_admin_and_only_once(app):
    visitor = Api(app)
    assert visitor.get("/api/v1/setup").json == {"needs_setup": True}
    first = visitor.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"})
    assert first.status_code == 201
    assert first.json["user"]["is_admin"] is True
    again = Api(app).post("/api/v1/setup", json={"username": "thief", "password": "correct horse"})
    assert again.status_code == 409
    assert again.json["error"]["code"] == "already_set_up"
    assert Api(app).get("/api/v1/setup").json == {"needs_setup": False}


def test_setup_takes_json_only_so_other_sites_cannot_post_a_form(app):
    response = Api(app).post("/api/v1/setup", data="username=x&password=yyyyyyyy",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert Api(app).get("/api/v1/setup").json == {"needs_setup": True}


def test_wrong_password_is_told_plainly_in_korean(family, app):
    response = Api(app, lang="ko-KR,ko;q=0.9").post(
        "/api/v1/session", json={"username": "mom", "password": "wrong password"})
    assert response.status_code == 401
    assert response.json["error"] == {"code": "wrong_credentials", "message": "이름이나 비밀번호가 맞지 않습니다."}
    unknown = Api(app).post("/api/v1/session", json={"username": "nobody", "password": "wrong password"})
    assert unknown.json == {"error": {"code": "wrong_credentials", "message": "The name or password is not right."}}


def test_session_cookie_is_private_and_remembered_for_a_year(family, app):
    response = Api(app).post("/api/v1/session", json={"username": "mom", "password": "correct horse"})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Max-Age=31536000" in cookie
    short = Api(app).post("/api/v1/session", json={"username": "mom", "password": "correct horse",
                                                   "remember": False})
    assert "Max-Age" not in short.headers["Set-Cookie"] and "Expires" not in short.headers["Set-Cookie"]


def test_sign_out_ends_the_session_on_the_server(family, app):
    mom = Api(app).sign_in("mom")
    cookie = mom.client.get_cookie("picup_session").value
    assert mom.delete("/api/v1/session").status_code == 200
    stolen = app.test_client()
    stolen.set_cookie("picup_session", cookie)
    assert stolen.get("/api/v1/media").status_code == 401


def test_admin_adds_family_members_and_members_cannot(family):
    dad = family.member("dad", display_name="Dad")
    assert dad.user["is_admin"] is False
    refused = dad.post("/api/v1/users", json={"username": "x", "password": "correct horse"})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "admin_only"
    assert dad.get("/api/v1/users").status_code == 403
    names = [u["username"] for u in family.admin.get("/api/v1/users").json["users"]]
    assert names == ["mom", "dad"]
    taken = family.admin.post("/api/v1/users", json={"username": "DAD", "password": "correct horse"})
    assert taken.status_code == 409


def test_short_password_is_refused(family):
    response = family.admin.post("/api/v1/users", json={"username": "kid", "password": "short"})
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_value"


def test_state_changes_need_the_csrf_token(mom):
    mom.csrf = None
    response = mom.post("/api/v1/albums", json={"title": "Trip"})
    assert response.status_code == 403 and response.json["error"]["code"] == "csrf_failed"
    assert mom.get("/api/v1/albums").json["albums"] == []


def test_requests_from_another_site_are_refused(mom):
    response = mom.post("/api/v1/albums", json={"title": "Trip"}, headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert mom.post("/api/v1/albums", json={"title": "Trip"},
                    headers={"Origin": "http://localhost"}).status_code == 201


def test_api_tokens_for_scripts(mom, app):
    created = mom.post("/api/v1/tokens", json={"name": "backup script"})
    assert created.status_code == 201
    token = created.json["token"]
    script = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    # no CSRF token needed: a bearer token is not sent by browsers on their own
    assert script.post("/api/v1/albums", json={"title": "From script"}, headers=bearer).status_code == 201
    listed = mom.get("/api/v1/tokens").json["tokens"]
    assert [t["name"] for t in listed] == ["backup script"] and listed[0]["last_used_at"]
    assert token not in str(listed)
    assert mom.delete(f"/api/v1/tokens/{listed[0]['id']}").status_code == 204
    assert script.get("/api/v1/albums", headers=bearer).status_code == 401


def test_user_add_from_the_command_line(tmp_path):
    picup = Path(sys.executable).parent / "picup"
    data = tmp_path / "data"
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(picup), "user", "add", "grandpa", "--display-name", "Grandpa",
                             "--password-stdin", "--data", str(data)],
                            input="long enough\n", capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "as an admin" in result.stdout  # the first account is the admin
    second = subprocess.run([str(picup), "user", "add", "grandma", "--password-stdin", "--data", str(data)],
                            input="long enough\n", capture_output=True, text=True, env=env)
    assert "as a member" in second.stdout
    listing = subprocess.run([str(picup), "user", "list", "--data", str(data)], capture_output=True,
                             text=True, env=env)
    assert "grandpa" in listing.stdout and "grandma" in listing.stdout
    clash = subprocess.run([str(picup), "user", "add", "grandma", "--password-stdin", "--data", str(data)],
                           input="long enough\n", capture_output=True, text=True, env=env)
    assert clash.returncode == 1 and "already used" in clash.stderr


def test_choose_the_language_in_settings(family, app):
    mom = family.admin
    assert mom.get("/api/v1/me").json["user"]["language"] is None
    assert mom.patch("/api/v1/me", json={"language": "ko"}).json["user"]["language"] == "ko"
    # now her errors are in Korean even though her browser asks for English
    response = mom.get("/api/v1/media/999", headers={"Accept-Language": "en-US"})
    assert response.json["error"]["message"] == "찾을 수 없습니다."
    assert mom.patch("/api/v1/me", json={"language": None}).json["user"]["language"] is None
    assert mom.patch("/api/v1/me", json={"language": "fr"}).status_code == 400
    renamed = mom.patch("/api/v1/me", json={"display_name": "  Mother  "})
    assert renamed.json["user"]["display_name"] == "Mother"


def test_changing_the_password_signs_out_every_other_device(family, app):
    laptop = Api(app).sign_in("mom")
    tablet = Api(app).sign_in("mom")
    wrong = laptop.post("/api/v1/me/password", json={"current_password": "nope", "new_password": "new and long"})
    assert wrong.status_code == 401
    short = laptop.post("/api/v1/me/password", json={"current_password": "correct horse", "new_password": "x"})
    assert short.status_code == 400
    changed = laptop.post("/api/v1/me/password",
                          json={"current_password": "correct horse", "new_password": "new and long"})
    assert changed.status_code == 200
    assert laptop.get("/api/v1/me").status_code == 200, "this device stays signed in"
    assert tablet.get("/api/v1/me").status_code == 401, "the others are signed out"
    assert Api(app).post("/api/v1/session", json={"username": "mom", "password": "correct horse"}).status_code == 401
    Api(app).sign_in("mom", "new and long")
