"""First-run setup, signing in and out, family members, CSRF and API tokens."""

import subprocess
import sys
from pathlib import Path

import pytest

from picup import accounts
from picup.errors import PicupError
from picup.models import User
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


def test_everyone_signed_in_sees_the_family_by_name_and_nothing_more(family):
    mom = family.admin
    dad = family.member("dad", display_name="Dad")
    kid = family.member("kid", display_name="Anna")
    mom.post("/api/v1/albums", json={"title": "Secret birthday plans"})
    response = kid.get("/api/v1/family")
    assert response.status_code == 200
    assert response.json == {"members": [{"id": kid.user["id"], "display_name": "Anna"},
                                         {"id": dad.user["id"], "display_name": "Dad"},
                                         {"id": mom.user["id"], "display_name": "Mom"}]}
    # no sign-in names, admin flags or albums: only whom an album could be shared with
    text = response.get_data(as_text=True)
    assert "mom" not in text and "is_admin" not in text and "Secret" not in text
    assert dad.get("/api/v1/users").status_code == 403


def test_admin_resets_a_forgotten_password_and_the_old_sign_ins_end(family, app):
    mom = family.admin
    dad = family.member("dad")
    tablet = Api(app).sign_in("dad")
    token = dad.post("/api/v1/tokens", json={"name": "photo frame"}).json["token"]
    short = mom.patch(f"/api/v1/users/{dad.user['id']}", json={"password": "short"})
    assert short.status_code == 400 and short.json["error"]["code"] == "invalid_value"
    assert "password" in short.json["error"]["message"]
    assert dad.get("/api/v1/me").status_code == 200, "a refused reset changes nothing"

    reset = mom.patch(f"/api/v1/users/{dad.user['id']}", json={"password": "a new secret"})
    assert reset.status_code == 200
    assert reset.json == {"user": {"id": dad.user["id"], "username": "dad", "display_name": "dad",
                                   "is_admin": False, "language": None, "two_step": False}}
    for device in (dad, tablet):  # their old cookies no longer work
        gone = device.get("/api/v1/me")
        assert gone.status_code == 401 and gone.json["error"]["code"] == "not_signed_in"
    assert Api(app).post("/api/v1/session", json={"username": "dad", "password": "correct horse"}).status_code == 401
    assert Api(app).sign_in("dad", "a new secret").get("/api/v1/me").json["user"]["username"] == "dad"
    # his scripts keep working, and mom was not signed out
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert mom.get("/api/v1/me").status_code == 200


def test_an_admin_resetting_their_own_password_stays_signed_in_here_only(family, app):
    mom = family.admin
    laptop = Api(app).sign_in("mom")
    assert mom.patch(f"/api/v1/users/{mom.user['id']}", json={"password": "a new secret"}).status_code == 200
    assert mom.get("/api/v1/me").status_code == 200
    assert laptop.get("/api/v1/me").status_code == 401
    Api(app).sign_in("mom", "a new secret")


def test_only_an_admin_changes_family_members(family, app):
    mom = family.admin
    dad = family.member("dad")
    for change in ({"is_admin": True}, {"password": "dad's new one"}, {"display_name": "Boss"}):
        refused = dad.patch(f"/api/v1/users/{dad.user['id']}", json=change)
        assert refused.status_code == 403 and refused.json["error"]["code"] == "admin_only"
    assert dad.patch(f"/api/v1/users/{mom.user['id']}", json={"is_admin": False}).status_code == 403
    assert dad.get("/api/v1/me").json["user"] == dad.user
    assert mom.get("/api/v1/me").json["user"]["is_admin"] is True
    Api(app).sign_in("dad")  # his password is unchanged
    missing = mom.patch("/api/v1/users/999", json={"display_name": "Ghost"})
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"


def test_admin_renames_and_makes_another_admin(family):
    mom = family.admin
    dad = family.member("dad")
    bad = mom.patch(f"/api/v1/users/{dad.user['id']}", json={"display_name": "   ", "is_admin": True})
    assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_value"
    assert dad.get("/api/v1/me").json["user"]["is_admin"] is False, "nothing changes when one value is wrong"
    assert mom.patch(f"/api/v1/users/{dad.user['id']}", json={"is_admin": "yes"}).status_code == 400
    changed = mom.patch(f"/api/v1/users/{dad.user['id']}", json={"display_name": "  Father ", "is_admin": True})
    assert changed.status_code == 200
    assert changed.json["user"]["display_name"] == "Father" and changed.json["user"]["is_admin"] is True
    assert dad.get("/api/v1/users").status_code == 200, "he is an admin at once, without signing in again"
    # now there are two admins, so dad may take mom's flag away
    assert dad.patch(f"/api/v1/users/{mom.user['id']}", json={"is_admin": False}).json["user"]["is_admin"] is False
    assert mom.get("/api/v1/users").status_code == 403


