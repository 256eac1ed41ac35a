"""First-run setup, signing in and out, family members and API tokens."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, g, jsonify, request
from peewee import fn

from .. import accounts, library, twostep
from ..errors import PicupError
from ..library import iso
from ..models import ApiToken, Session, User, utcnow
from .auth import (
    COOKIE,
    admin_required,
    before_two_step,
    flag_field,
    json_body,
    login_required,
    public,
    require_json_request,
    state,
    text_field,
)

bp = Blueprint("api_accounts", __name__, url_prefix="/api/v1")


def _language(data: dict) -> str | None:
    """``"ko"``, ``"en"``, or None (follow the browser); anything else is 400, not silently dropped."""
    language = data.get("language")
    if language not in (None, "ko", "en"):
        raise PicupError("invalid_value", field="language")
    return language


def _new_display_name(data: dict) -> str | None:
    """The name shown for a new account (blank: the sign-in name), as long as a changed one may be."""
    name = text_field(data, "display_name")
    if name is not None and len(name.strip()) > 100:  # the limit of accounts.update_profile
        raise PicupError("invalid_value", field="display_name")
    return name


def _signed_in(user: User, remember: bool, status: int):
    settings = state().settings
    value, session = accounts.start_session(
        user, remember=remember, settings=settings, user_agent=request.headers.get("User-Agent", "")
    )
    response = jsonify({"user": user.public(), "csrf_token": session.csrf_token})
    response.status_code = status
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(dt.timedelta(days=settings.remember_days).total_seconds()) if remember else None,
        httponly=True,
        secure=request.is_secure,
        samesite="Lax",
        path="/",
    )
    return response


@bp.get("/setup")
@public
def setup_status():
    """Whether the first account still has to be created."""
    return jsonify({"needs_setup": accounts.needs_setup()})


@bp.post("/setup")
@public
def setup():
    """Create the first account (the admin) and sign it in."""
    require_json_request()
    data = json_body()
    user = accounts.set_up_first_user(
        text_field(data, "username"),
        data.get("password", ""),
        display_name=_new_display_name(data),
        language=_language(data),
    )
    return _signed_in(user, remember=flag_field(data, "remember", True), status=201)


@bp.post("/session")
@public
def sign_in():
    """Sign in with a name and password, and ``otp`` (a code or a recovery code) for those
    with two-step sign-in. Failures are limited per account and per client address, with
    the same answer whether or not the name exists."""
    require_json_request()
    data = json_body()
    username = str(data.get("username", ""))
    limits = state()
    account, address = "name:" + username.strip().casefold(), request.remote_addr or "?"
    if limits.signin_per_account.blocked(account) or limits.signin_per_address.blocked(address):
        raise PicupError("too_many_attempts")

    def failed(code: str):
        limits.signin_per_account.record(account)
        limits.signin_per_address.record(address)
        return PicupError(code)

    try:
        user = accounts.authenticate(username, str(data.get("password", "")))
    except PicupError:
        raise failed("wrong_credentials") from None
    if twostep.enabled(user):
        if not data.get("otp"):
            raise PicupError("otp_required")
        if not twostep.verify(user, data["otp"]):
            raise failed("wrong_code")
    limits.signin_per_account.clear(account)
    return _signed_in(user, remember=flag_field(data, "remember", True), status=200)


@bp.get("/session")
@login_required
@before_two_step
def whoami():
    """The signed-in user and, for browsers, the CSRF token."""
    return jsonify({"user": g.user.public(), "csrf_token": g.session.csrf_token if g.session else None})


@bp.delete("/session")
@login_required
@before_two_step
def sign_out():
    """Sign this browser out."""
    if g.session is not None:
        accounts.end_session(g.session)
    response = jsonify({"signed_out": True})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax")
    return response


def _device_json(session: Session) -> dict:
    return {
        "id": session.id[:16],  # a prefix of the cookie's hash: names the device, opens nothing
        "user_agent": session.user_agent,
        "created_at": iso(session.created_at),
        "last_seen_at": iso(session.last_seen_at),
        "current": g.session is not None and session.id == g.session.id,
    }


@bp.get("/sessions")
@login_required
@before_two_step
def list_sessions():
    """The browsers where you are signed in, most recently used first."""
    rows = Session.select().where((Session.user == g.user) & (Session.expires_at > utcnow()))
    return jsonify({"sessions": [_device_json(s) for s in rows.order_by(Session.last_seen_at.desc())]})


@bp.delete("/sessions/<string:device>")
@login_required
@before_two_step
def end_device(device: str):
    """Sign one device out."""
    if len(device) != 16 or not device.isalnum():
        raise PicupError("not_found")
    removed = Session.delete().where((Session.user == g.user) & (fn.substr(Session.id, 1, 16) == device)).execute()
    if not removed:
        raise PicupError("not_found")
    return "", 204


@bp.delete("/sessions")
@login_required
@before_two_step
def end_everywhere():
    """Sign out everywhere, this browser too. API tokens stay."""
    Session.delete().where(Session.user == g.user).execute()
    response = jsonify({"signed_out": True})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax")
    return response


@bp.get("/me")
@login_required
@before_two_step
def me():
    """The signed-in person."""
    return jsonify({"user": g.user.public()})


@bp.patch("/me")
@login_required
def update_me():
    """Change your name or language: ``{"display_name"}``, ``{"language": "ko" | "en" | null}``."""
    data = json_body()
    user = accounts.update_profile(
        g.user,
        display_name=data.get("display_name"),
        language=data.get("language"),
        clear_language="language" in data and data["language"] is None,
    )
    return jsonify({"user": user.public()})


@bp.post("/me/password")
@login_required
def change_password():
    """``{"current_password", "new_password"}``; signs out every other device."""
    data = json_body()
    accounts.change_password(
        g.user, str(data.get("current_password", "")), str(data.get("new_password", "")), keep_session=g.session
    )
    return jsonify({"changed": True})


@bp.get("/family")
@login_required
def family():
    """Everyone in the family, to choose whom to share an album with: ids and names only."""
    return jsonify({"members": [{"id": u.id, "display_name": u.display_name} for u in accounts.family()]})


def _album_ref(album, role: str) -> dict:
    return {"id": album.id, "title": album.title, "owner_id": album.owner_id, "role": role}


@bp.get("/users")
@admin_required
def list_users():
    """Everyone in the family with the albums each can see (admin only)."""
    users = []
    for user in User.select().order_by(User.id):
        albums = [_album_ref(album, role) for album, role in library.albums_for(user)]
        users.append({**user.public(), "albums": albums})
    return jsonify({"users": users})


@bp.patch("/users/<int:user_id>")
@admin_required
def update_user(user_id: int):
    """Reset a password, rename, make or unmake an admin (admin only):
    ``{"password"?, "display_name"?, "is_admin"?}``. A reset signs that person out everywhere."""
    user = User.get_or_none(User.id == user_id)
    if user is None:
        raise PicupError("not_found")
    data = json_body()
    user = accounts.update_user(
        user,
        by=g.user,
        password=data.get("password"),
        display_name=data.get("display_name"),
        is_admin=data.get("is_admin"),
        keep_session=g.session if user.id == g.user.id else None,
    )
    return jsonify({"user": user.public()})


@bp.post("/users")
@admin_required
def add_user():
    """Add a family member (admin only)."""
    data = json_body()
    user = accounts.create_user(
        text_field(data, "username"),
        data.get("password", ""),
        display_name=_new_display_name(data),
        is_admin=flag_field(data, "is_admin", False),
        language=_language(data),
    )
    return jsonify({"user": user.public()}), 201


def _token_json(token: ApiToken) -> dict:
    return {
        "id": token.id,
        "name": token.name,
        "created_at": iso(token.created_at),
        "last_used_at": iso(token.last_used_at),
    }


@bp.get("/tokens")
@login_required
def list_tokens():
    """The user's API tokens (never their values)."""
    tokens = ApiToken.select().where(ApiToken.user == g.user).order_by(ApiToken.id)
    return jsonify({"tokens": [_token_json(t) for t in tokens]})


@bp.post("/tokens")
@login_required
def create_token():
    """A new API token for a script; its value is shown only in this answer."""
    value, token = accounts.create_token(g.user, text_field(json_body(), "name"))
    return jsonify({"token": value, **_token_json(token)}), 201


@bp.delete("/tokens/<int:token_id>")
@login_required
def revoke_token(token_id: int):
    """Revoke one of the user's API tokens."""
    removed = ApiToken.delete().where((ApiToken.id == token_id) & (ApiToken.user == g.user)).execute()
    if not removed:
        raise PicupError("not_found")
    return "", 204
