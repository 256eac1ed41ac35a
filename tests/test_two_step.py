"""Two-step sign-in (TOTP), recovery codes, sign-in limits, the devices list, and the
client address behind a trusted proxy — each as a person or an attacker meets it."""

import time

import pyotp
import pytest
import requests

from picup import twostep
from tests.conftest import Api, make_settings


def code_at(secret, step):
    return pyotp.TOTP(secret).at(step * twostep.STEP)


def now_step():
    return int(time.time()) // twostep.STEP


def sign_in(app, otp=None, password="correct horse", username="mom", address="10.0.0.5"):
    body = {"username": username, "password": password, **({"otp": otp} if otp is not None else {})}
    return app.test_client().post("/api/v1/session", json=body, environ_base={"REMOTE_ADDR": address})


def set_up(api):
    started = api.post("/api/v1/me/totp").json
    codes = api.post("/api/v1/me/totp/confirm", json={"code": code_at(started["secret"], now_step())}).json
    return started["secret"], codes["recovery_codes"]


def test_setting_it_up_shows_a_secret_and_a_qr_code_and_a_code_switches_it_on(family, app):
    mom = family.admin
    started = mom.post("/api/v1/me/totp")
    assert started.status_code == 200
    secret, uri = started.json["secret"], started.json["uri"]
    assert uri.startswith("otpauth://totp/Picup:mom?") and f"secret={secret}" in uri and "issuer=Picup" in uri
    qr = mom.get("/api/v1/me/totp/qr")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml" and qr.headers["Cache-Control"].endswith("no-store")
    assert mom.get("/api/v1/me/totp").json["enabled"] is False
    assert sign_in(app).status_code == 200, "not on until confirmed"

    wrong = mom.post("/api/v1/me/totp/confirm", json={"code": "000000"})
    assert wrong.status_code == 401 and wrong.json["error"]["code"] == "wrong_code"
    confirmed = mom.post("/api/v1/me/totp/confirm", json={"code": code_at(secret, now_step())})
    codes = confirmed.json["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert mom.get("/api/v1/me/totp").json == {"enabled": True, "required": False, "recovery_codes_left": 10}
    assert mom.get("/api/v1/me").json["user"]["two_step"] is True
    assert mom.get("/api/v1/me/totp/qr").status_code == 409, "the secret is not shown again"

    needed = sign_in(app)
    assert needed.status_code == 401 and needed.json["error"]["code"] == "otp_required"
    assert "Set-Cookie" not in needed.headers


def test_a_code_works_once_and_only_near_now(family, app):
    secret, _ = set_up(family.admin)  # used the code of this step
    step = now_step()
    assert sign_in(app, code_at(secret, step)).json["error"]["code"] == "wrong_code", "already used to set it up"
    nxt = sign_in(app, code_at(secret, step + 1))
    assert nxt.status_code == 200, "one step ahead: a phone clock a little fast"
    assert sign_in(app, code_at(secret, step + 1)).status_code == 401, "the same code twice"
    assert sign_in(app, code_at(secret, step - 1)).status_code == 401, "older than one accepted"
    assert sign_in(app, code_at(secret, step + 3)).status_code == 401, "too far ahead"


def test_recovery_codes_work_once_each_and_new_ones_void_the_old(family, app):
    mom = family.admin
    _, codes = set_up(mom)
    assert sign_in(app, codes[0].upper().replace("-", " ")).status_code == 200, "typed loosely"
    assert sign_in(app, codes[0]).json["error"]["code"] == "wrong_code", "used up"
    assert mom.get("/api/v1/me/totp").json["recovery_codes_left"] == 9
    assert mom.post("/api/v1/me/totp/recovery-codes", json={"password": "wrong"}).status_code == 401
    fresh = mom.post("/api/v1/me/totp/recovery-codes", json={"password": "correct horse"}).json["recovery_codes"]
    assert sign_in(app, codes[1]).status_code == 401, "the old ones stop working"
    assert sign_in(app, fresh[0]).status_code == 200


def test_only_hashes_of_the_recovery_codes_are_kept(family, settings):
    _, codes = set_up(family.admin)
    import sqlite3

    dump = "\n".join(sqlite3.connect(settings.database_path).iterdump())
    assert not any(code.replace("-", "") in dump or code in dump for code in codes)


def test_an_admin_turns_it_off_for_a_member_who_lost_their_phone(family, app):
    dad = family.member("dad")
    set_up(dad)
    assert sign_in(app, username="dad").json["error"]["code"] == "otp_required"
    assert dad.delete(f"/api/v1/users/{dad.user['id']}/totp").status_code == 403, "admins only"
    assert family.admin.delete(f"/api/v1/users/{dad.user['id']}/totp").status_code == 204
    assert sign_in(app, username="dad").status_code == 200
    assert family.admin.delete("/api/v1/users/9999/totp").status_code == 404


def test_turning_it_off_yourself_asks_for_the_password(family, app):
    mom = family.admin
    set_up(mom)
    assert mom.delete("/api/v1/me/totp", json={"password": "nope"}).status_code == 401
    assert mom.delete("/api/v1/me/totp", json={"password": "correct horse"}).status_code == 204
    assert sign_in(app).status_code == 200


def test_an_installer_can_require_it_of_administrators(tmp_path):
    from picup import create_app

    app = create_app(make_settings(tmp_path / "data", admin_two_step=True))
    mom = Api(app)
    mom.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"})
    mom.sign_in("mom")
    blocked = mom.get("/api/v1/media")
    assert blocked.status_code == 403 and blocked.json["error"]["code"] == "two_step_required"
    assert mom.get("/api/v1/me/totp").json["required"] is True
    assert mom.get("/").headers["Location"].endswith("/settings#two-step"), "pages send them to set it up"
    assert mom.get("/settings").status_code == 200
    set_up(mom)
    assert mom.get("/api/v1/media").status_code == 200
    mom.post("/api/v1/users", json={"username": "kid", "password": "correct horse"})
    assert Api(app).sign_in("kid").get("/api/v1/media").status_code == 200, "members may choose"


def test_wrong_passwords_are_limited_per_account_with_the_same_answer_for_anyone(family, app):
    for n in range(10):
        assert sign_in(app, password=f"guess {n}", address=f"10.1.0.{n}").status_code == 401
    slow = sign_in(app, address="10.9.9.9")
    assert slow.status_code == 429 and slow.json["error"]["code"] == "too_many_attempts"
    assert "wait" in slow.json["error"]["message"]
    for n in range(10):
        sign_in(app, username="nobody", password=f"guess {n}", address=f"10.2.0.{n}")
    nobody = sign_in(app, username="nobody", address="10.9.9.9")
    assert nobody.status_code == 429 and nobody.json == slow.json, "no hint whether the name exists"
    assert sign_in(app, username="MOM", address="10.9.9.9").status_code == 429, "the name in any case"


def test_wrong_codes_count_too(family, app):
    set_up(family.admin)
    for _ in range(10):
        assert sign_in(app, otp="123456").status_code == 401
    assert sign_in(app, otp="123456").status_code == 429


def test_one_address_cannot_try_name_after_name(family, app):
    for n in range(30):
        sign_in(app, username=f"name{n}", password="guess", address="10.3.3.3")
    assert sign_in(app, address="10.3.3.3").status_code == 429
    assert sign_in(app, address="10.3.3.4").status_code == 200, "others are not locked out"


def test_the_devices_list_signs_one_device_out_or_all_of_them(family, app):
    mom = family.admin
    tablet = Api(app).sign_in("mom")
    devices = mom.get("/api/v1/sessions").json["sessions"]
    assert len(devices) == 2 and sum(d["current"] for d in devices) == 1
    other = next(d for d in devices if not d["current"])
    assert len(other["id"]) == 16 and "user_agent" in other and other["last_seen_at"]
    assert mom.delete(f"/api/v1/sessions/{other['id']}").status_code == 204
    assert tablet.get("/api/v1/me").status_code == 401, "that device is signed out"
    assert mom.get("/api/v1/me").status_code == 200
    dad = family.member("dad")
    mine = mom.get("/api/v1/sessions").json["sessions"][0]["id"]
    assert dad.delete(f"/api/v1/sessions/{mine}").status_code == 404, "not Dad's to end"
    phone = Api(app).sign_in("mom")
    everywhere = mom.delete("/api/v1/sessions")
    assert everywhere.status_code == 200 and "picup_session=;" in everywhere.headers["Set-Cookie"]
    assert phone.get("/api/v1/me").status_code == 401 and mom.get("/api/v1/me").status_code == 401


def test_a_made_up_forwarded_address_does_not_reset_the_limits(live_server):
    """Through the real server (waitress): X-Forwarded-For from a client is dropped."""
    server = live_server()
    server.session()  # the first account
    for n in range(30):
        requests.post(server.url + "/api/v1/session", json={"username": f"x{n}", "password": "guess"},
                      headers={"X-Forwarded-For": f"203.0.113.{n}"})
    again = requests.post(server.url + "/api/v1/session", json={"username": "mom", "password": "correct horse"},
                          headers={"X-Forwarded-For": "198.51.100.7"})
    assert again.status_code == 429


@pytest.mark.parametrize("proxy", ["127.0.0.1"])
def test_behind_a_trusted_proxy_each_client_has_its_own_limit(live_server, proxy):
    server = live_server(env={"PICUP_TRUSTED_PROXY": proxy})
    server.session()
    for n in range(30):
        requests.post(server.url + "/api/v1/session", json={"username": f"x{n}", "password": "guess"},
                      headers={"X-Forwarded-For": "203.0.113.1"})
    blocked = requests.post(server.url + "/api/v1/session", json={"username": "mom", "password": "correct horse"},
                            headers={"X-Forwarded-For": "203.0.113.1"})
    assert blocked.status_code == 429
    other = requests.post(server.url + "/api/v1/session", json={"username": "mom", "password": "correct horse"},
                          headers={"X-Forwarded-For": "203.0.113.2", "X-Forwarded-Proto": "https"})
    assert other.status_code == 200, "another family member behind the same proxy"
    cookie = other.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie, "HTTPS at the proxy"
