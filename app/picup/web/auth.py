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
    view.picup_auth = "public"
    return view


def json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise PicupError("invalid_json")
    return data