def test_the_last_admin_cannot_stop_being_one(family, app):
    mom = family.admin
    family.member("dad")
    refused = mom.patch(f"/api/v1/users/{mom.user['id']}", json={"is_admin": False})
    assert refused.status_code == 400
    assert refused.json["error"] == {"code": "invalid_value", "message": 'The value of "is_admin" is not valid.'}
    assert mom.get("/api/v1/me").json["user"]["is_admin"] is True
    assert mom.get("/api/v1/users").status_code == 200


def test_the_family_always_keeps_an_admin(family, app):
    family.member("dad")
    mom = User.get(User.username == "mom")
    with pytest.raises(PicupError) as refused:
        accounts.update_user(mom, by=None, is_admin=False)  # e.g. a script: nobody else is an admin
    assert refused.value.code == "invalid_value" and refused.value.params == {"field": "is_admin"}
    assert User.get(User.username == "mom").is_admin is True


def test_admin_sees_which_albums_each_person_can_see(family):
    mom = family.admin
    dad, kid = family.member("dad"), family.member("kid")
    ids = {}
    for api, title in ((mom, "Jeju"), (mom, "Seoul"), (mom, "Presents"), (dad, "Fishing")):
        ids[title] = api.post("/api/v1/albums", json={"title": title}).json["album"]["id"]
    mom.put(f"/api/v1/albums/{ids['Jeju']}/members", json={"members": [{"user_id": dad.user["id"], "role": "view"}]})
    mom.put(f"/api/v1/albums/{ids['Seoul']}/members",
            json={"members": [{"user_id": dad.user["id"], "role": "add"}, {"user_id": kid.user["id"]}]})
    users = {u["username"]: u for u in mom.get("/api/v1/users").json["users"]}
    assert [u for u in users] == ["mom", "dad", "kid"]

    def seen(name):
        return sorted((a["title"], a["owner_id"], a["role"], a["id"]) for a in users[name]["albums"])

    me, him = mom.user["id"], dad.user["id"]
    assert seen("mom") == [("Jeju", me, "owner", ids["Jeju"]), ("Presents", me, "owner", ids["Presents"]),
                           ("Seoul", me, "owner", ids["Seoul"])]
    assert seen("dad") == [("Fishing", him, "owner", ids["Fishing"]), ("Jeju", me, "view", ids["Jeju"]),
                           ("Seoul", me, "add", ids["Seoul"])]
    assert seen("kid") == [("Seoul", me, "view", ids["Seoul"])]
    assert set(users["kid"]["albums"][0]) == {"id", "title", "owner_id", "role"}
    assert users["kid"]["is_admin"] is False and users["kid"]["display_name"] == "kid"


# Found by the scanner run (docs/security.md, "Scanner run"): each of these was a 500.
TOO_BIG = 2**63  # one past SQLite's largest integer


def _refused(response, field):
    assert response.status_code == 400, response.json
    assert response.json["error"] == {"code": "invalid_value", "message": f'The value of "{field}" is not valid.'}


@pytest.mark.parametrize("fields, wrong", [
    ({"username": ["dad"]}, "username"),
    ({"display_name": 5}, "display_name"),
    ({"display_name": "x" * 101}, "display_name"),  # as long as a renamed one may be
    ({"language": "fr"}, "language"),  # was dropped without a word
    ({"is_admin": "false"}, "is_admin"),  # was true: any non-empty string made an admin
])
def test_a_new_member_with_a_wrong_field_is_refused_and_not_added(family, fields, wrong):
    mom = family.admin
    _refused(mom.post("/api/v1/users", json={"username": "dad", "password": "correct horse", **fields}), wrong)
    assert [u["username"] for u in mom.get("/api/v1/users").json["users"]] == ["mom"]


def test_a_token_name_that_is_not_text_is_refused(family):
    mom = family.admin
    _refused(mom.post("/api/v1/tokens", json={"name": [None, None]}), "name")
    _refused(mom.post("/api/v1/tokens", json={"name": TOO_BIG}), "name")
    assert mom.get("/api/v1/tokens").json["tokens"] == []


def test_keep_me_signed_in_must_be_true_or_false(family, app):
    family.member("dad")
    answer = Api(app).post("/api/v1/session", json={"username": "dad", "password": "correct horse", "remember": "no"})
    _refused(answer, "remember")


@pytest.mark.parametrize("method, path", [
    ("DELETE", f"/api/v1/tokens/{TOO_BIG}"),
    ("PATCH", f"/api/v1/users/{TOO_BIG}"),
    ("DELETE", f"/api/v1/users/{TOO_BIG}/totp"),
])
def test_an_id_too_big_for_the_database_is_not_found(family, method, path):
    response = family.admin.request(method, path, json={"display_name": "Dad"})
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    assert family.admin.request(method, path.replace(str(TOO_BIG), str(TOO_BIG - 1)),
                                json={"display_name": "Dad"}).status_code == 404, "the largest id is asked for"
