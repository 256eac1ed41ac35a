"""Who is asking: session cookies for browsers, Bearer tokens for scripts.

State-changing requests from a browser session must carry the session's
CSRF token in ``X-CSRF-Token``; Bearer tokens are not ambient and need none.
Any request whose ``Origin`` names another site is refused outright.
"""

from __future__ import annotations

import functools
import hmac
from urllib.parse import urlsplit

from flask import current_app, g, request

from .. import accounts, i18n
from ..errors import PicupError
from ..library import MAX_ID

COOKIE = "picup_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def state():
    return current_app.extensions["picup"]


def load_user() -> None:
    settings = state().settings
    g.user, g.session, g.via = None, None, None
    if request.method not in SAFE_METHODS:
        _check_origin()
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        user = accounts.user_for_token(header[7:].strip())
        if user is None:
            raise PicupError("not_signed_in")
        g.user, g.via = user, "token"
    else:
        session = accounts.session_for(request.cookies.get(COOKIE), settings)
        if session is not None:
            g.user, g.session, g.via = session.user, session, "session"
    user_lang = g.user.language if g.user else None
    g.lang = user_lang or i18n.negotiate(request.headers.get("Accept-Language"), settings.default_language)


def _check_origin() -> None:
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise PicupError("csrf_failed")


def check_csrf() -> None:
    if g.via == "session" and request.method not in SAFE_METHODS:
        sent = request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(sent, g.session.csrf_token):
            raise PicupError("csrf_failed")


def require_json_request() -> None:
    """Sign-in and setup take JSON only: a cross-site form cannot send it."""
    if request.mimetype != "application/json":
        raise PicupError("invalid_json")


def _check_path_ids(values: dict) -> None:
    """An id in the path that no row can have (over SQLite's 64-bit integers) is not found."""
    if any(isinstance(value, int) and value > MAX_ID for value in values.values()):
        raise PicupError("not_found")


def _guard(level: str):
    """A view decorator: signed in (and CSRF-checked); for ``admin``, an admin too."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if g.user is None:
                raise PicupError("not_signed_in")
            check_csrf()
            if needs_two_step() and not getattr(view, "picup_before_two_step", False):
                raise PicupError("two_step_required")
            if level == "admin" and not g.user.is_admin:
                raise PicupError("admin_only")
            _check_path_ids(kwargs)
            return view(*args, **kwargs)

        wrapper.picup_auth = level
        return wrapper

    return decorate


login_required = _guard("user")
admin_required = _guard("admin")


def needs_two_step() -> bool:
    """An administrator who must set up two-step sign-in first (``accounts.admin_two_step``)."""
    user = g.user
    return bool(user and user.is_admin and user.totp_secret is None and state().settings.admin_two_step)


def before_two_step(view):
    """Mark a view an administrator may use before setting up required two-step sign-in."""
    view.picup_before_two_step = True
    return view


def public(view):
    """Mark a view as open to anyone (checked by the route audit test)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        _check_path_ids(kwargs)
        return view(*args, **kwargs)

    wrapper.picup_auth = "public"
    return wrapper


def json_body() -> dict:
    """The request's JSON object; a number too large for the database is 400 ``invalid_value``."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes ("[[[[…"): was a 500
        data = None
    if not isinstance(data, dict):
        raise PicupError("invalid_json")
    for key, value in data.items():
        if _has_huge_int(value):
            raise PicupError("invalid_value", field=key)
    return data


def _has_huge_int(value) -> bool:
    todo = [value]  # a loop, not recursion: JSON may nest as deep as the parser allows
    while todo:
        item = todo.pop()
        if isinstance(item, int) and not -MAX_ID - 1 <= item <= MAX_ID:
            return True
        if isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, dict):
            todo.extend(item.values())
    return False


def text_field(data: dict, key: str) -> str | None:
    """``data[key]`` when it is a string; None when it is missing or null; else 400 ``invalid_value``."""
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise PicupError("invalid_value", field=key)
    return value


def flag_field(data: dict, key: str, default: bool) -> bool:
    """``data[key]`` when it is true or false; ``default`` when missing; else 400 ``invalid_value``
    (``"false"`` is not false: a truthy string must not make anyone an admin)."""
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise PicupError("invalid_value", field=key)
    return value
